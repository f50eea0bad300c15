// Package compute is Stratus's Nova: flavors (with access lists and
// extra_specs), keypairs, server groups, servers and their lifecycle,
// compute hosts with aggregates and availability zones, the scheduler's
// claims, per-project quotas, instance actions, guest metadata content and
// the Nova v2.1 REST API (microversions 2.1 to 2.90, see NewHandler).
//
// # Shape
//
// [Service] is the Go API. Its methods read identity.Credentials from the
// context, enforce policy ([DefaultPolicy]) and tenant isolation (another
// project's server is ErrNotFound), validate, and write desired state in
// one store transaction (quota reserved with the servers). The conductor,
// a reconcile loop, then drives each server with a task state through
// idempotent steps recorded as instance-action events: schedule and claim
// (compute/scheduler filters and weighs a cached view of the hosts; the
// claim transaction rechecks the host's capacity and the group policy),
// ports created and bound to the host, volume attachments connected,
// spawn. A spawn failure frees the host and reschedules, up to
// Config.MaxAttempts hosts, then ERROR "No valid host was found". Delete,
// reboot, stop/start, pause/unpause and suspend/resume run the same way.
// After a restart every server with a task resumes where it stopped. Each
// host's agent heartbeats, keeps power states true to the driver (and to
// its events) and sweeps Stratus domains that belong to no server.
//
// Volume attachments (os-volume_attachments, [Service.AttachVolume]) are
// intents on the server's block device mapping that the conductor drives
// through [Volumes]' attachment flow and the driver's hot-plug, without a
// task state (as in Nova); see volumeattach.go.
//
// Hypervisors implement [Hypervisor] (compute/fakevm in memory;
// compute/libvirtvm later); compute/drivertest is their conformance suite.
// What compute needs of the image, network and block storage services is
// declared in deps.go ([Images], [Ports], [Volumes]) and set with
// [Service.Use]; compute/standin has temporary in-memory ones.
//
// Not yet: resize, rebuild, migrate, evacuate, snapshots, rescue, shelve,
// interface hot-plug through the API (compute II); the Hypervisor seam
// already has the hooks.
package compute
