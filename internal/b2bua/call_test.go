package b2bua

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/store"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// nullSender sends nothing: the tests here never reach the network.
type nullSender struct{}

func (nullSender) Client(string) (*sipgo.Client, error) { return nil, context.Canceled }
func (nullSender) Contact(string) sip.Uri {
	return sip.Uri{Scheme: "sip", User: "sipward", Host: "127.0.0.1"}
}
func (nullSender) Host() string { return "127.0.0.1" }

// snap: account 1 Alpha with sends endpoint 10 (G729 restricted, intercepts
// re-INVITEs) and 20 (nothing); account 2 Beta with SIP user 1005 erin
// (PCMA restricted).
func snap(t *testing.T) *snapshot.Snapshot {
	t.Helper()
	ds := snapshot.Dataset{
		Accounts: []store.Account{{ID: 1, Name: "Alpha"}, {ID: 2, Name: "Beta"}},
		Endpoints: []store.IPEndpoint{
			{ID: 10, AccountID: 1, Address: "10.0.0.10", Direction: store.DirSends, Protocol: store.ProtoUDP, Port: 5060,
				RestrictedCodecs: []string{"G729"}, InterceptReinvite: true},
			{ID: 20, AccountID: 1, Address: "10.0.0.20", Direction: store.DirSends, Protocol: store.ProtoUDP, Port: 5060},
		},
		Users: []store.SIPUser{{ID: 1005, AccountID: 2, Username: "erin", Realm: "sipward", Protocol: new(store.ProtoUDP),
			NATPing: new(store.NATPingDisabled), RestrictedCodecs: []string{"PCMA"}}},
	}
	store.Resolve(&ds.Users[0], nil) // as the store does on write
	s, err := snapshot.Build(ds, snapshot.Options{Realm: "sipward"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestNewCall: a call carries what the API shows, the caller's codec
// restrictions (for answers and re-offers), its endpoint's re-INVITE
// interception, and a release that frees the call's channels by Call-ID.
func TestNewCall(t *testing.T) {
	s := snap(t)
	var released []string
	b, err := New(Config{Sender: nullSender{}, Answer: func(*pipeline.Request, pipeline.Result) {},
		Release: func(id string) { released = append(released, id) }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		auth      pipeline.Identity
		plan      pipeline.Plan
		wantView  CallView
		codecs    bool
		intercept bool
	}{
		{"ip endpoint with restricted codecs",
			pipeline.Identity{Method: pipeline.AuthIP, AccountID: 1, EndpointID: 10, AccountName: "Alpha"},
			pipeline.Plan{From: "441110000001", To: "442071234567", AccountID: 1, AccountName: "Alpha"},
			CallView{AccountID: 1, Account: "Alpha", Auth: "ip", Endpoint: 10, From: "441110000001", To: "442071234567", Source: "10.0.0.10:5060"},
			true, true},
		{"sip user with restricted codecs",
			pipeline.Identity{Method: pipeline.AuthDigest, AccountID: 2, SIPUserID: 1005, Username: "erin", AccountName: "Beta"},
			pipeline.Plan{From: "441110000001", To: "442071234567", AccountID: 2, AccountName: "Beta"},
			CallView{AccountID: 2, Account: "Beta", Auth: "digest", SIPUser: 1005, Username: "erin", From: "441110000001", To: "442071234567", Source: "10.0.0.10:5060"},
			true, false},
		{"ip endpoint without restrictions",
			pipeline.Identity{Method: pipeline.AuthIP, AccountID: 1, EndpointID: 20, AccountName: "Alpha"},
			pipeline.Plan{From: "441110000001", To: "442071234567", AccountID: 1, AccountName: "Alpha"},
			CallView{AccountID: 1, Account: "Alpha", Auth: "ip", Endpoint: 20, From: "441110000001", To: "442071234567", Source: "10.0.0.10:5060"},
			false, false},
		{"core: the view shows the plan's account (the DID's)",
			pipeline.Identity{Method: pipeline.AuthCore},
			pipeline.Plan{From: "441110000001", To: "441110000003", AccountID: 1, AccountName: "Alpha"},
			CallView{AccountID: 1, Account: "Alpha", Auth: "core", From: "441110000001", To: "441110000003", Source: "10.0.0.10:5060"},
			false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			released = nil
			r := siptest.Request(siptest.Req{User: tt.plan.To, From: tt.plan.From, CallID: "call-1@pbx.example.com"}.Msg(t), "10.0.0.10:5060", t0)
			r.Snap, r.Auth, r.Plan = s, tt.auth, tt.plan
			siptest.Attach(r)
			c := b.newCall(r)
			tt.wantView.ID, tt.wantView.Start, tt.wantView.State = c.id, t0, "early"
			if diff := cmp.Diff(tt.wantView, c.view); diff != "" {
				t.Errorf("view (-want +got):\n%s", diff)
			}
			if got := c.codecs != nil; got != tt.codecs {
				t.Errorf("codecs set = %v, want %v", got, tt.codecs)
			}
			if c.interceptReinvite != tt.intercept {
				t.Errorf("interceptReinvite = %v, want %v", c.interceptReinvite, tt.intercept)
			}
			c.free()
			c.free() // exactly once
			if diff := cmp.Diff([]string{"call-1@pbx.example.com"}, released); diff != "" {
				t.Errorf("release (-want +got):\n%s", diff)
			}
		})
	}
}

// The caller's leg is the INVITE's dialog seen from sipward's side: the
// requests sipward sends in it come From the INVITE's To with our tag, To
// the caller with its tag, to its Contact, through the address it came from.
func TestCallerLegRequests(t *testing.T) {
	b, err := New(Config{Sender: nullSender{}, Answer: func(*pipeline.Request, pipeline.Result) {}})
	if err != nil {
		t.Fatal(err)
	}
	r := siptest.Request(siptest.Req{User: "442071234567", From: "441110000001", Contact: "sip:a@192.168.1.20:5060"}.Msg(t),
		"198.51.100.7:40000", t0)
	c := b.newCall(r)
	bye := c.request(c.a, sip.BYE, nil, nullSender{}.Contact("udp"))
	if got, want := bye.Recipient.String(), "sip:a@192.168.1.20:5060"; got != want {
		t.Errorf("Request-URI %s, want %s", got, want)
	}
	if tag, _ := bye.To().Params.Get("tag"); tag != "1928301774" || bye.To().Address.User != "441110000001" {
		t.Errorf("To %s, want the caller with its tag", bye.To().Value())
	}
	if tag, _ := bye.From().Params.Get("tag"); tag != c.a.localTag || bye.From().Address.User != "442071234567" {
		t.Errorf("From %s, want the INVITE's To with our tag %s", bye.From().Value(), c.a.localTag)
	}
	if bye.Destination() != "198.51.100.7:40000" || bye.CSeq().SeqNo != 2 {
		t.Errorf("destination %s, CSeq %d; want the source and 2", bye.Destination(), bye.CSeq().SeqNo)
	}
}

// TestMapReplaces: a Replaces naming one of sipward's dialogs on the side
// the REFER came from is mapped to the other leg of that call, as that
// leg's peer knows it (its own tag as to-tag); anything else is kept.
func TestMapReplaces(t *testing.T) {
	b, err := New(Config{Sender: nullSender{}, Answer: func(*pipeline.Request, pipeline.Result) {}})
	if err != nil {
		t.Fatal(err)
	}
	r := siptest.Request(siptest.Req{User: "442071234567", From: "441110000001", CallID: "held@phone"}.Msg(t), "198.51.100.7:40000", t0)
	c := b.newCall(r) // leg a: Call-ID held@phone, the phone's tag 1928301774
	c.b.callID, c.b.localTag = "far@sipward", "ours-b"
	c.b.remote.Params = sip.NewParams()
	c.b.remote.Params.Add("tag", "core-b")
	b.calls.add(c)
	aTag := c.a.localTag
	tests := []struct {
		name, rep string
		fromA     bool
		want      string
	}{
		{"the phone's own dialog, mapped", "held@phone;to-tag=" + aTag + ";from-tag=1928301774", true,
			"far@sipward;to-tag=core-b;from-tag=ours-b"},
		{"tags the other way round, mapped", "held@phone;to-tag=1928301774;from-tag=" + aTag + ";early-only", true,
			"far@sipward;to-tag=core-b;from-tag=ours-b;early-only"},
		{"wrong tags, kept", "held@phone;to-tag=x;from-tag=y", true, "held@phone;to-tag=x;from-tag=y"},
		{"a dialog of the other side, kept", "held@phone;to-tag=" + aTag + ";from-tag=1928301774", false,
			"held@phone;to-tag=" + aTag + ";from-tag=1928301774"},
		{"unknown dialog, kept", "other@pbx;to-tag=1;from-tag=2", true, "other@pbx;to-tag=1;from-tag=2"},
	}
	for _, tt := range tests {
		if got := b.mapReplaces(tt.rep, tt.fromA); got != tt.want {
			t.Errorf("%s: mapReplaces(%q) = %q, want %q", tt.name, tt.rep, got, tt.want)
		}
	}
	// A relayed Refer-To carries the mapped Replaces, escaped.
	var rt sip.ReferToHeader
	if err := sip.ParseUri("sip:442079999999@core.example?Replaces=held%40phone%3Bto-tag%3D"+aTag+"%3Bfrom-tag%3D1928301774", &rt.Address); err != nil {
		t.Fatal(err)
	}
	if got, want := b.referTo(&rt, true), "<sip:442079999999@core.example?Replaces=far%40sipward%3Bto-tag%3Dcore-b%3Bfrom-tag%3Dours-b>"; got != want {
		t.Errorf("referTo = %s, want %s", got, want)
	}
}
