package registrar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
	"github.com/sipward/sipward/internal/store"
)

var regT0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeBindings is a BindingStore that records what the registrar asks of it
// and keeps the bindings it would hold, keyed by (Username, Contact).
type fakeBindings struct {
	mu      sync.Mutex
	ops     []string // "save user contact" | "delete user contact"
	state   map[string]Binding
	loaded  []Binding
	loadErr error
	saveErr error
}

var _ BindingStore = (*fakeBindings)(nil)

func (s *fakeBindings) SaveRegistration(_ context.Context, b Binding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, "save "+b.Username+" "+b.Contact)
	if s.saveErr != nil {
		return s.saveErr
	}
	if s.state == nil {
		s.state = map[string]Binding{}
	}
	s.state[b.Username+" "+b.Contact] = b
	return nil
}

func (s *fakeBindings) DeleteRegistration(_ context.Context, user, contact string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, "delete "+user+" "+contact)
	delete(s.state, user+" "+contact)
	return nil
}

func (s *fakeBindings) ApplyRegistrations(ctx context.Context, saves []Binding, deletes []store.RegistrationKey) error {
	for _, k := range deletes {
		_ = s.DeleteRegistration(ctx, k.Username, k.Contact)
	}
	for _, b := range saves {
		if err := s.SaveRegistration(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (s *fakeBindings) LoadRegistrations(context.Context, time.Time) ([]Binding, error) {
	return s.loaded, s.loadErr
}

// stored returns the bindings the store holds, as "user contact".
func (s *fakeBindings) stored() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.state {
		out = append(out, k)
	}
	return sortedStrings(out)
}

// held returns the registrar's bindings, as "user contact".
func held(g *Registrar) []string {
	var out []string
	for _, b := range g.List(0, "") {
		out = append(out, b.Username+" "+b.Contact)
	}
	return sortedStrings(out)
}

func (s *fakeBindings) takeOps() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ops := s.ops
	s.ops = nil
	return ops
}

// regMsg is a REGISTER as a phone sends it.
type regMsg struct {
	at       time.Duration // after regT0
	to       string        // the AOR's user; "alice" when ""
	callID   string        // "reg-1" when ""
	cseq     int           // 1 when 0
	contacts []string      // Contact header values, one header each
	expires  string        // Expires header value; none when ""
	src      string        // source address; 198.51.100.7:40000 when ""
	tr       string        // transport; udp when ""
	auth     *pipeline.Identity
}

var regAlice = pipeline.Identity{Method: pipeline.AuthDigest, AccountID: 1, SIPUserID: 1000, Username: "alice", AccountName: "Alpha"}

// request returns m as the registrar stage receives it: parsed by sipgo,
// authenticated by authn.
func (m regMsg) request(t *testing.T) *pipeline.Request {
	t.Helper()
	to, callID, cseq, src, tr := m.to, m.callID, m.cseq, m.src, m.tr
	if to == "" {
		to = "alice"
	}
	if callID == "" {
		callID = "reg-1"
	}
	if cseq == 0 {
		cseq = 1
	}
	if src == "" {
		src = "198.51.100.7:40000"
	}
	if tr == "" {
		tr = pipeline.UDP
	}
	var hdrs []string
	for _, c := range m.contacts {
		hdrs = append(hdrs, "Contact: "+c)
	}
	if m.expires != "" {
		hdrs = append(hdrs, "Expires: "+m.expires)
	}
	hdrs = append(hdrs, "User-Agent: Yealink SIP-T46S")
	msg := siptest.Req{Method: sip.REGISTER, URI: "sip:edge.example.net", User: to, From: to, FromHost: "edge.example.net",
		FromTag: "f1", CallID: callID, CSeq: uint32(cseq), Via: "192.168.1.20:5060;rport", Branch: "z9hG4bK-" + fmt.Sprint(cseq),
		Transport: tr, Headers: hdrs}.Msg(t)
	auth := regAlice
	if m.auth != nil {
		auth = *m.auth
	}
	r := siptest.Request(msg, src, regT0.Add(m.at))
	r.Transport, r.Auth = tr, auth
	return r
}

// reply is what a test compares of the registrar's Result.
type reply struct {
	Status  int
	Reason  string
	Stage   string
	Why     string
	Headers []string
}

func replyOf(res pipeline.Result) reply {
	r := reply{Status: res.Status, Reason: res.Reason, Stage: res.Stage, Why: res.Why}
	for _, h := range res.Headers {
		r.Headers = append(r.Headers, h.Name()+": "+h.Value())
	}
	return r
}

// binding returns alice's binding of contact registered by a regMsg with the
// defaults, at, for expires seconds.
func binding(contact string, at time.Duration, expires int, callID string, cseq uint32) Binding {
	return Binding{Username: "alice", SIPUserID: 1000, AccountID: 1, Contact: contact, Source: "198.51.100.7:40000", Transport: "udp",
		Expires: regT0.Add(at + time.Duration(expires)*time.Second), Registered: regT0.Add(at), CallID: callID, CSeq: cseq,
		UserAgent: "Yealink SIP-T46S"}
}

func newTestRegistrar(t *testing.T, st *fakeBindings, cfg Config) *Registrar {
	t.Helper()
	cfg.Store = st
	cfg.Now = func() time.Time { return regT0 }
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = -1 // write through: each test sees its store calls at once
	}
	g, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestRegistrarServe(t *testing.T) {
	const (
		c1 = "sip:alice@192.168.1.20:5060"
		c2 = "sip:alice@192.168.1.21:5060"
		c3 = "sip:alice@192.168.1.22:5060"
		c4 = "sip:alice@192.168.1.23:5060"
	)
	date := "Date: Sun, 01 Jun 2025 12:00:10 UTC" // every request under test is at t0+10s
	ok := func(why string, hdrs ...string) reply {
		return reply{Status: 200, Reason: "OK", Stage: "registrar", Why: why, Headers: append(hdrs, date)}
	}
	bob := pipeline.Identity{Method: pipeline.AuthDigest, AccountID: 2, SIPUserID: 1001, Username: "bob"}
	ip := pipeline.Identity{Method: pipeline.AuthIP, AccountID: 1, EndpointID: 10}
	bobBinding := Binding{Username: "bob", SIPUserID: 1001, AccountID: 2, Contact: "sip:bob@10.0.0.5", Source: "198.51.100.9:5070",
		Transport: "udp", Expires: regT0.Add(3600 * time.Second), Registered: regT0, CallID: "bob-1", CSeq: 1, UserAgent: "Yealink SIP-T46S"}
	// three earlier bindings of alice, one Call-ID, a second apart
	three := []regMsg{
		{at: 0, cseq: 1, contacts: []string{"<" + c1 + ">"}},
		{at: time.Second, cseq: 2, contacts: []string{"<" + c2 + ">"}},
		{at: 2 * time.Second, cseq: 3, contacts: []string{"<" + c3 + ">"}},
	}
	tests := []struct {
		name   string
		before []regMsg
		req    regMsg
		want   reply
		// wantBindings are all bindings afterwards (List order: user, contact).
		wantBindings []Binding
		wantOps      []string // store calls of req
	}{
		{name: "one contact, default expires",
			req:          regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">"}},
			want:         ok("1 contact(s) registered", "Contact: <"+c1+">;expires=3600"),
			wantBindings: []Binding{binding(c1, 10*time.Second, 3600, "reg-1", 1)},
			wantOps:      []string{"save alice " + c1}},
		{name: "binding keeps the source and transport it came from",
			req:  regMsg{at: 10 * time.Second, contacts: []string{"<sip:alice@10.10.0.2:5060;transport=tcp>"}, src: "198.51.100.200:61000", tr: pipeline.TCP},
			want: ok("1 contact(s) registered", "Contact: <sip:alice@10.10.0.2:5060;transport=tcp>;expires=3600"),
			wantBindings: []Binding{func() Binding {
				b := binding("sip:alice@10.10.0.2:5060;transport=tcp", 10*time.Second, 3600, "reg-1", 1)
				b.Source, b.Transport = "198.51.100.200:61000", "tcp"
				return b
			}()},
			wantOps: []string{"save alice sip:alice@10.10.0.2:5060;transport=tcp"}},
		{name: "Expires header",
			req:          regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">"}, expires: "120"},
			want:         ok("1 contact(s) registered", "Contact: <"+c1+">;expires=120"),
			wantBindings: []Binding{binding(c1, 10*time.Second, 120, "reg-1", 1)},
			wantOps:      []string{"save alice " + c1}},
		{name: "contact expires overrides the header",
			req:          regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">;expires=300"}, expires: "120"},
			want:         ok("1 contact(s) registered", "Contact: <"+c1+">;expires=300"),
			wantBindings: []Binding{binding(c1, 10*time.Second, 300, "reg-1", 1)},
			wantOps:      []string{"save alice " + c1}},
		{name: "Expires below the minimum",
			req:  regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">"}, expires: "30"},
			want: reply{Status: 423, Reason: "Interval Too Brief", Stage: "registrar", Why: "expires 30 below 60", Headers: []string{"Min-Expires: 60"}}},
		{name: "contact expires below the minimum",
			req:  regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">", "<" + c2 + ">;expires=59"}},
			want: reply{Status: 423, Reason: "Interval Too Brief", Stage: "registrar", Why: "expires 59 below 60", Headers: []string{"Min-Expires: 60"}}},
		{name: "the minimum itself",
			req:          regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">"}, expires: "60"},
			want:         ok("1 contact(s) registered", "Contact: <"+c1+">;expires=60"),
			wantBindings: []Binding{binding(c1, 10*time.Second, 60, "reg-1", 1)},
			wantOps:      []string{"save alice " + c1}},
		{name: "above the maximum: clamped",
			req:          regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">"}, expires: "100000"},
			want:         ok("1 contact(s) registered", "Contact: <"+c1+">;expires=7200"),
			wantBindings: []Binding{binding(c1, 10*time.Second, 7200, "reg-1", 1)},
			wantOps:      []string{"save alice " + c1}},
		{name: "several contacts",
			req: regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">, <" + c2 + ">;expires=600", "<" + c3 + ">"}},
			want: ok("3 contact(s) registered",
				"Contact: <"+c1+">;expires=3600", "Contact: <"+c2+">;expires=600", "Contact: <"+c3+">;expires=3600"),
			wantBindings: []Binding{binding(c1, 10*time.Second, 3600, "reg-1", 1), binding(c2, 10*time.Second, 600, "reg-1", 1),
				binding(c3, 10*time.Second, 3600, "reg-1", 1)},
			wantOps: []string{"save alice " + c1, "save alice " + c2, "save alice " + c3}},
		{name: "max contacts: the oldest is replaced",
			before: three,
			req:    regMsg{at: 10 * time.Second, cseq: 4, contacts: []string{"<" + c4 + ">"}},
			want: ok("3 contact(s) registered",
				"Contact: <"+c2+">;expires=3591", "Contact: <"+c3+">;expires=3592", "Contact: <"+c4+">;expires=3600"),
			wantBindings: []Binding{binding(c2, time.Second, 3600, "reg-1", 2), binding(c3, 2*time.Second, 3600, "reg-1", 3),
				binding(c4, 10*time.Second, 3600, "reg-1", 4)},
			wantOps: []string{"delete alice " + c1, "save alice " + c4}},
		{name: "max contacts: a refresh keeps its place",
			before: three,
			req:    regMsg{at: 10 * time.Second, cseq: 4, contacts: []string{"<" + c1 + ">"}},
			want: ok("3 contact(s) registered",
				"Contact: <"+c1+">;expires=3600", "Contact: <"+c2+">;expires=3591", "Contact: <"+c3+">;expires=3592"),
			wantBindings: []Binding{binding(c1, 10*time.Second, 3600, "reg-1", 4), binding(c2, time.Second, 3600, "reg-1", 2),
				binding(c3, 2*time.Second, 3600, "reg-1", 3)},
			wantOps: []string{"save alice " + c1}},
		{name: "expires=0 removes one",
			before:       three[:2],
			req:          regMsg{at: 10 * time.Second, cseq: 3, contacts: []string{"<" + c1 + ">;expires=0"}},
			want:         ok("1 contact(s) registered", "Contact: <"+c2+">;expires=3591"),
			wantBindings: []Binding{binding(c2, time.Second, 3600, "reg-1", 2)},
			wantOps:      []string{"delete alice " + c1}},
		{name: "Expires: 0 removes the contacts listed",
			before:       three,
			req:          regMsg{at: 10 * time.Second, cseq: 4, contacts: []string{"<" + c2 + ">", "<" + c3 + ">"}, expires: "0"},
			want:         ok("1 contact(s) registered", "Contact: <"+c1+">;expires=3590"),
			wantBindings: []Binding{binding(c1, 0, 3600, "reg-1", 1)},
			wantOps:      []string{"delete alice " + c2, "delete alice " + c3}},
		{name: "removing a contact that is not bound",
			before:       three[:1],
			req:          regMsg{at: 10 * time.Second, cseq: 2, contacts: []string{"<" + c4 + ">;expires=0"}},
			want:         ok("1 contact(s) registered", "Contact: <"+c1+">;expires=3590"),
			wantBindings: []Binding{binding(c1, 0, 3600, "reg-1", 1)}},
		{name: "Contact: * with Expires: 0 removes all",
			before:  three,
			req:     regMsg{at: 10 * time.Second, cseq: 4, contacts: []string{"*"}, expires: "0"},
			want:    ok("0 contact(s) registered"),
			wantOps: []string{"delete alice " + c1, "delete alice " + c2, "delete alice " + c3}},
		{name: "Contact: * without Expires",
			before:       three[:1],
			req:          regMsg{at: 10 * time.Second, cseq: 2, contacts: []string{"*"}},
			want:         reply{Status: 400, Reason: "Bad Request", Stage: "registrar", Why: "Contact: * needs Expires: 0 and no other contact"},
			wantBindings: []Binding{binding(c1, 0, 3600, "reg-1", 1)}},
		{name: "Contact: * with Expires: 3600",
			before:       three[:1],
			req:          regMsg{at: 10 * time.Second, cseq: 2, contacts: []string{"*"}, expires: "3600"},
			want:         reply{Status: 400, Reason: "Bad Request", Stage: "registrar", Why: "Contact: * needs Expires: 0 and no other contact"},
			wantBindings: []Binding{binding(c1, 0, 3600, "reg-1", 1)}},
		{name: "Contact: * with another contact",
			before:       three[:1],
			req:          regMsg{at: 10 * time.Second, cseq: 2, contacts: []string{"*", "<" + c2 + ">;expires=0"}, expires: "0"},
			want:         reply{Status: 400, Reason: "Bad Request", Stage: "registrar", Why: "Contact: * needs Expires: 0 and no other contact"},
			wantBindings: []Binding{binding(c1, 0, 3600, "reg-1", 1)}},
		{name: "older CSeq of the same Call-ID fails (RFC 3261 §10.3 step 7)",
			before:       []regMsg{{at: 0, cseq: 5, contacts: []string{"<" + c1 + ">"}}},
			req:          regMsg{at: 10 * time.Second, cseq: 4, contacts: []string{"<" + c1 + ">"}, expires: "60"},
			want:         reply{Status: 400, Reason: "Bad Request", Stage: "registrar", Why: "out-of-order REGISTER: CSeq not above the binding's"},
			wantBindings: []Binding{binding(c1, 0, 3600, "reg-1", 5)}},
		{name: "repeated CSeq of the same Call-ID fails",
			before:       []regMsg{{at: 0, cseq: 5, contacts: []string{"<" + c1 + ">"}}},
			req:          regMsg{at: 10 * time.Second, cseq: 5, contacts: []string{"<" + c1 + ">"}, expires: "60"},
			want:         reply{Status: 400, Reason: "Bad Request", Stage: "registrar", Why: "out-of-order REGISTER: CSeq not above the binding's"},
			wantBindings: []Binding{binding(c1, 0, 3600, "reg-1", 5)}},
		{name: "older CSeq of the same Call-ID cannot remove",
			before:       []regMsg{{at: 0, cseq: 5, contacts: []string{"<" + c1 + ">"}}},
			req:          regMsg{at: 10 * time.Second, cseq: 4, contacts: []string{"<" + c1 + ">;expires=0"}},
			want:         reply{Status: 400, Reason: "Bad Request", Stage: "registrar", Why: "out-of-order REGISTER: CSeq not above the binding's"},
			wantBindings: []Binding{binding(c1, 0, 3600, "reg-1", 5)}},
		{name: "lower CSeq of another Call-ID is a new registration",
			before:       []regMsg{{at: 0, cseq: 5, contacts: []string{"<" + c1 + ">"}}},
			req:          regMsg{at: 10 * time.Second, callID: "reg-2", cseq: 1, contacts: []string{"<" + c1 + ">"}, expires: "60"},
			want:         ok("1 contact(s) registered", "Contact: <"+c1+">;expires=60"),
			wantBindings: []Binding{binding(c1, 10*time.Second, 60, "reg-2", 1)},
			wantOps:      []string{"save alice " + c1}},
		{name: "no contact: a query",
			before:       three[:1],
			req:          regMsg{at: 10 * time.Second, cseq: 2},
			want:         ok("1 contact(s) registered", "Contact: <"+c1+">;expires=3590"),
			wantBindings: []Binding{binding(c1, 0, 3600, "reg-1", 1)}},
		{name: "another user's bindings are untouched",
			before:       []regMsg{{at: 0, to: "bob", callID: "bob-1", contacts: []string{"<sip:bob@10.0.0.5>"}, src: "198.51.100.9:5070", auth: &bob}},
			req:          regMsg{at: 10 * time.Second, contacts: []string{"*"}, expires: "0"},
			want:         ok("0 contact(s) registered"),
			wantBindings: []Binding{bobBinding}},
		{name: "To is not the authenticated user",
			req:  regMsg{at: 10 * time.Second, to: "bob", contacts: []string{"<sip:bob@192.168.1.20>"}},
			want: reply{Status: 403, Reason: "Forbidden", Stage: "registrar", Why: `user "alice" may not register "bob"`}},
		{name: "not digest-authenticated",
			req:  regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">"}, auth: &ip},
			want: reply{Status: 403, Reason: "Forbidden", Stage: "registrar", Why: "REGISTER needs SIP user credentials"}},
		{name: "malformed Expires",
			req:  regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">"}, expires: "soon"},
			want: reply{Status: 400, Reason: "Bad Request", Stage: "registrar", Why: "malformed Expires"}},
		{name: "negative Expires",
			req:  regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">"}, expires: "-1"},
			want: reply{Status: 400, Reason: "Bad Request", Stage: "registrar", Why: "malformed Expires"}},
		{name: "malformed contact expires",
			req:  regMsg{at: 10 * time.Second, contacts: []string{"<" + c1 + ">;expires=soon"}},
			want: reply{Status: 400, Reason: "Bad Request", Stage: "registrar", Why: "malformed contact expires"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeBindings{}
			g := newTestRegistrar(t, st, Config{MaxContacts: 3})
			ctx := context.Background()
			for i, m := range tt.before {
				if res, err := g.ServeSIP(ctx, m.request(t)); err != nil || res.Status != 200 {
					t.Fatalf("before[%d]: %+v, %v", i, res, err)
				}
			}
			st.takeOps()
			r := tt.req.request(t)
			res, err := g.ServeSIP(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, replyOf(res)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			got := g.List(0, "")
			if diff := cmp.Diff(tt.wantBindings, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("bindings (-want +got):\n%s", diff)
			}
			if g.Count() != len(got) {
				t.Errorf("Count = %d, but %d bindings", g.Count(), len(got))
			}
			if diff := cmp.Diff(tt.wantOps, st.takeOps()); diff != "" {
				t.Errorf("store calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(held(g), st.stored()); diff != "" {
				t.Errorf("store vs memory (-memory +store):\n%s", diff)
			}
			wantTrace := []string(nil)
			if res.Status == 200 {
				wantTrace = []string{"registrar"}
			}
			if diff := cmp.Diff(wantTrace, r.Trace.Stages(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("trace (-want +got):\n%s", diff)
			}
		})
	}
}

// Lookup returns live bindings, newest first.
func TestRegistrarLookup(t *testing.T) {
	g := newTestRegistrar(t, &fakeBindings{}, Config{})
	ctx := context.Background()
	for i, m := range []regMsg{
		{at: 0, cseq: 1, contacts: []string{"<sip:alice@192.168.1.20>"}, expires: "60"},
		{at: time.Second, cseq: 2, contacts: []string{"<sip:alice@192.168.1.21>"}, expires: "3600", src: "198.51.100.8:5060", tr: pipeline.TLS},
		{at: 2 * time.Second, cseq: 3, contacts: []string{"<sip:alice@192.168.1.22>"}, expires: "120"},
	} {
		if res, err := g.ServeSIP(ctx, m.request(t)); err != nil || res.Status != 200 {
			t.Fatalf("register %d: %+v, %v", i, res, err)
		}
	}
	tests := []struct {
		at   time.Duration
		want []string // contact@source/transport
	}{
		{10 * time.Second, []string{"sip:alice@192.168.1.22@198.51.100.7:40000/udp", "sip:alice@192.168.1.21@198.51.100.8:5060/tls", "sip:alice@192.168.1.20@198.51.100.7:40000/udp"}},
		{60 * time.Second, []string{"sip:alice@192.168.1.22@198.51.100.7:40000/udp", "sip:alice@192.168.1.21@198.51.100.8:5060/tls"}},
		{122 * time.Second, []string{"sip:alice@192.168.1.21@198.51.100.8:5060/tls"}},
		{3601 * time.Second, nil},
	}
	for _, tt := range tests {
		t.Run(tt.at.String(), func(t *testing.T) {
			var got []string
			for _, b := range g.Lookup("alice", regT0.Add(tt.at)) {
				got = append(got, b.Contact+"@"+b.Source+"/"+b.Transport)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if got := g.Lookup("nobody", regT0); len(got) != 0 {
		t.Errorf("Lookup of an unknown user: %v", got)
	}
}

// expire drops what has expired by now, from memory and from the store.
func TestRegistrarExpire(t *testing.T) {
	st := &fakeBindings{}
	g := newTestRegistrar(t, st, Config{})
	ctx := context.Background()
	bob := pipeline.Identity{Method: pipeline.AuthDigest, AccountID: 2, SIPUserID: 1001, Username: "bob"}
	for i, m := range []regMsg{
		{cseq: 1, contacts: []string{"<sip:alice@192.168.1.20>"}, expires: "60"},
		{cseq: 2, contacts: []string{"<sip:alice@192.168.1.21>"}, expires: "120"},
		{to: "bob", callID: "bob-1", contacts: []string{"<sip:bob@10.0.0.5>"}, expires: "3600", auth: &bob},
	} {
		if res, err := g.ServeSIP(ctx, m.request(t)); err != nil || res.Status != 200 {
			t.Fatalf("register %d: %+v, %v", i, res, err)
		}
	}
	st.takeOps()
	steps := []struct {
		at        time.Duration
		wantOps   []string
		wantLeft  []string // user contact
		wantCount int
	}{
		{59 * time.Second, nil, []string{"alice sip:alice@192.168.1.20", "alice sip:alice@192.168.1.21", "bob sip:bob@10.0.0.5"}, 3},
		{60 * time.Second, []string{"delete alice sip:alice@192.168.1.20"}, []string{"alice sip:alice@192.168.1.21", "bob sip:bob@10.0.0.5"}, 2},
		{61 * time.Second, nil, []string{"alice sip:alice@192.168.1.21", "bob sip:bob@10.0.0.5"}, 2},
		{time.Hour, []string{"delete alice sip:alice@192.168.1.21", "delete bob sip:bob@10.0.0.5"}, nil, 0},
		{2 * time.Hour, nil, nil, 0},
	}
	for _, s := range steps {
		g.expire(ctx, regT0.Add(s.at))
		var left []string
		for _, b := range g.List(0, "") {
			left = append(left, b.Username+" "+b.Contact)
		}
		if diff := cmp.Diff(s.wantLeft, left); diff != "" {
			t.Errorf("t0+%v: bindings (-want +got):\n%s", s.at, diff)
		}
		if g.Count() != s.wantCount {
			t.Errorf("t0+%v: Count = %d, want %d", s.at, g.Count(), s.wantCount)
		}
		ops := st.takeOps()
		// Users are expired in map order; compare as a set.
		if diff := cmp.Diff(s.wantOps, ops, cmp.Transformer("sort", sortedStrings)); diff != "" {
			t.Errorf("t0+%v: store calls (-want +got):\n%s", s.at, diff)
		}
		if diff := cmp.Diff(held(g), st.stored()); diff != "" {
			t.Errorf("t0+%v: store vs memory (-memory +store):\n%s", s.at, diff)
		}
	}
	if _, ok := g.byUser["alice"]; ok {
		t.Errorf("alice's empty list is still in the map")
	}
}

func sortedStrings(in []string) []string {
	out := append([]string(nil), in...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// NewRegistrar loads the stored bindings, and the store's failures are errors.
func TestRegistrarStore(t *testing.T) {
	ctx := context.Background()
	stored := []Binding{
		binding("sip:alice@192.168.1.20", 0, 3600, "reg-1", 1),
		binding("sip:alice@192.168.1.21", time.Second, 3600, "reg-1", 2),
	}
	t.Run("load", func(t *testing.T) {
		g := newTestRegistrar(t, &fakeBindings{loaded: stored}, Config{})
		if g.Count() != 2 {
			t.Errorf("Count = %d, want 2", g.Count())
		}
		want := []Binding{stored[1], stored[0]} // newest first
		if diff := cmp.Diff(want, g.Lookup("alice", regT0.Add(time.Minute))); diff != "" {
			t.Errorf("Lookup (-want +got):\n%s", diff)
		}
	})
	t.Run("load fails", func(t *testing.T) {
		_, err := New(ctx, Config{Store: &fakeBindings{loadErr: errors.New("db down")}})
		if err == nil || !strings.Contains(err.Error(), "db down") {
			t.Errorf("err = %v, want the store's", err)
		}
	})
	t.Run("save fails", func(t *testing.T) {
		g := newTestRegistrar(t, &fakeBindings{saveErr: errors.New("db down")}, Config{})
		_, err := g.ServeSIP(ctx, regMsg{contacts: []string{"<sip:alice@192.168.1.20>"}}.request(t))
		if err == nil || !strings.HasPrefix(err.Error(), "registrar: save binding: ") {
			t.Errorf("err = %v, want registrar: save binding: …", err)
		}
	})
}

// TestRegistrarWriteBehind: REGISTERs are answered without touching the
// store; one flush writes the net changes in one batch, and a failed flush
// keeps them for the next.
func TestRegistrarWriteBehind(t *testing.T) {
	st := &fakeBindings{}
	g := newTestRegistrar(t, st, Config{FlushInterval: time.Second})
	ctx := context.Background()
	for i, m := range []regMsg{
		{cseq: 1, contacts: []string{"<sip:alice@192.168.1.20>"}},
		{cseq: 2, contacts: []string{"<sip:alice@192.168.1.21>"}},
		{cseq: 3, contacts: []string{"<sip:alice@192.168.1.20>;expires=0"}},
	} {
		if res, err := g.ServeSIP(ctx, m.request(t)); err != nil || res.Status != 200 {
			t.Fatalf("REGISTER %d: %+v %v", i, res, err)
		}
	}
	if ops := st.takeOps(); len(ops) != 0 {
		t.Fatalf("the store was written before a flush: %q", ops)
	}
	st.saveErr = errors.New("db down")
	if err := g.flush(ctx); err == nil {
		t.Fatal("flush with the store down: no error")
	}
	st.takeOps()
	st.saveErr = nil
	if err := g.flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"delete alice sip:alice@192.168.1.20", "save alice sip:alice@192.168.1.21"}
	if diff := cmp.Diff(want, st.takeOps()); diff != "" {
		t.Errorf("flush after a failure (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(held(g), st.stored()); diff != "" {
		t.Errorf("store vs memory (-memory +store):\n%s", diff)
	}
}

// TestRegistrarLazyRefresh: a refresh that only moves the expiry forward
// skips the store while the stored copy outlives the device's next refresh;
// anything else is written; a graceful stop writes the latest expiries.
func TestRegistrarLazyRefresh(t *testing.T) {
	st := &fakeBindings{}
	g := newTestRegistrar(t, st, Config{FlushInterval: time.Second})
	ctx := context.Background()
	step := func(m regMsg, want ...string) {
		t.Helper()
		if res, err := g.ServeSIP(ctx, m.request(t)); err != nil || res.Status != 200 {
			t.Fatalf("REGISTER cseq %d: %+v %v", m.cseq, res, err)
		}
		if err := g.flush(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, st.takeOps()); diff != "" {
			t.Errorf("REGISTER cseq %d at %v: store ops (-want +got):\n%s", m.cseq, m.at, diff)
		}
	}
	const ct = "<sip:alice@192.168.1.20>"
	saved := "save alice sip:alice@192.168.1.20"
	step(regMsg{cseq: 1, contacts: []string{ct}, expires: "3600"}, saved)
	step(regMsg{at: 2 * time.Second, cseq: 2, contacts: []string{ct}, expires: "3600"})                                              // refresh every 2 s: skipped
	step(regMsg{at: 4 * time.Second, cseq: 3, contacts: []string{ct}, expires: "3600"})                                              // again
	step(regMsg{at: 6 * time.Second, cseq: 4, contacts: []string{ct}, expires: "3600", src: "198.51.100.8:40000"}, saved)            // moved
	step(regMsg{at: 7 * time.Second, cseq: 5, contacts: []string{ct}, expires: "3600", src: "198.51.100.8:40000", tr: "tcp"}, saved) // transport
	step(regMsg{at: 8 * time.Second, cseq: 6, contacts: []string{ct}, expires: "600"}, saved)                                        // shorter expiry
	step(regMsg{at: 9 * time.Second, cseq: 6, contacts: []string{ct}, expires: "600", callID: "reg-2"})                              // new Call-ID only: skipped
	// Refreshing at half its expiry: the stored copy would not outlive the next refresh.
	step(regMsg{at: 309 * time.Second, cseq: 7, contacts: []string{ct}, expires: "600", callID: "reg-2"}, saved)
	step(regMsg{at: 310 * time.Second, cseq: 8, contacts: []string{ct}, expires: "600", callID: "reg-2"}) // 1 s later: skipped
	if len(st.stored()) != 1 || st.state["alice sip:alice@192.168.1.20"].Expires.Equal(g.List(0, "")[0].Expires) {
		t.Fatalf("before the stop the store should hold an older expiry than memory")
	}

	// A graceful stop writes the latest state.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { g.run(rctx, nil); close(done) }()
	cancel()
	<-done
	if got, want := st.state["alice sip:alice@192.168.1.20"].Expires, g.List(0, "")[0].Expires; !got.Equal(want) {
		t.Errorf("after the stop the store has expiry %v, memory %v", got, want)
	}
}
