#!/usr/bin/env bash
# End-to-end test of real servers: the all-in-one on libvirt (qemu:///system)
# boots the tiny guest, which it registered at start as stratus-tiny, through
# Debian's python3-openstackclient; volume hot-plug the guest sees; stop,
# start, reboot and delete.
#
#   scripts/e2e/libvirt.sh   (needs root, libvirtd running: scripts/libvirtd.sh,
#                             and the guest: make guest)
#
# Outside CI it skips when libvirtd does not answer or the guest is not built.
# e2e: exclusive (it boots real guests on the host's libvirtd)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

skip() {
	if [[ "${CI:-}" == true ]]; then echo "e2e libvirt: $*" >&2; exit 1; fi
	echo "e2e libvirt: skipped: $*"
	exit 0
}
[[ -f .cache/guest/root.img ]] || skip "the tiny guest is not built (make guest)"
virsh -c qemu:///system version >/dev/null 2>&1 || skip "libvirtd does not answer at qemu:///system (scripts/libvirtd.sh)"

# QEMU's user must reach the servers' disks under DATA/libvirt.
chmod 755 "$tmp"
e2e_start -hypervisor libvirt -guest .cache/guest

# console_has NAME TEXT: wait up to a minute for TEXT on NAME's console.
console_has() {
	for _ in $(seq 1 600); do
		# Captured whole: grep -q at the end of a pipe would kill the CLI
		# with SIGPIPE, and pipefail would call the match a miss.
		[[ $(os console log show "$1" 2>/dev/null) == *"$2"* ]] && return 0
		sleep 0.1
	done
	return 1
}
count_up() { os console log show "$1" | grep -c "stratus-guest: up" || true; }

expect "image stratus-tiny is active" "active" os image show stratus-tiny -f value -c status
os flavor create --vcpus 1 --ram 256 --disk 1 tiny >/dev/null
os --os-compute-api-version 2.37 server create --image stratus-tiny --flavor tiny --config-drive true --nic none --wait vm1 >/dev/null
expect "server create --wait" "ACTIVE" os server show vm1 -f value -c status
id=$(os server show vm1 -f value -c id)
if console_has vm1 "stratus-guest: metadata ok name=vm1"; then ok "guest up with its config drive"; else bad "no metadata marker: $(os console log show vm1 | tail -5)"; fi
expect "domain running" "running" virsh -c qemu:///system domstate "$id"

# Volume hot-plug: server add volume, and the guest reports the new disk
# with the volume's size; server remove volume, and it reports it gone.
volume_is() { for _ in $(seq 1 150); do [[ $(os volume show "$1" -f value -c status) == "$2" ]] && return 0; sleep 0.2; done; return 1; }
os volume create --size 1 vol1 >/dev/null
volume_is vol1 available || bad "vol1 is not available"
dev=$(os server add volume vm1 vol1 -f value -c Device)
dev=${dev#/dev/}
if console_has vm1 "stratus-guest: disk $dev bytes=1073741824"; then ok "the guest sees $dev with 1 GiB"; else bad "no disk $dev on the console: $(os console log show vm1 | tail -5)"; fi
if volume_is vol1 in-use; then ok "vol1 in-use"; else bad "vol1 is $(os volume show vol1 -f value -c status)"; fi
os server remove volume vm1 vol1
if console_has vm1 "stratus-guest: disk $dev removed"; then ok "the guest saw $dev go"; else bad "$dev not removed on the console: $(os console log show vm1 | tail -5)"; fi
if volume_is vol1 available; then ok "vol1 available again"; else bad "vol1 is $(os volume show vol1 -f value -c status)"; fi

os server stop vm1
for _ in $(seq 1 300); do [[ $(os server show vm1 -f value -c status) == SHUTOFF ]] && break; sleep 0.2; done
expect "stop" "SHUTOFF" os server show vm1 -f value -c status
expect "domain shut off" "shut off" virsh -c qemu:///system domstate "$id"
os server start vm1
for _ in $(seq 1 300); do [[ $(os server show vm1 -f value -c status) == ACTIVE ]] && break; sleep 0.2; done
if console_has vm1 "stratus-guest: up" && for _ in $(seq 1 600); do [[ $(count_up vm1) -ge 2 ]] && break; sleep 0.1; done && [[ $(count_up vm1) -ge 2 ]]; then
	ok "start boots the guest again"
else
	bad "start: $(count_up vm1) boots"
fi
os server reboot --hard vm1
for _ in $(seq 1 600); do [[ $(count_up vm1) -ge 3 ]] && break; sleep 0.1; done
expect "hard reboot boots the guest again" "3" count_up vm1

os server delete --wait vm1
expect_fail "no domain left" virsh -c qemu:///system domstate "$id"
expect "no server files left" "" ls "$tmp/data/libvirt/domains"
e2e_done
