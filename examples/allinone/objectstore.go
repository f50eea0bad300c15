package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

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

// objectStoreComponent builds the object store on fsobj in DATA/objects,
// or on the S3 bucket cfg.Objects names.
// It returns the backend too: the image service keeps its bytes there.
// The component's close closes the backend. It returns the service too,
// for orchestration's containers.
func objectStoreComponent(cfg Config, st *store.Store, ident *identity.Service, logger *slog.Logger) (component, *objectstore.Service, objectstore.Backend, error) {
	var backend objectstore.Backend
	var err error
	switch {
	case isS3Objects(cfg.Objects):
		backend, err = s3Objects(cfg.Objects)
	case cfg.Objects == "":
		backend, err = fsobj.Open(filepath.Join(cfg.DataDir, "objects"), nil)
	default:
		err = fmt.Errorf("-objects %q: want s3://HOST:PORT/BUCKET or s3+https://HOST/BUCKET", cfg.Objects)
	}
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
		start:   func(ctx context.Context) error { return svc.Start(ctx) },
		close: func() error {
			err := svc.Close()
			if berr := backend.Close(); err == nil {
				err = berr
			}
			return err
		},
	}, svc, backend, nil
}
