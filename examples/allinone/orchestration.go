package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/orchestration"
	"github.com/stratuskit/stratus/store"
)

// orchestrationPort is Heat's conventional port.
const orchestrationPort = 8004

func orchestrationCatalog(cfg Config) identity.ServiceEndpoints {
	return identity.ServiceEndpoints{Type: "orchestration", Name: "heat", PublicURL: serviceURL(cfg, orchestrationPort, "/v1/%(project_id)s")}
}

// orchestrationComponent builds the orchestration service; its resource
// plugins drive the other services as the stack's owner.
func orchestrationComponent(cfg Config, st *store.Store, ident *identity.Service, h heatServices, logger *slog.Logger) (component, *orchestration.Service, error) {
	svc, err := orchestration.New(orchestration.Config{Store: st, Logger: logger, PublicURL: serviceURL(cfg, orchestrationPort, "")})
	if err != nil {
		return component{}, nil, err
	}
	var comp orchestration.Compute = heatCompute{h}
	if rz, ok := any(h.compute).(computeResizer); ok {
		comp = heatResizer{heatCompute{h}, rz}
	}
	svc.Use(orchestration.Deps{Compute: comp, Network: heatNetwork{h}, Volumes: heatVolumes{h},
		Attacher: heatAttacher{h}, Containers: heatContainers{h}, Images: heatImages{h}, Checker: heatChecker{h},
		Trusts: &heatTrusts{ident: ident, password: servicePassword(h.adminPassword, heatUser)}})
	return component{name: "orchestration", port: orchestrationPort, handler: orchestration.NewHandler(svc, ident, logger),
		start: svc.Start, close: svc.Close}, svc, nil
}

// heatUser is orchestration's service user: the trustee of the stacks'
// trusts.
const heatUser = "heat"

// servicePassword derives a service user's password from the admin
// password, so that it is the same at every start.
func servicePassword(admin, user string) string {
	m := hmac.New(sha256.New, []byte(admin))
	m.Write([]byte("stratus service user " + user))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// heatTrusts is orchestration.Trusts over identity's trusts: each stack
// gets a trust from its owner to the heat user, who authenticates with its
// password and turns the trust into a trust-scoped token when a signal
// must act.
type heatTrusts struct {
	ident    *identity.Service
	password string

	mu    sync.Mutex
	creds *identity.Credentials
}

// service returns the heat user's credentials, logging in again shortly
// before they expire.
func (t *heatTrusts) service(ctx context.Context) (*identity.Credentials, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.creds != nil && time.Until(t.creds.ExpiresAt) > 30*time.Second {
		return t.creds, nil
	}
	_, tok, err := t.ident.Authenticate(ctx, identity.AuthRequest{Methods: []string{"password"},
		Password: &identity.PasswordAuth{UserName: heatUser, DomainID: identity.DefaultDomainID, Password: t.password},
		Scope:    identity.AuthScope{ProjectName: identity.ServiceProjectName, ProjectDomainID: identity.DefaultDomainID}})
	if err != nil {
		return nil, fmt.Errorf("orchestration: the heat service user cannot log in: %w", err)
	}
	t.creds = tok.Credentials()
	return t.creds, nil
}

func (t *heatTrusts) Delegate(ctx context.Context) (string, error) {
	c := identity.CredentialsFrom(ctx)
	if c == nil {
		return "", errdefs.ErrUnauthenticated
	}
	sc, err := t.service(ctx)
	if err != nil {
		return "", err
	}
	roles := make([]identity.Ref, 0, len(c.Roles))
	for _, r := range c.Roles {
		roles = append(roles, identity.Ref{Name: r})
	}
	tr, err := t.ident.CreateTrust(ctx, identity.CreateTrustOpts{TrustorUserID: c.UserID, TrusteeUserID: sc.UserID,
		ProjectID: c.ProjectID, Impersonation: true, Roles: roles})
	if err != nil {
		return "", err
	}
	return tr.ID, nil
}

func (t *heatTrusts) Credentials(ctx context.Context, trustID string) (*identity.Credentials, error) {
	sc, err := t.service(ctx)
	if err != nil {
		return nil, err
	}
	_, tok, err := t.ident.AuthenticateTrust(identity.WithCredentials(ctx, sc), trustID)
	if err != nil {
		return nil, err
	}
	return tok.Credentials(), nil
}

func (t *heatTrusts) Revoke(ctx context.Context, trustID string) error {
	return ignoreNotFound(t.ident.DeleteTrust(ctx, trustID))
}

// computeResizer is the resize API of compute, when it has one.
type computeResizer interface {
	ResizeServer(ctx context.Context, id, flavorID string) error
	ConfirmResize(ctx context.Context, id string) error
}

// heatResizer is heatCompute with orchestration.ServerResizer: a flavor
// change of a stack's server is a resize, confirmed at once.
type heatResizer struct {
	heatCompute
	rz computeResizer
}

func (a heatResizer) ResizeServer(ctx context.Context, id, flavor string) error {
	fid, err := a.flavorID(ctx, flavor)
	if err != nil {
		return err
	}
	if err := a.rz.ResizeServer(ctx, id, fid); err != nil {
		return err
	}
	for wait := 10 * time.Millisecond; ; wait = min(wait*2, 500*time.Millisecond) {
		s, err := a.GetServer(ctx, id)
		if err != nil {
			return err
		}
		switch s.Status {
		case "VERIFY_RESIZE":
			return a.rz.ConfirmResize(ctx, id)
		case "ERROR":
			return fmt.Errorf("the resize failed: %s", s.Fault)
		case "ACTIVE", "SHUTOFF":
			if f, _ := s.Show["flavor"].(map[string]any); f != nil && (f["id"] == fid || f["original_name"] == flavor) {
				return nil // confirmed already
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// heatServices are the services orchestration's adapters use.
type heatServices struct {
	adminPassword string
	cfg           Config
	compute       *compute.Service
	network       *network.Service
	volumes       *blockstore.Service
	images        *image.Service
	objects       *objectstore.Service
}

// asMap is a record as its JSON shows it.
func asMap(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// waitGone polls get until it reports not found.
func waitGone(ctx context.Context, get func() error) error {
	for wait := 5 * time.Millisecond; ; wait = min(wait*2, 200*time.Millisecond) {
		if err := get(); errdefs.IsNotFound(err) {
			return nil
		} else if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func ignoreNotFound(err error) error {
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

func projectOf(ctx context.Context) string {
	if c := identity.CredentialsFrom(ctx); c != nil {
		return c.ProjectID
	}
	return ""
}

// heatCompute is orchestration.Compute over compute (and image and
// network, to resolve names).
type heatCompute struct{ h heatServices }

func (a heatCompute) flavorID(ctx context.Context, ref string) (string, error) {
	if f, err := a.h.compute.GetFlavor(ctx, ref); err == nil {
		return f.ID, nil
	}
	fs, err := a.h.compute.ListFlavors(ctx, compute.ListFlavorsOpts{})
	if err != nil {
		return "", err
	}
	for _, f := range fs {
		if f.Name == ref {
			return f.ID, nil
		}
	}
	return "", fmt.Errorf("flavor %q: %w", ref, errdefs.ErrNotFound)
}

func (a heatCompute) imageID(ctx context.Context, ref string) (string, error) {
	if img, err := a.h.images.GetImage(ctx, ref); err == nil {
		return img.ID, nil
	}
	imgs, _, err := a.h.images.ListImages(ctx, image.ListImagesOpts{Name: ref})
	if err != nil {
		return "", err
	}
	if len(imgs) == 0 {
		return "", fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	return imgs[0].ID, nil
}

func (a heatCompute) CreateServer(ctx context.Context, spec orchestration.ServerSpec) (string, error) {
	o := compute.CreateServerOpts{Name: spec.Name, KeyName: spec.KeyName, AZ: spec.AvailabilityZone, Metadata: spec.Metadata,
		SecurityGroups: spec.SecurityGroups}
	var err error
	if o.FlavorRef, err = a.flavorID(ctx, spec.Flavor); err != nil {
		return "", err
	}
	if spec.BootVolume != "" {
		o.BlockDevices = []compute.BlockDevice{{BootIndex: 0, UUID: spec.BootVolume, SourceType: "volume", DestinationType: "volume"}}
	} else if o.ImageRef, err = a.imageID(ctx, spec.Image); err != nil {
		return "", err
	}
	if spec.UserData != "" {
		o.UserData = base64.StdEncoding.EncodeToString([]byte(spec.UserData))
	}
	if spec.SchedulerGroup != "" {
		o.Hints.Group = spec.SchedulerGroup
	}
	for _, n := range spec.Networks {
		nr := compute.NetworkRequest{Port: n.Port, FixedIP: n.FixedIP}
		if n.Network != "" {
			if nr.UUID, err = heatNetwork(a).netID(ctx, n.Network); err != nil {
				return "", err
			}
		}
		o.Networks = append(o.Networks, nr)
	}
	if len(o.Networks) == 0 {
		o.NetworksMode = "none"
	}
	srv, err := a.h.compute.CreateServer(ctx, o)
	if err != nil {
		return "", err
	}
	return srv.ID, nil
}

func (a heatCompute) GetServer(ctx context.Context, id string) (*orchestration.ServerInfo, error) {
	srv, err := a.h.compute.GetServer(ctx, id)
	if err != nil {
		return nil, err
	}
	info := &orchestration.ServerInfo{ID: srv.ID, Name: srv.Name, Status: srv.Status(), Addresses: map[string][]orchestration.Address{}}
	if srv.Fault != nil {
		info.Fault = srv.Fault.Message
	}
	for _, p := range srv.Ports {
		name := p.NetworkName
		if name == "" {
			name = p.NetworkID
		}
		for _, f := range p.FixedIPs {
			ver := f.Version
			if ver == 0 {
				ver = 4
			}
			info.Addresses[name] = append(info.Addresses[name], orchestration.Address{Addr: f.IPAddress, Version: ver, Type: "fixed", MAC: p.MAC, PortID: p.ID})
			for _, fl := range f.FloatingIPs {
				info.Addresses[name] = append(info.Addresses[name], orchestration.Address{Addr: fl, Version: 4, Type: "floating", MAC: p.MAC, PortID: p.ID})
			}
		}
	}
	info.Show = map[string]any{"id": srv.ID, "name": srv.Name, "status": info.Status, "addresses": info.Addresses,
		"flavor": map[string]any{"id": srv.Flavor.ID}, "image": map[string]any{"id": srv.ImageID}, "key_name": srv.KeyName,
		"metadata": srv.Metadata, "tenant_id": srv.ProjectID}
	return info, nil
}

func (a heatCompute) FindServer(ctx context.Context, name string) (string, error) {
	l, err := a.h.compute.ListServers(ctx, compute.ListServersOpts{Name: "^" + regexp.QuoteMeta(name) + "$"})
	if err != nil || len(l) == 0 {
		return "", err
	}
	return l[0].ID, nil
}

func (a heatCompute) DeleteServer(ctx context.Context, id string) error {
	if err := a.h.compute.DeleteServer(ctx, id); err != nil {
		return ignoreNotFound(err)
	}
	return waitGone(ctx, func() error { _, err := a.h.compute.GetServer(ctx, id); return err })
}

func (a heatCompute) CreateKeypair(ctx context.Context, name, publicKey string) (string, string, error) {
	k, err := a.h.compute.CreateKeypair(ctx, compute.CreateKeypairOpts{Name: name, PublicKey: publicKey})
	if err != nil {
		return "", "", err
	}
	return k.PublicKey, k.PrivateKey, nil
}

func (a heatCompute) DeleteKeypair(ctx context.Context, name string) error {
	return ignoreNotFound(a.h.compute.DeleteKeypair(ctx, name, ""))
}

func (a heatCompute) CreateFlavor(ctx context.Context, spec orchestration.FlavorSpec) (string, error) {
	f, err := a.h.compute.CreateFlavor(ctx, compute.CreateFlavorOpts{Name: spec.Name, VCPUs: spec.VCPUs, RAMMB: spec.RAMMB,
		DiskGB: spec.DiskGB, EphemeralGB: spec.EphemeralGB, SwapMB: spec.SwapMB, IsPublic: &spec.IsPublic})
	if err != nil {
		return "", err
	}
	if len(spec.ExtraSpecs) > 0 {
		if _, err := a.h.compute.SetFlavorExtraSpecs(ctx, f.ID, spec.ExtraSpecs); err != nil {
			return f.ID, err
		}
	}
	return f.ID, nil
}

func (a heatCompute) DeleteFlavor(ctx context.Context, id string) error {
	return ignoreNotFound(a.h.compute.DeleteFlavor(ctx, id))
}

func (a heatCompute) CreateServerGroup(ctx context.Context, name string, policies []string) (string, error) {
	p := "anti-affinity"
	if len(policies) > 0 {
		p = policies[0]
	}
	g, err := a.h.compute.CreateServerGroup(ctx, compute.CreateServerGroupOpts{Name: name, Policy: p})
	if err != nil {
		return "", err
	}
	return g.ID, nil
}

func (a heatCompute) DeleteServerGroup(ctx context.Context, id string) error {
	return ignoreNotFound(a.h.compute.DeleteServerGroup(ctx, id))
}

// heatNetwork is orchestration.Network over the network service.
type heatNetwork struct{ h heatServices }

// netID resolves a network id or name (the caller's, shared or external).
func (a heatNetwork) netID(ctx context.Context, ref string) (string, error) {
	if n, err := a.h.network.GetNetwork(ctx, ref); err == nil {
		return n.ID, nil
	}
	l, err := a.h.network.ListNetworks(ctx, network.ListOpts{})
	if err != nil {
		return "", err
	}
	for _, n := range l {
		if n.Name == ref {
			return n.ID, nil
		}
	}
	return "", fmt.Errorf("network %q: %w", ref, errdefs.ErrNotFound)
}

func (a heatNetwork) subnetID(ctx context.Context, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	if n, err := a.h.network.GetSubnet(ctx, ref); err == nil {
		return n.ID, nil
	}
	l, err := a.h.network.ListSubnets(ctx, network.ListOpts{})
	if err != nil {
		return "", err
	}
	for _, n := range l {
		if n.Name == ref {
			return n.ID, nil
		}
	}
	return "", fmt.Errorf("subnet %q: %w", ref, errdefs.ErrNotFound)
}

func (a heatNetwork) groupID(ctx context.Context, ref string) (string, error) {
	if g, err := a.h.network.GetSecurityGroup(ctx, ref); err == nil {
		return g.ID, nil
	}
	l, err := a.h.network.ListSecurityGroups(ctx, network.ListOpts{ProjectID: projectOf(ctx)})
	if err != nil {
		return "", err
	}
	for _, g := range l {
		if g.Name == ref {
			return g.ID, nil
		}
	}
	return "", fmt.Errorf("security group %q: %w", ref, errdefs.ErrNotFound)
}

func (a heatNetwork) CreateNetwork(ctx context.Context, spec orchestration.NetSpec) (string, error) {
	n, err := a.h.network.CreateNetwork(ctx, network.CreateNetworkOpts{Name: spec.Name, AdminStateUp: &spec.AdminStateUp, Shared: spec.Shared})
	if err != nil {
		return "", err
	}
	return n.ID, nil
}

func (a heatNetwork) CreateSubnet(ctx context.Context, spec orchestration.SubnetSpec) (string, error) {
	netID, err := a.netID(ctx, spec.Network)
	if err != nil {
		return "", err
	}
	o := network.CreateSubnetOpts{NetworkID: netID, Name: spec.Name, IPVersion: spec.IPVersion, CIDR: spec.CIDR,
		NoGateway: spec.NoGateway, DNSNameservers: spec.DNSNameservers, EnableDHCP: &spec.EnableDHCP}
	if spec.GatewayIP != "" {
		o.GatewayIP = &spec.GatewayIP
	}
	for _, p := range spec.AllocationPools {
		o.AllocationPools = append(o.AllocationPools, network.Pool{Start: p.Start, End: p.End})
	}
	s, err := a.h.network.CreateSubnet(ctx, o)
	if err != nil {
		return "", err
	}
	return s.ID, nil
}

func (a heatNetwork) CreatePort(ctx context.Context, spec orchestration.PortSpec) (string, error) {
	netID, err := a.netID(ctx, spec.Network)
	if err != nil {
		return "", err
	}
	o := network.CreatePortOpts{NetworkID: netID, Name: spec.Name, MACAddress: spec.MACAddress, AdminStateUp: &spec.AdminStateUp}
	for _, f := range spec.FixedIPs {
		sub, err := a.subnetID(ctx, f.Subnet)
		if err != nil {
			return "", err
		}
		o.FixedIPs = append(o.FixedIPs, network.FixedIP{SubnetID: sub, IPAddress: f.IP})
	}
	if spec.NoSecurityGroups || len(spec.SecurityGroups) > 0 {
		ids := []string{}
		for _, g := range spec.SecurityGroups {
			id, err := a.groupID(ctx, g)
			if err != nil {
				return "", err
			}
			ids = append(ids, id)
		}
		o.SecurityGroups = &ids
	}
	p, err := a.h.network.CreatePort(ctx, o)
	if err != nil {
		return "", err
	}
	return p.ID, nil
}

func (a heatNetwork) CreateRouter(ctx context.Context, spec orchestration.RouterSpec) (string, error) {
	o := network.CreateRouterOpts{Name: spec.Name, AdminStateUp: &spec.AdminStateUp}
	if spec.ExternalNetwork != "" {
		ext, err := a.netID(ctx, spec.ExternalNetwork)
		if err != nil {
			return "", err
		}
		o.Gateway = &network.GatewayOpts{NetworkID: ext}
	}
	r, err := a.h.network.CreateRouter(ctx, o)
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

func (a heatNetwork) AddRouterInterface(ctx context.Context, router, subnet, port string) error {
	sub, err := a.subnetID(ctx, subnet)
	if err != nil {
		return err
	}
	_, err = a.h.network.AddRouterInterface(ctx, router, sub, port)
	return err
}

func (a heatNetwork) RemoveRouterInterface(ctx context.Context, router, subnet, port string) error {
	_, err := a.h.network.RemoveRouterInterface(ctx, router, subnet, port)
	return err
}

func (a heatNetwork) CreateFloatingIP(ctx context.Context, spec orchestration.FloatingIPSpec) (string, error) {
	ext, err := a.netID(ctx, spec.FloatingNetwork)
	if err != nil {
		return "", err
	}
	f, err := a.h.network.CreateFloatingIP(ctx, network.CreateFloatingIPOpts{FloatingNetworkID: ext, PortID: spec.Port,
		FixedIPAddress: spec.FixedIP, FloatingIPAddress: spec.FloatingIP})
	if err != nil {
		return "", err
	}
	return f.ID, nil
}

func (a heatNetwork) AssociateFloatingIP(ctx context.Context, fip, port, fixedIP string) error {
	_, err := a.h.network.UpdateFloatingIP(ctx, fip, network.UpdateFloatingIPOpts{PortID: &port, FixedIPAddress: fixedIP})
	return err
}

func (a heatNetwork) CreateSecurityGroup(ctx context.Context, name, description string) (string, error) {
	g, err := a.h.network.CreateSecurityGroup(ctx, network.CreateSecurityGroupOpts{Name: name, Description: description})
	if err != nil {
		return "", err
	}
	return g.ID, nil
}

func (a heatNetwork) CreateRule(ctx context.Context, spec orchestration.RuleSpec) (string, error) {
	o := network.CreateRuleOpts{SecurityGroupID: spec.SecurityGroup, Direction: spec.Direction, Ethertype: spec.EtherType,
		Protocol: spec.Protocol, RemoteIPPrefix: spec.RemoteIPPrefix, RemoteGroupID: spec.RemoteGroup}
	if spec.PortMin != 0 || spec.PortMax != 0 {
		o.PortRangeMin, o.PortRangeMax = &spec.PortMin, &spec.PortMax
	}
	r, err := a.h.network.CreateSecurityGroupRule(ctx, o)
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

func (a heatNetwork) Show(ctx context.Context, kind orchestration.NetKind, id string) (map[string]any, error) {
	var v any
	var err error
	switch kind {
	case orchestration.KindNetwork:
		v, err = a.h.network.GetNetwork(ctx, id)
	case orchestration.KindSubnet:
		v, err = a.h.network.GetSubnet(ctx, id)
	case orchestration.KindPort:
		v, err = a.h.network.GetPort(ctx, id)
	case orchestration.KindRouter:
		v, err = a.h.network.GetRouter(ctx, id)
	case orchestration.KindFloatingIP:
		v, err = a.h.network.GetFloatingIP(ctx, id)
	case orchestration.KindSecurityGroup:
		v, err = a.h.network.GetSecurityGroup(ctx, id)
	case orchestration.KindRule:
		v, err = a.h.network.GetSecurityGroupRule(ctx, id)
	default:
		return nil, fmt.Errorf("kind %q: %w", kind, errdefs.ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	return asMap(v), nil
}

func (a heatNetwork) Delete(ctx context.Context, kind orchestration.NetKind, id string) error {
	var err error
	switch kind {
	case orchestration.KindNetwork:
		err = a.h.network.DeleteNetwork(ctx, id, nil)
	case orchestration.KindSubnet:
		err = a.h.network.DeleteSubnet(ctx, id, nil)
	case orchestration.KindPort:
		err = a.h.network.DeletePort(ctx, id, nil)
	case orchestration.KindRouter:
		err = a.h.network.DeleteRouter(ctx, id, nil)
	case orchestration.KindFloatingIP:
		err = a.h.network.DeleteFloatingIP(ctx, id, nil)
	case orchestration.KindSecurityGroup:
		err = a.h.network.DeleteSecurityGroup(ctx, id, nil)
	case orchestration.KindRule:
		err = a.h.network.DeleteSecurityGroupRule(ctx, id)
	}
	return ignoreNotFound(err)
}

func (a heatNetwork) Find(ctx context.Context, kind orchestration.NetKind, name string) (string, error) {
	o := network.ListOpts{ProjectID: projectOf(ctx)}
	switch kind {
	case orchestration.KindNetwork:
		l, err := a.h.network.ListNetworks(ctx, o)
		for _, x := range l {
			if x.Name == name && x.ProjectID == o.ProjectID {
				return x.ID, nil
			}
		}
		return "", err
	case orchestration.KindSubnet:
		l, err := a.h.network.ListSubnets(ctx, o)
		for _, x := range l {
			if x.Name == name {
				return x.ID, nil
			}
		}
		return "", err
	case orchestration.KindPort:
		l, err := a.h.network.ListPorts(ctx, o)
		for _, x := range l {
			if x.Name == name {
				return x.ID, nil
			}
		}
		return "", err
	case orchestration.KindRouter:
		l, err := a.h.network.ListRouters(ctx, o)
		for _, x := range l {
			if x.Name == name {
				return x.ID, nil
			}
		}
		return "", err
	case orchestration.KindSecurityGroup:
		l, err := a.h.network.ListSecurityGroups(ctx, o)
		for _, x := range l {
			if x.Name == name {
				return x.ID, nil
			}
		}
		return "", err
	}
	return "", nil
}

// heatVolumes is orchestration.Volumes over block storage.
type heatVolumes struct{ h heatServices }

func (a heatVolumes) CreateVolume(ctx context.Context, spec orchestration.VolumeSpec) (string, error) {
	v, err := a.h.volumes.CreateVolume(ctx, blockstore.CreateVolumeOpts{Name: spec.Name, Description: spec.Description,
		SizeGiB: spec.SizeGB, VolumeType: spec.VolumeType, AvailabilityZone: spec.AvailabilityZone, Metadata: spec.Metadata,
		ImageID: spec.Image, SourceVolID: spec.SourceVolume})
	if err != nil {
		return "", err
	}
	return v.ID, nil
}

func (a heatVolumes) GetVolume(ctx context.Context, id string) (*orchestration.VolumeInfo, error) {
	v, err := a.h.volumes.GetVolume(ctx, id)
	if err != nil {
		return nil, err
	}
	return &orchestration.VolumeInfo{ID: v.ID, Name: v.Name, Status: string(v.Status), SizeGB: v.SizeGiB, Show: asMap(v)}, nil
}

func (a heatVolumes) FindVolume(ctx context.Context, name string) (string, error) {
	l, err := a.h.volumes.ListVolumes(ctx, blockstore.ListVolumesOpts{Name: name})
	if err != nil || len(l) == 0 {
		return "", err
	}
	return l[0].ID, nil
}

func (a heatVolumes) DeleteVolume(ctx context.Context, id string) error {
	if err := a.h.volumes.DeleteVolume(ctx, id, blockstore.DeleteVolumeOpts{}); err != nil {
		return ignoreNotFound(err)
	}
	return waitGone(ctx, func() error { _, err := a.h.volumes.GetVolume(ctx, id); return err })
}

// heatAttacher is orchestration.VolumeAttacher over compute's volume
// attachments (os-volume_attachments): compute reserves the volume, block
// storage connects it and the hypervisor plugs the disk into the guest.
// Attach returns once the attachment is complete, Detach once it is gone.
type heatAttacher struct{ h heatServices }

func (a heatAttacher) AttachVolume(ctx context.Context, server, volume, device string) (string, error) {
	va, err := a.h.compute.GetVolumeAttachment(ctx, server, volume)
	if errdefs.IsNotFound(err) {
		va, err = a.h.compute.AttachVolume(ctx, server, compute.AttachVolumeOpts{VolumeID: volume, Device: device})
	}
	if err != nil {
		return "", err
	}
	for wait := 5 * time.Millisecond; va.State != "attached"; wait = min(wait*2, 200*time.Millisecond) {
		select {
		case <-ctx.Done():
			return va.AttachmentID, ctx.Err()
		case <-time.After(wait):
		}
		if va, err = a.h.compute.GetVolumeAttachment(ctx, server, volume); err != nil {
			// Gone while attaching: compute rolled the attach back.
			return "", fmt.Errorf("attaching volume %s to server %s failed: %w", volume, server, err)
		}
	}
	return va.AttachmentID, nil
}

func (a heatAttacher) DetachVolume(ctx context.Context, server, volume string) error {
	if err := a.h.compute.DetachVolume(ctx, server, volume); err != nil {
		return ignoreNotFound(err)
	}
	return waitGone(ctx, func() error {
		_, err := a.h.compute.GetVolumeAttachment(ctx, server, volume)
		return err
	})
}

// heatContainers is orchestration.Containers over the object store, in
// the caller's AUTH_ account.
type heatContainers struct{ h heatServices }

func account(ctx context.Context) string { return "AUTH_" + projectOf(ctx) }

func (a heatContainers) CreateContainer(ctx context.Context, name string, headers map[string]string) error {
	o := objectstore.ContainerOpts{Meta: map[string]string{}}
	for k, v := range headers {
		switch k {
		case "X-Container-Read":
			o.Read = &v
		case "X-Container-Write":
			o.Write = &v
		default:
			// The object store keys metadata by canonical header name.
			if strings.HasPrefix(k, "X-Container-Meta-") {
				o.Meta[http.CanonicalHeaderKey(k)] = v
			}
		}
	}
	_, err := a.h.objects.PutContainer(ctx, account(ctx), name, o)
	return err
}

func (a heatContainers) DeleteContainer(ctx context.Context, name string, purge bool) error {
	acct := account(ctx)
	if purge {
		for {
			_, objs, err := a.h.objects.ListObjects(ctx, acct, name, objectstore.ListOptions{})
			if err != nil {
				return ignoreNotFound(err)
			}
			if len(objs) == 0 {
				break
			}
			for _, o := range objs {
				if err := a.h.objects.DeleteObject(ctx, objectstore.ObjectKey{Account: acct, Container: name, Name: o.Name()}); ignoreNotFound(err) != nil {
					return err
				}
			}
		}
	}
	return ignoreNotFound(a.h.objects.DeleteContainer(ctx, acct, name))
}

func (a heatContainers) ContainerURL(ctx context.Context, name string) (string, error) {
	return serviceURL(a.h.cfg, objectStorePort, "/v1/"+account(ctx)+"/"+name), nil
}

// heatChecker checks Heat's custom constraints against the services.
type heatChecker struct{ h heatServices }

func (a heatChecker) CheckConstraint(ctx context.Context, constraint, value string) error {
	var err error
	switch constraint {
	case "nova.flavor":
		_, err = heatCompute(a).flavorID(ctx, value)
	case "glance.image":
		_, err = heatCompute(a).imageID(ctx, value)
	case "nova.keypair":
		_, err = a.h.compute.GetKeypair(ctx, value, "")
	case "nova.server":
		_, err = a.h.compute.GetServer(ctx, value)
	case "neutron.network":
		_, err = heatNetwork(a).netID(ctx, value)
	case "neutron.subnet":
		_, err = heatNetwork(a).subnetID(ctx, value)
	case "neutron.port":
		_, err = a.h.network.GetPort(ctx, value)
	case "neutron.router":
		_, err = a.h.network.GetRouter(ctx, value)
	case "neutron.security_group":
		_, err = heatNetwork(a).groupID(ctx, value)
	case "cinder.volume":
		_, err = a.h.volumes.GetVolume(ctx, value)
	case "cinder.vtype":
		_, err = a.h.volumes.GetType(ctx, value)
	default:
		return fmt.Errorf("constraint %q: %w", constraint, errdefs.ErrUnsupported)
	}
	return err
}

// heatImages is orchestration.Images over the image service.
type heatImages struct{ h heatServices }

func (a heatImages) CreateWebImage(ctx context.Context, spec orchestration.WebImageSpec) (string, error) {
	img, err := a.h.images.CreateImage(ctx, image.CreateImageOpts{Name: spec.Name, Visibility: image.Visibility(spec.Visibility),
		Protected: spec.Protected, DiskFormat: spec.DiskFormat, ContainerFormat: spec.ContainerFormat,
		MinDisk: int64(spec.MinDiskGB), MinRAM: int64(spec.MinRAMMB), Tags: spec.Tags})
	if err != nil {
		return "", err
	}
	if err := a.h.images.ImportImage(ctx, img.ID, image.ImportOpts{Method: image.ImportWebDownload, URI: spec.Location}); err != nil {
		if derr := a.h.images.DeleteImage(ctx, img.ID); derr != nil {
			return img.ID, errors.Join(err, derr)
		}
		return "", err
	}
	return img.ID, nil
}

func (a heatImages) GetImage(ctx context.Context, id string) (*orchestration.ImageInfo, error) {
	img, err := a.h.images.GetImage(ctx, id)
	if err != nil {
		return nil, err
	}
	return &orchestration.ImageInfo{ID: img.ID, Name: img.Name, Status: string(img.Status), FailedImport: img.FailedImport, Show: asMap(img)}, nil
}

func (a heatImages) FindImage(ctx context.Context, name string) (string, error) {
	imgs, _, err := a.h.images.ListImages(ctx, image.ListImagesOpts{Name: name})
	if err != nil || len(imgs) == 0 {
		return "", err
	}
	return imgs[0].ID, nil
}

func (a heatImages) DeleteImage(ctx context.Context, id string) error {
	return ignoreNotFound(a.h.images.DeleteImage(ctx, id))
}
