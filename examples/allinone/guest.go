package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image"
)

// guestImage is one file of the tiny guest (make guest) and the image it
// becomes.
type guestImage struct {
	file, name, diskFormat, containerFormat string
}

// The tiny guest's images: the ami boots the aki with the ari by
// kernel_id and ramdisk_id, as Nova boots aki/ari/ami images.
var guestImages = []guestImage{
	{"vmlinuz", "stratus-tiny-kernel", image.DiskAKI, "aki"},
	{"initrd.img", "stratus-tiny-ramdisk", image.DiskARI, "ari"},
	{"root.img", "stratus-tiny", image.DiskAMI, "ami"},
}

// registerGuest registers the tiny guest built in dir as public images of
// the admin project: stratus-tiny-kernel (aki), stratus-tiny-ramdisk (ari)
// and stratus-tiny (ami, with kernel_id, ramdisk_id and os_command_line),
// so that `openstack server create --image stratus-tiny` boots it. It does
// nothing when dir lacks the files, and keeps images already registered
// under those names.
func registerGuest(ctx context.Context, imgs *image.Service, ident *identity.Service, dir string, logger *slog.Logger) error {
	for _, g := range guestImages {
		if fi, err := os.Stat(filepath.Join(dir, g.file)); err != nil || !fi.Mode().IsRegular() {
			logger.Info("tiny guest not built: not registering it (make guest)", "dir", dir)
			return nil //nolint:nilerr // no guest is not an error
		}
	}
	sys := identity.WithCredentials(ctx, &identity.Credentials{UserID: "stratus", System: true, Roles: []string{"admin", "member", "reader"}})
	projects, err := ident.ListProjects(sys, identity.ListProjectsOpts{Name: "admin"})
	if err != nil || len(projects) == 0 {
		return fmt.Errorf("tiny guest: admin project: %w", err)
	}
	admin := identity.WithCredentials(ctx, &identity.Credentials{UserID: "stratus", ProjectID: projects[0].ID, IsAdminProject: true,
		Roles: []string{"admin", "member", "reader"}})
	ids := map[string]string{}
	for _, g := range guestImages {
		existing, _, err := imgs.ListImages(admin, image.ListImagesOpts{Name: g.name})
		if err != nil {
			return fmt.Errorf("tiny guest: %w", err)
		}
		if len(existing) > 0 {
			ids[g.name] = existing[0].ID
			continue
		}
		props := map[string]string{}
		if g.diskFormat == image.DiskAMI {
			props["kernel_id"], props["ramdisk_id"] = ids["stratus-tiny-kernel"], ids["stratus-tiny-ramdisk"]
			props["os_command_line"] = "console=ttyS0 quiet"
		}
		img, err := imgs.CreateImage(admin, image.CreateImageOpts{Name: g.name, Visibility: image.VisibilityPublic,
			DiskFormat: g.diskFormat, ContainerFormat: g.containerFormat, Properties: props})
		if err != nil {
			return fmt.Errorf("tiny guest: create %s: %w", g.name, err)
		}
		f, err := os.Open(filepath.Join(dir, g.file))
		if err != nil {
			return err
		}
		_, err = imgs.UploadData(admin, img.ID, f, image.UploadOpts{Size: -1})
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("tiny guest: upload %s: %w", g.name, err)
		}
		ids[g.name] = img.ID
		logger.Info("registered the tiny guest image", "name", g.name, "id", img.ID)
	}
	return nil
}

// startWithGuest runs the image service's start, then registers the tiny
// guest from cfg.GuestDir (a failure is logged: the cloud runs without
// it).
func startWithGuest(start func(context.Context) error, cfg Config, imgs *image.Service, ident *identity.Service,
	logger *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := start(ctx); err != nil {
			return err
		}
		if cfg.GuestDir != "" {
			if err := registerGuest(ctx, imgs, ident, cfg.GuestDir, logger); err != nil {
				logger.Warn("tiny guest not registered", "err", err)
			}
		}
		return nil
	}
}
