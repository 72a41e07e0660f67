package b2bua

// Diversion to voicemail: a call to a SIP user with voicemail on (the
// plan's Voicemail target) goes to the mailbox when none of the user's
// phones answers within the plan's RingTimeout, one refuses it busy
// (486, 600, 603) or unavailable (480, 408, 5xx), or none can be reached.
// The failed attempts are not answered to the caller; the mailbox's answer
// is, in the same dialog (the caller may have heard the phone ring).

import (
	"time"

	"github.com/sipward/sipward/internal/pipeline"
)

// ringLimit is the ring timeout of a call with a mailbox: one deadline over
// all of the user's contacts.
type ringLimit struct {
	mailbox  bool
	deadline time.Time // zero: the B2BUA's own ring limit per attempt
}

func newRingLimit(p pipeline.Plan, now time.Time) ringLimit {
	l := ringLimit{mailbox: p.Voicemail != nil}
	if l.mailbox && p.RingTimeout > 0 {
		l.deadline = now.Add(p.RingTimeout)
	}
	return l
}

// left returns how long the next attempt may ring (0: the B2BUA's limit),
// and false when the deadline has passed.
func (l ringLimit) left(now time.Time) (time.Duration, bool) {
	if l.deadline.IsZero() {
		return 0, true
	}
	d := l.deadline.Sub(now)
	return d, d > 0
}

// divertable reports whether a phone's final answer sends the call to its
// mailbox: busy, declined, unavailable, timed out or failed, or cancelled by
// sipward because it rang too long. Other refusals (404, 488 …) are the
// caller's answer.
func divertable(status int, noAnswer bool) bool {
	switch status {
	case 486, 600, 603, 480, 408:
		return true
	case 487:
		return noAnswer
	}
	return status >= 500 && status < 600
}

// toMailbox reports whether the attempts' outcome sends the call to the
// mailbox: nothing was answered to the caller yet (the last attempt failed
// over, next, or sipward would answer itself, own), its status is one a
// mailbox takes, and the caller has not given up.
func toMailbox(status int, next, own, callerGone bool) bool {
	if callerGone || !(next || own) {
		return false
	}
	return own || divertable(status, true)
}
