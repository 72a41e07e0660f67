package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// auditRowOf returns the text of the audit table's row of entry id.
func auditRowOf(t *testing.T, body string, id int64) string {
	t.Helper()
	start := strings.Index(body, fmt.Sprintf(`<tr id="audit-%d">`, id))
	if start < 0 {
		return ""
	}
	end := strings.Index(body[start:], "</tr>")
	return textOf(body[start : start+end])
}

// TestAuditPage changes an IP endpoint through its form and finds the
// change, by whom and how, on the Audit page and through the endpoint's
// "View audit log" link.
func TestAuditPage(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 20)
	e.login("root", opPass, 0)
	ep := store.IPEndpoint{AccountID: a.ID, Address: "192.0.2.10", Channels: 10}
	if _, err := e.svc.CreateEndpoint(t.Context(), provision.Operator, &ep); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn("root", opPass)
	page := fmt.Sprintf("/accounts/%d/ip/%d", a.ID, ep.ID)
	v := endpointValues(ep)
	v.Set("channels", "5")
	if r := b.submit(page, page, v); r.status != http.StatusSeeOther {
		t.Fatalf("save the endpoint: %d %s", r.status, textOf(r.body))
	}

	entries, _, err := e.svc.ListAudit(t.Context(), provision.Operator, store.AuditFilter{Object: "ip_endpoint", ObjectID: ep.ID, Action: store.AuditUpdate})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit entries of the update: %v, %+v", err, entries)
	}
	r := b.get("/audit")
	if r.status != http.StatusOK {
		t.Fatalf("GET /audit: %d %s", r.status, textOf(r.body))
	}
	row := auditRowOf(t, r.body, entries[0].ID)
	for _, want := range []string{"login:root", "via web from 127.0.0.1", "Update", "IP endpoint 192.0.2.10 #" + strconv.FormatInt(ep.ID, 10), "Acme", "channels : 10 → 5"} {
		if !strings.Contains(row, want) {
			t.Errorf("the update's row %q does not contain %q", row, want)
		}
	}
	if !strings.Contains(r.body, fmt.Sprintf(`<a href="/accounts/%d/ip/%d">IP endpoint 192.0.2.10</a>`, a.ID, ep.ID)) {
		t.Error("the row does not link to the endpoint's page")
	}
	if !strings.Contains(r.body, `<a href="/audit" aria-current="page">Audit</a>`) {
		t.Error("the navigation has no current Audit item")
	}

	// The endpoint's "View audit log" link shows its entries only: the create and the update.
	if p := b.get(page); !strings.Contains(p.body, fmt.Sprintf(`href="/audit?object=ip_endpoint:%d">View audit log</a>`, ep.ID)) {
		t.Fatal("the endpoint page has no View audit log link")
	}
	r = b.get(fmt.Sprintf("/audit?object=ip_endpoint:%d", ep.ID))
	if n := strings.Count(r.body, `<tr id="audit-`); n != 2 {
		t.Errorf("the endpoint's audit log shows %d entries, want 2 (create, update): %s", n, textOf(r.body))
	}
	if !strings.Contains(r.body, `<option value="ip_endpoint" selected>`) || valueOf(r.body, "f-object-id") != strconv.FormatInt(ep.ID, 10) {
		t.Error("the filter form does not show the object of the link")
	}
	if !strings.Contains(r.body, `href="/audit">Clear filters</a>`) {
		t.Error("a filtered page has no Clear filters link")
	}
	// A create shows only the values after, a delete only those before.
	r = b.get(fmt.Sprintf("/audit?object=ip_endpoint&object_id=%d&action=create", ep.ID))
	if txt := textOf(r.body); !strings.Contains(txt, "address : 192.0.2.10") || strings.Contains(txt, "address : (none) →") {
		t.Errorf("the create's changes: %s", txt)
	}
	if r := b.get("/audit?action=delete"); !strings.Contains(r.body, "No change matches these filters.") {
		t.Errorf("no deletes: %s", textOf(r.body))
	}
}

// TestAuditLinks checks the "View audit log" links of the account, IP
// endpoint and SIP user pages, for the operator and the customer portal.
func TestAuditLinks(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 20)
	e.login("root", opPass, 0)
	e.login("acme", acctPass, a.ID)
	ep, u := e.rewriteOwners(t, a.ID)
	acct := fmt.Sprintf("/accounts/%d", a.ID)
	links := map[string]string{
		acct:                        fmt.Sprintf("/audit?object=account:%d", a.ID),
		acct + "/settings":          fmt.Sprintf("/audit?object=account:%d", a.ID),
		acct + "/ip/" + id(ep.ID):   fmt.Sprintf("/audit?object=ip_endpoint:%d", ep.ID),
		acct + "/users/" + id(u.ID): fmt.Sprintf("/audit?object=sip_user:%d", u.ID),
	}
	for _, who := range []struct{ user, pass string }{{"root", opPass}, {"acme", acctPass}} {
		b := e.browser()
		b.mustSignIn(who.user, who.pass)
		for p, link := range links {
			r := b.get(p)
			if n := strings.Count(r.body, ">View audit log</a>"); n != 1 || !strings.Contains(r.body, `href="`+link+`"`) {
				t.Errorf("%s: %s: %d View audit log links, want one to %s", who.user, p, n, link)
			}
			if r := b.get(link); r.status != http.StatusOK || strings.Count(r.body, `<tr id="audit-`) != 1 {
				t.Errorf("%s: %s: status %d, want 200 and the one create entry: %s", who.user, link, r.status, textOf(r.body))
			}
		}
	}
}

func id(n int64) string { return strconv.FormatInt(n, 10) }

// TestAuditCustomerSeesOwnAccount: a customer portal login sees its own
// account's entries, none of another account's, and has no account filter.
func TestAuditCustomerSeesOwnAccount(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 20)
	other := e.account("Other Co", 20)
	e.login("acme", acctPass, a.ID)
	mine := store.IPEndpoint{AccountID: a.ID, Address: "192.0.2.10"}
	theirs := store.IPEndpoint{AccountID: other.ID, Address: "198.51.100.20"}
	for _, ep := range []*store.IPEndpoint{&mine, &theirs} {
		if _, err := e.svc.CreateEndpoint(t.Context(), provision.Operator, ep); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.CreateBan(t.Context(), provision.Operator, &store.Ban{Address: "203.0.113.99"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn("acme", acctPass)
	for _, p := range []string{"/audit", "/audit?object=ip_endpoint", fmt.Sprintf("/audit?account=%d", other.ID),
		fmt.Sprintf("/audit?object=ip_endpoint:%d", theirs.ID), fmt.Sprintf("/audit?object=account:%d", other.ID), "/audit?object=ban"} {
		r := b.get(p)
		if r.status != http.StatusOK {
			t.Fatalf("customer GET %s: %d %s", p, r.status, textOf(r.body))
		}
		txt := textOf(r.body)
		for _, leak := range []string{"198.51.100.20", "Other Co", "203.0.113.99"} {
			if strings.Contains(txt, leak) {
				t.Errorf("customer GET %s shows %q of another account: %s", p, leak, txt)
			}
		}
		if strings.Contains(r.body, `name="account"`) {
			t.Errorf("customer GET %s: the page offers an account filter", p)
		}
	}
	r := b.get("/audit")
	if txt := textOf(r.body); !strings.Contains(txt, "IP endpoint 192.0.2.10") || !strings.Contains(txt, "Account Acme") {
		t.Errorf("customer's audit log lacks its own entries: %s", txt)
	}
	if !strings.Contains(r.body, `<a href="/audit" aria-current="page">Audit</a>`) {
		t.Error("the customer's navigation has no Audit item")
	}
	// A customer's "all changes" link is its own audit log; the other
	// account's filter answers no entries rather than an error.
	own := strings.Count(r.body, `<tr id="audit-`)
	if r := b.get(fmt.Sprintf("/audit?account=%d", other.ID)); strings.Count(r.body, `<tr id="audit-`) != own {
		t.Errorf("customer with another account's ID in the URL: want its own %d entries: %s", own, textOf(r.body))
	}
}

// TestAuditBadFilter: a refused filter answers 422 with the error next to
// its field and what was typed kept.
func TestAuditBadFilter(t *testing.T) {
	e := newEnv(t)
	e.account("Acme", 20)
	e.login("root", opPass, 0)
	b := e.browser()
	b.mustSignIn("root", opPass)
	for _, c := range []struct{ query, id, want string }{
		{"since=yesterday", "f-since", `"yesterday": must be a time such as 2026-12-07T20:00:00Z or a duration back from now such as 24h`},
		{"until=soon", "f-until", `"soon": must be a time such as`},
		{"since=1h&until=2h", "f-until", "must be after since"},
		{"object=gadget", "f-object", `"gadget": must be one of account, ip_endpoint`},
		{"object=account&object_id=x", "f-object-id", `"x": must be a positive number`},
		{"object_id=3", "f-object-id", "choose the kind of object too"},
		{"object=account:0", "f-object-id", `"0": must be a positive number`},
		{"action=explode", "f-action", `"explode": must be one of create, update`},
		{"account=acme", "f-account", `"acme": must be an account ID`},
	} {
		r := b.get("/audit?" + c.query)
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422", c.query, r.status)
		}
		if got := errorOf(r.body, c.id); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: error next to %s %q, want %q", c.query, c.id, got, c.want)
		}
		if !strings.Contains(r.body, "No entries shown until the filter is corrected.") || strings.Contains(r.body, `<tr id="audit-`) {
			t.Errorf("%s: the refused filter's page shows entries", c.query)
		}
	}
	if r := b.get("/audit?since=yesterday"); valueOf(r.body, "f-since") != "yesterday" {
		t.Error("the refused filter is not kept in its field")
	}
}

// TestAuditPaging pages 50 entries at a time, keeping the filters.
func TestAuditPaging(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 20)
	e.login("root", opPass, 0)
	for i := range 51 {
		p := store.CLIPattern{AccountID: a.ID, Pattern: fmt.Sprintf("4420712345%02d", i)}
		if err := e.svc.CreateCLIPattern(t.Context(), provision.Operator, &p); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser()
	b.mustSignIn("root", opPass)
	r := b.get("/audit?object=cli_pattern&actor=operator")
	if n := strings.Count(r.body, `<tr id="audit-`); n != 50 {
		t.Errorf("first page: %d entries, want 50", n)
	}
	next := `href="` + strings.ReplaceAll((&url.URL{Path: "/audit", RawQuery: "actor=operator&object=cli_pattern&page=2"}).String(), "&", "&amp;") + `"`
	if !strings.Contains(r.body, "1–50 of 51") || !strings.Contains(r.body, next) {
		t.Fatalf("first page: no pager to %s: %s", next, textOf(r.body))
	}
	r = b.get("/audit?actor=operator&object=cli_pattern&page=2")
	if n := strings.Count(r.body, `<tr id="audit-`); n != 1 || !strings.Contains(r.body, "442071234500") {
		t.Errorf("second page: %d entries, want the oldest one", n)
	}
	if !strings.Contains(r.body, `rel="prev"`) {
		t.Error("second page: no link back")
	}
}

// TestAuditEmpty: an empty answer says so.
func TestAuditEmpty(t *testing.T) {
	e := newEnv(t)
	e.login("root", opPass, 0)
	b := e.browser()
	b.mustSignIn("root", opPass)
	r := b.get("/audit?object=did")
	if !strings.Contains(r.body, "No change matches these filters.") {
		t.Errorf("filtered, empty: %s", textOf(r.body))
	}
	// The operator's login was created through the service: its entry is there.
	r = b.get("/audit")
	if !strings.Contains(textOf(r.body), "Portal login root") {
		t.Errorf("the login's create entry is missing: %s", textOf(r.body))
	}
}
