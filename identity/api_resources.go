package identity

import (
	"encoding/json"
	"net/http"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// Renderers: every entity has links.self (OSC pops it).

func renderDomain(r *http.Request, d *Domain) map[string]any {
	return map[string]any{"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled,
		"tags": []string{}, "options": emptyMap(d.Options), "links": link(r, "/v3/domains/"+d.ID)}
}

func renderProject(r *http.Request, p *Project) map[string]any {
	parent := p.ParentID
	if parent == "" {
		parent = p.DomainID
	}
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{"id": p.ID, "name": p.Name, "domain_id": p.DomainID, "description": p.Description,
		"enabled": p.Enabled, "parent_id": parent, "is_domain": false, "tags": tags, "options": emptyMap(p.Options),
		"links": link(r, "/v3/projects/"+p.ID)}
}

func renderUser(r *http.Request, u *User) map[string]any {
	out := map[string]any{}
	for k, v := range u.Extra {
		out[k] = v
	}
	out["id"], out["name"], out["domain_id"], out["enabled"] = u.ID, u.Name, u.DomainID, u.Enabled
	out["options"], out["password_expires_at"] = emptyMap(u.Options), nil
	if u.PasswordExpiresAt != nil {
		out["password_expires_at"] = u.PasswordExpiresAt.UTC().Format(passwordTimeFormat)
	}
	if u.DefaultProjectID != "" {
		out["default_project_id"] = u.DefaultProjectID
	}
	if u.Description != "" {
		out["description"] = u.Description
	}
	out["links"] = link(r, "/v3/users/"+u.ID)
	return out
}

func renderGroup(r *http.Request, g *Group) map[string]any {
	return map[string]any{"id": g.ID, "name": g.Name, "domain_id": g.DomainID, "description": g.Description,
		"links": link(r, "/v3/groups/"+g.ID)}
}

func renderRole(r *http.Request, ro *Role) map[string]any {
	return map[string]any{"id": ro.ID, "name": ro.Name, "domain_id": nullable(ro.DomainID), "description": ro.Description,
		"options": emptyMap(ro.Options), "links": link(r, "/v3/roles/"+ro.ID)}
}

func renderRegion(r *http.Request, re *Region) map[string]any {
	return map[string]any{"id": re.ID, "description": re.Description, "parent_region_id": nullable(re.ParentRegionID),
		"links": link(r, "/v3/regions/"+re.ID)}
}

func renderService(r *http.Request, s *CatalogService) map[string]any {
	return map[string]any{"id": s.ID, "type": s.Type, "name": s.Name, "description": s.Description, "enabled": s.Enabled,
		"links": link(r, "/v3/services/"+s.ID)}
}

func renderEndpoint(r *http.Request, e *Endpoint) map[string]any {
	return map[string]any{"id": e.ID, "interface": e.Interface, "region": nullable(e.RegionID), "region_id": nullable(e.RegionID),
		"service_id": e.ServiceID, "url": e.URL, "enabled": e.Enabled, "links": link(r, "/v3/endpoints/"+e.ID)}
}

// bind decodes {"<name>": {...}} into v, writing the error and returning
// false if it cannot.
func bind(w http.ResponseWriter, r *http.Request, name string, v any) bool {
	if err := body(w, r, name, v); err != nil {
		fail(w, r, err)
		return false
	}
	return true
}

// body decodes {"<name>": {...}} into v.
func body(w http.ResponseWriter, r *http.Request, name string, v any) error {
	var env map[string]json.RawMessage
	if err := decode(w, r, &env); err != nil {
		return err
	}
	raw, ok := env[name]
	if !ok {
		return errdefs.Invalid(name, "is required")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errdefs.Invalid(name, "malformed: %v", err)
	}
	return nil
}

func (a *api) routeDomains(rt *httpapi.Router) {
	type wire struct {
		ID          string         `json:"id"`
		Name        *string        `json:"name"`
		Description *string        `json:"description"`
		Enabled     *bool          `json:"enabled"`
		Options     map[string]any `json:"options"`
	}
	rt.HandleFunc("GET /v3/domains", func(w http.ResponseWriter, r *http.Request) {
		ds, err := a.svc.ListDomains(r.Context(), ListDomainsOpts{Name: r.URL.Query().Get("name"), Enabled: boolQuery(r, "enabled")})
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "domains", ds, func(d *Domain) string { return d.ID }, func(d *Domain) map[string]any { return renderDomain(r, d) })
	})
	rt.HandleFunc("POST /v3/domains", func(w http.ResponseWriter, r *http.Request) {
		var in wire
		if !bind(w, r, "domain", &in) {
			return
		}
		d, err := a.svc.CreateDomain(r.Context(), CreateDomainOpts{ID: in.ID, Name: ptrOr(in.Name, ""), Description: ptrOr(in.Description, ""), Enabled: in.Enabled, Options: in.Options})
		reply(w, r, http.StatusCreated, "domain", renderDomain, d, err)
	})
	rt.HandleFunc("GET /v3/domains/{id}", func(w http.ResponseWriter, r *http.Request) {
		d, err := a.svc.GetDomain(r.Context(), r.PathValue("id"))
		reply(w, r, http.StatusOK, "domain", renderDomain, d, err)
	})
	rt.HandleFunc("PATCH /v3/domains/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in wire
		if !bind(w, r, "domain", &in) {
			return
		}
		d, err := a.svc.UpdateDomain(r.Context(), r.PathValue("id"), UpdateDomainOpts{Name: in.Name, Description: in.Description, Enabled: in.Enabled, Options: in.Options})
		reply(w, r, http.StatusOK, "domain", renderDomain, d, err)
	})
	rt.HandleFunc("DELETE /v3/domains/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteDomain(r.Context(), r.PathValue("id")))
	})
}

func noContent(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) routeProjects(rt *httpapi.Router) {
	type wire struct {
		Name        *string        `json:"name"`
		DomainID    *string        `json:"domain_id"`
		ParentID    *string        `json:"parent_id"`
		Description *string        `json:"description"`
		Enabled     *bool          `json:"enabled"`
		IsDomain    bool           `json:"is_domain"`
		Tags        *[]string      `json:"tags"`
		Options     map[string]any `json:"options"`
	}
	rt.HandleFunc("GET /v3/projects", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opts := ListProjectsOpts{Name: q.Get("name"), NameContains: q.Get("name__contains"), DomainID: q.Get("domain_id"),
			ParentID: q.Get("parent_id"), Enabled: boolQuery(r, "enabled"), Tags: csv(r, "tags"), TagsAny: csv(r, "tags-any"),
			NotTags: csv(r, "not-tags"), NotTagsAny: csv(r, "not-tags-any")}
		if flag(r, "is_domain") {
			list(w, r, "projects", []*Project{}, func(p *Project) string { return p.ID }, func(p *Project) map[string]any { return nil })
			return
		}
		ps, err := a.svc.ListProjects(r.Context(), opts)
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "projects", ps, func(p *Project) string { return p.ID }, func(p *Project) map[string]any { return renderProject(r, p) })
	})
	rt.HandleFunc("POST /v3/projects", func(w http.ResponseWriter, r *http.Request) {
		var in wire
		if !bind(w, r, "project", &in) {
			return
		}
		if in.IsDomain {
			fail(w, r, errdefs.Invalid("is_domain", "projects acting as domains are not supported"))
			return
		}
		p, err := a.svc.CreateProject(r.Context(), CreateProjectOpts{Name: ptrOr(in.Name, ""), DomainID: ptrOr(in.DomainID, ""),
			ParentID: ptrOr(in.ParentID, ""), Description: ptrOr(in.Description, ""), Enabled: in.Enabled, Tags: ptrOr(in.Tags, nil), Options: in.Options})
		reply(w, r, http.StatusCreated, "project", renderProject, p, err)
	})
	get := func(w http.ResponseWriter, r *http.Request) (*Project, bool) {
		p, err := a.svc.GetProject(r.Context(), r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return nil, false
		}
		return p, true
	}
	rt.HandleFunc("GET /v3/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		p, err := a.svc.GetProject(r.Context(), r.PathValue("id"))
		reply(w, r, http.StatusOK, "project", renderProject, p, err)
	})
	rt.HandleFunc("PATCH /v3/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in wire
		if !bind(w, r, "project", &in) {
			return
		}
		p, err := a.svc.UpdateProject(r.Context(), r.PathValue("id"), UpdateProjectOpts{Name: in.Name, Description: in.Description,
			Enabled: in.Enabled, Tags: in.Tags, Options: in.Options})
		reply(w, r, http.StatusOK, "project", renderProject, p, err)
	})
	rt.HandleFunc("DELETE /v3/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteProject(r.Context(), r.PathValue("id")))
	})
	tags := func(w http.ResponseWriter, r *http.Request, p *Project) {
		t := p.Tags
		if t == nil {
			t = []string{}
		}
		ok(w, http.StatusOK, map[string]any{"tags": t, "links": listLinks(r)})
	}
	rt.HandleFunc("GET /v3/projects/{id}/tags", func(w http.ResponseWriter, r *http.Request) {
		if p, good := get(w, r); good {
			tags(w, r, p)
		}
	})
	rt.HandleFunc("PUT /v3/projects/{id}/tags", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Tags []string `json:"tags"`
		}
		if err := decode(w, r, &in); err != nil {
			fail(w, r, err)
			return
		}
		if in.Tags == nil {
			in.Tags = []string{}
		}
		p, err := a.svc.UpdateProject(r.Context(), r.PathValue("id"), UpdateProjectOpts{Tags: &in.Tags})
		if err != nil {
			fail(w, r, err)
			return
		}
		tags(w, r, p)
	})
	rt.HandleFunc("DELETE /v3/projects/{id}/tags", func(w http.ResponseWriter, r *http.Request) {
		empty := []string{}
		_, err := a.svc.UpdateProject(r.Context(), r.PathValue("id"), UpdateProjectOpts{Tags: &empty})
		noContent(w, r, err)
	})
	rt.HandleFunc("GET /v3/projects/{id}/tags/{tag}", func(w http.ResponseWriter, r *http.Request) {
		p, good := get(w, r)
		if !good {
			return
		}
		for _, t := range p.Tags {
			if t == r.PathValue("tag") {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		fail(w, r, notFound("tag", r.PathValue("tag")))
	})
	rt.HandleFunc("PUT /v3/projects/{id}/tags/{tag}", func(w http.ResponseWriter, r *http.Request) {
		if err := checkTags([]string{r.PathValue("tag")}); err != nil {
			fail(w, r, err)
			return
		}
		if err := a.svc.AddProjectTag(r.Context(), r.PathValue("id"), r.PathValue("tag")); err != nil {
			fail(w, r, err)
			return
		}
		w.Header().Set("Location", httpapi.BaseURL(r)+r.URL.Path)
		w.WriteHeader(http.StatusCreated)
	})
	rt.HandleFunc("DELETE /v3/projects/{id}/tags/{tag}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteProjectTag(r.Context(), r.PathValue("id"), r.PathValue("tag")))
	})
}

// userFields splits a user body into known fields and extras.
func userFields(raw map[string]json.RawMessage) (known struct {
	Name             *string        `json:"name"`
	DomainID         *string        `json:"domain_id"`
	Password         *string        `json:"password"`
	Enabled          *bool          `json:"enabled"`
	DefaultProjectID *string        `json:"default_project_id"`
	Description      *string        `json:"description"`
	Options          map[string]any `json:"options"`
}, extra map[string]any, err error) {
	b, _ := json.Marshal(raw)
	if err = json.Unmarshal(b, &known); err != nil {
		return known, nil, errdefs.Invalid("user", "malformed: %v", err)
	}
	for k, v := range raw {
		if reservedUserFields[k] {
			continue
		}
		if extra == nil {
			extra = map[string]any{}
		}
		var x any
		_ = json.Unmarshal(v, &x)
		extra[k] = x
	}
	return known, extra, nil
}

func (a *api) routeUsers(rt *httpapi.Router) {
	rt.HandleFunc("GET /v3/users", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		us, err := a.svc.ListUsers(r.Context(), ListUsersOpts{Name: q.Get("name"), NameContains: q.Get("name__contains"),
			DomainID: q.Get("domain_id"), Enabled: boolQuery(r, "enabled")})
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "users", us, func(u *User) string { return u.ID }, func(u *User) map[string]any { return renderUser(r, u) })
	})
	rt.HandleFunc("POST /v3/users", func(w http.ResponseWriter, r *http.Request) {
		var raw map[string]json.RawMessage
		if !bind(w, r, "user", &raw) {
			return
		}
		in, extra, err := userFields(raw)
		if err != nil {
			fail(w, r, err)
			return
		}
		u, err := a.svc.CreateUser(r.Context(), CreateUserOpts{Name: ptrOr(in.Name, ""), DomainID: ptrOr(in.DomainID, ""),
			Password: ptrOr(in.Password, ""), Enabled: in.Enabled, DefaultProjectID: ptrOr(in.DefaultProjectID, ""),
			Description: ptrOr(in.Description, ""), Options: in.Options, Extra: extra})
		reply(w, r, http.StatusCreated, "user", renderUser, u, err)
	})
	rt.HandleFunc("GET /v3/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		u, err := a.svc.GetUser(r.Context(), r.PathValue("id"))
		reply(w, r, http.StatusOK, "user", renderUser, u, err)
	})
	rt.HandleFunc("PATCH /v3/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		var raw map[string]json.RawMessage
		if !bind(w, r, "user", &raw) {
			return
		}
		in, extra, err := userFields(raw)
		if err != nil {
			fail(w, r, err)
			return
		}
		u, err := a.svc.UpdateUser(r.Context(), r.PathValue("id"), UpdateUserOpts{Name: in.Name, Password: in.Password,
			Enabled: in.Enabled, DefaultProjectID: in.DefaultProjectID, Description: in.Description, Options: in.Options, Extra: extra})
		reply(w, r, http.StatusOK, "user", renderUser, u, err)
	})
	rt.HandleFunc("DELETE /v3/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteUser(r.Context(), r.PathValue("id")))
	})
	rt.HandleFunc("POST /v3/users/{id}/password", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Password         string `json:"password"`
			OriginalPassword string `json:"original_password"`
		}
		if !bind(w, r, "user", &in) {
			return
		}
		noContent(w, r, a.svc.ChangePassword(r.Context(), r.PathValue("id"), in.OriginalPassword, in.Password))
	})
	rt.HandleFunc("GET /v3/users/{id}/projects", func(w http.ResponseWriter, r *http.Request) {
		ps, err := a.svc.ListUserProjects(r.Context(), r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "projects", ps, func(p *Project) string { return p.ID }, func(p *Project) map[string]any { return renderProject(r, p) })
	})
	rt.HandleFunc("GET /v3/users/{id}/groups", func(w http.ResponseWriter, r *http.Request) {
		gs, err := a.svc.ListUserGroups(r.Context(), r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "groups", gs, func(g *Group) string { return g.ID }, func(g *Group) map[string]any { return renderGroup(r, g) })
	})
}

func (a *api) routeGroups(rt *httpapi.Router) {
	type wire struct {
		Name        *string `json:"name"`
		DomainID    *string `json:"domain_id"`
		Description *string `json:"description"`
	}
	rt.HandleFunc("GET /v3/groups", func(w http.ResponseWriter, r *http.Request) {
		gs, err := a.svc.ListGroups(r.Context(), ListGroupsOpts{Name: r.URL.Query().Get("name"), DomainID: r.URL.Query().Get("domain_id")})
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "groups", gs, func(g *Group) string { return g.ID }, func(g *Group) map[string]any { return renderGroup(r, g) })
	})
	rt.HandleFunc("POST /v3/groups", func(w http.ResponseWriter, r *http.Request) {
		var in wire
		if !bind(w, r, "group", &in) {
			return
		}
		g, err := a.svc.CreateGroup(r.Context(), CreateGroupOpts{Name: ptrOr(in.Name, ""), DomainID: ptrOr(in.DomainID, ""), Description: ptrOr(in.Description, "")})
		reply(w, r, http.StatusCreated, "group", renderGroup, g, err)
	})
	rt.HandleFunc("GET /v3/groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		g, err := a.svc.GetGroup(r.Context(), r.PathValue("id"))
		reply(w, r, http.StatusOK, "group", renderGroup, g, err)
	})
	rt.HandleFunc("PATCH /v3/groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in wire
		if !bind(w, r, "group", &in) {
			return
		}
		g, err := a.svc.UpdateGroup(r.Context(), r.PathValue("id"), UpdateGroupOpts{Name: in.Name, Description: in.Description})
		reply(w, r, http.StatusOK, "group", renderGroup, g, err)
	})
	rt.HandleFunc("DELETE /v3/groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteGroup(r.Context(), r.PathValue("id")))
	})
	rt.HandleFunc("GET /v3/groups/{id}/users", func(w http.ResponseWriter, r *http.Request) {
		us, err := a.svc.ListGroupUsers(r.Context(), r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "users", us, func(u *User) string { return u.ID }, func(u *User) map[string]any { return renderUser(r, u) })
	})
	rt.HandleFunc("PUT /v3/groups/{id}/users/{uid}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.AddUserToGroup(r.Context(), r.PathValue("id"), r.PathValue("uid")))
	})
	rt.HandleFunc("GET /v3/groups/{id}/users/{uid}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.IsUserInGroup(r.Context(), r.PathValue("id"), r.PathValue("uid")))
	})
	rt.HandleFunc("DELETE /v3/groups/{id}/users/{uid}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.RemoveUserFromGroup(r.Context(), r.PathValue("id"), r.PathValue("uid")))
	})
}

func (a *api) routeRoles(rt *httpapi.Router) {
	type wire struct {
		Name        *string        `json:"name"`
		DomainID    *string        `json:"domain_id"`
		Description *string        `json:"description"`
		Options     map[string]any `json:"options"`
	}
	rt.HandleFunc("GET /v3/roles", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rs, err := a.svc.ListRoles(r.Context(), ListRolesOpts{Name: q.Get("name"), NameContains: q.Get("name__contains"), DomainID: q.Get("domain_id")})
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "roles", rs, func(x *Role) string { return x.ID }, func(x *Role) map[string]any { return renderRole(r, x) })
	})
	rt.HandleFunc("POST /v3/roles", func(w http.ResponseWriter, r *http.Request) {
		var in wire
		if !bind(w, r, "role", &in) {
			return
		}
		ro, err := a.svc.CreateRole(r.Context(), CreateRoleOpts{Name: ptrOr(in.Name, ""), DomainID: ptrOr(in.DomainID, ""), Description: ptrOr(in.Description, ""), Options: in.Options})
		reply(w, r, http.StatusCreated, "role", renderRole, ro, err)
	})
	rt.HandleFunc("GET /v3/roles/{id}", func(w http.ResponseWriter, r *http.Request) {
		ro, err := a.svc.GetRole(r.Context(), r.PathValue("id"))
		reply(w, r, http.StatusOK, "role", renderRole, ro, err)
	})
	rt.HandleFunc("PATCH /v3/roles/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in wire
		if !bind(w, r, "role", &in) {
			return
		}
		ro, err := a.svc.UpdateRole(r.Context(), r.PathValue("id"), UpdateRoleOpts{Name: in.Name, Description: in.Description, Options: in.Options})
		reply(w, r, http.StatusOK, "role", renderRole, ro, err)
	})
	rt.HandleFunc("DELETE /v3/roles/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteRole(r.Context(), r.PathValue("id")))
	})
	ref := func(r *http.Request, id string) map[string]any {
		m := map[string]any{"id": id, "links": link(r, "/v3/roles/"+id)}
		if ro, err := a.svc.getRole(a.svc.st.Snapshot(), id); err == nil {
			m["name"] = ro.Name
		}
		return m
	}
	inference := func(r *http.Request, ir *ImpliedRole) map[string]any {
		return map[string]any{"prior_role": ref(r, ir.PriorID), "implies": ref(r, ir.ImpliedID)}
	}
	rt.HandleFunc("PUT /v3/roles/{p}/implies/{i}", func(w http.ResponseWriter, r *http.Request) {
		ir, err := a.svc.CreateImpliedRole(r.Context(), r.PathValue("p"), r.PathValue("i"))
		if err != nil {
			fail(w, r, err)
			return
		}
		ok(w, http.StatusCreated, map[string]any{"role_inference": inference(r, ir), "links": link(r, r.URL.Path)})
	})
	rt.HandleFunc("GET /v3/roles/{p}/implies/{i}", func(w http.ResponseWriter, r *http.Request) {
		ir, err := a.svc.GetImpliedRole(r.Context(), r.PathValue("p"), r.PathValue("i"))
		if err != nil {
			fail(w, r, err)
			return
		}
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		ok(w, http.StatusOK, map[string]any{"role_inference": inference(r, ir), "links": link(r, r.URL.Path)})
	})
	rt.HandleFunc("DELETE /v3/roles/{p}/implies/{i}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteImpliedRole(r.Context(), r.PathValue("p"), r.PathValue("i")))
	})
	rt.HandleFunc("GET /v3/roles/{p}/implies", func(w http.ResponseWriter, r *http.Request) {
		irs, err := a.svc.ListImpliedRoles(r.Context(), r.PathValue("p"))
		if err != nil {
			fail(w, r, err)
			return
		}
		implies := []map[string]any{}
		for _, ir := range irs {
			implies = append(implies, ref(r, ir.ImpliedID))
		}
		ok(w, http.StatusOK, map[string]any{"role_inference": map[string]any{"prior_role": ref(r, r.PathValue("p")), "implies": implies},
			"links": link(r, r.URL.Path)})
	})
	rt.HandleFunc("GET /v3/role_inferences", func(w http.ResponseWriter, r *http.Request) {
		irs, err := a.svc.ListImpliedRoles(r.Context(), "")
		if err != nil {
			fail(w, r, err)
			return
		}
		byPrior := map[string][]map[string]any{}
		var order []string
		for _, ir := range irs {
			if _, seen := byPrior[ir.PriorID]; !seen {
				order = append(order, ir.PriorID)
			}
			byPrior[ir.PriorID] = append(byPrior[ir.PriorID], ref(r, ir.ImpliedID))
		}
		out := []map[string]any{}
		for _, p := range order {
			out = append(out, map[string]any{"prior_role": ref(r, p), "implies": byPrior[p]})
		}
		ok(w, http.StatusOK, map[string]any{"role_inferences": out, "links": link(r, r.URL.Path)})
	})
}

func (a *api) routeGrants(rt *httpapi.Router) {
	type route struct{ prefix, target, actor string }
	var routes []route
	for _, t := range []string{"projects", "domains"} {
		for _, ac := range []string{"users", "groups"} {
			routes = append(routes, route{"/v3/" + t + "/{t}/" + ac + "/{a}/roles", t, ac})
		}
	}
	for _, ac := range []string{"users", "groups"} {
		routes = append(routes, route{"/v3/system/" + ac + "/{a}/roles", "system", ac})
	}
	grant := func(rt route, r *http.Request) Grant {
		g := Grant{RoleID: r.PathValue("r")}
		if rt.actor == "users" {
			g.UserID = r.PathValue("a")
		} else {
			g.GroupID = r.PathValue("a")
		}
		switch rt.target {
		case "projects":
			g.ProjectID = r.PathValue("t")
		case "domains":
			g.DomainID = r.PathValue("t")
		default:
			g.System = true
		}
		return g
	}
	for _, ro := range routes {
		rt.HandleFunc("PUT "+ro.prefix+"/{r}", func(w http.ResponseWriter, r *http.Request) {
			noContent(w, r, a.svc.CreateGrant(r.Context(), grant(ro, r)))
		})
		rt.HandleFunc("GET "+ro.prefix+"/{r}", func(w http.ResponseWriter, r *http.Request) {
			noContent(w, r, a.svc.CheckGrant(r.Context(), grant(ro, r)))
		})
		rt.HandleFunc("DELETE "+ro.prefix+"/{r}", func(w http.ResponseWriter, r *http.Request) {
			noContent(w, r, a.svc.DeleteGrant(r.Context(), grant(ro, r)))
		})
		rt.HandleFunc("GET "+ro.prefix, func(w http.ResponseWriter, r *http.Request) {
			g := grant(ro, r)
			opts := ListRoleAssignmentsOpts{UserID: g.UserID, GroupID: g.GroupID, ProjectID: g.ProjectID, DomainID: g.DomainID, System: g.System}
			ras, err := a.svc.ListRoleAssignments(r.Context(), opts)
			if err != nil {
				fail(w, r, err)
				return
			}
			var roles []*Role
			for _, ra := range ras {
				if ro, err := a.svc.getRole(a.svc.st.Snapshot(), ra.Role.ID); err == nil {
					roles = append(roles, ro)
				}
			}
			list(w, r, "roles", roles, func(x *Role) string { return x.ID }, func(x *Role) map[string]any { return renderRole(r, x) })
		})
	}
	rt.HandleFunc("GET /v3/role_assignments", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opts := ListRoleAssignmentsOpts{UserID: q.Get("user.id"), GroupID: q.Get("group.id"), RoleID: q.Get("role.id"),
			ProjectID: q.Get("scope.project.id"), DomainID: q.Get("scope.domain.id"), System: q.Has("scope.system"),
			Effective: flag(r, "effective"), IncludeSubtree: flag(r, "include_subtree")}
		ras, err := a.svc.ListRoleAssignments(r.Context(), opts)
		if err != nil {
			fail(w, r, err)
			return
		}
		names := flag(r, "include_names")
		actor := func(x *AssignmentActor) map[string]any {
			m := map[string]any{"id": x.ID}
			if names {
				m["name"] = x.Name
				m["domain"] = map[string]any{"id": x.Domain.ID, "name": x.Domain.Name}
			}
			return m
		}
		out := []map[string]any{}
		for _, ra := range ras {
			role := map[string]any{"id": ra.Role.ID}
			if names {
				role["name"] = ra.Role.Name
			}
			m := map[string]any{"role": role}
			scope := map[string]any{}
			path := ""
			switch {
			case ra.Project != nil:
				scope["project"] = actor(ra.Project)
				path = "/v3/projects/" + ra.Project.ID
			case ra.Domain != nil:
				d := map[string]any{"id": ra.Domain.ID}
				if names {
					d["name"] = ra.Domain.Name
				}
				scope["domain"] = d
				path = "/v3/domains/" + ra.Domain.ID
			default:
				scope["system"] = map[string]any{"all": true}
				path = "/v3/system"
			}
			m["scope"] = scope
			if ra.User != nil {
				m["user"] = actor(ra.User)
				path += "/users/" + ra.User.ID
			} else if ra.Group != nil {
				m["group"] = actor(ra.Group)
				path += "/groups/" + ra.Group.ID
			}
			m["links"] = map[string]any{"assignment": httpapi.BaseURL(r) + path + "/roles/" + ra.Role.ID}
			out = append(out, m)
		}
		ok(w, http.StatusOK, map[string]any{"role_assignments": out, "links": listLinks(r)})
	})
}

func (a *api) routeCatalog(rt *httpapi.Router) {
	type regionWire struct {
		ID             string  `json:"id"`
		Description    *string `json:"description"`
		ParentRegionID string  `json:"parent_region_id"`
	}
	rt.HandleFunc("GET /v3/regions", func(w http.ResponseWriter, r *http.Request) {
		rs, err := a.svc.ListRegions(r.Context())
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "regions", rs, func(x *Region) string { return x.ID }, func(x *Region) map[string]any { return renderRegion(r, x) })
	})
	createRegion := func(w http.ResponseWriter, r *http.Request) {
		var in regionWire
		if !bind(w, r, "region", &in) {
			return
		}
		if id := r.PathValue("id"); id != "" {
			in.ID = id
		}
		re, err := a.svc.CreateRegion(r.Context(), Region{ID: in.ID, Description: ptrOr(in.Description, ""), ParentRegionID: in.ParentRegionID})
		reply(w, r, http.StatusCreated, "region", renderRegion, re, err)
	}
	rt.HandleFunc("POST /v3/regions", createRegion)
	rt.HandleFunc("PUT /v3/regions/{id}", createRegion)
	rt.HandleFunc("GET /v3/regions/{id}", func(w http.ResponseWriter, r *http.Request) {
		re, err := a.svc.GetRegion(r.Context(), r.PathValue("id"))
		reply(w, r, http.StatusOK, "region", renderRegion, re, err)
	})
	rt.HandleFunc("PATCH /v3/regions/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in regionWire
		if !bind(w, r, "region", &in) {
			return
		}
		re, err := a.svc.UpdateRegion(r.Context(), r.PathValue("id"), in.Description)
		reply(w, r, http.StatusOK, "region", renderRegion, re, err)
	})
	rt.HandleFunc("DELETE /v3/regions/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteRegion(r.Context(), r.PathValue("id")))
	})

	type serviceWire struct {
		Type        *string `json:"type"`
		Name        *string `json:"name"`
		Description *string `json:"description"`
		Enabled     *bool   `json:"enabled"`
	}
	rt.HandleFunc("GET /v3/services", func(w http.ResponseWriter, r *http.Request) {
		ss, err := a.svc.ListServices(r.Context(), r.URL.Query().Get("type"), r.URL.Query().Get("name"))
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "services", ss, func(x *CatalogService) string { return x.ID }, func(x *CatalogService) map[string]any { return renderService(r, x) })
	})
	rt.HandleFunc("POST /v3/services", func(w http.ResponseWriter, r *http.Request) {
		var in serviceWire
		if !bind(w, r, "service", &in) {
			return
		}
		s, err := a.svc.CreateService(r.Context(), CatalogService{Type: ptrOr(in.Type, ""), Name: ptrOr(in.Name, ""), Description: ptrOr(in.Description, ""), Enabled: ptrOr(in.Enabled, true)})
		reply(w, r, http.StatusCreated, "service", renderService, s, err)
	})
	rt.HandleFunc("GET /v3/services/{id}", func(w http.ResponseWriter, r *http.Request) {
		s, err := a.svc.GetService(r.Context(), r.PathValue("id"))
		reply(w, r, http.StatusOK, "service", renderService, s, err)
	})
	rt.HandleFunc("PATCH /v3/services/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in serviceWire
		if !bind(w, r, "service", &in) {
			return
		}
		s, err := a.svc.UpdateService(r.Context(), r.PathValue("id"), UpdateServiceOpts(in))
		reply(w, r, http.StatusOK, "service", renderService, s, err)
	})
	rt.HandleFunc("DELETE /v3/services/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteService(r.Context(), r.PathValue("id")))
	})

	type endpointWire struct {
		ServiceID *string `json:"service_id"`
		Interface *string `json:"interface"`
		RegionID  *string `json:"region_id"`
		Region    *string `json:"region"`
		URL       *string `json:"url"`
		Enabled   *bool   `json:"enabled"`
	}
	rt.HandleFunc("GET /v3/endpoints", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		es, err := a.svc.ListEndpoints(r.Context(), ListEndpointsOpts{ServiceID: q.Get("service_id"), Interface: q.Get("interface"), RegionID: q.Get("region_id")})
		if err != nil {
			fail(w, r, err)
			return
		}
		list(w, r, "endpoints", es, func(x *Endpoint) string { return x.ID }, func(x *Endpoint) map[string]any { return renderEndpoint(r, x) })
	})
	rt.HandleFunc("POST /v3/endpoints", func(w http.ResponseWriter, r *http.Request) {
		var in endpointWire
		if !bind(w, r, "endpoint", &in) {
			return
		}
		region := ptrOr(in.RegionID, ptrOr(in.Region, ""))
		e, err := a.svc.CreateEndpoint(r.Context(), Endpoint{ServiceID: ptrOr(in.ServiceID, ""), Interface: ptrOr(in.Interface, ""),
			RegionID: region, URL: ptrOr(in.URL, ""), Enabled: ptrOr(in.Enabled, true)})
		reply(w, r, http.StatusCreated, "endpoint", renderEndpoint, e, err)
	})
	rt.HandleFunc("GET /v3/endpoints/{id}", func(w http.ResponseWriter, r *http.Request) {
		e, err := a.svc.GetEndpoint(r.Context(), r.PathValue("id"))
		reply(w, r, http.StatusOK, "endpoint", renderEndpoint, e, err)
	})
	rt.HandleFunc("PATCH /v3/endpoints/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in endpointWire
		if !bind(w, r, "endpoint", &in) {
			return
		}
		if in.RegionID == nil {
			in.RegionID = in.Region
		}
		e, err := a.svc.UpdateEndpoint(r.Context(), r.PathValue("id"), UpdateEndpointOpts{Interface: in.Interface, URL: in.URL, RegionID: in.RegionID, Enabled: in.Enabled})
		reply(w, r, http.StatusOK, "endpoint", renderEndpoint, e, err)
	})
	rt.HandleFunc("DELETE /v3/endpoints/{id}", func(w http.ResponseWriter, r *http.Request) {
		noContent(w, r, a.svc.DeleteEndpoint(r.Context(), r.PathValue("id")))
	})
}
