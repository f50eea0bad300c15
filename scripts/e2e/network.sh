#!/usr/bin/env bash
# End-to-end test of the network service with Debian's python3-openstackclient
# against the all-in-one cloud (fake dataplane) on a random loopback address.
#
#   scripts/e2e/network.sh        (needs: go, python3-openstackclient)
#
# As root it runs on the Linux dataplane instead (network-linux.sh: the same
# checks inside a private network namespace); E2E_NETWORK=fake keeps the fake.
set -euo pipefail

if [[ $(id -u) == 0 && -z ${E2E_NETWORK:-} ]]; then
	exec bash "$(dirname "$0")/network-linux.sh"
fi

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
e2e_start   # -network fake unless E2E_NETWORK says (network-linux.sh)

expect "catalog has neutron" "neutron network" bash -c "openstack catalog list -f value -c Name -c Type | grep -x 'neutron network'"

# Provider networks (admin).
expect "provider vlan network" "vlan physnet1 100" bash -c "openstack network create vl --provider-network-type vlan --provider-physical-network physnet1 --provider-segment 100 -f json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"provider:network_type\"], d[\"provider:physical_network\"], d[\"provider:segmentation_id\"])'"
expect_fail "segment in use refused" os network create vl2 --provider-network-type vlan --provider-physical-network physnet1 --provider-segment 100
os network delete vl

# Networks and subnets.
expect "network create" "n1" os network create n1 --description first -f value -c name
expect "network show" "first" os network show n1 -f value -c description
os network set n1 --description changed --mtu 1400
expect "network set" "changed 1400" bash -c "openstack network show n1 -f value -c description -c mtu | paste -sd' '"
expect "network list" "n1" bash -c "openstack network list -f value -c Name | grep -x n1"
expect "network tag" "t1" bash -c "openstack network set --tag t1 n1 && openstack network show n1 -f json -c tags | python3 -c 'import json,sys; print(\",\".join(json.load(sys.stdin)[\"tags\"]))'"
expect "network list --tags" "n1" os network list --tags t1 -f value -c Name
expect "subnet create" "10.1.0.0/24" os subnet create s1 --network n1 --subnet-range 10.1.0.0/24 --dns-nameserver 192.0.2.53 -f value -c cidr
expect "subnet gateway" "10.1.0.1" os subnet show s1 -f value -c gateway_ip
expect "subnet pools" "10.1.0.2-10.1.0.254" bash -c "openstack subnet show s1 -f json -c allocation_pools | python3 -c 'import json,sys; p=json.load(sys.stdin)[\"allocation_pools\"][0]; print(p[\"start\"]+\"-\"+p[\"end\"])'"
os subnet set s1 --name s1b
expect "subnet set" "s1b" os subnet show s1b -f value -c name
expect "subnet list" "s1b" bash -c "openstack subnet list -f value -c Name | grep -x s1b"
expect_fail "overlapping subnet refused" os subnet create s1x --network n1 --subnet-range 10.1.0.128/25
expect "v6 slaac subnet" "slaac" os subnet create s6 --network n1 --ip-version 6 --subnet-range 2001:db8:1::/64 --ipv6-ra-mode slaac --ipv6-address-mode slaac -f value -c ipv6_address_mode
expect "dhcp port" "network:dhcp" bash -c "openstack port list --network n1 --device-owner network:dhcp -f value -c ID | xargs -I{} openstack port show {} -f value -c device_owner"

# Ports.
expect "port create" "p1" os port create p1 --network n1 --fixed-ip subnet=s1b,ip-address=10.1.0.50 -f value -c name
expect "port fixed ip" "10.1.0.50" bash -c "openstack port show p1 -f json -c fixed_ips | python3 -c 'import json,sys; print([f[\"ip_address\"] for f in json.load(sys.stdin)[\"fixed_ips\"] if \".\" in f[\"ip_address\"]][0])'"
expect_fail "duplicate fixed ip refused" os port create p1dup --network n1 --fixed-ip subnet=s1b,ip-address=10.1.0.50
os port set p1 --name p1b --description nic
expect "port set" "nic" os port show p1b -f value -c description
expect "port list" "p1b" bash -c "openstack port list --network n1 -f value -c Name | grep -x p1b"
mac=$(os port show p1b -f value -c mac_address)
[[ $mac == fa:16:3e:* ]] && ok "port mac from base" || bad "port mac: $mac"

# Security groups.
expect "security group create" "web" os security group create web --description "web servers" -f value -c name
expect "security group rule create" "22" os security group rule create web --protocol tcp --dst-port 22 --remote-ip 0.0.0.0/0 -f value -c port_range_min
expect "security group rule list" "1" bash -c "openstack security group rule list web --ingress -f value -c ID | wc -l"
rule=$(os security group rule list web --protocol tcp -f value -c ID)
expect "security group rule show" "tcp 22 22" bash -c "openstack security group rule show $rule -f json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"protocol\"], d[\"port_range_min\"], d[\"port_range_max\"])'"
os security group rule delete "$rule"
expect_fail "security group rule gone" os security group rule show "$rule"
expect "security group rule create udp" "53" os security group rule create web --protocol udp --dst-port 53 -f value -c port_range_max
expect_fail "bad port range refused" os security group rule create web --protocol tcp --dst-port 30:20
expect_fail "bad remote ip refused" os security group rule create web --protocol tcp --dst-port 80 --remote-ip 10.0.0.0/99
os security group set web --name web2
expect "security group set" "web2" os security group show web2 -f value -c name
expect "default security group" "default" bash -c "openstack security group list -f value -c Name | grep -x default"
os port set p1b --security-group web2
expect "port security group" "True" bash -c "openstack port show p1b -f json -c security_group_ids | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"security_group_ids\"])==2)'"

# External network, router, floating IP.
expect "external network" "True" os network create ext --external -f value -c router:external
os subnet create ext-sub --network ext --subnet-range 203.0.113.0/24 --no-dhcp >/dev/null
expect "router create" "r1" os router create r1 -f value -c name
os router add subnet r1 s1b
expect "router interface port" "network:router_interface" bash -c "openstack port list --router r1 -f value -c ID | xargs -I{} openstack port show {} -f value -c device_owner"
os router set r1 --external-gateway ext
expect "router gateway" "True" bash -c "openstack router show r1 -f json -c external_gateway_info | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"external_gateway_info\"][\"enable_snat\"])'"
os router set r1 --description edge
expect "router set" "edge" os router show r1 -f value -c description
expect "router list" "r1" bash -c "openstack router list -f value -c Name | grep -x r1"
fip=$(os floating ip create ext -f value -c floating_ip_address)
[[ $fip == 203.0.113.* ]] && ok "floating ip create" || bad "floating ip create: '$fip'"
expect "floating ip list" "$fip" bash -c "openstack floating ip list -f value -c 'Floating IP Address' | grep -x $fip"
os floating ip set --port p1b "$fip"
expect "floating ip set --port" "10.1.0.50" os floating ip show "$fip" -f value -c fixed_ip_address
os floating ip unset --port "$fip"
expect "floating ip unset --port" "None" os floating ip show "$fip" -f value -c port_id
expect_fail "router delete with interfaces refused" os router delete r1

# Quotas and availability.
# OSC 6.0's quota set needs a compute endpoint: set through the API.
tok=$(os token issue -f value -c id)
neutron=$(os endpoint list --service network --interface public -f value -c URL)
curl -sf -X PUT -H "X-Auth-Token: $tok" -H 'Content-Type: application/json' -d '{"quota":{"port":77}}' \
	"$neutron/v2.0/quotas/$(os project show admin -f value -c id)" >/dev/null
expect "quota list --network" "ports 77" bash -c "openstack quota list --network --detail --project admin -f value -c Resource -c Limit | grep -x 'ports 77'"
expect "availability zones" "nova" bash -c "openstack availability zone list --network -f value -c 'Zone Name' | sort -u"
expect "ip availability" "n1" bash -c "openstack ip availability list -f value -c 'Network Name' | grep -x n1"

# Deletes.
os floating ip delete "$fip"
expect_fail "floating ip gone" os floating ip show "$fip"
os router unset --external-gateway r1
os router remove subnet r1 s1b
os router delete r1
expect_fail "router gone" os router show r1
os port delete p1b
expect_fail "port gone" os port show p1b
os security group delete web2
expect_fail "security group gone" os security group show web2
os subnet delete s6
os subnet delete s1b
expect_fail "subnet gone" os subnet show s1b
os network delete n1
expect_fail "network gone" os network show n1
expect "only dhcp-free state left" "" bash -c "openstack port list -f value -c ID --network ext"

e2e_done
