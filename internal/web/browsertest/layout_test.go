package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// longish values that used to push pages wider than a phone.
const (
	longAccount = "Northwestern Regional Wholesale Telecommunications Carrier Services International Limited"
	longReason  = "credential stuffing from a scanner network: 10 failed authentications in 1m0s against users 1000-1099, then INVITEs to premium-rate destinations"
	longWhy     = "channel limit of endpoint 1 reached (20 in use) after the account's CPS limit of 5 per second was exceeded by a burst from sip:attacker-with-a-very-long-user-part@203.0.113.7"
)

// seedRealistic fills the server with many rows and long values; it
// returns the account and one endpoint's and one user's IDs.
func seedRealistic(t *testing.T, s *server) (store.Account, int64, int64) {
	ctx := context.Background()
	a := s.account(longAccount, 0)
	for i := range 60 {
		s.account(fmt.Sprintf("Customer %02d of a long list of wholesale accounts", i), i)
	}
	ep := store.IPEndpoint{AccountID: a.ID, Address: "2001:db8:85a3:1234:5678:8a2e:370:7334", Channels: 20, TechPrefix: "1#",
		Manufacturer: "Some Very Long Session Border Controller Manufacturer Name GmbH"}
	must(t, firstErr(s.svc.CreateEndpoint(ctx, provision.Operator, &ep)))
	var uid int64
	for i := range 55 {
		u := store.SIPUser{AccountID: a.ID, Username: fmt.Sprintf("reception-desk-of-the-north-building-%02d", i), Channels: new(1)}
		must(t, s.svc.CreateSIPUser(ctx, provision.Operator, &u))
		uid = u.ID
	}
	r := store.RewriteRule{Type: store.RewriteDestination, Regex: true, Match: `^(?:00|\+)?(44)(?:0)?([1-9][0-9]{8,9})(?:;phone-context=[a-z.]+)?$`,
		Replacement: "+$1$2", Order: 10, OwnerKind: store.OwnerEndpoint, OwnerID: ep.ID}
	must(t, s.svc.CreateRewriteRule(ctx, provision.Operator, &r))
	must(t, s.svc.CreateCLIPattern(ctx, provision.Operator, &store.CLIPattern{AccountID: a.ID, Pattern: `^\+44(20|113|114|115|116|117|118)\d{7,8}$`, Regex: true}))
	must(t, s.svc.CreateDID(ctx, provision.Operator, &store.DID{AccountID: a.ID, Number: "+442071234567", SIPUserID: &uid}))
	now := time.Now()
	for i := range 55 {
		must(t, s.svc.AddDetectedBan(ctx, store.Ban{Address: fmt.Sprintf("198.51.100.%d", i+1), Reason: longReason, ExpiresAt: now.Add(time.Hour)}))
	}
	seedLive(s, a, uid, now)
	return a, ep.ID, uid
}

func firstErr(_ []provision.Warning, err error) error { return err }

func seedLive(s *server, a store.Account, uid int64, now time.Time) {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	for i := range 55 {
		user := fmt.Sprintf("reception-desk-of-the-north-building-%02d", i)
		s.live.bindings = append(s.live.bindings, live.Binding{Username: user, SIPUserID: uid, AccountID: a.ID,
			Contact: fmt.Sprintf("sip:%s@[2001:db8::%x]:5060;transport=tcp;ob;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-00A0C91E6BF6>\"", user, i),
			Source:  "[2001:db8:85a3::8a2e:370:7334]:40000", Transport: "tcp", Expires: now.Add(50 * time.Minute), LatencyMS: 18.4,
			UserAgent: "Yealink SIP-T54W 96.86.0.100 with a very long firmware build string"})
		s.live.calls = append(s.live.calls, live.Call{ID: fmt.Sprintf("a84c1f0e-5b2e-9d1a-%04d-long-call-id@2001:db8:85a3::8a2e:370:7334", i),
			AccountID: a.ID, Account: a.Name, Auth: "digest", Username: user, From: "442071234567", To: "33142685300",
			Source: "[2001:db8:85a3::8a2e:370:7334]:5060", Start: now.Add(-time.Minute), State: "confirmed"})
		s.live.decisions = append(s.live.decisions, live.Decision{Time: now.Add(-time.Duration(i) * time.Second), Method: "INVITE",
			Source: "[2001:db8:85a3::8a2e:370:7334]:5060", Transport: "udp", From: "sip:attacker-with-a-very-long-user-part@203.0.113.7",
			To: "sip:0044201234567890@edge.example.net", AccountID: a.ID, Account: a.Name, Result: "rejected", Status: 503, Stage: "limits",
			Why: longWhy, Passed: []string{"firewall", "sanity", "identify", "authn"}, Node: "edge1-a1b2c3-with-a-long-host-name"})
	}
}

// narrow sets the tab's viewport width.
func (tb *tab) narrow(width int64) {
	tb.t.Helper()
	tb.do("viewport", chromedp.EmulateViewport(width, 780))
}

// fits fails when the page is wider than the viewport, naming the
// widest elements.
func (tb *tab) fits(what string, width int) {
	tb.t.Helper()
	var n int
	if _, err := fmt.Sscan(tb.eval(`String(document.documentElement.scrollWidth)`), &n); err != nil || n <= width {
		return
	}
	wide := tb.eval(`Array.from(document.querySelectorAll("body *")).filter(e => e.getBoundingClientRect().right > ` + fmt.Sprint(width) +
		`).slice(-3).map(e => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right)).join("; ")`)
	tb.t.Errorf("%s at %d px: the page is %d px wide (%s)", what, width, n, wide)
}

// TestPhoneWidth: every page, operator's and customer's, with long values
// and many rows, fits 360 px (no horizontal scrolling) and is axe-clean;
// the collapsed navigation opens; at 1280 px the header is one line.
func TestPhoneWidth(t *testing.T) {
	s := newServer(t)
	s.login(opUser, opPass, 0)
	a, ep, uid := seedRealistic(t, s)
	s.login("customer-login-with-a-long-name", "customer password 1", a.ID)
	b := newBrowser(t)
	acct := path("/accounts/%d", a.ID)
	opPages := []string{"/", "/accounts", "/accounts?page=2", "/accounts/new", acct, acct + "/users", acct + "/cli", acct + "/dids",
		acct + "/logins", acct + "/settings", acct + "/ip/new", path("%s/ip/%d", acct, ep), path("%s/ip/%d?tab=rewrite", acct, ep),
		acct + "/users/new", path("%s/users/%d", acct, uid), "/ip", "/users", "/registrations", "/calls", "/decisions", "/audit",
		"/firewall", "/profiles", "/nodes", "/password"}
	op := newTab(t, b, s.url)
	op.narrow(360)
	op.open("/login", http.StatusOK)
	op.fits("/login", 360)
	op.signIn(opUser, opPass, "/")
	for _, p := range opPages {
		op.open(p, http.StatusOK)
		op.fits(p, 360)
	}
	op.open("/no-such-page", http.StatusNotFound)
	op.fits("404", 360)

	// The navigation is collapsed behind the Menu button, and opens.
	const callsVisible = `String(document.querySelector("nav[aria-label=Main] a[href='/calls']").checkVisibility())`
	if v := op.eval(callsVisible); v != "false" {
		t.Error("at 360 px the navigation shows before the Menu button is pressed")
	}
	op.click(".menu > summary")
	if v := op.eval(callsVisible); v != "true" {
		t.Error("the opened menu does not show the links")
	}
	op.axe("menu open")
	op.fits("menu open", 360)

	cu := newTab(t, b, s.url)
	cu.narrow(360)
	cu.signIn("customer-login-with-a-long-name", "customer password 1", "/")
	for _, p := range []string{"/", acct, acct + "/users", acct + "/cli", acct + "/dids", acct + "/logins", acct + "/settings",
		path("%s/users/%d", acct, uid), "/ip", "/users", "/registrations", "/calls", "/decisions", "/audit", "/password"} {
		cu.open(p, http.StatusOK)
		cu.fits(p, 360)
	}

	// At 1280 px the header is one line and the menu button hidden.
	op.narrow(1280)
	op.open("/accounts", http.StatusOK)
	if h := op.eval(`String(document.querySelector(".top-inner").getBoundingClientRect().height < 60)`); h != "true" {
		t.Errorf("at 1280 px the header is %s px high, want one line", op.eval(`String(document.querySelector(".top-inner").getBoundingClientRect().height)`))
	}
	if v := op.eval(`getComputedStyle(document.querySelector(".menu > summary")).display`); v != "none" {
		t.Errorf("at 1280 px the Menu button shows (%s)", v)
	}
	if v := op.eval(callsVisible); v != "true" {
		t.Error("at 1280 px the navigation links are hidden")
	}
	op.fits("/accounts", 1280)
}

// TestErrorSummaryFocused: an invalid submit answers 422 and focuses the
// summary, which lists every field's error.
func TestErrorSummaryFocused(t *testing.T) {
	s := newServer(t)
	s.login(opUser, opPass, 0)
	a := s.account("Acme", 0)
	must(t, s.svc.CreateSIPUser(context.Background(), provision.Operator, &store.SIPUser{AccountID: a.ID, Username: "1001"}))
	op := newTab(t, newBrowser(t), s.url)
	op.narrow(360)
	op.signIn(opUser, opPass, "/")
	op.open(path("/accounts/%d/users/new", a.ID), http.StatusOK)
	op.typeIn("#f-username", "1001")
	op.typeIn("#f-password", "short")
	op.submit("button[form=owner-form]", http.StatusUnprocessableEntity)
	if id := op.eval(`document.activeElement.id`); id != "form-errors" {
		t.Errorf("focus on %q, want the error summary", id)
	}
	sum := op.text("#form-errors")
	for _, want := range []string{provision.MsgDuplicateUser, "is too weak"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary %q lacks %q", sum, want)
		}
	}
	op.fits("refused form", 360)
}
