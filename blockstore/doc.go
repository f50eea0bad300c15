/*
Package blockstore is Stratus's block storage service, mirroring OpenStack
Cinder's v3 API (microversions 3.0 to 3.70; attachments from 3.27, their
completion from 3.44).

What works today:

  - Volume types with extra specs that select a backend
    (volume_backend_name) and match pool capabilities ("capabilities:k"),
    public or shared with projects; a __DEFAULT__ type.
  - Volumes of N GiB: empty, from an image (through the Images consumer
    interface; filevol converts it with qemu-img and keeps it as a
    copy-on-write base), from a snapshot, from another volume (a clone), or
    restored from a backup; bootable, multiattach, metadata; Cinder's
    statuses and transitions (creating, available, reserved, attaching,
    in-use, deleting, extending, backing-up, restoring-backup, uploading,
    awaiting-transfer, error, error_deleting, error_extending,
    error_restoring); extend (online for attached volumes where the
    backend can); upload to an image; reset status and force delete for
    admins.
  - Snapshots; attachments in the v3 flow (create/reserve → update with a
    host connector → complete → delete), with connection info as a tagged
    union on driver_volume_type ("file": a path libvirt attaches).
  - Backups to an object store (BackupStore, which any
    objectstore.Backend satisfies): fixed-size chunks with their SHA-256
    in a manifest object; incremental backups store only the chunks that
    changed; chunks of zeros are not stored; a restore verifies every chunk
    and writes a new or an existing volume.
  - Transfers between projects with an auth key kept only as a salted
    hash; quotas counted from the records (volumes, gigabytes, snapshots,
    backups, backup_gigabytes, per type); a scheduler that places a volume
    by the capacity filter (over-subscription ratio for thin pools), the
    capabilities filter and the capacity weigher.
  - Crash recovery at Start: nothing stays in a transient status.

Policy and tenant isolation are enforced by the Service: a volume,
snapshot, backup or attachment of another project is not found.

# Example to create a volume and attach it

	svc, _ := blockstore.New(blockstore.Config{Store: st,
		Backends: []blockstore.BackendConfig{{Name: "file", Backend: backend}}})
	_ = svc.Start(ctx)
	v, _ := svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{Name: "data", SizeGiB: 10})
	// ... once available:
	at, _ := svc.CreateAttachment(ctx, blockstore.CreateAttachmentOpts{VolumeID: v.ID,
		InstanceID: serverID, Connector: &blockstore.Connector{Host: "compute-1"}})
	_ = svc.CompleteAttachment(ctx, at.ID) // at.Connection.File.Path is the disk

The REST API is NewHandler; its error bodies have Cinder's shape
({"badRequest":{"code":400,"message":"…"}}).
*/
package blockstore
