// Package rewrite is the normalisation stage of INVITEs: after identify has
// stripped the tech prefix, an IP endpoint's dial pattern brings the dialled
// number to E.164 digits, the caller's parameter-rewrite rules (of its IP
// endpoint or SIP user; compiled in package internal/paramrewrite) rewrite the
// dialled number and the CLI, the endpoint's Force From / CLI prefix apply,
// and then the account's CLI restriction: an account with CLI patterns only
// presents CLIs that match one or are one of its DIDs (else 403 "CLI
// restriction in effect").
package rewrite

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/store"
)

// Name is the stage's name in traces.
const Name = "rewrite"

// Config configures the stage.
type Config struct {
	Registry prometheus.Registerer
}

// New returns the stage.
func New(cfg Config) (pipeline.Stage, error) {
	m := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sipward_rewrite_requests_total",
		Help: "INVITEs through the rewrite stage, by outcome (rewritten, unchanged, cli_restricted).",
	}, []string{"outcome"})
	for _, l := range []string{"rewritten", "unchanged", "cli_restricted"} {
		m.WithLabelValues(l)
	}
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(m); err != nil {
			return nil, err
		}
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return pipeline.HandlerFunc{N: Name, F: func(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
			res, ok := apply(r)
			if !ok {
				m.WithLabelValues("cli_restricted").Inc()
				return res, nil
			}
			if res.Why == "rewritten" {
				m.WithLabelValues("rewritten").Inc()
			} else {
				m.WithLabelValues("unchanged").Inc()
			}
			r.Trace.Pass(Name)
			return next.ServeSIP(ctx, r)
		}}
	}, nil
}

// apply rewrites r.Auth.Dialled and r.Auth.CLI in place.
func apply(r *pipeline.Request) (pipeline.Result, bool) {
	if r.Auth.Dialled == "" {
		r.Auth.Dialled = r.Msg.Recipient.User
	}
	if r.Auth.CLI == "" {
		if f := r.Msg.From(); f != nil {
			r.Auth.CLI = f.Address.User
		}
	}
	var acct *snapshot.Account
	var changed bool
	dialled, cli := r.Auth.Dialled, r.Auth.CLI
	if p := r.Principal; p != nil {
		acct = p.Account
		var c0 bool
		dialled, c0 = p.DialPattern.Apply(dialled)
		dialled, _, changed = p.Rewrite.Apply(store.RewriteDestination, dialled)
		changed = changed || c0
		var c2 bool
		cli, _, c2 = p.Rewrite.Apply(store.RewriteCLI, cli)
		changed = changed || c2
		if p.ForceFrom != "" {
			cli, changed = p.ForceFrom, true
		} else if p.CLIPrefix != "" {
			cli, changed = p.CLIPrefix+cli, true
		}
	}
	r.Auth.Dialled, r.Auth.CLI = dialled, cli
	if acct != nil && acct.HasCLIPatterns() && !acct.CLIAuthenticates(cli) {
		return pipeline.Reject(Name, 403, "CLI restriction in effect",
			fmt.Sprintf("CLI %q matches none of account %q's CLI patterns or DIDs", cli, acct.Name)), false
	}
	if changed {
		return pipeline.Result{Why: "rewritten"}, true
	}
	return pipeline.Result{}, true
}
