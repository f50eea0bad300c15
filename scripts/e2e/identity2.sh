#!/usr/bin/env bash
# End-to-end test of identity II (application credentials, trusts, security
# compliance) with Debian's python3-openstackclient against the all-in-one.
#
#   scripts/e2e/identity2.sh        (needs: go, python3-openstackclient)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
e2e_start -lockout-failure-attempts 3 -lockout-duration 10s -unique-last-password-count 3

os project create p1 >/dev/null
p1=$(os project show p1 -f value -c id)
os user create u1 --password pw1 --project p1 >/dev/null
os user create u2 --password pw2 --project p1 >/dev/null
u1id=$(os user show u1 -f value -c id)
os role add --project p1 --user u1 member
os role add --project p1 --user u2 member

# as USER PASSWORD CMD...: run openstack as a user scoped to p1.
as() { env OS_USERNAME="$1" OS_PASSWORD="$2" OS_PROJECT_NAME=p1 openstack "${@:3}"; }
# bare CMD...: run openstack with only the auth URL from the environment.
bare() { env -i PATH="$PATH" HOME="$HOME" OS_AUTH_URL="$OS_AUTH_URL" OS_IDENTITY_API_VERSION=3 OS_REGION_NAME="$OS_REGION_NAME" openstack "$@"; }

# Application credentials.
acid=$(as u1 pw1 application credential create ac1 --secret s3cret-ac --role member --description "ci job" -f value -c id)
[[ ${#acid} -eq 32 ]] && ok "application credential create" || bad "application credential create: '$acid'"
expect "application credential list" "ac1" bash -c "env OS_USERNAME=u1 OS_PASSWORD=pw1 OS_PROJECT_NAME=p1 openstack application credential list -f value -c Name | grep -x ac1"
expect "application credential show" "$p1" as u1 pw1 application credential show ac1 -f value -c project_id
expect "application credential roles" "member" as u1 pw1 application credential show ac1 -f value -c roles
appcred() { bare --os-auth-type v3applicationcredential --os-application-credential-id "$acid" --os-application-credential-secret "$1" "${@:2}"; }
expect "token from application credential: user" "$u1id" appcred s3cret-ac token issue -f value -c user_id
expect "token from application credential: project" "$p1" appcred s3cret-ac token issue -f value -c project_id
expect_fail "application credential with a wrong secret" appcred wrong-secret token issue
expect "application credential by name" "$u1id" bare --os-auth-type v3applicationcredential --os-application-credential-name ac1 \
	--os-application-credential-secret s3cret-ac --os-username u1 --os-user-domain-name Default token issue -f value -c user_id
as u1 pw1 application credential delete ac1
expect "application credential delete" "" bash -c "env OS_USERNAME=u1 OS_PASSWORD=pw1 OS_PROJECT_NAME=p1 openstack application credential list -f value -c Name | grep -x ac1 || true"
expect_fail "deleted application credential authenticates" appcred s3cret-ac token issue

# Access rules: a credential allowed only GET /v3/users/* on identity.
acr=$(as u1 pw1 application credential create ac2 --secret s3cret-ar --access-rules '[{"service":"identity","method":"GET","path":"/v3/users/*"}]' -f value -c id)
ruled() { bare --os-auth-type v3applicationcredential --os-application-credential-id "$acr" --os-application-credential-secret s3cret-ar "$@"; }
expect "access rule allows" "u1" ruled user show "$u1id" -f value -c name
if out=$(ruled project list 2>&1); then bad "access rule refuses: listed projects"; elif [[ "$out" == *"HTTP 401"* ]]; then ok "access rule refuses (401)"; else bad "access rule refuses: $out"; fi
as u1 pw1 application credential delete ac2

# Trusts: u1 delegates member on p1 to u2, impersonating.
tid=$(as u1 pw1 trust create --project p1 --role member --impersonate u1 u2 -f value -c id)
[[ ${#tid} -eq 32 ]] && ok "trust create" || bad "trust create: '$tid'"
expect "trust list" "$tid" bash -c "env OS_USERNAME=u1 OS_PASSWORD=pw1 OS_PROJECT_NAME=p1 openstack trust list -f value -c ID | grep -x $tid"
expect "trust show" "$p1" as u1 pw1 trust show "$tid" -f value -c project_id
expect "trust show impersonation" "True" as u1 pw1 trust show "$tid" -f value -c impersonation
trusted() { bare --os-username u2 --os-password pw2 --os-user-domain-name Default --os-trust-id "$tid" "$@"; }
expect "trust-scoped token: project" "$p1" trusted token issue -f value -c project_id
expect "trust-scoped token: user (impersonation)" "$u1id" trusted token issue -f value -c user_id
expect_fail "trust used by another user" bare --os-username admin --os-password "$OS_PASSWORD" --os-user-domain-name Default --os-trust-id "$tid" token issue
as u1 pw1 trust delete "$tid"
expect_fail "trust show after delete" as u1 pw1 trust show "$tid"
expect_fail "deleted trust gives no token" trusted token issue

# Lockout after 3 failures, released after 10 s.
os user create u3 --password pw3 >/dev/null
u3() { bare --os-username u3 --os-password "$1" --os-user-domain-name Default token issue -f value -c user_id; }
for _ in 1 2 3; do u3 wrong >/dev/null 2>&1 || true; done
if out=$(u3 pw3 2>&1); then bad "locked user logged in: $out"; elif [[ "$out" == *"The account is locked for user"* ]]; then ok "lockout"; else bad "lockout message: $out"; fi
sleep 10
expect "lockout released" "$(os user show u3 -f value -c id)" u3 pw3

# Password history: the last 2 passwords may not be reused.
as u1 pw1 user password set --original-password pw1 --password pw1-b
if out=$(as u1 pw1-b user password set --original-password pw1-b --password pw1 2>&1); then
	bad "password reuse accepted"
elif [[ "$out" == *"cannot be identical to a previous password"* ]]; then ok "password history refuses reuse"; else bad "password history message: $out"; fi
as u1 pw1-b user password set --original-password pw1-b --password pw1-c
expect "new password works" "$u1id" as u1 pw1-c token issue -f value -c user_id

e2e_done
