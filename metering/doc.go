// Package metering is Stratus's telemetry service, after OpenStack's
// Ceilometer and Gnocchi: it measures what the other services do and keeps
// the measures in archive policies, for dashboards, alarms and billing.
//
// What works today:
//
//   - Meters with OpenStack's names and units (cpu, vcpus, memory,
//     memory.usage, disk.device.*, network.*, instance, volume.size,
//     image.size, storage.objects, storage.objects.size, ip.floating),
//     gauge or cumulative; rate:<method> aggregations turn cumulative
//     counters into increases per bucket, counter resets included.
//   - Pollsters: [Service.Poll], run by Start every Config.PollInterval,
//     samples the [Sources] the host wires in (small interfaces over
//     compute and its hypervisors, block storage, images, the object store
//     and the network).
//   - Events: the other services' events, read from the store's outbox on a
//     durable cursor, stored with their traits ([Service.ListEvents]); they
//     also start and end resources, to the second.
//   - Measures live in package tsdb, files of their own: a write-ahead log
//     fsynced once per group of writers, rollups as samples arrive,
//     retention, compact checkpoints.
//   - The Gnocchi v1 API ([NewHandler], port 8777, catalog type "metric"):
//     resources and resource types, metrics, measures with
//     granularity/start/stop/aggregation, batch measures, archive policies,
//     aggregates with (metric …) and (aggregate …) and group-by. Debian's
//     python3-gnocchiclient (`openstack metric …`) works against it.
//   - Prometheus: [NewPrometheusHandler] serves the newest value of every
//     metric.
//
// Tenants see their own project's resources, metrics, measures and events;
// cloud admins see all. Only cloud admins write measures, resources and
// archive policies, so that tenants cannot forge their usage.
package metering
