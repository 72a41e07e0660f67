// Package route decides where an authorised initial INVITE goes — the
// terminal decision of the chain; package edge's B2BUA then runs the call.
//
//   - From a customer (IP or digest authenticated): a DID of the platform or
//     an extension of the caller's own account goes to that SIP user's
//     registered contacts (Retain DID keeps the DID as the Request-URI user),
//     or to the DID's account's receives endpoints; anything else goes to the
//     upstream core, in failover order, with identity headers
//     (X-Sipward-Account, X-Sipward-Auth, X-Sipward-Endpoint / X-Sipward-User).
//   - From the core: the DID's SIP user, or its account's receives endpoints in order.
//
// No SIP user registered → 480; a DID nobody owns from the core → 404; no
// upstream configured → 503.
package route

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/edge"
	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/sdpfilter"
	"github.com/sipward/sipward/internal/snapshot"
)

// Name is the stage's name in traces.
const Name = "route"

// Config configures the Router.
type Config struct {
	Upstreams []sip.Uri           // routing core, failover order
	Registrar *edge.Registrar     // location service
	Release   func(callID string) // frees the channels the limits stage took for a call
}

// Router implements edge.Router.
type Router struct {
	cfg Config
}

var _ edge.Router = (*Router)(nil)

// New returns a Router.
func New(cfg Config) *Router { return &Router{cfg: cfg} }

// Route decides the targets of r.
func (rt *Router) Route(ctx context.Context, r *pipeline.Request) (edge.CallSpec, *pipeline.Result, error) {
	s := r.Snap
	dialled, cli := r.Auth.Dialled, r.Auth.CLI
	callID := r.Msg.CallID().Value()
	spec := edge.CallSpec{From: cli, To: dialled, Release: func() {
		if rt.cfg.Release != nil {
			rt.cfg.Release(callID)
		}
	}}
	spec.View = edge.CallView{AccountID: r.Auth.AccountID, Account: r.Auth.AccountName, Auth: r.Auth.Method.String(),
		Endpoint: r.Auth.EndpointID, SIPUser: r.Auth.SIPUserID, Username: r.Auth.Username, From: cli, To: dialled, Source: r.Source.String()}

	// The caller's codec restrictions apply to answers and re-INVITEs too.
	var set sdpfilter.Set
	if r.Auth.EndpointID != 0 {
		if ep := s.Endpoint(r.Auth.EndpointID); ep != nil {
			set = sdpfilter.FromBits(uint32(ep.Codecs))
			spec.InterceptReinvite = ep.InterceptReinvite
		}
	} else if r.Auth.SIPUserID != 0 {
		if u := s.UserByID(r.Auth.SIPUserID); u != nil {
			set = sdpfilter.FromBits(uint32(u.Codecs))
		}
	}
	if !set.Empty() {
		spec.Codecs = func(sdp []byte) ([]byte, bool) {
			out, res := sdpfilter.Filter(sdp, set, false)
			return out, res != sdpfilter.NothingLeft && res != sdpfilter.NoSRTP
		}
	}

	reject := func(status int, reason, why string) (edge.CallSpec, *pipeline.Result, error) {
		res := pipeline.Reject(Name, status, reason, why)
		return spec, &res, nil
	}

	if r.Auth.Method == pipeline.AuthCore {
		did := s.DID(dialled)
		if did == nil {
			return reject(404, "Not Found", fmt.Sprintf("no DID %q", dialled))
		}
		spec.View.AccountID, spec.View.Account = did.Account.ID, did.Account.Name
		if did.User != nil {
			return rt.toUser(r, spec, did.User, dialled, true)
		}
		return rt.toReceives(spec, did.Account, dialled)
	}

	if did := s.DID(dialled); did != nil {
		if did.User != nil {
			return rt.toUser(r, spec, did.User, dialled, true)
		}
		return rt.toReceives(spec, did.Account, dialled)
	}
	if u := s.User(dialled); u != nil && u.Account != nil && u.Account.ID == r.Auth.AccountID {
		return rt.toUser(r, spec, u, dialled, false)
	}
	if len(rt.cfg.Upstreams) == 0 {
		return reject(503, "Service Unavailable", "no upstream configured")
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
		spec.Targets = append(spec.Targets, edge.Target{URI: u, Transport: tr, Headers: hdrs, Failover: true,
			Why: "upstream " + up.String()})
	}
	return spec, nil, nil
}

// toUser sends the call to a SIP user's registered contacts, newest first.
func (rt *Router) toUser(r *pipeline.Request, spec edge.CallSpec, u *snapshot.User, dialled string, isDID bool) (edge.CallSpec, *pipeline.Result, error) {
	var bs []edge.Binding
	if rt.cfg.Registrar != nil {
		bs = rt.cfg.Registrar.Lookup(u.Username, r.Now)
	}
	if len(bs) == 0 {
		res := pipeline.Reject(Name, 480, "Temporarily Unavailable", fmt.Sprintf("sip user %q is not registered", u.Username))
		return spec, &res, nil
	}
	for i, b := range bs {
		var uri sip.Uri
		if err := sip.ParseUri(b.Contact, &uri); err != nil {
			continue
		}
		if isDID && u.RetainDID {
			uri.User = dialled
		}
		spec.Targets = append(spec.Targets, edge.Target{URI: uri, Dest: b.Source, Transport: b.Transport,
			Failover: i < len(bs)-1, Why: fmt.Sprintf("sip user %q at %s", u.Username, b.Source)})
	}
	if len(spec.Targets) == 0 {
		res := pipeline.Reject(Name, 480, "Temporarily Unavailable", fmt.Sprintf("sip user %q has no usable contact", u.Username))
		return spec, &res, nil
	}
	return spec, nil, nil
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
func (rt *Router) toReceives(spec edge.CallSpec, a *snapshot.Account, dialled string) (edge.CallSpec, *pipeline.Result, error) {
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
		t := edge.Target{URI: uri, Transport: tr, Failover: true, Why: fmt.Sprintf("receives endpoint %d (%s)", ep.ID, host)}
		if ep.OutboundProxy != "" {
			t.Dest = proxyDest(ep.OutboundProxy, tr)
		}
		spec.Targets = append(spec.Targets, t)
	}
	if len(spec.Targets) == 0 {
		res := pipeline.Reject(Name, 480, "Temporarily Unavailable", fmt.Sprintf("account %q has no receives endpoint to call", a.Name))
		return spec, &res, nil
	}
	return spec, nil, nil
}
