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
// # Compute II: moving and changing servers
//
// Resize ([Service.ResizeServer]) and cold migration
// ([Service.MigrateServer], admin) place the server again through the
// scheduler and hold a second claim, keyed by the [Migration], on the
// destination; the server waits in VERIFY_RESIZE until
// [Service.ConfirmResize] (the source's domain and claim go) or
// [Service.RevertResize] (old flavor and host back), or until
// Config.ResizeConfirmWindow confirms it. Quota moves to the new flavor
// at once and back on revert. Live migration
// ([Service.LiveMigrateServer]) and evacuation from a host that is down
// ([Service.EvacuateServer]) end by swapping the claims. Rebuild
// ([Service.RebuildServer]) re-creates the domain on its host with the
// same ports and volumes; a new image must pass the scheduler's image
// filters on that host again (OSSA-2017-005), or the server goes to ERROR
// with "No valid host was found". Shelve, shelve-offload (snapshot to the
// image service, domain and claim freed) and unshelve, rescue and
// unrescue, createImage ([Service.CreateServerImage]; a volume-backed
// server's volumes are snapshotted instead), os-interface attach and
// detach, and os-migrations complete the set. Every move is a task of the
// conductor with idempotent steps, so a restart mid-way finishes or rolls
// it back; deleting a server mid-move frees both hosts. Drivers opt in
// through [Resizer], [Migrator], [Rescuer] and [Snapshotter]; the image
// and block storage services through [ImageWriter] and
// [VolumeSnapshotter].
//
// Not yet: createBackup, changePassword, swapping an attached volume (PUT
// os-volume_attachments), live migration between real libvirt hosts.
package compute
