package web

import (
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

// window returns the page of items at offset.
func window[T any](items []T, off int) []T {
	if off >= len(items) {
		return nil
	}
	return items[off:min(len(items), off+pageSize)]
}

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
		off := offsetOf(r)
		d.Items, d.Pager = window(kept, off), newPager(r, len(kept), off)
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
		off := offsetOf(r)
		d.Items, d.Pager = window(kept, off), newPager(r, len(kept), off)
	}
	s.render(w, r, http.StatusOK, "calls.html", page{Title: "Active calls", S: ss, Nav: "calls", Data: d})
	return nil
}

type decisionsData struct {
	liveData[live.Decision]
	Source, Result, Account string
	Results                 []option
}

func (s *Server) decisionsPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	q := r.URL.Query()
	d := decisionsData{liveData: liveData[live.Decision]{Available: s.live != nil, AccountID: liveScope(r, ss), Now: s.now(), Self: r.URL.RequestURI()},
		Source: strings.TrimSpace(q.Get("source")), Result: q.Get("result"), Account: q.Get("account")}
	for _, v := range []string{"", "accepted", "rejected", "dropped", "failed"} {
		l := v
		if v == "" {
			l = "Any result"
		}
		d.Results = append(d.Results, option{Value: v, Label: l, Selected: v == d.Result})
	}
	d.Accounts = s.accountChoices(r, ss, r.URL.Query().Get("account"))
	if s.live != nil {
		var kept []live.Decision
		for _, x := range s.live.Decisions(live.DecisionFilter{Source: d.Source, AccountID: d.AccountID, Result: d.Result,
			CallID: q.Get("call_id"), Limit: 1000}) {
			// An account sees only decisions made for it, never other customers' sources.
			if ss.Caller.Operator || x.AccountID == ss.Caller.AccountID {
				kept = append(kept, x)
			}
		}
		off := offsetOf(r)
		d.Items, d.Pager = window(kept, off), newPager(r, len(kept), off)
	}
	s.render(w, r, http.StatusOK, "decisions.html", page{Title: "Decisions", S: ss, Nav: "decisions", Data: d})
	return nil
}

// ---- Firewall bans (operator only).

type firewallData struct {
	Q, Source string
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
	filter := store.BanFilter{Address: d.Q, Source: store.BanSource(d.Source), Page: store.Page{Limit: pageSize, Offset: offsetOf(r)}}
	if !d.All {
		filter.ActiveAt = s.now()
	}
	items, total, err := s.svc.ListBans(r.Context(), ss.Caller, filter)
	if err != nil {
		return err
	}
	d.Items, d.Pager = items, newPager(r, total, filter.Offset)
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
