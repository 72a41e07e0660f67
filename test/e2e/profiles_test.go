package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestLiveProfileReachesCalls: a SIP user that leaves its protocol to its
// profile follows the profile's edits on the running binary. While the
// profile says tls, the user's REGISTER over UDP is refused (403 Transport
// not allowed); once the profile says udp, the next REGISTER over UDP is
// accepted — no edit of the user, no restart. The API shows where the value
// comes from.
func TestLiveProfileReachesCalls(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := start(t, "", "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32")
	prof := id(n.mustAPI(t, 201, "POST", "/profiles", map[string]any{"name": "tls only", "protocol": "tls"}))
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	user := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "3001", "profile_id": prof})
	pw := user["password"].(string)
	if e := user["effective"].(map[string]any)["protocol"]; fmt.Sprint(e) != "map[from:profile value:tls]" {
		t.Errorf("effective protocol of the new user: %v, want tls from the profile", e)
	}
	waitSnapshot(t, n)

	u := newUAC(t, "127.0.0.8", n.SIP)
	cseq := 0
	if res := u.register(t, "3001", pw, "profile-1", &cseq, []string{"<sip:3001@127.0.0.8:5060>"}, "300"); res.StatusCode != 403 || res.Reason != "Transport not allowed" {
		t.Fatalf("REGISTER over UDP while the profile says tls: %d %q, want 403 \"Transport not allowed\"", res.StatusCode, res.Reason)
	}

	n.mustAPI(t, 200, "PATCH", fmt.Sprintf("/profiles/%d", prof), map[string]any{"protocol": "udp"})
	waitSnapshot(t, n)
	start := time.Now()
	if res := u.register(t, "3001", pw, "profile-2", &cseq, []string{"<sip:3001@127.0.0.8:5060>"}, "300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER over UDP once the profile says udp: %d %q, want 200", res.StatusCode, res.Reason)
	}
	got := n.mustAPI(t, 200, "GET", fmt.Sprintf("/sip-users/%d", id(user)), nil)
	if got["protocol"] != nil || fmt.Sprint(got["effective"].(map[string]any)["protocol"]) != "map[from:profile value:udp]" {
		t.Errorf("the user after the profile's edit: own %v, effective %v", got["protocol"], got["effective"])
	}
	t.Logf("registered %v after the snapshot caught up", time.Since(start).Round(time.Millisecond))
}
