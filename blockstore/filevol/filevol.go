// Package filevol is a blockstore.Backend that keeps volumes as raw or
// qcow2 files in a directory, made and converted with qemu-img (Debian
// package qemu-utils). A volume's connection info is its file path, which
// libvirt attaches as a disk.
//
// Layout under the directory:
//
//	volumes/volume-<id>     the volumes (raw or qcow2, as Options.Format)
//	snapshots/snapshot-<id> point-in-time copies
//	images/image-<id>-<md5> images kept as copy-on-write bases
//	refs/<base>/<id>        which qcow2 volumes are overlays of which base
//	tmp/                    files being made; emptied at Open
//
// Provisioning is thin: raw files are sparse and qcow2 files grow on write,
// so a pool reports what its files really allocate (st_blocks) while the
// Service counts what is provisioned. With a qcow2 pool and CopyOnWrite,
// volumes made from images and snapshots are overlays whose backing file
// is the image or snapshot; deleting a snapshot first copies its data into
// its overlays (qemu-img rebase). Everything else is a sparse copy.
//
// Directories are 0711 and files 0600: QEMU (the libvirt-qemu user) can
// reach a volume's path, and libvirt gives it ownership of the files it
// attaches; nobody else can list or read them.
//
// Raw errors of qemu-img are *exec.ExitError values wrapped in the
// returned error, with qemu-img's message.
package filevol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/errdefs"
)

// Options configure a Backend.
type Options struct {
	// Format of the volume files: "raw" (default) or "qcow2".
	Format string
	// Pool is the pool's name. Default "pool1".
	Pool string
	// CapacityGiB is the pool's capacity. Zero means the file system's.
	CapacityGiB float64
	// OverSubscription is the thin pool's max over-subscription ratio.
	// Default 20.
	OverSubscription float64
	// FullCopy makes volumes from images and snapshots full copies. By
	// default a qcow2 pool makes them copy-on-write overlays of the
	// cached image or the snapshot (raw pools always copy).
	FullCopy bool
	// QemuImg is the qemu-img program. Default "qemu-img".
	QemuImg string
}

// Backend is the file backend.
type Backend struct {
	dir  string
	opts Options
	// imageMu serializes filling the image cache.
	imageMu sync.Mutex
}

var _ blockstore.Backend = (*Backend)(nil)

var subdirs = []string{"volumes", "snapshots", "images", "refs", "tmp"}

// Open opens (creating it if needed) the backend in dir; opts may be nil.
// It checks qemu-img is there and empties tmp/ of what a crash left.
func Open(dir string, opts *Options) (*Backend, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Format == "" {
		o.Format = "raw"
	}
	if o.Format != "raw" && o.Format != "qcow2" {
		return nil, errdefs.Invalid("Format", "filevol: format %q: want raw or qcow2", o.Format)
	}
	if o.Pool == "" {
		o.Pool = "pool1"
	}
	if o.OverSubscription == 0 {
		o.OverSubscription = 20
	}
	if o.QemuImg == "" {
		o.QemuImg = "qemu-img"
	}
	if _, err := exec.LookPath(o.QemuImg); err != nil {
		return nil, fmt.Errorf("filevol: %s not found (install qemu-utils): %w", o.QemuImg, errdefs.Wrap(errdefs.ErrUnavailable, err))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filevol: %w", err)
	}
	for _, d := range append([]string{""}, subdirs...) {
		p := filepath.Join(abs, d)
		if err := os.MkdirAll(p, 0o711); err != nil {
			return nil, fmt.Errorf("filevol: %w", err)
		}
		if err := os.Chmod(p, 0o711); err != nil {
			return nil, fmt.Errorf("filevol: %w", err)
		}
	}
	tmp := filepath.Join(abs, "tmp")
	ents, _ := os.ReadDir(tmp)
	for _, e := range ents {
		_ = os.RemoveAll(filepath.Join(tmp, e.Name()))
	}
	return &Backend{dir: abs, opts: o}, nil
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

func checkID(kind, id string) error {
	if !idRE.MatchString(id) {
		return errdefs.Invalid("id", "filevol: %s id %q is not valid", kind, id)
	}
	return nil
}

func (b *Backend) volPath(id string) string { return filepath.Join(b.dir, "volumes", "volume-"+id) }
func (b *Backend) snapPath(id string) string {
	return filepath.Join(b.dir, "snapshots", "snapshot-"+id)
}

// tmpFile returns a fresh path in tmp/.
func (b *Backend) tmpFile(prefix string) (string, error) {
	f, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), prefix)
	if err != nil {
		return "", fmt.Errorf("filevol: %w", err)
	}
	name := f.Name()
	f.Close()
	return name, nil
}

// qemuImg runs qemu-img and returns its stdout.
func (b *Backend) qemuImg(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, b.opts.QemuImg, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("filevol: qemu-img %s: %s: %w", args[0], strings.TrimSpace(stderr.String()), err)
	}
	return out.Bytes(), nil
}

// ImageInfo is what qemu-img info says of a file.
type ImageInfo struct {
	VirtualSize     int64  `json:"virtual-size"`
	Format          string `json:"format"`
	BackingFilename string `json:"backing-filename"`
	FullBacking     string `json:"full-backing-filename"`
	FormatSpecific  struct {
		Type string `json:"type"`
		Data struct {
			DataFile string `json:"data-file"`
		} `json:"data"`
	} `json:"format-specific"`
}

// ParseImageInfo parses qemu-img info --output=json and refuses what is
// unsafe in an image from a user: a backing file or an external data file
// (they would make the volume read another file of the host, OSSA-2015-014
// and CVE-2022-47951 class), or a negative size.
func ParseImageInfo(data []byte) (*ImageInfo, error) {
	var info ImageInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, errdefs.Invalid("image", "filevol: cannot read qemu-img info: %v", err)
	}
	switch {
	case info.BackingFilename != "" || info.FullBacking != "":
		return nil, errdefs.Invalid("image", "filevol: the image names a backing file")
	case info.FormatSpecific.Data.DataFile != "":
		return nil, errdefs.Invalid("image", "filevol: the image names an external data file")
	case info.VirtualSize < 0:
		return nil, errdefs.Invalid("image", "filevol: the image has a negative size")
	}
	return &info, nil
}

// inspect runs qemu-img info on a user-supplied file in format.
func (b *Backend) inspect(ctx context.Context, path, format string) (*ImageInfo, error) {
	out, err := b.qemuImg(ctx, "info", "-f", format, "--output=json", path)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, err)
	}
	return ParseImageInfo(out)
}

// virtualSize returns the virtual size of one of our own files.
func (b *Backend) virtualSize(ctx context.Context, path string) (int64, error) {
	if b.opts.Format == "raw" {
		fi, err := os.Stat(path)
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	out, err := b.qemuImg(ctx, "info", "-U", "-f", "qcow2", "--output=json", path)
	if err != nil {
		return 0, err
	}
	var info ImageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("filevol: qemu-img info: %w", err)
	}
	return info.VirtualSize, nil
}

// Pools implements blockstore.Backend.
func (b *Backend) Pools(ctx context.Context) ([]blockstore.PoolStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var alloc int64
	err := filepath.WalkDir(b.dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil //nolint:nilerr // a file deleted during the walk is not allocated
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				alloc += st.Blocks * 512
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("filevol: %w", err)
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(b.dir, &sfs); err != nil {
		return nil, fmt.Errorf("filevol: statfs: %w", err)
	}
	fsTotal := float64(sfs.Blocks) * float64(sfs.Bsize) / (1 << 30)
	fsFree := float64(sfs.Bavail) * float64(sfs.Bsize) / (1 << 30)
	total, free := fsTotal, fsFree
	if b.opts.CapacityGiB > 0 {
		total = b.opts.CapacityGiB
		free = min(total-float64(alloc)/(1<<30), fsFree)
	}
	return []blockstore.PoolStats{{
		Name: b.opts.Pool, TotalGiB: total, FreeGiB: max(free, 0), AllocatedBytes: alloc,
		Thin: true, MaxOverSubscriptionRatio: b.opts.OverSubscription,
		Capabilities: map[string]string{"volume_format": b.opts.Format},
	}}, nil
}

func (b *Backend) cow() bool { return b.opts.Format == "qcow2" && !b.opts.FullCopy }

// CreateVolume implements blockstore.Backend.
func (b *Backend) CreateVolume(ctx context.Context, spec blockstore.VolumeSpec, src blockstore.Source) error {
	if err := checkID("volume", spec.ID); err != nil {
		return err
	}
	if spec.Pool != b.opts.Pool {
		return fmt.Errorf("filevol: pool %q: %w", spec.Pool, errdefs.ErrNotFound)
	}
	if spec.SizeGiB <= 0 {
		return errdefs.Invalid("size", "filevol: volume %q: size must be positive", spec.ID)
	}
	size := int64(spec.SizeGiB) << 30
	tmp, err := b.tmpFile("volume-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	var base string // the backing file of an overlay
	switch {
	case src.SnapshotID != "":
		if err := checkID("snapshot", src.SnapshotID); err != nil {
			return err
		}
		p := b.snapPath(src.SnapshotID)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("filevol: snapshot %q: %w", src.SnapshotID, errdefs.ErrNotFound)
		}
		if b.cow() {
			base = p
			err = b.overlay(ctx, tmp, p, b.opts.Format, size)
		} else {
			err = b.copyTo(ctx, p, b.opts.Format, tmp, size)
		}
	case src.VolumeID != "":
		if err := checkID("volume", src.VolumeID); err != nil {
			return err
		}
		p := b.volPath(src.VolumeID)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("filevol: volume %q: %w", src.VolumeID, errdefs.ErrNotFound)
		}
		err = b.copyTo(ctx, p, b.opts.Format, tmp, size)
	case src.Image != nil:
		base, err = b.fromImage(ctx, tmp, src.Image, size)
	default:
		err = b.blank(ctx, tmp, size)
	}
	if err != nil {
		return fmt.Errorf("filevol: volume %q: %w", spec.ID, err)
	}
	if err := b.install(tmp, spec.ID); err != nil {
		return err
	}
	b.dropRefs(spec.ID)
	if base != "" {
		return b.addRef(filepath.Base(base), spec.ID)
	}
	return nil
}

// install moves a finished file into place as volume id, durably.
func (b *Backend) install(tmp, id string) error {
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("filevol: %w", err)
	}
	if f, err := os.Open(tmp); err == nil {
		_ = f.Sync()
		f.Close()
	}
	if err := os.Rename(tmp, b.volPath(id)); err != nil {
		return fmt.Errorf("filevol: volume %q: %w", id, err)
	}
	return syncDir(filepath.Join(b.dir, "volumes"))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("filevol: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

// blank makes an empty volume file: a sparse raw file or a new qcow2
// file. Both read as zeros, so a new volume never shows old bytes.
func (b *Backend) blank(ctx context.Context, path string, size int64) error {
	if b.opts.Format == "raw" {
		return os.Truncate(path, size)
	}
	_, err := b.qemuImg(ctx, "create", "-q", "-f", "qcow2", path, strconv.FormatInt(size, 10))
	return err
}

// overlay makes a qcow2 overlay of base.
func (b *Backend) overlay(ctx context.Context, path, base, baseFormat string, size int64) error {
	_, err := b.qemuImg(ctx, "create", "-q", "-f", "qcow2", "-F", baseFormat, "-b", base, path, strconv.FormatInt(size, 10))
	return err
}

// copyTo converts src (in format) into a new volume file at dst of size
// bytes; src must not be larger.
func (b *Backend) copyTo(ctx context.Context, src, format, dst string, size int64) error {
	if _, err := b.qemuImg(ctx, "convert", "-U", "-f", format, "-O", b.opts.Format, src, dst); err != nil {
		return err
	}
	return b.resize(ctx, dst, size)
}

// resize grows a volume file to size bytes.
func (b *Backend) resize(ctx context.Context, path string, size int64) error {
	have, err := b.virtualSize(ctx, path)
	if err != nil {
		return err
	}
	switch {
	case have > size:
		return errdefs.Invalid("size", "the source (%d bytes) is larger than the volume (%d bytes)", have, size)
	case have == size:
		return nil
	case b.opts.Format == "raw":
		return os.Truncate(path, size)
	}
	_, err = b.qemuImg(ctx, "resize", "-q", "-f", "qcow2", path, strconv.FormatInt(size, 10))
	return err
}

// download stores an image's bytes in tmp/ and checks them. On error
// nothing is left in tmp/.
func (b *Backend) download(ctx context.Context, r io.Reader, format string) (string, *ImageInfo, error) {
	if format != "raw" && format != "qcow2" {
		return "", nil, errdefs.Invalid("disk_format", "filevol: images in %q cannot be written to volumes (want raw or qcow2)", format)
	}
	path, err := b.tmpFile("image-")
	if err != nil {
		return "", nil, err
	}
	info, err := b.fill(ctx, path, r, format)
	if err != nil {
		os.Remove(path)
		return "", nil, err
	}
	return path, info, nil
}

func (b *Backend) fill(ctx context.Context, path string, r io.Reader, format string) (*ImageInfo, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filevol: %w", err)
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("filevol: image download: %w", err)
	}
	return b.inspect(ctx, path, format)
}

// fromImage makes the volume file at path from an image: an overlay of
// the cached image with copy-on-write, else a converted copy. It returns
// the overlay's base, if any.
func (b *Backend) fromImage(ctx context.Context, path string, img *blockstore.ImageSource, size int64) (string, error) {
	if !b.cow() {
		rc, err := img.Open(ctx)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		dl, info, err := b.download(ctx, rc, img.Format)
		if err != nil {
			return "", err
		}
		defer os.Remove(dl)
		if info.VirtualSize > size {
			return "", errdefs.Invalid("size", "the image (%d bytes) is larger than the volume (%d bytes)", info.VirtualSize, size)
		}
		return "", b.copyTo(ctx, dl, img.Format, path, size)
	}
	base, format, vsize, err := b.cachedImage(ctx, img)
	if err != nil {
		return "", err
	}
	if vsize > size {
		return "", errdefs.Invalid("size", "the image (%d bytes) is larger than the volume (%d bytes)", vsize, size)
	}
	return base, b.overlay(ctx, path, base, format, size)
}

var cacheKeyRE = regexp.MustCompile(`[^A-Za-z0-9-]`)

// cachedImage returns the cached copy of an image, downloading it once.
func (b *Backend) cachedImage(ctx context.Context, img *blockstore.ImageSource) (path, format string, vsize int64, err error) {
	if err := checkID("image", img.ID); err != nil {
		return "", "", 0, err
	}
	name := "image-" + img.ID + "-" + cacheKeyRE.ReplaceAllString(img.Checksum, "")
	b.imageMu.Lock()
	defer b.imageMu.Unlock()
	for _, f := range []string{"raw", "qcow2"} {
		p := filepath.Join(b.dir, "images", name+"."+f)
		if _, err := os.Stat(p); err == nil {
			out, err := b.qemuImg(ctx, "info", "-U", "-f", f, "--output=json", p)
			if err != nil {
				return "", "", 0, err
			}
			info, err := ParseImageInfo(out)
			if err != nil {
				return "", "", 0, err
			}
			return p, f, info.VirtualSize, nil
		}
	}
	rc, err := img.Open(ctx)
	if err != nil {
		return "", "", 0, err
	}
	defer rc.Close()
	dl, info, err := b.download(ctx, rc, img.Format)
	if err != nil {
		return "", "", 0, err
	}
	p := filepath.Join(b.dir, "images", name+"."+img.Format)
	if err := os.Chmod(dl, 0o600); err != nil {
		os.Remove(dl)
		return "", "", 0, fmt.Errorf("filevol: %w", err)
	}
	if err := os.Rename(dl, p); err != nil {
		os.Remove(dl)
		return "", "", 0, fmt.Errorf("filevol: %w", err)
	}
	return p, img.Format, info.VirtualSize, nil
}

// addRef records that volume id is an overlay of base (a file name).
func (b *Backend) addRef(base, id string) error {
	d := filepath.Join(b.dir, "refs", base)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return fmt.Errorf("filevol: %w", err)
	}
	return os.WriteFile(filepath.Join(d, id), nil, 0o600)
}

// dropRefs forgets that volume id is an overlay of anything.
func (b *Backend) dropRefs(id string) {
	matches, _ := filepath.Glob(filepath.Join(b.dir, "refs", "*", id))
	for _, m := range matches {
		os.Remove(m)
	}
}

// DeleteVolume implements blockstore.Backend.
func (b *Backend) DeleteVolume(ctx context.Context, id string) error {
	if err := checkID("volume", id); err != nil {
		return err
	}
	if err := os.Remove(b.volPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filevol: volume %q: %w", id, err)
	}
	b.dropRefs(id)
	return ctx.Err()
}

// ExtendVolume implements blockstore.Backend.
func (b *Backend) ExtendVolume(ctx context.Context, id string, sizeGiB int) error {
	if err := checkID("volume", id); err != nil {
		return err
	}
	p := b.volPath(id)
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("filevol: volume %q: %w", id, errdefs.ErrNotFound)
	}
	if err := b.resize(ctx, p, int64(sizeGiB)<<30); err != nil {
		return fmt.Errorf("filevol: volume %q: %w", id, err)
	}
	return nil
}

// WriteVolume implements blockstore.Backend.
func (b *Backend) WriteVolume(ctx context.Context, id string, r io.Reader, format string) error {
	if err := checkID("volume", id); err != nil {
		return err
	}
	p := b.volPath(id)
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("filevol: volume %q: %w", id, errdefs.ErrNotFound)
	}
	size, err := b.virtualSize(ctx, p)
	if err != nil {
		return err
	}
	dl, info, err := b.download(ctx, r, format)
	if err != nil {
		return fmt.Errorf("filevol: volume %q: %w", id, err)
	}
	defer os.Remove(dl)
	if info.VirtualSize > size {
		return errdefs.Invalid("size", "filevol: volume %q: the data (%d bytes) is larger than the volume (%d bytes)", id, info.VirtualSize, size)
	}
	tmp, err := b.tmpFile("volume-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := b.copyTo(ctx, dl, format, tmp, size); err != nil {
		return fmt.Errorf("filevol: volume %q: %w", id, err)
	}
	if err := b.install(tmp, id); err != nil {
		return err
	}
	b.dropRefs(id)
	return nil
}

// OpenVolume implements blockstore.Backend.
func (b *Backend) OpenVolume(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := checkID("volume", id); err != nil {
		return nil, err
	}
	p := b.volPath(id)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("filevol: volume %q: %w", id, errdefs.ErrNotFound)
	}
	if b.opts.Format == "raw" {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("filevol: %w", err)
		}
		return f, nil
	}
	tmp, err := b.tmpFile("read-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp) // the open file outlives its name
	if _, err := b.qemuImg(ctx, "convert", "-U", "-f", "qcow2", "-O", "raw", p, tmp); err != nil {
		return nil, fmt.Errorf("filevol: volume %q: %w", id, err)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return nil, fmt.Errorf("filevol: %w", err)
	}
	return f, nil
}

// CreateSnapshot implements blockstore.Backend.
func (b *Backend) CreateSnapshot(ctx context.Context, volumeID, snapshotID string) error {
	if err := checkID("volume", volumeID); err != nil {
		return err
	}
	if err := checkID("snapshot", snapshotID); err != nil {
		return err
	}
	p := b.volPath(volumeID)
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("filevol: volume %q: %w", volumeID, errdefs.ErrNotFound)
	}
	tmp, err := b.tmpFile("snapshot-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if _, err := b.qemuImg(ctx, "convert", "-U", "-f", b.opts.Format, "-O", b.opts.Format, p, tmp); err != nil {
		return fmt.Errorf("filevol: snapshot %q: %w", snapshotID, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("filevol: %w", err)
	}
	if err := os.Rename(tmp, b.snapPath(snapshotID)); err != nil {
		return fmt.Errorf("filevol: snapshot %q: %w", snapshotID, err)
	}
	return syncDir(filepath.Join(b.dir, "snapshots"))
}

// DeleteSnapshot implements blockstore.Backend.
func (b *Backend) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	if err := checkID("snapshot", snapshotID); err != nil {
		return err
	}
	base := "snapshot-" + snapshotID
	refDir := filepath.Join(b.dir, "refs", base)
	children, _ := os.ReadDir(refDir)
	for _, c := range children {
		vp := b.volPath(c.Name())
		if _, err := os.Stat(vp); err == nil {
			// Copy the snapshot's data into the overlay, which then stands
			// alone.
			if _, err := b.qemuImg(ctx, "rebase", "-q", "-f", "qcow2", "-b", "", vp); err != nil {
				return fmt.Errorf("filevol: snapshot %q: flatten volume %q: %w", snapshotID, c.Name(), err)
			}
		}
		os.Remove(filepath.Join(refDir, c.Name()))
	}
	os.Remove(refDir)
	if err := os.Remove(b.snapPath(snapshotID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filevol: snapshot %q: %w", snapshotID, err)
	}
	return nil
}

// Connect implements blockstore.Backend.
func (b *Backend) Connect(ctx context.Context, volumeID string, _ blockstore.Connector) (*blockstore.ConnectionInfo, error) {
	if err := checkID("volume", volumeID); err != nil {
		return nil, err
	}
	p := b.volPath(volumeID)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("filevol: volume %q: %w", volumeID, errdefs.ErrNotFound)
	}
	return &blockstore.ConnectionInfo{DriverVolumeType: blockstore.DriverVolumeFile,
		File: &blockstore.FileConnection{Path: p, Format: b.opts.Format}}, ctx.Err()
}

// Disconnect implements blockstore.Backend.
func (b *Backend) Disconnect(ctx context.Context, volumeID string, _ blockstore.Connector) error {
	if err := checkID("volume", volumeID); err != nil {
		return err
	}
	return ctx.Err()
}

// ListVolumes implements blockstore.Backend.
func (b *Backend) ListVolumes(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(b.dir, "volumes"))
	if err != nil {
		return nil, fmt.Errorf("filevol: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutPrefix(e.Name(), "volume-"); ok {
			ids = append(ids, id)
		}
	}
	return ids, ctx.Err()
}

// Capabilities implements blockstore.Backend: a raw file can grow under a
// running guest; a qcow2 file is locked by QEMU.
func (b *Backend) Capabilities() blockstore.Capabilities {
	return blockstore.Capabilities{OnlineExtend: b.opts.Format == "raw", Multiattach: true}
}
