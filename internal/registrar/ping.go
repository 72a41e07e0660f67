package registrar

// NAT pings (DESIGN §3.4): an OPTIONS every PingInterval to each binding of
// a SIP user whose ping mode is "enabled" or "timeout", sent to the address
// the REGISTER came from, so that the NAT binding stays open; the round
// trip is the binding's latency, and in "timeout" mode a binding that does
// not answer is removed.

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// pingAll sends one OPTIONS to every binding of users with pings enabled,
// through the address the binding came from, and records the round trip.
func (g *Registrar) pingAll(ctx context.Context, s Sender) {
	var todo []Binding
	modes := map[int64]string{}
	g.mu.RLock()
	for _, list := range g.byUser {
		for _, b := range list {
			m, ok := modes[b.SIPUserID]
			if !ok {
				m = g.cfg.Ping(b.SIPUserID)
				modes[b.SIPUserID] = m
			}
			if m == "enabled" || m == "timeout" {
				todo = append(todo, *b)
			}
		}
	}
	g.mu.RUnlock()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, b := range todo {
		b := b
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rtt, err := ping(ctx, s, b)
			if err != nil {
				if modes[b.SIPUserID] == "timeout" {
					g.remove(ctx, b.Username, b.Contact)
				}
				return
			}
			now := g.cfg.Now()
			g.mu.Lock()
			for _, x := range g.byUser[b.Username] {
				if x.Contact == b.Contact {
					x.LatencyMS, x.LastPing = float64(rtt.Microseconds())/1000, now
				}
			}
			g.mu.Unlock()
			if g.cfg.Pings != nil {
				g.cfg.Pings.Ping(b.SIPUserID, rtt, now)
			}
			g.touch(b.Username) // the other nodes show the latency too
		}()
	}
	wg.Wait()
}

// ping sends an out-of-dialog OPTIONS to a binding and times the answer.
func ping(ctx context.Context, s Sender, b Binding) (time.Duration, error) {
	var uri sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		return 0, err
	}
	cl, err := s.Client(b.Transport)
	if err != nil {
		return 0, err
	}
	req := sip.NewRequest(sip.OPTIONS, uri)
	req.SetTransport(strings.ToUpper(b.Transport))
	req.SetDestination(b.Source)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "sipward", Host: s.Host()}}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: uri})
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cl.Do(ctx, req); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
