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

// TestTables: a list sorts by a click on a column header (aria-sort and
// the order follow, the search kept), pages with Next, and the decisions
// and firewall lists show a new row by their live refresh, without a
// reload, but not while the user types in a field. Every page is axe-clean.
func TestTables(t *testing.T) {
	s := newServer(t)
	s.login(opUser, opPass, 0)
	for i := range 60 {
		s.account(fmt.Sprintf("Carrier %02d", (i*7)%60), 10)
	}
	s.account("Other", 1)
	op := newTab(t, newBrowser(t), s.url)
	op.signIn(opUser, opPass, "/")
	op.open("/accounts?q=carrier", http.StatusOK)

	if got := op.submit(`th a.sort[href*="sort=name"]`, http.StatusOK); got != "/accounts?dir=asc&q=carrier&sort=name" {
		t.Errorf("sort by name: at %s", got)
	}
	op.wantText("tbody tr:first-child td:first-child", "Carrier 00")
	if v := op.eval(`document.querySelector('th[aria-sort]').textContent + " " + document.querySelector('th[aria-sort]').getAttribute("aria-sort")`); v != "Name ascending" {
		t.Errorf("aria-sort: %q, want Name ascending", v)
	}
	if arrow := op.eval(`getComputedStyle(document.querySelector('th[aria-sort] a.sort'), "::after").content`); !strings.Contains(arrow, "▲") {
		t.Errorf("the sorted column's arrow is %s, want ▲", arrow)
	}
	op.submit(`th[aria-sort] a.sort`, http.StatusOK)
	op.wantText("tbody tr:first-child td:first-child", "Carrier 59")
	if v := op.eval(`document.querySelector('th[aria-sort]').getAttribute("aria-sort")`); v != "descending" {
		t.Errorf("second click: aria-sort %q, want descending", v)
	}
	if got := op.submit(`.pager a[rel=next]`, http.StatusOK); got != "/accounts?dir=desc&page=2&q=carrier&sort=name" {
		t.Errorf("next page: at %s", got)
	}
	op.wantContains(".pager", "Page 2 of 2")
	op.wantText("tbody tr:first-child td:first-child", "Carrier 09")
	if n := op.eval(`String(document.querySelectorAll("tbody tr").length)`); n != "10" {
		t.Errorf("page 2: %s rows, want 10", n)
	}

	testLiveDecisions(t, s, op)
	testLiveFirewall(t, s, op)
}

// testLiveDecisions: a decision made after the page loaded appears by the
// live refresh, in the same document (no reload), filters and order kept;
// while a field has the focus the list waits.
func testLiveDecisions(t *testing.T, s *server, op *tab) {
	add := func(from string) {
		s.live.mu.Lock()
		defer s.live.mu.Unlock()
		s.live.decisions = append(s.live.decisions, live.Decision{Seq: uint64(len(s.live.decisions) + 1), Time: time.Now(), Method: "INVITE",
			Source: "203.0.113.7:5060", Transport: "udp", From: from, To: "sip:442071234567@edge", Result: "rejected", Status: 403,
			Stage: "identify", Why: "unknown source"})
	}
	add("sip:first@203.0.113.7")
	op.open("/decisions?range=5m&source=203.0.113.7", http.StatusOK)
	op.wantContains("#live", "sip:first@203.0.113.7")
	op.eval(`window.sipwardMark = "same document"; ""`)

	// While the user types in a field, the list waits.
	op.do("focus the source field", chromedp.Focus(chromedp.CSS("#source")))
	add("sip:typing@203.0.113.7")
	time.Sleep(7 * time.Second) // more than one refresh interval
	if strings.Contains(op.text("#live"), "sip:typing@") {
		t.Error("the list refreshed while the source field had the focus")
	}
	op.do("blur", chromedp.Blur(chromedp.CSS("#source")))

	add("sip:second@203.0.113.7")
	op.do("wait for the live refresh", chromedp.Poll[chromedp.Void](
		`document.querySelector("#live").textContent.includes("sip:second@203.0.113.7")`, chromedp.WithPollingTimeout(20*time.Second)))
	if m := op.eval(`window.sipwardMark || "reloaded"`); m != "same document" {
		t.Errorf("the page reloaded (%s): want an in-place refresh", m)
	}
	if loc := op.location(); loc != "/decisions?range=5m&source=203.0.113.7" {
		t.Errorf("after the refresh at %s", loc)
	}
	op.wantContains("tbody tr:first-child", "sip:second@") // newest first, as before
	op.checkConsole("decisions refreshed")
	op.axe("decisions refreshed")
}

// testLiveFirewall: a ban made after the page loaded appears by the live
// refresh.
func testLiveFirewall(t *testing.T, s *server, op *tab) {
	op.open("/firewall?sort=address&dir=desc", http.StatusOK)
	op.eval(`window.sipwardMark = "same document"; ""`)
	_, err := s.svc.CreateBan(context.Background(), provision.Operator, &store.Ban{Address: "203.0.113.99", Reason: "seen by the live refresh"})
	must(t, err)
	op.do("wait for the live refresh", chromedp.Poll[chromedp.Void](
		`document.querySelector("#live").textContent.includes("203.0.113.99")`, chromedp.WithPollingTimeout(20*time.Second)))
	if m := op.eval(`window.sipwardMark || "reloaded"`); m != "same document" {
		t.Errorf("the firewall page reloaded (%s): want an in-place refresh", m)
	}
	op.checkConsole("firewall refreshed")
	op.axe("firewall refreshed")
}
