package nodes

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/live"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newRedis connects to the Redis named by SIPWARD_TEST_REDIS, or skips
// (fails in CI), and returns it with a key prefix of the test's own, whose
// keys are deleted at cleanup.
func newRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := os.Getenv("SIPWARD_TEST_REDIS")
	if addr == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SIPWARD_TEST_REDIS is not set in CI")
		}
		t.Skip("SIPWARD_TEST_REDIS not set: Redis not tested")
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("SIPWARD_TEST_REDIS=%s: %v", addr, err)
	}
	var b [6]byte
	rand.Read(b[:])
	prefix := "sipward-test:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
		c.Close()
	})
	return c, prefix
}

func newReg(t *testing.T, id string, c *redis.Client, prefix string, calls int) *Registry {
	t.Helper()
	r, err := New(Config{Self: Self{ID: id, SIP: "192.0.2.1:5060", Version: "v1.2.3", StartedAt: t0},
		Redis: c, Prefix: prefix, Calls: func() int { return calls }, Registrations: func() int { return 2 * calls }})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.self.HTTP = "127.0.0.1:1" // Run sets it
	r.mu.Unlock()
	return r
}

// status returns the status of each listed node, "id=status" by ID.
func status(ns []live.Node) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.ID+"="+n.Status)
	}
	return strings.Join(s, " ")
}

func TestNewID(t *testing.T) {
	a, err := NewID("edge1.example.net", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewID("edge1.example.net", rand.Reader)
	if !regexp.MustCompile(`^edge1-[0-9a-f]{6}$`).MatchString(a) || a == b {
		t.Errorf("NewID = %q, %q; want edge1-<6 hex>, different each time", a, b)
	}
	if id, _ := NewID("", bytes.NewReader([]byte{1, 2, 3})); id != "sipward-010203" {
		t.Errorf("NewID without a host name = %q", id)
	}
	if _, err := NewID("h", bytes.NewReader(nil)); err == nil {
		t.Error("NewID with no randomness: no error")
	}
}

func TestAdvertise(t *testing.T) {
	for _, c := range []struct{ bound, host, want string }{
		{"127.0.0.1:5060", "", "127.0.0.1:5060"},
		{"127.0.0.1:5060", "sip.example.net", "sip.example.net:5060"},
		{"[2001:db8::1]:8080", "", "[2001:db8::1]:8080"},
	} {
		if got, err := Advertise(c.bound, c.host); err != nil || got != c.want {
			t.Errorf("Advertise(%q, %q) = %q, %v; want %q", c.bound, c.host, got, err, c.want)
		}
	}
	if got, err := Advertise("[::]:8080", ""); err != nil || !strings.HasSuffix(got, ":8080") || strings.HasPrefix(got, "[::]") {
		t.Errorf("Advertise of an unspecified address = %q, %v; want an address of the machine", got, err)
	}
	if _, err := Advertise("nonsense", ""); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("Advertise(nonsense): %v, want an error naming it", err)
	}
}

func TestLoadOf(t *testing.T) {
	for _, c := range []struct {
		used, wall time.Duration
		first      bool
		cores      int
		want       float64
	}{
		{time.Second, 5 * time.Second, false, 2, 0.1},
		{10 * time.Second, 5 * time.Second, false, 2, 1},
		{time.Second, 5 * time.Second, true, 2, 0},
		{time.Second, 0, false, 2, 0},
	} {
		if got := loadOf(c.used, c.wall, c.first, c.cores); got != c.want {
			t.Errorf("loadOf(%s, %s, %v, %d) = %v, want %v", c.used, c.wall, c.first, c.cores, got, c.want)
		}
	}
}

// TestRegistryAlone: without Redis a node lists only itself, always up.
func TestRegistryAlone(t *testing.T) {
	r := newReg(t, "solo-000001", nil, "", 3)
	r.Beat(t.Context(), t0.Add(time.Hour))
	ns := r.Nodes(t0.Add(2 * time.Hour))
	want := live.Node{ID: "solo-000001", Address: "192.0.2.1:5060", Version: "v1.2.3", StartedAt: t0,
		LastSeenAt: t0.Add(time.Hour), Status: "up", ActiveCalls: 3, Registrations: 6}
	if len(ns) != 1 || ns[0] != want {
		t.Fatalf("Nodes = %+v, want [%+v]", ns, want)
	}
	if addr, up := r.Node("solo-000001", t0); addr != "192.0.2.1:5060" || !up {
		t.Errorf("Node(self) = %q, %v", addr, up)
	}
	if addr, up := r.Node("other-000002", t0); addr != "" || up {
		t.Errorf("Node(unknown) = %q, %v; want \"\", false", addr, up)
	}
	if p := r.Peers(t0); len(p) != 0 {
		t.Errorf("Peers = %v, want none", p)
	}
	if r.Degraded(t0) {
		t.Error("Degraded without Redis")
	}
}

func TestConfigChecked(t *testing.T) {
	for _, c := range []Config{
		{},
		{Self: Self{ID: "a b"}},
		{Self: Self{ID: "a"}, Interval: time.Minute, DownAfter: time.Second},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v): no error", c)
		}
	}
}

// TestRegistryRedis: nodes sharing a Redis list each other; one that stops
// beating is down after DownAfter and forgotten after Forget; one that
// leaves is down at once.
func TestRegistryRedis(t *testing.T) {
	c, prefix := newRedis(t)
	a := newReg(t, "a-000001", c, prefix, 1)
	b := newReg(t, "b-000002", c, prefix, 5)
	ctx := t.Context()
	a.Beat(ctx, t0)
	b.Beat(ctx, t0.Add(time.Second))
	a.Beat(ctx, t0.Add(2*time.Second))
	if got := status(a.Nodes(t0.Add(2 * time.Second))); got != "a-000001=up b-000002=up" {
		t.Fatalf("A lists %s", got)
	}
	if got := status(b.Nodes(t0.Add(2 * time.Second))); got != "a-000001=up b-000002=up" {
		t.Fatalf("B lists %s (before its next heartbeat it knows only itself)", got)
	}
	if ns := a.Nodes(t0.Add(2 * time.Second)); ns[1].ActiveCalls != 5 || ns[1].Registrations != 10 {
		t.Errorf("A sees B as %+v", ns[1])
	}
	if addr, up := a.Node("b-000002", t0.Add(3*time.Second)); addr != "192.0.2.1:5060" || !up {
		t.Errorf("A: Node(B) = %q, %v", addr, up)
	}
	if p := a.Peers(t0.Add(3 * time.Second)); len(p) != 1 || p[0] != (Peer{"b-000002", "127.0.0.1:1"}) {
		t.Errorf("A: Peers = %v", p)
	}

	// B stops beating: down once its last heartbeat is older than DownAfter.
	now := t0.Add(time.Second + DefaultDownAfter + time.Millisecond)
	a.Beat(ctx, now)
	if got := status(a.Nodes(now)); got != "a-000001=up b-000002=down" {
		t.Fatalf("A lists %s after B stopped", got)
	}
	if _, up := a.Node("b-000002", now); up {
		t.Error("A: Node(B) up after B stopped")
	}
	if len(a.Peers(now)) != 0 {
		t.Error("A: a down node among the peers")
	}
	// Forgotten after Forget.
	now = t0.Add(DefaultForget + 2*time.Second)
	a.Beat(ctx, now)
	if got := status(a.Nodes(now)); got != "a-000001=up" {
		t.Errorf("A lists %s an hour after B stopped", got)
	}
}

// TestRegistryLeave: a node that shuts down is down for the others at once,
// and beats no more.
func TestRegistryLeave(t *testing.T) {
	c, prefix := newRedis(t)
	a := newReg(t, "a-000001", c, prefix, 0)
	b := newReg(t, "b-000002", c, prefix, 0)
	ctx := t.Context()
	b.Beat(ctx, t0)
	b.Leave(ctx, t0.Add(time.Second))
	b.Beat(ctx, t0.Add(2*time.Second)) // after Leave: nothing
	a.Beat(ctx, t0.Add(2*time.Second))
	if got := status(a.Nodes(t0.Add(2 * time.Second))); got != "a-000001=up b-000002=down" {
		t.Errorf("A lists %s after B left", got)
	}
}

// TestRegistryRedisGone: when Redis stops answering the node keeps listing
// itself and the others as last seen, and says it is degraded.
func TestRegistryRedisGone(t *testing.T) {
	c, prefix := newRedis(t)
	other := redis.NewClient(&redis.Options{Addr: c.Options().Addr})
	a := newReg(t, "a-000001", other, prefix, 0)
	b := newReg(t, "b-000002", c, prefix, 0)
	ctx := t.Context()
	b.Beat(ctx, t0)
	a.Beat(ctx, t0)
	other.Close() // a's Redis is gone
	a.Beat(ctx, t0.Add(5*time.Second))
	if !a.Degraded(t0.Add(6 * time.Second)) {
		t.Error("not Degraded after a failed heartbeat")
	}
	if a.Degraded(t0.Add(5*time.Second + time.Minute + time.Millisecond)) {
		t.Error("still Degraded a minute after the last failure")
	}
	if got := status(a.Nodes(t0.Add(6 * time.Second))); got != "a-000001=up b-000002=up" {
		t.Errorf("A lists %s", got)
	}
	if got := status(a.Nodes(t0.Add(20 * time.Second))); got != "a-000001=up b-000002=down" {
		t.Errorf("A lists %s once B's last heartbeat is old", got)
	}
}
