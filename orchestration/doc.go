// Package orchestration is Stratus's Heat: stacks of cloud resources made
// from HOT or CloudFormation templates, created, updated and deleted by an
// engine whose progress is in the store, with the Heat v1 REST API that
// python3-heatclient speaks.
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
// map_merge, repeat, digest and if are evaluated as their template version
// allows; the conditions section (equals, not, and, or, contains on
// parameters) leaves resources and outputs out. A CloudFormation template
// (AWSTemplateFormatVersion, YAML or JSON) is translated into HOT:
// Parameters, Mappings, Conditions, Resources, Outputs, Ref and the Fn::
// functions. Validation errors are *errdefs.ValidationError values naming the
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
// # Updates
//
// UpdateStack (PUT, or PATCH with Existing) moves a stack to a new
// template, parameters, files or environment. Each resource is compared by
// its resolved properties: unchanged, updated in place when its plugin is
// an Updater and every changed property has UpdateAllowed (a server's
// flavor change is a resize when Compute is a ServerResizer), or replaced
// (the new one made before the old is deleted, unless the plugin is a
// DeleteBeforeReplace that says otherwise). Resources the template no
// longer has are deleted last, in reverse order. A failed update rolls
// back to the stack as it was, getting replaced resources back.
// PreviewUpdate says what an update would do. An interrupted update is
// resumed like a create: each resource records the stack generation it
// was settled in.
//
// # Nested stacks and scaling
//
// OS::Heat::Stack, template resources (types the environment's
// resource_registry maps to templates of the files map), ResourceGroup and
// AutoScalingGroup are nested stacks: stacks of their own whose parent is
// the resource's stack, within Limits on depth, group size and stacks per
// project. A ScalingPolicy's alarm_url and a WaitConditionHandle's
// endpoint are pre-signed URLs (POST /signal/...) that need no token;
// with Deps.Trusts the signal acts through a trust from the stack's owner,
// which keeps working after the owner's token expired.
//
// # Resource plugins
//
// A Plugin is a small interface (Schema, Create, Delete, Attribute, and
// optional Waiter, Finder, Referencer, Updater, Signaler,
// DeleteBeforeReplace). The built-in types drive the other services
// through the consumer interfaces of Deps (Compute, Network, Volumes,
// VolumeAttacher, Containers, Images, Trusts), which the host implements
// over those services' Go APIs acting as the stack's owner.
package orchestration
