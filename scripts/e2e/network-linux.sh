#!/usr/bin/env bash
# The network end-to-end test (network.sh) on the Linux dataplane
# (-network linux: bridges, nftables, router and DHCP namespaces, dnsmasq),
# run inside a private network and mount namespace with its own /run, so
# nothing of the host's network or /run/netns changes.
#
#   scripts/e2e/network-linux.sh        (needs: root, go, python3-openstackclient, dnsmasq)
set -euo pipefail

if [[ $(id -u) != 0 ]]; then
	[[ ${CI:-} == true ]] && { echo "network-linux.sh: CI runs as root" >&2; exit 1; }
	echo "network-linux.sh: skipped: needs root (network namespaces)"
	exit 0
fi
if [[ -z ${STRATUS_E2E_NETNS:-} ]]; then
	exec unshare --net --mount env STRATUS_E2E_NETNS=1 bash "$0" "$@"
fi
mount -t tmpfs stratus-e2e /run
ip link set lo up
# The all-in-one leaves its dataplane (namespaces, dnsmasq) when it stops, as
# a real one must; end every process in the namespaces this run made, so
# nothing outlives the test.
cleanup() {
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
	done
}
trap cleanup EXIT
E2E_NETWORK=linux bash "$(dirname "$0")/network.sh"
