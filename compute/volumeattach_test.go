package compute_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/errdefs"
)

// waitVolume waits until the stand-in volume service shows status.
func (e *env) waitVolume(id, status string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.volumes.Status(id) != status {
		if time.Now().After(deadline) {
			e.t.Fatalf("volume %s is %q, want %q", id, e.volumes.Status(id), status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitAttachments waits until the server's attachments, as "volume=state"
// strings, equal want.
func (e *env) waitAttachments(ctx context.Context, serverID string, want ...string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		atts, err := e.svc.ListVolumeAttachments(ctx, serverID)
		var got []string
		for _, a := range atts {
			got = append(got, a.VolumeID+"="+a.State)
		}
		if err == nil && slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("attachments of %s: %v %v, want %v", serverID, got, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func httpCode(err error) int {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		return e.Actual
	}
	return 0
}

// os-volume_attachments through gophercloud: attach, list, show, detach,
// the statuses Nova gives, the microversioned fields, the instance
// actions, and delete_on_termination.
func TestGophercloudVolumeAttach(t *testing.T) {
	c := newCloud(t, envOpts{})
	ctx := context.Background()
	al := c.alice(t, "2.79")
	s, err := servers.Create(ctx, al, servers.CreateOpts{Name: "va", ImageRef: imageID, FlavorRef: c.flavor.ID}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, al, s.ID, "ACTIVE")
	vol := c.volumes.AddVolume(c.p1, 1)
	other := c.volumes.AddVolume("someone-else", 1)

	a, err := volumeattach.Create(ctx, al, s.ID, volumeattach.CreateOpts{VolumeID: vol, Tag: "data", DeleteOnTermination: true}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != vol || a.VolumeID != vol || a.ServerID != s.ID || a.Device != "/dev/vdb" || a.Tag == nil || *a.Tag != "data" ||
		a.DeleteOnTermination == nil || !*a.DeleteOnTermination {
		t.Fatalf("attach answered %+v", a)
	}
	c.waitVolume(vol, "in-use")
	if d := c.drivers[hostIndex(t, c, s.ID)].Disks(s.ID); !slices.Equal(d, []string{"vdb"}) {
		t.Fatalf("the domain's volumes: %v, want [vdb]", d)
	}

	// Nova's errors: attached already 400, another project's volume 404
	// (as a missing one), a malformed id 400, a tag before 2.49 400.
	for _, tc := range []struct {
		client *gophercloud.ServiceClient
		vol    string
		tag    string
		want   int
	}{
		{al, vol, "", http.StatusBadRequest},
		{al, other, "", http.StatusNotFound},
		{al, "3f0e1e0e-0000-4000-8000-000000000000", "", http.StatusNotFound},
		{al, "not-a-uuid", "", http.StatusBadRequest},
		{c.alice(t, "2.48"), other, "x", http.StatusBadRequest},
	} {
		_, err := volumeattach.Create(ctx, tc.client, s.ID, volumeattach.CreateOpts{VolumeID: tc.vol, Tag: tc.tag}).Extract()
		if httpCode(err) != tc.want {
			t.Errorf("attach %s (tag %q): %v, want %d", tc.vol, tc.tag, err, tc.want)
		}
	}
	if st := c.volumes.Status(other); st != "available" {
		t.Fatalf("the other project's volume is %s after a refused attach", st)
	}

	pages, err := volumeattach.List(al, s.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := volumeattach.ExtractVolumeAttachments(pages)
	if err != nil || len(list) != 1 || list[0].VolumeID != vol || list[0].Device != "/dev/vdb" {
		t.Fatalf("list %+v %v", list, err)
	}
	if g, err := volumeattach.Get(ctx, al, s.ID, vol).Extract(); err != nil || g.Device != "/dev/vdb" || !*g.DeleteOnTermination {
		t.Fatalf("show %+v %v", g, err)
	}
	// 2.89: attachment_id and bdm_uuid instead of id; before 2.70 no tag.
	code, _, body := c.raw(t, "GET", "/servers/"+s.ID+"/os-volume_attachments/"+vol, "", map[string]string{"OpenStack-API-Version": "compute 2.89"})
	va, _ := body["volumeAttachment"].(map[string]any)
	if code != 200 || va["attachment_id"] == nil || va["bdm_uuid"] == nil || va["id"] != nil || va["tag"] != "data" {
		t.Fatalf("2.89 show: %d %v", code, body)
	}
	_, _, body = c.raw(t, "GET", "/servers/"+s.ID+"/os-volume_attachments", "", map[string]string{"OpenStack-API-Version": "compute 2.60"})
	l, _ := body["volumeAttachments"].([]any)
	if len(l) != 1 || l[0].(map[string]any)["id"] != vol || l[0].(map[string]any)["tag"] != nil || strings.Contains(toJSON(l), "delete_on_termination") {
		t.Fatalf("2.60 list: %v", body)
	}
	if g, err := servers.Get(ctx, al, s.ID).Extract(); err != nil || len(g.AttachedVolumes) != 1 || g.AttachedVolumes[0].ID != vol {
		t.Fatalf("os-extended-volumes:volumes_attached %+v %v", g, err)
	}
	// PUT: swapping volumes is not supported; 2.85 changes delete_on_termination.
	code, _, _ = c.raw(t, "PUT", "/servers/"+s.ID+"/os-volume_attachments/"+vol, `{"volumeAttachment": {"volumeId": "`+other+`"}}`, nil)
	if code != http.StatusNotImplemented {
		t.Fatalf("swap: %d", code)
	}
	code, _, _ = c.raw(t, "PUT", "/servers/"+s.ID+"/os-volume_attachments/"+vol, `{"volumeAttachment": {"volumeId": "`+vol+`", "delete_on_termination": false}}`,
		map[string]string{"OpenStack-API-Version": "compute 2.85"})
	if g, _ := c.svc.GetVolumeAttachment(user(c.p1), s.ID, vol); code != http.StatusAccepted || g.DeleteOnTermination {
		t.Fatalf("update delete_on_termination: %d %+v", code, g)
	}

	// Detach: 202, the volume goes back to available; a second is 404.
	if err := volumeattach.Delete(ctx, al, s.ID, vol).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	c.waitVolume(vol, "available")
	c.waitAttachments(user(c.p1), s.ID)
	if d := c.drivers[hostIndex(t, c, s.ID)].Disks(s.ID); len(d) != 0 {
		t.Fatalf("the domain still has %v", d)
	}
	if err := volumeattach.Delete(ctx, al, s.ID, vol).ExtractErr(); httpCode(err) != http.StatusNotFound {
		t.Fatalf("second detach: %v, want 404", err)
	}
	if err := volumeattach.Delete(ctx, al, s.ID, other).ExtractErr(); httpCode(err) != http.StatusNotFound {
		t.Fatalf("detach of another project's volume: %v, want 404", err)
	}
	pages, err = instanceactions.List(al, s.ID, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acts, _ := instanceactions.ExtractInstanceActions(pages)
	var names []string
	for _, ac := range acts {
		names = append(names, ac.Action)
		if ac.Action == "attach_volume" || ac.Action == "detach_volume" {
			full, err := instanceactions.Get(ctx, al, s.ID, ac.RequestID).Extract()
			if err != nil || full.Events == nil || len(*full.Events) != 1 || (*full.Events)[0].Result != "Success" ||
				!strings.HasPrefix((*full.Events)[0].Event, "compute_") {
				t.Fatalf("action %s: %+v %v", ac.Action, full, err)
			}
		}
	}
	if !slices.Contains(names, "attach_volume") || !slices.Contains(names, "detach_volume") {
		t.Fatalf("instance actions %v", names)
	}

	// A suspended server refuses both (409); a stopped one attaches.
	if err := servers.Suspend(ctx, al, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, al, s.ID, "SUSPENDED")
	if _, err := volumeattach.Create(ctx, al, s.ID, volumeattach.CreateOpts{VolumeID: vol}).Extract(); httpCode(err) != http.StatusConflict {
		t.Fatalf("attach to a suspended server: %v, want 409", err)
	}
	if err := servers.Resume(ctx, al, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, al, s.ID, "ACTIVE")
	if err := servers.Stop(ctx, al, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, al, s.ID, "SHUTOFF")
	keep := c.volumes.AddVolume(c.p1, 1)
	for _, v := range []struct {
		id  string
		dot bool
	}{{vol, true}, {keep, false}} {
		if _, err := volumeattach.Create(ctx, al, s.ID, volumeattach.CreateOpts{VolumeID: v.id, DeleteOnTermination: v.dot}).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	c.waitAttachments(user(c.p1), s.ID, vol+"=attached", keep+"=attached")
	if g, _ := c.svc.GetVolumeAttachment(user(c.p1), s.ID, keep); g.Device != "/dev/vdc" {
		t.Fatalf("second volume's device %q, want /dev/vdc", g.Device)
	}
	// Deleting the server detaches both and deletes the one marked
	// delete_on_termination.
	if err := servers.Delete(ctx, al, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	c.gone(user(c.p1), s.ID)
	if st := c.volumes.Status(vol); st != "" {
		t.Errorf("delete_on_termination volume is %q after the server's delete, want deleted", st)
	}
	if st := c.volumes.Status(keep); st != "available" {
		t.Errorf("kept volume is %q, want available", st)
	}
	if n := c.volumes.Attachments(); n != 0 {
		t.Errorf("%d attachments left", n)
	}
}

func hostIndex(t *testing.T, c *cloud, id string) int {
	t.Helper()
	for i, d := range c.drivers {
		if slices.Contains(d.Domains(), id) {
			return i
		}
	}
	t.Fatalf("no host has server %s", id)
	return -1
}

// A crash in the middle of an attach and of a detach: the service stops
// while the hypervisor call is under way; a new service on the same
// store finishes each, and the volume, the domain and the mapping agree.
func TestVolumeAttachCrashSettles(t *testing.T) {
	var block atomic.Bool
	release := make(chan struct{})
	fail := func(op fakevm.Op, _ string) error {
		if (op == fakevm.OpAttach || op == fakevm.OpDetach) && block.Load() {
			<-release
			if op == fakevm.OpAttach {
				return nil // the disk is plugged, but the service is gone before it records so
			}
			return errors.New("fakevm: host crashed") // the unplug never happened
		}
		return nil
	}
	e := newEnv(t, envOpts{hosts: 1, fake: &fakevm.Options{Fail: fail}})
	ctx := user("p1")
	srv := e.settle(ctx, e.create(ctx, "crash", nil).ID)
	vol := e.volumes.AddVolume("p1", 1)

	crash := func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for e.drivers[0].Calls(fakevm.OpAttach)+e.drivers[0].Calls(fakevm.OpDetach) == 0 || !block.Load() {
			if time.Now().After(deadline) {
				t.Fatal("the hypervisor call never started")
			}
			time.Sleep(time.Millisecond)
		}
		closed := make(chan error, 1)
		go func() { closed <- e.svc.Close() }()
		time.Sleep(20 * time.Millisecond)
		block.Store(false)
		close(release)
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		release = make(chan struct{})
		e.start(envOpts{})
	}

	block.Store(true)
	if _, err := e.svc.AttachVolume(ctx, srv.ID, compute.AttachVolumeOpts{VolumeID: vol}); err != nil {
		t.Fatal(err)
	}
	crash()
	e.waitAttachments(ctx, srv.ID, vol+"=attached")
	e.waitVolume(vol, "in-use")
	if d := e.drivers[0].Disks(srv.ID); !slices.Equal(d, []string{"vdb"}) {
		t.Fatalf("after the attach settled the domain has %v", d)
	}

	block.Store(true)
	if err := e.svc.DetachVolume(ctx, srv.ID, vol); err != nil {
		t.Fatal(err)
	}
	crash()
	e.waitAttachments(ctx, srv.ID)
	e.waitVolume(vol, "available")
	if d := e.drivers[0].Disks(srv.ID); len(d) != 0 {
		t.Fatalf("after the detach settled the domain has %v", d)
	}
	if n := e.volumes.Attachments(); n != 0 {
		t.Fatalf("%d attachments left", n)
	}
}

// A hypervisor that refuses the disk for good: the attach is rolled back
// (no mapping, no attachment, the volume available) and its action
// records the error; a detach the guest does not finish leaves the volume
// attached.
func TestVolumeAttachFailureRollsBack(t *testing.T) {
	var mode atomic.Value
	mode.Store("")
	e := newEnv(t, envOpts{hosts: 1, fake: &fakevm.Options{Fail: func(op fakevm.Op, _ string) error {
		switch {
		case op == fakevm.OpAttach && mode.Load() == "attach":
			return errdefs.Invalid("disk", "refused by the test")
		case op == fakevm.OpDetach && mode.Load() == "detach":
			return errdefs.Wrap(errdefs.ErrUnavailable, errors.New("the guest did not release the disk"))
		}
		return nil
	}}})
	ctx := user("p1")
	srv := e.settle(ctx, e.create(ctx, "fail", nil).ID)
	vol := e.volumes.AddVolume("p1", 1)
	mode.Store("attach")
	if _, err := e.svc.AttachVolume(ctx, srv.ID, compute.AttachVolumeOpts{VolumeID: vol}); err != nil {
		t.Fatal(err)
	}
	e.waitAttachments(ctx, srv.ID)
	e.waitVolume(vol, "available")
	if n := e.volumes.Attachments(); n != 0 {
		t.Fatalf("%d attachments left after a failed attach", n)
	}
	acts, err := e.svc.ListInstanceActions(ctx, srv.ID)
	if err != nil || acts[0].Action != "attach_volume" || len(acts[0].Events) != 1 || acts[0].Events[0].Result != "Error" ||
		!strings.Contains(acts[0].Events[0].Traceback, "refused by the test") {
		t.Fatalf("actions after a failed attach: %+v %v", acts[0], err)
	}
	mode.Store("detach")
	if _, err := e.svc.AttachVolume(ctx, srv.ID, compute.AttachVolumeOpts{VolumeID: vol}); err != nil {
		t.Fatal(err)
	}
	e.waitAttachments(ctx, srv.ID, vol+"=attached")
	if err := e.svc.DetachVolume(ctx, srv.ID, vol); err != nil {
		t.Fatal(err)
	}
	e.waitAttachments(ctx, srv.ID, vol+"=attached")
	if st := e.volumes.Status(vol); st != "in-use" {
		t.Fatalf("volume %s after a refused detach", st)
	}
	// Locked servers and other projects.
	if err := e.svc.LockServer(ctx, srv.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DetachVolume(ctx, srv.ID, vol); !errdefs.IsConflict(err) {
		t.Fatalf("detach from a locked server: %v, want conflict", err)
	}
	if _, err := e.svc.ListVolumeAttachments(user("p2"), srv.ID); !errdefs.IsNotFound(err) {
		t.Fatalf("another project lists the attachments: %v", err)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
