package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// fakeStore is a read-only store.Store over a Dataset, with a revision the
// test bumps and an error it can inject.
type fakeStore struct {
	mu    sync.Mutex
	ds    Dataset
	rev   int64
	err   error // Revision and View fail with it
	views int   // View calls
}

var _ store.Store = (*fakeStore)(nil)

func (f *fakeStore) Update(context.Context, func(store.Tx) error) error {
	return errors.New("fake store is read-only")
}

func (f *fakeStore) View(_ context.Context, fn func(store.Tx) error) error {
	f.mu.Lock()
	f.views++
	ds, err := f.ds, f.err
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return fn(fakeTx{ds: ds})
}

func (f *fakeStore) Revision(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev, f.err
}

func (f *fakeStore) Close() error { return nil }

// set replaces the data and bumps the revision, as a committed write does.
func (f *fakeStore) set(ds Dataset) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ds = ds
	f.rev++
}

func (f *fakeStore) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeStore) viewCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.views
}

// fakeTx implements the lists Load reads; any other method panics (nil Tx).
type fakeTx struct {
	store.Tx
	ds Dataset
}

func (t fakeTx) ListAccounts(context.Context, store.AccountFilter) ([]store.Account, int, error) {
	return t.ds.Accounts, len(t.ds.Accounts), nil
}

func (t fakeTx) ListEndpoints(context.Context, store.EndpointFilter) ([]store.IPEndpoint, int, error) {
	return t.ds.Endpoints, len(t.ds.Endpoints), nil
}

func (t fakeTx) ListSIPUsers(context.Context, store.SIPUserFilter) ([]store.SIPUser, int, error) {
	return t.ds.Users, len(t.ds.Users), nil
}

func (t fakeTx) ListCLIPatterns(context.Context, store.CLIPatternFilter) ([]store.CLIPattern, int, error) {
	return t.ds.CLIPatterns, len(t.ds.CLIPatterns), nil
}

func (t fakeTx) ListDIDs(context.Context, store.DIDFilter) ([]store.DID, int, error) {
	return t.ds.DIDs, len(t.ds.DIDs), nil
}

func (t fakeTx) ListRewriteRules(context.Context, store.RewriteFilter) ([]store.RewriteRule, int, error) {
	return t.ds.Rewrites, len(t.ds.Rewrites), nil
}

func (t fakeTx) ListBans(context.Context, store.BanFilter) ([]store.Ban, int, error) {
	return t.ds.Bans, len(t.ds.Bans), nil
}

// ChangesSince: the fake keeps no change log, so the Watcher rebuilds.
func (t fakeTx) ChangesSince(context.Context, int64) ([]store.Change, error) {
	return nil, store.ErrChangesPruned
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

type watchEnv struct {
	st    *fakeStore
	h     *Holder
	w     *Watcher
	logs  *logBuffer
	swaps []int64 // revisions passed to OnSwap
}

func newWatchEnv(t *testing.T) *watchEnv {
	t.Helper()
	env := &watchEnv{st: &fakeStore{}, h: &Holder{}, logs: &logBuffer{}}
	env.st.set(fixture())
	log := slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	env.w = NewWatcher(env.st, env.h, testOptions, log)
	env.w.OnSwap(func(s *Snapshot) { env.swaps = append(env.swaps, s.Revision()) })
	return env
}

func (env *watchEnv) serving(t *testing.T) int64 {
	t.Helper()
	s := env.h.Load()
	if s == nil {
		t.Fatal("no snapshot serving")
	}
	return s.Revision()
}

func badRewrite(ds Dataset) Dataset {
	ds.Rewrites = append(ds.Rewrites[:len(ds.Rewrites):len(ds.Rewrites)],
		store.RewriteRule{ID: 12, OwnerKind: store.OwnerEndpoint, OwnerID: 20, Type: store.RewriteCLI, Regex: true, Match: "(4"})
	return ds
}

func TestWatcherSwapsOnRevisionChange(t *testing.T) {
	ctx := context.Background()
	env := newWatchEnv(t)
	if env.h.Load() != nil || env.w.Healthy() {
		t.Fatal("a snapshot serves before the first poll")
	}
	if err := env.w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if rev := env.serving(t); rev != 1 {
		t.Fatalf("serving revision %d, want 1", rev)
	}
	if !env.w.Healthy() {
		t.Error("not healthy after a good build")
	}
	first := env.h.Load()

	// Same revision: nothing is read or built.
	views := env.st.viewCount()
	if err := env.w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if env.st.viewCount() != views || env.h.Load() != first {
		t.Error("Poll rebuilt an unchanged revision")
	}

	// A change: endpoint 60 goes away, so 10.1.0.7 falls back to the /24.
	ds := fixture()
	ds.Endpoints = append(ds.Endpoints[:7:7], ds.Endpoints[8:]...)
	env.st.set(ds)
	if err := env.w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if rev := env.serving(t); rev != 2 {
		t.Fatalf("serving revision %d, want 2", rev)
	}
	if m := env.h.Load().Identify(ipOf("10.1.0.7"), "udp", "9555", ""); m.Endpoint == nil || m.Endpoint.ID != 50 {
		t.Errorf("after the change 10.1.0.7 matched %+v, want endpoint 50", reduce(m))
	}
	if m := first.Identify(ipOf("10.1.0.7"), "udp", "9555", ""); m.Endpoint == nil || m.Endpoint.ID != 60 {
		t.Errorf("the old snapshot changed: %+v", reduce(m))
	}
	if got := len(env.swaps); got != 2 || env.swaps[0] != 1 || env.swaps[1] != 2 {
		t.Errorf("OnSwap saw revisions %v, want [1 2]", env.swaps)
	}
	if rev, err := env.w.LastError(); rev != 0 || err != nil {
		t.Errorf("LastError = %d, %v", rev, err)
	}
}

func TestWatcherKeepsOldOnBuildFailure(t *testing.T) {
	ctx := context.Background()
	env := newWatchEnv(t)
	if err := env.w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	good := env.h.Load()

	env.st.set(badRewrite(fixture()))
	err := env.w.Poll(ctx)
	var be *BuildError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "ip endpoint 20: rewrite rule 12") {
		t.Fatalf("Poll = %v, want the build error naming the rule", err)
	}
	if env.h.Load() != good {
		t.Fatal("a failed build replaced the serving snapshot")
	}
	if env.w.Healthy() {
		t.Error("healthy with a failed build")
	}
	if rev, lerr := env.w.LastError(); rev != 2 || lerr != err {
		t.Errorf("LastError = %d, %v; want 2, the build error", rev, lerr)
	}

	// Polling the same bad revision neither rebuilds nor logs again.
	views := env.st.viewCount()
	for range 3 {
		if err := env.w.Poll(ctx); !errors.As(err, &be) {
			t.Errorf("Poll = %v, want the build error again", err)
		}
	}
	if env.st.viewCount() != views {
		t.Error("Poll rebuilt a revision that already failed")
	}
	if n := env.logs.count("build failed"); n != 1 {
		t.Errorf("build failure logged %d times, want once", n)
	}

	// Refresh retries it.
	if err := env.w.Refresh(ctx); !errors.As(err, &be) {
		t.Errorf("Refresh = %v, want the build error", err)
	}
	if env.st.viewCount() == views {
		t.Error("Refresh did not retry the failed revision")
	}

	// A fix is picked up at the next poll.
	env.st.set(fixture())
	if err := env.w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if rev := env.serving(t); rev != 3 {
		t.Errorf("serving revision %d, want 3", rev)
	}
	if !env.w.Healthy() {
		t.Error("not healthy after the fix")
	}
	if rev, err := env.w.LastError(); rev != 0 || err != nil {
		t.Errorf("LastError = %d, %v after the fix", rev, err)
	}
	if got := env.swaps; len(got) != 2 || got[1] != 3 {
		t.Errorf("OnSwap saw %v, want [1 3]", got)
	}
}

func TestWatcherStoreDown(t *testing.T) {
	ctx := context.Background()
	env := newWatchEnv(t)
	if err := env.w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	good := env.h.Load()

	down := errors.New("connection refused")
	env.st.fail(down)
	for range 3 {
		if err := env.w.Poll(ctx); !errors.Is(err, down) {
			t.Errorf("Poll = %v, want the store error", err)
		}
	}
	if env.h.Load() != good {
		t.Error("the serving snapshot changed while the store was down")
	}
	if env.w.Healthy() {
		t.Error("healthy while the store is down")
	}
	if rev, err := env.w.LastError(); rev != 1 || !errors.Is(err, down) {
		t.Errorf("LastError = %d, %v; want 1 (still serving), the store error", rev, err)
	}
	if err := env.w.Refresh(ctx); !errors.Is(err, down) {
		t.Errorf("Refresh = %v, want the store error", err)
	}
	if n := env.logs.count("store unreachable"); n != 1 {
		t.Errorf("store failure logged %d times, want once", n)
	}

	env.st.fail(nil)
	env.st.set(fixture())
	if err := env.w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if !env.w.Healthy() || env.serving(t) != 2 {
		t.Errorf("after recovery: healthy %v, revision %d", env.w.Healthy(), env.serving(t))
	}
	if n := env.logs.count("store reachable again"); n != 1 {
		t.Errorf("recovery logged %d times, want once", n)
	}
}

// TestWatcherRefresh: Refresh builds a new revision at once, and does nothing
// when the snapshot is current.
func TestWatcherRefresh(t *testing.T) {
	ctx := context.Background()
	env := newWatchEnv(t)
	if err := env.w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	views := env.st.viewCount()
	if err := env.w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if env.st.viewCount() != views {
		t.Error("Refresh rebuilt the current revision")
	}
	env.st.set(fixture())
	if err := env.w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if rev := env.serving(t); rev != 2 {
		t.Errorf("serving revision %d after Refresh, want 2", rev)
	}
}

// TestWatcherRun: Run polls on its own and stops with its context.
func TestWatcherRun(t *testing.T) {
	st := &fakeStore{}
	st.set(fixture())
	h := &Holder{}
	w := NewWatcher(st, h, testOptions, nil)
	w.Interval = time.Millisecond
	swapped := make(chan int64, 10)
	w.OnSwap(func(s *Snapshot) { swapped <- s.Revision() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()

	wait := func(want int64) {
		t.Helper()
		select {
		case rev := <-swapped:
			if rev != want {
				t.Errorf("swapped to revision %d, want %d", rev, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no swap to revision %d", want)
		}
	}
	wait(1)
	st.set(fixture())
	wait(2)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestLoad(t *testing.T) {
	st := &fakeStore{}
	st.set(fixture())
	ds, err := Load(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Revision != 1 || len(ds.Endpoints) != len(fixture().Endpoints) || len(ds.Bans) != 5 {
		t.Errorf("Load = revision %d, %d endpoints, %d bans", ds.Revision, len(ds.Endpoints), len(ds.Bans))
	}
	st.fail(errors.New("disk on fire"))
	if _, err := Load(context.Background(), st); err == nil || !strings.HasPrefix(err.Error(), "snapshot: load: ") {
		t.Errorf("Load with a failing store = %v", err)
	}
}

// TestWatcherApplies: with a store that keeps a change log, a change is
// applied to the serving snapshot rather than rebuilt; an invalid change
// leaves the old snapshot serving, as a failed build does.
func TestWatcherApplies(t *testing.T) {
	ctx := t.Context()
	st := openSQLite(t)
	acct := store.Account{Name: "Alpha", Channels: 10}
	user := store.SIPUser{Username: "alice", Realm: "sipward", HA1MD5: md5A, Protocol: new(store.ProtoUDP)}
	ep := store.IPEndpoint{Address: "192.0.2.1", Direction: store.DirSends, Protocol: store.ProtoUDP}
	write := func(fn func(tx store.Tx) error) {
		t.Helper()
		if err := st.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	write(func(tx store.Tx) error {
		if err := tx.CreateAccount(ctx, &acct); err != nil {
			return err
		}
		user.AccountID, ep.AccountID = acct.ID, acct.ID
		if err := tx.CreateSIPUser(ctx, &user); err != nil {
			return err
		}
		return tx.CreateEndpoint(ctx, &ep)
	})

	logs := &logBuffer{}
	h := &Holder{}
	w := NewWatcher(st, h, testOptions, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	var swaps []int64
	w.OnSwap(func(s *Snapshot) { swaps = append(swaps, s.Revision()) })
	counts := func() [2]int64 { return [2]int64{w.applied.Load(), w.rebuilt.Load()} }
	if err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := counts(); got != [2]int64{0, 1} {
		t.Fatalf("first snapshot: applied, rebuilt = %v, want [0 1]", got)
	}
	first := h.Load()

	user.HA1MD5 = strings.Repeat("c", 32)
	write(func(tx store.Tx) error { return tx.UpdateSIPUser(ctx, &user) })
	if err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := counts(); got != [2]int64{1, 1} {
		t.Errorf("after a change: applied, rebuilt = %v, want [1 1]", got)
	}
	if u := h.Load().User("alice"); u == nil || u.HA1MD5 != user.HA1MD5 {
		t.Errorf("serving user %+v, want the new HA1", u)
	}
	if u := first.User("alice"); u.HA1MD5 != md5A {
		t.Error("the old snapshot changed")
	}
	if n := logs.count("snapshot applied"); n != 1 {
		t.Errorf("%d applies logged, want 1", n)
	}

	// An invalid change: the old snapshot keeps serving, with Build's error.
	good := h.Load()
	bad := store.RewriteRule{OwnerKind: store.OwnerEndpoint, OwnerID: ep.ID, Type: store.RewriteCLI, Regex: true, Match: "(4"}
	write(func(tx store.Tx) error { return tx.CreateRewriteRule(ctx, &bad) })
	err := w.Refresh(ctx)
	_, wantErr := Build(mustLoad(t, st), testOptions)
	var be *BuildError
	if !errors.As(err, &be) || wantErr == nil || err.Error() != wantErr.Error() {
		t.Fatalf("Refresh = %v, want Build's error %v", err, wantErr)
	}
	if h.Load() != good || w.Healthy() {
		t.Errorf("after a failed apply: serving revision %d (want %d), healthy %v", h.Load().Revision(), good.Revision(), w.Healthy())
	}
	if rev, lerr := w.LastError(); lerr != err || rev != be.Revision {
		t.Errorf("LastError = %d, %v", rev, lerr)
	}
	if err := w.Poll(ctx); !errors.As(err, &be) {
		t.Errorf("Poll = %v, want the build error again", err)
	}
	if n := logs.count("build failed"); n != 1 {
		t.Errorf("build failure logged %d times, want once", n)
	}

	write(func(tx store.Tx) error { return tx.DeleteRewriteRule(ctx, bad.ID) })
	if err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := counts(); got != [2]int64{2, 1} || !w.Healthy() {
		t.Errorf("after the fix: applied, rebuilt = %v (want [2 1]), healthy %v", got, w.Healthy())
	}
	if len(swaps) != 3 {
		t.Errorf("OnSwap saw %v, want 3 swaps", swaps)
	}
}

// TestWatcherRebuildsWhenPruned: a store whose change log does not reach
// back (the fake keeps none) is rebuilt in full, and says why.
func TestWatcherRebuildsWhenPruned(t *testing.T) {
	env := newWatchEnv(t)
	if err := env.w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	env.st.set(fixture())
	if err := env.w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a, r := env.w.applied.Load(), env.w.rebuilt.Load(); a != 0 || r != 2 {
		t.Errorf("applied %d, rebuilt %d; want 0, 2", a, r)
	}
	if n := env.logs.count("change log pruned"); n != 1 {
		t.Errorf("%d rebuilds logged as pruned, want 1", n)
	}
}

func mustLoad(t testing.TB, st store.Store) Dataset {
	t.Helper()
	ds, err := Load(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestWatcherCompactsInBackground: once the overlay reaches CompactAt, a
// full rebuild runs in the background and, with the changes made while it
// ran, replaces the serving snapshot: the overlay is empty again and every
// change is still in force.
func TestWatcherCompactsInBackground(t *testing.T) {
	ctx := t.Context()
	st := openSQLite(t)
	acct := store.Account{Name: "Alpha", Channels: 10}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.CreateAccount(ctx, &acct) }); err != nil {
		t.Fatal(err)
	}
	h := &Holder{}
	w := NewWatcher(st, h, testOptions, nil)
	w.CompactAt = 3
	if err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		u := store.SIPUser{AccountID: acct.ID, Username: fmt.Sprintf("u%d", i), Realm: "sipward", HA1MD5: md5A, Protocol: new(store.ProtoUDP)}
		if err := st.Update(ctx, func(tx store.Tx) error { return tx.CreateSIPUser(ctx, &u) }); err != nil {
			t.Fatal(err)
		}
		if err := w.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for (w.compacted.Load() == 0 || w.compacting.Load()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if w.compacted.Load() == 0 {
		t.Fatal("no background rebuild after the overlay reached CompactAt")
	}
	// Changes made after the compaction started are applied on top of it.
	if err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	s := h.Load()
	rev, _ := st.Revision(ctx)
	if s.Revision() != rev {
		t.Errorf("serving revision %d, store %d", s.Revision(), rev)
	}
	for i := range 5 {
		if s.User(fmt.Sprintf("u%d", i)) == nil {
			t.Errorf("user u%d missing after the background rebuild", i)
		}
	}
	if n := s.ov.size(); n >= 5 {
		t.Errorf("overlay holds %d objects after compaction, want fewer than the 5 changed", n)
	}
	if w.rebuilt.Load() != 1 {
		t.Errorf("%d synchronous rebuilds, want only the first", w.rebuilt.Load())
	}
}
