package identity

import (
	"bytes"
	"testing"
)

func FuzzDecodeToken(f *testing.F) {
	kr, err := newKeyring([][]byte{bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		f.Fatal(err)
	}
	s := &Service{keys: kr}
	for _, p := range []*payload{
		{methods: methodPassword, scope: scopeProject, issuedAt: 1, expiresAt: 2, userID: "u", scopeID: "p", auditIDs: [][auditIDLen]byte{{1}}},
		{methods: methodToken | methodPassword, scope: scopeNone, issuedAt: 1, expiresAt: 2, userID: "u", auditIDs: [][auditIDLen]byte{{1}, {2}}},
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
		p, err := decodeToken(kr, tok)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same payload.
		q, err := unmarshalPayload(p.marshal())
		if err != nil || q.userID != p.userID || q.scopeID != p.scopeID || q.expiresAt != p.expiresAt {
			t.Fatalf("round trip: %+v %+v %v", p, q, err)
		}
	})
}

func FuzzUnmarshalPayload(f *testing.F) {
	f.Add((&payload{methods: methodPassword, scope: scopeSystem, issuedAt: 1, expiresAt: 5, userID: "u", scopeID: "all", auditIDs: [][auditIDLen]byte{{1}}}).marshal())
	f.Add([]byte{1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := unmarshalPayload(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.marshal(), b) {
			t.Fatalf("payload %x does not re-marshal to itself", b)
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
			if (m == "password" && req.Password == nil) || (m == "token" && req.Token == "") {
				t.Fatalf("method %s without its input", m)
			}
		}
		sc := req.Scope
		n := 0
		for _, set := range []bool{sc.ProjectID != "" || sc.ProjectName != "", sc.DomainID != "" || sc.DomainName != "", sc.System} {
			if set {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("two scopes accepted: %+v", sc)
		}
	})
}
