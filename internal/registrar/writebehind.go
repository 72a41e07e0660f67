package registrar

// Write-behind: REGISTERs never wait for the store. A binding is in force in
// memory at once and reaches the store within FlushInterval (a crash loses
// at most that); a refresh that changes nothing a restored binding is
// routed or shown by skips the store while the stored copy outlives the
// device's next refresh (lazyRefresh). Expiry and NAT-ping removals are
// queued the same way.

import (
	"context"
	"sort"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// lazyMargin is what a stored binding must outlive beyond the device's next
// expected refresh for a refresh to skip the store.
const lazyMargin = 10 * time.Second

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
		old.SIPUserID != b.SIPUserID || old.AccountID != b.AccountID || old.Node != b.Node || old.NodeAddr != b.NodeAddr {
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
		g.flushLog.Do(func() {
			g.cfg.Log.Warn("registrar: write registrations to the store (will retry)", "changes", len(batch), "err", err)
		})
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
		g.touch(b.Username)
	}
	if g.cfg.FlushInterval < 0 {
		_ = g.flush(ctx)
	}
}

// remove deletes one binding (a NAT ping in timeout mode went unanswered).
func (g *Registrar) remove(ctx context.Context, username, contact string) {
	g.drop(username, contact)
	g.queue(username, contact, nil)
	g.touch(username)
	if g.cfg.FlushInterval < 0 {
		_ = g.flush(ctx)
	}
}
