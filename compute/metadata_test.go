package compute_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

func TestMetadataContent(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := user("p1")
	if _, err := e.svc.CreateKeypair(ctx, compute.CreateKeypairOpts{Name: "k1", KeyAlgorithm: "ed25519"}); err != nil {
		t.Fatal(err)
	}
	srv := e.settle(ctx, e.create(ctx, "meta web", func(o *compute.CreateServerOpts) {
		o.Networks = []compute.NetworkRequest{{UUID: netID}}
		o.KeyName = "k1"
		o.UserData = "I2Nsb3VkLWNvbmZpZw==" // #cloud-config
		o.Metadata = map[string]string{"role": "web"}
		o.ConfigDrive = true
	}).ID)
	h := compute.MetadataHandler(func(r *http.Request) (*compute.Server, error) {
		if r.Header.Get("X-Guest") != "ok" {
			return nil, errdefs.ErrNotFound
		}
		return e.svc.ServerByAddress(netID, srv.Ports[0].FixedIPs[0].IPAddress)
	}, compute.MetadataExtra{VendorData: map[string]any{"cloud": "stratus"}})
	srvHTTP := httptest.NewServer(h)
	defer srvHTTP.Close()
	get := func(path string, guest bool) (int, string) {
		req, _ := http.NewRequest("GET", srvHTTP.URL+path, nil)
		if guest {
			req.Header.Set("X-Guest", "ok")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/openstack/latest/meta_data.json", true)
	var md map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &md) != nil {
		t.Fatalf("meta_data.json %d %s", code, body)
	}
	if md["uuid"] != srv.ID || md["hostname"] != "meta-web" || md["meta"].(map[string]any)["role"] != "web" ||
		!strings.HasPrefix(md["public_keys"].(map[string]any)["k1"].(string), "ssh-ed25519 ") {
		t.Fatalf("meta_data %v", md)
	}
	if code, body := get("/openstack/latest/user_data", true); code != 200 || body != "#cloud-config" {
		t.Fatalf("user_data %d %q", code, body)
	}
	code, body = get("/openstack/latest/network_data.json", true)
	var nd struct {
		Links []struct {
			MAC string `json:"ethernet_mac_address"`
		} `json:"links"`
		Networks []struct {
			IP      string `json:"ip_address"`
			Netmask string `json:"netmask"`
			Routes  []struct {
				Gateway string `json:"gateway"`
			} `json:"routes"`
		} `json:"networks"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &nd) != nil || len(nd.Links) != 1 || nd.Links[0].MAC != srv.Ports[0].MAC ||
		nd.Networks[0].IP != srv.Ports[0].FixedIPs[0].IPAddress || nd.Networks[0].Netmask != "255.255.0.0" ||
		len(nd.Networks[0].Routes) != 1 || nd.Networks[0].Routes[0].Gateway != "10.0.0.1" {
		t.Fatalf("network_data %d %s", code, body)
	}
	if code, body := get("/openstack/latest/vendor_data.json", true); code != 200 || !strings.Contains(body, `"cloud":"stratus"`) {
		t.Fatalf("vendor_data %d %s", code, body)
	}
	if code, body := get("/latest/meta-data/instance-id", true); code != 200 || !strings.HasPrefix(body, "i-") {
		t.Fatalf("ec2 instance-id %d %s", code, body)
	}
	if code, body := get("/latest/meta-data/public-keys/0/openssh-key", true); code != 200 || !strings.HasPrefix(body, "ssh-ed25519") {
		t.Fatalf("ec2 key %d %s", code, body)
	}
	if code, body := get("/latest/meta-data/", true); code != 200 || !strings.Contains(body, "local-ipv4\n") || !strings.Contains(body, "placement/\n") {
		t.Fatalf("ec2 index %d %s", code, body)
	}
	for _, p := range []string{"/openstack/latest/x/../../etc/passwd", "/openstack/9999/meta_data.json", "/latest/meta-data/nope"} {
		if code, _ := get(p, true); code != 404 {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
	if code, _ := get("/openstack/latest/meta_data.json", false); code != 404 {
		t.Errorf("unknown guest: %d", code)
	}
	// The config drive holds the same documents.
	files, err := compute.ConfigDriveFiles(srv, compute.MetadataExtra{})
	if err != nil || string(files["openstack/latest/user_data"]) != "#cloud-config" || len(files["openstack/latest/meta_data.json"]) == 0 {
		t.Fatalf("config drive %v %v", files, err)
	}
	out, _ := e.svc.ConsoleOutput(ctx, srv.ID, 0)
	if !strings.Contains(out, "metadata ok name=meta web") {
		t.Fatalf("the fake driver got no config drive: %s", out)
	}
}

// GuestMetadata serves a server only through a port its own record
// holds on that network: a port naming the server from elsewhere, an
// unknown server and a deleted one read nothing.
func TestGuestMetadata(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := user("p1")
	srv := e.settle(ctx, e.create(ctx, "guest one", func(o *compute.CreateServerOpts) {
		o.Networks = []compute.NetworkRequest{{UUID: netID}}
	}).ID)
	port := srv.Ports[0].ID
	h, err := e.svc.GuestMetadata(context.Background(), srv.ID, netID, port)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/openstack/latest/meta_data.json", nil))
	var md map[string]any
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &md) != nil || md["name"] != "guest one" || md["uuid"] != srv.ID {
		t.Fatalf("meta_data.json %d %s", rec.Code, rec.Body)
	}
	for _, c := range []struct{ name, server, network, port string }{
		{"another port", srv.ID, netID, "0b4e4f2c-aaaa-4bbb-8ccc-000000000001"},
		{"another network", srv.ID, "0b4e4f2c-aaaa-4bbb-8ccc-000000000002", port},
		{"unknown server", "0b4e4f2c-aaaa-4bbb-8ccc-000000000003", netID, port},
	} {
		if _, err := e.svc.GuestMetadata(context.Background(), c.server, c.network, c.port); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s: %v, want not found", c.name, err)
		}
	}
	if err := e.svc.DeleteServer(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	e.gone(ctx, srv.ID)
	if _, err := e.svc.GuestMetadata(context.Background(), srv.ID, netID, port); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("deleted server: %v, want not found", err)
	}
}
