package compute

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// VMState is Nova's vm_state: what the server is, when no task runs.
type VMState string

// VM states.
const (
	VMBuilding  VMState = "building"
	VMActive    VMState = "active"
	VMStopped   VMState = "stopped"
	VMPaused    VMState = "paused"
	VMSuspended VMState = "suspended"
	VMError     VMState = "error"
	VMDeleted   VMState = "deleted"
)

// TaskState is Nova's task_state: the operation under way, or "" (null).
type TaskState string

// Task states.
const (
	TaskNone          TaskState = ""
	TaskScheduling    TaskState = "scheduling"
	TaskNetworking    TaskState = "networking"
	TaskBlockDevices  TaskState = "block_device_mapping"
	TaskSpawning      TaskState = "spawning"
	TaskRebooting     TaskState = "rebooting"
	TaskRebootingHard TaskState = "rebooting_hard"
	TaskPoweringOff   TaskState = "powering-off"
	TaskPoweringOn    TaskState = "powering-on"
	TaskPausing       TaskState = "pausing"
	TaskUnpausing     TaskState = "unpausing"
	TaskSuspending    TaskState = "suspending"
	TaskResuming      TaskState = "resuming"
	TaskDeleting      TaskState = "deleting"
)

// Fault is why a server is in ERROR.
type Fault struct {
	Code    int       `json:"code"`
	Message string    `json:"message"`
	Details string    `json:"details,omitempty"`
	Created time.Time `json:"created"`
}

// NetworkRequest is one entry of a create's "networks".
type NetworkRequest struct {
	UUID    string `json:"uuid,omitempty"`
	Port    string `json:"port,omitempty"`
	FixedIP string `json:"fixed_ip,omitempty"`
}

// BlockDevice is one block_device_mapping_v2 entry, with the attachment
// compute made for it.
type BlockDevice struct {
	BootIndex           int    `json:"boot_index"` // -1: not bootable
	UUID                string `json:"uuid,omitempty"`
	SourceType          string `json:"source_type"`      // image, volume, blank, snapshot
	DestinationType     string `json:"destination_type"` // local or volume
	VolumeSizeGB        int    `json:"volume_size,omitempty"`
	DeleteOnTermination bool   `json:"delete_on_termination"`
	DeviceName          string `json:"device_name,omitempty"`
	AttachmentID        string `json:"attachment_id,omitempty"`
	Connection          *ConnectionInfo
	// Tag is the device role tag of an attach (2.49).
	Tag string `json:"tag,omitempty"`
	// BDMID is the mapping's uuid (bdm_uuid); set for hot-plugged volumes
	// and on the first detach of the others.
	BDMID string `json:"bdm_id,omitempty"`
	// Pending is a volume operation under way: "attach" or "detach"
	// (see volumeattach.go); ActionID is the instance action it belongs to.
	Pending  string `json:"pending,omitempty"`
	ActionID string `json:"action_id,omitempty"`
}

// SchedulerHints are a create's os:scheduler_hints.
type SchedulerHints struct {
	Group         string   `json:"group,omitempty"`
	SameHost      []string `json:"same_host,omitempty"`
	DifferentHost []string `json:"different_host,omitempty"`
}

// Server is a virtual machine.
type Server struct {
	store.Meta
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	ProjectID      string            `json:"tenant_id"`
	UserID         string            `json:"user_id"`
	ImageID        string            `json:"image_id,omitempty"`
	BootFromVolume bool              `json:"boot_from_volume,omitempty"`
	Flavor         Flavor            `json:"flavor"`
	KeyName        string            `json:"key_name,omitempty"`
	KeyData        string            `json:"key_data,omitempty"`
	UserData       string            `json:"user_data,omitempty"` // base64, as given
	Metadata       map[string]string `json:"metadata"`
	Tags           []string          `json:"tags"`
	RequestedAZ    string            `json:"requested_az,omitempty"`
	AZ             string            `json:"availability_zone"`
	SecurityGroups []string          `json:"security_groups"`
	Networks       []NetworkRequest  `json:"networks,omitempty"`
	Ports          []Port            `json:"ports,omitempty"`
	BlockDevices   []BlockDevice     `json:"block_devices,omitempty"`
	Hints          SchedulerHints    `json:"hints"`
	HostID         string            `json:"host,omitempty"`
	VMState        VMState           `json:"vm_state"`
	TaskState      TaskState         `json:"task_state,omitempty"`
	PowerState     PowerState        `json:"power_state"`
	Fault          *Fault            `json:"fault,omitempty"`
	Locked         bool              `json:"locked"`
	LockedReason   string            `json:"locked_reason,omitempty"`
	LockedByAdmin  bool              `json:"locked_by_admin,omitempty"`
	Description    string            `json:"description,omitempty"`
	Hostname       string            `json:"hostname"`
	AccessIPv4     string            `json:"access_ip_v4,omitempty"`
	AccessIPv6     string            `json:"access_ip_v6,omitempty"`
	ConfigDrive    bool              `json:"config_drive,omitempty"`
	ReservationID  string            `json:"reservation_id"`
	LaunchIndex    int               `json:"launch_index"`
	Attempts       int               `json:"attempts,omitempty"`
	TriedHosts     []string          `json:"tried_hosts,omitempty"`
	ActionID       string            `json:"action_id,omitempty"`
	Created        time.Time         `json:"created"`
	Updated        time.Time         `json:"updated"`
	LaunchedAt     *time.Time        `json:"launched_at,omitempty"`
	TerminatedAt   *time.Time        `json:"terminated_at,omitempty"`
	// AdminPass is set only in the answer to a create; never stored.
	AdminPass string `json:"-"`
	// Move is the state of a resize, migration, rebuild, shelve, rescue or
	// snapshot under way (compute II, move.go).
	Move MoveState `json:"move,omitzero"`
}

// StoreKey implements store.Record.
func (s *Server) StoreKey() string { return s.ID }

// Status returns Nova's status for the server's vm_state and task_state.
func (s *Server) Status() string {
	if st := s.moveStatus(); st != "" {
		return st
	}
	switch s.VMState {
	case VMBuilding:
		return "BUILD"
	case VMActive:
		switch s.TaskState {
		case TaskRebooting:
			return "REBOOT"
		case TaskRebootingHard:
			return "HARD_REBOOT"
		}
		return "ACTIVE"
	case VMStopped:
		return "SHUTOFF"
	case VMPaused:
		return "PAUSED"
	case VMSuspended:
		return "SUSPENDED"
	case VMError:
		return "ERROR"
	case VMDeleted:
		return "DELETED"
	}
	return "UNKNOWN"
}

// statusStates maps a status filter to vm_states.
var statusStates = map[string][]VMState{
	"BUILD": {VMBuilding}, "ACTIVE": {VMActive}, "REBOOT": {VMActive}, "HARD_REBOOT": {VMActive},
	"SHUTOFF": {VMStopped}, "PAUSED": {VMPaused}, "SUSPENDED": {VMSuspended}, "ERROR": {VMError}, "DELETED": {VMDeleted},
	"RESIZE": {VMActive, VMStopped}, "VERIFY_RESIZE": {VMResized}, "REVERT_RESIZE": {VMResized}, "MIGRATING": {VMActive},
	"REBUILD": {VMActive, VMStopped, VMError}, "SHELVED": {VMShelved}, "SHELVED_OFFLOADED": {VMShelvedOffloaded}, "RESCUE": {VMRescued},
}

// CreateServerOpts creates one server, or several with MinCount/MaxCount.
type CreateServerOpts struct {
	Name      string
	ImageRef  string
	FlavorRef string
	// Networks are the NICs asked for; NetworksMode "none" asks for none
	// and "auto" (or no Networks) for none here, as there is no
	// auto-allocated topology.
	Networks       []NetworkRequest
	NetworksMode   string
	BlockDevices   []BlockDevice
	KeyName        string
	UserData       string // base64
	Metadata       map[string]string
	AZ             string
	SecurityGroups []string
	Hints          SchedulerHints
	MinCount       int
	MaxCount       int
	Description    string
	Tags           []string
	Hostname       string
	AccessIPv4     string
	AccessIPv6     string
	ConfigDrive    bool
	AdminPass      string
}

// MaxUserData is the longest base64 user_data accepted (Nova's 65535).
const MaxUserData = 65535

// CheckUserData validates base64 user_data and returns its bytes.
func CheckUserData(s string) ([]byte, error) {
	if len(s) > MaxUserData {
		return nil, errdefs.Invalid("user_data", "must be at most %d bytes of base64", MaxUserData)
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, errdefs.Invalid("user_data", "must be base64 encoded")
	}
	return b, nil
}

// CheckMetadata validates server metadata against Nova's limits.
func CheckMetadata(field string, m map[string]string, maxItems int) error {
	if maxItems >= 0 && len(m) > maxItems {
		return fmt.Errorf("compute: quota exceeded for metadata_items: at most %d: %w", maxItems, errdefs.ErrQuotaExceeded)
	}
	for k, v := range m {
		if k == "" || len(k) > 255 || strings.ContainsAny(k, "/") || strings.ContainsFunc(k, isCtl) {
			return errdefs.Invalid(field, "keys must be 1-255 printable characters without '/'")
		}
		if len(v) > 255 {
			return errdefs.Invalid(field, "values must be at most 255 characters")
		}
	}
	return nil
}

func isCtl(r rune) bool { return r < 0x20 || r == 0x7f }

// CheckTag validates a server tag.
func CheckTag(t string) error {
	if t == "" || len(t) > 60 || strings.ContainsAny(t, "/,") || strings.ContainsFunc(t, isCtl) {
		return errdefs.Invalid("tags", "each tag must be 1-60 printable characters without '/' or ','")
	}
	return nil
}

// CheckHints validates scheduler hints: a group uuid and server uuids.
func CheckHints(h SchedulerHints) error {
	if h.Group != "" && !isUUID(h.Group) {
		return errdefs.Invalid("os:scheduler_hints.group", "must be a server group uuid")
	}
	if len(h.SameHost)+len(h.DifferentHost) > 100 {
		return errdefs.Invalid("os:scheduler_hints", "at most 100 servers in same_host and different_host")
	}
	for _, id := range h.SameHost {
		if !isUUID(id) {
			return errdefs.Invalid("os:scheduler_hints.same_host", "must be server uuids")
		}
	}
	for _, id := range h.DifferentHost {
		if !isUUID(id) {
			return errdefs.Invalid("os:scheduler_hints.different_host", "must be server uuids")
		}
	}
	return nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if (r < '0' || r > '9') && (r < 'a' || r > 'f') && (r < 'A' || r > 'F') {
				return false
			}
		}
	}
	return true
}

func hostnameFrom(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-':
			b.WriteRune(r)
		case r == ' ' || r == '_' || r == '.':
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = strings.Trim(h[:63], "-")
	}
	if h == "" {
		h = "server"
	}
	return h
}

// CreateServer validates the request, reserves quota and writes the
// server(s) in BUILD in one store transaction; the conductor then
// schedules and spawns them. It returns the first server.
func (s *Service) CreateServer(ctx context.Context, o CreateServerOpts) (*Server, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.enforce(ctx, "compute:server:create", c.ProjectID); err != nil {
		return nil, err
	}
	if err := checkName("name", o.Name); err != nil {
		return nil, err
	}
	if o.MinCount == 0 {
		o.MinCount = 1
	}
	if o.MaxCount == 0 {
		o.MaxCount = o.MinCount
	}
	if o.MinCount < 1 || o.MaxCount < o.MinCount || o.MaxCount > 1000 {
		return nil, errdefs.Invalid("min_count", "min_count must be at least 1 and at most max_count (at most 1000)")
	}
	tx := s.st.Snapshot()
	quota := s.quotaFor(tx, c.ProjectID)
	if o.FlavorRef == "" {
		return nil, errdefs.Invalid("flavorRef", "is required")
	}
	fl, err := store.Get[Flavor](nil, tx, flavorTable, o.FlavorRef)
	if err != nil || !s.flavorVisible(ctx, tx, fl) {
		return nil, errdefs.Invalid("flavorRef", "flavor %s could not be found", o.FlavorRef)
	}
	if fl.Disabled {
		return nil, errdefs.Invalid("flavorRef", "flavor %s is disabled", o.FlavorRef)
	}
	srv := &Server{Name: strings.TrimSpace(o.Name), ProjectID: c.ProjectID, UserID: c.UserID, Flavor: *fl,
		Metadata: map[string]string{}, Tags: []string{}, SecurityGroups: []string{"default"},
		Description: o.Description, AccessIPv4: o.AccessIPv4, AccessIPv6: o.AccessIPv6, ConfigDrive: o.ConfigDrive,
		VMState: VMBuilding, TaskState: TaskScheduling, RequestedAZ: o.AZ, ReservationID: "r-" + newUUID()[:8]}
	srv.Flavor.Meta = store.Meta{}
	if err := s.checkBoot(ctx, c, &o, srv); err != nil {
		return nil, err
	}
	if o.UserData != "" {
		if _, err := CheckUserData(o.UserData); err != nil {
			return nil, err
		}
		srv.UserData = strings.Join(strings.Fields(o.UserData), "")
	}
	if err := CheckMetadata("metadata", o.Metadata, quota.MetadataItems); err != nil {
		return nil, err
	}
	maps.Copy(srv.Metadata, o.Metadata)
	if len(o.Tags) > 50 {
		return nil, errdefs.Invalid("tags", "at most 50 tags")
	}
	for _, t := range o.Tags {
		if err := CheckTag(t); err != nil {
			return nil, err
		}
	}
	srv.Tags = slices.Compact(slices.Sorted(slices.Values(o.Tags)))
	if srv.Tags == nil {
		srv.Tags = []string{}
	}
	if o.KeyName != "" {
		k, err := store.Get[Keypair](nil, tx, keypairTable, c.UserID+"/"+o.KeyName)
		if err != nil {
			return nil, errdefs.Invalid("key_name", "invalid key_name provided")
		}
		srv.KeyName, srv.KeyData = k.Name, k.PublicKey
	}
	if o.AZ != "" {
		if err := s.checkAZ(tx, o.AZ); err != nil {
			return nil, err
		}
	}
	if len(o.SecurityGroups) > 0 {
		for _, g := range o.SecurityGroups {
			if err := checkName("security_groups", g); err != nil {
				return nil, err
			}
		}
		srv.SecurityGroups = slices.Compact(slices.Sorted(slices.Values(o.SecurityGroups)))
	}
	if err := CheckHints(o.Hints); err != nil {
		return nil, err
	}
	for _, id := range slices.Concat(o.Hints.SameHost, o.Hints.DifferentHost) {
		if hs, err := store.Get[Server](nil, tx, serverTable, id); err != nil || !visible(c, hs.ProjectID) {
			return nil, errdefs.Invalid("os:scheduler_hints", "server %s could not be found", id)
		}
	}
	srv.Hints = o.Hints
	if o.Hostname != "" {
		if hostnameFrom(o.Hostname) != o.Hostname {
			return nil, errdefs.Invalid("hostname", "must be a valid RFC 1123 host name")
		}
	}
	for _, ip := range []struct{ f, v string }{{"accessIPv4", o.AccessIPv4}, {"accessIPv6", o.AccessIPv6}} {
		if ip.v != "" {
			if _, err := netip.ParseAddr(ip.v); err != nil {
				return nil, errdefs.Invalid(ip.f, "must be an IP address")
			}
		}
	}
	disk := 0
	if !srv.BootFromVolume {
		disk = fl.DiskGB
	}
	_ = disk
	now := s.st.Now().UTC()
	var first *Server
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		n := o.MaxCount
		q := s.quotaFor(tx, c.ProjectID)
		u := usageOf(tx, c.ProjectID)
		for n > o.MinCount && !fitsQuota(q, u, fl, n) {
			n--
		}
		if err := s.chargeTxn(tx, c.ProjectID, QuotaUsage{Instances: n, Cores: n * fl.VCPUs, RAMMB: n * fl.RAMMB}); err != nil {
			return err
		}
		var ids []string
		for i := range n {
			v := *srv
			v.ID = newUUID()
			v.LaunchIndex = i
			v.Created, v.Updated = now, now
			if n > 1 {
				v.Name = fmt.Sprintf("%s-%d", srv.Name, i+1)
			}
			v.Hostname = o.Hostname
			if v.Hostname == "" || n > 1 {
				v.Hostname = hostnameFrom(v.Name)
			}
			v.Networks = slices.Clone(srv.Networks)
			v.BlockDevices = slices.Clone(srv.BlockDevices)
			if err := startActionTxn(tx, &v, "create", c.UserID); err != nil {
				return err
			}
			if err := tx.Insert(serverTable, &v); err != nil {
				return err
			}
			if err := tx.Emit("compute.server.create", v.ID, v.ProjectID, map[string]any{"name": v.Name, "flavor": fl.ID}); err != nil {
				return err
			}
			ids = append(ids, v.ID)
			if first == nil {
				fc := v
				first = &fc
			}
		}
		if o.Hints.Group != "" {
			return s.addMemberTxn(tx, o.Hints.Group, c.ProjectID, ids)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	first.AdminPass = o.AdminPass
	if first.AdminPass == "" {
		first.AdminPass = newUUID()[:12]
	}
	return first, nil
}

func fitsQuota(q QuotaSet, u *QuotaUsage, fl *Flavor, n int) bool {
	ok := func(limit, used, want int) bool { return limit < 0 || used+want <= limit }
	return ok(q.Instances, u.Instances, n) && ok(q.Cores, u.Cores, n*fl.VCPUs) && ok(q.RAMMB, u.RAMMB, n*fl.RAMMB)
}

// checkBoot validates the image, block devices and networks of a create.
func (s *Service) checkBoot(ctx context.Context, c *identity.Credentials, o *CreateServerOpts, srv *Server) error {
	if len(o.BlockDevices) > 32 {
		return errdefs.Invalid("block_device_mapping_v2", "at most 32 block devices")
	}
	bootVolume := false
	for i, bd := range o.BlockDevices {
		f := fmt.Sprintf("block_device_mapping_v2[%d]", i)
		switch bd.SourceType {
		case "volume", "image", "blank", "snapshot":
		default:
			return errdefs.Invalid(f+".source_type", "must be volume, image, snapshot or blank")
		}
		if bd.DestinationType == "" {
			bd.DestinationType = "volume"
			if bd.SourceType == "blank" {
				bd.DestinationType = "local"
			}
		}
		if bd.DestinationType != "local" && bd.DestinationType != "volume" {
			return errdefs.Invalid(f+".destination_type", "must be local or volume")
		}
		if bd.SourceType == "image" && bd.DestinationType == "local" {
			if bd.BootIndex == 0 && o.ImageRef == "" {
				o.ImageRef = bd.UUID
			}
			continue
		}
		if bd.SourceType != "volume" || bd.DestinationType != "volume" {
			return fmt.Errorf("compute: block device %s %s->%s needs volume creation by compute, which is not supported yet: %w",
				f, bd.SourceType, bd.DestinationType, errdefs.ErrUnsupported)
		}
		if !isUUID(bd.UUID) {
			return errdefs.Invalid(f+".uuid", "must be a volume uuid")
		}
		if s.deps.Volumes == nil {
			return fmt.Errorf("compute: block devices of volumes need a block storage service: %w", errdefs.ErrUnsupported)
		}
		if _, err := s.deps.Volumes.GetVolume(ctx, c.ProjectID, bd.UUID); err != nil {
			return errdefs.Invalid(f+".uuid", "volume %s could not be found", bd.UUID)
		}
		if bd.BootIndex == 0 {
			bootVolume = true
		}
		if bd.DeviceName != "" && (len(bd.DeviceName) > 32 || strings.ContainsFunc(bd.DeviceName, isCtl)) {
			return errdefs.Invalid(f+".device_name", "is invalid")
		}
		srv.BlockDevices = append(srv.BlockDevices, bd)
	}
	srv.BootFromVolume = bootVolume
	if !bootVolume {
		if o.ImageRef == "" {
			return errdefs.Invalid("imageRef", "is required unless booting from a volume")
		}
		if s.deps.Images == nil {
			return fmt.Errorf("compute: booting from an image needs an image service: %w", errdefs.ErrUnsupported)
		}
		img, err := s.deps.Images.GetImage(ctx, c.ProjectID, o.ImageRef)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return errdefs.Invalid("imageRef", "image %s could not be found", o.ImageRef)
			}
			return err
		}
		if img.MinRAMMB > srv.Flavor.RAMMB {
			return errdefs.Invalid("flavorRef", "flavor's memory is too small for requested image")
		}
		if img.MinDiskGB > srv.Flavor.DiskGB && srv.Flavor.DiskGB > 0 {
			return errdefs.Invalid("flavorRef", "flavor's disk is too small for requested image")
		}
		srv.ImageID = img.ID
	}
	switch o.NetworksMode {
	case "", "auto", "none":
	default:
		return errdefs.Invalid("networks", "must be a list, auto or none")
	}
	if len(o.Networks) > 16 {
		return errdefs.Invalid("networks", "at most 16 networks")
	}
	for i, n := range o.Networks {
		f := fmt.Sprintf("networks[%d]", i)
		if n.UUID == "" && n.Port == "" {
			return errdefs.Invalid(f, "needs uuid or port")
		}
		if (n.UUID != "" && !isUUID(n.UUID)) || (n.Port != "" && !isUUID(n.Port)) {
			return errdefs.Invalid(f, "uuid and port must be uuids")
		}
		if n.FixedIP != "" {
			if _, err := netip.ParseAddr(n.FixedIP); err != nil {
				return errdefs.Invalid(f+".fixed_ip", "must be an IP address")
			}
		}
	}
	if len(o.Networks) > 0 && s.deps.Ports == nil {
		return fmt.Errorf("compute: networks need a network service: %w", errdefs.ErrUnsupported)
	}
	srv.Networks = o.Networks
	return nil
}

func (s *Service) checkAZ(tx *store.Txn, az string) error {
	it, err := store.List[Host](nil, tx, hostTable, store.IDIndex)
	if err != nil {
		return err
	}
	for h := range it {
		if h.AZ == az {
			return nil
		}
	}
	return errdefs.Invalid("availability_zone", "the requested availability zone %s is not available", az)
}

// GetServer returns a server the caller may see; another project's is
// ErrNotFound.
func (s *Service) GetServer(ctx context.Context, id string) (*Server, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	srv, err := store.Get[Server](nil, s.st.Snapshot(), serverTable, id)
	if err != nil || !visible(c, srv.ProjectID) {
		return nil, notFound("instance", id)
	}
	if _, err := s.enforce(ctx, "compute:server:get", srv.ProjectID); err != nil {
		return nil, err
	}
	return srv, nil
}

// ListServersOpts filters ListServers.
type ListServersOpts struct {
	// Name is a regular expression (RE2) on the name.
	Name   string
	Status string
	// ChangesSince lists servers changed at or after it, deleted ones
	// included.
	ChangesSince *time.Time
	// Host, AllProjects and ProjectID are for system readers.
	Host        string
	AllProjects bool
	ProjectID   string
	Flavor      string
	Image       string
	IP          string
	Tags        []string
	Locked      *bool
}

// CompileNameFilter compiles a name filter as Nova does (a regular
// expression searched in the name), bounded in length.
func CompileNameFilter(expr string) (*regexp.Regexp, error) {
	if len(expr) > 255 {
		return nil, errdefs.Invalid("name", "filter must be at most 255 characters")
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, errdefs.Invalid("name", "is not a valid regular expression")
	}
	return re, nil
}

// ListServers returns the servers the caller may see that match o, newest
// first.
func (s *Service) ListServers(ctx context.Context, o ListServersOpts) ([]*Server, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	project := c.ProjectID
	all := false
	if o.AllProjects || (o.ProjectID != "" && o.ProjectID != c.ProjectID) {
		if _, err := s.enforce(ctx, "compute:server:all_tenants", ""); err != nil {
			return nil, err
		}
		all, project = o.ProjectID == "", o.ProjectID
	} else if _, err := s.enforce(ctx, "compute:server:list", c.ProjectID); err != nil {
		return nil, err
	}
	if o.Host != "" && !s.allowed(c, "compute:server:show_host", "") {
		return nil, fmt.Errorf("compute: the host filter is for admins: %w", errdefs.ErrForbidden)
	}
	var re *regexp.Regexp
	if o.Name != "" {
		if re, err = CompileNameFilter(o.Name); err != nil {
			return nil, err
		}
	}
	var states []VMState
	if o.Status != "" {
		var ok bool
		if states, ok = statusStates[strings.ToUpper(o.Status)]; !ok {
			return nil, errdefs.Invalid("status", "invalid status %q", o.Status)
		}
	}
	tx := s.st.Snapshot()
	var src []*Server
	if all {
		it, err := store.List[Server](nil, tx, serverTable, store.IDIndex)
		if err != nil {
			return nil, err
		}
		src = slices.Collect(it)
	} else {
		it, err := store.List[Server](nil, tx, serverTable, "project", project)
		if err != nil {
			return nil, err
		}
		src = slices.Collect(it)
	}
	if o.ChangesSince != nil || slices.Contains(states, VMDeleted) {
		tss, err := store.Tombstones(nil, tx, serverTable)
		if err != nil {
			return nil, err
		}
		for ts := range tss {
			var d Server
			if ts.Decode(&d) != nil || (!all && d.ProjectID != project) {
				continue
			}
			src = append(src, &d)
		}
	}
	var out []*Server
	for _, v := range src {
		if v.VMState == VMDeleted && o.ChangesSince == nil && !slices.Contains(states, VMDeleted) {
			continue
		}
		if o.ChangesSince != nil && v.Updated.Before(*o.ChangesSince) {
			continue
		}
		if re != nil && !re.MatchString(v.Name) {
			continue
		}
		if states != nil && !slices.Contains(states, v.VMState) {
			continue
		}
		if st := strings.ToUpper(o.Status); (st == "REBOOT" || st == "HARD_REBOOT" || taskStatuses[st]) && v.Status() != st {
			continue
		}
		if o.Host != "" && v.HostID != o.Host {
			continue
		}
		if o.Flavor != "" && v.Flavor.ID != o.Flavor {
			continue
		}
		if o.Image != "" && v.ImageID != o.Image {
			continue
		}
		if o.Locked != nil && v.Locked != *o.Locked {
			continue
		}
		if len(o.Tags) > 0 && !containsAll(v.Tags, o.Tags) {
			continue
		}
		if o.IP != "" && !hasIP(v, o.IP) {
			continue
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *Server) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func hasIP(v *Server, ip string) bool {
	for _, p := range v.Ports {
		for _, f := range p.FixedIPs {
			if strings.Contains(f.IPAddress, ip) {
				return true
			}
		}
	}
	return false
}

// mutateServer runs fn on the server read inside a store transaction and
// writes it back. fn may return errNoChange to write nothing.
func (s *Service) mutateServer(ctx context.Context, id string, fn func(tx *store.Txn, srv *Server) error) (*Server, error) {
	var out *Server
	err := s.st.Update(ctx, func(tx *store.Txn) error {
		srv, err := store.Get[Server](nil, tx, serverTable, id)
		if err != nil {
			return notFound("instance", id)
		}
		if err := fn(tx, srv); err != nil {
			return err
		}
		srv.Updated = tx.Now()
		out = srv
		return tx.Update(serverTable, srv)
	})
	return out, err
}

// errNoChange makes mutateServer's function write nothing.
var errNoChange = errors.New("compute: no change")

// UpdateServerOpts changes a server; nil fields are kept.
type UpdateServerOpts struct {
	Name, Description, Hostname, AccessIPv4, AccessIPv6 *string
}

// UpdateServer renames or describes a server.
func (s *Service) UpdateServer(ctx context.Context, id string, o UpdateServerOpts) (*Server, error) {
	c, srv, err := s.actionable(ctx, id, "compute:server:update")
	if err != nil {
		return nil, err
	}
	_ = srv
	if o.Name != nil {
		if err := checkName("name", *o.Name); err != nil {
			return nil, err
		}
	}
	if o.Description != nil && len(*o.Description) > 255 {
		return nil, errdefs.Invalid("description", "must be at most 255 characters")
	}
	if o.Hostname != nil && hostnameFrom(*o.Hostname) != *o.Hostname {
		return nil, errdefs.Invalid("hostname", "must be a valid RFC 1123 host name")
	}
	return s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error {
		if err := checkLocked(c, v); err != nil {
			return err
		}
		if o.Name != nil {
			v.Name = strings.TrimSpace(*o.Name)
		}
		if o.Description != nil {
			v.Description = *o.Description
		}
		if o.Hostname != nil {
			v.Hostname = *o.Hostname
		}
		if o.AccessIPv4 != nil {
			v.AccessIPv4 = *o.AccessIPv4
		}
		if o.AccessIPv6 != nil {
			v.AccessIPv6 = *o.AccessIPv6
		}
		return nil
	})
}

// actionable returns the caller and the server after the visibility and
// policy checks of action.
func (s *Service) actionable(ctx context.Context, id, action string) (*identity.Credentials, *Server, error) {
	srv, err := s.GetServer(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	c, err := s.enforce(ctx, action, srv.ProjectID)
	if err != nil {
		return nil, nil, err
	}
	return c, srv, nil
}

func checkLocked(c *identity.Credentials, v *Server) error {
	if v.Locked && !c.IsCloudAdmin() {
		return fmt.Errorf("compute: instance %s is locked: %w", v.ID, errdefs.ErrConflict)
	}
	return nil
}

// DeleteServer asks for a server's deletion; the conductor destroys its
// domain, frees its ports, volumes, claim and quota, then removes it.
func (s *Service) DeleteServer(ctx context.Context, id string) error {
	return s.deleteServer(ctx, id, "compute:server:delete", "delete")
}

// ForceDeleteServer is DeleteServer for a soft-deleted server; there is no
// soft delete here, so it deletes at once like DeleteServer.
func (s *Service) ForceDeleteServer(ctx context.Context, id string) error {
	return s.deleteServer(ctx, id, "compute:server:force_delete", "forceDelete")
}

func (s *Service) deleteServer(ctx context.Context, id, rule, action string) error {
	c, _, err := s.actionable(ctx, id, rule)
	if err != nil {
		return err
	}
	_, err = s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error {
		if err := checkLocked(c, v); err != nil {
			return err
		}
		if v.TaskState == TaskDeleting {
			return errNoChange
		}
		v.TaskState = TaskDeleting
		return startActionTxn(tx, v, action, c.UserID)
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}

// Action is a server action that the conductor runs on the host.
type Action string

// Server actions.
const (
	ActionReboot     Action = "reboot"
	ActionRebootHard Action = "reboot_hard"
	ActionStop       Action = "stop"
	ActionStart      Action = "start"
	ActionPause      Action = "pause"
	ActionUnpause    Action = "unpause"
	ActionSuspend    Action = "suspend"
	ActionResume     Action = "resume"
)

type actionRule struct {
	from []VMState
	task TaskState
	name string // Nova's action name
	cap  func(Capabilities) bool
}

var actionRules = map[Action]actionRule{
	ActionReboot:     {[]VMState{VMActive}, TaskRebooting, "reboot", nil},
	ActionRebootHard: {[]VMState{VMActive, VMStopped, VMPaused, VMSuspended, VMError}, TaskRebootingHard, "reboot", nil},
	ActionStop:       {[]VMState{VMActive, VMError}, TaskPoweringOff, "stop", nil},
	ActionStart:      {[]VMState{VMStopped}, TaskPoweringOn, "start", nil},
	ActionPause:      {[]VMState{VMActive}, TaskPausing, "pause", func(c Capabilities) bool { return c.Pause }},
	ActionUnpause:    {[]VMState{VMPaused}, TaskUnpausing, "unpause", func(c Capabilities) bool { return c.Pause }},
	ActionSuspend:    {[]VMState{VMActive}, TaskSuspending, "suspend", func(c Capabilities) bool { return c.Suspend }},
	ActionResume:     {[]VMState{VMSuspended}, TaskResuming, "resume", func(c Capabilities) bool { return c.Suspend }},
}

// ServerAction starts action on a server: it checks the server's state as
// Nova does (409 otherwise), sets the task state and records an instance
// action; the conductor performs it.
func (s *Service) ServerAction(ctx context.Context, id string, a Action) error {
	rule, ok := actionRules[a]
	if !ok {
		return errdefs.Invalid("action", "unknown action %q", a)
	}
	c, srv, err := s.actionable(ctx, id, "compute:server:action")
	if err != nil {
		return err
	}
	if rule.cap != nil && srv.HostID != "" {
		if d, err := s.driver(srv.HostID); err == nil && !rule.cap(d.Capabilities()) {
			return fmt.Errorf("compute: %s is not supported by the hypervisor of host %s: %w", a, srv.HostID, errdefs.ErrUnsupported)
		}
	}
	_, err = s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error {
		if err := checkLocked(c, v); err != nil {
			return err
		}
		busy := v.TaskState != TaskNone
		if a == ActionRebootHard && (v.TaskState == TaskRebooting || v.TaskState == TaskRebootingHard) {
			busy = false
		}
		if busy || !slices.Contains(rule.from, v.VMState) {
			return fmt.Errorf("compute: cannot '%s' instance %s while it is in vm_state %s, task_state %s: %w",
				rule.name, v.ID, v.VMState, cmpOrS(string(v.TaskState), "None"), errdefs.ErrConflict)
		}
		v.TaskState = rule.task
		if err := startActionTxn(tx, v, rule.name, c.UserID); err != nil {
			return err
		}
		return tx.Emit("compute.server.action", v.ID, v.ProjectID, map[string]string{"action": rule.name})
	})
	return err
}

// LockServer locks a server against actions by non-admins.
func (s *Service) LockServer(ctx context.Context, id, reason string) error {
	c, _, err := s.actionable(ctx, id, "compute:server:lock")
	if err != nil {
		return err
	}
	if len(reason) > 255 {
		return errdefs.Invalid("locked_reason", "must be at most 255 characters")
	}
	_, err = s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error {
		v.Locked, v.LockedReason, v.LockedByAdmin = true, reason, c.IsCloudAdmin() && c.ProjectID != v.ProjectID
		return startActionTxn(tx, v, "lock", c.UserID)
	})
	return err
}

// UnlockServer unlocks a server; a lock an admin of another project set
// can be undone only by an admin.
func (s *Service) UnlockServer(ctx context.Context, id string) error {
	c, _, err := s.actionable(ctx, id, "compute:server:lock")
	if err != nil {
		return err
	}
	_, err = s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error {
		if v.LockedByAdmin && !s.allowed(c, "compute:server:unlock_override", v.ProjectID) {
			return fmt.Errorf("compute: instance %s was locked by an admin: %w", v.ID, errdefs.ErrForbidden)
		}
		v.Locked, v.LockedReason, v.LockedByAdmin = false, "", false
		return startActionTxn(tx, v, "unlock", c.UserID)
	})
	return err
}

// ConsoleOutput returns the last lines of a server's serial console.
func (s *Service) ConsoleOutput(ctx context.Context, id string, lines int) (string, error) {
	_, srv, err := s.actionable(ctx, id, "compute:server:console")
	if err != nil {
		return "", err
	}
	if srv.HostID == "" || srv.VMState == VMBuilding && srv.TaskState != TaskSpawning {
		return "", fmt.Errorf("compute: instance %s is not ready: %w", id, errdefs.ErrConflict)
	}
	d, err := s.driver(srv.HostID)
	if err != nil {
		return "", err
	}
	if lines > 10000 {
		lines = 10000
	}
	out, err := d.ConsoleOutput(ctx, id, lines)
	if errdefs.IsNotFound(err) {
		return "", fmt.Errorf("compute: instance %s has no console yet: %w", id, errdefs.ErrConflict)
	}
	return out, err
}

// SetServerMetadata replaces (replace) or merges metadata.
func (s *Service) SetServerMetadata(ctx context.Context, id string, md map[string]string, replace bool) (map[string]string, error) {
	c, srv, err := s.actionable(ctx, id, "compute:server:metadata")
	if err != nil {
		return nil, err
	}
	limit := s.quotaFor(s.st.Snapshot(), srv.ProjectID).MetadataItems
	if err := CheckMetadata("metadata", md, -1); err != nil {
		return nil, err
	}
	v, err := s.mutateServer(ctx, id, func(_ *store.Txn, v *Server) error {
		if err := checkLocked(c, v); err != nil {
			return err
		}
		m := map[string]string{}
		if !replace {
			maps.Copy(m, v.Metadata)
		}
		maps.Copy(m, md)
		if err := CheckMetadata("metadata", m, limit); err != nil {
			return err
		}
		v.Metadata = m
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v.Metadata, nil
}

// DeleteServerMetadata removes one metadata key.
func (s *Service) DeleteServerMetadata(ctx context.Context, id, key string) error {
	c, _, err := s.actionable(ctx, id, "compute:server:metadata")
	if err != nil {
		return err
	}
	_, err = s.mutateServer(ctx, id, func(_ *store.Txn, v *Server) error {
		if err := checkLocked(c, v); err != nil {
			return err
		}
		if _, ok := v.Metadata[key]; !ok {
			return notFound("metadata item", key)
		}
		m := maps.Clone(v.Metadata)
		delete(m, key)
		v.Metadata = m
		return nil
	})
	return err
}

// SetServerTags replaces (replace) a server's tags or adds to them.
func (s *Service) SetServerTags(ctx context.Context, id string, tags []string, replace bool) ([]string, error) {
	c, _, err := s.actionable(ctx, id, "compute:server:update")
	if err != nil {
		return nil, err
	}
	for _, t := range tags {
		if err := CheckTag(t); err != nil {
			return nil, err
		}
	}
	v, err := s.mutateServer(ctx, id, func(_ *store.Txn, v *Server) error {
		if err := checkLocked(c, v); err != nil {
			return err
		}
		var all []string
		if !replace {
			all = slices.Clone(v.Tags)
		}
		all = slices.Compact(slices.Sorted(slices.Values(append(all, tags...))))
		if len(all) > 50 {
			return errdefs.Invalid("tags", "at most 50 tags")
		}
		if all == nil {
			all = []string{}
		}
		v.Tags = all
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v.Tags, nil
}

// DeleteServerTag removes one tag (all with tag "").
func (s *Service) DeleteServerTag(ctx context.Context, id, tag string) error {
	c, _, err := s.actionable(ctx, id, "compute:server:update")
	if err != nil {
		return err
	}
	_, err = s.mutateServer(ctx, id, func(_ *store.Txn, v *Server) error {
		if err := checkLocked(c, v); err != nil {
			return err
		}
		if tag == "" {
			v.Tags = []string{}
			return nil
		}
		i := slices.Index(v.Tags, tag)
		if i < 0 {
			return notFound("tag", tag)
		}
		v.Tags = slices.Delete(slices.Clone(v.Tags), i, i+1)
		return nil
	})
	return err
}

// WaitServer blocks until the server satisfies done, ctx ends, or the
// server is gone (then it returns ErrNotFound). It watches the store
// rather than polling.
func (s *Service) WaitServer(ctx context.Context, id string, done func(*Server) bool) (*Server, error) {
	for {
		ws := memdb.NewWatchSet()
		srv, err := store.Get[Server](ws, s.st.Snapshot(), serverTable, id)
		if err != nil {
			return nil, notFound("instance", id)
		}
		if done(srv) {
			return srv, nil
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return srv, err
		}
	}
}
