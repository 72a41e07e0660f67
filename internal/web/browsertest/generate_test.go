package browsertest

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// TestGenerateRule works out a rewrite rule from examples in an IP
// endpoint's Parameter Rewrite tab: a conflict first, whose "Use this rule"
// fills the form, then examples one rule maps. The generated rule fills the
// Add a rule form without a page load and without saving; Add rule saves
// it, and the Audit page shows its creation by the signed-in login.
func TestGenerateRule(t *testing.T) {
	s := newServer(t)
	s.login(opUser, opPass, 0)
	a := s.account("Acme Telecom", 10)
	ep := store.IPEndpoint{AccountID: a.ID, Address: "203.0.113.7"}
	if _, err := s.svc.CreateEndpoint(context.Background(), provision.Operator, &ep); err != nil {
		t.Fatal(err)
	}
	op := newTab(t, newBrowser(t), s.url)
	op.signIn(opUser, opPass, "/")
	page := path("/accounts/%d/ip/%d", a.ID, ep.ID)
	op.open(page+"?tab=rewrite", http.StatusOK)
	op.wantText("[role=tab][aria-selected=true]", "Parameter Rewrite")
	op.wantContains("#gen-panel", "Fills in the rule below; nothing is saved until you press Add rule.")

	// A malformed example: 422, and htmx shows the error next to the field.
	op.typeIn("#g-f-examples", "0178 -> 44178\n990178 -> 1x")
	op.expect(s.url + page + "/rewrites/generate")
	op.click("#gen-submit")
	op.do("wait for the error", chromedp.WaitVisible(chromedp.CSS("#g-f-examples-err")))
	op.wantText("#g-f-examples-err", `line 2: output "1x": only digits, *, # and + are allowed`)
	op.wantContains("#gen-status", "Not generated")
	op.checkConsole("malformed example")

	// Examples no single rule maps: one rule per group, each usable.
	op.typeIn("#g-f-examples", "0178 -> 44178\n990178 = 178")
	op.click("#gen-submit")
	op.do("wait for the proposed rules", chromedp.WaitVisible(chromedp.CSS("#gen-use-2")))
	op.wantContains("#gen-conflict", "No single rule maps every example")
	op.click("#gen-use-2")
	op.do("wait for group 2's rule in the form",
		chromedp.Poll[chromedp.Void](`document.getElementById("f-match").value === "990" && document.getElementById("gen-use-1") !== null`))
	if got := op.value("#f-replacement"); got != "" {
		t.Errorf("group 2's rule: replacement %q, want empty", got)
	}
	op.checkConsole("use a proposed rule")

	// Examples one rule maps: the rule, its explanation and samples; the form filled in.
	op.typeIn("#g-f-examples", "01782123456 -> 441782123456\n02071234567 = 442071234567")
	op.typeIn("#g-f-unchanged", "441782123456")
	op.click("#gen-submit")
	op.do("wait for the generated rule", chromedp.WaitVisible(chromedp.CSS("#gen-rule")),
		chromedp.Poll[chromedp.Void](`document.getElementById("f-match").value === "0"`))
	op.wantText("#gen-rule", "prefix 0 → 44")
	op.wantText("#gen-explanation", "Strip the leading 0 and add 44.")
	op.wantContains("#gen-samples", "not matched")
	op.wantContains("#gen-status", "Rule generated and filled in below.")
	if got := op.value("#f-replacement"); got != "44" {
		t.Errorf("the form's replacement: %q, want 44", got)
	}
	if got := op.eval(`String(document.getElementById("f-regex").checked)`); got != "false" {
		t.Errorf("a prefix rule: Regex ticked %s", got)
	}
	if loc := op.location(); loc != page+"?tab=rewrite" {
		t.Errorf("generating loaded a page: at %s", loc)
	}
	op.checkConsole("generate")
	op.axe("generated rule")
	rules, _, err := s.svc.ListRewriteRules(context.Background(), provision.Operator, store.RewriteFilter{OwnerKind: store.OwnerEndpoint, OwnerID: ep.ID})
	if err != nil || len(rules) != 0 {
		t.Fatalf("before Add rule: rules %+v (%v), want none saved", rules, err)
	}

	// Add rule saves it.
	op.submit("#rule-form button[type=submit]", http.StatusOK)
	op.wantContains(".alert.ok", "Rewrite rule added.")
	op.wantContains("#panel-rewrite table", "Destination")
	if txt := op.text("#panel-rewrite tbody"); !strings.Contains(txt, "0 prefix") || !strings.Contains(txt, "44") {
		t.Errorf("the rules list after Add rule: %q", txt)
	}

	// The Audit page shows the rule's creation, by whom and how.
	op.open("/audit?object=rewrite_rule", http.StatusOK)
	row := op.text("table.audit tbody tr")
	for _, want := range []string{"login:" + opUser, "via web", "Create", "Rewrite rule 0", "match: 0", "replacement: 44", "type: destination"} {
		if !strings.Contains(row, want) {
			t.Errorf("the rule's audit entry %q lacks %q", row, want)
		}
	}
	op.submit("table.audit tbody tr td a", http.StatusOK)
	if loc := op.location(); loc != page+"?tab=rewrite" {
		t.Errorf("the audit entry's link leads to %s, want the endpoint's rewrite tab", loc)
	}
}
