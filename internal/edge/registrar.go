package edge

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/store"
)

// Binding is one registered contact of a SIP user. It keeps the address and
// transport the REGISTER really came from: calls to a NATed phone go there,
// not to the private address in its Contact.
type Binding = store.Registration

// BindingStore keeps bindings across restarts. Writes must not disturb the
// configuration revision (registrations are live state, not configuration).
type BindingStore = store.Registrations

// RegistrarConfig configures the registrar.
type RegistrarConfig struct {
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
}

// Registrar is the REGISTER terminal stage and the location service.
type Registrar struct {
	cfg    RegistrarConfig
	mu     sync.RWMutex
	byUser map[string][]*Binding
	count  int
	edge   *Edge

	// Changes not yet written to the store (write-behind): the last change
	// of each binding wins; flush writes them in one transaction.
	pmu      sync.Mutex
	pending  map[store.RegistrationKey]*Binding // nil value: delete
	flushLog rateLimiter
	// stored is the expiry of each binding as last queued for the store
	// (guarded by pmu): a refresh that only moves the expiry may skip the
	// store while that copy outlives the device's next refresh (lazyRefresh).
	stored map[store.RegistrationKey]time.Time
}

// lazyMargin is what a stored binding must outlive beyond the device's next
// expected refresh for a refresh to skip the store.
const lazyMargin = 10 * time.Second

// NewRegistrar returns a registrar and loads the stored bindings.
func NewRegistrar(ctx context.Context, cfg RegistrarConfig) (*Registrar, error) {
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	g := &Registrar{cfg: cfg, byUser: map[string][]*Binding{}, pending: map[store.RegistrationKey]*Binding{},
		flushLog: rateLimiter{every: 10 * time.Second}, stored: map[store.RegistrationKey]time.Time{}}
	if cfg.Store != nil {
		bs, err := cfg.Store.LoadRegistrations(ctx, cfg.Now())
		if err != nil {
			return nil, fmt.Errorf("edge: load registrations: %w", err)
		}
		for i := range bs {
			b := bs[i]
			g.byUser[b.Username] = append(g.byUser[b.Username], &b)
			g.stored[store.RegistrationKey{Username: b.Username, Contact: b.Contact}] = b.Expires
			g.count++
		}
	}
	return g, nil
}

func (g *Registrar) attach(e *Edge) { g.edge = e }

// Count returns the number of live bindings.
func (g *Registrar) Count() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.count
}

// Lookup returns the live bindings of a user, newest first.
func (g *Registrar) Lookup(username string, now time.Time) []Binding {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []Binding
	for _, b := range g.byUser[username] {
		if b.Expires.After(now) {
			out = append(out, *b)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Registered.Equal(out[j].Registered) {
			return out[i].Registered.After(out[j].Registered)
		}
		return out[i].Contact < out[j].Contact
	})
	return out
}

// List returns bindings for the API, optionally of one account or user.
func (g *Registrar) List(accountID int64, username string) []Binding {
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

// serve handles an authenticated REGISTER (RFC 3261 §10.3).
func (g *Registrar) serve(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	const stage = "registrar"
	req := r.Msg
	if r.Auth.Method != pipeline.AuthDigest {
		return pipeline.Reject(stage, 403, "Forbidden", "REGISTER needs SIP user credentials"), nil
	}
	aor := req.To().Address.User
	if aor != r.Auth.Username {
		return pipeline.Reject(stage, 403, "Forbidden", fmt.Sprintf("user %q may not register %q", r.Auth.Username, aor)), nil
	}
	now := r.Now
	defExp := -1
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			return pipeline.Reject(stage, 400, "Bad Request", "malformed Expires"), nil
		}
		defExp = n
	}
	contacts := req.GetHeaders("Contact")
	callID := req.CallID().Value()
	cseq := req.CSeq().SeqNo

	type change struct {
		contact string
		expires int
	}
	var changes []change
	wildcard := false
	for _, h := range contacts {
		ch, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		if ch.Address.Wildcard {
			wildcard = true
			continue
		}
		exp := defExp
		if v, ok := ch.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return pipeline.Reject(stage, 400, "Bad Request", "malformed contact expires"), nil
			}
			exp = n
		}
		if exp < 0 {
			exp = int(g.cfg.DefaultExpires / time.Second)
		}
		if exp > 0 && time.Duration(exp)*time.Second < g.cfg.MinExpires {
			min := strconv.Itoa(int(g.cfg.MinExpires / time.Second))
			return pipeline.Reject(stage, 423, "Interval Too Brief", "expires "+strconv.Itoa(exp)+" below "+min,
				sip.NewHeader("Min-Expires", min)), nil
		}
		if max := int(g.cfg.MaxExpires / time.Second); exp > max {
			exp = max
		}
		changes = append(changes, change{contact: ch.Address.String(), expires: exp})
	}
	if wildcard {
		if len(contacts) != 1 || defExp != 0 {
			return pipeline.Reject(stage, 400, "Bad Request", "Contact: * needs Expires: 0 and no other contact"), nil
		}
	}

	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
	}
	var saves []Binding
	var deletes []string
	g.mu.Lock()
	list := g.byUser[aor]
	if wildcard {
		// RFC 3261 §10.3 step 6: a binding of the same Call-ID goes only
		// for a higher CSeq; otherwise the whole update is refused.
		for _, b := range list {
			if b.CallID == callID && cseq <= b.CSeq {
				g.mu.Unlock()
				return pipeline.Reject(stage, 400, "Bad Request", "out-of-order REGISTER: CSeq not above the binding's"), nil
			}
		}
		for _, b := range list {
			deletes = append(deletes, b.Contact)
		}
		list = nil
	}
	for _, c := range changes {
		idx := -1
		for i, b := range list {
			if b.Contact == c.contact {
				idx = i
			}
		}
		if idx >= 0 && list[idx].CallID == callID && cseq <= list[idx].CSeq {
			// RFC 3261 §10.3 step 7: an old or repeated REGISTER of the same
			// Call-ID aborts the update.
			g.mu.Unlock()
			return pipeline.Reject(stage, 400, "Bad Request", "out-of-order REGISTER: CSeq not above the binding's"), nil
		}
		if c.expires == 0 {
			if idx >= 0 {
				deletes = append(deletes, c.contact)
				list = append(list[:idx], list[idx+1:]...)
			}
			continue
		}
		b := &Binding{Username: aor, SIPUserID: r.Auth.SIPUserID, AccountID: r.Auth.AccountID, Contact: c.contact,
			Source: r.Source.String(), Transport: r.Transport, Expires: now.Add(time.Duration(c.expires) * time.Second),
			Registered: now, CallID: callID, CSeq: cseq, UserAgent: ua}
		if idx >= 0 {
			old := list[idx]
			b.LatencyMS, b.LastPing = old.LatencyMS, old.LastPing
			list[idx] = b
			if g.lazyRefresh(old, b, now) {
				continue
			}
		} else {
			if len(list) >= g.cfg.MaxContacts {
				oldest := 0
				for i := range list {
					if list[i].Registered.Before(list[oldest].Registered) {
						oldest = i
					}
				}
				deletes = append(deletes, list[oldest].Contact)
				list = append(list[:oldest], list[oldest+1:]...)
			}
			list = append(list, b)
		}
		saves = append(saves, *b)
	}
	// The store gets the final state: saves of what is bound now, deletes of
	// what is not (a contact saved and then evicted in this same request is
	// not saved).
	final := make(map[string]bool, len(list))
	for _, b := range list {
		final[b.Contact] = true
	}
	keptSaves := saves[:0]
	for _, b := range saves {
		if final[b.Contact] {
			keptSaves = append(keptSaves, b)
		}
	}
	saves = keptSaves
	keptDeletes := deletes[:0]
	for _, c := range deletes {
		if !final[c] {
			keptDeletes = append(keptDeletes, c)
		}
	}
	deletes = keptDeletes
	g.count += len(list) - len(g.byUser[aor])
	if len(list) == 0 {
		delete(g.byUser, aor)
	} else {
		g.byUser[aor] = list
	}
	current := make([]Binding, 0, len(list))
	for _, b := range list {
		current = append(current, *b)
	}
	g.mu.Unlock()

	for _, c := range deletes {
		g.queue(aor, c, nil)
	}
	for i := range saves {
		g.queue(aor, saves[i].Contact, &saves[i])
	}
	if g.cfg.FlushInterval < 0 {
		if err := g.flush(ctx); err != nil {
			return pipeline.Result{}, fmt.Errorf("edge/registrar: save binding: %w", err)
		}
	}
	hdrs := make([]sip.Header, 0, len(current)+1)
	for _, b := range current {
		rem := int(b.Expires.Sub(now) / time.Second)
		hdrs = append(hdrs, sip.NewHeader("Contact", "<"+b.Contact+">;expires="+strconv.Itoa(rem)))
	}
	hdrs = append(hdrs, sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	r.Trace.Pass(stage)
	return pipeline.Reply(stage, 200, "OK", fmt.Sprintf("%d contact(s) registered", len(current)), hdrs...), nil
}

// lazyRefresh reports whether b, a refresh of old, may skip the store: it
// changes nothing a restored binding is routed or shown by (source,
// transport, user agent, user, account) — only the expiry, and the Call-ID
// and CSeq, which serve ordering checks within one registration and are
// stale in the store until its next write — moves the expiry forward, and
// the stored copy outlives the device's next refresh (expected after the
// same interval as this one) twice over, plus lazyMargin. A crash then
// restores a binding that is still alive when the device refreshes next, so
// nothing is lost; a graceful stop writes every binding's latest state.
// Devices that refresh often (NAT keepalive REGISTERs every few seconds or
// minutes with an hour's expiry) write once per expiry instead of once per
// refresh; those refreshing at half their expiry or later write every time.
// g.mu is held.
func (g *Registrar) lazyRefresh(old, b *Binding, now time.Time) bool {
	if g.cfg.Store == nil || g.cfg.FlushInterval < 0 {
		return false // write-through: every change is stored
	}
	if old.Source != b.Source || old.Transport != b.Transport || old.UserAgent != b.UserAgent ||
		old.SIPUserID != b.SIPUserID || old.AccountID != b.AccountID {
		return false
	}
	interval := now.Sub(old.Registered)
	g.pmu.Lock()
	stored, ok := g.stored[store.RegistrationKey{Username: b.Username, Contact: b.Contact}]
	g.pmu.Unlock()
	return ok && interval >= 0 && !b.Expires.Before(stored) && stored.After(now.Add(2*interval+lazyMargin))
}

// queueLatest queues every binding whose latest expiry was not queued (the
// refreshes lazyRefresh let skip the store), so that a graceful stop loses
// nothing.
func (g *Registrar) queueLatest() {
	if g.cfg.Store == nil {
		return
	}
	var todo []Binding
	g.mu.RLock()
	g.pmu.Lock()
	for _, list := range g.byUser {
		for _, b := range list {
			if st, ok := g.stored[store.RegistrationKey{Username: b.Username, Contact: b.Contact}]; !ok || !st.Equal(b.Expires) {
				todo = append(todo, *b)
			}
		}
	}
	g.pmu.Unlock()
	g.mu.RUnlock()
	for i := range todo {
		g.queue(todo[i].Username, todo[i].Contact, &todo[i])
	}
}

// queue records a change of a binding for the next flush; b nil deletes it.
func (g *Registrar) queue(username, contact string, b *Binding) {
	if g.cfg.Store == nil {
		return
	}
	k := store.RegistrationKey{Username: username, Contact: contact}
	var cp *Binding
	g.pmu.Lock()
	if b != nil {
		c := *b
		cp = &c
		g.stored[k] = c.Expires
	} else {
		delete(g.stored, k)
	}
	g.pending[k] = cp
	g.pmu.Unlock()
}

// flush writes the pending changes in one transaction. REGISTERs never wait
// for the store: a binding is in force in memory at once and reaches the
// store within a second (a crash loses at most that second). A failed flush
// keeps its changes for the next one, unless newer ones replaced them.
func (g *Registrar) flush(ctx context.Context) error {
	if g.cfg.Store == nil {
		return nil
	}
	g.pmu.Lock()
	batch := g.pending
	if len(batch) == 0 {
		g.pmu.Unlock()
		return nil
	}
	g.pending = make(map[store.RegistrationKey]*Binding, len(batch))
	g.pmu.Unlock()
	var saves []Binding
	var deletes []store.RegistrationKey
	for k, b := range batch {
		if b == nil {
			deletes = append(deletes, k)
		} else {
			saves = append(saves, *b)
		}
	}
	sort.Slice(deletes, func(i, j int) bool {
		return deletes[i].Username < deletes[j].Username || deletes[i].Username == deletes[j].Username && deletes[i].Contact < deletes[j].Contact
	})
	sort.Slice(saves, func(i, j int) bool {
		return saves[i].Username < saves[j].Username || saves[i].Username == saves[j].Username && saves[i].Contact < saves[j].Contact
	})
	err := g.cfg.Store.ApplyRegistrations(ctx, saves, deletes)
	if err != nil {
		if g.flushLog.allow(time.Now()) {
			g.cfg.Log.Warn("edge/registrar: write registrations to the store (will retry)", "changes", len(batch), "err", err)
		}
		g.pmu.Lock()
		for k, b := range batch {
			if _, newer := g.pending[k]; !newer {
				g.pending[k] = b
			}
		}
		g.pmu.Unlock()
	}
	return err
}

// run expires bindings and sends NAT pings until ctx ends.
func (g *Registrar) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastPing, lastFlush := time.Time{}, time.Time{}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.queueLatest()
		_ = g.flush(fctx) // what changed since the last tick survives the shutdown
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := g.cfg.Now()
		g.expire(ctx, now)
		if now.Sub(lastFlush) >= g.cfg.FlushInterval {
			lastFlush = now
			_ = g.flush(ctx)
		}
		if g.cfg.Ping != nil && now.Sub(lastPing) >= g.cfg.PingInterval {
			lastPing = now
			g.pingAll(ctx)
		}
	}
}

func (g *Registrar) expire(ctx context.Context, now time.Time) {
	var gone []Binding
	g.mu.Lock()
	for u, list := range g.byUser {
		kept := list[:0]
		for _, b := range list {
			if b.Expires.After(now) {
				kept = append(kept, b)
			} else {
				gone = append(gone, *b)
			}
		}
		g.count -= len(list) - len(kept)
		if len(kept) == 0 {
			delete(g.byUser, u)
		} else {
			g.byUser[u] = kept
		}
	}
	g.mu.Unlock()
	for _, b := range gone {
		g.queue(b.Username, b.Contact, nil)
	}
	if g.cfg.FlushInterval < 0 {
		_ = g.flush(ctx)
	}
}

// remove deletes one binding (a NAT ping in timeout mode went unanswered).
func (g *Registrar) remove(ctx context.Context, username, contact string) {
	g.mu.Lock()
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
	g.mu.Unlock()
	g.queue(username, contact, nil)
	if g.cfg.FlushInterval < 0 {
		_ = g.flush(ctx)
	}
}

// pingAll sends one OPTIONS to every binding of users with pings enabled,
// through the address the binding came from, and records the round trip.
func (g *Registrar) pingAll(ctx context.Context) {
	if g.edge == nil || g.edge.b == nil {
		return
	}
	var todo []Binding
	modes := map[int64]string{}
	g.mu.RLock()
	for _, list := range g.byUser {
		for _, b := range list {
			m, ok := modes[b.SIPUserID]
			if !ok {
				m = g.cfg.Ping(b.SIPUserID)
				modes[b.SIPUserID] = m
			}
			if m == "enabled" || m == "timeout" {
				todo = append(todo, *b)
			}
		}
	}
	g.mu.RUnlock()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, b := range todo {
		b := b
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rtt, err := g.edge.ping(ctx, b)
			if err != nil {
				if modes[b.SIPUserID] == "timeout" {
					g.remove(ctx, b.Username, b.Contact)
				}
				return
			}
			g.mu.Lock()
			for _, x := range g.byUser[b.Username] {
				if x.Contact == b.Contact {
					x.LatencyMS, x.LastPing = float64(rtt.Microseconds())/1000, g.cfg.Now()
				}
			}
			g.mu.Unlock()
		}()
	}
	wg.Wait()
}

// ping sends an out-of-dialog OPTIONS to a binding and times the answer.
func (e *Edge) ping(ctx context.Context, b Binding) (time.Duration, error) {
	var uri sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		return 0, err
	}
	cl, err := e.b.client(b.Transport)
	if err != nil {
		return 0, err
	}
	req := sip.NewRequest(sip.OPTIONS, uri)
	req.SetTransport(strings.ToUpper(b.Transport))
	req.SetDestination(b.Source)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "sipward", Host: e.b.host}}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: uri})
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cl.Do(ctx, req); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
