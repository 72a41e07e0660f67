package sipudp

// Readers of the UDP socket.
//
// sipgo reads a UDP socket with one goroutine, and the read filter
// (firewall, stateless answers, the transaction layers) parses every
// datagram on it: a quarter of the process's CPU under load. When the
// machine is saturated that one goroutine is not scheduled often enough and
// the socket's queue overflows (datagrams dropped at 4,000 digest calls/s,
// docs/performance.md § 8). The transport reads the socket with several
// goroutines instead, as Kamailio does with several UDP worker processes;
// sipgo's server reads a udpFeed that carries only what the demultiplexer
// did not take (responses to sipgo's own transactions, RFC 2543 requests,
// datagrams that do not parse), and writes through it to the socket.
//
// Datagrams are no longer handled in arrival order. What that can change is
// what RFC 3261 already allows for UDP (which may reorder): a CANCEL that
// overtakes its INVITE gets 481 and is retransmitted; a provisional that
// overtakes a final is ignored by the client transaction.

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// feedQueue bounds the datagrams waiting for sipgo's reader.
const feedQueue = 1024

type feedDatagram struct {
	data []byte
	from net.Addr
}

// udpFeed is the net.PacketConn sipgo's UDP server reads: ReadFrom returns
// the datagrams the transport's readers left; everything else is the socket's.
type udpFeed struct {
	*udpSock
	ch     chan feedDatagram
	closed chan struct{}
	once   sync.Once
}

func newUDPFeed(c *udpSock) *udpFeed {
	return &udpFeed{udpSock: c, ch: make(chan feedDatagram, feedQueue), closed: make(chan struct{})}
}

// ReadFrom returns the next datagram left to sipgo.
func (f *udpFeed) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-f.ch:
		return copy(b, d.data), d.from, nil
	case <-f.closed:
		return 0, nil, net.ErrClosed
	}
}

// Close ends ReadFrom and closes the socket.
func (f *udpFeed) Close() error {
	var err error
	f.once.Do(func() {
		close(f.closed)
		err = f.udpSock.Close()
	})
	return err
}

// leave queues a datagram for sipgo (a copy: the reader's buffer is
// reused); when sipgo's reader is that far behind, it is dropped.
func (f *udpFeed) leave(data []byte, from netip.AddrPort) {
	select {
	case f.ch <- feedDatagram{data: bytes.Clone(data), from: net.UDPAddrFromAddrPort(from)}:
	default:
	}
}

// udpReaders is how many goroutines read the UDP socket.
func udpReaders() int { return max(2, runtime.GOMAXPROCS(0)) }

// read is one reader: the read filter (the firewall), then the
// demultiplexer; what it does not take goes to sipgo through feed.
func read(conn *udpSock, filter sip.TransportReadFilter, d *demux, feed *udpFeed) {
	r := conn.reader(make([]byte, 65535))
	local := conn.LocalAddr()
	for {
		data, src, err := r.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond) // e.g. an ICMP error reported on the socket: not a busy loop
			continue
		}
		if len(bytes.Trim(data, "\x00")) == 0 {
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if filter != nil {
			data, err = filter(sip.TransportReadProps{Transport: "UDP", LocalAddr: local, RemoteAddr: net.UDPAddrFromAddrPort(src)}, data)
			if err != nil || len(data) == 0 {
				continue
			}
		}
		data = crlf(data)
		if d.take(data, src, false) {
			continue
		}
		feed.leave(data, src)
	}
}
