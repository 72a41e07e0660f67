package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Session timers (RFC 4028) against the real binary: a raw core on
// 127.0.0.1 and a raw customer switch on 127.0.0.2. The node runs with
// --session-min-se 2s so that intervals of seconds are accepted and the
// tests take seconds, not minutes.

// timerFixture starts a node and an account whose IP endpoint 127.0.0.2
// has the given endpoint fields; core answers as configured by setup.
func timerFixture(t *testing.T, fields map[string]any, setup func(core *rawUAS), args ...string) (*node, *rawUAS, *uac) {
	t.Helper()
	var opts []func(*rawUAS)
	if setup != nil {
		opts = append(opts, setup)
	}
	core := newRawUAS(t, "127.0.0.1", 200, opts...)
	n := start(t, "", append([]string{"--upstream", "sip:" + core.addr, "--core-addr", "127.0.0.1/32"}, args...)...)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	ep := map[string]any{"address": "127.0.0.2", "channels": 1}
	for k, v := range fields {
		ep[k] = v
	}
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), ep)
	waitSnapshot(t, n)
	return n, core, newUAC(t, "127.0.0.2", n.SIP)
}

// TestSessionTimer422: an INVITE asking for a session interval below
// sipward's Min-SE is answered 422 with Min-SE: 90, the decision says why,
// and its channel is free for the next call (the endpoint has one).
func TestSessionTimer422(t *testing.T) {
	n, _, u := timerFixture(t, nil, nil)
	c := newCall("441234567890", "442071234567")
	u.send(u.invite(c, "Session-Expires: 60", "Supported: timer"))
	_, res := u.final("INVITE", 5*time.Second)
	u.ack(c, res)
	if res.StatusCode != 422 || res.GetHeader("Min-SE") == nil || res.GetHeader("Min-SE").Value() != "90" {
		t.Fatalf("INVITE with Session-Expires 60: %d, Min-SE %v; want 422 with Min-SE 90", res.StatusCode, res.GetHeader("Min-SE"))
	}
	if d := n.decisionWith(t, c.callID, 422); d["stage"] != "session_timer" {
		t.Errorf("decision %v, want stage session_timer", d)
	}
	// With the interval asked again at 90, the call goes through: the 422 held no channel.
	c2 := newCall("441234567890", "442071234567")
	u.send(u.invite(c2, "Session-Expires: 90", "Supported: timer"))
	_, res = u.final("INVITE", 5*time.Second)
	u.ack(c2, res)
	if res.StatusCode != 200 {
		t.Fatalf("INVITE with Session-Expires 90: %d", res.StatusCode)
	}
	// The caller supports timers and did not name a refresher: it refreshes.
	if se := res.GetHeader("Session-Expires"); se == nil || se.Value() != "90;refresher=uac" || !hasRequire(res, "timer") {
		t.Errorf("200 Session-Expires %v, Require %v; want 90;refresher=uac and Require: timer", se, res.GetHeader("Require"))
	}
	u.bye(c2)
	n.waitIdle(t)
}

func hasRequire(m sip.Message, tag string) bool {
	for _, h := range m.GetHeaders("Require") {
		if strings.Contains(h.Value(), tag) {
			return true
		}
	}
	return false
}

// TestSessionRefreshBySipward: neither peer refreshes — the caller does
// not support timers, the core answers without Session-Expires — so
// sipward refreshes both legs itself at half the interval: re-INVITEs to
// the caller with the SDP it last had, UPDATEs to the core (its 200
// allows UPDATE). The call stays up past several intervals.
func TestSessionRefreshBySipward(t *testing.T) {
	n, core, u := timerFixture(t, nil, func(core *rawUAS) {
		core.headers200 = []string{"Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"}
	}, "--session-min-se", "2s")
	c := newCall("441234567890", "442071234567")
	u.send(u.invite(c, "Session-Expires: 4"))
	_, res := u.final("INVITE", 5*time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("call: %d", res.StatusCode)
	}
	u.ack(c, res)
	if se := res.GetHeader("Session-Expires"); se == nil || se.Value() != "4;refresher=uas" {
		t.Errorf("200 Session-Expires %v, want 4;refresher=uas (sipward refreshes)", se)
	}
	inv := core.requests(sip.INVITE)[0]
	if se := inv.GetHeader("Session-Expires"); se == nil || se.Value() != "1800" || inv.GetHeader("Min-SE") == nil {
		t.Errorf("the core's INVITE Session-Expires %v, Min-SE %v; want 1800 (the endpoint's default) and Min-SE", se, inv.GetHeader("Min-SE"))
	}
	legB := inv.CallID().Value()
	// Over 7 s (nearly two intervals of 4 s) the caller gets re-INVITEs every 2 s.
	reqs, _ := u.collect(7 * time.Second)
	var reinvites []*sip.Request
	for _, r := range reqs {
		if r.Method == sip.INVITE {
			reinvites = append(reinvites, r)
		}
	}
	if len(reinvites) < 2 {
		t.Fatalf("the caller got %v in 7 s, want at least 2 refresh re-INVITEs", methods(reqs))
	}
	if !strings.Contains(string(reinvites[0].Body()), "m=audio 40000") {
		t.Errorf("refresh re-INVITE SDP\n%s\nwant the SDP the caller had (the core echoed its own)", reinvites[0].Body())
	}
	if se := reinvites[0].GetHeader("Session-Expires"); se == nil || se.Value() != "4;refresher=uac" {
		t.Errorf("refresh Session-Expires %v, want 4;refresher=uac", se)
	}
	_, calls := n.api(t, "GET", "/calls", nil)
	if calls["total"] != float64(1) {
		t.Errorf("calls %v, want the call still up", calls)
	}
	// The core's leg (1800 s, sipward refreshing) got no refresh yet: its
	// timer is its own.
	if ups := core.requests(sip.UPDATE); len(ups) != 0 {
		t.Errorf("the core got %d UPDATEs within its 1800 s interval", len(ups))
	}
	_ = legB
	if st := u.bye(c); st != 200 {
		t.Fatalf("BYE: %d", st)
	}
	n.waitIdle(t)
}

// TestSessionRefreshOfTheCoreLeg: the core's 200 asks for a 4 s interval
// with sipward as refresher (refresher=uac) and allows UPDATE: sipward
// refreshes the core's leg with UPDATEs every 2 s.
func TestSessionRefreshOfTheCoreLeg(t *testing.T) {
	n, core, u := timerFixture(t, nil, func(core *rawUAS) {
		core.headers200 = []string{"Session-Expires: 4;refresher=uac", "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"}
	}, "--session-min-se", "2s")
	c := newCall("441234567890", "442071234567")
	u.establish(c)
	legB := core.requests(sip.INVITE)[0].CallID().Value()
	ups := core.waitRequests(t, sip.UPDATE, legB, 2)
	if se := ups[0].GetHeader("Session-Expires"); se == nil || se.Value() != "4;refresher=uac" || len(ups[0].Body()) != 0 {
		t.Errorf("UPDATE Session-Expires %v, body %q; want 4;refresher=uac and no SDP", se, ups[0].Body())
	}
	if st := u.bye(c); st != 200 {
		t.Fatalf("BYE: %d", st)
	}
	n.waitIdle(t)
}

// TestSessionTimerTeardown: when the peer that must refresh stops, or a
// refresh sipward sends fails, the call is ended on both legs, its channel
// freed and the decision recorded.
func TestSessionTimerTeardown(t *testing.T) {
	for _, tt := range []struct {
		name    string
		headers []string
		refuse  int // the core's answer to re-INVITEs (0: 200)
		status  int // the decision's
	}{
		{"the core never refreshes", []string{"Session-Expires: 3;refresher=uas"}, 0, 408},
		{"a refresh is refused", []string{"Session-Expires: 4;refresher=uac"}, 481, 481},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, core, u := timerFixture(t, nil, func(core *rawUAS) {
				core.headers200 = tt.headers
				if tt.refuse != 0 {
					core.inDialog = map[sip.RequestMethod]int{sip.INVITE: tt.refuse}
				}
			}, "--session-min-se", "2s")
			c := newCall("441234567890", "442071234567")
			u.establish(c)
			legB := core.requests(sip.INVITE)[0].CallID().Value()
			if got := u.until(sip.BYE, 15*time.Second); got[len(got)-1].Method != sip.BYE {
				t.Errorf("the caller got %v, want a BYE", methods(got))
			}
			core.waitRequests(t, sip.BYE, legB, 1)
			n.waitIdle(t)
			if d := n.decisionWith(t, legB, tt.status); d["stage"] != "session_timer" || d["result"] != "failed" {
				t.Errorf("decision %v, want a failed session_timer", d)
			}
		})
	}
}

// TestSessionTimersOff: with session_timers off nothing is offered or
// answered, and a short Session-Expires is not refused.
func TestSessionTimersOff(t *testing.T) {
	n, core, u := timerFixture(t, map[string]any{"session_timers": false}, nil)
	c := newCall("441234567890", "442071234567")
	u.send(u.invite(c, "Session-Expires: 60"))
	_, res := u.final("INVITE", 5*time.Second)
	u.ack(c, res)
	if res.StatusCode != 200 || res.GetHeader("Session-Expires") != nil {
		t.Errorf("answer %d with Session-Expires %v; want 200 without", res.StatusCode, res.GetHeader("Session-Expires"))
	}
	if se := core.requests(sip.INVITE)[0].GetHeader("Session-Expires"); se != nil {
		t.Errorf("the core's INVITE offers Session-Expires %s", se.Value())
	}
	u.bye(c)
	n.waitIdle(t)
}

// TestSessionTimerWithInterceptedReinvite: the caller's endpoint intercepts
// re-INVITEs and the caller refreshes (refresher=uac): its refreshes are
// answered by sipward with the session's Session-Expires, never reach the
// core, and keep the call up; when they stop, the call is ended.
func TestSessionTimerWithInterceptedReinvite(t *testing.T) {
	n, core, u := timerFixture(t, map[string]any{"intercept_reinvite": true}, nil, "--session-min-se", "2s")
	c := newCall("441234567890", "442071234567")
	u.send(u.invite(c, "Supported: timer", "Session-Expires: 6;refresher=uac"))
	_, res := u.final("INVITE", 5*time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("call: %d", res.StatusCode)
	}
	u.ack(c, res)
	if se := res.GetHeader("Session-Expires"); se == nil || se.Value() != "6;refresher=uac" {
		t.Fatalf("200 Session-Expires %v, want 6;refresher=uac", se)
	}
	legB := core.requests(sip.INVITE)[0].CallID().Value()
	// 8 s of refreshes every 2 s: longer than the interval (the call would
	// be ended 4 s after the last one).
	for range 4 {
		time.Sleep(2 * time.Second)
		u.inDialogBody(c, sip.INVITE, testSDP, "Supported: timer", "Session-Expires: 6;refresher=uac")
		_, res := u.final("INVITE", 5*time.Second)
		if res.StatusCode != 200 || res.GetHeader("Session-Expires") == nil || res.GetHeader("Session-Expires").Value() != "6;refresher=uac" {
			t.Fatalf("refresh answered %d, Session-Expires %v; want 200 with 6;refresher=uac", res.StatusCode, res.GetHeader("Session-Expires"))
		}
		u.ack(c, res)
	}
	if got := core.waitRequests(t, sip.INVITE, legB, 1); len(got) != 1 {
		t.Errorf("the core got %d INVITEs in its dialog, want only the first (refreshes intercepted)", len(got))
	}
	if _, calls := n.api(t, "GET", "/calls", nil); calls["total"] != float64(1) {
		t.Fatalf("calls %v, want the refreshed call up", calls)
	}
	// The caller stops refreshing: the call is ended.
	if got := u.until(sip.BYE, 15*time.Second); got[len(got)-1].Method != sip.BYE {
		t.Errorf("the caller got %v, want a BYE", methods(got))
	}
	core.waitRequests(t, sip.BYE, legB, 1)
	n.waitIdle(t)
}
