package web

import (
	"fmt"
	"html"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

type row struct {
	name string
	n    int
}

var rowSorts = sorter[row]{
	"name": byText(func(r row) string { return r.name }),
	"n":    byNum(func(r row) int { return r.n }),
}

func names(rs []row) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.name)
	}
	return strings.Join(s, " ")
}

// TestSortPage: the in-memory lists' one helper sorts by a whitelisted
// key both ways (text ignoring case, ties kept in their order), pages,
// and falls back to the default order on an unknown key.
func TestSortPage(t *testing.T) {
	tests := []struct {
		query, want string
		page, pages int
	}{
		{"", "b A c D", 1, 1}, // default: n ascending
		{"sort=name", "A b c D", 1, 1},
		{"sort=name&dir=desc", "D c b A", 1, 1},
		{"sort=n&dir=desc", "D c b A", 1, 1}, // b and A tie on n=2: kept in order, reversed with the rest
		{"sort=nope&dir=desc", "b A c D", 1, 1},
		{"sort=name&page=9", "A b c D", 1, 1}, // past the end: the last page
	}
	for _, tt := range tests {
		items := []row{{"c", 3}, {"b", 2}, {"A", 2}, {"D", 4}}
		got, p := sortPage(httptest.NewRequest("GET", "/x?"+tt.query, nil), items, rowSorts, "n", false)
		if names(got) != tt.want || p.Page() != tt.page || p.Pages() != tt.pages {
			t.Errorf("%q: %q page %d of %d, want %q page %d of %d", tt.query, names(got), p.Page(), p.Pages(), tt.want, tt.page, tt.pages)
		}
	}
}

// TestSortPageSecondPage: page 2 of 120 items holds the 51st to the 100th,
// its links keep the filters and the order, and go back to page 1 on a
// new sort.
func TestSortPageSecondPage(t *testing.T) {
	var items []row
	for i := range 120 {
		items = append(items, row{fmt.Sprintf("r%03d", i), i})
	}
	got, p := sortPage(httptest.NewRequest("GET", "/x?q=r&sort=n&dir=desc&page=2", nil), items, rowSorts, "name", false)
	if len(got) != 50 || got[0].n != 69 || got[49].n != 20 {
		t.Fatalf("page 2 by n descending: %d rows from %v to %v, want 50 from 69 to 20", len(got), got[0], got[len(got)-1])
	}
	checks := map[string][2]string{
		"Prev":        {p.Prev(), "/x?dir=desc&q=r&sort=n"},
		"Next":        {p.Next(), "/x?dir=desc&page=3&q=r&sort=n"},
		"Col(n)":      {p.Col("n", "N").URL, "/x?dir=asc&q=r&sort=n"},
		"Col(name)":   {p.Col("name", "Name").URL, "/x?dir=asc&q=r&sort=name"},
		"aria-sort n": {p.Col("n", "N").Sort, "descending"},
		"aria-sort":   {p.Col("name", "Name").Sort, ""},
		"unsortable":  {p.Col("other", "Other").URL, ""},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if p.Page() != 2 || p.Pages() != 3 || p.First() != 51 || p.Last() != 100 {
		t.Errorf("pager: page %d of %d, %d–%d", p.Page(), p.Pages(), p.First(), p.Last())
	}
}

// TestOffsetOf: ?page= from 1; an older link's ?offset= still works.
func TestOffsetOf(t *testing.T) {
	for q, want := range map[string]int{"": 0, "page=1": 0, "page=3": 100, "page=-2": 0, "page=x": 0, "offset=50": 50, "offset=-1": 0} {
		if got := offsetOf(httptest.NewRequest("GET", "/x?"+q, nil)); got != want {
			t.Errorf("offsetOf(%q) = %d, want %d", q, got, want)
		}
	}
}

var accountLink = regexp.MustCompile(`<td><a href="/accounts/\d+">([^<]*)</a></td>`)

func accountNamesOf(body string) []string {
	var out []string
	for _, m := range accountLink.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// TestAccountsSorted: the accounts list sorts in the store, the whole list
// not one page: by name both ways, page 2, the search kept in the links,
// aria-sort on the sorted column; an unknown sort shows the default order.
func TestAccountsSorted(t *testing.T) {
	e := newEnv(t)
	e.login("root", opPass, 0)
	for i := range 60 {
		e.account(fmt.Sprintf("Carrier %02d", (i*7)%60), 10+i)
	}
	e.account("Other", 1)
	b := e.browser()
	b.mustSignIn("root", opPass)

	r := b.get("/accounts?q=carrier&sort=name")
	got := accountNamesOf(r.body)
	if len(got) != 50 || got[0] != "Carrier 00" || got[49] != "Carrier 49" {
		t.Errorf("by name, page 1: %d rows, %q … %q", len(got), got[0], got[len(got)-1])
	}
	for _, want := range []string{`aria-sort="ascending"><a class="sort" href="/accounts?dir=desc&amp;q=carrier&amp;sort=name">Name</a>`,
		`href="/accounts?dir=asc&amp;q=carrier&amp;sort=channels"`, `href="/accounts?dir=asc&amp;page=2&amp;q=carrier&amp;sort=name" rel="next"`, "Page 1 of 2"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("by name: no %s", want)
		}
	}
	r = b.get("/accounts?q=carrier&sort=name&dir=desc&page=2")
	if got := accountNamesOf(r.body); !cmp.Equal(got, []string{"Carrier 09", "Carrier 08", "Carrier 07", "Carrier 06", "Carrier 05", "Carrier 04", "Carrier 03", "Carrier 02", "Carrier 01", "Carrier 00"}) {
		t.Errorf("by name descending, page 2: %q", got)
	}
	if !strings.Contains(r.body, `aria-sort="descending"`) || !strings.Contains(r.body, "Page 2 of 2") ||
		!strings.Contains(r.body, `href="/accounts?dir=desc&amp;q=carrier&amp;sort=name" rel="prev"`) {
		t.Errorf("by name descending, page 2: no aria-sort, pager or link back: %s", textOf(r.body))
	}
	if !strings.Contains(r.body, `<input type="hidden" name="sort" value="name"><input type="hidden" name="dir" value="desc">`) ||
		!strings.Contains(r.body, `hx-include="closest form"`) {
		t.Error("sorted by name descending: the search form does not keep the order")
	}
	r = b.get("/accounts?q=carrier&sort=name&page=9")
	if loc := r.header.Get("Location"); r.status != 303 || loc != "/accounts?dir=asc&page=2&q=carrier&sort=name" {
		t.Errorf("page 9 of 2: status %d to %q, want 303 to the last page", r.status, loc)
	}
	if r = b.get("/accounts?q=nobody&page=3"); r.status != 200 || !strings.Contains(r.body, "No account's name contains") {
		t.Errorf("page 3 of an empty list: status %d, want 200 saying none matches", r.status)
	}
	r = b.get("/accounts?sort=password&dir=desc")
	if got := accountNamesOf(r.body); r.status != 200 || len(got) != 50 || got[0] != "Carrier 00" || got[1] != "Carrier 07" || strings.Contains(r.body, "aria-sort") {
		t.Errorf("unknown sort: status %d, rows %q…, want the default order (created) and no aria-sort", r.status, got[:min(2, len(got))])
	}
	if strings.Contains(r.body, `name="sort"`) {
		t.Error("unknown sort: kept in the search form")
	}
}

// TestEveryListSorts: every list answers every one of its sort keys, both
// ways, with aria-sort on that column (no 500, no key the store refuses).
func TestEveryListSorts(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Nodes = fakeNodes{{ID: "a-1", Status: live.NodeUp}} })
	a := e.account("Acme", 10)
	e.login("root", opPass, 0)
	now := e.clock.Now()
	e.live.calls = []live.Call{{ID: "c1", AccountID: a.ID, Account: "Acme", Start: now}}
	e.live.bindings = []live.Binding{{Username: "1001", AccountID: a.ID, Expires: now.Add(time.Hour)}}
	e.live.decisions = []live.Decision{{Seq: 1, Time: now, Result: "accepted"}}
	if _, err := e.svc.CreateBan(t.Context(), provision.Operator, &store.Ban{Address: "198.51.100.7"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn("root", opPass)
	acct := fmt.Sprintf("/accounts/%d", a.ID)
	lists := map[string][]string{
		"/accounts": store.AccountSorts, acct: store.EndpointSorts, "/ip": store.EndpointSorts,
		acct + "/users": store.SIPUserSorts, "/users": store.SIPUserSorts, acct + "/cli": store.CLISorts,
		acct + "/dids": store.DIDSorts, acct + "/logins": store.LoginSorts, "/profiles": store.ProfileSorts,
		"/firewall": store.BanSorts, "/audit": store.AuditSorts,
		"/calls": callSorts.spec("", false).keys, "/registrations": bindingSorts.spec("", false).keys,
		"/decisions": decisionSorts.spec("", false).keys, "/nodes": nodeSorts.spec("", false).keys,
	}
	for path, keys := range lists {
		for _, key := range keys {
			for _, dir := range []string{"asc", "desc"} {
				r := b.get(path + "?sort=" + key + "&dir=" + dir)
				if r.status != 200 {
					t.Errorf("%s by %s %s: status %d", path, key, dir, r.status)
				}
			}
		}
	}
	for _, path := range []string{"/accounts", "/firewall", "/decisions", "/calls", "/nodes", "/registrations", "/audit", acct + "/users"} {
		if r := b.get(path + "?sort=x%22%3E&dir=sideways&page=zero"); r.status != 200 {
			t.Errorf("%s with a bad sort, dir and page: status %d", path, r.status)
		}
	}
}

// TestDecisionsTimeRange: the Time filter keeps the decisions of the last
// 5 minutes (15, 60, 24 h), any other value shows all; the list polls its
// own URL (filters, order and page kept), newest first by default.
func TestDecisionsTimeRange(t *testing.T) {
	e := newEnv(t)
	e.login("root", opPass, 0)
	now := e.clock.Now()
	for i, ago := range []time.Duration{time.Minute, 10 * time.Minute, 30 * time.Minute, 2 * time.Hour, 48 * time.Hour} {
		e.live.decisions = append(e.live.decisions, live.Decision{Seq: uint64(10 - i), Time: now.Add(-ago), Method: "INVITE",
			From: fmt.Sprintf("call-%v", ago), Source: "203.0.113.9:5060", Result: "rejected"})
	}
	b := e.browser()
	b.mustSignIn("root", opPass)
	for rng, want := range map[string]int{"5m": 1, "15m": 2, "1h": 3, "24h": 4, "": 5, "7h": 5, "-5m": 5, "last%20hour": 5} {
		r := b.get("/decisions?range=" + rng)
		if got := strings.Count(r.body, "<tr>") - 1; got != want {
			t.Errorf("range %q: %d decisions, want %d", rng, got, want)
		}
	}
	r := b.get("/decisions?range=15m")
	if !strings.Contains(r.body, `<option value="15m" selected>last 15 minutes</option>`) {
		t.Error("range 15m: not selected in the form")
	}
	if !strings.Contains(r.body, `aria-sort="descending"><a class="sort" href="/decisions?dir=asc&amp;range=15m&amp;sort=time">Time</a>`) {
		t.Error("default order: no aria-sort descending on Time, or its link loses the range")
	}
	if i, j := strings.Index(r.body, "call-1m0s"), strings.Index(r.body, "call-10m0s"); i < 0 || j < i {
		t.Error("default order: not newest first")
	}
	r = b.get("/decisions?source=203.0.113.9&range=1h&sort=time&dir=asc")
	if !strings.Contains(r.body, `hx-get="/decisions?source=203.0.113.9&amp;range=1h&amp;sort=time&amp;dir=asc" hx-trigger="every 5s"`) ||
		!strings.Contains(r.body, "data-live") || !strings.Contains(r.body, "refreshes itself every 5 seconds") {
		t.Errorf("decisions: no live refresh of its own URL: %s", textOf(r.body))
	}
	if i, j := strings.Index(r.body, "call-30m0s"), strings.Index(r.body, "call-1m0s"); i < 0 || j < i {
		t.Error("oldest first: not in that order")
	}
}

// TestFirewallLive: the firewall list polls its own URL (search, order
// and page kept), says so, and sorts by expiry with never last.
func TestFirewallLive(t *testing.T) {
	e := newEnv(t)
	e.login("root", opPass, 0)
	now := e.clock.Now()
	for _, b := range []store.Ban{{Address: "198.51.100.1", Reason: "never"}, {Address: "198.51.100.2", Reason: "soon", ExpiresAt: now.Add(time.Hour)},
		{Address: "198.51.100.3", Reason: "later", ExpiresAt: now.Add(48 * time.Hour)}} {
		if _, err := e.svc.CreateBan(t.Context(), provision.Operator, &b); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser()
	b.mustSignIn("root", opPass)
	r := b.get("/firewall?q=198.51&sort=expires")
	if !strings.Contains(r.body, `hx-get="/firewall?q=198.51&amp;sort=expires" hx-trigger="every 5s"`) || !strings.Contains(r.body, "refreshes itself every 5 seconds") {
		t.Errorf("firewall: no live refresh of its own URL: %s", textOf(r.body))
	}
	i, j, k := strings.Index(r.body, "198.51.100.2"), strings.Index(r.body, "198.51.100.3"), strings.Index(r.body, "198.51.100.1<")
	if i < 0 || j < i || k < j {
		t.Errorf("by expiry: positions %d %d %d, want soon, later, never", i, j, k)
	}
}
