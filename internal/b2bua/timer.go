package b2bua

// One leg's session timer (RFC 4028) and the header fields it is read from
// and written to; sessiontimer.go acts on it.

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// sessionTimer is one leg's session timer. Its fields are atomics: the
// ticker reads them for every call without taking the call's lock.
type sessionTimer struct {
	interval   atomic.Int64 // nanoseconds; 0: no timer on the leg
	weRefresh  atomic.Bool
	last       atomic.Int64 // unix nanos of the last refresh (or of the 2xx)
	refreshing atomic.Bool
	update     atomic.Bool // the peer allows UPDATE: refreshes use it
}

// set records an agreed interval and refresher, refreshed now.
func (st *sessionTimer) set(interval time.Duration, weRefresh bool, now time.Time) {
	st.interval.Store(int64(interval))
	st.weRefresh.Store(weRefresh)
	st.last.Store(now.UnixNano())
}

// refreshed records a refresh of the leg at now.
func (st *sessionTimer) refreshed(now time.Time) {
	if st.interval.Load() > 0 {
		st.last.Store(now.UnixNano())
	}
}

// headers returns the Session-Expires (and, when the peer refreshes,
// Require: timer) sipward puts on a request it sends in the leg (asUAC) or
// on a 2xx it answers with; none when the leg has no timer.
func (st *sessionTimer) headers(asUAC bool) []sip.Header {
	iv := time.Duration(st.interval.Load())
	if iv == 0 {
		return nil
	}
	// refresher names the side that refreshes, as uac or uas of this transaction.
	we := st.weRefresh.Load()
	ref := "uas"
	if asUAC == we {
		ref = "uac"
	}
	hs := []sip.Header{sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=%s", int(iv/time.Second), ref)),
		sip.NewHeader("Supported", "timer")}
	if !asUAC && !we {
		hs = append(hs, sip.NewHeader("Require", "timer")) // the requester refreshes: it must support timers
	}
	return hs
}

// sessionExpires parses a message's Session-Expires (or its compact form
// x): the interval and its refresher parameter ("" when absent).
func sessionExpires(m interface{ GetHeader(string) sip.Header }) (iv time.Duration, refresher string, ok bool) {
	h := m.GetHeader("Session-Expires")
	if h == nil {
		h = m.GetHeader("x")
	}
	if h == nil {
		return 0, "", false
	}
	v, params, _ := strings.Cut(h.Value(), ";")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0, "", false
	}
	for _, p := range strings.Split(params, ";") {
		if k, val, _ := strings.Cut(strings.TrimSpace(p), "="); strings.EqualFold(k, "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(val))
		}
	}
	return time.Duration(n) * time.Second, refresher, true
}

// minSE parses a message's Min-SE, 0 when absent.
func minSE(m interface{ GetHeader(string) sip.Header }) time.Duration {
	h := m.GetHeader("Min-SE")
	if h == nil {
		return 0
	}
	v, _, _ := strings.Cut(h.Value(), ";")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// hasTag reports whether a comma-separated option-tag header of m (Supported,
// Require, Allow) names tag.
func hasTag(m interface{ GetHeaders(string) []sip.Header }, name, tag string) bool {
	for _, h := range m.GetHeaders(name) {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// retryTimer returns a copy of inv, answered 422, asking for the interval
// the answer's Min-SE names (RFC 4028 §7.4), with CSeq seq; false when the
// answer names none sipward can offer.
func retryTimer(inv *sip.Request, res *sip.Response, seq uint32) (*sip.Request, time.Duration, bool) {
	want := minSE(res)
	if want <= 0 || want > 86400*time.Second {
		return nil, 0, false
	}
	req := inv.Clone()
	req.RemoveHeader("Via")
	req.RemoveHeader("Session-Expires")
	req.RemoveHeader("Min-SE")
	if cs := req.CSeq(); cs != nil {
		cs.SeqNo = seq
	}
	secs := strconv.Itoa(int(want / time.Second))
	req.AppendHeader(sip.NewHeader("Session-Expires", secs))
	req.AppendHeader(sip.NewHeader("Min-SE", secs))
	return req, want, true
}
