package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/live"
)

// fakeNodes is a cluster of fixed nodes.
type fakeNodes []live.Node

func (f fakeNodes) Nodes(time.Time) []live.Node { return f }

// TestNodesPage: the operator sees every node of the cluster with its
// status, linked from the navigation; an account login has neither page
// nor link; the operator sees each call's and decision's node.
func TestNodesPage(t *testing.T) {
	started := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ns := fakeNodes{
		{ID: "edge1-a1b2c3", Address: "192.0.2.1:5060", Version: "v1.4.0", StartedAt: started, LastSeenAt: time.Now(), Status: "up", ActiveCalls: 12, Registrations: 340, Load: 0.25},
		{ID: "edge2-d4e5f6", Address: "192.0.2.2:5060", Version: "v1.3.9", StartedAt: started, LastSeenAt: time.Now().Add(-time.Minute), Status: "down"},
	}
	e := newEnv(t, func(o *Options) { o.Nodes = ns })
	e.login("root", opPass, 0)
	a := e.account("Acme", 10)
	e.login("acme", acctPass, a.ID)
	e.live.calls = []live.Call{{ID: "c1", AccountID: a.ID, Account: "Acme", Node: "edge2-d4e5f6", Start: time.Now()}}
	e.live.decisions = []live.Decision{{Seq: 1, Time: time.Now(), AccountID: a.ID, Result: "accepted", Node: "edge2-d4e5f6"}}

	op := e.browser()
	op.mustSignIn("root", opPass)
	r := op.get("/nodes")
	if r.status != http.StatusOK {
		t.Fatalf("GET /nodes: %d %s", r.status, textOf(r.body))
	}
	text := textOf(r.body)
	for _, want := range []string{"1 of 2 nodes up.", "edge1-a1b2c3 192.0.2.1:5060 v1.4.0 2030-01-02 03:04:05 UTC", "up 12 340 25 %",
		"edge2-d4e5f6 192.0.2.2:5060 v1.3.9", "ago down 0 0 0 %"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Nodes page lacks %q: %s", want, text)
		}
	}
	if !strings.Contains(r.body, `<a href="/nodes" aria-current="page">Nodes</a>`) {
		t.Error("no current Nodes link in the navigation")
	}
	for _, p := range []string{"/calls", "/decisions"} {
		if r := op.get(p); !strings.Contains(textOf(r.body), "edge2-d4e5f6") {
			t.Errorf("the operator's %s does not name the node: %s", p, textOf(r.body))
		}
	}

	acct := e.browser()
	acct.mustSignIn("acme", acctPass)
	if r := acct.get("/nodes"); r.status != http.StatusNotFound {
		t.Errorf("an account login's GET /nodes: %d, want 404", r.status)
	}
	for _, p := range []string{"/calls", "/decisions"} {
		r := acct.get(p)
		if strings.Contains(r.body, `href="/nodes"`) || strings.Contains(r.body, "edge2-d4e5f6") {
			t.Errorf("an account login's %s shows the nodes: %s", p, textOf(r.body))
		}
	}
}

// TestNodesPageUnavailable: without a list of nodes the page says so.
func TestNodesPageUnavailable(t *testing.T) {
	e := newEnv(t)
	e.login("root", opPass, 0)
	b := e.browser()
	b.mustSignIn("root", opPass)
	if r := b.get("/nodes"); r.status != http.StatusOK || !strings.Contains(r.body, "not available") {
		t.Errorf("GET /nodes without nodes: %d %s", r.status, textOf(r.body))
	}
}
