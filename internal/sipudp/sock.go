//go:build linux

package sipudp

// The UDP socket, read and written with raw system calls.
//
// Go's net package wraps every read and write in entersyscall/exitsyscall so
// that a blocking call cannot hold the scheduler's P. The edge's socket is
// non-blocking and a loopback or LAN sendto/recvfrom returns in
// microseconds, but while it runs the P is marked "in a system call", and
// the runtime's monitor (sysmon) hands such a P to another thread when work
// is queued: at thousands of datagrams per second that is a steady stream
// of thread wake-ups and context switches (under perf, a third of the
// process's time at 1,000 digest calls/s went to switching threads, a tenth
// to sysmon alone). The edge's hot UDP path therefore calls sendto and
// recvfrom with syscall.RawSyscall6. A raw call cannot block: the socket is
// O_NONBLOCK (net sets it).
//
// The net package also serialises the readers and the writers of one fd
// with a lock whose waiters sleep on a semaphore: with several readers, all
// but one slept there, and every hand-over woke a thread. A raw call is
// therefore tried first without RawConn, under udpSock's own shared lock
// (which Close takes exclusively, so the fd number is never used after it is
// closed and perhaps reused); only when it would block (EAGAIN) does the
// goroutine go through RawConn, which parks it in the netpoller as net does.
//
// Linux only (udpsock_other.go: the net package's calls elsewhere); a
// socket whose family is neither AF_INET nor AF_INET6 uses them too.

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// udpSock is the edge's UDP socket. WriteToUDPAddrPort, WriteTo, Close and
// its readers (reader) are its own; everything else is the embedded
// *net.UDPConn's.
type udpSock struct {
	*net.UDPConn
	rc     syscall.RawConn
	family int // syscall.AF_INET or AF_INET6; 0: use the net package
	ops    sync.Pool

	fd     uintptr
	live   sync.RWMutex // held shared by a raw call on fd outside rc, exclusively by Close
	closed bool
}

func newUDPSock(c *net.UDPConn) *udpSock {
	s := &udpSock{UDPConn: c}
	s.ops.New = func() any { return s.newOp() }
	rc, err := c.SyscallConn()
	if err != nil {
		return s
	}
	_ = rc.Control(func(fd uintptr) {
		s.fd = fd
		sa, err := syscall.Getsockname(int(fd))
		if err != nil {
			return
		}
		switch sa.(type) {
		case *syscall.SockaddrInet4:
			s.family = syscall.AF_INET
		case *syscall.SockaddrInet6:
			s.family = syscall.AF_INET6
		}
	})
	s.rc = rc
	return s
}

// sockOp is one send or receive: its arguments, results and the callback
// given to RawConn, bound once so that a call allocates nothing.
type sockOp struct {
	b     []byte
	sa    syscall.RawSockaddrAny
	salen uint32
	n     int
	errno syscall.Errno
	send  func(fd uintptr) bool
	recv  func(fd uintptr) bool
}

func (s *udpSock) newOp() *sockOp {
	o := &sockOp{}
	o.send, o.recv = o.sendto, o.recvfrom
	return o
}

func (o *sockOp) sendto(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(o.b))),
			uintptr(len(o.b)), 0, uintptr(unsafe.Pointer(&o.sa)), uintptr(o.salen))
		if done, again := o.result(n, e); !again {
			return done // false: the send buffer is full, wait until the socket is writable
		}
	}
}

func (o *sockOp) recvfrom(fd uintptr) bool {
	for {
		o.salen = uint32(unsafe.Sizeof(o.sa))
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(o.b))),
			uintptr(len(o.b)), 0, uintptr(unsafe.Pointer(&o.sa)), uintptr(unsafe.Pointer(&o.salen)))
		if done, again := o.result(n, e); !again {
			return done // false: nothing queued, park in the netpoller
		}
	}
}

// result records a raw call's outcome. done is false when the call would
// block (EAGAIN: RawConn waits for the socket, then calls again); again
// asks for an immediate retry (EINTR).
func (o *sockOp) result(n uintptr, e syscall.Errno) (done, again bool) {
	switch e {
	case 0:
		o.n, o.errno = int(n), 0
		return true, false
	case syscall.EINTR:
		return false, true
	case syscall.EAGAIN:
		return false, false
	}
	o.n, o.errno = 0, e
	return true, false
}

// setDst fills the op's sockaddr for dst in the socket's family; false when
// dst cannot be sent to from it (IPv6 on an IPv4 socket).
func (o *sockOp) setDst(dst netip.AddrPort, family int) bool {
	port := dst.Port()
	addr := dst.Addr()
	if family == syscall.AF_INET {
		addr = addr.Unmap()
		if !addr.Is4() {
			return false
		}
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&o.sa))
		*sa = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: addr.As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		o.salen = syscall.SizeofSockaddrInet4
		return true
	}
	sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&o.sa))
	*sa = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: addr.As16()}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	if z := addr.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.Scope_id = uint32(ifi.Index)
		}
	}
	o.salen = syscall.SizeofSockaddrInet6
	return true
}

// source is the address a received datagram came from.
func (o *sockOp) source() netip.AddrPort {
	switch o.sa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&o.sa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&o.sa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// WriteToUDPAddrPort sends b to dst.
func (s *udpSock) WriteToUDPAddrPort(b []byte, dst netip.AddrPort) (int, error) {
	if s.family == 0 || len(b) == 0 {
		return s.UDPConn.WriteToUDPAddrPort(b, dst)
	}
	o := s.ops.Get().(*sockOp)
	if !o.setDst(dst, s.family) {
		s.ops.Put(o)
		return s.UDPConn.WriteToUDPAddrPort(b, dst) // net's error for the address
	}
	o.b = b
	var err error
	if done, closed := s.try(o.send); closed {
		err = net.ErrClosed
	} else if !done {
		err = s.rc.Write(o.send) // the send buffer is full: wait in the netpoller
	}
	n, errno := o.n, o.errno
	runtime.KeepAlive(b)
	o.b = nil
	s.ops.Put(o)
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: s.LocalAddr(), Err: err}
	}
	if errno != 0 {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: s.LocalAddr(), Err: errno}
	}
	return n, nil
}

// try runs a raw call on the fd without RawConn; done is its answer (false:
// it would block), closed that the socket is closed.
func (s *udpSock) try(call func(fd uintptr) bool) (done, closed bool) {
	s.live.RLock()
	defer s.live.RUnlock()
	if s.closed {
		return false, true
	}
	return call(s.fd), false
}

// Close closes the socket once no raw call is using its fd.
func (s *udpSock) Close() error {
	s.live.Lock()
	s.closed = true
	s.live.Unlock()
	return s.UDPConn.Close()
}

// WriteTo is net.PacketConn's, for sipgo's writes.
func (s *udpSock) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok && s.family != 0 {
		if ap := ua.AddrPort(); ap.IsValid() && ua.Zone == "" {
			return s.WriteToUDPAddrPort(b, ap)
		}
	}
	return s.UDPConn.WriteTo(b, addr)
}

// udpReader reads the socket into its own buffer; one per reading goroutine.
type udpReader struct {
	s *udpSock
	o *sockOp
}

func (s *udpSock) reader(buf []byte) *udpReader {
	o := s.newOp()
	o.b = buf
	return &udpReader{s: s, o: o}
}

// read returns the next datagram (in the reader's buffer) and its source.
func (r *udpReader) read() ([]byte, netip.AddrPort, error) {
	if r.s.family == 0 {
		n, src, err := r.s.UDPConn.ReadFromUDPAddrPort(r.o.b)
		return r.o.b[:n], src, err
	}
	done, closed := r.s.try(r.o.recv)
	if closed {
		return nil, netip.AddrPort{}, net.ErrClosed
	}
	if !done { // nothing queued: wait in the netpoller
		if err := r.s.rc.Read(r.o.recv); err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EBADF) {
				return nil, netip.AddrPort{}, net.ErrClosed
			}
			return nil, netip.AddrPort{}, err
		}
	}
	if r.o.errno != 0 {
		return nil, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: r.s.LocalAddr(), Err: r.o.errno}
	}
	return r.o.b[:r.o.n], r.o.source(), nil
}

// raw reports whether the socket is read and written with raw system calls.
func (s *udpSock) raw() bool { return s.family != 0 }
