package web

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// objectsEnv is an account Acme with SIP users 1001 and 1002 and a sending
// IP endpoint 198.51.100.7, and an operator signed in.
type objectsEnv struct {
	*env
	a      store.Account
	u1, u2 store.SIPUser
	ep     store.IPEndpoint
	b      *browser
	acct   string
}

func newObjectsEnv(t *testing.T, opts ...func(*Options)) *objectsEnv {
	t.Helper()
	e := &objectsEnv{env: newEnv(t, opts...)}
	e.a = e.account("Acme", 10)
	e.login("root", opPass, 0)
	for i, u := range []*store.SIPUser{&e.u1, &e.u2} {
		*u = store.SIPUser{AccountID: e.a.ID, Username: fmt.Sprintf("100%d", i+1)}
		if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, u); err != nil {
			t.Fatal(err)
		}
	}
	e.ep = store.IPEndpoint{AccountID: e.a.ID, Address: "198.51.100.7", Direction: store.DirSends}
	if _, err := e.svc.CreateEndpoint(t.Context(), provision.Operator, &e.ep); err != nil {
		t.Fatal(err)
	}
	e.b = e.browser()
	e.b.mustSignIn("root", opPass)
	e.acct = fmt.Sprintf("/accounts/%d", e.a.ID)
	return e
}

func wantText(t *testing.T, what string, r resp, want ...string) {
	t.Helper()
	txt := textOf(r.body)
	for _, w := range want {
		if !strings.Contains(txt, w) {
			t.Errorf("%s (%d): no %q in: %.1500s", what, r.status, w, txt)
		}
	}
}

func TestUserPageShowsRegistration(t *testing.T) {
	e := newObjectsEnv(t)
	now := e.clock.Now()
	e.live.bindings = []live.Binding{{Username: "1001", SIPUserID: e.u1.ID, AccountID: e.a.ID, Contact: "sip:1001@10.0.0.20:5060;ob",
		Source: "192.0.2.50:40000", Transport: "udp", Expires: now.Add(50 * time.Minute), UserAgent: "Yealink SIP-T54W",
		LatencyMS: 18.4, LastPing: now.Add(-20 * time.Second), Node: "node-b"}}
	r := e.b.get(fmt.Sprintf("%s/users/%d", e.acct, e.u1.ID))
	wantText(t, "registered user", r, "Registered 1 device, counted on every node.", "sip:1001@10.0.0.20:5060;ob", "192.0.2.50:40000",
		"udp", "Yealink SIP-T54W", "in 50m 00s", fmtTime(now.Add(50*time.Minute)), "18.4 ms, 20s ago", "node-b")
	if strings.Contains(r.body, "on this node") {
		t.Error("the user page still says \"on this node\"")
	}
	r = e.b.get(fmt.Sprintf("%s/users/%d", e.acct, e.u2.ID))
	wantText(t, "unregistered user", r, "Not registered No device is registered with this user now.")

	e2 := newObjectsEnv(t, func(o *Options) { o.Live = nil })
	r = e2.b.get(fmt.Sprintf("%s/users/%d", e2.acct, e2.u1.ID))
	wantText(t, "no SIP edge", r, "Not known: the SIP edge is not running on this node.")
}

// countingLive counts the Registrations calls.
type countingLive struct {
	*fakeLive
	n atomic.Int32
}

func (c *countingLive) Registrations(accountID int64, username string) []live.Binding {
	c.n.Add(1)
	return c.fakeLive.Registrations(accountID, username)
}

func TestRegisteredColumn(t *testing.T) {
	cl := &countingLive{fakeLive: &fakeLive{inUse: map[int64]int{}}}
	e := newObjectsEnv(t, func(o *Options) { o.Live = cl })
	exp := e.clock.Now().Add(time.Hour)
	for _, c := range []string{"sip:1001@10.0.0.1", "sip:1001@10.0.0.2"} {
		cl.bindings = append(cl.bindings, live.Binding{Username: "1001", SIPUserID: e.u1.ID, AccountID: e.a.ID, Contact: c, Expires: exp})
	}
	for _, path := range []string{e.acct + "/users", "/users"} {
		cl.n.Store(0)
		r := e.b.get(path)
		if n := cl.n.Load(); n != 1 {
			t.Errorf("%s: %d Registrations calls, want 1 for the page", path, n)
		}
		for user, want := range map[int64]string{e.u1.ID: "2 devices", e.u2.ID: "No"} {
			row := rowOf(r.body, fmt.Sprintf("/users/%d\"", user))
			if !strings.Contains(row, `<td class="registered">`+want+`</td>`) {
				t.Errorf("%s: user %d's row does not say %q: %s", path, user, want, row)
			}
		}
	}
	cl.bindings = cl.bindings[:1]
	if row := rowOf(e.b.get("/users").body, fmt.Sprintf("/users/%d\"", e.u1.ID)); !strings.Contains(row, ">1 device<") {
		t.Errorf("one binding: %s", row)
	}
}

// rowOf returns the table row of body that contains marker.
func rowOf(body, marker string) string {
	i := strings.Index(body, marker)
	if i < 0 {
		return "<no row with " + marker + ">"
	}
	start := strings.LastIndex(body[:i], "<tr")
	end := strings.Index(body[i:], "</tr>")
	if start < 0 || end < 0 {
		return body[i:]
	}
	return body[start : i+end]
}

func TestBlockedEndpointAndUnblock(t *testing.T) {
	e := newObjectsEnv(t)
	ban := store.Ban{Address: "198.51.100.0/24", Reason: "scanner network", ExpiresAt: e.clock.Now().Add(24 * time.Hour)}
	warns, err := e.svc.CreateBan(t.Context(), provision.Operator, &ban)
	if err != nil || len(warns) != 1 {
		t.Fatalf("ban: %v, warnings %v", err, warns)
	}
	want := []string{"Blocked by the firewall ban 198.51.100.0/24 : scanner network, until " + fmtTime(ban.ExpiresAt)}
	epPage := fmt.Sprintf("%s/ip/%d", e.acct, e.ep.ID)
	for _, path := range []string{e.acct, "/ip", epPage} {
		r := e.b.get(path)
		wantText(t, path, r, want...)
		if !strings.Contains(r.body, fmt.Sprintf(`action="/firewall/%d/unblock"`, ban.ID)) ||
			!strings.Contains(r.body, `name="back" value="`+html.EscapeString(path)+`"`) {
			t.Errorf("%s: no Unblock form coming back here", path)
		}
	}

	// The customer sees Blocked, without the operator's reason or an Unblock.
	e.login("acme", opPass, e.a.ID)
	cust := e.browser()
	cust.mustSignIn("acme", opPass)
	r := cust.get(e.acct)
	wantText(t, "customer", r, "Blocked by the firewall ban 198.51.100.0/24 , until")
	if strings.Contains(r.body, "scanner network") || strings.Contains(r.body, "/unblock") {
		t.Error("the customer sees the ban's reason or an Unblock button")
	}

	// Unblock: one click, back to the same page, the ban gone.
	r = e.b.submit(epPage, fmt.Sprintf("/firewall/%d/unblock", ban.ID), url.Values{"back": {epPage}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != epPage {
		t.Fatalf("unblock: %d to %q", r.status, r.header.Get("Location"))
	}
	if _, err := e.svc.GetBan(t.Context(), provision.Operator, ban.ID); err == nil {
		t.Error("the ban is still there after Unblock")
	}
	r = e.b.get(epPage)
	wantText(t, "after unblock", r, "Unblocked 198.51.100.0/24")
	if strings.Contains(textOf(r.body), "Blocked by") {
		t.Error("still shown as Blocked after Unblock")
	}
	// A back address elsewhere is not followed.
	ban2 := store.Ban{Address: "198.51.100.9"}
	if _, err := e.svc.CreateBan(t.Context(), provision.Operator, &ban2); err != nil {
		t.Fatal(err)
	}
	r = e.b.submit("/firewall", fmt.Sprintf("/firewall/%d/unblock", ban2.ID), url.Values{"back": {"//evil.example/"}})
	if loc := r.header.Get("Location"); loc != "/" {
		t.Errorf("unblock with a foreign back went to %q", loc)
	}
}

func TestBanWarningNamesAccount(t *testing.T) {
	e := newObjectsEnv(t)
	r := e.b.submit("/firewall", "/firewall", url.Values{"address": {"198.51.100.7"}, "reason": {"test"}, "expires": {"1h"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("ban: %d %.300s", r.status, textOf(r.body))
	}
	wantText(t, "firewall after the ban", e.b.get("/firewall"), "Banned 198.51.100.7.",
		fmt.Sprintf(`Banned with a warning: 198.51.100.7 covers IP endpoint 198.51.100.7 (id %d) of account "Acme" (id %d): the firewall drops its SIP traffic until the ban is lifted or expires`, e.ep.ID, e.a.ID))
	// A ban on no endpoint's address warns of nothing.
	r = e.b.submit("/firewall", "/firewall", url.Values{"address": {"203.0.113.5"}, "expires": {"1h"}})
	if txt := textOf(e.b.get("/firewall").body); r.status != http.StatusSeeOther || strings.Contains(txt, "warning") {
		t.Errorf("ban elsewhere: %d, %.500s", r.status, txt)
	}
	// Adding an endpoint still lifts bans on its address.
	ep := store.IPEndpoint{AccountID: e.a.ID, Address: "203.0.113.5", Direction: store.DirSends}
	if _, err := e.svc.CreateEndpoint(t.Context(), provision.Operator, &ep); err != nil {
		t.Fatal(err)
	}
	if bans, _, _ := e.svc.ListBans(t.Context(), provision.Operator, store.BanFilter{Address: "203.0.113.5"}); len(bans) != 0 {
		t.Errorf("bans after adding the endpoint: %v", bans)
	}
}

var confirmAttr = regexp.MustCompile(`<form method="post" action="([^"]+)"[^>]*? data-confirm="([^"]*)"`)

// confirmsOf returns the questions of the page's forms, by action.
func confirmsOf(body string) map[string]string {
	out := map[string]string{}
	for _, m := range confirmAttr.FindAllStringSubmatch(body, -1) {
		out[html.UnescapeString(m[1])] = html.UnescapeString(m[2])
	}
	return out
}

// TestConfirmationsNameTheObject: every destructive button asks a question
// naming its object (the dialog); a POST without confirmed=1 (no script)
// shows the same question on a page with Confirm and Cancel and changes
// nothing; confirming it carries the action out.
func TestConfirmationsNameTheObject(t *testing.T) {
	e := newObjectsEnv(t)
	ctx, op := t.Context(), provision.Operator
	rule := store.RewriteRule{OwnerKind: store.OwnerSIPUser, OwnerID: e.u1.ID, Type: store.RewriteDestination, Match: "00", Replacement: "+"}
	pat := store.CLIPattern{AccountID: e.a.ID, Pattern: "442071234567"}
	did := store.DID{AccountID: e.a.ID, Number: "+442071234568"}
	prof := store.Profile{Name: "Handsets", Channels: 1}
	login := e.login("acme-admin", opPass, e.a.ID)
	for _, err := range []error{e.svc.CreateRewriteRule(ctx, op, &rule), e.svc.CreateCLIPattern(ctx, op, &pat), e.svc.CreateDID(ctx, op, &did),
		e.svc.CreateProfile(ctx, op, &prof)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	user := fmt.Sprintf("%s/users/%d", e.acct, e.u1.ID)
	gone := func(err error) bool { return err != nil }
	cases := []struct {
		page, action, question string
		done                   func() bool // the action was carried out
	}{
		{user, user + "/password", `Replace the password of SIP user 1001 (account Acme)? Phones using the old one stop registering.`, nil},
		{user, fmt.Sprintf("%s/rewrites/%d/delete", user, rule.ID), `Delete rewrite rule 1 (destination: prefix 00 → +) of SIP user 1001?`,
			func() bool { _, err := e.svc.GetRewriteRule(ctx, op, rule.ID); return gone(err) }},
		{e.acct + "/cli", fmt.Sprintf("%s/cli/%d/delete", e.acct, pat.ID), `Delete CLI pattern 442071234567 of account Acme?`,
			func() bool { _, err := e.svc.GetCLIPattern(ctx, op, pat.ID); return gone(err) }},
		{e.acct + "/dids", fmt.Sprintf("%s/dids/%d/delete", e.acct, did.ID), `Delete DID +442071234568 of account Acme? Calls to it are no longer accepted.`,
			func() bool { _, err := e.svc.GetDID(ctx, op, did.ID); return gone(err) }},
		{e.acct + "/logins", fmt.Sprintf("%s/logins/%d/password", e.acct, login.ID), `Replace the password of portal login acme-admin (account Acme)? Its sessions end and the old password stops working.`, nil},
		{e.acct + "/logins", fmt.Sprintf("%s/logins/%d/delete", e.acct, login.ID), `Delete portal login acme-admin (account Acme)? It can no longer sign in.`,
			func() bool { _, err := e.svc.GetLogin(ctx, op, login.ID); return gone(err) }},
		{fmt.Sprintf("/profiles/%d", prof.ID), fmt.Sprintf("/profiles/%d/delete", prof.ID), `Delete profile Handsets? Its 0 user(s) keep the settings it gives them now, as their own.`,
			func() bool { _, err := e.svc.GetProfile(ctx, op, prof.ID); return gone(err) }},
		{user, user + "/delete", `Delete SIP user 1001 (account Acme)? Its phones can no longer register or make calls, and its DIDs go to the account's receiving IP endpoints.`,
			func() bool { _, err := e.svc.GetSIPUser(ctx, op, e.u1.ID); return gone(err) }},
		{fmt.Sprintf("%s/ip/%d", e.acct, e.ep.ID), fmt.Sprintf("%s/ip/%d/delete", e.acct, e.ep.ID),
			`Delete IP endpoint 198.51.100.7 of account Acme, with its rewrite rules? Calls from this address are no longer accepted for the account.`,
			func() bool { _, err := e.svc.GetEndpoint(ctx, op, e.ep.ID); return gone(err) }},
		{e.acct + "/settings", e.acct + "/delete", `Delete account Acme with its IP endpoints, SIP users, CLI patterns, DIDs, tokens and portal logins?`,
			func() bool { _, err := e.svc.GetAccount(ctx, op, e.a.ID); return gone(err) }},
	}
	for _, c := range cases {
		if got := confirmsOf(e.b.get(c.page).body)[c.action]; got != c.question {
			t.Errorf("%s: the form of %s asks %q, want %q", c.page, c.action, got, c.question)
		}
		// No script: the confirmation page, and nothing done.
		r := e.b.submit(c.page, c.action, nil)
		if r.status != http.StatusOK || !strings.Contains(html.UnescapeString(r.body), `<p id="confirm-question">`+c.question+`</p>`) ||
			strings.Contains(r.body, `id="secret-value"`) || (c.done != nil && c.done()) {
			t.Fatalf("%s without confirmed=1: %d, done=%v: %.600s", c.action, r.status, c.done != nil && c.done(), textOf(r.body))
		}
		if !strings.Contains(r.body, `action="`+c.action+`"`) || !strings.Contains(r.body, `name="confirmed" value="1"`) ||
			!strings.Contains(r.body, `id="confirm-no"`) {
			t.Errorf("%s: the confirmation page has no confirmed form or Cancel", c.action)
		}
		// Confirmed, from that page.
		r = e.b.post(c.action, url.Values{"csrf": {csrfRe.FindStringSubmatch(r.body)[1]}, "confirmed": {"1"}})
		if c.done == nil {
			if !strings.Contains(r.body, `id="secret-value"`) {
				t.Errorf("%s confirmed: no new password shown (%d)", c.action, r.status)
			}
			continue
		}
		if r.status != http.StatusSeeOther || !c.done() {
			t.Errorf("%s confirmed: %d, done=%v", c.action, r.status, c.done())
		}
	}
}

// TestAdvancedTabSeedWords: the seed's warning on CLI prefix, Tech prefix
// and Force From (linked to the Parameter Rewrite tab), the egress
// credentials only on receiving endpoints, the NAT and CLI-authentication
// help, and a regex error in plain text.
func TestAdvancedTabSeedWords(t *testing.T) {
	e := newObjectsEnv(t)
	epPage := fmt.Sprintf("%s/ip/%d", e.acct, e.ep.ID)
	r := e.b.get(epPage)
	wantText(t, "endpoint page", r, "CLI prefix, Tech prefix and Force From: Do NOT use these fields. Use the Parameter Rewrite tab .",
		"NAT: on each call sipward checks whether the device is behind NAT", "Tells accounts that send from one address apart by caller ID.")
	if !strings.Contains(r.body, `<a href="?tab=rewrite#panel-rewrite" data-tab="rewrite">Parameter Rewrite tab</a>`) {
		t.Error("the warning does not link to the Parameter Rewrite tab")
	}
	for _, id := range []string{"f-username", "f-password"} {
		if !regexp.MustCompile(`data-show-if="direction=receives" hidden>\s*<label for="`+id+`"`).MatchString(r.body) ||
			!regexp.MustCompile(`id="`+id+`"[^>]* disabled`).MatchString(r.body) {
			t.Errorf("sending endpoint: %s is not hidden and disabled", id)
		}
	}
	wantText(t, "new endpoint", e.b.get(e.acct+"/ip/new"), "Use the Parameter Rewrite tab (it appears once the endpoint is created).")

	recv := store.IPEndpoint{AccountID: e.a.ID, Address: "sbc.example.com", Direction: store.DirReceives}
	if _, err := e.svc.CreateEndpoint(t.Context(), provision.Operator, &recv); err != nil {
		t.Fatal(err)
	}
	r = e.b.get(fmt.Sprintf("%s/ip/%d", e.acct, recv.ID))
	if !strings.Contains(r.body, `data-show-if="direction=receives">`) || regexp.MustCompile(`id="f-username"[^>]* disabled`).MatchString(r.body) {
		t.Error("receiving endpoint: the egress credentials are hidden")
	}

	// Credentials on a sending endpoint would do nothing: the server refuses them.
	r = e.b.submit(epPage, epPage, url.Values{"address": {"198.51.100.7"}, "direction": {"sends"}, "username": {"trunk"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(errorOf(r.body, "f-username"), "leave username and password empty on a sending endpoint") {
		t.Errorf("credentials on a sending endpoint: %d, username error %q", r.status, errorOf(r.body, "f-username"))
	}

	r = e.b.submit(e.acct+"/cli", e.acct+"/cli", url.Values{"pattern": {`^\d+(`}, "regex": {"on"}})
	if got := errorOf(r.body, "f-pattern"); got != `invalid RE2 regex: missing closing ) in ^\d+(` {
		t.Errorf("regex error: %q", got)
	}
}

// TestEditInPlace: ?edit=ID renders that row as a form (the no-script
// path of the Edit button), Save changes the object, and a refused change
// comes back 422 with the error in the row.
func TestEditInPlace(t *testing.T) {
	e := newObjectsEnv(t)
	ctx, op := t.Context(), provision.Operator
	rule := store.RewriteRule{OwnerKind: store.OwnerSIPUser, OwnerID: e.u1.ID, Type: store.RewriteDestination, Match: "00", Replacement: "+"}
	pat := store.CLIPattern{AccountID: e.a.ID, Pattern: "442071234567"}
	did := store.DID{AccountID: e.a.ID, Number: "+442071234568"}
	for _, err := range []error{e.svc.CreateRewriteRule(ctx, op, &rule), e.svc.CreateCLIPattern(ctx, op, &pat), e.svc.CreateDID(ctx, op, &did)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	user := fmt.Sprintf("%s/users/%d", e.acct, e.u1.ID)
	cases := []struct {
		list, edit, action, row string
		good, bad               url.Values
		errID, errWant          string
		check                   func() string // "" when the good change was saved
	}{
		{e.acct + "/cli", fmt.Sprintf("%s/cli?edit=%d", e.acct, pat.ID), fmt.Sprintf("%s/cli/%d", e.acct, pat.ID), fmt.Sprintf("cli-%d", pat.ID),
			url.Values{"pattern": {`^\+4420\d{8}$`}, "regex": {"on"}}, url.Values{"pattern": {`^(44`}, "regex": {"on"}},
			"e-f-pattern", "invalid RE2 regex: missing closing ) in ^(44",
			func() string {
				p, _ := e.svc.GetCLIPattern(ctx, op, pat.ID)
				return map[bool]string{true: "", false: fmt.Sprintf("%+v", p)}[p.Pattern == `^\+4420\d{8}$` && p.Regex]
			}},
		{e.acct + "/dids", fmt.Sprintf("%s/dids?edit=%d", e.acct, did.ID), fmt.Sprintf("%s/dids/%d", e.acct, did.ID), fmt.Sprintf("did-%d", did.ID),
			url.Values{"number": {"+442071234569"}, "sip_user": {"1002"}}, url.Values{"number": {"+442071234569"}, "sip_user": {"7777"}},
			"e-f-sip-user", "7777 is not a SIP user of this account",
			func() string {
				d, _ := e.svc.GetDID(ctx, op, did.ID)
				return map[bool]string{true: "", false: fmt.Sprintf("%+v", d)}[d.Number == "442071234569" && d.SIPUserID != nil && *d.SIPUserID == e.u2.ID]
			}},
		{user + "?tab=rewrite", fmt.Sprintf("%s?tab=rewrite&edit=%d", user, rule.ID), fmt.Sprintf("%s/rewrites/%d", user, rule.ID), fmt.Sprintf("rule-%d", rule.ID),
			url.Values{"type": {"destination"}, "match": {"0"}, "replacement": {"44"}, "order": {"5"}},
			url.Values{"type": {"destination"}, "match": {"(0"}, "regex": {"on"}, "replacement": {"44"}, "order": {"5"}},
			"e-f-match", "invalid RE2 regex: missing closing ) in (0",
			func() string {
				r, _ := e.svc.GetRewriteRule(ctx, op, rule.ID)
				return map[bool]string{true: "", false: fmt.Sprintf("%+v", r)}[r.Match == "0" && r.Replacement == "44" && r.Order == 5]
			}},
	}
	for _, c := range cases {
		body := e.b.get(c.list).body
		if !strings.Contains(body, `<tr id="`+c.row+`">`) || !strings.Contains(body, `hx-target="#`+c.row+`"`) || strings.Contains(body, `data-edit-row`) {
			t.Errorf("%s: the row has no Edit button, or is a form before Edit", c.list)
		}
		body = e.b.get(c.edit).body
		if !regexp.MustCompile(`<tr id="`+c.row+`" class="editing">`).MatchString(body) || !strings.Contains(body, `action="`+c.action+`"`) {
			t.Fatalf("%s: the row is not a form: %.600s", c.edit, textOf(body))
		}
		r := e.b.submit(c.edit, c.action, c.bad)
		if r.status != http.StatusUnprocessableEntity || errorOf(r.body, c.errID) != c.errWant || !strings.Contains(r.body, `<tr id="`+c.row+`" class="editing">`) {
			t.Errorf("%s refused: %d, error %q, want %q in the row", c.action, r.status, errorOf(r.body, c.errID), c.errWant)
		}
		if r = e.b.submit(c.edit, c.action, c.good); r.status != http.StatusSeeOther {
			t.Errorf("%s: %d %.300s", c.action, r.status, textOf(r.body))
		}
		if bad := c.check(); bad != "" {
			t.Errorf("%s: not saved: %s", c.action, bad)
		}
	}
	// The DID picker lists the account's SIP users.
	body := e.b.get(e.acct + "/dids").body
	if !regexp.MustCompile(`<select id="f-sip-user" name="sip_user"[^>]*><option value="" selected>\(none: the account&#39;s receiving IP endpoints\)</option><option value="1001">1001</option><option value="1002">1002</option></select>`).MatchString(body) {
		t.Errorf("the DID form has no picker of SIP users: %s", rowOf(body, `id="f-sip-user"`))
	}
}

// TestAccountFilterPicker: the operator's account filters are selects of
// accounts by name; an ID not among them stays shown; an account login has
// none.
func TestAccountFilterPicker(t *testing.T) {
	e := newObjectsEnv(t)
	beta := e.account("Beta", 0)
	for _, path := range []string{"/calls", "/registrations", "/decisions", "/audit"} {
		body := e.b.get(fmt.Sprintf("%s?account=%d", path, beta.ID)).body
		opts := regexp.MustCompile(`<select id="(?:f-)?account" name="account"[^>]*>(.*?)</select>`).FindStringSubmatch(body)
		want := fmt.Sprintf(`<option value="">All accounts</option><option value="%d">Acme</option><option value="%d" selected>Beta</option>`, e.a.ID, beta.ID)
		if opts == nil || opts[1] != want {
			t.Errorf("%s: account filter %q, want %q", path, opts, want)
		}
		if body := e.b.get(path + "?account=999").body; !strings.Contains(body, `<option value="999" selected>#999</option>`) {
			t.Errorf("%s: an unknown account ID is not kept in the filter", path)
		}
	}
	e.login("acme", opPass, e.a.ID)
	cust := e.browser()
	cust.mustSignIn("acme", opPass)
	for _, path := range []string{"/calls", "/registrations", "/decisions", "/audit"} {
		if strings.Contains(cust.get(path).body, `name="account"`) {
			t.Errorf("%s: an account login has an account filter", path)
		}
	}
}

// TestDIDPickerLargeAccount: past pickerMax SIP users the DID form takes
// the username as text (a select of thousands is of no use), and still
// routes to it.
func TestDIDPickerLargeAccount(t *testing.T) {
	e := newObjectsEnv(t)
	e.a.Channels = 0 // unlimited: room for every user
	if err := e.svc.UpdateAccount(t.Context(), provision.Operator, &e.a); err != nil {
		t.Fatal(err)
	}
	for i := range pickerMax - 1 {
		u := store.SIPUser{AccountID: e.a.ID, Username: fmt.Sprintf("2%03d", i)}
		if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, &u); err != nil {
			t.Fatal(err)
		}
	}
	body := e.b.get(e.acct + "/dids").body
	if !strings.Contains(body, `<input type="text" id="f-sip-user" name="sip_user"`) ||
		!strings.Contains(textOf(body), fmt.Sprintf("The username of one of this account's %d SIP users", pickerMax+1)) {
		t.Errorf("a large account's DID form: %s", rowOf(body, `id="f-sip-user"`))
	}
	if r := e.b.submit(e.acct+"/dids", e.acct+"/dids", url.Values{"number": {"+442071234570"}, "sip_user": {"2150"}}); r.status != http.StatusSeeOther {
		t.Errorf("DID to 2150: %d %.300s", r.status, textOf(r.body))
	}
}

// TestPINResetConfirmed: replacing a voicemail PIN in use needs
// confirmed=1 (without script: the confirmation page); setting the first
// one does not.
func TestPINResetConfirmed(t *testing.T) {
	e := newObjectsEnv(t)
	u := e.vmUser(e.a, "1003", true)
	page := fmt.Sprintf("%s/users/%d", e.acct, u.ID)
	if r := e.b.submit(page, page+"/voicemail/pin", nil); !strings.Contains(r.body, `id="secret-value"`) {
		t.Fatalf("first PIN: %d %.300s", r.status, textOf(r.body))
	}
	r := e.b.submit(page, page+"/voicemail/pin", nil)
	if strings.Contains(r.body, `id="secret-value"`) ||
		!strings.Contains(textOf(r.body), "Reset the voicemail PIN of 1003? A new PIN, shown once, replaces the current one, which stops working.") {
		t.Errorf("reset without confirmed=1: %d %.400s", r.status, textOf(r.body))
	}
	if r := e.b.submit(page, page+"/voicemail/pin", confirmedForm()); !strings.Contains(r.body, `id="secret-value"`) {
		t.Errorf("confirmed reset: %d %.300s", r.status, textOf(r.body))
	}
}

// TestAccountsListLiveCounts: the accounts list shows each account's calls
// up and devices registered now, from one read of each.
func TestAccountsListLiveCounts(t *testing.T) {
	e := newEnv(t)
	e.login("root", opPass, 0)
	a, b := e.account("Acme", 10), e.account("Beta Voice", 10)
	e.live.calls = []live.Call{{ID: "c1", AccountID: a.ID}, {ID: "c2", AccountID: a.ID}, {ID: "c3", AccountID: b.ID}}
	e.live.bindings = []live.Binding{{Username: "1001", AccountID: a.ID}, {Username: "2001", AccountID: b.ID},
		{Username: "2002", AccountID: b.ID}, {Username: "2003", AccountID: b.ID}}
	br := e.browser()
	br.mustSignIn("root", opPass)
	r := br.get("/accounts?sort=name")
	wantText(t, "accounts list", r, "Calls now Registered", "Acme 10 unlimited 2 1", "Beta Voice 10 unlimited 1 3")
}
