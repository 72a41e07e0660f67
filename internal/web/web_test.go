package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/signin"
	"github.com/sipward/sipward/internal/store"
)

const (
	opPass   = "operator password 1"
	acctPass = "customer password 1"
)

// TestEveryPageRenders signs in as the operator and as an account login and
// opens every page, so that no template fails at run time.
func TestEveryPageRenders(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 10)
	e.login("root", opPass, 0)
	e.login("acme", acctPass, a.ID)
	ep := store.IPEndpoint{AccountID: a.ID, Address: "192.0.2.10"}
	if _, err := e.svc.CreateEndpoint(t.Context(), provision.Operator, &ep); err != nil {
		t.Fatal(err)
	}
	prof := store.Profile{Name: "softphones", Channels: 2}
	if err := e.svc.CreateProfile(t.Context(), provision.Operator, &prof); err != nil {
		t.Fatal(err)
	}
	u := store.SIPUser{AccountID: a.ID, Username: "1001", ProfileID: &prof.ID, Voicemail: store.Voicemail{PIN: "1234"}}
	if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, &u); err != nil {
		t.Fatal(err)
	}
	e.message(u, "3002", time.Now(), 5*time.Second, store.MailState{Status: store.MailPending, Attempts: 1, Error: "connection refused"})
	rule := store.RewriteRule{OwnerKind: store.OwnerSIPUser, OwnerID: u.ID, Type: store.RewriteDestination, Match: "00", Replacement: "+"}
	if err := e.svc.CreateRewriteRule(t.Context(), provision.Operator, &rule); err != nil {
		t.Fatal(err)
	}
	d := store.DID{AccountID: a.ID, Number: "+442071234567", SIPUserID: &u.ID}
	if err := e.svc.CreateDID(t.Context(), provision.Operator, &d); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CreateCLIPattern(t.Context(), provision.Operator, &store.CLIPattern{AccountID: a.ID, Pattern: "442071234567"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateBan(t.Context(), provision.Operator, &store.Ban{Address: "198.51.100.7", Reason: "scanner"}); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	e.live.calls = []live.Call{{ID: "c1", AccountID: a.ID, Account: "Acme", Auth: "digest", Username: "1001", From: "1001", To: "442071234567", Source: "192.0.2.50:5060", Start: now.Add(-time.Minute), State: "confirmed"}}
	e.live.bindings = []live.Binding{{Username: "1001", SIPUserID: u.ID, AccountID: a.ID, Contact: "sip:1001@192.0.2.50:5060", Source: "192.0.2.50:5060", Transport: "udp", Expires: now.Add(time.Hour), LatencyMS: 12.5}}
	e.live.decisions = []live.Decision{{Seq: 1, Time: now, Method: "INVITE", Source: "203.0.113.9:5060", From: "x", To: "y", Result: "rejected", Status: 403, Stage: "identify", Why: "unknown source"}}
	e.live.inUse[a.ID] = 1

	pages := []string{"/accounts", "/accounts?q=ac", "/accounts/new", fmt.Sprintf("/accounts/%d", a.ID), fmt.Sprintf("/accounts/%d/budget", a.ID),
		fmt.Sprintf("/accounts/%d/settings", a.ID), fmt.Sprintf("/accounts/%d/users", a.ID), fmt.Sprintf("/accounts/%d/users/new", a.ID),
		fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID), fmt.Sprintf("/accounts/%d/ip/new", a.ID), fmt.Sprintf("/accounts/%d/ip/%d", a.ID, ep.ID),
		fmt.Sprintf("/accounts/%d/cli", a.ID), fmt.Sprintf("/accounts/%d/dids", a.ID), fmt.Sprintf("/accounts/%d/logins", a.ID),
		"/ip", "/users", "/users?q=10", "/registrations", "/calls", "/decisions", "/decisions?result=rejected", "/firewall", "/password",
		"/profiles", fmt.Sprintf("/profiles/%d", prof.ID), "/audit", fmt.Sprintf("/audit?object=sip_user:%d", u.ID), "/audit?action=delete"}
	for _, who := range []struct{ user, pass string }{{"root", opPass}, {"acme", acctPass}} {
		b := e.browser()
		b.mustSignIn(who.user, who.pass)
		for _, p := range pages {
			r := b.get(p)
			want := http.StatusOK
			if who.user == "acme" && (p == "/accounts/new" || p == "/firewall" || strings.HasPrefix(p, "/profiles")) {
				want = http.StatusNotFound
			}
			if who.user == "acme" && strings.HasPrefix(p, "/accounts?") || who.user == "acme" && p == "/accounts" {
				want = http.StatusSeeOther
			}
			if r.status != want {
				t.Errorf("%s: GET %s: status %d, want %d: %.300s", who.user, p, r.status, want, textOf(r.body))
			}
		}
	}
}

func TestSignInAndOut(t *testing.T) {
	e := newEnv(t)
	e.login("root", opPass, 0)
	b := e.browser()
	if r := b.get("/accounts"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?next=%2Faccounts" {
		t.Fatalf("anonymous GET /accounts: %d → %q, want the sign-in page", r.status, r.header.Get("Location"))
	}
	r := b.signIn("root", "not the password")
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Wrong username or password.") {
		t.Errorf("wrong password: %d %s", r.status, textOf(r.body))
	}
	r = b.signIn("nobody", opPass)
	if !strings.Contains(r.body, "Wrong username or password.") {
		t.Errorf("unknown user: %s (want the same answer as a wrong password)", textOf(r.body))
	}
	b.mustSignIn("ROOT", opPass)
	if r := b.get("/accounts"); r.status != http.StatusOK {
		t.Fatalf("signed in: GET /accounts %d", r.status)
	}

	// The session cookie is HttpOnly and SameSite; Secure only when asked.
	u, _ := url.Parse(e.srv.URL)
	var session *http.Cookie
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == cookieSession {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}

	stolen := e.browser()
	stolen.c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieSession, Value: session.Value}})
	if r := stolen.get("/accounts"); r.status != http.StatusOK {
		t.Fatalf("a copy of the cookie before sign-out: %d", r.status)
	}
	if r := b.submit("/accounts", "/logout", nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("sign out: %d → %s", r.status, r.header.Get("Location"))
	}
	if r := b.get("/accounts"); r.status != http.StatusSeeOther {
		t.Errorf("after sign-out: GET /accounts %d, want a redirect to sign in", r.status)
	}
	if r := stolen.get("/accounts"); r.status != http.StatusSeeOther {
		t.Errorf("a copy of the signed-out cookie: GET /accounts %d, want a redirect to sign in", r.status)
	}
}

func TestCookieAttributes(t *testing.T) {
	for _, secure := range []bool{false, true} {
		e := newEnv(t, func(o *Options) { o.SecureCookies = secure })
		e.login("root", opPass, 0)
		b := e.browser()
		r := b.submit("/login", "/login", url.Values{"username": {"root"}, "password": {opPass}})
		var found bool
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name != cookieSession {
				continue
			}
			found = true
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != secure || c.MaxAge != int(DefaultSessionTTL/time.Second) {
				t.Errorf("secure=%v: session cookie %+v: want HttpOnly, SameSite=Lax, Secure=%v, Max-Age 12h", secure, c, secure)
			}
		}
		if !found {
			t.Errorf("secure=%v: no session cookie set on sign-in", secure)
		}
	}
}

func TestAccountLoginSeesOnlyItsAccount(t *testing.T) {
	e := newEnv(t)
	a, other := e.account("Acme", 10), e.account("Other", 10)
	e.login("acme", acctPass, a.ID)
	mine := store.SIPUser{AccountID: a.ID, Username: "1001", Channels: new(1)}
	theirs := store.SIPUser{AccountID: other.ID, Username: "2001", Channels: new(1)}
	theirEp := store.IPEndpoint{AccountID: other.ID, Address: "192.0.2.20"}
	for _, u := range []*store.SIPUser{&mine, &theirs} {
		if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.CreateEndpoint(t.Context(), provision.Operator, &theirEp); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateBan(t.Context(), provision.Operator, &store.Ban{Address: "198.51.100.7"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn("acme", acctPass)
	for _, p := range []string{
		fmt.Sprintf("/accounts/%d", other.ID), fmt.Sprintf("/accounts/%d/users", other.ID), fmt.Sprintf("/accounts/%d/settings", other.ID),
		fmt.Sprintf("/accounts/%d/users/%d", other.ID, theirs.ID), fmt.Sprintf("/accounts/%d/users/%d", a.ID, theirs.ID),
		fmt.Sprintf("/accounts/%d/ip/%d", other.ID, theirEp.ID), fmt.Sprintf("/accounts/%d/ip/%d", a.ID, theirEp.ID),
		fmt.Sprintf("/accounts/%d/logins", other.ID), fmt.Sprintf("/accounts/%d/budget", other.ID), "/firewall", "/accounts/new",
	} {
		if r := b.get(p); r.status != http.StatusNotFound {
			t.Errorf("account login GET %s: status %d, want 404", p, r.status)
		}
	}
	csrf := b.csrf("/users")
	for _, p := range []string{
		fmt.Sprintf("/accounts/%d/users/new", other.ID), fmt.Sprintf("/accounts/%d/users/%d", a.ID, theirs.ID),
		fmt.Sprintf("/accounts/%d/users/%d/password", other.ID, theirs.ID), fmt.Sprintf("/accounts/%d/delete", other.ID),
		fmt.Sprintf("/accounts/%d/ip/%d/delete", other.ID, theirEp.ID), "/firewall/1/unblock", "/accounts/new",
	} {
		if r := b.post(p, url.Values{"csrf": {csrf}, "username": {"x"}}); r.status != http.StatusNotFound {
			t.Errorf("account login POST %s: status %d, want 404", p, r.status)
		}
	}
	if r := b.get("/users"); strings.Contains(r.body, ">2001<") || !strings.Contains(r.body, ">1001<") {
		t.Errorf("account login's SIP user list: %s", textOf(r.body))
	}
	if r := b.get("/accounts"); r.header.Get("Location") != fmt.Sprintf("/accounts/%d", a.ID) {
		t.Errorf("account login GET /accounts → %q, want its own account", r.header.Get("Location"))
	}
	// Nothing changed.
	if _, err := e.svc.GetSIPUser(t.Context(), provision.Operator, theirs.ID); err != nil {
		t.Errorf("the other account's user: %v", err)
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	e.login("root", opPass, 0)
	b := e.browser()
	b.mustSignIn("root", opPass)
	other := e.browser()
	other.mustSignIn("root", opPass)
	otherToken := other.csrf("/accounts/new")

	for _, tc := range []struct {
		name    string
		v       url.Values
		headers []string
	}{
		{"no token", url.Values{"name": {"Evil"}}, nil},
		{"wrong token", url.Values{"name": {"Evil"}, "csrf": {"nope"}}, nil},
		{"another session's token", url.Values{"name": {"Evil"}, "csrf": {otherToken}}, nil},
		{"wrong header token", url.Values{"name": {"Evil"}}, []string{"X-CSRF-Token", "nope", "HX-Request", "true"}},
		{"cross-site with a good token", url.Values{"name": {"Evil"}, "csrf": {b.csrf("/accounts/new")}}, []string{"Sec-Fetch-Site", "cross-site"}},
		{"other origin with a good token", url.Values{"name": {"Evil"}, "csrf": {b.csrf("/accounts/new")}}, []string{"Origin", "https://evil.example"}},
	} {
		if r := b.post("/accounts/new", tc.v, tc.headers...); r.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, r.status)
		}
	}
	if _, n, _ := e.svc.ListAccounts(t.Context(), provision.Operator, store.AccountFilter{}); n != 0 {
		t.Fatalf("%d accounts created by refused requests", n)
	}
	// The header works as the form field does (htmx).
	tok := b.csrf("/accounts/new")
	if r := b.post("/accounts/new", url.Values{"name": {"Good"}}, "X-CSRF-Token", tok); r.status != http.StatusSeeOther {
		t.Errorf("good header token: status %d", r.status)
	}
	// The sign-in form has its own token, bound to a cookie.
	anon := e.browser()
	if r := anon.post("/login", url.Values{"username": {"root"}, "password": {opPass}}); r.status != http.StatusForbidden {
		t.Errorf("sign-in without its token: status %d, want 403", r.status)
	}
	if r := anon.post("/login", url.Values{"username": {"root"}, "password": {opPass}, "csrf": {tok}}); r.status != http.StatusForbidden {
		t.Errorf("sign-in with a session's token: status %d, want 403", r.status)
	}
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SessionTTL = time.Hour })
	e.login("root", opPass, 0)
	b := e.browser()
	b.mustSignIn("root", opPass)
	e.clock.Add(59 * time.Minute)
	if r := b.get("/accounts"); r.status != http.StatusOK {
		t.Fatalf("within the TTL: %d", r.status)
	}
	e.clock.Add(2 * time.Minute)
	if r := b.get("/accounts"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/login") {
		t.Errorf("after the TTL: %d → %q, want the sign-in page", r.status, r.header.Get("Location"))
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/accounts/1/budget", nil)
	req.Header.Set("HX-Request", "true")
	if r := b.do(req); r.header.Get("HX-Redirect") == "" {
		t.Errorf("htmx request after the TTL: %d, no HX-Redirect", r.status)
	}
}

func TestNewPasswordEndsOtherSessions(t *testing.T) {
	e := newEnv(t)
	e.login("root", opPass, 0)
	e.login("ops2", opPass, 0)
	b, other := e.browser(), e.browser()
	b.mustSignIn("root", opPass)
	other.mustSignIn("root", opPass)
	r := b.submit("/password", "/password", url.Values{"current": {opPass}, "password": {"a brand new password"}, "again": {"a brand new password"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("change password: %d %s", r.status, textOf(r.body))
	}
	if r := b.get("/accounts"); r.status != http.StatusOK {
		t.Errorf("the session that changed the password: %d, want it kept", r.status)
	}
	if r := other.get("/accounts"); r.status != http.StatusSeeOther {
		t.Errorf("another session of the login: %d, want it ended", r.status)
	}
	r = b.submit("/password", "/password", url.Values{"current": {"wrong"}, "password": {"x"}, "again": {"x"}})
	if got := errorOf(r.body, "f-current"); got != "is not your current password" {
		t.Errorf("wrong current password: %q", got)
	}
}

func TestLoginLockout(t *testing.T) {
	p := signin.LockoutPolicy{PerUser: 3, PerAddr: 5, Window: 10 * time.Minute, LockFor: 10 * time.Minute}
	e := newEnv(t, func(o *Options) { o.Lockout = p })
	e.login("root", opPass, 0)
	e.login("ops2", opPass, 0)
	b := e.browser()
	for i := 0; i < 3; i++ {
		if r := b.signIn("root", "guess"); !strings.Contains(r.body, "Wrong username or password.") {
			t.Fatalf("guess %d: %s", i, textOf(r.body))
		}
	}
	r := b.signIn("root", opPass)
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many failed sign-ins") {
		t.Fatalf("right password after 3 failures: %d %s, want locked out", r.status, textOf(r.body))
	}
	// Another username from the same address is not locked (yet); the address is after 5 failures.
	b.mustSignIn("ops2", opPass)
	b2 := e.browser()
	for i := 0; i < 2; i++ {
		b2.signIn(fmt.Sprintf("nobody%d", i), "guess")
	}
	if r := b2.signIn("ops2", opPass); r.status != http.StatusTooManyRequests {
		t.Errorf("after 5 failures from one address: %d, want the address locked out", r.status)
	}
	e.clock.Add(11 * time.Minute)
	e.browser().mustSignIn("root", opPass)
}

func TestFormsKeepWhatWasTyped(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 5)
	e.login("root", opPass, 0)
	if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, &store.SIPUser{AccountID: a.ID, Username: "1001", Channels: new(4)}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn("root", opPass)
	page := fmt.Sprintf("/accounts/%d/users/new", a.ID)
	r := b.submit(page, page, url.Values{"username": {"1001"}, "channels": {"1"}, "voicemail.email": {"x@example.com"}})
	if got := errorOf(r.body, "f-username"); got != provision.MsgDuplicateUser {
		t.Errorf("duplicate user: error next to username %q, want %q", got, provision.MsgDuplicateUser)
	}
	if v := valueOf(r.body, "f-voicemail-email"); v != "x@example.com" {
		t.Errorf("duplicate user: email field %q, want what was typed", v)
	}
	r = b.submit(page, page, url.Values{"username": {"1002"}, "channels": {"2"}})
	if got := errorOf(r.body, "f-channels"); got != provision.MsgNoCapacity {
		t.Errorf("over capacity: error next to channels %q, want %q", got, provision.MsgNoCapacity)
	}
	if v := valueOf(r.body, "f-username"); v != "1002" {
		t.Errorf("over capacity: username field %q, want 1002", v)
	}
	r = b.submit(page, page, url.Values{"username": {"1003"}, "channels": {"two"}})
	if got, v := errorOf(r.body, "f-channels"), valueOf(r.body, "f-channels"); got != "must be a whole number" || v != "two" {
		t.Errorf("not a number: error %q value %q", got, v)
	}

	// A duplicate IP is saved, with a warning naming the other account.
	other := e.account("Other Co", 0)
	if _, err := e.svc.CreateEndpoint(t.Context(), provision.Operator, &store.IPEndpoint{AccountID: other.ID, Address: "192.0.2.0/24", TechPrefix: "9#"}); err != nil {
		t.Fatal(err)
	}
	page = fmt.Sprintf("/accounts/%d/ip/new", a.ID)
	r = b.submit(page, page, url.Values{"address": {"192.0.2.7"}, "direction": {"sends"}, "tech_prefix": {"1#"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("duplicate IP endpoint: %d %s", r.status, textOf(r.body))
	}
	r = b.get(r.header.Get("Location"))
	if !strings.Contains(textOf(r.body), `overlaps 192.0.2.0/24 of account "Other Co"`) {
		t.Errorf("after saving a duplicate IP: no warning naming the other account: %s", textOf(r.body))
	}
}

func TestSendMessage(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 0)
	e.login("root", opPass, 0)
	u := store.SIPUser{AccountID: a.ID, Username: "1001", Channels: new(1)}
	if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, &u); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn("root", opPass)
	page := fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
	r := b.submit(page, page+"/message", url.Values{"text": {"hello there"}})
	if got := errorOf(r.body, "f-text"); got != ErrNoMessenger.Error() {
		t.Errorf("no messenger: error %q, want %q", got, ErrNoMessenger)
	}
	if !strings.Contains(r.body, ">hello there</textarea>") {
		t.Error("no messenger: the typed message is lost")
	}
}

// TestChangesThroughForms posts the smaller forms: account settings, CLI
// patterns, DIDs, portal logins, bans, and edits of endpoints and users.
func TestChangesThroughForms(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 10)
	e.login("root", opPass, 0)
	u := store.SIPUser{AccountID: a.ID, Username: "1001", Channels: new(2)}
	if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, &u); err != nil {
		t.Fatal(err)
	}
	ep := store.IPEndpoint{AccountID: a.ID, Address: "192.0.2.10", Direction: store.DirReceives, Username: "egress", Password: "egress secret"}
	if _, err := e.svc.CreateEndpoint(t.Context(), provision.Operator, &ep); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn("root", opPass)
	acct := fmt.Sprintf("/accounts/%d", a.ID)
	ok := func(what string, r resp) {
		t.Helper()
		if r.status != http.StatusSeeOther {
			t.Fatalf("%s: status %d: %.400s", what, r.status, textOf(r.body))
		}
	}

	ok("settings", b.submit(acct+"/settings", acct+"/settings", url.Values{"name": {"Acme Ltd"}, "channels": {"12"}, "cps": {"3"}}))
	if got, _ := e.svc.GetAccount(t.Context(), provision.Operator, a.ID); got.Name != "Acme Ltd" || got.Channels != 12 || got.CPS != 3 {
		t.Errorf("account after settings: %+v", got)
	}
	r := b.submit(acct+"/settings", acct+"/settings", url.Values{"name": {"Acme Ltd"}, "channels": {"1"}})
	if got := errorOf(r.body, "f-channels"); got != provision.MsgNoCapacity {
		t.Errorf("capacity below the users' channels: %q", got)
	}

	ok("cli pattern", b.submit(acct+"/cli", acct+"/cli", url.Values{"pattern": {"442071234567"}}))
	r = b.submit(acct+"/cli", acct+"/cli", url.Values{"pattern": {"(", "x"}, "regex": {"on"}})
	if got := errorOf(r.body, "f-pattern"); !strings.Contains(got, "invalid RE2 regex") {
		t.Errorf("bad CLI regex: %q", got)
	}
	pats, _, _ := e.svc.ListCLIPatterns(t.Context(), provision.Operator, store.CLIPatternFilter{AccountID: a.ID})
	if len(pats) != 1 {
		t.Fatalf("%d CLI patterns", len(pats))
	}
	ok("delete cli pattern", b.submit(acct+"/cli", fmt.Sprintf("%s/cli/%d/delete", acct, pats[0].ID), confirmedForm()))

	ok("did", b.submit(acct+"/dids", acct+"/dids", url.Values{"number": {"+442071234567"}, "sip_user": {"1001"}}))
	r = b.submit(acct+"/dids", acct+"/dids", url.Values{"number": {"+442071234568"}, "sip_user": {"9999"}})
	if got := errorOf(r.body, "f-sip-user"); got != "9999 is not a SIP user of this account" {
		t.Errorf("DID to a missing user: %q", got)
	}
	dids, _, _ := e.svc.ListDIDs(t.Context(), provision.Operator, store.DIDFilter{AccountID: a.ID})
	if len(dids) != 1 || dids[0].SIPUserID == nil || *dids[0].SIPUserID != u.ID {
		t.Fatalf("DIDs: %+v", dids)
	}
	if r := b.get(acct + "/dids"); !strings.Contains(r.body, ">1001</a>") {
		t.Errorf("the DID list does not name its user: %s", textOf(r.body))
	}

	r = b.submit(acct+"/logins", acct+"/logins", url.Values{"username": {"portal"}})
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="secret-value"`) {
		t.Fatalf("login with a generated password: %d %s", r.status, textOf(r.body))
	}
	ls, _, _ := e.svc.ListLogins(t.Context(), provision.Operator, store.LoginFilter{AccountID: a.ID})
	if len(ls) != 1 {
		t.Fatalf("logins: %+v", ls)
	}
	if r := b.submit(acct+"/logins", fmt.Sprintf("%s/logins/%d/password", acct, ls[0].ID), confirmedForm()); !strings.Contains(r.body, `id="secret-value"`) {
		t.Error("Generate Password of a login shows no password")
	}
	ok("delete login", b.submit(acct+"/logins", fmt.Sprintf("%s/logins/%d/delete", acct, ls[0].ID), confirmedForm()))

	// New endpoint and user forms start with session timers on, 1800 s.
	for _, p := range []string{acct + "/ip/new", acct + "/users/new"} {
		r := b.get(p)
		if !strings.Contains(r.body, `name="session_timers" checked`) || valueOf(r.body, "f-session-expires") != "1800" {
			t.Errorf("%s: session timers not on with 1800 s", p)
		}
		if txt := textOf(r.body); !strings.Contains(txt, sessionTimersHelp) || !strings.Contains(txt, sessionExpiresHelp) {
			t.Errorf("%s: the session timer fields do not say what they do", p)
		}
	}

	// Edit an endpoint: the stored egress password is kept when the field is
	// empty; a ticked box is saved and shown ticked.
	page := fmt.Sprintf("%s/ip/%d", acct, ep.ID)
	ok("endpoint", b.submit(page, page, url.Values{"address": {"192.0.2.11"}, "direction": {"receives"}, "protocol": {"tcp"},
		"username": {"egress"}, "restricted_codecs": {"G729", "PCMA"}, "smart_extension": {"on"}, "session_expires": {"600"}}))
	got, _ := e.svc.GetEndpoint(t.Context(), provision.Operator, ep.ID)
	if got.Address != "192.0.2.11" || got.Protocol != store.ProtoTCP || !got.PasswordSet || len(got.RestrictedCodecs) != 2 || !got.SmartExtension ||
		got.SessionTimers || got.SessionExpires != 600 {
		t.Errorf("endpoint after edit: %+v", got)
	}
	if r := b.get(page); !strings.Contains(r.body, `name="smart_extension" checked`) {
		t.Error("endpoint form after saving Smart Extension: the box is not ticked")
	} else if strings.Contains(r.body, `name="session_timers" checked`) || valueOf(r.body, "f-session-expires") != "600" {
		t.Errorf("endpoint form after saving session timers off, 600 s: shows ticked %v, %s s",
			strings.Contains(r.body, `name="session_timers" checked`), valueOf(r.body, "f-session-expires"))
	}
	ok("endpoint box cleared", b.submit(page, page, url.Values{"address": {"192.0.2.11"}, "direction": {"receives"}, "protocol": {"tcp"},
		"username": {"egress"}, "restricted_codecs": {"G729", "PCMA"}, "session_timers": {"on"}, "session_expires": {"90"}}))
	if got, _ := e.svc.GetEndpoint(t.Context(), provision.Operator, ep.ID); got.SmartExtension || !got.SessionTimers || got.SessionExpires != 90 {
		t.Errorf("endpoint after clearing Smart Extension, session timers on with 90 s: %+v", got)
	}
	r = b.submit(page, page, url.Values{"address": {"10.0.0.0/33"}, "port": {"5060"}})
	if got := errorOf(r.body, "f-address"); got != `"10.0.0.0/33": invalid prefix length` {
		t.Errorf("bad address: %q", got)
	}
	for v, want := range map[string]string{"89": "89: must be between 90 and 86400 seconds", "86401": "86401: must be between 90 and 86400 seconds",
		"soon": "must be a whole number"} {
		r = b.submit(page, page, url.Values{"address": {"192.0.2.11"}, "session_timers": {"on"}, "session_expires": {v}})
		if got := errorOf(r.body, "f-session-expires"); got != want || valueOf(r.body, "f-session-expires") != v {
			t.Errorf("endpoint session expires %q: error %q, want %q, the value kept", v, got, want)
		}
	}
	if got, _ := e.svc.GetEndpoint(t.Context(), provision.Operator, ep.ID); got.SessionExpires != 90 {
		t.Errorf("endpoint after refused session expires: %d s, want 90 (unchanged)", got.SessionExpires)
	}

	// Edit a user; a rewrite rule through the form, then deleted.
	page = fmt.Sprintf("%s/users/%d", acct, u.ID)
	ok("user", b.submit(page, page, url.Values{"username": {"1001"}, "channels": {"3"}, "nat_ping": {"timeout"},
		"ip_whitelist": {"192.0.2.0/24\n198.51.100.7"}, "voicemail.enabled": {"on"}, "voicemail.pin": {"4321"}, "session_expires": {"600"}}))
	gu, _ := e.svc.GetSIPUser(t.Context(), provision.Operator, u.ID)
	if *gu.Channels != 3 || *gu.NATPing != store.NATPingTimeout || len(gu.IPWhitelist) != 2 || !gu.Voicemail.Enabled || !gu.Voicemail.PINSet ||
		gu.SessionTimers || gu.SessionExpires != 600 {
		t.Errorf("user after edit: %+v", gu)
	}
	if r := b.get(page); strings.Contains(r.body, `name="session_timers" checked`) || valueOf(r.body, "f-session-expires") != "600" {
		t.Errorf("user form after saving session timers off, 600 s: shows ticked %v, %s s",
			strings.Contains(r.body, `name="session_timers" checked`), valueOf(r.body, "f-session-expires"))
	}
	r = b.submit(page, page, url.Values{"username": {"1001"}, "channels": {"3"}, "session_timers": {"on"}, "session_expires": {"86401"}})
	if got := errorOf(r.body, "f-session-expires"); got != "86401: must be between 90 and 86400 seconds" {
		t.Errorf("user session expires 86401: error %q", got)
	}
	ok("user session timers on", b.submit(page, page, url.Values{"username": {"1001"}, "channels": {"3"}, "nat_ping": {"timeout"},
		"session_timers": {"on"}, "session_expires": {"1200"}}))
	if gu, _ := e.svc.GetSIPUser(t.Context(), provision.Operator, u.ID); !gu.SessionTimers || gu.SessionExpires != 1200 {
		t.Errorf("user after session timers on, 1200 s: %v, %d s", gu.SessionTimers, gu.SessionExpires)
	}
	ok("rewrite", b.submit(page, page+"/rewrites", url.Values{"type": {"cli"}, "match": {"0"}, "replacement": {"+44"}}))
	r = b.submit(page, page+"/rewrites/test", url.Values{"type": {"cli"}, "input": {"02071234567"}})
	if !strings.Contains(textOf(r.body), "Output: +442071234567 (input 02071234567 ) Rule 1 fired: prefix 0 → +44") {
		t.Errorf("rewrite test without htmx: %s", textOf(r.body))
	}
	rules, _, _ := e.svc.ListRewriteRules(t.Context(), provision.Operator, store.RewriteFilter{OwnerKind: store.OwnerSIPUser, OwnerID: u.ID})
	if len(rules) != 1 {
		t.Fatalf("rules: %+v", rules)
	}
	ok("delete rule", b.submit(page, fmt.Sprintf("%s/rewrites/%d/delete", page, rules[0].ID), confirmedForm()))

	// Bans.
	ok("ban", b.submit("/firewall", "/firewall", url.Values{"address": {"198.51.100.0/24"}, "reason": {"scanner"}, "expires": {"1h"}}))
	r = b.submit("/firewall", "/firewall", url.Values{"address": {"nope"}, "expires": {""}})
	if got := errorOf(r.body, "f-address"); got != `"nope": invalid IP address` {
		t.Errorf("bad ban address: %q", got)
	}
	bans, _, _ := e.svc.ListBans(t.Context(), provision.Operator, store.BanFilter{})
	if len(bans) != 1 || bans[0].ExpiresAt.IsZero() {
		t.Fatalf("bans: %+v", bans)
	}

	ok("delete user", b.submit(page, page+"/delete", confirmedForm()))
	ok("delete endpoint", b.submit(acct, fmt.Sprintf("%s/ip/%d/delete", acct, ep.ID), confirmedForm()))
	ok("delete account", b.submit(acct+"/settings", acct+"/delete", confirmedForm()))
	if _, err := e.svc.GetAccount(t.Context(), provision.Operator, a.ID); err == nil {
		t.Error("the account is still there")
	}
}

type fakeMessenger struct{ n int }

func (f fakeMessenger) SendMessage(_ context.Context, u store.SIPUser, text string) (int, error) {
	return f.n, nil
}

func TestSendMessageDelivered(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{2, "Message sent to 2 devices."}, {0, "not sent: 1001 has no registered device"}} {
		e := newEnv(t, func(o *Options) { o.Messenger = fakeMessenger{tc.n} })
		a := e.account("Acme", 0)
		e.login("root", opPass, 0)
		u := store.SIPUser{AccountID: a.ID, Username: "1001", Channels: new(1)}
		if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, &u); err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		b.mustSignIn("root", opPass)
		page := fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
		r := b.submit(page, page+"/message", url.Values{"text": {"hello"}})
		if r.status == http.StatusSeeOther {
			r = b.get(r.header.Get("Location"))
		}
		if got := textOf(r.body); !strings.Contains(got, tc.want) {
			t.Errorf("%d devices: page does not say %q: %.300s", tc.n, tc.want, got)
		}
	}
}

// TestProfilesPage: the operator creates and edits a SIP profile in the web
// UI; the edit reaches the user that takes its channels from it, the
// profile's page lists that user and what it inherits, the user's page says
// what applies and where from, and deleting the profile leaves the user its
// values.
func TestProfilesPage(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 10)
	e.login("root", opPass, 0)
	b := e.browser()
	b.mustSignIn("root", opPass)
	r := b.submit("/profiles", "/profiles", url.Values{"name": {"softphones"}, "channels": {"2"}, "cps": {"0"},
		"protocol": {"udp"}, "nat_ping": {"enabled"}, "restricted_codecs": {"G729"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("create: %d %.400s", r.status, textOf(r.body))
	}
	profs, _, _ := e.svc.ListProfiles(t.Context(), provision.Operator, store.ProfileFilter{})
	if len(profs) != 1 || profs[0].NATPing != store.NATPingEnabled {
		t.Fatalf("profiles after create: %+v", profs)
	}
	p := profs[0]
	u := store.SIPUser{AccountID: a.ID, Username: "1001", ProfileID: &p.ID, CPS: new(4)}
	if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, &u); err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf("/profiles/%d", p.ID)
	if r := b.submit(page, page, url.Values{"name": {"softphones"}, "channels": {"3"}, "cps": {"9"}, "protocol": {"tcp"},
		"nat_ping": {"enabled"}}); r.status != http.StatusSeeOther {
		t.Fatalf("edit: %d %.400s", r.status, textOf(r.body))
	}
	got, _ := e.svc.GetSIPUser(t.Context(), provision.Operator, u.ID)
	if got.Effective.Channels.Value != 3 || got.Effective.Protocol.Value != store.ProtoTCP || got.Effective.CPS.Value != 4 ||
		len(got.Effective.RestrictedCodecs.Value) != 0 {
		t.Errorf("the user after the profile's edit: %+v", got.Effective)
	}
	if txt := textOf(b.get(page).body); !strings.Contains(txt, "Users of this profile (1) Username Account Takes from the profile 1001 Acme channels, protocol, nat ping, restricted codecs") {
		t.Errorf("profile page: %.600s", txt)
	}
	if txt := textOf(b.get("/profiles").body); !strings.Contains(txt, "softphones 3 9 tcp enabled none 1") {
		t.Errorf("profiles list: %.600s", txt)
	}
	if txt := textOf(b.get(fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)).body); !strings.Contains(txt, "Applies now: 3 (from its profile)") ||
		!strings.Contains(txt, "Applies now: 4 (this user's own)") {
		t.Errorf("user page: %.900s", txt)
	}
	if r := b.submit(page, page+"/delete", confirmedForm()); r.status != http.StatusSeeOther {
		t.Fatalf("delete: %d", r.status)
	}
	got, _ = e.svc.GetSIPUser(t.Context(), provision.Operator, u.ID)
	if got.ProfileID != nil || got.Channels == nil || *got.Channels != 3 || got.Effective.Protocol.Value != store.ProtoTCP {
		t.Errorf("the user after the profile's deletion: own %v, effective %+v", got.Channels, got.Effective)
	}
}
