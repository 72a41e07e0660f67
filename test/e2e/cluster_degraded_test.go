package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ownRedis is a redis-server of the test's own (the machine's shared one
// is never killed), on a port that stays the same across restarts.
type ownRedis struct {
	t    *testing.T
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startOwnRedis starts a redis-server on a free port; it is killed at the
// end of the test.
func startOwnRedis(t *testing.T) *ownRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed in CI")
		}
		t.Skip("redis-server not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &ownRedis{t: t, Addr: l.Addr().String()}
	l.Close()
	r.start()
	t.Cleanup(r.kill)
	return r
}

// start runs the server (again) and waits until it answers.
func (r *ownRedis) start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	dieWithTest(r.cmd)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(r.cmd, r.done)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
			c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer in 10s", r.Addr)
		}
	}
}

// kill kills the server (SIGKILL: it keeps nothing).
func (r *ownRedis) kill() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// healthOf returns the node's /healthz status code and body.
func healthOf(t *testing.T, n *node) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(n.HTTP + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("/healthz: %v: %s", err, b)
	}
	return resp.StatusCode, h
}

// metricOf returns the value of an unlabelled metric on the node's /metrics.
func metricOf(t *testing.T, n *node, name string) string {
	t.Helper()
	resp, err := http.Get(n.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

// holdCall places a call from src through n and keeps it up; it returns
// the UAC and the call for the BYE.
func holdCall(t *testing.T, n *node, src string) (*uac, *call) {
	t.Helper()
	u := newUAC(t, src, n.SIP)
	c := newCall("441234567890", "442071234567")
	u.send(u.invite(c))
	_, res := u.final("INVITE", 5*time.Second)
	u.ack(c, res)
	if res.StatusCode != 200 {
		t.Fatalf("call through %s: %d %s", n.SIP, res.StatusCode, res.Reason)
	}
	return u, c
}

// clusterOf starts k nodes sharing a SQLite file and the Redis at
// redisAddr, with an endpoint 127.0.0.2 of one channel, and extra flags.
func clusterOf(t *testing.T, k int, redisAddr string, core *uas, extra ...string) []*node {
	t.Helper()
	dir := t.TempDir()
	prefix := fmt.Sprintf("sipward-e2e-%x:", rand.Uint64())
	args := append([]string{"--db", "sqlite:" + filepath.Join(dir, "shared.db"), "--admin-token", "cluster-admin-token",
		"--key-file", filepath.Join(dir, "k"), "--upstream", "sip:" + core.addr, "--redis", redisAddr, "--redis-prefix", prefix}, extra...)
	var ns []*node
	for range k {
		n := start(t, t.TempDir(), args...)
		n.Token = "cluster-admin-token"
		ns = append(ns, n)
	}
	acc := id(ns[0].mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	ns[0].mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "channels": 1})
	for _, n := range ns {
		waitSnapshot(t, n)
	}
	return ns
}

// TestRedisLossDegradesToNodeLocalLimits: two nodes share Redis; when it
// dies they keep taking calls with node-local limits and say "degraded"
// (HTTP 200) on /healthz and in metrics; when it comes back (empty) the
// calls still up are counted in it again, so the cluster-wide limit holds.
func TestRedisLossDegradesToNodeLocalLimits(t *testing.T) {
	r := startOwnRedis(t)
	core := newUAS(t, "127.0.0.1")
	ns := clusterOf(t, 2, r.Addr, core, "--channel-lease", "3s")
	a, b := ns[0], ns[1]

	ua, ca := holdCall(t, a, "127.0.0.2") // the endpoint's one channel, in Redis
	if st, reason := placeCall(t, b, "127.0.0.2", "441234567890", "442071234567"); st != 503 {
		t.Fatalf("second call through B with Redis up: %d %s, want 503", st, reason)
	}

	r.kill()
	waitFor(t, "node B reports Redis down", func() bool {
		code, h := healthOf(t, b)
		return code == 200 && h["status"] == "degraded" && strings.Contains(fmt.Sprint(h["redis"]), "unreachable")
	})
	if v := metricOf(t, b, "sipward_redis_up"); v != "0" {
		t.Errorf("sipward_redis_up on B with Redis down: %q, want 0", v)
	}
	// Node-local: B holds none of the channel, so it takes one call, then
	// refuses the next by its own count.
	ub, cb := holdCall(t, b, "127.0.0.2")
	if st, reason := placeCall(t, b, "127.0.0.2", "441234567890", "442071234567"); st != 503 {
		t.Fatalf("second call through B with Redis down: %d %s, want 503 (node-local limit)", st, reason)
	}

	r.start() // back, empty
	for _, n := range ns {
		waitFor(t, "node reports Redis up again", func() bool {
			_, h := healthOf(t, n)
			return h["redis"] == "ok"
		})
	}
	// B's node-local hold went to Redis when it came back, A's is recorded
	// again at its next renewal (every second with a 3 s lease): the
	// cluster counts both calls, so neither node takes a third.
	time.Sleep(2 * time.Second)
	for _, n := range ns {
		if st, reason := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567"); st != 503 {
			t.Errorf("call through %s with two calls up and Redis back: %d %s, want 503", n.SIP, st, reason)
		}
	}
	ua.bye(ca)
	ub.bye(cb)
	a.waitIdle(t)
	b.waitIdle(t)
	if st, reason := placeCall(t, a, "127.0.0.2", "441234567890", "442071234567"); st != 200 {
		t.Fatalf("call after both hung up: %d %s", st, reason)
	}
}

// TestDeadNodesChannelsComeBackWithinTheLease: a call outlives its lease
// because its node renews it; when the node is killed (-9) mid-call, its
// channel comes back to the cluster within the lease.
func TestDeadNodesChannelsComeBackWithinTheLease(t *testing.T) {
	redisAddr := os.Getenv("SIPWARD_TEST_REDIS")
	if redisAddr == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SIPWARD_TEST_REDIS is not set in CI")
		}
		t.Skip("SIPWARD_TEST_REDIS not set")
	}
	const lease = 3 * time.Second
	core := newUAS(t, "127.0.0.1")
	ns := clusterOf(t, 2, redisAddr, core, "--channel-lease", lease.String())
	a, b := ns[0], ns[1]
	holdCall(t, a, "127.0.0.2")
	time.Sleep(2 * lease) // renewed: still held
	if st, reason := placeCall(t, b, "127.0.0.2", "441234567890", "442071234567"); st != 503 {
		t.Fatalf("call through B while A's call (older than the lease) is up: %d %s, want 503", st, reason)
	}
	a.cmd.Process.Kill()
	<-a.exited
	killed := time.Now()
	var st int
	var reason string
	for time.Since(killed) < 3*lease {
		if st, reason = placeCall(t, b, "127.0.0.2", "441234567890", "442071234567"); st == 200 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st != 200 {
		t.Fatalf("call through B %s after A died: %d %s, want 200 within the lease (%s)", time.Since(killed), st, reason, lease)
	}
	t.Logf("A's channel came back %s after it was killed (lease %s)", time.Since(killed).Round(100*time.Millisecond), lease)
}
