package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// TestObjectActions walks issue 18's live state and safer actions in the
// browser, axe-clean at each step: a SIP user's registration; Generate
// Password's dialog naming the user (Cancel keeps the password, OK shows a
// new one); a CLI pattern edited in place (a refused regex shown in the
// row, then saved); a DID deleted through its named dialog; and a Blocked
// IP endpoint unblocked in one click, back on the same page.
func TestObjectActions(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	s.login(opUser, opPass, 0)
	acme := s.account("Acme", 10)
	u := store.SIPUser{AccountID: acme.ID, Username: "1001"}
	must(t, s.svc.CreateSIPUser(ctx, provision.Operator, &u))
	ep := store.IPEndpoint{AccountID: acme.ID, Address: "198.51.100.7", Direction: store.DirSends}
	if _, err := s.svc.CreateEndpoint(ctx, provision.Operator, &ep); err != nil {
		t.Fatal(err)
	}
	pat := store.CLIPattern{AccountID: acme.ID, Pattern: "442071234567"}
	must(t, s.svc.CreateCLIPattern(ctx, provision.Operator, &pat))
	did := store.DID{AccountID: acme.ID, Number: "+442071234568", SIPUserID: &u.ID}
	must(t, s.svc.CreateDID(ctx, provision.Operator, &did))
	ban := store.Ban{Address: "198.51.100.0/24", Reason: "scanner network", ExpiresAt: time.Now().Add(time.Hour)}
	if _, err := s.svc.CreateBan(ctx, provision.Operator, &ban); err != nil {
		t.Fatal(err)
	}
	s.live.mu.Lock()
	s.live.bindings = []live.Binding{{Username: "1001", SIPUserID: u.ID, AccountID: acme.ID, Contact: "sip:1001@10.0.0.20:5060;ob",
		Source: "192.0.2.50:40000", Transport: "udp", Expires: time.Now().Add(50 * time.Minute), UserAgent: "Yealink SIP-T54W", LatencyMS: 18.4}}
	s.live.mu.Unlock()

	op := newTab(t, newBrowser(t), s.url)
	op.signIn(opUser, opPass, "/")
	acct := fmt.Sprintf("/accounts/%d", acme.ID)

	// The user page: registered, from where, with which agent.
	userPage := fmt.Sprintf("%s/users/%d", acct, u.ID)
	op.open(userPage, http.StatusOK)
	op.wantContains("#reg-state", "Registered 1 device")
	op.wantContains("#reg-contacts", "Yealink SIP-T54W")

	// Generate Password: Cancel changes nothing; OK shows the new one.
	want := "Replace the password of SIP user 1001 (account Acme)? Phones using the old one stop registering."
	dialog := op.answerDialog(false)
	op.click("#generate-password")
	if msg := <-dialog; msg != want {
		t.Errorf("Generate Password asks %q, want %q", msg, want)
	}
	if n := op.eval(`String(document.querySelectorAll("#secret-value").length)`); n != "0" {
		t.Error("Cancel still generated a password")
	}
	dialog = op.answerDialog(true)
	op.submit("#generate-password", http.StatusOK)
	<-dialog
	if pw := op.text("#secret-value"); len(pw) != 24 {
		t.Errorf("after OK: password %q", pw)
	}

	// Edit a CLI pattern in place.
	row := fmt.Sprintf("#cli-%d", pat.ID)
	op.open(acct+"/cli", http.StatusOK)
	op.click(row + " a[aria-label^='Edit']")
	op.do("wait for the row form", chromedp.WaitVisible(chromedp.CSS(row+".editing #e-f-pattern")))
	op.settle("the row as a form")
	if got := op.eval(`document.activeElement.id`); got != "e-f-pattern" {
		t.Errorf("after Edit the focus is on %q, want the row's first input", got)
	}
	op.typeIn("#e-f-pattern", "^(44")
	op.click("#e-f-regex")
	op.expect(fmt.Sprintf("%s%s/cli/%d", s.url, acct, pat.ID)) // 422: refused
	op.click(row + " button[type=submit]")
	op.do("wait for the row's error", chromedp.WaitVisible(chromedp.CSS("#e-f-pattern-err")))
	op.wantText("#e-f-pattern-err", "invalid RE2 regex: missing closing ) in ^(44")
	op.settle("the row with its error")
	if got := op.eval(`document.activeElement.id`); got != "e-f-pattern" {
		t.Errorf("after a refused Save the focus is on %q, want the input in error", got)
	}
	op.typeIn("#e-f-pattern", `^\+4420\d{8}$`)
	op.click(row + " button[type=submit]")
	op.do("wait for the saved row", chromedp.WaitVisible(chromedp.CSS(row+":not(.editing) code")))
	op.wantText(row+" code", `^\+4420\d{8}$`)
	if p, _ := s.svc.GetCLIPattern(ctx, provision.Operator, pat.ID); p.Pattern != `^\+4420\d{8}$` || !p.Regex {
		t.Errorf("after Save: %+v", p)
	}
	op.settle("the saved row")
	if got := op.eval(`document.activeElement.getAttribute("aria-label") || ""`); got != `Edit CLI pattern ^\+4420\d{8}$` {
		t.Errorf("after Save the focus is on %q, want the row's Edit button", got)
	}

	// Without script the delete asks on a page of its own (axe-clean);
	// Cancel goes back and keeps the pattern.
	op.do("drop the dialog", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`document.querySelector("#cli-%d form[data-confirm]").removeAttribute("data-confirm")`, pat.ID)))
	op.submit(row+" button.danger", http.StatusOK)
	op.wantText("#confirm-question", `Delete CLI pattern ^\+4420\d{8}$ of account Acme?`)
	if loc := op.submit("#confirm-no", http.StatusOK); loc != acct+"/cli" {
		t.Errorf("Cancel went to %s", loc)
	}
	if _, err := s.svc.GetCLIPattern(ctx, provision.Operator, pat.ID); err != nil {
		t.Errorf("the pattern is gone after Cancel: %v", err)
	}

	// Delete a DID: the dialog names it.
	op.open(acct+"/dids", http.StatusOK)
	dialog = op.answerDialog(true)
	op.submit(fmt.Sprintf("#did-%d button[aria-label^='Delete']", did.ID), http.StatusOK)
	if msg := <-dialog; msg != "Delete DID +442071234568 of account Acme? Calls to it are no longer accepted." {
		t.Errorf("DID delete asks %q", msg)
	}
	op.wantContains(".alert.ok", "DID 442071234568 deleted.")

	// The endpoint's Advanced tab: egress credentials only while Direction
	// is Receives; the seed's warning links to the Parameter Rewrite tab.
	op.open(fmt.Sprintf("%s/ip/%d", acct, ep.ID), http.StatusOK)
	op.click("#tab-advanced")
	shown := `(() => { const i = document.getElementById("f-username"); return String(!i.closest(".field").hidden && !i.disabled); })()`
	if v := op.eval(shown); v != "false" {
		t.Error("a sending endpoint shows its egress username")
	}
	op.click("#tab-basic")
	op.choose("#f-direction", "receives")
	if v := op.eval(shown); v != "true" {
		t.Error("Direction Receives does not show the egress username")
	}
	op.click("#tab-advanced")
	op.wantContains("#advanced-warn", "Do NOT use these fields. Use the Parameter Rewrite tab.")
	op.click("#advanced-warn a[data-tab=rewrite]")
	op.wantText("[role=tab][aria-selected=true]", "Parameter Rewrite")
	op.axe("the Parameter Rewrite tab, from the warning")

	// A Blocked endpoint: Unblock, back on the same page.
	op.open(acct, http.StatusOK)
	op.wantContains(".blocked", "Blocked by the firewall ban 198.51.100.0/24: scanner network")
	if loc := op.submit("button[aria-label='Unblock 198.51.100.0/24']", http.StatusOK); loc != acct {
		t.Errorf("after Unblock: at %s, want %s", loc, acct)
	}
	op.wantContains(".alert.ok", "Unblocked 198.51.100.0/24")
	if n := op.eval(`String(document.querySelectorAll(".blocked").length)`); n != "0" {
		t.Error("still Blocked after Unblock")
	}
}
