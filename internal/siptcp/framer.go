package siptcp

import (
	"bytes"
	"time"
)

// framer follows the framing of a SIP stream (RFC 3261 §18.3: headers
// ended by an empty line, then Content-Length bytes of body) far enough to
// tell "inside a message" from "between messages", and when the message
// under way began. It keeps a few bytes of the current header line, never
// the message.
type framer struct {
	// lineEnd is set when the last byte scanned ended a header line that
	// was not the last (see holdLF).
	lineEnd bool
	last    byte // the last byte scanned
	state   uint8
	start   time.Time // first byte of the message under way
	line    [40]byte  // the start of the current header line
	n       int       // bytes of the current line seen (may exceed len(line))
	length  int64     // Content-Length of the message under way
	body    int64     // body bytes still to come
}

const (
	between uint8 = iota // between messages (CRLF keepalives allowed)
	headers              // reading the start line and headers
	body                 // reading the body
)

// inMessage reports whether a message is under way.
func (f *framer) inMessage() bool { return f.state != between }

// scan follows b, read at now.
func (f *framer) scan(b []byte, now time.Time) {
	if len(b) == 0 {
		return
	}
	f.lineEnd = false
	f.last = b[len(b)-1]
	for i := 0; i < len(b); i++ {
		switch f.state {
		case between:
			if b[i] == '\r' || b[i] == '\n' {
				continue // keepalive
			}
			f.state, f.start, f.n, f.length = headers, now, 0, 0
			f.add(b[i])
		case headers:
			if b[i] == '\n' {
				f.endLine()
				f.lineEnd = f.state == headers && i == len(b)-1
				continue
			}
			f.add(b[i])
		case body:
			take := min(int64(len(b)-i), f.body)
			f.body -= take
			i += int(take) - 1
			if f.body == 0 {
				f.state = between
			}
		}
	}
}

func (f *framer) add(c byte) {
	if c == '\r' {
		return
	}
	if f.n < len(f.line) {
		f.line[f.n] = c
	}
	f.n++
}

// endLine ends a header line: an empty one ends the headers.
func (f *framer) endLine() {
	if f.n == 0 {
		f.state = between
		if f.length > 0 {
			f.state, f.body = body, f.length
		}
		return
	}
	if v, ok := contentLength(f.line[:min(f.n, len(f.line))]); ok {
		f.length = v
	}
	f.n = 0
}

// contentLength reads a Content-Length (or compact l) header line's value.
func contentLength(line []byte) (int64, bool) {
	name, rest, ok := cut(line, ':')
	if !ok {
		return 0, false
	}
	name = trim(name)
	if !equalFold(name, "content-length") && !equalFold(name, "l") {
		return 0, false
	}
	var v int64
	digits := 0
	for _, c := range trim(rest) {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
		digits++
	}
	return v, digits > 0
}

func cut(b []byte, sep byte) (before, after []byte, ok bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// crlf returns b, read next, with every bare LF that ends a start or
// header line made CRLF (the body is left as it is). RFC 3261 §7 asks for
// CRLF and sipgo's parser takes nothing else, but LF-only clients exist and
// are read as they meant (RFC 3261 §7.3.1 is lenient on whitespace the same
// way). The framer is followed on a copy, so f is left as it was. It
// allocates only when there is a bare LF to rewrite.
func (f *framer) crlf(b []byte) []byte {
	if !anyBareLF(b, f.last) {
		return b
	}
	g := *f
	prev := g.last
	var out []byte // nil until the first bare LF in a header line
	for i := 0; i < len(b); {
		if g.state == body {
			take := int(min(int64(len(b)-i), g.body))
			if out != nil {
				out = append(out, b[i:i+take]...)
			}
			g.scan(b[i:i+take], time.Time{})
			i += take
			prev = b[i-1]
			continue
		}
		if g.state == headers && b[i] == '\n' && prev != '\r' {
			if out == nil {
				out = append(make([]byte, 0, len(b)+len(b)/8), b[:i]...)
			}
			out = append(out, '\r')
		}
		if out != nil {
			out = append(out, b[i])
		}
		g.scan(b[i:i+1], time.Time{})
		prev = b[i]
		i++
	}
	if out == nil {
		return b
	}
	return out
}

// anyBareLF reports whether b, read after the byte prev, has an LF with no
// CR before it anywhere (body or not): the quick test that spares crlf's
// byte-by-byte pass for the usual CRLF stream.
func anyBareLF(b []byte, prev byte) bool {
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		i += j
		if i == 0 && prev != '\r' || i > 0 && b[i-1] != '\r' {
			return true
		}
	}
}

// holdLF delivers a stream to sipgo's parser, read by read, keeping back the
// LF that ends a read in the middle of a message's headers until the next
// read. sipgo's stream parser takes a header line as complete when its LF
// ends the data it has, and so refuses a folded continuation line (RFC 3261
// §7.3.1: a line starting with a space or tab) that arrives in the next
// read: "field name with no value". Held back, the LF reaches it with the
// bytes after it. A header line is never the last thing a peer sends (the
// empty line follows), so nothing is held for good.
//
// It also makes bare LFs in start and header lines CRLF (framer.crlf); the
// bytes that then do not fit the reader's buffer wait for its next read.
type holdLF struct {
	f       framer
	held    bool   // an LF is held back
	pending []byte // rewritten bytes that did not fit the reader's buffer
}

// read fills b as sipgo's reader wants it, from src (the connection's
// Read): the held LF first, then bytes left over from the last rewrite or
// else a fresh read, rewritten.
func (h *holdLF) read(b []byte, src func([]byte) (int, error), now func() time.Time) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	off := 0
	if h.held {
		b[0], off, h.held = '\n', 1, false
		if len(b) == 1 {
			return 1, nil
		}
	}
	if len(h.pending) > 0 {
		n := copy(b[off:], h.pending)
		h.pending = h.pending[n:]
		return h.deliver(b, off, off+n, now(), false), nil
	}
	n, err := src(b[off:])
	in := b[off : off+n]
	if fixed := h.f.crlf(in); len(fixed) != len(in) {
		k := copy(in[:cap(in)], fixed)
		if k < len(fixed) {
			h.pending = append(h.pending[:0], fixed[k:]...)
		}
		n = k
	}
	return h.deliver(b, off, off+n, now(), err != nil), err
}

// deliver scans b[from:n], about to be delivered (b[:from] is the held LF,
// scanned when it was read), and returns how many bytes of b to deliver:
// all but a header line's final LF, held for the next read, unless final.
func (h *holdLF) deliver(b []byte, from, n int, now time.Time, final bool) int {
	h.f.scan(b[from:n], now)
	if n > from && h.f.lineEnd && !final {
		n--
		h.held = true
	}
	return n
}
