package app

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/digest"
	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/stage/authn"
	"github.com/sipward/sipward/internal/stage/codecs"
	"github.com/sipward/sipward/internal/stage/firewall"
	"github.com/sipward/sipward/internal/stage/identify"
	"github.com/sipward/sipward/internal/stage/limits"
	"github.com/sipward/sipward/internal/stage/nat"
	"github.com/sipward/sipward/internal/stage/rewrite"
	"github.com/sipward/sipward/internal/stage/sanity"
	"github.com/sipward/sipward/internal/store"
)

// benchSDP is the offer of benchInvite.
const benchSDP = "v=0\r\n" +
	"o=uac 53655765 2353687637 IN IP4 127.0.0.2\r\n" +
	"s=-\r\n" +
	"c=IN IP4 127.0.0.2\r\n" +
	"t=0 0\r\n" +
	"m=audio 6000 RTP/AVP 0 8 18 101\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:18 G729/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-16\r\n"

// benchInvite is an INVITE with an SDP offer, as a customer switch sends it.
var benchInvite = "INVITE sip:00442071234567@192.0.2.100:5060 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-bench-1\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: \"acme\" <sip:02071230000@127.0.0.2:5060>;tag=bench-from-1\r\n" +
	"To: <sip:00442071234567@192.0.2.100:5060>\r\n" +
	"Call-ID: bench-call-1@127.0.0.2\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:acme@127.0.0.2:5060;transport=udp>\r\n" +
	"Subject: bench\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: " + strconv.Itoa(len(benchSDP)) + "\r\n\r\n" + benchSDP

// benchSnapshot: account acme with the IP endpoint 127.0.0.2 (one
// destination rewrite rule, G729 restricted) and 10,000 SIP users.
func benchSnapshot(tb testing.TB) *snapshot.Snapshot {
	tb.Helper()
	ds := snapshot.Dataset{
		Revision: 1,
		Accounts: []store.Account{{ID: 1, Name: "acme", Channels: 1_000_000}},
		Endpoints: []store.IPEndpoint{{ID: 1, AccountID: 1, Address: "127.0.0.2", Direction: store.DirSends,
			Protocol: store.ProtoUDP, Port: 5060, RestrictedCodecs: []string{"G729"}}},
		Rewrites: []store.RewriteRule{{ID: 1, OwnerKind: store.OwnerEndpoint, OwnerID: 1, Type: store.RewriteDestination,
			Match: "00", Replacement: ""}},
	}
	for i := range 10_000 {
		ds.Users = append(ds.Users, store.SIPUser{ID: int64(i + 1), AccountID: 1, Username: "user" + itoa5(i+1),
			Realm: "sip.test", HA1MD5: "00000000000000000000000000000000", Protocol: new(store.ProtoUDP),
			NATPing: new(store.NATPingDisabled), RestrictedCodecs: []string{}})
	}
	for i := range ds.Users {
		store.Resolve(&ds.Users[i], nil) // as the store does on write
	}
	s, err := snapshot.Build(ds, snapshot.Options{CoreAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Realm: "sip.test"})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func itoa5(n int) string {
	b := []byte("00000")
	for i := 4; i >= 0 && n > 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b)
}

// benchChain builds the INVITE chain of internal/edge/chain.go (firewall →
// sanity → identify → authn → limits → rewrite → codecs → nat) with the stages
// configured as internal/app/sip.go configures them, in-process live state,
// ending in terminal instead of the B2BUA.
func benchChain(tb testing.TB, snap *snapshot.Snapshot, terminal pipeline.Handler) (pipeline.Handler, limits.Channels) {
	tb.Helper()
	load := func() *snapshot.Snapshot { return snap }
	fw, err := firewall.New(firewall.Config{Trusted: func(a netip.Addr) bool { return snap.IsCore(a) || snap.KnownSource(a) }})
	if err != nil {
		tb.Fatal(err)
	}
	san, err := sanity.New(sanity.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	ident, err := identify.New(identify.Config{Snapshot: load})
	if err != nil {
		tb.Fatal(err)
	}
	nonces, err := digest.NewNonces(make([]byte, 32), 0)
	if err != nil {
		tb.Fatal(err)
	}
	auth, err := digest.New(digest.Config{Realm: "sip.test", Nonces: nonces,
		Counts: digest.NewLocalCounts(digest.DefaultNonceLifetime, digest.DefaultMaxCounts)})
	if err != nil {
		tb.Fatal(err)
	}
	an, err := authn.New(authn.Config{Auth: auth, Lookup: authn.SnapshotUser})
	if err != nil {
		tb.Fatal(err)
	}
	channels := limits.NewLocalChannels(limits.DefaultLease)
	lim, err := limits.New(limits.Config{Channels: channels, Rates: limits.NewLocalRates(time.Minute)})
	if err != nil {
		tb.Fatal(err)
	}
	rw, err := rewrite.New(rewrite.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	cod, err := codecs.New(codecs.Config{Policy: codecs.PrincipalPolicy})
	if err != nil {
		tb.Fatal(err)
	}
	nt, err := nat.New(nat.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	return pipeline.Build(terminal, fw.Stage(), san, ident, an.Stage(), lim, rw, cod, nt), channels
}

// BenchmarkPipelineInviteIPAuth runs one INVITE from an IP endpoint through
// the whole INVITE chain with real stages over a snapshot, to a terminal
// stub that frees the call's channels (as the call's end does). It is the
// per-INVITE cost of sipward's own decision, without sipgo's parsing and
// transactions.
func BenchmarkPipelineInviteIPAuth(b *testing.B) {
	snap := benchSnapshot(b)
	var channels limits.Channels
	terminal := pipeline.HandlerFunc{N: "route", F: func(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
		if r.Auth.Method != pipeline.AuthIP || r.Auth.Dialled != "442071234567" {
			b.Fatalf("terminal got %+v", r.Auth)
		}
		_ = channels.Release(ctx, r.Msg.CallID().Value())
		return pipeline.Answered("route", 200), nil
	}}
	chain, ch := benchChain(b, snap, terminal)
	channels = ch
	msg, err := sip.ParseMessage([]byte(benchInvite))
	if err != nil {
		b.Fatal(err)
	}
	req := msg.(*sip.Request)
	src := netip.MustParseAddrPort("127.0.0.2:5060")
	ctx := context.Background()
	now := time.Now()
	r := &pipeline.Request{}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		*r = pipeline.Request{Msg: req, Source: src, Transport: pipeline.UDP, Now: now, Snap: snap}
		res, err := chain.ServeSIP(ctx, r)
		if err != nil || !res.Answered() {
			b.Fatalf("chain: %+v %v", res, err)
		}
	}
}
