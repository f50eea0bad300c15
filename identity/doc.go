// Package identity is Stratus's Keystone: the identity v3 core that every
// other service authenticates through.
//
// # What works today
//
//   - Domains (the "default" domain, id "default", name "Default", always
//     exists), projects with a hierarchy up to [MaxProjectDepth] deep and
//     tags, users (enabled flag, default project, options, extra attributes
//     such as "email"), groups and membership, roles with implied roles
//     (admin ⇒ member ⇒ reader by default), role assignments of users or
//     groups on projects, domains or the system, and the catalog: regions,
//     services and endpoints.
//   - Authentication by password (argon2id hashes, see [PasswordHashing])
//     and by token (rescoping), for unscoped, project-, domain- and
//     system-scoped tokens. Tokens are stateless: AES-256-GCM over a compact
//     payload (user, methods, scope, issue and expiry times, audit ids),
//     with keys kept in the store and created at first start. A rescoped
//     token keeps the first token's audit id and never outlives it.
//   - Revocation by token (and every token rescoped from it), user, project,
//     and user on project; on password change, user disable or delete, role
//     unassignment, group removal, and project disable or delete. Events are
//     indexed in memory, so 10,000 of them cost validation a few bit tests.
//     Disabled or deleted users, domains and projects invalidate tokens at
//     once, and a token whose user lost every role on its scope is invalid.
//   - Validation with a cache that never skips the expiry and revocation
//     checks; cached entries are resolved again whenever an identity table
//     changes (including changes that another controller makes through the
//     store).
//   - [Policy]: rules per action in Go with Keystone-like defaults
//     ([DefaultPolicy]); a host overrides rules in [Config.Policy]. Service
//     methods enforce it on the [Credentials] in the context, so library
//     callers get the same checks; what a caller may not see is
//     errdefs.ErrNotFound, what it may see but not change is
//     errdefs.ErrForbidden.
//   - For other services: [Credentials] in the context ([WithCredentials],
//     [CredentialsFrom]), [Middleware] for X-Auth-Token (401 with the Keystone
//     body and WWW-Authenticate), rule helpers ([ProjectDefaults], [AnyOf],
//     [ProjectRole], ...) and [Service.Bootstrap] for the admin user, project,
//     roles and the catalog of every service the host runs.
//   - The Keystone v3 REST API ([NewHandler]): version discovery, /v3/auth/*
//     (tokens with nocatalog, catalog, projects, domains, system), CRUD of
//     domains, projects (and tags), users (and password change, projects,
//     groups), groups (and members), roles, implied roles, grants on projects,
//     domains and the system, /v3/role_assignments (user.id, group.id,
//     role.id, scope.project.id, scope.domain.id, scope.system, effective,
//     include_names, include_subtree), regions, services and endpoints, with
//     Keystone's filters and limit/marker paging.
//
// # Not yet
//
// Application credentials, trusts, EC2 credentials, OS-INHERIT inherited
// assignments, federation, OAuth, security compliance (password expiry,
// lockout) and key rotation belong to a later issue. Domain-specific roles
// exist but cannot be granted specially.
//
// # Example to wire it
//
//	st, _ := store.Open(ctx, backend, identity.Tables(), nil)
//	svc, _ := identity.New(identity.Config{Store: st})
//	_ = svc.Start(ctx)
//	_ = svc.Bootstrap(ctx, identity.BootstrapOptions{AdminPassword: pw, Services: catalog})
//	http.ListenAndServe("127.0.0.1:5000", identity.NewHandler(svc, logger))
package identity
