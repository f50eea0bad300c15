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

counts() { python3 -c '
import openstack
c = openstack.connect()
print(*[len(list(x)) for x in (c.compute.servers(), c.network.networks(), c.network.ports(), c.block_storage.volumes(),
	c.network.ips(), c.network.security_groups(), c.network.routers())])'; }
# Counts before, to check that the stack's delete leaves nothing behind.
before=$(counts)

expect "resource types" "yes" bash -c 'openstack orchestration resource type list -f value | grep -qx OS::Nova::Server && echo yes'

# Validation errors: a 400 naming the culprit.
printf 'heat_template_version: 2016-04-08\nresources:\n  a: {type: OS::Heat::None, depends_on: b}\n  b: {type: OS::Heat::None, depends_on: a}\n' >"$tmp/cycle.yaml"
printf 'heat_template_version: 2016-04-08\nresources:\n  a: {type: OS::Nope::Thing}\n' >"$tmp/type.yaml"
printf 'heat_template_version: 2016-04-08\nparameters: {n: {type: number, constraints: [{range: {min: 1, max: 3}}]}}\nresources:\n  a: {type: OS::Heat::RandomString, properties: {length: {get_pram: n}}}\n' >"$tmp/func.yaml"
printf 'heat_template_version: 2016-04-08\nparameters: {n: {type: number, constraints: [{range: {min: 1, max: 3}}]}}\nresources:\n  a: {type: OS::Heat::RandomString, properties: {length: {get_param: n}}}\n' >"$tmp/param.yaml"
check_err() { # NAME WANT-SUBSTRING CMD...
	local name=$1 want=$2
	shift 2
	if "$@" >"$tmp/err.out" 2>&1; then bad "$name: succeeded"; elif grep -q -- "$want" "$tmp/err.out"; then ok "$name"; else bad "$name: $(head -c 300 "$tmp/err.out")"; fi
}
check_err "validate: cycle named" "a -> b -> a" os orchestration template validate -t "$tmp/cycle.yaml"
check_err "validate: unknown type" "OS::Nope::Thing" os orchestration template validate -t "$tmp/type.yaml"
check_err "validate: unknown function" "get_pram" os orchestration template validate -t "$tmp/func.yaml"
check_err "create: missing parameter" 'parameter "n" was not provided' os stack create -t "$tmp/param.yaml" missing
check_err "create: constraint violation" "not between 1 and 3" os stack create -t "$tmp/param.yaml" --parameter n=7 toobig
expect "validate: parameters listed" "Number" bash -c "openstack orchestration template validate -t $tmp/param.yaml -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"Parameters\"][\"n\"][\"Type\"])'"

# The three tiers.
expect "stack create --wait" "CREATE_COMPLETE" os stack create -t "$here/three-tier.yaml" --parameter image=tiny --parameter public_net=public --wait --poll 1 three -f value -c stack_status
show=$(os stack show three -f json)
outs=$(jget "$show" outputs)
out() { python3 -c "import json,sys; print({o['output_key']: o['output_value'] for o in json.loads(sys.argv[1])}[sys.argv[2]])" "$outs" "$1"; }
res=$(os stack resource list three -f json)
servers=$(os server list -f json -c ID -c Networks)
phys() { python3 -c "import json,sys; print({r['resource_name']: r['physical_resource_id'] for r in json.loads(sys.argv[1])}[sys.argv[2]])" "$res" "$1"; }
addr() { python3 -c "import json,sys; s={x['ID']: x['Networks'] for x in json.loads(sys.argv[1])}[sys.argv[2]]; print(list(s.values())[0][0])" "$servers" "$1"; }
for s in web app db; do
	expect "output ${s}_ip is the server's address" "$(addr "$(phys $s)")" out "${s}_ip"
done
web=$(phys web)
expect "floating IP output is the web server's floating address" "$(out web_public)" bash -c "openstack floating ip list --port $(phys web_port) -f value -c 'Floating IP Address'"
expect "volume attached to db" "in-use" out volume_status
expect "stack list" "three CREATE_COMPLETE" os stack list -f value -c "Stack Name" -c "Stack Status"
expect "resource list" "12" bash -c "grep -o CREATE_COMPLETE <<<'$res' | wc -l"
expect "output show" "$(out db_ip)" os stack output show three db_ip -f value -c output_value
expect "template show" "2018-08-31" os stack template show three -f value -c heat_template_version
expect "event list" "yes" bash -c "openstack stack event list three | grep -q 'Stack CREATE completed successfully' && echo yes"

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
check_err "create fails" "CREATE_FAILED" os stack create -t "$tmp/fail.yaml" --enable-rollback --wait --poll 1 failing
for _ in $(seq 1 50); do
	st=$(os stack show failing -f value -c stack_status)
	[[ $st == ROLLBACK_IN_PROGRESS ]] || break
	sleep 0.2
done
expect "rolled back" "ROLLBACK_COMPLETE" echo "$st"
expect "rollback left nothing" "$before" counts
expect "delete after rollback" "DELETE_COMPLETE" bash -c "openstack stack delete --yes --wait failing | tail -1 | grep -o DELETE_COMPLETE"

e2e_done
