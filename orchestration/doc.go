// Package orchestration is Stratus's Heat: stacks of cloud resources made
// from HOT templates, created and deleted by an engine whose progress is in
// the store, with the Heat v1 REST API that python3-heatclient speaks.
//
// # Templates
//
// ParseTemplate reads a HOT template (YAML or JSON, every
// heat_template_version from 2013-05-23 to 2021-04-16 and the release
// names) within Limits on size, nesting and resources. Parameters have
// types and constraints (range, length, allowed_values, allowed_pattern,
// and custom constraints such as nova.flavor that a Checker resolves
// against the cloud). The intrinsic functions get_param, get_resource,
// get_attr (with paths), get_file, str_replace, str_split, list_join,
// map_merge, repeat and digest are evaluated as their template version
// allows. Validation errors are *errdefs.ValidationError values naming the
// culprit: a cycle with its path, an unknown type, function or parameter.
//
// # Engine
//
// A stack's resources form a graph from depends_on, get_resource and
// get_attr (and, as in Heat, from a network to its subnets). CreateStack
// writes the stack and every resource in one transaction; the engine then
// creates resources whose dependencies are complete, at most
// Config.Concurrency at once, recording each state change and event
// (CREATE_IN_PROGRESS, CREATE_COMPLETE, CREATE_FAILED, ROLLBACK_*,
// DELETE_*) in the store. A failure rolls back unless disable_rollback;
// delete goes in reverse order and keeps Retain resources. Each resource's
// deterministic physical name is stored before its create is issued and
// its physical id as soon as the plugin returns it, so Start resumes an
// interrupted stack and Finder plugins adopt what a crash left behind. The
// engine runs on the controller that leads it (store.Campaign) and follows
// the store, so stacks created or deleted through any controller are driven
// by one engine, and a new leader resumes what the old one left.
//
// # Resource plugins
//
// A Plugin is a small interface (Schema, Create, Delete, Attribute, and
// optional Waiter, Finder, Referencer). The built-in types drive the other
// services through the consumer interfaces of Deps (Compute, Network,
// Volumes, VolumeAttacher, Containers), which the host implements over
// those services' Go APIs acting as the stack's owner.
package orchestration
