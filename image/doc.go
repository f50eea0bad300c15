// Package image is the Stratus image service, compatible with OpenStack
// Glance's v2 API (up to v2.16): images with Glance's attributes, statuses
// and visibility rules, streaming upload and download with MD5 checksums
// and SHA-512 os_hash_value, inspection of uploaded bytes (the format must
// match disk_format; qcow2 backing and data files and VMDK extents are
// refused), members, tags, staging and the glance-direct and web-download
// imports, deactivation, per-project quotas, and the REST API with the
// JSON schemas glanceclient fetches.
//
// Image bytes go to a BlobStore the host provides (image/fileblob on a
// local directory, image/memblob in memory, or an adapter to the object
// store). Records live in the store (Tables).
//
// Other services use two methods: GetImage returns an image the caller
// may see (with its disk_format, size, checksum and kernel_id/ramdisk_id
// properties for direct kernel boot) and OpenData streams its bytes.
//
// Example to create an image and upload its bytes, as a member of a
// project:
//
//	ctx := identity.WithCredentials(ctx, creds)
//	img, err := svc.CreateImage(ctx, image.CreateImageOpts{Name: "cirros", DiskFormat: "qcow2", ContainerFormat: "bare"})
//	img, err = svc.UploadData(ctx, img.ID, file, image.UploadOpts{Size: -1})
//
// Not yet: image tasks (/v2/tasks), metadata definitions (/v2/metadefs),
// multiple stores, image conversion and the copy-image import.
package image
