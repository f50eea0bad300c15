#!/usr/bin/env bash
# Brings up libvirt's qemu:///system on a host without systemd: virtlogd
# (it writes the servers' console logs) and libvirtd, each only when it is
# not running. Idempotent; needs root and libvirt-daemon-system.
#
# /dev/kvm gets the ownership Debian's udev rules give it (root:kvm 0660).
# Without udev it stays root:root 0600: libvirt then finds KVM when it
# probes QEMU but not when it checks the probe, and probes QEMU again (half
# a minute) on every domain definition.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
	echo "libvirtd.sh: run as root to start libvirtd" >&2
	exit 1
fi
for tool in libvirtd virtlogd virsh; do
	command -v "$tool" >/dev/null || { echo "libvirtd.sh: $tool missing (apt-get install -y libvirt-daemon-system libvirt-clients)" >&2; exit 1; }
done
if [[ -c /dev/kvm ]] && getent group kvm >/dev/null; then
	chgrp kvm /dev/kvm
	chmod 0660 /dev/kvm
fi
# The daemons must not inherit the caller's descriptors: a lock file held by
# `flock FILE make vmtest` would otherwise stay locked for their lifetime.
for fd in /proc/$$/fd/*; do
	fd=${fd##*/}
	case $fd in 0 | 1 | 2 | 255) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
done
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x libvirtd >/dev/null || libvirtd -d
for _ in $(seq 1 100); do
	virsh -c qemu:///system version >/dev/null 2>&1 && exit 0
	sleep 0.1
done
echo "libvirtd.sh: qemu:///system does not answer" >&2
exit 1
