//go:build cgo

package libvirtvm

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // Glance's legacy checksum
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/image"
)

const gib = 1 << 30

// prepare makes the files of a new domain: the root disk (an overlay on
// the cached base image), kernel and initrd for a direct kernel boot,
// volumes, ephemeral and swap disks, the config drive and the console
// log.
func (d *Driver) prepare(ctx context.Context, spec *compute.DomainSpec) (*plan, error) {
	id := spec.ServerID
	dir := d.serverDir(id)
	p := &plan{console: filepath.Join(dir, "console.log")}
	used := map[string]bool{}
	next := func() string {
		for c := 'a'; c <= 'z'; c++ {
			if dev := "vd" + string(c); !used[dev] {
				used[dev] = true
				return dev
			}
		}
		return ""
	}
	if img := spec.Image; img != nil {
		if spec.OpenImage == nil {
			return nil, fmt.Errorf("libvirtvm: server %s: no way to open image %s: %w", id, img.ID, errdefs.ErrInvalid)
		}
		base, err := d.cacheImage(ctx, spec.OpenImage, img.ID, img.Checksum, img.DiskFormat, img.Size)
		if err != nil {
			return nil, err
		}
		if img.KernelID != "" {
			k, err := d.cacheImage(ctx, spec.OpenImage, img.KernelID, "", "aki", 0)
			if err != nil {
				return nil, fmt.Errorf("kernel: %w", err)
			}
			p.kernel = k.path
			p.cmdline = d.opts.KernelCmdline
			if c, ok := img.Properties["os_command_line"]; ok && c != "" {
				p.cmdline = c
			}
			// Under TCG on a loaded host the kernel's IO-APIC timer check
			// can fail and panic the guest ("IO-APIC + timer doesn't
			// work"); the check proves nothing about emulated hardware.
			if d.virtType != VirtKVM && !slices.Contains(strings.Fields(p.cmdline), "no_timer_check") {
				p.cmdline += " no_timer_check"
			}
			if img.RamdiskID != "" {
				r, err := d.cacheImage(ctx, spec.OpenImage, img.RamdiskID, "", "ari", 0)
				if err != nil {
					return nil, fmt.Errorf("ramdisk: %w", err)
				}
				p.initrd = r.path
			}
		}
		size := int64(spec.RootGB) * gib
		if size > 0 && size < base.VirtualSize {
			return nil, fmt.Errorf("libvirtvm: server %s: flavor's root disk (%d GiB) is smaller than image %s (%d bytes): %w",
				id, spec.RootGB, img.ID, base.VirtualSize, errdefs.ErrInvalid)
		}
		root := filepath.Join(dir, "disk")
		args := []string{"create", "-q", "-f", "qcow2", "-b", base.path, "-F", base.Format, root}
		if size > base.VirtualSize {
			args = append(args, fmt.Sprint(size))
		}
		if err := d.qemuImg(ctx, args...); err != nil {
			return nil, fmt.Errorf("libvirtvm: server %s: root disk: %w", id, err)
		}
		used["vda"] = true
		dk := disk{path: root, format: "qcow2", dev: "vda"}
		if p.kernel == "" {
			dk.boot = 1
		}
		p.disks = append(p.disks, dk)
	}
	vols := slices.Clone(spec.Volumes)
	slices.SortStableFunc(vols, func(a, b compute.DiskAttachment) int { return bootRank(a) - bootRank(b) })
	for _, v := range vols {
		dk, err := volumeDisk(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("libvirtvm: server %s: %w", id, err)
		}
		if dk.dev == "" || used[dk.dev] {
			dk.dev = next()
		}
		used[dk.dev] = true
		if spec.Image == nil && v.BootIndex == 0 {
			dk.boot = 1
		}
		p.disks = append(p.disks, dk)
	}
	for _, e := range []struct {
		name string
		size int64
	}{{"disk.eph0", int64(spec.EphemeralGB) * gib}, {"disk.swap", int64(spec.SwapMB) << 20}} {
		if e.size <= 0 {
			continue
		}
		f := filepath.Join(dir, e.name)
		if err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", f, fmt.Sprint(e.size)); err != nil {
			return nil, fmt.Errorf("libvirtvm: server %s: %s: %w", id, e.name, err)
		}
		p.disks = append(p.disks, disk{path: f, format: "qcow2", dev: next()})
	}
	if spec.ConfigDrive != nil {
		f := filepath.Join(dir, "disk.config")
		if err := d.configDrive(ctx, f, spec.ConfigDrive); err != nil {
			return nil, fmt.Errorf("libvirtvm: server %s: config drive: %w", id, err)
		}
		p.disks = append(p.disks, disk{path: f, format: "raw", dev: next(), readonly: true})
	}
	for _, dk := range p.disks {
		if dk.dev == "" {
			return nil, fmt.Errorf("libvirtvm: server %s: too many disks: %w", id, errdefs.ErrInvalid)
		}
	}
	f, err := os.OpenFile(p.console, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("libvirtvm: server %s: console log: %w", id, err)
	}
	_ = f.Close()
	return p, nil
}

func bootRank(a compute.DiskAttachment) int {
	if a.BootIndex < 0 {
		return 1 << 20
	}
	return a.BootIndex
}

// volumeDisk checks a volume's connection info and returns its disk. A
// qcow2 volume passes the image format inspector first, as an image does.
func volumeDisk(ctx context.Context, v compute.DiskAttachment) (disk, error) {
	c := v.Connection
	if c.DriverVolumeType != "file" || c.File == nil {
		return disk{}, fmt.Errorf("volume %s: driver_volume_type %q is not supported: %w", v.VolumeID, c.DriverVolumeType, errdefs.ErrUnsupported)
	}
	p := c.File.Path
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return disk{}, fmt.Errorf("volume %s: path %q must be absolute and clean: %w", v.VolumeID, p, errdefs.ErrInvalid)
	}
	format := c.File.Format
	switch format {
	case "", "raw":
		format = "raw"
	case "qcow2":
		if err := inspectFile(ctx, p, "qcow2"); err != nil {
			return disk{}, fmt.Errorf("volume %s: %w", v.VolumeID, err)
		}
	default:
		return disk{}, fmt.Errorf("volume %s: format %q is not supported: %w", v.VolumeID, format, errdefs.ErrInvalid)
	}
	dev := strings.TrimPrefix(v.Device, "/dev/")
	if !validDev(dev) {
		dev = ""
	}
	return disk{path: p, format: format, dev: dev, serial: serial(v.VolumeID), alias: volumeAlias(v.VolumeID)}, nil
}

func validDev(s string) bool {
	return len(s) == 3 && strings.HasPrefix(s, "vd") && s[2] >= 'a' && s[2] <= 'z'
}

// serial is a disk serial from a volume id (QEMU keeps 20 characters).
func serial(id string) string {
	s := aliasSafe(id)
	return s[:min(20, len(s))]
}

// inspectFile runs the format inspector on a file's leading bytes and
// checks the format is the one declared.
func inspectFile(_ context.Context, p, declared string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	head := make([]byte, image.InspectBytes)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return err
	}
	ins, err := image.Inspect(head[:n])
	if err != nil {
		return fmt.Errorf("refused before qemu opens it: %w", err)
	}
	return matchFormat(declared, ins.Format)
}

// matchFormat checks that the format the inspector found is the one the
// image declares: formats with a signature must match it; raw data and
// the formats without a signature (aki, ari, ami) must look like nothing
// else, so that a qcow2 cannot pass as raw.
func matchFormat(declared, found string) error {
	switch declared {
	case "raw", "aki", "ari", "ami":
		if found != "raw" {
			return fmt.Errorf("image data is %s, not %s: %w", found, declared, errdefs.ErrInvalid)
		}
	case "vhd": // a fixed vhd has its footer at the end only
		if found != "vhd" && found != "raw" {
			return fmt.Errorf("image data is %s, not %s: %w", found, declared, errdefs.ErrInvalid)
		}
	default:
		if found != declared {
			return fmt.Errorf("image data is %s, not %s: %w", found, declared, errdefs.ErrInvalid)
		}
	}
	return nil
}

// baseImage is an entry of the image cache.
type baseImage struct {
	path        string
	Format      string `json:"format"` // raw or qcow2
	VirtualSize int64  `json:"virtual_size"`
	Source      string `json:"source"` // image id it was first fetched as
}

// cacheKey is the name of an image in the cache: its checksum (the
// content's address) when the image service gave one, else its id
// (kernel and ramdisk, whose checksums the spec does not carry; image
// data never changes once an image is active).
func cacheKey(id, checksum string) (key string, h hash.Hash, err error) {
	cs := strings.ToLower(checksum)
	if cs != "" {
		if _, err := hex.DecodeString(cs); err != nil {
			return "", nil, fmt.Errorf("image %s: checksum %q is not hex: %w", id, checksum, errdefs.ErrInvalid)
		}
		switch len(cs) {
		case 32:
			return "md5-" + cs, md5.New(), nil //nolint:gosec // Glance's legacy checksum
		case 64:
			return "sha256-" + cs, sha256.New(), nil
		case 128:
			return "sha512-" + cs, sha512.New(), nil
		}
		return "", nil, fmt.Errorf("image %s: checksum %q has an unknown length: %w", id, checksum, errdefs.ErrInvalid)
	}
	if id == "" || len(id) > 64 || strings.Trim(id, "0123456789abcdefABCDEF-") != "" {
		return "", nil, fmt.Errorf("image id %q: %w", id, errdefs.ErrInvalid)
	}
	return "image-" + strings.ToLower(id), nil, nil
}

// cacheImage returns the cached base of an image, fetching it first when
// the host has not got it: its bytes are streamed to a temporary file,
// their leading bytes pass the format inspector (before qemu-img or QEMU
// ever opens the file), the checksum is verified, and formats other than
// raw and qcow2 are converted to qcow2. One fetch per image at a time.
func (d *Driver) cacheImage(ctx context.Context, open func(context.Context, string) (io.ReadCloser, error),
	id, checksum, format string, size int64) (*baseImage, error) {
	key, h, err := cacheKey(id, checksum)
	if err != nil {
		return nil, err
	}
	unlock := d.locks.lock("image/" + key)
	defer unlock()
	final := filepath.Join(d.baseDir(), key)
	if b, err := readBase(final); err == nil {
		return b, nil
	}
	tmp, err := os.CreateTemp(d.baseDir(), ".fetch-*")
	if err != nil {
		return nil, fmt.Errorf("libvirtvm: image cache: %w", err)
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}()
	rc, err := open(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("libvirtvm: open image %s: %w", id, err)
	}
	defer func() { _ = rc.Close() }()
	var w io.Writer = tmp
	if h != nil {
		w = io.MultiWriter(tmp, h)
	}
	var r io.Reader = &ctxReader{ctx: ctx, r: rc}
	if size > 0 {
		r = io.LimitReader(r, size+1)
	}
	n, err := io.Copy(w, r)
	if err != nil {
		return nil, fmt.Errorf("libvirtvm: fetch image %s: %w", id, err)
	}
	if size > 0 && n != size {
		return nil, fmt.Errorf("libvirtvm: image %s: got %d bytes, the image service says %d: %w", id, n, size, errdefs.ErrInvalid)
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	if err := inspectFile(ctx, tmp.Name(), format); err != nil {
		return nil, fmt.Errorf("libvirtvm: image %s: %w", id, err)
	}
	if h != nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(checksum) {
			return nil, fmt.Errorf("libvirtvm: image %s: checksum mismatch (got %s, want %s): %w", id, got, checksum, errdefs.ErrInvalid)
		}
	}
	b := &baseImage{path: final, Format: "raw", VirtualSize: n, Source: id}
	src := tmp.Name()
	switch format {
	case "raw", "aki", "ari", "ami":
	case "qcow2":
		b.Format = "qcow2"
	case "vmdk", "vdi", "vhd", "vhdx":
		// Safe to open now that the inspector passed it: convert to a
		// standalone qcow2.
		conv := src + ".qcow2"
		defer func() { _ = os.Remove(conv) }()
		qf := format
		if qf == "vhd" {
			qf = "vpc"
		}
		if err := d.qemuImg(ctx, "convert", "-q", "-f", qf, "-O", "qcow2", src, conv); err != nil {
			return nil, fmt.Errorf("libvirtvm: image %s: convert %s: %w", id, format, err)
		}
		src, b.Format = conv, "qcow2"
	default:
		return nil, fmt.Errorf("libvirtvm: image %s: disk format %q is not supported: %w", id, format, errdefs.ErrUnsupported)
	}
	if b.Format == "qcow2" {
		vs, err := d.virtualSize(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("libvirtvm: image %s: %w", id, err)
		}
		b.VirtualSize = vs
	}
	if err := os.Chmod(src, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(src, final); err != nil {
		return nil, fmt.Errorf("libvirtvm: image cache: %w", err)
	}
	meta, _ := json.Marshal(b)
	if err := writeFileAtomic(final+".json", meta); err != nil {
		_ = os.Remove(final)
		return nil, fmt.Errorf("libvirtvm: image cache: %w", err)
	}
	d.log.Info("image cached", "image", id, "key", key, "format", b.Format, "bytes", n)
	return b, nil
}

// readBase returns a complete cache entry (its metadata is written last).
func readBase(p string) (*baseImage, error) {
	meta, err := os.ReadFile(p + ".json")
	if err != nil {
		return nil, err
	}
	var b baseImage
	if err := json.Unmarshal(meta, &b); err != nil {
		return nil, err
	}
	if _, err := os.Stat(p); err != nil {
		return nil, err
	}
	b.path = p
	return &b, nil
}

func writeFileAtomic(p string, data []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (d *Driver) qemuImg(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, d.opts.QemuImg, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img %s: %w: %s", args[0], err, bytes.TrimSpace(out))
	}
	return nil
}

func (d *Driver) virtualSize(ctx context.Context, p string) (int64, error) {
	out, err := exec.CommandContext(ctx, d.opts.QemuImg, "info", "--output=json", "-f", "qcow2", p).Output()
	if err != nil {
		return 0, fmt.Errorf("qemu-img info: %w", err)
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("qemu-img info: %w", err)
	}
	return info.VirtualSize, nil
}

// maxConfigDrive bounds the bytes of a config drive's files.
const maxConfigDrive = 64 << 20

// configDrive writes the files to a scratch tree and makes an ISO 9660
// image labelled config-2 of it (Rock Ridge and Joliet names, as Nova).
func (d *Driver) configDrive(ctx context.Context, out string, files map[string][]byte) error {
	tree, err := os.MkdirTemp(filepath.Dir(out), ".configdrive-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tree) }()
	total := 0
	for name, data := range files {
		total += len(data)
		if total > maxConfigDrive {
			return fmt.Errorf("files exceed %d bytes: %w", maxConfigDrive, errdefs.ErrInvalid)
		}
		clean := path.Clean(name)
		if name == "" || path.IsAbs(name) || clean != name || clean == "." || strings.HasPrefix(clean, "../") || clean == ".." ||
			strings.ContainsAny(name, "\x00\\") || len(name) > 255 {
			return fmt.Errorf("file name %q: %w", name, errdefs.ErrInvalid)
		}
		p := filepath.Join(tree, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, d.opts.GenISOImage, "-quiet", "-o", out, "-V", "config-2", "-r", "-J", "-l",
		"-allow-lowercase", "-allow-multidot", "-ldots", "-publisher", "Stratus", tree)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("genisoimage: %w: %s", err, bytes.TrimSpace(b))
	}
	return os.Chmod(out, 0o644)
}
