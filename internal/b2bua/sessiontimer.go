package b2bua

// Session timers (RFC 4028) on both legs of a call whose customer has them
// on (an IP endpoint's or SIP user's session_timers): each leg negotiates
// its own interval and refresher. On the caller's leg sipward is the UAS:
// an INVITE asking for less than Config.MinSE is answered 422 with Min-SE,
// and the 2xx says the interval and who refreshes (the caller when it
// supports timers, else sipward). On the far leg sipward is the UAC: its
// INVITE offers the customer's session_expires with Min-SE, a 422 is
// answered once with the interval it asks for, and the 2xx's
// Session-Expires (or its absence: the peer does not do timers) says who
// refreshes.
//
// A leg is refreshed by any INVITE or UPDATE answered 2xx in its dialog,
// from either side. SessionTimers ticks over the calls: a leg sipward
// refreshes gets a re-INVITE with the SDP it last had from us (or an UPDATE
// without one when its peer allows UPDATE) at half its interval; a leg whose
// peer refreshes and has not by the interval less min(32 s, a third) is
// taken as gone. Either failure ends the call on both legs, its channels
// freed, and is recorded as a decision.

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/ticker"
)

// timerStage names the session timer's Results and decisions.
const timerStage = "session_timer"

// defaultSessionExpires is the interval offered when a principal's is 0.
const defaultSessionExpires = 1800 * time.Second

// timerSettings returns whether the call of r has session timers and the
// interval to offer: its customer's (the caller's principal, or for a call
// from the core the first target's), or on when the caller requires them.
func timerSettings(r *pipeline.Request) (on bool, expires time.Duration) {
	switch {
	case r.Principal != nil:
		on, expires = r.Principal.SessionTimers, r.Principal.SessionExpires
	case len(r.Plan.Targets) > 0:
		on, expires = r.Plan.Targets[0].SessionTimers, r.Plan.Targets[0].SessionExpires
	}
	if hasTag(r.Msg, "Require", "timer") {
		on = true
	}
	if expires <= 0 {
		expires = defaultSessionExpires
	}
	return on, expires
}

// tooSmall answers an INVITE whose Session-Expires is below sipward's
// Min-SE: 422 with Min-SE (RFC 4028 §8.1).
func (b *B2BUA) tooSmall(r *pipeline.Request) (pipeline.Result, bool) {
	iv, _, ok := sessionExpires(r.Msg)
	if !ok || iv >= b.cfg.MinSE {
		return pipeline.Result{}, false // the common case: no second look at the settings (newCall takes them)
	}
	if on, _ := timerSettings(r); !on {
		return pipeline.Result{}, false
	}
	return pipeline.Reject(timerStage, 422, "Session Interval Too Small",
		fmt.Sprintf("Session-Expires %ds is below Min-SE %ds", int(iv/time.Second), int(b.cfg.MinSE/time.Second)),
		sip.NewHeader("Min-SE", strconv.Itoa(int(b.cfg.MinSE/time.Second)))), true
}

// callerTimer agrees the caller's leg's timer from its INVITE (sipward the
// UAS): the interval it asks for, lowered to the customer's but not below
// either side's Min-SE; the caller refreshes when it says so or supports
// timers, else sipward does.
func (b *B2BUA) callerTimer(c *call, inv *sip.Request, now time.Time) {
	if !c.timers {
		return
	}
	iv := c.expires
	asked, refresher, ok := sessionExpires(inv)
	if ok && asked < iv {
		iv = asked
	}
	iv = max(iv, b.cfg.MinSE, minSE(inv))
	weRefresh := !hasTag(inv, "Supported", "timer") && !hasTag(inv, "Require", "timer")
	switch refresher {
	case "uac":
		weRefresh = false
	case "uas":
		weRefresh = true
	}
	c.a.timer.update.Store(hasTag(inv, "Allow", "UPDATE"))
	c.a.timer.set(iv, weRefresh, now)
}

// addOfferTimer adds to the far leg's INVITE req the headers offering the
// call's session timer of interval expires.
func (b *B2BUA) addOfferTimer(req appender, c *call, expires time.Duration) {
	if !c.timers {
		return
	}
	req.AppendHeader(seHeader(expires, refNone))
	if b.cfg.MinSE != rfcMinSE { // 90 s is every UA's Min-SE unless told otherwise (RFC 4028 §5)
		req.AppendHeader(b.minSE)
	}
	req.AppendHeader(hdrSupportedTimer)
}

// answeredTimer agrees leg l's timer from the 2xx to our INVITE that
// offered offered (sipward the UAC): its Session-Expires, or, without one,
// the offer with sipward refreshing.
func (b *B2BUA) answeredTimer(c *call, l *leg, res *sip.Response, offered time.Duration, now time.Time) {
	if !c.timers {
		return
	}
	l.timer.update.Store(hasTag(res, "Allow", "UPDATE"))
	iv, refresher, ok := sessionExpires(res)
	if !ok {
		l.timer.set(offered, true, now)
		return
	}
	l.timer.set(iv, refresher != "uas", now)
}

// peerRefresh takes an INVITE or UPDATE from leg in's peer, answered 2xx,
// as a refresh of in (adopting the interval and refresher it asks for).
func (b *B2BUA) peerRefresh(in *leg, req *sip.Request, now time.Time) {
	st := &in.timer
	if st.interval.Load() == 0 {
		return
	}
	if iv, refresher, ok := sessionExpires(req); ok && iv >= b.cfg.MinSE {
		st.interval.Store(int64(iv))
		st.weRefresh.Store(refresher == "uas")
	}
	st.refreshed(now)
}

// SessionTimers refreshes the legs sipward refreshes and ends calls whose
// peers stopped refreshing, until ctx ends (see the file's comment).
//
// It looks at every call once per tenth of Min-SE (9 s by default): no
// interval is shorter than Min-SE, so a refresh is sent at most a tenth of
// it late (still well before expiry) and a silent peer is noticed as late.
// A scan each second cost calls at the top rate: in a SIPp A/B (bench/run.sh
// BASE_REV = this code without the ticker) the highest IP-auth rate was
// 5,000/s with it against 7,000/s without.
func (b *B2BUA) SessionTimers(ctx context.Context) {
	tick := max(b.cfg.MinSE/10, 100*time.Millisecond)
	ticker.Every(ctx, tick, func(now time.Time) {
		for _, c := range b.calls.all() {
			if !c.timers || c.ended.Load() {
				continue
			}
			for _, fromA := range []bool{true, false} {
				l, _ := c.legs(fromA)
				b.checkTimer(ctx, c, l, fromA, now)
			}
		}
	})
}

// checkTimer acts on leg l's timer at now.
func (b *B2BUA) checkTimer(ctx context.Context, c *call, l *leg, legA bool, now time.Time) {
	st := &l.timer
	iv := time.Duration(st.interval.Load())
	if iv == 0 {
		return
	}
	since := now.Sub(time.Unix(0, st.last.Load()))
	switch {
	case st.weRefresh.Load():
		if since >= iv/2 && st.refreshing.CompareAndSwap(false, true) {
			go b.refresh(ctx, c, l, legA)
		}
	case since >= iv-min(32*time.Second, iv/3):
		b.timerFailed(c, legA, "INVITE", 408, fmt.Sprintf("leg %s's peer did not refresh its session within %ds", legName(legA), int(iv/time.Second)))
	}
}

// refresh sends one session refresh on leg l: an UPDATE when its peer
// allows it (a 405/501 falls back to re-INVITE), else a re-INVITE with the
// SDP the leg last had from us. A 491 is tried again a moment later; any
// other failure ends the call.
func (b *B2BUA) refresh(ctx context.Context, c *call, l *leg, legA bool) {
	defer l.timer.refreshing.Store(false)
	method := sip.INVITE
	if l.timer.update.Load() {
		method = sip.UPDATE
	}
	res, err := b.sendRefresh(ctx, c, l, method)
	if err == nil && method == sip.UPDATE && (res.StatusCode == 405 || res.StatusCode == 501) {
		l.timer.update.Store(false)
		method = sip.INVITE
		res, err = b.sendRefresh(ctx, c, l, method)
	}
	switch {
	case ctx.Err() != nil || c.ended.Load():
	case err != nil:
		b.timerFailed(c, legA, string(method), 408, fmt.Sprintf("session refresh (%s) of leg %s got no answer", method, legName(legA)))
	case res.StatusCode == 491:
		time.Sleep(2 * time.Second)
	case !res.IsSuccess():
		b.timerFailed(c, legA, string(method), res.StatusCode, fmt.Sprintf("session refresh (%s) of leg %s answered %d %s", method, legName(legA), res.StatusCode, res.Reason))
	default:
		now := time.Now()
		if iv, refresher, ok := sessionExpires(res); ok && iv >= b.cfg.MinSE {
			l.timer.interval.Store(int64(iv))
			l.timer.weRefresh.Store(refresher != "uas")
		}
		l.timer.refreshed(now)
	}
}

// sendRefresh sends a refresh request on l and returns its final answer,
// ACKing a 2xx to a re-INVITE.
func (b *B2BUA) sendRefresh(ctx context.Context, c *call, l *leg, method sip.RequestMethod) (*sip.Response, error) {
	cl, err := b.client(l.transport)
	if err != nil {
		return nil, err
	}
	var body []byte
	if method == sip.INVITE {
		c.mu.Lock()
		body = l.sent
		c.mu.Unlock()
	}
	req := c.request(l, method, body, b.contact(l.transport))
	l.timer.addTo(req, true)
	cctx, cancel := context.WithTimeout(ctx, 64*b.t1)
	defer cancel()
	res, err := cl.Do(cctx, req)
	if err != nil {
		return nil, err
	}
	if method == sip.INVITE && res.IsSuccess() {
		ack := c.request(l, sip.ACK, nil, b.contact(l.transport))
		ack.CSeq().SeqNo = req.CSeq().SeqNo
		b.sendACK(cl, ack)
	}
	return res, nil
}

// timerFailed ends a call whose session timer failed on leg legA, and
// records why.
func (b *B2BUA) timerFailed(c *call, legA bool, method string, status int, why string) {
	if c.ended.Load() {
		return
	}
	b.end(c, true, true, "session timer: "+why)
	if b.cfg.Decide == nil {
		return
	}
	l, _ := c.legs(legA)
	c.mu.Lock()
	v, callID := c.view, l.callID
	c.mu.Unlock()
	b.cfg.Decide(live.Decision{Time: time.Now(), Method: method, CallID: callID, Source: v.Source, From: v.From, To: v.To,
		AccountID: v.AccountID, Account: v.Account, Auth: v.Auth, Endpoint: v.Endpoint, SIPUser: v.SIPUser, Passed: []string{},
		Stage: timerStage, Status: status, Result: "failed", Why: why + "; the call was ended on both legs"})
}
