package sipnat

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sipward/sipward/internal/siptest"
)

func TestPrivate(t *testing.T) {
	for a, want := range map[string]bool{
		"10.1.2.3": true, "172.16.0.1": true, "172.32.0.1": false, "192.168.1.20": true, "100.64.0.1": true,
		"100.128.0.1": false, "169.254.1.1": true, "203.0.113.7": false, "127.0.0.1": false,
		"fd00::1": true, "fe80::1": true, "2001:db8::1": false, "::ffff:10.0.0.1": true,
	} {
		if got := Private(netip.MustParseAddr(a)); got != want {
			t.Errorf("Private(%s) = %v", a, got)
		}
	}
}

func TestDetect(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.7:40000")
	tests := []struct {
		name, via, contact, transport string
		want                          bool
		why                           string
	}{
		{"public, as it says", "203.0.113.7:40000", "sip:a@203.0.113.7:40000", "udp", false, ""},
		{"private Via", "192.168.1.20:5060", "sip:a@192.168.1.20:5060", "udp", true, "Via 192.168.1.20 is not the source 203.0.113.7"},
		{"port mapped", "203.0.113.7:5060", "sip:a@203.0.113.7:5060", "udp", true, "Via port 5060 is not the source port 40000"},
		{"port differs over tcp", "203.0.113.7:5060", "sip:a@203.0.113.7:5060", "tcp", false, ""},
		{"contact elsewhere", "203.0.113.7:40000", "sip:a@198.51.100.9:5060", "udp", true, "Contact 198.51.100.9 is not the source 203.0.113.7"},
		{"host names say nothing", "pbx.example.com:5060", "sip:a@pbx.example.com", "udp", false, ""},
	}
	for _, tt := range tests {
		msg := siptest.Req{Via: tt.via, Contact: tt.contact}.Msg(t)
		got, why := Detect(src, tt.transport, msg)
		if got != tt.want || why != tt.why {
			t.Errorf("%s: %v %q, want %v %q", tt.name, got, why, tt.want, tt.why)
		}
	}
}

func TestFixSDP(t *testing.T) {
	const offer = "v=0\r\no=- 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n" +
		"m=audio 40000 RTP/AVP 0\r\nc=IN IP4 10.0.0.5\r\nm=audio 40002 RTP/AVP 0\r\nc=IN IP4 198.51.100.9\r\n" +
		"m=video 40004 RTP/AVP 96\r\nc=IN IP4 224.2.1.1/127\r\n"
	to := netip.MustParseAddr("203.0.113.7")
	got, from := FixSDP([]byte(offer), to, false)
	want := "v=0\r\no=- 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 203.0.113.7\r\nt=0 0\r\n" +
		"m=audio 40000 RTP/AVP 0\r\nc=IN IP4 203.0.113.7\r\nm=audio 40002 RTP/AVP 0\r\nc=IN IP4 198.51.100.9\r\n" +
		"m=video 40004 RTP/AVP 96\r\nc=IN IP4 224.2.1.1/127\r\n"
	if string(got) != want || from != "192.168.1.20" {
		t.Errorf("private only: %q from %q\nwant %q", got, from, want)
	}
	got, _ = FixSDP([]byte(offer), to, true)
	if !strings.Contains(string(got), "m=audio 40002 RTP/AVP 0\r\nc=IN IP4 203.0.113.7\r\n") || !strings.Contains(string(got), "224.2.1.1/127") {
		t.Errorf("always: the public address was kept:\n%s", got)
	}
	if got, from := FixSDP([]byte("v=0\nc=IN IP4 203.0.113.7\n"), to, true); string(got) != "v=0\nc=IN IP4 203.0.113.7\n" || from != "" {
		t.Errorf("already the source: %q %q", got, from)
	}
	if got, _ := FixSDP([]byte("v=0\nc=IN IP4 10.0.0.1"), netip.MustParseAddr("2001:db8::7"), false); string(got) != "v=0\nc=IN IP6 2001:db8::7" {
		t.Errorf("to IPv6, no final newline: %q", got)
	}
	in := []byte(offer)
	FixSDP(in, to, true)
	if string(in) != offer {
		t.Errorf("the input was modified")
	}
}
