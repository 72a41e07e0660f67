package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/rewritegen"
	"github.com/sipward/sipward/internal/store"
)

// genEnv is an account with an IP endpoint and a SIP user, an operator
// signed in, and the pages of the two rewrite owners.
func genEnv(t *testing.T) (*env, *browser, store.Account, []string) {
	t.Helper()
	e := newEnv(t)
	a := e.account("Acme", 20)
	e.login("root", opPass, 0)
	ep, u := e.rewriteOwners(t, a.ID)
	b := e.browser()
	b.mustSignIn("root", opPass)
	return e, b, a, []string{fmt.Sprintf("/accounts/%d/ip/%d", a.ID, ep.ID), fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)}
}

// TestGenerateFillsRuleForm: examples in, the rule shown with its
// explanation and samples and filled into the Add a rule form, nothing saved.
func TestGenerateFillsRuleForm(t *testing.T) {
	e, b, _, pages := genEnv(t)
	for _, page := range pages {
		v := url.Values{"type": {"cli"}, "examples": {"01782123456 → 441782123456\r\n\r\n02071234567 -> 442071234567\r\n"}, "unchanged": {"441782123456, 123"}}
		r := b.submit(page, page+"/rewrites/generate", v)
		if r.status != http.StatusOK {
			t.Fatalf("%s: generate: %d %s", page, r.status, textOf(r.body))
		}
		if valueOf(r.body, "f-match") != "0" || valueOf(r.body, "f-replacement") != "44" || strings.Contains(r.body, `name="regex" checked`) {
			t.Errorf("%s: the rule form holds match %q, replacement %q, want the prefix rule 0 → 44", page, valueOf(r.body, "f-match"), valueOf(r.body, "f-replacement"))
		}
		if !strings.Contains(r.body, `<select id="f-type" name="type"><option value="destination">Destination (dialled number)</option><option value="cli" selected>`) {
			t.Errorf("%s: the rule form's type is not CLI", page)
		}
		txt := textOf(r.body)
		for _, want := range []string{"Rule: prefix 0 → 44", "Strip the leading 0 and add 44.", "What it does to other numbers", "not matched: stays",
			"Fills in the rule below; nothing is saved until you press Add rule.", "Filled in from your examples"} {
			if !strings.Contains(txt, want) {
				t.Errorf("%s: the answer lacks %q: %s", page, want, txt)
			}
		}
		if !strings.Contains(r.body, `aria-selected="true">Parameter Rewrite`) {
			t.Errorf("%s: the answer does not open the Parameter Rewrite tab", page)
		}
		if !strings.Contains(r.body, ">01782123456 → 441782123456") {
			t.Errorf("%s: the examples typed are not kept", page)
		}
	}
	rules, _, _ := e.svc.ListRewriteRules(t.Context(), provision.Operator, store.RewriteFilter{})
	if len(rules) != 0 {
		t.Errorf("generating saved rules: %+v", rules)
	}

	// A regex rule ticks Regex; with htmx the answer is the panel and the
	// filled form out of band, not a page.
	page := pages[0]
	v := url.Values{"examples": {"01782123456=441782123456\n0044201234,44201234"}, "order": {"20"}, "csrf": {b.csrf(page)}}
	r := b.post(page+"/rewrites/generate", v, "HX-Request", "true")
	if r.status != http.StatusOK || strings.Contains(r.body, "<html") {
		t.Fatalf("htmx generate: %d, a whole page: %v", r.status, strings.Contains(r.body, "<html"))
	}
	if !strings.Contains(r.body, `<div id="rule-add" hx-swap-oob="true">`) || !strings.Contains(r.body, `<div id="gen-body">`) ||
		!strings.Contains(r.body, `<p id="gen-status" hx-swap-oob="innerHTML">Rule generated`) {
		t.Errorf("htmx generate: not the panel with the form out of band: %s", r.body)
	}
	if valueOf(r.body, "f-order") != "20" {
		t.Errorf("htmx generate: the order typed in the rule form became %q", valueOf(r.body, "f-order"))
	}
	if valueOf(r.body, "f-match") != `^(?:0044|0)(\d+)$` || valueOf(r.body, "f-replacement") != "44$1" || !strings.Contains(r.body, `name="regex" checked`) {
		t.Errorf("htmx generate: the form holds %q → %q, regex ticked %v", valueOf(r.body, "f-match"), valueOf(r.body, "f-replacement"),
			strings.Contains(r.body, `name="regex" checked`))
	}
}

// TestGenerateConflict shows each group's rule and fills the form with the
// one chosen.
func TestGenerateConflict(t *testing.T) {
	_, b, _, pages := genEnv(t)
	page := pages[1]
	examples := "0178 → 44178\n990178 = 178\n7 +17"
	r := b.submit(page, page+"/rewrites/generate", url.Values{"examples": {examples}})
	if r.status != http.StatusOK {
		t.Fatalf("conflict: %d %s", r.status, textOf(r.body))
	}
	txt := textOf(r.body)
	for _, want := range []string{"No single rule maps every example: the inputs 0178 and 990178 need different rules",
		"Rule 1: prefix 0 → 44", "Strip the leading 0 and add 44.", "Rule 2: prefix 990 → (nothing)", "Remove the tech prefix 990.",
		"Rule 3: prefix (empty: every number) → +1", "Examples: 990178 → 178"} {
		if !strings.Contains(txt, want) {
			t.Errorf("conflict: the answer lacks %q: %s", want, txt)
		}
	}
	for n := 1; n <= 3; n++ {
		if !strings.Contains(r.body, fmt.Sprintf(`id="gen-use-%d">Use this rule</button>`, n)) {
			t.Errorf("conflict: group %d has no Use this rule button", n)
		}
	}
	if valueOf(r.body, "f-match") != "" || strings.Contains(txt, "Filled in from your examples") {
		t.Error("conflict: the form is filled before a rule is chosen")
	}

	// "Use this rule" of group 2 posts the examples again and fills its rule in.
	r = b.submit(page, page+"/rewrites/generate", url.Values{"examples": {examples}, "use": {"2"}})
	if valueOf(r.body, "f-match") != "990" || valueOf(r.body, "f-replacement") != "" || !strings.Contains(textOf(r.body), "filled in below") {
		t.Errorf("use rule 2: the form holds %q → %q", valueOf(r.body, "f-match"), valueOf(r.body, "f-replacement"))
	}
	if !strings.Contains(r.body, "name=\"examples\" value=\"0178 → 44178\n990178 = 178\n7 &#43;17\"") {
		t.Error("the Use this rule forms do not carry the examples, lines and all")
	}
}

// TestGenerateBadInput answers 422 with the error next to the field, naming
// the line.
func TestGenerateBadInput(t *testing.T) {
	_, b, _, pages := genEnv(t)
	page := pages[0]
	for _, c := range []struct {
		v      url.Values
		id     string
		want   string
		header bool
	}{
		{url.Values{"examples": {"01782123456 → 441782123456\n\n02071234567 → 44abc"}}, "g-f-examples", `line 3: output "44abc": only digits, *, # and + are allowed`, false},
		{url.Values{"examples": {"01782123456 → 441782123456\n\n02071234567 → 44abc"}}, "g-f-examples", `line 3: output "44abc"`, true},
		{url.Values{"examples": {"hello"}}, "g-f-examples", `line 1: "hello": write it as input → output`, false},
		{url.Values{"examples": {"1 2 3"}}, "g-f-examples", `line 1: "1 2 3": write it as input → output`, false},
		{url.Values{"examples": {""}}, "g-f-examples", "at least one example is required", false},
		{url.Values{"examples": {"0178 → 44178\n0179 → 0179"}, "unchanged": {"123\n0178"}}, "g-f-unchanged",
			`line 2: "0178" is the input of the example on line 1, which the example changes to "44178"`, false},
		{url.Values{"examples": {"0178 → 44178\n0178 → 178"}}, "g-f-examples", `line 2: output "178": the example on line 1 maps the same input "0178" to "44178"`, false},
		{url.Values{"examples": {"0178 → 44178"}, "type": {"sms"}}, "g-f-type", `"sms": must be destination or cli`, false},
	} {
		c.v.Set("csrf", b.csrf(page))
		var r resp
		if c.header {
			r = b.post(page+"/rewrites/generate", c.v, "HX-Request", "true")
		} else {
			r = b.post(page+"/rewrites/generate", c.v)
		}
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%v (htmx %v): status %d, want 422", c.v, c.header, r.status)
		}
		if got := errorOf(r.body, c.id); !strings.HasPrefix(got, c.want) {
			t.Errorf("%v (htmx %v): error next to %s %q, want %q", c.v, c.header, c.id, got, c.want)
		}
		if strings.Contains(r.body, "Filled in from your examples") || strings.Contains(r.body, `id="rule-add"`) && valueOf(r.body, "f-match") != "" {
			t.Errorf("%v: bad input filled the rule form", c.v)
		}
	}
}

// TestGenerateAccess: a customer generates on its own endpoints as it tests
// rules there; another account's answer 404.
func TestGenerateAccess(t *testing.T) {
	e, _, a, pages := genEnv(t)
	other := e.account("Other Co", 10)
	theirs := store.IPEndpoint{AccountID: other.ID, Address: "198.51.100.20"}
	if _, err := e.svc.CreateEndpoint(t.Context(), provision.Operator, &theirs); err != nil {
		t.Fatal(err)
	}
	e.login("acme", acctPass, a.ID)
	b := e.browser()
	b.mustSignIn("acme", acctPass)
	v := url.Values{"examples": {"01782123456 → 441782123456"}}
	if r := b.submit(pages[0], pages[0]+"/rewrites/generate", v); r.status != http.StatusOK || valueOf(r.body, "f-match") != "0" {
		t.Errorf("customer on its endpoint: %d, match %q", r.status, valueOf(r.body, "f-match"))
	}
	for _, p := range []string{fmt.Sprintf("/accounts/%d/ip/%d/rewrites/generate", other.ID, theirs.ID),
		fmt.Sprintf("/accounts/%d/ip/%d/rewrites/generate", a.ID, theirs.ID)} {
		if r := b.submit(pages[0], p, v); r.status != http.StatusNotFound {
			t.Errorf("customer POST %s: %d, want 404", p, r.status)
		}
	}
}

// TestRefuseGen maps the generator's field names to lines of the textareas.
func TestRefuseGen(t *testing.T) {
	for _, c := range []struct {
		fe          rewritegen.FieldError
		field, want string
	}{
		{rewritegen.FieldError{Field: "examples[1].input", Msg: "is required"}, "examples", "line 4: input is required"},
		{rewritegen.FieldError{Field: "examples[9]", Msg: "odd"}, "examples", "an example: odd"},
		{rewritegen.FieldError{Field: "unchanged[0]", Msg: `"1" is examples[0].input`}, "unchanged", `line 2: "1" is the input of the example on line 1`},
		{rewritegen.FieldError{Field: "examples", Msg: "201 examples: at most 200 are allowed"}, "examples", "201 examples: at most 200 are allowed"},
	} {
		f := newForm(nil)
		refuseGen(f, &c.fe, []int{1, 4}, []int{2})
		if got := f.errs[c.field]; got != c.want {
			t.Errorf("%+v: error on %s %q, want %q", c.fe, c.field, got, c.want)
		}
	}
}

// rewriteOwners gives account aid an IP endpoint (192.0.2.10) and a SIP
// user (1001): the two kinds of rewrite rule owner.
func (e *env) rewriteOwners(t *testing.T, aid int64) (store.IPEndpoint, store.SIPUser) {
	t.Helper()
	ep := store.IPEndpoint{AccountID: aid, Address: "192.0.2.10"}
	if _, err := e.svc.CreateEndpoint(t.Context(), provision.Operator, &ep); err != nil {
		t.Fatal(err)
	}
	u := store.SIPUser{AccountID: aid, Username: "1001", Channels: new(2)}
	if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, &u); err != nil {
		t.Fatal(err)
	}
	return ep, u
}
