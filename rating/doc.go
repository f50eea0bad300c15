// Package rating answers what each tenant owes, after OpenStack's
// CloudKitty: a price book with effective dates and a usage report per
// project for any period, computed from metering's events and measures.
//
// The price book ([PriceBook]) has a currency (ISO 4217) and entries that
// each take effect at a time: rates per flavor-hour, vCPU-hour, GiB-hour
// of RAM, GiB-month of volumes, of objects and of images (a month is 30
// days), and floating-IP-hour. Rates are exact decimals of minor units
// ([Rate]); amounts are integer minor units, rounded half up once per
// report line (a resource, an item, a price period), and totals are sums
// of lines, so a report adds up exactly.
//
// A report ([Service.Report], GET /v1/rating/report as JSON or CSV)
// rates each resource's life to the second:
//
//   - servers from compute's events: billed from when they first become
//     active (compute.server.active, Nova's launched_at; from creation
//     when that event is missing; a server that failed to build is free),
//     stopped and started
//     (compute.server.action), resized (compute.server.resize when a
//     resize finishes, .resize.revert when it is reverted: each carries
//     the flavor from then) and deleted. A stopped (or suspended, shelved)
//     server is billed like a running one by default, as Nova's usage
//     report and CloudKitty's flavor-hour do: its flavor stays reserved on
//     its host. Config.NoBillStopped makes stopped time free.
//   - volumes from block storage's events: the size in volume.create.start
//     and volume.resize.start (from the extend's start), until
//     volume.delete.end.
//   - floating IPs from creation to deletion.
//   - objects (an account's bytes) and images from their measures: each
//     measure bucket's last value held from the bucket's start until the
//     next, at the finest granularity still kept (5 minutes for a day,
//     hourly for 30 days with the default archive policy).
//
// Events are read from metering, which keeps them for its
// EventRetention; a server whose creation event is gone is rated from its
// metering resource (started_at, flavor_id).
//
// Tenants read their own project's report; another project's is not
// found. Cloud admins read any project's, or every project's with totals
// per project.
package rating
