# shellcheck shell=bash
# Shared by the end-to-end scripts: start the all-in-one on a random loopback
# address with a fresh data directory, source its admin credentials, and
# count checks. Source it from a script that runs with set -euo pipefail:
#
#   source "$(dirname "$0")/lib.sh"
#   e2e_start [extra allinone flags...]
#   expect "name" "want" cmd args...
#   e2e_done
#
# It leaves $tmp (a scratch directory removed at exit), $listen (the
# address) and $server (the all-in-one's pid).

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
command -v openstack >/dev/null || { echo "e2e: openstack CLI missing: apt-get install -y python3-openstackclient" >&2; exit 1; }

tmp=$(mktemp -d)
# The process id keeps scripts run side by side (run.sh) apart.
listen="127.0.$(($$ % 250 + 1)).$((RANDOM % 250 + 1))"
server=""
passed=0
failed=0

e2e_cleanup() {
	if [[ -n "$server" ]]; then
		kill "$server" 2>/dev/null || true
		wait "$server" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap e2e_cleanup EXIT

# e2e_start FLAGS...: build and start the all-in-one, wait for it, source
# admin-openrc.sh.
e2e_start() {
	go build -o "$tmp/allinone" ./examples/allinone
	"$tmp/allinone" -data "$tmp/data" -listen "$listen" -log-level warn -network "${E2E_NETWORK:-fake}" "$@" >"$tmp/out.log" 2>"$tmp/err.log" &
	server=$!
	for _ in $(seq 1 300); do
		grep -q "stratus: ready" "$tmp/out.log" 2>/dev/null && break
		kill -0 "$server" 2>/dev/null || { cat "$tmp/err.log" >&2; echo "server exited" >&2; exit 1; }
		sleep 0.1
	done
	grep -q "stratus: ready" "$tmp/out.log" || { echo "server not ready" >&2; cat "$tmp/err.log" >&2; exit 1; }
	# shellcheck disable=SC1091
	source "$tmp/data/admin-openrc.sh"
}

ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
# expect NAME WANT CMD...: the command's output must be WANT.
expect() {
	local name=$1 want=$2 got
	shift 2
	if got=$("$@" 2>"$tmp/cmd.err"); [[ "$got" == "$want" ]]; then
		ok "$name"
	else
		bad "$name: got '$got', want '$want' $(head -c 300 "$tmp/cmd.err")"
	fi
}
# expect_fail NAME CMD...: the command must fail.
expect_fail() {
	local name=$1
	shift
	if "$@" >"$tmp/cmd.out" 2>&1; then bad "$name: succeeded: $(head -c 300 "$tmp/cmd.out")"; else ok "$name"; fi
}
os() { openstack "$@"; }

# e2e_done: print the tally; fail the script if any check failed.
e2e_done() {
	echo "$passed passed, $failed failed"
	[[ $failed -eq 0 ]]
}
