#!/usr/bin/env bash
# Builds the tiny Stratus guest from Debian packages only (no other
# downloads): Debian's cloud kernel, its virtio modules and busybox-static.
#
#   scripts/guest/build.sh [OUT]      (default OUT: .cache/guest)
#
# OUT receives:
#   vmlinuz     the kernel (registered as an aki)
#   initrd.img  the initramfs holding the whole guest (an ari)
#   root.img    a small ext4 root disk made with mke2fs -d (an ami)
#   VERSION     what was built; when it matches, the script does nothing.
#
# The guest's init loads the virtio modules, prints markers on the serial
# console, configures eth0 by DHCP, reads the config drive (label config-2)
# or the metadata service, installs the public keys, and reports its disks:
#   stratus-guest: up
#   stratus-guest: cpus=<n> mem_mb=<MemTotal in MiB>   (what the guest sees)
#   stratus-guest: ip=<addr>
#   stratus-guest: metadata ok name=<server name>
#   stratus-guest: disks=vda,vdb,...   (again whenever the set changes)
#   stratus-guest: disk vdc bytes=<size>   (each disk that appears)
#   stratus-guest: disk vdc removed        (each disk that goes)
#   stratus-guest: power button            (ACPI power button: it powers off)
# Needs: apt-get (with package lists), dpkg-deb, cpio, gzip, mke2fs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-.cache/guest}
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in apt-get apt-cache dpkg-deb cpio gzip mke2fs; do
	command -v "$tool" >/dev/null || { echo "guest: $tool missing (apt-get install -y cpio e2fsprogs)" >&2; exit 1; }
done

# The kernel Debian's linux-image-cloud-amd64 points at today (reading the
# package lists first when this machine has none and we may).
if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
	apt-get update -qq
fi
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1)
[[ -n "$kpkg" ]] || { echo "guest: cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2; exit 1; }
kver=${kpkg#linux-image-}
version="$kver $(cat "$here/build.sh" "$here/init" "$here/udhcpc.script" | sha256sum | cut -c1-16)"
if [[ -f "$out/VERSION" && "$(cat "$out/VERSION")" == "$version" && -f "$out/vmlinuz" && -f "$out/initrd.img" && -f "$out/root.img" ]]; then
	echo "guest: up to date in $out ($version)"
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
echo "guest: building $kpkg + busybox-static into $out"
(cd "$work" && apt-get download -q "$kpkg" busybox-static >/dev/null 2>"$work/apt.err") || { cat "$work/apt.err" >&2; exit 1; }
dpkg-deb -x "$work"/linux-image-*.deb "$work/k"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/bb"

# The initramfs: busybox, the init, the DHCP script and, in load order, the
# modules the kernel has as modules (a wrong order fails with "Unknown symbol").
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,mnt,run,etc,root,lib/modules}
cp "$work/bb/bin/busybox" "$root/bin/busybox"
install -m 755 "$here/init" "$root/init"
install -m 755 "$here/udhcpc.script" "$root/etc/udhcpc.script"
# busybox acpid runs /etc/acpi/PWRF/00000080 on the power button.
mkdir -p "$root/etc/acpi/PWRF"
printf '#!/bin/sh\necho "stratus-guest: power button" >/dev/console\nsync\npoweroff -f\n' >"$root/etc/acpi/PWRF/00000080"
chmod 755 "$root/etc/acpi/PWRF/00000080"
# busybox-static's wget resolves through glibc, which wants these.
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
# button and evdev give busybox's acpid the ACPI power button, so a clean
# shutdown (virsh shutdown, Nova's stop) ends the guest at once instead of
# after the hypervisor's timeout.
mods=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net virtio_blk cdrom isofs button evdev)
: >"$root/lib/modules/order"
for m in "${mods[@]}"; do
	f=$(find "$work/k/lib/modules/$kver" -name "$m.ko" -o -name "$m.ko.xz" | head -n1)
	[[ -n "$f" ]] || { echo "guest: module $m not in $kpkg" >&2; exit 1; }
	cp "$f" "$root/lib/modules/"
	echo "${f##*/}" >>"$root/lib/modules/order"
done
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9) >"$work/initrd.img"

# The root disk: the same tree and a marker, as ext4 without a loop mount.
echo "stratus tiny guest root $version" >"$root/etc/stratus-root"
mke2fs -q -t ext4 -L stratus-root -d "$root" "$work/root.img" 16M

cp "$work/k/boot/vmlinuz-$kver" "$work/vmlinuz"
for f in vmlinuz initrd.img root.img; do
	chmod 644 "$work/$f"
	mv "$work/$f" "$out/$f"
done
echo "$version" >"$out/VERSION"
echo "guest: built $out ($(du -sh "$out" | cut -f1))"
