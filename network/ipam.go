package network

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"sync"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// IPAM. The store is the truth: every allocated address is a fixed IP of
// a port record, and the ports table indexes them ("ip": "<subnet>/<ip>"),
// so an address is taken exactly when a committed port holds it. An
// allocation checks that index (and the addresses the same port took earlier
// in the same transaction function) inside the committer, which runs
// transaction functions one at a time, so two ports can never commit the
// same address; releasing an address is writing the port without it.
// Keeping no record per address makes a port one record in the store, not
// three (port, address, MAC): a durable port create writes a third of the
// records.
//
// To find a free address without scanning the pool, each subnet has an
// in-memory allocator: a bitmap of the pool with a next-free cursor. It is
// a hint. A transaction function takes the next clear bit, sets it, and
// checks the store; if the address is taken after all (the hint was stale)
// it moves on. Bits taken by a function whose batch failed or re-ran are
// cleared by the caller once its Update returns, and bits of released
// addresses once their delete is durable. A hint that drifted the other way
// (a bit set for a free address) costs only a missed address until the
// allocator is rebuilt from the store, which happens before any
// "exhausted" answer: exhaustion is reported only when the store says so.
// After a restart the allocators are rebuilt from the store on first use.

func ipKey(subnet string, a netip.Addr) string { return subnet + "/" + a.String() }

// portIPIndexer indexes a port by each of its fixed IPs, as
// "<subnet>/<ip>", the key ipKey makes. "ip_prefix" with "<subnet>/" lists
// the holders of a subnet's addresses.
type portIPIndexer struct{}

func (portIPIndexer) FromObject(obj any) (bool, [][]byte, error) {
	p, ok := obj.(*Port)
	if !ok {
		return false, nil, fmt.Errorf("network: ip index: %T is not a port", obj)
	}
	if len(p.FixedIPs) == 0 {
		return false, nil, nil
	}
	vals := make([][]byte, len(p.FixedIPs))
	for i, f := range p.FixedIPs {
		v := make([]byte, 0, len(f.SubnetID)+len(f.IPAddress)+2)
		v = append(v, f.SubnetID...)
		v = append(v, '/')
		v = append(v, f.IPAddress...)
		vals[i] = append(v, 0)
	}
	return true, vals, nil
}

func (portIPIndexer) FromArgs(args ...any) ([]byte, error) {
	k, err := stringArg(args)
	return append([]byte(k), 0), err
}

func (portIPIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	k, err := stringArg(args)
	return []byte(k), err
}

// ipHolder returns the port holding key (ipKey) in tx, or nil.
func ipHolder(tx *store.Txn, key string) *Port {
	p, err := store.First[Port](nil, tx, portTable, ipIndex, key)
	if err != nil {
		return nil
	}
	return p
}

// ipTaken reports whether ip of subnet is held by a committed port or was
// taken for portID earlier in this run of the transaction function (its
// port is not written yet).
func ipTaken(tx *store.Txn, subnet string, ip netip.Addr, portID string, picks []ipRef) bool {
	for i := len(picks) - 1; i >= 0 && picks[i].tx == tx && picks[i].port == portID; i-- {
		if picks[i].subnet == subnet && picks[i].addr == ip {
			return true
		}
	}
	taken, err := store.Exists(tx, portTable, ipIndex, ipKey(subnet, ip))
	return taken || err != nil
}

// allocGuard is a network's allocation guard: every transaction that
// takes an address or a MAC on the network writes it (once per commit).
// Within one store the committer already serialises allocations; the guard
// is for controllers sharing a backend (etcdstore), which each commit from
// their own replica: two commits that took addresses or MACs on the same
// network from the same view both write the guard, and the backend's
// compare-and-swap refuses the second, so they can never both hold one
// address (ports have different keys; the guard's is shared).
type allocGuard struct {
	store.Meta
	NetworkID string `json:"network_id"`
}

func (g *allocGuard) StoreKey() string { return g.NetworkID }

var guardTableDef = store.Table{Name: guardTable, New: func() store.Record { return new(allocGuard) }}

// guardTxn writes network's allocation guard, unless this commit already
// did.
func guardTxn(tx *store.Txn, network string) error {
	g, err := store.Get[allocGuard](nil, tx, guardTable, network)
	if err == nil && g.Revision == tx.Revision() {
		return nil
	}
	return tx.Put(guardTable, &allocGuard{NetworkID: network})
}

// ipRef names an address of a subnet; for an address a transaction
// function took, also the port it took it for and the run (tx).
type ipRef struct {
	subnet string
	addr   netip.Addr
	port   string
	tx     *store.Txn
}

// sparseThreshold is the pool size above which an allocator keeps no
// bitmap (IPv6 pools): it walks a cursor and relies on the store check,
// since such a pool is practically never full.
const sparseThreshold = 1 << 22

type poolRange struct {
	start netip.Addr
	size  uint64
}

type allocator struct {
	mu      sync.Mutex
	network string
	ranges  []poolRange
	total   uint64
	words   []uint64 // nil when sparse
	cursor  uint64
	free    uint64
}

type ipamSet struct {
	mu sync.Mutex
	m  map[string]*allocator
}

func newAllocator(sub *Subnet) *allocator {
	a := &allocator{network: sub.NetworkID}
	for _, p := range sub.AllocationPools {
		s, _ := netip.ParseAddr(p.Start)
		e, _ := netip.ParseAddr(p.End)
		n, ok := addrDiff(e, s)
		size := n + 1
		if !ok || n >= sparseThreshold*4 {
			size = sparseThreshold * 4
		}
		a.ranges = append(a.ranges, poolRange{start: s, size: size})
		a.total += size
	}
	if a.total <= sparseThreshold {
		a.words = make([]uint64, (a.total+63)/64)
	}
	a.free = a.total
	return a
}

func (a *allocator) addr(off uint64) netip.Addr {
	for _, r := range a.ranges {
		if off < r.size {
			return addrAdd(r.start, off)
		}
		off -= r.size
	}
	return netip.Addr{}
}

func (a *allocator) offset(ip netip.Addr) (uint64, bool) {
	base := uint64(0)
	for _, r := range a.ranges {
		if d, ok := addrDiff(ip, r.start); ok && ip.Compare(r.start) >= 0 && d < r.size {
			return base + d, true
		}
		base += r.size
	}
	return 0, false
}

func (a *allocator) set(off uint64) {
	if a.words == nil || off >= a.total {
		return
	}
	w, b := off/64, uint64(1)<<(off%64)
	if a.words[w]&b == 0 {
		a.words[w] |= b
		a.free--
	}
}

func (a *allocator) clear(off uint64) {
	if a.words == nil || off >= a.total {
		return
	}
	w, b := off/64, uint64(1)<<(off%64)
	if a.words[w]&b != 0 {
		a.words[w] &^= b
		a.free++
	}
}

// next takes the first clear bit at or after the cursor (wrapping), sets
// it and returns its offset; false when the bitmap is full. The cursor
// moves forward, so filling a pool costs O(1) amortised per address.
func (a *allocator) next() (uint64, bool) {
	if a.total == 0 {
		return 0, false
	}
	if a.words == nil {
		off := a.cursor % a.total
		a.cursor = off + 1
		return off, true
	}
	if a.free == 0 {
		return 0, false
	}
	c := a.cursor % a.total
	off, ok := a.findFrom(c, a.total)
	if !ok {
		off, ok = a.findFrom(0, c)
	}
	if !ok {
		return 0, false
	}
	a.set(off)
	a.cursor = off + 1
	return off, true
}

// findFrom returns the first clear bit in [from, to).
func (a *allocator) findFrom(from, to uint64) (uint64, bool) {
	for off := from; off < to; {
		w := off / 64
		word := a.words[w] | (uint64(1)<<(off%64) - 1)
		if word != ^uint64(0) {
			o := w*64 + uint64(bits.TrailingZeros64(^word))
			return o, o < to
		}
		off = (w + 1) * 64
	}
	return 0, false
}

// get returns the subnet's allocator, building it from tx when missing.
func (m *ipamSet) get(tx *store.Txn, sub *Subnet) (*allocator, error) {
	m.mu.Lock()
	a := m.m[sub.ID]
	m.mu.Unlock()
	if a != nil {
		return a, nil
	}
	a = newAllocator(sub)
	if err := a.load(tx, sub.ID); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.m[sub.ID]; b != nil {
		return b, nil
	}
	m.m[sub.ID] = a
	return a, nil
}

// load sets the bits of the addresses tx holds for subnet. The caller
// holds a.mu or owns a.
func (a *allocator) load(tx *store.Txn, subnet string) error {
	if a.words == nil {
		return nil
	}
	clear(a.words)
	a.free = a.total
	it, err := store.List[Port](nil, tx, portTable, ipIndex+"_prefix", subnet+"/")
	if err != nil {
		return err
	}
	for p := range it {
		for _, f := range p.FixedIPs {
			if f.SubnetID != subnet {
				continue
			}
			if ip, err := netip.ParseAddr(f.IPAddress); err == nil {
				if off, ok := a.offset(ip); ok {
					a.set(off)
				}
			}
		}
	}
	return nil
}

// forget drops a subnet's allocator (its pools changed or it is gone).
func (m *ipamSet) forget(subnet string) {
	m.mu.Lock()
	delete(m.m, subnet)
	m.mu.Unlock()
}

func (m *ipamSet) dropNetwork(network string) {
	m.mu.Lock()
	for id, a := range m.m {
		if a.network == network {
			delete(m.m, id)
		}
	}
	m.mu.Unlock()
}

// release clears the bits of addresses whose release is durable, and of
// addresses a transaction took but did not commit.
func (m *ipamSet) release(refs []ipRef) {
	for _, r := range refs {
		m.mu.Lock()
		a := m.m[r.subnet]
		m.mu.Unlock()
		if a == nil {
			continue
		}
		a.mu.Lock()
		if off, ok := a.offset(r.addr); ok {
			a.clear(off)
		}
		a.mu.Unlock()
	}
}

// settle clears the bits of picks not among kept: addresses taken by a
// run of a transaction function that did not commit.
func (m *ipamSet) settle(picks []ipRef, kept []FixedIP) {
	if len(picks) == 0 {
		return
	}
	type key struct {
		subnet string
		addr   netip.Addr
	}
	keep := make(map[key]bool, len(kept))
	for _, k := range kept {
		if a, err := netip.ParseAddr(k.IPAddress); err == nil {
			keep[key{k.SubnetID, a}] = true
		}
	}
	var drop []ipRef
	for _, p := range picks {
		if !keep[key{p.subnet, p.addr}] {
			drop = append(drop, p)
		}
	}
	m.release(drop)
}

// allocIPTxn allocates an address of sub for port: want if given (which
// must be free), else the next free address of the pools (EUI-64 from mac
// for SLAAC subnets). picks collects the addresses taken, for settle.
func (s *Service) allocIPTxn(tx *store.Txn, sub *Subnet, portID, mac, want string, picks *[]ipRef) (netip.Addr, error) {
	prefix, _ := netip.ParsePrefix(sub.CIDR)
	if want != "" {
		ip, err := netip.ParseAddr(want)
		if err != nil || ip.Zone() != "" || !prefix.Contains(ip) {
			return netip.Addr{}, errdefs.Invalid("fixed_ips", "IP address %s is not a valid IP for subnet %s", want, sub.ID)
		}
		if ip == prefix.Masked().Addr() || (ip.Is4() && ip == lastAddr(prefix) && prefix.Bits() < 31) {
			return netip.Addr{}, errdefs.Invalid("fixed_ips", "IP address %s is the network or broadcast address of subnet %s", want, sub.ID)
		}
		if ipTaken(tx, sub.ID, ip, portID, *picks) {
			return netip.Addr{}, fault("IpAddressAlreadyAllocated", errdefs.ErrConflict,
				"IP address %s already allocated in subnet %s", ip, sub.ID)
		}
		a, err := s.ipam.get(tx, sub)
		if err != nil {
			return netip.Addr{}, err
		}
		a.mu.Lock()
		if off, ok := a.offset(ip); ok {
			a.set(off)
		}
		a.mu.Unlock()
		*picks = append(*picks, ipRef{sub.ID, ip, portID, tx})
		return ip, guardTxn(tx, sub.NetworkID)
	}
	if sub.IPVersion == 6 && (deref(sub.IPv6AddressMode) == ModeSLAAC || deref(sub.IPv6AddressMode) == ModeDHCPv6Stateless) {
		ip, err := eui64(prefix, mac)
		if err != nil {
			return netip.Addr{}, err
		}
		return s.allocIPTxn(tx, &Subnet{Standard: Standard{ID: sub.ID}, CIDR: sub.CIDR, IPVersion: 6, NetworkID: sub.NetworkID, AllocationPools: sub.AllocationPools}, portID, mac, ip.String(), picks)
	}
	a, err := s.ipam.get(tx, sub)
	if err != nil {
		return netip.Addr{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	rebuilt := false
	limit := a.total + 1
	if a.words == nil {
		limit = 4096
	}
	for tries := uint64(0); tries < limit; tries++ {
		off, ok := a.next()
		if !ok {
			if rebuilt {
				break
			}
			// The hint says full: ask the store before saying so.
			if err := a.load(tx, sub.ID); err != nil {
				return netip.Addr{}, err
			}
			rebuilt = true
			continue
		}
		ip := a.addr(off)
		if ipTaken(tx, sub.ID, ip, portID, *picks) {
			continue // taken: the hint was stale; the bit stays set
		}
		*picks = append(*picks, ipRef{sub.ID, ip, portID, tx})
		return ip, guardTxn(tx, sub.NetworkID)
	}
	return netip.Addr{}, &Fault{Type: "IpAddressGenerationFailure", Err: errdefs.Wrap(errdefs.ErrConflict,
		&ipGenError{network: sub.NetworkID})}
}

type ipGenError struct{ network string }

func (e *ipGenError) Error() string {
	return "network: no more IP addresses available on network " + e.network
}

func (e *ipGenError) Is(target error) bool { return target == ErrIPAddressGenerationFailure }

// releaseIP returns the ref of ip in subnet, which the port being written
// without it releases.
func releaseIP(subnet, ip string) (ipRef, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ipRef{}, err
	}
	return ipRef{subnet: subnet, addr: addr}, nil
}

// eui64 returns the SLAAC address of mac in a /64 prefix.
func eui64(prefix netip.Prefix, mac string) (netip.Addr, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return netip.Addr{}, errdefs.Invalid("mac_address", "%q is not a MAC address", mac)
	}
	if prefix.Bits() != 64 {
		return netip.Addr{}, errdefs.Invalid("cidr", "SLAAC needs a /64 prefix")
	}
	b := prefix.Masked().Addr().As16()
	b[8] = hw[0] ^ 0x02
	b[9], b[10] = hw[1], hw[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = hw[3], hw[4], hw[5]
	return netip.AddrFrom16(b), nil
}

// addrAdd returns a+n (in a's family, wrapping silently past its end).
func addrAdd(a netip.Addr, n uint64) netip.Addr {
	if a.Is4() {
		b := a.As4()
		v := binary.BigEndian.Uint32(b[:]) + uint32(n)
		binary.BigEndian.PutUint32(b[:], v)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	lo2, carry := bits.Add64(lo, n, 0)
	hi += carry
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo2)
	return netip.AddrFrom16(b)
}

// addrDiff returns a-b when a >= b and the difference fits in 64 bits.
func addrDiff(a, b netip.Addr) (uint64, bool) {
	if a.Is4() != b.Is4() || a.Compare(b) < 0 {
		return 0, false
	}
	if a.Is4() {
		x, y := a.As4(), b.As4()
		return uint64(binary.BigEndian.Uint32(x[:]) - binary.BigEndian.Uint32(y[:])), true
	}
	x, y := a.As16(), b.As16()
	xh, xl := binary.BigEndian.Uint64(x[:8]), binary.BigEndian.Uint64(x[8:])
	yh, yl := binary.BigEndian.Uint64(y[:8]), binary.BigEndian.Uint64(y[8:])
	lo, borrow := bits.Sub64(xl, yl, 0)
	hi := xh - yh - borrow
	if hi != 0 {
		return 0, false
	}
	return lo, true
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
