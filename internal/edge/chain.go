package edge

import (
	"context"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// Stages are the pipeline stages, built by the caller from configuration.
// A nil stage is left out.
type Stages struct {
	Firewall, Sanity, Identify, Authn, Limits, Rewrite, Codecs pipeline.Stage
}

type chains struct {
	invite, register, options, other, dialog pipeline.Handler
}

// buildChains builds the chains once. The order is the product:
//
//	INVITE:   firewall → sanity → identify → authn → limits → rewrite → codecs → route (B2BUA)
//	REGISTER: firewall → sanity → authn → registrar
//	OPTIONS:  firewall → sanity → 200 OK (keepalive pings from customers' switches)
//	other out-of-dialog requests: firewall → sanity → identify → authn → 405
//	in-dialog (To tag), ACK, CANCEL: firewall → sanity → the call they belong to
//
// REGISTER skips identify: phones behind a customer switch's address must
// still register with their own credentials.
func (e *Edge) buildChains() chains {
	s := e.cfg.Stages
	route := pipeline.HandlerFunc{N: "route", F: e.route}
	register := pipeline.HandlerFunc{N: "registrar", F: func(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
		if e.cfg.Registrar == nil {
			return pipeline.Reject("registrar", 403, "Forbidden", "registration is not enabled"), nil
		}
		return e.cfg.Registrar.serve(ctx, r)
	}}
	options := pipeline.HandlerFunc{N: "options", F: func(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
		return pipeline.Reply("options", 200, "OK", "keepalive", sip.NewHeader("Allow", allow)), nil
	}}
	notAllowed := pipeline.HandlerFunc{N: "edge", F: func(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
		return pipeline.Reject("edge", 405, "Method Not Allowed", "method not served outside a dialog", sip.NewHeader("Allow", allow)), nil
	}}
	dialog := pipeline.HandlerFunc{N: "dialog", F: func(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
		return pipeline.Answered("dialog", e.inDialog(r)), nil
	}}
	return chains{
		dialog:   pipeline.Build(dialog, nonNil(s.Firewall, s.Sanity)...),
		invite:   pipeline.Build(route, nonNil(s.Firewall, s.Sanity, s.Identify, s.Authn, s.Limits, s.Rewrite, s.Codecs)...),
		register: pipeline.Build(register, nonNil(s.Firewall, s.Sanity, s.Authn)...),
		options:  pipeline.Build(options, nonNil(s.Firewall, s.Sanity)...),
		other:    pipeline.Build(notAllowed, nonNil(s.Firewall, s.Sanity, s.Identify, s.Authn)...),
	}
}

const allow = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO"

func nonNil(ss ...pipeline.Stage) []pipeline.Stage {
	out := ss[:0:0]
	for _, s := range ss {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// route is the terminal stage of INVITEs: ask the Router, then run the call.
func (e *Edge) route(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	spec, rej, err := e.cfg.Router.Route(ctx, r)
	if err != nil {
		return pipeline.Result{}, err
	}
	if rej != nil {
		if rej.Stage == "" {
			rej.Stage = "route"
		}
		return *rej, nil
	}
	respond(r.Tx, r.Msg, 100, "Trying")
	status := e.b.invite(ctx, r, spec)
	res := pipeline.Answered("route", status)
	res.Why = "routed"
	if len(spec.Targets) > 0 {
		res.Why = spec.Targets[0].Why
	}
	return res, nil
}
