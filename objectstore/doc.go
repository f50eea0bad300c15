// Package objectstore is Stratus's Swift: accounts, containers and
// objects with Swift's v1 API, on a pluggable Backend.
//
// # What works today
//
//   - Accounts per project (AUTH_<project id>), created on first use, with
//     metadata (X-Account-Meta-*) and usage (container, object and byte
//     counts).
//   - Containers with metadata, read and write ACLs (.r:* public read,
//     .rlistings, project:user with ids, names or *), quotas
//     (X-Container-Meta-Quota-Bytes and -Count), object versioning
//     (X-Versions-Location stack mode, X-History-Location history mode
//     with delete markers).
//   - Objects: PUT with ETag (MD5) check and chunked transfer, GET and HEAD
//     with a single Range, If-Match, If-None-Match, If-Modified-Since,
//     If-Unmodified-Since; POST metadata; DELETE; COPY and X-Copy-From;
//     X-Delete-At and X-Delete-After, enforced on read and reaped in the
//     background; Content-Type (guessed from the name when absent),
//     Content-Disposition, Content-Encoding.
//   - Listings as plain text, JSON and XML with prefix, delimiter, marker,
//     end_marker, limit (at most 10,000; more is 412) and reverse.
//   - Large objects: DLO (X-Object-Manifest) and SLO (multipart-manifest=put
//     with segment ETag and size validation, segments streamed on GET and
//     checked against the manifest, multipart-manifest=get and =delete).
//   - Bulk delete, temp URLs (HMAC-SHA1, -SHA256, -SHA512 in hex or
//     "<digest>:<base64>", account and container keys, Unix or ISO 8601
//     expiry, prefix URLs) and GET /info.
//
// # Authorization
//
// The Service authorizes every call itself, on the identity.Credentials in
// the context or a temp URL grant from VerifyTempURL: members and admins
// of the account's project (and cloud admins) own it; readers read it;
// others get what the container's ACLs give them. A caller without
// credentials gets 401 and one with other credentials 403, decided before
// any lookup, so neither learns whether a container exists. A temp URL
// reaches one object (or a prefix) with one method: a PUT URL neither
// reads anything nor creates manifests or copies that would read other
// objects (OSSA-2015-016), and signatures are compared in constant time
// (OSSA-2014-002).
//
// # Where things live
//
// Account and container records (metadata, ACLs, quotas, versioning, temp
// URL keys) are control-plane state: a few records per project, read by
// every authorization decision, so they live in the store (Tables), where
// every controller sees them. Objects, their metadata and each
// container's listing and usage live in the Backend, which keeps them in
// its own index: the store never holds per-object records. memobj is an
// in-memory Backend for tests; fsobj keeps objects on a local directory
// with per-chunk checksums; s3obj keeps them in one bucket of an S3
// server (MinIO, Ceph RGW, AWS); all pass objectstore/drivertest.
package objectstore
