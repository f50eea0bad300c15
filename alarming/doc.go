// Package alarming is Stratus's alarm service, after OpenStack's Aodh:
// threshold alarms on metering's aggregates that call webhooks and
// orchestration's scaling signals when their state changes.
//
// What works:
//
//   - Alarm types gnocchi_resources_threshold (a metric of one resource)
//     and gnocchi_aggregation_by_resources_threshold (a metric aggregated
//     over the resources a Gnocchi search query matches, such as an
//     autoscaling group's servers), compared with a threshold (lt, le, eq,
//     ne, ge, gt) over the last evaluation_periods buckets of granularity
//     seconds: all breaching is alarm, none is ok, too few buckets is
//     insufficient data, a mix keeps the state (Aodh's rules).
//   - Severity, enabled, repeat_actions, time_constraints (cron start,
//     duration, timezone), alarm/ok/insufficient-data actions, a history
//     of every change (creation, rule change, state transition, deletion;
//     kept after the alarm is deleted), state get and set.
//   - The evaluator ([Service.Evaluate]) runs every
//     Config.EvaluationInterval under the store's "alarming.evaluator"
//     leadership: on an etcd store one controller evaluates the cloud's
//     alarms, and its state writes are fenced by the leadership. State
//     lives in the store, so a restart or a new leader carries on without
//     notifying again.
//   - Actions: an HTTP POST of Aodh's notification body, signed (see
//     [SignatureHeader]: HMAC-SHA256 of "<unix time>.<body>" keyed with
//     the alarm's own secret, derived from Config.WebhookKey and shown as
//     the alarm's webhook_secret to its project only), tried again up to
//     Config.Retries times with doubling backoff on a transport error, 5xx
//     or 429. Only loopback addresses and Config.AllowedHosts may be
//     targets: any other host is refused at create time with a 400 naming
//     the field (alarm_actions, ok_actions, insufficient_data_actions), and
//     checked again before each send. trust+http(s):// actions (Aodh's)
//     are sent with a token obtained through a trust the alarm's creator
//     gave the alarming service's user at create time ([Trusts]), so they
//     work after the creator's token has expired; the trust is revoked
//     with the alarm.
//   - Autoscaling: an alarm_actions entry may be an orchestration scaling
//     policy's alarm_url (pre-signed: a plain POST, the policy acts
//     through the stack's trust) or trust+<signal URL> (sent with a token
//     of the alarm's own trust). Metering gives a server the
//     server_group attribute from its metering.server_group metadata, so
//     a gnocchi_aggregation_by_resources_threshold alarm with the query
//     {"=": {"server_group": …}} watches a group's servers.
//   - The Aodh v2 API ([NewHandler]: /v2/alarms, /v2/alarms/{id},
//     /v2/alarms/{id}/state, /v2/alarms/{id}/history; catalog type
//     "alarming"). Debian's python3-aodhclient (`openstack alarm …`)
//     works against it.
//
// Tenants see and change their own project's alarms; cloud admins see
// all; another project's alarm is not found. Rules read metering with the
// alarm's project's credentials, so an alarm sees only its project's
// resources.
//
// Each project has at most Config.MaxAlarmsPerProject alarms (200).
// Actions in flight are not durable: a controller that dies while retrying
// a webhook loses that notification (the state change itself is stored).
//
// Not done: event and composite alarms, the query API (POST
// /v2/query/alarms), per-alarm webhook secrets chosen by the user.
package alarming
