package app

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/config"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/store/sqlstore"
)

// recTx is a server transaction that records what the chain answers.
type recTx struct {
	mu    sync.Mutex
	res   []*sip.Response
	done  chan struct{}
	acks  chan *sip.Request
	close sync.Once
}

func newRecTx() *recTx { return &recTx{done: make(chan struct{}), acks: make(chan *sip.Request)} }

func (t *recTx) Respond(r *sip.Response) error {
	t.mu.Lock()
	t.res = append(t.res, r)
	t.mu.Unlock()
	return nil
}
func (t *recTx) Acks() <-chan *sip.Request          { return t.acks }
func (t *recTx) OnCancel(sip.FnTxCancel) bool       { return true }
func (t *recTx) Terminate()                         { t.close.Do(func() { close(t.done) }) }
func (t *recTx) OnTerminate(sip.FnTxTerminate) bool { return true }
func (t *recTx) Done() <-chan struct{}              { return t.done }
func (t *recTx) Err() error                         { return nil }

var _ sip.ServerTransaction = (*recTx)(nil)

// fuzzNode builds a whole node's SIP side (real stages, real snapshot,
// SQLite) with an account on 127.0.0.2, a SIP user, rewrite rules, CLI
// patterns and restricted codecs, and no upstream (routed calls get 503).
func fuzzNode(f *testing.F) *sipSide {
	dir := f.TempDir()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "f.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	key := make([]byte, secret.KeySize)
	sealer, _ := secret.NewSealer(key)
	svc := provision.New(st, provision.Options{Realm: "fuzz.test", Sealer: sealer})
	acc, _, err := svc.CreateAccount(ctx, provision.Operator, &provision.NewAccount{
		Account:     store.Account{Name: "Acme", Channels: 10},
		IPEndpoints: []store.IPEndpoint{{Address: "127.0.0.2", TechPrefix: "99#", RestrictedCodecs: []string{"G729"}}},
		SIPUsers:    []store.SIPUser{{Username: "1001", Password: "fuzz-password-1234", Channels: new(1)}},
		CLIPatterns: []store.CLIPattern{{Pattern: "^44", Regex: true}},
	})
	if err != nil {
		f.Fatal(err)
	}
	if err := svc.CreateRewriteRule(ctx, provision.Operator, &store.RewriteRule{OwnerKind: store.OwnerEndpoint,
		OwnerID: acc.IPEndpoints[0].ID, Type: store.RewriteDestination, Regex: true, Match: `^0(\d+)$`, Replacement: "44$1"}); err != nil {
		f.Fatal(err)
	}
	cfg := config.Default()
	cfg.SIPAddr, cfg.Realm, cfg.Keepalive = "127.0.0.1:0", "fuzz.test", 0
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	side, err := startSIP(ctx, cfg, log, prometheus.NewRegistry(), st, svc, series.NewRecorder())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { side.close(context.Background()) })
	return side
}

// FuzzPipeline feeds arbitrary bytes, parsed by sipgo, through the whole
// request chain of a real node. Nothing may panic (the edge recovers
// panics and counts them: the count must stay 0), and every request that is
// not an ACK or a silent drop gets exactly one final answer.
func FuzzPipeline(f *testing.F) {
	seeds := []string{
		"INVITE sip:99#02071234567@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:441234567890@127.0.0.2>;tag=a\r\nTo: <sip:02071234567@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.2>\r\nContent-Type: application/sdp\r\nContent-Length: 64\r\n\r\nv=0\r\nc=IN IP4 127.0.0.2\r\nm=audio 4000 RTP/AVP 0 18\r\na=rtpmap:18 G729/8000\r\n",
		"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK2\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=b\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: c2\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@127.0.0.2>\r\nAuthorization: Digest username=\"1001\", realm=\"fuzz.test\", nonce=\"x\", uri=\"sip:127.0.0.1\", response=\"00\"\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK3\r\nMax-Forwards: 0\r\nFrom: <sip:x@y>;tag=c\r\nTo: <sip:127.0.0.1>\r\nCall-ID: c3\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		"BYE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK4\r\nFrom: <sip:x@y>;tag=c\r\nTo: <sip:127.0.0.1>;tag=d\r\nCall-ID: c4\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint8(2))
	}
	side := fuzzNode(f)
	f.Fuzz(func(t *testing.T, data []byte, srcLast uint8) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		// Sources vary over 127.0.0.x: the IP endpoint (.2), the unknown others.
		req.SetSource("127.0.0." + string('0'+rune(srcLast%10)) + ":5060")
		tx := newRecTx()
		before := side.edge.Panics()
		side.edge.Handle(req, tx)
		if side.edge.Panics() != before {
			t.Fatalf("a panic was recovered handling:\n%q", data)
		}
		tx.mu.Lock()
		defer tx.mu.Unlock()
		finals := 0
		for _, r := range tx.res {
			if r.StatusCode >= 200 {
				finals++
			}
		}
		if finals > 1 {
			t.Fatalf("%d final answers to one request:\n%q", finals, data)
		}
	})
}

// FuzzStatelessPath feeds arbitrary datagrams to the edge's stateless UDP
// path (the read filter's sieve, sipgo's parser, the qualifying checks, the
// chain, the stateless answer and the retransmission absorber) from sources
// over 127.0.0.x. Nothing may panic, recovered or not.
func FuzzStatelessPath(f *testing.F) {
	seeds := []string{
		"INVITE sip:02071234567@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:441234567890@127.0.0.3>;tag=a\r\nTo: <sip:02071234567@127.0.0.1>\r\nCall-ID: s1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.3>\r\nContent-Length: 0\r\n\r\n",
		"ACK sip:02071234567@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK1\r\nFrom: <sip:4412@127.0.0.3>;tag=a\r\nt: <sip:0207@127.0.0.1>;tag=swsl-abc\r\nCall-ID: s1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
		"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK2\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=b\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: s2\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@127.0.0.3>\r\nAuthorization: Digest username=\"1001\", realm=\"fuzz.test\", nonce=\"x\", uri=\"sip:127.0.0.1\", response=\"00\"\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK3\r\nFrom: <sip:x@y>;tag=c\r\nTo: <sip:127.0.0.1>\r\nCall-ID: s3\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint8(3))
	}
	side := fuzzNode(f)
	f.Fuzz(func(t *testing.T, data []byte, srcLast uint8) {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1 + srcLast%9}), 5060)
		before := side.edge.Panics()
		side.edge.TakeDatagram(data, src)
		if side.edge.Panics() != before {
			t.Fatalf("a panic was recovered on the stateless path:\n%q", data)
		}
	})
}
