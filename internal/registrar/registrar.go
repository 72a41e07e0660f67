// Package registrar is sipward's registrar and location service (RFC 3261
// §10): the REGISTER chain's terminal stage, the bindings of SIP users'
// devices with the address and transport each REGISTER really came from,
// their write-behind to the store, NAT pings, and SIP MESSAGE delivery to
// the registered devices.
//
// Files, each one job: registrar.go (the bindings and their lookups),
// register.go (a REGISTER: parse, apply, answer), writebehind.go (to the
// store and back), location.go (the bindings shared with the other nodes
// of a cluster, Config.Location), run.go (the background loop: expiry,
// flushes, pings), ping.go (NAT pings), message.go (MESSAGE).
//
// MESSAGE and message-waiting NOTIFYs go to the bindings made through this
// node only (Local).
package registrar

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/sipward/sipward/internal/store"
)

// Binding is one registered contact of a SIP user. It keeps the address and
// transport the REGISTER really came from: calls to a NATed phone go there,
// not to the private address in its Contact.
type Binding = store.Registration

// BindingStore keeps bindings across restarts. Writes must not disturb the
// configuration revision (registrations are live state, not configuration).
type BindingStore = store.Registrations

// Config configures the registrar.
type Config struct {
	MinExpires, DefaultExpires, MaxExpires time.Duration // defaults 60 s, 3600 s, 7200 s
	MaxContacts                            int           // per user; default 5 (the oldest is replaced)
	Store                                  BindingStore  // nil: bindings do not survive a restart
	// Ping says how to NAT-ping a user: "disabled", "enabled" (OPTIONS every
	// PingInterval, latency recorded) or "timeout" (a binding that stops
	// answering is removed). nil: no pings.
	Ping         func(sipUserID int64) string
	PingInterval time.Duration // default 60 s
	// FlushInterval is how often changed bindings are written to Store
	// (write-behind; default 1 s). Negative writes through: every change is
	// stored before the REGISTER is answered, and a store failure answers 503.
	FlushInterval time.Duration
	Log           *slog.Logger
	Now           func() time.Time
	// Pings receives each answered NAT ping's round trip (the dashboard's
	// latency history, package series); nil: not kept.
	Pings Pings
	// Registerer receives sipward_registrar_bindings; nil: not registered.
	Registerer prometheus.Registerer
	// OnRegistered hears of each REGISTER over TCP or TLS that left
	// bindings from its source, with the latest expiry among them: the
	// connection must stay open that long (the edge keeps it). nil: nobody.
	OnRegistered func(src netip.AddrPort, transport string, until time.Time)

	// Location, when set, shares the bindings with the other nodes of a
	// cluster (package cluster, in Redis): see location.go. nil: the node
	// runs alone, its bindings in memory and the store.
	Location Location
	// NodeID is this node's id (unique per process) and NodeAddr its SIP
	// address (host:port of its UDP listener); each binding made here
	// records both. With Location, a node loads at start only the stored
	// bindings made at its own NodeAddr (by itself or by the process it
	// replaces) or by no node.
	NodeID, NodeAddr string
	// ResyncInterval is how often, with Location, all of this node's
	// bindings are written to it again (a Redis that restarted empty
	// learns them back); default 5 minutes.
	ResyncInterval time.Duration
}

// Location is the location service shared by the nodes of a cluster
// (package cluster implements it in Redis).
type Location interface {
	// Lookup returns the live bindings of username made through any node,
	// in one round trip.
	Lookup(ctx context.Context, username string, now time.Time) ([]Binding, error)
	// List returns the live bindings of every user, or of username.
	List(ctx context.Context, username string, now time.Time) ([]Binding, error)
	// Sync makes the bindings of node for each user in users exactly the
	// ones given (none: an empty list) and drops expired ones. It returns,
	// per user, the contacts another node registered later: this node's
	// copy is stale.
	Sync(ctx context.Context, node string, users map[string][]Binding, now time.Time) (lost map[string][]string, err error)
}

// Sender sends the registrar's own requests (NAT pings, MESSAGE) through
// the edge's clients: one per transport, leaving from the listening socket
// so that the device's NAT binding sees the port it registered to.
type Sender interface {
	Client(transport string) (*sipgo.Client, error)
	Host() string // sipward's host, for From
}

// Registrar is the REGISTER terminal stage and the location service.
type Registrar struct {
	cfg    Config
	mu     sync.RWMutex
	byUser map[string][]*Binding
	count  int

	sender Sender             // set by Start; nil before
	stop   context.CancelFunc // ends run
	done   chan struct{}      // closed when run has returned

	// Changes not yet written to the store (write-behind): the last change
	// of each binding wins; flush writes them in one transaction.
	pmu      sync.Mutex
	pending  map[store.RegistrationKey]*Binding // nil value: delete
	flushLog rate.Sometimes                     // one store-failure line per 10 s
	// stored is the expiry of each binding as last queued for the store
	// (guarded by pmu): a refresh that only moves the expiry may skip the
	// store while that copy outlives the device's next refresh (lazyRefresh).
	stored map[store.RegistrationKey]time.Time

	// Users whose bindings changed since they were last written to
	// Location (guarded by lmu); kick wakes the loop that writes them.
	lmu   sync.Mutex
	dirty map[string]struct{}
	kick  chan struct{}
}

// New returns a registrar and loads the stored bindings.
func New(ctx context.Context, cfg Config) (*Registrar, error) {
	if cfg.MinExpires == 0 {
		cfg.MinExpires = 60 * time.Second
	}
	if cfg.DefaultExpires == 0 {
		cfg.DefaultExpires = time.Hour
	}
	if cfg.MaxExpires == 0 {
		cfg.MaxExpires = 2 * time.Hour
	}
	if cfg.MaxContacts == 0 {
		cfg.MaxContacts = 5
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = time.Minute
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	g := &Registrar{cfg: cfg, byUser: map[string][]*Binding{}, pending: map[store.RegistrationKey]*Binding{},
		flushLog: rate.Sometimes{Interval: 10 * time.Second}, stored: map[store.RegistrationKey]time.Time{}, done: make(chan struct{}),
		dirty: map[string]struct{}{}, kick: make(chan struct{}, 1)}
	if err := g.load(ctx); err != nil {
		return nil, err
	}
	if cfg.Registerer != nil {
		err := cfg.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipward_registrar_bindings",
			Help: "Live registrations (contacts)."}, func() float64 { return float64(g.Count()) }))
		if err != nil {
			return nil, fmt.Errorf("registrar: register metrics: %w", err)
		}
	}
	return g, nil
}

// load takes the stored bindings this node owns (all of them without
// Location; see Config.NodeID): a binding of another process at this
// node's address is taken over under this node's id.
func (g *Registrar) load(ctx context.Context) error {
	if g.cfg.Store == nil {
		return nil
	}
	bs, err := g.cfg.Store.LoadRegistrations(ctx, g.cfg.Now())
	if err != nil {
		return fmt.Errorf("registrar: load registrations: %w", err)
	}
	for i := range bs {
		b := bs[i]
		if g.cfg.Location != nil && b.NodeAddr != "" && b.NodeAddr != g.cfg.NodeAddr {
			continue // another node's: it is in Location
		}
		k := store.RegistrationKey{Username: b.Username, Contact: b.Contact}
		g.stored[k] = b.Expires
		if g.cfg.NodeID != "" && b.Node != g.cfg.NodeID {
			b.Node, b.NodeAddr = g.cfg.NodeID, g.cfg.NodeAddr
			saved := b
			g.pending[k] = &saved // stored under this node's id at the first flush
		}
		g.byUser[b.Username] = append(g.byUser[b.Username], &b)
		if g.cfg.Location != nil {
			g.dirty[b.Username] = struct{}{} // published when Start runs
		}
		g.count++
	}
	return nil
}

// Count returns the number of live bindings.
func (g *Registrar) Count() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.count
}

// Local returns the live bindings of a user made through this node,
// newest first.
func (g *Registrar) Local(username string, now time.Time) []Binding {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []Binding
	for _, b := range g.byUser[username] {
		if b.Expires.After(now) {
			out = append(out, *b)
		}
	}
	newestFirst(out)
	return out
}

// newestFirst sorts bindings by registration time, newest first, then by
// contact.
func newestFirst(out []Binding) {
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Registered.Equal(out[j].Registered) {
			return out[i].Registered.After(out[j].Registered)
		}
		return out[i].Contact < out[j].Contact
	})
}

// localList returns this node's bindings, optionally of one account or
// user, by username and contact.
func (g *Registrar) localList(accountID int64, username string) []Binding {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := []Binding{}
	for u, bs := range g.byUser {
		if username != "" && u != username {
			continue
		}
		for _, b := range bs {
			if accountID == 0 || b.AccountID == accountID {
				out = append(out, *b)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Username != out[j].Username {
			return out[i].Username < out[j].Username
		}
		return out[i].Contact < out[j].Contact
	})
	return out
}

// drop takes the binding of username and contact out of the node's table.
func (g *Registrar) drop(username, contact string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	list := g.byUser[username]
	for i, b := range list {
		if b.Contact == contact {
			list = append(list[:i], list[i+1:]...)
			g.count--
			break
		}
	}
	if len(list) == 0 {
		delete(g.byUser, username)
	} else {
		g.byUser[username] = list
	}
}

// Pings keeps SIP users' NAT-ping round trips (a *series.Recorder).
type Pings interface {
	Ping(sipUserID int64, rtt time.Duration, now time.Time)
}
