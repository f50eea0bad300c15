#!/usr/bin/env bash
# run.sh SCRIPT...: runs the end-to-end scripts, E2E_JOBS (default 2) at a
# time. Scripts marked with a line "# e2e: exclusive" (they hold the host's
# dataplane or libvirt) never run beside each other (a lock), and go first:
# they are the longest. Each script's output is printed whole when it ends,
# with its time; the run fails if any script did.
set -euo pipefail

jobs=${E2E_JOBS:-2}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

shared=()
exclusive=()
for s in "$@"; do
	[[ -f $s && ${s##*/} != lib.sh && ${s##*/} != run.sh ]] || continue
	if grep -q '^# e2e: exclusive' "$s"; then exclusive+=("$s"); else shared+=("$s"); fi
done

# one SCRIPT: runs it into its log (under the exclusive lock when it is
# marked), then prints the log under the print lock.
one() {
	local s=$1 log
	log="$E2E_LOGS/$(basename "$s").log"
	local start=$SECONDS rc=0
	if grep -q '^# e2e: exclusive' "$s"; then
		flock "$E2E_LOGS/exclusive.lock" bash "$s" >"$log" 2>&1 || rc=$?
	else
		bash "$s" >"$log" 2>&1 || rc=$?
	fi
	{
		echo "=== e2e $s"
		cat "$log"
		echo "=== e2e $s: $([[ $rc == 0 ]] && echo ok || echo "FAIL (exit $rc)") in $((SECONDS - start)) s"
	} | flock "$E2E_LOGS/print.lock" cat
	return "$rc"
}
export -f one
export E2E_LOGS=$logs

all=("${exclusive[@]}" "${shared[@]}")
((${#all[@]})) || exit 0
printf '%s\0' "${all[@]}" | xargs -0 -n1 -P "$jobs" bash -c 'one "$1"' _
