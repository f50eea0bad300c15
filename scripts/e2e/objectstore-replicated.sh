#!/usr/bin/env bash
# objectstore.sh, unchanged, with the all-in-one's objects (and image
# data) on a replicated fsobj: three device directories
# (-objects fs:D1,D2,D3), three replicas, the replicator and auditor
# running.
#
#   scripts/e2e/objectstore-replicated.sh   (needs: what objectstore.sh needs)
set -euo pipefail

cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

STRATUS_E2E_OBJECTS="fs:$dir/d1,$dir/d2,$dir/d3" bash scripts/e2e/objectstore.sh
# The all-in-one kept its objects on the three devices, not in DATA/objects.
for d in d1 d2 d3; do
	[[ -f $dir/$d/ring.json && -f $dir/$d/device.json && -f $dir/$d/index.db ]] || { echo "FAIL device $d was not used" >&2; exit 1; }
done
echo "ok   the three devices hold the ring and the objects"
