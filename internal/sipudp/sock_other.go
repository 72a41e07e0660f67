//go:build !linux

package sipudp

import (
	"net"
	"net/netip"
)

// udpSock is the edge's UDP socket; outside Linux, the net package's calls
// (udpsock.go has the raw ones).
type udpSock struct{ *net.UDPConn }

func newUDPSock(c *net.UDPConn) *udpSock { return &udpSock{UDPConn: c} }

// udpReader reads the socket into its own buffer; one per reading goroutine.
type udpReader struct {
	s *udpSock
	b []byte
}

func (s *udpSock) reader(buf []byte) *udpReader { return &udpReader{s: s, b: buf} }

// read returns the next datagram (in the reader's buffer) and its source.
func (r *udpReader) read() ([]byte, netip.AddrPort, error) {
	n, src, err := r.s.ReadFromUDPAddrPort(r.b)
	return r.b[:n], src, err
}

// raw reports whether the socket is read and written with raw system calls.
func (s *udpSock) raw() bool { return false }
