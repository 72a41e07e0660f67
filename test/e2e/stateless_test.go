package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricValue returns a metric's value from /metrics (name as exposed,
// labels included).
func (n *node) metricValue(name string) (float64, error) {
	res, err := http.Get(n.HTTP + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// metricOr returns a metric's value, or def when it cannot be read.
func (n *node) metricOr(name string, def float64) float64 {
	if v, err := n.metricValue(name); err == nil {
		return v
	}
	return def
}

// metric returns a metric's value from /metrics; the test fails without one.
func (n *node) metric(t *testing.T, name string) float64 {
	t.Helper()
	v, err := n.metricValue(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestStatelessAnswers: challenges, registrations and OPTIONS over UDP are
// answered without a transaction, and still behave as RFC 3261 asks of one:
// a retransmitted INVITE gets the same To tag, the ACK of the 407 gets no
// answer and starts nothing, and a retransmitted REGISTER with credentials
// gets the very bytes of the first answer instead of a replay or CSeq-order
// refusal.
func TestStatelessAnswers(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	pw := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "3001"})["password"].(string)
	waitSnapshot(t, n)
	before := n.metric(t, "sipward_edge_stateless_total")

	// A challenge, retransmitted: the same To tag both times.
	u := newUAC(t, "127.0.0.6", n.SIP)
	c := newCall("3001", "442071234567")
	inv := u.invite(c)
	u.send(inv)
	_, first := u.final("INVITE", 3*time.Second)
	u.send(inv)
	_, again := u.final("INVITE", 3*time.Second)
	tag1, _ := first.To().Params.Get("tag")
	tag2, _ := again.To().Params.Get("tag")
	if first.StatusCode != 407 || again.StatusCode != 407 || tag1 == "" || tag1 != tag2 {
		t.Fatalf("INVITE and its retransmission: %d tag %q, %d tag %q; want 407 twice with one tag", first.StatusCode, tag1, again.StatusCode, tag2)
	}
	acks := n.metric(t, "sipward_edge_stateless_acks_total")
	u.ack(c, first)
	if raw, m := u.recv(300 * time.Millisecond); m != nil {
		t.Fatalf("the ACK of a 407 was answered:\n%s", raw)
	}
	if got := n.metric(t, "sipward_edge_stateless_acks_total"); got != acks+1 {
		t.Errorf("sipward_edge_stateless_acks_total %v after the ACK of a 407, want %v", got, acks+1)
	}
	if got := n.metric(t, "sipward_edge_stateless_total"); got < before+2 {
		t.Errorf("sipward_edge_stateless_total %v after two challenges, want >= %v", got, before+2)
	}

	// A REGISTER with credentials, retransmitted: the same answer, byte for byte.
	r := newUAC(t, "127.0.0.7", n.SIP)
	reg := func(cseq int, auth string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKreg%d;rport\r\nMax-Forwards: 70\r\n", r.to, r.local, cseq)
		fmt.Fprintf(&b, "From: <sip:3001@%s>;tag=rt1\r\nTo: <sip:3001@%s>\r\nCall-ID: stateless-reg\r\nCSeq: %d REGISTER\r\n", r.to, r.to, cseq)
		fmt.Fprintf(&b, "Contact: <sip:3001@%s>\r\nExpires: 300\r\n", r.local)
		if auth != "" {
			fmt.Fprintf(&b, "Authorization: %s\r\n", auth)
		}
		b.WriteString("Content-Length: 0\r\n\r\n")
		return b.String()
	}
	r.cseq = 1
	r.send(reg(1, ""))
	_, ch := r.final("REGISTER", 3*time.Second)
	if ch.StatusCode != 401 {
		t.Fatalf("REGISTER without credentials: %d, want 401", ch.StatusCode)
	}
	r.cseq = 2
	withAuth := reg(2, strings.Replace(digestAuth(ch, "3001", pw, "REGISTER", "sip:"+r.to.String(), 1), "Proxy-", "", 1))
	r.send(withAuth)
	raw1, ok := r.final("REGISTER", 3*time.Second)
	r.send(withAuth)
	raw2, again2 := r.final("REGISTER", 3*time.Second)
	if ok.StatusCode != 200 || again2.StatusCode != 200 || raw1 != raw2 {
		t.Fatalf("REGISTER and its retransmission: %d, %d (want 200 twice, the same bytes)\n%s\n---\n%s", ok.StatusCode, again2.StatusCode, raw1, raw2)
	}
	if got := n.metric(t, "sipward_edge_absorbed_retransmissions_total"); got != 1 {
		t.Errorf("sipward_edge_absorbed_retransmissions_total %v, want 1", got)
	}
	if got := n.metric(t, "sipward_registrar_bindings"); got != 1 {
		t.Errorf("sipward_registrar_bindings %v, want 1", got)
	}

	// OPTIONS from anyone: 200 with Allow.
	o := newUAC(t, "127.0.0.6", n.SIP)
	o.cseq = 7
	o.send(fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKopt7;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:ping@127.0.0.6>;tag=o1\r\nTo: <sip:%s>\r\nCall-ID: stateless-opt\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n", o.to, o.local, o.to))
	_, res := o.final("OPTIONS", 3*time.Second)
	if res.StatusCode != 200 || res.GetHeader("Allow") == nil {
		t.Fatalf("OPTIONS: %d, want 200 with Allow", res.StatusCode)
	}
	if tag, _ := res.To().Params.Get("tag"); !strings.HasPrefix(tag, "swsl-") {
		t.Errorf("OPTIONS answered with To tag %q: not the stateless path", tag)
	}
}

// TestRFC2543RequestIsServed: a request whose Via has no RFC 3261 branch is
// matched to its transaction the RFC 2543 way: it is answered (here an
// in-dialog OPTIONS for no call: 481), and its retransmission gets the same
// answer, byte for byte, from that transaction.
func TestRFC2543RequestIsServed(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	u := newUAC(t, "127.0.0.2", n.SIP)
	req := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=old2543x1\r\nMax-Forwards: 70\r\n"+
		"From: <sip:a@127.0.0.2>;tag=f2543\r\nTo: <sip:b@127.0.0.1>;tag=t2543\r\nCall-ID: rfc2543@test\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n",
		n.SIP, u.local, u.cseq)
	var first string
	// requests served by the chain (this in-dialog one is answered 481 by the edge itself)
	served := `sipward_edge_requests_total{answer="4xx",method="OPTIONS"}`
	for i := range 2 {
		u.send(req)
		raw, res := u.final("OPTIONS", 3*time.Second)
		if res.StatusCode != 481 {
			t.Fatalf("OPTIONS without an RFC 3261 branch: %d, want 481", res.StatusCode)
		}
		if i == 0 {
			first = raw
		} else if raw != first {
			t.Fatalf("the retransmission got another answer:\n%s\nfirst:\n%s", raw, first)
		}
	}
	// The edge counts a request once its answer is written: the client can
	// read the answer first. Wait for the count, then check it is one.
	deadline := time.Now().Add(5 * time.Second)
	for n.metricOr(served, 0) < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := n.metric(t, served); got != 1 {
		t.Fatalf("%s = %v: the retransmission was served again instead of answered by its transaction", served, got)
	}
}
