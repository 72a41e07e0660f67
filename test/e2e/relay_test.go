package e2e

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/rtpengine"
	"github.com/sipward/sipward/internal/rtpengine/rtpenginetest"
)

// mustSend sends n RTP packets from p to dst.
func mustSend(t *testing.T, p *rtpenginetest.Peer, dst string, n int) {
	t.Helper()
	if err := p.Send(dst, n); err != nil {
		t.Fatal(err)
	}
}

// rtpBothWays sends RTP far → its destination toNear, near → toFar, far
// again (the relay learns the far party first), and fails the test unless
// each side got 20 packets or more within 5 s.
func rtpBothWays(t *testing.T, far *rtpenginetest.Peer, toNear string, near *rtpenginetest.Peer, toFar string) {
	t.Helper()
	f0, n0 := far.Got(), near.Got()
	mustSend(t, far, toNear, 20)
	mustSend(t, near, toFar, 20)
	mustSend(t, far, toNear, 20)
	deadline := time.Now().Add(5 * time.Second)
	for (far.Got()-f0 < 20 || near.Got()-n0 < 20) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g, k := far.Got()-f0, near.Got()-n0; g < 20 || k < 20 {
		t.Errorf("RTP: the far party got %d packets, the near one %d; want 20+ each", g, k)
	}
}

var sdpConn, sdpPort = regexp.MustCompile(`c=IN IP4 (\S+)`), regexp.MustCompile(`m=audio (\d+) `)

// mediaDest returns host:port an SDP sends media to.
func mediaDest(t *testing.T, sdp string) string {
	t.Helper()
	c, m := sdpConn.FindStringSubmatch(sdp), sdpPort.FindStringSubmatch(sdp)
	if c == nil || m == nil {
		t.Fatalf("no media address in SDP\n%s", sdp)
	}
	return net.JoinHostPort(c[1], m[1])
}

// withSDP returns the raw request inv with its body replaced by sdp.
func withSDP(inv, sdp string) string {
	head, _, _ := strings.Cut(inv, "\r\n\r\n")
	head = regexp.MustCompile(`Content-Length: \d+`).ReplaceAllString(head, "Content-Length: "+strconv.Itoa(len(sdp)))
	return head + "\r\n\r\n" + sdp
}

// TestMediaRelay: with --rtpengine and a real rtpengine, the media of a call
// from an endpoint with media_relay always, and of one behind NAT left to
// auto, goes through the relay: the core and the caller each see the
// relay's address, RTP flows both ways through it (counted at both ends),
// the decision says so, and after the BYE the relay holds no session (its
// own list), as after a call the core refuses. An endpoint with media_relay never, and one not behind NAT on
// auto, keep their SDP as given and the relay sees nothing.
func TestMediaRelay(t *testing.T) {
	eng := rtpenginetest.Start(t)
	core := newRawUAS(t, "127.0.0.1", 200)
	coreRTP := rtpenginetest.NewPeer(t, "127.0.0.1")
	core.mu.Lock()
	core.sdp = []byte(coreRTP.SDP("127.0.0.1"))
	core.mu.Unlock()
	n := start(t, "", "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32", "--rtpengine", "udp:"+eng.Addr)
	if !strings.Contains(n.Log(), "rtpengine: media relays answer") {
		t.Errorf("no startup line about the relay in the log:\n%s", n.Log())
	}
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	for addr, mode := range map[string]string{"127.0.0.2": "always", "127.0.0.3": "never", "127.0.0.4": "auto", "127.0.0.5": "auto"} {
		ep := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": addr, "media_relay": mode})
		if ep["media_relay"] != mode {
			t.Errorf("endpoint %s: media_relay %v, want %s", addr, ep["media_relay"], mode)
		}
	}
	st, m := n.api(t, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.9", "media_relay": "sometimes"})
	if e, _ := m["error"].(map[string]any); st != 400 || e["field"] != "media_relay" {
		t.Errorf("media_relay sometimes: %d %v, want 400 naming media_relay", st, m)
	}
	waitSnapshot(t, n)
	relay, err := rtpengine.New([]string{eng.Addr}, rtpengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	held := func() []string {
		ids, err := relay.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}

	for _, tc := range []struct {
		name, src, sdpAddr string
		nat, relayed       bool
	}{
		{"media_relay always", "127.0.0.2", "127.0.0.2", false, true},
		{"media_relay never", "127.0.0.3", "127.0.0.3", false, false},
		{"auto, behind NAT", "127.0.0.4", "192.168.1.20", true, true},
		{"auto, not behind NAT", "127.0.0.5", "127.0.0.5", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUAC(t, tc.src, n.SIP)
			callerRTP := rtpenginetest.NewPeer(t, tc.src)
			c := newCall("441234567890", "442071234567")
			inv := u.invite(c)
			if tc.nat {
				inv = natInvite(u, c, "192.168.1.20:5060", "")
			}
			before := len(core.requests(sip.INVITE))
			u.send(withSDP(inv, callerRTP.SDP(tc.sdpAddr)))
			_, res := u.final("INVITE", 5*time.Second)
			u.ack(c, res)
			if res.StatusCode != 200 {
				t.Fatalf("call: %d %s", res.StatusCode, res.Reason)
			}
			coreGot := string(core.requests(sip.INVITE)[before].Body())
			toCaller, toCore := mediaDest(t, coreGot), mediaDest(t, string(res.Body()))
			own := net.JoinHostPort(tc.src, strconv.Itoa(callerRTP.Port()))
			coreOwn := net.JoinHostPort("127.0.0.1", strconv.Itoa(coreRTP.Port()))
			d := n.decision(t, c.callID)
			if tc.relayed {
				if toCaller == own || toCore == coreOwn {
					t.Fatalf("relayed call: the core was sent to %s (caller %s), the caller to %s (core %s): want the relay's ports", toCaller, own, toCore, coreOwn)
				}
				if !strings.Contains(fmt.Sprint(d["why"]), "media through the relay") {
					t.Errorf("decision why = %q, want it to say the media goes through the relay", d["why"])
				}
				if len(held()) != 1 {
					t.Errorf("the relay holds %v during the call, want one session", held())
				}
			} else {
				if toCaller != own || toCore != coreOwn {
					t.Errorf("unrelayed call: the core was sent to %s, the caller to %s; want %s and %s", toCaller, toCore, own, coreOwn)
				}
				if ids := held(); len(ids) != 0 {
					t.Errorf("the relay holds %v for an unrelayed call", ids)
				}
			}
			// RTP both ways: the core first (the relay learns where the core is), then the caller.
			rtpBothWays(t, coreRTP, toCaller, callerRTP, toCore)
			if st := u.bye(c); st != 200 {
				t.Errorf("BYE: %d", st)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(held()) > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if ids := held(); len(ids) != 0 {
				t.Errorf("the relay still holds %v after the BYE", ids)
			}
		})
	}

	// A call the core refuses: the relay's session (made for the offer) is
	// deleted with the failed call.
	t.Run("media_relay always, the core refuses", func(t *testing.T) {
		core.mu.Lock()
		core.status = 486
		core.mu.Unlock()
		defer func() { core.mu.Lock(); core.status = 200; core.mu.Unlock() }()
		u := newUAC(t, "127.0.0.2", n.SIP)
		callerRTP := rtpenginetest.NewPeer(t, "127.0.0.2")
		c := newCall("441234567890", "442071234567")
		u.send(withSDP(u.invite(c), callerRTP.SDP("127.0.0.2")))
		_, res := u.final("INVITE", 5*time.Second)
		u.ack(c, res)
		if res.StatusCode != 486 {
			t.Fatalf("call: %d %s, want the core's 486", res.StatusCode, res.Reason)
		}
		invs := core.requests(sip.INVITE)
		if got, own := mediaDest(t, string(invs[len(invs)-1].Body())), "127.0.0.2:"+strconv.Itoa(callerRTP.Port()); got == own {
			t.Fatalf("the core was offered the caller's own %s: the relay was not asked", got)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(held()) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if ids := held(); len(ids) != 0 {
			t.Errorf("the relay still holds %v after the refused call", ids)
		}
	})
}

// TestTransferThroughTheMediaRelay: a relayed call (media_relay always) of
// a customer with Smart Extension is transferred by the core: the target is
// offered the relay's address, the caller's re-INVITE names the relay too,
// RTP flows caller ↔ relay ↔ target, and the relay's one session is gone
// after the BYE.
func TestTransferThroughTheMediaRelay(t *testing.T) {
	eng := rtpenginetest.Start(t)
	coreRTP, targetRTP := rtpenginetest.NewPeer(t, "127.0.0.1"), rtpenginetest.NewPeer(t, "127.0.0.1")
	core := newRawUAS(t, "127.0.0.1", 200, func(core *rawUAS) {
		core.sdp = []byte(coreRTP.SDP("127.0.0.1"))
		core.byUser = map[string]uasAnswer{"442079999999": {200, targetRTP.SDP("127.0.0.1")}}
	})
	n := start(t, "", "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32", "--rtpengine", "udp:"+eng.Addr)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc),
		map[string]any{"address": "127.0.0.2", "media_relay": "always", "smart_extension": true})
	waitSnapshot(t, n)
	relay, err := rtpengine.New([]string{eng.Addr}, rtpengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	u := newUAC(t, "127.0.0.2", n.SIP)
	callerRTP := rtpenginetest.NewPeer(t, "127.0.0.2")
	u.sdp = callerRTP.SDP("127.0.0.2")
	c := newCall("441234567890", "442071234567")
	u.send(withSDP(u.invite(c), u.sdp))
	_, res := u.final("INVITE", 5*time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("call: %d", res.StatusCode)
	}
	u.ack(c, res)
	legB := core.requests(sip.INVITE)[0].CallID().Value()
	if st := core.sendWith(legB, sip.REFER, "", "Refer-To: <sip:442079999999@127.0.0.1>"); st.StatusCode != 202 {
		t.Fatalf("REFER answered %d", st.StatusCode)
	}
	reqs := u.until(sip.ACK, 10*time.Second)
	if reqs[0].Method != sip.INVITE {
		t.Fatalf("the caller got %v, want the re-INVITE", methods(reqs))
	}
	toTarget := mediaDest(t, string(reqs[0].Body()))
	nw := core.waitRequests(t, sip.INVITE, "", 2)[1] // the target's
	toCaller := mediaDest(t, string(nw.Body()))
	own, target := net.JoinHostPort("127.0.0.2", strconv.Itoa(callerRTP.Port())), net.JoinHostPort("127.0.0.1", strconv.Itoa(targetRTP.Port()))
	if toTarget == target || toCaller == own {
		t.Fatalf("the caller was sent to %s (target %s), the target to %s (caller %s): want the relay's ports", toTarget, target, toCaller, own)
	}
	core.waitRequests(t, sip.BYE, legB, 1)
	rtpBothWays(t, targetRTP, toCaller, callerRTP, toTarget)
	if st := u.bye(c); st != 200 {
		t.Fatalf("BYE: %d", st)
	}
	n.waitIdle(t)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if ids, err := relay.List(context.Background()); err == nil && len(ids) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("the relay still holds the call's session after the BYE")
}
