package route

// Calls to SIP users in a cluster. A binding made through another node is
// called directly when it is not NAT-ed; a NAT-ed one (its Contact names a
// private address or another address than its source, or it came over TCP
// or TLS: a connection only that node holds) is reached through that
// node: the INVITE goes to the node's SIP address with a signed delivery
// header (Config.Deliver), and that node, seeing the delivery (identify:
// AuthNode), calls its own binding (Router.deliver) and never forwards it
// again.
// When the binding's node is gone (Nodes), a binding not NAT-ed is still
// called directly, and a NAT-ed one cannot be reached: the decision says
// which node is gone.

import (
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/store"
)

// Nodes tells whether a node of the cluster is up and where its SIP UDP
// listener is ("host:port"); the node registry (package nodes) meets it.
type Nodes interface {
	Node(id string, now time.Time) (sipAddr string, up bool)
}

// cluster is what the route stage knows of the cluster (Config's NodeID,
// Nodes and Deliver).
type cluster struct {
	self    string
	nodes   Nodes
	deliver func(username, contact, callID string, now time.Time) sip.Header
}

// target is the target of b, a binding of username made through another
// node (or this one), given t, the target that calls it directly, and
// whether it is NAT-ed: t itself, or through its node; ok false when that
// node is gone and b is NAT-ed.
func (c cluster) target(b store.Registration, username string, natted bool, t pipeline.Target, now time.Time) (pipeline.Target, bool) {
	if b.Node == "" || b.Node == c.self || c.nodes == nil || c.self == "" {
		return t, true
	}
	addr, up := c.nodes.Node(b.Node, now)
	switch {
	case up && addr != "" && natted && c.deliver != nil:
		return c.through(b, username, t, addr), true
	case up && addr != "":
		t.Why += fmt.Sprintf(" (registered through node %s)", b.Node)
		return t, true
	case !natted:
		t.Why += fmt.Sprintf(" directly: node %s it registered through is gone", b.Node)
		return t, true
	}
	return t, false
}

// through is the target that hands a call to b over to the node at addr
// that holds it: its SIP UDP listener, signed. The media and the phone's
// own features (relay, Smart Extension) are that node's to handle: it
// calls the phone as its own binding.
func (c cluster) through(b store.Registration, username string, direct pipeline.Target, addr string) pipeline.Target {
	contact, deliver := b.Contact, c.deliver
	return pipeline.Target{URI: direct.URI, Dest: addr, Transport: pipeline.UDP,
		Why:           fmt.Sprintf("sip user %q at %s through node %s (%s)", username, b.Source, b.Node, addr),
		SessionTimers: direct.SessionTimers, SessionExpires: direct.SessionExpires,
		Signed: func(callID string, now time.Time) []sip.Header {
			return []sip.Header{deliver(username, contact, callID, now)}
		}}
}
