// Package sipnorm undoes what sipgo's parser leaves of the linear white
// space RFC 3261 allows in header parameters (§7.3.1, §25.1: "tag = 1234"
// and ";  tag=1234" are the tag parameter): sipgo keeps the spaces in the
// parameter's name and value, so a From tag written so (RFC 4475 §3.1.1.1
// wsinv) is not found — not by sipward's stages, and not by sipgo's own
// transaction layer, which then refuses an RFC 2543 request it cannot key.
//
// Parser is sipgo's parser with the From, To, Via and Contact parsers
// wrapped to trim their parameters, so every transport (the UDP
// transport's demultiplexer, sipgo's TCP and TLS readers) parses the same
// way, before any transaction is matched.
package sipnorm

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Parser returns a sipgo parser whose From, To, Via and Contact headers
// come with their parameters' names and values trimmed of white space.
func Parser() *sip.Parser {
	def := sip.DefaultHeadersParser()
	m := make(map[string]sip.HeaderParser, len(def))
	for name, p := range def {
		m[name] = p
	}
	for _, name := range []string{"f", "from", "t", "to", "v", "via", "m", "contact"} {
		if p := def[name]; p != nil {
			m[name] = trimmed(p)
		}
	}
	return sip.NewParser(sip.WithHeadersParsers(m))
}

// trimmed wraps a header parser so that its header's parameters are trimmed.
func trimmed(p sip.HeaderParser) sip.HeaderParser {
	return func(name []byte, data string) (sip.Header, error) {
		h, err := p(name, data)
		if err == nil {
			Header(h)
		}
		return h, err
	}
}

// Header trims the white space around the names and values of h's
// parameters, for the header types that have them; others are left alone.
// Nothing is allocated when there is no such space.
func Header(h sip.Header) {
	switch h := h.(type) {
	case *sip.FromHeader:
		trim(h.Params)
	case *sip.ToHeader:
		trim(h.Params)
	case *sip.ViaHeader:
		trim(h.Params)
	case *sip.ContactHeader:
		trim(h.Params)
	}
}

func trim(ps sip.HeaderParams) {
	for i := range ps {
		ps[i].K = strings.Trim(ps[i].K, " \t")
		ps[i].V = strings.Trim(ps[i].V, " \t")
	}
}
