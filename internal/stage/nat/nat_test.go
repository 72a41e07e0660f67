package nat

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
	"github.com/sipward/sipward/internal/snapshot"
)

const src = "198.51.100.7:40000"

func sdp(addr string) []byte {
	return []byte("v=0\r\no=- 1 1 IN IP4 " + addr + "\r\ns=-\r\nc=IN IP4 " + addr + "\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n")
}

func TestStage(t *testing.T) {
	st, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var seen *pipeline.Request
	h := pipeline.Build(pipeline.HandlerFunc{N: "next", F: func(_ context.Context, r *pipeline.Request) (pipeline.Result, error) {
		seen = r
		return pipeline.Reply("next", 200, "OK", "terminal"), nil
	}}, st)
	// media_relay is auto unless a case says otherwise: relayed when behind
	// NAT or the SDP was mended.
	tests := []struct {
		name      string
		mode      snapshot.NATMode
		noPrinc   bool
		via       string
		body      []byte
		wantOffer string // "" = r.Offer stays nil
		wantNAT   string
		relay     snapshot.RelayMode
		wantRelay bool // r.MediaRelay
	}{
		{name: "public caller, public SDP", via: "198.51.100.7:40000", body: sdp("198.51.100.7")},
		{name: "behind NAT, private SDP", wantRelay: true, via: "192.168.1.20:5060", body: sdp("192.168.1.20"),
			wantOffer: "c=IN IP4 198.51.100.7",
			wantNAT: "behind NAT (Via 192.168.1.20 is not the source 198.51.100.7): requests to it go to 198.51.100.7:40000; " +
				"SDP address 192.168.1.20 replaced by 198.51.100.7 (symmetric RTP)"},
		{name: "private SDP from a public signalling address", wantRelay: true, via: "198.51.100.7:40000", body: sdp("10.0.0.5"),
			wantOffer: "c=IN IP4 198.51.100.7", wantNAT: "SDP address 10.0.0.5 replaced by 198.51.100.7 (symmetric RTP)"},
		{name: "behind NAT, public SDP (a STUN-aware phone)", wantRelay: true, via: "192.168.1.20:5060", body: sdp("203.0.113.50"),
			wantNAT: "behind NAT (Via 192.168.1.20 is not the source 198.51.100.7): requests to it go to 198.51.100.7:40000"},
		{name: "force_nat replaces a public SDP address", wantRelay: true, mode: snapshot.NATForce, via: "198.51.100.7:40000", body: sdp("203.0.113.50"),
			wantOffer: "c=IN IP4 198.51.100.7",
			wantNAT:   "behind NAT (force_nat): requests to it go to 198.51.100.7:40000; SDP address 203.0.113.50 replaced by 198.51.100.7 (symmetric RTP)"},
		{name: "disable_nat leaves a private SDP", mode: snapshot.NATDisable, via: "192.168.1.20:5060", body: sdp("10.0.0.5"),
			wantNAT: "disable_nat: Contact and SDP as given"},
		{name: "the core is not touched", noPrinc: true, via: "192.168.1.20:5060", body: sdp("10.0.0.5")},
		{name: "relay never: behind NAT", relay: snapshot.RelayNever, via: "192.168.1.20:5060", body: sdp("192.168.1.20"),
			wantOffer: "c=IN IP4 198.51.100.7",
			wantNAT: "behind NAT (Via 192.168.1.20 is not the source 198.51.100.7): requests to it go to 198.51.100.7:40000; " +
				"SDP address 192.168.1.20 replaced by 198.51.100.7 (symmetric RTP)"},
		{name: "relay always: public caller", relay: snapshot.RelayAlways, via: "198.51.100.7:40000", body: sdp("198.51.100.7"), wantRelay: true},
		{name: "relay always with disable_nat", relay: snapshot.RelayAlways, mode: snapshot.NATDisable, via: "192.168.1.20:5060",
			body: sdp("10.0.0.5"), wantNAT: "disable_nat: Contact and SDP as given", wantRelay: true},
		{name: "late offer", via: "192.168.1.20:5060", wantRelay: true,
			wantNAT: "behind NAT (Via 192.168.1.20 is not the source 198.51.100.7): requests to it go to 198.51.100.7:40000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := siptest.Req{Method: sip.INVITE, Via: tt.via, Body: tt.body}.Msg(t)
			r := siptest.Request(msg, src, time.Unix(0, 0))
			if !tt.noPrinc {
				r.Principal = &snapshot.Principal{NAT: tt.mode, Relay: tt.relay}
			}
			if _, err := h.ServeSIP(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if seen.MediaRelay != tt.wantRelay {
				t.Errorf("MediaRelay = %v, want %v", seen.MediaRelay, tt.wantRelay)
			}
			if seen.NAT != tt.wantNAT {
				t.Errorf("NAT = %q\nwant  %q", seen.NAT, tt.wantNAT)
			}
			switch {
			case tt.wantOffer == "" && seen.Offer != nil:
				t.Errorf("offer changed:\n%s", seen.Offer)
			case tt.wantOffer != "" && !strings.Contains(string(seen.Offer), tt.wantOffer):
				t.Errorf("offer lacks %q:\n%s", tt.wantOffer, seen.Offer)
			}
			if string(msg.Body()) != string(tt.body) {
				t.Errorf("the inbound request was modified")
			}
		})
	}
	// The plain path allocates nothing (an INVITE has a Contact: sipgo
	// parses a missing one again on every look).
	msg := siptest.Req{Method: sip.INVITE, Via: "198.51.100.7:40000", Contact: "sip:pbx@198.51.100.7:40000", Body: sdp("198.51.100.7")}.Msg(t)
	r := siptest.Request(msg, src, time.Unix(0, 0))
	p := &snapshot.Principal{}
	if a := testing.AllocsPerRun(1000, func() {
		r.Principal, r.Trace, r.Offer, r.MediaRelay = p, pipeline.Trace{}, nil, false
		h.ServeSIP(context.Background(), r)
	}); a != 0 {
		t.Errorf("a caller not behind NAT costs %.0f allocations", a)
	}
}
