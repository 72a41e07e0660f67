package authn

import (
	"context"
	"fmt"

	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/digest"
	"github.com/sipward/sipward/internal/pipeline"
)

// Name is the stage's name in traces.
const Name = "authn"

// ReasonTransport is the reason phrase of the 403 to a SIP user whose
// request came over a transport its protocol does not accept (the same
// phrase identify answers an endpoint with).
const ReasonTransport = "Transport not allowed"

// Stage returns the pipeline stage.
func (s *Stage) Stage() pipeline.Stage {
	return func(next pipeline.Handler) pipeline.Handler {
		return pipeline.HandlerFunc{N: Name, F: func(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
			if r.Auth.Method != pipeline.AuthNone {
				return next.ServeSIP(ctx, r)
			}
			res, ok, err := s.check(r)
			if err != nil || !ok {
				return res, err
			}
			r.Trace.Pass(Name)
			return next.ServeSIP(ctx, r)
		}}
	}
}

// check authenticates r. It returns ok when r may pass, else the Result.
func (s *Stage) check(r *pipeline.Request) (pipeline.Result, bool, error) {
	kind := digest.KindFor(string(r.Msg.Method))
	src := r.Source.Addr()
	h := r.Msg.GetHeader(kind.CredentialsHeader())
	if h == nil {
		// Some clients put credentials in the other header; accept them there too.
		if kind == digest.Proxy {
			h = r.Msg.GetHeader("Authorization")
		} else {
			h = r.Msg.GetHeader("Proxy-Authorization")
		}
	}
	if h == nil {
		if r.Msg.Method == sip.INVITE && s.cfg.OnFailure != nil {
			s.cfg.OnFailure(src, NoCredentials, r.Now)
		}
		s.m.results.WithLabelValues("challenged").Inc()
		return s.challenge(r, kind, false, "no credentials"), false, nil
	}
	creds, err := digest.ParseCredentials(h.Value())
	if err != nil {
		s.fail(src, r.Now)
		return s.challenge(r, kind, false, "unreadable credentials: "+err.Error()), false, nil
	}
	u, found := s.cfg.Lookup(r, creds.Username)
	ha1 := ""
	if found {
		// Only algorithms we store an HA1 for; any other is verified like
		// an unknown user, so the answer never tells users apart.
		switch creds.Algorithm {
		case digest.MD5:
			ha1 = u.HA1MD5
		case digest.SHA256:
			ha1 = u.HA1SHA256
		}
	}
	res := s.cfg.Auth.Check(&creds, digest.Request{Method: string(r.Msg.Method), URI: r.Msg.Recipient.String(), Source: src, Now: r.Now}, ha1)
	switch res {
	case digest.Ok:
	case digest.StaleNonce:
		s.m.results.WithLabelValues("stale").Inc()
		return s.challenge(r, kind, true, "stale nonce"), false, nil
	case digest.BadHA1:
		s.m.results.WithLabelValues("error").Inc()
		return pipeline.Result{}, false, fmt.Errorf("stage/authn: sip user %q: stored digest is malformed", creds.Username)
	default:
		s.fail(src, r.Now)
		why := "bad credentials"
		if !found {
			why = fmt.Sprintf("unknown user %q", creds.Username)
		} else if res == digest.BadResponse {
			why = fmt.Sprintf("wrong password for %q", creds.Username)
		} else if res == digest.Replay {
			why = fmt.Sprintf("replayed nonce count for %q", creds.Username)
		}
		return s.challenge(r, kind, false, why), false, nil
	}
	if len(u.Whitelist) > 0 {
		allowed := false
		for _, p := range u.Whitelist {
			if p.Contains(src.Unmap()) {
				allowed = true
				break
			}
		}
		if !allowed {
			s.m.results.WithLabelValues("whitelist").Inc()
			return pipeline.Reject(Name, 403, "Forbidden", fmt.Sprintf("sip user %q: source %s not in its IP whitelist", u.Username, src)), false, nil
		}
	}
	if u.Principal != nil && !u.Principal.Protocol.Accepts(r.Transport) {
		s.m.results.WithLabelValues("transport").Inc()
		return pipeline.Reject(Name, 403, ReasonTransport,
			fmt.Sprintf("sip user %q requires %s; the request came over %s", u.Username, u.Principal.Protocol, r.Transport)), false, nil
	}
	s.m.results.WithLabelValues("ok").Inc()
	if s.cfg.OnSuccess != nil {
		s.cfg.OnSuccess(src, r.Now)
	}
	r.Auth.Method = pipeline.AuthDigest
	r.Auth.AccountID, r.Auth.SIPUserID = u.AccountID, u.ID
	r.Auth.Username, r.Auth.AccountName = u.Username, u.AccountName
	r.Principal = u.Principal
	return pipeline.Result{}, true, nil
}

func (s *Stage) fail(src netip.Addr, now time.Time) {
	s.m.results.WithLabelValues("bad_credentials").Inc()
	if s.cfg.OnFailure != nil {
		s.cfg.OnFailure(src, BadCredentials, now)
	}
}

// challenge answers 401/407 with one header per offered algorithm.
func (s *Stage) challenge(r *pipeline.Request, kind digest.Kind, stale bool, why string) pipeline.Result {
	vals := s.cfg.Auth.Challenge(r.Now, r.Source.Addr(), stale)
	hdrs := make([]sip.Header, len(vals))
	for i, v := range vals {
		hdrs[i] = sip.NewHeader(kind.ChallengeHeader(), v)
	}
	return pipeline.Reject(Name, kind.Status(), kind.Reason(), why, hdrs...)
}
