package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name              string
		live, scan, floor uint64
		base, want        int
	}{
		{"live above the floor: GOGC alone", 600 * mb, 1 * mb, 512 * mb, 100, 100},
		{"live at the floor", 512 * mb, 0, 512 * mb, 400, 400},
		{"goal lifted to the floor", 100 * mb, 0, 1000 * mb, 100, 900},
		{"stacks and globals count as roots", 100 * mb, 100 * mb, 1000 * mb, 100, 450},
		{"never below the operator's GOGC", 400 * mb, 0, 1000 * mb, 400, 400},
		{"GOGC off stays off", 1 * mb, 0, 1000 * mb, -1, -1},
		{"nothing live: bounded", 0, 0, 1000 * mb, 100, maxPercent},
		{"a few KB live: bounded", 0, 1 << 10, 1000 * mb, 100, maxPercent},
	} {
		if got := Percent(c.live, c.scan, c.floor, c.base); got != c.want {
			t.Errorf("%s: Percent(%d, %d, %d, %d) = %d, want %d", c.name, c.live, c.scan, c.floor, c.base, got, c.want)
		}
	}
}

func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var sink []byte

// churn allocates n bytes of short-lived garbage and returns how many
// collections ran meanwhile.
func churn(n int) uint64 {
	before := read("/gc/cycles/total:gc-cycles")
	for i := 0; i < n/4096; i++ {
		sink = make([]byte, 4096)
	}
	return read("/gc/cycles/total:gc-cycles") - before
}

// TestFloorHoldsCollectionsOff is what the floor is for: 128 MB of garbage
// on a heap of a few MB is many collections with GOGC 100 and none with a
// 512-MB floor, and Stop hands the process back to GOGC.
func TestFloorHoldsCollectionsOff(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	runtime.GC()
	if n := churn(128 << 20); n < 3 {
		t.Fatalf("GOGC 100 alone: %d collections for 128 MB of garbage on a small heap; the test cannot tell the floor's effect", n)
	}

	const floor = 512 << 20
	f := Start(floor, 100)
	defer f.Stop()
	runtime.GC() // a cycle, so the finalizer tunes from its live heap
	deadline := time.Now().Add(5 * time.Second)
	for f.cycles.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if f.cycles.Load() == 0 {
		t.Fatal("the floor saw no collection within 5 s of runtime.GC")
	}
	if goal := read("/gc/heap/goal:bytes"); goal < floor*95/100 {
		t.Fatalf("heap goal %d MB with a %d-MB floor", goal>>20, floor>>20)
	}
	if p := read("/gc/gogc:percent"); p <= 100 || int(p) != f.Percent() {
		t.Fatalf("GOGC %d, floor says it set %d", p, f.Percent())
	}
	if n := churn(128 << 20); n != 0 {
		t.Errorf("with a 512-MB floor: %d collections for 128 MB of garbage, want 0", n)
	}

	f.Stop()
	if p := read("/gc/gogc:percent"); p != 100 {
		t.Fatalf("after Stop GOGC is %d, want the base 100", p)
	}
	runtime.GC()
	if n := churn(128 << 20); n < 3 {
		t.Errorf("after Stop: %d collections for 128 MB of garbage, want GOGC 100's many", n)
	}
}

func TestGOGC(t *testing.T) {
	old := debug.SetGCPercent(250)
	defer debug.SetGCPercent(old)
	if got := GOGC(); got != 250 {
		t.Errorf("GOGC() = %d after SetGCPercent(250)", got)
	}
	debug.SetGCPercent(-1)
	if got := GOGC(); got != -1 {
		t.Errorf("GOGC() = %d with the collector off, want -1", got)
	}
}

func TestStartWithoutFloorOrWithGOGCOff(t *testing.T) {
	if f := Start(0, 100); f != nil {
		t.Error("a zero floor started tuning")
	}
	if f := Start(1<<30, -1); f != nil {
		t.Error("GOGC off started tuning")
	}
	var f *Floor
	f.Stop() // no-op on nil
	if f.Percent() != -1 {
		t.Error("nil Floor's Percent is not -1")
	}
}
