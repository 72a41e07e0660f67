package registrar

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeLocation holds other nodes' bindings and records what Sync wrote.
type fakeLocation struct {
	mu      sync.Mutex
	remote  []Binding
	err     error
	synced  map[string][]Binding // the last Sync of each user
	node    string
	lostNow map[string][]string // what the next Sync reports lost
}

func (f *fakeLocation) Lookup(_ context.Context, username string, _ time.Time) ([]Binding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []Binding
	for _, b := range f.remote {
		if b.Username == username {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *fakeLocation) List(ctx context.Context, username string, now time.Time) ([]Binding, error) {
	if username != "" {
		return f.Lookup(ctx, username, now)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.remote), f.err
}

func (f *fakeLocation) Sync(_ context.Context, node string, users map[string][]Binding, _ time.Time) (map[string][]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if f.synced == nil {
		f.synced = map[string][]Binding{}
	}
	for u, bs := range users {
		f.synced[u] = bs
	}
	f.node = node
	lost := f.lostNow
	f.lostNow = nil
	return lost, nil
}

func (f *fakeLocation) syncedOf(user string) ([]Binding, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bs, ok := f.synced[user]
	return bs, ok
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// A REGISTER's bindings reach Location stamped with the node, without the
// REGISTER waiting; Lookup and List merge the other nodes' bindings, and
// fall back to the node's own when Location fails.
func TestRegistrarLocation(t *testing.T) {
	loc := &fakeLocation{}
	other := binding("sip:alice@192.168.1.40:5060", time.Minute, 3600, "x", 1)
	other.Node, other.NodeAddr = "b", "192.0.2.2:5060"
	stale := binding("sip:alice@192.168.1.41:5060", -time.Minute, 3600, "y", 1)
	stale.Node = "a" // this node's own, as Redis last had it: memory wins
	loc.remote = []Binding{other, stale}
	g := newTestRegistrar(t, &fakeBindings{}, Config{Location: loc, NodeID: "a", NodeAddr: "192.0.2.1:5060"})
	g.Start(t.Context(), nil)
	defer g.Close()
	const mine = "sip:alice@192.168.1.20:5060"
	if res, err := g.ServeSIP(t.Context(), regMsg{contacts: []string{"<" + mine + ">"}, expires: "3600"}.request(t)); err != nil || res.Status != 200 {
		t.Fatalf("REGISTER: %d %v", res.Status, err)
	}
	waitUntil(t, "alice's bindings in Location", func() bool { bs, ok := loc.syncedOf("alice"); return ok && len(bs) == 1 })
	if bs, _ := loc.syncedOf("alice"); bs[0].Contact != mine || bs[0].Node != "a" || bs[0].NodeAddr != "192.0.2.1:5060" || loc.node != "a" {
		t.Errorf("synced %+v by node %q", bs, loc.node)
	}
	got := g.Lookup("alice", regT0.Add(2*time.Minute))
	if len(got) != 2 || got[0].Contact != other.Contact || got[0].Node != "b" || got[1].Contact != mine {
		t.Errorf("Lookup = %+v, want b's newer binding then this node's", got)
	}
	if l := g.List(1, ""); len(l) != 2 {
		t.Errorf("List = %+v, want both nodes' bindings", l)
	}
	loc.mu.Lock()
	loc.err = errors.New("redis down")
	loc.mu.Unlock()
	if got := g.Lookup("alice", regT0.Add(2*time.Minute)); len(got) != 1 || got[0].Contact != mine {
		t.Errorf("Lookup with Location down = %+v, want this node's own", got)
	}
	if l := g.List(0, ""); len(l) != 1 {
		t.Errorf("List with Location down = %+v, want this node's own", l)
	}
}

// A contact another node registered later is dropped here, but not from
// the store (the row is the other node's now).
func TestRegistrarLocationLost(t *testing.T) {
	const c = "sip:alice@192.168.1.20:5060"
	loc := &fakeLocation{lostNow: map[string][]string{"alice": {c}}}
	st := &fakeBindings{}
	g := newTestRegistrar(t, st, Config{Location: loc, NodeID: "a", NodeAddr: "192.0.2.1:5060"})
	if res, err := g.ServeSIP(t.Context(), regMsg{contacts: []string{"<" + c + ">"}, expires: "3600"}.request(t)); err != nil || res.Status != 200 {
		t.Fatalf("REGISTER: %d %v", res.Status, err)
	}
	st.takeOps()
	g.syncDirty(t.Context())
	if got := g.Local("alice", regT0); len(got) != 0 {
		t.Errorf("this node still holds %+v", got)
	}
	if ops := st.takeOps(); len(ops) != 0 {
		t.Errorf("store ops %v, want none", ops)
	}
}

// With Location, a node loads the stored bindings made at its own SIP
// address (under its new id) or by no node, not the other nodes'.
func TestRegistrarLocationLoad(t *testing.T) {
	mk := func(contact, node, addr string) Binding {
		b := binding(contact, 0, 3600, "c", 1)
		b.Node, b.NodeAddr = node, addr
		return b
	}
	st := &fakeBindings{loaded: []Binding{
		mk("sip:alice@10.0.0.1", "old-a", "192.0.2.1:5060"),
		mk("sip:alice@10.0.0.2", "b", "192.0.2.2:5060"),
		mk("sip:alice@10.0.0.3", "", ""),
	}}
	g := newTestRegistrar(t, st, Config{Location: &fakeLocation{}, NodeID: "a", NodeAddr: "192.0.2.1:5060"})
	got := g.Local("alice", regT0)
	var cs []string
	for _, b := range got {
		if b.Node != "a" || b.NodeAddr != "192.0.2.1:5060" {
			t.Errorf("loaded %s as node %q at %q, want this node", b.Contact, b.Node, b.NodeAddr)
		}
		cs = append(cs, b.Contact)
	}
	if slices.Sort(cs); !slices.Equal(cs, []string{"sip:alice@10.0.0.1", "sip:alice@10.0.0.3"}) {
		t.Errorf("loaded %v", cs)
	}
	_ = g.flush(t.Context())
	for _, k := range []string{"alice sip:alice@10.0.0.1", "alice sip:alice@10.0.0.3"} {
		if b := st.state[k]; b.Node != "a" {
			t.Errorf("store has %s under node %q, want the new id", k, b.Node)
		}
	}
}
