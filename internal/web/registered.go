package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/store"
)

// devices says how many devices are registered, in plain words: "No",
// "1 device", "3 devices".
func devices(n int) string {
	switch n {
	case 0:
		return "No"
	case 1:
		return "1 device"
	}
	return fmt.Sprintf("%d devices", n)
}

// userLive is a SIP user page's live state: its registered contacts, on
// every node sharing the live state.
type userLive struct {
	Available bool // the SIP edge answers; false: the state is unknown
	Contacts  []contactView
}

// Summary counts the registered devices in words: "1 device".
func (l *userLive) Summary() string { return devices(len(l.Contacts)) }

// contactView is one registered contact as the page shows it.
type contactView struct {
	live.Binding
	now time.Time
}

// ExpiresIn is the time left, "in 3m 20s", or "expired".
func (c contactView) ExpiresIn() string {
	if !c.Expires.After(c.now) {
		return "expired"
	}
	return "in " + fmtAgo(c.now, c.Expires)
}

// Ping is the last NAT ping's round trip and age, or that none was sent.
func (c contactView) Ping() string {
	if c.LastPing.IsZero() && c.LatencyMS == 0 {
		return "not pinged yet"
	}
	s := fmt.Sprintf("%.1f ms", c.LatencyMS)
	if !c.LastPing.IsZero() {
		s += ", " + fmtAgo(c.LastPing, c.now) + " ago"
	}
	return s
}

// userLiveState reads the contacts of u from the SIP edge: one call.
func (s *Server) userLiveState(u *store.SIPUser) *userLive {
	l := &userLive{Available: s.live != nil}
	if s.live == nil {
		return l
	}
	now := s.now()
	for _, b := range s.live.Registrations(u.AccountID, u.Username) {
		if b.SIPUserID == 0 || b.SIPUserID == u.ID {
			l.Contacts = append(l.Contacts, contactView{Binding: b, now: now})
		}
	}
	return l
}

// registeredCounts counts the devices registered now per SIP user ID, for
// a list's Registered column: one Registrations call for the page (accountID
// 0: every account the caller sees). nil when the SIP edge is not known.
func (s *Server) registeredCounts(_ *http.Request, ss *session, accountID int64) map[int64]int {
	if s.live == nil {
		return nil
	}
	if !ss.Caller.Operator {
		accountID = ss.Caller.AccountID
	}
	out := map[int64]int{}
	for _, b := range s.live.Registrations(accountID, "") {
		if ss.Caller.Operator || b.AccountID == ss.Caller.AccountID {
			out[b.SIPUserID]++
		}
	}
	return out
}
