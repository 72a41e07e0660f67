package sipudp

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// sockPair is an edge socket and a plain peer socket, both on loopback.
func sockPair(t *testing.T, network, addr string) (*udpSock, *net.UDPConn) {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	peer, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	s := newUDPSock(c.(*net.UDPConn))
	if runtime.GOOS == "linux" && !s.raw() {
		t.Fatalf("the %s socket is not read and written with raw system calls", network)
	}
	return s, peer.(*net.UDPConn)
}

func TestUDPSockSendsAndReceives(t *testing.T) {
	for _, tc := range []struct{ name, network, addr string }{
		{"IPv4 socket", "udp4", "127.0.0.1:0"},
		{"IPv6 socket", "udp6", "[::1]:0"},
		{"dual-stack socket, IPv4 peer", "udp", ":0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, peer := sockPair(t, tc.network, tc.addr)
			peerAP := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(peer.LocalAddr().(*net.UDPAddr).Port))
			if tc.network == "udp6" {
				peerAP = netip.AddrPortFrom(netip.IPv6Loopback(), peerAP.Port())
			}
			// edge → peer
			if n, err := s.WriteToUDPAddrPort([]byte("OPTIONS"), peerAP); err != nil || n != 7 {
				t.Fatalf("WriteToUDPAddrPort = %d, %v", n, err)
			}
			buf := make([]byte, 100)
			_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, from, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "OPTIONS" {
				t.Fatalf("peer read %q, %v", buf[:n], err)
			}
			if from.Port() != uint16(s.LocalAddr().(*net.UDPAddr).Port) {
				t.Fatalf("peer saw source %v, the edge is %v", from, s.LocalAddr())
			}
			// sipgo's path: WriteTo with a *net.UDPAddr
			if _, err := s.WriteTo([]byte("BYE"), net.UDPAddrFromAddrPort(peerAP)); err != nil {
				t.Fatal(err)
			}
			if n, _, err := peer.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "BYE" {
				t.Fatalf("peer read %q, %v", buf[:n], err)
			}
			// peer → edge: the reader reports the peer as the source
			edgeAP := netip.AddrPortFrom(peerAP.Addr(), uint16(s.LocalAddr().(*net.UDPAddr).Port))
			if _, err := peer.WriteToUDPAddrPort([]byte("SIP/2.0 200 OK"), edgeAP); err != nil {
				t.Fatal(err)
			}
			r := s.reader(make([]byte, 65535))
			data, src, err := r.read()
			if err != nil || string(data) != "SIP/2.0 200 OK" {
				t.Fatalf("read %q, %v", data, err)
			}
			if src.Addr().Unmap() != peerAP.Addr() || src.Port() != peerAP.Port() {
				t.Fatalf("source %v, want %v", src, peerAP)
			}
		})
	}
}

func TestUDPSockIPv6DestinationOnIPv4SocketIsAnError(t *testing.T) {
	s, _ := sockPair(t, "udp4", "127.0.0.1:0")
	if _, err := s.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("[::1]:5060")); err == nil {
		t.Fatal("sending to an IPv6 address from an IPv4 socket succeeded")
	}
}

func TestUDPSockCloseEndsARead(t *testing.T) {
	s, _ := sockPair(t, "udp4", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() {
		_, _, err := s.reader(make([]byte, 100)).read()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the reader park in the netpoller
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a parked read did not end when the socket closed")
	}
}

// TestUDPSockSendAndReceiveAllocateNothing proves the raw socket path
// allocates nothing. A run the kernel makes wait (a full buffer, a read
// that parks in the netpoller while the machine is busy) goes through the
// runtime's poller, which may allocate: that is the scheduler's, not the
// path's. So each measure is the least of a few runs: a run on the fast
// path shows 0; a busy machine cannot make every run wait.
func TestUDPSockSendAndReceiveAllocateNothing(t *testing.T) {
	s, peer := sockPair(t, "udp4", "127.0.0.1:0")
	peerAP := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	edgeAP := s.LocalAddr().(*net.UDPAddr).AddrPort()
	msg := []byte("SIP/2.0 100 Trying\r\n\r\n")
	r := s.reader(make([]byte, 65535))
	drain := make([]byte, 64)
	if a := leastAllocs(5, 200, func() {
		if _, err := s.WriteToUDPAddrPort(msg, peerAP); err != nil {
			t.Fatal(err)
		}
	}, func() { // empty the peer's buffer between runs, so no run meets a full one
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		for {
			if _, _, err := peer.ReadFromUDPAddrPort(drain); err != nil {
				return
			}
		}
	}); a != 0 {
		t.Errorf("a send allocates %.1f times", a)
	}
	if a := leastAllocs(5, 200, func() {
		if _, err := peer.WriteToUDPAddrPort(msg, edgeAP); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.read(); err != nil {
			t.Fatal(err)
		}
	}, nil); a != 0 {
		t.Errorf("a receive allocates %.1f times", a)
	}
}

// leastAllocs is the least of tries AllocsPerRun(runs, f), with between run
// before each try.
func leastAllocs(tries, runs int, f, between func()) float64 {
	least := math.Inf(1)
	for range tries {
		if between != nil {
			between()
		}
		least = min(least, testing.AllocsPerRun(runs, f))
		if least == 0 {
			break
		}
	}
	return least
}

func TestUDPSockCloseWhileWriting(t *testing.T) {
	s, peer := sockPair(t, "udp4", "127.0.0.1:0")
	peerAP := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				if _, err := s.WriteToUDPAddrPort([]byte("OPTIONS"), peerAP); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	s.Close()
	for range 4 {
		select {
		case err := <-errs:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("a write after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a writer kept writing after Close")
		}
	}
}

// TestUDPSockReadersShareTheSocket: several readers (one waiting in the
// netpoller, the others standing by) read every datagram exactly once, in
// bursts and one at a time, and all of them end when the socket closes.
func TestUDPSockReadersShareTheSocket(t *testing.T) {
	s, peer := sockPair(t, "udp4", "127.0.0.1:0")
	_ = s.SetReadBuffer(SocketBuffer) // the burst must fit (the kernel drops what does not)
	edgeAP := s.LocalAddr().(*net.UDPAddr).AddrPort()
	got := make(chan string, 4096)
	ended := make(chan error, 4)
	for range 4 {
		go func() {
			r := s.reader(make([]byte, 100))
			for {
				b, _, err := r.read()
				if err != nil {
					ended <- err
					return
				}
				got <- string(b)
			}
		}()
	}
	seen := map[string]bool{}
	collect := func(n int) {
		t.Helper()
		for range n {
			select {
			case m := <-got:
				if seen[m] {
					t.Fatalf("%q read twice", m)
				}
				seen[m] = true
			case <-time.After(2 * time.Second):
				t.Fatalf("%d datagrams read of %d sent", len(seen), n)
			}
		}
	}
	send := func(i int) {
		if _, err := peer.WriteToUDPAddrPort([]byte("m"+strconv.Itoa(i)), edgeAP); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 { // a burst: readers behind wake the ones standing by
		send(i)
	}
	collect(1000)
	for i := 1000; i < 1050; i++ { // one at a time: one reader wakes for each
		send(i)
		collect(1)
	}
	s.Close()
	for range 4 {
		select {
		case err := <-ended:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("a reader ended with %v, want net.ErrClosed", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a reader did not end when the socket closed")
		}
	}
}
