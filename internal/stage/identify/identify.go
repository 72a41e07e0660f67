// Package identify is the pipeline stage that tells who sent a request by
// its source address: the routing core, or a customer's sends IP endpoint.
//
// The work is done by snapshot.Snapshot.Identify: a longest-prefix match of
// the real socket peer against the sends endpoints, told apart by tech prefix
// and then by CLI authentication, falling back to enclosing prefixes, with
// the endpoint's transport pinning checked last. The stage turns its outcome
// into the request's Identity, or into a 403 for an ambiguous source or a
// refused transport. A source that matches no endpoint is passed on
// unidentified, for digest authentication to decide; a source that matches
// an endpoint is never challenged. An INVITE a peer node of the cluster
// signed over to this node (Config.Delivery) is identified as AuthNode
// first, whatever its source.
package identify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
)

// Name is the stage name, as it appears in traces and Result.Stage.
const Name = "identify"

// Reason phrases of the stage's rejections.
const (
	ReasonAmbiguous = "Ambiguous source"
	ReasonTransport = "Transport not allowed"
	ReasonNoMatch   = "No account matches"
)

// handler is the stage in the chain.
type handler struct {
	next     pipeline.Handler
	snapshot func() *snapshot.Snapshot
	metrics  *metrics
	delivery func(msg *sip.Request, now time.Time) (username, contact string, ok bool)
}

// Name returns "identify".
func (h *handler) Name() string { return Name }

// ServeSIP identifies r by r.Source. A peer node's signed delivery (an
// INVITE that Config.Delivery accepts) is AuthNode. The core and a matched endpoint set
// r.Auth (AuthCore; AuthIP with the account, the endpoint and the dialled
// number without its tech prefix, and r.Principal to the endpoint) and go
// to next; an unmatched source goes to
// next with r.Auth untouched, unless it lies inside an IP endpoint's range
// (then 403: such a source is never challenged). An ambiguous source or a refused transport stops
// the chain with 403 (a silent drop for an ACK, which is never answered). The
// only error is a missing snapshot.
func (h *handler) ServeSIP(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	s := r.Snap
	if s == nil {
		s = h.snapshot()
	}
	if s == nil {
		return pipeline.Result{}, errors.New("stage/identify: no configuration snapshot loaded")
	}
	dialled := r.Msg.Recipient.User
	var cli string
	if from := r.Msg.From(); from != nil {
		cli = from.Address.User
	}
	if h.delivery != nil && r.Msg.Method == sip.INVITE {
		if user, contact, ok := h.delivery(r.Msg, r.Now); ok {
			r.Auth = pipeline.Identity{Method: pipeline.AuthNode, Username: user, Contact: contact, Dialled: dialled, CLI: cli}
			r.Trace.Pass(Name)
			return h.next.ServeSIP(ctx, r)
		}
	}
	m := s.Identify(r.Source.Addr(), r.Transport, dialled, cli)
	h.metrics.requests[m.Kind].Inc()
	switch m.Kind {
	case snapshot.Core:
		r.Auth = pipeline.Identity{Method: pipeline.AuthCore, Dialled: dialled, CLI: cli}
	case snapshot.Matched:
		r.Auth = pipeline.Identity{
			Method:      pipeline.AuthIP,
			AccountID:   m.Endpoint.Account.ID,
			AccountName: m.Endpoint.Account.Name,
			EndpointID:  m.Endpoint.ID,
			Dialled:     m.Dialled,
			CLI:         cli,
		}
		r.Principal = &m.Endpoint.Principal
	case snapshot.Ambiguous:
		why := fmt.Sprintf("source %s matches %d endpoints that neither tech prefix nor CLI tells apart, among them endpoint %d (account %d) and endpoint %d (account %d)",
			r.Source.Addr(), m.Candidates, m.Endpoint.ID, m.Endpoint.Account.ID, m.Other.ID, m.Other.Account.ID)
		return reject(r, ReasonAmbiguous, why), nil
	case snapshot.Unmatched:
		// IP authentication and digest do not combine: a source inside an IP
		// endpoint's range is never challenged, even when neither its tech
		// prefix nor its CLI picks an account.
		if s.KnownSource(r.Source.Addr()) {
			why := fmt.Sprintf("source %s is an IP endpoint's address, but no tech prefix or CLI of %q picks an account", r.Source.Addr(), dialled)
			return reject(r, ReasonNoMatch, why), nil
		}
	case snapshot.WrongTransport:
		why := fmt.Sprintf("endpoint %d (account %d) requires %s; the request came over %s",
			m.Endpoint.ID, m.Endpoint.Account.ID, m.Endpoint.Protocol, r.Transport)
		return reject(r, ReasonTransport, why), nil
	}
	r.Trace.Pass(Name)
	return h.next.ServeSIP(ctx, r)
}

// reject answers 403 with reason, or drops an ACK.
func reject(r *pipeline.Request, reason, why string) pipeline.Result {
	if r.Msg.IsAck() {
		return pipeline.DropResult(Name, why)
	}
	return pipeline.Reject(Name, 403, reason, why)
}
