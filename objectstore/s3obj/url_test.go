package s3obj

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		in   string
		want Config
	}{
		{"s3://ak:sk@127.0.0.1:9000/images", Config{Endpoint: "127.0.0.1:9000", AccessKey: "ak", SecretKey: "sk", Bucket: "images"}},
		{"s3://minio.local:9000/stratus-objects", Config{Endpoint: "minio.local:9000", Bucket: "stratus-objects"}},
		{"s3://rgw:7480/old?trailer=false", Config{Endpoint: "rgw:7480", Bucket: "old", NoTrailer: true}},
		{"s3+https://k:s%2Fx@s3.example.com/b.c-d?region=eu-west-1&insecure=true&part_mb=64",
			Config{Endpoint: "s3.example.com", AccessKey: "k", SecretKey: "s/x", Bucket: "b.c-d", Region: "eu-west-1", Secure: true, Insecure: true, PartSize: 64 << 20}},
	}
	for _, tc := range good {
		got, err := ParseURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"", "fs:/data", "http://h:1/b", "s3://h/b", "s3://h:0/bucket", "s3://h:99999/bucket", "s3://:9000/bucket",
		"s3://h:9000/", "s3://h:9000/Bucket", "s3://h:9000/a/b", "s3://h:9000/ab", "s3://h:9000/-ab",
		"s3://h:9000/bucket?insecure=true", "s3://h:9000/bucket?part_mb=1", "s3://h:9000/bucket?color=red",
		"s3:opaque", "s3://h:9000/bucket?part_mb=x", "s3://h:9000/bucket?trailer=maybe",
	} {
		_, err := ParseURL(in)
		var ve *errdefs.ValidationError
		if !errors.As(err, &ve) || ve.Field != "objects" {
			t.Errorf("ParseURL(%q): %v, want a validation error naming objects", in, err)
		}
		if err != nil && strings.Contains(err.Error(), "sk") && strings.Contains(in, ":sk@") {
			t.Errorf("ParseURL(%q) error shows the secret: %v", in, err)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://ak:sk@127.0.0.1:9000/images", "s3+https://h/b.c?insecure=1&part_mb=5", "s3://[::1]:9000/bucket"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("ParseURL(%q): %v is not Invalid", s, err)
			}
			return
		}
		if cfg.Endpoint == "" || !validBucket(cfg.Bucket) || cfg.PartSize != 0 && cfg.PartSize < minPartSize {
			t.Fatalf("ParseURL(%q) accepted %+v", s, cfg)
		}
	})
}

func ExampleParseURL() {
	cfg, err := ParseURL("s3+https://s3.example.com/stratus?region=eu-west-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Endpoint, cfg.Bucket, cfg.Region, cfg.Secure, cfg.AccessKey == "")
	// Output: s3.example.com stratus eu-west-1 true true
}
