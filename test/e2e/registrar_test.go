package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// register sends one REGISTER (answering a 401 with credentials) and returns the final answer.
func (u *uac) register(t *testing.T, user, pass, callID string, cseq *int, contacts []string, expires string) *sip.Response {
	t.Helper()
	build := func(auth string) string {
		*cseq++
		u.cseq = uint32(*cseq)
		var b strings.Builder
		fmt.Fprintf(&b, "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n", u.to, u.local, branch())
		fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=r%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: %d REGISTER\r\n", user, u.to, callID, user, u.to, callID, *cseq)
		for _, c := range contacts {
			fmt.Fprintf(&b, "Contact: %s\r\n", c)
		}
		if expires != "" {
			fmt.Fprintf(&b, "Expires: %s\r\n", expires)
		}
		if auth != "" {
			fmt.Fprintf(&b, "Authorization: %s\r\n", auth)
		}
		b.WriteString("Content-Length: 0\r\n\r\n")
		return b.String()
	}
	u.send(build(""))
	_, ch := u.final("REGISTER", 3*time.Second)
	if ch.StatusCode != 401 {
		return ch
	}
	u.send(build(strings.Replace(digestAuth(ch, user, pass, "REGISTER", "sip:"+u.to.String(), 1), "Proxy-", "", 1)))
	_, res := u.final("REGISTER", 3*time.Second)
	return res
}

// TestRegistrarRules: expiry bounds (423 with Min-Expires), several
// contacts, un-register of one and of all (Contact: *), and bindings that
// survive a restart.
func TestRegistrarRules(t *testing.T) {
	dir := t.TempDir()
	core := newUAS(t, "127.0.0.1")
	n := start(t, dir, "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32")
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	pw := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "2001"})["password"].(string)
	waitSnapshot(t, n)
	u := newUAC(t, "127.0.0.8", n.SIP)
	cseq := 0
	ct := func(port int) string { return fmt.Sprintf("<sip:2001@10.0.0.5:%d>", port) }

	if res := u.register(t, "2001", pw, "reg1", &cseq, []string{ct(5060)}, "30"); res.StatusCode != 423 || res.GetHeader("Min-Expires") == nil {
		t.Fatalf("Expires 30: %d, want 423 with Min-Expires", res.StatusCode)
	}
	if res := u.register(t, "2001", "wrong-password-x", "reg1", &cseq, []string{ct(5060)}, "300"); res.StatusCode != 401 {
		t.Fatalf("wrong password: %d, want 401", res.StatusCode)
	}
	res := u.register(t, "2001", pw, "reg1", &cseq, []string{ct(5060), ct(5062)}, "300")
	if res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 2 {
		t.Fatalf("two contacts: %d with %d contacts, want 200 with 2", res.StatusCode, len(res.GetHeaders("Contact")))
	}
	regs := func(n *node) []any {
		_, m := n.api(t, "GET", "/registrations?username=2001", nil)
		items, _ := m["items"].([]any)
		return items
	}
	if got := regs(n); len(got) != 2 || got[0].(map[string]any)["source"] != u.local {
		t.Fatalf("registrations: %v; want 2 bindings from %s (NAT: the source, not the Contact)", got, u.local)
	}
	res = u.register(t, "2001", pw, "reg1", &cseq, []string{ct(5062) + ";expires=0"}, "")
	if res.StatusCode != 200 || len(regs(n)) != 1 {
		t.Fatalf("un-register one contact: %d, %d bindings left", res.StatusCode, len(regs(n)))
	}

	// A restart keeps the binding.
	token := n.Token
	n.stop()
	n = start(t, dir, "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32")
	n.Token = token
	if got := regs(n); len(got) != 1 {
		t.Fatalf("after a restart: %d bindings, want 1", len(got))
	}
	u = newUAC(t, "127.0.0.8", n.SIP)
	res = u.register(t, "2001", pw, "reg2", &cseq, []string{"*"}, "0")
	if res.StatusCode != 200 || len(regs(n)) != 0 {
		t.Fatalf("Contact: * with Expires 0: %d, %d bindings left", res.StatusCode, len(regs(n)))
	}
	// Not registered: a call to the user's extension gets 480.
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2"})
	waitSnapshot(t, n)
	if st, reason := placeCall(t, n, "127.0.0.2", "441234567890", "2001"); st != 480 {
		t.Errorf("call to an unregistered extension: %d %s, want 480", st, reason)
	}
}
