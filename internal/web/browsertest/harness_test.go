package browsertest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/store/sqlstore"
	"github.com/sipward/sipward/internal/web"
)

//go:embed testdata/axe.min.js
var axeSource string

// chromium returns the browser to drive. Without one the tests skip, unless
// CI is set: then a missing browser is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SIPWARD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set but no Chromium is installed (.ci/run installs Debian's chromium; or set SIPWARD_CHROMIUM)")
	}
	t.Skip("no Chromium installed (apt-get install chromium): browser tests skipped; with CI set they fail")
	return ""
}

// ---- The server: the web UI on a fresh SQLite store, with a fake SIP edge.

// fakeNodes is a cluster of two nodes, one of them down.
type fakeNodes struct{}

func (fakeNodes) Nodes(now time.Time) []live.Node {
	return []live.Node{
		{ID: "edge1-a1b2c3", Address: "192.0.2.1:5060", Version: "v1.4.0", StartedAt: now.Add(-48 * time.Hour), LastSeenAt: now.Add(-2 * time.Second),
			Status: "up", ActiveCalls: 12, Registrations: 340, Load: 0.08},
		{ID: "edge2-d4e5f6", Address: "192.0.2.2:5060", Version: "v1.4.0", StartedAt: now.Add(-48 * time.Hour), LastSeenAt: now.Add(-3 * time.Minute),
			Status: "down", ActiveCalls: 3, Registrations: 120, Load: 0.02},
	}
}

type fakeLive struct {
	mu        sync.Mutex
	calls     []live.Call
	bindings  []live.Binding
	decisions []live.Decision
	inUse     map[int64]int
}

func (f *fakeLive) Calls(accountID int64) []live.Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []live.Call{}
	for _, c := range f.calls {
		if accountID == 0 || c.AccountID == accountID {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeLive) Registrations(accountID int64, username string) []live.Binding {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []live.Binding{}
	for _, b := range f.bindings {
		if (accountID == 0 || b.AccountID == accountID) && (username == "" || b.Username == username) {
			out = append(out, b)
		}
	}
	return out
}

func (f *fakeLive) Decisions(fl live.DecisionFilter) []live.Decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []live.Decision{}
	for _, d := range f.decisions {
		if (fl.AccountID == 0 || d.AccountID == fl.AccountID) && (fl.Result == "" || d.Result == fl.Result) &&
			(fl.Source == "" || strings.HasPrefix(d.Source, fl.Source)) && fl.Matches(d.Time) {
			out = append(out, d)
		}
	}
	return out
}

func (f *fakeLive) ChannelsInUse(_ context.Context, accountID int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inUse[accountID], nil
}

// fakeMessenger records the messages sent and says one device took each.
type fakeMessenger struct {
	mu   sync.Mutex
	sent []string // username: text
}

func (f *fakeMessenger) SendMessage(_ context.Context, u store.SIPUser, text string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, u.Username+": "+text)
	return 1, nil
}

type server struct {
	t     *testing.T
	st    *sqlstore.Store
	svc   *provision.Service
	live  *fakeLive
	msgs  *fakeMessenger
	stats *fakeStats
	url   string
}

func newServer(t *testing.T) *server {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "sipward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{3}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, st: st, live: &fakeLive{inUse: map[int64]int{}}, msgs: &fakeMessenger{}, stats: newFakeStats()}
	s.svc = provision.New(st, provision.Options{Realm: "sipward.test", Sealer: sealer, Mailboxes: st})
	ui, err := web.New(t.Context(), web.Options{Service: s.svc, Live: s.live, Messenger: s.msgs, Nodes: fakeNodes{}, Stats: s.stats})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", ui) // as app mounts it (the API would be at /api/)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *server) account(name string, channels int) store.Account {
	s.t.Helper()
	a, _, err := s.svc.CreateAccount(context.Background(), provision.Operator, &provision.NewAccount{Account: store.Account{Name: name, Channels: channels}})
	if err != nil {
		s.t.Fatal(err)
	}
	return a.Account
}

func (s *server) login(username, password string, account int64) {
	s.t.Helper()
	l := store.Login{Username: username, Password: password}
	if account != 0 {
		l.AccountID = &account
	}
	if err := s.svc.CreateLogin(context.Background(), provision.Operator, &l); err != nil {
		s.t.Fatal(err)
	}
}

// ---- The browser.

// newBrowser starts headless Chromium with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab is one browser tab in a browser context of its own (its own cookies),
// that records what the page writes to the console.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	console  []chromedp.ConsoleMessage
	expected []string // URLs whose error status the test expects
	checked  int      // console messages already checked
}

func newTab(t *testing.T, browserCtx context.Context, base string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	tb := &tab{t: t, ctx: ctx, base: base}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m)
			tb.mu.Unlock()
		}
	}()
	// Copy buttons use the clipboard: grant it, and keep the page focused
	// (a headless page is not), as a user's would be.
	bctx := chromedp.FromContext(ctx).BrowserContextID
	for _, p := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: p, AllowWithoutSanitization: true}, Setting: browser.PermissionSettingGranted,
			Origin: base, BrowserContextID: bctx}); err != nil {
			t.Fatalf("grant %s: %v", p, err)
		}
	}
	if _, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	return tb
}

// step runs actions with a timeout.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

func run[T any](tb *tab, what string, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// open loads path and checks its status, its console and its accessibility.
func (tb *tab) open(path string, status int) {
	tb.t.Helper()
	if status != http.StatusOK {
		tb.expect(tb.base + path)
	}
	resp := run(tb, "open "+path, chromedp.NavigateResponse(tb.base+path))
	if int(resp.Status) != status {
		tb.t.Fatalf("open %s: status %d, want %d", path, resp.Status, status)
	}
	tb.settle(path)
}

// submit clicks sel, which loads a page (a form's button, a link), and
// checks the page as open does.
func (tb *tab) submit(sel string, status int) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("click %s: %v", sel, err)
	}
	if int(resp.Status) != status {
		tb.t.Fatalf("click %s: page %s status %d, want %d", sel, resp.URL, resp.Status, status)
	}
	if status >= 400 {
		tb.expect(resp.URL) // a refused form (422, 401): the console reports it
	}
	loc := tb.location()
	tb.settle(loc)
	return loc
}

func (tb *tab) location() string {
	return strings.TrimPrefix(run(tb, "location", chromedp.Location()), tb.base)
}

// settle waits for the page's scripts, then checks the console and runs axe.
func (tb *tab) settle(what string) {
	tb.t.Helper()
	tb.do("wait for "+what, chromedp.WaitReady(chromedp.CSS("body")),
		chromedp.Poll[chromedp.Void](`document.readyState === "complete" && window.htmx !== undefined`))
	tb.checkConsole(what)
	tb.axe(what)
}

// expect says the next page load answers url with an error status, which
// the browser reports on the console.
func (tb *tab) expect(url string) {
	tb.mu.Lock()
	tb.expected = append(tb.expected, url)
	tb.mu.Unlock()
}

// checkConsole fails the test on any error, warning or exception on the
// console since the last check, except the network errors of expected URLs.
func (tb *tab) checkConsole(what string) {
	tb.t.Helper()
	time.Sleep(50 * time.Millisecond) // let the last events of the page arrive
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range tb.console[tb.checked:] {
		switch m.Type {
		case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
		default:
			continue
		}
		ok := false
		for _, u := range tb.expected {
			if m.Source == "network" && m.URL == u {
				ok = true
			}
		}
		if !ok {
			tb.t.Errorf("%s: console %s (%s %s)", what, m, m.Source, m.URL)
		}
	}
	tb.checked = len(tb.console)
	tb.expected = nil
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axe runs axe-core's WCAG 2.x A and AA rules (labels, contrast, names,
// landmarks …) in the page and fails the test on any violation.
func (tb *tab) axe(what string) {
	tb.t.Helper()
	tb.do("inject axe", chromedp.Evaluate[chromedp.Void](axeSource))
	vs := run(tb, "axe "+what, chromedp.Evaluate[[]axeViolation](`axe.run(document, {
		runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
		resultTypes: ["violations"]
	}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help,
		nodes: v.nodes.map(n => n.target.join(" ") + ": " + (n.failureSummary || "").replace(/\s+/g, " "))})))`, chromedp.EvalAwaitPromise))
	for _, v := range vs {
		tb.t.Errorf("%s: accessibility: %s (%s, %s):\n  %s", what, v.ID, v.Help, v.Impact, strings.Join(v.Nodes, "\n  "))
	}
}

// answerDialog answers the next JavaScript dialog of the tab (a data-confirm
// confirmation) with OK (accept) or Cancel, and sends its message. Call it
// before the click that opens the dialog.
func (tb *tab) answerDialog(accept bool) <-chan string {
	got := make(chan string, 1)
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	opening := chromedp.Events(ctx, page.JavascriptDialogOpening) // subscribed now, before the click
	go func() {
		defer cancel()
		defer close(got)
		for ev, err := range opening {
			if err != nil {
				return
			}
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept}); err == nil {
				got <- ev.Message
			}
			return
		}
	}()
	return got
}

func (tb *tab) typeIn(sel, text string) {
	tb.t.Helper()
	q, _ := json.Marshal(sel)
	tb.do("type in "+sel, chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector(`+string(q)+`).value = ""`),
		chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (tb *tab) choose(sel, value string) {
	tb.t.Helper()
	tb.do("choose in "+sel, chromedp.SetValue(chromedp.CSS(sel), value))
}

func (tb *tab) click(sel string) {
	tb.t.Helper()
	tb.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return strings.TrimSpace(run(tb, "text of "+sel, chromedp.TextContent(chromedp.CSS(sel))))
}

func (tb *tab) value(sel string) string {
	tb.t.Helper()
	return run(tb, "value of "+sel, chromedp.Value(chromedp.CSS(sel)))
}

func (tb *tab) eval(js string) string {
	tb.t.Helper()
	return run(tb, js, chromedp.Evaluate[string](js))
}

func (tb *tab) wantText(sel, want string) {
	tb.t.Helper()
	if got := tb.text(sel); got != want {
		tb.t.Errorf("%s: %q, want %q", sel, got, want)
	}
}

func (tb *tab) wantContains(sel, want string) {
	tb.t.Helper()
	if got := tb.text(sel); !strings.Contains(got, want) {
		tb.t.Errorf("%s: %q, want it to contain %q", sel, got, want)
	}
}

func (tb *tab) signIn(username, password, landing string) {
	tb.t.Helper()
	tb.open("/login", http.StatusOK)
	tb.typeIn("#username", username)
	tb.typeIn("#password", password)
	if got := tb.submit("form button[type=submit]", http.StatusOK); got != landing {
		tb.t.Fatalf("signed in as %s: at %s, want %s", username, got, landing)
	}
}

func (tb *tab) screenshot(dir, name string, full bool) {
	tb.t.Helper()
	var png []byte
	if full {
		png = run(tb, "screenshot", chromedp.FullScreenshot(100))
	} else {
		png = run(tb, "screenshot", chromedp.CaptureScreenshot())
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("wrote %s (%d KB)", filepath.Join(dir, name), len(png)/1024)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func path(format string, args ...any) string { return fmt.Sprintf(format, args...) }
