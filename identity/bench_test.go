package identity

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stratuskit/stratus/store"
)

// benchEnv is a cloud with alice (member of p1) and her project token.
func benchEnv(b testing.TB) (*env, string) {
	e := newEnv(b)
	p, _ := e.tenant(b, "p1", "alice", "member")
	tok, _ := e.login(b, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	return e, tok
}

// addRevocations writes n revocation events that match no benchmark token.
func addRevocations(b testing.TB, e *env, n int) {
	b.Helper()
	for i := 0; i < n; i += 500 {
		err := e.st.Update(context.Background(), func(tx *store.Txn) error {
			for j := i; j < min(n, i+500); j++ {
				ev := Revocation{UserID: "user-" + strconv.Itoa(j)}
				switch j % 3 {
				case 0:
					a := newAuditID()
					ev = Revocation{AuditID: base64URL(a[:])}
				case 1:
					ev = Revocation{ProjectID: "project-" + strconv.Itoa(j)}
				}
				if err := e.svc.revokeTxn(tx, ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if got := e.svc.revocations().count; got != n {
		b.Fatalf("index holds %d events, want %d", got, n)
	}
}

func benchValidate(b *testing.B, svc *Service, tok string) {
	ctx := context.Background()
	if _, err := svc.ValidateToken(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := svc.ValidateToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate measures in-process token validation: cached, cached
// with 10,000 revocation events, and uncached (decrypt and resolve every
// time).
func BenchmarkValidate(b *testing.B) {
	b.Run("cached", func(b *testing.B) {
		e, tok := benchEnv(b)
		benchValidate(b, e.svc, tok)
	})
	b.Run("cached-10k-revocations", func(b *testing.B) {
		e, tok := benchEnv(b)
		addRevocations(b, e, 10000)
		benchValidate(b, e.svc, tok)
	})
	b.Run("uncached", func(b *testing.B) {
		e, tok := benchEnv(b)
		svc := must(New(Config{Store: e.st, TokenCacheSize: -1}))
		benchValidate(b, svc, tok)
	})
	b.Run("uncached-10k-revocations", func(b *testing.B) {
		e, tok := benchEnv(b)
		addRevocations(b, e, 10000)
		svc := must(New(Config{Store: e.st, TokenCacheSize: -1}))
		benchValidate(b, svc, tok)
	})
}

// BenchmarkIssue measures issuing a token without the KDF: rescoping an
// unscoped token to a project (token method).
func BenchmarkIssue(b *testing.B) {
	e := newEnv(b)
	p, _ := e.tenant(b, "p1", "alice", "member")
	tok, _ := e.login(b, "alice", "alice-pw", AuthScope{Unscoped: true})
	req := AuthRequest{Methods: []string{"token"}, Token: tok, Scope: AuthScope{ProjectID: p.ID}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.svc.Authenticate(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPassword compares a password login with the bare KDF at the
// default cost: logins/s are bound by the KDF.
func BenchmarkPassword(b *testing.B) {
	b.Run("kdf", func(b *testing.B) {
		var h PasswordHashing
		for b.Loop() {
			h.hash("correct horse battery staple")
		}
	})
	b.Run("login", func(b *testing.B) {
		e := newEnv(b)
		svc := must(New(Config{Store: e.st}))
		u := must(svc.CreateUser(e.admin, CreateUserOpts{Name: "kdfuser", Password: "correct horse battery staple"}))
		p := must(svc.CreateProject(e.admin, CreateProjectOpts{Name: "kp"}))
		if err := svc.CreateGrant(e.admin, Grant{UserID: u.ID, ProjectID: p.ID, RoleID: e.role(b, "member").ID}); err != nil {
			b.Fatal(err)
		}
		req := AuthRequest{Methods: []string{"password"}, Password: &PasswordAuth{UserID: u.ID, Password: "correct horse battery staple"},
			Scope: AuthScope{ProjectID: p.ID}}
		for b.Loop() {
			if _, _, err := svc.Authenticate(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchHTTP(b *testing.B, h http.Handler, tok string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	get := func() {
		req, _ := http.NewRequest("GET", srv.URL+"/v3/auth/tokens", nil)
		req.Header.Set("X-Auth-Token", tok)
		req.Header.Set("X-Subject-Token", tok)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	get()
	b.ResetTimer()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			get()
		}
	})
}

// BenchmarkHTTPValidate measures GET /v3/auth/tokens over loopback HTTP,
// beside a bare net/http handler that answers a body of the same size, for
// the ratio; and with 10,000 revocation events.
func BenchmarkHTTPValidate(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.Run("bare", func(b *testing.B) {
		e, tok := benchEnv(b)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v3/auth/tokens", nil)
		req.Header.Set("X-Auth-Token", tok)
		req.Header.Set("X-Subject-Token", tok)
		NewHandler(e.svc, quiet).ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		benchHTTP(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Subject-Token", r.Header.Get("X-Subject-Token"))
			_, _ = w.Write(body)
		}), tok)
	})
	b.Run("identity", func(b *testing.B) {
		e, tok := benchEnv(b)
		benchHTTP(b, NewHandler(e.svc, quiet), tok)
	})
	b.Run("identity-10k-revocations", func(b *testing.B) {
		e, tok := benchEnv(b)
		addRevocations(b, e, 10000)
		benchHTTP(b, NewHandler(e.svc, quiet), tok)
	})
}

// rotateN rotates the token keys n times with room for every key, so that
// a token issued before stays valid, now decrypted by a secondary key.
func rotateN(b testing.TB, svc *Service, n int) {
	b.Helper()
	for range n {
		if err := svc.RotateTokenKeys(WithCredentials(context.Background(), SystemAdmin())); err != nil {
			b.Fatal(err)
		}
	}
}

// keyedEnv is benchEnv with room for 12 keys (staged, primary and 10
// secondaries).
func keyedEnv(b testing.TB) (*env, string) {
	e := newEnvWith(b, func(c *Config) { c.MaxActiveKeys = 12 })
	p, _ := e.tenant(b, "p1", "alice", "member")
	tok, _ := e.login(b, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	return e, tok
}

// BenchmarkValidateKeys measures uncached validation (decrypt and
// resolve) of a token with one key and no revocation events, and of a
// token of the oldest of 10 secondary keys with 10,000 revocation events:
// the key id in the token picks the one key that opens it.
func BenchmarkValidateKeys(b *testing.B) {
	b.Run("1-key", func(b *testing.B) {
		e, tok := keyedEnv(b)
		benchValidate(b, must(New(Config{Store: e.st, TokenCacheSize: -1})), tok)
	})
	b.Run("10-secondaries-10k-revocations", func(b *testing.B) {
		e, tok := keyedEnv(b)
		rotateN(b, e.svc, 10)
		addRevocations(b, e, 10000)
		benchValidate(b, must(New(Config{Store: e.st, TokenCacheSize: -1})), tok)
	})
}

// BenchmarkAppCredAuth measures authentication with an application
// credential at the default argon2id cost: the first time (the KDF runs)
// and once its secret is remembered (a SHA-256 compare).
func BenchmarkAppCredAuth(b *testing.B) {
	e := newEnv(b)
	svc := must(New(Config{Store: e.st}))
	p, u := e.tenant(b, "p1", "alice", "member")
	_, ctx := e.login(b, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	ac := must(svc.CreateApplicationCredential(ctx, u.ID, CreateAppCredOpts{Name: "bench"}))
	req := AuthRequest{Methods: []string{"application_credential"}, ApplicationCredential: &AppCredAuth{ID: ac.ID, Secret: ac.Secret}}
	auth := func(b *testing.B) {
		if _, _, err := svc.Authenticate(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("kdf", func(b *testing.B) {
		for b.Loop() {
			svc.secrets.mu.Lock()
			svc.secrets.m = nil
			svc.secrets.mu.Unlock()
			auth(b)
		}
	})
	b.Run("remembered", func(b *testing.B) {
		auth(b)
		for b.Loop() {
			auth(b)
		}
	})
}
