#!/usr/bin/env bash
# End-to-end test of the object store with Debian's python3-swiftclient
# and python3-openstackclient against the all-in-one cloud on a random
# loopback address.
#
#   scripts/e2e/objectstore.sh   (needs: go, python3-openstackclient, python3-swiftclient, curl)
#
# STRATUS_E2E_OBJECTS, if set, is the all-in-one's -objects (the backend
# under test; objectstore-s3.sh sets it to an S3 bucket).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
command -v swift >/dev/null || { echo "e2e: swift CLI missing: apt-get install -y python3-swiftclient" >&2; exit 1; }
e2e_start ${STRATUS_E2E_OBJECTS:+-objects "$STRATUS_E2E_OBJECTS"}

cd "$tmp"
storage=$(swift auth | sed -n 's/^export OS_STORAGE_URL=//p')
account=${storage##*/}
[[ "$account" == AUTH_* ]] && ok "storage URL $storage" || bad "storage URL: '$storage'"

# Containers and small objects through openstack.
expect "container create" "c1" os container create c1 -f value -c container
echo "hello object store" >small.txt
expect "object create" "small.txt" os object create c1 small.txt -f value -c object
expect "object show etag" "$(md5sum <small.txt | cut -d' ' -f1)" os object show c1 small.txt -f value -c etag
os object set --property color=blue c1 small.txt
expect "object set property" "{'Color': 'blue'}" os object show c1 small.txt -f value -c properties
expect "container show count" "1" os container show c1 -f value -c object_count
rm -f got.txt
os object save --file got.txt c1 small.txt
expect "object save bytes" "same" bash -c "cmp small.txt got.txt && echo same"

# Large objects: SLO and DLO uploads, downloads byte for byte.
head -c 5000000 /dev/urandom >big.bin
swift upload --use-slo --segment-size 1000000 c1 big.bin >/dev/null
swift upload --segment-size 1500000 --object-name dlo.bin c1 big.bin >/dev/null
expect "slo stat" "True" bash -c "swift stat c1 big.bin | sed -n 's/^ *X-Static-Large-Object: //p'"
expect "dlo manifest" "c1_segments/dlo.bin/" bash -c "swift stat c1 dlo.bin | sed -n 's/^ *Manifest: //p' | cut -d/ -f1-2 | sed 's|$|/|'"
expect "slo length" "5000000" bash -c "swift stat c1 big.bin | sed -n 's/^ *Content Length: //p'"
swift download c1 big.bin -o slo.out >/dev/null
expect "slo download bytes" "same" bash -c "cmp big.bin slo.out && echo same"
swift download c1 dlo.bin -o dlo.out >/dev/null
expect "dlo download bytes" "same" bash -c "cmp big.bin dlo.out && echo same"
expect "segments listed" "9" bash -c "swift list c1_segments | wc -l"

# Listings with prefix and delimiter.
for n in photos/2024/a.jpg photos/2024/b.jpg photos/2025/c.jpg docs/readme.txt; do
	echo "$n" | swift upload --object-name "$n" c1 - >/dev/null
done
expect "list prefix" "photos/2024/a.jpg photos/2024/b.jpg" bash -c "swift list --prefix photos/2024/ c1 | xargs"
expect "list delimiter" "big.bin dlo.bin docs/ photos/ small.txt" bash -c "swift list --delimiter / c1 | xargs"
expect "list prefix+delimiter" "photos/2024/ photos/2025/" bash -c "swift list --prefix photos/ --delimiter / c1 | xargs"
expect "openstack list prefix" "docs/readme.txt" os object list c1 --prefix docs/ -f value -c Name

# Metadata, copy, stat, delete.
swift post -m "Owner:e2e" c1 small.txt
expect "post metadata" "e2e" bash -c "swift stat c1 small.txt | sed -n 's/^ *Meta Owner: //p'"
swift copy -d /c2/copied.txt c1 small.txt >/dev/null 2>&1 || { swift post c2; swift copy -d /c2/copied.txt c1 small.txt >/dev/null; }
expect "copy" "hello object store" swift download c2 copied.txt -o -
expect "account stat containers" "3" bash -c "swift stat | sed -n 's/^ *Containers: //p'"
swift delete c1 big.bin >/dev/null
expect "slo delete removes its segments, not the DLO's" "4" bash -c "swift list c1_segments | wc -l"
expect_fail "deleted object is gone" swift stat c1 big.bin

# Temp URL: works until it expires.
swift post -m "Temp-URL-Key:e2e-secret"
path="/v1/$account/c1/small.txt"
url=$(swift tempurl GET 3 "$path" e2e-secret)
base=${storage%/v1/*}
expect "temp URL GET" "hello object store" curl -sf "$base$url"
expect "temp URL for another object" "401" curl -s -o /dev/null -w '%{http_code}' "$base${url/small.txt/docs\/readme.txt}"
put_url=$(swift tempurl PUT 60 "$path" e2e-secret)
expect "temp URL for PUT cannot GET" "401" curl -s -o /dev/null -w '%{http_code}' "$base$put_url"
sleep 4
expect "temp URL expired" "401" curl -s -o /dev/null -w '%{http_code}' "$base$url"

# Public read without a token; private stays private.
expect "private without token" "401" curl -s -o /dev/null -w '%{http_code}' "$storage/c1/small.txt"
swift post -r '.r:*,.rlistings' c1
expect "public read" "hello object store" curl -sf "$storage/c1/small.txt"
expect "public listing" "docs/readme.txt" bash -c "curl -sf '$storage/c1?prefix=docs/'"

# Isolation: another project's token is refused on a private container.
os project create p2 >/dev/null
os user create u2 --password u2-pw --project p2 >/dev/null
os role add --project p2 --user u2 member
tok2=$(openstack --os-username u2 --os-password u2-pw --os-project-name p2 token issue -f value -c id)
expect "other project on private container" "403" curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $tok2" "$storage/c2/copied.txt"
expect "other project listing" "403" curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $tok2" "$storage/c2"
expect "other project own account" "204" curl -s -o /dev/null -w '%{http_code}' -I -H "X-Auth-Token: $tok2" "${storage%AUTH_*}AUTH_$(openstack project show p2 -f value -c id)"

# Delete everything.
swift delete c1 >/dev/null
swift delete c2 >/dev/null
swift delete c1_segments >/dev/null
expect "containers deleted" "0" bash -c "swift list | wc -l"
caps=$(swift capabilities)
[[ $caps == *slo* && $caps == *tempurl* ]] && ok "capabilities" || bad "capabilities: $caps"

e2e_done
