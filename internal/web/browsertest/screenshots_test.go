package browsertest

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/wavfile"
)

var shots = flag.String("screenshots", "", "write screenshots of the main pages as PNG files into this directory")

// TestScreenshots writes screenshots of the main pages, with example data,
// into the -screenshots directory (make screenshots writes docs/screenshots).
// Without the flag it does nothing.
func TestScreenshots(t *testing.T) {
	if *shots == "" {
		t.Skip("no -screenshots directory")
	}
	must(t, os.MkdirAll(*shots, 0o755))
	s := newServer(t)
	ctx := context.Background()
	s.login(opUser, opPass, 0)

	acme := s.account("Acme Telecom", 30)
	s.stats.accounts = []series.Account{{ID: acme.ID, Name: acme.Name, Calls: 1830, Rejected: 27, Challenges: 1415, Registrations: 2760}}
	for i, n := range []struct {
		name     string
		channels int
	}{{"Beta Voice", 120}, {"Carrier One", 500}, {"Delta Call Centre", 60}, {"Echo Networks", 0}, {"Foxtrot PBX", 8}} {
		a := s.account(n.name, n.channels)
		k := int64(5 - i)
		s.stats.accounts = append(s.stats.accounts, series.Account{ID: a.ID, Name: a.Name, Calls: 240 * k, Rejected: 3 * k, Challenges: 90 * k, Registrations: 400 * k})
	}
	var eps []store.IPEndpoint
	for _, e := range []store.IPEndpoint{
		{AccountID: acme.ID, Address: "203.0.113.7", Channels: 20, CPS: 5, TechPrefix: "1#", CLIAuth: true, Manufacturer: "Acme SBC"},
		{AccountID: acme.ID, Address: "203.0.113.64/28", Channels: 10, Protocol: store.ProtoTCP},
		{AccountID: acme.ID, Address: "pbx.acme.example", Direction: store.DirReceives, Port: 5080},
	} {
		if _, err := s.svc.CreateEndpoint(ctx, provision.Operator, &e); err != nil {
			t.Fatal(err)
		}
		eps = append(eps, e)
	}
	var users []store.SIPUser
	for i, ch := range []int{4, 2, 2, 1, 1} {
		u := store.SIPUser{AccountID: acme.ID, Username: fmt.Sprint(1001 + i), Channels: new(ch), NATPing: new(store.NATPingEnabled),
			Voicemail: store.Voicemail{Enabled: i == 0, Email: "reception@acme.example"}}
		must(t, s.svc.CreateSIPUser(ctx, provision.Operator, &u))
		users = append(users, u)
	}
	for i, r := range []store.RewriteRule{
		{Type: store.RewriteDestination, Match: "00", Replacement: "+", Order: 10},
		{Type: store.RewriteDestination, Regex: true, Match: `^0([1-9][0-9]+)$`, Replacement: "+44$1", Order: 20},
	} {
		r.OwnerKind, r.OwnerID = store.OwnerSIPUser, users[0].ID
		must(t, s.svc.CreateRewriteRule(ctx, provision.Operator, &r))
		_ = i
	}
	for i, m := range []store.VoicemailMessage{
		{Caller: "442071234567", Called: "+442071234567", DurationMS: 48200, Read: true, Mail: store.MailState{Status: store.MailSent, Attempts: 1}},
		{Caller: "1002", Called: "1001", DurationMS: 7400, Mail: store.MailState{Status: store.MailPending, Attempts: 2, Error: "connect: connection refused"}},
		{Caller: "33142685300", Called: "+442071234567", DurationMS: 95100},
	} {
		m.SIPUserID, m.AccountID = users[0].ID, acme.ID
		m.CreatedAt = time.Now().Add(time.Duration(i-3) * 5 * time.Hour).Truncate(time.Minute)
		if m.Mail.Status == store.MailSent {
			m.Mail.SentAt = m.CreatedAt.Add(4 * time.Second)
		}
		must(t, s.st.SaveMessage(ctx, &m, wavfile.Encode(make([]byte, int(m.DurationMS)*16))))
	}
	must(t, s.svc.CreateDID(ctx, provision.Operator, &store.DID{AccountID: acme.ID, Number: "+442071234567", SIPUserID: &users[0].ID}))
	must(t, s.svc.CreateCLIPattern(ctx, provision.Operator, &store.CLIPattern{AccountID: acme.ID, Pattern: `^\+4420\d{8}$`, Regex: true}))
	now := time.Now()
	must(t, s.svc.AddDetectedBan(ctx, store.Ban{Address: "198.51.100.23", Reason: "10 failed authentications in 1m0s", ExpiresAt: now.Add(time.Hour)}))
	_, err := s.svc.CreateBan(ctx, provision.Operator, &store.Ban{Address: "192.0.2.128/25", Reason: "scanner network"})
	must(t, err)
	s.live.mu.Lock()
	s.live.inUse[acme.ID] = 7
	for i, u := range users[:3] {
		s.live.bindings = append(s.live.bindings, live.Binding{Username: u.Username, SIPUserID: u.ID, AccountID: acme.ID,
			Contact: fmt.Sprintf("sip:%s@10.0.0.%d:5060;ob", u.Username, 20+i), Source: fmt.Sprintf("198.51.100.%d:%d", 40+i, 40000+i),
			Transport: "udp", Expires: now.Add(50 * time.Minute), LatencyMS: 18.4 + float64(i)*7.3, UserAgent: "Yealink SIP-T54W"})
	}
	s.live.calls = []live.Call{
		{ID: "a84c1f0e@203.0.113.7", AccountID: acme.ID, Account: "Acme Telecom", Auth: "ip", Endpoint: eps[0].ID, From: "442071234567", To: "33142685300",
			Source: "203.0.113.7:5060", Start: now.Add(-3*time.Minute - 12*time.Second), State: "confirmed"},
		{ID: "5b2e9d1a@10.0.0.20", AccountID: acme.ID, Account: "Acme Telecom", Auth: "digest", Username: "1001", From: "1001", To: "4915123456789",
			Source: "198.51.100.40:40000", Start: now.Add(-41 * time.Second), State: "early"},
	}
	s.live.decisions = []live.Decision{
		{Time: now.Add(-5 * time.Second), Method: "INVITE", Source: "192.0.2.99:5060", Transport: "udp", From: "sip:100@192.0.2.99", To: "sip:0044201234567@edge",
			Result: "rejected", Status: 403, Stage: "identify", Why: "unknown source address", Passed: []string{"firewall", "sanity"}},
		{Time: now.Add(-20 * time.Second), Method: "INVITE", Source: "203.0.113.7:5060", Transport: "udp", From: "sip:442071234567@203.0.113.7",
			To: "sip:1#33142685300@edge", AccountID: acme.ID, Account: "Acme Telecom", Auth: "ip", Result: "rejected", Status: 503, Stage: "limits",
			Why: "channel limit of endpoint 1 reached (20 in use)", Passed: []string{"firewall", "sanity", "identify", "authn"}},
		{Time: now.Add(-41 * time.Second), Method: "INVITE", Source: "198.51.100.40:40000", Transport: "udp", From: "sip:1001@edge",
			To: "sip:4915123456789@edge", AccountID: acme.ID, Account: "Acme Telecom", Auth: "digest", Result: "accepted", Status: 200, Stage: "route",
			Why: "routed upstream", Passed: []string{"firewall", "sanity", "identify", "authn", "limits", "rewrite", "codecs"}},
		{Time: now.Add(-2 * time.Minute), Method: "REGISTER", Source: "198.51.100.41:40001", Transport: "udp", From: "sip:1002@edge",
			To: "sip:1002@edge", AccountID: acme.ID, Account: "Acme Telecom", Auth: "digest", Result: "accepted", Status: 200, Stage: "registrar",
			Why: "registered 1 contact", Passed: []string{"firewall", "sanity", "identify", "authn"}},
		{Time: now.Add(-3 * time.Minute), Method: "INVITE", Source: "198.51.100.23:5060", Transport: "udp", From: "sip:1000@edge",
			To: "sip:900@edge", Result: "rejected", Status: 407, Stage: "authn", Why: "wrong password for user 1000", Passed: []string{"firewall", "sanity", "identify"}},
	}
	s.live.mu.Unlock()

	b := newBrowser(t)
	op := newTab(t, b, s.url)
	shot := func(name string) { op.screenshot(*shots, name, false) }

	op.open("/login", http.StatusOK)
	shot("login.png")
	op.signIn(opUser, opPass, "/")
	op.screenshot(*shots, "dashboard.png", true)
	op.open("/accounts", http.StatusOK)
	shot("accounts.png")
	acct := path("/accounts/%d", acme.ID)
	op.open(acct, http.StatusOK)
	shot("account.png")
	op.open(path("%s/ip/%d", acct, eps[0].ID), http.StatusOK)
	op.click("#tab-advanced")
	shot("endpoint.png")
	s.stats.mu.Lock()
	s.stats.latency[users[0].ID] = latencyDay(time.Now())
	s.stats.mu.Unlock()
	op.open(path("%s/users/%d", acct, users[0].ID), http.StatusOK)
	shot("user.png")
	op.open(path("%s/users/%d?tab=rewrite", acct, users[0].ID), http.StatusOK)
	op.typeIn("#t-f-input", "02071234567")
	op.click("#test-form button[type=submit]")
	op.do("wait for the test result", chromedp.WaitVisible(chromedp.CSS("#rewrite-output")))
	shot("user-rewrite.png")
	op.typeIn("#g-f-examples", "01782123456 -> 441782123456\n07700900123 -> 447700900123")
	op.typeIn("#g-f-unchanged", "00441782123456")
	op.click("#gen-submit")
	op.do("wait for the generated rule", chromedp.WaitVisible(chromedp.CSS("#gen-rule")))
	op.screenshot(*shots, "user-generate.png", true)
	op.open(path("%s/users/%d?tab=voicemail#voicemail", acct, users[0].ID), http.StatusOK)
	shot("user-voicemail.png")
	op.open(acct+"/users/new", http.StatusOK)
	op.typeIn("#f-username", "1001")
	op.typeIn("#f-channels", "2")
	op.submit("button[form=owner-form]", http.StatusUnprocessableEntity)
	shot("user-duplicate.png")
	op.typeIn("#f-username", "1006")
	op.typeIn("#f-channels", "30")
	op.submit("button[form=owner-form]", http.StatusUnprocessableEntity)
	shot("user-capacity.png")
	op.typeIn("#f-channels", "1")
	op.submit("button[form=owner-form]", http.StatusOK)
	op.click("button[data-copy]")
	op.do("wait for the copy", chromedp.WaitVisible(chromedp.CSS("button[data-copied=true]")))
	shot("user-password.png")
	for _, p := range []string{"registrations", "decisions", "firewall", "nodes"} {
		op.open("/"+p, http.StatusOK)
		shot(p + ".png")
	}
	op.open("/audit", http.StatusOK)
	shot("audit.png")
	op.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	op.open("/", http.StatusOK)
	shot("dashboard-phone.png")
	op.open(acct, http.StatusOK)
	shot("account-phone.png")
	op.open("/audit", http.StatusOK)
	shot("audit-phone.png")
}
