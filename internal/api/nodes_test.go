package api

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/live"
)

// fakeCluster is a cluster of two nodes with fixed rows; it records what it
// was asked for.
type fakeCluster struct {
	mu        sync.Mutex
	callsOf   []int64
	decisions []live.DecisionFilter
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func (f *fakeCluster) Nodes(now time.Time) []live.Node {
	return []live.Node{
		{ID: "a-000001", Address: "192.0.2.1:5060", Version: "v1", StartedAt: t0, LastSeenAt: t0, Status: "up", ActiveCalls: 1, Load: 0.25},
		{ID: "b-000002", Address: "192.0.2.2:5060", Version: "v1", StartedAt: t0, LastSeenAt: t0, Status: "down"},
	}
}

func (f *fakeCluster) Calls(_ context.Context, accountID int64) ([]live.Call, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.callsOf = append(f.callsOf, accountID)
	return []live.Call{{ID: "c1", AccountID: accountID, Node: "a-000001"}}, []string{"c-000003"}
}

func (f *fakeCluster) Decisions(_ context.Context, fl live.DecisionFilter) ([]live.Decision, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decisions = append(f.decisions, fl)
	return []live.Decision{{CallID: "d1", AccountID: fl.AccountID, Node: "b-000002"}, {CallID: "d2", AccountID: 99, Node: "a-000001"}}, nil
}

// nullLive is a node with nothing live; the cluster answers instead.
type nullLive struct{}

func (nullLive) Calls(int64) []live.Call                       { return nil }
func (nullLive) Registrations(int64, string) []live.Binding    { return nil }
func (nullLive) Decisions(live.DecisionFilter) []live.Decision { return nil }
func (nullLive) SendMessage(context.Context, string, string, string) ([]live.MessageResult, error) {
	return nil, live.ErrNotRegistered
}

// TestNodesAndMergedViews: /nodes lists the cluster to the operator only;
// /calls and /decisions answer the cluster's rows with their node, name
// the missing nodes, and pass an account token's scope on.
func TestNodesAndMergedViews(t *testing.T) {
	cl := &fakeCluster{}
	h := newHarness(t, func(o *Options) { o.Live, o.Cluster = nullLive{}, cl })
	m := h.op(200, "GET", "/nodes", nil)
	items := m["items"].([]any)
	if m["total"] != float64(2) || len(items) != 2 {
		t.Fatalf("GET /nodes: %v", m)
	}
	n := items[0].(map[string]any)
	for k, want := range map[string]any{"id": "a-000001", "address": "192.0.2.1:5060", "version": "v1", "status": "up",
		"active_calls": float64(1), "registrations": float64(0), "load": 0.25, "started_at": "2030-01-02T03:04:05Z", "last_seen_at": "2030-01-02T03:04:05Z"} {
		if n[k] != want {
			t.Errorf("node %s = %v, want %v", k, n[k], want)
		}
	}
	if items[1].(map[string]any)["status"] != "down" {
		t.Errorf("second node: %v", items[1])
	}

	a := id(h.op(201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	tok := h.op(201, "POST", "/tokens", map[string]any{"name": "portal", "scope": "account", "account_id": a})["token"].(string)
	if st, _ := h.call(tok, "GET", "/nodes", nil); st != 403 {
		t.Errorf("GET /nodes with an account token: %d, want 403", st)
	}

	m = h.op(200, "GET", "/calls?account=7", nil)
	c := m["items"].([]any)[0].(map[string]any)
	if c["node"] != "a-000001" || fmt.Sprint(m["missing_nodes"]) != "[c-000003]" {
		t.Errorf("GET /calls: %v", m)
	}
	if st, _ := h.call(tok, "GET", "/calls?account=7", nil); st != 200 {
		t.Errorf("GET /calls with an account token: %d", st)
	}
	if fmt.Sprint(cl.callsOf) != fmt.Sprintf("[7 %d]", a) {
		t.Errorf("calls asked of the cluster for accounts %v, want [7 %d]", cl.callsOf, a)
	}

	m = h.op(200, "GET", "/decisions?source=192.0.2.9&result=rejected&call_id=x&limit=5", nil)
	if m["total"] != float64(2) || m["missing_nodes"] != nil || m["items"].([]any)[0].(map[string]any)["node"] != "b-000002" {
		t.Errorf("GET /decisions: %v", m)
	}
	want := live.DecisionFilter{Source: "192.0.2.9", Result: "rejected", CallID: "x", Limit: 5}
	if cl.decisions[0] != want {
		t.Errorf("decisions asked with %+v, want %+v", cl.decisions[0], want)
	}
	// An account token sees only its account's decisions.
	_, m = h.call(tok, "GET", "/decisions", nil)
	if m["total"] != float64(1) || cl.decisions[1].AccountID != a {
		t.Errorf("GET /decisions with an account token: %v (asked %+v)", m, cl.decisions[1])
	}
	testDecisionsTimeRange(t, h, cl)
}

// testDecisionsTimeRange: since and until (RFC 3339) reach the cluster's
// filter; a malformed or reversed one is a 400 naming the field.
func testDecisionsTimeRange(t *testing.T, h *harness, cl *fakeCluster) {
	h.op(200, "GET", "/decisions?since=2025-06-01T09:00:00Z&until=2025-06-01T12:05:00.5%2B02:00", nil)
	got := cl.decisions[len(cl.decisions)-1]
	since, until := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC), time.Date(2025, 6, 1, 10, 5, 0, 5e8, time.UTC)
	if !got.Since.Equal(since) || !got.Until.Equal(until) {
		t.Errorf("decisions asked since %v until %v, want %v and %v", got.Since, got.Until, since, until)
	}
	for _, tt := range []struct{ query, field string }{
		{"since=yesterday", "since"},
		{"until=2025-06-01", "until"},
		{"since=2025-06-01T12:00:00Z&until=2025-06-01T11:00:00Z", "until"},
	} {
		m := h.op(400, "GET", "/decisions?"+tt.query, nil)
		if e := errOf(m); e["field"] != tt.field {
			t.Errorf("GET /decisions?%s: error %v, want one naming %s", tt.query, e, tt.field)
		}
	}
}

// TestViewsWithoutCluster: without a Cluster the views are the node's own
// and the node list is empty.
func TestViewsWithoutCluster(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Live = nullLive{} })
	if m := h.op(200, "GET", "/nodes", nil); m["total"] != float64(0) {
		t.Errorf("GET /nodes: %v", m)
	}
	if m := h.op(200, "GET", "/calls", nil); m["total"] != float64(0) || m["missing_nodes"] != nil {
		t.Errorf("GET /calls: %v", m)
	}
}
