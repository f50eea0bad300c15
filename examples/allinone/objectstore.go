package main

import (
	"context"
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

// objectStoreComponent builds the object store on fsobj in DATA/objects.
// It returns the backend too (the image service keeps its bytes there),
// and the service (metering reads the accounts' usage).
// The component's close closes the backend.
func objectStoreComponent(cfg Config, st *store.Store, ident *identity.Service, logger *slog.Logger) (component, objectstore.Backend, *objectstore.Service, error) {
	backend, err := fsobj.Open(filepath.Join(cfg.DataDir, "objects"), nil)
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
	}, backend, svc, nil
}
