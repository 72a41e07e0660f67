package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// ---- The audit trail: who changed what, newest first.

// auditObjectLabels name the audit trail's objects (provision.AuditObjects).
var auditObjectLabels = map[string]string{
	"account": "Account", "ip_endpoint": "IP endpoint", "sip_user": "SIP user", "cli_pattern": "CLI pattern",
	"did": "DID", "rewrite_rule": "Rewrite rule", "profile": "SIP profile", "token": "API token", "login": "Portal login",
	"ban": "Ban", "voicemail_message": "Voicemail message", "voicemail_greeting": "Voicemail greeting",
}

// auditActionLabels name the audit trail's actions (provision.AuditActions).
var auditActionLabels = map[string]string{
	store.AuditCreate: "Create", store.AuditUpdate: "Update", store.AuditDelete: "Delete",
	store.AuditResetPassword: "Reset password", store.AuditResetPIN: "Reset PIN", store.AuditBan: "Ban", store.AuditUnban: "Unban",
}

func labelOf(labels map[string]string, v string) string {
	if l, ok := labels[v]; ok {
		return l
	}
	return v
}

// auditFilterParams are the Audit page's query parameters (object_id is
// the form's half of object=kind:id).
var auditFilterParams = []string{"object", "object_id", "actor", "action", "since", "until", "account"}

type auditData struct {
	Form     *form
	Fields   []*field
	Refused  bool // the filter was refused: no entries were read
	Filtered bool
	Items    []auditRow
	Pager    pager
	Names    map[int64]string // account names (operator)
}

// auditRow is one entry as the page shows it.
type auditRow struct {
	store.AuditEntry
	ActionLabel string
	Target      auditTarget
	Changes     []auditChange
	Before      bool // show the values before (not for a create)
	After       bool // show the values after (not for a delete)
}

// auditTarget is the changed object: what it is, its page if it has one.
type auditTarget struct {
	Label, Name, Link string
	Gone              bool // it no longer exists
}

// auditChange is one changed field, its values as text.
type auditChange struct{ Field, Before, After string }

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	f := newForm(auditValues(r.URL.Query(), ss.Caller.Operator))
	d := auditData{Form: f}
	for _, p := range auditFilterParams {
		d.Filtered = d.Filtered || f.get(p) != ""
	}
	status := http.StatusOK
	filter, ok := s.auditFilter(f)
	if !ok {
		status, d.Refused = http.StatusUnprocessableEntity, true
	} else {
		pg := listView(r, listSpec{keys: store.AuditSorts, defKey: "time", defDesc: true})
		filter.Page = pg.store()
		items, total, err := s.svc.ListAudit(r.Context(), ss.Caller, filter)
		if err != nil {
			return err
		}
		if s.pastEnd(w, r, pg.done(total), len(items)) {
			return nil
		}
		d.Items, d.Pager = s.auditRows(r.Context(), ss.Caller, items), pg.done(total)
		if ss.Caller.Operator {
			var ids []int64
			for _, e := range items {
				if e.AccountID != nil {
					ids = append(ids, *e.AccountID)
				}
			}
			d.Names = s.accountNames(r, ss, ids)
		}
	}
	d.Fields = auditFields(f, ss.Caller.Operator)
	if ss.Caller.Operator {
		s.accountPicker(r, ss, d.Fields[len(d.Fields)-1])
	}
	f.finish()
	s.render(w, r, status, "audit.html", page{Title: "Audit log", S: ss, Nav: "audit", Data: d})
	return nil
}

// auditValues are the filter form's values from the query: object=kind:id
// splits into its two inputs. An account login has no account filter (it
// sees its own account's entries only).
func auditValues(q url.Values, operator bool) url.Values {
	v := url.Values{}
	for _, p := range auditFilterParams {
		v.Set(p, q.Get(p))
	}
	if kind, id, ok := strings.Cut(v.Get("object"), ":"); ok && v.Get("object_id") == "" {
		v.Set("object", kind)
		v.Set("object_id", id)
	}
	if !operator {
		v.Del("account")
	}
	return v
}

// auditFilter reads the filter; a refused one has its errors on f.
func (s *Server) auditFilter(f *form) (store.AuditFilter, bool) {
	object := f.get("object")
	if id := f.get("object_id"); id != "" {
		switch n, err := strconv.ParseInt(id, 10, 64); {
		case err != nil || n <= 0:
			f.fail("object_id", fmt.Sprintf("%q: must be a positive number", id))
		case object == "":
			f.fail("object_id", "choose the kind of object too")
		default:
			object += ":" + id
		}
	}
	if f.HasErrors() {
		return store.AuditFilter{}, false
	}
	filter, err := provision.ParseAuditFilter(func(name string) string {
		if name == "object" {
			return object
		}
		return f.get(name)
	}, s.now())
	if err != nil {
		f.refuse(err)
		return filter, false
	}
	return filter, true
}

func auditFields(f *form, operator bool) []*field {
	objects := []string{"", "Any object"}
	for _, o := range provision.AuditObjects {
		objects = append(objects, o, labelOf(auditObjectLabels, o))
	}
	actions := []string{"", "Any action"}
	for _, a := range provision.AuditActions {
		actions = append(actions, a, labelOf(auditActionLabels, a))
	}
	when := "How long ago (24h, 30m) or a time (2026-12-07T20:00:00Z)."
	fields := []*field{
		f.field("object", "Object", "select").choices(objects...),
		f.field("object_id", "Object ID", "number"),
		f.field("actor", "Who", "text").ph("login:alice").help("Part of a name: login:…, token:…, operator, firewall …"),
		f.field("action", "Action", "select").choices(actions...),
		f.field("since", "Since", "text").ph("24h").help(when),
		f.field("until", "Until", "text").help(when),
	}
	if operator {
		fields = append(fields, f.field("account", "Account", "number")) // a select of accounts: Server.accountPicker
	}
	return fields
}

// auditRows prepares entries for the page, looking up each changed
// object's page once.
func (s *Server) auditRows(ctx context.Context, c provision.Caller, items []store.AuditEntry) []auditRow {
	targets := map[string]auditTarget{}
	rows := make([]auditRow, len(items))
	for i, e := range items {
		key := e.Object + ":" + strconv.FormatInt(e.ObjectID, 10)
		t, ok := targets[key]
		if !ok {
			t = s.auditTarget(ctx, c, e)
			targets[key] = t
		}
		if t.Name == "" {
			t.Name = nameInChanges(e.Changes)
		}
		rows[i] = auditRow{AuditEntry: e, ActionLabel: labelOf(auditActionLabels, e.Action), Target: t, Changes: auditChanges(e.Changes),
			Before: e.Action != store.AuditCreate && e.Action != store.AuditBan,
			After:  e.Action != store.AuditDelete && e.Action != store.AuditUnban}
	}
	return rows
}

// auditTarget finds an entry's object: its name and page when it still
// exists and has one.
func (s *Server) auditTarget(ctx context.Context, c provision.Caller, e store.AuditEntry) auditTarget {
	t := auditTarget{Label: labelOf(auditObjectLabels, e.Object)}
	var err error
	switch e.Object {
	case "account":
		var a store.Account
		if a, err = s.svc.GetAccount(ctx, c, e.ObjectID); err == nil {
			t.Name, t.Link = a.Name, fmt.Sprintf("/accounts/%d", a.ID)
		}
	case "ip_endpoint":
		var ep store.IPEndpoint
		if ep, err = s.svc.GetEndpoint(ctx, c, e.ObjectID); err == nil {
			t.Name, t.Link = ep.Address, fmt.Sprintf("/accounts/%d/ip/%d", ep.AccountID, ep.ID)
		}
	case "sip_user":
		var u store.SIPUser
		if u, err = s.svc.GetSIPUser(ctx, c, e.ObjectID); err == nil {
			t.Name, t.Link = u.Username, fmt.Sprintf("/accounts/%d/users/%d", u.AccountID, u.ID)
		}
	case "rewrite_rule":
		var rule store.RewriteRule
		if rule, err = s.svc.GetRewriteRule(ctx, c, e.ObjectID); err == nil {
			t.Name = rule.Match + " → " + rule.Replacement
			t.Link, err = s.ruleOwnerPage(ctx, c, rule)
		}
	case "profile":
		if !c.Operator {
			return t
		}
		var p store.Profile
		if p, err = s.svc.GetProfile(ctx, c, e.ObjectID); err == nil {
			t.Name, t.Link = p.Name, fmt.Sprintf("/profiles/%d", p.ID)
		}
	default:
		return t
	}
	if pe, ok := provision.AsError(err); ok && pe.Kind == provision.NotFound {
		t.Gone = true
	}
	return t
}

// ruleOwnerPage is the Parameter Rewrite tab of a rule's owner.
func (s *Server) ruleOwnerPage(ctx context.Context, c provision.Caller, rule store.RewriteRule) (string, error) {
	if rule.OwnerKind == store.OwnerEndpoint {
		ep, err := s.svc.GetEndpoint(ctx, c, rule.OwnerID)
		return fmt.Sprintf("/accounts/%d/ip/%d?tab=rewrite", ep.AccountID, ep.ID), err
	}
	u, err := s.svc.GetSIPUser(ctx, c, rule.OwnerID)
	return fmt.Sprintf("/accounts/%d/users/%d?tab=rewrite", u.AccountID, u.ID), err
}

// nameInChanges is the name of an object that is gone, from its entry.
func nameInChanges(ch map[string]store.FieldChange) string {
	for _, k := range []string{"name", "address", "username", "number", "pattern", "match"} {
		c, ok := ch[k]
		if !ok {
			continue
		}
		for _, v := range []any{c.After, c.Before} {
			if s, ok := v.(string); ok && s != "" {
				return s
			}
		}
	}
	return ""
}

func auditChanges(ch map[string]store.FieldChange) []auditChange {
	out := make([]auditChange, 0, len(ch))
	for k, c := range ch {
		out = append(out, auditChange{Field: k, Before: auditValue(c.Before), After: auditValue(c.After)})
	}
	slices.SortFunc(out, func(a, b auditChange) int { return strings.Compare(a.Field, b.Field) })
	return out
}

// auditValue is a field's value as text: numbers as written, lists
// comma-separated, an empty string or nothing said so.
func auditValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "(none)"
	case string:
		if v == "" {
			return "(empty)"
		}
		return v
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		if len(v) == 0 {
			return "(none)"
		}
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = auditValue(x)
		}
		return strings.Join(parts, ", ")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
