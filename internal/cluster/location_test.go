package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/store"
)

func locBinding(user, contact, node string, registered time.Time, ttl time.Duration) store.Registration {
	return store.Registration{Username: user, SIPUserID: 1, AccountID: 7, Contact: contact, Source: "198.51.100.7:5060",
		Transport: "udp", Expires: registered.Add(ttl), Registered: registered, Node: node, NodeAddr: node + ":5060"}
}

func contacts(bs []store.Registration) map[string]string {
	m := map[string]string{}
	for _, b := range bs {
		m[b.Contact] = b.Node
	}
	return m
}

// Two nodes publish their bindings of one user: each Sync sets its own
// fields and removes its own that are gone, never another node's; a node's
// stale copy loses to a later registration elsewhere; expired fields are
// not read.
func TestRedisLocation(t *testing.T) {
	c := newClient(t)
	l := NewRedisLocation(c, newPrefix(t, c))
	ctx := context.Background()
	sync := func(node string, bs ...store.Registration) map[string][]string {
		t.Helper()
		users := map[string][]store.Registration{"alice": bs}
		lost, err := l.Sync(ctx, node, users, t0)
		if err != nil {
			t.Fatal(err)
		}
		return lost
	}
	sync("a", locBinding("alice", "sip:a1", "a", t0, time.Hour), locBinding("alice", "sip:old", "a", t0.Add(-time.Hour), time.Hour+time.Second))
	sync("b", locBinding("alice", "sip:b1", "b", t0, time.Hour), locBinding("alice", "sip:moved", "b", t0, time.Hour))
	// a still holds "sip:moved" from earlier: b's later registration wins.
	if lost := sync("a", locBinding("alice", "sip:a1", "a", t0, time.Hour), locBinding("alice", "sip:moved", "a", t0.Add(-time.Minute), time.Hour)); len(lost["alice"]) != 1 || lost["alice"][0] != "sip:moved" {
		t.Errorf("lost = %v, want sip:moved", lost)
	}
	got, err := l.Lookup(ctx, "alice", t0.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"sip:a1": "a", "sip:b1": "b", "sip:moved": "b"} // sip:old expired, and a dropped it
	if m := contacts(got); len(m) != len(want) || m["sip:a1"] != "a" || m["sip:b1"] != "b" || m["sip:moved"] != "b" {
		t.Errorf("Lookup = %v, want %v", m, want)
	}
	sync("b") // b has none left
	all, err := l.List(ctx, "", t0.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if m := contacts(all); len(m) != 1 || m["sip:a1"] != "a" {
		t.Errorf("List = %v, want only a's sip:a1", m)
	}
	if ttl := c.PTTL(ctx, l.key("alice")).Val(); ttl <= 0 {
		t.Errorf("the user's key has TTL %v, want one", ttl)
	}
	if l.Degraded(t0) {
		t.Error("Degraded after successful calls")
	}
}

// Redis down: every call fails fast with an error naming the cause, and
// Degraded says so for a minute.
func TestRedisLocationDown(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer c.Close()
	l := NewRedisLocation(c, "")
	start := time.Now()
	if _, err := l.Lookup(context.Background(), "alice", t0); err == nil {
		t.Fatal("Lookup without Redis: no error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Lookup took %v without Redis", d)
	}
	if _, err := l.Sync(context.Background(), "a", map[string][]store.Registration{"alice": nil}, t0); err == nil {
		t.Fatal("Sync without Redis: no error")
	}
	if !l.Degraded(t0.Add(30*time.Second)) || l.Degraded(t0.Add(2*time.Minute)) {
		t.Error("Degraded should hold for a minute after the failure")
	}
}

func TestDeliveries(t *testing.T) {
	d, err := NewDeliveries([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewDeliveries([]byte("another secret, another cluster"))
	v := d.Sign("alice", "sip:alice@192.168.1.20:5060", "leg-b", t0)
	if u, c, ok := d.Verify(v, "leg-b", t0.Add(30*time.Second)); !ok || u != "alice" || c != "sip:alice@192.168.1.20:5060" {
		t.Errorf("Verify = %q %q %v", u, c, ok)
	}
	for name, ok := range map[string]bool{
		"other call":      func() bool { _, _, ok := d.Verify(v, "leg-c", t0); return ok }(),
		"too old":         func() bool { _, _, ok := d.Verify(v, "leg-b", t0.Add(2*time.Minute)); return ok }(),
		"other cluster":   func() bool { _, _, ok := other.Verify(v, "leg-b", t0); return ok }(),
		"other user":      func() bool { _, _, ok := d.Verify("bob"+v[5:], "leg-b", t0); return ok }(),
		"malformed value": func() bool { _, _, ok := d.Verify("alice sip:x", "leg-b", t0); return ok }(),
	} {
		if ok {
			t.Errorf("%s: verified", name)
		}
	}
	if _, err := NewDeliveries([]byte("short")); err == nil {
		t.Error("a short secret was accepted")
	}
}
