package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/wavfile"
)

const (
	opUser   = "root"
	opPass   = "operator password 1"
	portUser = "acme-portal"
	portPass = "portal password 123"
)

// TestOperator walks the operator's main flows in the browser: create an
// account, add an IP endpoint (with the duplicate-IP warning), add rewrite
// rules and test them, add a SIP user and copy its generated password, hit
// the duplicate-user and channel-capacity errors, generate a new password,
// send a message, read the live pages, and unblock a ban.
func TestOperator(t *testing.T) {
	s := newServer(t)
	s.login(opUser, opPass, 0)
	other := s.account("Other Co", 0)
	if _, err := s.svc.CreateEndpoint(context.Background(), provision.Operator,
		&store.IPEndpoint{AccountID: other.ID, Address: "203.0.113.0/24", TechPrefix: "9#"}); err != nil {
		t.Fatal(err)
	}
	must(t, s.svc.AddDetectedBan(context.Background(), store.Ban{Address: "198.51.100.23", Reason: "10 failed authentications in 1m0s",
		ExpiresAt: time.Now().Add(time.Hour)}))

	b := newBrowser(t)
	op := newTab(t, b, s.url)

	// Sign in: back to the page asked for.
	op.open("/accounts", http.StatusOK) // redirected to the sign-in page
	if loc := op.location(); loc != "/login?next=%2Faccounts" {
		t.Fatalf("anonymous: at %s, want the sign-in page", loc)
	}
	op.typeIn("#username", opUser)
	op.typeIn("#password", "wrong password")
	op.submit("form button[type=submit]", http.StatusUnauthorized)
	op.wantText("#signin-error", "Wrong username or password.")
	if v := op.value("#username"); v != opUser {
		t.Errorf("after a failed sign-in the username field holds %q, want %q", v, opUser)
	}
	op.typeIn("#password", opPass)
	if loc := op.submit("form button[type=submit]", http.StatusOK); loc != "/accounts" {
		t.Fatalf("signed in: at %s, want /accounts", loc)
	}

	// Create an account.
	op.submit("a[href='/accounts/new']", http.StatusOK)
	op.typeIn("#f-name", "Acme Telecom")
	op.typeIn("#f-channels", "10")
	acct := op.submit("form.card button[type=submit]", http.StatusOK)
	if !strings.HasPrefix(acct, "/accounts/") {
		t.Fatalf("after creating the account: at %s", acct)
	}
	op.wantContains(".alert.ok", "Account Acme Telecom created.")
	op.wantText("#budget-capacity", "10")
	op.wantText("#budget-allocated", "0")

	// The accounts list searches as you type (on the server).
	op.open("/accounts", http.StatusOK)
	op.wantContains("#results", "Acme Telecom")
	op.typeIn("#q", "other")
	op.do("wait for the search", chromedp.Poll[chromedp.Void](`!document.getElementById("results").textContent.includes("Acme Telecom")`))
	op.wantContains("#results", "Other Co")
	if loc := op.location(); loc != "/accounts?q=other" {
		t.Errorf("after searching the address bar shows %s", loc)
	}
	op.checkConsole("search accounts")
	op.open(acct, http.StatusOK)

	// Add an IP endpoint: the form has Basic, Advanced, Codecs tabs; the
	// address overlaps another account's, so it is saved with a warning.
	op.submit("a[href$='/ip/new']", http.StatusOK)
	op.wantText("[role=tab][aria-selected=true]", "Basic")
	op.typeIn("#f-address", "203.0.113.7")
	op.typeIn("#f-channels", "5")
	// Keyboard: arrow keys move between the tabs.
	op.do("focus the Basic tab", chromedp.Focus(chromedp.CSS("#tab-basic")), chromedp.KeyEvent(kb.ArrowRight))
	op.wantText("[role=tab][aria-selected=true]", "Advanced")
	if got := op.eval(`document.activeElement.id`); got != "tab-advanced" {
		t.Errorf("after ArrowRight the focus is on %q, want the Advanced tab", got)
	}
	op.typeIn("#f-tech-prefix", "1#") // under the seed's warning, on the Advanced tab
	op.typeIn("#f-manufacturer", "Acme SBC")
	op.click("#tab-codecs")
	op.click("label[for='f-restricted-codecs-6']") // G729
	ep := op.submit("button[form=owner-form]", http.StatusOK)
	op.wantContains(".alert.ok", "IP endpoint 203.0.113.7 added.")
	op.wantContains(".alert.warn", `duplicate IP: 203.0.113.7 overlaps 203.0.113.0/24 of account "Other Co"`)
	op.click("#tab-codecs")
	if checked := op.eval(`String(document.getElementById("f-restricted-codecs-6").checked)`); checked != "true" {
		t.Errorf("G729 restricted: checkbox %s after save", checked)
	}

	// Parameter Rewrite: add a rule, then test it in the Testing Input box.
	op.click("#tab-rewrite")
	op.typeIn("#f-match", "00")
	op.typeIn("#f-replacement", "+")
	op.submit("#rule-form button[type=submit]", http.StatusOK)
	op.wantContains(".alert.ok", "Rewrite rule added.")
	op.wantText("[role=tab][aria-selected=true]", "Parameter Rewrite")
	op.typeIn("#t-f-input", "0044201234567")
	op.click("#test-form button[type=submit]")
	op.do("wait for the test result", chromedp.WaitVisible(chromedp.CSS("#rewrite-output")))
	op.wantText("#rewrite-output", "+44201234567")
	op.wantText("#rewrite-fired", "Rule 1 fired: prefix 00 → +")
	op.typeIn("#t-f-input", "44201234567")
	op.click("#test-form button[type=submit]")
	op.do("wait for the second result", chromedp.Poll[chromedp.Void](`document.getElementById("rewrite-output").textContent === "44201234567"`))
	op.wantText("#rewrite-fired", "No rule matched: the number passes unchanged.")
	op.checkConsole("rewrite test")
	op.axe("rewrite test result")
	_ = ep

	// A SIP user with a generated password, copied with the Copy button.
	op.open(acct+"/users", http.StatusOK)
	op.wantContains(".empty", "No SIP users yet.")
	op.submit("a[href$='/users/new']", http.StatusOK)
	op.typeIn("#f-username", "1001")
	op.typeIn("#f-channels", "4")
	op.submit("button[form=owner-form]", http.StatusOK)
	op.wantContains(".alert.ok", "SIP user 1001 created.")
	if loc := op.location(); !strings.HasPrefix(loc, acct+"/users/") || strings.HasSuffix(loc, "/new") {
		t.Errorf("after creating a user the address bar shows %s, want the user's page", loc)
	}
	password := op.text("#secret-value")
	if len(password) != 24 {
		t.Fatalf("generated password %q: want 24 characters", password)
	}
	op.click("button[data-copy]")
	op.do("wait for the copy", chromedp.WaitVisible(chromedp.CSS("button[data-copied=true]")))
	op.wantText("#copy-status", "Copied to the clipboard.")
	if got := run(op, "read the clipboard", chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise)); got != password {
		t.Errorf("clipboard holds %q, want the password %q", got, password)
	}
	op.checkConsole("copy")
	userPage := op.location()

	// Generate Password: asked first, naming the user; a new one, shown once.
	dialog := op.answerDialog(true)
	op.submit("#generate-password", http.StatusOK)
	if msg := <-dialog; !strings.HasPrefix(msg, "Replace the password of SIP user ") {
		t.Errorf("Generate Password asks %q", msg)
	}
	if again := op.text("#secret-value"); len(again) != 24 || again == password {
		t.Errorf("Generate Password showed %q (before: %q)", again, password)
	}
	op.open(userPage, http.StatusOK)
	if n := op.eval(`String(document.querySelectorAll("#secret-value").length)`); n != "0" {
		t.Error("the password is shown again on a later visit")
	}

	// Send a message to the user's registered devices (through the edge;
	// here a fake that says one device took it).
	op.submit("form[action$='/message'] button[type=submit]", http.StatusUnprocessableEntity)
	op.wantText("#f-text-err", "is required")
	if id := op.eval(`document.activeElement.id`); id != "form-errors" {
		t.Errorf("after an empty message the focus is on %q, want the error summary", id)
	}
	op.typeIn("#f-text", "Your voicemail is full")
	op.submit("form[action$='/message'] button[type=submit]", http.StatusOK)
	op.wantContains(".alert.ok", "Message sent to 1 device.")
	s.msgs.mu.Lock()
	if len(s.msgs.sent) != 1 || s.msgs.sent[0] != "1001: Your voicemail is full" {
		t.Errorf("messages sent: %q", s.msgs.sent)
	}
	s.msgs.mu.Unlock()

	// Duplicate user: the exact message next to the username, what was typed kept.
	op.open(acct+"/users/new", http.StatusOK)
	op.typeIn("#f-username", "1001")
	op.typeIn("#f-channels", "1")
	op.click("#tab-voicemail")
	op.typeIn("#f-voicemail-email", "ops@acme.example")
	op.submit("button[form=owner-form]", http.StatusUnprocessableEntity)
	op.wantText("[role=tab][aria-selected=true]", "Basic")
	op.wantText("#f-username-err", provision.MsgDuplicateUser)
	if got := op.eval(`document.getElementById("f-username").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("username aria-invalid %q", got)
	}
	for sel, want := range map[string]string{"#f-username": "1001", "#f-channels": "1", "#f-voicemail-email": "ops@acme.example"} {
		if got := op.value(sel); got != want {
			t.Errorf("after Duplicate User Detected %s holds %q, want %q", sel, got, want)
		}
	}

	// Channel capacity: 4 of 10 are allocated, 7 more do not fit.
	op.typeIn("#f-username", "1002")
	op.typeIn("#f-channels", "7")
	op.submit("button[form=owner-form]", http.StatusUnprocessableEntity)
	op.wantText("#f-channels-err", provision.MsgNoCapacity)
	for sel, want := range map[string]string{"#f-username": "1002", "#f-channels": "7", "#f-voicemail-email": "ops@acme.example"} {
		if got := op.value(sel); got != want {
			t.Errorf("after the capacity error %s holds %q, want %q", sel, got, want)
		}
	}
	op.open(acct, http.StatusOK)
	op.wantText("#budget-allocated", "4")
	op.wantText("#budget-remaining", "6")

	// A portal login for the account, for TestAccountPortal's kind of user.
	op.open(acct+"/logins", http.StatusOK)
	op.typeIn("#f-username", portUser)
	op.typeIn("#f-password", portPass)
	op.submit("form[action$='/logins'] button[type=submit]", http.StatusOK)
	op.wantContains(".alert.ok", "Login "+portUser+" created.")

	// Live pages.
	now := time.Now()
	id := accountID(t, acct)
	s.live.mu.Lock()
	s.live.decisions = []live.Decision{
		{Seq: 2, Time: now, Method: "INVITE", Source: "192.0.2.99:5060", Transport: "udp", From: "sip:1@192.0.2.99", To: "sip:2@sipward",
			Result: "rejected", Status: 403, Stage: "identify", Why: "unknown source address", Passed: []string{"firewall", "sanity"}},
		{Seq: 1, Time: now.Add(-time.Minute), Method: "INVITE", Source: "203.0.113.7:5060", Transport: "udp", From: "sip:442071234567@203.0.113.7",
			To: "sip:1#0044201234567@sipward", AccountID: id, Account: "Acme Telecom", Auth: "ip", Result: "accepted", Status: 200, Stage: "route",
			Why: "routed upstream", Passed: []string{"firewall", "sanity", "identify", "limits", "rewrite", "codecs"}},
	}
	s.live.mu.Unlock()
	op.open("/decisions", http.StatusOK)
	op.choose("#result", "rejected")
	op.submit("form[role=search] button[type=submit]", http.StatusOK)
	op.wantContains("tbody", "unknown source address")
	if strings.Contains(op.text("tbody"), "routed upstream") {
		t.Error("decisions filtered by result=rejected show an accepted call")
	}
	for _, p := range []string{"/registrations", "/calls", "/ip", "/users", "/password", "/nodes"} {
		op.open(p, http.StatusOK)
	}
	op.wantContains("tbody", "edge2-d4e5f6")

	// Firewall: unblock a ban.
	op.open("/firewall", http.StatusOK)
	op.wantContains("tbody", "198.51.100.23")
	op.submit("button[aria-label='Unblock 198.51.100.23']", http.StatusOK)
	op.wantContains(".alert.ok", "Unblocked 198.51.100.23")
	op.wantContains(".empty", "No address is banned.")
	if _, n, _ := s.svc.ListBans(context.Background(), provision.Operator, store.BanFilter{}); n != 0 {
		t.Errorf("%d bans left after Unblock", n)
	}

	// Phone-sized screen: nothing wider than the screen but the tables, which scroll.
	op.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	for _, p := range []string{acct, userPage, "/decisions"} {
		op.open(p, http.StatusOK)
		if w := op.eval(`String(document.documentElement.scrollWidth <= window.innerWidth)`); w != "true" {
			t.Errorf("%s at 390 px: the page scrolls sideways (scrollWidth %s)", p, op.eval(`String(document.documentElement.scrollWidth)`))
		}
	}
	op.do("desktop viewport", chromedp.EmulateViewport(1280, 900))

	// Sign out.
	op.open("/accounts", http.StatusOK)
	op.submit("form[action='/logout'] button", http.StatusOK)
	op.wantContains(".alert.ok", "You are signed out.")
	op.open("/accounts", http.StatusOK)
	if loc := op.location(); !strings.HasPrefix(loc, "/login") {
		t.Errorf("after signing out /accounts shows %s", loc)
	}
}

// TestAccountPortal signs in as an account's login: it sees its own
// account, works in it, and gets 404 for another account's pages by URL.
func TestAccountPortal(t *testing.T) {
	s := newServer(t)
	mine := s.account("Acme Telecom", 10)
	theirs := s.account("Beta Voice", 10)
	s.login(portUser, portPass, mine.ID)
	theirUser := store.SIPUser{AccountID: theirs.ID, Username: "2001", Channels: new(1)}
	must(t, s.svc.CreateSIPUser(context.Background(), provision.Operator, &theirUser))
	theirEp := store.IPEndpoint{AccountID: theirs.ID, Address: "192.0.2.200"}
	if _, err := s.svc.CreateEndpoint(context.Background(), provision.Operator, &theirEp); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t)
	c := newTab(t, b, s.url)
	own := path("/accounts/%d", mine.ID)
	c.signIn(portUser, portPass, "/")
	c.open(own, http.StatusOK)
	c.wantContains("h1", "Acme Telecom")
	if strings.Contains(c.text("header"), "Firewall") {
		t.Error("the portal's menu offers the firewall")
	}

	// It adds a SIP user of its own.
	c.open(own+"/users/new", http.StatusOK)
	c.typeIn("#f-username", "1001")
	c.typeIn("#f-channels", "2")
	c.submit("button[form=owner-form]", http.StatusOK)
	c.wantContains(".alert.ok", "SIP user 1001 created.")

	// The global lists show only its own objects.
	c.open("/users", http.StatusOK)
	if txt := c.text("#results"); strings.Contains(txt, "2001") || !strings.Contains(txt, "1001") {
		t.Errorf("the portal's SIP user list: %q", txt)
	}

	// Another account's pages, by URL: 404, and nothing of theirs shows.
	for _, p := range []string{
		path("/accounts/%d", theirs.ID), path("/accounts/%d/users", theirs.ID), path("/accounts/%d/users/%d", theirs.ID, theirUser.ID),
		path("/accounts/%d/users/%d", mine.ID, theirUser.ID), path("/accounts/%d/ip/%d", theirs.ID, theirEp.ID),
		path("/accounts/%d/settings", theirs.ID), "/firewall", "/accounts/new",
	} {
		c.open(p, http.StatusNotFound)
		c.wantText("h1", "Page not found")
		if strings.Contains(c.text("main"), "Beta Voice") {
			t.Errorf("%s shows the other account's name", p)
		}
	}
}

// TestVoicemail opens a SIP user's page with one stored message: its audio
// element's source answers the WAV (whole and by range) and the browser
// reads it; the message is marked read, kept when its deletion is
// cancelled, and deleted through the confirmation that names it.
func TestVoicemail(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	s.login(opUser, opPass, 0)
	a := s.account("Acme Telecom", 10)
	u := store.SIPUser{AccountID: a.ID, Username: "1001", Channels: new(1), Voicemail: store.Voicemail{Enabled: true, Email: "1001@acme.example"}}
	must(t, s.svc.CreateSIPUser(ctx, provision.Operator, &u))
	wav := wavfile.Encode(make([]byte, 2*wavfile.SampleRate*wavfile.BytesPerSample))
	m := store.VoicemailMessage{SIPUserID: u.ID, AccountID: a.ID, Caller: "3002", Called: "1001",
		CreatedAt: time.Date(2025, 12, 7, 17, 30, 0, 0, time.UTC), DurationMS: 2000}
	must(t, s.st.SaveMessage(ctx, &m, wav))

	b := newBrowser(t)
	op := newTab(t, b, s.url)
	op.signIn(opUser, opPass, "/")
	op.open(path("/accounts/%d/users/%d", a.ID, u.ID), http.StatusOK)
	row := path("#msg-%d", m.ID)
	op.wantContains("#vm-count", "1 message(s), 1 new.")
	op.wantContains(row, "3002")
	op.wantContains(row, "0:02")

	// The page fetches its audio element's source: the WAV, and a range of
	// it as a player seeking asks; then the player reads it (2 s).
	got := run(op, "fetch the audio", chromedp.Evaluate[string](`(async () => {
		const src = document.querySelector("`+row+` audio").src;
		const full = await fetch(src), part = await fetch(src, {headers: {Range: "bytes=0-43"}});
		return [full.status, full.headers.get("content-type"), (await full.arrayBuffer()).byteLength,
			part.status, part.headers.get("content-type"), (await part.arrayBuffer()).byteLength].join(" ");
	})()`, chromedp.EvalAwaitPromise))
	if want := fmt.Sprintf("200 audio/wav %d 206 audio/wav 44", len(wav)); got != want {
		t.Errorf("fetch of the audio element's src: %q, want %q", got, want)
	}
	dur := run(op, "load the audio", chromedp.Evaluate[string](`(async () => {
		const a = document.querySelector("`+row+` audio");
		const loaded = new Promise((ok, fail) => { a.onloadedmetadata = ok; a.onerror = () => fail(new Error("audio error " + a.error.code)); });
		a.preload = "metadata"; a.load(); await loaded;
		return String(Math.round(a.duration));
	})()`, chromedp.EvalAwaitPromise))
	if dur != "2" {
		t.Errorf("the audio element reads a message of %s s, want 2", dur)
	}

	// Mark read.
	op.submit(row+" button[aria-label^='Mark read']", http.StatusOK)
	op.wantContains(".alert.ok", "The message from 3002 of 7 Dec 17:30 is marked read.")
	op.wantContains(row, "Read")
	op.wantContains("#vm-count", "1 message(s), 0 new.")
	if got, err := s.svc.VoicemailMessage(ctx, provision.Operator, u.ID, m.ID); err != nil || !got.Read {
		t.Errorf("after Mark read: %+v, %v", got, err)
	}

	// Delete: Cancel keeps it; OK deletes it.
	del := row + " button[aria-label^='Delete']"
	dialog := op.answerDialog(false)
	op.click(del)
	if msg := <-dialog; msg != "Delete the message from 3002 of 7 Dec 17:30?" {
		t.Errorf("the confirmation says %q", msg)
	}
	if msgs, _ := s.svc.VoicemailMessages(ctx, provision.Operator, u.ID); len(msgs) != 1 {
		t.Fatalf("after cancelling the deletion: %d messages", len(msgs))
	}
	dialog = op.answerDialog(true)
	op.submit(del, http.StatusOK)
	<-dialog
	op.wantContains(".alert.ok", "The message from 3002 of 7 Dec 17:30 is deleted.")
	op.wantContains("#voicemail", "No messages.")
	if msgs, _ := s.svc.VoicemailMessages(ctx, provision.Operator, u.ID); len(msgs) != 0 {
		t.Errorf("after Delete: %d messages", len(msgs))
	}
}

func accountID(t *testing.T, accountPath string) int64 {
	t.Helper()
	var id int64
	for _, c := range strings.TrimPrefix(accountPath, "/accounts/") {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + int64(c-'0')
	}
	if id == 0 {
		t.Fatalf("no account ID in %q", accountPath)
	}
	return id
}
