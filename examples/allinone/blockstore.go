package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/blockstore/filevol"
	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/store"
)

// blockStorePort is Cinder's conventional port.
const blockStorePort = 8776

// blockStoreCatalog is the block storage service's catalog entries: the
// openstack CLI looks for the type volumev3, gophercloud and the SDK for
// block-storage (and its aliases); identity fills %(project_id)s.
func blockStoreCatalog(cfg Config) []identity.ServiceEndpoints {
	url := serviceURL(cfg, blockStorePort, "/v3/%(project_id)s")
	return []identity.ServiceEndpoints{
		{Type: "block-storage", Name: "cinder", PublicURL: url},
		{Type: "volumev3", Name: "cinderv3", PublicURL: url},
	}
}

// blockStoreComponent builds the block storage service: volumes are raw
// files in DATA/volumes (filevol), backups go to the object store's
// backend (in an account no Swift user can name), images come from the
// image service.
func blockStoreComponent(cfg Config, st *store.Store, tokens identity.TokenValidator, images *image.Service, backups objectstore.Backend, logger *slog.Logger) (component, *blockstore.Service, error) {
	// QEMU runs as libvirt-qemu and must reach the volume files: the data
	// directory may be traversed (not listed) by others; every file in it
	// stays 0600.
	if err := os.Chmod(cfg.DataDir, 0o711); err != nil {
		return component{}, nil, fmt.Errorf("blockstore: %w", err)
	}
	vols, err := filevol.Open(filepath.Join(cfg.DataDir, "volumes"), nil)
	if err != nil {
		return component{}, nil, err
	}
	svc, err := blockstore.New(blockstore.Config{Store: st, Logger: logger,
		Backends: []blockstore.BackendConfig{{Name: "file", Backend: vols}}})
	if err != nil {
		return component{}, nil, err
	}
	svc.UseImages(imageAdapter{images})
	svc.UseBackups(backups)
	return component{
		name: "blockstore", port: blockStorePort, handler: blockstore.NewHandler(svc, tokens, logger), start: svc.Start, close: svc.Close,
	}, svc, nil
}

// imageAdapter is blockstore.Images over the image service.
type imageAdapter struct{ svc *image.Service }

func info(img *image.Image) *blockstore.ImageInfo {
	out := &blockstore.ImageInfo{ID: img.ID, Name: img.Name, Status: string(img.Status), DiskFormat: img.DiskFormat,
		ContainerFormat: img.ContainerFormat, Checksum: img.Checksum, MinDisk: img.MinDisk, Properties: img.Properties}
	if img.Size != nil {
		out.Size = *img.Size
	}
	if img.VirtualSize != nil {
		out.VirtualSize = *img.VirtualSize
	}
	return out
}

func (a imageAdapter) GetImage(ctx context.Context, id string) (*blockstore.ImageInfo, error) {
	img, err := a.svc.GetImage(ctx, id)
	if err != nil {
		return nil, err
	}
	return info(img), nil
}

func (a imageAdapter) OpenImage(ctx context.Context, id string) (io.ReadCloser, error) {
	_, rc, err := a.svc.OpenData(ctx, id, 0, -1)
	return rc, err
}

func (a imageAdapter) CreateImage(ctx context.Context, opts blockstore.NewImage) (*blockstore.ImageInfo, error) {
	img, err := a.svc.CreateImage(ctx, image.CreateImageOpts{Name: opts.Name, DiskFormat: opts.DiskFormat, ContainerFormat: opts.ContainerFormat,
		Visibility: image.Visibility(opts.Visibility), Protected: opts.Protected, Properties: opts.Properties})
	if err != nil {
		return nil, err
	}
	return info(img), nil
}

func (a imageAdapter) UploadImage(ctx context.Context, id string, r io.Reader) error {
	_, err := a.svc.UploadData(ctx, id, r, image.UploadOpts{Size: -1})
	return err
}

// computeVolumes is compute.Volumes over the block storage service: the
// attachment flow (reserve → connect → complete → delete) as compute
// drives it. Compute has authorized the request; the adapter acts as a
// member of the server's project, so a volume of another project is not
// found.
type computeVolumes struct{ svc *blockstore.Service }

var (
	_ compute.Volumes       = computeVolumes{}
	_ compute.VolumeDeleter = computeVolumes{}
)

func projectCtx(ctx context.Context, projectID string) context.Context {
	return identity.WithCredentials(ctx, &identity.Credentials{UserName: "compute", ProjectID: projectID,
		Roles: []string{identity.RoleMember, identity.RoleReader}})
}

// attachmentCtx is for calls that name only an attachment: the project is
// the attachment's own.
func (a computeVolumes) attachmentCtx(ctx context.Context, id string) (context.Context, error) {
	att, err := a.svc.GetAttachment(identity.WithCredentials(ctx, identity.SystemAdmin()), id)
	if err != nil {
		return nil, err
	}
	return projectCtx(ctx, att.ProjectID), nil
}

func (a computeVolumes) GetVolume(ctx context.Context, projectID, volumeID string) (*compute.Volume, error) {
	v, err := a.svc.GetVolume(projectCtx(ctx, projectID), volumeID)
	if err != nil {
		return nil, err
	}
	return &compute.Volume{ID: v.ID, SizeGB: v.SizeGiB, Status: string(v.Status), Bootable: v.Bootable}, nil
}

func toCompute(at *blockstore.Attachment) *compute.Attachment {
	out := &compute.Attachment{ID: at.ID, VolumeID: at.VolumeID, ServerID: at.InstanceID}
	if ci := at.Connection; ci != nil {
		out.Connection = &compute.ConnectionInfo{DriverVolumeType: ci.DriverVolumeType}
		if ci.File != nil {
			out.Connection.File = &compute.FileConnection{Path: ci.File.Path, Format: ci.File.Format}
		}
	}
	return out
}

func (a computeVolumes) ReserveAttachment(ctx context.Context, projectID, volumeID, serverID string) (*compute.Attachment, error) {
	at, err := a.svc.CreateAttachment(projectCtx(ctx, projectID), blockstore.CreateAttachmentOpts{VolumeID: volumeID, InstanceID: serverID})
	if err != nil {
		return nil, err
	}
	return toCompute(at), nil
}

func (a computeVolumes) ConnectAttachment(ctx context.Context, attachmentID string, conn compute.HostConnector) (*compute.Attachment, error) {
	pctx, err := a.attachmentCtx(ctx, attachmentID)
	if err != nil {
		return nil, err
	}
	at, err := a.svc.UpdateAttachment(pctx, attachmentID, blockstore.Connector{Host: conn.Host, IP: conn.IP, Initiator: conn.Initiator,
		Platform: conn.Platform, OSType: conn.OSType})
	if err != nil {
		return nil, err
	}
	return toCompute(at), nil
}

func (a computeVolumes) CompleteAttachment(ctx context.Context, attachmentID string) error {
	pctx, err := a.attachmentCtx(ctx, attachmentID)
	if err != nil {
		return err
	}
	return a.svc.CompleteAttachment(pctx, attachmentID)
}

func (a computeVolumes) DeleteAttachment(ctx context.Context, attachmentID string) error {
	pctx, err := a.attachmentCtx(ctx, attachmentID)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	err = a.svc.DeleteAttachment(pctx, attachmentID)
	if isNotFound(err) {
		return nil
	}
	return err
}

// DeleteVolume deletes a volume of the project, for a server's block
// device with delete_on_termination (absent is nil).
func (a computeVolumes) DeleteVolume(ctx context.Context, projectID, volumeID string) error {
	err := a.svc.DeleteVolume(projectCtx(ctx, projectID), volumeID, blockstore.DeleteVolumeOpts{})
	if isNotFound(err) {
		return nil
	}
	return err
}

func isNotFound(err error) bool { return errdefs.IsNotFound(err) }
