package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/store"
)

// dashWindow is one window the dashboard's counts can cover.
type dashWindow struct {
	Value, Label string
	D            time.Duration
}

// dashWindows are the windows the selector offers, shortest first.
var dashWindows = []dashWindow{
	{"5m", "Last 5 minutes", 5 * time.Minute},
	{"15m", "Last 15 minutes", 15 * time.Minute},
	{"1h", "Last hour", time.Hour},
	{"6h", "Last 6 hours", 6 * time.Hour},
	{"24h", "Last 24 hours", 24 * time.Hour},
}

const defaultDashWindow = "1h"

// maxDashAccounts bounds the per-account table; the busiest come first.
const maxDashAccounts = 100

// dashQuery is what the dashboard's GET form asked for, checked: a bad
// value falls back to the default and leaves a note naming the field.
type dashQuery struct {
	Window    dashWindow
	AccountID int64    // 0: every account (operator only)
	Notes     []string // what was refused, each naming its field
}

// Query is the query string of this selection, for the live refresh.
func (q dashQuery) Query() string {
	v := url.Values{"window": {q.Window.Value}}
	if q.AccountID != 0 {
		v.Set("account_id", strconv.FormatInt(q.AccountID, 10))
	}
	return v.Encode()
}

// parseDashQuery reads the window and, for the operator, the account. An
// account login always sees its own account: its account_id is ignored.
func parseDashQuery(v url.Values, ss *session) dashQuery {
	q := dashQuery{Window: windowOf(defaultDashWindow)}
	if w := v.Get("window"); w != "" {
		if d, ok := findWindow(w); ok {
			q.Window = d
		} else {
			q.Notes = append(q.Notes, fmt.Sprintf("window: %q is not one of 5m, 15m, 1h, 6h, 24h; showing the last hour.", w))
		}
	}
	if !ss.Caller.Operator {
		q.AccountID = ss.Caller.AccountID
		return q
	}
	if a := v.Get("account_id"); a != "" {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			q.Notes = append(q.Notes, fmt.Sprintf("account_id: %q is not an account number; showing every account.", a))
		} else {
			q.AccountID = id
		}
	}
	return q
}

func findWindow(value string) (dashWindow, bool) {
	for _, w := range dashWindows {
		if w.Value == value {
			return w, true
		}
	}
	return dashWindow{}, false
}

func windowOf(value string) dashWindow { w, _ := findWindow(value); return w }

// dashData is what dashboard.html shows.
type dashData struct {
	Query     dashQuery
	Windows   []dashWindow
	Operator  bool
	Accounts  []store.Account // the operator's picker
	MoreAccts bool            // the picker holds only the first 1,000
	Account   *store.Account  // the account shown, if one
	Available bool            // the node has Stats
	Error     string          // the figures could not be read
	View      *series.View
	Busiest   []series.Account // the per-account table's rows
	Charts    dashCharts
	Hour, Day chartBlock
}

// dashCharts is the charts' data, for static/dashboard.js.
type dashCharts struct {
	Hour chartData `json:"hour"`
	Day  chartData `json:"day"`
}

// dashboardPage is the start page: live figures, counts over a window and
// charts of the last hour and day, of every account (operator) or of the
// login's own account. A bad window or account_id answers 422 with the
// default shown and a note naming the field.
func (s *Server) dashboardPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	d, err := s.dashboard(r, ss)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if len(d.Query.Notes) > 0 {
		status = http.StatusUnprocessableEntity
	}
	s.render(w, r, status, "dashboard.html", page{Title: "Dashboard", S: ss, Nav: "dashboard", Data: d})
	return nil
}

// dashboardLive is the live figures' partial, refreshed every 10 seconds.
func (s *Server) dashboardLive(w http.ResponseWriter, r *http.Request, ss *session) error {
	d, err := s.dashboard(r, ss)
	if err != nil {
		return err
	}
	s.fragment(w, r, "dashboard.html", "dash_live", d)
	return nil
}

func (s *Server) dashboard(r *http.Request, ss *session) (dashData, error) {
	q := parseDashQuery(r.URL.Query(), ss)
	d := dashData{Query: q, Windows: dashWindows, Operator: ss.Caller.Operator, Available: s.stats != nil}
	if err := s.dashAccounts(r, ss, &d); err != nil {
		return d, err
	}
	if s.stats == nil {
		return d, nil
	}
	v, err := s.stats.Dashboard(r.Context(), series.Query{AccountID: q.AccountID, Window: q.Window.D})
	if err != nil {
		s.log.Error("web: dashboard figures", "account", q.AccountID, "err", err)
		d.Error = "The dashboard's figures could not be read; the error is in the server's log."
		return d, nil
	}
	d.View = &v
	d.Busiest = v.Accounts[:min(len(v.Accounts), maxDashAccounts)]
	d.Charts = dashCharts{Hour: countChart(v.Hour), Day: countChart(v.Day)}
	d.Hour = chartBlock{ID: "hour", Src: "dash-data", Lines: len(v.Hour.Lines), Table: countTable(v.Hour, 5*time.Minute, "15:04"),
		Caption: "The last hour, per 10 seconds", Summary: "The last hour per 5 minutes, as a table"}
	d.Day = chartBlock{ID: "day", Src: "dash-data", Lines: len(v.Day.Lines), Table: countTable(v.Day, time.Hour, "Jan 2 15:04"),
		Caption: "The last 24 hours, per 5 minutes", Summary: "The last 24 hours per hour, as a table"}
	return d, nil
}

// dashAccounts fills the operator's account picker and the account shown;
// an account that is not there (or not the caller's) answers 404.
func (s *Server) dashAccounts(r *http.Request, ss *session, d *dashData) error {
	if ss.Caller.Operator {
		items, total, err := s.svc.ListAccounts(r.Context(), ss.Caller, store.AccountFilter{Page: store.Page{Limit: 1000}})
		if err != nil {
			return err
		}
		d.Accounts, d.MoreAccts = items, total > len(items)
	}
	if d.Query.AccountID == 0 {
		return nil
	}
	a, err := s.svc.GetAccount(r.Context(), ss.Caller, d.Query.AccountID)
	if err != nil {
		return err
	}
	d.Account = &a
	return nil
}
