package sipudp

import (
	"bytes"

	"github.com/emiago/sipgo/sip"
)

// rawMsg is what scanRaw learns from a datagram without parsing it.
type rawMsg struct {
	method      sip.RequestMethod
	toTag       []byte // nil: the To header has no tag (or no To header was seen)
	credentials bool   // an Authorization or Proxy-Authorization header
}

var rawMethods = [...]sip.RequestMethod{sip.INVITE, sip.ACK, sip.REGISTER, sip.OPTIONS}

// scanRaw reads the method of a request and, from its header lines, the To
// tag and whether it carries credentials. It is a sieve, not a parser: it
// allocates nothing and its answer is checked again on the parsed request.
// ok is false for responses and for methods never answered statelessly.
func scanRaw(data []byte) (m rawMsg, ok bool) {
	for _, meth := range rawMethods {
		if len(data) > len(meth) && string(data[:len(meth)]) == string(meth) && data[len(meth)] == ' ' {
			m.method, ok = meth, true
			break
		}
	}
	if !ok {
		return m, false
	}
	i := bytes.IndexByte(data, '\n')
	for i >= 0 && i+1 < len(data) {
		line := data[i+1:]
		end := bytes.IndexByte(line, '\n')
		if end >= 0 {
			line = line[:end]
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break // end of headers
		}
		name, value, found := bytes.Cut(line, []byte{':'})
		if found {
			name = bytes.TrimRight(name, " \t")
			switch {
			case equalFoldASCII(name, "to") || equalFoldASCII(name, "t"):
				m.toTag = rawTag(value)
			case equalFoldASCII(name, "authorization") || equalFoldASCII(name, "proxy-authorization"):
				m.credentials = true
			}
		}
		if end < 0 {
			break
		}
		i += 1 + end
	}
	return m, true
}

// rawTag returns the value of the tag parameter of a To header value (after
// the URI's closing '>' when there is one), or nil.
func rawTag(v []byte) []byte {
	if j := bytes.LastIndexByte(v, '>'); j >= 0 {
		v = v[j+1:]
	}
	for len(v) > 0 {
		j := bytes.IndexByte(v, ';')
		if j < 0 {
			return nil
		}
		v = v[j+1:]
		p := bytes.TrimLeft(v, " \t")
		if len(p) < 3 || !equalFoldASCII(p[:3], "tag") {
			continue
		}
		if q := bytes.TrimLeft(p[3:], " \t"); len(q) > 0 && q[0] == '=' {
			p = bytes.TrimLeft(q[1:], " \t")
			if k := bytes.IndexAny(p, "; \t\r"); k >= 0 {
				p = p[:k]
			}
			if len(p) == 0 {
				return nil
			}
			return p
		}
	}
	return nil
}

func equalFoldASCII(b []byte, s string) bool {
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
