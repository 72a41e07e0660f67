package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestNATPing: a user with NAT ping enabled gets OPTIONS at the address it
// registered from and its registration shows the round-trip latency; with
// "timeout", a device that stops answering loses its binding.
func TestNATPing(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core, "--nat-ping-interval", "1s")
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	pinged := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "4001", "nat_ping": "enabled"})
	strict := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "4002", "nat_ping": "timeout"})
	waitSnapshot(t, n)

	phone := newUAC(t, "127.0.0.10", n.SIP)
	cseq := 0
	if res := phone.register(t, "4001", pinged["password"].(string), "p1", &cseq, []string{"<sip:4001@10.1.2.3:5060>"}, "300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER 4001: %d", res.StatusCode)
	}
	dead := newUAC(t, "127.0.0.11", n.SIP)
	cseq2 := 0
	if res := dead.register(t, "4002", strict["password"].(string), "p2", &cseq2, []string{"<sip:4002@10.1.2.4:5060>"}, "300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER 4002: %d", res.StatusCode)
	}
	// The live phone answers the ping that reaches the address it registered from.
	_, m := phone.recv(5 * time.Second)
	ping, ok := m.(*sip.Request)
	if !ok || ping.Method != sip.OPTIONS {
		t.Fatalf("phone got %v, want an OPTIONS ping", m)
	}
	phone.answer(ping, 200)
	waitFor(t, "the latency to show", func() bool {
		_, r := n.api(t, "GET", "/registrations?username=4001", nil)
		items, _ := r["items"].([]any)
		return len(items) == 1 && items[0].(map[string]any)["latency_ms"] != nil
	})
	// The silent device (timeout mode) is dropped after its ping goes unanswered.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, r := n.api(t, "GET", "/registrations?username=4002", nil)
		if r["total"].(float64) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the binding of a device that stopped answering pings (nat_ping timeout) was not removed")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
