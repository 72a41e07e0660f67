package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBusyDigestCustomerNotBanned: with default flags, a PBX placing
// digest calls from one address at 1,000 calls/s (SIPp; every call starts
// with a credential-less INVITE and its 407) is neither banned nor
// throttled, while at the same time a password guesser and a flood of
// credential-less INVITEs that never answer their challenges, each from
// an address of its own, are banned within the default thresholds.
func TestBusyDigestCustomerNotBanned(t *testing.T) {
	sippBin(t)
	corePort := freePort(t, "127.0.0.1")
	runSIPp(t, 2*time.Minute, "-sn", "uas", "-i", "127.0.0.1", "-p", fmt.Sprint(corePort))
	n := start(t, "", "--upstream", fmt.Sprintf("sip:127.0.0.1:%d", corePort), "--core-addr", "127.0.0.1/32")
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Call centre", "channels": 2000}))
	pw := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc),
		map[string]any{"username": "pbx1", "channels": 2000})["password"].(string)
	time.Sleep(300 * time.Millisecond) // let SIPp bind, and the snapshot catch up
	waitSnapshot(t, n)

	csv := filepath.Join(t.TempDir(), "users.csv")
	os.WriteFile(csv, []byte(fmt.Sprintf("SEQUENTIAL\npbx1;%s\n", pw)), 0o600)
	const calls = 5000
	pbx := runSIPp(t, 3*time.Minute, "-sf", mustAbs(t, "testdata/sipp/uac_digest.xml"), "-inf", csv,
		"-i", "127.0.0.3", "-p", fmt.Sprint(freePort(t, "127.0.0.3")), "-s", "442071234567",
		"-r", "1000", "-m", fmt.Sprint(calls), "-d", "0", "-max_retrans", "10", n.SIP)

	// Meanwhile: a guesser on 127.0.0.4 (svcrack: challenge, wrong password,
	// again) and a credential-less INVITE flood on 127.0.0.5 (svwar-like:
	// it never answers a challenge).
	guesses, guesserBanned := 0, false
	u := newUAC(t, "127.0.0.4", n.SIP)
	uri := "sip:442071234567@" + n.SIP
	for guesses < 20 && !guesserBanned {
		guesses++
		c := newCall("pbx1", "442071234567")
		u.send(u.invite(c))
		_, ch := u.finalOrNothing("INVITE", 2*time.Second)
		if ch == nil {
			guesserBanned = true
			break
		}
		u.ack(c, ch)
		u.send(u.invite(c, "Proxy-Authorization: "+digestAuth(ch, "pbx1", fmt.Sprintf("guess-%d", guesses), "INVITE", uri, 1)))
		_, res := u.finalOrNothing("INVITE", 2*time.Second)
		if res == nil {
			guesserBanned = true
			break
		}
		u.ack(c, res)
	}
	flood := newUAC(t, "127.0.0.5", n.SIP)
	for range 30 {
		flood.send(flood.invite(newCall("1000", "442071234567")))
		time.Sleep(20 * time.Millisecond)
	}

	pbx.wait(t) // SIPp exits 0 only when every call succeeded
	if !guesserBanned || guesses > 11 {
		t.Errorf("guesser: banned %v after %d guesses; want a ban by the 11th (threshold 10)", guesserBanned, guesses)
	}

	// The flood's challenges are judged when their grace (10 s) has passed.
	deadline := time.Now().Add(20 * time.Second)
	bans := map[string]string{}
	for time.Now().Before(deadline) {
		bans = map[string]string{}
		for _, b := range n.mustAPI(t, 200, "GET", "/firewall/bans?source=detection", nil)["items"].([]any) {
			m := b.(map[string]any)
			bans[m["address"].(string)] = m["reason"].(string)
		}
		if _, ok := bans["127.0.0.5"]; ok {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := bans["127.0.0.4"]; !strings.Contains(r, "failed authentications") {
		t.Errorf("guesser's ban: %q; bans %v", r, bans)
	}
	if r := bans["127.0.0.5"]; !strings.Contains(r, "INVITEs from an unknown source") {
		t.Errorf("flood's ban: %q; bans %v", r, bans)
	}
	if _, ok := bans["127.0.0.3"]; ok {
		t.Errorf("the digest customer was banned: %v", bans)
	}
	for m := flood.recvOrNil(200 * time.Millisecond); m != nil; m = flood.recvOrNil(200 * time.Millisecond) {
	} // the flood's earlier 407s
	flood.send(flood.invite(newCall("1000", "442071234567")))
	if _, res := flood.finalOrNothing("INVITE", 500*time.Millisecond); res != nil {
		t.Errorf("banned flood source still answered: %d", res.StatusCode)
	}
	if v := n.metric(t, `sipward_firewall_dropped_total{reason="rate"}`); v != 0 {
		t.Errorf("datagrams dropped by the rate guard: %v, want 0 (the customer was throttled)", v)
	}
	n.waitIdle(t)
}

// recvOrNil returns the next message, or nil when none comes within timeout.
func (u *uac) recvOrNil(timeout time.Duration) any {
	if _, m := u.recv(timeout); m != nil {
		return m
	}
	return nil
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
