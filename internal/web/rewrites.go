package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/rewritegen"
	"github.com/sipward/sipward/internal/store"
)

// rewriteView is the Parameter Rewrite tab: the rules, the form that adds
// one, the "Generate from examples" panel that fills that form, and the
// "Testing Input" box with its result.
type rewriteView struct {
	Base      string   // .../rewrites
	Owner     string   // "IP endpoint 203.0.113.7", "SIP user 1001"
	OwnerURL  string   // the owner's page
	Edit      *rowEdit // the rule edited in place, if any
	Rules     []store.RewriteRule
	RuleForm  *form
	Rule      []*field
	Filled    bool // RuleForm holds a generated rule, not yet saved
	GenForm   *form
	Gen       []*field
	Generated *genView
	TestForm  *form
	Test      []*field
	Result    *testResult
	Focus     bool // open this tab
	OOB       bool // an htmx answer: the filled rule form goes out of band
	Status    int  // the page's status; 0: 200
	CSRF      string
}

// Ask is the question that confirms the deletion of rule, at 0-based
// position i.
func (rw *rewriteView) Ask(i int, rule store.RewriteRule) string {
	return ask("delete-rule", ruleName(i+1, rule), rw.Owner)
}

// EditLink is the Edit button of rule, at 0-based position i.
func (rw *rewriteView) EditLink(i int, rule store.RewriteRule) editLink {
	return editLink{Href: fmt.Sprintf("%s?tab=rewrite&edit=%d", rw.OwnerURL, rule.ID), Row: fmt.Sprintf("rule-%d", rule.ID),
		Label: fmt.Sprintf("rule %d", i+1)}
}

// ruleName names a rule by its position and what it does: "2 (destination:
// prefix 00 → +)".
func ruleName(pos int, r store.RewriteRule) string {
	kind, typ := "prefix", "destination"
	if r.Regex {
		kind = "regex"
	}
	if r.Type == store.RewriteCLI {
		typ = "CLI"
	}
	match, repl := r.Match, r.Replacement
	if match == "" {
		match = "(every number)"
	}
	if repl == "" {
		repl = "(nothing)"
	}
	return fmt.Sprintf("%d (%s: %s %s → %s)", pos, typ, kind, match, repl)
}

// status is the status of the page that shows rw (which may be nil).
func (rw *rewriteView) status() int {
	if rw == nil {
		return http.StatusOK
	}
	if rw.Status == 0 {
		return rw.Edit.status()
	}
	return rw.Status
}

// genView is the generator's answer.
type genView struct {
	Result   *rewritegen.Result // one rule maps every example
	Conflict string             // no single rule does: why
	Groups   []genGroup         // … and the rule proposed for each group of examples
	Used     int                // the group whose rule filled the form (1-based); 0: none
}

// genGroup is one proposed rule of a conflict, numbered from 1.
type genGroup struct {
	N int
	rewritegen.Group
}

// Summary is the short answer a screen reader hears.
func (g *genView) Summary() string {
	switch {
	case g.Result != nil:
		return "Rule generated and filled in below. Nothing is saved until you press Add rule."
	case g.Used > 0:
		return fmt.Sprintf("No single rule fits. The rule of group %d is filled in below.", g.Used)
	}
	return fmt.Sprintf("No single rule fits: %d rules proposed.", len(g.Groups))
}

// testResult is the answer of the Testing Input box.
type testResult struct {
	provision.RewriteTest
	Position int               // 1-based position of the rule that fired
	Rule     store.RewriteRule // the rule that fired
}

func (s *Server) fillRewrite(r *http.Request, ss *session, rw *rewriteView, kind store.OwnerKind, ownerID int64, ownerURL string) error {
	rules, _, err := s.svc.ListRewriteRules(r.Context(), ss.Caller, store.RewriteFilter{OwnerKind: kind, OwnerID: ownerID, Page: store.Page{Limit: 1000}})
	if err != nil {
		return err
	}
	rw.Base, rw.OwnerURL = ownerURL+"/rewrites", ownerURL
	rw.CSRF = ss.CSRF
	rw.Rules = rules
	if rw.Edit == nil {
		rw.Edit = rw.ruleEdit(editID(r))
	}
	if rw.RuleForm == nil {
		rw.RuleForm = newForm(url.Values{"type": {"destination"}})
	}
	f := rw.RuleForm
	rw.Rule = []*field{
		f.field("type", "Rewrites", "select").choices("destination", "Destination (dialled number)", "cli", "CLI (caller ID)"),
		f.field("match", "Match", "text").ph("00").help("A prefix, or an RE2 regex when Regex is ticked. An empty prefix matches every number."),
		f.field("regex", "Regex", "checkbox"),
		f.field("replacement", "Replace with", "text").ph("+").help("Replaces the prefix; with a regex, $1 … name its groups."),
		f.field("order", "Order", "number").help("Rules are tried in ascending order; the first that matches fires."),
	}
	f.finish()
	if rw.TestForm == nil {
		rw.TestForm = newForm(url.Values{"type": {"destination"}})
	}
	t := rw.TestForm
	rw.Test = []*field{
		t.field("type", "Number", "select").choices("destination", "Destination", "cli", "CLI"),
		t.field("input", "Testing Input", "text").req().ph("0044201234567").auto("off"),
	}
	for _, fl := range rw.Test {
		fl.ID = "t-" + fl.ID // two forms on one page: distinct IDs
	}
	t.finish()
	rw.Gen = genFields(rw)
	return nil
}

// genFields are the inputs of the "Generate from examples" panel.
func genFields(rw *rewriteView) []*field {
	if rw.GenForm == nil {
		rw.GenForm = newForm(url.Values{"type": {"destination"}})
	}
	g := rw.GenForm
	fields := []*field{
		g.field("type", "Rewrites", "select").choices("destination", "Destination (dialled number)", "cli", "CLI (caller ID)"),
		g.field("examples", "Examples", "textarea").req().ph("01782123456 → 441782123456\n02071234567 → 442071234567").
			help("One a line: a number as it arrives → what it should become. Also written input -> output, input=output, input,output, or the two separated by a space."),
		g.field("unchanged", "Numbers to leave unchanged", "textarea").ph("441782123456").
			help("Optional: numbers the rule must not match, one a line (or separated by commas or spaces)."),
	}
	for _, fl := range fields {
		fl.ID = "g-" + fl.ID // three forms on one page: distinct IDs
	}
	g.finish()
	return fields
}

// rewriteOwner resolves the owner in the path (an IP endpoint or SIP user of
// the account) and the URL of its page.
func (s *Server) rewriteOwner(r *http.Request, ss *session) (store.Account, store.OwnerKind, int64, string, error) {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return a, "", 0, "", err
	}
	if strings.Contains(r.URL.Path, "/ip/") {
		e, err := s.endpointOf(r, ss, a)
		return a, store.OwnerEndpoint, e.ID, fmt.Sprintf("/accounts/%d/ip/%d", a.ID, e.ID), err
	}
	u, err := s.userOf(r, ss, a)
	return a, store.OwnerSIPUser, u.ID, fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID), err
}

// renderOwner shows the owner's page with rw in its Parameter Rewrite tab.
func (s *Server) renderOwner(w http.ResponseWriter, r *http.Request, ss *session, a store.Account, kind store.OwnerKind, id int64, rw *rewriteView) error {
	rw.Focus = true
	if kind == store.OwnerEndpoint {
		e, err := s.svc.GetEndpoint(r.Context(), ss.Caller, id)
		if err != nil {
			return err
		}
		return s.renderEndpoint(w, r, ss, a, &e, newForm(endpointValues(e)), rw)
	}
	u, err := s.svc.GetSIPUser(r.Context(), ss.Caller, id)
	if err != nil {
		return err
	}
	return s.renderUser(w, r, ss, a, &u, userView{Form: newForm(userValues(u)), Rewrite: rw})
}

func (s *Server) rewriteCreate(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, kind, id, ownerURL, err := s.rewriteOwner(r, ss)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	rule := store.RewriteRule{OwnerKind: kind, OwnerID: id, Type: store.RewriteType(f.get("type")), Regex: f.on("regex"),
		Match: f.get("match"), Replacement: f.get("replacement"), Order: f.int("order")}
	if !f.HasErrors() {
		err := s.svc.CreateRewriteRule(r.Context(), ss.Caller, &rule)
		if err == nil {
			s.redirect(w, r, ownerURL+"?tab=rewrite", flash{"ok", "Rewrite rule added."})
			return nil
		}
		if !f.refuse(err) {
			return err
		}
	}
	return s.renderOwner(w, r, ss, a, kind, id, &rewriteView{RuleForm: f})
}

// ruleOwner is the endpoint or SIP user in a rewrite rule's URL.
type ruleOwner struct {
	account store.Account
	kind    store.OwnerKind
	id      int64
	url     string // the owner's page
}

// ownedRule loads the rule {rid} of the owner in the URL; it answers 404
// when the rule is another owner's.
func (s *Server) ownedRule(r *http.Request, ss *session) (ruleOwner, store.RewriteRule, error) {
	var o ruleOwner
	var err error
	if o.account, o.kind, o.id, o.url, err = s.rewriteOwner(r, ss); err != nil {
		return o, store.RewriteRule{}, err
	}
	rid, err := pathID(r, "rid")
	if err != nil {
		return o, store.RewriteRule{}, err
	}
	rule, err := s.svc.GetRewriteRule(r.Context(), ss.Caller, rid)
	if err != nil {
		return o, store.RewriteRule{}, err
	}
	if rule.OwnerKind != o.kind || rule.OwnerID != o.id {
		return o, store.RewriteRule{}, errNotFound
	}
	return o, rule, nil
}

func (s *Server) rewriteDelete(w http.ResponseWriter, r *http.Request, ss *session) error {
	o, rule, err := s.ownedRule(r, ss)
	if err != nil {
		return err
	}
	rid, ownerURL := rule.ID, o.url
	if !s.confirmed(w, r, ss, "Delete rule", ownerURL+"?tab=rewrite", s.ruleQuestion(r, ss, rule)) {
		return nil
	}
	if err := s.svc.DeleteRewriteRule(r.Context(), ss.Caller, rid); err != nil {
		return err
	}
	s.redirect(w, r, ownerURL+"?tab=rewrite", flash{"ok", "Rewrite rule deleted."})
	return nil
}

// ruleQuestion confirms the deletion of rule, named by its position among
// its owner's rules as the tab numbers them.
func (s *Server) ruleQuestion(r *http.Request, ss *session, rule store.RewriteRule) string {
	rules, _, err := s.svc.ListRewriteRules(r.Context(), ss.Caller, store.RewriteFilter{OwnerKind: rule.OwnerKind, OwnerID: rule.OwnerID, Page: store.Page{Limit: 1000}})
	pos := 0
	for i, x := range rules {
		if err == nil && x.ID == rule.ID {
			pos = i
		}
	}
	owner := "SIP user"
	if rule.OwnerKind == store.OwnerEndpoint {
		owner = "IP endpoint"
		if e, err := s.svc.GetEndpoint(r.Context(), ss.Caller, rule.OwnerID); err == nil {
			owner += " " + e.Address
		}
	} else if u, err := s.svc.GetSIPUser(r.Context(), ss.Caller, rule.OwnerID); err == nil {
		owner += " " + u.Username
	}
	rw := &rewriteView{Owner: owner}
	return rw.Ask(pos, rule)
}

// rewriteTest runs the Testing Input through the owner's rules. htmx gets
// the result box alone; a plain form post gets the whole page.
func (s *Server) rewriteTest(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, kind, id, ownerURL, err := s.rewriteOwner(r, ss)
	if err != nil {
		return err
	}
	rw := &rewriteView{TestForm: newForm(r.PostForm)}
	t := rw.TestForm
	res, err := s.svc.TestRewrite(r.Context(), ss.Caller, kind, id, store.RewriteType(t.get("type")), t.get("input"))
	if err != nil {
		if !t.refuse(err) {
			return err
		}
	} else {
		rw.Result = &testResult{RewriteTest: res}
	}
	if rw.Result != nil && res.Matched {
		rules, _, err := s.svc.ListRewriteRules(r.Context(), ss.Caller, store.RewriteFilter{OwnerKind: kind, OwnerID: id, Page: store.Page{Limit: 1000}})
		if err != nil {
			return err
		}
		for i, rule := range rules {
			if rule.ID == res.RuleID {
				rw.Result.Position, rw.Result.Rule = i+1, rule
			}
		}
	}
	if isHTMX(r) {
		if err := s.fillRewrite(r, ss, rw, kind, id, ownerURL); err != nil {
			return err
		}
		s.fragment(w, r, "owner.html", "rewrite_result", rw)
		return nil
	}
	return s.renderOwner(w, r, ss, a, kind, id, rw)
}

func storedRuleValues(r store.RewriteRule) url.Values {
	v := url.Values{"type": {string(r.Type)}, "match": {r.Match}, "replacement": {r.Replacement}, "order": {fmt.Sprint(r.Order)}}
	if r.Regex {
		v.Set("regex", "on")
	}
	return v
}

// ruleEdit is the row of rule id (?edit=) as a form, or nil.
func (rw *rewriteView) ruleEdit(id int64) *rowEdit {
	for _, rule := range rw.Rules {
		if rule.ID == id {
			return rw.ruleRow(id, newForm(storedRuleValues(rule)))
		}
	}
	return nil
}

func (rw *rewriteView) ruleRow(id int64, f *form) *rowEdit {
	e := &rowEdit{ID: id, RowID: fmt.Sprintf("rule-%d", id), Cols: 6, Action: fmt.Sprintf("%s/%d", rw.Base, id),
		Cancel: rw.OwnerURL + "?tab=rewrite", Label: "rewrite rule", Form: f, CSRF: rw.CSRF}
	return e.build(
		f.field("type", "Rewrites", "select").choices("destination", "Destination (dialled number)", "cli", "CLI (caller ID)"),
		f.field("match", "Match", "text"),
		f.field("regex", "Regex", "checkbox"),
		f.field("replacement", "Replace with", "text"),
		f.field("order", "Order", "number"))
}

// rewriteUpdate saves a rule edited in place; a refused change shows the
// owner's page with the row still a form, its errors in it.
func (s *Server) rewriteUpdate(w http.ResponseWriter, r *http.Request, ss *session) error {
	o, rule, err := s.ownedRule(r, ss)
	if err != nil {
		return err
	}
	a, kind, id, ownerURL, rid := o.account, o.kind, o.id, o.url, rule.ID
	f := newForm(r.PostForm)
	rule.Type, rule.Regex, rule.Match, rule.Replacement, rule.Order = store.RewriteType(f.get("type")), f.on("regex"), f.get("match"), f.get("replacement"), f.int("order")
	if !f.HasErrors() {
		err := s.svc.UpdateRewriteRule(r.Context(), ss.Caller, &rule)
		if err == nil {
			s.redirect(w, r, fmt.Sprintf("%s?tab=rewrite#rule-%d", ownerURL, rid), flash{"ok", "Rewrite rule saved."})
			return nil
		}
		if !f.refuse(err) {
			return err
		}
	}
	rw := &rewriteView{Base: ownerURL + "/rewrites", OwnerURL: ownerURL, CSRF: ss.CSRF}
	rw.Edit = rw.ruleRow(rid, f)
	return s.renderOwner(w, r, ss, a, kind, id, rw)
}
