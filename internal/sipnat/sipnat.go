// Package sipnat tells whether a SIP party is behind NAT, from what its
// request says about its own address against where the request really came
// from, and mends the SDP such a party sends: a connection address in a
// private network, which the far end cannot reach, becomes the party's
// public source address (symmetric RTP: it sends its media from where it
// wants to receive it). It is a leaf the nat stage and the B2BUA use; it
// opens no sockets.
package sipnat

import (
	"bytes"
	"net/netip"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// private holds the ranges a party behind NAT numbers itself from: RFC 1918,
// the shared address space of carrier-grade NAT (RFC 6598), IPv4 link-local,
// IPv6 unique-local and link-local.
var private = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// Private reports whether a is in a range only a private network reaches.
func Private(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range private {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Detect reports whether the sender of req, which came from src over
// transport ("udp", "tcp" or "tls"), is behind NAT, and why: its top Via
// or its Contact names an address other than src's, or a private one (over
// UDP the Via's port counts too; over streams the source port is the
// connection's own). Host names say nothing either way.
func Detect(src netip.AddrPort, transport string, req *sip.Request) (bool, string) {
	from := src.Addr().Unmap()
	if v := req.Via(); v != nil {
		if a, err := netip.ParseAddr(v.Host); err == nil {
			a = a.Unmap()
			port := v.Port
			if port == 0 {
				port = 5060
			}
			switch {
			case a != from:
				return true, "Via " + v.Host + " is not the source " + from.String()
			case transport == "udp" && port != int(src.Port()):
				return true, "Via port " + strconv.Itoa(port) + " is not the source port " + strconv.Itoa(int(src.Port()))
			}
		}
	}
	if c := req.Contact(); c != nil {
		if a, err := netip.ParseAddr(c.Address.Host); err == nil {
			if a = a.Unmap(); a != from {
				return true, "Contact " + c.Address.Host + " is not the source " + from.String()
			}
		}
	}
	return false, ""
}

// FixSDP returns sdp with its connection addresses ("c=" lines, session and
// media level) that are private — or, with always, any that is not to —
// replaced by to, and the first address it replaced; sdp itself is not
// modified. A multicast address (with a TTL) is left alone. When nothing is
// replaced it returns sdp and "".
func FixSDP(sdp []byte, to netip.Addr, always bool) ([]byte, string) {
	to = to.Unmap()
	family := "IP4 "
	if to.Is6() {
		family = "IP6 "
	}
	var out []byte
	replaced := ""
	copied := 0 // sdp[:copied] is in out
	for pos := 0; pos < len(sdp); {
		end := len(sdp)
		if i := bytes.IndexByte(sdp[pos:], '\n'); i >= 0 {
			end = pos + i + 1
		}
		line := bytes.TrimRight(sdp[pos:end], "\r\n")
		start := pos
		pos = end
		if len(line) < 11 || !bytes.HasPrefix(line, []byte("c=IN IP")) || bytes.IndexByte(line, '/') >= 0 {
			continue
		}
		a, ok := parseAddr(line[9:]) // after "c=IN IP4 "
		if !ok || a.Unmap() == to || !(always || Private(a)) {
			continue
		}
		if replaced == "" {
			replaced = a.String()
			out = make([]byte, 0, len(sdp)+16)
		}
		out = append(out, sdp[copied:start]...)
		out = append(out, "c=IN "+family+to.String()...)
		copied = start + len(line) // the line's own end of line follows
	}
	if replaced == "" {
		return sdp, ""
	}
	return append(out, sdp[copied:]...), replaced
}

// parseAddr parses an address of an SDP line; IPv4 without allocating.
func parseAddr(b []byte) (netip.Addr, bool) {
	var v4 [4]byte
	part, n, digits := 0, 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9' && digits < 3:
			n, digits = n*10+int(c-'0'), digits+1
		case c == '.' && digits > 0 && part < 3 && n <= 255:
			v4[part], part, n, digits = byte(n), part+1, 0, 0
		default:
			a, err := netip.ParseAddr(string(b)) // IPv6, or not an address
			return a, err == nil
		}
	}
	if part != 3 || digits == 0 || n > 255 {
		return netip.Addr{}, false
	}
	v4[3] = byte(n)
	return netip.AddrFrom4(v4), true
}
