package sipudp

// The transactions' timers.
//
// Every UDP transaction runs one RFC 3261 timer at a time (txBase.arm): a
// retransmission interval, or how long it lingers to absorb retransmissions.
// With a runtime timer each (time.AfterFunc), every expiry is a timer-heap
// operation, a new goroutine, and on a machine that is not saturated a thread
// woken for that one goroutine: five to six expiries per call, thousands a
// second at a moderate load, most of them the 5-s lingers ending one by one.
// txTimers plays them all on one goroutine instead, which wakes once per
// tick (10 ms; a transaction's timer may fire up to one tick late, which
// RFC 3261's timers, of 500 ms and more, do not notice) while any timer is
// armed, and not at all while none is: the expiries of a tick are handled in
// one wake-up. Kamailio's tm module does the same with its timer process
// (ticks of 1/16 s).
//
// A timer is an entry in a ring of slots by its tick. Re-arming adds another
// entry and leaves the old one, which finds the transaction re-armed or
// ended when its tick comes (txBase.early) and does nothing: disarming costs
// nothing, and an entry is dropped when its tick has passed. An expiry runs
// the transaction's fire on the timers' goroutine, so fire must not block
// (it writes a datagram, re-arms or ends the transaction; the B2BUA's
// give-up is started on a goroutine of its own). A write that finds the
// socket's send buffer full waits for room and holds up the rest of its
// tick: the same back-pressure every writer of that socket sees.

import (
	"sync"
	"time"
)

// txTick is the timers' resolution.
const txTick = 10 * time.Millisecond

// timerSlots is the ring's size: 512 ticks of 10 ms, 5.12 s, which holds the
// common timers (retransmission intervals up to T2 = 4 s, the 5-s lingers
// and Timer I) in one turn; a longer one (a tx-linger set longer) stays in
// its slot for more turns and is looked at once per turn. A slot keeps its
// backing array from turn to turn, so the ring's memory is its size times
// the most entries a slot has held: with 4,096 slots, 13.6 MB live (and
// scanned by the collector) at 2,000 digest calls/s, 12,000 arms a second.
const timerSlots = 1 << 9

// firer is what an expiry calls: a transaction's fire.
type firer interface{ fire() }

type timerEntry struct {
	tick int64
	t    firer
}

// txTimers is the timer goroutine of a socket's transactions. Start it with
// run; stop closes it.
type txTimers struct {
	res   time.Duration
	start time.Time // ticks count from here (monotonic)

	mu    sync.Mutex
	slots [][]timerEntry
	n     int          // entries held
	next  int64        // the first tick not yet played
	due   []timerEntry // play's buffer (run's goroutine only)

	wake chan struct{} // an entry was added to an empty ring
	done chan struct{}
	once sync.Once
}

// newTxTimers returns timers of resolution res (txTick; tests use less) and
// starts their goroutine.
func newTxTimers(res time.Duration) *txTimers {
	w := &txTimers{res: res, start: time.Now(), slots: make([][]timerEntry, timerSlots),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// add arranges for t.fire to be called once at or after due.
func (w *txTimers) add(due time.Time, t firer) {
	d := due.Sub(w.start)
	k := int64((d + w.res - 1) / w.res) // rounded up: never before due
	w.mu.Lock()
	if k < w.next {
		k = w.next
	}
	s := &w.slots[k&(timerSlots-1)]
	*s = append(*s, timerEntry{tick: k, t: t})
	w.n++
	first := w.n == 1
	w.mu.Unlock()
	if first {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// stop ends the goroutine; armed timers do not fire.
func (w *txTimers) stop() { w.once.Do(func() { close(w.done) }) }

func (w *txTimers) run() {
	var tk *time.Ticker
	for {
		w.mu.Lock()
		idle := w.n == 0
		if idle {
			// Nothing armed: the ticks that pass while asleep hold nothing.
			w.next = int64(time.Since(w.start) / w.res)
		}
		w.mu.Unlock()
		if idle {
			if tk != nil {
				tk.Stop()
				tk = nil
			}
			select {
			case <-w.wake:
			case <-w.done:
				return
			}
			continue
		}
		if tk == nil {
			tk = time.NewTicker(w.res)
		}
		select {
		case <-tk.C:
		case <-w.wake: // stale: the ring was refilled before this goroutine slept
			continue
		case <-w.done:
			tk.Stop()
			return
		}
		w.play(int64(time.Since(w.start) / w.res))
	}
}

// play fires every entry whose tick is at most now.
func (w *txTimers) play(now int64) {
	w.mu.Lock()
	due := w.due[:0]
	turns := now - w.next + 1
	if turns > timerSlots {
		turns = timerSlots // a long stall: every slot once
	}
	for i := int64(0); i < turns; i++ {
		s := &w.slots[(w.next+i)&(timerSlots-1)]
		kept := (*s)[:0]
		for _, e := range *s {
			if e.tick <= now {
				due = append(due, e)
			} else {
				kept = append(kept, e) // a later turn of the ring
			}
		}
		clear((*s)[len(kept):])
		*s = kept
	}
	if now >= w.next {
		w.next = now + 1
	}
	w.n -= len(due)
	w.mu.Unlock()
	for i := range due {
		due[i].t.fire()
		due[i] = timerEntry{}
	}
	w.due = due[:0] // play runs on run's goroutine only
}
