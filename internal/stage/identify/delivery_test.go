package identify

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
)

// An INVITE Config.Delivery accepts is a peer node's hand-over (AuthNode),
// whatever its source; one it refuses is identified as any other.
func TestStageDelivery(t *testing.T) {
	snap := build(t)
	stage, err := New(Config{Snapshot: func() *snapshot.Snapshot { return snap }, Delivery: func(msg *sip.Request, _ time.Time) (string, string, bool) {
		if h := msg.GetHeader("X-Sipward-Deliver"); h != nil && h.Value() == "good" {
			return "alice", "sip:alice@192.168.1.20", true
		}
		return "", "", false
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got pipeline.Identity
	next := pipeline.HandlerFunc{N: "next", F: func(_ context.Context, r *pipeline.Request) (pipeline.Result, error) {
		got = r.Auth
		return pipeline.Result{}, nil
	}}
	h := pipeline.Build(next, stage)
	for _, tt := range []struct {
		header string
		want   pipeline.AuthMethod
	}{{"good", pipeline.AuthNode}, {"forged", pipeline.AuthNone}, {"", pipeline.AuthNone}} {
		got = pipeline.Identity{}
		msg := request(t, "INVITE", "441110000001", "4412")
		if tt.header != "" {
			msg.AppendHeader(sip.NewHeader("X-Sipward-Deliver", tt.header))
		}
		r := &pipeline.Request{Msg: msg, Source: netip.MustParseAddrPort("198.51.100.99:5060"), Transport: pipeline.UDP, Snap: snap}
		if _, err := h.ServeSIP(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if got.Method != tt.want || tt.want == pipeline.AuthNode && (got.Username != "alice" || got.Contact != "sip:alice@192.168.1.20" || got.Dialled != "441110000001") {
			t.Errorf("header %q: identity %+v, want method %v", tt.header, got, tt.want)
		}
	}
}
