package linuxnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
)

// Cleanup removes everything the backend created on the host and
// nothing else: dnsmasq processes it started, router and DHCP namespaces
// under NetnsDir, links whose alias marks them as stratus's, its
// nftables tables, and its recorded specs. The backend stays usable
// (empty).
func (b *Backend) Cleanup(ctx context.Context) error {
	if err := b.begin(ctx, "cleanup", ""); err != nil {
		return err
	}
	defer b.mu.Unlock()
	var errs []error
	for name := range b.meta {
		b.stopMetadata(name)
	}
	b.rtrIfaces.Clear()
	dhcpDir := filepath.Join(b.cfg.DHCPDir)
	if ents, err := os.ReadDir(dhcpDir); err == nil {
		for _, e := range ents {
			stopPID(dnsmasqPID(filepath.Join(dhcpDir, e.Name())))
			errs = append(errs, os.RemoveAll(filepath.Join(dhcpDir, e.Name())))
		}
	}
	errs = append(errs, b.delAliased(aliasPrefix))
	if ents, err := os.ReadDir(b.cfg.NetnsDir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), nsRouter) || strings.HasPrefix(e.Name(), nsDHCP) {
				errs = append(errs, removeNS(filepath.Join(b.cfg.NetnsDir, e.Name())))
			}
		}
	}
	if c, err := nftConn(int(b.host)); err == nil {
		for _, t := range []*nftables.Table{{Name: tableName, Family: nftables.TableFamilyNetdev},
			{Name: tableName, Family: nftables.TableFamilyIPv4}, {Name: tableName, Family: nftables.TableFamilyIPv6},
			{Name: tableName + "-masq", Family: nftables.TableFamilyIPv4}} {
			c.AddTable(t)
			c.DelTable(t)
		}
		errs = append(errs, c.Flush())
	} else {
		errs = append(errs, err)
	}
	specs := filepath.Join(b.cfg.StateDir, "specs")
	if ents, err := os.ReadDir(specs); err == nil {
		for _, e := range ents {
			errs = append(errs, os.Remove(filepath.Join(specs, e.Name())))
		}
	}
	clear(b.nets)
	clear(b.ports)
	clear(b.groups)
	clear(b.routers)
	clear(b.dhcp)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("linuxnet: cleanup: %w", err)
	}
	return nil
}
