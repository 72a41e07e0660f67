// Package authn is the digest-authentication stage: requests that no IP
// endpoint and not the core claimed must carry digest credentials of a SIP
// user. REGISTER is challenged with 401 + WWW-Authenticate, everything else
// with 407 + Proxy-Authenticate (RFC 3261 §22). Nonces are stateless HMACs
// valid across nodes (package digest), nonce counts are checked against
// replay, unknown users and wrong passwords get the same answer, and after a
// good response the user's IP whitelist applies.
//
// A request that IP authentication already identified never reaches the
// digest check: it passes straight on.
package authn

import (
	"errors"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/digest"
	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
)

// User is what the stage needs to know of a SIP user.
type User struct {
	ID, AccountID int64
	Username      string
	AccountName   string
	HA1MD5        string
	HA1SHA256     string
	Whitelist     []netip.Prefix // empty: from anywhere
	// Principal is the compiled user the request is attributed to once it
	// authenticated (r.Principal); nil leaves r.Principal unset.
	Principal *snapshot.Principal
}

// SnapshotUser is the Lookup sipward serves with: the SIP user of that
// username in the request's snapshot, with its principal.
func SnapshotUser(r *pipeline.Request, name string) (User, bool) {
	if r.Snap == nil {
		return User{}, false
	}
	u := r.Snap.User(name)
	if u == nil {
		return User{}, false
	}
	au := User{ID: u.ID, Username: u.Username, HA1MD5: u.HA1MD5, HA1SHA256: u.HA1SHA256, Whitelist: u.Whitelist,
		Principal: &u.Principal}
	if u.Account != nil {
		au.AccountID, au.AccountName = u.Account.ID, u.Account.Name
	}
	return au, true
}

// FailureKind says why the firewall's detector is told about a source.
type FailureKind uint8

// Kinds of failures reported to Config.OnFailure.
const (
	BadCredentials FailureKind = iota + 1 // wrong password, unknown user, forged or replayed nonce
	NoCredentials                         // an INVITE from an unknown source without credentials
)

// Config configures the stage.
type Config struct {
	Auth *digest.Authenticator
	// Lookup finds a SIP user by username (SnapshotUser in sipward).
	Lookup func(r *pipeline.Request, username string) (User, bool)
	// OnFailure, when set, hears of each failure by source, at the
	// request's time (fraud detection).
	OnFailure func(src netip.Addr, kind FailureKind, now time.Time)
	// OnSuccess, when set, hears of each source that authenticated, at the
	// request's time.
	OnSuccess func(src netip.Addr, now time.Time)
	Registry  prometheus.Registerer
}

// Stage is the digest-authentication stage.
type Stage struct {
	cfg Config
	m   *metrics
}

// New returns the stage.
func New(cfg Config) (*Stage, error) {
	if cfg.Auth == nil || cfg.Lookup == nil {
		return nil, errors.New("stage/authn: Auth and Lookup are required")
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	return &Stage{cfg: cfg, m: m}, nil
}
