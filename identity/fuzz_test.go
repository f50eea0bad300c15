package identity

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzDecodeToken(f *testing.F) {
	kr, err := newKeyring(&TokenKeys{Primary: bytes.Repeat([]byte{7}, 32), Secondaries: [][]byte{bytes.Repeat([]byte{8}, 32)}})
	if err != nil {
		f.Fatal(err)
	}
	s := &Service{}
	s.keys.Store(kr)
	for _, p := range []*payload{
		{methods: methodPassword, scope: scopeProject, issuedAt: 1, expiresAt: 2, userID: "u", scopeID: "p", auditIDs: [][auditIDLen]byte{{1}}},
		{methods: methodToken | methodPassword, scope: scopeNone, issuedAt: 1, expiresAt: 2, userID: "u", auditIDs: [][auditIDLen]byte{{1}, {2}}},
		{methods: methodPassword, scope: scopeProject, issuedAt: 1, expiresAt: 2, userID: "u", scopeID: "p", trustID: "t", auditIDs: [][auditIDLen]byte{{1}, {2}, {3}}},
		{methods: methodAppCred, scope: scopeProject, issuedAt: 1, expiresAt: 2, userID: "u", scopeID: "p", appCredID: "a", auditIDs: [][auditIDLen]byte{{1}}},
	} {
		tok, err := s.encodeToken(f.Context(), p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	f.Add("")
	f.Add("gAAAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		p, _, err := decodeToken(kr, tok)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same payload.
		q, err := unmarshalPayload(p.marshal())
		if err != nil || q.userID != p.userID || q.scopeID != p.scopeID || q.expiresAt != p.expiresAt ||
			q.trustID != p.trustID || q.appCredID != p.appCredID || len(q.auditIDs) != len(p.auditIDs) {
			t.Fatalf("round trip: %+v %+v %v", p, q, err)
		}
	})
}

func FuzzUnmarshalPayload(f *testing.F) {
	f.Add((&payload{methods: methodPassword, scope: scopeSystem, issuedAt: 1, expiresAt: 5, userID: "u", scopeID: "all", auditIDs: [][auditIDLen]byte{{1}}}).marshal())
	f.Add((&payload{methods: methodAppCred, scope: scopeProject, issuedAt: 1, expiresAt: 5, userID: "u", scopeID: "p", appCredID: "a", auditIDs: [][auditIDLen]byte{{1}}}).marshal())
	f.Add([]byte{1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := unmarshalPayload(b)
		if err != nil {
			return
		}
		m := p.marshal()
		if b[0] == payloadVersion && !bytes.Equal(m, b) {
			t.Fatalf("payload %x does not re-marshal to itself", b)
		}
		// A version 1 payload is rewritten as version 2, stably.
		if q, err := unmarshalPayload(m); err != nil || !bytes.Equal(q.marshal(), m) {
			t.Fatalf("payload %x: unstable round trip: %v", b, err)
		}
	})
}

func FuzzParseAuthRequest(f *testing.F) {
	for _, s := range []string{
		`{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"x"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}`,
		`{"auth":{"identity":{"methods":["token"],"token":{"id":"abc"}},"scope":{"system":{"all":true}}}}`,
		`{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":"u","password":"x"}}},"scope":"unscoped"}}`,
		`{"auth":{"identity":{"methods":["password","token"]},"scope":{"domain":{"id":"default"}}}}`,
		`{"auth":null}`, `[]`, `{"auth":{"identity":{"methods":["x"]}}}`,
		`{"auth":{"identity":{"methods":["application_credential"],"application_credential":{"id":"a","secret":"s"}}}}`,
		`{"auth":{"identity":{"methods":["application_credential"],"application_credential":{"name":"n","secret":"s","user":{"name":"u","domain":{"name":"Default"}}}}}}`,
		`{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":"u","password":"x"}}},"scope":{"OS-TRUST:trust":{"id":"t"}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ParseAuthRequest(b)
		if err != nil {
			return
		}
		if len(req.Methods) == 0 {
			t.Fatal("accepted a request without methods")
		}
		for _, m := range req.Methods {
			if (m == "password" && req.Password == nil) || (m == "token" && req.Token == "") ||
				(m == "application_credential" && (req.ApplicationCredential == nil || req.ApplicationCredential.Secret == "")) {
				t.Fatalf("method %s without its input", m)
			}
		}
		sc := req.Scope
		n := 0
		for _, set := range []bool{sc.ProjectID != "" || sc.ProjectName != "", sc.DomainID != "" || sc.DomainName != "", sc.System, sc.TrustID != ""} {
			if set {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("two scopes accepted: %+v", sc)
		}
	})
}

// FuzzAccessRuleGlob checks the access rule glob parser and matcher on
// hostile patterns and paths: no panic, linear time, and agreement with a
// reference matcher (regexp) on what matches.
func FuzzAccessRuleGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"/v2.1/servers/*", "/v2.1/servers/abc"}, {"/v2.1/servers/**", "/v2.1/servers/a/b"},
		{"/v2.1/servers/{server_id}/ips", "/v2.1/servers/x/ips"}, {"/**/x/*", "/a/b/x/y"},
		{"/***", "/a"}, {"/{", "/a"}, {"/*/*/*/*/*", "/a/b/c/d/e"}, {"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		if len(pattern) > 255 || len(path) > 2048 {
			return
		}
		toks, ok := parseGlob(pattern)
		if !ok {
			return
		}
		got := matchGlob(toks, path)
		if !utf8.ValidString(pattern) || !utf8.ValidString(path) {
			return // regexp reads runes; the matcher reads bytes
		}
		if want := globRegexp(toks).MatchString(path); got != want {
			t.Fatalf("pattern %q path %q: matched %v, regexp says %v", pattern, path, got, want)
		}
	})
}

func globRegexp(toks []globTok) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, t := range toks {
		switch t.kind {
		case globLit:
			b.WriteString(regexp.QuoteMeta(t.lit))
		case globSegment:
			b.WriteString("[^/]+")
		case globAny:
			b.WriteString("(?s:.*)")
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
