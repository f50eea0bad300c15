package identity

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/credentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/trusts"
)

func TestGophercloudApplicationCredentials(t *testing.T) {
	e, url := newServer(t)
	ctx := context.Background()
	p, alice := e.tenant(t, "p1", "alice", "member")
	c, _ := client(t, url, gophercloud.AuthOptions{Username: "alice", Password: "alice-pw", DomainName: "Default", TenantID: p.ID})

	exp := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Second)
	ac, err := applicationcredentials.Create(ctx, c, alice.ID, applicationcredentials.CreateOpts{Name: "ci",
		Description: "for CI", Roles: []applicationcredentials.Role{{Name: "member"}}, ExpiresAt: &exp,
		AccessRules: []applicationcredentials.AccessRule{{Service: "identity", Method: "GET", Path: "/v3/auth/tokens"}}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if ac.Secret == "" || ac.ProjectID != p.ID || len(ac.Roles) != 1 || ac.Roles[0].Name != "member" ||
		!ac.ExpiresAt.Equal(exp) || len(ac.AccessRules) != 1 || ac.AccessRules[0].ID == "" {
		t.Fatalf("created %+v", ac)
	}
	got, err := applicationcredentials.Get(ctx, c, alice.ID, ac.ID).Extract()
	if err != nil || got.Name != "ci" || got.Secret != "" || got.Description != "for CI" {
		t.Fatalf("get %+v %v", got, err)
	}
	pages, err := applicationcredentials.List(c, alice.ID, applicationcredentials.ListOpts{Name: "ci"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := applicationcredentials.ExtractApplicationCredentials(pages); len(all) != 1 || all[0].ID != ac.ID {
		t.Fatalf("list %+v", all)
	}
	// Authenticate with it by id, and by name.
	for _, opts := range []gophercloud.AuthOptions{
		{ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: ac.Secret},
		{ApplicationCredentialName: "ci", ApplicationCredentialSecret: ac.Secret, UserID: alice.ID},
	} {
		res := tokens.Create(ctx, c, &tokens.AuthOptions{IdentityEndpoint: url, ApplicationCredentialID: opts.ApplicationCredentialID,
			ApplicationCredentialName: opts.ApplicationCredentialName, ApplicationCredentialSecret: opts.ApplicationCredentialSecret, UserID: opts.UserID})
		user, err := res.ExtractUser()
		if err != nil {
			t.Fatal(err)
		}
		proj, _ := res.ExtractProject()
		if user.ID != alice.ID || proj == nil || proj.ID != p.ID {
			t.Fatalf("token user %+v project %+v", user, proj)
		}
		// Its access rule allows validating tokens, nothing else here.
		tok, _ := res.ExtractTokenID()
		for path, want := range map[string]int{"/auth/tokens": 200, "/users/" + alice.ID + "/application_credentials": 401} {
			req, _ := http.NewRequest("GET", url+path, nil)
			req.Header.Set("X-Auth-Token", tok)
			req.Header.Set("X-Subject-Token", tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("GET %s with the access-ruled token: %d, want %d", path, resp.StatusCode, want)
			}
		}
	}
	rp, err := applicationcredentials.ListAccessRules(c, alice.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rules, _ := applicationcredentials.ExtractAccessRules(rp); len(rules) != 1 || rules[0].Path != "/v3/auth/tokens" {
		t.Fatalf("access rules %+v", rules)
	}
	rule, err := applicationcredentials.GetAccessRule(ctx, c, alice.ID, ac.AccessRules[0].ID).Extract()
	if err != nil || rule.Service != "identity" {
		t.Fatalf("access rule %+v %v", rule, err)
	}
	if err := applicationcredentials.DeleteAccessRule(ctx, c, alice.ID, rule.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, 403) {
		t.Fatalf("deleting a rule in use: %v", err)
	}
	if err := applicationcredentials.Delete(ctx, c, alice.ID, ac.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := applicationcredentials.Get(ctx, c, alice.ID, ac.ID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestGophercloudTrusts(t *testing.T) {
	e, url := newServer(t)
	ctx := context.Background()
	p, alice := e.tenant(t, "p1", "alice", "member")
	_, bob := e.tenant(t, "p2", "bob", "member")
	c, _ := client(t, url, gophercloud.AuthOptions{Username: "alice", Password: "alice-pw", DomainName: "Default", TenantID: p.ID})

	exp := time.Now().UTC().Add(time.Hour).Truncate(time.Millisecond)
	tr, err := trusts.Create(ctx, c, trusts.CreateOpts{TrustorUserID: alice.ID, TrusteeUserID: bob.ID, ProjectID: p.ID,
		Impersonation: true, Roles: []trusts.Role{{Name: "member"}}, ExpiresAt: &exp, RemainingUses: 5}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if tr.TrusteeUserID != bob.ID || !tr.Impersonation || tr.RemainingUses != 5 || !tr.ExpiresAt.Equal(exp) || len(tr.Roles) != 1 {
		t.Fatalf("created %+v", tr)
	}
	got, err := trusts.Get(ctx, c, tr.ID).Extract()
	if err != nil || got.ID != tr.ID {
		t.Fatalf("get %+v %v", got, err)
	}
	pages, err := trusts.List(c, trusts.ListOpts{TrustorUserID: alice.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := trusts.ExtractTrusts(pages); len(all) != 1 {
		t.Fatalf("list %+v", all)
	}
	rp, err := trusts.ListRoles(c, tr.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roles, _ := trusts.ExtractRoles(rp)
	if len(roles) != 1 || roles[0].Name != "member" {
		t.Fatalf("roles %+v", roles)
	}
	if err := trusts.CheckRole(ctx, c, tr.ID, roles[0].ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if r, err := trusts.GetRole(ctx, c, tr.ID, roles[0].ID).Extract(); err != nil || r.Name != "member" {
		t.Fatalf("get role %+v %v", r, err)
	}

	// The trustee gets a trust-scoped token.
	res := tokens.Create(ctx, c, &tokens.AuthOptions{IdentityEndpoint: url, UserID: bob.ID, Password: "bob-pw",
		Scope: tokens.Scope{TrustID: tr.ID}})
	trust, err := res.ExtractTrust()
	if err != nil {
		t.Fatal(err)
	}
	user, _ := res.ExtractUser()
	proj, _ := res.ExtractProject()
	if trust.ID != tr.ID || !trust.Impersonation || trust.TrusteeUserID.ID != bob.ID || trust.TrustorUserID.ID != alice.ID ||
		user.ID != alice.ID || proj.ID != p.ID {
		t.Fatalf("trust %+v user %+v project %+v", trust, user, proj)
	}
	// gophercloud's own trust auth path (AuthOptions.Scope.TrustID).
	bc, _ := client(t, url, gophercloud.AuthOptions{UserID: bob.ID, Password: "bob-pw", Scope: &gophercloud.AuthScope{TrustID: tr.ID}})
	tokID := bc.Token()
	if _, err := tokens.Get(ctx, c, tokID).ExtractToken(); err != nil {
		t.Fatalf("trust token validates: %v", err)
	}
	if err := trusts.Delete(ctx, c, tr.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Get(ctx, c, tokID).ExtractToken(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("trust token after the trust's deletion: %v", err)
	}
}

func TestGophercloudCredentials(t *testing.T) {
	e, url := newServer(t)
	ctx := context.Background()
	p, alice := e.tenant(t, "p1", "alice", "member")
	c, _ := client(t, url, gophercloud.AuthOptions{Username: "alice", Password: "alice-pw", DomainName: "Default", TenantID: p.ID})
	blob := `{"access":"AKIA1","secret":"s3cr3t"}`
	cr, err := credentials.Create(ctx, c, credentials.CreateOpts{UserID: alice.ID, ProjectID: p.ID, Type: "ec2", Blob: blob}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if cr.Blob != blob || cr.Type != "ec2" || cr.ProjectID != p.ID || cr.ID != ec2CredentialID("AKIA1") {
		t.Fatalf("created %+v", cr)
	}
	up, err := credentials.Update(ctx, c, cr.ID, credentials.UpdateOpts{Blob: `{"access":"AKIA1","secret":"new"}`}).Extract()
	if err != nil || up.Blob != `{"access":"AKIA1","secret":"new"}` {
		t.Fatalf("update %+v %v", up, err)
	}
	pages, err := credentials.List(c, credentials.ListOpts{Type: "ec2"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := credentials.ExtractCredentials(pages); len(all) != 1 {
		t.Fatalf("list %+v", all)
	}
	// Another user sees 404.
	_, _ = e.tenant(t, "p2", "bob", "member")
	bc, _ := client(t, url, gophercloud.AuthOptions{Username: "bob", Password: "bob-pw", DomainName: "Default"})
	if _, err := credentials.Get(ctx, bc, cr.ID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("other user: %v", err)
	}
	if err := credentials.Delete(ctx, c, cr.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := credentials.Get(ctx, c, cr.ID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("after delete: %v", err)
	}
}
