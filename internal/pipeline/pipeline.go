// Package pipeline defines the request chain of the SIP edge: the Handler
// contract every stage meets, the Request that flows through it and the
// Result that stops it. It opens no sockets and runs no SQL; package edge
// builds the chain once (in its chain.go) and is the only place that turns a
// Result into a SIP response.
package pipeline

import (
	"context"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/snapshot"
)

// Handler processes one SIP request.
//
// A stage either calls next.ServeSIP and returns its Result unchanged, or
// stops the chain by returning its own Result without calling next.
// Rejections (unknown source, bad credentials, over a limit, malformed
// message) are Results. error is only for technical failure (store or Redis
// down): the edge answers 503 and logs it once, rate-limited. A Handler never
// writes to the network itself, except a terminal that relays a call (the
// B2BUA), which returns Answered(); sipward's own answers go through the
// edge's one answer function.
//
// ServeSIP must not keep r after it returns, except in the terminal stage.
type Handler interface {
	ServeSIP(ctx context.Context, r *Request) (Result, error)
	Name() string
}

// Stage wraps the next Handler. The chain is built once, backwards.
type Stage func(next Handler) Handler

// HandlerFunc adapts a function to Handler, with a name for traces.
type HandlerFunc struct {
	N string
	F func(ctx context.Context, r *Request) (Result, error)
}

// ServeSIP calls F.
func (h HandlerFunc) ServeSIP(ctx context.Context, r *Request) (Result, error) { return h.F(ctx, r) }

// Name returns N.
func (h HandlerFunc) Name() string { return h.N }

// Build wraps terminal in stages, so that stages[0] sees a request first.
func Build(terminal Handler, stages ...Stage) Handler {
	h := terminal
	for i := len(stages) - 1; i >= 0; i-- {
		h = stages[i](h)
	}
	return h
}

// Transport names as carried in Request.Transport (lower case).
const (
	UDP = "udp"
	TCP = "tcp"
	TLS = "tls"
)

// Request is one SIP request on its way through the chain.
type Request struct {
	Msg       *sip.Request   // parsed message; stages must not mutate it in place
	Source    netip.AddrPort // real socket peer: the only address IP authentication trusts
	Transport string         // UDP, TCP or TLS
	// Size is the request's datagram length over UDP (0 over streams): an
	// answer to a stranger must stay under twice that (no reflection
	// amplification).
	Size int
	Now  time.Time // arrival time; stages take time from here, never time.Now
	// Snap is the configuration snapshot this request is decided with, loaded
	// once by the edge so that one request sees one configuration version.
	Snap *snapshot.Snapshot
	// Tx is the server transaction of Msg; only the terminal stage answers on it.
	Tx sip.ServerTransaction
	// Offer is the SDP to send on leg B when a stage changed it (codec
	// filtering); nil means Msg's body unchanged.
	Offer []byte
	// Plan is where an initial INVITE goes, filled by the route stage for
	// the B2BUA (the INVITE chain's terminal).
	Plan Plan

	// Filled by stages as the request passes them.
	Auth Identity
	// Principal is the compiled IP endpoint or SIP user the request is
	// attributed to, in Snap: set by identify (AuthIP) or authn
	// (AuthDigest), nil otherwise (the core, or not identified yet). The
	// stages after them read its account, limits, codecs, rewrite rules and
	// flags from here.
	Principal *snapshot.Principal
	// NAT says what the nat stage found and did about the caller's NAT (for
	// the decision); "" when nothing.
	NAT string
	// MediaRelay, set by the nat stage, asks the B2BUA to anchor the call's
	// media on the media relay (the caller's media_relay: always, or auto
	// and behind NAT or a private SDP address). Without a relay configured
	// it changes nothing.
	MediaRelay bool
	// Trace records which stages passed the request and which one stopped it.
	Trace Trace
}

// AuthMethod says how a request was identified.
type AuthMethod uint8

// Ways a request can be identified.
const (
	AuthNone   AuthMethod = iota
	AuthIP                // source matched a sends IP endpoint
	AuthDigest            // digest credentials of a SIP user
	AuthCore              // source is the routing core
	// AuthNode: a peer node of the cluster hands over a call for one of
	// this node's registrations (a signed delivery, see package cluster):
	// not a customer call — the peer authenticated and limited it.
	AuthNode
)

// String returns "ip", "digest", "core", "node" or "none".
func (m AuthMethod) String() string {
	switch m {
	case AuthIP:
		return "ip"
	case AuthDigest:
		return "digest"
	case AuthCore:
		return "core"
	case AuthNode:
		return "node"
	}
	return "none"
}

// Identity is who a request belongs to, once identify or authn has decided.
type Identity struct {
	Method     AuthMethod
	AccountID  int64
	EndpointID int64 // AuthIP
	SIPUserID  int64 // AuthDigest
	// Dialled is the destination user part after tech-prefix strip and rewrite.
	Dialled string
	// CLI is the caller ID after rewrite.
	CLI string
	// Name of the endpoint's account / the SIP user's username, for traces and headers.
	AccountName string
	Username    string
	// Contact is, for AuthNode, the contact of the binding of Username the
	// call is delivered to.
	Contact string
}

// Plan is where an authorised initial INVITE goes: decided by the route
// stage, carried out by the B2BUA, which tries Targets in order.
type Plan struct {
	Targets []Target
	From    string // CLI to present on the far leg
	To      string // dialled number on the far leg
	// The call's account: the caller's, or for a call from the core the
	// DID's (for the live view of calls).
	AccountID   int64
	AccountName string
	// Voicemail, when set, is where the call goes when no target answers:
	// none answered within RingTimeout (0: the B2BUA's own limit), one
	// refused it busy (486, 600, 603) or none could be reached. A SIP user
	// with voicemail on is called so.
	Voicemail   *Target
	RingTimeout time.Duration
}

// Target is one place a call may be sent.
type Target struct {
	URI       sip.Uri      // Request-URI of the far leg
	Dest      string       // host:port to send to (a registration's source address, an outbound proxy), or "" for the URI's host
	Transport string       // udp | tcp | tls
	Headers   []sip.Header // extra headers (identity towards the core)
	Failover  bool         // on 408/5xx/transport failure, try the next target instead of answering
	Why       string       // for the decision log: "upstream sip:core.example:5060"
	// Auth, when set, answers one 401/407 of the target (egress
	// authentication); nil relays a challenge like any other answer.
	Auth *TargetAuth
	// MediaAddr, when valid, is the target's public address (a registered
	// phone's source): private connection addresses in the SDP it sends
	// become it (behind NAT, symmetric RTP).
	MediaAddr netip.Addr
	// MediaRelay asks the B2BUA to anchor the call's media on the media
	// relay for this target (a registered SIP user behind NAT, or one whose
	// media_relay is always).
	MediaRelay bool
	// SmartExtension: the target is a customer's device (a SIP user or a
	// receives endpoint) with Smart Extension on; the B2BUA carries out
	// transfers in its leg itself. Owner is who it is, for routing the
	// calls such a transfer makes (the customer's account, its number as
	// the caller ID).
	SmartExtension bool
	Owner          Identity
	// SessionTimers and SessionExpires are the target's session-timer
	// settings (RFC 4028), used for a call from the core to it (a call
	// from a customer takes the caller's).
	SessionTimers  bool
	SessionExpires time.Duration
	// Signed, when set, returns headers that sign the far leg's INVITE
	// over its Call-ID (known only when the B2BUA sends it) at now: a
	// delivery to the peer node that holds a NAT-ed binding.
	Signed func(callID string, now time.Time) []sip.Header
}

// TargetAuth is the credentials the B2BUA answers a target's challenge
// with: a receives endpoint's egress username and password. The password
// stays sealed (package secret) until the challenge is answered, so a plan
// printed or logged never shows it.
type TargetAuth struct {
	Username       string
	PasswordSealed []byte
}

// Result stops the chain, or reports how the terminal stage answered.
// The zero Result is not valid; use Reject, DropResult or Answered.
type Result struct {
	Status  int          // SIP status code to answer with (when !Drop && !answered)
	Reason  string       // reason phrase; never echoes internal errors
	Headers []sip.Header // extra headers (challenge, Reason, Retry-After)
	Drop    bool         // send nothing (garbage, banned, silent reject)
	Stage   string       // the stage that produced the Result
	Why     string       // operator-facing explanation for the decision log
	// ToTag is the To tag of the answer to a request that had none, when it
	// must be a given one (the B2BUA's answers on a caller's leg that had a
	// provisional already); "" lets the answer pick one.
	ToTag string
	// Body of the answer; its Content-Type goes in Headers.
	Body        []byte
	answered    bool
	provisional bool
}

// Reject returns a Result that answers status with reason.
func Reject(stage string, status int, reason, why string, hdrs ...sip.Header) Result {
	return Result{Status: status, Reason: reason, Headers: hdrs, Stage: stage, Why: why}
}

// Reply returns a Result that answers a request successfully from a
// terminal stage (a registrar's 200, an OPTIONS ping's 200).
func Reply(stage string, status int, reason, why string, hdrs ...sip.Header) Result {
	return Result{Status: status, Reason: reason, Headers: hdrs, Stage: stage, Why: why}
}

// DropResult returns a Result that answers nothing.
func DropResult(stage, why string) Result {
	return Result{Drop: true, Stage: stage, Why: why}
}

// Answered returns the Result of a terminal stage that already relayed the
// response itself (like coredns's ClientWrite); status is what it answered.
func Answered(stage string, status int) Result {
	return Result{Status: status, Stage: stage, answered: true}
}

// Trying returns the 100 Trying a terminal sends (through the edge's
// answer function) before it relays a call. It is the only provisional
// Result: any other status below 200 is a bug, answered 500.
func Trying(stage string) Result {
	return Result{Status: 100, Reason: "Trying", Stage: stage, provisional: true}
}

// Provisional reports whether r is a 100 Trying (Trying), not a final answer.
func (r Result) Provisional() bool { return r.provisional }

// Answered reports whether the response was already written by the terminal stage.
func (r Result) Answered() bool { return r.answered }

// Trace is the list of stages a request passed, in order. It holds up to
// len(Passed) names without allocating.
type Trace struct {
	Passed [12]string
	N      int
}

// Pass records that stage passed the request on.
func (t *Trace) Pass(stage string) {
	if t.N < len(t.Passed) {
		t.Passed[t.N] = stage
		t.N++
	}
}

// Stages returns the names of the stages passed so far.
func (t *Trace) Stages() []string { return t.Passed[:t.N] }
