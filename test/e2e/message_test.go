package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestSendMessage: a MESSAGE sent through the API reaches the SIP user's
// registered device at the address it registered from; an unregistered
// user gets 409, another account's user 404.
func TestSendMessage(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	user := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "3001"})
	other := id(n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "3002"}))
	waitSnapshot(t, n)
	if st, m := n.api(t, "POST", fmt.Sprintf("/sip-users/%d/messages", other), map[string]any{"text": "hi"}); st != 409 {
		t.Errorf("unregistered user: %d %v, want 409", st, m)
	}
	phone := newUAC(t, "127.0.0.9", n.SIP)
	cseq := 0
	if res := phone.register(t, "3001", user["password"].(string), "m1", &cseq, []string{"<sip:3001@192.168.1.20:5060>"}, "300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	type result struct {
		st int
		m  map[string]any
	}
	done := make(chan result, 1)
	go func() {
		st, m := n.api(t, "POST", fmt.Sprintf("/sip-users/%d/messages", id(user)), map[string]any{"text": "Your call is ready", "from": "support"})
		done <- result{st, m}
	}()
	_, msg := phone.recv(5 * time.Second)
	req, ok := msg.(*sip.Request)
	if !ok || req.Method != sip.MESSAGE || string(req.Body()) != "Your call is ready" || req.From().Address.User != "support" {
		t.Fatalf("phone got %v, want the MESSAGE", msg)
	}
	phone.answer(req, 200)
	r := <-done
	devs, _ := r.m["devices"].([]any)
	if r.st != 200 || len(devs) != 1 || devs[0].(map[string]any)["status"].(float64) != 200 {
		t.Errorf("API answer: %d %v", r.st, r.m)
	}
	if st, _ := n.api(t, "POST", "/sip-users/999/messages", map[string]any{"text": "x"}); st != 404 {
		t.Errorf("unknown user: %d, want 404", st)
	}
}
