package b2bua

import (
	"testing"
	"time"

	"github.com/sipward/sipward/internal/pipeline"
)

// Which failures of a user's phones send the call to its mailbox.
func TestDivertable(t *testing.T) {
	for _, tt := range []struct {
		status   int
		noAnswer bool
		want     bool
	}{
		{486, false, true}, {600, false, true}, {603, false, true}, {480, false, true}, {408, false, true},
		{503, false, true}, {500, false, true},
		{487, true, true},   // sipward cancelled it: rang too long
		{487, false, false}, // the caller cancelled
		{404, false, false}, {488, false, false}, {403, false, false},
	} {
		if got := divertable(tt.status, tt.noAnswer); got != tt.want {
			t.Errorf("divertable(%d, noAnswer %v) = %v, want %v", tt.status, tt.noAnswer, got, tt.want)
		}
	}
	if toMailbox(486, true, false, true) {
		t.Error("a caller who hung up reached the mailbox")
	}
	if toMailbox(200, false, false, false) {
		t.Error("an answered call went to the mailbox")
	}
	if !toMailbox(503, true, true, false) {
		t.Error("an unreachable phone did not send the call to the mailbox")
	}
}

// The ring timeout is one deadline over all of a user's phones.
func TestRingLimit(t *testing.T) {
	vm := pipeline.Target{Why: "mailbox"}
	l := newRingLimit(pipeline.Plan{Voicemail: &vm, RingTimeout: 5 * time.Second}, t0)
	if d, ok := l.left(t0.Add(2 * time.Second)); !ok || d != 3*time.Second || !l.mailbox {
		t.Errorf("2 s in: %s %v, want 3s left", d, ok)
	}
	if _, ok := l.left(t0.Add(5 * time.Second)); ok {
		t.Error("the deadline passed but the next phone would still ring")
	}
	l = newRingLimit(pipeline.Plan{RingTimeout: 5 * time.Second}, t0)
	if d, ok := l.left(t0.Add(time.Hour)); !ok || d != 0 || l.mailbox {
		t.Errorf("no mailbox: %s %v; want the B2BUA's own limit", d, ok)
	}
}
