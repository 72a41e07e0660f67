package sipudp

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testTimers returns running timers of 1-ms ticks, stopped when t ends (the
// transaction tests use T1 of 10–20 ms).
func testTimers(t *testing.T) *txTimers {
	w := newTxTimers(time.Millisecond)
	t.Cleanup(w.stop)
	return w
}

// stillTimers returns timers whose goroutine does not run: the test plays
// the ticks itself.
func stillTimers(res time.Duration) *txTimers {
	return &txTimers{res: res, start: time.Now(), slots: make([][]timerEntry, timerSlots),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

type countFire struct{ n atomic.Int32 }

func (c *countFire) fire() { c.n.Add(1) }

func TestTimersPlayTicks(t *testing.T) {
	w := stillTimers(10 * time.Millisecond)
	at := func(d time.Duration) time.Time { return w.start.Add(d) }
	var a, b, c, far countFire
	w.add(at(25*time.Millisecond), &a)                                  // tick 3 (rounded up: never early)
	w.add(at(30*time.Millisecond), &b)                                  // tick 3
	w.add(at(100*time.Millisecond), &c)                                 // tick 10
	w.add(at(timerSlots*10*time.Millisecond+50*time.Millisecond), &far) // the same slot as tick 5, a turn later

	w.play(2)
	if a.n.Load()+b.n.Load()+c.n.Load()+far.n.Load() != 0 {
		t.Fatal("fired before its tick")
	}
	w.play(5)
	if a.n.Load() != 1 || b.n.Load() != 1 || c.n.Load() != 0 || far.n.Load() != 0 {
		t.Fatalf("after tick 5: a %d b %d c %d far %d, want 1 1 0 0", a.n.Load(), b.n.Load(), c.n.Load(), far.n.Load())
	}
	w.play(9)
	if c.n.Load() != 0 {
		t.Fatal("c fired at tick 9, due at 10")
	}
	w.play(12)
	if c.n.Load() != 1 || w.n != 1 {
		t.Fatalf("after tick 12: c %d, %d held; want 1, 1 (far)", c.n.Load(), w.n)
	}
	w.play(timerSlots + 5)
	if far.n.Load() != 1 || w.n != 0 {
		t.Fatalf("after a turn: far %d, %d held; want 1, 0", far.n.Load(), w.n)
	}
	if a.n.Load() != 1 || b.n.Load() != 1 || c.n.Load() != 1 {
		t.Fatal("an entry fired twice")
	}
}

func TestTimersLongStall(t *testing.T) {
	// A goroutine not scheduled for more than a turn of the ring plays
	// every slot once, and every entry due by then fires.
	w := stillTimers(time.Millisecond)
	var fs [50]countFire
	for i := range fs {
		w.add(w.start.Add(time.Duration(i*2*timerSlots/len(fs))*time.Millisecond), &fs[i]) // over two turns
	}
	w.play(3 * timerSlots)
	for i := range fs {
		if fs[i].n.Load() != 1 {
			t.Fatalf("entry %d fired %d times, want 1", i, fs[i].n.Load())
		}
	}
	if w.n != 0 {
		t.Fatalf("%d held after the stall", w.n)
	}
	// An entry added for a tick already played goes to the next tick.
	var late countFire
	w.add(w.start, &late)
	w.play(3*timerSlots + 1)
	if late.n.Load() != 1 {
		t.Fatal("an entry for a past tick did not fire at the next")
	}
}

// chanFire reports its firing time.
type chanFire chan time.Time

func (c chanFire) fire() { c <- time.Now() }

func TestTimersRun(t *testing.T) {
	w := newTxTimers(2 * time.Millisecond)
	defer w.stop()
	// From idle (the goroutine asleep), then again after the ring emptied.
	for round := 0; round < 2; round++ {
		c := make(chanFire, 1)
		due := time.Now().Add(20 * time.Millisecond)
		w.add(due, c)
		select {
		case got := <-c:
			if got.Before(due) {
				t.Fatalf("round %d: fired %v before due", round, due.Sub(got))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: no firing", round)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTimersConcurrentAdds(t *testing.T) {
	w := newTxTimers(time.Millisecond)
	defer w.stop()
	const n = 4000
	var fired sync.WaitGroup
	fired.Add(n)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/4; i++ {
				w.add(time.Now().Add(time.Duration(i%30)*time.Millisecond), wgFire{&fired})
			}
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { fired.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("not every timer fired")
	}
}

type wgFire struct{ wg *sync.WaitGroup }

func (f wgFire) fire() { f.wg.Done() }

func TestTimersStop(t *testing.T) {
	w := newTxTimers(time.Millisecond)
	var f countFire
	w.add(time.Now().Add(30*time.Millisecond), &f)
	w.stop()
	w.stop() // twice is fine
	time.Sleep(80 * time.Millisecond)
	if f.n.Load() != 0 {
		t.Fatal("fired after stop")
	}
}
