package orchestration_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/resourcetypes"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stackevents"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stackresources"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stacks"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stacktemplates"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/orchestration"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

var admin = identity.WithCredentials(context.Background(), identity.SystemAdmin())

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type cloud struct {
	authURL, heatURL string
}

// newCloud runs identity and orchestration on loopback, with a second
// project p2 whose member is u2.
func newCloud(t *testing.T) *cloud {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, memstore.New(), slices.Concat(identity.Tables(), orchestration.Tables()), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ids := must(identity.New(identity.Config{Store: st, Logger: logger, PasswordHashing: identity.PasswordHashing{Time: 1, MemoryKiB: 64, Threads: 1}}))
	if err := ids.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ids.Close() })
	svc := must(orchestration.New(orchestration.Config{Store: st, Logger: logger}))
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	idSrv := httptest.NewServer(identity.NewHandler(ids, logger))
	t.Cleanup(idSrv.Close)
	heatSrv := httptest.NewServer(orchestration.NewHandler(svc, ids, logger))
	t.Cleanup(heatSrv.Close)
	if err := ids.Bootstrap(admin, identity.BootstrapOptions{AdminPassword: "secret", Services: []identity.ServiceEndpoints{
		{Type: "identity", Name: "keystone", PublicURL: idSrv.URL + "/v3"},
		{Type: "orchestration", Name: "heat", PublicURL: heatSrv.URL + "/v1/%(project_id)s"},
	}}); err != nil {
		t.Fatal(err)
	}
	p2 := must(ids.CreateProject(admin, identity.CreateProjectOpts{Name: "p2", DomainID: identity.DefaultDomainID}))
	u2 := must(ids.CreateUser(admin, identity.CreateUserOpts{Name: "u2", Password: "pw2", DomainID: identity.DefaultDomainID, DefaultProjectID: p2.ID}))
	role := must(ids.RoleByName(admin, identity.RoleMember))
	if err := ids.CreateGrant(admin, identity.Grant{UserID: u2.ID, ProjectID: p2.ID, RoleID: role.ID}); err != nil {
		t.Fatal(err)
	}
	return &cloud{authURL: idSrv.URL + "/v3", heatURL: heatSrv.URL}
}

func (c *cloud) client(t *testing.T, user, password, project string) *gophercloud.ServiceClient {
	t.Helper()
	pc, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: c.authURL, Username: user, Password: password, DomainName: "Default", TenantName: project})
	if err != nil {
		t.Fatal(err)
	}
	return must(openstack.NewOrchestrationV1(pc, gophercloud.EndpointOpts{Region: identity.DefaultRegion}))
}

const webTemplate = `
heat_template_version: 2016-04-08
description: gophercloud test
parameters:
  greeting: {type: string, default: hello, constraints: [{allowed_values: [hello, hi]}]}
  count: {type: number, default: 2}
resources:
  pw: {type: OS::Heat::RandomString, properties: {length: 10}}
  echo:
    type: OS::Heat::TestResource
    properties:
      value: {list_join: ["-", [{get_param: greeting}, {get_attr: [pw, value]}]]}
  items:
    type: OS::Heat::TestResource
    depends_on: echo
    properties:
      value: {str_split: [",", "a,b,c", 1]}
outputs:
  echo: {description: the greeting, value: {get_attr: [echo, output]}}
  hash: {value: {digest: [sha256, {get_attr: [items, output]}]}}
  merged: {value: {map_merge: [{a: 1}, {b: {get_param: count}}]}}
`

func waitStack(t *testing.T, c *gophercloud.ServiceClient, name, id, want string) *stacks.RetrievedStack {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s, err := stacks.Get(context.Background(), c, name, id).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if s.Status == want {
			return s
		}
		if !strings.HasSuffix(s.Status, "IN_PROGRESS") || time.Now().After(deadline) {
			t.Fatalf("stack %s: %s (%s), want %s", name, s.Status, s.StatusReason, want)
		}
	}
}

func TestGophercloudStackLifecycle(t *testing.T) {
	ctx := context.Background()
	c := newCloud(t)
	hc := c.client(t, "admin", "secret", "admin")
	created, err := stacks.Create(ctx, hc, stacks.CreateOpts{Name: "web", TemplateOpts: &stacks.Template{TE: stacks.TE{Bin: []byte(webTemplate)}},
		Parameters: map[string]any{"greeting": "hi"}, Timeout: 5}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	s := waitStack(t, hc, "web", created.ID, "CREATE_COMPLETE")
	outs := map[string]any{}
	for _, o := range s.Outputs {
		outs[o["output_key"].(string)] = o["output_value"]
	}
	echo, _ := outs["echo"].(string)
	if !strings.HasPrefix(echo, "hi-") || len(echo) != 13 || outs["hash"] != "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d" ||
		outs["merged"].(map[string]any)["b"] != float64(2) {
		t.Fatalf("outputs %v", outs)
	}
	if s.Parameters["greeting"] != "hi" || s.Parameters["OS::stack_name"] != "web" {
		t.Fatalf("parameters %v", s.Parameters)
	}
	// Find by name goes through Heat's 302 to /stacks/web/{id}.
	found, err := stacks.Find(ctx, hc, "web").Extract()
	if err != nil || found.ID != created.ID {
		t.Fatalf("find: %v %v", found, err)
	}
	pages, err := stacks.List(hc, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := stacks.ExtractStacks(pages)
	if len(all) != 1 || all[0].Name != "web" || all[0].Status != "CREATE_COMPLETE" {
		t.Fatalf("list %+v", all)
	}
	rp, err := stackresources.List(hc, "web", created.ID, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := stackresources.ExtractResources(rp)
	if len(rs) != 3 {
		t.Fatalf("resources %+v", rs)
	}
	echoRes, err := stackresources.Get(ctx, hc, "web", created.ID, "echo").Extract()
	if err != nil || echoRes.Type != "OS::Heat::TestResource" || echoRes.Status != "CREATE_COMPLETE" || echoRes.Attributes["output"] != echo {
		t.Fatalf("resource %+v %v", echoRes, err)
	}
	ep, err := stackevents.List(hc, "web", created.ID, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := stackevents.ExtractEvents(ep)
	if len(evs) != 8 || evs[len(evs)-1].ResourceStatus != "CREATE_COMPLETE" || evs[len(evs)-1].ResourceName != "web" {
		t.Fatalf("%d events, last %+v", len(evs), evs[len(evs)-1])
	}
	for _, e := range evs {
		if e.ResourceName == "echo" && e.ResourceStatus == "CREATE_COMPLETE" {
			got, err := stackevents.Get(ctx, hc, "web", created.ID, "echo", e.ID).Extract()
			if err != nil || got.ID != e.ID || got.ResourceStatus != "CREATE_COMPLETE" || got.PhysicalResourceID != echoRes.PhysicalID {
				t.Fatalf("event show %+v %v", got, err)
			}
		}
	}
	tmpl, err := stacktemplates.Get(ctx, hc, "web", created.ID).Extract()
	if err != nil || !strings.Contains(string(tmpl), "gophercloud test") {
		t.Fatalf("template %s %v", tmpl, err)
	}
	types, err := resourcetypes.List(ctx, hc, nil).Extract()
	if err != nil || !slices.ContainsFunc(types, func(r resourcetypes.ResourceTypeSummary) bool { return r.ResourceType == "OS::Heat::RandomString" }) {
		t.Fatalf("types %v %v", types, err)
	}
	sch, err := resourcetypes.GetSchema(ctx, hc, "OS::Heat::RandomString").Extract()
	if err != nil || sch.Properties["length"].Type != "integer" || sch.Attributes["value"].Description == "" {
		t.Fatalf("schema %+v %v", sch, err)
	}
	// PATCH (gophercloud's UpdatePatch): the greeting changes in place,
	// the count comes from the environment's parameter_defaults, sent as
	// YAML text as gophercloud does.
	err = stacks.UpdatePatch(ctx, hc, "web", created.ID, stacks.UpdateOpts{Parameters: map[string]any{"greeting": "hello"},
		EnvironmentOpts: &stacks.Environment{TE: stacks.TE{Bin: []byte("parameter_defaults: {count: 7}\n")}}}).ExtractErr()
	if err != nil {
		t.Fatal(err)
	}
	s = waitStack(t, hc, "web", created.ID, "UPDATE_COMPLETE")
	outs = map[string]any{}
	for _, o := range s.Outputs {
		outs[o["output_key"].(string)] = o["output_value"]
	}
	if outs["echo"] != "hello-"+strings.TrimPrefix(echo, "hi-") || outs["merged"].(map[string]any)["b"] != float64(7) {
		t.Fatalf("after the update: outputs %v", outs)
	}
	if again, _ := stackresources.Get(ctx, hc, "web", created.ID, "echo").Extract(); again.PhysicalID != echoRes.PhysicalID || again.Status != "UPDATE_COMPLETE" {
		t.Fatalf("echo after the update: %+v", again)
	}
	// PUT needs a template.
	if err := stacks.Update(ctx, hc, "web", created.ID, stacks.UpdateOpts{TemplateOpts: &stacks.Template{TE: stacks.TE{Bin: []byte(webTemplate)}}}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStack(t, hc, "web", created.ID, "UPDATE_COMPLETE")
	if err := stacks.Delete(ctx, hc, "web", created.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStack(t, hc, "web", created.ID, "DELETE_COMPLETE")
}

// validationCase is a template (and parameters) that must be refused
// with a 400 whose message has want.
type validationCase struct {
	name, tmpl string
	params     map[string]any
	want       string
}

func TestGophercloudValidationErrorsNameTheCulprit(t *testing.T) {
	ctx := context.Background()
	c := newCloud(t)
	hc := c.client(t, "admin", "secret", "admin")
	cases := []validationCase{
		{"cycle", "heat_template_version: 2013-05-23\nresources:\n  a: {type: OS::Heat::None, depends_on: c}\n  b: {type: OS::Heat::None, depends_on: a}\n  c: {type: OS::Heat::None, depends_on: b}\n", nil, "a -> c -> b -> a"},
		{"type", "heat_template_version: 2013-05-23\nresources:\n  a: {type: OS::Nova::Nope}\n", nil, `"OS::Nova::Nope"`},
		{"function", "heat_template_version: 2013-05-23\nresources:\n  a: {type: OS::Heat::TestResource, properties: {value: {get_pram: x}}}\n", nil, `"get_pram"`},
		{"version", "heat_template_version: 2013-05-23\nresources:\n  a: {type: OS::Heat::TestResource, properties: {value: {map_merge: [{}]}}}\n", nil, "2016-04-08"},
		{"missing parameter", "heat_template_version: 2013-05-23\nparameters: {flavor: {type: string}}\nresources: {}\n", nil, `"flavor" was not provided`},
		{"constraint", "heat_template_version: 2013-05-23\nparameters: {word: {type: string, constraints: [{length: {max: 3}}]}}\nresources: {}\n", map[string]any{"word": "toolong"}, "length must be between"},
		{"pattern", "heat_template_version: 2013-05-23\nparameters: {word: {type: string, constraints: [{allowed_pattern: '[a-z]+'}]}}\nresources: {}\n", map[string]any{"word": "A1"}, "does not match pattern"},
		{"property", "heat_template_version: 2013-05-23\nresources:\n  a: {type: OS::Heat::RandomString, properties: {sise: 3}}\n", nil, `"sise"`},
		{"reference", "heat_template_version: 2013-05-23\nresources:\n  a: {type: OS::Heat::TestResource, properties: {value: {get_resource: ghost}}}\n", nil, `"ghost"`},
	}
	cases = append(cases,
		validationCase{"size", "heat_template_version: 2013-05-23\ndescription: " + strings.Repeat("x", 600<<10) + "\n", nil, "larger than the limit of 524288"},
		validationCase{"nesting", "heat_template_version: 2013-05-23\nresources:\n  a: {type: OS::Heat::TestResource, properties: {value: " +
			strings.Repeat("{list_join: [',', [", 40) + "x" + strings.Repeat("]]}", 40) + "}}\n", nil, "nested more than 64 levels"})
	for _, tc := range cases {
		_, err := stacks.Create(ctx, hc, stacks.CreateOpts{Name: "bad", TemplateOpts: &stacks.Template{TE: stacks.TE{Bin: []byte(tc.tmpl)}},
			Parameters: tc.params}).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || !strings.Contains(heatMessage(err), tc.want) ||
			!strings.Contains(err.Error(), `"type":"StackValidationFailed"`) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Validate says the same without creating.
	_, err := stacktemplates.Validate(ctx, hc, stacktemplates.ValidateOpts{Template: cases[0].tmpl}).Extract()
	if err == nil || !strings.Contains(err.Error(), "circular dependency") {
		t.Fatalf("validate: %v", err)
	}
	v, err := stacktemplates.Validate(ctx, hc, stacktemplates.ValidateOpts{Template: webTemplate}).Extract()
	if err != nil || v.Description != "gophercloud test" || v.Parameters["greeting"].(map[string]any)["Type"] != "String" {
		t.Fatalf("validate: %+v %v", v, err)
	}
}

func closeBody(resp *http.Response) {
	if resp != nil {
		resp.Body.Close()
	}
}

// heatMessage is error.message of a Heat error body.
func heatMessage(err error) string {
	_, body, _ := strings.Cut(err.Error(), "instead: ")
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	return e.Error.Message
}

// TestGophercloudOtherProjectGets404 is the OSSA-2013-035 class: a stack
// of another project is not found for every verb, whether named by id or
// by name, and with the owner's project in the URL.
func TestGophercloudOtherProjectGets404(t *testing.T) {
	ctx := context.Background()
	c := newCloud(t)
	owner := c.client(t, "admin", "secret", "admin")
	created, err := stacks.Create(ctx, owner, stacks.CreateOpts{Name: "secret", TemplateOpts: &stacks.Template{TE: stacks.TE{Bin: []byte(webTemplate)}}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitStack(t, owner, "secret", created.ID, "CREATE_COMPLETE")
	other := c.client(t, "u2", "pw2", "p2")
	is404 := func(what string, err error) {
		t.Helper()
		if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("%s: %v, want 404", what, err)
		}
	}
	_, err = stacks.Get(ctx, other, "secret", created.ID).Extract()
	is404("get", err)
	_, err = stacks.Find(ctx, other, created.ID).Extract()
	is404("find by id", err)
	_, err = stacks.Find(ctx, other, "secret").Extract()
	is404("find by name", err)
	is404("delete", stacks.Delete(ctx, other, "secret", created.ID).ExtractErr())
	_, err = stackresources.List(other, "secret", created.ID, nil).AllPages(ctx)
	is404("resources", err)
	_, err = stackresources.Get(ctx, other, "secret", created.ID, "echo").Extract()
	is404("resource", err)
	_, err = stackevents.List(other, "secret", created.ID, nil).AllPages(ctx)
	is404("events", err)
	_, err = stacktemplates.Get(ctx, other, "secret", created.ID).Extract()
	is404("template", err)
	// The owner's project in the URL, the other project's token.
	ownerURL := owner.ResourceBaseURL() + "stacks/secret/" + created.ID
	resp, err := other.Get(ctx, ownerURL, nil, nil)
	closeBody(resp)
	is404("owner's URL", err)
	resp, err = other.Delete(ctx, ownerURL, nil)
	closeBody(resp)
	is404("owner's URL delete", err)
	pages, _ := stacks.List(other, nil).AllPages(ctx)
	if l, _ := stacks.ExtractStacks(pages); len(l) != 0 {
		t.Fatalf("other project lists %v", l)
	}
	waitStack(t, owner, "secret", created.ID, "CREATE_COMPLETE")
}
