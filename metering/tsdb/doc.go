// Package tsdb is metering's time-series store: one series per metric, in
// a directory of its own.
//
// Writes go to a write-ahead log, framed and checksummed, and are fsynced
// once for every group of concurrent writers before any of them returns, so
// that an acknowledged measure survives a crash; a torn record at the log's
// end (a write that was never acknowledged) is dropped at open. Each
// series' archives (granularity × timespan) are rolled up as measures
// arrive, keeping count, sum, min, max and last per bucket, so that a
// 30-day query reads hourly buckets rather than samples, and buckets older
// than the timespan behind the newest measure are dropped. A checkpoint
// writes every archive column by column (bucket times and integral or
// decimal values as delta-of-delta varints, other floats XORed with their
// predecessor) and replaces the log.
package tsdb
