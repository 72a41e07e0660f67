package web

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// liveScope returns the account a live view shows: an account login's own,
// or the operator's ?account= filter (0: every account).
func liveScope(r *http.Request, ss *session) int64 {
	if !ss.Caller.Operator {
		return ss.Caller.AccountID
	}
	id, _ := strconv.ParseInt(r.URL.Query().Get("account"), 10, 64)
	return max(id, 0)
}

// The columns the live lists sort by.
var (
	bindingSorts = sorter[live.Binding]{
		"username":  byText(func(b live.Binding) string { return b.Username }),
		"contact":   byText(func(b live.Binding) string { return b.Contact }),
		"source":    byText(func(b live.Binding) string { return b.Source }),
		"transport": byText(func(b live.Binding) string { return b.Transport }),
		"latency":   byNum(func(b live.Binding) float64 { return b.LatencyMS }),
		"expires":   byTime(func(b live.Binding) time.Time { return b.Expires }),
		"agent":     byText(func(b live.Binding) string { return b.UserAgent }),
	}
	callSorts = sorter[live.Call]{
		"account": byText(func(c live.Call) string { return c.Account }),
		"auth":    byText(func(c live.Call) string { return c.Auth }),
		"from":    byText(func(c live.Call) string { return c.From }),
		"to":      byText(func(c live.Call) string { return c.To }),
		"source":  byText(func(c live.Call) string { return c.Source }),
		"state":   byText(func(c live.Call) string { return c.State }),
		// The longest call started first.
		"duration": func(a, b live.Call) int { return b.Start.Compare(a.Start) },
		"call_id":  byText(func(c live.Call) string { return c.ID }),
		"node":     byText(func(c live.Call) string { return c.Node }),
	}
	decisionSorts = sorter[live.Decision]{
		"time":    func(a, b live.Decision) int { return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Seq, b.Seq)) },
		"method":  byText(func(d live.Decision) string { return d.Method }),
		"source":  byText(func(d live.Decision) string { return d.Source }),
		"account": byText(func(d live.Decision) string { return d.Account }),
		"result":  byText(func(d live.Decision) string { return d.Result }),
		"stage":   byText(func(d live.Decision) string { return d.Stage }),
		"node":    byText(func(d live.Decision) string { return d.Node }),
	}
)

type liveData[T any] struct {
	Available bool
	Q         string
	AccountID int64
	Items     []T
	Pager     pager
	Names     map[int64]string
	Now       time.Time
	Self      string   // this page's URL, for the live refresh
	Accounts  []option // the operator's account filter (objects: pickers.go)
}

func (s *Server) registrationsPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	d := liveData[live.Binding]{Available: s.live != nil, Q: r.URL.Query().Get("q"), AccountID: liveScope(r, ss), Now: s.now(), Self: r.URL.RequestURI()}
	d.Accounts = s.accountChoices(r, ss, r.URL.Query().Get("account"))
	if s.live != nil {
		var kept []live.Binding
		for _, b := range s.live.Registrations(d.AccountID, "") {
			if ss.Caller.Operator || b.AccountID == ss.Caller.AccountID {
				if d.Q == "" || strings.Contains(strings.ToLower(b.Username), strings.ToLower(d.Q)) {
					kept = append(kept, b)
				}
			}
		}
		d.Items, d.Pager = sortPage(r, kept, bindingSorts, "username", false)
		ids := make([]int64, len(d.Items))
		for i, b := range d.Items {
			ids[i] = b.AccountID
		}
		d.Names = s.accountNames(r, ss, ids)
	}
	s.render(w, r, http.StatusOK, "registrations.html", page{Title: "Registrations", S: ss, Nav: "registrations", Data: d})
	return nil
}

func (s *Server) callsPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	d := liveData[live.Call]{Available: s.live != nil, AccountID: liveScope(r, ss), Now: s.now(), Self: r.URL.RequestURI()}
	d.Accounts = s.accountChoices(r, ss, r.URL.Query().Get("account"))
	if s.live != nil {
		var kept []live.Call
		for _, c := range s.live.Calls(d.AccountID) {
			if ss.Caller.Operator || c.AccountID == ss.Caller.AccountID {
				kept = append(kept, c)
			}
		}
		d.Items, d.Pager = sortPage(r, kept, callSorts, "duration", true)
	}
	s.render(w, r, http.StatusOK, "calls.html", page{Title: "Active calls", S: ss, Nav: "calls", Data: d})
	return nil
}

type decisionsData struct {
	liveData[live.Decision]
	Source, Result, Account, Range string
	Results, Ranges                []option
}

// decisionRanges are the time ranges the decisions page offers: how far
// back from now ("" every decision the nodes keep).
var decisionRanges = []string{"5m", "last 5 minutes", "15m", "last 15 minutes", "1h", "last hour", "24h", "last 24 hours", "", "all the nodes keep"}

func (s *Server) decisionsPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	q := r.URL.Query()
	d := decisionsData{liveData: liveData[live.Decision]{Available: s.live != nil, AccountID: liveScope(r, ss), Now: s.now(), Self: r.URL.RequestURI()},
		Source: strings.TrimSpace(q.Get("source")), Result: q.Get("result"), Account: q.Get("account"), Range: q.Get("range")}
	for _, v := range []string{"", "accepted", "rejected", "dropped", "failed"} {
		l := v
		if v == "" {
			l = "Any result"
		}
		d.Results = append(d.Results, option{Value: v, Label: l, Selected: v == d.Result})
	}
	d.Accounts = s.accountChoices(r, ss, r.URL.Query().Get("account"))
	f := live.DecisionFilter{Source: d.Source, AccountID: d.AccountID, Result: d.Result, CallID: q.Get("call_id"), Limit: 1000}
	f.Since, d.Range, d.Ranges = decisionSince(d.Range, d.Now)
	if s.live != nil {
		var kept []live.Decision
		for _, x := range s.live.Decisions(f) {
			// An account sees only decisions made for it, never other customers' sources.
			if ss.Caller.Operator || x.AccountID == ss.Caller.AccountID {
				kept = append(kept, x)
			}
		}
		d.Items, d.Pager = sortPage(r, kept, decisionSorts, "time", true)
	}
	s.render(w, r, http.StatusOK, "decisions.html", page{Title: "Decisions", S: ss, Nav: "decisions", Data: d})
	return nil
}

// decisionSince returns the start of the time range named rng (zero: no
// start), the range as understood (an unknown one is "": all), and the
// choices with it selected.
func decisionSince(rng string, now time.Time) (time.Time, string, []option) {
	var since time.Time
	known := false
	for i := 0; i < len(decisionRanges); i += 2 {
		known = known || decisionRanges[i] == rng
	}
	if d, err := time.ParseDuration(rng); known && err == nil {
		since = now.Add(-d)
	} else {
		rng = ""
	}
	var opts []option
	for i := 0; i < len(decisionRanges); i += 2 {
		opts = append(opts, option{Value: decisionRanges[i], Label: decisionRanges[i+1], Selected: decisionRanges[i] == rng})
	}
	return since, rng, opts
}

// ---- Firewall bans (operator only).

type firewallData struct {
	Q, Source string
	Self      string // this page's URL, for the live refresh
	All       bool
	Items     []store.Ban
	Pager     pager
	Form      *form
	Fields    []*field
}

func (s *Server) firewallPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	return s.renderFirewall(w, r, ss, newForm(url.Values{"expires": {"24h"}}))
}

func (s *Server) renderFirewall(w http.ResponseWriter, r *http.Request, ss *session, f *form) error {
	if err := operatorOnly(ss); err != nil {
		return err
	}
	q := r.URL.Query()
	d := firewallData{Q: q.Get("q"), Source: q.Get("source"), All: q.Get("all") == "on", Form: f}
	pg := listView(r, listSpec{keys: store.BanSorts})
	filter := store.BanFilter{Address: d.Q, Source: store.BanSource(d.Source), Page: pg.store()}
	if !d.All {
		filter.ActiveAt = s.now()
	}
	items, total, err := s.svc.ListBans(r.Context(), ss.Caller, filter)
	if err != nil {
		return err
	}
	if s.pastEnd(w, r, pg.done(total), len(items)) {
		return nil
	}
	d.Items, d.Pager, d.Self = items, pg.done(total), r.URL.RequestURI()
	d.Fields = []*field{
		f.field("address", "Address or CIDR", "text").req().ph("198.51.100.23"),
		f.field("reason", "Reason", "text"),
		f.field("expires", "Expires", "select").choices("1h", "in 1 hour", "24h", "in 24 hours", "168h", "in 7 days", "", "never"),
	}
	f.finish()
	p := page{Title: "Firewall", S: ss, Nav: "firewall", Data: d}
	if r.Method == http.MethodPost {
		p.Canonical = "/firewall"
	}
	s.render(w, r, http.StatusOK, "firewall.html", p)
	return nil
}

func (s *Server) banCreate(w http.ResponseWriter, r *http.Request, ss *session) error {
	if err := operatorOnly(ss); err != nil {
		return err
	}
	f := newForm(r.PostForm)
	b := store.Ban{Address: f.get("address"), Reason: f.get("reason")}
	if e := f.get("expires"); e != "" {
		d, err := time.ParseDuration(e)
		if err != nil || d <= 0 {
			f.fail("expires", "pick one of the choices")
		}
		b.ExpiresAt = s.now().Add(d).UTC()
	}
	if !f.HasErrors() {
		warns, err := s.svc.CreateBan(r.Context(), ss.Caller, &b)
		if err == nil {
			s.redirect(w, r, "/firewall", append([]flash{{"ok", "Banned " + b.Address + "."}}, banWarnFlashes(warns)...)...)
			return nil
		}
		if !f.refuse(err) {
			return err
		}
		if msg, ok := f.errs["expires_at"]; ok {
			f.errs["expires"] = msg
			delete(f.errs, "expires_at")
		}
	}
	return s.renderFirewall(w, r, ss, f)
}

func (s *Server) banUnblock(w http.ResponseWriter, r *http.Request, ss *session) error {
	if err := operatorOnly(ss); err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	b, err := s.svc.GetBan(r.Context(), ss.Caller, id)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteBan(r.Context(), ss.Caller, id); err != nil {
		return err
	}
	back := "/firewall"
	if b := r.PostForm.Get("back"); b != "" {
		back = localPath(b)
	}
	s.redirect(w, r, back, flash{"ok", fmt.Sprintf("Unblocked %s: the firewall lets it in within a second.", b.Address)})
	return nil
}

// banWarnFlashes are the warnings of a ban that covers IP endpoints.
func banWarnFlashes(warns []provision.Warning) []flash {
	var out []flash
	for _, w := range warns {
		out = append(out, flash{"warn", "Banned with a warning: " + w.Message})
	}
	return out
}
