#!/usr/bin/env bash
# End-to-end test of compute II (resize, rebuild, migrate, evacuate,
# snapshots, rescue, shelve, interfaces, aggregates, os-migrations) with
# Debian's python3-openstackclient against the all-in-one on 3 fake
# hypervisor hosts.
#
#   scripts/e2e/compute2.sh        (needs: go, python3-openstackclient)
#
# Each CLI call costs about a second of Python start-up: most checks read
# several fields of one `-f json` answer.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
e2e_start -hypervisor fake -fake-hosts 3

# jget JSON KEY: one top-level value of a JSON object.
jget() { python3 -c "import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print(v if isinstance(v,(str,int)) else json.dumps(v, sort_keys=True))" "$1" "$2"; }
# srv NAME: the server as JSON (admin: with its host).
srv() { os server show "$1" -f json; }
# fields JSON KEY...: the values of several keys, space-separated.
fields() { python3 -c "import json,sys; j=json.loads(sys.argv[1]); print(' '.join(str(j.get(k)) for k in sys.argv[2:]))" "$@"; }
# wait_status NAME WANT: poll until the server's status is WANT (or ERROR).
wait_status() {
	local s
	for _ in $(seq 1 100); do
		s=$(os server show "$1" -f value -c status)
		[[ $s == "$2" || $s == ERROR ]] && break
		sleep 0.2
	done
	echo "$s"
}
# flavor_of JSON: the flavor's original_name (microversion 2.47+ embeds it).
flavor_of() { python3 -c "import json,sys; f=json.loads(sys.argv[1])['flavor']; print(f.split(' ')[0] if isinstance(f,str) else f.get('original_name', f.get('name')))" "$1"; }
host() { jget "$1" OS-EXT-SRV-ATTR:host; }

head -c 65536 /dev/zero >"$tmp/disk.raw"
jobs=()
{ os image create --public --disk-format raw --container-format bare --file "$tmp/disk.raw" cirros &&
	os image create --public --disk-format raw --container-format bare --file "$tmp/disk.raw" cirros2; } >"$tmp/image.out" 2>&1 &
jobs+=($!)
{ os network create private && os subnet create private-sub --network private --subnet-range 10.0.0.0/24 &&
	os port create --network private extra; } >"$tmp/net.out" 2>&1 &
jobs+=($!)
{ os flavor create --vcpus 1 --ram 256 --disk 1 m1.tiny && os flavor create --vcpus 2 --ram 512 --disk 1 m1.small &&
	os flavor create --vcpus 1 --ram 256 --disk 1 --property aggregate_instance_extra_specs:ssd=true m1.ssd; } >"$tmp/flavor.out" 2>&1 &
jobs+=($!)
{ os aggregate create --property ssd=true fast && os aggregate add host fast host3; } >"$tmp/agg.out" 2>&1 &
jobs+=($!)
for j in "${jobs[@]}"; do wait "$j" || true; done
expect "setup: images, network, flavors, aggregate" "active active ACTIVE host3" bash -c \
	"echo \$(openstack image show cirros -f value -c status) \$(openstack image show cirros2 -f value -c status) \
	\$(openstack port show extra -f value -c status | tr a-z A-Z | sed 's/DOWN/ACTIVE/') \$(openstack aggregate show fast -f value -c hosts | tr -d \"[]'\")" ||
	cat "$tmp"/*.out

# Aggregates direct placement: the ssd flavor lands on host3 only.
os server create --image cirros --flavor m1.ssd --network private fastvm >/dev/null
wait_status fastvm ACTIVE >/dev/null
expect "aggregate extra_spec places on host3" "host3 ACTIVE" fields "$(srv fastvm)" OS-EXT-SRV-ATTR:host status
os server delete fastvm

os server create --image cirros --flavor m1.tiny --network private s1 >/dev/null
wait_status s1 ACTIVE >/dev/null
s1=$(srv s1)
sid=$(jget "$s1" id)
h0=$(host "$s1")

# Resize + confirm (--wait polls every 5 s: the other steps poll faster).
os server resize --flavor m1.small --wait s1 >/dev/null
j=$(srv s1)
expect "server resize --wait" "VERIFY_RESIZE m1.small" echo "$(jget "$j" status) $(flavor_of "$j")"
os server resize confirm s1
expect "server resize confirm" "ACTIVE" wait_status s1 ACTIVE
# Resize + revert: back to the flavor (and host) it had.
h1=$(host "$(srv s1)")
os server resize --flavor m1.tiny s1
wait_status s1 VERIFY_RESIZE >/dev/null
os server resize revert s1
expect "server resize revert" "ACTIVE" wait_status s1 ACTIVE
j=$(srv s1)
expect "revert restores flavor and host" "m1.small $h1" echo "$(flavor_of "$j") $(host "$j")"

# Rebuild with another image: same port.
port=$(os port list --server "$sid" -f value -c ID)
os server rebuild --image cirros2 s1 >/dev/null
wait_status s1 ACTIVE >/dev/null
j=$(srv s1)
img=$(jget "$j" image)
expect "server rebuild --image" "ACTIVE cirros2" echo "$(jget "$j" status) ${img%% *}"
# port_at: the port's owner and host, one call.
port_at() { fields "$(os port show "$port" -f json)" device_id binding_host_id; }
expect "rebuild keeps the port" "$sid $(host "$j")" port_at

# Cold migrate (admin) + confirm: another host.
h2=$(host "$j")
os server migrate s1
wait_status s1 VERIFY_RESIZE >/dev/null
j=$(srv s1)
h3=$(host "$j")
[[ $(jget "$j" status) == VERIFY_RESIZE && $h3 != "$h2" ]] && ok "server migrate --wait ($h2 -> $h3)" || bad "migrate: $(jget "$j" status) on $h3 (was $h2)"
os server resize confirm s1
expect "migrate confirm" "ACTIVE" wait_status s1 ACTIVE
expect "port bound to the new host" "$sid $h3" port_at

# Evacuate: refused while the host is up, then after it is forced down.
expect_fail "evacuate refused while the host is up" os server evacuate s1
os --os-compute-api-version 2.11 compute service set --down "$h3" nova-compute
# (OSC 6.0's evacuate fails printing novaclient's answer, a TupleWithMeta,
# after the request succeeded: the state below is what counts.)
os server evacuate s1 >/dev/null 2>&1 || true
wait_status s1 ACTIVE >/dev/null
j=$(srv s1)
h4=$(host "$j")
[[ $(jget "$j" status) == ACTIVE && $h4 != "$h3" ]] && ok "server evacuate ($h3 -> $h4)" || bad "evacuate: $(jget "$j" status) on $h4"
expect "evacuate keeps the port" "$sid $h4" port_at
os --os-compute-api-version 2.11 compute service set --up "$h3" nova-compute

# Snapshot: an image that is active and boots.
os server image create --name snap1 s1 >/dev/null
expect "server image create" "ACTIVE" wait_status s1 ACTIVE
expect "snapshot image active" "active" os image show snap1 -f value -c status
os server create --image snap1 --flavor m1.tiny --network private froms >/dev/null
expect "the snapshot boots" "ACTIVE" wait_status froms ACTIVE

# Rescue, unrescue.
os server rescue s1 >/dev/null
expect "server rescue" "RESCUE" wait_status s1 RESCUE
os server unrescue s1
expect "server unrescue" "ACTIVE" wait_status s1 ACTIVE

# Shelve (offloaded: the host's claim goes), unshelve.
os server shelve s1
wait_status s1 SHELVED >/dev/null
os server shelve --offload s1
wait_status s1 SHELVED_OFFLOADED >/dev/null
j=$(srv s1)
expect "server shelve --offload" "SHELVED_OFFLOADED None" fields "$j" status OS-EXT-SRV-ATTR:host
os server unshelve s1
expect "server unshelve" "ACTIVE" wait_status s1 ACTIVE
h5=$(host "$(srv s1)")
expect "unshelve keeps the port" "$sid $h5" port_at

# Interfaces: add and remove a port.
os server add port s1 extra
extra=$(os port show extra -f json)
expect "server add port" "$sid $h5" fields "$extra" device_id binding_host_id
os server remove port s1 extra
expect "server remove port" "" os port show extra -f value -c device_id

# os-migrations: every move of s1, newest first.
expect "server migration list" "evacuation:done migration:confirmed resize:reverted resize:confirmed" bash -c \
	"openstack --os-compute-api-version 2.59 server migration list --server $sid -f json | python3 -c 'import json,sys; print(\" \".join(m[\"Type\"]+\":\"+m[\"Status\"] for m in json.load(sys.stdin)))'"
acts=$(os server event list s1 -f value -c Action | tr '\n' ' ')
[[ $acts == *unshelve*shelve*rescue*createImage*evacuate*migrate*rebuild*revertResize*resize*confirmResize*resize*create* ]] &&
	ok "instance actions recorded" || bad "instance actions: $acts"

os server delete s1 froms
used() { openstack hypervisor list --long -f value -c 'vCPUs Used' | tr '\n' ' ' | sed 's/ $//'; }
left=""
for _ in $(seq 1 20); do
	left=$(used)
	[[ $left == "0 0 0" ]] && break
	sleep 0.2
done
[[ $left == "0 0 0" ]] && ok "nothing left on the hosts" || bad "vCPUs still used: $left"
e2e_done
