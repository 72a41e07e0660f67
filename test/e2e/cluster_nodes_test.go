package e2e

import (
	"fmt"
	"net/url"
	"regexp"
	"testing"
	"time"
)

var nodeIDRe = regexp.MustCompile(`msg="sipward serving" .*node=(\S+)`)

// nodeID returns the ID n says it has.
func (n *node) nodeID(t *testing.T) string {
	t.Helper()
	m := nodeIDRe.FindStringSubmatch(n.Log())
	if m == nil {
		t.Fatalf("the log does not name the node:\n%s", n.Log())
	}
	return m[1]
}

// nodeStatuses returns GET /nodes as id → status.
func nodeStatuses(t *testing.T, n *node) map[string]string {
	t.Helper()
	m := n.mustAPI(t, 200, "GET", "/nodes", nil)
	out := map[string]string{}
	for _, it := range m["items"].([]any) {
		x := it.(map[string]any)
		out[x["id"].(string)] = x["status"].(string)
	}
	return out
}

// waitNodes polls GET /nodes on n until want(statuses) or the deadline.
func waitNodes(t *testing.T, n *node, within time.Duration, what string, want func(map[string]string) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := nodeStatuses(t, n)
		if want(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; GET /nodes on %s: %v", what, within, n.HTTP, st)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// rowsByTo returns the node of each row of a merged view, by its "to", and
// the view's missing nodes.
func rowsByTo(t *testing.T, n *node, path string) (map[string]string, any) {
	t.Helper()
	m := n.mustAPI(t, 200, "GET", path, nil)
	out := map[string]string{}
	for _, it := range m["items"].([]any) {
		x := it.(map[string]any)
		out[fmt.Sprint(x["to"])] = fmt.Sprint(x["node"])
	}
	return out, m["missing_nodes"]
}

// TestClusterNodes: two nodes sharing a store and Redis list each other
// up; the calls and decisions of both are seen through either, each with
// its node; a node killed is listed down within 30 s.
func TestClusterNodes(t *testing.T) {
	began := time.Now().Add(-time.Second).Truncate(time.Second)
	core := newUAS(t, "127.0.0.1")
	ns := clusterNodes(t, 2, testRedis(t), "--upstream", "sip:"+core.addr)
	a, b := ns[0], ns[1]
	idA, idB := a.nodeID(t), b.nodeID(t)
	if idA == idB {
		t.Fatalf("both nodes are %q", idA)
	}
	bothUp := func(st map[string]string) bool { return len(st) == 2 && st[idA] == "up" && st[idB] == "up" }
	waitNodes(t, a, 15*time.Second, "node A lists A and B up", bothUp)
	waitNodes(t, b, 15*time.Second, "node B lists A and B up", bothUp)

	acc := id(a.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	a.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2"})
	time.Sleep(500 * time.Millisecond) // both nodes poll the shared revision every 200 ms

	// A call through each node, kept up.
	var hangUp func()
	for _, x := range []struct {
		n  *node
		to string
	}{{a, "442071111111"}, {b, "442072222222"}} {
		u := newUAC(t, "127.0.0.2", x.n.SIP)
		c := newCall("441234567890", x.to)
		u.send(u.invite(c))
		_, res := u.final("INVITE", 5*time.Second)
		u.ack(c, res)
		if res.StatusCode != 200 {
			t.Fatalf("call to %s through %s: %d", x.to, x.n.SIP, res.StatusCode)
		}
		if x.n == a {
			hangUp = func() { u.bye(c) }
		}
	}
	want := map[string]string{"442071111111": idA, "442072222222": idB}
	for _, n := range []*node{a, b} {
		for _, path := range []string{"/calls", "/decisions?result=accepted"} {
			got, missing := rowsByTo(t, n, path)
			if fmt.Sprint(got) != fmt.Sprint(want) || missing != nil {
				t.Errorf("GET %s on %s: rows by node %v (missing %v), want %v", path, n.HTTP, got, missing, want)
			}
		}
	}

	// A time range reaches the peer too: nothing since a minute from now,
	// both rows since the test began.
	since := func(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339)) }
	for _, n := range []*node{a, b} {
		if got, missing := rowsByTo(t, n, "/decisions?result=accepted&since="+since(time.Now().Add(time.Minute))); len(got) != 0 || missing != nil {
			t.Errorf("decisions on %s since a minute from now: %v (missing %v), want none", n.HTTP, got, missing)
		}
		if got, _ := rowsByTo(t, n, "/decisions?result=accepted&since="+since(began)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("decisions on %s since the test began: %v, want %v", n.HTTP, got, want)
		}
	}

	// B dies without a word: A lists it down once its heartbeats stop, and
	// its merged views are A's own again.
	killed := time.Now()
	b.cmd.Process.Kill()
	<-b.exited
	waitNodes(t, a, 30*time.Second, "node A lists B down", func(st map[string]string) bool { return st[idA] == "up" && st[idB] == "down" })
	t.Logf("B listed down %s after it was killed", time.Since(killed).Round(100*time.Millisecond))
	if got, missing := rowsByTo(t, a, "/calls"); fmt.Sprint(got) != fmt.Sprint(map[string]string{"442071111111": idA}) || missing != nil {
		t.Errorf("GET /calls on A after B died: %v (missing %v)", got, missing)
	}
	hangUp()
}
