package main

import (
	"log/slog"
	"path/filepath"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/image/fileblob"
	"github.com/stratuskit/stratus/store"
)

// imagePort is Glance's conventional port.
const imagePort = 9292

// imageCatalog is the image service's catalog entry: Glance's URL is
// unversioned (clients append v2/).
func imageCatalog(cfg Config) identity.ServiceEndpoints {
	return identity.ServiceEndpoints{Type: "image", Name: "glance", PublicURL: serviceURL(cfg, imagePort, "")}
}

// imageComponent builds the image service, its bytes in DATA/images until
// they move to the object store's backend.
func imageComponent(cfg Config, st *store.Store, tokens identity.TokenValidator, logger *slog.Logger) (component, *image.Service, error) {
	blobs, err := fileblob.Open(filepath.Join(cfg.DataDir, "images"))
	if err != nil {
		return component{}, nil, err
	}
	svc, err := image.New(image.Config{Store: st, Blobs: blobs, Logger: logger, WebDownload: image.WebDownload{AllowedHosts: cfg.ImageWebDownloadHosts}})
	if err != nil {
		return component{}, nil, err
	}
	return component{name: "image", port: imagePort, handler: image.NewHandler(svc, tokens, logger), start: svc.Start, close: svc.Close}, svc, nil
}
