// Package rtpengine is a client of rtpengine's ng control protocol (the
// media relay Kamailio and OpenSIPS use; Debian package rtpengine-daemon):
// a cookie, a space and a bencoded dictionary per UDP datagram, the answer
// carrying the same cookie. It offers, answers and deletes a call's media
// sessions — offer and answer return the SDP rewritten to the relay's
// addresses — and lists the calls an engine holds.
//
// A Client spreads new calls over its engines in turn and keeps each call on
// the engine that took its offer. An engine that does not answer within the
// timeout is skipped for new calls for a while (DeadFor); a call's later
// commands go to its own engine regardless.
package rtpengine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/bencode"
)

// Options configure a Client.
type Options struct {
	// Timeout bounds one command's round trip (default 1 s); it is sent
	// again once halfway.
	Timeout time.Duration
	// DeadFor is how long an engine that timed out is skipped for new calls
	// (default 30 s).
	DeadFor time.Duration
	// Now returns the time (default time.Now).
	Now func() time.Time
}

// ParseAddrs parses --rtpengine's value: "udp:HOST:PORT", several separated
// by commas. It returns the host:port of each.
func ParseAddrs(spec string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(spec, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		hp, ok := strings.CutPrefix(s, "udp:")
		if !ok {
			return nil, fmt.Errorf("rtpengine %q: want udp:HOST:PORT (the ng protocol over UDP)", s)
		}
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return nil, fmt.Errorf("rtpengine %q: %v", s, err)
		}
		out = append(out, hp)
	}
	if len(out) == 0 {
		return nil, errors.New("rtpengine: no address given")
	}
	return out, nil
}

// Client talks to one or more engines.
type Client struct {
	opt     Options
	engines []*engine
	next    atomic.Uint32
	mu      sync.Mutex
	calls   map[string]*engine // the engine of each call that has one
}

type engine struct {
	addr      string
	conn      *net.UDPConn
	deadUntil atomic.Int64 // unix nanos

	mu      sync.Mutex
	waiting map[string]chan []byte // by cookie
}

// New returns a Client of the engines at addrs (host:port), each reached
// from its own local UDP socket.
func New(addrs []string, opt Options) (*Client, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	if opt.DeadFor <= 0 {
		opt.DeadFor = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	c := &Client{opt: opt, calls: map[string]*engine{}}
	for _, a := range addrs {
		ua, err := net.ResolveUDPAddr("udp", a)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("rtpengine %s: %w", a, err)
		}
		conn, err := net.DialUDP("udp", nil, ua)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("rtpengine %s: %w", a, err)
		}
		e := &engine{addr: a, conn: conn, waiting: map[string]chan []byte{}}
		go e.read()
		c.engines = append(c.engines, e)
	}
	return c, nil
}

// Close closes the sockets.
func (c *Client) Close() error {
	for _, e := range c.engines {
		e.conn.Close()
	}
	return nil
}

// read delivers each answer to the command waiting for its cookie.
func (e *engine) read() {
	buf := make([]byte, 65535)
	for {
		n, err := e.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP port unreachable while the engine is down
		}
		cookie, body, ok := bytes.Cut(buf[:n], []byte(" "))
		if !ok {
			continue
		}
		e.mu.Lock()
		ch := e.waiting[string(cookie)]
		delete(e.waiting, string(cookie))
		e.mu.Unlock()
		if ch != nil {
			ch <- bytes.Clone(body)
		}
	}
}

// Error is an engine's refusal of a command ("result": "error").
type Error struct {
	Engine, Command, Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("rtpengine %s: %s refused: %s", e.Engine, e.Command, e.Reason)
}

// reply is the part of an answer the client reads.
type reply struct {
	Result  string   `bencode:"result"`
	Reason  string   `bencode:"error-reason"`
	Warning string   `bencode:"warning"`
	SDP     string   `bencode:"sdp"`
	Calls   []string `bencode:"calls"`
}

// command sends cmd to e and returns its answer.
// With skim, an answer that ends in an ok result is not decoded: the caller
// reads nothing of it (a delete's answer carries the call's statistics).
func (c *Client) command(ctx context.Context, e *engine, cmd map[string]any, skim bool) (reply, error) {
	name, _ := cmd["command"].(string)
	body, err := bencode.EncodeBytes(cmd)
	if err != nil {
		return reply{}, fmt.Errorf("rtpengine: encode %s: %w", name, err)
	}
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	cookie := hex.EncodeToString(raw[:])
	msg := append([]byte(cookie+" "), body...)
	ch := make(chan []byte, 1)
	e.mu.Lock()
	e.waiting[cookie] = ch
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.waiting, cookie)
		e.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	resend := time.NewTimer(c.opt.Timeout / 2)
	defer resend.Stop()
	if _, err := e.conn.Write(msg); err != nil {
		return reply{}, fmt.Errorf("rtpengine %s: send %s: %w", e.addr, name, err)
	}
	for {
		select {
		case b := <-ch:
			if skim && bytes.HasSuffix(b, []byte("6:result2:oke")) {
				return reply{}, nil
			}
			var r reply
			if err := bencode.DecodeBytes(b, &r); err != nil {
				return reply{}, fmt.Errorf("rtpengine %s: %s: bad answer: %w", e.addr, name, err)
			}
			if r.Result == "error" {
				return r, &Error{Engine: e.addr, Command: name, Reason: r.Reason}
			}
			return r, nil
		case <-resend.C:
			_, _ = e.conn.Write(msg) // the engine answers a repeated cookie from its cache
		case <-ctx.Done():
			e.deadUntil.Store(c.opt.Now().Add(c.opt.DeadFor).UnixNano())
			return reply{}, fmt.Errorf("rtpengine %s: %s: no answer in %v", e.addr, name, c.opt.Timeout)
		}
	}
}

// engineOf returns the engine of callID, or picks one for a new call: the
// next in turn that is not known dead (all dead: the next in turn).
func (c *Client) engineOf(callID string, pick bool) (*engine, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.calls[callID]; e != nil || !pick {
		return e, e != nil
	}
	now := c.opt.Now().UnixNano()
	n := len(c.engines)
	start := int(c.next.Add(1)-1) % n
	for i := range n {
		if e := c.engines[(start+i)%n]; e.deadUntil.Load() <= now {
			return e, false
		}
	}
	return c.engines[start], false
}

// Offer passes an SDP offer of the party tagged fromTag in call callID
// (toTag, the other party's, on a re-offer) to the relay and returns the
// SDP for the other party: the relay's address and ports. A new call goes
// to the next live engine; one that does not answer is skipped and the
// next tried.
func (c *Client) Offer(ctx context.Context, callID, fromTag, toTag string, sdp []byte) ([]byte, error) {
	cmd := command("offer", callID, fromTag, sdp)
	if toTag != "" {
		cmd["to-tag"] = toTag
	}
	e, known := c.engineOf(callID, true)
	tries := 1
	if !known {
		tries = len(c.engines)
	}
	var err error
	for range tries {
		var r reply
		if r, err = c.command(ctx, e, cmd, false); err == nil {
			if !known {
				c.mu.Lock()
				c.calls[callID] = e
				c.mu.Unlock()
			}
			return []byte(r.SDP), nil
		}
		var refused *Error
		if errors.As(err, &refused) || ctx.Err() != nil {
			return nil, err
		}
		e, _ = c.engineOf(callID, true)
	}
	return nil, err
}

// Answer passes the SDP answer of the party tagged toTag to the offer of
// fromTag and returns the SDP for the offerer.
func (c *Client) Answer(ctx context.Context, callID, fromTag, toTag string, sdp []byte) ([]byte, error) {
	e, ok := c.engineOf(callID, false)
	if !ok {
		return nil, fmt.Errorf("rtpengine: answer of call %q: it has no offer", callID)
	}
	cmd := command("answer", callID, fromTag, sdp)
	cmd["to-tag"] = toTag
	r, err := c.command(ctx, e, cmd, false)
	if err != nil {
		return nil, err
	}
	return []byte(r.SDP), nil
}

// command returns an offer or answer of sdp. The SDP's addresses are
// trusted: the caller mended a NAT-ed party's private ones already (package
// sipnat), and the engine still learns where media really comes from
// (symmetric RTP). The origin and session connection lines become the
// relay's; ICE candidates are removed (the relay is the only path).
func command(name, callID, fromTag string, sdp []byte) map[string]any {
	return map[string]any{"command": name, "call-id": callID, "from-tag": fromTag, "sdp": string(sdp),
		"replace": []string{"origin", "session-connection"}, "ICE": "remove", "flags": []string{"trust-address"}}
}

// Delete ends every media session of callID on its engine. A call the
// client never offered is no error.
func (c *Client) Delete(ctx context.Context, callID string) error {
	c.mu.Lock()
	e := c.calls[callID]
	delete(c.calls, callID)
	c.mu.Unlock()
	if e == nil {
		return nil
	}
	// A delete that is lost leaves the session (four sockets) on the engine
	// until its own timeout: a busy engine is asked again, up to three times.
	var err error
	for range 3 {
		_, err = c.command(ctx, e, map[string]any{"command": "delete", "call-id": callID}, true)
		var refused *Error
		switch {
		case err == nil:
			return nil
		case errors.As(err, &refused):
			if strings.Contains(refused.Reason, "Unknown call") {
				return nil // gone already (the engine's own timeout)
			}
			return err
		case ctx.Err() != nil:
			return err
		}
	}
	return err
}

// Ping checks that every engine answers.
func (c *Client) Ping(ctx context.Context) error {
	var errs []error
	for _, e := range c.engines {
		if _, err := c.command(ctx, e, map[string]any{"command": "ping"}, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// List returns the Call-IDs every engine holds.
func (c *Client) List(ctx context.Context) ([]string, error) {
	var out []string
	for _, e := range c.engines {
		r, err := c.command(ctx, e, map[string]any{"command": "list"}, false)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Calls...)
	}
	return out, nil
}

// Engines returns the engines' addresses, as given.
func (c *Client) Engines() []string {
	out := make([]string, len(c.engines))
	for i, e := range c.engines {
		out[i] = e.addr
	}
	return out
}

// Held returns how many calls the client has offered and not deleted.
func (c *Client) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}
