package warm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWarmPoolReusesWorkersAndStops(t *testing.T) {
	g0 := runtime.NumGoroutine()
	p := New(4)
	var ran atomic.Int32
	for range 100 { // one after another: one worker does them all
		p.Run(func() { ran.Add(1) })
	}
	if ran.Load() != 100 {
		t.Fatalf("ran %d of 100", ran.Load())
	}
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if idle != 1 {
		t.Errorf("%d idle workers after sequential runs, want 1", idle)
	}

	// 10 at once, each holding its worker: 10 workers, of which 4 stay idle.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); p.Run(func() { <-release; ran.Add(1) }) }()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if ran.Load() != 110 {
		t.Fatalf("ran %d of 110", ran.Load())
	}
	p.mu.Lock()
	idle = len(p.idle)
	p.mu.Unlock()
	if idle != 4 {
		t.Errorf("%d idle workers, want maxIdle 4", idle)
	}

	p.Stop()
	p.Run(func() { ran.Add(1) }) // still runs after stop
	if ran.Load() != 111 {
		t.Fatal("run after stop did not run")
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > g0 {
		t.Errorf("%d goroutines after stop, %d before: workers left behind", g, g0)
	}
}

// TestWarmPoolTrimEndsWorkersNoRequestNeeded: after a burst the pool keeps
// its peak only until trim; workers that were used since the last trim stay.
func TestWarmPoolTrimEndsWorkersNoRequestNeeded(t *testing.T) {
	p := New(64)
	defer p.Stop()
	idle := func() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.idle) }
	burst := func(n int) {
		var wg sync.WaitGroup
		release := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() { defer wg.Done(); p.Run(func() { <-release }) }()
		}
		time.Sleep(50 * time.Millisecond)
		close(release)
		wg.Wait()
	}
	burst(40)
	if got := idle(); got != 40 {
		t.Fatalf("%d idle after a burst of 40, want 40", got)
	}
	p.Trim() // the burst dipped to 0 idle: nothing stayed unused, nothing ends
	if got := idle(); got != 40 {
		t.Fatalf("%d idle after the first trim, want 40 (all were used since)", got)
	}
	for range 100 { // a quiet interval: sequential requests use one worker
		p.Run(func() {})
	}
	g := runtime.NumGoroutine()
	if n := p.Trim(); n != 39 {
		t.Fatalf("trim ended %d workers, want the 39 no request needed", n)
	}
	if got := idle(); got != 1 {
		t.Fatalf("%d idle after trim, want 1", got)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > g-39 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > g-39 {
		t.Errorf("%d goroutines after trim, want at most %d: trimmed workers did not end", got, g-39)
	}
	var ran atomic.Int32
	p.Run(func() { ran.Add(1) }) // the pool still serves
	if ran.Load() != 1 {
		t.Fatal("run after trim did not run")
	}
}
