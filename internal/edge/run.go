package edge

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/warm"
)

// Serve builds the chains and serves the listeners until ctx ends or
// Close. It returns at once; the listeners run on the edge's goroutines.
func (e *Edge) Serve(ctx context.Context, c Chains) {
	ctx, e.stop = context.WithCancel(ctx)
	e.chains = c.build()
	srv := e.srv
	srv.OnInvite(e.handle)
	srv.OnRegister(e.handle)
	srv.OnOptions(e.handle)
	srv.OnBye(e.handle)
	srv.OnAck(e.handle)
	srv.OnCancel(e.handle)
	srv.OnNoRoute(e.handle)
	for _, m := range []sip.RequestMethod{sip.UPDATE, sip.INFO, sip.MESSAGE, sip.REFER, sip.NOTIFY, sip.SUBSCRIBE, sip.PRACK, sip.PUBLISH} {
		srv.OnRequest(m, e.handle)
	}
	serve := func(name string, f func() error) {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := f(); err != nil && !isClosedErr(err) {
				e.log.Error("edge: listener stopped", "listener", name, "err", err)
			}
		}()
	}
	e.tp.Start(ctx)
	serve("udp", func() error { return srv.ServeUDP(e.tp.Feed()) })
	serve("tcp", func() error { return srv.ServeTCP(e.tcp) })
	if e.tls != nil {
		serve("tls", func() error { return srv.ServeTLS(e.tls) })
	}
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.trimWarm(ctx) }()
	e.log.Info("sip edge listening", "udp", e.addrs.UDP, "tcp", e.addrs.TCP, "tls", e.addrs.TLS, "host", e.sender.Host())
}

// trimWarm shrinks the warm pool back after a burst, until ctx ends.
func (e *Edge) trimWarm(ctx context.Context) {
	t := time.NewTicker(warm.TrimEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.warm.Trim()
		}
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "use of closed network connection")
}
