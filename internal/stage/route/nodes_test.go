package route_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/stage/route"
	"github.com/sipward/sipward/internal/store"
)

// fakeLocator holds the cluster's bindings; Local is those of node "b".
type fakeLocator []store.Registration

func (f fakeLocator) Lookup(string, time.Time) []store.Registration { return f }
func (f fakeLocator) Local(string, time.Time) []store.Registration {
	var out []store.Registration
	for _, b := range f {
		if b.Node == "b" {
			out = append(out, b)
		}
	}
	return out
}

// fakeNodes: node "a" at 192.0.2.1:5060 is up when up is true.
type fakeNodes struct{ up bool }

func (f fakeNodes) Node(id string, _ time.Time) (string, bool) {
	if id == "a" {
		return "192.0.2.1:5060", f.up
	}
	return "", false
}

func clusterBinding(contact, source, transport, node string) store.Registration {
	return store.Registration{Username: "alice", SIPUserID: 1000, AccountID: 1, Contact: contact, Source: source,
		Transport: transport, Expires: t0.Add(time.Hour), Registered: t0, Node: node, NodeAddr: "192.0.2.1:5060"}
}

func coreCall(t *testing.T, rt *route.Router) (pipeline.Plan, *pipeline.Result) {
	t.Helper()
	r := &pipeline.Request{Msg: invite(t, "441110000001", "441110000001"), Source: netip.MustParseAddrPort("203.0.113.1:5060"),
		Now: t0, Snap: build(t), Auth: pipeline.Identity{Method: pipeline.AuthCore, Dialled: "441110000001"}}
	plan, rej, err := rt.Route(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	return plan, rej
}

func signer(username, contact, callID string, _ time.Time) sip.Header {
	return sip.NewHeader("X-Sipward-Deliver", username+" "+contact+" "+callID)
}

// A binding made through node a, called from node b: NAT-ed ones go
// through a while it is up, and cannot be reached once it is gone; one
// not NAT-ed is called directly either way.
func TestRouteBindingOfAnotherNode(t *testing.T) {
	natted := clusterBinding("sip:alice@192.168.1.20:5060", "198.51.100.7:40000", "udp", "a")
	overTCP := clusterBinding("sip:alice@198.51.100.8:5060;transport=tcp", "198.51.100.8:5060", "tcp", "a")
	public := clusterBinding("sip:alice@198.51.100.9:5060", "198.51.100.9:5060", "udp", "a")
	tests := []struct {
		name     string
		b        store.Registration
		up       bool
		wantDest string // "" : refused
		wantWhy  string
	}{
		{"NAT-ed, node up", natted, true, "192.0.2.1:5060", `sip user "alice" at 198.51.100.7:40000 through node a (192.0.2.1:5060)`},
		{"TCP, node up", overTCP, true, "192.0.2.1:5060", "through node a"},
		{"public, node up", public, true, "198.51.100.9:5060", "(registered through node a)"},
		{"NAT-ed, node gone", natted, false, "", `sip user "alice" is registered behind NAT through node a, which is gone`},
		{"public, node gone", public, false, "198.51.100.9:5060", "directly: node a it registered through is gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := route.New(route.Config{Locator: fakeLocator{tt.b}, NodeID: "b", Nodes: fakeNodes{tt.up}, Deliver: signer})
			plan, rej := coreCall(t, rt)
			if tt.wantDest == "" {
				if rej == nil || rej.Status != 480 || !strings.Contains(rej.Why, tt.wantWhy) {
					t.Fatalf("got %+v %+v, want 480 with %q", plan.Targets, rej, tt.wantWhy)
				}
				return
			}
			if rej != nil || len(plan.Targets) != 1 {
				t.Fatalf("got %+v %+v, want one target", plan.Targets, rej)
			}
			tg := plan.Targets[0]
			if tg.Dest != tt.wantDest || !strings.Contains(tg.Why, tt.wantWhy) {
				t.Errorf("target to %s (%s), want %s (%s)", tg.Dest, tg.Why, tt.wantDest, tt.wantWhy)
			}
			through := tg.Dest == "192.0.2.1:5060"
			if through != (tg.Signed != nil) {
				t.Fatalf("through node %v but signed %v", through, tg.Signed != nil)
			}
			if through {
				if h := tg.Signed("leg-b", t0); len(h) != 1 || h[0].Value() != "alice "+tt.b.Contact+" leg-b" {
					t.Errorf("signed headers %v", h)
				}
				if tg.Transport != "udp" || tg.MediaRelay || tg.SmartExtension {
					t.Errorf("through node: transport %s, relay %v, smart extension %v: want udp, the node's own choices", tg.Transport, tg.MediaRelay, tg.SmartExtension)
				}
			}
		})
	}
}

// Without Nodes (one node, or no cluster), a binding naming a node is
// called directly.
func TestRouteBindingWithoutNodes(t *testing.T) {
	b := clusterBinding("sip:alice@192.168.1.20:5060", "198.51.100.7:40000", "udp", "a")
	plan, rej := coreCall(t, route.New(route.Config{Locator: fakeLocator{b}}))
	if rej != nil || len(plan.Targets) != 1 || plan.Targets[0].Dest != "198.51.100.7:40000" || plan.Targets[0].Signed != nil {
		t.Fatalf("got %+v %+v, want alice called directly", plan.Targets, rej)
	}
}

// A call a peer node hands over (AuthNode) goes to this node's binding it
// names, never to another node; one this node does not hold is 480.
func TestRouteDelivery(t *testing.T) {
	mine := clusterBinding("sip:alice@192.168.1.20:5060", "198.51.100.7:40000", "udp", "b")
	theirs := clusterBinding("sip:alice@192.168.1.21:5060", "198.51.100.6:40000", "udp", "a")
	rt := route.New(route.Config{Locator: fakeLocator{mine, theirs}, NodeID: "b", Nodes: fakeNodes{true}, Deliver: signer})
	for _, tt := range []struct {
		contact  string
		wantDest string
	}{
		{mine.Contact, "198.51.100.7:40000"},
		{theirs.Contact, ""},
	} {
		msg := invite(t, "441110000001", "441110000001")
		r := &pipeline.Request{Msg: msg, Source: netip.MustParseAddrPort("192.0.2.2:5060"), Now: t0, Snap: build(t),
			Auth: pipeline.Identity{Method: pipeline.AuthNode, Username: "alice", Contact: tt.contact, Dialled: "441110000001"}}
		plan, rej, err := rt.Route(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		if tt.wantDest == "" {
			if rej == nil || rej.Status != 480 {
				t.Errorf("delivery to %s: %+v %+v, want 480", tt.contact, plan.Targets, rej)
			}
			continue
		}
		if rej != nil || len(plan.Targets) != 1 || plan.Targets[0].Dest != tt.wantDest || plan.Targets[0].Signed != nil ||
			plan.Targets[0].URI.User != "441110000001" || plan.AccountID != 1 {
			t.Errorf("delivery to %s: %+v %+v, want one target to %s with the Request-URI as sent", tt.contact, plan, rej, tt.wantDest)
		}
	}
}
