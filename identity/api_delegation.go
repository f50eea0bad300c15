package identity

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// Application credentials, trusts (OS-TRUST) and credentials on the wire.

// parseTime reads the times Keystone clients send: RFC 3339, or ISO 8601
// without a zone (UTC), with or without fractional seconds.
func parseTime(field, v string) (*time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, errdefs.Invalid(field, "is not an ISO 8601 time")
}

func optTime(field string, v *string) (*time.Time, error) {
	if v == nil || *v == "" {
		return nil, nil
	}
	return parseTime(field, *v)
}

func renderAccessRules(rules []AccessRule) []map[string]any {
	out := make([]map[string]any, 0, len(rules))
	for _, r := range rules {
		out = append(out, map[string]any{"id": r.ID, "service": r.Service, "method": r.Method, "path": r.Path})
	}
	return out
}

func renderRoleRefs(r *http.Request, refs []Ref) []map[string]any {
	out := make([]map[string]any, 0, len(refs))
	for _, ro := range refs {
		out = append(out, map[string]any{"id": ro.ID, "name": ro.Name, "domain_id": nil, "links": link(r, "/v3/roles/"+ro.ID)})
	}
	return out
}

func renderAppCred(r *http.Request, ac *ApplicationCredential) map[string]any {
	out := map[string]any{"id": ac.ID, "name": ac.Name, "description": nullable(ac.Description), "user_id": ac.UserID,
		"project_id": ac.ProjectID, "roles": renderRoleRefs(r, ac.Roles), "expires_at": nil, "unrestricted": ac.Unrestricted,
		"access_rules": renderAccessRules(ac.AccessRules),
		"links":        link(r, "/v3/users/"+ac.UserID+"/application_credentials/"+ac.ID)}
	if ac.ExpiresAt != nil {
		out["expires_at"] = ac.ExpiresAt.UTC().Format(passwordTimeFormat)
	}
	if ac.Secret != "" {
		out["secret"] = ac.Secret
	}
	return out
}

func (a *api) routeAppCreds(rt *httpapi.Router) {
	base := "/v3/users/{user_id}/application_credentials"
	rt.HandleFunc("GET "+base, func(w http.ResponseWriter, r *http.Request) {
		acs, err := a.svc.ListApplicationCredentials(r.Context(), r.PathValue("user_id"), r.URL.Query().Get("name"))
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "application_credentials", acs, func(ac *ApplicationCredential) string { return ac.ID },
			func(ac *ApplicationCredential) map[string]any { return renderAppCred(r, ac) })
	})
	rt.HandleFunc("POST "+base, func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name         string       `json:"name"`
			Description  *string      `json:"description"`
			Secret       *string      `json:"secret"`
			ExpiresAt    *string      `json:"expires_at"`
			Roles        []wireRef    `json:"roles"`
			Unrestricted bool         `json:"unrestricted"`
			AccessRules  []AccessRule `json:"access_rules"`
		}
		if !bind(w, r, "application_credential", &in) {
			return
		}
		exp, err := optTime("expires_at", in.ExpiresAt)
		if err != nil {
			fail(w, r, err)
			return
		}
		opts := CreateAppCredOpts{Name: in.Name, Description: ptrOr(in.Description, ""), Secret: ptrOr(in.Secret, ""),
			ExpiresAt: exp, Unrestricted: in.Unrestricted, AccessRules: in.AccessRules}
		for _, ro := range in.Roles {
			opts.Roles = append(opts.Roles, Ref(ro))
		}
		ac, err := a.svc.CreateApplicationCredential(r.Context(), r.PathValue("user_id"), opts)
		reply(w, r, http.StatusCreated, "application_credential", renderAppCred, ac, err)
	})
	rt.HandleFunc("GET "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		ac, err := a.svc.GetApplicationCredential(r.Context(), r.PathValue("user_id"), r.PathValue("id"))
		reply(w, r, http.StatusOK, "application_credential", renderAppCred, ac, err)
	})
	rt.HandleFunc("DELETE "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteApplicationCredential(r.Context(), r.PathValue("user_id"), r.PathValue("id")))
	})
	rules := "/v3/users/{user_id}/access_rules"
	rt.HandleFunc("GET "+rules, func(w http.ResponseWriter, r *http.Request) {
		rs, err := a.svc.ListAccessRules(r.Context(), r.PathValue("user_id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		ok(w, http.StatusOK, map[string]any{"access_rules": renderAccessRules(rs), "links": listLinks(r)})
	})
	rt.HandleFunc("GET "+rules+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		rule, err := a.svc.GetAccessRule(r.Context(), r.PathValue("user_id"), r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		ok(w, http.StatusOK, map[string]any{"access_rule": renderAccessRules([]AccessRule{*rule})[0]})
	})
	rt.HandleFunc("DELETE "+rules+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteAccessRule(r.Context(), r.PathValue("user_id"), r.PathValue("id")))
	})
}

func renderTrust(r *http.Request, t *Trust) map[string]any {
	out := map[string]any{"id": t.ID, "trustor_user_id": t.TrustorUserID, "trustee_user_id": t.TrusteeUserID,
		"project_id": t.ProjectID, "impersonation": t.Impersonation, "expires_at": nil, "remaining_uses": nil,
		"allow_redelegation": t.AllowRedelegation, "redelegation_count": t.RedelegationCount,
		"redelegated_trust_id": nullable(t.RedelegatedTrustID), "deleted_at": nil,
		"roles": renderRoleRefs(r, t.Roles), "roles_links": map[string]any{"self": nil, "previous": nil, "next": nil},
		"links": link(r, "/v3/OS-TRUST/trusts/"+t.ID)}
	if t.ExpiresAt != nil {
		out["expires_at"] = t.ExpiresAt.UTC().Format(tokenTimeFormat)
	}
	if t.RemainingUses != nil {
		out["remaining_uses"] = *t.RemainingUses
	}
	return out
}

func (a *api) routeTrusts(rt *httpapi.Router) {
	const base = "/v3/OS-TRUST/trusts"
	rt.HandleFunc("GET "+base, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ts, err := a.svc.ListTrusts(r.Context(), ListTrustsOpts{TrustorUserID: q.Get("trustor_user_id"), TrusteeUserID: q.Get("trustee_user_id")})
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "trusts", ts, func(t *Trust) string { return t.ID }, func(t *Trust) map[string]any { return renderTrust(r, t) })
	})
	rt.HandleFunc("POST "+base, func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			TrustorUserID     string    `json:"trustor_user_id"`
			TrusteeUserID     string    `json:"trustee_user_id"`
			ProjectID         string    `json:"project_id"`
			Impersonation     bool      `json:"impersonation"`
			Roles             []wireRef `json:"roles"`
			ExpiresAt         *string   `json:"expires_at"`
			RemainingUses     *int      `json:"remaining_uses"`
			AllowRedelegation bool      `json:"allow_redelegation"`
			RedelegationCount *int      `json:"redelegation_count"`
		}
		if !bind(w, r, "trust", &in) {
			return
		}
		exp, err := optTime("expires_at", in.ExpiresAt)
		if err != nil {
			fail(w, r, err)
			return
		}
		opts := CreateTrustOpts{TrustorUserID: in.TrustorUserID, TrusteeUserID: in.TrusteeUserID, ProjectID: in.ProjectID,
			Impersonation: in.Impersonation, ExpiresAt: exp, RemainingUses: in.RemainingUses,
			AllowRedelegation: in.AllowRedelegation, RedelegationCount: in.RedelegationCount}
		for _, ro := range in.Roles {
			opts.Roles = append(opts.Roles, Ref(ro))
		}
		t, err := a.svc.CreateTrust(r.Context(), opts)
		reply(w, r, http.StatusCreated, "trust", renderTrust, t, err)
	})
	rt.HandleFunc("GET "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		t, err := a.svc.GetTrust(r.Context(), r.PathValue("id"))
		reply(w, r, http.StatusOK, "trust", renderTrust, t, err)
	})
	rt.HandleFunc("DELETE "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteTrust(r.Context(), r.PathValue("id")))
	})
	rt.HandleFunc("GET "+base+"/{id}/roles", func(w http.ResponseWriter, r *http.Request) {
		t, err := a.svc.GetTrust(r.Context(), r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		ok(w, http.StatusOK, map[string]any{"roles": renderRoleRefs(r, t.Roles), "links": listLinks(r)})
	})
	rt.HandleFunc("GET "+base+"/{id}/roles/{role_id}", func(w http.ResponseWriter, r *http.Request) {
		t, err := a.svc.GetTrust(r.Context(), r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		for _, ro := range t.Roles {
			if ro.ID == r.PathValue("role_id") {
				if r.Method == http.MethodHead {
					w.WriteHeader(http.StatusOK)
					return
				}
				ok(w, http.StatusOK, map[string]any{"role": renderRoleRefs(r, []Ref{ro})[0]})
				return
			}
		}
		fail(w, r, notFound("role", r.PathValue("role_id")))
	})
}

func renderCredential(r *http.Request, c *Credential) map[string]any {
	return map[string]any{"id": c.ID, "user_id": c.UserID, "project_id": nullable(c.ProjectID), "type": c.Type,
		"blob": c.Blob, "links": link(r, "/v3/credentials/"+c.ID)}
}

func (a *api) routeCredentials(rt *httpapi.Router) {
	rt.HandleFunc("GET /v3/credentials", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		cs, err := a.svc.ListCredentials(r.Context(), ListCredentialsOpts{UserID: q.Get("user_id"), Type: q.Get("type")})
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "credentials", cs, func(c *Credential) string { return c.ID }, func(c *Credential) map[string]any { return renderCredential(r, c) })
	})
	rt.HandleFunc("POST /v3/credentials", func(w http.ResponseWriter, r *http.Request) {
		var raw map[string]json.RawMessage
		if !bind(w, r, "credential", &raw) {
			return
		}
		in, err := credentialWire(raw)
		if err != nil {
			fail(w, r, err)
			return
		}
		c, err := a.svc.CreateCredential(r.Context(), CreateCredentialOpts{UserID: ptrOr(in.UserID, ""),
			ProjectID: ptrOr(in.ProjectID, ""), Type: ptrOr(in.Type, ""), Blob: ptrOr(in.Blob, "")})
		reply(w, r, http.StatusCreated, "credential", renderCredential, c, err)
	})
	rt.HandleFunc("GET /v3/credentials/{id}", func(w http.ResponseWriter, r *http.Request) {
		c, err := a.svc.GetCredential(r.Context(), r.PathValue("id"))
		reply(w, r, http.StatusOK, "credential", renderCredential, c, err)
	})
	rt.HandleFunc("PATCH /v3/credentials/{id}", func(w http.ResponseWriter, r *http.Request) {
		var raw map[string]json.RawMessage
		if !bind(w, r, "credential", &raw) {
			return
		}
		in, err := credentialWire(raw)
		if err != nil {
			fail(w, r, err)
			return
		}
		c, err := a.svc.UpdateCredential(r.Context(), r.PathValue("id"), UpdateCredentialOpts{ProjectID: in.ProjectID, Type: in.Type, Blob: in.Blob})
		reply(w, r, http.StatusOK, "credential", renderCredential, c, err)
	})
	rt.HandleFunc("DELETE /v3/credentials/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteCredential(r.Context(), r.PathValue("id")))
	})
}

type credentialFields struct {
	UserID, ProjectID, Type, Blob *string
}

// credentialWire reads a credential body. The blob is a string; a JSON
// object is accepted too (some clients send one) and kept as its JSON text.
func credentialWire(raw map[string]json.RawMessage) (credentialFields, error) {
	var out credentialFields
	for k, dst := range map[string]**string{"user_id": &out.UserID, "project_id": &out.ProjectID, "type": &out.Type, "blob": &out.Blob} {
		v, ok := raw[k]
		if !ok || string(v) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			if k != "blob" || len(v) == 0 || v[0] != '{' {
				return out, errdefs.Invalid(k, "must be a string")
			}
			s = string(v)
		}
		*dst = &s
	}
	return out, nil
}
