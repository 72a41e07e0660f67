package siptcp

import "time"

// framer follows the framing of a SIP stream (RFC 3261 §18.3: headers
// ended by an empty line, then Content-Length bytes of body) far enough to
// tell "inside a message" from "between messages", and when the message
// under way began. It keeps a few bytes of the current header line, never
// the message.
type framer struct {
	// lineEnd is set when the last byte scanned ended a header line that
	// was not the last (see holdLF).
	lineEnd bool
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
	if len(b) > 0 {
		f.lineEnd = false
	}
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

// holdLF delivers a stream to sipgo's parser, read by read, keeping back the
// LF that ends a read in the middle of a message's headers until the next
// read. sipgo's stream parser takes a header line as complete when its LF
// ends the data it has, and so refuses a folded continuation line (RFC 3261
// §7.3.1: a line starting with a space or tab) that arrives in the next
// read: "field name with no value". Held back, the LF reaches it with the
// bytes after it. A header line is never the last thing a peer sends (the
// empty line follows), so nothing is held for good.
type holdLF struct {
	f    framer
	held bool // an LF is held back
}

// pass takes the bytes of one read (b[off:off+n], with off 1 when an LF was
// held: the caller put it at b[0]) and returns how many of b to deliver.
func (h *holdLF) pass(b []byte, off, n int, now time.Time, final bool) int {
	h.f.scan(b[off:off+n], now)
	n += off
	h.held = false
	if n > 0 && h.f.lineEnd && !final {
		n--
		h.held = true
	}
	return n
}
