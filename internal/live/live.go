// Package live defines what a node shows of its live state — active calls,
// registrations, decisions, the nodes of its cluster — and of a SIP MESSAGE
// sent to a user's devices. The B2BUA, the registrar, the edge and the node
// registry (package nodes) produce these values; the REST API and the web
// UI read them without knowing how a node is built.
package live

import (
	"errors"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// Call is what the API shows of an active call.
type Call struct {
	ID        string    `json:"id"`
	AccountID int64     `json:"account_id"`
	Account   string    `json:"account"`
	Auth      string    `json:"auth"` // ip | digest | core
	Endpoint  int64     `json:"endpoint_id,omitempty"`
	SIPUser   int64     `json:"sip_user_id,omitempty"`
	Username  string    `json:"username,omitempty"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Source    string    `json:"source"`
	Start     time.Time `json:"start"`
	Answered  time.Time `json:"answered,omitempty"`
	State     string    `json:"state"` // early | confirmed
	// Transfers counts the transfers sipward carried out in the call (Smart
	// Extension); To is then the party it was transferred to.
	Transfers int `json:"transfers,omitempty"`
	// Node is the ID of the node that carries the call (package nodes).
	Node string `json:"node"`
}

// Binding is one registered contact of a SIP user, with the address and
// transport the REGISTER really came from.
type Binding = store.Registration

// Decision is the record of how one INVITE or REGISTER was decided: which
// stages passed it, which stopped it and why ("why was this call rejected?").
type Decision struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Method    string    `json:"method"`
	CallID    string    `json:"call_id"`
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	AccountID int64     `json:"account_id,omitempty"`
	Account   string    `json:"account,omitempty"`
	Auth      string    `json:"auth"`
	Endpoint  int64     `json:"endpoint_id,omitempty"`
	SIPUser   int64     `json:"sip_user_id,omitempty"`
	Passed    []string  `json:"passed"`
	Stage     string    `json:"stage"`  // the stage that decided
	Status    int       `json:"status"` // the answer (0 when dropped)
	Result    string    `json:"result"` // accepted | rejected | dropped | failed
	Why       string    `json:"why"`
	NAT       string    `json:"nat,omitempty"` // what was found and done about the caller's NAT
	Node      string    `json:"node"`          // the ID of the node that decided (package nodes)
}

// DecisionFilter selects decisions; zero fields do not filter.
type DecisionFilter struct {
	Source    string // IP address (with or without port)
	AccountID int64
	Result    string
	CallID    string
	// Since and Until, when not zero, keep decisions made at or after Since
	// and before Until (a time range).
	Since, Until time.Time
	Limit        int
}

// Matches reports whether a decision made at t falls in f's time range.
func (f DecisionFilter) Matches(t time.Time) bool {
	return (f.Since.IsZero() || !t.Before(f.Since)) && (f.Until.IsZero() || t.Before(f.Until))
}

// Node is one sipward node of a cluster (the nodes sharing a store and a
// Redis), as its heartbeats describe it.
type Node struct {
	ID         string    `json:"id"`           // unique per process: host name and a random suffix
	Address    string    `json:"address"`      // host:port of its SIP UDP listener
	Version    string    `json:"version"`      // the binary's version
	StartedAt  time.Time `json:"started_at"`   // when the process started
	LastSeenAt time.Time `json:"last_seen_at"` // its last heartbeat
	Status     string    `json:"status"`       // NodeUp | NodeDown
	// ActiveCalls and Registrations are the calls the node carries and the
	// bindings its registrar holds, at its last heartbeat.
	ActiveCalls   int `json:"active_calls"`
	Registrations int `json:"registrations"`
	// Load is the CPU time the process used over its last heartbeat
	// interval, as a fraction of the machine's cores (0 idle, 1 every core
	// busy).
	Load float64 `json:"load"`
}

// Node statuses: a node is down when its heartbeats stopped (or it shut down).
const (
	NodeUp   = "up"
	NodeDown = "down"
)

// MessageResult says how one registered device answered a MESSAGE.
type MessageResult struct {
	Node    string `json:"node,omitempty"` // the node the device registered through (package nodes)
	Contact string `json:"contact"`
	Status  int    `json:"status"` // SIP status of the answer; 0 when none came
	Error   string `json:"error,omitempty"`
}

// ErrNotRegistered: the SIP user has no live registration to deliver to.
var ErrNotRegistered = errors.New("not registered")
