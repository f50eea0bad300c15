#!/usr/bin/env bash
# Boots the tiny guest under QEMU (TCG: nested KVM hangs on these machines)
# with a config drive, a NIC on QEMU's user network and the root disk, and
# checks every marker its init prints.
#
#   scripts/guest/check.sh [GUEST_DIR]    (default .cache/guest; needs
#                                          qemu-system-x86, genisoimage)
set -euo pipefail

dir=${1:-.cache/guest}
for tool in qemu-system-x86_64 genisoimage; do
	command -v "$tool" >/dev/null || { echo "guest check: $tool missing (apt-get install -y qemu-system-x86 genisoimage)" >&2; exit 1; }
done
tmp=$(mktemp -d)
qemu=""
cleanup() {
	[[ -z "$qemu" ]] || kill "$qemu" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/cd/openstack/latest"
cat >"$tmp/cd/openstack/latest/meta_data.json" <<'JSON'
{"uuid": "00000000-0000-0000-0000-000000000001", "keys": [{"name": "k1", "type": "ssh", "data": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample k1"}], "name": "check \"one\"", "hostname": "check-one.novalocal", "public_keys": {"k1": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample k1"}}
JSON
printf '#!/bin/sh\necho "stratus-guest: user_data ran"\n' >"$tmp/cd/openstack/latest/user_data"
genisoimage -quiet -o "$tmp/config.iso" -V config-2 -r -J "$tmp/cd"

start=$(date +%s%N)
qemu-system-x86_64 -accel tcg -m 256 -nographic -no-reboot -nodefaults -serial stdio \
	-kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" -append "console=ttyS0 quiet panic=-1" \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= \
	-drive "file=$dir/root.img,if=virtio,format=raw,readonly=on" \
	-drive "file=$tmp/config.iso,if=virtio,format=raw,readonly=on" \
	-monitor "unix:$tmp/monitor.sock,server,nowait" >"$tmp/console.log" 2>&1 &
qemu=$!

want=("stratus-guest: up" "stratus-guest: ip=10.0.2.15" 'stratus-guest: metadata ok name=check "one"'
	"stratus-guest: user_data ran" "stratus-guest: root ok" "stratus-guest: disks=vda,vdb" "stratus-guest: disk vda bytes=$(stat -c %s "$dir/root.img")")
up=""
for _ in $(seq 1 600); do
	if [[ -z "$up" ]] && grep -qa "stratus-guest: up" "$tmp/console.log"; then
		up=$((($(date +%s%N) - start) / 1000000))
	fi
	grep -qa "stratus-guest: disks=" "$tmp/console.log" && break
	kill -0 "$qemu" 2>/dev/null || break
	sleep 0.05
done
failed=0
for w in "${want[@]}"; do
	if grep -qaxF "$w" <(tr -d '\r' <"$tmp/console.log" | sed 's/^.*\(stratus-guest: \)/\1/'); then
		echo "ok   $w"
	else
		echo "FAIL missing: $w"
		failed=1
	fi
done
if [[ $failed -ne 0 ]]; then
	echo "--- console" && tr -d '\r' <"$tmp/console.log" | tail -30
	exit 1
fi

# The ACPI power button (what virsh shutdown and Nova's stop press) powers
# the guest off at once.
pressed=$(date +%s%N)
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(0.2)
s.sendall(b"system_powerdown\n"); time.sleep(0.3)' "$tmp/monitor.sock"
for _ in $(seq 1 400); do
	kill -0 "$qemu" 2>/dev/null || break
	sleep 0.05
done
if kill -0 "$qemu" 2>/dev/null || ! grep -qa "stratus-guest: power button" "$tmp/console.log"; then
	echo "FAIL the guest did not power off on the ACPI power button within 20 s"
	tr -d '\r' <"$tmp/console.log" | tail -10
	exit 1
fi
qemu=""
echo "ok   stratus-guest: power button (off $((($(date +%s%N) - pressed) / 1000000)) ms after the press)"
echo "guest check: passed; 'up' ${up} ms after QEMU started"
