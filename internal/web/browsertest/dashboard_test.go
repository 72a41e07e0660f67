package browsertest

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/store"
)

// fakeStats is a cluster's time series with a day of realistic traffic:
// each account in accounts has traffic; the view of one account holds
// only its own. Latency holds SIP users' ping round trips.
type fakeStats struct {
	mu       sync.Mutex
	active   int
	accounts []series.Account
	latency  map[int64][]series.LatencyPoint
}

func newFakeStats() *fakeStats {
	return &fakeStats{active: 12, latency: map[int64][]series.LatencyPoint{}}
}

func (f *fakeStats) setActive(n int) {
	f.mu.Lock()
	f.active = n
	f.mu.Unlock()
}

func (f *fakeStats) Dashboard(_ context.Context, q series.Query) (series.View, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	v := series.View{Now: now, Window: q.Window, AccountID: q.AccountID, ActiveCalls: f.active, Registered: 340, CPS: 2.4,
		Nodes: []string{"edge1-a1b2c3", "edge2-d4e5f6"}}
	for _, a := range f.accounts {
		if q.AccountID == 0 || a.ID == q.AccountID {
			v.Accounts = append(v.Accounts, a)
			v.Totals.Calls += a.Calls
			v.Totals.Rejected += a.Rejected
			v.Totals.Challenges += a.Challenges
			v.Totals.Registrations += a.Registrations
		}
	}
	v.Totals.RegisterRejects, v.Totals.Bans = 17, 2
	v.Rejects = []series.Reject{
		{Stage: "authn", Status: 403, Reason: "wrong password for user 1000 after a challenge, from a device that keeps retrying", Count: 41},
		{Stage: "identify", Status: 403, Reason: "unknown source address", Count: 23},
		{Stage: "firewall", Reason: "banned: 10 failed authentications in 1m0s", Count: 9},
		{Stage: "limits", Status: 503, Reason: "channel limit of endpoint 1 reached (20 in use)", Count: 4},
	}
	v.TopSources = []series.Source{{Source: "198.51.100.23", Count: 50}, {Source: "2001:db8:ffff:1234:5678:9abc:def0:1", Count: 23}}
	v.Hour = traffic(now.Add(-time.Hour).Truncate(series.Bucket), series.Bucket, 360)
	v.Day = traffic(now.Add(-series.Span).Truncate(5*time.Minute), 5*time.Minute, 288)
	return v, nil
}

func (f *fakeStats) Latency(_ context.Context, id int64, _ time.Duration) ([]series.LatencyPoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.latency[id], nil
}

// traffic is a chart of n steps of a daily wave with some noise.
func traffic(start time.Time, step time.Duration, n int) series.Chart {
	c := series.Chart{Start: start, Step: step}
	scale := step.Seconds() / 10
	for k, name := range []string{"calls", "rejected", "challenges", "registrations", "register_rejects", "bans"} {
		l := series.Line{Name: name, Values: make([]int64, n)}
		for i := range l.Values {
			wave := 1 + math.Sin(float64(i)/float64(n)*2*math.Pi)
			l.Values[i] = int64(scale*wave*float64(int64(20)>>k)) + int64((i*7+k)%5)
		}
		c.Lines = append(c.Lines, l)
	}
	return c
}

// TestDashboard: sign-in lands on the dashboard; it draws both charts with
// uPlot, its table fallbacks hold the charts' figures, the live figures
// refresh without redrawing the charts, it is axe-clean with no console
// error, and at 360 px nothing overflows and the charts follow the width.
func TestDashboard(t *testing.T) {
	s := newServer(t)
	s.login(opUser, opPass, 0)
	a := s.account("Acme Telecom International Wholesale Voice Services Ltd", 100)
	b := s.account("Beta Voice", 10)
	s.stats.accounts = []series.Account{{ID: a.ID, Name: a.Name, Calls: 1234, Rejected: 56, Challenges: 789, Registrations: 4321},
		{ID: b.ID, Name: b.Name, Calls: 12, Rejected: 3, Challenges: 40, Registrations: 90}}

	op := newTab(t, newBrowser(t), s.url)
	op.signIn(opUser, opPass, "/")
	op.wantText("#dash-active", "12")
	op.wantText("#dash-calls", "1246")
	checkCharts(t, op, "#chart-hour", "#chart-day")
	checkTable(t, op, "hour", 30)
	checkTable(t, op, "day", 12)

	// The live figures refresh (every 10 s); the charts stay as drawn.
	op.do("mark the chart", chromedp.Evaluate[chromedp.Void](`window.hourCanvas = document.querySelector("#chart-hour canvas")`))
	s.stats.setActive(13)
	ctx, cancel := context.WithTimeout(op.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.getElementById("dash-active").textContent === "13"`)); err != nil {
		t.Fatalf("the live figures did not refresh: %v", err)
	}
	if op.eval(`String(document.querySelector("#chart-hour canvas") === window.hourCanvas)`) != "true" {
		t.Error("the live refresh redrew the charts")
	}
	op.checkConsole("after the live refresh")

	// One account, picked by name.
	op.choose("#account_id", itoa(b.ID))
	op.choose("#window", "15m")
	op.submit(".dash-filter button[type=submit]", http.StatusOK)
	op.wantText("h1", "Dashboard: Beta Voice")
	op.wantText("#dash-calls", "12")

	// A phone: the charts shrink with the window, and nothing overflows.
	op.open("/", http.StatusOK)
	op.do("phone", chromedp.EmulateViewport(360, 800, chromedp.EmulateMobile))
	op.do("wait for the resize", chromedp.Poll[chromedp.Void](`document.querySelector("#chart-day canvas").getBoundingClientRect().width <= 360`))
	noOverflow(t, op, "the dashboard resized to 360 px")
	op.open("/", http.StatusOK)
	checkCharts(t, op, "#chart-hour", "#chart-day")
	noOverflow(t, op, "the dashboard at 360 px")
}

// TestDashboardPortal: an account login's dashboard shows its own account,
// draws its charts, and is axe-clean.
func TestDashboardPortal(t *testing.T) {
	s := newServer(t)
	a := s.account("Acme Telecom", 10)
	b := s.account("Beta Voice", 10)
	s.login(portUser, portPass, a.ID)
	s.stats.accounts = []series.Account{{ID: a.ID, Name: a.Name, Calls: 77}, {ID: b.ID, Name: b.Name, Calls: 12}}
	c := newTab(t, newBrowser(t), s.url)
	c.signIn(portUser, portPass, "/")
	c.wantText("h1", "Dashboard: Acme Telecom")
	c.wantText("#dash-calls", "77")
	checkCharts(t, c, "#chart-hour", "#chart-day")
	c.open(path("/?account_id=%d", b.ID), http.StatusOK)
	c.wantText("#dash-calls", "77")
}

// TestUserLatencyChart: the SIP user page draws the ping latency of the
// last 24 hours; its table holds the hours' figures; a user no ping
// answered says so.
func TestUserLatencyChart(t *testing.T) {
	s := newServer(t)
	s.login(opUser, opPass, 0)
	a := s.account("Acme Telecom", 10)
	u, quiet := store.SIPUser{AccountID: a.ID, Username: "1001", Channels: new(1)}, store.SIPUser{AccountID: a.ID, Username: "1002", Channels: new(1)}
	must(t, s.svc.CreateSIPUser(context.Background(), provision.Operator, &u))
	must(t, s.svc.CreateSIPUser(context.Background(), provision.Operator, &quiet))
	s.stats.latency[u.ID] = latencyDay(time.Now())

	op := newTab(t, newBrowser(t), s.url)
	op.signIn(opUser, opPass, "/")
	op.open(path("/accounts/%d/users/%d", a.ID, u.ID), http.StatusOK)
	checkCharts(t, op, "#chart-latency")
	want := op.eval(`(function () {
		var d = JSON.parse(document.getElementById("latency-data").textContent).latency, hours = {};
		d.x.forEach(function (x, i) {
			var h = Math.floor(x / 3600);
			hours[h] = Math.max(hours[h] || 0, d.lines[2].values[i]);
		});
		return Object.keys(hours).sort().map(function (h) { return hours[h].toFixed(1); }).join(" ");
	})()`)
	got := op.eval(`Array.prototype.map.call(document.querySelectorAll("#table-latency tbody tr"), function (r) { return r.cells[3].textContent; }).join(" ")`)
	if got != want || got == "" {
		t.Errorf("the latency table's slowest per hour: %q, the chart's: %q", got, want)
	}
	op.open(path("/accounts/%d/users/%d", a.ID, quiet.ID), http.StatusOK)
	op.wantText("#latency-empty", "No ping answered in the last 24 hours.")
}

// checkCharts waits for uPlot to draw a canvas in each chart, no wider
// than the chart's box.
func checkCharts(t *testing.T, tb *tab, sels ...string) {
	t.Helper()
	for _, sel := range sels {
		tb.do("wait for the chart "+sel, chromedp.WaitVisible(chromedp.CSS(sel+" .uplot canvas")))
		ok := tb.eval(`(function () {
			var box = document.querySelector(` + jsString(sel) + `), c = box.querySelector("canvas");
			return String(c.width > 0 && c.getBoundingClientRect().width <= box.getBoundingClientRect().width + 1);
		})()`)
		if ok != "true" {
			t.Errorf("%s: the chart's canvas is empty or wider than its box", sel)
		}
	}
}

// checkTable compares a chart's table fallback with the chart's data: each
// row sums per steps of every line.
func checkTable(t *testing.T, tb *tab, id string, per int) {
	t.Helper()
	res := tb.eval(`(function () {
		var d = JSON.parse(document.getElementById("dash-data").textContent)[` + jsString(id) + `];
		var rows = document.querySelectorAll("#table-` + id + ` tbody tr"), out = [];
		if (rows.length !== Math.ceil(d.x.length / ` + itoa(int64(per)) + `)) return "rows: " + rows.length + " for " + d.x.length + " steps";
		rows.forEach(function (r, i) {
			d.lines.forEach(function (l, j) {
				var sum = l.values.slice(i * ` + itoa(int64(per)) + `, (i + 1) * ` + itoa(int64(per)) + `).reduce(function (a, b) { return a + b; }, 0);
				if (String(sum) !== r.cells[j + 1].textContent) out.push("row " + i + " " + l.name + ": " + r.cells[j + 1].textContent + ", chart " + sum);
			});
		});
		return out.join("; ") || "ok";
	})()`)
	if res != "ok" {
		t.Errorf("the %s table differs from its chart: %s", id, res)
	}
}

func noOverflow(t *testing.T, tb *tab, what string) {
	t.Helper()
	if w := tb.eval(`String(document.documentElement.scrollWidth)`); w != "360" {
		t.Errorf("%s: the document is %s px wide at 360 px; wider: %s", what, w, tb.eval(`Array.prototype.filter.call(document.querySelectorAll("body *"), function (e) { return e.getBoundingClientRect().right > 361 && !(e.parentElement && e.parentElement.closest(".table-wrap")); }).slice(0, 12).map(function (e) { return e.tagName + "#" + e.id + "." + e.className + " " + Math.round(e.getBoundingClientRect().right); }).join(", ")`))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// latencyDay is a day of a phone's ping round trips up to now, one point per
// series.LatencyStep, a few steps without an answer.
func latencyDay(now time.Time) []series.LatencyPoint {
	n := int(series.Span / series.LatencyStep)
	start := now.Add(-series.Span).Truncate(series.LatencyStep)
	var ps []series.LatencyPoint
	for i := range n {
		if i%40 == 39 {
			continue // no answer in that step
		}
		avg := 30 + 10*math.Sin(float64(i)/10)
		ps = append(ps, series.LatencyPoint{Time: start.Add(time.Duration(i) * series.LatencyStep), MinMS: avg - 8, AvgMS: avg, MaxMS: avg + 25, Count: 10})
	}
	return ps
}
