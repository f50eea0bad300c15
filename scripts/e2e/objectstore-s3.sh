#!/usr/bin/env bash
# objectstore.sh, unchanged, with the all-in-one's objects (and image
# data) on an S3 bucket: starts versitygw (make versitygw, or the binary
# $STRATUS_S3_SERVER names) on a random loopback address with a scratch
# posix directory, runs objectstore.sh with STRATUS_E2E_OBJECTS=s3://…,
# and stops the server.
#
#   scripts/e2e/objectstore-s3.sh   (needs: what objectstore.sh needs, and versitygw)
set -euo pipefail

cd "$(dirname "$0")/../.."
server=${STRATUS_S3_SERVER:-.cache/bin/versitygw-v1.8.0}
[[ -x $server ]] || { echo "e2e: no S3 server at $server: run make versitygw" >&2; exit 1; }

dir=$(mktemp -d)
# The process id keeps scripts run side by side (run.sh) apart.
addr="127.0.$(($$ % 250 + 1)).$((RANDOM % 250 + 1)):7070"
pid=""
cleanup() {
	if [[ -n $pid ]]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

access=e2e-access secret=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir "$dir/root"
"$server" --port "$addr" --access "$access" --secret "$secret" --quiet posix "$dir/root" >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	curl -s -o /dev/null "http://$addr/" && break
	kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; echo "e2e: S3 server exited" >&2; exit 1; }
	sleep 0.1
done
echo "e2e: versitygw on $addr"

# The credentials go through the environment, as an operator would pass
# them, not on the all-in-one's command line.
STRATUS_S3_ACCESS_KEY=$access STRATUS_S3_SECRET_KEY=$secret STRATUS_E2E_OBJECTS="s3://$addr/stratus-e2e" \
	bash scripts/e2e/objectstore.sh
# The all-in-one kept its objects in the bucket (made at its start).
[[ -d $dir/root/stratus-e2e ]] || { echo "FAIL the all-in-one did not use the S3 bucket" >&2; exit 1; }
