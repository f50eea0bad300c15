#!/usr/bin/env bash
# End-to-end test of the compute service (Nova v2.1) with Debian's
# python3-openstackclient against the all-in-one on 3 fake hypervisor hosts.
#
#   scripts/e2e/compute.sh        (needs: go, python3-openstackclient, curl)
#
# UNTIL THE IMAGE SERVICE LANDS: OSC 6.0 looks every --image up in Glance
# (`server create --image X` calls image_client.find_image, and `server
# list` / `server show` open the image client before anything else), so
# without an "image" endpoint in the catalog those three commands fail with
# "public endpoint for image service ... not found". Until then this script
# creates, lists and shows servers with curl against the same Nova API, and
# the CLI forms are kept below, marked GLANCE, ready to switch on by
# setting STRATUS_E2E_GLANCE=1 once the all-in-one serves images (with an
# image named cirros). Everything else goes through the CLI.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
e2e_start -hypervisor fake -fake-hosts 3

glance=${STRATUS_E2E_GLANCE:-0}
image=5bcd9d6e-4cb8-4d1c-9a65-2d7c1f6f3a11 # the all-in-one's stand-in image (compute/standin)
network=0c6f8a4e-3f0b-4a8e-9d7c-1b2a3c4d5e6f
nova_url=$(openstack catalog show compute -f json | python3 -c 'import json,sys; print([e["url"] for e in json.load(sys.stdin)["endpoints"] if e["interface"]=="public"][0])')

# napi METHOD PATH [BODY]: call the compute API with the current OS_* user's token.
napi() {
	local tok
	tok=$(openstack token issue -f value -c id)
	curl -s -X "$1" -H "X-Auth-Token: $tok" -H "Content-Type: application/json" \
		-H "X-OpenStack-Nova-API-Version: 2.1" "$nova_url$2" ${3:+-d "$3"}
}
# jfield EXPR: a python expression on the parsed body j.
jfield() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
export nova_url
export -f napi jfield

# create NAME [EXTRA_JSON_FIELDS] [HINTS_JSON]: boot a server, print its id.
create() {
	local extra=${2:-} hints=${3:-}
	if [[ $glance == 1 && -z $hints ]]; then # GLANCE
		openstack server create --image cirros --flavor m1.tiny --network private "$1" -f value -c id
		return
	fi
	napi POST /servers "{\"server\":{\"name\":\"$1\",\"imageRef\":\"$image\",\"flavorRef\":\"$flavor\",\"networks\":[{\"uuid\":\"$network\"}]$extra}${hints:+,\"os:scheduler_hints\":$hints}}" |
		jfield 'j["server"]["id"] if "server" in j else json.dumps(j)'
}
# show ID KEY: one attribute of a server.
show() {
	if [[ $glance == 1 ]]; then # GLANCE
		openstack server show "$1" -f value -c "$2"
		return
	fi
	napi GET "/servers/$1" | jfield "j['server'].get('$2')"
}
# wait_status ID WANT: poll until the server's status is WANT (or ERROR).
wait_status() {
	local s
	for _ in $(seq 1 100); do
		s=$(show "$1" status)
		[[ $s == "$2" || $s == ERROR ]] && break
		sleep 0.1
	done
	echo "$s"
}

# Flavors and keypairs.
expect "flavor create" "m1.tiny" openstack flavor create --vcpus 1 --ram 256 --disk 1 m1.tiny -f value -c name
flavor=$(openstack flavor show m1.tiny -f value -c id)
expect "flavor list" "m1.tiny" bash -c "openstack flavor list -f value -c Name | grep -x m1.tiny"
openstack flavor set --property hw:cpu_policy=shared m1.tiny
expect "flavor extra spec" "{'hw:cpu_policy': 'shared'}" openstack flavor show m1.tiny -f value -c properties
expect "flavor create private" "False" openstack flavor create --vcpus 2 --ram 512 --disk 2 --private m1.private -f value -c os-flavor-access:is_public
key=$(openstack keypair create k1)
[[ $key == *"PRIVATE KEY"* ]] && ok "keypair create" || bad "keypair create: $key"
expect "keypair list" "k1" bash -c "openstack keypair list -f value -c Name | grep -x k1"
expect "keypair fingerprint" "47" bash -c "openstack keypair show k1 -f value -c fingerprint | tr -d '\n' | wc -c"

# A server's life.
if [[ $glance == 1 ]]; then # GLANCE
	expect "server create --wait" "ACTIVE" openstack server create --image cirros --flavor m1.tiny --network private --key-name k1 --wait s1 -f value -c status
	sid=$(openstack server show s1 -f value -c id)
else
	sid=$(create s1 ',"key_name":"k1","metadata":{"role":"web"}')
	expect "server create (ACTIVE)" "ACTIVE" wait_status "$sid" ACTIVE
fi
expect "server show power" "1" show "$sid" OS-EXT-STS:power_state
expect "server show key" "k1" show "$sid" key_name
expect "server address" "10.0.0" bash -c "napi GET /servers/$sid | jfield 'j[\"server\"][\"addresses\"][\"private\"][0][\"addr\"].rsplit(\".\",1)[0]'"
if [[ $glance == 1 ]]; then # GLANCE
	expect "server list" "s1 ACTIVE" openstack server list -f value -c Name -c Status
else
	expect "server list" "s1" bash -c "napi GET /servers | jfield '\" \".join(s[\"name\"] for s in j[\"servers\"])'"
fi
openstack server reboot --wait s1 && ok "server reboot" || bad "server reboot"
expect "after reboot" "ACTIVE" wait_status "$sid" ACTIVE
openstack server reboot --hard --wait s1 && ok "server reboot --hard" || bad "server reboot --hard"
openstack server stop s1
expect "server stop" "SHUTOFF" wait_status "$sid" SHUTOFF
expect "power after stop" "4" show "$sid" OS-EXT-STS:power_state
expect_fail "stop a stopped server (409)" openstack server stop s1
openstack server start s1
expect "server start" "ACTIVE" wait_status "$sid" ACTIVE
openstack server pause s1
expect "server pause" "PAUSED" wait_status "$sid" PAUSED
openstack server unpause s1
expect "server unpause" "ACTIVE" wait_status "$sid" ACTIVE
openstack server suspend s1
expect "server suspend" "SUSPENDED" wait_status "$sid" SUSPENDED
openstack server resume s1
expect "server resume" "ACTIVE" wait_status "$sid" ACTIVE
expect "console log" "1" bash -c "openstack console log show s1 | grep -c 'reboot (hard)'"
openstack server set --property tier=front s1
expect "server metadata" "front" bash -c "napi GET /servers/$sid/metadata | jfield 'j[\"metadata\"][\"tier\"]'"
openstack server lock s1
expect "server lock" "True" bash -c "curl -s -H \"X-Auth-Token: \$(openstack token issue -f value -c id)\" -H 'X-OpenStack-Nova-API-Version: 2.9' $nova_url/servers/$sid | jfield 'j[\"server\"][\"locked\"]'"
openstack server unlock s1
expect "instance actions" "create" bash -c "openstack server event list s1 -f value -c Action | tail -1"
openstack server delete --wait s1 && ok "server delete --wait" || bad "server delete --wait"
expect "server gone" "404" bash -c "curl -s -o /dev/null -w '%{http_code}' -H \"X-Auth-Token: \$(openstack token issue -f value -c id)\" $nova_url/servers/$sid"

# Hosts.
expect "hypervisor list" "3" bash -c "openstack hypervisor list -f value -c 'Hypervisor Hostname' | wc -l"
expect "compute service list" "enabled up" bash -c "openstack compute service list --service nova-compute -f value -c Status -c State | sort -u"
expect "availability zone" "nova available" openstack availability zone list --compute -f value -c 'Zone Name' -c 'Zone Status'

# Anti-affinity: 3 servers on 3 hosts, the 4th finds no valid host.
gid=$(openstack server group create --policy anti-affinity aa -f value -c id)
ids=()
for i in 1 2 3 4; do
	ids+=("$(create "aa$i" "" "{\"group\":\"$gid\"}")")
done
for i in 0 1 2; do wait_status "${ids[$i]}" ACTIVE >/dev/null; done
expect "4th anti-affinity server" "ERROR" wait_status "${ids[3]}" ACTIVE
hosts=$(for i in 0 1 2; do show "${ids[$i]}" OS-EXT-SRV-ATTR:host; done | sort -u | wc -l)
[[ $hosts == 3 ]] && ok "anti-affinity: 3 servers on 3 hosts" || bad "anti-affinity: servers on $hosts hosts"
expect "no valid host fault" "1" bash -c "napi GET /servers/${ids[3]} | jfield 'j[\"server\"][\"fault\"][\"message\"]' | grep -c 'No valid host was found'"
expect "server group members" "4" bash -c "openstack server group show aa -f json | jfield 'len(j[\"members\"])'"
for id in "${ids[@]}"; do openstack server delete "$id"; done

# Quota: a member of p1 with 1 instance; the second create names the resource.
openstack project create p1 >/dev/null
openstack user create u1 --password pw1 --project p1 >/dev/null
openstack role add --project p1 --user u1 member
openstack quota set --instances 1 p1
export OS_USERNAME=u1 OS_PASSWORD=pw1 OS_PROJECT_NAME=p1
first=$(create q1)
expect "p1 first server" "ACTIVE" wait_status "$first" ACTIVE
second=$(create q2)
[[ $second == *"Quota exceeded for instances"* || $second == *"quota exceeded for instances"* ]] && ok "quota exceeded names instances" || bad "quota: $second"
expect_fail "member cannot create flavors" openstack flavor create --vcpus 1 --ram 64 --disk 1 nope
expect "member sees no host" "None" show "$first" OS-EXT-SRV-ATTR:host
expect_fail "member cannot list hypervisors" openstack hypervisor list
openstack server delete --wait "$first" && ok "p1 delete --wait" || bad "p1 delete --wait"
source "$tmp/data/admin-openrc.sh"
expect "p1 quota released" "0" bash -c "napi GET /os-quota-sets/$(openstack project show p1 -f value -c id)/detail | jfield 'j[\"quota_set\"][\"instances\"][\"in_use\"]'"

e2e_done
