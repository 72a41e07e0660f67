package route_test

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/stage/route"
	"github.com/sipward/sipward/internal/store"
)

// BUG: a receives endpoint's outbound proxy becomes Target.Dest ("host:port
// to send to") by trimming "sip:"/"sips:" only. Provisioning
// (provision.checkHostPort) accepts a bare host or address, and a sip: URI
// with parameters; storetest's fixture stores "proxy.example.com". sipgo
// sends to Dest with sip.ParseAddr (net.SplitHostPort), which refuses a Dest
// without a port or with parameters, so leg B cannot be sent and every call
// to such an endpoint fails over or ends in 503.
func TestOutboundProxyDest(t *testing.T) {
	tests := []struct {
		proxy    string
		wantHost string
		wantPort int // 0: any valid port
	}{
		{"proxy.example.net:5060", "proxy.example.net", 5060},
		{"sip:proxy.example.net:5070", "proxy.example.net", 5070},
		{"[2001:db8::9]:5070", "2001:db8::9", 5070},
		{"proxy.example.net", "proxy.example.net", 0},
		{"192.0.2.9", "192.0.2.9", 0},
		{"2001:db8::9", "2001:db8::9", 0},
		{"sip:proxy.example.net;transport=tcp", "proxy.example.net", 0},
		{"sip:proxy.example.net:5070;lr", "proxy.example.net", 5070},
	}
	for _, tt := range tests {
		t.Run(tt.proxy, func(t *testing.T) {
			snap, err := snapshot.Build(snapshot.Dataset{
				Accounts: []store.Account{{ID: 1, Name: "Alpha"}},
				Endpoints: []store.IPEndpoint{{ID: 201, AccountID: 1, Address: "pbx.example.com", Direction: store.DirReceives,
					Protocol: store.ProtoUDP, Port: 5060, OutboundProxy: tt.proxy}},
				DIDs: []store.DID{{ID: 1, AccountID: 1, Number: "441110000003"}},
			}, snapshot.Options{Realm: "sipward"})
			if err != nil {
				t.Fatal(err)
			}
			r := &pipeline.Request{Msg: invite(t, "441110000003", "441110000001"), Source: netip.MustParseAddrPort("203.0.113.1:5060"),
				Now: t0, Snap: snap, Auth: pipeline.Identity{Method: pipeline.AuthCore, Dialled: "441110000003"}}
			plan, rej, err := route.New(route.Config{}).Route(t.Context(), r)
			if err != nil || rej != nil || len(plan.Targets) != 1 {
				t.Fatalf("Route: %+v %+v %v", plan.Targets, rej, err)
			}
			dest := plan.Targets[0].Dest
			host, port, err := sip.ParseAddr(dest)
			if err != nil {
				t.Fatalf("Dest %q: sipgo cannot send to it: %v", dest, err)
			}
			if host != tt.wantHost || tt.wantPort != 0 && port != tt.wantPort {
				t.Errorf("Dest %q: host %q port %d, want host %q port %d", dest, host, port, tt.wantHost, tt.wantPort)
			}
		})
	}
}
