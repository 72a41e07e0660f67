package siptcp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// TestFramer: the framer tells a message under way from the gap between
// messages, whatever the reads cut the stream into.
func TestFramer(t *testing.T) {
	msg := "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP x;branch=z9hG4bK1\r\nl: 5\r\n\r\nhello"
	noBody := "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n"
	tests := []struct {
		name   string
		chunks []string
		want   bool // a message under way after the chunks
	}{
		{"nothing", nil, false},
		{"keepalives", []string{"\r\n\r\n", "\r\n"}, false},
		{"start line only", []string{"INVITE sip:a@b SIP/2.0\r\n"}, true},
		{"headers, body to come", []string{msg[:len(msg)-5]}, true},
		{"body partly", []string{msg[:len(msg)-2]}, true},
		{"whole message", []string{msg}, false},
		{"whole message byte by byte", strings.Split(msg, ""), false},
		{"no body", []string{noBody}, false},
		{"two messages and a keepalive", []string{noBody + msg + "\r\n\r\n"}, false},
		{"second message begun", []string{noBody + "INV"}, true},
		{"long Content-Length line", []string{"OPTIONS sip:a SIP/2.0\r\nContent-Length:      12\r\n\r\n0123456789a"}, true},
		{"LF only", []string{"OPTIONS sip:a SIP/2.0\nContent-Length: 2\n\nhi"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f framer
			for _, c := range tt.chunks {
				f.scan([]byte(c), t0)
			}
			if got := f.inMessage(); got != tt.want {
				t.Errorf("inMessage() = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzStreamFraming feeds a stream, as TCP may cut it into two reads, to
// the framer and to sipgo's stream parser (what sipgo's TCP reader runs):
// neither panics, the framer ends in the same state however the stream was
// cut, and the parser yields the same messages (or the same refusal).
func FuzzStreamFraming(f *testing.F) {
	f.Add([]byte("OPTIONS sip:a SIP/2.0\r\nl: 3\r\n\r\nabc\r\n\r\nINVITE"), uint8(7))
	f.Add([]byte("\r\n\r\n"), uint8(1))
	f.Add([]byte("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"+
		"To: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"), uint8(40))
	parser := sip.NewParser()
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		k := min(int(cut), len(data))
		var whole, parts framer
		whole.scan(data, t0)
		parts.scan(data[:k], t0)
		parts.scan(data[k:], t0)
		if whole.state != parts.state || whole.body != parts.body {
			t.Fatalf("framer at once %d/%d, in two reads %d/%d", whole.state, whole.body, parts.state, parts.body)
		}
		// Through holdLF.read, as conn.Read delivers the reads to sipgo: in
		// one read into a buffer that takes it all, and in two into a small
		// one.
		var atOnce, inTwo []string
		oneRead := bytes.Join(deliverAll(data, len(data), len(data)+2), nil)
		errOnce := parser.NewSIPStream().ParseSIPStream(oneRead, func(m sip.Message) { atOnce = append(atOnce, m.String()) })
		ps := parser.NewSIPStream()
		var errTwo error
		for _, chunk := range deliverAll(data, k, 64) {
			if errTwo == nil || errors.Is(errTwo, sip.ErrParseSipPartial) {
				errTwo = ps.ParseSIPStream(chunk, func(m sip.Message) { inTwo = append(inTwo, m.String()) })
			}
		}
		if (errOnce == nil) != (errTwo == nil) && len(atOnce) == len(inTwo) {
			return // a partial message left at the end is reported by whichever read saw it last
		}
		if len(atOnce) != len(inTwo) {
			t.Fatalf("%d messages at once (%v), %d in two reads (%v)", len(atOnce), errOnce, len(inTwo), errTwo)
		}
	})
}

// deliverAll runs data, arriving from the socket in two reads cut at k,
// through holdLF.read with a reader's buffer of size bytes, and returns what
// each read delivered.
func deliverAll(data []byte, k, size int) [][]byte {
	reads := [][]byte{data[:k], data[k:]}
	src := func(b []byte) (int, error) {
		for len(reads) > 0 && len(reads[0]) == 0 {
			reads = reads[1:]
		}
		if len(reads) == 0 {
			return 0, io.EOF
		}
		n := copy(b, reads[0])
		reads[0] = reads[0][n:]
		return n, nil
	}
	var h holdLF
	var out [][]byte
	buf := make([]byte, size)
	for {
		n, err := h.read(buf, src, func() time.Time { return t0 })
		out = append(out, bytes.Clone(buf[:n]))
		if err != nil {
			return out
		}
	}
}

// TestBareLF: a message with LF-only line ends reaches sipgo's parser with
// CRLF in its start line and headers, its body untouched, however it is
// cut into reads and whatever the reader's buffer.
func TestBareLF(t *testing.T) {
	msg := "OPTIONS sip:a SIP/2.0\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>\n" +
		"Call-ID: lf\nCSeq: 1 OPTIONS\nContent-Length: 5\n\nab\ncd"
	want := strings.ReplaceAll(msg[:strings.Index(msg, "\n\n")+2], "\n", "\r\n") + "ab\ncd"
	for _, size := range []int{7, 64, 4096} {
		for k := 0; k <= len(msg); k += 5 {
			got := bytes.Join(deliverAll([]byte(msg), k, size), nil)
			if string(got) != want {
				t.Fatalf("cut at %d, buffer %d:\n%q\nwant\n%q", k, size, got, want)
			}
		}
	}
	m, err := sip.NewParser().ParseSIP([]byte(want))
	if err != nil || string(m.Body()) != "ab\ncd" {
		t.Fatalf("sipgo parses the rewritten message: %v", err)
	}
}

// listen starts a guarded listener on 127.0.0.1:0 that echoes nothing and
// reads every connection until it ends; closed receives each connection's
// read error.
func listen(t *testing.T, cfg Config) (*Listener, chan error) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(raw, cfg)
	closed := make(chan error, 1000)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, err := io.Copy(io.Discard, c)
				closed <- err
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l, closed
}

func dial(t *testing.T, l *Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed waits until the server side closes c (a read returns EOF or an
// error), at most within.
func waitClosed(t *testing.T, c net.Conn, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(within))
	_, err := bufio.NewReader(c).ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("still open after %v", within)
	}
	return time.Since(start)
}

// TestSlowLoris: a message that trickles in a byte at a time is cut off at
// HeaderTimeout from its first byte; one that arrives whole is not, and an
// idle connection lives until IdleTimeout.
func TestSlowLoris(t *testing.T) {
	l, _ := listen(t, Config{HeaderTimeout: 300 * time.Millisecond, IdleTimeout: time.Hour})
	slow := dial(t, l)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a byte every 50 ms: each read comes well within any per-read timeout
		defer wg.Done()
		for _, b := range []byte("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP x;branch=z9hG4bK1\r\n") {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	if d := waitClosed(t, slow, 20*time.Second); d < 250*time.Millisecond {
		t.Errorf("cut off after %v, before HeaderTimeout", d)
	}
	close(stop)
	wg.Wait()

	// A connection that sends whole messages and keepalives is not cut off.
	ok := dial(t, l)
	for range 3 {
		if _, err := ok.Write([]byte("OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = ok.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := ok.Read(make([]byte, 1)); err == nil || !isTimeout(err) {
		t.Errorf("a connection that sent whole messages was closed: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// TestIdleTimeout: a connection that sends nothing is closed after
// IdleTimeout, unless Keep says it carries a registration.
func TestIdleTimeout(t *testing.T) {
	l, _ := listen(t, Config{IdleTimeout: 300 * time.Millisecond})
	idle := dial(t, l)
	if d := waitClosed(t, idle, 20*time.Second); d < 250*time.Millisecond {
		t.Errorf("idle connection closed after %v, before IdleTimeout", d)
	}
	kept := dial(t, l)
	if _, err := kept.Write([]byte("\r\n\r\n")); err != nil { // a keepalive: the server side has seen the connection
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); l.Open() < 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	l.Keep(addrPortOf(kept.LocalAddr()), time.Now().Add(time.Hour))
	// The deadline set before Keep still ends the current read; the keep
	// applies from the next read on: send a keepalive to start one.
	time.Sleep(100 * time.Millisecond)
	if _, err := kept.Write([]byte("\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = kept.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := kept.Read(make([]byte, 1)); !isTimeout(err) {
		t.Errorf("a connection with a registration was closed: %v", err)
	}
}

// TestPerSourceLimits: a stranger past MaxPerSource open connections, or
// RatePerSource new ones in a second, is refused and reported; a customer
// is not.
func TestPerSourceLimits(t *testing.T) {
	var mu sync.Mutex
	floods := 0
	clock := t0
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	customer := false
	l, _ := listen(t, Config{MaxPerSource: 3, RatePerSource: 5, Now: now,
		Customer: func(netip.Addr) bool { mu.Lock(); defer mu.Unlock(); return customer },
		OnFlood:  func(netip.Addr) { mu.Lock(); floods++; mu.Unlock() }})
	var conns []net.Conn
	for range 5 {
		conns = append(conns, dial(t, l))
	}
	waitOpen(t, l, 3)
	for _, c := range conns[3:] {
		waitClosed(t, c, 10*time.Second)
	}
	// The listener closes a refused connection, then reports it: the report
	// may come a moment after the client sees the close.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := floods
		mu.Unlock()
		if n == 2 {
			break
		}
		if n > 2 || time.Now().After(deadline) {
			t.Fatalf("floods = %d, want 2 (the 4th and 5th connection)", n)
		}
	}

	// Closing one frees its place, but the second's budget of new
	// connections (5) is spent; the next second has a new one.
	conns[0].Close()
	waitOpen(t, l, 2)
	waitClosed(t, dial(t, l), 10*time.Second)
	mu.Lock()
	clock = clock.Add(time.Second)
	mu.Unlock()
	dial(t, l)
	waitOpen(t, l, 3)

	// A customer is counted, never refused.
	mu.Lock()
	customer = true
	mu.Unlock()
	for range 10 {
		dial(t, l)
	}
	waitOpen(t, l, 13)
}

func waitOpen(t *testing.T, l *Listener, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", l.Open(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBanned: a banned source is closed at accept.
func TestBanned(t *testing.T) {
	l, _ := listen(t, Config{Banned: func(netip.Addr) bool { return true }})
	waitClosed(t, dial(t, l), 10*time.Second)
	if n := l.Open(); n != 0 {
		t.Errorf("%d open, want 0", n)
	}
}

// TestCloseLingers: Close ends the reader at once, however long the idle
// timeout, while a write made after it still reaches the peer; the socket
// closes closeLinger later.
func TestCloseLingers(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(raw, Config{IdleTimeout: time.Hour})
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	peer := dial(t, l)
	srv := <-accepted
	readEnded := make(chan error, 1)
	go func() {
		_, err := srv.Read(make([]byte, 64))
		readEnded <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the read block
	srv.Close()
	select {
	case err := <-readEnded:
		if err == nil {
			t.Error("the read after Close returned no error")
		}
	case <-time.After(closeLinger / 2):
		t.Fatal("the read still blocks after Close")
	}
	go func() { // sipgo reads again after an error it takes for a timeout
		_, err := srv.Read(make([]byte, 64))
		readEnded <- err
	}()
	select {
	case <-readEnded:
	case <-time.After(closeLinger / 2):
		t.Fatal("a read after Close blocks")
	}
	if _, err := srv.Write([]byte("SIP/2.0 200 OK\r\n")); err != nil {
		t.Fatalf("a write while lingering: %v", err)
	}
	if line, err := bufio.NewReader(peer).ReadString('\n'); line != "SIP/2.0 200 OK\r\n" {
		t.Fatalf("the peer read %q, %v", line, err)
	}
	if d := waitClosed(t, peer, 10*closeLinger); d > 5*closeLinger {
		t.Errorf("closed after %v; want about %v", d, closeLinger)
	}
}
