package sdpfilter

import (
	"fmt"
	"strings"
)

// known lists the codecs that may be restricted, by canonical name (the RTP
// encoding names the API accepts, as in package provision). The position of
// a name is its bit in a Set, so the order must never change; new codecs
// are appended. At most 32.
var known = [...]string{
	"PCMU", "PCMA", "G722", "G723", "G726-32", "G728", "G729", "GSM",
	"iLBC", "opus", "speex", "AMR", "AMR-WB", "telephone-event",
	"H261", "H263", "H264", "VP8", "VP9", "T38",
}

// Bit positions of the codecs with a static RTP payload type.
const (
	idxPCMU = iota
	idxPCMA
	idxG722
	idxG723
	_ // G726-32: dynamic only (RFC 3551 §4.5.4; payload type 2 is unassigned)
	idxG728
	idxG729
	idxGSM
)

// H.261 and H.263, the static video payload types.
const (
	idxH261 = 14
	idxH263 = 15
)

// aliases are encoding names found in SDP that mean a known codec.
// G729A is G.729 Annex A, bit-compatible with G.729 and announced under
// that name by some devices.
var aliases = [...]struct {
	name string
	idx  int
}{
	{"G729A", idxG729},
}

var _ [32 - len(known)]struct{} // a Set holds at most 32 codecs

// Known returns the codec names a Set can hold, in canonical spelling.
func Known() []string { return append([]string(nil), known[:]...) }

// Set is a set of restricted codecs. It is a small comparable value: the
// zero Set is empty, two Sets are equal when they hold the same codecs, and
// querying it never allocates.
type Set struct{ bits uint32 }

// ParseSet returns the Set of the named codecs. Names are matched
// case-insensitively, ignoring surrounding white space, against the
// canonical names (see Known); a name may be repeated. The error names the
// first unknown codec.
func ParseSet(names []string) (Set, error) {
	var s Set
	for i, n := range names {
		idx := codecIndex(strings.TrimSpace(n), false)
		if idx < 0 {
			return Set{}, fmt.Errorf("codecs[%d]: %q: unknown codec", i, n)
		}
		s.bits |= 1 << idx
	}
	return s, nil
}

// Has reports whether the Set holds the codec named name, matched
// case-insensitively; an SDP alias of a codec (G729A for G729) counts as
// the codec.
func (s Set) Has(name string) bool { return s.has(codecIndex(name, true)) }

// Empty reports whether the Set holds no codec.
func (s Set) Empty() bool { return s.bits == 0 }

// Names returns the codecs of the Set in canonical spelling and order.
func (s Set) Names() []string {
	var names []string
	for i, n := range known {
		if s.bits&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return names
}

// String returns the codecs of the Set, comma-separated.
func (s Set) String() string { return strings.Join(s.Names(), ",") }

func (s Set) has(idx int) bool { return idx >= 0 && s.bits&(1<<idx) != 0 }

// codecIndex returns the bit of the codec named name (case-insensitive), or
// -1. With alias, SDP aliases count too.
func codecIndex[T string | []byte](name T, alias bool) int {
	for i, k := range known {
		if equalFold(name, k) {
			return i
		}
	}
	if alias {
		for _, a := range aliases {
			if equalFold(name, a.name) {
				return a.idx
			}
		}
	}
	return -1
}

// equalFold reports whether a equals b under ASCII case folding. b is
// expected to be ASCII.
func equalFold[T string | []byte](a T, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// FromBits returns the Set whose bit i is Known()[i] — the layout the
// configuration snapshot keeps (snapshot.Codecs), so converting is free.
func FromBits(b uint32) Set { return Set{bits: b & (1<<len(known) - 1)} }
