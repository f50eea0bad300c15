package compute

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// MetadataExtra is what the metadata content adds to a server's own
// record.
type MetadataExtra struct {
	// VendorData is served as vendor_data.json.
	VendorData map[string]any
}

func (s *Service) metadataExtra() MetadataExtra { return MetadataExtra{VendorData: s.cfg.VendorData} }

// MetaData returns the OpenStack meta_data.json document of a server.
func MetaData(srv *Server) map[string]any {
	keys := map[string]string{}
	var keyList []map[string]string
	if srv.KeyName != "" {
		keys[srv.KeyName] = srv.KeyData
		keyList = append(keyList, map[string]string{"name": srv.KeyName, "type": "ssh", "data": srv.KeyData})
	}
	md := srv.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return map[string]any{
		"uuid": srv.ID, "name": srv.Name, "hostname": srv.Hostname, "launch_index": srv.LaunchIndex,
		"availability_zone": srv.AZ, "project_id": srv.ProjectID, "meta": md, "public_keys": keys,
		"keys": keyList, "devices": []any{}, "random_seed": base64.StdEncoding.EncodeToString([]byte(srv.ID + srv.ReservationID)),
	}
}

// NetworkData returns the OpenStack network_data.json document built from
// a server's ports.
func NetworkData(srv *Server) map[string]any {
	links := []map[string]any{}
	networks := []map[string]any{}
	services := []map[string]any{}
	seenDNS := map[string]bool{}
	for i, p := range srv.Ports {
		link := "tap" + p.ID[:min(11, len(p.ID))]
		mtu := p.MTU
		if mtu == 0 {
			mtu = 1500
		}
		links = append(links, map[string]any{"id": link, "vif_id": p.ID, "type": "phy", "mtu": mtu, "ethernet_mac_address": p.MAC})
		for j, f := range p.FixedIPs {
			n := map[string]any{"id": fmt.Sprintf("network%d", i*8+j), "link": link, "network_id": p.NetworkID, "ip_address": f.IPAddress}
			typ := "ipv4"
			if f.Version == 6 {
				typ = "ipv6"
			}
			n["type"] = typ
			if pfx, err := netip.ParsePrefix(f.CIDR); err == nil {
				if typ == "ipv4" {
					n["netmask"] = netmask4(pfx.Bits())
				} else {
					n["netmask"] = fmt.Sprint(pfx.Bits())
				}
				routes := []map[string]any{}
				if f.Gateway != "" {
					if typ == "ipv4" {
						routes = append(routes, map[string]any{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": f.Gateway})
					} else {
						routes = append(routes, map[string]any{"network": "::", "netmask": "::", "gateway": f.Gateway})
					}
				}
				n["routes"] = routes
			}
			var svc []map[string]any
			for _, d := range f.DNS {
				svc = append(svc, map[string]any{"type": "dns", "address": d})
				if !seenDNS[d] {
					seenDNS[d] = true
					services = append(services, map[string]any{"type": "dns", "address": d})
				}
			}
			if svc != nil {
				n["services"] = svc
			}
			networks = append(networks, n)
		}
	}
	return map[string]any{"links": links, "networks": networks, "services": services}
}

func netmask4(bits int) string {
	var m uint32
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	return fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&0xff, m>>8&0xff, m&0xff)
}

// ConfigDriveFiles returns the files of an OpenStack config drive for a
// server (the same content as the metadata service).
func ConfigDriveFiles(srv *Server, extra MetadataExtra) (map[string][]byte, error) {
	md, err := json.Marshal(MetaData(srv))
	if err != nil {
		return nil, err
	}
	nd, err := json.Marshal(NetworkData(srv))
	if err != nil {
		return nil, err
	}
	vd, err := json.Marshal(orEmpty(extra.VendorData))
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, v := range []string{"latest", "2012-08-10"} {
		base := "openstack/" + v + "/"
		files[base+"meta_data.json"] = md
		files[base+"network_data.json"] = nd
		files[base+"vendor_data.json"] = vd
		files[base+"vendor_data2.json"] = []byte("{}")
		if srv.UserData != "" {
			ud, err := CheckUserData(srv.UserData)
			if err != nil {
				return nil, err
			}
			files[base+"user_data"] = ud
		}
	}
	return files, nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// MetadataHandler serves a guest's metadata: the OpenStack tree under
// /openstack (meta_data.json, user_data, network_data.json,
// vendor_data.json) and the EC2 tree under /latest/meta-data/ and
// /latest/user-data. find identifies the guest from the request (the
// network dataplane knows its network and source address) and returns
// ErrNotFound for an unknown guest.
func MetadataHandler(find func(*http.Request) (*Server, error), extra MetadataExtra) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		srv, err := find(r)
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		body, ctype, ok := metadataPath(srv, extra, strings.TrimSuffix(r.URL.Path, "/"), strings.HasSuffix(r.URL.Path, "/"))
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write(body)
	})
}

var osVersions = []string{"2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27", "latest"}

func metadataPath(srv *Server, extra MetadataExtra, path string, _ bool) ([]byte, string, bool) {
	const text, js = "text/plain; charset=utf-8", "application/json"
	jsonOf := func(v any) ([]byte, string, bool) {
		b, err := json.Marshal(v)
		return b, js, err == nil
	}
	switch path {
	case "", "/":
		return []byte("latest\nopenstack\n"), text, true
	case "/openstack":
		return []byte(strings.Join(osVersions, "\n") + "\n"), text, true
	case "/latest":
		return []byte("meta-data/\nuser-data\n"), text, true
	case "/latest/user-data":
		return userData(srv)
	}
	if rest, ok := strings.CutPrefix(path, "/openstack/"); ok {
		ver, file, _ := strings.Cut(rest, "/")
		if !slices.Contains(osVersions, ver) {
			return nil, "", false
		}
		switch file {
		case "":
			files := "meta_data.json\nnetwork_data.json\nvendor_data.json\nvendor_data2.json\n"
			if srv.UserData != "" {
				files += "user_data\n"
			}
			return []byte(files), text, true
		case "meta_data.json":
			return jsonOf(MetaData(srv))
		case "network_data.json":
			return jsonOf(NetworkData(srv))
		case "vendor_data.json":
			return jsonOf(orEmpty(extra.VendorData))
		case "vendor_data2.json":
			return jsonOf(map[string]any{})
		case "user_data":
			return userData(srv)
		}
		return nil, "", false
	}
	if rest, ok := strings.CutPrefix(path, "/latest/meta-data"); ok {
		ec2 := ec2MetaData(srv)
		key := strings.TrimPrefix(rest, "/")
		if key == "" {
			names := make([]string, 0, len(ec2))
			seen := map[string]bool{}
			for k := range ec2 {
				top, sub, _ := strings.Cut(k, "/")
				if sub != "" {
					top += "/"
				}
				if !seen[top] {
					seen[top] = true
					names = append(names, top)
				}
			}
			sort.Strings(names)
			return []byte(strings.Join(names, "\n") + "\n"), text, true
		}
		if v, ok := ec2[key]; ok {
			return []byte(v), text, true
		}
		var subs []string
		for k := range ec2 {
			if sub, ok := strings.CutPrefix(k, key+"/"); ok {
				first, more, _ := strings.Cut(sub, "/")
				if more != "" {
					first += "/"
				}
				if !slices.Contains(subs, first) {
					subs = append(subs, first)
				}
			}
		}
		if len(subs) > 0 {
			sort.Strings(subs)
			return []byte(strings.Join(subs, "\n") + "\n"), text, true
		}
	}
	return nil, "", false
}

func userData(srv *Server) ([]byte, string, bool) {
	if srv.UserData == "" {
		return nil, "", false
	}
	b, err := CheckUserData(srv.UserData)
	return b, "application/octet-stream", err == nil
}

func ec2MetaData(srv *Server) map[string]string {
	ip := ""
	for _, p := range srv.Ports {
		for _, f := range p.FixedIPs {
			if ip == "" && f.Version != 6 {
				ip = f.IPAddress
			}
		}
	}
	m := map[string]string{
		"ami-id": "ami-" + shortID(srv.ImageID), "ami-launch-index": fmt.Sprint(srv.LaunchIndex),
		"hostname": srv.Hostname, "local-hostname": srv.Hostname, "instance-id": "i-" + shortID(srv.ID),
		"instance-type": srv.Flavor.Name, "local-ipv4": ip, "placement/availability-zone": srv.AZ,
		"reservation-id": srv.ReservationID, "security-groups": strings.Join(srv.SecurityGroups, "\n"),
	}
	if srv.KeyName != "" {
		m["public-keys/0/openssh-key"] = srv.KeyData
		m["public-keys"] = "0=" + srv.KeyName
	}
	return m
}

func shortID(id string) string {
	id = strings.ReplaceAll(id, "-", "")
	return id[:min(8, len(id))]
}

// ServerByAddress finds the server that owns a port with ip on networkID,
// for the metadata service of the network dataplane.
func (s *Service) ServerByAddress(networkID, ip string) (*Server, error) {
	it, err := store.List[Server](nil, s.st.Snapshot(), serverTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	for v := range it {
		for _, p := range v.Ports {
			if p.NetworkID != networkID {
				continue
			}
			for _, f := range p.FixedIPs {
				if f.IPAddress == ip {
					return v, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("compute: no server with address %s on network %s: %w", ip, networkID, errdefs.ErrNotFound)
}

// GuestMetadata returns the metadata handler of one guest: the server
// serverID, provided its own record holds port portID on networkID (the
// port the dataplane saw the request come from). The network dataplane
// finds the port by the request's network and source address (never by
// anything the guest sends); requiring that compute itself recorded the
// port on the server means a port whose device_id merely names another
// project's server reads nothing of it (the class of OSSA-2013-033). An
// unknown or deleted server, or a port it does not hold, is
// errdefs.ErrNotFound.
func (s *Service) GuestMetadata(_ context.Context, serverID, networkID, portID string) (http.Handler, error) {
	srv, err := store.Get[Server](nil, s.st.Snapshot(), serverTable, serverID)
	if err != nil || srv.VMState == VMDeleted || !slices.ContainsFunc(srv.Ports, func(p Port) bool {
		return p.ID == portID && p.NetworkID == networkID
	}) {
		return nil, fmt.Errorf("compute: no server %s with port %s on network %s: %w", serverID, portID, networkID, errdefs.ErrNotFound)
	}
	return MetadataHandler(func(*http.Request) (*Server, error) { return srv, nil }, s.metadataExtra()), nil
}
