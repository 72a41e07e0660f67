package route

// Calls to SIP users in a cluster. A binding made through another node is
// called directly when it is not NAT-ed; a NAT-ed one (its Contact names a
// private address or another address than its source, or it came over TCP
// or TLS: a connection only that node holds) is reached through that
// node: the INVITE goes to the node's SIP address with a signed delivery
// header (Config.Deliver), and that node, seeing the delivery (identify:
// AuthNode), calls its own binding (deliver) and never forwards it again.
// When the binding's node is gone (Nodes), a binding not NAT-ed is still
// called directly, and a NAT-ed one cannot be reached: the decision says
// which node is gone.

import (
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/store"
)

// bindingTarget is the target of b, a binding of u: directly, or through
// the node it was made through; ok false when that node is gone and b is
// NAT-ed.
func (rt *Router) bindingTarget(r *pipeline.Request, u *snapshot.User, b store.Registration, uri sip.Uri, dialled string) (pipeline.Target, bool) {
	t := contactTarget(u, b, uri, dialled)
	if b.Node == "" || b.Node == rt.cfg.NodeID || rt.cfg.Nodes == nil || rt.cfg.NodeID == "" {
		return t, true
	}
	natted := b.Transport == pipeline.TCP || b.Transport == pipeline.TLS || (t.MediaAddr.IsValid() && behindNAT(uri, t.MediaAddr))
	addr, up := rt.cfg.Nodes.Node(b.Node, r.Now)
	switch {
	case up && addr != "" && natted && rt.cfg.Deliver != nil:
		return rt.throughNode(u, b, uri, addr), true
	case up && addr != "":
		t.Why += fmt.Sprintf(" (registered through node %s)", b.Node)
		return t, true
	case !natted:
		t.Why += fmt.Sprintf(" directly: node %s it registered through is gone", b.Node)
		return t, true
	}
	return t, false
}

// throughNode is the target that hands a call to b over to the node at
// addr that holds it: its SIP UDP listener, signed. The media and the
// phone's own features (relay, Smart Extension) are that node's to
// handle: it calls the phone as its own binding.
func (rt *Router) throughNode(u *snapshot.User, b store.Registration, uri sip.Uri, addr string) pipeline.Target {
	username, contact, deliver := u.Username, b.Contact, rt.cfg.Deliver
	return pipeline.Target{URI: uri, Dest: addr, Transport: pipeline.UDP,
		Why:           fmt.Sprintf("sip user %q at %s through node %s (%s)", u.Username, b.Source, b.Node, addr),
		SessionTimers: u.SessionTimers, SessionExpires: u.SessionExpires,
		Signed: func(callID string, now time.Time) []sip.Header {
			return []sip.Header{deliver(username, contact, callID, now)}
		}}
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
