#!/usr/bin/env bash
# fuzz.sh FUZZTIME JOBS: runs every Fuzz target of the module for FUZZTIME,
# JOBS targets at a time with one fuzzing worker each (so each target has a
# core of its own on a machine with JOBS cores). Each target's output is
# printed whole when it ends; the run fails if any target found a failure.
set -euo pipefail

fuzztime=${1:-15s}
jobs=${2:-2}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

targets=()
for pkg in $(go list ./...); do
	for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		targets+=("$pkg $f")
	done
done
echo "fuzz: ${#targets[@]} targets, $fuzztime each, $jobs at a time"

one() {
	local pkg=${1% *} f=${1#* } log rc=0
	log="$FUZZ_LOGS/${pkg//\//_}.$f.log"
	go test -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZ_TIME" -parallel 1 "$pkg" >"$log" 2>&1 || rc=$?
	{
		echo "=== fuzz $pkg $f ($FUZZ_TIME)"
		cat "$log"
	} | flock "$FUZZ_LOGS/print.lock" cat
	return "$rc"
}
export -f one
export FUZZ_LOGS=$logs FUZZ_TIME=$fuzztime

printf '%s\0' "${targets[@]}" | xargs -0 -n1 -P "$jobs" bash -c 'one "$1"' _
