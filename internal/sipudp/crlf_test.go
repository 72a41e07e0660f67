package sipudp

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestCRLF: LF-only start and header lines become CRLF, the body stays as
// it came, and a CRLF datagram is passed through untouched, unallocated.
func TestCRLF(t *testing.T) {
	tests := []struct{ in, want string }{
		{"OPTIONS sip:a SIP/2.0\nCall-ID: x\nContent-Length: 5\n\nab\ncd",
			"OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\nContent-Length: 5\r\n\r\nab\ncd"},
		{"OPTIONS sip:a SIP/2.0\r\nCall-ID: x\nl: 2\r\n\r\n\n\n",
			"OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\nl: 2\r\n\r\n\n\n"},
		{"OPTIONS sip:a SIP/2.0\nCall-ID: x\n", "OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n"},
		{"\n", "\r\n"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := string(crlf([]byte(tt.in))); got != tt.want {
			t.Errorf("crlf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	msg := []byte("OPTIONS sip:a SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>\n" +
		"Call-ID: lf\nCSeq: 1 OPTIONS\nContent-Length: 5\n\nab\ncd")
	m, err := sip.NewParser().ParseSIP(crlf(msg))
	if err != nil || string(m.Body()) != "ab\ncd" {
		t.Fatalf("sipgo parses the rewritten datagram: %v", err)
	}
	ok := []byte("OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() { crlf(ok) }); n != 0 {
		t.Errorf("a CRLF datagram costs %v allocations", n)
	}
}

// BenchmarkCRLF: the cost of the bare-LF check on a CRLF INVITE, every
// datagram's.
func BenchmarkCRLF(b *testing.B) {
	msg := []byte("INVITE sip:442071230001@edge.example.net SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK776asdhds\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:1001@pbx.example.com>;tag=1928301774\r\nTo: <sip:442071230001@edge.example.net>\r\n" +
		"Call-ID: a84b4c76e66710@pbx.example.com\r\nCSeq: 314159 INVITE\r\nContact: <sip:1001@203.0.113.10:5060>\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: 129\r\n\r\nv=0\r\no=- 1 1 IN IP4 203.0.113.10\r\ns=-\r\n" +
		"c=IN IP4 203.0.113.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")
	b.ReportAllocs()
	for b.Loop() {
		crlf(msg)
	}
}
