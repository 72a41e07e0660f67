package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sipward/sipward/internal/store"
)

func userValues(u store.SIPUser) url.Values {
	v := url.Values{}
	v.Set("username", u.Username)
	// A setting the user inherits shows empty ("from the profile").
	if u.Channels != nil {
		v.Set("channels", strconv.Itoa(*u.Channels))
	}
	if u.CPS != nil {
		v.Set("cps", strconv.Itoa(*u.CPS))
	}
	if u.Protocol != nil {
		v.Set("protocol", string(*u.Protocol))
	}
	if u.NATPing != nil {
		v.Set("nat_ping", string(*u.NATPing))
	}
	if u.RestrictedCodecs != nil {
		v.Set("restricted_codecs_own", "on")
	}
	v.Set("ip_whitelist", strings.Join(u.IPWhitelist, "\n"))
	v.Set("media_relay", string(u.MediaRelay))
	v.Set("session_expires", strconv.Itoa(u.SessionExpires))
	if u.ProfileID != nil {
		v.Set("profile_id", strconv.FormatInt(*u.ProfileID, 10))
	}
	for k, b := range map[string]bool{"retain_did": u.RetainDID, "smart_extension": u.SmartExtension, "session_timers": u.SessionTimers} {
		if b {
			v.Set(k, "on")
		}
	}
	vmValues(v, u.Voicemail)
	v["restricted_codecs"] = append([]string(nil), u.RestrictedCodecs...)
	return v
}

// user reads a SIP user from the form, over the stored one.
func (f *form) user(u *store.SIPUser) {
	u.Username, u.Password = f.get("username"), f.raw("password")
	u.Channels, u.CPS = f.optInt("channels"), f.optInt("cps")
	u.Protocol, u.NATPing = nil, nil
	if p := f.get("protocol"); p != "" {
		u.Protocol = new(store.Protocol(p))
	}
	if n := f.get("nat_ping"); n != "" {
		u.NATPing = new(store.NATPing(n))
	}
	u.IPWhitelist = []string{}
	for _, l := range strings.FieldsFunc(f.raw("ip_whitelist"), func(r rune) bool { return r == '\n' || r == ',' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			u.IPWhitelist = append(u.IPWhitelist, l)
		}
	}
	u.ProfileID = nil
	if p := f.int64("profile_id"); p > 0 {
		u.ProfileID = &p
	}
	u.RetainDID, u.SmartExtension = f.on("retain_did"), f.on("smart_extension")
	u.MediaRelay = store.MediaRelay(f.get("media_relay"))
	u.SessionTimers, u.SessionExpires = f.on("session_timers"), f.int("session_expires")
	u.RestrictedCodecs = nil
	if f.on("restricted_codecs_own") {
		u.RestrictedCodecs = append([]string{}, f.vals["restricted_codecs"]...)
	}
	f.readVoicemail(&u.Voicemail)
}

func userTabs(f *form, u *store.SIPUser, profiles []store.Profile) []*tab {
	pw := "Leave empty to generate a strong one, shown once."
	if u != nil {
		pw = "Leave empty to keep the current password. A new username needs a new password."
	}
	// Each inheritable setting: empty takes the profile's (or the default
	// without one); an existing user's page says what applies now.
	applies := func(name string) string {
		if u == nil {
			return " Empty: the profile's value, or the default without a profile."
		}
		e := u.Effective
		var val any
		var from store.SettingSource
		switch name {
		case "channels":
			val, from = e.Channels.Value, e.Channels.From
		case "cps":
			val, from = e.CPS.Value, e.CPS.From
		case "protocol":
			val, from = e.Protocol.Value, e.Protocol.From
		case "nat_ping":
			val, from = e.NATPing.Value, e.NATPing.From
		case "restricted_codecs":
			c := strings.Join(e.RestrictedCodecs.Value, ", ")
			if c == "" {
				c = "none"
			}
			val, from = c, e.RestrictedCodecs.From
		}
		src := map[store.SettingSource]string{store.FromUser: "this user's own", store.FromProfile: "from its profile", store.FromDefault: "the default"}[from]
		return fmt.Sprintf(" Empty: the profile's value, or the default without a profile. Applies now: %v (%s).", val, src)
	}
	inherit := []string{"", "(from the profile)"}
	basic := []*field{
		f.field("username", "Username", "text").req().auto("off").help("Unique in the realm; inside the account's number block if it has one."),
		f.field("password", "Password", "password").help(pw + " At least 12 characters."),
		f.field("channels", "Channels", "number").help("Concurrent calls, at least 1, allocated from the account's capacity." + applies("channels")),
		f.field("cps", "Flow speed (calls per second)", "number").help("0: unlimited." + applies("cps")),
		f.field("protocol", "Protocol", "select").choices(append(inherit, protocolChoices...)...).help("Transport its REGISTERs and calls must use: TCP accepts TCP or TLS; TLS and TLS & SRTP only TLS (others get 403 Transport not allowed); TLS & SRTP also needs SRTP in the call's SDP." + applies("protocol")),
		f.field("nat_ping", "NAT / SIP ping", "select").choices(append(inherit, "disabled", "Disabled", "enabled", "Enabled (OPTIONS every 60 s)",
			"timeout", "Enabled with timeout (drop bindings that stop answering)")...).help(strings.TrimSpace(applies("nat_ping"))),
		f.field("ip_whitelist", "IP whitelist", "textarea").help("One address or CIDR per line; empty: calls from anywhere."),
		f.field("media_relay", "Media relay", "select").choices(relayChoices...).help(relayHelp),
		f.field("retain_did", "Retain DID", "checkbox").help("Keep the DID as the request URI on calls to this user."),
		f.field("smart_extension", "Smart Extension", "checkbox").help("sipward carries out transfers (REFER) in this user's calls itself. " +
			"When the other party transfers the call, sipward calls the new party and re-INVITEs this phone to it: the phone sees one re-INVITE. " +
			"When this phone transfers (blind, or attended with Replaces), sipward answers 202, calls the target through routing, connects the other party to it and hangs up the phone's leg. " +
			"Off: REFER is relayed to the other side unchanged."),
		f.field("session_timers", "Session timers", "checkbox").help(sessionTimersHelp),
		f.field("session_expires", "Session expires (s)", "number").help(sessionExpiresHelp),
	}
	if len(profiles) > 0 {
		opts := []string{"", "(none)"}
		for _, p := range profiles {
			opts = append(opts, strconv.FormatInt(p.ID, 10), p.Name)
		}
		basic = append(basic, f.field("profile_id", "SIP profile", "select").choices(opts...).
			help("The user takes every setting left empty here from this profile; editing the profile reaches its users' next calls."))
	}
	tabs := []*tab{
		{Key: "basic", Label: "Basic", Fields: basic},
		{Key: "codecs", Label: "Codecs", Fields: []*field{
			f.field("restricted_codecs_own", "Own codec restriction", "checkbox").help("Unticked: the profile's restriction (none without a profile)." + applies("restricted_codecs")),
			f.checkboxes("restricted_codecs", "Restricted codecs (removed from SDP)", codecNames)}},
	}
	if u != nil {
		tabs = append(tabs, &tab{Key: "rewrite", Label: "Parameter Rewrite", Rewrite: true})
	}
	return append(tabs, &tab{Key: "voicemail", Label: "Voice Mail", Fields: voicemailFields(f, u)})
}

func (s *Server) userOf(r *http.Request, ss *session, a store.Account) (store.SIPUser, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return store.SIPUser{}, err
	}
	u, err := s.svc.GetSIPUser(r.Context(), ss.Caller, id)
	if err != nil {
		return u, err
	}
	if u.AccountID != a.ID {
		return u, errNotFound
	}
	return u, nil
}

// userView is a SIP user page's state.
type userView struct {
	Form     *form
	Rewrite  *rewriteView
	Secret   *shownOnce
	Message  *form
	Greeting *form // the voicemail greeting upload
	Notice   []flash
}

type userData struct {
	ownerData
	User      *store.SIPUser
	MsgAction string
	Message   *form
	MsgFields []*field
	Live      *userLive // registration state; nil on a new user's page
	Voicemail *vmView
	Latency   *latencyView
}

func (s *Server) renderUser(w http.ResponseWriter, r *http.Request, ss *session, a store.Account, u *store.SIPUser, v userView) error {
	profiles, _, err := s.svc.ListProfiles(r.Context(), ss.Caller, store.ProfileFilter{Page: store.Page{Limit: 1000}})
	if err != nil {
		return err
	}
	d := userData{ownerData: ownerData{New: u == nil, Form: v.Form, Secret: v.Secret, CSRF: ss.CSRF}, User: u}
	title := "New SIP user"
	d.Action = fmt.Sprintf("/accounts/%d/users/new", a.ID)
	canonical := ""
	if u != nil {
		title = "SIP user " + u.Username
		d.Action = fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
		d.Audit = fmt.Sprintf("/audit?object=sip_user:%d", u.ID)
		if r.Method == http.MethodPost {
			canonical = d.Action
		}
		if v.Rewrite == nil {
			v.Rewrite = &rewriteView{}
		}
		v.Rewrite.Owner = "SIP user " + u.Username
		if err := s.fillRewrite(r, ss, v.Rewrite, store.OwnerSIPUser, u.ID, d.Action); err != nil {
			return err
		}
		d.Rewrite = v.Rewrite
		if v.Message == nil {
			v.Message = newForm(nil)
		}
		d.Message, d.MsgAction = v.Message, d.Action+"/message"
		d.MsgFields = []*field{v.Message.field("text", "Message", "textarea").req().help("Sent as a SIP MESSAGE to every registered device of this user.")}
		v.Message.finish()
		d.Live = s.userLiveState(u)
		d.Voicemail = s.loadVoicemail(r, ss, u, d.Action, v.Greeting)
		d.Latency = s.loadLatency(r, u)
	}
	d.Tabs = userTabs(v.Form, u, profiles)
	v.Form.finish()
	want := r.URL.Query().Get("tab")
	if v.Rewrite != nil && v.Rewrite.Focus {
		want = "rewrite"
	}
	activate(d.Tabs, want)
	s.render(w, r, v.Rewrite.status(), "user.html", page{Title: title, S: ss, Nav: "accounts", Account: &a, Tab: "users", Sub: true, Canonical: canonical,
		Flash: v.Notice, Data: d})
	return nil
}

func (s *Server) userNewPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	v := sessionDefaults(url.Values{})
	v.Set("voicemail.ring_timeout", strconv.Itoa(store.DefaultRingTimeout))
	return s.renderUser(w, r, ss, a, nil, userView{Form: newForm(v)})
}

func (s *Server) userCreate(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	u := store.SIPUser{AccountID: a.ID}
	f.user(&u)
	if !f.HasErrors() {
		err := s.svc.CreateSIPUser(r.Context(), ss.Caller, &u)
		if err == nil {
			if u.Password != "" {
				secret := &shownOnce{Label: "Password of " + u.Username, Value: u.Password}
				u.Password = ""
				return s.renderUser(w, r, ss, a, &u, userView{Form: newForm(userValues(u)), Secret: secret,
					Notice: []flash{{"ok", "SIP user " + u.Username + " created."}}})
			}
			s.redirect(w, r, fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID), flash{"ok", "SIP user " + u.Username + " created."})
			return nil
		}
		if !f.refuse(err) {
			return err
		}
	}
	return s.renderUser(w, r, ss, a, nil, userView{Form: f})
}

func (s *Server) userPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	u, err := s.userOf(r, ss, a)
	if err != nil {
		return err
	}
	return s.renderUser(w, r, ss, a, &u, userView{Form: newForm(userValues(u))})
}

func (s *Server) userSubmit(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	u, err := s.userOf(r, ss, a)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	up := u
	f.user(&up)
	if !f.HasErrors() {
		err := s.svc.UpdateSIPUser(r.Context(), ss.Caller, &up)
		if err == nil {
			s.redirect(w, r, fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID), flash{"ok", "SIP user " + up.Username + " saved."})
			return nil
		}
		if !f.refuse(err) {
			return err
		}
	}
	return s.renderUser(w, r, ss, a, &u, userView{Form: f})
}

func (s *Server) userDelete(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	u, err := s.userOf(r, ss, a)
	if err != nil {
		return err
	}
	back := fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
	if !s.confirmed(w, r, ss, "Delete SIP user", back, ask("delete-user", u.Username, a.Name)) {
		return nil
	}
	if err := s.svc.DeleteSIPUser(r.Context(), ss.Caller, u.ID); err != nil {
		return err
	}
	s.redirect(w, r, fmt.Sprintf("/accounts/%d/users", a.ID), flash{"ok", "SIP user " + u.Username + " deleted."})
	return nil
}

// userPassword is Generate Password: a new password, shown once.
func (s *Server) userPassword(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	u, err := s.userOf(r, ss, a)
	if err != nil {
		return err
	}
	back := fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
	if !s.confirmed(w, r, ss, "Replace password", back, ask("password-user", u.Username, a.Name)) {
		return nil
	}
	pw, err := s.svc.ResetSIPUserPassword(r.Context(), ss.Caller, u.ID)
	if err != nil {
		return err
	}
	return s.renderUser(w, r, ss, a, &u, userView{Form: newForm(userValues(u)),
		Secret: &shownOnce{Label: "New password of " + u.Username, Value: pw}})
}

const maxMessage = 1000

// userMessage sends a SIP MESSAGE to the user's registered devices.
func (s *Server) userMessage(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	u, err := s.userOf(r, ss, a)
	if err != nil {
		return err
	}
	m := newForm(r.PostForm)
	text := strings.TrimSpace(m.raw("text"))
	switch {
	case text == "":
		m.fail("text", "is required")
	case utf8.RuneCountInString(text) > maxMessage:
		m.fail("text", fmt.Sprintf("is longer than %d characters", maxMessage))
	case s.messenger == nil:
		m.fail("text", ErrNoMessenger.Error())
	default:
		n, err := s.messenger.SendMessage(r.Context(), u, text)
		switch {
		case err != nil && errors.Is(err, ErrNoMessenger):
			m.fail("text", ErrNoMessenger.Error())
		case err != nil:
			s.log.Warn("web: send message", "sip_user", u.ID, "err", err)
			m.fail("text", "not sent: "+err.Error())
		case n == 0:
			m.fail("text", "not sent: "+u.Username+" has no registered device")
		default:
			s.redirect(w, r, fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID), flash{"ok", "Message sent to " + strings.ToLower(devices(n)) + "."})
			return nil
		}
	}
	return s.renderUser(w, r, ss, a, &u, userView{Form: newForm(userValues(u)), Message: m})
}

// ---- Global SIP user list.

func (s *Server) globalUsers(w http.ResponseWriter, r *http.Request, ss *session) error {
	q, pg := r.URL.Query().Get("q"), listView(r, listSpec{keys: store.SIPUserSorts})
	items, total, err := s.svc.ListSIPUsers(r.Context(), ss.Caller, store.SIPUserFilter{Username: q, Page: pg.store()})
	if err != nil {
		return err
	}
	if s.pastEnd(w, r, pg.done(total), len(items)) {
		return nil
	}
	ids := make([]int64, len(items))
	for i, u := range items {
		ids[i] = u.AccountID
	}
	s.render(w, r, http.StatusOK, "users.html", page{Title: "SIP users", S: ss, Nav: "users",
		Data: usersData{Q: q, Items: items, Pager: pg.done(total), Names: s.accountNames(r, ss, ids),
			Registered: s.registeredCounts(r, ss, 0)}})
	return nil
}
