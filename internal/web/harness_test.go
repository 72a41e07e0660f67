package web

import (
	"bytes"
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/store/sqlstore"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeLive is a SIP edge with fixed live state.
type fakeLive struct {
	calls     []live.Call
	bindings  []live.Binding
	decisions []live.Decision
	inUse     map[int64]int
}

func (f *fakeLive) Calls(accountID int64) []live.Call {
	var out []live.Call
	for _, c := range f.calls {
		if accountID == 0 || c.AccountID == accountID {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeLive) Registrations(accountID int64, username string) []live.Binding {
	var out []live.Binding
	for _, b := range f.bindings {
		if (accountID == 0 || b.AccountID == accountID) && (username == "" || b.Username == username) {
			out = append(out, b)
		}
	}
	return out
}

func (f *fakeLive) Decisions(fl live.DecisionFilter) []live.Decision {
	var out []live.Decision
	for _, d := range f.decisions {
		if (fl.AccountID == 0 || d.AccountID == fl.AccountID) && (fl.Result == "" || d.Result == fl.Result) &&
			(fl.Source == "" || strings.HasPrefix(d.Source, fl.Source)) && fl.Matches(d.Time) {
			out = append(out, d)
		}
	}
	return out
}

func (f *fakeLive) ChannelsInUse(_ context.Context, accountID int64) (int, error) {
	return f.inUse[accountID], nil
}

// env is a web UI on a fresh SQLite store.
type env struct {
	t     testing.TB
	st    *sqlstore.Store
	svc   *provision.Service
	web   *Server
	srv   *httptest.Server
	clock *clock
	live  *fakeLive
}

func newEnv(t testing.TB, opts ...func(*Options)) *env {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "sipward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{1}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, clock: &clock{t: time.Now()}, live: &fakeLive{inUse: map[int64]int{}}}
	e.svc = provision.New(st, provision.Options{Realm: "web.test", Sealer: sealer, Mailboxes: st})
	o := Options{Service: e.svc, Live: e.live, Now: e.clock.Now}
	for _, f := range opts {
		f(&o)
	}
	e.web, err = New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.web)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) account(name string, channels int) store.Account {
	e.t.Helper()
	a, _, err := e.svc.CreateAccount(e.t.Context(), provision.Operator, &provision.NewAccount{Account: store.Account{Name: name, Channels: channels}})
	if err != nil {
		e.t.Fatal(err)
	}
	return a.Account
}

// login makes a login; account 0 makes an operator login.
func (e *env) login(username, password string, account int64) store.Login {
	e.t.Helper()
	l := store.Login{Username: username, Password: password}
	if account != 0 {
		l.AccountID = &account
	}
	if err := e.svc.CreateLogin(e.t.Context(), provision.Operator, &l); err != nil {
		e.t.Fatal(err)
	}
	return l
}

// browser is an HTTP client with its own cookies that does not follow redirects.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	status int
	body   string
	header http.Header
}

func (b *browser) do(req *http.Request) resp {
	b.e.t.Helper()
	r, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, string(body), r.Header}
}

func (b *browser) get(path string) resp {
	b.e.t.Helper()
	req, err := http.NewRequest("GET", b.e.srv.URL+path, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form; with csrf true it adds the CSRF token of page from
// (a GET of it first).
func (b *browser) post(path string, v url.Values, headers ...string) resp {
	b.e.t.Helper()
	req, err := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the form on page path.
func (b *browser) csrf(path string) string {
	b.e.t.Helper()
	r := b.get(path)
	m := csrfRe.FindStringSubmatch(r.body)
	if m == nil {
		b.e.t.Fatalf("GET %s (%d): no csrf field", path, r.status)
	}
	return html.UnescapeString(m[1])
}

// submit posts a form of page path with its CSRF token.
func (b *browser) submit(page, action string, v url.Values) resp {
	b.e.t.Helper()
	if v == nil {
		v = url.Values{}
	}
	v.Set("csrf", b.csrf(page))
	return b.post(action, v)
}

func (b *browser) signIn(username, password string) resp {
	b.e.t.Helper()
	return b.submit("/login", "/login", url.Values{"username": {username}, "password": {password}})
}

func (b *browser) mustSignIn(username, password string) {
	b.e.t.Helper()
	if r := b.signIn(username, password); r.status != http.StatusSeeOther {
		b.e.t.Fatalf("sign in as %s: status %d: %s", username, r.status, textOf(r.body))
	}
}

var tags = regexp.MustCompile(`<[^>]*>`)

// textOf is a page's text, roughly, for messages.
func textOf(body string) string {
	s := html.UnescapeString(tags.ReplaceAllString(body, " "))
	return strings.Join(strings.Fields(s), " ")
}

// errorOf returns the error shown next to the input with that ID.
func errorOf(body, id string) string {
	re := regexp.MustCompile(`<p class="error-text" id="` + regexp.QuoteMeta(id) + `-err">([^<]*)</p>`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// valueOf returns the value attribute of the input with that ID.
func valueOf(body, id string) string {
	re := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `" name="[^"]*" value="([^"]*)"`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return "<no input " + id + ">"
	}
	return html.UnescapeString(m[1])
}

// confirmedForm is the form of a destructive action the dialog confirmed.
func confirmedForm() url.Values { return url.Values{"confirmed": {"1"}} }
