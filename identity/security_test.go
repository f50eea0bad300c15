package identity

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
)

func (e *env) tryLogin(user, password string) error {
	_, _, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
		Password: &PasswordAuth{UserName: user, DomainID: DefaultDomainID, Password: password}})
	return err
}

func wantMessage(t *testing.T, err error, status int, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %d %q", status, msg)
	}
	if got := httpapi.StatusOf(err); got != status {
		t.Fatalf("status %d (%v), want %d", got, err, status)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not say %q", err, msg)
	}
}

func TestLockout(t *testing.T) {
	e := newEnvWith(t, func(c *Config) {
		c.Security = SecurityCompliance{LockoutFailureAttempts: 3, LockoutDuration: 5 * time.Minute}
	})
	_, u := e.tenant(t, "p1", "alice", "member")
	// Failures below the limit do not lock; a success resets the count.
	for range 2 {
		wantKind(t, e.tryLogin("alice", "wrong"), errdefs.ErrUnauthenticated)
	}
	if err := e.tryLogin("alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	// Failures count however far apart, as in Keystone.
	for range 2 {
		wantKind(t, e.tryLogin("alice", "wrong"), errdefs.ErrUnauthenticated)
		e.clock.Advance(time.Hour)
	}
	wantKind(t, e.tryLogin("alice", "wrong"), errdefs.ErrUnauthenticated)
	wantMessage(t, e.tryLogin("alice", "alice-pw"), http.StatusUnauthorized, "The account is locked for user: "+u.ID+".")
	e.clock.Advance(6 * time.Minute)
	if err := e.tryLogin("alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		wantKind(t, e.tryLogin("alice", "wrong"), errdefs.ErrUnauthenticated)
	}
	// Locked: even the right password is refused, with Keystone's message.
	wantMessage(t, e.tryLogin("alice", "alice-pw"), http.StatusUnauthorized, "The account is locked for user: "+u.ID+".")
	e.clock.Advance(4 * time.Minute)
	wantMessage(t, e.tryLogin("alice", "alice-pw"), http.StatusUnauthorized, "The account is locked for user")
	e.clock.Advance(2 * time.Minute)
	if err := e.tryLogin("alice", "alice-pw"); err != nil {
		t.Fatalf("after the lockout duration: %v", err)
	}
	// An exempt user is never locked.
	must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Options: map[string]any{"ignore_lockout_failure_attempts": true}}))
	for range 5 {
		wantKind(t, e.tryLogin("alice", "wrong"), errdefs.ErrUnauthenticated)
	}
	if err := e.tryLogin("alice", "alice-pw"); err != nil {
		t.Fatalf("exempt user: %v", err)
	}
	// An admin re-enabling a locked user unlocks it.
	must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Options: map[string]any{}}))
	for range 3 {
		_ = e.tryLogin("alice", "wrong")
	}
	wantMessage(t, e.tryLogin("alice", "alice-pw"), http.StatusUnauthorized, "locked")
	f, tr := false, true
	must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Enabled: &f}))
	must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Enabled: &tr}))
	if err := e.tryLogin("alice", "alice-pw"); err != nil {
		t.Fatalf("re-enabled user: %v", err)
	}
}

func TestPasswordRules(t *testing.T) {
	e := newEnvWith(t, func(c *Config) {
		c.Security = SecurityCompliance{PasswordRegex: `^.{8,}$`, PasswordRegexDescription: "at least 8 characters",
			UniqueLastPasswordCount: 3, MinimumPasswordAge: 1, PasswordExpiresDays: 30}
	})
	_, err := e.svc.CreateUser(e.admin, CreateUserOpts{Name: "short", Password: "abc"})
	wantMessage(t, err, http.StatusBadRequest, "The password does not match the requirements: at least 8 characters.")
	u := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "bob", Password: "password-1"}))
	if u.PasswordExpiresAt == nil || !u.PasswordExpiresAt.Equal(e.clock.Now().Add(30*day)) {
		t.Fatalf("password_expires_at %v, want in 30 days", u.PasswordExpiresAt)
	}
	noCreds := context.Background()
	// Minimum age: a fresh password cannot be changed by its user...
	err = e.svc.ChangePassword(noCreds, u.ID, "password-1", "password-2")
	wantMessage(t, err, http.StatusBadRequest, "minimum password age. Once you change your password, it must be used for 1 day(s) before it can be changed. Please try again in 1 day(s)")
	e.clock.Advance(25 * time.Hour)
	if err := e.svc.ChangePassword(noCreds, u.ID, "password-1", "password-2"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(25 * time.Hour)
	// History: the last two passwords (3 counting the new one) are refused.
	for _, old := range []string{"password-2", "password-1"} {
		err := e.svc.ChangePassword(noCreds, u.ID, "password-2", old)
		wantMessage(t, err, http.StatusBadRequest, "The new password cannot be identical to a previous password. The total number which includes the new password must be unique is 3.")
	}
	if err := e.svc.ChangePassword(noCreds, u.ID, "password-2", "password-3"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(25 * time.Hour)
	if err := e.svc.ChangePassword(noCreds, u.ID, "password-3", "password-1"); err != nil {
		t.Fatalf("a password older than the history is allowed again: %v", err)
	}
	// Expiry.
	if err := e.tryLogin("bob", "password-1"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(31 * day)
	wantMessage(t, e.tryLogin("bob", "password-1"), http.StatusUnauthorized, "The password is expired and needs to be changed for user: "+u.ID+".")
	// The user changes it without a token, then logs in.
	if err := e.svc.ChangePassword(noCreds, u.ID, "password-1", "password-4"); err != nil {
		t.Fatal(err)
	}
	if err := e.tryLogin("bob", "password-4"); err != nil {
		t.Fatal(err)
	}
	// A wrong original password is refused without a token.
	wantKind(t, e.svc.ChangePassword(noCreds, u.ID, "nope-nope", "password-5"), errdefs.ErrUnauthenticated)
	// Admins reset at any age but not to a recent password.
	_, err = e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Password: ptr("password-4")})
	wantMessage(t, err, http.StatusBadRequest, "cannot be identical to a previous password")
	if _, err := e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Password: ptr("password-9")}); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestChangePasswordUponFirstUse(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.Security = SecurityCompliance{ChangePasswordUponFirstUse: true} })
	u := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "carol", Password: "first-pw"}))
	wantMessage(t, e.tryLogin("carol", "first-pw"), http.StatusUnauthorized, "The password is expired and needs to be changed for user: "+u.ID)
	if err := e.svc.ChangePassword(context.Background(), u.ID, "first-pw", "second-pw"); err != nil {
		t.Fatal(err)
	}
	if err := e.tryLogin("carol", "second-pw"); err != nil {
		t.Fatal(err)
	}
	// An admin reset must be changed again.
	must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Password: ptr("reset-pw")}))
	wantMessage(t, e.tryLogin("carol", "reset-pw"), http.StatusUnauthorized, "The password is expired")
	// The bootstrap admin is exempt.
	if err := e.tryLogin("admin", "secret"); err != nil {
		t.Fatalf("admin: %v", err)
	}
}

func TestInactiveUsersDisabled(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.Security = SecurityCompliance{DisableUserAccountDaysInactive: 10} })
	u := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "dave", Password: "dave-pw"}))
	e.clock.Advance(9 * day)
	if err := e.tryLogin("dave", "dave-pw"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(9 * day) // active 9 days ago: fine
	if err := e.tryLogin("dave", "dave-pw"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(11 * day)
	wantMessage(t, e.tryLogin("dave", "dave-pw"), http.StatusUnauthorized, "The account is disabled for user: "+u.ID+".")
	// Re-enabling by an admin restarts the clock.
	f, tr := false, true
	must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Enabled: &f}))
	must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Enabled: &tr}))
	if err := e.tryLogin("dave", "dave-pw"); err != nil {
		t.Fatal(err)
	}
}

func TestSecurityConfigValidation(t *testing.T) {
	for _, sc := range []SecurityCompliance{{PasswordRegex: "("}, {LockoutFailureAttempts: -1}} {
		if err := (Config{Store: newEnv(t).st, Security: sc}).Validate(); !errors.Is(err, errdefs.ErrInvalid) {
			t.Fatalf("%+v: %v", sc, err)
		}
	}
}

// Over HTTP: the Keystone error bodies, and the password change of a user
// whose password expired, which has no token.
func TestSecurityComplianceHTTP(t *testing.T) {
	e := newEnvWith(t, func(c *Config) {
		c.Security = SecurityCompliance{ChangePasswordUponFirstUse: true, LockoutFailureAttempts: 2, LockoutDuration: time.Minute}
	})
	srv := httptest.NewServer(NewHandler(e.svc, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	u := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "erin", Password: "first-pw"}))
	post := func(path, body string) (int, string) {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	login := func(pw string) (int, string) {
		return post("/v3/auth/tokens", `{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":"`+u.ID+`","password":"`+pw+`"}}}}}`)
	}
	code, body := login("first-pw")
	if code != 401 || !strings.Contains(body, `"message":"The password is expired and needs to be changed for user: `+u.ID+`."`) {
		t.Fatalf("expired: %d %s", code, body)
	}
	code, body = post("/v3/users/"+u.ID+"/password", `{"user":{"original_password":"first-pw","password":"second-pw"}}`)
	if code != 204 {
		t.Fatalf("password change without a token: %d %s", code, body)
	}
	if code, body := login("second-pw"); code != 201 {
		t.Fatalf("login: %d %s", code, body)
	}
	for range 2 {
		login("wrong")
	}
	if code, body := login("second-pw"); code != 401 || !strings.Contains(body, "The account is locked for user: "+u.ID+".") {
		t.Fatalf("locked: %d %s", code, body)
	}
	// Without a token the original password must be right, and counts.
	code, _ = post("/v3/users/"+u.ID+"/password", `{"user":{"original_password":"wrong","password":"third-pw"}}`)
	if code != 401 {
		t.Fatalf("wrong original password: %d", code)
	}
}
