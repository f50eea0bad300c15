package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/fsobj"
	"github.com/stratuskit/stratus/store"
)

// objectStorePort is Swift's conventional proxy port.
const objectStorePort = 8080

// objectStoreCatalog is the object store's catalog entry: Swift's account
// URL, which identity fills with the token's project.
func objectStoreCatalog(cfg Config) identity.ServiceEndpoints {
	return identity.ServiceEndpoints{Type: "object-store", Name: "swift", PublicURL: serviceURL(cfg, objectStorePort, "/v1/AUTH_%(project_id)s")}
}

// objectStoreComponent builds the object store on the backend -objects
// chose (fsobj in DATA/objects by default). It returns the backend too:
// the image service and volume backups keep their bytes there; and the
// service, for orchestration's containers. The component's close closes
// the backend.
func objectStoreComponent(cfg Config, st *store.Store, ident *identity.Service, logger *slog.Logger) (component, *objectstore.Service, objectstore.Backend, error) {
	spec, err := parseObjects(cfg.Objects, cfg.DataDir)
	if err != nil {
		return component{}, nil, nil, err
	}
	backend, loops, err := openObjects(spec, logger)
	if err != nil {
		return component{}, nil, nil, err
	}
	svc, err := objectstore.New(objectstore.Config{Store: st, Backend: backend, Logger: logger})
	if err != nil {
		backend.Close()
		return component{}, nil, nil, err
	}
	return component{
		name:    "objectstore",
		port:    objectStorePort,
		handler: objectstore.NewHandler(svc, ident, logger),
		start: func(ctx context.Context) error {
			for _, l := range loops {
				l.Start()
			}
			return svc.Start(ctx)
		},
		close: func() error {
			err := svc.Close()
			for _, l := range loops {
				l.Close()
			}
			if berr := backend.Close(); err == nil {
				err = berr
			}
			return err
		},
	}, svc, backend, nil
}

// objectsSpec is the object backend -objects names.
type objectsSpec struct {
	// Kind is "fs" (local directories) or "s3".
	Kind string
	// Dirs are fs's directories: one is a plain fsobj, several are the
	// devices of a replicated fsobj.Cluster.
	Dirs []string
	// URL is s3's URL (see s3Objects).
	URL string
}

// parseObjects parses -objects: "" (DATA/objects), fs:DIR[,DIR...],
// s3://… or s3+https://….
func parseObjects(v, dataDir string) (objectsSpec, error) {
	switch {
	case v == "":
		return objectsSpec{Kind: "fs", Dirs: []string{filepath.Join(dataDir, "objects")}}, nil
	case strings.HasPrefix(v, "fs:"):
		dirs := strings.Split(strings.TrimPrefix(v, "fs:"), ",")
		seen := map[string]bool{}
		for _, d := range dirs {
			if d == "" || seen[filepath.Clean(d)] {
				return objectsSpec{}, fmt.Errorf("-objects %q: directories must be non-empty and distinct", v)
			}
			seen[filepath.Clean(d)] = true
		}
		return objectsSpec{Kind: "fs", Dirs: dirs}, nil
	case isS3Objects(v):
		return objectsSpec{Kind: "s3", URL: v}, nil
	}
	return objectsSpec{}, fmt.Errorf("-objects %q: want fs:DIR[,DIR...], s3://HOST:PORT/BUCKET or s3+https://HOST/BUCKET", v)
}

// Replication and audit of a replicated fsobj.
const (
	replicateEvery = 30 * time.Second
	auditEvery     = time.Hour
	auditRate      = 8 << 20 // bytes/s
)

// loop is a background loop of a backend (replicator, auditor).
type loop interface {
	Start()
	Close() error
}

// openObjects opens the backend spec names and its background loops.
func openObjects(spec objectsSpec, logger *slog.Logger) (objectstore.Backend, []loop, error) {
	switch spec.Kind {
	case "fs":
		if len(spec.Dirs) == 1 {
			b, err := fsobj.Open(spec.Dirs[0], nil)
			return b, nil, err
		}
		c, err := fsobj.OpenCluster(fsobj.ClusterConfig{Devices: spec.Dirs, Logger: logger})
		if err != nil {
			return nil, nil, err
		}
		return c, []loop{fsobj.NewReplicator(c, replicateEvery), fsobj.NewAuditor(c, auditRate, auditEvery)}, nil
	case "s3":
		b, err := s3Objects(spec.URL)
		return b, nil, err
	}
	return nil, nil, fmt.Errorf("-objects: unknown backend %q", spec.Kind)
}
