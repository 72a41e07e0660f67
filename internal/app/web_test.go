package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/config"
)

// syncBuffer is what Run prints to at first start.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runNode runs a node on dir until the test ends; it returns its HTTP address.
func runNode(t *testing.T, dir string, out io.Writer, edit func(*config.Config)) (string, context.CancelFunc) {
	t.Helper()
	cfg := config.Default()
	cfg.HTTPAddr, cfg.SIPAddr, cfg.SIPSAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.DB = "sqlite:" + filepath.Join(dir, "sipward.db")
	cfg.KeyFile = filepath.Join(dir, "sipward.key")
	cfg.Realm = "ui.test"
	cfg.ShutdownTimeout = time.Second
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan Addrs, 1), make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), out, func(a Addrs) { ready <- a })
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Error("app.Run did not stop")
			}
		})
	}
	select {
	case a := <-ready:
		t.Cleanup(stop)
		return "http://" + a.HTTP, stop
	case err := <-done:
		t.Fatalf("app.Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("app.Run did not start in 30s")
	}
	return "", nil
}

var (
	// The e2e harness's token line; the password line must not look like it.
	tokenLine    = regexp.MustCompile(`(?m)^\s+(swd_[A-Za-z0-9_-]+)\s*$`)
	passwordLine = regexp.MustCompile(`(?m)^sipward: web UI sign-in \(shown once\): username "admin", password ([A-Za-z0-9]{24})$`)
	csrfField    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// signIn signs in to the UI at base and returns the status of the first page.
func signIn(t *testing.T, base, user, pass string) int {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(page)
	if m == nil {
		t.Fatalf("GET /login: no form: %.300s", page)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"csrf": {string(m[1])}, "username": {user}, "password": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/" {
		return resp.StatusCode
	}
	if !strings.Contains(string(body), "<h1>Dashboard</h1>") {
		t.Errorf("signed in: %.300s", body)
	}
	return resp.StatusCode
}

// TestWebUIFirstStart: sipward serve serves the UI at "/", prints the
// operator's generated web password once, on a line the API token's pattern
// does not match, and that password signs in.
func TestWebUIFirstStart(t *testing.T) {
	dir := t.TempDir()
	var out syncBuffer
	base, stop := runNode(t, dir, &out, nil)
	printed := out.String()
	if n := len(tokenLine.FindAllString(printed, -1)); n != 1 {
		t.Errorf("first start printed %d lines that look like the API token, want 1:\n%s", n, printed)
	}
	m := passwordLine.FindStringSubmatch(printed)
	if m == nil {
		t.Fatalf("first start printed no web UI password:\n%s", printed)
	}
	resp, err := http.Get(base + "/static/htmx.min.js")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /static/htmx.min.js: %v %v", resp, err)
	}
	resp.Body.Close()
	if st := signIn(t, base, "admin", m[1]); st != http.StatusOK {
		t.Errorf("sign in with the printed password: %d", st)
	}
	if st := signIn(t, base, "admin", "not the password"); st == http.StatusOK {
		t.Error("a wrong password signed in")
	}
	stop()

	// Second start: nothing printed; --admin-password replaces the password.
	var again syncBuffer
	base, _ = runNode(t, dir, &again, func(c *config.Config) { c.AdminPassword = "the configured password" })
	if s := again.String(); passwordLine.MatchString(s) || tokenLine.MatchString(s) {
		t.Errorf("second start printed secrets again:\n%s", s)
	}
	if st := signIn(t, base, "admin", "the configured password"); st != http.StatusOK {
		t.Errorf("sign in with --admin-password: %d", st)
	}
	if st := signIn(t, base, "admin", m[1]); st == http.StatusOK {
		t.Error("the generated password still works after --admin-password replaced it")
	}
}
