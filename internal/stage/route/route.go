// Package route decides where an authorised initial INVITE goes: it fills
// the request's call plan (pipeline.Plan) for the B2BUA, the chain's
// terminal, which runs the call.
//
//   - From a customer (IP or digest authenticated): a DID of the platform or
//     an extension of the caller's own account goes to that SIP user's
//     registered contacts (Retain DID keeps the DID as the Request-URI user),
//     or to the DID's account's receives endpoints; anything else goes to the
//     upstream core, in failover order, with identity headers
//     (X-Sipward-Account, X-Sipward-Auth, X-Sipward-Endpoint / X-Sipward-User).
//   - From the core: the DID's SIP user, or its account's receives endpoints in order.
//
// A SIP user with voicemail on (Config.Mailboxes) has its mailbox as the
// plan's Voicemail target, or as its only target when not registered;
// RetrievalCode ("*1") from a customer goes to the caller's mailbox.
//
// No SIP user registered → 480; a DID nobody owns from the core → 404; no
// upstream configured → 503.
//
// The stage does not add itself to the request's trace: its decision is the
// chain's Result (the B2BUA reports it under the name "route", with the
// first target as the reason), and a refusal is its own.
package route

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/sipnat"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/store"
)

// Name is the stage's name in traces.
const Name = "route"

// Locator finds a SIP user's registered contacts (the registrar).
type Locator interface {
	// Lookup returns the live bindings of username at now, newest first:
	// in a cluster, those made through every node, each naming its node
	// (Registration.Node).
	Lookup(username string, now time.Time) []store.Registration
	// Local returns the live bindings of username made through this node.
	Local(username string, now time.Time) []store.Registration
}

// Mailboxes builds the targets of voicemail (package voicemail).
type Mailboxes interface {
	// Deposit is where a call to u goes to leave a message; src is the
	// caller's address.
	Deposit(u *snapshot.User, from, to string, src netip.Addr) pipeline.Target
	// Retrieve is where a caller of accountID goes to hear its messages:
	// the mailbox of SIP user userID, or with userID 0 the one whose number
	// the caller keys in.
	Retrieve(userID, accountID int64, src netip.Addr) pipeline.Target
}

// RetrievalCode is what a customer dials to reach its mailbox.
const RetrievalCode = "*1"

// Config configures the Router.
type Config struct {
	Upstreams []sip.Uri // routing core, failover order
	Locator   Locator   // nil: no SIP user is reachable
	// Mailboxes, when set, serves voicemail: a call to a SIP user with
	// voicemail on goes to its mailbox when its phones do not answer or it
	// is not registered, and RetrievalCode reaches the caller's mailbox.
	Mailboxes Mailboxes
	// NodeID is this node's id in a cluster; Nodes tells about the others
	// (nil, or NodeID "": every binding is called directly). Deliver
	// returns the header that hands a call with leg B's Call-ID callID
	// over to the node a NAT-ed binding of username and contact was made
	// through (signed; package cluster); nil: such bindings are called
	// directly too.
	NodeID  string
	Nodes   Nodes
	Deliver func(username, contact, callID string, now time.Time) sip.Header
}

// Router decides where calls go.
type Router struct {
	cfg Config
}

// New returns a Router.
func New(cfg Config) *Router { return &Router{cfg: cfg} }

// Stage returns the route stage: it fills r.Plan and passes the request to
// next (the B2BUA), or refuses it.
func (rt *Router) Stage() pipeline.Stage {
	return func(next pipeline.Handler) pipeline.Handler {
		return pipeline.HandlerFunc{N: Name, F: func(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
			plan, rej, err := rt.Route(ctx, r)
			if err != nil || rej != nil {
				if rej == nil {
					return pipeline.Result{}, err
				}
				return *rej, err
			}
			r.Plan = plan
			return next.ServeSIP(ctx, r)
		}}
	}
}

// Route decides the plan of r, or the Result that refuses it.
func (rt *Router) Route(_ context.Context, r *pipeline.Request) (pipeline.Plan, *pipeline.Result, error) {
	s := r.Snap
	dialled, cli := r.Auth.Dialled, r.Auth.CLI
	plan := pipeline.Plan{From: cli, To: dialled, AccountID: r.Auth.AccountID, AccountName: r.Auth.AccountName}
	if r.Auth.Method == pipeline.AuthNode {
		return rt.deliver(r, plan)
	}
	if r.Auth.Method == pipeline.AuthCore {
		did := s.DID(dialled)
		if did == nil {
			return reject(plan, 404, "Not Found", fmt.Sprintf("no DID %q", dialled))
		}
		plan.AccountID, plan.AccountName = did.Account.ID, did.Account.Name
		if did.User != nil {
			return rt.toUser(r, plan, did.User, dialled, true)
		}
		return toReceives(plan, did.Account, dialled)
	}
	if dialled == RetrievalCode && rt.cfg.Mailboxes != nil {
		return rt.retrieve(r, plan)
	}
	if did := s.DID(dialled); did != nil {
		if did.User != nil {
			return rt.toUser(r, plan, did.User, dialled, true)
		}
		return toReceives(plan, did.Account, dialled)
	}
	if u := s.User(dialled); u != nil && u.Account != nil && u.Account.ID == r.Auth.AccountID {
		return rt.toUser(r, plan, u, dialled, false)
	}
	return rt.upstream(r, plan, dialled)
}

func reject(plan pipeline.Plan, status int, reason, why string) (pipeline.Plan, *pipeline.Result, error) {
	res := pipeline.Reject(Name, status, reason, why)
	return plan, &res, nil
}

// upstream sends the call to the routing core, in failover order, with
// identity headers.
func (rt *Router) upstream(r *pipeline.Request, plan pipeline.Plan, dialled string) (pipeline.Plan, *pipeline.Result, error) {
	if len(rt.cfg.Upstreams) == 0 {
		return reject(plan, 503, "Service Unavailable", "no upstream configured")
	}
	hdrs := []sip.Header{
		sip.NewHeader("X-Sipward-Account", strconv.FormatInt(r.Auth.AccountID, 10)),
		sip.NewHeader("X-Sipward-Auth", r.Auth.Method.String()),
	}
	if r.Auth.EndpointID != 0 {
		hdrs = append(hdrs, sip.NewHeader("X-Sipward-Endpoint", strconv.FormatInt(r.Auth.EndpointID, 10)))
	}
	if r.Auth.SIPUserID != 0 {
		hdrs = append(hdrs, sip.NewHeader("X-Sipward-User", r.Auth.Username))
	}
	for _, up := range rt.cfg.Upstreams {
		u := up
		u.User = dialled
		tr := "udp"
		if v, ok := up.UriParams.Get("transport"); ok {
			tr = strings.ToLower(v)
		}
		plan.Targets = append(plan.Targets, pipeline.Target{URI: u, Transport: tr, Headers: hdrs, Failover: true,
			Why: "upstream " + up.String()})
	}
	return plan, nil, nil
}

// toUser sends the call to a SIP user's registered contacts, newest first.
func (rt *Router) toUser(r *pipeline.Request, plan pipeline.Plan, u *snapshot.User, dialled string, isDID bool) (pipeline.Plan, *pipeline.Result, error) {
	var bs []store.Registration
	if rt.cfg.Locator != nil {
		bs = rt.cfg.Locator.Lookup(u.Username, r.Now)
	}
	mailbox := u.Voicemail && rt.cfg.Mailboxes != nil
	if mailbox {
		vm := rt.cfg.Mailboxes.Deposit(u, plan.From, dialled, r.Source.Addr())
		if len(bs) == 0 {
			plan.Targets = append(plan.Targets, vm)
			return plan, nil, nil
		}
		plan.Voicemail, plan.RingTimeout = &vm, u.VoicemailRing
	}
	if len(bs) == 0 {
		return reject(plan, 480, "Temporarily Unavailable", fmt.Sprintf("sip user %q is not registered", u.Username))
	}
	var gone []string // nodes whose NAT-ed bindings cannot be reached
	for i, b := range bs {
		var uri sip.Uri
		if err := sip.ParseUri(b.Contact, &uri); err != nil {
			continue
		}
		if isDID && u.RetainDID {
			uri.User = dialled
		}
		t := contactTarget(u, b, uri, dialled)
		natted := b.Transport == pipeline.TCP || b.Transport == pipeline.TLS || (t.MediaAddr.IsValid() && behindNAT(uri, t.MediaAddr))
		c := cluster{self: rt.cfg.NodeID, nodes: rt.cfg.Nodes, deliver: rt.cfg.Deliver}
		t, ok := c.target(b, u.Username, natted, t, r.Now)
		if !ok {
			gone = append(gone, b.Node)
			continue
		}
		t.Failover = i < len(bs)-1
		plan.Targets = append(plan.Targets, t)
	}
	if len(plan.Targets) == 0 && len(gone) > 0 && !mailbox {
		return reject(plan, 480, "Temporarily Unavailable", fmt.Sprintf("sip user %q is registered behind NAT through node %s, which is gone",
			u.Username, strings.Join(gone, ", ")))
	}
	if len(plan.Targets) == 0 {
		if mailbox {
			plan.Targets, plan.Voicemail = append(plan.Targets, *plan.Voicemail), nil
			return plan, nil, nil
		}
		return reject(plan, 480, "Temporarily Unavailable", fmt.Sprintf("sip user %q has no usable contact", u.Username))
	}
	return plan, nil, nil
}

// deliver routes a call a peer node handed over (AuthNode) to this node's
// binding it names, as a call from the core to the SIP user would go
// there; it is never handed on to another node.
func (rt *Router) deliver(r *pipeline.Request, plan pipeline.Plan) (pipeline.Plan, *pipeline.Result, error) {
	u := r.Snap.User(r.Auth.Username)
	if u == nil {
		return reject(plan, 404, "Not Found", fmt.Sprintf("a node handed over a call for sip user %q, which does not exist", r.Auth.Username))
	}
	if u.Account != nil {
		plan.AccountID, plan.AccountName = u.Account.ID, u.Account.Name
	}
	if rt.cfg.Locator != nil {
		for _, b := range rt.cfg.Locator.Local(u.Username, r.Now) {
			if b.Contact == r.Auth.Contact {
				t := contactTarget(u, b, r.Msg.Recipient, plan.To)
				t.Why += " (handed over by a node)"
				plan.Targets = append(plan.Targets, t)
				return plan, nil, nil
			}
		}
	}
	return reject(plan, 480, "Temporarily Unavailable", fmt.Sprintf("a node handed over a call for sip user %q at %s, which is not registered through this node",
		u.Username, r.Auth.Contact))
}

// contactTarget is the target of binding b of u, called directly at the
// address it registered from; uri is its contact as the Request-URI.
func contactTarget(u *snapshot.User, b store.Registration, uri sip.Uri, dialled string) pipeline.Target {
	t := pipeline.Target{URI: uri, Dest: b.Source, Transport: b.Transport,
		Why: fmt.Sprintf("sip user %q at %s", u.Username, b.Source)}
	if u.SmartExtension {
		t.SmartExtension, t.Owner = true, userIdentity(u, dialled)
	}
	t.SessionTimers, t.SessionExpires = u.SessionTimers, u.SessionExpires
	if src, err := netip.ParseAddrPort(b.Source); err == nil {
		t.MediaAddr = src.Addr().Unmap() // a phone behind NAT answers with its private address
		switch u.Relay {
		case snapshot.RelayAlways:
			t.MediaRelay = true
		case snapshot.RelayAuto:
			t.MediaRelay = behindNAT(uri, t.MediaAddr)
		}
	}
	return t
}

// retrieve sends a customer that dialled RetrievalCode to a mailbox: a
// SIP user with voicemail on to its own, any other caller to the mailbox
// prompt of its account.
func (rt *Router) retrieve(r *pipeline.Request, plan pipeline.Plan) (pipeline.Plan, *pipeline.Result, error) {
	var user int64
	if r.Auth.SIPUserID != 0 {
		if u := r.Snap.UserByID(r.Auth.SIPUserID); u != nil && u.Voicemail {
			user = u.ID
		}
	}
	plan.Targets = append(plan.Targets, rt.cfg.Mailboxes.Retrieve(user, r.Auth.AccountID, r.Source.Addr()))
	return plan, nil, nil
}

// userIdentity is a called SIP user as the caller of the calls a transfer
// in its leg makes: its account, and the number it was reached at as its
// caller ID.
func userIdentity(u *snapshot.User, dialled string) pipeline.Identity {
	id := pipeline.Identity{Method: pipeline.AuthDigest, SIPUserID: u.ID, Username: u.Username, CLI: dialled}
	if u.Account != nil {
		id.AccountID, id.AccountName = u.Account.ID, u.Account.Name
	}
	return id
}

// behindNAT reports whether a binding is NAT-ed: its Contact names a
// private address, or an address other than the one it registered from.
func behindNAT(contact sip.Uri, src netip.Addr) bool {
	a, err := netip.ParseAddr(strings.Trim(contact.Host, "[]"))
	if err != nil {
		return false // a host name: nothing tells
	}
	a = a.Unmap()
	return sipnat.Private(a) || a != src
}

// proxyDest turns an outbound proxy as provisioned — host, host:port, IP,
// [IPv6]:port, or a sip:/sips: URI with parameters — into the host:port
// leg B is sent to (default port 5060, 5061 for TLS).
func proxyDest(proxy, transport string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(proxy, "sips:"), "sip:")
	if i := strings.IndexByte(h, ';'); i >= 0 {
		h = h[:i]
	}
	def := "5060"
	if transport == "tls" {
		def = "5061"
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.String()
	}
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return net.JoinHostPort(a.String(), def)
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		return net.JoinHostPort(host, port)
	}
	return net.JoinHostPort(h, def)
}

// toReceives sends the call to an account's receives endpoints, in order.
func toReceives(plan pipeline.Plan, a *snapshot.Account, dialled string) (pipeline.Plan, *pipeline.Result, error) {
	for i := range a.Receives {
		ep := &a.Receives[i]
		host := ep.FQDN
		if host == "" {
			if !ep.Prefix.IsSingleIP() {
				continue // a range cannot be called
			}
			host = ep.Prefix.Addr().String()
		}
		tr := ep.Protocol.String()
		if tr == "tls-srtp" {
			tr = "tls"
		}
		uri := sip.Uri{Scheme: "sip", User: dialled, Host: host, Port: int(ep.Port)}
		if tr != "udp" {
			uri.UriParams = sip.HeaderParams{{K: "transport", V: tr}}
		}
		t := pipeline.Target{URI: uri, Transport: tr, Failover: true, Why: fmt.Sprintf("receives endpoint %d (%s)", ep.ID, host)}
		if ep.OutboundProxy != "" {
			t.Dest = proxyDest(ep.OutboundProxy, tr)
		}
		if ep.Username != "" && ep.PasswordSealed != nil {
			t.Auth = &pipeline.TargetAuth{Username: ep.Username, PasswordSealed: ep.PasswordSealed}
		}
		t.SessionTimers, t.SessionExpires = ep.SessionTimers, ep.SessionExpires
		if ep.SmartExtension {
			t.SmartExtension = true
			t.Owner = pipeline.Identity{Method: pipeline.AuthIP, AccountID: a.ID, AccountName: a.Name, EndpointID: ep.ID, CLI: dialled}
		}
		plan.Targets = append(plan.Targets, t)
	}
	if len(plan.Targets) == 0 {
		return reject(plan, 480, "Temporarily Unavailable", fmt.Sprintf("account %q has no receives endpoint to call", a.Name))
	}
	return plan, nil, nil
}
