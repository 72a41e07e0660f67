package registrar

// The cluster's location service. With Config.Location (Redis), each node
// keeps the bindings made through it in memory, as alone, and publishes
// them; a lookup returns its own and the other nodes' bindings, each
// naming the node it was made through (Binding.Node, NodeAddr), so that
// the route stage can reach a NAT-ed phone through that node.
//
// Writes never hold up a REGISTER: a change marks its user dirty and wakes
// the publishing loop, which writes every dirty user's bindings of this
// node in one pipelined round trip, then waits publishGap before the next
// (so a burst of REGISTERs goes in few round trips). Another node sees a
// binding one round trip after the REGISTER is answered, publishGap later
// at most under load; after a failure the users are retried every second.
// Every ResyncInterval all of this node's bindings are written again.
//
// Lookup reads the other nodes' bindings in one round trip (a 250 ms
// timeout in the Location); when Redis does not answer it returns this
// node's own bindings only, and the Location reports Degraded.
//
// A node that restarts gets a new id but keeps its SIP address: it takes
// back the stored bindings made at that address (load), which are the
// ones whose NAT pinholes lead to it, and publishes them under its new id.

import (
	"context"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// publishGap is the least time between two writes to Location.
const publishGap = 20 * time.Millisecond

// touch marks username's bindings as changed for Location.
func (g *Registrar) touch(username string) {
	if g.cfg.Location == nil {
		return
	}
	g.lmu.Lock()
	g.dirty[username] = struct{}{}
	g.lmu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// touchAll marks every user with bindings here as changed.
func (g *Registrar) touchAll() {
	g.mu.RLock()
	users := slices.Collect(maps.Keys(g.byUser))
	g.mu.RUnlock()
	for _, u := range users {
		g.touch(u)
	}
}

// publish writes dirty users to Location until ctx ends, then once more.
func (g *Registrar) publish(ctx context.Context) {
	resync := time.NewTicker(g.cfg.ResyncInterval)
	defer resync.Stop()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	g.syncDirty(ctx) // what load took over
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			g.syncDirty(fctx)
			cancel()
			return
		case <-resync.C:
			g.touchAll()
		case <-retry.C:
		case <-g.kick:
		}
		g.syncDirty(ctx)
		time.Sleep(publishGap)
	}
}

// syncDirty writes the dirty users' bindings of this node to Location;
// on failure they stay dirty for the next try.
func (g *Registrar) syncDirty(ctx context.Context) {
	g.lmu.Lock()
	batch := g.dirty
	if len(batch) == 0 {
		g.lmu.Unlock()
		return
	}
	g.dirty = make(map[string]struct{}, len(batch))
	g.lmu.Unlock()
	now := g.cfg.Now()
	users := make(map[string][]Binding, len(batch))
	for u := range batch {
		users[u] = g.Local(u, now)
	}
	lost, err := g.cfg.Location.Sync(ctx, g.cfg.NodeID, users, now)
	if err != nil {
		g.flushLog.Do(func() {
			g.cfg.Log.Warn("registrar: write bindings to the cluster's location service (will retry)", "users", len(batch), "err", err)
		})
		g.lmu.Lock()
		maps.Copy(g.dirty, batch)
		g.lmu.Unlock()
	}
	for u, contacts := range lost {
		for _, c := range contacts {
			g.forget(u, c)
		}
	}
}

// forget drops this node's binding of username and contact without
// touching the store: another node registered it later, and the store's
// row is that node's now.
func (g *Registrar) forget(username, contact string) {
	g.drop(username, contact)
	g.pmu.Lock()
	delete(g.pending, store.RegistrationKey{Username: username, Contact: contact})
	delete(g.stored, store.RegistrationKey{Username: username, Contact: contact})
	g.pmu.Unlock()
}

// Lookup returns the live bindings of a user, newest first: this node's
// and, with Location, the other nodes' (one round trip; on failure this
// node's only).
func (g *Registrar) Lookup(username string, now time.Time) []Binding {
	local := g.Local(username, now)
	if g.cfg.Location == nil {
		return local
	}
	remote, err := g.cfg.Location.Lookup(context.Background(), username, now)
	if err != nil {
		return local
	}
	out := g.merge(local, remote)
	newestFirst(out)
	return out
}

// merge returns local with the bindings of remote made through other
// nodes; of a contact in both, the later registration wins.
func (g *Registrar) merge(local, remote []Binding) []Binding {
	at := make(map[store.RegistrationKey]int, len(local))
	for i := range local {
		at[store.RegistrationKey{Username: local[i].Username, Contact: local[i].Contact}] = i
	}
	for _, b := range remote {
		if b.Node == g.cfg.NodeID && g.cfg.NodeID != "" {
			continue // this node's own: memory is the truth
		}
		i, ok := at[store.RegistrationKey{Username: b.Username, Contact: b.Contact}]
		switch {
		case !ok:
			at[store.RegistrationKey{Username: b.Username, Contact: b.Contact}] = len(local)
			local = append(local, b)
		case b.Registered.After(local[i].Registered):
			local[i] = b
		}
	}
	return local
}

// List returns bindings for the API, optionally of one account or user,
// by username and contact: with Location, those of every node (each
// naming its node; this node's only when Redis does not answer).
func (g *Registrar) List(accountID int64, username string) []Binding {
	local := g.localList(accountID, username)
	if g.cfg.Location == nil {
		return local
	}
	remote, err := g.cfg.Location.List(context.Background(), username, g.cfg.Now())
	if err != nil {
		return local
	}
	kept := remote[:0]
	for _, b := range remote {
		if accountID == 0 || b.AccountID == accountID {
			kept = append(kept, b)
		}
	}
	out := g.merge(local, kept)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Username != out[j].Username {
			return out[i].Username < out[j].Username
		}
		return out[i].Contact < out[j].Contact
	})
	return out
}
