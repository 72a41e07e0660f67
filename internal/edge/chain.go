package edge

import (
	"context"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// Chains are the pipeline stages and the handlers at the end of the chains,
// built by the caller from configuration. A nil stage is left out.
type Chains struct {
	Firewall, Sanity, Identify, Authn, Limits, Rewrite, Codecs, NAT, Route pipeline.Stage
	// Calls ends the INVITE chain: the B2BUA, which runs the call of the
	// plan Route filled in.
	Calls pipeline.Handler
	// Dialogs ends the chain of requests inside a call (To tag, ACK, CANCEL).
	Dialogs pipeline.Handler
	// Register ends the REGISTER chain: the registrar. nil answers 403.
	Register pipeline.Handler
	// Subscribe ends the SUBSCRIBE chain (message waiting). nil: SUBSCRIBE
	// is answered like other methods sipward does not serve.
	Subscribe pipeline.Handler
}

type chains struct {
	invite, register, options, other, dialog, subscribe pipeline.Handler
}

// build builds the chains once. The order is the product:
//
//	INVITE:   firewall → sanity → identify → authn → limits → rewrite → codecs → nat → route → B2BUA
//	REGISTER: firewall → sanity → authn → registrar
//	SUBSCRIBE (new or refresh): firewall → sanity → authn → message waiting
//	OPTIONS:  firewall → sanity → 200 OK (keepalive pings from customers' switches)
//	other out-of-dialog requests: firewall → sanity → identify → authn → 405
//	in-dialog (To tag), ACK, CANCEL: firewall → sanity → the call they belong to (B2BUA)
//
// REGISTER and SUBSCRIBE skip identify: phones behind a customer switch's address must
// still register with their own credentials.
func (c Chains) build() chains {
	register := c.Register
	if register == nil {
		register = pipeline.HandlerFunc{N: "registrar", F: func(context.Context, *pipeline.Request) (pipeline.Result, error) {
			return pipeline.Reject("registrar", 403, "Forbidden", "registration is not enabled"), nil
		}}
	}
	options := pipeline.HandlerFunc{N: "options", F: func(context.Context, *pipeline.Request) (pipeline.Result, error) {
		return pipeline.Reply("options", 200, "OK", "keepalive", sip.NewHeader("Allow", allow)), nil
	}}
	notAllowed := pipeline.HandlerFunc{N: "edge", F: func(context.Context, *pipeline.Request) (pipeline.Result, error) {
		return pipeline.Reject("edge", 405, "Method Not Allowed", "method not served outside a dialog", sip.NewHeader("Allow", allow)), nil
	}}
	var subscribe pipeline.Handler
	if c.Subscribe != nil {
		subscribe = pipeline.Build(c.Subscribe, nonNil(c.Firewall, c.Sanity, c.Authn)...)
	}
	return chains{
		subscribe: subscribe,
		dialog:    pipeline.Build(c.Dialogs, nonNil(c.Firewall, c.Sanity)...),
		invite:    pipeline.Build(c.Calls, nonNil(c.Firewall, c.Sanity, c.Identify, c.Authn, c.Limits, c.Rewrite, c.Codecs, c.NAT, c.Route)...),
		register:  pipeline.Build(register, nonNil(c.Firewall, c.Sanity, c.Authn)...),
		options:   pipeline.Build(options, nonNil(c.Firewall, c.Sanity)...),
		other:     pipeline.Build(notAllowed, nonNil(c.Firewall, c.Sanity, c.Identify, c.Authn)...),
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
