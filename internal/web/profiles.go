package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sipward/sipward/internal/store"
)

// ---- SIP profiles (the operator's): the settings their users take unless
// they set their own; an edit reaches the users at once.

func profileValues(p store.Profile) url.Values {
	v := url.Values{}
	v.Set("name", p.Name)
	v.Set("channels", strconv.Itoa(p.Channels))
	v.Set("cps", strconv.Itoa(p.CPS))
	v.Set("protocol", string(p.Protocol))
	v.Set("nat_ping", string(p.NATPing))
	v["restricted_codecs"] = append([]string(nil), p.RestrictedCodecs...)
	return v
}

// profile reads a profile from the form.
func (f *form) profile(p *store.Profile) {
	p.Name = f.get("name")
	p.Channels, p.CPS = f.int("channels"), f.int("cps")
	p.Protocol, p.NATPing = store.Protocol(f.get("protocol")), store.NATPing(f.get("nat_ping"))
	p.RestrictedCodecs = append([]string{}, f.vals["restricted_codecs"]...)
}

func profileFields(f *form) []*field {
	return []*field{
		f.field("name", "Name", "text").req(),
		f.field("channels", "Channels", "number").help("Concurrent calls of each user that takes them from this profile, at least 1, held from its account's capacity: a raise that would take an account past it is refused."),
		f.field("cps", "Flow speed (calls per second)", "number").help("Of each user; 0: unlimited."),
		f.field("protocol", "Protocol", "select").choices(protocolChoices...).help("Transport the users' REGISTERs and calls must use (others get 403 Transport not allowed)."),
		f.field("nat_ping", "NAT / SIP ping", "select").choices("disabled", "Disabled", "enabled", "Enabled (OPTIONS every 60 s)",
			"timeout", "Enabled with timeout (drop bindings that stop answering)"),
		f.checkboxes("restricted_codecs", "Restricted codecs (removed from SDP)", codecNames),
	}
}

type profileRow struct {
	store.Profile
	Users int
}

type profilesData struct {
	Items  []profileRow
	Pager  pager
	Form   *form
	Fields []*field
}

func (s *Server) profilesPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	return s.renderProfiles(w, r, ss, newForm(url.Values{"channels": {"1"}, "cps": {"0"}, "protocol": {"udp"}, "nat_ping": {"disabled"}}))
}

func (s *Server) renderProfiles(w http.ResponseWriter, r *http.Request, ss *session, f *form) error {
	if err := operatorOnly(ss); err != nil {
		return err
	}
	lv := listView(r, listSpec{keys: store.ProfileSorts})
	items, total, err := s.svc.ListProfiles(r.Context(), ss.Caller, store.ProfileFilter{Page: lv.store()})
	if err != nil {
		return err
	}
	if s.pastEnd(w, r, lv.done(total), len(items)) {
		return nil
	}
	d := profilesData{Pager: lv.done(total), Form: f, Fields: profileFields(f)}
	for _, p := range items {
		_, n, err := s.svc.ListSIPUsers(r.Context(), ss.Caller, store.SIPUserFilter{ProfileID: p.ID, Page: store.Page{Limit: 1}})
		if err != nil {
			return err
		}
		d.Items = append(d.Items, profileRow{p, n})
	}
	f.finish()
	pg := page{Title: "SIP profiles", S: ss, Nav: "profiles", Data: d}
	if r.Method == http.MethodPost {
		pg.Canonical = "/profiles"
	}
	s.render(w, r, http.StatusOK, "profiles.html", pg)
	return nil
}

func (s *Server) profileCreate(w http.ResponseWriter, r *http.Request, ss *session) error {
	if err := operatorOnly(ss); err != nil {
		return err
	}
	f := newForm(r.PostForm)
	var p store.Profile
	f.profile(&p)
	if !f.HasErrors() {
		err := s.svc.CreateProfile(r.Context(), ss.Caller, &p)
		if err == nil {
			s.redirect(w, r, fmt.Sprintf("/profiles/%d", p.ID), flash{"ok", "Profile " + p.Name + " created."})
			return nil
		}
		if !f.refuse(err) {
			return err
		}
	}
	return s.renderProfiles(w, r, ss, f)
}

type profileData struct {
	Profile store.Profile
	Action  string
	CSRF    string
	Form    *form
	Fields  []*field
	Users   []store.SIPUser
	Total   int
	Names   map[int64]string // account names of the users
}

// Inherits names what a user takes from the profile, for the users table.
func (profileData) Inherits(u store.SIPUser) string {
	in := u.Effective.Inherited()
	if len(in) == len(store.Inheritable) {
		return "everything"
	}
	if len(in) == 0 {
		return "nothing (all its own)"
	}
	return strings.ReplaceAll(strings.Join(in, ", "), "_", " ")
}

func (s *Server) profileOf(r *http.Request, ss *session) (store.Profile, error) {
	if err := operatorOnly(ss); err != nil {
		return store.Profile{}, err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return store.Profile{}, err
	}
	return s.svc.GetProfile(r.Context(), ss.Caller, id)
}

func (s *Server) profilePage(w http.ResponseWriter, r *http.Request, ss *session) error {
	p, err := s.profileOf(r, ss)
	if err != nil {
		return err
	}
	return s.renderProfile(w, r, ss, p, newForm(profileValues(p)))
}

func (s *Server) renderProfile(w http.ResponseWriter, r *http.Request, ss *session, p store.Profile, f *form) error {
	d := profileData{Profile: p, Action: fmt.Sprintf("/profiles/%d", p.ID), CSRF: ss.CSRF, Form: f, Fields: profileFields(f),
		Names: map[int64]string{}}
	users, total, err := s.svc.ListSIPUsers(r.Context(), ss.Caller, store.SIPUserFilter{ProfileID: p.ID, Page: store.Page{Limit: 200}})
	if err != nil {
		return err
	}
	d.Users, d.Total = users, total
	for _, u := range users {
		if _, ok := d.Names[u.AccountID]; !ok {
			if a, err := s.svc.GetAccount(r.Context(), ss.Caller, u.AccountID); err == nil {
				d.Names[u.AccountID] = a.Name
			}
		}
	}
	f.finish()
	pg := page{Title: "SIP profile " + p.Name, S: ss, Nav: "profiles", Data: d}
	if r.Method == http.MethodPost {
		pg.Canonical = d.Action
	}
	s.render(w, r, http.StatusOK, "profile.html", pg)
	return nil
}

func (s *Server) profileSubmit(w http.ResponseWriter, r *http.Request, ss *session) error {
	p, err := s.profileOf(r, ss)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	f.profile(&p)
	if !f.HasErrors() {
		err := s.svc.UpdateProfile(r.Context(), ss.Caller, &p)
		if err == nil {
			s.redirect(w, r, fmt.Sprintf("/profiles/%d", p.ID), flash{"ok", "Profile " + p.Name + " saved: its users' next calls use it."})
			return nil
		}
		if !f.refuse(err) {
			return err
		}
	}
	return s.renderProfile(w, r, ss, p, f)
}

func (s *Server) profileDelete(w http.ResponseWriter, r *http.Request, ss *session) error {
	p, err := s.profileOf(r, ss)
	if err != nil {
		return err
	}
	_, users, err := s.svc.ListSIPUsers(r.Context(), ss.Caller, store.SIPUserFilter{ProfileID: p.ID, Page: store.Page{Limit: 1}})
	if err != nil {
		return err
	}
	if !s.confirmed(w, r, ss, "Delete profile", fmt.Sprintf("/profiles/%d", p.ID), ask("delete-profile", p.Name, users)) {
		return nil
	}
	if err := s.svc.DeleteProfile(r.Context(), ss.Caller, p.ID); err != nil {
		return err
	}
	s.redirect(w, r, "/profiles", flash{"ok", "Profile " + p.Name + " deleted; its users keep the settings it gave them, as their own."})
	return nil
}
