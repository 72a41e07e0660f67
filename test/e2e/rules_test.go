package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// placeCall sends an INVITE from src and returns the final status, hanging
// up answered calls.
func placeCall(t *testing.T, n *node, src, cli, to string, extra ...string) (int, string) {
	t.Helper()
	u := newUAC(t, src, n.SIP)
	c := newCall(cli, to)
	u.send(u.invite(c, extra...))
	_, res := u.final("INVITE", 5*time.Second)
	u.ack(c, res)
	if res.IsSuccess() {
		u.bye(c)
	}
	return res.StatusCode, res.Reason
}

// TestCPSLimit: an endpoint limited to 2 calls per second gets the excess refused with 503.
func TestCPSLimit(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "cps": 2})
	waitSnapshot(t, n)
	var ok, refused int
	for i := 0; i < 5; i++ {
		st, reason := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567")
		switch {
		case st == 200:
			ok++
		case st == 503 && strings.Contains(strings.ToLower(reason), "cps"):
			refused++
		default:
			t.Errorf("call %d: %d %s", i, st, reason)
		}
	}
	// The bucket holds 2 and refills 2/s; five calls take well under a second.
	if ok < 2 || ok > 3 || refused != 5-ok {
		t.Errorf("5 quick calls at cps 2: %d answered, %d refused with a CPS reason", ok, refused)
	}
}

// TestRewriteAndCodecsReachTheCore: a destination rewrite rule and a
// restricted codec are visible in the INVITE the core receives.
func TestRewriteAndCodecsReachTheCore(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	ep := id(n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc),
		map[string]any{"address": "127.0.0.2", "restricted_codecs": []string{"G729"}}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/ip-endpoints/%d/rewrites", ep),
		map[string]any{"type": "destination", "regex": true, "match": `^0(\d+)$`, "replacement": "44$1"})
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/ip-endpoints/%d/rewrites", ep),
		map[string]any{"type": "cli", "match": "+", "replacement": ""})
	waitSnapshot(t, n)
	if st, r := placeCall(t, n, "127.0.0.2", "+441234567890", "02071234567"); st != 200 {
		t.Fatalf("call: %d %s", st, r)
	}
	inv := core.got()[0]
	if inv.Recipient.User != "442071234567" || inv.To().Address.User != "442071234567" {
		t.Errorf("core got Request-URI user %q, To %q; want the rewritten 442071234567", inv.Recipient.User, inv.To().Address.User)
	}
	if inv.From().Address.User != "441234567890" {
		t.Errorf("core got CLI %q, want the rewritten 441234567890", inv.From().Address.User)
	}
	sdp := string(inv.Body())
	if strings.Contains(sdp, "G729") || strings.Contains(sdp, " 18 ") || !strings.Contains(sdp, "PCMU") {
		t.Errorf("core got SDP with the restricted codec, or without the others:\n%s", sdp)
	}
	// All codecs restricted: 488, the core sees nothing.
	n.mustAPI(t, 200, "PATCH", fmt.Sprintf("/ip-endpoints/%d", ep), map[string]any{"restricted_codecs": []string{"PCMU", "PCMA", "G729"}})
	waitSnapshot(t, n)
	if st, _ := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567"); st != 488 {
		t.Errorf("all codecs restricted: %d, want 488", st)
	}
	if len(core.got()) != 1 {
		t.Errorf("the core got a call whose codecs were all restricted")
	}
}

// TestCLIRestriction: an account with CLI patterns refuses other CLIs.
func TestCLIRestriction(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme", "cli_patterns": []map[string]any{{"pattern": "441234567890"}}}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2"})
	waitSnapshot(t, n)
	if st, _ := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567"); st != 200 {
		t.Errorf("allowed CLI: %d", st)
	}
	if st, reason := placeCall(t, n, "127.0.0.2", "449999999999", "442071234567"); st != 403 || reason != "CLI restriction in effect" {
		t.Errorf("other CLI: %d %q, want 403 \"CLI restriction in effect\"", st, reason)
	}
}

// TestConfigChangeTakesEffectOnTheNextCall: adding an IP endpoint through the
// API turns a 407 into a 200 within a second; deleting it turns it back.
func TestConfigChangeTakesEffectOnTheNextCall(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core, "--fraud-threshold", "1000") // the polling below must not get 127.0.0.4 banned
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	if st, _ := placeCall(t, n, "127.0.0.4", "441234567890", "442071234567"); st != 407 {
		t.Fatalf("before: %d, want 407", st)
	}
	ep := id(n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.4"}))
	changed := time.Now()
	var st int
	for time.Since(changed) < time.Second {
		if st, _ = placeCall(t, n, "127.0.0.4", "441234567890", "442071234567"); st == 200 {
			break
		}
		time.Sleep(20 * time.Millisecond) // a paced client: untrusted sources get 200 packets/s
	}
	if st != 200 {
		t.Fatalf("an endpoint added through the API was not in force within 1 s (last answer %d)", st)
	}
	t.Logf("endpoint in force %v after the API answered", time.Since(changed).Round(time.Millisecond))
	n.mustAPI(t, 204, "DELETE", fmt.Sprintf("/ip-endpoints/%d", ep), nil)
	changed = time.Now()
	for time.Since(changed) < time.Second {
		if st, _ = placeCall(t, n, "127.0.0.4", "441234567890", "442071234567"); st == 407 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st != 407 {
		t.Fatalf("a deleted endpoint still authenticated after 1 s (last answer %d)", st)
	}
}

// TestBruteForceIsBannedAndLifted: wrong passwords from one source past the
// threshold get it banned (no answer at all); lifting the ban through the
// API lets it in again.
func TestBruteForceIsBannedAndLifted(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core, "--fraud-threshold", "5")
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	pw := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "1001"})["password"].(string)
	waitSnapshot(t, n)
	u := newUAC(t, "127.0.0.6", n.SIP)
	uri := "sip:442071234567@" + n.SIP
	tryPassword := func(pass string) int {
		c := newCall("1001", "442071234567")
		u.send(u.invite(c))
		_, ch := u.finalOrNothing("INVITE", 300*time.Millisecond)
		if ch == nil {
			return 0 // no answer: banned
		}
		u.ack(c, ch)
		u.send(u.invite(c, "Proxy-Authorization: "+digestAuth(ch, "1001", pass, "INVITE", uri, 1)))
		_, res := u.finalOrNothing("INVITE", 300*time.Millisecond)
		if res == nil {
			return 0
		}
		u.ack(c, res)
		if res.IsSuccess() {
			u.bye(c)
		}
		return res.StatusCode
	}
	// Each guess is a challenge and a wrong answer: both count. Within the
	// threshold (5) of guesses the source must stop getting answers at all.
	banned := false
	for i := 0; i < 6 && !banned; i++ {
		switch st := tryPassword(fmt.Sprintf("guess-%d", i)); st {
		case 0:
			banned = true
		case 407:
		default:
			t.Fatalf("guess %d: %d, want 407 or no answer", i, st)
		}
	}
	if !banned {
		t.Fatal("6 wrong passwords from one source and it still gets answers")
	}
	if st := tryPassword(pw); st != 0 {
		t.Fatalf("banned source with the right password got %d; want no answer", st)
	}
	var bans []any
	waitFor(t, "the ban to be stored", func() bool {
		bans = n.mustAPI(t, 200, "GET", "/firewall/bans?source=detection", nil)["items"].([]any)
		return len(bans) == 1
	})
	ban := bans[0].(map[string]any)
	if ban["address"] != "127.0.0.6" || !regexp.MustCompile(`failed authentications|INVITEs from an unknown source`).MatchString(fmt.Sprint(ban["reason"])) {
		t.Errorf("ban %v: want 127.0.0.6 with the reason", ban)
	}
	n.mustAPI(t, 204, "DELETE", fmt.Sprintf("/firewall/bans/%d", id(ban)), nil)
	lifted := time.Now()
	// The audit trail: banned by the firewall, lifted by the operator.
	trail := n.mustAPI(t, 200, "GET", fmt.Sprintf("/audit?object=ban:%d", id(ban)), nil)["items"].([]any)
	if len(trail) != 2 || trail[1].(map[string]any)["actor"] != "firewall" || trail[1].(map[string]any)["action"] != "ban" ||
		!strings.HasPrefix(fmt.Sprint(trail[0].(map[string]any)["actor"]), "token:operator") || trail[0].(map[string]any)["action"] != "unban" {
		t.Errorf("audit trail of the ban: %v; want ban by firewall, then unban by operator", trail)
	}
	var st int
	for time.Since(lifted) < time.Second {
		if st = tryPassword(pw); st == 200 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st != 200 {
		t.Fatalf("after lifting the ban: %d, want 200", st)
	}
	t.Logf("ban lifted in %v", time.Since(lifted).Round(time.Millisecond))
}

// TestCancel: the caller cancels while the core rings: the core gets a
// CANCEL, the caller 487, and the channel is freed.
func TestCancel(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	core.set(200, 3*time.Second)
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "channels": 1})
	waitSnapshot(t, n)
	u := newUAC(t, "127.0.0.2", n.SIP)
	c := newCall("441234567890", "442071234567")
	u.send(u.invite(c))
	// Wait for the 180 relayed from the core.
	for {
		_, m := u.recv(3 * time.Second)
		if m == nil {
			t.Fatal("no 180")
		}
		if r, ok := m.(*sipResponse); ok && r.StatusCode == 180 {
			break
		}
	}
	u.send(fmt.Sprintf("CANCEL sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\nFrom: <sip:%s@127.0.0.2>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: %d CANCEL\r\nContent-Length: 0\r\n\r\n",
		c.to, n.SIP, u.local, c.branch, c.from, c.fromTag, c.to, n.SIP, c.callID, c.cseq))
	_, res := u.final("INVITE", 5*time.Second)
	u.ack(c, res)
	if res.StatusCode != 487 {
		t.Fatalf("cancelled INVITE: %d, want 487", res.StatusCode)
	}
	n.waitIdle(t)
	// The single channel is free again.
	core.set(200, 0)
	if st, _ := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567"); st != 200 {
		t.Fatalf("after CANCEL the channel was not freed: %d", st)
	}
}

// TestFailedCallsFreeChannels: a core that refuses (486) and one that
// fails over from a dead upstream leave no channel held.
func TestFailedCallsFreeChannels(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	core.set(486, 0)
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "channels": 1})
	waitSnapshot(t, n)
	for i := 0; i < 3; i++ {
		if st, _ := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567"); st != 486 {
			t.Fatalf("call %d: %d, want the core's 486 relayed", i, st)
		}
	}
	n.waitIdle(t)
}

// TestRingTimeout: a call the core lets ring past --ring-timeout is
// cancelled on leg B, answered on leg A, and frees its channel.
func TestRingTimeout(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	core.set(200, 30*time.Second) // rings, never answers in time
	n := edgeNode(t, core, "--ring-timeout", "1s")
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "channels": 1})
	waitSnapshot(t, n)
	start := time.Now()
	st, reason := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567")
	if st != 480 || time.Since(start) > 4*time.Second {
		t.Fatalf("unanswered call: %d %s after %v, want 480 soon after the 1 s ring timeout", st, reason, time.Since(start))
	}
	t.Logf("ended with %d %s after %v", st, reason, time.Since(start).Round(10*time.Millisecond))
	n.waitIdle(t)
	core.set(200, 0)
	if st, _ := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567"); st != 200 {
		t.Fatalf("the channel was not freed: %d", st)
	}
}

// TestDialPattern: an endpoint's dial pattern brings the number its switch
// dials to E.164 digits before the rewrite rules, and the core sees that;
// changing the pattern reaches the next call.
func TestDialPattern(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	ep := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "dial_pattern": "national:44"})
	if ep["dial_pattern"] != "national:44" {
		t.Fatalf("endpoint saved with dial pattern %v", ep["dial_pattern"])
	}
	waitSnapshot(t, n)
	for i, tt := range []struct{ pattern, dialled, want string }{
		{"national:44", "02071234567", "442071234567"},
		{"national:44", "0033123456789", "33123456789"},
		{"e164", "+442071234567", "442071234567"},
		{"none", "+442071234567", "+442071234567"},
	} {
		if i > 0 && tt.pattern != "national:44" {
			n.mustAPI(t, 200, "PATCH", fmt.Sprintf("/ip-endpoints/%d", id(ep)), map[string]any{"dial_pattern": tt.pattern})
			waitSnapshot(t, n)
		}
		if st, r := placeCall(t, n, "127.0.0.2", "441234567890", tt.dialled); st != 200 {
			t.Fatalf("%s, dialling %s: %d %s", tt.pattern, tt.dialled, st, r)
		}
		got := core.got()
		if u := got[len(got)-1].Recipient.User; u != tt.want {
			t.Errorf("%s, dialling %s: the core got %q, want %q", tt.pattern, tt.dialled, u, tt.want)
		}
	}
	n.waitIdle(t)
}
