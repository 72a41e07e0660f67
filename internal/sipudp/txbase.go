package sipudp

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// txBase is what the edge's UDP server and client transactions
// (servertx.go, clienttx.go) share: the lock, the one timer that plays
// every RFC 3261 timer in turn (on txTimers), and the end with who is told
// closedChan is Done's channel of a transaction that ended before it was asked.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// of it.
type txBase struct {
	key    string
	mu     sync.Mutex
	ended  bool
	timers *txTimers
	self   firer     // the transaction whose fire the timer calls
	due    time.Time // when the armed timer is meant to fire; zero: disarmed
	done   chan struct{}
	err    error
	onTerm []sip.FnTxTerminate
}

// arm sets the timer to call the transaction's fire d after now (up to a
// tick later); a firing before due is stale (see early). Locked.
func (b *txBase) arm(now time.Time, d time.Duration) {
	b.due = now.Add(d)
	b.timers.add(b.due, b.self)
}

// disarm stops the timer: its entry fires stale. Locked.
func (b *txBase) disarm() { b.due = time.Time{} }

// early reports whether a firing at now is stale: the timer was re-armed
// or stopped since it was set. Locked.
func (b *txBase) early(now time.Time) bool { return b.due.IsZero() || now.Before(b.due) }

// end marks the transaction ended (with ErrTransactionTerminated unless an
// error was set) and returns the functions to tell; the caller unlocks,
// drops the transaction from its table, then calls tell. Locked.
func (b *txBase) end() (tell func()) {
	b.ended = true
	b.disarm()
	if b.err == nil {
		b.err = sip.ErrTransactionTerminated
	}
	if b.done == nil {
		b.done = closedChan
	} else {
		close(b.done)
	}
	fns, key, err := b.onTerm, b.key, b.err
	b.onTerm = nil
	return func() {
		for _, f := range fns {
			f(key, err)
		}
	}
}

// OnTerminate registers f for the end; false when it has ended already.
func (b *txBase) OnTerminate(f sip.FnTxTerminate) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return false
	}
	b.onTerm = append(b.onTerm, f)
	return true
}

// Done is closed when the transaction ends.
func (b *txBase) Done() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done == nil {
		b.done = make(chan struct{})
	}
	return b.done
}

// Err says why the transaction ended (nil while it has not).
func (b *txBase) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// txTable is a layer's transactions by key.
type txTable[T interface {
	comparable
	Terminate()
}] struct {
	mu sync.Mutex
	m  map[string]T
}

func newTxTable[T interface {
	comparable
	Terminate()
}]() txTable[T] {
	return txTable[T]{m: map[string]T{}}
}

func (t *txTable[T]) get(key string) (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, ok := t.m[key]
	return tx, ok
}

// add puts tx under key unless one is there: then it returns that one and false.
func (t *txTable[T]) add(key string, tx T) (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.m[key]; ok {
		return old, false
	}
	t.m[key] = tx
	return tx, true
}

// remove drops key if it still holds tx.
func (t *txTable[T]) remove(key string, tx T) {
	t.mu.Lock()
	if t.m[key] == tx {
		delete(t.m, key)
	}
	t.mu.Unlock()
}

func (t *txTable[T]) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// close ends every transaction (the socket is closing).
func (t *txTable[T]) close() {
	t.mu.Lock()
	txs := make([]T, 0, len(t.m))
	for _, tx := range t.m {
		txs = append(txs, tx)
	}
	t.mu.Unlock()
	for _, tx := range txs {
		tx.Terminate()
	}
}
