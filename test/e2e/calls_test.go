package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestIPAuthCall: a customer switch known by its address calls through to the
// core; the core sees sipward's identity headers and none of the customer's
// topology; BYE ends both legs and frees the channel.
func TestIPAuthCall(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme", "channels": 5}))
	ep := id(n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "channels": 2}))
	waitSnapshot(t, n)

	u := newUAC(t, "127.0.0.2", n.SIP)
	c := newCall("441234567890", "442071234567")
	u.establish(c)
	got := core.got()
	if len(got) != 1 {
		t.Fatalf("core got %d INVITEs, want 1", len(got))
	}
	inv := got[0]
	for h, want := range map[string]string{"X-Sipward-Account": fmt.Sprint(acc), "X-Sipward-Auth": "ip", "X-Sipward-Endpoint": fmt.Sprint(ep)} {
		if v := inv.GetHeader(h); v == nil || v.Value() != want {
			t.Errorf("core INVITE %s = %v, want %s", h, v, want)
		}
	}
	if inv.Recipient.User != "442071234567" || inv.From().Address.User != "441234567890" {
		t.Errorf("core INVITE to %q from %q", inv.Recipient.User, inv.From().Address.User)
	}
	// Topology hiding: nothing of the customer's address or dialog reaches the core.
	if s := inv.String(); strings.Contains(s, u.local) || strings.Contains(s, "127.0.0.2") || strings.Contains(s, c.callID) || strings.Contains(s, c.fromTag) {
		t.Errorf("the core's INVITE leaks the customer's topology:\n%s", s)
	}
	d := n.decision(t, c.callID)
	if d["result"] != "accepted" || d["auth"] != "ip" || fmt.Sprint(d["passed"]) != "[firewall sanity identify limits rewrite codecs nat]" {
		t.Errorf("decision: %v", d)
	}
	// Every call and decision names its account, IP-authenticated ones too.
	if d["account"] != "Acme" || d["account_id"] != float64(acc) {
		t.Errorf("decision's account = %v (id %v), want Acme (%d)", d["account"], d["account_id"], acc)
	}
	_, calls := n.api(t, "GET", "/calls", nil)
	if calls["total"].(float64) != 1 {
		t.Errorf("active calls: %v", calls)
	} else if item := calls["items"].([]any)[0].(map[string]any); item["account"] != "Acme" || item["account_id"] != float64(acc) {
		t.Errorf("active call's account = %v (id %v), want Acme (%d)", item["account"], item["account_id"], acc)
	}
	if st := u.bye(c); st != 200 {
		t.Fatalf("BYE: %d", st)
	}
	waitFor(t, "the core to get the BYE", func() bool { core.mu.Lock(); defer core.mu.Unlock(); return core.byes == 1 })
	n.waitIdle(t)
}

// TestUnknownSourceIsChallenged: an address that is no endpoint gets 407.
func TestUnknownSourceIsChallenged(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	u := newUAC(t, "127.0.0.9", n.SIP)
	c := newCall("100", "442071234567")
	u.send(u.invite(c))
	_, res := u.final("INVITE", 5*time.Second)
	if res.StatusCode != 407 || res.GetHeader("Proxy-Authenticate") == nil {
		t.Fatalf("unknown source: %d %s, want 407 with Proxy-Authenticate", res.StatusCode, res.Reason)
	}
	u.ack(c, res)
	if len(core.got()) != 0 {
		t.Error("the core got an INVITE from an unauthenticated source")
	}
}

// TestDigestCall: right password 200; wrong password 407 again; unknown user
// the same bytes as a wrong password but for tags, nonce and branch.
func TestDigestCall(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	pw := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "1001"})["password"].(string)
	waitSnapshot(t, n)
	u := newUAC(t, "127.0.0.5", n.SIP)

	attempt := func(user, pass string) (string, int) {
		c := newCall(user, "442071234567")
		u.send(u.invite(c))
		_, ch := u.final("INVITE", 5*time.Second)
		u.ack(c, ch)
		if ch.StatusCode != 407 {
			t.Fatalf("first INVITE: %d, want 407", ch.StatusCode)
		}
		uri := "sip:442071234567@" + n.SIP
		creds := "Proxy-Authorization: " + digestAuth(ch, user, pass, "INVITE", uri, 1)
		u.send(u.invite(c, creds))
		raw, res := u.final("INVITE", 5*time.Second)
		// Some clients repeat the INVITE's credentials on the ACK: the call must go on.
		u.ack(c, res, creds)
		if res.IsSuccess() {
			if st := u.bye(c); st != 200 {
				t.Errorf("BYE: %d", st)
			}
		}
		return raw, res.StatusCode
	}
	if _, st := attempt("1001", pw); st != 200 {
		t.Fatalf("right password: %d, want 200", st)
	}
	if got := core.got(); len(got) != 1 || got[0].GetHeader("X-Sipward-Auth").Value() != "digest" || got[0].GetHeader("X-Sipward-User").Value() != "1001" {
		t.Errorf("core did not get the digest call with its identity")
	}
	wrongRaw, st := attempt("1001", "not-the-password")
	if st != 407 {
		t.Fatalf("wrong password: %d, want 407", st)
	}
	unknownRaw, st := attempt("9999", "not-the-password")
	if st != 407 {
		t.Fatalf("unknown user: %d, want 407", st)
	}
	if a, b := normalise(wrongRaw), normalise(unknownRaw); a != b {
		t.Errorf("unknown user and wrong password answered differently:\n%s\n---\n%s", a, b)
	}
	n.waitIdle(t)
}

var varying = regexp.MustCompile(`(tag|nonce|branch|rport|received)=("[^"]*"|[^;,\s]+)|Call-ID: \S+|From: <sip:\w+@|CSeq: \d+`)

// normalise blanks what differs between any two answers: tags, nonces,
// branches, Call-IDs and the From user.
func normalise(raw string) string { return varying.ReplaceAllString(raw, "$1=X") }

// TestTechPrefixAndCLIAuthPickTheAccount: two accounts share 127.0.0.2;
// tech prefix and CLI authentication (by CLI pattern or DID) tell them apart.
func TestTechPrefixAndCLIAuthPickTheAccount(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	a := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Alpha"}))
	b := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Bravo"}))
	c := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Charlie", "cli_patterns": []map[string]any{{"pattern": "^4477", "regex": true}}}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", a), map[string]any{"address": "127.0.0.2", "tech_prefix": "111#"})
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", b), map[string]any{"address": "127.0.0.2", "tech_prefix": "222#"})
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", c), map[string]any{"address": "127.0.0.3", "cli_auth": true})
	// Delta's DID is a CLI it may present: it picks Delta, and Delta's CLI restriction lets it through.
	d := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Delta", "cli_patterns": []map[string]any{{"pattern": "441111111111"}},
		"dids": []map[string]any{{"number": "442079460000"}}}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", d), map[string]any{"address": "127.0.0.3", "cli_auth": true})
	waitSnapshot(t, n)

	for _, tt := range []struct {
		src, to, cli string
		account      int64
		dialled      string
	}{
		{"127.0.0.2", "111#442071234567", "441234567890", a, "442071234567"},
		{"127.0.0.2", "222#442071234567", "441234567890", b, "442071234567"},
		{"127.0.0.3", "442071234567", "447700900123", c, "442071234567"},
		{"127.0.0.3", "442071234567", "441111111111", d, "442071234567"},
		{"127.0.0.3", "442071234567", "442079460000", d, "442071234567"},
	} {
		u := newUAC(t, tt.src, n.SIP)
		call := newCall(tt.cli, tt.to)
		before := len(core.got())
		u.send(u.invite(call))
		_, res := u.final("INVITE", 5*time.Second)
		u.ack(call, res)
		if res.StatusCode != 200 {
			t.Errorf("%s to %s cli %s: %d %s", tt.src, tt.to, tt.cli, res.StatusCode, res.Reason)
			continue
		}
		got := core.got()[before]
		if acc := got.GetHeader("X-Sipward-Account").Value(); acc != fmt.Sprint(tt.account) || got.Recipient.User != tt.dialled {
			t.Errorf("%s to %s cli %s: core saw account %s dialling %s, want %d dialling %s", tt.src, tt.to, tt.cli, acc, got.Recipient.User, tt.account, tt.dialled)
		}
		u.bye(call)
	}
	// Neither tech prefix: ambiguous → 403.
	u := newUAC(t, "127.0.0.2", n.SIP)
	call := newCall("441234567890", "442071234567")
	u.send(u.invite(call))
	_, res := u.final("INVITE", 5*time.Second)
	u.ack(call, res)
	if res.StatusCode != 403 {
		t.Errorf("no tech prefix from a shared address: %d, want 403", res.StatusCode)
	}
	n.waitIdle(t)
}

// TestChannelLimit: an endpoint limited to 2 channels, 3 concurrent calls →
// exactly one 503 naming the limit; counts back to zero after.
func TestChannelLimit(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	core.set(200, 700*time.Millisecond)
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "channels": 2})
	waitSnapshot(t, n)
	type out struct {
		status int
		reason string
		hdr    string
	}
	results := make(chan out, 3)
	var calls [3]*call
	var uacs [3]*uac
	for i := range calls {
		uacs[i] = newUAC(t, "127.0.0.2", n.SIP)
		calls[i] = newCall("441234567890", "44207123456"+fmt.Sprint(i))
	}
	for i := range calls {
		go func(i int) {
			uacs[i].send(uacs[i].invite(calls[i]))
		}(i)
	}
	for i := range calls {
		_, res := uacs[i].final("INVITE", 5*time.Second)
		uacs[i].ack(calls[i], res)
		h := ""
		if r := res.GetHeader("Reason"); r != nil {
			h = r.Value()
		}
		results <- out{res.StatusCode, res.Reason, h}
	}
	close(results)
	var ok, busy int
	for r := range results {
		switch r.status {
		case 200:
			ok++
		case 503:
			busy++
			if !strings.Contains(r.hdr, "channel limit") {
				t.Errorf("503 without a Reason naming the limit: %q %q", r.reason, r.hdr)
			}
		default:
			t.Errorf("unexpected answer %d %s", r.status, r.reason)
		}
	}
	if ok != 2 || busy != 1 {
		t.Fatalf("3 calls over 2 channels: %d answered, %d refused; want 2 and 1", ok, busy)
	}
	for i := range calls {
		if calls[i].toTag != "" && calls[i].contact != "" {
			uacs[i].bye(calls[i])
		}
	}
	n.waitIdle(t)
	// Back to zero: two more calls fit again.
	core.set(200, 0)
	for i := 0; i < 2; i++ {
		u := newUAC(t, "127.0.0.2", n.SIP)
		c := newCall("441234567890", "442071234567")
		u.send(u.invite(c))
		_, res := u.final("INVITE", 5*time.Second)
		u.ack(c, res)
		if res.StatusCode != 200 {
			t.Fatalf("after the calls ended, call %d: %d (channels leaked?)", i, res.StatusCode)
		}
		u.bye(c)
	}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// waitSnapshot waits until the serving snapshot has caught up with the store
// (the API's change is in force on the next call).
// waitSnapshot waits until the node's snapshot has every configuration
// change made so far (its revision reaches the store's), up to 10 s.
func waitSnapshot(t *testing.T, n *node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(n.HTTP + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			Snapshot int64 `json:"snapshot_revision"`
			Store    int64 `json:"store_revision"`
		}
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if err == nil && h.Store > 0 && h.Snapshot >= h.Store {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the snapshot is at revision %d, the store at %d, after 10 s", h.Snapshot, h.Store)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func id(m map[string]any) int64 { return int64(m["id"].(float64)) }
