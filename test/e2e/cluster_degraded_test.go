package e2e

import (
	"database/sql"
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
	ns := clusterNodes(t, k, redisAddr, append([]string{"--upstream", "sip:" + core.addr}, extra...)...)
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
	redisAddr := testRedis(t)
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

// ownPostgres is a PostgreSQL server of the test's own (initdb and pg_ctl
// in a temporary directory, run as the postgres user when the test runs as
// root): the machine's shared one is never stopped.
type ownPostgres struct {
	t        *testing.T
	dir, bin string
	port     string
	DSN      string
}

// startOwnPostgres initialises and starts a server on a free port; it is
// stopped and removed at the end of the test.
func startOwnPostgres(t *testing.T) *ownPostgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("PostgreSQL's initdb is not installed in CI")
		}
		t.Skip("initdb not installed")
	}
	dir, err := os.MkdirTemp("", "sipward-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	p := &ownPostgres{t: t, dir: dir, bin: filepath.Dir(bins[len(bins)-1]), port: port,
		DSN: "postgres://postgres@127.0.0.1:" + port + "/postgres?sslmode=disable"}
	if os.Geteuid() == 0 { // initdb refuses root
		if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown postgres %s: %v %s", dir, err, out)
		}
	}
	p.run("initdb", "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync")
	p.start()
	t.Cleanup(p.kill)
	return p
}

// run runs a PostgreSQL program, as postgres when the test is root.
func (p *ownPostgres) run(prog string, args ...string) {
	p.t.Helper()
	name, full := filepath.Join(p.bin, prog), args
	if os.Geteuid() == 0 {
		name, full = "runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, prog)}, args...)
	}
	cmd := exec.Command(name, full...)
	cmd.Dir = p.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("%s %v: %v\n%s", prog, args, err, out)
	}
}

// start starts the server (again) and waits until it accepts connections.
func (p *ownPostgres) start() {
	p.t.Helper()
	p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60",
		"-o", "-p "+p.port+" -k "+p.dir+" -c listen_addresses=127.0.0.1 -c fsync=off", "start")
}

// kill stops the server at once (immediate: no checkpoint, like a crash).
func (p *ownPostgres) kill() {
	name, args := filepath.Join(p.bin, "pg_ctl"), []string{"-D", filepath.Join(p.dir, "data"), "-m", "immediate", "-w", "stop"}
	if os.Geteuid() == 0 {
		name, args = "runuser", append([]string{"-u", "postgres", "--", name}, args...)
	}
	exec.Command(name, args...).Run() // already stopped: nothing to do
}

// TestPostgresLossKeepsServing: a node whose PostgreSQL dies keeps its last
// configuration and takes calls and registrations, says "degraded" (HTTP
// 200) on /healthz, and writes the registrations it took meanwhile when the
// database is back.
func TestPostgresLossKeepsServing(t *testing.T) {
	pg := startOwnPostgres(t)
	core := newUAS(t, "127.0.0.1")
	n := start(t, "", "--db", pg.DSN, "--admin-token", "pg-loss-admin-token", "--upstream", "sip:"+core.addr)
	n.Token = "pg-loss-admin-token"
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2"})
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "alice", "password": "Alice-secret-99"})
	waitSnapshot(t, n)

	pg.kill()
	if st, reason := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567"); st != 200 {
		t.Fatalf("call with the database down: %d %s, want 200 on the last snapshot", st, reason)
	}
	code, h := healthOf(t, n)
	if code != 200 || h["status"] != "degraded" || !strings.Contains(fmt.Sprint(h["store"]), "unreachable") {
		t.Errorf("/healthz with the database down: %d %v, want 200 degraded with the store unreachable", code, h)
	}
	phone := newUAC(t, "127.0.0.3", n.SIP)
	cseq := 0
	if res := phone.register(t, "alice", "Alice-secret-99", "pg-loss-reg", &cseq, []string{"<sip:alice@" + phone.local + ">"}, "300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER with the database down: %d %s", res.StatusCode, res.Reason)
	}

	pg.start()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, h = healthOf(t, n); h["status"] == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz 20 s after the database came back: %d %v", code, h)
		}
		time.Sleep(200 * time.Millisecond)
	}
	db, err := sql.Open("pgx", pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored int
	for deadline := time.Now().Add(20 * time.Second); stored == 0; time.Sleep(200 * time.Millisecond) {
		_ = db.QueryRow("SELECT count(*) FROM registrations WHERE username = 'alice'").Scan(&stored)
		if stored == 0 && time.Now().After(deadline) {
			t.Fatal("the registration taken while the database was down is not in it 20 s after it came back")
		}
	}
	// And configuration changes reach the node again.
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.4"})
	waitSnapshot(t, n)
	if st, reason := placeCall(t, n, "127.0.0.4", "441234567890", "442071234567"); st != 200 {
		t.Fatalf("call from an endpoint added after the database came back: %d %s", st, reason)
	}
}

// TestRedisThroughSentinel: --redis names Redis Sentinel (master_name in
// the URL) and the node keeps its live state in the primary the sentinel
// names.
func TestRedisThroughSentinel(t *testing.T) {
	primary := startOwnRedis(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sentinel := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	_, sport, _ := net.SplitHostPort(sentinel)
	_, pport, _ := net.SplitHostPort(primary.Addr)
	conf := filepath.Join(dir, "sentinel.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor edge 127.0.0.1 %s 1\nsentinel down-after-milliseconds edge 1000\n", sport, dir, pport)), 0o600)
	cmd := exec.Command("redis-server", conf, "--sentinel")
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	core := newUAS(t, "127.0.0.1")
	prefix := fmt.Sprintf("sipward-e2e-%x:", rand.Uint64())
	waitFor(t, "the sentinel to answer", func() bool {
		c, err := net.Dial("tcp", sentinel)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	n := start(t, "", "--upstream", "sip:"+core.addr, "--admin-token", "sentinel-admin-token",
		"--redis", "redis://"+sentinel+"?master_name=edge", "--redis-prefix", prefix)
	n.Token = "sentinel-admin-token"
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "channels": 1})
	waitSnapshot(t, n)
	holdCall(t, n, "127.0.0.2")
	if st, reason := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567"); st != 503 {
		t.Fatalf("second call on a 1-channel endpoint: %d %s, want 503", st, reason)
	}
	// The hold is in the primary the sentinel named.
	c, err := net.Dial("tcp", primary.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "SCARD %sch-index\r\n", prefix)
	buf := make([]byte, 32)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	k, _ := c.Read(buf)
	if got := strings.TrimSpace(string(buf[:k])); got != ":1" && got != ":2" { // the endpoint's, and the account's when it has a capacity
		t.Errorf("keys holding channels in the primary: %q, want the endpoint's", got)
	}
	if _, h := healthOf(t, n); h["redis"] != "ok" {
		t.Errorf("/healthz redis: %v", h["redis"])
	}
}
