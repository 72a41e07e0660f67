package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sippBin returns SIPp's path. CI installs it (.ci/run); elsewhere a
// missing SIPp skips the test.
func sippBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sipp is not installed (CI must install sip-tester)")
		}
		t.Skip("sipp is not installed: apt-get install sip-tester")
	}
	return p
}

// sipp runs SIPp with a scenario from testdata/sipp until it exits, at most timeout.
type sippRun struct {
	cmd  *exec.Cmd
	out  strings.Builder
	done chan error
}

func startSIPp(t *testing.T, timeout time.Duration, scenario string, args ...string) *sippRun {
	t.Helper()
	sf, _ := filepath.Abs(filepath.Join("testdata", "sipp", scenario))
	return runSIPp(t, timeout, append([]string{"-sf", sf, "-trace_msg"}, args...)...)
}

// runSIPp runs SIPp with args (a scenario: -sf or -sn) and its errors
// traced; a load run leaves -trace_msg out (thousands of calls).
func runSIPp(t *testing.T, timeout time.Duration, args ...string) *sippRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	full := append([]string{"-nostdin", "-bind_local", "-trace_err"}, args...)
	s := &sippRun{cmd: exec.CommandContext(ctx, sippBin(t), full...), done: make(chan error, 1)}
	dieWithTest(s.cmd)
	s.cmd.Dir = t.TempDir()
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(s.cmd.Dir, "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", filepath.Base(l), tail(string(b), 4000))
			}
		}
	})
	return s
}

func (s *sippRun) wait(t *testing.T) {
	t.Helper()
	if err := <-s.done; err != nil {
		t.Fatalf("sipp %s: %v\n%s", strings.Join(s.cmd.Args[1:3], " "), err, tail(s.out.String(), 3000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// freePort finds a UDP port free on ip.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestSIPpIPAuthCall: SIPp as a customer switch on 127.0.0.2 calls through
// sipward to a core, 200 and BYE.
func TestSIPpIPAuthCall(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2"})
	waitSnapshot(t, n)
	s := startSIPp(t, 30*time.Second, "uac_ipauth.xml", "-i", "127.0.0.2", "-p", fmt.Sprint(freePort(t, "127.0.0.2")),
		"-s", "442071234567", "-m", "3", "-r", "3", n.SIP)
	s.wait(t)
	waitFor(t, "the core to see 3 BYEs", func() bool { core.mu.Lock(); defer core.mu.Unlock(); return core.byes == 3 })
	n.waitIdle(t)
}

// TestRegisteredUserGetsCallFromCore: a SIPp phone registers as SIP user
// 1001 (digest), then the core calls the user's DID and the call reaches
// the phone at the address it registered from.
func TestRegisteredUserGetsCallFromCore(t *testing.T) {
	core := newUAS(t, "127.0.0.1")
	n := edgeNode(t, core)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	user := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "1001"})
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/dids", acc), map[string]any{"number": "442071230001", "sip_user_id": id(user)})
	waitSnapshot(t, n)

	phonePort := freePort(t, "127.0.0.7")
	csv := filepath.Join(t.TempDir(), "users.csv")
	os.WriteFile(csv, []byte(fmt.Sprintf("SEQUENTIAL\n1001;%s\n", user["password"])), 0o600)
	reg := startSIPp(t, 20*time.Second, "register.xml", "-inf", csv, "-i", "127.0.0.7", "-p", fmt.Sprint(phonePort), "-m", "1", n.SIP)
	reg.wait(t)

	// The registration is listed with the address it came from.
	_, m := n.api(t, "GET", "/registrations", nil)
	items, _ := m["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["source"] != fmt.Sprintf("127.0.0.7:%d", phonePort) {
		t.Fatalf("registrations: %v", m)
	}

	// The phone now answers on the port it registered from.
	phone := startSIPp(t, 30*time.Second, "uas.xml", "-i", "127.0.0.7", "-p", fmt.Sprint(phonePort), "-m", "1", n.SIP)
	time.Sleep(300 * time.Millisecond) // let SIPp bind
	u := newUAC(t, "127.0.0.1", n.SIP) // the core
	c := newCall("441234567890", "442071230001")
	u.send(u.invite(c))
	_, res := u.final("INVITE", 10*time.Second)
	u.ack(c, res)
	if res.StatusCode != 200 {
		t.Fatalf("call from the core to the DID: %d %s", res.StatusCode, res.Reason)
	}
	d := n.decision(t, c.callID)
	if d["auth"] != "core" || !strings.Contains(fmt.Sprint(d["why"]), "1001") {
		t.Errorf("decision: %v", d)
	}
	time.Sleep(200 * time.Millisecond)
	if st := u.bye(c); st != 200 {
		t.Errorf("BYE: %d", st)
	}
	phone.wait(t)
	n.waitIdle(t)
}
