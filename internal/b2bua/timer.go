package b2bua

// One leg's session timer (RFC 4028) and the header fields it is read from
// and written to; sessiontimer.go acts on it.

import (
	"strconv"
	"strings"
	"sync"
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

// headers returns the Session-Expires sipward puts on a request it sends
// in the leg (asUAC; with Supported: timer) or on a 2xx it answers with
// (with Require: timer when the peer refreshes); none when the leg has no
// timer. Nothing more: every header is bytes each peer parses on every
// call.
func (st *sessionTimer) headers(asUAC bool) []sip.Header {
	var hs headerList
	st.addTo(&hs, asUAC)
	return hs
}

// headerList collects headers (AppendHeader) into a slice.
type headerList []sip.Header

func (l *headerList) AppendHeader(h sip.Header) { *l = append(*l, h) }

// appender is a message headers are added to.
type appender interface{ AppendHeader(sip.Header) }

// addTo appends the headers of headers(asUAC) to m. The header values are
// shared, immutable ones (a call's answer and INVITE allocate none).
func (st *sessionTimer) addTo(m appender, asUAC bool) {
	iv := time.Duration(st.interval.Load())
	if iv == 0 {
		return
	}
	// refresher names the side that refreshes, as uac or uas of this transaction.
	we := st.weRefresh.Load()
	ref := refUAS
	if asUAC == we {
		ref = refUAC
	}
	m.AppendHeader(seHeader(iv, ref))
	switch {
	case asUAC: // a request says it supports timers (RFC 4028 §7.1)
		m.AppendHeader(hdrSupportedTimer)
	case !we: // an answer whose requester refreshes: it must support timers
		m.AppendHeader(hdrRequireTimer)
	}
}

// The shared header values sipward sends (never changed once made).
var (
	hdrSupportedTimer = sip.NewHeader("Supported", "timer")
	hdrRequireTimer   = sip.NewHeader("Require", "timer")
	seHeaders         sync.Map // seKey → sip.Header
)

// rfcMinSE is the Min-SE a UA assumes when none is named (RFC 4028 §5).
const rfcMinSE = 90 * time.Second

// Session-Expires refresher parameters: none, uac, uas.
const (
	refNone uint8 = iota
	refUAC
	refUAS
)

type seKey struct {
	secs int64
	ref  uint8
}

// seHeader returns the shared Session-Expires header of interval iv with
// refresher ref.
func seHeader(iv time.Duration, ref uint8) sip.Header {
	k := seKey{int64(iv / time.Second), ref}
	if h, ok := seHeaders.Load(k); ok {
		return h.(sip.Header)
	}
	v := strconv.FormatInt(k.secs, 10)
	switch ref {
	case refUAC:
		v += ";refresher=uac"
	case refUAS:
		v += ";refresher=uas"
	}
	h, _ := seHeaders.LoadOrStore(k, sip.NewHeader("Session-Expires", v))
	return h.(sip.Header)
}

// sessionExpires parses a message's Session-Expires (or its compact form
// x): the interval and its refresher parameter ("" when absent).
func sessionExpires(m headed) (iv time.Duration, refresher string, ok bool) {
	h := header(m, "Session-Expires", "x")
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
func minSE(m headed) time.Duration {
	h := header(m, "Min-SE", "")
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
// Compact forms are matched too (k for Supported). It does not allocate.
func hasTag(m headed, name, tag string) bool {
	for _, h := range m.Headers() {
		if n := h.Name(); !strings.EqualFold(n, name) && !(strings.EqualFold(name, "Supported") && (n == "k" || n == "K")) {
			continue
		}
		for v := h.Value(); v != ""; {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// headed is a SIP message's header list.
type headed interface{ Headers() []sip.Header }

// header returns m's first header named name or compact (when not ""),
// case-insensitively, without allocating (sipgo's GetHeader lower-cases
// every unknown header's name it passes).
func header(m headed, name, compact string) sip.Header {
	for _, h := range m.Headers() {
		if n := h.Name(); strings.EqualFold(n, name) || (compact != "" && strings.EqualFold(n, compact)) {
			return h
		}
	}
	return nil
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
