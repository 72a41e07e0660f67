// Package rtpenginetest starts a real rtpengine (Debian package
// rtpengine-daemon) for tests, and gives them RTP peers that count what
// reaches them. The engine: userspace forwarding on 127.0.0.1, deleted
// calls forgotten at once (--delete-delay=0), stopped when the test ends.
// Where the binary is missing the test is skipped, or fails under CI=true
// (.ci/run installs it).
package rtpenginetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Engine is a running rtpengine.
type Engine struct {
	Addr string // its ng control address, host:port
	log  *syncBuffer
}

// Log returns what the engine logged so far.
func (e *Engine) Log() string { return e.log.String() }

// Start starts an rtpengine listening for ng commands on a free 127.0.0.1
// port, relaying media on 127.0.0.1 on a range of ports of its own.
func Start(t testing.TB) *Engine {
	t.Helper()
	return StartOn(t, "127.0.0.1")
}

// StartOn is Start with the media relayed on the local address ip (one the
// parties can reach).
func StartOn(t testing.TB, ip string) *Engine {
	t.Helper()
	bin, err := exec.LookPath("rtpengine")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("rtpengine is not installed (apt-get install rtpengine-daemon): the media relay tests need it")
		}
		t.Skip("rtpengine is not installed (apt-get install rtpengine-daemon)")
	}
	ng := freeUDPPort(t)
	// A media port range of its own, away from the ephemeral range tests' sockets use.
	lo := 20000 + rand.IntN(500)*20
	log := &syncBuffer{}
	// --config-file=none: the package's /etc/rtpengine/rtpengine.conf (fixed
	// CLI and HTTP ports) is not read, so that several engines can run at once.
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config-file=none", "--interface="+ip, "--listen-ng=127.0.0.1:"+strconv.Itoa(ng), "--foreground",
		"--log-stderr", "--table=-1", "--delete-delay=0", "--port-min="+strconv.Itoa(lo), "--port-max="+strconv.Itoa(lo+19),
		"--num-threads=2", "--log-level=6")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start rtpengine: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	e := &Engine{Addr: "127.0.0.1:" + strconv.Itoa(ng), log: log}
	// Ready when it answers a ping.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(e.Addr) {
			return e
		}
		select {
		case <-done:
			t.Fatalf("rtpengine exited:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rtpengine does not answer a ping on %s:\n%s", e.Addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ping(addr string) bool {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write([]byte("p d7:command4:pinge")); err != nil {
		return false
	}
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	return err == nil && bytes.Contains(buf[:n], []byte("pong"))
}

func freeUDPPort(t testing.TB) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Peer is one party's RTP socket: it counts the packets it receives and
// sends PCMU packets (20 ms each, its port as the SSRC).
type Peer struct {
	conn *net.UDPConn
	got  atomic.Int64
}

// NewPeer opens a Peer on ip (an ephemeral port), closed when the test ends.
func NewPeer(t testing.TB, ip string) *Peer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &Peer{conn: c}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			p.got.Add(1)
		}
	}()
	return p
}

// Port returns the peer's port.
func (p *Peer) Port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

// Got returns how many packets the peer received.
func (p *Peer) Got() int64 { return p.got.Load() }

// SDP is an offer or answer of PCMU at the peer's port, with connection
// address addr (its own, or a private one a NAT hides).
func (p *Peer) SDP(addr string) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
		addr, addr, p.Port())
}

// Send sends n RTP packets to dst (host:port), 2 ms apart.
func (p *Peer) Send(dst string, n int) error {
	to, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		return err
	}
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	binary.BigEndian.PutUint32(pkt[8:], uint32(p.Port()))
	for i := range n {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i*160))
		if _, err := p.conn.WriteToUDP(pkt, to); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}
