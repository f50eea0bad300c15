//go:build cgo

package libvirtvm

import (
	"context"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/stratuskit/stratus/compute"
)

// Events implements compute.EventSource: the power changes of Stratus's
// domains as libvirt reports them (a guest that powers itself off, a
// crash, a pause by the host ...). The channel closes when ctx ends.
func (d *Driver) Events(ctx context.Context) <-chan compute.DomainEvent {
	out := make(chan compute.DomainEvent, 64)
	raw := make(chan string, 1024) // server ids whose domains changed
	cb := func(_ *libvirt.Connect, dom *libvirt.Domain, ev *libvirt.DomainEventLifecycle) {
		// Never block libvirt's event loop: the agent's periodic power
		// sync catches up with a dropped event.
		id, err := dom.GetUUIDString()
		if err != nil {
			return
		}
		select {
		case raw <- id:
		default:
			d.log.Warn("libvirt event dropped", "server", id, "event", ev.Event)
		}
	}
	cbID, err := d.conn.DomainEventLifecycleRegister(nil, cb)
	if err != nil {
		d.log.Warn("libvirt lifecycle events unavailable", "err", err)
		go func() {
			<-ctx.Done()
			close(out)
		}()
		return out
	}
	go func() {
		defer close(out)
		defer func() { _ = d.conn.DomainEventDeregister(cbID) }()
		for {
			select {
			case <-ctx.Done():
				return
			case id := <-raw:
				// The state is read now rather than decoded from the event,
				// so that a burst ends on the domain's true state.
				dom, err := d.lookup(id)
				if err != nil {
					continue
				}
				p, err := powerOf(dom)
				_ = dom.Free()
				if err != nil {
					continue
				}
				select {
				case out <- compute.DomainEvent{ServerID: id, Power: p, Time: time.Now()}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
