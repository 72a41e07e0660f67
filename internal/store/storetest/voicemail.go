package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// MailboxStore is a store that also keeps voicemail (store.Mailboxes).
type MailboxStore interface {
	store.Store
	store.Mailboxes
}

// RunMailboxes runs the conformance suite of store.Mailboxes, and checks
// that SIP users keep Voicemail.RingTimeout. newStore returns a new, empty
// store for one subtest and registers its cleanup with t.Cleanup.
func RunMailboxes(t *testing.T, newStore func(t *testing.T) MailboxStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s MailboxStore)
	}{
		{"RoundTrip", testMailRoundTrip},
		{"Defaults", testMailDefaults},
		{"OtherUser", testMailOtherUser},
		{"MissingUser", testMailMissingUser},
		{"ListOrder", testMailListOrder},
		{"Usage", testMailUsage},
		{"ReadFlag", testMailRead},
		{"MailState", testMailState},
		{"Greetings", testGreetings},
		{"DeleteSIPUser", testMailDeleteUser},
		{"DeleteAccount", testMailDeleteAccount},
		{"Revision", testMailRevision},
		{"ConcurrentWithUpdates", testMailConcurrent},
		{"RingTimeout", testRingTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// mailNow is the time messages are left at: fixed, so that no test depends
// on the clock.
var mailNow = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// wav returns n bytes of made-up audio, different for each seed, holding
// every byte value (NUL included).
func wav(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "RIFF\x00\x00\x00\x00WAVEfmt ")
	return b
}

// mailbox is a SIP user of its own account, for the voicemail tests.
func mailbox(t *testing.T, s store.Store, name string) store.SIPUser {
	t.Helper()
	acc := newAccount(t, s, name)
	return newSIPUser(t, s, acc.ID, name, "example.com", 1)
}

// message returns a message for u, left i minutes after mailNow.
func message(u store.SIPUser, i int) store.VoicemailMessage {
	return store.VoicemailMessage{
		SIPUserID: u.ID, AccountID: u.AccountID, Caller: fmt.Sprint("+1555000", i), Called: u.Username,
		CreatedAt: mailNow.Add(time.Duration(i) * time.Minute), DurationMS: int64(1000 * (i + 1)),
		Mail: store.MailState{Status: store.MailNone},
	}
}

// save saves m with audio and returns it as SaveMessage left it.
func save(t *testing.T, s store.Mailboxes, m store.VoicemailMessage, audio []byte) store.VoicemailMessage {
	t.Helper()
	if err := s.SaveMessage(t.Context(), &m, audio); err != nil {
		t.Fatalf("SaveMessage(user %d, caller %q): %v", m.SIPUserID, m.Caller, err)
	}
	if m.ID == 0 {
		t.Fatalf("SaveMessage(user %d, caller %q) left ID 0", m.SIPUserID, m.Caller)
	}
	return m
}

func getMessage(t *testing.T, s store.Mailboxes, userID, id int64) store.VoicemailMessage {
	t.Helper()
	m, err := s.GetMessage(t.Context(), userID, id)
	if err != nil {
		t.Fatalf("GetMessage(%d, %d): %v", userID, id, err)
	}
	return m
}

func listMessages(t *testing.T, s store.Mailboxes, userID int64) []store.VoicemailMessage {
	t.Helper()
	msgs, err := s.ListMessages(t.Context(), userID)
	if err != nil {
		t.Fatalf("ListMessages(%d): %v", userID, err)
	}
	return msgs
}

func audio(t *testing.T, s store.Mailboxes, userID, id int64) []byte {
	t.Helper()
	b, err := s.MessageAudio(t.Context(), userID, id)
	if err != nil {
		t.Fatalf("MessageAudio(%d, %d): %v", userID, id, err)
	}
	return b
}

func usage(t *testing.T, s store.Mailboxes, userID int64) store.MailboxUsage {
	t.Helper()
	u, err := s.MailboxUsage(t.Context(), userID)
	if err != nil {
		t.Fatalf("MailboxUsage(%d): %v", userID, err)
	}
	return u
}

func pending(t *testing.T, s store.Mailboxes, limit int) []store.VoicemailMessage {
	t.Helper()
	msgs, err := s.PendingMail(t.Context(), limit)
	if err != nil {
		t.Fatalf("PendingMail(%d): %v", limit, err)
	}
	return msgs
}

func greeting(t *testing.T, s store.Mailboxes, userID int64) []byte {
	t.Helper()
	b, err := s.Greeting(t.Context(), userID)
	if err != nil {
		t.Fatalf("Greeting(%d): %v", userID, err)
	}
	return b
}

// ids returns the IDs of msgs, in order.
func ids(msgs []store.VoicemailMessage) []int64 {
	out := []int64{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

// checkUTC checks that the times of m are in UTC.
func checkUTC(t *testing.T, what string, m store.VoicemailMessage) {
	t.Helper()
	for name, ts := range map[string]time.Time{"CreatedAt": m.CreatedAt, "Mail.SentAt": m.Mail.SentAt} {
		if !ts.IsZero() && ts.Location() != time.UTC {
			t.Errorf("%s: %s = %v, want UTC", what, name, ts)
		}
	}
}

// testMailRoundTrip: every field and the audio come back as saved.
func testMailRoundTrip(t *testing.T, s MailboxStore) {
	u := mailbox(t, s, "alice")
	zone := time.FixedZone("UTC-3", -3*3600)
	in := store.VoicemailMessage{
		SIPUserID: u.ID, AccountID: u.AccountID, Caller: "+15551234567", Called: "alice's \"desk\" ☎",
		CreatedAt:  mailNow.Add(123456789 * time.Nanosecond).In(zone),
		DurationMS: 1<<40 + 7, Read: true,
		Mail: store.MailState{Status: store.MailFailed, Attempts: 5, Error: "550 5.1.1 mailbox unavailable",
			SentAt: mailNow.Add(-time.Second).In(zone)},
	}
	big := wav(1, 300<<10)
	m := save(t, s, in, big)
	want := in
	want.ID = m.ID
	diff(t, "saved message", want, m)
	checkUTC(t, "saved message", m)
	got := getMessage(t, s, u.ID, m.ID)
	diff(t, "message read back", want, got)
	checkUTC(t, "message read back", got)
	diff(t, "listed messages", []store.VoicemailMessage{want}, listMessages(t, s, u.ID))
	diff(t, "audio read back", big, audio(t, s, u.ID, m.ID))

	// Another message gets another ID and keeps its own audio.
	small := wav(2, 1000)
	m2 := save(t, s, message(u, 1), small)
	if m2.ID == m.ID {
		t.Errorf("two messages saved with ID %d", m.ID)
	}
	diff(t, "second audio", small, audio(t, s, u.ID, m2.ID))
	diff(t, "first audio after the second", big, audio(t, s, u.ID, m.ID))
}

// testMailDefaults: a zero CreatedAt becomes the current time, an empty
// mail status "none"; empty audio is kept as empty.
func testMailDefaults(t *testing.T, s MailboxStore) {
	u := mailbox(t, s, "alice")
	before := time.Now().Truncate(time.Millisecond)
	m := save(t, s, store.VoicemailMessage{SIPUserID: u.ID, AccountID: u.AccountID, Caller: "anonymous"}, nil)
	after := time.Now()
	if m.CreatedAt.Before(before) || m.CreatedAt.After(after) {
		t.Errorf("CreatedAt %v set on save, want between %v and %v", m.CreatedAt, before, after)
	}
	if m.Mail.Status != store.MailNone {
		t.Errorf("Mail.Status %q after saving an empty one, want %q", m.Mail.Status, store.MailNone)
	}
	checkUTC(t, "saved message", m)
	diff(t, "message read back", m, getMessage(t, s, u.ID, m.ID))
	if b := audio(t, s, u.ID, m.ID); len(b) != 0 {
		t.Errorf("audio of a message saved without any: %d bytes, want none", len(b))
	}
}

// testMailOtherUser: a message is found only under its own user; the
// calls that fail leave it as it was.
func testMailOtherUser(t *testing.T, s MailboxStore) {
	alice, bob := mailbox(t, s, "alice"), mailbox(t, s, "bob")
	m := save(t, s, message(alice, 0), wav(1, 100))
	ctx := t.Context()
	const missing = 987654
	for _, c := range []struct{ user, id int64 }{{bob.ID, m.ID}, {missing, m.ID}, {alice.ID, missing}} {
		what := fmt.Sprintf("user %d, message %d", c.user, c.id)
		_, err := s.GetMessage(ctx, c.user, c.id)
		wantErr(t, "GetMessage of "+what, err, store.ErrNotFound)
		_, err = s.MessageAudio(ctx, c.user, c.id)
		wantErr(t, "MessageAudio of "+what, err, store.ErrNotFound)
		wantErr(t, "SetMessageRead of "+what, s.SetMessageRead(ctx, c.user, c.id, true), store.ErrNotFound)
		wantErr(t, "DeleteMessage of "+what, s.DeleteMessage(ctx, c.user, c.id), store.ErrNotFound)
	}
	wantErr(t, "SetMailState of a missing message", s.SetMailState(ctx, missing, store.MailState{Status: store.MailSent}),
		store.ErrNotFound)
	diff(t, "alice's message after bob's calls", m, getMessage(t, s, alice.ID, m.ID))
	if msgs := listMessages(t, s, bob.ID); len(msgs) != 0 {
		t.Errorf("bob lists %d messages, want none (alice's are not his)", len(msgs))
	}
	if err := s.DeleteMessage(ctx, alice.ID, m.ID); err != nil {
		t.Fatalf("DeleteMessage of alice's own message: %v", err)
	}
	_, err := s.GetMessage(ctx, alice.ID, m.ID)
	wantErr(t, "GetMessage of a deleted message", err, store.ErrNotFound)
	wantErr(t, "DeleteMessage again", s.DeleteMessage(ctx, alice.ID, m.ID), store.ErrNotFound)
}

// testMailMissingUser: saving for a SIP user that does not exist, a
// message or a greeting, is ErrNotFound and stores nothing.
func testMailMissingUser(t *testing.T, s MailboxStore) {
	const missing = 987654
	ctx := t.Context()
	m := store.VoicemailMessage{SIPUserID: missing, Caller: "+1555"}
	wantErr(t, "SaveMessage for a missing sip user", s.SaveMessage(ctx, &m, wav(1, 10)), store.ErrNotFound)
	wantErr(t, "PutGreeting for a missing sip user", s.PutGreeting(ctx, missing, wav(1, 10)), store.ErrNotFound)
	if msgs := listMessages(t, s, missing); len(msgs) != 0 {
		t.Errorf("missing user lists %d messages, want none", len(msgs))
	}
	diff(t, "usage of a missing user", store.MailboxUsage{}, usage(t, s, missing))
}

// testMailListOrder: a user's messages are listed oldest first, others'
// left out; an empty mailbox lists none.
func testMailListOrder(t *testing.T, s MailboxStore) {
	alice, bob := mailbox(t, s, "alice"), mailbox(t, s, "bob")
	var want []int64
	for i := range 5 {
		want = append(want, save(t, s, message(alice, i), wav(uint64(i), 10)).ID)
		save(t, s, message(bob, i), wav(uint64(i), 10))
	}
	diff(t, "alice's message IDs", want, ids(listMessages(t, s, alice.ID)))
	carol := mailbox(t, s, "carol")
	if msgs := listMessages(t, s, carol.ID); len(msgs) != 0 {
		t.Errorf("empty mailbox lists %d messages", len(msgs))
	}
}

func testMailUsage(t *testing.T, s MailboxStore) {
	alice, bob := mailbox(t, s, "alice"), mailbox(t, s, "bob")
	diff(t, "usage of an empty mailbox", store.MailboxUsage{}, usage(t, s, alice.ID))
	var msgs []store.VoicemailMessage
	for i := range 4 {
		m := message(alice, i) // 1 s, 2 s, 3 s, 4 s
		m.Read = i == 3
		msgs = append(msgs, save(t, s, m, wav(uint64(i), 10)))
	}
	save(t, s, message(bob, 9), nil)
	diff(t, "usage", store.MailboxUsage{Messages: 4, Unread: 3, DurationMS: 10000}, usage(t, s, alice.ID))
	ctx := t.Context()
	if err := s.SetMessageRead(ctx, alice.ID, msgs[0].ID, true); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMessage(ctx, alice.ID, msgs[1].ID); err != nil {
		t.Fatal(err)
	}
	diff(t, "usage after a read and a delete", store.MailboxUsage{Messages: 3, Unread: 1, DurationMS: 8000}, usage(t, s, alice.ID))
	diff(t, "bob's usage", store.MailboxUsage{Messages: 1, Unread: 1, DurationMS: 10000}, usage(t, s, bob.ID))
}

// testMailRead: the read flag goes both ways, setting it to what it is
// is no error, and it changes nothing else.
func testMailRead(t *testing.T, s MailboxStore) {
	u := mailbox(t, s, "alice")
	m := save(t, s, message(u, 0), wav(1, 10))
	other := save(t, s, message(u, 1), wav(2, 10))
	for _, read := range []bool{true, true, false, false, true} {
		if err := s.SetMessageRead(t.Context(), u.ID, m.ID, read); err != nil {
			t.Fatalf("SetMessageRead(%v): %v", read, err)
		}
		want := m
		want.Read = read
		diff(t, fmt.Sprintf("message after SetMessageRead(%v)", read), want, getMessage(t, s, u.ID, m.ID))
	}
	diff(t, "the other message", other, getMessage(t, s, u.ID, other.ID))
}

// testMailState: each mail state round-trips; PendingMail finds the pending
// messages of every user, oldest first, up to its limit.
func testMailState(t *testing.T, s MailboxStore) {
	alice, bob := mailbox(t, s, "alice"), mailbox(t, s, "bob")
	var msgs []store.VoicemailMessage
	for i := range 3 {
		msgs = append(msgs, save(t, s, message(alice, 2*i), wav(1, 10)), save(t, s, message(bob, 2*i+1), wav(2, 10)))
	}
	if got := pending(t, s, 10); len(got) != 0 {
		t.Errorf("PendingMail with none pending: %v", ids(got))
	}
	zone := time.FixedZone("UTC+9", 9*3600)
	states := []store.MailState{
		{Status: store.MailPending},
		{Status: store.MailPending, Attempts: 2, Error: "dial tcp: connection refused"},
		{Status: store.MailSent, Attempts: 3, SentAt: mailNow.Add(time.Minute + 123*time.Microsecond).In(zone)},
		{Status: store.MailFailed, Attempts: 9, Error: "gave up"},
		{Status: store.MailPending, Attempts: 1},
	}
	for i, st := range states {
		if err := s.SetMailState(t.Context(), msgs[i].ID, st); err != nil {
			t.Fatalf("SetMailState(%d, %+v): %v", msgs[i].ID, st, err)
		}
		msgs[i].Mail = st
		got := getMessage(t, s, msgs[i].SIPUserID, msgs[i].ID)
		diff(t, fmt.Sprintf("message after SetMailState(%+v)", st), msgs[i], got)
		checkUTC(t, "message after SetMailState", got)
	}
	diff(t, "pending mail", []store.VoicemailMessage{msgs[0], msgs[1], msgs[4]}, pending(t, s, 10))
	diff(t, "pending mail, limit 2", []store.VoicemailMessage{msgs[0], msgs[1]}, pending(t, s, 2))

	// Sent at last: no longer pending, and the time is kept.
	sent := store.MailState{Status: store.MailSent, Attempts: 2, SentAt: mailNow}
	if err := s.SetMailState(t.Context(), msgs[1].ID, sent); err != nil {
		t.Fatal(err)
	}
	msgs[1].Mail = sent
	diff(t, "message mailed", msgs[1], getMessage(t, s, bob.ID, msgs[1].ID))
	diff(t, "pending mail after a send", ids([]store.VoicemailMessage{msgs[0], msgs[4]}), ids(pending(t, s, 10)))
	// Back to pending: the zero SentAt and error are stored as such.
	if err := s.SetMailState(t.Context(), msgs[2].ID, store.MailState{Status: store.MailPending}); err != nil {
		t.Fatal(err)
	}
	msgs[2].Mail = store.MailState{Status: store.MailPending}
	diff(t, "message pending again", msgs[2], getMessage(t, s, alice.ID, msgs[2].ID))
}

// testGreetings: put, replace, get, delete; each user has their own.
func testGreetings(t *testing.T, s MailboxStore) {
	alice, bob := mailbox(t, s, "alice"), mailbox(t, s, "bob")
	ctx := t.Context()
	_, err := s.Greeting(ctx, alice.ID)
	wantErr(t, "Greeting before any was put", err, store.ErrNotFound)
	put := func(userID int64, b []byte) {
		t.Helper()
		if err := s.PutGreeting(ctx, userID, b); err != nil {
			t.Fatalf("PutGreeting(%d): %v", userID, err)
		}
	}
	first, second, bobs := wav(1, 200<<10), wav(2, 50<<10), wav(3, 1000)
	put(alice.ID, first)
	put(bob.ID, bobs)
	diff(t, "alice's greeting", first, greeting(t, s, alice.ID))
	put(alice.ID, second)
	diff(t, "alice's greeting, replaced", second, greeting(t, s, alice.ID))
	diff(t, "bob's greeting", bobs, greeting(t, s, bob.ID))

	if err := s.DeleteGreeting(ctx, alice.ID); err != nil {
		t.Fatalf("DeleteGreeting: %v", err)
	}
	_, err = s.Greeting(ctx, alice.ID)
	wantErr(t, "Greeting after DeleteGreeting", err, store.ErrNotFound)
	if err := s.DeleteGreeting(ctx, alice.ID); err != nil {
		t.Errorf("DeleteGreeting of none: %v, want no error", err)
	}
	if err := s.DeleteGreeting(ctx, 987654); err != nil {
		t.Errorf("DeleteGreeting of a missing user: %v, want no error", err)
	}
	diff(t, "bob's greeting after alice's went", bobs, greeting(t, s, bob.ID))
	put(alice.ID, first)
	diff(t, "alice's greeting, put again", first, greeting(t, s, alice.ID))
}

// fillMailbox leaves u two messages, one of them pending mail, and a
// greeting.
func fillMailbox(t *testing.T, s MailboxStore, u store.SIPUser) []store.VoicemailMessage {
	t.Helper()
	a := save(t, s, message(u, 0), wav(uint64(u.ID), 1000))
	p := message(u, 1)
	p.Mail.Status = store.MailPending
	b := save(t, s, p, wav(uint64(u.ID)+1, 1000))
	if err := s.PutGreeting(t.Context(), u.ID, wav(uint64(u.ID), 500)); err != nil {
		t.Fatalf("PutGreeting(%d): %v", u.ID, err)
	}
	return []store.VoicemailMessage{a, b}
}

// checkEmptied checks that u's messages and greeting are gone, and that the
// other mailbox kept is intact.
func checkEmptied(t *testing.T, s MailboxStore, u store.SIPUser, msgs []store.VoicemailMessage, kept store.SIPUser, keptMsgs []store.VoicemailMessage) {
	t.Helper()
	ctx := t.Context()
	for _, m := range msgs {
		_, err := s.GetMessage(ctx, u.ID, m.ID)
		wantErr(t, fmt.Sprintf("GetMessage(%d) of a deleted user", m.ID), err, store.ErrNotFound)
		_, err = s.MessageAudio(ctx, u.ID, m.ID)
		wantErr(t, fmt.Sprintf("MessageAudio(%d) of a deleted user", m.ID), err, store.ErrNotFound)
	}
	if got := listMessages(t, s, u.ID); len(got) != 0 {
		t.Errorf("deleted user lists messages %v, want none", ids(got))
	}
	diff(t, "deleted user's usage", store.MailboxUsage{}, usage(t, s, u.ID))
	_, err := s.Greeting(ctx, u.ID)
	wantErr(t, "Greeting of a deleted user", err, store.ErrNotFound)

	diff(t, "kept user's messages", keptMsgs, listMessages(t, s, kept.ID))
	diff(t, "pending mail: only the kept user's", ids(keptMsgs[1:]), ids(pending(t, s, 10)))
	if _, err := s.Greeting(ctx, kept.ID); err != nil {
		t.Errorf("kept user's greeting: %v", err)
	}
	// The deleted user's ID takes no new messages.
	m := message(u, 5)
	wantErr(t, "SaveMessage for the deleted user", s.SaveMessage(ctx, &m, nil), store.ErrNotFound)
}

// testMailDeleteUser: deleting a SIP user deletes its messages and
// greeting, and nothing of another user's.
func testMailDeleteUser(t *testing.T, s MailboxStore) {
	acc := newAccount(t, s, "acme")
	doomed := newSIPUser(t, s, acc.ID, "doomed", "example.com", 1)
	kept := newSIPUser(t, s, acc.ID, "kept", "example.com", 1)
	doomedMsgs, keptMsgs := fillMailbox(t, s, doomed), fillMailbox(t, s, kept)
	remove(t, s, store.Tx.DeleteSIPUser, doomed.ID)
	checkEmptied(t, s, doomed, doomedMsgs, kept, keptMsgs)
}

// testMailDeleteAccount: deleting an account deletes its users' mailboxes.
func testMailDeleteAccount(t *testing.T, s MailboxStore) {
	doomed, kept := mailbox(t, s, "doomed"), mailbox(t, s, "kept")
	doomedMsgs, keptMsgs := fillMailbox(t, s, doomed), fillMailbox(t, s, kept)
	remove(t, s, store.Tx.DeleteAccount, doomed.AccountID)
	checkEmptied(t, s, doomed, doomedMsgs, kept, keptMsgs)
}

// testMailRevision: no Mailboxes write advances the revision or shows in
// the change log, and an Update neither sees nor loses messages.
func testMailRevision(t *testing.T, s MailboxStore) {
	u := mailbox(t, s, "alice")
	rev := revision(t, s)
	ctx := t.Context()
	m := save(t, s, message(u, 0), wav(1, 1000))
	deleted := save(t, s, message(u, 1), wav(2, 1000))
	for _, err := range []error{
		s.SetMessageRead(ctx, u.ID, m.ID, true),
		s.SetMailState(ctx, m.ID, store.MailState{Status: store.MailSent, Attempts: 1, SentAt: mailNow}),
		s.DeleteMessage(ctx, u.ID, deleted.ID),
		s.PutGreeting(ctx, u.ID, wav(3, 100)),
		s.PutGreeting(ctx, u.ID, wav(4, 100)),
		s.DeleteGreeting(ctx, u.ID),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := revision(t, s); got != rev {
		t.Errorf("revision moved from %d to %d on mailbox writes, want it unchanged", rev, got)
	}
	if got := changesSince(t, s, rev); len(got) != 0 {
		t.Errorf("mailbox writes logged changes %+v, want none", got)
	}
	newAccount(t, s, "other")
	m = getMessage(t, s, u.ID, m.ID)
	diff(t, "messages after a configuration write", []store.VoicemailMessage{m}, listMessages(t, s, u.ID))
}

// testMailConcurrent saves messages from many goroutines while Updates
// run: every write succeeds and every message gets its own ID.
func testMailConcurrent(t *testing.T, s MailboxStore) {
	const n, updates = 40, 5
	u := mailbox(t, s, "alice")
	ctx := t.Context()
	errs := make([]error, n+updates)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			m := message(u, i)
			errs[i] = s.SaveMessage(ctx, &m, wav(uint64(i), 4000))
		})
	}
	wg.Go(func() {
		<-start
		for i := range updates {
			errs[n+i] = s.Update(ctx, func(tx store.Tx) error {
				return tx.CreateAccount(ctx, &store.Account{Name: fmt.Sprint("a", i)})
			})
		}
	})
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	msgs := listMessages(t, s, u.ID)
	seen := map[int64]bool{}
	for _, m := range msgs {
		seen[m.ID] = true
	}
	if len(msgs) != n || len(seen) != n {
		t.Errorf("%d messages (%d IDs) after %d concurrent saves, want %d", len(msgs), len(seen), n, n)
	}
	diff(t, "usage after concurrent saves", store.MailboxUsage{Messages: n, Unread: n, DurationMS: 1000 * n * (n + 1) / 2},
		usage(t, s, u.ID))
}

// testRingTimeout: SIP users keep Voicemail.RingTimeout as given, 0
// included (provisioning applies the default).
func testRingTimeout(t *testing.T, s MailboxStore) {
	acc := newAccount(t, s, "acme")
	u := create(t, s, store.Tx.CreateSIPUser, store.SIPUser{
		AccountID: acc.ID, Username: "alice", Realm: "example.com", Channels: new(1),
		Voicemail: store.Voicemail{Enabled: true, RingTimeout: 40},
	})
	if got := get(t, s, store.Tx.GetSIPUser, u.ID).Voicemail.RingTimeout; got != 40 {
		t.Errorf("ring timeout after create: %d, want 40", got)
	}
	for _, want := range []int{store.MaxRingTimeout, 0, store.MinRingTimeout} {
		up := get(t, s, store.Tx.GetSIPUser, u.ID)
		up.Voicemail.RingTimeout = want
		create(t, s, store.Tx.UpdateSIPUser, up)
		got := get(t, s, store.Tx.GetSIPUser, u.ID)
		if got.Voicemail.RingTimeout != want {
			t.Errorf("ring timeout after update to %d: %d", want, got.Voicemail.RingTimeout)
		}
		var byName store.SIPUser
		view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
			byName, err = tx.GetSIPUserByName(ctx, u.Realm, u.Username)
			return err
		})
		if byName.Voicemail.RingTimeout != want {
			t.Errorf("ring timeout by name after update to %d: %d", want, byName.Voicemail.RingTimeout)
		}
	}
	if users, _ := list(t, s, store.Tx.ListSIPUsers, store.SIPUserFilter{}); len(users) != 1 ||
		users[0].Voicemail.RingTimeout != store.MinRingTimeout {
		t.Errorf("listed users %+v, want one with ring timeout %d", users, store.MinRingTimeout)
	}
}
