package route_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/stage/route"
)

// mailboxes is a route.Mailboxes whose targets name what was asked.
type mailboxes struct{}

func (mailboxes) Deposit(u *snapshot.User, from, to string, src netip.Addr) pipeline.Target {
	return pipeline.Target{Why: fmt.Sprintf("deposit %d from %s to %s by %s", u.ID, from, to, src)}
}

func (mailboxes) Retrieve(user, account int64, src netip.Addr) pipeline.Target {
	return pipeline.Target{Why: fmt.Sprintf("retrieve %d in %d by %s", user, account, src)}
}

// A user with voicemail on: registered, its phones then the mailbox after
// its ring timeout; not registered, the mailbox at once. *1: the caller's
// own mailbox, or (a caller that has none) the account's prompt.
func TestRouteVoicemail(t *testing.T) {
	ds := dataset()
	for i := range ds.Users {
		switch ds.Users[i].Username {
		case "alice", "dave":
			ds.Users[i].Voicemail.Enabled, ds.Users[i].Voicemail.RingTimeout = true, 7
		}
	}
	snap, err := snapshot.Build(ds, snapshot.Options{Realm: "sipward"})
	if err != nil {
		t.Fatal(err)
	}
	rt := route.New(route.Config{Upstreams: upstreams(t, "sip:core1.example.net"), Locator: fillRegistrar(t, phones), Mailboxes: mailboxes{}})
	src := netip.MustParseAddrPort("198.51.100.7:5060")
	plan := func(auth pipeline.Identity) pipeline.Plan {
		t.Helper()
		r := &pipeline.Request{Msg: invite(t, auth.Dialled, auth.CLI), Source: src, Transport: pipeline.UDP, Now: t0, Snap: snap, Auth: auth}
		p, rej, err := rt.Route(t.Context(), r)
		if err != nil || rej != nil {
			t.Fatalf("%s: Route: %v %+v", auth.Dialled, err, rej)
		}
		return p
	}
	core := func(did string) pipeline.Identity {
		return pipeline.Identity{Method: pipeline.AuthCore, Dialled: did, CLI: "447700900123"}
	}

	p := plan(core("441110000001")) // alice: registered
	if p.Voicemail == nil || p.Voicemail.Why != "deposit 1000 from 447700900123 to 441110000001 by 198.51.100.7" ||
		p.RingTimeout != 7*time.Second || len(p.Targets) == 0 || p.Targets[0].Why == p.Voicemail.Why {
		t.Errorf("registered user with voicemail: targets %v, voicemail %+v, ring %s", p.Targets, p.Voicemail, p.RingTimeout)
	}
	p = plan(core("441110000004")) // dave: never registers
	if len(p.Targets) != 1 || p.Targets[0].Why != "deposit 1002 from 447700900123 to 441110000004 by 198.51.100.7" || p.Voicemail != nil {
		t.Errorf("unregistered user with voicemail: targets %v, voicemail %+v", p.Targets, p.Voicemail)
	}
	p = plan(core("441110000002")) // bob: voicemail off
	if p.Voicemail != nil {
		t.Errorf("user without voicemail got a mailbox: %+v", p.Voicemail)
	}

	alice := identities["alice"]
	alice.Dialled, alice.CLI = route.RetrievalCode, "alice"
	if p = plan(alice); len(p.Targets) != 1 || p.Targets[0].Why != "retrieve 1000 in 1 by 198.51.100.7" {
		t.Errorf("*1 by alice: %v", p.Targets)
	}
	bob := identities["bob"]
	bob.Dialled, bob.CLI = route.RetrievalCode, "bob"
	if p = plan(bob); len(p.Targets) != 1 || p.Targets[0].Why != "retrieve 0 in 1 by 198.51.100.7" {
		t.Errorf("*1 by bob (no mailbox of his own): %v", p.Targets)
	}
}
