package storetest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// RegistrationStore is a store that also keeps registrar bindings.
type RegistrationStore = interface {
	store.Store
	store.Registrations
}

// RunRegistrations runs the conformance suite of store.Registrations.
// newStore returns a new, empty store for one subtest and registers its
// cleanup with t.Cleanup.
//
// Times are compared to the millisecond, as in Run. The order of
// LoadRegistrations is not part of the contract; the suite sorts. Load may
// delete the bindings it finds expired, so the suite never calls it with a
// now earlier than one it used before.
func RunRegistrations(t *testing.T, newStore func(t *testing.T) RegistrationStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s RegistrationStore)
	}{
		{"RoundTrip", testRegRoundTrip},
		{"Upsert", testRegUpsert},
		{"Delete", testRegDelete},
		{"ApplyBatch", testRegApply},
		{"Expired", testRegExpired},
		{"Revision", testRegRevision},
		{"Concurrent", testRegConcurrent},
		{"ConcurrentWithUpdates", testRegConcurrentWithUpdates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// regNow is the "now" the registration tests load at: fixed, so that no
// test depends on the clock.
var regNow = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// binding returns a binding of username and contact, live at regNow.
func binding(username, contact string) store.Registration {
	return store.Registration{
		Username: username, SIPUserID: 1, AccountID: 1, Contact: contact,
		Source: "192.0.2.1:5060", Transport: "udp",
		Expires: regNow.Add(time.Hour), Registered: regNow.Add(-time.Minute),
		CallID: "call-" + username, CSeq: 1,
	}
}

func saveReg(t *testing.T, s store.Registrations, r store.Registration) {
	t.Helper()
	if err := s.SaveRegistration(t.Context(), r); err != nil {
		t.Fatalf("SaveRegistration(%q, %q): %v", r.Username, r.Contact, err)
	}
}

func deleteReg(t *testing.T, s store.Registrations, username, contact string) {
	t.Helper()
	if err := s.DeleteRegistration(t.Context(), username, contact); err != nil {
		t.Fatalf("DeleteRegistration(%q, %q): %v", username, contact, err)
	}
}

// loadRegs loads the bindings live at now, sorted by username and contact.
func loadRegs(t *testing.T, s store.Registrations, now time.Time) []store.Registration {
	t.Helper()
	regs, err := s.LoadRegistrations(t.Context(), now)
	if err != nil {
		t.Fatalf("LoadRegistrations(%v): %v", now, err)
	}
	sortRegs(regs)
	return regs
}

func sortRegs(regs []store.Registration) {
	slices.SortFunc(regs, func(a, b store.Registration) int {
		if c := strings.Compare(a.Username, b.Username); c != 0 {
			return c
		}
		return strings.Compare(a.Contact, b.Contact)
	})
}

func testRegRoundTrip(t *testing.T, s RegistrationStore) {
	zone := time.FixedZone("UTC-3", -3*3600)
	full := store.Registration{
		Username:   "alice",
		SIPUserID:  42,
		AccountID:  7,
		Contact:    "sip:alice@10.0.0.5:5060;transport=tcp;ob?subject=it's",
		Source:     "[2001:db8::5]:40123",
		Transport:  "tls",
		Expires:    regNow.Add(90*time.Minute + 123456789*time.Nanosecond).In(zone),
		Registered: regNow.Add(-30*time.Minute - 987654321*time.Nanosecond).In(zone),
		CallID:     "a84b4c76e66710@pc33.example.com",
		CSeq:       math.MaxUint32,
		UserAgent:  "Acme Phone/1.0 (\"quoted\")",
		LatencyMS:  12.375,
		LastPing:   regNow.Add(-5 * time.Second).In(zone),
		Node:       "edge1-0a1b2c",
		NodeAddr:   "[2001:db8::1]:5060",
	}
	// Optional fields left zero: never pinged, no user agent.
	minimal := store.Registration{
		Username: "alice", Contact: "sip:alice@192.0.2.9", Transport: "udp",
		Expires: regNow.Add(time.Minute), Registered: regNow, CallID: "x", CSeq: 1,
	}
	other := binding("o'brien", "sip:o'brien@198.51.100.1")
	for _, r := range []store.Registration{full, minimal, other} {
		saveReg(t, s, r)
	}
	want := []store.Registration{full, minimal, other}
	sortRegs(want)
	got := loadRegs(t, s, regNow)
	diff(t, "loaded registrations", want, got)
	for _, r := range got {
		for name, ts := range map[string]time.Time{"Expires": r.Expires, "Registered": r.Registered, "LastPing": r.LastPing} {
			if !ts.IsZero() && ts.Location() != time.UTC {
				t.Errorf("%s %s: %s = %v, want UTC", r.Username, r.Contact, name, ts)
			}
		}
		if r.Contact == minimal.Contact && !r.LastPing.IsZero() {
			t.Errorf("LastPing = %v, saved zero: want zero", r.LastPing)
		}
	}
	// Loading again finds the same: nothing live was consumed.
	diff(t, "loaded registrations, second time", want, loadRegs(t, s, regNow))
}

func testRegUpsert(t *testing.T, s RegistrationStore) {
	a := binding("alice", "sip:alice@192.0.2.1")
	a.UserAgent, a.LatencyMS, a.LastPing = "old agent", 3.5, regNow.Add(-time.Second)
	b := binding("alice", "sip:alice@192.0.2.2")
	c := binding("bob", "sip:alice@192.0.2.1") // same contact, other user: another key
	for _, r := range []store.Registration{a, b, c} {
		saveReg(t, s, r)
	}

	// Every field of the binding with the same key is replaced, including
	// by zero values.
	a2 := store.Registration{
		Username: a.Username, Contact: a.Contact, SIPUserID: 99, AccountID: 98,
		Source: "203.0.113.4:6000", Transport: "tcp",
		Expires: regNow.Add(2 * time.Hour), Registered: regNow,
		CallID: "new-call", CSeq: 77,
	}
	saveReg(t, s, a2)
	// And zero fields are replaced by set ones.
	b.UserAgent, b.LatencyMS, b.LastPing = "new agent", 1.25, regNow.Add(-2*time.Second)
	b.CSeq++
	saveReg(t, s, b)
	diff(t, "registrations after upserts", []store.Registration{a2, b, c}, loadRegs(t, s, regNow))
}

func testRegDelete(t *testing.T, s RegistrationStore) {
	a := binding("alice", "sip:alice@192.0.2.1")
	b := binding("alice", "sip:alice@192.0.2.2")
	c := binding("bob", "sip:alice@192.0.2.1")
	for _, r := range []store.Registration{a, b, c} {
		saveReg(t, s, r)
	}
	deleteReg(t, s, a.Username, a.Contact)
	diff(t, "registrations after delete", []store.Registration{b, c}, loadRegs(t, s, regNow))

	// Deleting what is not there is not an error and deletes nothing else.
	deleteReg(t, s, a.Username, a.Contact)
	deleteReg(t, s, "nobody", "sip:nobody@192.0.2.1")
	deleteReg(t, s, "bob", b.Contact)
	diff(t, "registrations after deletes of missing ones", []store.Registration{b, c}, loadRegs(t, s, regNow))

	// A deleted key can be saved again.
	saveReg(t, s, a)
	diff(t, "registrations after saving again", []store.Registration{a, b, c}, loadRegs(t, s, regNow))
}

// testRegApply: one batch deletes, inserts and replaces; a batch of
// thousands works; an empty batch is no error.
func testRegApply(t *testing.T, s RegistrationStore) {
	ctx := t.Context()
	a := binding("alice", "sip:alice@192.0.2.1")
	b := binding("alice", "sip:alice@192.0.2.2")
	saveReg(t, s, a)
	saveReg(t, s, b)
	b2 := b
	b2.CSeq, b2.Source = 7, "198.51.100.9:5060"
	c := binding("carol", "sip:carol@192.0.2.3")
	if err := s.ApplyRegistrations(ctx, []store.Registration{b2, c}, []store.RegistrationKey{{Username: "alice", Contact: a.Contact}}); err != nil {
		t.Fatal(err)
	}
	diff(t, "registrations after a batch", []store.Registration{b2, c}, loadRegs(t, s, regNow))
	if err := s.ApplyRegistrations(ctx, nil, nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	var many []store.Registration
	for i := 0; i < 2000; i++ {
		many = append(many, binding(fmt.Sprintf("u%04d", i), "sip:x@192.0.2.9"))
	}
	if err := s.ApplyRegistrations(ctx, many, nil); err != nil {
		t.Fatal(err)
	}
	if got := len(loadRegs(t, s, regNow)); got != 2002 {
		t.Errorf("after a batch of 2000: %d bindings, want 2002", got)
	}
	// The same binding twice in one batch: the last one is stored.
	first, last := binding("dave", "sip:dave@192.0.2.4"), binding("dave", "sip:dave@192.0.2.4")
	first.CSeq, last.CSeq = 1, 2
	if err := s.ApplyRegistrations(ctx, append([]store.Registration{first}, append(many[:100:100], last)...), nil); err != nil {
		t.Fatalf("a batch holding one binding twice: %v", err)
	}
	for _, r := range loadRegs(t, s, regNow) {
		if r.Username == "dave" && r.CSeq != 2 {
			t.Errorf("dave's binding saved twice in one batch: CSeq %d stored, want the last (2)", r.CSeq)
		}
	}
}

func testRegExpired(t *testing.T, s RegistrationStore) {
	mk := func(contact string, expires time.Time) store.Registration {
		r := binding("alice", contact)
		r.Expires = expires
		return r
	}
	past := mk("sip:past@192.0.2.1", regNow.Add(-time.Second))
	atNow := mk("sip:at-now@192.0.2.1", regNow) // expires at now: not live
	soon := mk("sip:soon@192.0.2.1", regNow.Add(time.Second))
	later := mk("sip:later@192.0.2.1", regNow.Add(time.Hour))
	for _, r := range []store.Registration{past, atNow, soon, later} {
		saveReg(t, s, r)
	}
	want := []store.Registration{later, soon}
	diff(t, "live at now", want, loadRegs(t, s, regNow))
	diff(t, "live at now, another zone", want, loadRegs(t, s, regNow.In(time.FixedZone("UTC+9", 9*3600))))
	diff(t, "live a second later", []store.Registration{later}, loadRegs(t, s, regNow.Add(time.Second)))

	// Saving again revives an expired key.
	soon.Expires = regNow.Add(time.Minute)
	saveReg(t, s, soon)
	diff(t, "live after renewal", []store.Registration{later, soon}, loadRegs(t, s, regNow.Add(time.Second)))
}

func testRegRevision(t *testing.T, s RegistrationStore) {
	newAccount(t, s, "acme") // revision need not start at 0
	rev := revision(t, s)
	a := binding("alice", "sip:alice@192.0.2.1")
	saveReg(t, s, a)
	a.CSeq++
	saveReg(t, s, a) // upsert
	saveReg(t, s, binding("bob", "sip:bob@192.0.2.2"))
	deleteReg(t, s, "bob", "sip:bob@192.0.2.2")
	deleteReg(t, s, "nobody", "sip:nobody@192.0.2.3")
	expired := binding("carol", "sip:carol@192.0.2.4")
	expired.Expires = regNow.Add(-time.Hour)
	saveReg(t, s, expired)
	loadRegs(t, s, regNow) // may delete the expired one
	if got := revision(t, s); got != rev {
		t.Errorf("revision moved from %d to %d on registration writes, want it unchanged", rev, got)
	}
	// Bindings are not configuration: an Update does not see or lose them.
	newAccount(t, s, "other")
	diff(t, "registrations after a configuration write", []store.Registration{a}, loadRegs(t, s, regNow))
}

// storm saves n bindings from n goroutines at once, two saves per key, and
// returns each goroutine's error.
func storm(ctx context.Context, s store.Registrations, n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			k := i % (n / 2) // goroutines i and i+n/2 save the same key
			r := binding(fmt.Sprintf("user%d", k%10), fmt.Sprintf("sip:u%d@192.0.2.%d", k, k%250))
			r.CSeq = uint32(i)
			errs[i] = s.SaveRegistration(ctx, r)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func checkStorm(t *testing.T, s RegistrationStore, n int, errs []error) {
	t.Helper()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("save %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d concurrent saves failed", failed, n)
	}
	regs := loadRegs(t, s, regNow)
	if len(regs) != n/2 {
		t.Errorf("%d bindings after %d saves of %d keys, want %d", len(regs), n, n/2, n/2)
	}
}

func testRegConcurrent(t *testing.T, s RegistrationStore) {
	const n = 200
	rev := revision(t, s)
	checkStorm(t, s, n, storm(t.Context(), s, n))
	if got := revision(t, s); got != rev {
		t.Errorf("revision moved from %d to %d during a registration storm, want it unchanged", rev, got)
	}
}

// testRegConcurrentWithUpdates runs configuration Updates during a
// registration storm: both kinds of write succeed.
func testRegConcurrentWithUpdates(t *testing.T, s RegistrationStore) {
	const n, updates = 200, 5
	ctx := t.Context()
	var updateErrs [updates]error
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range updates {
			updateErrs[i] = s.Update(ctx, func(tx store.Tx) error {
				return tx.CreateAccount(ctx, &store.Account{Name: fmt.Sprintf("a%d", i)})
			})
		}
	})
	errs := storm(ctx, s, n)
	wg.Wait()
	checkStorm(t, s, n, errs)
	for i, err := range updateErrs {
		if err != nil {
			t.Errorf("update %d during the storm: %v", i, err)
		}
	}
	if _, total := list(t, s, store.Tx.ListAccounts, store.AccountFilter{}); total != updates {
		t.Errorf("%d accounts after %d updates, want %d", total, updates, updates)
	}
}
