#!/usr/bin/env bash
# End-to-end test of alarms (the Aodh API) with Debian's python3-aodhclient
# (`openstack alarm …`) and of rating, against the all-in-one on the fake
# drivers, polled and evaluated every second: an alarm on a server's vcpus
# goes to alarm and posts a signed webhook that a local receiver verifies.
#
#   scripts/e2e/metering2.sh     (needs: go, python3-openstackclient, python3-aodhclient, curl)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import aodhclient' 2>/dev/null || { echo "e2e: apt-get install -y python3-aodhclient" >&2; exit 1; }
e2e_start -hypervisor fake -metering-interval 1s -alarm-interval 1s

# A webhook receiver on the same loopback address: it writes each body and
# its signature header to $tmp/hook.
hookport=$((20000 + RANDOM % 20000))
cat >"$tmp/hook.py" <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[3], "ab") as f:
            f.write(self.headers["X-Stratus-Signature"].encode() + b"\n" + body + b"\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
EOF
python3 "$tmp/hook.py" "$listen" "$hookport" "$tmp/hook" &
hookpid=$!
trap 'kill $hookpid 2>/dev/null || true; e2e_cleanup' EXIT

pids=()
os flavor create --vcpus 2 --ram 256 --disk 1 m1 >/dev/null & pids+=($!)
head -c 4096 /dev/urandom >"$tmp/img"
os image create --file "$tmp/img" --disk-format raw --container-format bare img >/dev/null & pids+=($!)
os network create net >/dev/null && os subnet create --network net --subnet-range 10.0.0.0/24 sub >/dev/null
for p in "${pids[@]}"; do wait "$p"; done
srv=$(os server create --image img --flavor m1 --network net --wait s1 -f value -c id | tr -d "[:space:]")

alarm=$(os alarm create --name vcpus-high --type gnocchi_resources_threshold --metric vcpus --resource-type instance \
	--resource-id "$srv" --aggregation-method mean --granularity 300 --threshold 1 --comparison-operator gt \
	--evaluation-periods 1 --severity critical --alarm-action "http://$listen:$hookport/hook" -f json)
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["alarm_id"])' <<<"$alarm")
expect "alarm create: fields" "vcpus-high critical vcpus gt 1.0 $srv" python3 -c '
import json,sys; a=json.load(sys.stdin)
print(a["name"], a["severity"], a["metric"], a["comparison_operator"], a["threshold"], a["resource_id"])' <<<"$alarm"
expect "alarm list" "vcpus-high" bash -c "openstack alarm list -f value -c name"
expect_fail "alarm create: host not allowed" os alarm create --name bad --type gnocchi_resources_threshold --metric vcpus \
	--resource-id "$srv" --threshold 1 --alarm-action http://example.com/hook

# The evaluator turns it on within a few seconds (a poll, then an evaluation).
for _ in $(seq 1 50); do
	[[ "$(os alarm state get "$id" -f value -c state)" == alarm ]] && break
	sleep 0.3
done
expect "alarm state get" "alarm" os alarm state get "$id" -f value -c state
show=$(os alarm show "$id" -f json)
expect "alarm show: state and type" "alarm gnocchi_resources_threshold" python3 -c '
import json,sys; a=json.load(sys.stdin); print(a["state"], a["type"])' <<<"$show"
expect "alarm-history show" "state transition creation" bash -c "openstack alarm-history show $id -f value -c type | xargs"
# The webhook's signature verifies with the alarm's secret.
for _ in $(seq 1 30); do [[ -s "$tmp/hook" ]] && break; sleep 0.2; done
expect "webhook signed" "alarm vcpus-high ok" python3 -c '
import hmac, hashlib, json, sys
secret = json.loads(sys.argv[1])["webhook_secret"]
sig, body = open(sys.argv[2], "rb").read().split(b"\n")[:2]
parts = dict(p.split("=", 1) for p in sig.decode().split(","))
want = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
n = json.loads(body)
print(n["current"], n["alarm_name"], "ok" if hmac.compare_digest(want, parts["v1"]) else "BAD")' "$show" "$tmp/hook"

# Rating: the server's vCPUs and RAM, rated since its creation.
token=$(os token issue -f value -c id)
project=$(os project show admin -f value -c id)
rate="http://$listen:8777/v1/rating/report?project_id=$project"
expect "rating report (json)" "EUR instance vcpu 2 ram 0.25" bash -c "curl -sf -H 'X-Auth-Token: $token' '$rate' | python3 -c '
import json,sys; r=json.load(sys.stdin); p=r[\"projects\"][0]
s=[x for x in p[\"resources\"] if x[\"resource_id\"]==\"$srv\"][0]; l={x[\"item\"]: x for x in s[\"lines\"]}
assert r[\"total\"] == sum(x[\"amount\"] for x in p[\"resources\"]) >= 0
print(r[\"currency\"], s[\"resource_type\"], \"vcpu\", l[\"vcpu\"][\"quantity\"], \"ram\", l[\"ram\"][\"quantity\"])'"
expect "rating report (csv)" "grand total,EUR" bash -c "curl -sf -H 'X-Auth-Token: $token' '$rate&format=csv' | tail -1 | cut -d, -f4,12"
expect "rating report without a token" "401" curl -s -o /dev/null -w '%{http_code}' "$rate"

os alarm state set --state ok "$id" >/dev/null
os alarm delete vcpus-high # by name: aodhclient finds it with POST /v2/query/alarms
expect_fail "alarm show after delete" os alarm show "$id"

e2e_done
