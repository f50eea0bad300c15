#!/usr/bin/env bash
# End-to-end test of metering (the Gnocchi API) with Debian's
# python3-gnocchiclient (`openstack metric …`) against the all-in-one on the
# fake drivers, polled every second, and its Prometheus listener.
#
#   scripts/e2e/metering.sh     (needs: go, python3-openstackclient, python3-gnocchiclient, curl)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import gnocchiclient' 2>/dev/null || { echo "e2e: apt-get install -y python3-gnocchiclient" >&2; exit 1; }
e2e_start -hypervisor fake -metering-interval 1s

# A field of a JSON object on stdin.
jget() { python3 -c 'import json,sys; v=json.load(sys.stdin); print(v[sys.argv[1]])' "$1"; }

project=$(os project show admin -f value -c id)
head -c 65536 /dev/urandom >"$tmp/img"
# Side by side (each CLI call costs a second of start-up).
pids=()
os flavor create --vcpus 2 --ram 256 --disk 1 m1 >/dev/null & pids+=($!)
os image create --file "$tmp/img" --disk-format raw --container-format bare img >/dev/null & pids+=($!)
os volume create --size 1 v1 >/dev/null & pids+=($!)
(os container create c1 >/dev/null && os object create c1 "$tmp/img" --name o1 >/dev/null) & pids+=($!)
(os network create net >/dev/null && os subnet create --network net --subnet-range 10.0.0.0/24 sub >/dev/null) & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
srv=$(os server create --image img --flavor m1 --network net --wait s1 -f value -c id | tr -d "[:space:]")
volume=$(os volume show v1 -f value -c id)
# Two polls after everything exists.
sleep 2.5

expect "archive-policy list" "ceilometer-high ceilometer-low high low medium stratus" \
	bash -c "openstack metric archive-policy list -f value -c name | sort | xargs"
expect "resource list (types)" "image instance swift_account volume" \
	bash -c "openstack metric resource list -f value -c type | sort -u | xargs"
show=$(os metric resource show "$srv" -f json)
expect "resource show: type" "instance" jget type <<<"$show"
expect "resource show: flavor" "m1" jget flavor_name <<<"$show"
expect "resource show: project" "$project" jget project_id <<<"$show"
expect "measures show vcpus" "2.0" bash -c "openstack metric measures show --resource-id $srv vcpus --granularity 300 -f value -c value | tail -1"
expect "measures show volume.size (max)" "1.0" \
	bash -c "openstack metric measures show --resource-id $volume volume.size --aggregation max --granularity 3600 -f value -c value | tail -1"
expect "measures show storage.objects.size" "65536.0" \
	bash -c "openstack metric measures show --resource-id $project storage.objects.size --aggregation last --granularity 300 -f value -c value | tail -1"
expect "aggregates group-by project" "project_id: $project aggregated 2.0" \
	bash -c "openstack metric aggregates '(aggregate sum (metric vcpus mean))' 'project_id=$project' --resource-type instance --groupby project_id --granularity 3600 -f value -c group -c name -c value | tail -1"
expect "aggregates of one metric" "$srv/memory/max 256.0" \
	bash -c "openstack metric aggregates '(metric memory max)' 'id=$srv' --granularity 300 -f value -c name -c value | tail -1"
expect_fail "measures show, unknown aggregation" os metric measures show --resource-id "$srv" vcpus --aggregation median

# Another project sees none of this.
os project create p2 >/dev/null
os user create u2 --password pw2 --project p2 >/dev/null
os role add --project p2 --user u2 member
expect "tenant's resource list" "" env OS_USERNAME=u2 OS_PASSWORD=pw2 OS_PROJECT_NAME=p2 openstack metric resource list -f value -c id
expect_fail "tenant's resource show of another project" env OS_USERNAME=u2 OS_PASSWORD=pw2 OS_PROJECT_NAME=p2 openstack metric resource show "$srv"

# Prometheus, on port 9180 of the same loopback address.
expect "prometheus vcpus" "2" bash -c "curl -sf http://$listen:9180/metrics | grep '^stratus_vcpus{resource_id=\"$srv\"' | cut -d' ' -f2"

e2e_done
