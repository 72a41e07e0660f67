package sipnorm

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestParser: parameters written with the white space RFC 3261 allows are
// found by name, over a datagram and over a stream.
func TestParser(t *testing.T) {
	raw := "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;  branch =  z9hG4bK1\r\nFrom: <sip:a@b> ;  tag = 98asjd8\r\n" +
		"TO :\r\n sip:c@d ;   tag    = 1918181833n\r\nm: <sip:a@h> ; expires = 60\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	p := Parser()
	whole, err := p.ParseSIP([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	var streamed []sip.Message
	if err := p.NewSIPStream().ParseSIPStream([]byte(raw), func(m sip.Message) { streamed = append(streamed, m) }); err != nil || len(streamed) != 1 {
		t.Fatalf("stream: %v, %d messages", err, len(streamed))
	}
	for name, m := range map[string]sip.Message{"datagram": whole, "stream": streamed[0]} {
		req := m.(*sip.Request)
		if tag, _ := req.From().Params.Get("tag"); tag != "98asjd8" {
			t.Errorf("%s: From tag %q", name, tag)
		}
		if tag, _ := req.To().Params.Get("tag"); tag != "1918181833n" {
			t.Errorf("%s: To tag %q", name, tag)
		}
		if b, _ := req.Via().Params.Get("branch"); b != "z9hG4bK1" {
			t.Errorf("%s: branch %q", name, b)
		}
		if e, _ := req.Contact().Params.Get("expires"); e != "60" {
			t.Errorf("%s: Contact expires %q", name, e)
		}
	}
	// sipgo's own parser is left as it was.
	plain, _ := sip.ParseMessage([]byte(raw))
	if _, ok := plain.(*sip.Request).From().Params.Get("tag"); ok {
		t.Error("the default parser changed too")
	}
}

func TestHeaderAllocatesNothing(t *testing.T) {
	h := &sip.FromHeader{Params: sip.HeaderParams{{K: "tag", V: "1"}}}
	if n := testing.AllocsPerRun(100, func() { Header(h) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
