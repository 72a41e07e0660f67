package snapshot

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// Holder holds the serving snapshot. The zero Holder is ready and holds nil.
type Holder struct {
	p atomic.Pointer[Snapshot]
}

// Load returns the serving snapshot, or nil before the first one is stored.
// A request should call it once and use that snapshot throughout.
func (h *Holder) Load() *Snapshot { return h.p.Load() }

// Store makes s the serving snapshot.
func (h *Holder) Store(s *Snapshot) { h.p.Store(s) }

// DefaultInterval is how often a Watcher polls the store's revision.
const DefaultInterval = 200 * time.Millisecond

// Watcher keeps a Holder's snapshot in step with the store: it polls the
// store's revision and, when it changed, applies the changes to the serving
// snapshot (LoadDelta, Snapshot.Apply) or, when it cannot (no snapshot yet,
// the change log pruned, ErrRebuild), loads and builds afresh; then swaps.
//
// A build that fails leaves the old snapshot serving; it is logged once per
// revision, reported by LastError and Healthy, and not retried by Poll until
// the revision changes again (Refresh retries it). A store that cannot be
// reached also leaves the old snapshot serving, is logged once when it goes
// and once when it comes back, and is retried at every poll.
type Watcher struct {
	// Interval is the time between polls in Run. Set it before Run; 0 means
	// DefaultInterval.
	Interval time.Duration
	// CompactAt is the overlay size (objects replaced since the last full
	// build) at which a full rebuild starts in the background, so that
	// Apply never reaches its cap and stalls the watcher for a synchronous
	// rebuild. Set it before use; 0 means half of the cap (10,000).
	CompactAt int

	st  store.Store
	h   *Holder
	opt Options
	log *slog.Logger

	build sync.Mutex // held while loading, building and swapping

	applied, rebuilt atomic.Int64 // swaps by Apply, by Build
	compacted        atomic.Int64 // swaps by a background rebuild
	compacting       atomic.Bool  // a background rebuild is running
	bg               context.Context

	mu        sync.Mutex // guards the fields below
	onSwap    []func(*Snapshot)
	storeErr  error // last store failure; nil once the store answers
	buildErr  error // last failed build; nil after a successful swap
	buildRev  int64 // the revision that failed to build
	loggedRev int64 // the revision whose build failure was logged
}

// NewWatcher returns a Watcher that builds snapshots of st with opt into h.
// A nil log discards.
func NewWatcher(st store.Store, h *Holder, opt Options, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{st: st, h: h, opt: opt, log: log}
}

// OnSwap registers fn to be called with each new snapshot right after it
// starts serving, in the goroutine that swapped it (Run's or Refresh's
// caller), one swap at a time and in order. fn must be quick and must not
// call Refresh or Poll.
func (w *Watcher) OnSwap(fn func(*Snapshot)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.onSwap = append(w.onSwap, fn)
}

// Run polls every Interval until ctx is done. It polls once at once.
func (w *Watcher) Run(ctx context.Context) {
	iv := w.Interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	w.mu.Lock()
	w.bg = ctx // background rebuilds end with Run
	w.mu.Unlock()
	for {
		_ = w.Poll(ctx) // failures are logged and kept for LastError
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll checks the store's revision once and, when it differs from the
// serving snapshot's, rebuilds and swaps. It does not rebuild a revision
// whose build already failed. It returns the store or build error, if any.
func (w *Watcher) Poll(ctx context.Context) error {
	rev, err := w.st.Revision(ctx)
	if err != nil {
		return w.storeFailed(ctx, err)
	}
	w.build.Lock()
	defer w.build.Unlock()
	if cur := w.h.Load(); cur != nil && cur.Revision() == rev {
		w.storeOK()
		return nil
	}
	w.mu.Lock()
	failed, buildErr := w.buildErr != nil && w.buildRev == rev, w.buildErr
	w.mu.Unlock()
	if failed {
		w.storeOK()
		return buildErr
	}
	return w.update(ctx)
}

// Refresh brings the serving snapshot up to the store's current revision
// now, rebuilding even a revision that failed before, and returns the store
// or build error. The API calls it after a change, so that the change is in
// force on this node when the call returns. Concurrent Refreshes coalesce: one
// that finds the snapshot already at the revision it read returns nil at once.
func (w *Watcher) Refresh(ctx context.Context) error {
	rev, err := w.st.Revision(ctx)
	if err != nil {
		return w.storeFailed(ctx, err)
	}
	w.build.Lock()
	defer w.build.Unlock()
	if cur := w.h.Load(); cur != nil && cur.Revision() == rev {
		w.storeOK()
		return nil
	}
	return w.update(ctx)
}

// update brings the serving snapshot up to the store's revision: by Apply
// when it can, else by a full rebuild; w.build is held.
func (w *Watcher) update(ctx context.Context) error {
	cur := w.h.Load()
	if cur == nil {
		return w.rebuild(ctx, "no snapshot yet")
	}
	start := time.Now()
	d, err := LoadDelta(ctx, w.st, cur.Revision())
	switch {
	case errors.Is(err, store.ErrChangesPruned):
		return w.rebuild(ctx, "change log pruned")
	case errors.Is(err, ErrRebuild):
		return w.rebuild(ctx, err.Error())
	case err != nil:
		return w.storeFailed(ctx, err)
	}
	w.storeOK()
	s, err := cur.Apply(d, w.opt)
	switch {
	case errors.Is(err, ErrRebuild):
		return w.rebuild(ctx, err.Error())
	case err != nil:
		w.buildFailed(d.Revision, err)
		return err
	}
	w.applied.Add(1)
	w.swap(s, "applied", "changes", d.size(), "took", time.Since(start))
	at := w.CompactAt
	if at <= 0 {
		at = maxOverlay / 2
	}
	if s.ov.size() >= at && w.compacting.CompareAndSwap(false, true) {
		w.mu.Lock()
		bg := w.bg
		w.mu.Unlock()
		if bg == nil {
			bg = context.Background()
		}
		go w.compact(bg)
	}
	return nil
}

// compact rebuilds the snapshot in the background, without holding w.build
// while it loads and builds, then brings the new snapshot up to the store's
// revision with the changes made meanwhile and swaps it in: the overlay
// starts empty again and Apply stays fast. A failure leaves the serving
// snapshot alone (the next compaction, or Apply's own fallback, retries).
func (w *Watcher) compact(ctx context.Context) {
	defer w.compacting.Store(false)
	start := time.Now()
	ds, err := Load(ctx, w.st)
	if err != nil {
		w.log.Warn("snapshot: background rebuild: load failed", "err", err)
		return
	}
	base, err := Build(ds, w.opt)
	if err != nil {
		w.log.Warn("snapshot: background rebuild: build failed", "revision", ds.Revision, "err", err)
		return
	}
	w.build.Lock()
	defer w.build.Unlock()
	d, err := LoadDelta(ctx, w.st, base.Revision())
	if err != nil {
		w.log.Warn("snapshot: background rebuild: changes since it was read", "revision", base.Revision(), "err", err)
		return
	}
	s := base
	if d.size() > 0 || d.Revision > base.Revision() {
		if s, err = base.Apply(d, w.opt); err != nil {
			w.log.Warn("snapshot: background rebuild: changes since it was read", "revision", base.Revision(), "err", err)
			return
		}
	}
	if cur := w.h.Load(); cur != nil && cur.Revision() > s.Revision() {
		return // cannot happen: the delta reads up to the store's revision
	}
	w.compacted.Add(1)
	w.swap(s, "compacted", "took", time.Since(start))
}

// rebuild loads, builds and swaps; w.build is held.
func (w *Watcher) rebuild(ctx context.Context, why string) error {
	start := time.Now()
	ds, err := Load(ctx, w.st)
	if err != nil {
		return w.storeFailed(ctx, err)
	}
	w.storeOK()
	loaded := time.Now()
	s, err := Build(ds, w.opt)
	if err != nil {
		w.buildFailed(ds.Revision, err)
		return err
	}
	w.rebuilt.Add(1)
	w.swap(s, "rebuilt", "why", why, "load", loaded.Sub(start), "build", time.Since(loaded))
	return nil
}

// swap makes s the serving snapshot and tells OnSwap; w.build is held. how
// and args say, at Debug, how s was made.
func (w *Watcher) swap(s *Snapshot, how string, args ...any) {
	w.h.Store(s)
	w.mu.Lock()
	w.buildErr, w.buildRev = nil, 0
	fns := w.onSwap
	w.mu.Unlock()
	if w.log.Enabled(context.Background(), slog.LevelDebug) {
		w.log.Debug("snapshot "+how, append([]any{"revision", s.Revision(), "accounts", s.Accounts(),
			"endpoints", s.Endpoints(), "users", s.Users()}, args...)...)
	}
	for _, fn := range fns {
		fn(s)
	}
}

func (w *Watcher) storeFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err // shutting down, not a store failure
	}
	w.mu.Lock()
	first := w.storeErr == nil
	w.storeErr = err
	w.mu.Unlock()
	if first {
		w.log.Warn("snapshot: store unreachable; serving the last snapshot", "revision", w.servingRevision(), "err", err)
	}
	return err
}

func (w *Watcher) storeOK() {
	w.mu.Lock()
	was := w.storeErr
	w.storeErr = nil
	w.mu.Unlock()
	if was != nil {
		w.log.Info("snapshot: store reachable again")
	}
}

func (w *Watcher) buildFailed(rev int64, err error) {
	w.mu.Lock()
	w.buildErr, w.buildRev = err, rev
	log := w.loggedRev != rev
	w.loggedRev = rev
	w.mu.Unlock()
	if log {
		w.log.Error("snapshot: build failed; serving the last snapshot", "revision", rev, "serving", w.servingRevision(), "err", err)
	}
}

func (w *Watcher) servingRevision() int64 {
	if s := w.h.Load(); s != nil {
		return s.Revision()
	}
	return 0
}

// LastError returns the current failure, if any: a store failure (with the
// revision still serving, 0 when none) or else a failed build (with the
// revision that failed). It returns 0, nil when the snapshot is current.
func (w *Watcher) LastError() (rev int64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.storeErr != nil {
		return w.servingRevision(), w.storeErr
	}
	if w.buildErr != nil {
		return w.buildRev, w.buildErr
	}
	return 0, nil
}

// Healthy reports whether a snapshot is serving, the store answered the last
// poll, and the last build succeeded. When false, the node still serves its
// last snapshot; LastError says why it is stale.
func (w *Watcher) Healthy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.storeErr == nil && w.buildErr == nil && w.h.Load() != nil
}
