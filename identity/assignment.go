package identity

import (
	"context"
	"slices"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Actor and target kinds of role assignments.
const (
	actorUser     = "user"
	actorGroup    = "group"
	targetProject = "project"
	targetDomain  = "domain"
	targetSystem  = "system"
	systemAll     = "all"
)

// Assignment grants a role to a user or a group on a project, a domain or
// the system.
type Assignment struct {
	store.Meta
	// ActorType is "user" or "group".
	ActorType string `json:"actor_type"`
	ActorID   string `json:"actor_id"`
	// TargetType is "project", "domain" or "system" (whose TargetID is
	// "all").
	TargetType string `json:"target_type"`
	TargetID   string `json:"target_id"`
	RoleID     string `json:"role_id"`
}

// StoreKey implements store.Record.
func (a *Assignment) StoreKey() string {
	return key(a.ActorType, a.ActorID, a.TargetType, a.TargetID, a.RoleID)
}

var assignmentTableDef = store.Table{
	Name: assignmentTable,
	New:  func() store.Record { return new(Assignment) },
	Indexes: []*memdbIndex{
		index("actor", false, func(o any) string { a := o.(*Assignment); return key(a.ActorType, a.ActorID) }),
		index("target", false, func(o any) string { a := o.(*Assignment); return key(a.TargetType, a.TargetID) }),
		index("role", false, func(o any) string { return o.(*Assignment).RoleID }),
		index("actor_target", false, func(o any) string {
			a := o.(*Assignment)
			return key(a.ActorType, a.ActorID, a.TargetType, a.TargetID)
		}),
	},
}

// Grant names one role assignment: exactly one of UserID and GroupID, and
// exactly one of ProjectID, DomainID and System.
type Grant struct {
	UserID    string
	GroupID   string
	ProjectID string
	DomainID  string
	System    bool
	RoleID    string
}

func (g Grant) assignment() (*Assignment, error) {
	a := &Assignment{RoleID: g.RoleID}
	switch {
	case g.UserID != "" && g.GroupID == "":
		a.ActorType, a.ActorID = actorUser, g.UserID
	case g.GroupID != "" && g.UserID == "":
		a.ActorType, a.ActorID = actorGroup, g.GroupID
	default:
		return nil, errdefs.Invalid("user_id", "exactly one of a user and a group is required")
	}
	n := 0
	if g.ProjectID != "" {
		a.TargetType, a.TargetID = targetProject, g.ProjectID
		n++
	}
	if g.DomainID != "" {
		a.TargetType, a.TargetID = targetDomain, g.DomainID
		n++
	}
	if g.System {
		a.TargetType, a.TargetID = targetSystem, systemAll
		n++
	}
	if n != 1 {
		return nil, errdefs.Invalid("scope", "exactly one of a project, a domain and the system is required")
	}
	if g.RoleID == "" {
		return nil, errdefs.Invalid("role_id", "must not be empty")
	}
	return a, nil
}

// isAdminProject reports whether p is the project whose admins are cloud
// admins.
func (s *Service) isAdminProject(p *Project) bool {
	return p.Name == s.cfg.AdminProjectName && p.DomainID == s.cfg.AdminProjectDomainID
}

// grantWriteTarget returns the target for creating or revoking a: that of
// reading it, without the domain when a is on the admin project, since a
// role there makes (or unmakes) a cloud admin and is not a domain admin's
// to give or take, or when the user or group is of another domain.
func (s *Service) grantWriteTarget(tx *store.Txn, a *Assignment, t Target) Target {
	if a.TargetType == targetProject {
		if p, err := store.Get[Project](nil, tx, projectTable, a.TargetID); err == nil && s.isAdminProject(p) {
			t.DomainID = ""
		}
	}
	// A domain admin manages the grants of its own domain's users and
	// groups only.
	var actorDomain string
	switch a.ActorType {
	case actorUser:
		if u, err := store.Get[User](nil, tx, userTable, a.ActorID); err == nil {
			actorDomain = u.DomainID
		}
	case actorGroup:
		if g, err := store.Get[Group](nil, tx, groupTable, a.ActorID); err == nil {
			actorDomain = g.DomainID
		}
	}
	if actorDomain != t.DomainID {
		t.DomainID = ""
	}
	return t
}

// grantTarget checks that the parts of a exist and returns the policy
// target and actions for it.
func (s *Service) grantTarget(tx *store.Txn, a *Assignment) (Target, error) {
	if _, err := s.getRole(tx, a.RoleID); err != nil {
		return Target{}, err
	}
	var t Target
	switch a.ActorType {
	case actorUser:
		if _, err := s.getUser(tx, a.ActorID); err != nil {
			return t, err
		}
	case actorGroup:
		if _, err := s.getGroup(tx, a.ActorID); err != nil {
			return t, err
		}
	}
	switch a.TargetType {
	case targetProject:
		p, err := s.getProject(tx, a.TargetID)
		if err != nil {
			return t, err
		}
		t = projectTarget(p)
	case targetDomain:
		d, err := s.getDomain(tx, a.TargetID)
		if err != nil {
			return t, err
		}
		t = domainTarget(d)
	}
	return t, nil
}

func grantActions(a *Assignment) (read, create, revoke string) {
	if a.TargetType == targetSystem {
		return "identity:get_grant", "identity:create_system_grant", "identity:revoke_system_grant"
	}
	return "identity:get_grant", "identity:create_grant", "identity:revoke_grant"
}

// visibleGrant resolves the target of a and checks that the caller may see
// grants on it.
func (s *Service) visibleGrant(ctx context.Context, tx *store.Txn, a *Assignment) (Target, error) {
	t, err := s.grantTarget(tx, a)
	if err != nil {
		return t, err
	}
	read, _, _ := grantActions(a)
	return t, s.see(ctx, read, t, a.TargetType, a.TargetID)
}

// CreateGrant assigns a role. It is idempotent.
func (s *Service) CreateGrant(ctx context.Context, g Grant) error {
	a, err := g.assignment()
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		t, err := s.visibleGrant(ctx, tx, a)
		if err != nil {
			return err
		}
		_, create, _ := grantActions(a)
		if err := s.policy.Enforce(ctx, create, s.grantWriteTarget(tx, a, t)); err != nil {
			return err
		}
		if _, err := store.Get[Assignment](nil, tx, assignmentTable, a.StoreKey()); err == nil {
			return nil
		}
		return tx.Insert(assignmentTable, a)
	})
}

// CheckGrant reports whether a role is assigned directly, or fails with
// errdefs.ErrNotFound.
func (s *Service) CheckGrant(ctx context.Context, g Grant) error {
	a, err := g.assignment()
	if err != nil {
		return err
	}
	tx := s.st.Snapshot()
	if _, err := s.visibleGrant(ctx, tx, a); err != nil {
		return err
	}
	if _, err := store.Get[Assignment](nil, tx, assignmentTable, a.StoreKey()); err != nil {
		return notFound("role assignment", a.RoleID)
	}
	return nil
}

// DeleteGrant removes a role assignment and revokes the tokens it
// supported.
func (s *Service) DeleteGrant(ctx context.Context, g Grant) error {
	a, err := g.assignment()
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		t, err := s.visibleGrant(ctx, tx, a)
		if err != nil {
			return err
		}
		_, _, revoke := grantActions(a)
		if err := s.policy.Enforce(ctx, revoke, s.grantWriteTarget(tx, a, t)); err != nil {
			return err
		}
		if _, err := store.Get[Assignment](nil, tx, assignmentTable, a.StoreKey()); err != nil {
			return notFound("role assignment", a.RoleID)
		}
		return s.deleteAssignmentTxn(tx, a)
	})
}

// deleteAssignmentTxn deletes a and revokes the tokens of its users on its
// target.
func (s *Service) deleteAssignmentTxn(tx *store.Txn, a *Assignment) error {
	if err := tx.Delete(assignmentTable, a.StoreKey()); err != nil {
		return err
	}
	users := []string{a.ActorID}
	if a.ActorType == actorGroup {
		var err error
		if users, err = groupMembers(tx, a.ActorID); err != nil {
			return err
		}
	}
	for _, u := range users {
		ev := Revocation{UserID: u}
		if a.TargetType == targetProject {
			ev.ProjectID = a.TargetID
		}
		if err := s.revokeTxn(tx, ev); err != nil {
			return err
		}
	}
	// Application credentials carrying a role the user lost are deleted,
	// as in Keystone (their tokens already fail validation).
	if a.TargetType == targetProject {
		return pruneAppCredsTxn(tx, users, a.TargetID)
	}
	return nil
}

func listAssignments(tx *store.Txn, idx, v string) ([]*Assignment, error) {
	it, err := store.List[Assignment](nil, tx, assignmentTable, idx, v)
	if err != nil {
		return nil, err
	}
	var out []*Assignment
	for a := range it {
		out = append(out, a)
	}
	return out, nil
}

// deleteAssignmentsTxn deletes assignments without revocation events (the
// caller revokes what it must).
func deleteAssignmentsTxn(tx *store.Txn, idx, v string) error {
	as, err := listAssignments(tx, idx, v)
	if err != nil {
		return err
	}
	for _, a := range as {
		if err := tx.Delete(assignmentTable, a.StoreKey()); err != nil {
			return err
		}
	}
	return nil
}

// directRoleIDs returns the roles assigned to user on a target, directly
// or through its groups.
func directRoleIDs(tx *store.Txn, userID, targetType, targetID string) []string {
	var ids []string
	add := func(actorType, actorID string) {
		it, err := store.List[Assignment](nil, tx, assignmentTable, "actor_target", key(actorType, actorID, targetType, targetID))
		if err != nil {
			return
		}
		for a := range it {
			if !slices.Contains(ids, a.RoleID) {
				ids = append(ids, a.RoleID)
			}
		}
	}
	add(actorUser, userID)
	if ms, err := store.List[Membership](nil, tx, memberTable, "user", userID); err == nil {
		for m := range ms {
			add(actorGroup, m.GroupID)
		}
	}
	return ids
}

// effectiveRoles returns the roles user holds on a target, implied roles
// included.
func effectiveRoles(tx *store.Txn, userID, targetType, targetID string) []*Role {
	ids := directRoleIDs(tx, userID, targetType, targetID)
	if len(ids) == 0 {
		return nil
	}
	return impliedClosure(tx, ids)
}

// RoleAssignment is one entry of ListRoleAssignments. Names are filled in
// for the API's include_names.
type RoleAssignment struct {
	Role    Ref
	User    *AssignmentActor
	Group   *AssignmentActor
	Project *AssignmentActor
	Domain  *Ref
	System  bool
}

// AssignmentActor is a user, group or project of a RoleAssignment, with
// its domain.
type AssignmentActor struct {
	ID     string
	Name   string
	Domain Ref
}

// ListRoleAssignmentsOpts filters ListRoleAssignments.
type ListRoleAssignmentsOpts struct {
	UserID    string
	GroupID   string
	RoleID    string
	ProjectID string
	DomainID  string
	// System selects system assignments only.
	System bool
	// Effective expands group assignments into their members' and adds
	// implied roles, as a token would see them.
	Effective bool
	// IncludeSubtree with ProjectID also lists the projects below it.
	IncludeSubtree bool
}

// ListRoleAssignments lists the role assignments the caller may see that
// match opts.
func (s *Service) ListRoleAssignments(ctx context.Context, opts ListRoleAssignmentsOpts) ([]RoleAssignment, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	it, err := store.List[Assignment](nil, tx, assignmentTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	projects := map[string]bool{}
	if opts.ProjectID != "" {
		projects[opts.ProjectID] = true
		if opts.IncludeSubtree {
			for _, id := range s.subtree(tx, opts.ProjectID) {
				projects[id] = true
			}
		}
	}
	type row struct{ actorType, actorID, targetType, targetID, roleID string }
	var rows []row
	seen := map[row]bool{}
	add := func(r row) {
		if !seen[r] {
			seen[r] = true
			rows = append(rows, r)
		}
	}
	for a := range it {
		switch {
		case len(projects) > 0 && (a.TargetType != targetProject || !projects[a.TargetID]),
			opts.DomainID != "" && (a.TargetType != targetDomain || a.TargetID != opts.DomainID),
			opts.System && a.TargetType != targetSystem:
			continue
		}
		if opts.Effective && a.ActorType == actorGroup {
			members, _ := groupMembers(tx, a.ActorID)
			for _, u := range members {
				add(row{actorUser, u, a.TargetType, a.TargetID, a.RoleID})
			}
			continue
		}
		add(row{a.ActorType, a.ActorID, a.TargetType, a.TargetID, a.RoleID})
	}
	if opts.Effective {
		for _, r := range slices.Clone(rows) {
			for _, ir := range impliedClosure(tx, []string{r.roleID}) {
				add(row{r.actorType, r.actorID, r.targetType, r.targetID, ir.ID})
			}
		}
	}
	var out []RoleAssignment
	for _, r := range rows {
		switch {
		case opts.UserID != "" && (r.actorType != actorUser || r.actorID != opts.UserID),
			opts.GroupID != "" && (r.actorType != actorGroup || r.actorID != opts.GroupID),
			opts.RoleID != "" && r.roleID != opts.RoleID:
			continue
		}
		ra := RoleAssignment{Role: Ref{ID: r.roleID}}
		if role, err := store.Get[Role](nil, tx, roleTable, r.roleID); err == nil {
			ra.Role.Name = role.Name
		}
		var t Target
		switch r.targetType {
		case targetProject:
			ra.Project = &AssignmentActor{ID: r.targetID}
			if p, err := store.Get[Project](nil, tx, projectTable, r.targetID); err == nil {
				ra.Project.Name, ra.Project.Domain = p.Name, s.domainRef(tx, p.DomainID)
				t = projectTarget(p)
			}
		case targetDomain:
			d := s.domainRef(tx, r.targetID)
			ra.Domain = &d
			t = Target{DomainID: r.targetID}
		case targetSystem:
			ra.System = true
		}
		switch r.actorType {
		case actorUser:
			ra.User = &AssignmentActor{ID: r.actorID}
			if u, err := store.Get[User](nil, tx, userTable, r.actorID); err == nil {
				ra.User.Name, ra.User.Domain = u.Name, s.domainRef(tx, u.DomainID)
			}
			t.UserID = r.actorID
		case actorGroup:
			ra.Group = &AssignmentActor{ID: r.actorID}
			if g, err := store.Get[Group](nil, tx, groupTable, r.actorID); err == nil {
				ra.Group.Name, ra.Group.Domain = g.Name, s.domainRef(tx, g.DomainID)
			}
		}
		if !s.policy.Allowed(c, "identity:get_grant", t) && !Self(c, t) {
			continue
		}
		out = append(out, ra)
	}
	return out, nil
}

func (s *Service) domainRef(tx *store.Txn, id string) Ref {
	r := Ref{ID: id}
	if d, err := store.Get[Domain](nil, tx, domainTable, id); err == nil {
		r.Name = d.Name
	}
	return r
}

// ListUserProjects lists the enabled projects on which a user has a role,
// directly or through a group: all of them for the user itself, else those
// the caller may see.
func (s *Service) ListUserProjects(ctx context.Context, userID string) ([]*Project, error) {
	if _, err := s.GetUser(ctx, userID); err != nil {
		return nil, err
	}
	c := CredentialsFrom(ctx)
	ps := s.scopeTargets(s.st.Snapshot(), userID)
	if c.UserID == userID {
		return ps, nil
	}
	return slices.DeleteFunc(ps, func(p *Project) bool {
		return !s.policy.Allowed(c, "identity:get_project", projectTarget(p))
	}), nil
}

// scopeTargets returns the enabled projects the user can scope a token to.
func (s *Service) scopeTargets(tx *store.Txn, userID string) []*Project {
	var out []*Project
	seen := map[string]bool{}
	for _, id := range s.actorTargets(tx, userID, targetProject) {
		if seen[id] {
			continue
		}
		seen[id] = true
		if p, err := store.Get[Project](nil, tx, projectTable, id); err == nil && p.Enabled {
			out = append(out, p.detach())
		}
	}
	slices.SortFunc(out, func(a, b *Project) int { return cmpString(a.ID, b.ID) })
	return out
}

func (s *Service) actorTargets(tx *store.Txn, userID, targetType string) []string {
	var ids []string
	add := func(actorType, actorID string) {
		as, _ := listAssignments(tx, "actor", key(actorType, actorID))
		for _, a := range as {
			if a.TargetType == targetType {
				ids = append(ids, a.TargetID)
			}
		}
	}
	add(actorUser, userID)
	if ms, err := store.List[Membership](nil, tx, memberTable, "user", userID); err == nil {
		for m := range ms {
			add(actorGroup, m.GroupID)
		}
	}
	return ids
}

// AuthProjects lists the projects the caller's user can scope to.
func (s *Service) AuthProjects(ctx context.Context) ([]*Project, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	return s.scopeTargets(s.st.Snapshot(), c.UserID), nil
}

// AuthDomains lists the domains the caller's user can scope to.
func (s *Service) AuthDomains(ctx context.Context) ([]*Domain, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	var out []*Domain
	seen := map[string]bool{}
	for _, id := range s.actorTargets(tx, c.UserID, targetDomain) {
		if seen[id] {
			continue
		}
		seen[id] = true
		if d, err := store.Get[Domain](nil, tx, domainTable, id); err == nil && d.Enabled {
			out = append(out, d.detach())
		}
	}
	return out, nil
}

// AuthSystem reports whether the caller's user has a role on the system.
func (s *Service) AuthSystem(ctx context.Context) (bool, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return false, err
	}
	return len(directRoleIDs(s.st.Snapshot(), c.UserID, targetSystem, systemAll)) > 0, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// confinedTo reports whether every role assignment of the actors (pairs of
// actor type and id) applies inside domainID: on the domain itself or on
// one of its projects. A user or group holding a role on the system or in
// another domain is not confined, and a domain admin may not change it:
// adding itself to such a group, or resetting such a user's password,
// would give it power beyond its domain.
// Roles on the admin project make cloud admins, so they are never confined
// to its domain.
func (s *Service) confinedTo(tx *store.Txn, domainID string, actors ...[2]string) bool {
	for _, ac := range actors {
		as, err := listAssignments(tx, "actor", key(ac[0], ac[1]))
		if err != nil {
			return false
		}
		for _, a := range as {
			switch a.TargetType {
			case targetDomain:
				if a.TargetID != domainID {
					return false
				}
			case targetProject:
				p, err := store.Get[Project](nil, tx, projectTable, a.TargetID)
				if err != nil || p.DomainID != domainID || s.isAdminProject(p) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// userActors returns the user and its groups, as actors for confinedTo.
func userActors(tx *store.Txn, userID string) [][2]string {
	out := [][2]string{{actorUser, userID}}
	if ms, err := store.List[Membership](nil, tx, memberTable, "user", userID); err == nil {
		for m := range ms {
			out = append(out, [2]string{actorGroup, m.GroupID})
		}
	}
	return out
}

// writeTarget returns t for a write that changes what actors may do: its
// domain is dropped when their roles reach beyond it, so that rules on the
// target's domain (a domain admin's) do not match, while cloud-wide rules
// still do.
func (s *Service) writeTarget(tx *store.Txn, t Target, actors ...[2]string) Target {
	if t.DomainID != "" && !s.confinedTo(tx, t.DomainID, actors...) {
		t.DomainID = ""
	}
	return t
}
