#!/usr/bin/env bash
# End-to-end test of the compute service (Nova v2.1) with Debian's
# python3-openstackclient against the all-in-one on 3 fake hypervisor hosts.
# Servers boot from a real image (image service) on real ports (network
# service); a floating IP is associated through the network API the way
# `openstack server add floating ip` does it.
#
#   scripts/e2e/compute.sh        (needs: go, python3-openstackclient)
#
# Every check reads a command's whole output (captured, or grep without -q):
# under pipefail a reader that stops early kills the CLI with SIGPIPE.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
e2e_start -hypervisor fake -fake-hosts 3

# show ID FIELD: one attribute of a server.
show() { os server show "$1" -f value -c "$2"; }
# wait_status ID WANT: poll until the server's status is WANT (or ERROR).
wait_status() {
	local s
	for _ in $(seq 1 100); do
		s=$(show "$1" status)
		[[ $s == "$2" || $s == ERROR ]] && break
		sleep 0.2
	done
	echo "$s"
}
# json_field EXPR: a python expression on the parsed JSON on stdin (j).
json_field() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
# jget JSON KEY: one top-level value of a JSON object (captured output of
# -f json: one CLI call serves several checks).
jget() { python3 -c "import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print(v if isinstance(v,(str,int)) else json.dumps(v, sort_keys=True))" "$1" "$2"; }
# port_ips SERVER: the fixed IPs of the server's ports, one a line.
port_ips() {
	os port list --server "$1" -f json -c "Fixed IP Addresses" |
		json_field '"\n".join(f["ip_address"] for p in j for f in p["Fixed IP Addresses"])'
}
# in_subnet IP CIDR: prints yes when IP is in CIDR.
in_subnet() { python3 -c "import ipaddress,sys; print('yes' if ipaddress.ip_address(sys.argv[1]) in ipaddress.ip_network(sys.argv[2]) else 'no')" "$1" "$2"; }

# An image, a network, flavors and a keypair, made side by side (each CLI
# call costs a Python start), then checked.
head -c 65536 /dev/zero >"$tmp/cirros.raw"
# (wait names the jobs: a bare wait would wait for the all-in-one too)
jobs=()
os image create --public --disk-format raw --container-format bare --file "$tmp/cirros.raw" cirros >"$tmp/image.out" 2>&1 &
jobs+=($!)
{ os network create private && os subnet create private-sub --network private --subnet-range 10.0.0.0/24; } >"$tmp/net.out" 2>&1 &
jobs+=($!)
{ os flavor create --vcpus 1 --ram 256 --disk 1 --property hw:cpu_policy=shared m1.tiny &&
	os flavor create --vcpus 2 --ram 512 --disk 2 --private m1.private; } >"$tmp/flavor.out" 2>&1 &
jobs+=($!)
os keypair create k1 >"$tmp/key.out" 2>&1 &
jobs+=($!)
for j in "${jobs[@]}"; do wait "$j" || true; done # the checks below tell what failed
expect "image create" "active" os image show cirros -f value -c status
expect "network and subnet create" "10.0.0.0/24" os subnet show private-sub -f value -c cidr
expect "flavor list" "m1.private False
m1.tiny True" bash -c "openstack flavor list --all -f value -c Name -c 'Is Public' | sort"
expect "flavor extra spec" "{'hw:cpu_policy': 'shared'}" os flavor show m1.tiny -f value -c properties
key=$(cat "$tmp/key.out")
[[ $key == *"PRIVATE KEY"* ]] && ok "keypair create" || bad "keypair create: $key"
expect "keypair list" "k1" bash -c "openstack keypair list -f value -c Name | grep -x k1"
fp=$(os keypair show k1 -f value -c fingerprint)
expect "keypair fingerprint" "47" echo "${#fp}"

# A server's life, on a real port.
os server create --image cirros --flavor m1.tiny --network private --key-name k1 --property role=web --wait s1 >/dev/null
s1=$(os server show s1 -f json)
sid=$(jget "$s1" id)
expect "server create --wait" "ACTIVE" jget "$s1" status
expect "server show power" "1" jget "$s1" OS-EXT-STS:power_state
expect "server show key" "k1" jget "$s1" key_name
img=$(jget "$s1" image)
expect "server show image" "cirros" echo "${img%% *}"
expect "server list" "s1 ACTIVE" os server list -f value -c Name -c Status
port=$(os port list --server "$sid" -f value -c ID)
[[ $port =~ ^[0-9a-f-]{36}$ ]] && ok "server create made one port" || bad "server ports: '$port'"
expect "port owner" "$sid compute:nova" bash -c "openstack port show $port -f value -c device_owner -c device_id | paste -sd' '"
expect "port active" "ACTIVE" os port show "$port" -f value -c status
ip=$(port_ips "$sid")
expect "port address in the subnet" "yes" in_subnet "$ip" 10.0.0.0/24
expect "server addresses are the port's" "{'private': ['$ip']}" show s1 addresses

# A floating IP (issue 7): external network, router, association through
# the network API (OSC 6.0's server add floating ip sets port_id).
expect "external network" "True" os network create public --external -f value -c router:external
os subnet create public-sub --network public --subnet-range 203.0.113.0/24 --no-dhcp >/dev/null
expect "router create" "r1" os router create r1 --external-gateway public -f value -c name
os router add subnet r1 private-sub
fip=$(os floating ip create public -f value -c floating_ip_address)
expect "floating ip create" "yes" in_subnet "$fip" 203.0.113.0/24
os server add floating ip s1 "$fip" && ok "server add floating ip" || bad "server add floating ip"
expect "floating ip on the server's port" "$ip $port" bash -c "openstack floating ip show $fip -f value -c port_id -c fixed_ip_address | paste -sd' '"
expect "server addresses list the floating ip" "{'private': ['$ip', '$fip']}" show s1 addresses
os server remove floating ip s1 "$fip" && ok "server remove floating ip" || bad "server remove floating ip"
expect "floating ip released" "None None" bash -c "openstack floating ip show $fip -f value -c port_id -c fixed_ip_address | paste -sd' '"
expect "server addresses without the floating ip" "{'private': ['$ip']}" show s1 addresses
os floating ip delete "$fip"

os server reboot --wait s1 >/dev/null && ok "server reboot" || bad "server reboot"
expect "after reboot" "ACTIVE" wait_status s1 ACTIVE
os server reboot --hard s1
expect "server reboot --hard" "ACTIVE" wait_status s1 ACTIVE
os server stop s1
expect "server stop" "SHUTOFF" wait_status s1 SHUTOFF
expect "power after stop" "4" show s1 OS-EXT-STS:power_state
expect_fail "stop a stopped server (409)" os server stop s1
os server start s1
expect "server start" "ACTIVE" wait_status s1 ACTIVE
os server pause s1
expect "server pause" "PAUSED" wait_status s1 PAUSED
os server unpause s1
expect "server unpause" "ACTIVE" wait_status s1 ACTIVE
os server suspend s1
expect "server suspend" "SUSPENDED" wait_status s1 SUSPENDED
os server resume s1
expect "server resume" "ACTIVE" wait_status s1 ACTIVE
expect "console log" "1" bash -c "openstack console log show s1 | grep -c 'reboot (hard)'"
os server set --property tier=front s1
expect "server metadata" "{'role': 'web', 'tier': 'front'}" show s1 properties
os server lock s1
expect "server lock" "True" os --os-compute-api-version 2.9 server show s1 -f value -c locked
os server unlock s1
expect "instance actions" "create" bash -c "openstack server event list s1 -f value -c Action | tail -1"
os server delete --wait s1 && ok "server delete --wait" || bad "server delete --wait"
expect_fail "server gone" os server show "$sid"
expect "server's port gone" "" os port list --server "$sid" -f value -c ID
expect_fail "port show of the server's port fails" os port show "$port"

# Hosts.
expect "hypervisor list" "3" bash -c "openstack hypervisor list -f value -c 'Hypervisor Hostname' | wc -l"
expect "compute service list" "enabled up" bash -c "openstack compute service list --service nova-compute -f value -c Status -c State | sort -u"
expect "availability zone" "nova available" os availability zone list --compute -f value -c 'Zone Name' -c 'Zone Status'

# Anti-affinity: 4 servers asked for at once on 3 hosts: 3 land on 3
# distinct hosts, one finds no valid host.
gid=$(os server group create --policy anti-affinity aa -f value -c id)
jobs=()
for i in 1 2 3 4; do
	os server create --image cirros --flavor m1.tiny --network private --hint group="$gid" "aa$i" -f value -c id >"$tmp/aa$i.id" &
	jobs+=($!)
done
for j in "${jobs[@]}"; do wait "$j" || true; done
ids=()
for i in 1 2 3 4; do ids+=("$(cat "$tmp/aa$i.id")"); done
active=() errored=()
for id in "${ids[@]}"; do
	st=$(wait_status "$id" ACTIVE)
	if [[ $st == ACTIVE ]]; then active+=("$id"); else errored+=("$id"); fi
done
expect "anti-affinity: 3 ACTIVE, 1 ERROR" "3 1" echo "${#active[@]} ${#errored[@]}"
hosts=$(for id in "${active[@]}"; do show "$id" OS-EXT-SRV-ATTR:host; done | sort -u | grep -c '^host[0-9]' || true)
[[ $hosts == 3 ]] && ok "anti-affinity: 3 servers on 3 hosts" || bad "anti-affinity: servers on $hosts hosts"
fault=$( ((${#errored[@]})) && show "${errored[0]}" fault || true)
[[ $fault == *"No valid host was found"* ]] && ok "no valid host fault" || bad "fault: $fault"
expect "server group members" "4" bash -c "openstack server group show aa -f json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"members\"]))'"
for id in "${ids[@]}"; do os server delete "$id"; done

# Quota: a member of p1 with 1 instance; the second create names the resource.
os project create p1 >/dev/null
jobs=()
{ os user create u1 --password pw1 --project p1 && os role add --project p1 --user u1 member; } >"$tmp/p1user.out" 2>&1 &
jobs+=($!)
os quota set --instances 1 p1 >"$tmp/p1quota.out" 2>&1 &
jobs+=($!)
{ os network create p1net --project p1 && os subnet create p1sub --project p1 --network p1net --subnet-range 10.9.0.0/24; } >"$tmp/p1net.out" 2>&1 &
jobs+=($!)
for j in "${jobs[@]}"; do wait "$j" || { cat "$tmp"/p1*.out; bad "p1 setup"; }; done
export OS_USERNAME=u1 OS_PASSWORD=pw1 OS_PROJECT_NAME=p1
os server create --image cirros --flavor m1.tiny --network p1net --wait q1 >/dev/null
q1=$(os server show q1 -f json)
expect "p1 first server" "ACTIVE" jget "$q1" status
first=$(jget "$q1" id)
second=$(os server create --image cirros --flavor m1.tiny --network p1net q2 2>&1 || true)
[[ ${second,,} == *"quota exceeded for instances"* ]] && ok "quota exceeded names instances" || bad "quota: $second"
expect_fail "member cannot create flavors" os flavor create --vcpus 1 --ram 64 --disk 1 nope
expect "member sees no host" "False" python3 -c 'import json,sys; print("OS-EXT-SRV-ATTR:host" in json.loads(sys.argv[1]))' "$q1"
expect_fail "member cannot list hypervisors" os hypervisor list
os server delete --wait "$first" && ok "p1 delete --wait" || bad "p1 delete --wait"
# shellcheck disable=SC1091
source "$tmp/data/admin-openrc.sh"
expect "p1 quota released" "0" bash -c "openstack quota list --compute --detail --project p1 -f value -c Resource -c 'In Use' | grep -x 'instances [0-9]*' | cut -d' ' -f2"

e2e_done
