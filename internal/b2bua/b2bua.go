// Package b2bua is sipward's signalling-only back-to-back user agent: the
// INVITE chain's terminal handler. It answers the caller's INVITE as a UAS
// (leg a), sends its own INVITE as a UAC to the plan's targets in order
// (leg b), and relays what follows between the two dialogs — provisional
// and final answers, re-INVITEs (or answers them itself when the caller's
// endpoint intercepts them), UPDATE, INFO, REFER and NOTIFY, BYE — with
// nothing of one leg's topology copied onto the other — or carries a
// transfer (REFER) out itself when the customer has Smart Extension on. It ends calls on BYE, on a keepalive
// that goes unanswered, and on shutdown, and frees their channels.
//
// It knows the pipeline (its requests, plans and results) and sends through
// an edge-provided Sender; it knows nothing of sockets, transactions'
// internals, the registrar or the edge. sipward's own answers (100 Trying,
// a final answer when no target answered, 481 in a dialog) go through the
// edge's one answer function, given as Config.Answer or returned as
// Results; what it relays from the other leg it writes itself.
//
// Files, each one job: leg.go (one dialog, and the requests sent in it),
// call.go (a call's two legs, the call table, the API's view), b2bua.go
// (the B2BUA, sending, ending calls), invite.go (an initial INVITE, to its
// setup), egress.go (answering a target's challenge), media.go (the media
// relay), early.go (early dialogs: UPDATE and PRACK before the answer,
// 100rel end to end), dialog.go (requests inside a call), transfer.go
// (REFER carried out by sipward: Smart Extension), timer.go and
// sessiontimer.go (RFC 4028 session timers), keepalive.go (probing active
// calls), drain.go (shutdown).
package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/pipeline"
)

// Stage is the name the B2BUA's Results carry: a call's decision is the
// route stage's plan, carried out here.
const Stage = "route"

// Sender sends sipward's own requests: a client per transport, leaving
// from the listening sockets, and sipward's Contact and host.
type Sender interface {
	Client(transport string) (*sipgo.Client, error)
	Contact(transport string) sip.Uri
	Host() string
}

// MediaRelay anchors calls' media (package rtpengine's Client): offer and
// answer return the SDP rewritten to the relay's addresses.
type MediaRelay interface {
	Offer(ctx context.Context, callID, fromTag, toTag string, sdp []byte) ([]byte, error)
	Answer(ctx context.Context, callID, fromTag, toTag string, sdp []byte) ([]byte, error)
	Delete(ctx context.Context, callID string) error
}

// relayTimeout bounds one relay command from the call path (the client
// retries within it); releaseTimeout a session's deletion, which no call
// waits for and which a busy relay must not lose.
const (
	relayTimeout   = 2 * time.Second
	releaseTimeout = 10 * time.Second
)

// Config configures the B2BUA.
type Config struct {
	Sender Sender // required
	// Answer writes sipward's own answers to a request (the edge's one
	// Result → SIP answer function): 100 Trying, and the caller's final
	// answer when no target answered. Required.
	Answer func(r *pipeline.Request, res pipeline.Result)
	// Release frees the channels the limits stage took for a call, by its
	// Call-ID; called exactly once when the call ends or fails. nil: none.
	Release func(callID string)
	// InviteTimeout bounds how long the far leg may ring (default 3 min).
	InviteTimeout time.Duration
	// Unseal opens a target's sealed egress password (package secret's
	// Sealer.Open) when the target challenges sipward's INVITE; nil: such a
	// challenge fails the attempt, naming the missing key.
	Unseal func(sealed []byte) (string, error)
	// Keepalive is the interval of in-dialog OPTIONS to both legs of a
	// call (Keepalive runs them); 0: none.
	Keepalive time.Duration
	// Relay anchors a call's media on the media relay when the caller's
	// request or the target asks for it (relay.go); nil: no relay, a NAT-ed
	// party's media relies on symmetric RTP alone.
	Relay MediaRelay
	// Route decides where a transfer's new leg goes (transfer.go): the plan
	// of a call from by to the number dialled, on the configuration in
	// force (the route stage's), or the Result refusing it. nil: Smart
	// Extension is off everywhere, REFERs are relayed.
	Route func(ctx context.Context, by pipeline.Identity, dialled string, now time.Time) (pipeline.Plan, *pipeline.Result)
	// Decide records what sipward decided inside a call (a transfer) in
	// the decision log; nil: not recorded.
	Decide func(live.Decision)
	// MinSE is the smallest session-timer interval accepted (RFC 4028
	// Min-SE; default 90 s): an INVITE asking for less is answered 422.
	MinSE time.Duration
	// Registerer receives the B2BUA's metrics; nil: not registered.
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// B2BUA runs calls. Build it with New.
type B2BUA struct {
	cfg      Config
	sender   Sender
	calls    *callTable
	log      *slog.Logger
	t1       time.Duration
	answered atomic.Uint64 // calls that reached 200 on both legs
	// unrelaying counts relay deletions under way (Drain waits for them).
	unrelaying sync.WaitGroup
	minSE      sip.Header // Min-SE: Config.MinSE, offered on every far INVITE
}

// New returns a B2BUA. The RFC 3261 timers are sipgo's process-wide ones
// (sip.T1) as they are now.
func New(cfg Config) (*B2BUA, error) {
	if cfg.Sender == nil || cfg.Answer == nil {
		return nil, errors.New("b2bua: config: a Sender and an Answer function are required")
	}
	if cfg.MinSE <= 0 {
		cfg.MinSE = rfcMinSE
	}
	if cfg.InviteTimeout == 0 {
		cfg.InviteTimeout = 3 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	b := &B2BUA{cfg: cfg, sender: cfg.Sender, calls: newCallTable(), log: cfg.Log, t1: sip.T1,
		minSE: sip.NewHeader("Min-SE", strconv.Itoa(int(cfg.MinSE/time.Second)))}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipward_edge_active_calls", Help: "Calls in progress (early or confirmed)."},
				func() float64 { return float64(b.Active()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sipward_edge_calls_answered_total", Help: "Calls that reached 200 OK on both legs."},
				func() float64 { return float64(b.answered.Load()) }),
		} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("b2bua: register metrics: %w", err)
			}
		}
	}
	return b, nil
}

// Active returns how many calls are in progress (early or confirmed).
func (b *B2BUA) Active() int { return int(b.calls.count.Load()) }

// HoldIDs appends to dst the ids by which the calls in progress hold their
// channels (the caller's Call-ID as the limits stage saw it), so that the
// node renews their leases while they live.
func (b *B2BUA) HoldIDs(dst []string) []string {
	for _, c := range b.calls.all() {
		if !c.ended.Load() {
			dst = append(dst, c.hold)
		}
	}
	return dst
}

// Calls lists active calls, optionally of one account.
func (b *B2BUA) Calls(accountID int64) []CallView {
	out := []CallView{}
	for _, c := range b.calls.all() {
		c.mu.Lock()
		v := c.view
		c.mu.Unlock()
		if accountID == 0 || v.AccountID == accountID {
			out = append(out, v)
		}
	}
	return out
}

// client returns the Sender's client for transport.
func (b *B2BUA) client(transport string) (*sipgo.Client, error) { return b.sender.Client(transport) }

// contact returns sipward's Contact on a leg of transport.
func (b *B2BUA) contact(transport string) sip.Uri { return b.sender.Contact(transport) }

func (b *B2BUA) sendACK(cl *sipgo.Client, ack *sip.Request) {
	if err := cl.WriteRequest(ack); err != nil {
		b.log.Debug("b2bua: send ACK failed", "err", err)
	}
}

// hangup sends BYE on l without waiting for the answer.
func (b *B2BUA) hangup(c *call, l *leg) {
	cl, err := b.client(l.transport)
	if err != nil {
		return
	}
	b.fire(cl, c.request(l, sip.BYE, nil, b.contact(l.transport)))
}

// discarder is a client transaction nobody reads the answer of that runs to
// its end by itself (the UDP transport's).
type discarder interface{ Discard() }

// fire sends a request whose answer changes nothing (BYE teardown). Over
// UDP the transport's transaction runs to its end by itself; otherwise
// sipgo's is sent and waited for in the background (a TCP or TLS send may
// have to connect first).
func (b *B2BUA) fire(cl *sipgo.Client, req *sip.Request) {
	if strings.EqualFold(req.Transport(), "UDP") {
		tx, err := cl.TransactionRequest(context.Background(), req)
		if err != nil {
			b.log.Debug("b2bua: send in-dialog request failed", "method", req.Method, "err", err)
			return
		}
		if d, ours := tx.(discarder); ours {
			d.Discard()
		} else { // a host-name destination: sipgo's
			go b.await(tx, req)
		}
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*b.t1)
		defer cancel()
		if _, err := cl.Do(ctx, req); err != nil {
			b.log.Debug("b2bua: in-dialog request got no answer", "method", req.Method, "err", err)
		}
	}()
}

// await waits for the final answer of sipgo's transaction tx, then ends it.
func (b *B2BUA) await(tx sip.ClientTransaction, req *sip.Request) {
	defer tx.Terminate()
	t := time.NewTimer(64 * b.t1)
	defer t.Stop()
	for {
		select {
		case res := <-tx.Responses():
			if !res.IsProvisional() {
				return
			}
		case <-tx.Done():
			b.log.Debug("b2bua: in-dialog request got no answer", "method", req.Method, "err", tx.Err())
			return
		case <-t.C:
			return
		}
	}
}

// end tears a call down: BYE to the legs named, channels freed, call removed.
func (b *B2BUA) end(c *call, byeA, byeB bool, why string) {
	if !c.ended.CompareAndSwap(false, true) {
		return
	}
	a, bb := c.legs(true)
	if byeA {
		b.hangup(c, a)
	}
	if byeB {
		b.hangup(c, bb)
	}
	b.drop(c)
	closeOnce(c.aAcked)
	b.log.Debug("b2bua: call ended", "call", c.id, "why", why)
}

// drop frees the call's channels and media relay session and removes it
// from the table.
func (b *B2BUA) drop(c *call) {
	c.free()
	b.mediaRelease(c)
	b.calls.remove(c)
}

// answerA sends a response on the caller's leg, relaying the far leg's:
// with our tag and, for 1xx/2xx, our Contact, body as SDP, and extra.
func (b *B2BUA) answerA(c *call, tx sip.ServerTransaction, status int, reason string, body []byte, extra ...sip.Header) error {
	c.mu.Lock()
	a := c.aReq
	c.mu.Unlock()
	if a == nil {
		return nil // the caller acknowledged our 2xx: nothing is left to answer
	}
	res := sip.NewResponseFromRequest(a, status, reason, nil)
	if to := res.To(); to != nil && status != 100 {
		to.Params.Add("tag", c.a.localTag)
	}
	if status > 100 && status < 300 {
		res.AppendHeader(&sip.ContactHeader{Address: b.contact(c.a.transport)})
	}
	if len(body) > 0 { // before the other headers: see farInvite
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody(body)
	}
	if status >= 200 && status < 300 {
		c.a.timer.addTo(res, false)
	}
	for _, h := range extra {
		res.AppendHeader(h)
	}
	return tx.Respond(res)
}

func legName(a bool) string {
	if a {
		return "A"
	}
	return "B"
}

// mediaRelease deletes the call's relay session, once, in the background (Drain
// waits for it).
func (b *B2BUA) mediaRelease(c *call) {
	if !c.relayed.CompareAndSwap(true, false) {
		return
	}
	b.unrelaying.Add(1)
	go func() {
		defer b.unrelaying.Done()
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		if err := b.cfg.Relay.Delete(ctx, c.id); err != nil {
			b.log.Warn("b2bua: media relay session not deleted", "call", c.id, "err", err)
		}
	}()
}
