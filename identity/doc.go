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
//
//   - Authentication by password (argon2id hashes, see [PasswordHashing])
//     and by token (rescoping), for unscoped, project-, domain- and
//     system-scoped tokens. Tokens are stateless: AES-256-GCM over a compact
//     payload (user, methods, scope, issue and expiry times, audit ids, trust
//     and application credential ids), with keys kept in the store and
//     created at first start. A rescoped token keeps the audit ids of its
//     chain and never outlives it.
//
//   - Revocation by token (and every token rescoped from it), user, project,
//     and user on project; on password change, user disable or delete, role
//     unassignment, group removal, and project disable or delete. Events are
//     indexed in memory, so 10,000 of them cost validation a few bit tests.
//     Disabled or deleted users, domains and projects invalidate tokens at
//     once, and a token whose user lost every role on its scope is invalid.
//
//   - Validation with a cache that never skips the expiry and revocation
//     checks; cached entries are resolved again whenever an identity table
//     changes (including changes that another controller makes through the
//     store).
//
//   - [Policy]: rules per action in Go with Keystone-like defaults
//     ([DefaultPolicy]); a host overrides rules in [Config.Policy]. Service
//     methods enforce it on the [Credentials] in the context, so library
//     callers get the same checks; what a caller may not see is
//     errdefs.ErrNotFound, what it may see but not change is
//     errdefs.ErrForbidden.
//
//   - For other services: [Credentials] in the context ([WithCredentials],
//     [CredentialsFrom]), [Middleware] for X-Auth-Token (401 with the Keystone
//     body and WWW-Authenticate), rule helpers ([ProjectDefaults], [AnyOf],
//     [ProjectRole], ...) and [Service.Bootstrap] for the admin user, project,
//     roles and the catalog of every service the host runs.
//
//   - The Keystone v3 REST API ([NewHandler]): version discovery, /v3/auth/*
//     (tokens with nocatalog, catalog, projects, domains, system), CRUD of
//     domains, projects (and tags), users (and password change, projects,
//     groups), groups (and members), roles, implied roles, grants on projects,
//     domains and the system, /v3/role_assignments (user.id, group.id,
//     role.id, scope.project.id, scope.domain.id, scope.system, effective,
//     include_names, include_subtree), regions, services and endpoints, with
//     Keystone's filters and limit/marker paging.
//
//   - Application credentials (/v3/users/{id}/application_credentials and
//     the application_credential auth method, by id or by name and user):
//     a secret shown once and stored as an argon2id hash (a verified secret
//     is remembered in memory as its SHA-256, so repeated logins pay the KDF
//     once), a subset of the user's roles on the project of the creating
//     token, expiry, the unrestricted flag (restricted ones may not create
//     application credentials or trusts), and access rules ([AccessRule]:
//     service type, method, path glob with * and **) enforced by [Middleware]
//     for its [MiddlewareOptions.ServiceType]. Deleting the user, or the user
//     losing a role the credential carries, deletes it and kills its tokens.
//
//   - Trusts (OS-TRUST: /v3/OS-TRUST/trusts and their roles): a trustor
//     delegates roles on a project to a trustee, with impersonation, expiry,
//     remaining uses and redelegation (bounded by
//     [Config.MaxTrustRedelegation]); trust-scoped tokens carry
//     "OS-TRUST:trust". The trust's tokens die with the trust, its expiry, or
//     the trustor losing a role or being disabled. In Go a service acts for a
//     user with [Service.AuthenticateTrust]; [BootstrapOptions.ServiceUsers]
//     makes service users (role "service" on project "service").
//
//   - Security compliance ([SecurityCompliance], Keystone's
//     security_compliance options): lockout after failed logins for a duration,
//     password regex with its description, expiry, history, minimum age,
//     change upon first use, disabling of inactive users, each with
//     Keystone's status and message. POST /v3/users/{id}/password needs no
//     token, so that an expired password can be changed.
//
//   - Key rotation: the token keys are a repository in the store ([TokenKeys]:
//     staged, primary, secondaries, as fernet), rotated by
//     [Service.RotateTokenKeys] (cloud admins; there is no HTTP endpoint, as
//     in Keystone where keystone-manage rotates) or on the schedule of
//     [Config.KeyRotationInterval]; every controller sees a rotation through
//     the store. A token names its key, so validation opens it with one key;
//     tokens of a retired key are rejected, cached or not.
//
//   - Credentials (/v3/credentials: "ec2" access/secret pairs, whose id is
//     the SHA-256 of the access key as in Keystone, and any other type):
//     owner-scoped, blobs encrypted at rest with AES-256-GCM under
//     [Config.CredentialKey] or a key generated in the store;
//     [Service.LookupEC2Credential] is the lookup an S3 front end will use.
//
//   - Revocation events are kept as long as the longest token lifetime of
//     any controller; disabling a domain revokes the tokens of its users and
//     projects for good; revoking a token revokes every token rescoped from
//     it, however deep (a token carries its chain of up to four audit ids).
//
// # Not yet
//
// /v3/ec2tokens and /v3/s3tokens are not offered: a front end that accepts
// AWS signatures must verify them itself with the secret from
// LookupEC2Credential, and must never mint a token from a request whose
// signature it did not check (OSSA-2025-002). Access rules live with their
// credential (/v3/users/{id}/access_rules lists them; deleting one in use
// is refused, and every one is). OS-INHERIT inherited assignments,
// federation, OAuth and TOTP auth are not implemented. Domain-specific roles
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
