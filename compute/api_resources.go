package compute

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
)

func (a *api) routeResources(rt *httpapi.Router) {
	rt.HandleFunc("GET /v2.1/flavors", a.listFlavors(false))
	rt.HandleFunc("GET /v2.1/flavors/detail", a.listFlavors(true))
	rt.HandleFunc("POST /v2.1/flavors", a.createFlavor)
	rt.HandleFunc("GET /v2.1/flavors/{id}", a.getFlavor)
	rt.HandleFunc("PUT /v2.1/flavors/{id}", a.updateFlavor)
	rt.HandleFunc("DELETE /v2.1/flavors/{id}", a.deleteFlavor)
	rt.HandleFunc("GET /v2.1/flavors/{id}/os-extra_specs", a.getExtraSpecs)
	rt.HandleFunc("POST /v2.1/flavors/{id}/os-extra_specs", a.setExtraSpecs)
	rt.HandleFunc("GET /v2.1/flavors/{id}/os-extra_specs/{key}", a.getExtraSpec)
	rt.HandleFunc("PUT /v2.1/flavors/{id}/os-extra_specs/{key}", a.setExtraSpec)
	rt.HandleFunc("DELETE /v2.1/flavors/{id}/os-extra_specs/{key}", a.deleteExtraSpec)
	rt.HandleFunc("GET /v2.1/flavors/{id}/os-flavor-access", a.listFlavorAccess)
	rt.HandleFunc("POST /v2.1/flavors/{id}/action", a.flavorAction)

	rt.HandleFunc("GET /v2.1/os-keypairs", a.listKeypairs)
	rt.HandleFunc("POST /v2.1/os-keypairs", a.createKeypair)
	rt.HandleFunc("GET /v2.1/os-keypairs/{name}", a.getKeypair)
	rt.HandleFunc("DELETE /v2.1/os-keypairs/{name}", a.deleteKeypair)

	rt.HandleFunc("GET /v2.1/os-server-groups", a.listGroups)
	rt.HandleFunc("POST /v2.1/os-server-groups", a.createGroup)
	rt.HandleFunc("GET /v2.1/os-server-groups/{id}", a.getGroup)
	rt.HandleFunc("DELETE /v2.1/os-server-groups/{id}", a.deleteGroup)

	rt.HandleFunc("GET /v2.1/os-quota-sets/{project}", a.getQuota(false))
	rt.HandleFunc("GET /v2.1/os-quota-sets/{project}/detail", a.getQuota(true))
	rt.HandleFunc("GET /v2.1/os-quota-sets/{project}/defaults", a.getQuotaDefaults)
	rt.HandleFunc("PUT /v2.1/os-quota-sets/{project}", a.updateQuota)
	rt.HandleFunc("DELETE /v2.1/os-quota-sets/{project}", a.deleteQuota)
	rt.HandleFunc("GET /v2.1/limits", a.limits)

	rt.HandleFunc("GET /v2.1/os-hypervisors", a.listHypervisors(false))
	rt.HandleFunc("GET /v2.1/os-hypervisors/detail", a.listHypervisors(true))
	rt.HandleFunc("GET /v2.1/os-hypervisors/statistics", a.hypervisorStats)
	rt.HandleFunc("GET /v2.1/os-hypervisors/{id}", a.getHypervisor)
	rt.HandleFunc("GET /v2.1/os-hypervisors/{id}/uptime", a.getHypervisor)
	rt.HandleFunc("GET /v2.1/os-services", a.listServices)
	rt.HandleFunc("PUT /v2.1/os-services/{id}", a.updateService)
	rt.HandleFunc("GET /v2.1/os-availability-zone", a.listAZ(false))
	rt.HandleFunc("GET /v2.1/os-availability-zone/detail", a.listAZ(true))
	rt.HandleFunc("GET /v2.1/os-aggregates", a.listAggregates)
	rt.HandleFunc("POST /v2.1/os-aggregates", a.createAggregate)
	rt.HandleFunc("GET /v2.1/os-aggregates/{id}", a.getAggregate)
	rt.HandleFunc("DELETE /v2.1/os-aggregates/{id}", a.deleteAggregate)
	rt.HandleFunc("POST /v2.1/os-aggregates/{id}/action", a.aggregateAction)
}

// Flavors.

func (a *api) renderFlavor(r *http.Request, f *Flavor, detail bool) map[string]any {
	m := map[string]any{"id": f.ID, "name": f.Name, "links": links(r, "flavors", f.ID)}
	if atLeast(r, 55) {
		m["description"] = nilIfEmpty(f.Description)
	}
	if !detail {
		return m
	}
	m["ram"], m["vcpus"], m["disk"] = f.RAMMB, f.VCPUs, f.DiskGB
	m["OS-FLV-EXT-DATA:ephemeral"] = f.EphemeralGB
	if f.SwapMB == 0 && !atLeast(r, 75) {
		m["swap"] = ""
	} else {
		m["swap"] = f.SwapMB
	}
	m["rxtx_factor"] = f.RxTxFactor
	m["os-flavor-access:is_public"] = f.IsPublic
	m["OS-FLV-DISABLED:disabled"] = f.Disabled
	if atLeast(r, 61) {
		m["extra_specs"] = orEmptyS(f.ExtraSpecs)
	}
	return m
}

func (a *api) listFlavors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var o ListFlavorsOpts
		switch strings.ToLower(q.Get("is_public")) {
		case "", "none":
			if q.Get("is_public") == "" {
				t := true
				o.IsPublic = &t
				if c := creds(r); c != nil && c.IsSystemReader() {
					o.IsPublic = nil
				}
			}
		case "true", "1", "yes":
			t := true
			o.IsPublic = &t
		case "false", "0", "no":
			f := false
			o.IsPublic = &f
		default:
			fail(w, r, errdefs.Invalid("is_public", "must be true, false or none"))
			return
		}
		for _, p := range []struct {
			k string
			v *int
		}{{"minRam", &o.MinRAMMB}, {"minDisk", &o.MinDiskGB}} {
			if s := q.Get(p.k); s != "" {
				n, err := strconv.Atoi(s)
				if err != nil || n < 0 {
					fail(w, r, errdefs.Invalid(p.k, "must be a non-negative integer"))
					return
				}
				*p.v = n
			}
		}
		list, err := a.svc.ListFlavors(r.Context(), o)
		if err != nil {
			fail(w, r, err)
			return
		}
		paged(w, r, "flavors", list, func(f *Flavor) string { return f.ID }, func(f *Flavor) map[string]any { return a.renderFlavor(r, f, detail) })
	}
}

func (a *api) getFlavor(w http.ResponseWriter, r *http.Request) {
	f, err := a.svc.GetFlavor(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"flavor": a.renderFlavor(r, f, true)} })
}

func (a *api) createFlavor(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name        string          `json:"name"`
		ID          json.RawMessage `json:"id"`
		RAM         flexInt         `json:"ram"`
		VCPUs       flexInt         `json:"vcpus"`
		Disk        flexInt         `json:"disk"`
		Swap        flexInt         `json:"swap"`
		Ephemeral   flexInt         `json:"OS-FLV-EXT-DATA:ephemeral"`
		RxTx        float64         `json:"rxtx_factor"`
		IsPublic    *flexBool       `json:"os-flavor-access:is_public"`
		Description string          `json:"description"`
	}
	if err := decodeEnvelope(w, r, "flavor", &b); err != nil {
		fail(w, r, err)
		return
	}
	var id string
	if len(b.ID) > 0 && string(b.ID) != "null" {
		var err error
		if id, err = refID("id", b.ID); err != nil {
			fail(w, r, err)
			return
		}
	}
	if !b.RAM.Set || !b.VCPUs.Set || !b.Disk.Set {
		fail(w, r, errdefs.Invalid("flavor", "ram, vcpus and disk are required"))
		return
	}
	o := CreateFlavorOpts{ID: id, Name: b.Name, RAMMB: b.RAM.V, VCPUs: b.VCPUs.V, DiskGB: b.Disk.V, SwapMB: b.Swap.V,
		EphemeralGB: b.Ephemeral.V, RxTxFactor: b.RxTx, Description: b.Description}
	if b.IsPublic != nil && b.IsPublic.Set {
		o.IsPublic = &b.IsPublic.V
	}
	f, err := a.svc.CreateFlavor(r.Context(), o)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"flavor": a.renderFlavor(r, f, true)} })
}

func (a *api) updateFlavor(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Description *string `json:"description"`
	}
	if err := decodeEnvelope(w, r, "flavor", &b); err != nil {
		fail(w, r, err)
		return
	}
	if b.Description == nil {
		fail(w, r, errdefs.Invalid("flavor.description", "is required"))
		return
	}
	f, err := a.svc.UpdateFlavorDescription(r.Context(), r.PathValue("id"), *b.Description)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"flavor": a.renderFlavor(r, f, true)} })
}

func (a *api) deleteFlavor(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteFlavor(r.Context(), r.PathValue("id"))
	done(w, r, err, http.StatusAccepted)
}

func (a *api) getExtraSpecs(w http.ResponseWriter, r *http.Request) {
	f, err := a.svc.GetFlavor(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"extra_specs": orEmptyS(f.ExtraSpecs)} })
}

func (a *api) setExtraSpecs(w http.ResponseWriter, r *http.Request) {
	var specs map[string]string
	if err := decodeEnvelope(w, r, "extra_specs", &specs); err != nil {
		fail(w, r, err)
		return
	}
	_, err := a.svc.SetFlavorExtraSpecs(r.Context(), r.PathValue("id"), specs)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"extra_specs": specs} })
}

func (a *api) getExtraSpec(w http.ResponseWriter, r *http.Request) {
	f, err := a.svc.GetFlavor(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	k := r.PathValue("key")
	v, found := f.ExtraSpecs[k]
	if !found {
		fail(w, r, notFound("flavor extra spec", k))
		return
	}
	ok(w, http.StatusOK, map[string]string{k: v})
}

func (a *api) setExtraSpec(w http.ResponseWriter, r *http.Request) {
	var b map[string]string
	if err := decode(w, r, &b); err != nil {
		fail(w, r, err)
		return
	}
	k := r.PathValue("key")
	if _, found := b[k]; !found || len(b) != 1 {
		fail(w, r, errdefs.Invalid("extra_specs", "the body must hold exactly the key of the URL"))
		return
	}
	_, err := a.svc.SetFlavorExtraSpecs(r.Context(), r.PathValue("id"), b)
	respond(w, r, err, http.StatusOK, func() any { return b })
}

func (a *api) deleteExtraSpec(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteFlavorExtraSpec(r.Context(), r.PathValue("id"), r.PathValue("key"))
	done(w, r, err, http.StatusOK)
}

func (a *api) writeAccess(w http.ResponseWriter, r *http.Request, id string) {
	projects, err := a.svc.ListFlavorAccess(r.Context(), id)
	if err != nil {
		fail(w, r, err)
		return
	}
	out := []map[string]string{}
	for _, p := range projects {
		out = append(out, map[string]string{"flavor_id": id, "tenant_id": p})
	}
	ok(w, http.StatusOK, map[string]any{"flavor_access": out})
}

func (a *api) listFlavorAccess(w http.ResponseWriter, r *http.Request) {
	a.writeAccess(w, r, r.PathValue("id"))
}

func (a *api) flavorAction(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Add *struct {
			Tenant string `json:"tenant"`
		} `json:"addTenantAccess"`
		Remove *struct {
			Tenant string `json:"tenant"`
		} `json:"removeTenantAccess"`
	}
	if err := decode(w, r, &b); err != nil {
		fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	var err error
	switch {
	case b.Add != nil:
		err = a.svc.AddFlavorAccess(r.Context(), id, b.Add.Tenant)
	case b.Remove != nil:
		err = a.svc.RemoveFlavorAccess(r.Context(), id, b.Remove.Tenant)
	default:
		err = errdefs.Invalid("action", "must be addTenantAccess or removeTenantAccess")
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	a.writeAccess(w, r, id)
}

// Keypairs.

func (a *api) renderKeypair(r *http.Request, k *Keypair, full bool) map[string]any {
	m := map[string]any{"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint}
	if atLeast(r, 2) {
		m["type"] = k.Type
	}
	if full {
		m["user_id"], m["id"], m["created_at"] = k.UserID, k.ID, k.Created.UTC().Format(usageTime)
		m["deleted"], m["deleted_at"], m["updated_at"] = false, nil, nil
	}
	return m
}

func (a *api) listKeypairs(w http.ResponseWriter, r *http.Request) {
	user := ""
	if atLeast(r, 10) {
		user = r.URL.Query().Get("user_id")
	}
	list, err := a.svc.ListKeypairs(r.Context(), user)
	if err != nil {
		fail(w, r, err)
		return
	}
	page, err := httpapi.ParsePage(r, httpapi.PageOptions{})
	if err != nil {
		fail(w, r, err)
		return
	}
	if atLeast(r, 35) {
		var more bool
		if list, more, err = httpapi.PageSlice(list, page, func(k *Keypair) string { return k.Name }); err != nil {
			fail(w, r, err)
			return
		}
		_ = more
	}
	out := []map[string]any{}
	for _, k := range list {
		out = append(out, map[string]any{"keypair": a.renderKeypair(r, k, false)})
	}
	ok(w, http.StatusOK, map[string]any{"keypairs": out})
}

func (a *api) createKeypair(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name      string `json:"name"`
		PublicKey string `json:"public_key"`
		Type      string `json:"type"`
		UserID    string `json:"user_id"`
		Algorithm string `json:"key_algorithm"`
	}
	if err := decodeEnvelope(w, r, "keypair", &b); err != nil {
		fail(w, r, err)
		return
	}
	if !atLeast(r, 2) {
		b.Type = ""
	}
	if !atLeast(r, 10) {
		b.UserID = ""
	}
	if atLeast(r, 92) && b.PublicKey == "" {
		fail(w, r, errdefs.Invalid("public_key", "is required"))
		return
	}
	k, err := a.svc.CreateKeypair(r.Context(), CreateKeypairOpts{Name: b.Name, PublicKey: b.PublicKey, Type: b.Type, UserID: b.UserID, KeyAlgorithm: b.Algorithm})
	if err != nil {
		fail(w, r, err)
		return
	}
	m := a.renderKeypair(r, k, false)
	m["user_id"] = k.UserID
	if k.PrivateKey != "" {
		m["private_key"] = k.PrivateKey
	}
	status := http.StatusOK
	if atLeast(r, 2) {
		status = http.StatusCreated
	}
	ok(w, status, map[string]any{"keypair": m})
}

func (a *api) getKeypair(w http.ResponseWriter, r *http.Request) {
	user := ""
	if atLeast(r, 10) {
		user = r.URL.Query().Get("user_id")
	}
	k, err := a.svc.GetKeypair(r.Context(), r.PathValue("name"), user)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"keypair": a.renderKeypair(r, k, true)} })
}

func (a *api) deleteKeypair(w http.ResponseWriter, r *http.Request) {
	user := ""
	if atLeast(r, 10) {
		user = r.URL.Query().Get("user_id")
	}
	if err := a.svc.DeleteKeypair(r.Context(), r.PathValue("name"), user); err != nil {
		fail(w, r, err)
		return
	}
	if atLeast(r, 2) {
		noContent(w, http.StatusNoContent)
		return
	}
	noContent(w, http.StatusAccepted)
}

// Server groups.

func (a *api) renderGroup(r *http.Request, g *ServerGroup) map[string]any {
	m := map[string]any{"id": g.ID, "name": g.Name, "members": orEmptyL(g.Members)}
	if atLeast(r, 64) {
		m["policy"] = g.Policy
		rules := map[string]any{}
		if g.MaxServerPerHost > 0 {
			rules["max_server_per_host"] = g.MaxServerPerHost
		}
		m["rules"] = rules
	} else {
		m["policies"] = []string{g.Policy}
		m["metadata"] = map[string]string{}
	}
	if atLeast(r, 13) {
		m["project_id"], m["user_id"] = g.ProjectID, g.UserID
	}
	return m
}

func (a *api) listGroups(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.ListServerGroups(r.Context(), truthy(r.URL.Query().Get("all_projects")))
	if err != nil {
		fail(w, r, err)
		return
	}
	paged(w, r, "server_groups", list, func(g *ServerGroup) string { return g.ID }, func(g *ServerGroup) map[string]any { return a.renderGroup(r, g) })
}

func (a *api) createGroup(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name     string   `json:"name"`
		Policies []string `json:"policies"`
		Policy   string   `json:"policy"`
		Rules    struct {
			MaxServerPerHost flexInt `json:"max_server_per_host"`
		} `json:"rules"`
	}
	if err := decodeEnvelope(w, r, "server_group", &b); err != nil {
		fail(w, r, err)
		return
	}
	o := CreateServerGroupOpts{Name: b.Name, Policy: b.Policy}
	if !atLeast(r, 64) {
		if len(b.Policies) != 1 {
			fail(w, r, errdefs.Invalid("policies", "must hold exactly one policy"))
			return
		}
		o.Policy = b.Policies[0]
	} else {
		if b.Rules.MaxServerPerHost.Set && b.Rules.MaxServerPerHost.V < 1 {
			fail(w, r, errdefs.Invalid("rules.max_server_per_host", "must be a positive integer"))
			return
		}
		o.MaxServerPerHost = b.Rules.MaxServerPerHost.V
	}
	g, err := a.svc.CreateServerGroup(r.Context(), o)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"server_group": a.renderGroup(r, g)} })
}

func (a *api) getGroup(w http.ResponseWriter, r *http.Request) {
	g, err := a.svc.GetServerGroup(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"server_group": a.renderGroup(r, g)} })
}

func (a *api) deleteGroup(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteServerGroup(r.Context(), r.PathValue("id"))
	done(w, r, err, http.StatusNoContent)
}

// Quotas and limits.

func quotaBody(r *http.Request, project string, q QuotaSet, u *QuotaUsage, keypairs int) map[string]any {
	val := func(limit, used int) any {
		if u == nil {
			return limit
		}
		return map[string]int{"limit": limit, "in_use": used, "reserved": 0}
	}
	var uu QuotaUsage
	if u != nil {
		uu = *u
	}
	m := map[string]any{"id": project, "instances": val(q.Instances, uu.Instances), "cores": val(q.Cores, uu.Cores),
		"ram": val(q.RAMMB, uu.RAMMB), "key_pairs": val(q.KeyPairs, keypairs), "server_groups": val(q.ServerGroups, uu.ServerGroups),
		"server_group_members": val(q.ServerGroupMembers, 0), "metadata_items": val(q.MetadataItems, 0)}
	if !atLeast(r, 57) {
		m["injected_files"], m["injected_file_content_bytes"], m["injected_file_path_bytes"] = val(5, 0), val(10240, 0), val(255, 0)
	}
	if !atLeast(r, 36) {
		for _, k := range []string{"fixed_ips", "floating_ips", "security_groups", "security_group_rules", "networks"} {
			m[k] = val(-1, 0)
		}
	}
	return m
}

func (a *api) getQuota(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		pq, err := a.svc.GetQuota(r.Context(), r.PathValue("project"))
		if err != nil {
			fail(w, r, err)
			return
		}
		var u *QuotaUsage
		if detail {
			u = &pq.Usage
		}
		ok(w, http.StatusOK, map[string]any{"quota_set": quotaBody(r, pq.ProjectID, pq.Set, u, pq.KeyPairs)})
	}
}

func (a *api) getQuotaDefaults(w http.ResponseWriter, r *http.Request) {
	_, err := caller(r.Context())
	respond(w, r, err, http.StatusOK, func() any {
		return map[string]any{"quota_set": quotaBody(r, r.PathValue("project"), a.svc.DefaultQuota(), nil, 0)}
	})
}

func (a *api) updateQuota(w http.ResponseWriter, r *http.Request) {
	var b map[string]json.RawMessage
	if err := decodeEnvelope(w, r, "quota_set", &b); err != nil {
		fail(w, r, err)
		return
	}
	var o UpdateQuotaOpts
	fields := map[string]**int{"instances": &o.Instances, "cores": &o.Cores, "ram": &o.RAMMB, "key_pairs": &o.KeyPairs,
		"server_groups": &o.ServerGroups, "server_group_members": &o.ServerGroupMembers, "metadata_items": &o.MetadataItems}
	ignored := []string{"force", "fixed_ips", "floating_ips", "security_groups", "security_group_rules", "networks",
		"injected_files", "injected_file_content_bytes", "injected_file_path_bytes", "id"}
	for k, raw := range b {
		dst, known := fields[k]
		if !known {
			if slices.Contains(ignored, k) {
				continue
			}
			fail(w, r, errdefs.Invalid("quota_set."+k, "is not a quota of this service"))
			return
		}
		var fi flexInt
		if err := fi.UnmarshalJSON(raw); err != nil {
			fail(w, r, errdefs.Invalid("quota_set."+k, "must be an integer"))
			return
		}
		n := fi.V
		*dst = &n
	}
	project := r.PathValue("project")
	q, err := a.svc.UpdateQuota(r.Context(), project, o)
	if err != nil {
		fail(w, r, err)
		return
	}
	body := quotaBody(r, project, *q, nil, 0)
	delete(body, "id")
	ok(w, http.StatusOK, map[string]any{"quota_set": body})
}

func (a *api) deleteQuota(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteQuota(r.Context(), r.PathValue("project"))
	done(w, r, err, http.StatusAccepted)
}

func (a *api) limits(w http.ResponseWriter, r *http.Request) {
	c, err := caller(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	project := c.ProjectID
	if t := r.URL.Query().Get("tenant_id"); t != "" && c.IsSystemReader() {
		project = t
	}
	pq, err := a.svc.GetQuota(r.Context(), project)
	if err != nil {
		fail(w, r, err)
		return
	}
	q, u := pq.Set, pq.Usage
	abs := map[string]any{"maxTotalInstances": q.Instances, "maxTotalCores": q.Cores, "maxTotalRAMSize": q.RAMMB,
		"maxServerMeta": q.MetadataItems, "maxImageMeta": 128, "maxPersonality": 5, "maxPersonalitySize": 10240,
		"maxTotalKeypairs": q.KeyPairs, "maxServerGroups": q.ServerGroups, "maxServerGroupMembers": q.ServerGroupMembers,
		"totalCoresUsed": u.Cores, "totalInstancesUsed": u.Instances, "totalRAMUsed": u.RAMMB, "totalServerGroupsUsed": u.ServerGroups}
	if !atLeast(r, 36) {
		for _, k := range []string{"maxSecurityGroups", "maxSecurityGroupRules", "maxTotalFloatingIps"} {
			abs[k] = -1
		}
		abs["totalFloatingIpsUsed"], abs["totalSecurityGroupsUsed"] = 0, 0
	}
	ok(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": abs}})
}

// Hosts: hypervisors, services, availability zones, aggregates.

func hypervisorID(r *http.Request, hosts []HostInfo, h HostInfo) any {
	if atLeast(r, 53) {
		return h.ID
	}
	for i, x := range hosts {
		if x.ID == h.ID {
			return i + 1
		}
	}
	return 0
}

func (a *api) renderHypervisor(r *http.Request, hosts []HostInfo, h HostInfo, detail bool) map[string]any {
	state, status := "down", "enabled"
	if h.Up {
		state = "up"
	}
	if !h.Enabled {
		status = "disabled"
	}
	m := map[string]any{"id": hypervisorID(r, hosts, h), "hypervisor_hostname": h.Name, "state": state, "status": status}
	if !detail {
		return m
	}
	ram := int(float64(h.RAMMB-h.ReservedRAMMB) * h.RAMRatio)
	m["hypervisor_type"], m["hypervisor_version"], m["host_ip"] = h.HypervisorType, h.HypervisorVer, cmpOrS(h.HostIP, "127.0.0.1")
	m["service"] = map[string]any{"host": h.Name, "id": hypervisorID(r, hosts, h), "disabled_reason": nilIfEmpty(h.DisabledReason)}
	if !atLeast(r, 88) {
		m["vcpus"], m["memory_mb"], m["local_gb"] = h.VCPUs, h.RAMMB, h.DiskGB
		m["vcpus_used"], m["memory_mb_used"], m["local_gb_used"] = h.Usage.VCPUs, h.Usage.RAMMB, h.Usage.DiskGB
		m["free_ram_mb"], m["free_disk_gb"] = ram-h.Usage.RAMMB, h.DiskGB-h.Usage.DiskGB
		m["current_workload"], m["running_vms"], m["disk_available_least"] = 0, h.Usage.Instances, h.DiskGB-h.Usage.DiskGB
	}
	cpu := map[string]any{"arch": "x86_64", "model": h.HypervisorType, "vendor": "stratus", "features": []string{},
		"topology": map[string]int{"cores": h.VCPUs, "threads": 1, "sockets": 1}}
	if atLeast(r, 28) {
		m["cpu_info"] = cpu
	} else {
		b, _ := json.Marshal(cpu)
		m["cpu_info"] = string(b)
	}
	if atLeast(r, 88) {
		m["uptime"] = nil
	}
	return m
}

func (a *api) listHypervisors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hosts, err := a.svc.ListHosts(r.Context())
		if err != nil {
			fail(w, r, err)
			return
		}
		list := hosts
		if p := r.URL.Query().Get("hypervisor_hostname_pattern"); p != "" {
			list = nil
			for _, h := range hosts {
				if strings.Contains(h.Name, p) {
					list = append(list, h)
				}
			}
		}
		paged(w, r, "hypervisors", list, func(h HostInfo) string { return h.ID },
			func(h HostInfo) map[string]any { return a.renderHypervisor(r, hosts, h, detail) })
	}
}

func (a *api) getHypervisor(w http.ResponseWriter, r *http.Request) {
	hosts, err := a.svc.ListHosts(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	for i, h := range hosts {
		if h.ID == id || strconv.Itoa(i+1) == id {
			m := a.renderHypervisor(r, hosts, h, true)
			if strings.HasSuffix(r.URL.Path, "/uptime") {
				m["uptime"] = " 00:00:00 up 1 day"
			}
			ok(w, http.StatusOK, map[string]any{"hypervisor": m})
			return
		}
	}
	fail(w, r, notFound("hypervisor", id))
}

func (a *api) hypervisorStats(w http.ResponseWriter, r *http.Request) {
	hosts, err := a.svc.ListHosts(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	s := map[string]int{"count": len(hosts)}
	for _, h := range hosts {
		s["vcpus"] += h.VCPUs
		s["memory_mb"] += h.RAMMB
		s["local_gb"] += h.DiskGB
		s["vcpus_used"] += h.Usage.VCPUs
		s["memory_mb_used"] += h.Usage.RAMMB
		s["local_gb_used"] += h.Usage.DiskGB
		s["free_ram_mb"] += h.RAMMB - h.Usage.RAMMB
		s["free_disk_gb"] += h.DiskGB - h.Usage.DiskGB
		s["running_vms"] += h.Usage.Instances
		s["disk_available_least"] += h.DiskGB - h.Usage.DiskGB
	}
	s["current_workload"] = 0
	ok(w, http.StatusOK, map[string]any{"hypervisor_statistics": s})
}

func (a *api) listServices(w http.ResponseWriter, r *http.Request) {
	hosts, err := a.svc.ListHosts(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	q := r.URL.Query()
	out := []map[string]any{}
	for i, h := range hosts {
		if (q.Get("host") != "" && q.Get("host") != h.Name) || (q.Get("binary") != "" && q.Get("binary") != "nova-compute") {
			continue
		}
		state, status := "down", "enabled"
		if h.Up {
			state = "up"
		}
		if !h.Enabled {
			status = "disabled"
		}
		var id any = i + 1
		if atLeast(r, 53) {
			id = h.ID
		}
		m := map[string]any{"id": id, "binary": "nova-compute", "host": h.Name, "zone": h.AZ, "status": status, "state": state,
			"updated_at": h.Created.UTC().Format(usageTime), "disabled_reason": nilIfEmpty(h.DisabledReason)}
		if atLeast(r, 11) {
			m["forced_down"] = h.ForcedDown
		}
		out = append(out, m)
	}
	ok(w, http.StatusOK, map[string]any{"services": out})
}

func (a *api) updateService(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Status         string    `json:"status"`
		DisabledReason string    `json:"disabled_reason"`
		ForcedDown     *flexBool `json:"forced_down"`
		Host           string    `json:"host"`
	}
	if err := decode(w, r, &b); err != nil {
		fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	// Before 2.53: PUT /os-services/{enable,disable,disable-log-reason,force-down} with the host in the body.
	switch id {
	case "enable":
		id, b.Status = b.Host, "enabled"
	case "disable", "disable-log-reason":
		id, b.Status = b.Host, "disabled"
	case "force-down":
		id = b.Host
	}
	if n, err := strconv.Atoi(id); err == nil {
		if hosts, err := a.svc.ListHosts(r.Context()); err == nil && n >= 1 && n <= len(hosts) {
			id = hosts[n-1].ID
		}
	}
	var h *Host
	var err error
	switch b.Status {
	case "enabled", "disabled":
		h, err = a.svc.SetHostEnabled(r.Context(), id, b.Status == "enabled", b.DisabledReason)
	case "":
	default:
		err = errdefs.Invalid("status", "must be enabled or disabled")
	}
	if err == nil && b.ForcedDown != nil && b.ForcedDown.Set {
		h, err = a.svc.SetHostForcedDown(r.Context(), id, b.ForcedDown.V)
	}
	if err == nil && h == nil {
		err = errdefs.Invalid("service", "nothing to change")
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	status := "enabled"
	if !h.Enabled {
		status = "disabled"
	}
	ok(w, http.StatusOK, map[string]any{"service": map[string]any{"id": h.ID, "binary": "nova-compute", "host": h.Name,
		"status": status, "disabled_reason": nilIfEmpty(h.DisabledReason), "forced_down": h.ForcedDown, "zone": h.AZ,
		"state": map[bool]string{true: "up", false: "down"}[a.svc.hostUp(h)]}})
}

func (a *api) listAZ(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if detail {
			if _, err := a.svc.enforce(r.Context(), "compute:az:detail", ""); err != nil {
				fail(w, r, err)
				return
			}
		}
		zones, err := a.svc.AvailabilityZones(r.Context())
		if err != nil {
			fail(w, r, err)
			return
		}
		names := make([]string, 0, len(zones))
		for z := range zones {
			names = append(names, z)
		}
		slices.Sort(names)
		out := []map[string]any{}
		for _, z := range names {
			avail := false
			hosts := map[string]any{}
			for _, h := range zones[z] {
				avail = avail || (h.Up && h.Enabled)
				hosts[h.Name] = map[string]any{"nova-compute": map[string]any{"available": h.Up, "active": h.Enabled, "updated_at": h.Created.UTC().Format(usageTime)}}
			}
			e := map[string]any{"zoneName": z, "zoneState": map[string]bool{"available": avail}, "hosts": nil}
			if detail {
				e["hosts"] = hosts
			}
			out = append(out, e)
		}
		ok(w, http.StatusOK, map[string]any{"availabilityZoneInfo": out})
	}
}

func renderAggregate(g *Aggregate) map[string]any {
	id, _ := strconv.Atoi(g.ID)
	return map[string]any{"id": id, "name": g.Name, "availability_zone": nilIfEmpty(g.AZ), "hosts": orEmptyL(g.Hosts),
		"metadata": orEmptyS(g.Metadata), "created_at": g.Created.UTC().Format(usageTime), "updated_at": nil,
		"deleted": false, "deleted_at": nil, "uuid": g.UUID}
}

func (a *api) listAggregates(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.ListAggregates(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, g := range list {
		out = append(out, renderAggregate(g))
	}
	ok(w, http.StatusOK, map[string]any{"aggregates": out})
}

func (a *api) getAggregate(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.ListAggregates(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	for _, g := range list {
		if g.ID == r.PathValue("id") {
			ok(w, http.StatusOK, map[string]any{"aggregate": renderAggregate(g)})
			return
		}
	}
	fail(w, r, notFound("aggregate", r.PathValue("id")))
}

func (a *api) createAggregate(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name string `json:"name"`
		AZ   string `json:"availability_zone"`
	}
	if err := decodeEnvelope(w, r, "aggregate", &b); err != nil {
		fail(w, r, err)
		return
	}
	g, err := a.svc.CreateAggregate(r.Context(), CreateAggregateOpts(b))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"aggregate": renderAggregate(g)} })
}

func (a *api) deleteAggregate(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteAggregate(r.Context(), r.PathValue("id"))
	done(w, r, err, http.StatusOK)
}

func (a *api) aggregateAction(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Add *struct {
			Host string `json:"host"`
		} `json:"add_host"`
		Remove *struct {
			Host string `json:"host"`
		} `json:"remove_host"`
		Set *struct {
			Metadata map[string]*string `json:"metadata"`
		} `json:"set_metadata"`
	}
	if err := decode(w, r, &b); err != nil {
		fail(w, r, err)
		return
	}
	var add, remove string
	var meta map[string]*string
	switch {
	case b.Add != nil:
		add = b.Add.Host
	case b.Remove != nil:
		remove = b.Remove.Host
	case b.Set != nil:
		meta = b.Set.Metadata
		if meta == nil {
			meta = map[string]*string{}
		}
	default:
		fail(w, r, errdefs.Invalid("action", "must be add_host, remove_host or set_metadata"))
		return
	}
	g, err := a.svc.UpdateAggregate(r.Context(), r.PathValue("id"), add, remove, meta)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"aggregate": renderAggregate(g)} })
}
