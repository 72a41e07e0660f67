package snapshot

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/sipward/sipward/internal/store"
)

// Protocol is the SIP transport an endpoint or SIP user is pinned to.
type Protocol uint8

// Protocols, as store.Protocol.
const (
	ProtoUDP     Protocol = iota // any transport
	ProtoTCP                     // tcp or tls
	ProtoTLS                     // tls only
	ProtoTLSSRTP                 // tls only, and SRTP in the SDP
)

var protocolNames = [...]string{ProtoUDP: "udp", ProtoTCP: "tcp", ProtoTLS: "tls", ProtoTLSSRTP: "tls-srtp"}

// String returns the store spelling: "udp", "tcp", "tls" or "tls-srtp".
func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

// Accepts reports whether a request that arrived over transport (as in
// pipeline.Request.Transport: "udp", "tcp" or "tls") may use something pinned
// to p: tls and tls-srtp accept only tls, tcp accepts tcp or tls, udp accepts
// any transport.
func (p Protocol) Accepts(transport string) bool {
	switch p {
	case ProtoUDP:
		return true
	case ProtoTCP:
		return transport == "tcp" || transport == "tls"
	case ProtoTLS, ProtoTLSSRTP:
		return transport == "tls"
	}
	return false
}

func parseProtocol(p store.Protocol) (Protocol, error) {
	switch p {
	case "", store.ProtoUDP:
		return ProtoUDP, nil
	case store.ProtoTCP:
		return ProtoTCP, nil
	case store.ProtoTLS:
		return ProtoTLS, nil
	case store.ProtoTLSSRTP:
		return ProtoTLSSRTP, nil
	}
	return 0, fmt.Errorf("protocol %q: unknown", p)
}

// NATMode says how sipward treats a party that may be behind NAT: an IP
// endpoint's force_nat / disable_nat; SIP users are always NATAuto.
type NATMode uint8

// NAT modes.
const (
	NATAuto    NATMode = iota // detection decides (package sipnat)
	NATForce                  // always the source address, in dialogs and in SDP
	NATDisable                // nothing rewritten: its Contact and SDP as given
)

var natModeNames = [...]string{NATAuto: "auto", NATForce: "force", NATDisable: "disable"}

// String returns "auto", "force" or "disable".
func (m NATMode) String() string {
	if int(m) < len(natModeNames) {
		return natModeNames[m]
	}
	return fmt.Sprintf("nat(%d)", uint8(m))
}

// RelayMode says when a party's media goes through the media relay, as
// store.MediaRelay.
type RelayMode uint8

// Relay modes.
const (
	RelayAuto   RelayMode = iota // behind NAT, or a private address in its SDP
	RelayAlways                  // every call
	RelayNever                   // no call
)

var relayModeNames = [...]string{RelayAuto: "auto", RelayAlways: "always", RelayNever: "never"}

// String returns "auto", "always" or "never".
func (m RelayMode) String() string {
	if int(m) < len(relayModeNames) {
		return relayModeNames[m]
	}
	return fmt.Sprintf("relay(%d)", uint8(m))
}

func parseRelayMode(m store.MediaRelay) (RelayMode, error) {
	switch m {
	case "", store.RelayAuto:
		return RelayAuto, nil
	case store.RelayAlways:
		return RelayAlways, nil
	case store.RelayNever:
		return RelayNever, nil
	}
	return 0, fmt.Errorf("media_relay %q: unknown", m)
}

// Direction says which way calls flow for an IP endpoint.
type Direction uint8

// Directions, as store.Direction.
const (
	DirSends    Direction = iota // it sends calls to us (ingress)
	DirReceives                  // we send calls to it (egress)
)

// String returns "sends" or "receives".
func (d Direction) String() string {
	if d == DirReceives {
		return string(store.DirReceives)
	}
	return string(store.DirSends)
}

// NATPing is the NAT/SIP ping mode of a SIP user.
type NATPing uint8

// NAT ping modes, as store.NATPing.
const (
	NATPingDisabled NATPing = iota
	NATPingEnabled
	NATPingTimeout
)

// String returns the store spelling.
func (n NATPing) String() string {
	switch n {
	case NATPingEnabled:
		return string(store.NATPingEnabled)
	case NATPingTimeout:
		return string(store.NATPingTimeout)
	}
	return string(store.NATPingDisabled)
}

func parseNATPing(n store.NATPing) (NATPing, error) {
	switch n {
	case "", store.NATPingDisabled:
		return NATPingDisabled, nil
	case store.NATPingEnabled:
		return NATPingEnabled, nil
	case store.NATPingTimeout:
		return NATPingTimeout, nil
	}
	return 0, fmt.Errorf("nat_ping %q: unknown", n)
}

// Codecs is a set of codecs (the restricted codecs of an endpoint or user),
// one bit per name in CodecNames.
type Codecs uint32

// CodecNames lists the codecs that can be restricted, by canonical name (RTP
// encoding name). It matches the list the provisioning layer accepts; the
// bit of CodecNames[i] in a Codecs is 1<<i.
var CodecNames = [...]string{"PCMU", "PCMA", "G722", "G723", "G726-32", "G728", "G729", "GSM",
	"iLBC", "opus", "speex", "AMR", "AMR-WB", "telephone-event", "H261", "H263", "H264", "VP8", "VP9", "T38"}

// Has reports whether the set holds the codec with that encoding name
// (compared case-insensitively, as in SDP rtpmap).
func (c Codecs) Has(name string) bool {
	if c == 0 {
		return false
	}
	for i, n := range CodecNames {
		if c&(1<<i) != 0 && strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// Len returns the number of codecs in the set.
func (c Codecs) Len() int { return bits.OnesCount32(uint32(c)) }

// Names returns the canonical names in the set, in CodecNames order. It
// allocates.
func (c Codecs) Names() []string {
	var out []string
	for i, n := range CodecNames {
		if c&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String returns the names joined by commas.
func (c Codecs) String() string { return strings.Join(c.Names(), ",") }

func parseCodecs(names []string) (Codecs, error) {
	var c Codecs
next:
	for _, name := range names {
		for i, n := range CodecNames {
			if strings.EqualFold(n, name) {
				c |= 1 << i
				continue next
			}
		}
		return 0, fmt.Errorf("restricted codec %q: unknown", name)
	}
	return c, nil
}
