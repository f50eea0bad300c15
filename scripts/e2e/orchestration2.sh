#!/usr/bin/env bash
# End-to-end test of orchestration II with the openstack CLI on the fake
# hypervisor: the three-tier stack updated (one server resized in place, a
# fourth server added, every other resource keeping its id) after a
# dry-run; a failing update rolled back; a ResourceGroup of template
# resources (from an environment's resource_registry) scaled from 5 to 3;
# an AutoScalingGroup resized by POSTing to its policies' pre-signed URLs
# without a token, after the creator's token expired (tokens live 8 s
# here), cooldown honoured; a CloudFormation template with Mappings,
# Conditions and Fn::GetAtt created and deleted.
#
#   scripts/e2e/orchestration2.sh   (needs: go, curl, python3-openstackclient, python3-heatclient)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
e2e_start -hypervisor fake -token-ttl 8s
here=scripts/e2e/heat

head -c 65536 /dev/zero >"$tmp/img.raw"
pids=()
os image create --public --disk-format raw --container-format bare --file "$tmp/img.raw" tiny >"$tmp/setup1.out" 2>&1 &
pids+=($!)
{ os flavor create --vcpus 1 --ram 256 --disk 1 m1.tiny && os flavor create --vcpus 2 --ram 512 --disk 1 m1.small; } >"$tmp/setup2.out" 2>&1 &
pids+=($!)
{ os network create --external public && os subnet create --network public --subnet-range 172.24.4.0/24 public-sub; } >"$tmp/setup3.out" 2>&1 &
pids+=($!)
# Thirteen servers at the peak: more than the default quota of ten.
os quota set --instances 30 --cores 60 --ram 65536 "$OS_PROJECT_NAME" >"$tmp/setup4.out" 2>&1 &
pids+=($!)
for p in "${pids[@]}"; do wait "$p" || cat "$tmp"/setup*.out; done

# status NAME: the stack's status once it is no longer in progress.
status() {
	local st
	for _ in $(seq 1 60); do
		st=$(openstack stack show "$1" -f value -c stack_status 2>/dev/null || echo GONE)
		[[ $st == *_IN_PROGRESS ]] || break
		sleep 0.3
	done
	echo "$st"
}
# ids NAME: "resource physical_id" lines, sorted.
ids() { openstack stack resource list "$1" -f value -c resource_name -c physical_resource_id | sort; }
servers() { openstack server list -f value -c ID | sort; }

# Stacks made side by side: the three tiers, the group, the autoscaling
# group (its creator's token expires while the others work).
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
bg three openstack stack create -t $here/three-tier.yaml --parameter image=tiny --parameter public_net=public --wait --poll 1 three
bg asg openstack stack create -t $here/asg.yaml --wait --poll 1 asg
bgwait
expect "three-tier created" "0" cat "$tmp/three.rc"
expect "autoscaling group created" "0" cat "$tmp/asg.rc"
asg_created=$(date +%s)
bg group openstack stack create -t $here/group.yaml -e $here/member-env.yaml --wait --poll 1 group
bg cfn openstack stack create -t $here/cfn.yaml --wait --poll 1 cfn
ids three >"$tmp/ids.before"
servers >"$tmp/servers.before"

# Dry run: what the changed template would do.
openstack stack update --dry-run -t $here/three-tier-update.yaml --existing three -f json >"$tmp/dry.json"
expect "dry-run: web updated, app2 added, nothing replaced or deleted" "added=app2 deleted= replaced= updated=web" python3 -c "
import json,sys
d=json.load(open(sys.argv[1]))
print(' '.join('%s=%s' % (k, ','.join(sorted(r['resource_name'] for r in json.loads(d[k]) if isinstance(d[k], str)) if isinstance(d[k], str) else ','.join(sorted(r['resource_name'] for r in d[k])))) for k in ['added','deleted','replaced','updated']))" "$tmp/dry.json"

# The update: web resized in place, app2 added, every other id kept.
expect "stack update --existing --wait" "UPDATE_COMPLETE" bash -c "openstack stack update -t $here/three-tier-update.yaml --existing --wait three -f value -c stack_status | tail -1"
ids three >"$tmp/ids.after"
expect "every old resource keeps its physical id (web resized in place)" "" bash -c "comm -23 $tmp/ids.before $tmp/ids.after"
expect "one resource added: app2" "app2" bash -c "comm -13 $tmp/ids.before $tmp/ids.after | cut -d' ' -f1"
web=$(awk '$1 == "web" {print $2}' "$tmp/ids.after")
expect "web's flavor is m1.small" "m1.small" bash -c "openstack server show $web -f json | python3 -c 'import json,sys; f=json.load(sys.stdin)[\"flavor\"]; print(f if isinstance(f, str) else f.get(\"original_name\") or f.get(\"name\"))' | sed 's/ (.*//'"

# A failing update (a resource that fails, web back to m1.tiny) rolls back.
sed 's/^resources:/resources:\n  broken: {type: OS::Heat::TestResource, depends_on: app2, properties: {fail: true}}/' $here/three-tier-update.yaml >"$tmp/broken.yaml"
openstack stack update -t "$tmp/broken.yaml" --existing --rollback enabled three >/dev/null
expect "failing update rolls back" "ROLLBACK_COMPLETE" status three
ids three >"$tmp/ids.rolledback"
expect "rollback kept every id" "" diff "$tmp/ids.rolledback" "$tmp/ids.after"
expect "failure and rollback in the events" "UPDATE_FAILED ROLLBACK_COMPLETE" bash -c "openstack stack event list three -f value -c resource_name -c resource_status | awk '\$1 == \"three\" {print \$2}' | grep -E 'UPDATE_FAILED|ROLLBACK_COMPLETE' | tail -2 | tr '\n' ' ' | sed 's/ $//'"

# The group of 5 template resources, scaled to 3.
bgwait
expect "group of 5 created" "0" cat "$tmp/group.rc"
servers >"$tmp/servers.group5"
expect "5 group members named by index" "member-0 member-1 member-2 member-3 member-4" bash -c "openstack server list -f value -c Name | grep ^member- | sort | tr '\n' ' ' | sed 's/ $//'"
openstack stack update --existing --parameter count=3 group >/dev/null
expect "group scaled to 3" "UPDATE_COMPLETE" status group
servers >"$tmp/servers.group3"
expect "exactly 2 servers removed, none added" "2 0" bash -c "echo \$(comm -23 $tmp/servers.group5 $tmp/servers.group3 | wc -l) \$(comm -13 $tmp/servers.group5 $tmp/servers.group3 | wc -l)"
expect "members 3 and 4 went" "member-0 member-1 member-2" bash -c "openstack server list -f value -c Name | grep ^member- | sort | tr '\n' ' ' | sed 's/ $//'"

# Autoscaling through the pre-signed URLs, no token, after the creator's
# token expired.
openstack stack output show asg --all -f json >"$tmp/asg.json"
url() { python3 -c "import json,sys; print(json.loads(json.load(open(sys.argv[1]))[sys.argv[2]])['output_value'])" "$tmp/asg.json" "$1"; }
out_url=$(url out_url)
in_url=$(url in_url)
sleep $((asg_created + 9 - $(date +%s) > 0 ? asg_created + 9 - $(date +%s) : 0))
n0=$(openstack server list -f value -c ID | wc -l)
# nservers N: the number of servers once it is N (or after 15 s).
nservers() {
	local n
	for _ in $(seq 1 30); do
		n=$(openstack server list -f value -c ID | wc -l)
		[[ $n == "$1" ]] && break
		sleep 0.2
	done
	echo "$n"
}
# signal URL: POST without a token, again while the group is still busy
# with its last scaling (409); prints the final HTTP status.
signal() {
	local code
	for _ in $(seq 1 50); do
		code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$1")
		[[ $code == 409 ]] || break
		sleep 0.2
	done
	echo "$code"
}
expect "scale out: POST without a token" "200" signal "$out_url"
expect "scale out added a server" "$((n0 + 1))" nservers $((n0 + 1))
expect "the group's size is 2" "2" openstack stack output show asg size -f value -c output_value
expect "signal during cooldown accepted" "200" signal "$out_url"
expect "cooldown: no server added" "2 $((n0 + 1))" bash -c "echo \$(openstack stack output show asg size -f value -c output_value) \$(openstack server list -f value -c ID | wc -l)"
expect "scale in" "200" signal "$in_url"
expect "scale in removed a server" "$n0" nservers "$n0"
expect "the group's size is 1" "1" openstack stack output show asg size -f value -c output_value
expect "a wrong signature is refused" "404" curl -s -o /dev/null -w '%{http_code}' -X POST "${in_url%/*}/0000"

# CloudFormation.
expect "CloudFormation stack created" "0" cat "$tmp/cfn.rc"
openstack stack show cfn -f json >"$tmp/cfn.json"
cfnout() { python3 -c "import json,sys; print({o['output_key']: o['output_value'] for o in json.load(open(sys.argv[1]))['outputs']}[sys.argv[2]])" "$tmp/cfn.json" "$1"; }
ids cfn >"$tmp/cfn.ids"
srv=$(awk '$1 == "Server" {print $2}' "$tmp/cfn.ids")
expect "Fn::GetAtt PrivateIp is the instance's address" "$(openstack server show "$srv" -f json | python3 -c 'import json,sys; a=json.load(sys.stdin)["addresses"]; print((list(a.values())[0][0]) if isinstance(a, dict) else a.split("=")[1].split(",")[0])')" cfnout Ip
expect "Fn::FindInMap picked m1.small, Condition made Extra, Fn::If" "m1.small yes big" bash -c "echo \$(openstack server show $srv -f json | python3 -c 'import json,sys; f=json.load(sys.stdin)[\"flavor\"]; print(f if isinstance(f, str) else f.get(\"original_name\") or f.get(\"name\"))' | sed 's/ (.*//') \$(grep -q '^Extra ' $tmp/cfn.ids && echo yes) $(cfnout Flavor)"
expect "Fn::GetAtt GroupId is a security group" "web" bash -c "openstack security group show $(cfnout Group) -f value -c description"

# Everything deletes.
openstack stack delete --yes three group asg cfn >/dev/null
for _ in $(seq 1 60); do
	[[ -z $(openstack stack list -f value -c ID) ]] && break
	sleep 0.3
done
expect "every stack deleted" "DELETE_COMPLETE DELETE_COMPLETE" bash -c "echo \$(openstack stack show three -f value -c stack_status) \$(openstack stack show cfn -f value -c stack_status)"
expect "no server or stack left" "0 0" bash -c "echo \$(openstack server list -f value -c ID | wc -l) \$(openstack stack list -f value -c ID | wc -l)"

e2e_done
