package firewall

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/store"
)

var datagram = []byte("OPTIONS sip:edge SIP/2.0\r\n\r\n")

func props(transport, addr string) sip.TransportReadProps {
	ap := netip.MustParseAddrPort(addr)
	p := sip.TransportReadProps{Transport: transport}
	switch transport {
	case "UDP":
		p.RemoteAddr = net.UDPAddrFromAddrPort(ap)
	default:
		p.RemoteAddr = net.TCPAddrFromAddrPort(ap)
	}
	return p
}

// fakeAddr is a net.Addr of a type the filter does not know.
type fakeAddr string

func (a fakeAddr) Network() string { return "ws" }
func (a fakeAddr) String() string  { return string(a) }

func TestReadFilter(t *testing.T) {
	f, _, _, _ := newTest(t, Config{Trusted: netip.MustParsePrefix("192.0.2.0/24").Contains})
	if err := f.SetBans([]store.Ban{{Address: "203.0.113.0/24"}, {Address: "192.0.2.9/32"}, {Address: "2001:db8:bad::/48"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		props   sip.TransportReadProps
		want    []byte
		wantErr error
	}{
		{"udp banned", props("UDP", "203.0.113.7:5060"), nil, nil},
		{"udp banned ipv6", props("UDP", "[2001:db8:bad::1]:5060"), nil, nil},
		{"udp banned v4-mapped", props("UDP", "[::ffff:203.0.113.7]:5060"), nil, nil},
		{"udp other", props("UDP", "198.51.100.7:5060"), datagram, nil},
		{"udp banned but trusted", props("UDP", "192.0.2.9:5060"), datagram, nil},
		{"tcp banned closes", props("TCP", "203.0.113.7:40000"), nil, ErrBanned},
		{"tls banned closes", props("TLS", "203.0.113.7:40000"), nil, ErrBanned},
		{"tcp other", props("TCP", "198.51.100.7:40000"), datagram, nil},
		{"unknown addr type banned", sip.TransportReadProps{Transport: "WS", RemoteAddr: fakeAddr("203.0.113.7:80")}, nil, ErrBanned},
		{"unknown addr type other", sip.TransportReadProps{Transport: "WS", RemoteAddr: fakeAddr("198.51.100.7:80")}, datagram, nil},
		{"unparsable addr passes", sip.TransportReadProps{Transport: "WS", RemoteAddr: fakeAddr("junk")}, datagram, nil},
		{"no addr passes", sip.TransportReadProps{Transport: "UDP"}, datagram, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.ReadFilter(tt.props, datagram)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}
	if got := value(f.metrics.dropped[dropBanned]); got != 6 {
		t.Errorf("dropped_total{reason=banned} = %v, want 6", got)
	}
}

func TestReadFilterRate(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		transport string
		src       string
		sent      int
		wantPass  int
	}{
		{"default 200/s", Config{}, "UDP", "198.51.100.7:5060", 500, 200},
		{"configured", Config{RatePerSource: 5}, "UDP", "198.51.100.7:5060", 20, 5},
		{"off", Config{RatePerSource: -1}, "UDP", "198.51.100.7:5060", 1000, 1000},
		{"trusted exempt", Config{RatePerSource: 5}, "UDP", "192.0.2.1:5060", 20, 20},
		{"streams not guarded", Config{RatePerSource: 5}, "TCP", "198.51.100.7:40000", 20, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Trusted = netip.MustParsePrefix("192.0.2.0/24").Contains
			f, clk, _, _ := newTest(t, tt.cfg)
			p := props(tt.transport, tt.src)
			pass := 0
			for range tt.sent {
				if got, _ := f.ReadFilter(p, datagram); len(got) > 0 {
					pass++
				}
			}
			if pass != tt.wantPass {
				t.Errorf("passed %d of %d, want %d", pass, tt.sent, tt.wantPass)
			}
			if got, want := value(f.metrics.dropped[dropRate]), float64(tt.sent-tt.wantPass); got != want {
				t.Errorf("dropped_total{reason=rate} = %v, want %v", got, want)
			}
			// Another source has its own budget, and the next second a new one.
			if got, _ := f.ReadFilter(props(tt.transport, "198.51.100.8:5060"), datagram); len(got) == 0 {
				t.Error("another source dropped")
			}
			clk.Set(t0.Add(time.Second))
			if got, _ := f.ReadFilter(p, datagram); len(got) == 0 {
				t.Error("dropped in the next second")
			}
		})
	}
}

// TestReadFilterRateAuthenticated: a source that authenticated sends what
// its SIP users' limits allow; the guard still holds for others, and for it
// again once TrustAuthenticated has passed.
func TestReadFilterRateAuthenticated(t *testing.T) {
	f, clk, _, _ := newTest(t, Config{RatePerSource: 5, TrustAuthenticated: time.Minute})
	office := props("UDP", "198.51.100.7:5060")
	f.Detector().Authenticated(mustAddr("198.51.100.7"), t0)
	for i := range 1000 {
		if got, _ := f.ReadFilter(office, datagram); len(got) == 0 {
			t.Fatalf("datagram %d of an authenticated source dropped", i+1)
		}
	}
	other := props("UDP", "198.51.100.8:5060")
	pass := 0
	for range 20 {
		if got, _ := f.ReadFilter(other, datagram); len(got) > 0 {
			pass++
		}
	}
	if pass != 5 {
		t.Errorf("another source passed %d of 20, want 5", pass)
	}
	clk.Set(t0.Add(time.Minute + time.Second))
	pass = 0
	for range 20 {
		if got, _ := f.ReadFilter(office, datagram); len(got) > 0 {
			pass++
		}
	}
	if pass != 5 {
		t.Errorf("after the trust expired the source passed %d of 20, want 5", pass)
	}
}

// A rate table far smaller than the sources keeps its size.
func TestRateGuardBounded(t *testing.T) {
	g := newRateGuard(10, 100)
	if len(g.slots) != 128 {
		t.Fatalf("slots = %d, want 128 (rounded up)", len(g.slots))
	}
	for i := range 100_000 {
		g.allow(netipFromInt(uint32(i)), t0)
	}
	if len(g.slots) != 128 {
		t.Errorf("slots grew to %d", len(g.slots))
	}
}

func TestReadFilterAllocs(t *testing.T) {
	f, _, _, _ := newTest(t, Config{})
	if err := f.SetBans([]store.Ban{{Address: "203.0.113.0/24"}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []sip.TransportReadProps{
		props("UDP", "198.51.100.7:5060"),
		props("UDP", "[2001:db8::7]:5060"),
		props("TCP", "198.51.100.7:40000"),
		props("UDP", "203.0.113.7:5060"), // drop path too
	} {
		n := testing.AllocsPerRun(1000, func() {
			if _, err := f.ReadFilter(p, datagram); err != nil && !errors.Is(err, ErrBanned) {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("ReadFilter(%s %s) allocates %v times, want 0", p.Transport, p.RemoteAddr, n)
		}
	}
}

func BenchmarkReadFilter(b *testing.B) {
	for _, bc := range []struct {
		name string
		rate int
		p    sip.TransportReadProps
	}{
		{"pass/udp", 1 << 30, props("UDP", "198.51.100.7:5060")},
		{"pass/udp-noguard", -1, props("UDP", "198.51.100.7:5060")},
		{"pass/tcp", 0, props("TCP", "198.51.100.7:40000")},
		{"drop/banned", 0, props("UDP", "203.0.113.7:5060")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f, _, _, _ := newTest(b, Config{RatePerSource: bc.rate})
			if err := f.SetBans([]store.Ban{{Address: "203.0.113.0/24"}}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = f.ReadFilter(bc.p, datagram)
			}
		})
	}
}

func BenchmarkReadFilterParallel(b *testing.B) {
	f, _, _, _ := newTest(b, Config{RatePerSource: 1 << 30})
	ps := make([]sip.TransportReadProps, 1024)
	for i := range ps {
		ps[i] = sip.TransportReadProps{Transport: "UDP", RemoteAddr: &net.UDPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 5060}}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			_, _ = f.ReadFilter(ps[i%len(ps)], datagram)
		}
	})
}
