package limits

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Kind says what a Key limits.
type Kind uint8

// Kinds of limited things. The zero Kind is not valid.
const (
	Endpoint Kind = iota + 1 // an IP endpoint
	SIPUser                  // a SIP user
	Account                  // a whole account
	numKinds
)

// Kinds lists the valid kinds, in order.
var Kinds = [...]Kind{Endpoint, SIPUser, Account}

var kindNames = [numKinds]string{Endpoint: "endpoint", SIPUser: "sip_user", Account: "account"}
var kindTexts = [numKinds]string{Endpoint: "endpoint", SIPUser: "SIP user", Account: "account"}

// String returns "endpoint", "sip_user" or "account": the value of the
// "kind" metric label and the token in Redis key names.
func (k Kind) String() string {
	if k > 0 && k < numKinds {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Valid reports whether k is one of Endpoint, SIPUser, Account.
func (k Kind) Valid() bool { return k > 0 && k < numKinds }

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, bool) {
	for _, k := range Kinds {
		if kindNames[k] == s {
			return k, true
		}
	}
	return 0, false
}

// Key identifies one limited thing: an endpoint, a SIP user or an account,
// by its store ID. It is comparable and small, so it is a map key that
// costs no allocation.
type Key struct {
	Kind Kind
	ID   int64
}

// String returns the key as a customer-facing text: "endpoint 7",
// "SIP user 12", "account 3".
func (k Key) String() string {
	t := "unknown"
	if k.Kind.Valid() {
		t = kindTexts[k.Kind]
	}
	return t + " " + strconv.FormatInt(k.ID, 10)
}

// Limit is the channel limit of one Key: at most Max calls at once. Max 0
// means unlimited: the key is counted (for InUse and metrics) but never
// refuses a call.
type Limit struct {
	Key
	Max int
}

// Denied is the answer of Acquire. The zero Denied means the call was
// granted; otherwise Limit names the first key (in the order given to
// Acquire) that was at its Max, and InUse how many channels it held then.
type Denied struct {
	Limit
	InUse int
}

// Granted reports whether the Acquire was granted (no limit was reached).
func (d Denied) Granted() bool { return d.Max == 0 }

// Count is the number of channels one Key holds.
type Count struct {
	Key
	InUse int
}

// MaxKeys is the most limits one Acquire may take (endpoint or SIP user,
// account, and room to spare).
const MaxKeys = 4

// DefaultLease is how long a hold lives without Refresh when no lease is
// configured (sipward serve --channel-lease): the node renews the holds of
// its live calls every third of it, so the channels of a node that died
// come back within it.
const DefaultLease = 30 * time.Second

// Errors of the Channels contract.
var (
	// ErrHeld is returned by Acquire when callID already holds channels
	// (an unexpired hold). Nothing is taken and the existing hold is left
	// as it was. The stage answers such an INVITE 482 Loop Detected.
	ErrHeld = errors.New("call already holds channels")
	// ErrInvalid is returned (wrapped) for arguments that break the
	// contract: empty callID, more than MaxKeys limits, an invalid Kind,
	// the same key twice, a negative Max.
	ErrInvalid = errors.New("invalid argument")
)

// Channels counts concurrent calls per Key, globally: across every node
// that shares the implementation's state.
//
// A call takes its channels with Acquire and gives them back with Release,
// both named by a callID (the SIP Call-ID of the customer leg). Each hold
// has a lease: it ends by itself lease after it was taken or last
// refreshed, so the channels of a node that crashed mid-call come back.
// The node refreshes the holds of its live calls every third of the lease
// (app: renewHolds, with B2BUA.HoldIDs).
//
// Implementations are safe for concurrent use. Every method returns an
// error only for technical failure (Redis down) or ErrInvalid/ErrHeld; a
// limit being reached is a Denied, not an error.
type Channels interface {
	// Acquire takes one channel of every key in limits for callID, or none:
	// if any key with Max > 0 already holds Max channels (expired holds not
	// counted), nothing is taken and Denied names that key. limits must hold
	// distinct, valid keys, at most MaxKeys; an empty limits grants without
	// recording anything. The hold expires at now+lease. limits is only
	// read during the call, never kept.
	Acquire(ctx context.Context, limits []Limit, callID string, now time.Time) (Denied, error)
	// Release frees exactly what callID's Acquire took. Releasing an
	// unknown, expired or already released callID does nothing, so counts
	// never go negative.
	Release(ctx context.Context, callID string) error
	// Refresh extends callID's hold to now+lease and reports whether it
	// held. An expired hold is not revived: it is freed and Refresh returns
	// false (the caller's call has lost its channels).
	Refresh(ctx context.Context, callID string, now time.Time) (bool, error)
	// InUse returns the channels k holds, counting expired holds until
	// they are reaped (by Reap, or by an Acquire that touches k).
	InUse(ctx context.Context, k Key) (int, error)
	// All lists every key that holds channels, in no particular order,
	// with the same counting as InUse.
	All(ctx context.Context) ([]Count, error)
	// Reap frees every hold expired at now and returns how many it freed.
	// Acquire already ignores expired holds on the keys it touches; Reap,
	// run periodically, makes InUse, All and memory follow.
	Reap(ctx context.Context, now time.Time) (int, error)
}

// Rates is a per-key call rate (CPS) limiter: a token bucket per Key that
// holds at most perSecond tokens (burst = perSecond: one second's worth)
// and refills at perSecond tokens per second. Each allowed call takes one
// token. perSecond <= 0 means unlimited: Allow returns true and keeps no
// state.
//
// The time is the caller's (the request's arrival time), never read inside,
// so tests step it. A now earlier than a previous one for the same key
// refills nothing. Implementations are safe for concurrent use; error is
// only for technical failure, or ErrInvalid for a Key of invalid Kind
// (with perSecond > 0).
type Rates interface {
	Allow(ctx context.Context, k Key, perSecond int, now time.Time) (bool, error)
}

// CheckAcquire validates the arguments of Channels.Acquire the way every
// implementation must: a non-empty callID, at most MaxKeys limits, valid
// and distinct keys, Max >= 0. It returns an error wrapping ErrInvalid.
func CheckAcquire(limits []Limit, callID string) error {
	if callID == "" {
		return fmt.Errorf("empty call id: %w", ErrInvalid)
	}
	if len(limits) > MaxKeys {
		return fmt.Errorf("%d limits, at most %d: %w", len(limits), MaxKeys, ErrInvalid)
	}
	for i, l := range limits {
		if !l.Kind.Valid() {
			return fmt.Errorf("limits[%d]: %v: %w", i, l.Kind, ErrInvalid)
		}
		if l.Max < 0 {
			return fmt.Errorf("limits[%d]: %v: max %d: %w", i, l.Key, l.Max, ErrInvalid)
		}
		for _, o := range limits[:i] {
			if o.Key == l.Key {
				return fmt.Errorf("limits[%d]: %v given twice: %w", i, l.Key, ErrInvalid)
			}
		}
	}
	return nil
}
