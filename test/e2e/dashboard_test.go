package e2e

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// traffic is what a test sent, by what the dashboard must count.
type traffic struct{ calls, rejected, challenges, registrations int }

// sendTraffic makes, on n, accepted calls from the account's IP endpoint
// (127.0.0.2), INVITEs from a stranger (127.0.0.9: challenged or refused,
// counted by their answer) and REGISTERs of SIP user user (each a 401 then
// a 200), and returns what it made.
func sendTraffic(t *testing.T, n *node, user, pw string, calls, strangers, registers int) traffic {
	t.Helper()
	var tr traffic
	for range calls {
		if st, reason := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567"); st != 200 {
			t.Fatalf("call from the endpoint: %d %s", st, reason)
		}
		tr.calls++
	}
	// Refused by sanity (420 Bad Extension), from the endpoint.
	e := newUAC(t, "127.0.0.2", n.SIP)
	c := newCall("441234567890", "442071234567")
	e.send(e.invite(c, "Require: no-such-extension"))
	if _, res := e.final("INVITE", 5*time.Second); res.StatusCode != 420 {
		t.Fatalf("INVITE with an unknown Require: %d; want 420", res.StatusCode)
	} else {
		e.ack(c, res)
	}
	tr.rejected++
	u := newUAC(t, "127.0.0.9", n.SIP)
	for range strangers {
		c := newCall("stranger", "442071234567")
		u.send(u.invite(c))
		_, res := u.finalOrNothing("INVITE", 2*time.Second)
		switch {
		case res == nil:
			tr.rejected++ // dropped
		case res.StatusCode == 401 || res.StatusCode == 407:
			u.ack(c, res)
			tr.challenges++
		default:
			u.ack(c, res)
			tr.rejected++
		}
	}
	r := newUAC(t, "127.0.0.8", n.SIP)
	cseq := 0
	for i := range registers {
		if res := r.register(t, user, pw, fmt.Sprint("dash-reg-", user, i), &cseq, []string{"<sip:" + user + "@127.0.0.8:5099>"}, "300"); res.StatusCode != 200 {
			t.Fatalf("REGISTER %d: %d", i, res.StatusCode)
		}
		tr.challenges++ // its first try was answered 401
		tr.registrations++
	}
	return tr
}

// checkDashboard reads /api/v1/dashboard from n (as the operator, and for
// account acc) and compares every count with tr and bans.
func checkDashboard(t *testing.T, n *node, acc int64, tr traffic, bans int) {
	t.Helper()
	want := map[string]int{"calls": tr.calls, "rejected": tr.rejected, "challenges": tr.challenges,
		"registrations": tr.registrations, "register_rejects": 0, "bans": bans}
	var m map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for { // a decision is recorded after its answer leaves: the client may see the answer first
		m = n.mustAPI(t, 200, "GET", "/dashboard?window=15m", nil)
		if totalsAre(m["totals"].(map[string]any), want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	tot := m["totals"].(map[string]any)
	for k, w := range want {
		if got := int(tot[k].(float64)); got != w {
			t.Errorf("dashboard totals.%s = %d; want %d (totals %v)", k, got, w, tot)
		}
	}
	var byStage int
	for _, r := range m["rejects"].([]any) {
		byStage += int(r.(map[string]any)["count"].(float64))
	}
	if byStage != tr.rejected {
		t.Errorf("rejects by stage sum to %d; want %d (%v)", byStage, tr.rejected, m["rejects"])
	}
	accounts := m["accounts"].([]any)
	if len(accounts) != 1 || int(accounts[0].(map[string]any)["calls"].(float64)) != tr.calls || accounts[0].(map[string]any)["name"] != "Acme" {
		t.Errorf("accounts = %v; want Acme with %d calls", accounts, tr.calls)
	}
	var hour int
	for _, l := range m["hour"].(map[string]any)["lines"].([]any) {
		if l.(map[string]any)["name"] == "calls" {
			for _, v := range l.(map[string]any)["values"].([]any) {
				hour += int(v.(float64))
			}
		}
	}
	if hour != tr.calls {
		t.Errorf("the hour chart's calls sum to %d; want %d", hour, tr.calls)
	}
	a := n.mustAPI(t, 200, "GET", fmt.Sprintf("/dashboard?account_id=%d", acc), nil)["totals"].(map[string]any)
	if int(a["calls"].(float64)) != tr.calls || int(a["registrations"].(float64)) != tr.registrations {
		t.Errorf("the account's totals = %v; want %d calls and %d registrations", a, tr.calls, tr.registrations)
	}
}

// totalsAre reports whether the dashboard's totals are those in want.
func totalsAre(tot map[string]any, want map[string]int) bool {
	for k, w := range want {
		if v, _ := tot[k].(float64); int(v) != w {
			return false
		}
	}
	return true
}

// dashboardSetup provisions account Acme with the IP endpoint 127.0.0.2 and
// the SIP user 3001, and returns the account and the user's password.
func dashboardSetup(t *testing.T, n *node) (int64, string) {
	t.Helper()
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2"})
	pw := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "3001"})["password"].(string)
	return acc, pw
}

// TestDashboardCounts: the dashboard's counts are exactly the calls,
// refusals, challenges, registrations and bans made.
func TestDashboardCounts(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	const adminPW = "e2e-admin-password-1"
	n := edgeNode(t, core, "--admin-password", adminPW)
	acc, pw := dashboardSetup(t, n)
	n.mustAPI(t, 201, "POST", "/firewall/bans", map[string]any{"address": "203.0.113.50", "reason": "dashboard test"})
	waitSnapshot(t, n)
	tr := sendTraffic(t, n, "3001", pw, 3, 2, 2)
	checkDashboard(t, n, acc, tr, 1)
	checkDashboardPage(t, signIn(t, n.HTTP, "admin", adminPW), tr, 1)
	// Prometheus users get the same counts.
	for name, want := range map[string]int{"sipward_series_calls_total": tr.calls, "sipward_series_registrations_total": tr.registrations,
		"sipward_series_bans_total": 1} {
		if got := metricOf(t, n, name); got != strconv.Itoa(want) {
			t.Errorf("/metrics %s = %q; want %d", name, got, want)
		}
	}
	if st, m := n.api(t, "GET", "/dashboard?window=2s", nil); st != 400 {
		t.Errorf("window=2s: %d %v; want 400", st, m)
	}
}

// TestDashboardAcrossNodes: traffic on two nodes, one merged picture on
// either node.
func TestDashboardAcrossNodes(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	a, b := twoNodeCluster(t, "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32")
	acc, pw := dashboardSetup(t, a)
	waitSnapshot(t, a)
	waitSnapshot(t, b)
	ta := sendTraffic(t, a, "3001", pw, 2, 1, 1)
	tb := sendTraffic(t, b, "3001", pw, 1, 2, 1)
	sum := traffic{ta.calls + tb.calls, ta.rejected + tb.rejected, ta.challenges + tb.challenges, ta.registrations + tb.registrations}
	checkDashboard(t, a, acc, sum, 0)
	checkDashboard(t, b, acc, sum, 0)
}

// checkDashboardPage reads the web UI's dashboard (the operator's, last 15
// minutes) as a browser gets it and compares its counts with tr and bans.
func checkDashboardPage(t *testing.T, w *webClient, tr traffic, bans int) {
	t.Helper()
	resp, err := w.hc.Get(w.base + "/?window=15m")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := map[string]int{"calls": tr.calls, "rejected": tr.rejected, "challenges": tr.challenges,
		"registrations": tr.registrations, "register-rejects": 0, "bans": bans}
	for k, v := range want {
		m := regexp.MustCompile(`id="dash-` + k + `">(\d+)<`).FindSubmatch(body)
		if m == nil || string(m[1]) != strconv.Itoa(v) {
			t.Errorf("the dashboard page's %s: %q; want %d", k, m, v)
		}
	}
}
