package nodes

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Self is what a node says of itself.
type Self struct {
	ID        string    // NewID
	SIP       string    // host:port of its SIP UDP listener
	Version   string    // the binary's version
	StartedAt time.Time // process start
}

// NewID returns a node ID: host, a dash, and six hex digits read from rnd
// (crypto/rand.Reader), so that nodes on one host differ.
func NewID(host string, rnd io.Reader) (string, error) {
	var b [3]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("nodes: node ID: %w", err)
	}
	host = strings.TrimSpace(host)
	if i := strings.IndexByte(host, '.'); i > 0 {
		host = host[:i] // the short name is enough
	}
	if host == "" {
		host = "sipward"
	}
	return host + "-" + hex.EncodeToString(b[:]), nil
}

// Advertise returns the address peers reach a listener bound to bound
// (host:port) at: host when set, else the bound IP, else (bound to every
// address) the first non-loopback IPv4 address of the machine, else
// 127.0.0.1; with the bound port.
func Advertise(bound, host string) (string, error) {
	ip, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", fmt.Errorf("nodes: advertise %q: %w", bound, err)
	}
	if host != "" {
		return net.JoinHostPort(host, port), nil
	}
	if a := net.ParseIP(ip); a != nil && !a.IsUnspecified() {
		return net.JoinHostPort(ip, port), nil
	}
	return net.JoinHostPort(firstIP(), port), nil
}

func firstIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
