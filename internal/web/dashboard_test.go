package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/store"
)

// fakeStats is a cluster's time series with fixed figures: account i's
// traffic is i calls per hour chart step; the view of one account holds
// only that account. It records the queries it answered.
type fakeStats struct {
	mu       sync.Mutex
	now      time.Time
	accounts []store.Account
	latency  map[int64][]series.LatencyPoint
	err      error
	missing  []string // nodes that did not answer
	queries  []series.Query
}

func (f *fakeStats) Dashboard(_ context.Context, q series.Query) (series.View, error) {
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	if f.err != nil {
		return series.View{}, f.err
	}
	v := fakeView(f.now, q, f.accounts)
	v.MissingNodes = f.missing
	return v, nil
}

func (f *fakeStats) Latency(_ context.Context, id int64, _ time.Duration) ([]series.LatencyPoint, error) {
	return f.latency[id], f.err
}

func (f *fakeStats) last() series.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[len(f.queries)-1]
}

// fakeView is a full view: every account of accts (or the one q selects)
// with traffic, full hour and day charts.
func fakeView(now time.Time, q series.Query, accts []store.Account) series.View {
	v := series.View{Now: now, Window: q.Window, AccountID: q.AccountID, ActiveCalls: 7, Registered: 42, CPS: 1.5, Nodes: []string{"edge1"}}
	for _, a := range accts {
		if q.AccountID != 0 && a.ID != q.AccountID {
			continue
		}
		n := 1000 + a.ID
		v.Accounts = append(v.Accounts, series.Account{ID: a.ID, Name: a.Name, Calls: n, Rejected: n / 10, Challenges: n / 5, Registrations: n / 2})
		v.Totals.Calls += n
		v.Totals.Rejected += n / 10
		v.Totals.Challenges += n / 5
		v.Totals.Registrations += n / 2
	}
	v.Totals.Bans = 3
	v.Rejects = []series.Reject{{Stage: "authn", Status: 403, Reason: "wrong password", Count: 12}, {Stage: "firewall", Reason: "banned", Count: 4}}
	v.TopSources = []series.Source{{Source: "198.51.100.23", Count: 16}}
	v.Hour = fakeChart(now.Add(-series.Span/24).Truncate(series.Bucket), series.Bucket, 360)
	v.Day = fakeChart(now.Add(-series.Span).Truncate(5*time.Minute), 5*time.Minute, 288)
	return v
}

func fakeChart(start time.Time, step time.Duration, n int) series.Chart {
	c := series.Chart{Start: start, Step: step}
	for k, name := range []string{"calls", "rejected", "challenges", "registrations", "register_rejects", "bans"} {
		l := series.Line{Name: name, Values: make([]int64, n)}
		for i := range l.Values {
			l.Values[i] = int64((i*7+k*3)%11) * int64(k+1)
		}
		c.Lines = append(c.Lines, l)
	}
	return c
}

func statsEnv(t testing.TB) (*env, *fakeStats) {
	fs := &fakeStats{latency: map[int64][]series.LatencyPoint{}}
	e := newEnv(t, func(o *Options) { o.Stats = fs })
	fs.now = e.clock.Now()
	return e, fs
}

// TestDashboardOperator: sign-in lands on the dashboard; the operator sees
// every account's figures, picks one account, and each part of the page
// (cards, counts, rejects, sources linked to decisions and the firewall,
// per-account table, charts' data and tables) shows.
func TestDashboardOperator(t *testing.T) {
	e, fs := statsEnv(t)
	e.login("root", opPass, 0)
	a, b := e.account("Acme", 10), e.account("Beta Voice", 10)
	fs.accounts = []store.Account{a, b}
	br := e.browser()
	if r := br.signIn("root", opPass); r.header.Get("Location") != "/" {
		t.Fatalf("sign-in lands on %q, want /", r.header.Get("Location"))
	}
	r := br.get("/")
	if r.status != http.StatusOK {
		t.Fatalf("GET /: %d %s", r.status, textOf(r.body))
	}
	if q := fs.last(); q != (series.Query{Window: time.Hour}) {
		t.Errorf("the operator's default query: %+v, want every account over an hour", q)
	}
	text := textOf(r.body)
	for _, want := range []string{"Active calls 7", "Devices registered 42", "1.5", "Last hour Calls 2003", "Challenges (401/407) 400",
		"authn 403 wrong password 12", "firewall dropped banned 4", "Acme 1001", "Beta Voice 1002"} {
		if !strings.Contains(text, want) {
			t.Errorf("the dashboard lacks %q: %s", want, text)
		}
	}
	for _, want := range []string{`<a href="/" aria-current="page">Dashboard</a>`, `href="/decisions?source=198.51.100.23"`,
		`href="/firewall?q=198.51.100.23"`, fmt.Sprintf(`<a href="/accounts/%d">Acme</a>`, a.ID), `id="dash-data"`,
		`<option value="` + fmt.Sprint(b.ID) + `">Beta Voice</option>`, `hx-get="/dashboard/live?window=1h"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the dashboard lacks %s", want)
		}
	}
	r = br.get(fmt.Sprintf("/?window=6h&account_id=%d", b.ID))
	if q := fs.last(); q != (series.Query{AccountID: b.ID, Window: 6 * time.Hour}) {
		t.Errorf("the operator's query of one account: %+v", q)
	}
	if text := textOf(r.body); !strings.Contains(text, "Dashboard: Beta Voice") || strings.Contains(text, "Acme 1001") {
		t.Errorf("one account's dashboard: %s", text)
	}
	if !strings.Contains(r.body, fmt.Sprintf(`hx-get="/dashboard/live?account_id=%d&amp;window=6h"`, b.ID)) {
		t.Error("the live refresh does not keep the account and window")
	}
	if r := br.get("/?account_id=999999"); r.status != http.StatusNotFound {
		t.Errorf("an unknown account's dashboard: %d, want 404", r.status)
	}
	// Old links still work.
	if r := br.get("/accounts"); r.status != http.StatusOK {
		t.Errorf("GET /accounts: %d", r.status)
	}
}

// TestDashboardAccountLogin: an account login sees its own account's
// figures only, whatever account_id it sends, and no per-account table or
// firewall links.
func TestDashboardAccountLogin(t *testing.T) {
	e, fs := statsEnv(t)
	a, b := e.account("Acme", 10), e.account("Beta Voice", 10)
	fs.accounts = []store.Account{a, b}
	e.login("acme", acctPass, a.ID)
	br := e.browser()
	br.mustSignIn("acme", acctPass)
	for _, p := range []string{"/", fmt.Sprintf("/?account_id=%d", b.ID), "/?account_id=0", fmt.Sprintf("/dashboard/live?account_id=%d", b.ID)} {
		r := br.get(p)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d", p, r.status)
		}
		if q := fs.last(); q.AccountID != a.ID {
			t.Errorf("GET %s asked for account %d, want its own %d", p, q.AccountID, a.ID)
		}
		for _, not := range []string{"Beta Voice", "1002", `href="/firewall`, `id="account_id"`} {
			if strings.Contains(r.body, not) {
				t.Errorf("GET %s shows %s to an account login", p, not)
			}
		}
	}
	if r := br.get("/"); !strings.Contains(textOf(r.body), "Dashboard: Acme") || !strings.Contains(textOf(r.body), "Calls 1001") {
		t.Errorf("the account's dashboard: %s", textOf(r.body))
	}
}

// TestDashboardWindow: each window of the selector reaches the query; a bad
// window or account_id answers 422, names the field and shows the last hour
// of every account.
func TestDashboardWindow(t *testing.T) {
	e, fs := statsEnv(t)
	e.login("root", opPass, 0)
	br := e.browser()
	br.mustSignIn("root", opPass)
	for _, w := range dashWindows {
		if r := br.get("/?window=" + w.Value); r.status != http.StatusOK || fs.last().Window != w.D {
			t.Errorf("window %s: %d, queried %v", w.Value, r.status, fs.last().Window)
		}
	}
	for p, want := range map[string]string{
		"/?window=2h":         `window: "2h" is not one of 5m, 15m, 1h, 6h, 24h; showing the last hour.`,
		"/?account_id=acme":   `account_id: "acme" is not an account number; showing every account.`,
		"/?window=-1&window=": `window: "-1" is not one of`,
	} {
		r := br.get(p)
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(textOf(r.body), want) {
			t.Errorf("GET %s: %d, want 422 with %q: %s", p, r.status, want, textOf(r.body))
		}
		if q := fs.last(); q != (series.Query{Window: time.Hour}) {
			t.Errorf("GET %s queried %+v, want the last hour of every account", p, q)
		}
		if !strings.Contains(r.body, `<option value="1h" selected>`) {
			t.Errorf("GET %s: the selector does not show the hour used", p)
		}
	}
}

// TestDashboardUnavailable: without Stats, and when Stats fails, the
// dashboard says so (not the internal error) rather than showing a blank
// page; nodes that did not answer are named.
func TestDashboardUnavailable(t *testing.T) {
	e := newEnv(t)
	e.login("root", opPass, 0)
	br := e.browser()
	br.mustSignIn("root", opPass)
	if r := br.get("/"); r.status != http.StatusOK || !strings.Contains(textOf(r.body), "The dashboard's figures are not available on this node") {
		t.Errorf("GET / without Stats: %d %s", r.status, textOf(r.body))
	}

	e2, fs := statsEnv(t)
	e2.login("root", opPass, 0)
	br2 := e2.browser()
	br2.mustSignIn("root", opPass)
	fs.missing = []string{"edge2-d4e5f6"}
	if r := br2.get("/"); !strings.Contains(textOf(r.body), "Node(s) edge2-d4e5f6 did not answer in time: their traffic is missing from these figures.") {
		t.Errorf("GET / with a node missing: %s", textOf(r.body))
	}
	fs.err = errors.New("redis: connection refused")
	if r := br2.get("/"); r.status != http.StatusOK || !strings.Contains(textOf(r.body), "The dashboard's figures could not be read; the error is in the server's log.") ||
		strings.Contains(r.body, "redis") {
		t.Errorf("GET / with failing Stats: %d %s", r.status, textOf(r.body))
	}
}

// TestDashboardLive: the partial holds the live figures and counts, not the
// charts, and follows the session.
func TestDashboardLive(t *testing.T) {
	e, fs := statsEnv(t)
	e.login("root", opPass, 0)
	a := e.account("Acme", 10)
	fs.accounts = []store.Account{a}
	br := e.browser()
	br.mustSignIn("root", opPass)
	r := br.get("/dashboard/live?window=5m")
	if r.status != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(r.body), `<div id="dash-live"`) {
		t.Fatalf("GET /dashboard/live: %d %.200s", r.status, r.body)
	}
	if strings.Contains(r.body, "dash-data") || strings.Contains(r.body, "<html") || !strings.Contains(textOf(r.body), "Last 5 minutes Calls 1001") {
		t.Errorf("the live partial: %s", textOf(r.body))
	}
	if q := fs.last(); q.Window != 5*time.Minute {
		t.Errorf("the partial's window: %v", q.Window)
	}
	if r := e.browser().get("/dashboard/live"); r.status != http.StatusSeeOther {
		t.Errorf("the partial without a session: %d", r.status)
	}
}

var tableRows = regexp.MustCompile(`(?s)<details class="chart-table" id="table-hour">.*?<tbody>(.*?)</tbody>`)

// TestDashboardChartTables: the hour chart's table sums its 10-second steps
// into 5-minute rows, and the chart's data block holds every step.
func TestDashboardChartTables(t *testing.T) {
	e, fs := statsEnv(t)
	e.login("root", opPass, 0)
	br := e.browser()
	br.mustSignIn("root", opPass)
	r := br.get("/")
	m := tableRows.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatal("no hour table")
	}
	rows := strings.Count(m[1], "<tr>")
	if rows != 12 {
		t.Errorf("the hour table has %d rows, want 12 of 5 minutes", rows)
	}
	want := fakeChart(fs.now.Add(-time.Hour).Truncate(series.Bucket), series.Bucket, 360)
	var sum int64
	for _, v := range want.Lines[0].Values[:30] {
		sum += v
	}
	first := regexp.MustCompile(`<td class="num">(\d+)</td>`).FindStringSubmatch(m[1])
	if first == nil || first[1] != fmt.Sprint(sum) {
		t.Errorf("the first 5 minutes' calls: %v, want %d", first, sum)
	}
	if !strings.Contains(r.body, `"lines":[{"name":"calls","label":"Calls","values":[`) {
		t.Errorf("no chart data block: %.300s", r.body[strings.Index(r.body, "dash-data"):])
	}
}

// TestUserLatency: the SIP user page shows the ping latency as a chart with
// a table of hours, says when no ping answered, and when it is unavailable.
func TestUserLatency(t *testing.T) {
	e, fs := statsEnv(t)
	e.login("root", opPass, 0)
	a := e.account("Acme", 10)
	u, quiet := store.SIPUser{AccountID: a.ID, Username: "1001"}, store.SIPUser{AccountID: a.ID, Username: "1002"}
	for _, x := range []*store.SIPUser{&u, &quiet} {
		if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, x); err != nil {
			t.Fatal(err)
		}
	}
	h := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	fs.latency[u.ID] = []series.LatencyPoint{
		{Time: h.Add(5 * time.Minute), MinMS: 10, AvgMS: 20, MaxMS: 30, Count: 1},
		{Time: h.Add(35 * time.Minute), MinMS: 8, AvgMS: 40, MaxMS: 90, Count: 3},
		{Time: h.Add(65 * time.Minute), MinMS: 12, AvgMS: 12, MaxMS: 12, Count: 1},
	}
	br := e.browser()
	br.mustSignIn("root", opPass)
	r := br.get(fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID))
	text := textOf(r.body)
	for _, want := range []string{"Ping latency, last 24 hours", "Jan 2 03:00 –04:00 8.0 35.0 90.0 4", "Jan 2 04:00 –05:00 12.0 12.0 12.0 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("the user page lacks %q: %s", want, text)
		}
	}
	if !strings.Contains(r.body, `id="latency-data"`) || !strings.Contains(r.body, `data-chart="latency"`) {
		t.Error("the user page has no latency chart")
	}
	r = br.get(fmt.Sprintf("/accounts/%d/users/%d", a.ID, quiet.ID))
	if !strings.Contains(textOf(r.body), "No ping answered in the last 24 hours.") || strings.Contains(r.body, `data-chart=`) {
		t.Errorf("a user without pings: %s", textOf(r.body))
	}

	e2 := newEnv(t)
	e2.login("root", opPass, 0)
	a2 := e2.account("Acme", 10)
	u2 := store.SIPUser{AccountID: a2.ID, Username: "1001"}
	if err := e2.svc.CreateSIPUser(t.Context(), provision.Operator, &u2); err != nil {
		t.Fatal(err)
	}
	br2 := e2.browser()
	br2.mustSignIn("root", opPass)
	if r := br2.get(fmt.Sprintf("/accounts/%d/users/%d", a2.ID, u2.ID)); !strings.Contains(textOf(r.body), "Ping latency history is not available") {
		t.Errorf("the user page without Stats: %s", textOf(r.body))
	}
}

// BenchmarkDashboardPage renders the operator's dashboard from a view of
// 1,000 accounts (in the store, for the account picker, and with traffic)
// with full hour and day charts:
// go test -run X -bench DashboardPage -benchmem ./internal/web/
func BenchmarkDashboardPage(b *testing.B) {
	e, fs := statsEnv(b)
	e.login("root", opPass, 0)
	err := e.svc.Store().Update(context.Background(), func(tx store.Tx) error {
		for i := range 1000 {
			a := store.Account{Name: fmt.Sprintf("Account %04d with a long name", i)}
			if err := tx.CreateAccount(context.Background(), &a); err != nil {
				return err
			}
			fs.accounts = append(fs.accounts, a)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	br := e.browser()
	br.mustSignIn("root", opPass)
	cookies := br.c.Jar.Cookies(mustURL(b, e.srv.URL))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/", nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		w := httptest.NewRecorder()
		e.web.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("GET /: %d", w.Code)
		}
	}
}
