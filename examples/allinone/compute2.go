package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/image"
)

// fakeDelays are the fake hosts' latencies from the flags.
func fakeDelays(cfg Config) map[fakevm.Op]time.Duration {
	return map[fakevm.Op]time.Duration{fakevm.OpSpawn: cfg.FakeSpawnDelay, fakevm.OpMigrate: cfg.FakeMoveDelay,
		fakevm.OpResize: cfg.FakeMoveDelay, fakevm.OpSnapshot: cfg.FakeMoveDelay}
}

var _ compute.ImageWriter = computeImages{}

// CreateImage implements compute.ImageWriter: a private, queued image of
// the project (a snapshot).
func (a computeImages) CreateImage(ctx context.Context, project string, o compute.NewImage) (string, error) {
	img, err := a.svc.CreateImage(a.as(ctx, project), image.CreateImageOpts{Name: o.Name, Visibility: image.VisibilityPrivate,
		DiskFormat: o.DiskFormat, ContainerFormat: "bare", MinDisk: int64(o.MinDiskGB), MinRAM: int64(o.MinRAMMB), Properties: o.Properties})
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// UploadImage implements compute.ImageWriter: the disk_format the driver
// reports is set, then the bytes are uploaded (and inspected).
func (a computeImages) UploadImage(ctx context.Context, project, id, format string, r io.Reader) error {
	pctx := a.as(ctx, project)
	img, err := a.svc.GetImage(pctx, id)
	if err != nil {
		return err
	}
	if img.DiskFormat != format || img.ContainerFormat == "" {
		f, _ := json.Marshal(format)
		if _, err := a.svc.UpdateImage(pctx, id, []image.PatchOp{{Op: "replace", Path: "disk_format", Value: f},
			{Op: "replace", Path: "container_format", Value: json.RawMessage(`"bare"`)}}); err != nil {
			return err
		}
	}
	_, err = a.svc.UploadData(pctx, id, r, image.UploadOpts{Size: -1})
	return err
}

// DeleteImage implements compute.ImageWriter.
func (a computeImages) DeleteImage(ctx context.Context, project, id string) error {
	err := a.svc.DeleteImage(a.as(ctx, project), id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

var _ compute.VolumeSnapshotter = computeVolumes{}

// SnapshotVolume implements compute.VolumeSnapshotter: a forced snapshot
// of the attached volume, waited for until available.
func (a computeVolumes) SnapshotVolume(ctx context.Context, projectID, volumeID, name string) (string, error) {
	pctx := projectCtx(ctx, projectID)
	sn, err := a.svc.CreateSnapshot(pctx, blockstore.CreateSnapshotOpts{VolumeID: volumeID, Name: name, Force: true})
	if err != nil {
		return "", err
	}
	for range 600 {
		cur, err := a.svc.GetSnapshot(pctx, sn.ID)
		if err != nil {
			return "", err
		}
		switch cur.Status {
		case blockstore.SnapshotAvailable:
			return sn.ID, nil
		case blockstore.SnapshotError:
			return "", fmt.Errorf("snapshot %s of volume %s failed: %w", sn.ID, volumeID, errdefs.ErrUnavailable)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("snapshot %s of volume %s: not available after 30s: %w", sn.ID, volumeID, errdefs.ErrUnavailable)
}
