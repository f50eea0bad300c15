#!/usr/bin/env bash
# End-to-end test of the orchestration service (Heat v1) with Debian's
# python3-heatclient (openstack stack ...) against the all-in-one on the
# fake hypervisor: a three-tier stack (network, subnet, router, security
# group, three servers, a volume attached, a floating IP) is created, its
# outputs compared with the servers' real addresses, and deleted leaving
# nothing; a failing resource rolls back; validation errors name the culprit.
#
#   scripts/e2e/orchestration.sh   (needs: go, python3-openstackclient, python3-heatclient)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
e2e_start -hypervisor fake
here=scripts/e2e/heat

jget() { python3 -c "import json,sys; v=json.loads(sys.argv[1]); [v:=v[k] if isinstance(v,dict) else v[int(k)] for k in sys.argv[2:]]; print(v if isinstance(v,(str,int)) else json.dumps(v, sort_keys=True))" "$@"; }

head -c 65536 /dev/zero >"$tmp/img.raw"
jobs=()
os image create --public --disk-format raw --container-format bare --file "$tmp/img.raw" tiny >"$tmp/setup1.out" 2>&1 &
jobs+=($!)
os flavor create --vcpus 1 --ram 256 --disk 1 m1.tiny >"$tmp/setup2.out" 2>&1 &
jobs+=($!)
{ os network create --external public && os subnet create --network public --subnet-range 172.24.4.0/24 public-sub; } >"$tmp/setup3.out" 2>&1 &
jobs+=($!)
for j in "${jobs[@]}"; do wait "$j" || cat "$tmp"/setup*.out; done

# counts: how many servers, networks, ports, volumes, floating IPs,
# security groups and routers there are (listed side by side).
counts() {
	local i=0 c
	for c in "server list" "network list" "port list" "volume list" "floating ip list" "security group list" "router list"; do
		# shellcheck disable=SC2086
		openstack $c -f value -c ID >"$tmp/count.$i" 2>&1 &
		i=$((i + 1))
	done
	wait $(jobs -p | grep -vx "$server") 2>/dev/null || true
	for i in 0 1 2 3 4 5 6; do wc -l <"$tmp/count.$i"; done | tr '\n' ' '
}
# Counts before, to check that the stack's delete leaves nothing behind.
before=$(counts)

# bg NAME CMD...: run a CLI call in the background (each costs a Python
# start), output in $tmp/NAME.out, status in $tmp/NAME.rc; bgwait waits
# for all of them.
bgjobs=()
bg() {
	local name=$1
	shift
	{ "$@" >"$tmp/$name.out" 2>&1 && echo 0 >"$tmp/$name.rc" || echo $? >"$tmp/$name.rc"; } &
	bgjobs+=($!)
}
bgwait() {
	for j in "${bgjobs[@]}"; do wait "$j" || true; done
	bgjobs=()
}
# failed_with NAME WANT: the background call NAME failed, saying WANT.
failed_with() {
	if [[ $(cat "$tmp/$1.rc") == 0 ]]; then bad "$1: succeeded"; elif grep -q -- "$2" "$tmp/$1.out"; then ok "$1"; else bad "$1: $(head -c 300 "$tmp/$1.out")"; fi
}

# Validation errors: a 400 naming the culprit.
printf 'heat_template_version: 2016-04-08\nresources:\n  a: {type: OS::Heat::None, depends_on: b}\n  b: {type: OS::Heat::None, depends_on: a}\n' >"$tmp/cycle.yaml"
printf 'heat_template_version: 2016-04-08\nresources:\n  a: {type: OS::Nope::Thing}\n' >"$tmp/type.yaml"
printf 'heat_template_version: 2016-04-08\nparameters: {n: {type: number, constraints: [{range: {min: 1, max: 3}}]}}\nresources:\n  a: {type: OS::Heat::RandomString, properties: {length: {get_pram: n}}}\n' >"$tmp/func.yaml"
printf 'heat_template_version: 2016-04-08\nparameters: {n: {type: number, constraints: [{range: {min: 1, max: 3}}]}}\nresources:\n  a: {type: OS::Heat::RandomString, properties: {length: {get_param: n}}}\n' >"$tmp/param.yaml"
bg types openstack orchestration resource type list -f value
bg cycle openstack orchestration template validate -t "$tmp/cycle.yaml"
bg type openstack orchestration template validate -t "$tmp/type.yaml"
bg func openstack orchestration template validate -t "$tmp/func.yaml"
bg missing openstack stack create -t "$tmp/param.yaml" missing
bg toobig openstack stack create -t "$tmp/param.yaml" --parameter n=7 toobig
bg validate openstack orchestration template validate -t "$tmp/param.yaml" -f json
bgwait
expect "resource types" "yes" bash -c "grep -qx OS::Nova::Server $tmp/types.out && echo yes"
failed_with cycle "a -> b -> a"
failed_with type "OS::Nope::Thing"
failed_with func "get_pram"
failed_with missing 'parameter "n" was not provided'
failed_with toobig "not between 1 and 3"
expect "validate: parameters listed" "Number" python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['Parameters']['n']['Type'])" "$tmp/validate.out"

# The three tiers.
expect "stack create --wait" "CREATE_COMPLETE" bash -c "openstack stack create -t $here/three-tier.yaml --parameter image=tiny --parameter public_net=public --wait --poll 1 three -f value -c stack_status | tail -1"
bg show openstack stack show three -f json
bg res openstack stack resource list three -f json
bg servers openstack server list -f json -c ID -c Networks
bg list openstack stack list -f value -c "Stack Name" -c "Stack Status"
bg template openstack stack template show three -f json
bg events openstack stack event list three
bg output openstack stack output show three db_ip -f value -c output_value
bg fips openstack floating ip list -f json
bg outlist openstack stack output list three -f value -c output_key
bg resshow openstack stack resource show three data -f json
bg typeshow openstack orchestration resource type show OS::Cinder::Volume -f json
bgwait
outs=$(python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['outputs']))" "$tmp/show.out")
out() { python3 -c "import json,sys; print({o['output_key']: o['output_value'] for o in json.loads(sys.argv[1])}[sys.argv[2]])" "$outs" "$1"; }
phys() { python3 -c "import json,sys; print({r['resource_name']: r['physical_resource_id'] for r in json.load(open(sys.argv[1]))}[sys.argv[2]])" "$tmp/res.out" "$1"; }
addr() { python3 -c "import json,sys; s={x['ID']: x['Networks'] for x in json.load(open(sys.argv[1]))}[sys.argv[2]]; print(list(s.values())[0][0])" "$tmp/servers.out" "$1"; }
for s in web app db; do
	expect "output ${s}_ip is the server's address" "$(addr "$(phys $s)")" out "${s}_ip"
done
expect "floating IP output is on the web server's port" "$(phys web_port)" python3 -c "import json,sys; print([f['Port'] for f in json.load(open(sys.argv[1])) if f['Floating IP Address'] == sys.argv[2]][0])" "$tmp/fips.out" "$(out web_public)"
expect "volume attached to db" "in-use" out volume_status
expect "stack list" "three CREATE_COMPLETE" cat "$tmp/list.out"
expect "resource list" "12" bash -c "grep -o CREATE_COMPLETE $tmp/res.out | wc -l"
expect "output show" "$(out db_ip)" cat "$tmp/output.out"
expect "template show" "2018-08-31" python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['heat_template_version'])" "$tmp/template.out"
expect "output list" "app_ip db_ip volume_status web_ip web_public" bash -c "sort $tmp/outlist.out | tr '\n' ' ' | sed 's/ $//'"
expect "resource show" "OS::Cinder::Volume CREATE_COMPLETE in-use" python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['resource_type'], r['resource_status'], r['attributes']['status'])" "$tmp/resshow.out"
expect "resource type show" "integer" python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['properties']['size']['type'])" "$tmp/typeshow.out"
expect "event list" "yes" bash -c "grep -q 'Stack CREATE completed successfully' $tmp/events.out && echo yes"

expect "stack delete --wait" "DELETE_COMPLETE" bash -c "openstack stack delete --yes --wait three | tail -1 | grep -o DELETE_COMPLETE"
expect "nothing left in any service" "$before" counts

# A failing resource rolls back what was created.
cat >"$tmp/fail.yaml" <<'T'
heat_template_version: 2018-08-31
resources:
  net: {type: OS::Neutron::Net}
  vol: {type: OS::Cinder::Volume, properties: {size: 1}}
  bad: {type: OS::Heat::TestResource, depends_on: [net, vol], properties: {fail: true}}
T
bg failing openstack stack create -t "$tmp/fail.yaml" --enable-rollback --wait --poll 1 failing
bgwait
failed_with failing "CREATE_FAILED"
for _ in $(seq 1 50); do
	st=$(os stack show failing -f value -c stack_status)
	[[ $st == ROLLBACK_IN_PROGRESS ]] || break
	sleep 0.2
done
expect "rolled back" "ROLLBACK_COMPLETE" echo "$st"
expect "rollback left nothing" "$before" counts
# (stack delete --wait polls every 5 s; stack show sees the end sooner)
os stack delete --yes failing
for _ in $(seq 1 50); do
	st=$(os stack show failing -f value -c stack_status)
	[[ $st == DELETE_IN_PROGRESS ]] || break
	sleep 0.2
done
expect "delete after rollback" "DELETE_COMPLETE" echo "$st"

e2e_done
