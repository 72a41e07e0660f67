package rtpengine_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/rtpengine"
	"github.com/sipward/sipward/internal/rtpengine/rtpenginetest"
)

func sdpAt(port int) []byte {
	return fmt.Appendf(nil, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", port)
}

var mLine = regexp.MustCompile(`m=audio (\d+) `)

func mediaPort(t *testing.T, sdp []byte) int {
	t.Helper()
	m := mLine.FindSubmatch(sdp)
	if m == nil {
		t.Fatalf("no m=audio line in %q", sdp)
	}
	p, _ := strconv.Atoi(string(m[1]))
	return p
}

// TestRelayCall: a real rtpengine relays a call's media in both directions
// between the ports its offer and answer gave, and forgets the call on
// delete (its own list is empty).
func TestRelayCall(t *testing.T) {
	e := rtpenginetest.Start(t)
	addrs, err := rtpengine.ParseAddrs("udp:" + e.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rtpengine.New(addrs, rtpengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	a, b := rtpenginetest.NewPeer(t, "127.0.0.1"), rtpenginetest.NewPeer(t, "127.0.0.1")
	toB, err := c.Offer(ctx, "call-1", "a", "", sdpAt(a.Port()))
	if err != nil {
		t.Fatal(err)
	}
	toA, err := c.Answer(ctx, "call-1", "a", "b", sdpAt(b.Port()))
	if err != nil {
		t.Fatal(err)
	}
	relayForB, relayForA := mediaPort(t, toB), mediaPort(t, toA)
	if relayForB == a.Port() || relayForA == b.Port() {
		t.Fatalf("the SDP still names the parties' own ports: %q / %q", toB, toA)
	}
	if calls, err := c.List(ctx); err != nil || !slices.Contains(calls, "call-1") {
		t.Fatalf("the engine's calls: %v, %v; want call-1", calls, err)
	}
	at := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	for _, s := range []struct {
		p    *rtpenginetest.Peer
		port int
	}{{b, relayForB}, {a, relayForA}, {b, relayForB}} { // B first: the engine learns B's address
		if err := s.p.Send(at(s.port), 25); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for (a.Got() < 25 || b.Got() < 25) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if a.Got() < 25 || b.Got() < 25 {
		t.Errorf("RTP through the relay: A got %d, B got %d; want 25+ each\n%s", a.Got(), b.Got(), e.Log())
	}
	if err := c.Delete(ctx, "call-1"); err != nil {
		t.Fatal(err)
	}
	if calls, err := c.List(ctx); err != nil || len(calls) != 0 {
		t.Errorf("the engine's calls after delete: %v, %v; want none", calls, err)
	}
	if c.Held() != 0 {
		t.Errorf("the client holds %d calls after delete", c.Held())
	}
	if err := c.Delete(ctx, "call-1"); err != nil {
		t.Errorf("a second delete: %v, want none", err)
	}
}

// TestRefusedAnswer: an answer to a call with no offer is an error naming
// the call; the engine's own refusal names the engine and the reason.
func TestRefusedAnswer(t *testing.T) {
	e := rtpenginetest.Start(t)
	c, err := rtpengine.New([]string{e.Addr}, rtpengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Answer(t.Context(), "nope", "a", "b", sdpAt(4000)); err == nil {
		t.Error("answer without an offer: no error")
	}
	_, err = c.Offer(t.Context(), "bad", "a", "", []byte("not sdp"))
	if err == nil {
		t.Fatal("an offer of garbage: no error")
	}
	t.Log(err)
}

// fakeEngine answers offers with a fixed SDP, or nothing when mute.
func fakeEngine(t *testing.T, mute bool) (string, *atomic.Int64) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var n atomic.Int64
	go func() {
		buf := make([]byte, 65535)
		for {
			k, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			n.Add(1)
			if mute {
				continue
			}
			cookie, _, _ := bytesCut(buf[:k])
			_, _ = c.WriteToUDP(fmt.Appendf(nil, "%s d3:sdp5:relay6:result2:oke", cookie), from)
		}
	}()
	return c.LocalAddr().String(), &n
}

func bytesCut(b []byte) (string, []byte, bool) {
	for i, x := range b {
		if x == ' ' {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", nil, false
}

// TestDeadEngineSkipped: a new call offered to an engine that does not
// answer goes to the next one; later new calls skip the dead engine; a
// call stays on its engine.
func TestDeadEngineSkipped(t *testing.T) {
	dead, deadN := fakeEngine(t, true)
	live, liveN := fakeEngine(t, false)
	c, err := rtpengine.New([]string{dead, live}, rtpengine.Options{Timeout: 200 * time.Millisecond, DeadFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for i := range 4 {
		out, err := c.Offer(ctx, fmt.Sprint("call-", i), "a", "", sdpAt(4000))
		if err != nil || string(out) != "relay" {
			t.Fatalf("offer %d: %q, %v", i, out, err)
		}
	}
	if d := deadN.Load(); d < 1 || d > 2 {
		t.Errorf("the dead engine got %d datagrams, want the first offer's (sent, then again once)", d)
	}
	if l := liveN.Load(); l != 4 {
		t.Errorf("the live engine got %d offers, want 4", l)
	}
	if _, err := c.Answer(ctx, "call-0", "a", "b", sdpAt(4002)); err != nil {
		t.Errorf("answer on the call's engine: %v", err)
	}
}

func TestParseAddrs(t *testing.T) {
	got, err := rtpengine.ParseAddrs("udp:127.0.0.1:2223, udp:[::1]:2224")
	if err != nil || !slices.Equal(got, []string{"127.0.0.1:2223", "[::1]:2224"}) {
		t.Errorf("ParseAddrs: %v, %v", got, err)
	}
	for _, bad := range []string{"", "127.0.0.1:2223", "tcp:127.0.0.1:2223", "udp:127.0.0.1"} {
		if _, err := rtpengine.ParseAddrs(bad); err == nil {
			t.Errorf("ParseAddrs(%q): no error", bad)
		}
	}
}

// BenchmarkCall is one relayed call's commands against a real rtpengine:
// offer, answer, delete (the client's side of the relay's cost per call).
func BenchmarkCall(b *testing.B) {
	e := rtpenginetest.Start(b)
	c, err := rtpengine.New([]string{e.Addr}, rtpengine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	offer, answer := sdpAt(40000), sdpAt(40002)
	b.ReportAllocs()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	defer func() { b.ReportMetric(float64((cpu()-start).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
	for i := 0; b.Loop(); i++ {
		id := "bench-" + strconv.Itoa(i)
		if _, err := c.Offer(ctx, id, "a", "", offer); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Answer(ctx, id, "a", "b", answer); err != nil {
			b.Fatal(err)
		}
		if err := c.Delete(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
