// Package e2e runs the real sipward binary on 127.0.0.1 with port 0 and
// drives it as users do: the admin CLI, the REST API, and real SIP peers (a
// sipgo client, SIPp). Nothing in here reaches inside the process.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/sipward once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sipward-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sipward")
		cmd := exec.Command("go", "build", "-o", binPath, "../../cmd/sipward")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if os.Getenv("SIPWARD_E2E_RACE") != "" {
			// A race-detecting binary: a race found makes it exit 66, which
			// fails the test that stops it.
			cmd = exec.Command("go", "build", "-race", "-o", binPath, "../../cmd/sipward")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// node is a running sipward.
type node struct {
	t      *testing.T
	cmd    *exec.Cmd
	dir    string
	HTTP   string // base URL
	SIP    string // UDP/TCP host:port
	Token  string // operator token
	logMu  sync.Mutex
	log    bytes.Buffer
	exited chan struct{}
	err    error
}

var (
	tokenRe = regexp.MustCompile(`^\s+(swd_[A-Za-z0-9_-]+)\s*$`)
	httpRe  = regexp.MustCompile(`msg="sipward serving" http=(\S+)`)
	sipRe   = regexp.MustCompile(`msg="sip edge listening" udp=(\S+)`)
)

// start runs `sipward serve` in dir (a fresh one when empty) with extra flags
// and waits until it listens.
func start(t *testing.T, dir string, args ...string) *node {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	n := &node{t: t, dir: dir, exited: make(chan struct{})}
	full := append([]string{"serve", "--http-addr", "127.0.0.1:0", "--sip-addr", "127.0.0.1:0", "--realm", "e2e.test",
		"--db", "sqlite:" + filepath.Join(dir, "sipward.db"), "--key-file", filepath.Join(dir, "sipward.key"), "--log-level", "debug"}, args...)
	n.cmd = exec.Command(binary(t), full...)
	dieWithTest(n.cmd)
	n.cmd.Dir = dir
	n.cmd.Env = os.Environ()
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var once sync.Once
		for sc.Scan() {
			line := sc.Text()
			n.logMu.Lock()
			n.log.WriteString(line + "\n")
			if m := tokenRe.FindStringSubmatch(line); m != nil {
				n.Token = m[1]
			}
			if m := httpRe.FindStringSubmatch(line); m != nil {
				n.HTTP = "http://" + m[1]
			}
			if m := sipRe.FindStringSubmatch(line); m != nil {
				n.SIP = m[1]
			}
			done := n.HTTP != "" && (n.SIP != "" || !strings.Contains(strings.Join(full, " "), "--sip-addr"))
			n.logMu.Unlock()
			if done {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	select {
	case <-ready:
	case <-n.exited:
		t.Fatalf("sipward exited at start: %v\n%s", n.err, n.Log())
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		t.Fatalf("sipward did not start in 30s\n%s", n.Log())
	}
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("sipward log:\n%s", n.Log())
		}
	})
	return n
}

// Log returns what the node printed.
func (n *node) Log() string {
	n.logMu.Lock()
	defer n.logMu.Unlock()
	return n.log.String()
}

// stop sends SIGTERM and waits; it fails the test unless the node exits 0.
func (n *node) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		if n.err != nil {
			n.t.Errorf("sipward exited with %v after SIGTERM", n.err)
		}
	case <-time.After(20 * time.Second):
		n.cmd.Process.Kill()
		n.t.Errorf("sipward did not stop within 20s of SIGTERM")
	}
}

// cli runs an admin command against the node and returns its stdout.
func (n *node) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "SIPWARD_SERVER="+n.HTTP, "SIPWARD_TOKEN="+n.Token)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.String(), nil
}

// api calls the REST API as the operator and decodes the JSON answer.
func (n *node) api(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	return n.apiAs(t, n.Token, method, path, body)
}

// apiAs calls the REST API with token and decodes the JSON answer.
func (n *node) apiAs(t *testing.T, token, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, n.HTTP+"/api/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func (n *node) mustAPI(t *testing.T, want int, method, path string, body any) map[string]any {
	t.Helper()
	st, m := n.api(t, method, path, body)
	if st != want {
		t.Fatalf("%s %s: %d %v, want %d", method, path, st, m, want)
	}
	return m
}

func runBinary(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(binary(t), args...).CombinedOutput()
	return string(out), err
}
