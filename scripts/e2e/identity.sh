#!/usr/bin/env bash
# End-to-end test of the identity service with Debian's python3-openstackclient
# against the all-in-one cloud on a random loopback address.
#
#   scripts/e2e/identity.sh        (needs: go, python3-openstackclient)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
e2e_start

tok=$(os token issue -f value -c id)
[[ ${#tok} -gt 50 ]] && ok "token issue" || bad "token issue: '$tok'"
expect "token project" "$(os project show admin -f value -c id)" os token issue -f value -c project_id

expect "project create" "p1" os project create p1 --description first -f value -c name
expect "project show" "first" os project show p1 -f value -c description
os project set p1 --description changed
expect "project set" "changed" os project show p1 -f value -c description
expect "project list" "p1" bash -c "openstack project list -f value -c Name | grep -x p1"

expect "user create" "u1" os user create u1 --password pw1 --project p1 --email u1@example.com -f value -c name
expect "user show extra" "u1@example.com" os user show u1 -f value -c email
os user set u1 --description "user one"
expect "user set" "user one" os user show u1 -f value -c description
expect "user list" "u1" bash -c "openstack user list -f value -c Name | grep -x u1"

expect "group create" "g1" os group create g1 -f value -c name
os group add user g1 u1
expect "group contains user" "u1" bash -c "openstack group contains user g1 u1 >/dev/null && echo u1"
os group set g1 --description grp
expect "group show" "grp" os group show g1 -f value -c description
expect "group list" "g1" bash -c "openstack group list -f value -c Name | grep -x g1"

expect "role create" "r1" os role create r1 -f value -c name
expect "role show" "r1" os role show r1 -f value -c name
expect "role list" "member" bash -c "openstack role list -f value -c Name | grep -x member"

os role add --project p1 --user u1 member
expect "role assignment list --names" "member u1@Default p1@Default" \
	bash -c "openstack role assignment list --names --project p1 -f value -c Role -c User -c Project"
expect "catalog list" "keystone identity" bash -c "openstack catalog list -f value -c Name -c Type | grep -x 'keystone identity'"
expect "catalog endpoints" "3" bash -c "openstack endpoint list --service identity -f value -c ID | wc -l"

# The user logs in, changes its password; its old token is then rejected.
u1() { env OS_USERNAME=u1 OS_PASSWORD="$1" OS_PROJECT_NAME=p1 openstack "${@:2}"; }
u1tok=$(u1 pw1 token issue -f value -c id)
[[ -n "$u1tok" ]] && ok "user token issue" || bad "user token issue"
expect "user token valid" "u1" bash -c "curl -sf -H 'X-Auth-Token: $u1tok' -H 'X-Subject-Token: $u1tok' $OS_AUTH_URL/auth/tokens | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"][\"user\"][\"name\"])'"
u1 pw1 user password set --original-password pw1 --password pw2
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $u1tok" -H "X-Subject-Token: $u1tok" "$OS_AUTH_URL/auth/tokens")
[[ "$code" == 401 ]] && ok "old token rejected after password change" || bad "old token after password change: HTTP $code"
expect_fail "old password rejected" u1 pw1 token issue
expect "new password works" "u1" bash -c "env OS_USERNAME=u1 OS_PASSWORD=pw2 OS_PROJECT_NAME=p1 openstack token issue -f value -c user_id | xargs -I{} openstack user show {} -f value -c name"

# A disabled user gets no token.
os user set --disable u1
expect "user disabled" "False" os user show u1 -f value -c enabled
expect_fail "disabled user token issue" u1 pw2 token issue
os user set --enable u1

# Deletes.
os group delete g1
expect_fail "group deleted" os group show g1
os role remove --project p1 --user u1 member
os role delete r1
expect_fail "role deleted" os role show r1
os user delete u1
expect_fail "user deleted" os user show u1
os project delete p1
expect_fail "project deleted" os project show p1

e2e_done
