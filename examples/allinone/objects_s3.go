package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/stratuskit/stratus/objectstore/s3obj"
)

// The environment variables that give the S3 credentials -objects leaves
// out of its URL (so that they stay out of ps and shell history).
const (
	envS3AccessKey = "STRATUS_S3_ACCESS_KEY"
	envS3SecretKey = "STRATUS_S3_SECRET_KEY"
)

// isS3Objects reports whether -objects names an S3 bucket.
func isS3Objects(objects string) bool {
	return strings.HasPrefix(objects, "s3://") || strings.HasPrefix(objects, "s3+https://")
}

// s3Objects opens the S3 bucket -objects names:
// s3://[ACCESS:SECRET@]HOST:PORT/BUCKET, or s3+https://… for TLS.
func s3Objects(objects string) (*s3obj.Backend, error) {
	cfg, err := s3obj.ParseURL(objects)
	if err != nil {
		return nil, fmt.Errorf("-objects: %w", err)
	}
	if cfg.AccessKey == "" {
		cfg.AccessKey = os.Getenv(envS3AccessKey)
	}
	if cfg.SecretKey == "" {
		cfg.SecretKey = os.Getenv(envS3SecretKey)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := s3obj.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("-objects: S3 bucket %s on %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	return b, nil
}
