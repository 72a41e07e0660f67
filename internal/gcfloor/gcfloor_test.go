package gcfloor

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
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
		{"nothing live: the runtime's minimum goal is the floor", 0, 0, 1024 * mb, 100, 25600},
		{"a few KB of roots: the same bound", 0, 1 << 10, 1024 * mb, 100, 25600},
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

// TestFloorHoldsCollectionsOff is what the floor is for: garbage (128 MB)
// on a heap of a few MB is many collections with GOGC 100 and none with a
// 512-MB floor, and Stop hands the process back to GOGC.
func TestFloorHoldsCollectionsOff(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	runtime.GC()
	if n := churn(256 << 20); n < 3 {
		t.Fatalf("GOGC 100 alone: %d collections for 256 MB of garbage on a small heap; the test cannot tell the floor's effect", n)
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
	if goal := read("/gc/heap/goal:bytes"); goal < floor*95/100 || goal > floor*11/10 {
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
	if n := churn(256 << 20); n < 3 {
		t.Errorf("after Stop: %d collections for 256 MB of garbage, want GOGC 100's many", n)
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

// TestFreshProcess runs the floor from a process's first instruction, as
// sipward serve does: no cycle has run, nothing is marked live. Garbage of
// four floors must still be collected, in cycles near the floor.
func TestFreshProcess(t *testing.T) {
	if os.Getenv("GCFLOOR_CHILD") == "1" {
		freshChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreshProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GCFLOOR_CHILD=1", "GOGC=100", "GOMEMLIMIT=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var cycles, peak uint64
	if _, err := fmt.Sscanf(lastLine(string(out), "fresh:"), "fresh: cycles=%d peak=%d", &cycles, &peak); err != nil {
		t.Fatalf("child printed no result: %v\n%s", err, out)
	}
	const floor = 64 << 20
	if cycles < 2 {
		t.Errorf("%d collections for 256 MB of garbage with a 64-MB floor from a fresh start, want several", cycles)
	}
	if peak > 2*floor {
		t.Errorf("heap reached %d MB with a 64-MB floor", peak>>20)
	}
}

func freshChild() {
	f := Start(64<<20, 100)
	before := read("/gc/cycles/total:gc-cycles")
	var peak uint64
	for i := 0; i < (256<<20)/4096; i++ {
		sink = make([]byte, 4096)
		if i%1024 == 0 {
			peak = max(peak, read("/gc/heap/allocs:bytes")-read("/gc/heap/frees:bytes"))
		}
	}
	fmt.Printf("fresh: cycles=%d peak=%d\n", read("/gc/cycles/total:gc-cycles")-before, peak)
	f.Stop()
}

func lastLine(out, prefix string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], prefix) {
			return lines[i]
		}
	}
	return ""
}
