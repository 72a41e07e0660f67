package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// tab is one tab of a form: its fields, or (Rewrite) the rewrite rules.
type tab struct {
	Key, Label string
	Fields     []*field
	Rewrite    bool
	Active     bool
	// Warn shows the seed's warning on the CLI prefix, Tech prefix and
	// Force From fields, linked to the Parameter Rewrite tab when the owner
	// has one (RewriteLink); Help is a paragraph above the fields.
	Warn, RewriteLink bool
	Help              string
}

// activate marks the first tab with an error active, else the one asked
// for (?tab=), else the first.
func activate(tabs []*tab, want string) {
	for _, t := range tabs {
		for _, f := range t.Fields {
			if f.Error != "" {
				t.Active = true
				return
			}
		}
	}
	for _, t := range tabs {
		if t.Key == want {
			t.Active = true
			return
		}
	}
	tabs[0].Active = true
}

// ownerData is what the endpoint and SIP user pages share.
type ownerData struct {
	New     bool
	Action  string // the form's URL
	Form    *form
	Tabs    []*tab
	Rewrite *rewriteView // nil for a new owner
	Secret  *shownOnce
	CSRF    string
	Audit   string // the owner's audit log
	// Endpoint is the IP endpoint shown (nil on SIP user pages and new
	// endpoints), and Block the active ban covering its address, if any.
	Endpoint *store.IPEndpoint
	Block    *blocked
}

func endpointValues(e store.IPEndpoint) url.Values {
	v := url.Values{}
	v.Set("address", e.Address)
	v.Set("direction", string(e.Direction))
	v.Set("protocol", string(e.Protocol))
	v.Set("media_relay", string(e.MediaRelay))
	v.Set("port", strconv.Itoa(e.Port))
	v.Set("channels", strconv.Itoa(e.Channels))
	v.Set("cps", strconv.Itoa(e.CPS))
	v.Set("session_expires", strconv.Itoa(e.SessionExpires))
	for k, s := range map[string]string{"manufacturer": e.Manufacturer, "version": e.Version, "dial_pattern": e.DialPattern,
		"tech_prefix": e.TechPrefix, "cli_prefix": e.CLIPrefix, "force_from": e.ForceFrom, "username": e.Username,
		"outbound_proxy": e.OutboundProxy} {
		v.Set(k, s)
	}
	for k, b := range map[string]bool{"force_nat": e.ForceNAT, "intercept_reinvite": e.InterceptReinvite, "cli_auth": e.CLIAuth,
		"disable_nat": e.DisableNAT, "smart_extension": e.SmartExtension, "session_timers": e.SessionTimers} {
		if b {
			v.Set(k, "on")
		}
	}
	v["restricted_codecs"] = append([]string(nil), e.RestrictedCodecs...)
	return v
}

// endpoint reads an IP endpoint from the form, over the stored one.
func (f *form) endpoint(e *store.IPEndpoint) {
	e.Address = f.get("address")
	e.Direction = store.Direction(f.get("direction"))
	e.Protocol = store.Protocol(f.get("protocol"))
	e.Port, e.Channels, e.CPS = f.int("port"), f.int("channels"), f.int("cps")
	e.Manufacturer, e.Version, e.DialPattern = f.get("manufacturer"), f.get("version"), f.get("dial_pattern")
	e.TechPrefix, e.CLIPrefix, e.ForceFrom = f.get("tech_prefix"), f.get("cli_prefix"), f.get("force_from")
	e.Username, e.Password, e.OutboundProxy = f.get("username"), f.raw("password"), f.get("outbound_proxy")
	e.ForceNAT, e.InterceptReinvite, e.CLIAuth, e.DisableNAT = f.on("force_nat"), f.on("intercept_reinvite"), f.on("cli_auth"), f.on("disable_nat")
	e.MediaRelay, e.SmartExtension = store.MediaRelay(f.get("media_relay")), f.on("smart_extension")
	e.SessionTimers, e.SessionExpires = f.on("session_timers"), f.int("session_expires")
	e.RestrictedCodecs = append([]string{}, f.vals["restricted_codecs"]...)
}

// The help texts of the endpoint form that explain what sipward does.
const (
	// cliAuthHelp: how identify tells accounts on one address apart.
	cliAuthHelp = "Tells accounts that send from one address apart by caller ID. sipward takes the sending endpoints whose address " +
		"contains the call's source, keeps those whose tech prefix starts the dialled number (or those without one), then keeps " +
		"an endpoint with CLI authentication only if the caller ID (From user) matches one of its account's CLI patterns or DIDs. " +
		"One left is the account; several, of which exactly one has CLI authentication, give that one; otherwise the call is " +
		"refused (403 Ambiguous source). Two accounts on the same address with the same tech prefix need it on both."
	// natHelp: what sipward does about NAT on this endpoint's calls.
	natHelp = "NAT: on each call sipward checks whether the device is behind NAT (its top Via or Contact names another address " +
		"than the one the call came from). Either way, private addresses in its SDP (10/8, 172.16/12, 192.168/16, 100.64/10, " +
		"169.254/16, fc00::/7, fe80::/10) become the source address and requests inside the call go back to the source address; " +
		"public SDP addresses stay. Force NAT and Disable NAT below replace this detection."
	egressHelp = "Only receiving endpoints use these (shown when Direction is Receives): when the switch answers sipward's INVITE " +
		"with 401 or 407, sipward answers once with them (MD5 or SHA-256); a second challenge tries the next receiving endpoint."
)

func endpointTabs(f *form, e *store.IPEndpoint) []*tab {
	pwHelp := "The password for the egress username; sealed at rest and never shown again."
	if e != nil && e.PasswordSet {
		pwHelp = "A password is stored (never shown). Leave empty to keep it; clear the username to remove it."
	}
	sends := f.get("direction") != string(store.DirReceives)
	return append([]*tab{
		{Key: "basic", Label: "Basic", Fields: []*field{
			f.field("address", "IP address, CIDR or FQDN", "text").req().ph("203.0.113.7").
				help("A single address, a network such as 203.0.113.0/24, or (receiving endpoints only) a host name."),
			f.field("direction", "Direction", "select").choices("sends", "Sends calls to us (ingress)", "receives", "Receives calls from us (egress)"),
			f.field("protocol", "Protocol", "select").choices(protocolChoices...),
			f.field("port", "Port", "number").help("Empty: 5060 (5061 for TLS)."),
			f.field("channels", "Channels", "number").help("Concurrent calls; 0: unlimited."),
			f.field("cps", "Flow speed (calls per second)", "number").help("0: unlimited."),
			f.field("cli_auth", "CLI authentication", "checkbox").help(cliAuthHelp),
		}},
		advancedTab(f, e, sends, pwHelp),
		{Key: "codecs", Label: "Codecs", Fields: []*field{
			f.checkboxes("restricted_codecs", "Restricted codecs (removed from SDP)", codecNames),
		}},
	}, rewriteTab(e != nil)...)
}

func rewriteTab(exists bool) []*tab {
	if !exists {
		return nil
	}
	return []*tab{{Key: "rewrite", Label: "Parameter Rewrite", Rewrite: true}}
}

// advancedTab holds the seed's warned-against number fields first (under
// its warning), then the rest; the egress credentials only show (and only
// post) when the endpoint receives calls.
func advancedTab(f *form, e *store.IPEndpoint, sends bool, pwHelp string) *tab {
	return &tab{Key: "advanced", Label: "Advanced", Warn: true, RewriteLink: e != nil, Help: natHelp, Fields: []*field{
		f.field("tech_prefix", "Tech prefix", "text").ph("123#").help("Digits before the dialled number that tell accounts sharing an address apart; stripped."),
		f.field("cli_prefix", "CLI prefix", "text").help("Digits put before the caller ID of calls from this endpoint, after its rewrite rules."),
		f.field("force_from", "Force From", "text").help("Caller ID that replaces the one sent, on calls from this endpoint (wins over the CLI prefix)."),
		f.field("manufacturer", "Manufacturer", "text").help("Informational only: sipward does not use it."),
		f.field("version", "Version", "text").help("Informational only: sipward does not use it."),
		f.field("dial_pattern", "Dial pattern", "text").ph("e164").
			help("How this switch dials, brought to E.164 digits before the rewrite rules: e164 (a leading + removed; the default), international (00 or + removed), national:CC (also 0… becomes CC…, for example national:44), none (as dialled)."),
		f.field("username", "Egress username", "text").auto("off").help(egressHelp).showIf("direction", "receives", sends),
		f.field("password", "Egress password", "password").help(pwHelp).showIf("direction", "receives", sends),
		f.field("outbound_proxy", "Outbound proxy", "text").ph("sip:proxy.example.com:5060").help("Receiving endpoints: calls to it are sent through this host:port; the Request-URI stays the endpoint."),
		f.field("force_nat", "Force NAT", "checkbox").help("Always treat it as behind NAT: requests in its calls go to the address they came from, and every SDP address of its calls becomes that address."),
		f.field("disable_nat", "Disable NAT handling", "checkbox").help("Never rewrite: its SDP goes on as sent, and requests in its calls go to its Contact, not to the address they came from. Neither box: NAT is detected, and private SDP addresses become the source address."),
		f.field("media_relay", "Media relay", "select").choices(relayChoices...).help(relayHelp),
		f.field("intercept_reinvite", "Intercept re-INVITE", "checkbox").help("sipward answers this device's re-INVITEs itself, with the SDP it last sent; the other side never sees them (session-timer refreshes included)."),
		f.field("smart_extension", "Smart Extension", "checkbox").help("sipward carries out transfers (REFER) in this endpoint's calls itself. " +
			"When the other party transfers the call, sipward calls the new party and re-INVITEs this device to it: the device sees one re-INVITE. " +
			"When this device transfers (blind, or attended with Replaces), sipward answers 202, calls the target through routing, connects the other party to it and hangs up the device's leg. " +
			"Off: REFER is relayed to the other side unchanged."),
		f.field("session_timers", "Session timers", "checkbox").help(sessionTimersHelp),
		f.field("session_expires", "Session expires (s)", "number").help(sessionExpiresHelp),
	}}
}

func (s *Server) endpointOf(r *http.Request, ss *session, a store.Account) (store.IPEndpoint, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return store.IPEndpoint{}, err
	}
	e, err := s.svc.GetEndpoint(r.Context(), ss.Caller, id)
	if err != nil {
		return e, err
	}
	if e.AccountID != a.ID {
		return e, errNotFound
	}
	return e, nil
}

func (s *Server) renderEndpoint(w http.ResponseWriter, r *http.Request, ss *session, a store.Account, e *store.IPEndpoint, f *form, rw *rewriteView) error {
	d := ownerData{New: e == nil, Form: f, CSRF: ss.CSRF, Endpoint: e}
	title := "New IP endpoint"
	d.Action = fmt.Sprintf("/accounts/%d/ip/new", a.ID)
	canonical := ""
	if e != nil {
		title = "IP endpoint " + e.Address
		d.Action = fmt.Sprintf("/accounts/%d/ip/%d", a.ID, e.ID)
		d.Audit = fmt.Sprintf("/audit?object=ip_endpoint:%d", e.ID)
		if r.Method == http.MethodPost {
			canonical = d.Action
		}
		if rw == nil {
			rw = &rewriteView{}
		}
		rw.Owner = "IP endpoint " + e.Address
		if err := s.fillRewrite(r, ss, rw, store.OwnerEndpoint, e.ID, d.Action); err != nil {
			return err
		}
		d.Rewrite = rw
		d.Block = s.blocks(r, ss, []store.IPEndpoint{*e})[e.ID]
	}
	d.Tabs = endpointTabs(f, e)
	f.finish()
	want := r.URL.Query().Get("tab")
	if rw != nil && rw.Focus {
		want = "rewrite"
	}
	activate(d.Tabs, want)
	s.render(w, r, rw.status(), "owner.html", page{Title: title, S: ss, Nav: "accounts", Account: &a, Tab: "ip", Sub: true, Canonical: canonical, Data: d})
	return nil
}

func (s *Server) endpointNewPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	f := newForm(sessionDefaults(url.Values{"direction": {"sends"}, "protocol": {"udp"}, "channels": {"0"}, "cps": {"0"}, "dial_pattern": {"e164"}}))
	return s.renderEndpoint(w, r, ss, a, nil, f, nil)
}

func warnFlashes(warns []provision.Warning) []flash {
	var out []flash
	for _, w := range warns {
		out = append(out, flash{"warn", "Saved with a warning: " + w.Message})
	}
	return out
}

func (s *Server) endpointCreate(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	e := store.IPEndpoint{AccountID: a.ID}
	f.endpoint(&e)
	if !f.HasErrors() {
		warns, err := s.svc.CreateEndpoint(r.Context(), ss.Caller, &e)
		if err == nil {
			msgs := append([]flash{{"ok", "IP endpoint " + e.Address + " added."}}, warnFlashes(warns)...)
			s.redirect(w, r, fmt.Sprintf("/accounts/%d/ip/%d", a.ID, e.ID), msgs...)
			return nil
		}
		if !f.refuse(err) {
			return err
		}
	}
	return s.renderEndpoint(w, r, ss, a, nil, f, nil)
}

func (s *Server) endpointPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	e, err := s.endpointOf(r, ss, a)
	if err != nil {
		return err
	}
	return s.renderEndpoint(w, r, ss, a, &e, newForm(endpointValues(e)), nil)
}

func (s *Server) endpointSubmit(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	e, err := s.endpointOf(r, ss, a)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	up := e
	f.endpoint(&up)
	if !f.HasErrors() {
		warns, err := s.svc.UpdateEndpoint(r.Context(), ss.Caller, &up)
		if err == nil {
			msgs := append([]flash{{"ok", "IP endpoint " + up.Address + " saved."}}, warnFlashes(warns)...)
			s.redirect(w, r, fmt.Sprintf("/accounts/%d/ip/%d", a.ID, e.ID), msgs...)
			return nil
		}
		if !f.refuse(err) {
			return err
		}
	}
	return s.renderEndpoint(w, r, ss, a, &e, f, nil)
}

func (s *Server) endpointDelete(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	e, err := s.endpointOf(r, ss, a)
	if err != nil {
		return err
	}
	back := fmt.Sprintf("/accounts/%d/ip/%d", a.ID, e.ID)
	if !s.confirmed(w, r, ss, "Delete IP endpoint", back, ask("delete-endpoint-"+string(e.Direction), e.Address, a.Name)) {
		return nil
	}
	if err := s.svc.DeleteEndpoint(r.Context(), ss.Caller, e.ID); err != nil {
		return err
	}
	s.redirect(w, r, fmt.Sprintf("/accounts/%d", a.ID), flash{"ok", "IP endpoint " + e.Address + " deleted."})
	return nil
}

// ---- Global IP authentication list.

type globalIPData struct {
	Q, Direction string
	Items        []store.IPEndpoint
	Pager        pager
	Names        map[int64]string
	Blocked      map[int64]*blocked // by endpoint ID
}

// accountNames returns the names of the accounts of ids, as the user sees them.
func (s *Server) accountNames(r *http.Request, ss *session, ids []int64) map[int64]string {
	out := map[int64]string{}
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		if a, err := s.svc.GetAccount(r.Context(), ss.Caller, id); err == nil {
			out[id] = a.Name
		} else {
			out[id] = fmt.Sprintf("#%d", id)
		}
	}
	return out
}

func (s *Server) globalEndpoints(w http.ResponseWriter, r *http.Request, ss *session) error {
	q, dir, pg := r.URL.Query().Get("q"), r.URL.Query().Get("direction"), listView(r, listSpec{keys: store.EndpointSorts})
	items, total, err := s.svc.ListEndpoints(r.Context(), ss.Caller, store.EndpointFilter{Address: q, Direction: store.Direction(dir), Page: pg.store()})
	if err != nil {
		return err
	}
	if s.pastEnd(w, r, pg.done(total), len(items)) {
		return nil
	}
	ids := make([]int64, len(items))
	for i, e := range items {
		ids[i] = e.AccountID
	}
	s.render(w, r, http.StatusOK, "ip.html", page{Title: "IP authentication", S: ss, Nav: "ip",
		Data: globalIPData{Q: q, Direction: dir, Items: items, Pager: pg.done(total), Names: s.accountNames(r, ss, ids),
			Blocked: s.blocks(r, ss, items)}})
	return nil
}
