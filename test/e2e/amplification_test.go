package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// amplificationProbes are the smallest requests a stranger can send that
// sipward answers, one of each kind of answer: a challenge (INVITE,
// REGISTER, OPTIONS-less methods through authn), the edge's own 200 to
// OPTIONS, 405, 481, 400 and 505. Header values are as short as the parser
// takes; every probe has what a response must copy (Via, From, To, Call-ID,
// CSeq), since one without them gets no answer at all.
func amplificationProbes(edge string) map[string]string {
	req := func(method, ruri string, extra ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s SIP/2.0\r\nv:SIP/2.0/UDP a;branch=z9hG4bKa\r\nf:<sip:a@a>;tag=a\r\nt:<sip:b@a>\r\ni:%s\r\nCSeq:1 %s\r\nl:0\r\n",
			method, ruri, method, method)
		for _, h := range extra {
			b.WriteString(h + "\r\n")
		}
		b.WriteString("\r\n")
		return b.String()
	}
	return map[string]string{
		"INVITE (407 challenge)":   req("INVITE", "sip:1@a"),
		"REGISTER (401 challenge)": req("REGISTER", "sip:a"),
		"OPTIONS (200 with Allow)": req("OPTIONS", "sip:a"),
		"MESSAGE (407)":            req("MESSAGE", "sip:1@a"),
		"BYE in no dialog (481)":   strings.Replace(req("BYE", "sip:1@a"), "t:<sip:b@a>", "t:<sip:b@a>;tag=b", 1),
		"OPTIONS Max-Forwards 0":   req("OPTIONS", "sip:a", "Max-Forwards:0"),
		"INVITE to a tel URI":      req("INVITE", "tel:1"),
		"version 3 (505)":          strings.Replace(req("OPTIONS", "sip:a"), "SIP/2.0\r\n", "SIP/3.0\r\n", 1),
		"unsupported Require":      req("INVITE", "sip:1@a", "Require:x"),
	}
}

// TestAmplification: to a stranger on UDP sipward never sends more than
// twice the bytes it received, whichever request it answers: an answer that
// would be bigger is not sent (sipward_edge_amplification_drops_total). A
// request as a real phone or PBX sends it is big enough to be answered
// (the challenge below). README § firewall states the factor measured here.
func TestAmplification(t *testing.T) {
	n := start(t, "")
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.14")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, err := net.ResolveUDPAddr("udp", n.SIP)
	if err != nil {
		t.Fatal(err)
	}
	worst, worstName := 0.0, ""
	for name, probe := range amplificationProbes(n.SIP) {
		if _, err := conn.WriteToUDP([]byte(probe), to); err != nil {
			t.Fatal(err)
		}
		out := 0
		buf := make([]byte, 65535)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			k, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				break
			}
			out += k
		}
		ratio := float64(out) / float64(len(probe))
		t.Logf("%-26s in %3d B, out %4d B: %.2f×", name, len(probe), out, ratio)
		if ratio > worst {
			worst, worstName = ratio, name
		}
	}
	t.Logf("worst: %.2f× (%s)", worst, worstName)
	if worst >= 2 {
		t.Errorf("sipward sent %.2f× what it received to a stranger (%s); want under 2×", worst, worstName)
	}
	if v := n.metric(t, "sipward_edge_amplification_drops_total"); v == 0 {
		t.Error("no answer was held back: the probes are meant to include ones that would amplify")
	}
	// A phone's INVITE, as phones send it, gets its challenge.
	u := newUAC(t, "127.0.0.15", n.SIP)
	u.send(u.invite(newCall("1001", "442071234567")))
	if _, res := u.final("INVITE", 5*time.Second); res.StatusCode != 407 {
		t.Errorf("a phone's INVITE from a stranger's address: %d, want the 407 challenge", res.StatusCode)
	}
}
