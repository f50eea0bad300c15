#!/usr/bin/env bash
# End-to-end test of the image service with Debian's python3-openstackclient
# against the all-in-one cloud on a random loopback address: a 100 MiB
# upload with its checksum, download, properties, tags, protection, sharing
# with another project and the visibility matrix across two projects.
#
#   scripts/e2e/image.sh        (needs: go, python3-openstackclient)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
e2e_start

# A 100 MiB image: the checksum Glance reports is the file's MD5, and the
# download gives back the same bytes.
head -c $((100 << 20)) /dev/urandom >"$tmp/big.raw"
want_md5=$(md5sum "$tmp/big.raw" | cut -d' ' -f1)
os image create --file "$tmp/big.raw" --disk-format raw --container-format bare big >/dev/null
expect "image create --file" "active" os image show big -f value -c status
expect "checksum is the md5" "$want_md5" os image show big -f value -c checksum
expect "size" "$((100 << 20))" os image show big -f value -c size
os image save --file "$tmp/big.out" big
cmp -s "$tmp/big.raw" "$tmp/big.out" && ok "image save gives identical bytes" || bad "image save: bytes differ"
rm -f "$tmp/big.out"

os image set --property os_distro=stratus --tag golden --protected big
expect "property set" "stratus" bash -c "openstack image show big -f json -c properties | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"properties\"][\"os_distro\"])'"
expect "tag set" "golden" bash -c "openstack image show big -f json -c tags | python3 -c 'import json,sys; print(*json.load(sys.stdin)[\"tags\"])'"
expect "protected" "True" os image show big -f value -c protected
expect_fail "delete refused while protected" os image delete big
expect "still there" "active" os image show big -f value -c status
os image set --unprotected big
os image delete big
expect_fail "deleted" os image show big

# Bad data is refused: a qcow2 header declared raw, and a qcow2 with a
# backing file.
printf 'QFI\xfb\x00\x00\x00\x03' >"$tmp/fake.raw"
head -c 4096 /dev/zero >>"$tmp/fake.raw"
expect_fail "qcow2 bytes declared raw refused" os image create --file "$tmp/fake.raw" --disk-format raw --container-format bare fake
printf 'QFI\xfb\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x10' >"$tmp/backing.qcow2"
head -c 4096 /dev/zero >>"$tmp/backing.qcow2"
expect_fail "qcow2 with a backing file refused" os image create --file "$tmp/backing.qcow2" --disk-format qcow2 --container-format bare backing
expect "nothing stored" "0" bash -c "find '$tmp/data/images' -type f | wc -l"

# Glance's errors for a malformed JSON patch, an unknown disk format and a
# bad checksum.
token=$(os token issue -f value -c id)
glance=$(os endpoint list --service image --interface public -f value -c URL)
code() { curl -s -o "$tmp/body" -w '%{http_code}' -H "X-Auth-Token: $token" "$@"; }
# (not the CLI: without --file it uploads its stdin)
gid=$(curl -sf -H "X-Auth-Token: $token" -H 'Content-Type: application/json' -d '{"name":"errors","disk_format":"raw","container_format":"bare"}' "$glance/v2/images" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
expect "malformed JSON patch is 400" "400" code -X PATCH -H 'Content-Type: application/openstack-images-v2.1-json-patch' -d '{"op":"replace"}' "$glance/v2/images/$gid"
expect "unknown disk format is 400" "400" code -X POST -H 'Content-Type: application/json' -d '{"name":"x","disk_format":"floppy"}' "$glance/v2/images"
expect "bad checksum is 400" "400" code -X PUT -H 'Content-Type: application/octet-stream' -H "Content-MD5: $(printf '0%.0s' {1..32})" --data-binary @"$tmp/fake.raw" "$glance/v2/images/$gid/file"
expect "bad checksum leaves the image queued" "queued" os image show "$gid" -f value -c status
os image delete "$gid"

# A kernel (aki), a ramdisk (ari) and a root disk (ami) linked by kernel_id
# and ramdisk_id, as compute boots them: the tiny guest when it is built
# (make guest), else stand-ins with the same leading bytes (a bzImage's
# boot signature, a gzip header, an empty ext4 disk).
guest=${GUEST:-.cache/guest}
if [[ -f "$guest/vmlinuz" ]]; then
	kernel=$guest/vmlinuz ramdisk=$guest/initrd.img root=$guest/root.img
else
	kernel=$tmp/vmlinuz ramdisk=$tmp/initrd.img root=$tmp/root.img
	python3 -c 'import sys; b=bytearray(8192); b[0:2]=b"MZ"; b[446:510]=b"\xff"*64; b[510:512]=b"\x55\xaa"; sys.stdout.buffer.write(bytes(b))' >"$kernel"
	printf '\x1f\x8b\x08\x00' >"$ramdisk" && head -c 8192 /dev/urandom >>"$ramdisk"
	head -c $((4 << 20)) /dev/zero >"$root"
fi
aki=$(os image create --public --disk-format aki --container-format aki --file "$kernel" tiny-kernel -f value -c id)
ari=$(os image create --public --disk-format ari --container-format ari --file "$ramdisk" tiny-ramdisk -f value -c id)
os image create --public --disk-format ami --container-format ami --file "$root" --property kernel_id="$aki" --property ramdisk_id="$ari" tiny >/dev/null
expect "aki active" "active" os image show "$aki" -f value -c status
expect "ari active" "active" os image show "$ari" -f value -c status
expect "ami active" "active" os image show tiny -f value -c status
expect "ami kernel_id" "$aki" bash -c "openstack image show tiny -f json -c properties | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"properties\"][\"kernel_id\"])'"
expect "kernel checksum" "$(md5sum <"$kernel" | cut -d' ' -f1)" os image show "$aki" -f value -c checksum

# Two projects, one user each.
os project create p1 >/dev/null
os project create p2 >/dev/null
os user create u1 --password pw1 --project p1 >/dev/null
os user create u2 --password pw2 --project p2 >/dev/null
os role add --project p1 --user u1 member
os role add --project p2 --user u2 member
p2id=$(os project show p2 -f value -c id)
u1() { env OS_USERNAME=u1 OS_PASSWORD=pw1 OS_PROJECT_NAME=p1 openstack "$@"; }
u2() { env OS_USERNAME=u2 OS_PASSWORD=pw2 OS_PROJECT_NAME=p2 openstack "$@"; }
# (the list goes to a file first: grep -q in a pipe would end the CLI with
# SIGPIPE and fail the pipeline under pipefail)
listed() { u2 image list "$@" -f value -c ID >"$tmp/list.out" && grep -qx "$id" "$tmp/list.out" && echo yes || echo no; }
shown() { u2 image show "$id" -f value -c id >/dev/null 2>&1 && echo yes || echo no; }

head -c 65536 /dev/urandom >"$tmp/small.raw"
id=$(u1 image create --file "$tmp/small.raw" --disk-format raw --container-format bare --private shared1 -f value -c id)
expect "private: hidden from p2 (show)" "no" shown
expect "private: hidden from p2 (list)" "no" listed
expect_fail "private: member refused" u1 image add project "$id" "$p2id"

u1 image set --shared "$id"
expect "image add project" "pending" u1 image add project "$id" "$p2id" -f value -c status
expect "shared pending: p2 can show" "yes" shown
expect "shared pending: not in p2's list" "no" listed
expect "shared pending: in p2's pending list" "yes" listed --member-status pending
expect_fail "owner cannot accept for p2" u1 image set --accept --project "$p2id" "$id"
u2 image set --accept "$id"
expect "member accepted" "accepted" bash -c "openstack image member list $id -f value -c Status"
expect "shared accepted: in p2's list" "yes" listed
expect "shared accepted: p2 downloads" "$(md5sum <"$tmp/small.raw" | cut -d' ' -f1)" bash -c "env OS_USERNAME=u2 OS_PASSWORD=pw2 OS_PROJECT_NAME=p2 openstack image save $id | md5sum | cut -d' ' -f1"
expect_fail "p2 cannot change p1's image" u2 image set --property x=y "$id"
expect_fail "p2 cannot delete p1's image" u2 image delete "$id"

u1 image set --community "$id"
expect "community: p2 can show" "yes" shown
expect "community: not in p2's default list" "no" listed
expect "community: in p2's community list" "yes" listed --community

expect_fail "public needs admin" u1 image set --public "$id"
os image set --public "$id"
expect "public: in p2's list" "yes" listed
expect "public: p2 can show" "yes" shown

u1 image set --private "$id"
expect "private again: hidden from p2" "no" shown

# Deactivate (admin) blocks downloads for the owner.
os image set --deactivate "$id"
expect "deactivated" "deactivated" u1 image show "$id" -f value -c status
expect_fail "deactivated: owner download refused" u1 image save --file "$tmp/x" "$id"
os image set --activate "$id"
expect "reactivated" "active" u1 image show "$id" -f value -c status

u1 image delete "$id"
os image delete tiny tiny-kernel tiny-ramdisk
expect "no bytes left behind" "0" bash -c "find '$tmp/data/images' -type f | wc -l"

e2e_done
