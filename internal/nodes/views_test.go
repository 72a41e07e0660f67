package nodes

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/series"
)

// fakeLocal is a node's own rows.
type fakeLocal struct {
	calls     []live.Call
	decisions []live.Decision
	asked     []live.DecisionFilter

	mu      sync.Mutex
	devices map[string][]string // username → contacts registered through the node
	sent    []string
	changed []int64
}

func (f *fakeLocal) Calls(accountID int64) []live.Call {
	var out []live.Call
	for _, c := range f.calls {
		if accountID == 0 || c.AccountID == accountID {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeLocal) Decisions(fl live.DecisionFilter) []live.Decision {
	f.asked = append(f.asked, fl)
	var out []live.Decision
	for _, d := range f.decisions {
		if (fl.AccountID == 0 || d.AccountID == fl.AccountID) && (fl.Result == "" || d.Result == fl.Result) && fl.Matches(d.Time) {
			out = append(out, d)
		}
	}
	return out[:min(len(out), fl.Limit)]
}

// SendMessage and MailboxChanged make fakeLocal the node's Actions: it
// holds the devices of the users in devices.
func (f *fakeLocal) SendMessage(_ context.Context, username, from, text string) ([]live.MessageResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []live.MessageResult
	for _, c := range f.devices[username] {
		f.sent = append(f.sent, from+": "+text)
		out = append(out, live.MessageResult{Contact: c, Status: 200})
	}
	if len(out) == 0 {
		return nil, live.ErrNotRegistered
	}
	return out, nil
}

func (f *fakeLocal) MailboxChanged(id int64) {
	f.mu.Lock()
	f.changed = append(f.changed, id)
	f.mu.Unlock()
}

var secret = bytes.Repeat([]byte{7}, 32)

type testNode struct {
	reg   *Registry
	local *fakeLocal
	views *Views
	srv   *httptest.Server
}

// newCluster starts nodes that know each other as up (no Redis: their
// records are put in place), each serving its Views' Handler.
func newCluster(t *testing.T, ids ...string) []*testNode {
	t.Helper()
	var ns []*testNode
	for _, id := range ids {
		n := &testNode{reg: newReg(t, id, nil, "", 0), local: &fakeLocal{}}
		var err error
		if n.views, err = NewViews(n.reg, n.local, secret, nil); err != nil {
			t.Fatal(err)
		}
		n.views.now = func() time.Time { return t0 }
		n.srv = httptest.NewServer(n.views.Handler(n.local))
		t.Cleanup(n.srv.Close)
		ns = append(ns, n)
	}
	for _, n := range ns {
		for _, o := range ns {
			if o != n {
				n.reg.others[o.reg.ID()] = record{ID: o.reg.ID(), HTTP: strings.TrimPrefix(o.srv.URL, "http://"), LastSeenAt: t0}
			}
		}
	}
	return ns
}

func TestMergedCalls(t *testing.T) {
	ns := newCluster(t, "a-000001", "b-000002")
	ns[0].local.calls = []live.Call{{ID: "c1", AccountID: 1, Start: t0.Add(-time.Minute)}, {ID: "c2", AccountID: 2, Start: t0}}
	ns[1].local.calls = []live.Call{{ID: "c3", AccountID: 1, Start: t0.Add(-2 * time.Minute)}}
	for _, n := range ns {
		calls, missing := n.views.Calls(t.Context(), 0)
		if got := callIDs(calls); got != "c3@b-000002 c1@a-000001 c2@a-000001" || missing != nil {
			t.Errorf("%s: Calls = %s, missing %v", n.reg.ID(), got, missing)
		}
		// The account filter travels to the peers.
		calls, _ = n.views.Calls(t.Context(), 1)
		if got := callIDs(calls); got != "c3@b-000002 c1@a-000001" {
			t.Errorf("%s: Calls of account 1 = %s", n.reg.ID(), got)
		}
	}
}

func callIDs(cs []live.Call) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.ID+"@"+c.Node)
	}
	return strings.Join(s, " ")
}

func decisionIDs(ds []live.Decision) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.CallID+"@"+d.Node)
	}
	return strings.Join(s, " ")
}

// TestMergedDecisions: newest first across nodes, the limit applied after
// merging, the filters passed to every node.
func TestMergedDecisions(t *testing.T) {
	ns := newCluster(t, "a-000001", "b-000002")
	ns[0].local.decisions = []live.Decision{{Seq: 2, CallID: "a2", Time: t0.Add(4 * time.Second), Result: "accepted"},
		{Seq: 1, CallID: "a1", Time: t0.Add(1 * time.Second), Result: "rejected"}}
	ns[1].local.decisions = []live.Decision{{Seq: 2, CallID: "b2", Time: t0.Add(3 * time.Second), Result: "accepted"},
		{Seq: 1, CallID: "b1", Time: t0.Add(2 * time.Second), Result: "accepted"}}
	ds, missing := ns[0].views.Decisions(t.Context(), live.DecisionFilter{Limit: 3})
	if got := decisionIDs(ds); got != "a2@a-000001 b2@b-000002 b1@b-000002" || missing != nil {
		t.Errorf("Decisions = %s, missing %v", got, missing)
	}
	ds, _ = ns[1].views.Decisions(t.Context(), live.DecisionFilter{Result: "accepted", Source: "192.0.2.9", CallID: "x"})
	if got := decisionIDs(ds); got != "a2@a-000001 b2@b-000002 b1@b-000002" {
		t.Errorf("accepted Decisions = %s", got)
	}
	want := live.DecisionFilter{Result: "accepted", Source: "192.0.2.9", CallID: "x", Limit: 100}
	if got := ns[0].local.asked[len(ns[0].local.asked)-1]; got != want {
		t.Errorf("the peer was asked for %+v, want %+v", got, want)
	}
}

// TestMergedDecisionsTimeRange: Since and Until travel to every peer (a
// nanosecond-exact range) and select across the merged view.
func TestMergedDecisionsTimeRange(t *testing.T) {
	ns := newCluster(t, "a-000001", "b-000002")
	ns[0].local.decisions = []live.Decision{{Seq: 2, CallID: "a2", Time: t0.Add(4 * time.Second)},
		{Seq: 1, CallID: "a1", Time: t0.Add(1 * time.Second)}}
	ns[1].local.decisions = []live.Decision{{Seq: 2, CallID: "b2", Time: t0.Add(3 * time.Second)},
		{Seq: 1, CallID: "b1", Time: t0.Add(2 * time.Second)}}
	f := live.DecisionFilter{Since: t0.Add(2*time.Second + time.Nanosecond), Until: t0.Add(4 * time.Second), Limit: 10}
	ds, missing := ns[0].views.Decisions(t.Context(), f)
	if got := decisionIDs(ds); got != "b2@b-000002" || missing != nil {
		t.Errorf("Decisions in [2s+1ns, 4s) = %s, missing %v; want b2 only", got, missing)
	}
	asked := ns[1].local.asked[len(ns[1].local.asked)-1]
	if !asked.Since.Equal(f.Since) || !asked.Until.Equal(f.Until) {
		t.Errorf("the peer was asked for since %v until %v, want %v and %v", asked.Since, asked.Until, f.Since, f.Until)
	}
	ds, _ = ns[1].views.Decisions(t.Context(), live.DecisionFilter{Since: t0.Add(3 * time.Second)})
	if got := decisionIDs(ds); got != "a2@a-000001 b2@b-000002" {
		t.Errorf("Decisions since 3s = %s", got)
	}
}

// TestPeerDecisionsBadTime: a malformed time in a peer request is refused,
// not read as "no range".
func TestPeerDecisionsBadTime(t *testing.T) {
	if _, err := decisionFilter(url.Values{"since": {"yesterday"}}); err == nil || !strings.HasPrefix(err.Error(), "since:") {
		t.Errorf("decisionFilter(since=yesterday) error = %v, want one naming since", err)
	}
}

// TestMissingPeer: a peer that does not answer is left out and named.
func TestMissingPeer(t *testing.T) {
	ns := newCluster(t, "a-000001", "b-000002", "c-000003")
	ns[0].local.calls = []live.Call{{ID: "c1"}}
	ns[1].local.calls = []live.Call{{ID: "c2"}}
	ns[2].srv.Close()
	calls, missing := ns[0].views.Calls(t.Context(), 0)
	if len(calls) != 2 || len(missing) != 1 || missing[0] != "c-000003" {
		t.Errorf("Calls = %s, missing %v; want c1, c2 and c-000003 missing", callIDs(calls), missing)
	}
}

// TestPeerAuth: the node-to-node routes answer only signed requests, signed
// recently, with the cluster's key, for the URI requested.
func TestPeerAuth(t *testing.T) {
	ns := newCluster(t, "a-000001")
	srv := ns[0].srv
	get := func(s signer, at time.Time, path string, tamper func(*http.Request)) int {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if s.key != nil {
			s.sign(req, at)
		}
		if tamper != nil {
			tamper(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good, _ := newSigner(secret, "b-000002")
	other, _ := newSigner(bytes.Repeat([]byte{8}, 32), "b-000002")
	for _, c := range []struct {
		name   string
		s      signer
		at     time.Time
		tamper func(*http.Request)
		want   int
	}{
		{"signed", good, t0, nil, 200},
		{"unsigned", signer{}, t0, nil, 401},
		{"another cluster's key", other, t0, nil, 401},
		{"too old", good, t0.Add(-time.Minute), nil, 401},
		{"another URI", good, t0, func(r *http.Request) { r.URL.RawQuery = url.Values{"account": {"7"}}.Encode() }, 401},
	} {
		if got := get(c.s, c.at, PeerPath+"calls", c.tamper); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if _, err := newSigner([]byte("short"), "x"); err == nil {
		t.Error("a short secret was taken")
	}
}

// TestMessageThroughEveryNode: a MESSAGE reaches each device through the
// node it registered through, wherever it was asked; a user registered
// nowhere is ErrNotRegistered.
func TestMessageThroughEveryNode(t *testing.T) {
	ns := newCluster(t, "a-000001", "b-000002", "c-000003")
	ns[1].local.devices = map[string][]string{"alice": {"sip:alice@10.0.0.2"}}
	ns[2].local.devices = map[string][]string{"alice": {"sip:alice@10.0.0.3"}}
	res, err := ns[0].views.SendMessage(context.Background(), ns[0].local, "alice", "ops", "hello")
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	for _, r := range res {
		nodes[r.Contact] = r.Node
	}
	if len(res) != 2 || nodes["sip:alice@10.0.0.2"] != "b-000002" || nodes["sip:alice@10.0.0.3"] != "c-000003" {
		t.Errorf("results %+v, want one device on b and one on c", res)
	}
	if len(ns[1].local.sent) != 1 || ns[1].local.sent[0] != "ops: hello" {
		t.Errorf("node b sent %v", ns[1].local.sent)
	}
	if _, err := ns[0].views.SendMessage(context.Background(), ns[0].local, "bob", "", "x"); !errors.Is(err, live.ErrNotRegistered) {
		t.Errorf("a user registered nowhere: %v, want ErrNotRegistered", err)
	}
}

// TestMailboxChangedReachesEveryNode: every node hears of a changed
// mailbox, so each notifies the phones it holds.
func TestMailboxChangedReachesEveryNode(t *testing.T) {
	ns := newCluster(t, "a-000001", "b-000002")
	ns[0].views.MailboxChanged(ns[0].local, 42)
	deadline := time.Now().Add(5 * time.Second)
	for _, n := range ns {
		for {
			n.local.mu.Lock()
			got := append([]int64(nil), n.local.changed...)
			n.local.mu.Unlock()
			if len(got) == 1 && got[0] == 42 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s heard %v, want [42]", n.reg.ID(), got)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestReplayedActionRefused: a copy of a signed POST is refused.
func TestReplayedActionRefused(t *testing.T) {
	ns := newCluster(t, "a-000001", "b-000002")
	ns[1].local.devices = map[string][]string{"alice": {"sip:alice@10.0.0.2"}}
	u := ns[1].srv.URL + PeerPath + "message?" + url.Values{"username": {"alice"}, "text": {"x"}, "n": {"1"}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, u, nil)
	ns[0].views.signer.sign(req, t0)
	for i, want := range []int{200, 401} {
		cp, _ := http.NewRequest(http.MethodPost, u, nil)
		cp.Header = req.Header.Clone()
		resp, err := http.DefaultClient.Do(cp)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("request %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if len(ns[1].local.sent) != 1 {
		t.Errorf("node b sent %d MESSAGEs, want 1", len(ns[1].local.sent))
	}
}

// TestMergedDashboard: the dashboard view sums every node's series, asked
// for at the asking node's time, and names a peer that did not answer.
func TestMergedDashboard(t *testing.T) {
	ns := newCluster(t, "a-000001", "b-000002", "c-000003")
	for i, n := range ns {
		r := series.NewRecorder()
		for range i + 1 {
			r.Record(series.Event{Method: "INVITE", AccountID: 4, Stage: "b2bua", Status: 200, Accepted: true}, t0)
		}
		r.Ping(9, time.Duration(i+1)*time.Millisecond, t0)
		n.views.UseSeries(r)
		n.srv.Config.Handler = n.views.Handler(n.local)
	}
	ns[2].srv.Close()
	v, err := ns[0].views.Dashboard(t.Context(), series.Query{AccountID: 4}, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if v.Totals.Calls != 3 || len(v.Accounts) != 1 || v.Accounts[0].Calls != 3 {
		t.Errorf("merged calls = %d, accounts %+v; want 3 (1 from a, 2 from b)", v.Totals.Calls, v.Accounts)
	}
	if strings.Join(v.Nodes, " ") != "a-000001 b-000002" || strings.Join(v.MissingNodes, " ") != "c-000003" {
		t.Errorf("nodes %v, missing %v", v.Nodes, v.MissingNodes)
	}
	pts := ns[0].views.Latency(t.Context(), 9, series.Span, t0.Add(time.Second))
	if len(pts) != 1 || pts[0].Count != 2 || pts[0].MinMS != 1 || pts[0].MaxMS != 2 {
		t.Errorf("merged latency = %+v; want one point of 2 pings, 1 to 2 ms", pts)
	}
	if _, err := ns[0].views.Dashboard(t.Context(), series.Query{Window: time.Second}, t0); err == nil {
		t.Error("a 1-second window: no error")
	}
}
