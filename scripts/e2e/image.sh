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
listed() { u2 image list "$@" -f value -c ID | grep -qx "$id" && echo yes || echo no; }
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
expect "no bytes left behind" "0" bash -c "find '$tmp/data/images' -type f | wc -l"

e2e_done
