package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// twoNodeCluster starts two nodes sharing one SQLite file and one Redis
// (its own key prefix), with the operator token "cluster-admin-token" and
// extra flags, or skips without SIPWARD_TEST_REDIS.
func twoNodeCluster(t *testing.T, extra ...string) (*node, *node) {
	t.Helper()
	ns := clusterNodes(t, 2, testRedis(t), extra...)
	return ns[0], ns[1]
}

// TestFraudBanAcrossNodes: a source sending wrong digest credentials to
// node A and node B in turn is banned after --fraud-threshold failures in
// total (not on each node), and then dropped by both nodes within about a
// second: the node that banned it at once, the other through the store.
func TestFraudBanAcrossNodes(t *testing.T) {
	const threshold = 4
	core := newUAS(t, "127.0.0.1")
	a, b := twoNodeCluster(t, "--upstream", "sip:"+core.addr, "--fraud-threshold", fmt.Sprint(threshold))
	acc := id(a.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	a.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "1001"})
	waitSnapshot(t, a)
	waitSnapshot(t, b)

	// One challenge from each node (2 unanswered challenges: below the
	// threshold, and judged only after their 10 s grace), then wrong
	// passwords against it, A and B in turn.
	nodes := []*node{a, b}
	uacs := []*uac{newUAC(t, "127.0.0.6", a.SIP), newUAC(t, "127.0.0.6", b.SIP)}
	var challenges [2]*sipResponse
	for i, u := range uacs {
		c := newCall("1001", "442071234567")
		u.send(u.invite(c))
		_, ch := u.final("INVITE", 5*time.Second)
		u.ack(c, ch)
		if ch.StatusCode != 407 {
			t.Fatalf("node %c: first INVITE %d, want 407", 'A'+i, ch.StatusCode)
		}
		challenges[i] = ch
	}
	guess := func(n int) *sipResponse {
		i := n % 2
		u, c := uacs[i], newCall("1001", "442071234567")
		uri := "sip:442071234567@" + nodes[i].SIP
		u.send(u.invite(c, "Proxy-Authorization: "+digestAuth(challenges[i], "1001", fmt.Sprintf("guess-%d", n), "INVITE", uri, n/2+1)))
		_, res := u.finalOrNothing("INVITE", 2*time.Second)
		if res != nil {
			u.ack(c, res)
		}
		return res
	}
	for n := range threshold - 1 {
		if res := guess(n); res == nil || res.StatusCode != 407 {
			t.Fatalf("wrong password %d (node %c): %v, want 407", n+1, 'A'+n%2, res)
		}
	}
	guess(threshold - 1) // the threshold-th in the cluster: node B bans
	banned := time.Now()

	// Both nodes have the ban in their tables: B at once, A from the store.
	deadline := banned.Add(10 * time.Second)
	var took [2]time.Duration
	for i, n := range nodes {
		for n.metricOr("sipward_firewall_ban_prefixes", 0) < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("node %c has no ban 10 s after the %dth failure", 'A'+i, threshold)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took[i] = time.Since(banned)
	}
	t.Logf("the ban in force on node A after %v, on node B after %v", took[0], took[1])
	if took[0] > 2*time.Second || took[1] > 2*time.Second {
		t.Errorf("the ban took %v (A) and %v (B) to reach both nodes; want about a second at most", took[0], took[1])
	}
	if v := a.metric(t, `sipward_firewall_bans_total{source="auth_failure"}`) + b.metric(t, `sipward_firewall_bans_total{source="auth_failure"}`); v != 1 {
		t.Errorf("detection bans made in the cluster: %v, want 1", v)
	}
	for i, u := range uacs {
		if st := u.answerTo(newCall("1001", "442071234567"), time.Second); st != 0 {
			t.Errorf("node %c answered the banned source: %d", 'A'+i, st)
		}
	}
}

// answerTo sends c's INVITE and returns the status of the first response to
// it within timeout, 0 if none came. Responses to other calls (a final
// response retransmitted because its ACK was dropped) are skipped.
func (u *uac) answerTo(c *call, timeout time.Duration) int {
	u.t.Helper()
	u.send(u.invite(c))
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_, m := u.recv(time.Until(deadline))
		if m == nil {
			return 0
		}
		if res, ok := m.(*sipResponse); ok && res.CallID() != nil && res.CallID().Value() == c.callID {
			return res.StatusCode
		}
	}
	return 0
}

// TestWebSignInAcrossNodes: a session signed out on node A is refused on
// node B; failed sign-ins spread over both nodes lock the username out at
// the policy's 5 in total.
func TestWebSignInAcrossNodes(t *testing.T) {
	const adminPW = "e2e-admin-password-1"
	a, b := twoNodeCluster(t, "--admin-password", adminPW)

	// A browser signed in on A carries its cookie to B too (a cookie of a
	// host is sent to every port of it): B accepts it, until A signs it out.
	w := signIn(t, a.HTTP, "admin", adminPW)
	if p := w.landing(b.HTTP + "/accounts"); p != "/accounts" {
		t.Fatalf("node B with A's session: landed on %s, want /accounts", p)
	}
	stolen := w.cookies(b.HTTP)
	if st, _ := w.post("/logout", url.Values{"csrf": {w.csrf("/accounts")}}); st != 200 {
		t.Fatalf("sign out on A: %d", st)
	}
	replay := &webClient{t: t, base: b.HTTP, hc: &http.Client{Jar: jarWith(t, b.HTTP, stolen)}}
	if p := replay.landing(b.HTTP + "/accounts"); p != "/login" {
		t.Errorf("node B with a copy of the session signed out on A: landed on %s, want /login", p)
	}

	// 5 wrong passwords, A and B in turn (3 on A, 2 on B), lock "admin" out
	// on both nodes, even with the right password.
	for n := range 5 {
		base := []string{a.HTTP, b.HTTP}[n%2]
		if st, body := tryPassword(t, base, "admin", "wrong-password"); st != http.StatusUnauthorized || !strings.Contains(body, "Wrong username or password") {
			t.Fatalf("wrong password %d (node %c): %d, want the form again with its error", n+1, 'A'+n%2, st)
		}
	}
	for i, base := range []string{a.HTTP, b.HTTP} {
		if st, body := tryPassword(t, base, "admin", adminPW); st != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
			t.Errorf("node %c after 5 failures over the cluster: %d, want 429 Too many failed sign-ins", 'A'+i, st)
		}
	}
}

// tryPassword posts the sign-in form of base once, from a fresh browser.
func tryPassword(t *testing.T, base, username, password string) (int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	w := &webClient{t: t, base: base, hc: &http.Client{Jar: jar}}
	return w.post("/login", url.Values{"username": {username}, "password": {password}, "csrf": {w.csrf("/login")}, "next": {"/"}})
}

// landing returns the path a GET of u ends on, after redirects.
func (w *webClient) landing(u string) string {
	w.t.Helper()
	resp, err := w.hc.Get(u)
	if err != nil {
		w.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Request.URL.Path
}

// cookies returns the cookies w's jar sends to base.
func (w *webClient) cookies(base string) []*http.Cookie {
	u, _ := url.Parse(base)
	return w.hc.Jar.Cookies(u)
}

// jarWith returns a cookie jar holding cookies for base.
func jarWith(t *testing.T, base string, cookies []*http.Cookie) http.CookieJar {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(base)
	jar.SetCookies(u, cookies)
	return jar
}
