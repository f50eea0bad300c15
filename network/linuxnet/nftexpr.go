package linuxnet

import (
	"encoding/binary"
	"math/big"
	"net"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Small builders of nftables expressions: each returns the expressions
// of one match, loading into register 1 and comparing.

type exprs = []expr.Any

func cmpEq(data []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }

func payload(base expr.PayloadBase, off, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// metaIs matches a meta key against data.
func metaIs(key expr.MetaKey, data []byte) exprs {
	return exprs{&expr.Meta{Key: key, Register: 1}, cmpEq(data)}
}

// ethProto matches the link layer protocol (ETH_P_*).
func ethProto(p uint16) exprs { return metaIs(expr.MetaKeyPROTOCOL, be16(p)) }

func l4proto(p int) exprs { return metaIs(expr.MetaKeyL4PROTO, []byte{byte(p)}) }

// masked matches the bytes at base/off against the prefix p.
func masked(base expr.PayloadBase, off uint32, p netip.Prefix) exprs {
	a := p.Addr().AsSlice()
	n := uint32(len(a))
	if p.Bits() == p.Addr().BitLen() {
		return exprs{payload(base, off, n), cmpEq(a)}
	}
	mask := net.CIDRMask(p.Bits(), p.Addr().BitLen())
	return exprs{payload(base, off, n),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
		cmpEq(p.Masked().Addr().AsSlice())}
}

// ipAddr matches the source (src) or destination address of an IPv4 or
// IPv6 header against p.
func ipAddr(p netip.Prefix, src bool) exprs {
	off := uint32(16)
	if p.Addr().Is4() {
		if src {
			off = 12
		}
	} else {
		off = 24
		if src {
			off = 8
		}
	}
	return masked(expr.PayloadBaseNetworkHeader, off, p)
}

func etherSrc(mac net.HardwareAddr) exprs {
	return exprs{payload(expr.PayloadBaseLLHeader, 6, 6), cmpEq(mac)}
}

// portRange matches the transport destination (or source) port.
func portRange(dst bool, lo, hi int) exprs {
	off := uint32(0)
	if dst {
		off = 2
	}
	if hi < lo {
		hi = lo
	}
	if lo == hi {
		return exprs{payload(expr.PayloadBaseTransportHeader, off, 2), cmpEq(be16(uint16(lo)))}
	}
	return exprs{payload(expr.PayloadBaseTransportHeader, off, 2),
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: be16(uint16(lo)), ToData: be16(uint16(hi))}}
}

// icmpType matches the ICMP (v4 or v6) type and, when code >= 0, code.
func icmpType(typ, code int) exprs {
	e := exprs{payload(expr.PayloadBaseTransportHeader, 0, 1), cmpEq([]byte{byte(typ)})}
	if code >= 0 {
		e = append(e, payload(expr.PayloadBaseTransportHeader, 1, 1), cmpEq([]byte{byte(code)}))
	}
	return e
}

// ctState matches any of the conntrack states in bits.
func ctState(bits uint32) exprs {
	return exprs{&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)}}
}

// physdev matches the bridge port a bridged packet came in on (in) or
// leaves by: the xtables physdev match through nft_compat, as
// iptables-nft encodes it, since nftables has no native equivalent in
// the ip families (see FACTS: no nf_conntrack_bridge).
func physdev(dev string, in bool) exprs {
	var info [72]byte // struct xt_physdev_info, padded to XT_ALIGN
	off := 32
	flag := byte(2) // XT_PHYSDEV_OP_OUT
	if in {
		off, flag = 0, 1 // XT_PHYSDEV_OP_IN
	}
	copy(info[off:off+16], dev)
	for i := 0; i <= len(dev); i++ {
		info[off+16+i] = 0xff
	}
	info[65] = flag
	u := xt.Unknown(info[:])
	return exprs{&expr.Match{Name: "physdev", Rev: 0, Info: &u}}
}

func verdict(k expr.VerdictKind) *expr.Verdict { return &expr.Verdict{Kind: k} }

func jump(chain string) *expr.Verdict {
	return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain}
}

// intervalElements turns prefixes into the start/end elements of an
// interval set, merging overlapping and adjacent ranges (the kernel
// refuses overlaps).
func intervalElements(ps []netip.Prefix, bits int) []nftables.SetElement {
	type rng struct{ lo, hi *big.Int }
	var rs []rng
	for _, p := range ps {
		if p.Addr().BitLen() != bits {
			continue
		}
		p = p.Masked()
		lo := new(big.Int).SetBytes(p.Addr().AsSlice())
		size := new(big.Int).Lsh(big.NewInt(1), uint(bits-p.Bits()))
		rs = append(rs, rng{lo, new(big.Int).Add(lo, size)}) // hi exclusive
	}
	slices.SortFunc(rs, func(a, b rng) int { return a.lo.Cmp(b.lo) })
	var merged []rng
	for _, r := range rs {
		if n := len(merged); n > 0 && r.lo.Cmp(merged[n-1].hi) <= 0 {
			if r.hi.Cmp(merged[n-1].hi) > 0 {
				merged[n-1].hi = r.hi
			}
			continue
		}
		merged = append(merged, r)
	}
	top := new(big.Int).Lsh(big.NewInt(1), uint(bits))
	key := func(v *big.Int) []byte { return v.FillBytes(make([]byte, bits/8)) }
	var out []nftables.SetElement
	for _, r := range merged {
		out = append(out, nftables.SetElement{Key: key(r.lo)})
		if r.hi.Cmp(top) < 0 {
			out = append(out, nftables.SetElement{Key: key(r.hi), IntervalEnd: true})
		}
	}
	return out
}

// Conntrack states as the ct expression reports them.
const (
	ctInvalid     = 1
	ctEstablished = 2
	ctRelated     = 4
)

// Protocol numbers used by the filters.
const (
	protoICMP   = unix.IPPROTO_ICMP
	protoTCP    = unix.IPPROTO_TCP
	protoUDP    = unix.IPPROTO_UDP
	protoICMPv6 = unix.IPPROTO_ICMPV6
)

// nftConn opens an nftables connection in ns. The library asks for an
// acknowledgement of every message of a batch and reads them after
// sending it whole, so a large batch (hundreds of ports) overflows a
// default receive buffer: force a large one (root may exceed rmem_max).
func nftConn(ns int) (*nftables.Conn, error) {
	return nftables.New(nftables.WithNetNSFd(ns), nftables.WithSockOptions(func(c *mdnetlink.Conn) error {
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
			if serr == nil { // a whole transaction is one sendmsg
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 64<<20)
			}
		})
		if err == nil && serr != nil {
			err = c.SetReadBuffer(64 << 20) // not root: as much as rmem_max allows
		}
		return err
	}))
}
