package edge

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWarmPoolReusesWorkersAndStops(t *testing.T) {
	g0 := runtime.NumGoroutine()
	p := newWarmPool(4)
	var ran atomic.Int32
	for range 100 { // one after another: one worker does them all
		p.run(func() { ran.Add(1) })
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
		go func() { defer wg.Done(); p.run(func() { <-release; ran.Add(1) }) }()
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

	p.stop()
	p.run(func() { ran.Add(1) }) // still runs after stop
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
