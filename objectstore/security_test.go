package objectstore_test

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stratuskit/stratus/objectstore"
)

// TestIsolation: another project's token gets 403 on a private container
// whether or not it exists, and never sees its objects.
func TestIsolation(t *testing.T) {
	c := newCloud(t, nil)
	alice := c.tenant(t, "p1", "alice", "member")
	bob := c.tenant(t, "p2", "bob", "member")
	a := "/v1/" + alice.account
	c.expect(t, 201, alice, "PUT", a+"/private", "", nil)
	c.expect(t, 201, alice, "PUT", a+"/private/secret", "s3cr3t", nil)
	for _, tc := range []struct{ method, path string }{
		{"GET", a}, {"HEAD", a}, {"POST", a}, {"PUT", a + "/new"}, {"DELETE", a + "/private"},
		{"GET", a + "/private"}, {"HEAD", a + "/private"}, {"GET", a + "/private/secret"}, {"HEAD", a + "/private/secret"},
		{"PUT", a + "/private/x"}, {"DELETE", a + "/private/secret"}, {"POST", a + "/private/secret"},
		{"GET", a + "/missing"}, {"GET", a + "/missing/obj"},
	} {
		resp, body := c.do(t, bob, tc.method, tc.path, "", nil)
		if resp.StatusCode != 403 {
			t.Errorf("bob %s %s: %d, want 403", tc.method, tc.path, resp.StatusCode)
		}
		if strings.Contains(body, "s3cr3t") {
			t.Errorf("bob %s %s leaked the object", tc.method, tc.path)
		}
		if resp, _ := c.do(t, nil, tc.method, tc.path, "", nil); resp.StatusCode != 401 {
			t.Errorf("anonymous %s %s: %d, want 401", tc.method, tc.path, resp.StatusCode)
		}
	}
	// Bob copying alice's object into his own account is refused too.
	c.expect(t, 201, bob, "PUT", "/v1/"+bob.account+"/mine", "", nil)
	c.expect(t, 403, bob, "PUT", "/v1/"+bob.account+"/mine/stolen", "", map[string]string{"X-Copy-From": "/private/secret", "X-Copy-From-Account": alice.account})
	// Nor can a bulk delete reach across.
	_, body := c.expect(t, 200, bob, "POST", "/v1/"+bob.account+"?bulk-delete", "/private/secret\n", map[string]string{"Accept": "application/json"})
	if !strings.Contains(body, `"Number Deleted":0`) {
		t.Fatalf("bulk delete %s", body)
	}
	c.expect(t, 200, alice, "GET", a+"/private/secret", "", nil)
	// A reader of the project reads but does not write.
	reader := c.tenant(t, "p3", "rita", "reader")
	c.expect(t, 403, reader, "PUT", "/v1/"+reader.account+"/c", "", nil)
}

func TestACLs(t *testing.T) {
	c := newCloud(t, nil)
	alice := c.tenant(t, "p1", "alice", "member")
	bob := c.tenant(t, "p2", "bob", "member")
	a := "/v1/" + alice.account
	c.expect(t, 201, alice, "PUT", a+"/shared", "", nil)
	c.expect(t, 201, alice, "PUT", a+"/shared/o", "data", nil)
	c.expect(t, 403, bob, "GET", a+"/shared/o", "", nil)
	// Read ACL for bob's project and user.
	c.expect(t, 204, alice, "POST", a+"/shared", "", map[string]string{"X-Container-Read": bob.project + ":" + bob.name})
	c.expect(t, 200, bob, "GET", a+"/shared/o", "", nil)
	c.expect(t, 200, bob, "GET", a+"/shared", "", nil)
	c.expect(t, 403, bob, "PUT", a+"/shared/o2", "x", nil)
	c.expect(t, 403, bob, "POST", a+"/shared", "", map[string]string{"X-Container-Read": ".r:*"})
	c.expect(t, 401, nil, "GET", a+"/shared/o", "", nil)
	// Write ACL with a wildcard user.
	c.expect(t, 204, alice, "POST", a+"/shared", "", map[string]string{"X-Container-Write": bob.project + ":*"})
	c.expect(t, 201, bob, "PUT", a+"/shared/o2", "x", nil)
	c.expect(t, 400, alice, "POST", a+"/shared", "", map[string]string{"X-Container-Write": ".r:*"})
	// Public read: objects without a token, listings only with .rlistings.
	c.expect(t, 204, alice, "POST", a+"/shared", "", map[string]string{"X-Container-Read": ".r:*"})
	_, body := c.expect(t, 200, nil, "GET", a+"/shared/o", "", nil)
	if body != "data" {
		t.Fatalf("public read %q", body)
	}
	c.expect(t, 401, nil, "GET", a+"/shared", "", nil)
	c.expect(t, 401, nil, "PUT", a+"/shared/o3", "x", nil)
	c.expect(t, 204, alice, "POST", a+"/shared", "", map[string]string{"X-Container-Read": ".r:*,.rlistings"})
	_, body = c.expect(t, 200, nil, "GET", a+"/shared", "", nil)
	if body != "o\no2\n" {
		t.Fatalf("public listing %q", body)
	}
	// ACL headers are shown to the owner only.
	resp, _ := c.expect(t, 204, alice, "HEAD", a+"/shared", "", nil)
	if resp.Header.Get("X-Container-Read") != ".r:*,.rlistings" {
		t.Fatalf("owner sees %v", resp.Header)
	}
	resp, _ = c.expect(t, 204, nil, "HEAD", a+"/shared", "", nil)
	if resp.Header.Get("X-Container-Read") != "" {
		t.Fatal("ACL shown to an anonymous reader")
	}
}

// tempURL signs method on /v1/<account>/<container>/<object> with key.
func tempURL(key, method, path string, expires int64) string {
	return fmt.Sprintf("%s?temp_url_sig=%s&temp_url_expires=%d", path, objectstore.SignTempURL(key, method, path, expires), expires)
}

func TestTempURL(t *testing.T) {
	c := newCloud(t, nil)
	alice := c.tenant(t, "p1", "alice", "member")
	a := "/v1/" + alice.account
	c.expect(t, 201, alice, "PUT", a+"/c", "", nil)
	c.expect(t, 201, alice, "PUT", a+"/c/o", "data", nil)
	c.expect(t, 204, alice, "POST", a, "", map[string]string{"X-Account-Meta-Temp-URL-Key": "k1"})
	exp := time.Now().Add(time.Minute).Unix()
	_, body := c.expect(t, 200, nil, "GET", tempURL("k1", "GET", a+"/c/o", exp), "", nil)
	if body != "data" {
		t.Fatalf("temp URL GET %q", body)
	}
	c.expect(t, 200, nil, "HEAD", tempURL("k1", "GET", a+"/c/o", exp), "", nil)
	c.expect(t, 401, nil, "GET", tempURL("wrong", "GET", a+"/c/o", exp), "", nil)
	c.expect(t, 401, nil, "GET", tempURL("k1", "GET", a+"/c/o", time.Now().Add(-time.Second).Unix()), "", nil)
	// Container key, key 2, SHA-512 in the prefixed base64 form, ISO 8601 expiry.
	c.expect(t, 204, alice, "POST", a+"/c", "", map[string]string{"X-Container-Meta-Temp-URL-Key-2": "ck"})
	h := hmac.New(sha512.New, []byte("ck"))
	fmt.Fprintf(h, "GET\n%d\n%s", exp, a+"/c/o")
	sig := "sha512:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
	iso := time.Unix(exp, 0).UTC().Format("2006-01-02T15:04:05Z")
	c.expect(t, 200, nil, "GET", a+"/c/o?temp_url_sig="+url.QueryEscape(sig)+"&temp_url_expires="+iso, "", nil)
	// A prefix URL reaches objects under the prefix only.
	c.expect(t, 201, alice, "PUT", a+"/c/dir/x", "x", nil)
	psig := objectstore.SignTempURL("k1", "GET", "prefix:"+a+"/c/dir/", exp)
	c.expect(t, 200, nil, "GET", fmt.Sprintf("%s/c/dir/x?temp_url_sig=%s&temp_url_expires=%d&temp_url_prefix=dir/", a, psig, exp), "", nil)
	c.expect(t, 401, nil, "GET", fmt.Sprintf("%s/c/o?temp_url_sig=%s&temp_url_expires=%d&temp_url_prefix=dir/", a, psig, exp), "", nil)
	// PUT through a temp URL, and filename= for downloads.
	c.expect(t, 201, nil, "PUT", tempURL("k1", "PUT", a+"/c/up", exp), "uploaded", nil)
	resp, _ := c.expect(t, 200, nil, "GET", tempURL("k1", "GET", a+"/c/up", exp)+"&filename=report.txt", "", nil)
	if !strings.Contains(resp.Header.Get("Content-Disposition"), "report.txt") {
		t.Fatalf("Content-Disposition %q", resp.Header.Get("Content-Disposition"))
	}
}

// TestTempURLScope is the regression test for OSSA-2015-016: a temp URL
// signed for PUT cannot GET or HEAD anything, and a temp URL for one
// object reaches no other, neither directly nor through a manifest or a
// copy it creates.
func TestTempURLScope(t *testing.T) {
	c := newCloud(t, nil)
	alice := c.tenant(t, "p1", "alice", "member")
	a := "/v1/" + alice.account
	c.expect(t, 201, alice, "PUT", a+"/c", "", nil)
	c.expect(t, 201, alice, "PUT", a+"/secret", "", nil)
	c.expect(t, 201, alice, "PUT", a+"/secret/s", "s3cr3t", nil)
	c.expect(t, 201, alice, "PUT", a+"/c/o", "data", nil)
	c.expect(t, 204, alice, "POST", a, "", map[string]string{"X-Account-Meta-Temp-URL-Key": "k1"})
	exp := time.Now().Add(time.Minute).Unix()
	put := func(path string) string { return tempURL("k1", "PUT", path, exp) }
	for _, m := range []string{"GET", "HEAD", "DELETE", "POST"} {
		c.expect(t, 401, nil, m, put(a+"/c/o"), "", nil)
	}
	// Signed for c/o: another object, container or account is out of reach.
	get := tempURL("k1", "GET", a+"/c/o", exp)
	q := get[strings.Index(get, "?"):]
	for _, p := range []string{a + "/c/other", a + "/secret/s", a + "/c/o/", a + "/c/o2", a + "/c", a} {
		if resp, body := c.do(t, nil, "GET", p+q, "", nil); resp.StatusCode < 400 || strings.Contains(body, "s3cr3t") {
			t.Errorf("GET %s with c/o's signature: %d", p, resp.StatusCode)
		}
	}
	// A PUT URL cannot plant a manifest or a copy that reads other objects.
	for _, hdr := range []map[string]string{
		{"X-Object-Manifest": "secret/s"},
		{"X-Copy-From": "/secret/s"},
	} {
		if resp, _ := c.do(t, nil, "PUT", put(a+"/c/o"), "", hdr); resp.StatusCode < 400 {
			t.Errorf("temp URL PUT with %v: %d", hdr, resp.StatusCode)
		}
	}
	if resp, _ := c.do(t, nil, "PUT", put(a+"/c/o")+"&multipart-manifest=put", `[{"path":"/secret/s"}]`, nil); resp.StatusCode < 400 {
		t.Errorf("temp URL SLO manifest PUT: %d", resp.StatusCode)
	}
	if resp, _ := c.do(t, nil, "COPY", put(a+"/c/o"), "", map[string]string{"Destination": "/c/copied"}); resp.StatusCode < 400 {
		t.Errorf("temp URL COPY: %d", resp.StatusCode)
	}
	_, body := c.expect(t, 200, nil, "GET", get, "", nil)
	if body != "data" {
		t.Fatalf("the object changed: %q", body)
	}
}

// TestTempURLConstantTime is the regression test for OSSA-2014-002: the
// signature check compares MACs with hmac.Equal and never with == or
// bytes.Equal, whose time depends on the first differing byte.
func TestTempURLConstantTime(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "tempurl.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if d, ok := d.(*ast.FuncDecl); ok && d.Name.Name == "VerifyTempURL" {
			fn = d
		}
	}
	if fn == nil {
		t.Fatal("VerifyTempURL not found in tempurl.go")
	}
	usesHMACEqual := false
	ast.Inspect(fn, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok {
				switch x.Name + "." + n.Sel.Name {
				case "hmac.Equal":
					usesHMACEqual = true
				case "bytes.Equal", "strings.EqualFold", "hex.EncodeToString":
					t.Errorf("VerifyTempURL uses %s.%s on signatures", x.Name, n.Sel.Name)
				}
			}
		case *ast.BinaryExpr:
			if (n.Op == token.EQL || n.Op == token.NEQ) && (mentions(n.X, "mac") || mentions(n.Y, "mac") || mentions(n.X, "Signature") || mentions(n.Y, "Signature")) {
				t.Error("VerifyTempURL compares a signature with == or !=")
			}
		}
		return true
	})
	if !usesHMACEqual {
		t.Error("VerifyTempURL does not compare with hmac.Equal")
	}
}

func mentions(e ast.Expr, name string) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Ident:
			found = found || n.Name == name
		case *ast.SelectorExpr:
			found = found || n.Sel.Name == name
		}
		return !found
	})
	return found
}
