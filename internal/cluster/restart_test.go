package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/stage/firewall"
)

// ownRedisOn starts a redis-server of the test's own on port (0: a free one) and
// returns its address and a function that stops it; it skips without
// redis-server (and without SIPWARD_TEST_REDIS, like the other Redis tests).
func ownRedisOn(t *testing.T, port int) (addr string, stop func()) {
	t.Helper()
	newClient(t) // skips when Redis is not to be tested
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Cleanup(stop)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(t.Context()).Err() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer in 10 s", addr)
		}
	}
	return addr, stop
}

// TestRedisFailuresRedisRestarts: counts work, fall back within CallTimeout
// when Redis is killed, and come back once Redis does and RetryAfter has
// passed.
func TestRedisFailuresRedisRestarts(t *testing.T) {
	addr, stop := ownRedisOn(t, 0)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	r := NewRedisFailures(c, "")
	src := netip.MustParseAddr("203.0.113.20")
	add := func(now time.Time) (int, error) {
		return r.Add(src, firewall.AuthFailure, 100, time.Hour, now)
	}
	if n, err := add(t0); n != 1 || err != nil {
		t.Fatalf("Add with Redis up: %d, %v", n, err)
	}
	stop()
	start := time.Now()
	if _, err := add(t0.Add(time.Second)); err == nil {
		t.Fatal("Add with Redis killed: no error")
	}
	if d := time.Since(start); d > CallTimeout+time.Second { // generous: the machine may be busy
		t.Errorf("Add with Redis killed took %v; want about CallTimeout (%v)", d, CallTimeout)
	}
	if !r.Degraded(t0.Add(time.Second)) {
		t.Error("Degraded does not report the fallback")
	}
	_, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscan(port, &p)
	ownRedisOn(t, p) // back, empty (no persistence)
	if _, err := add(t0.Add(time.Second + RetryAfter/2)); err == nil {
		t.Error("Redis tried again within RetryAfter of the failure")
	}
	n, err := add(t0.Add(time.Second + RetryAfter))
	if err != nil || n != 1 {
		t.Errorf("Add once Redis is back and RetryAfter has passed: %d, %v; want 1 (a fresh count)", n, err)
	}
}
