package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testRedis returns the test Redis's address (SIPWARD_TEST_REDIS): without
// it the test skips, or fails in CI.
func testRedis(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("SIPWARD_TEST_REDIS")
	if addr == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SIPWARD_TEST_REDIS is not set in CI")
		}
		t.Skip("SIPWARD_TEST_REDIS not set")
	}
	return addr
}

// clusterNodes starts k nodes sharing one SQLite file and the Redis at
// redisAddr (under a key prefix of their own), with the operator token
// "cluster-admin-token" and extra flags.
func clusterNodes(t *testing.T, k int, redisAddr string, extra ...string) []*node {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"--db", "sqlite:" + filepath.Join(dir, "shared.db"), "--admin-token", "cluster-admin-token",
		"--key-file", filepath.Join(dir, "k"), "--redis", redisAddr,
		"--redis-prefix", fmt.Sprintf("sipward-e2e-%x:", rand.Uint64())}, extra...)
	ns := make([]*node, k)
	for i := range ns {
		ns[i] = start(t, t.TempDir(), args...)
		ns[i].Token = "cluster-admin-token"
	}
	return ns
}

// TestChannelLimitAcrossNodes: two nodes sharing one store and one Redis
// enforce an endpoint's channel limit together — 1 channel means one call
// in the whole cluster, whichever node it reaches.
func TestChannelLimitAcrossNodes(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	ns := clusterNodes(t, 2, testRedis(t), "--upstream", "sip:"+core.addr)
	a, b := ns[0], ns[1]
	acc := id(a.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	a.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "channels": 1})
	time.Sleep(500 * time.Millisecond) // both nodes poll the shared revision every 200 ms

	// A call through node A holds the endpoint's only channel ...
	u := newUAC(t, "127.0.0.2", a.SIP)
	c := newCall("441234567890", "442071234567")
	u.send(u.invite(c))
	_, res := u.final("INVITE", 5*time.Second)
	u.ack(c, res)
	if res.StatusCode != 200 {
		t.Fatalf("call through node A: %d", res.StatusCode)
	}
	// ... so node B refuses the next one.
	if st, reason := placeCall(t, b, "127.0.0.2", "441234567890", "442071234567"); st != 503 {
		t.Fatalf("second call through node B while A holds the channel: %d %s, want 503", st, reason)
	}
	// Hang up on A: B takes a call again.
	u.bye(c)
	a.waitIdle(t)
	if st, reason := placeCall(t, b, "127.0.0.2", "441234567890", "442071234567"); st != 200 {
		t.Fatalf("call through node B after A's call ended: %d %s", st, reason)
	}
}
