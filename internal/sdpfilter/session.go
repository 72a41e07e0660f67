package sdpfilter

// Rewrites the B2BUA makes when it moves a call's media to a new party (a
// transfer): the offer to the new party is sent sendrecv whatever hold state
// the old one had, and the party that stays keeps seeing one session, the
// origin it knows with its version raised (RFC 3264 §8).

import (
	"bytes"
	"strconv"
)

// SendRecv returns sdp with every direction attribute (a=sendonly,
// a=recvonly, a=inactive, a=sendrecv) removed, so that each stream is
// sendrecv by default (RFC 4566 §6). It returns sdp itself when it has none.
func SendRecv(sdp []byte) []byte {
	if !bytes.Contains(sdp, []byte("a=sendonly")) && !bytes.Contains(sdp, []byte("a=recvonly")) &&
		!bytes.Contains(sdp, []byte("a=inactive")) {
		return sdp
	}
	out := make([]byte, 0, len(sdp))
	for _, line := range lines(sdp) {
		switch string(bytes.TrimRight(line, "\r\n")) {
		case "a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv":
			continue
		}
		out = append(out, line...)
	}
	return out
}

// Reorigin returns next with its origin line (o=) replaced by prev's, the
// session version one above prev's: the SDP a party already holds a
// session of (prev, the last one it got from us) continues as the same
// session with new content. next is returned as is when either has no
// parsable origin.
func Reorigin(next, prev []byte) []byte {
	po, ok := origin(prev)
	if !ok {
		return next
	}
	if _, ok := origin(next); !ok {
		return next
	}
	f := bytes.Fields(po)
	v, err := strconv.ParseUint(string(f[2]), 10, 64)
	if err != nil {
		return next
	}
	f[2] = strconv.AppendUint(nil, v+1, 10)
	line := append(bytes.Join(f, []byte(" ")), '\r', '\n')
	out := make([]byte, 0, len(next)+len(line))
	for _, l := range lines(next) {
		if bytes.HasPrefix(l, []byte("o=")) {
			out = append(out, line...)
			continue
		}
		out = append(out, l...)
	}
	return out
}

// origin returns the o= line of sdp without its line ending, when it has
// the six fields RFC 4566 §5.2 names.
func origin(sdp []byte) (line []byte, ok bool) {
	for _, l := range lines(sdp) {
		if bytes.HasPrefix(l, []byte("o=")) {
			l = bytes.TrimRight(l, "\r\n")
			if len(bytes.Fields(l)) != 6 {
				return nil, false
			}
			return l, true
		}
	}
	return nil, false
}

// lines splits sdp into lines, each with its line ending.
func lines(sdp []byte) [][]byte {
	var out [][]byte
	for len(sdp) > 0 {
		i := bytes.IndexByte(sdp, '\n')
		if i < 0 {
			out = append(out, sdp)
			break
		}
		out = append(out, sdp[:i+1])
		sdp = sdp[i+1:]
	}
	return out
}
