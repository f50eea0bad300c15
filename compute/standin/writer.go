package standin

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

var _ compute.ImageWriter = (*Images)(nil)

// CreateImage implements compute.ImageWriter: the image is pending (not
// visible to GetImage) until UploadImage.
func (m *Images) CreateImage(_ context.Context, project string, o compute.NewImage) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid()
	m.pending[id] = image{info: compute.ImageInfo{ID: id, Name: o.Name, DiskFormat: o.DiskFormat, MinDiskGB: o.MinDiskGB,
		MinRAMMB: o.MinRAMMB, Properties: maps.Clone(o.Properties)}, project: project}
	return id, nil
}

// UploadImage implements compute.ImageWriter.
func (m *Images) UploadImage(_ context.Context, project, id, format string, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	im, ok := m.pending[id]
	if !ok || im.project != project {
		return fmt.Errorf("standin: image %s is not queued: %w", id, errdefs.ErrConflict)
	}
	delete(m.pending, id)
	im.data, im.info.Size, im.info.DiskFormat = data, int64(len(data)), format
	m.imgs[id] = im
	return nil
}

// DeleteImage implements compute.ImageWriter.
func (m *Images) DeleteImage(_ context.Context, _, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pending, id)
	delete(m.imgs, id)
	return nil
}

// IDs returns the ids of every image, uploaded or pending, sorted.
func (m *Images) IDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(func(yield func(string) bool) {
		for id := range m.imgs {
			if !yield(id) {
				return
			}
		}
		for id := range m.pending {
			if !yield(id) {
				return
			}
		}
	})
}

var _ compute.VolumeSnapshotter = (*Volumes)(nil)

// SnapshotVolume implements compute.VolumeSnapshotter.
func (v *Volumes) SnapshotVolume(_ context.Context, project, volumeID, _ string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	x, ok := v.vols[volumeID]
	if !ok || x.project != project {
		return "", fmt.Errorf("standin: volume %s: %w", volumeID, errdefs.ErrNotFound)
	}
	return uuid(), nil
}
