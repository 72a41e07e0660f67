package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// threeNodes starts three nodes sharing a SQLite file and the test Redis,
// in front of core, with extra flags.
func threeNodes(t *testing.T, core *uas, extra ...string) []*node {
	t.Helper()
	return clusterNodes(t, 3, testRedis(t), append([]string{"--upstream", "sip:" + core.addr}, extra...)...)
}

// spread runs one SIPp customer switch per node at once, all from src (the
// endpoint's address), each at rate calls/s for calls calls held hold, to
// service; it waits for all of them.
func spread(t *testing.T, ns []*node, src, service string, rate, calls int, hold time.Duration) {
	t.Helper()
	runs := make([]*sippRun, len(ns))
	for i, n := range ns {
		runs[i] = startSIPp(t, time.Minute, "uac_hold.xml", "-i", src, "-p", fmt.Sprint(freePort(t, src)),
			"-s", service, "-r", fmt.Sprint(rate), "-m", fmt.Sprint(calls), "-d", fmt.Sprint(hold.Milliseconds()),
			"-l", "1000", "-recv_timeout", "10000", n.SIP)
	}
	for _, r := range runs {
		r.wait(t)
	}
}

// coreSaw returns the arrival times of the INVITEs the core got for service.
func (u *uas) coreSaw(service string) []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []time.Time
	for i, r := range u.invites {
		if r.Recipient.User == service {
			out = append(out, u.arrived[i])
		}
	}
	return out
}

// TestThreeNodesUnderLoad: three nodes sharing Redis, SIPp switches
// calling through all three at once. An endpoint of 10 channels never has
// more than 10 calls up at the core; an endpoint of 20 CPS gets 20 calls a
// second through the cluster (within 10 %), not 20 per node; a
// configuration change is in force on every node within a second; and a
// node killed mid-call gives its channels back within the lease.
func TestThreeNodesUnderLoad(t *testing.T) {
	sippBin(t)
	core := newUAS(t, "127.0.0.1")
	const lease = 3 * time.Second
	ns := threeNodes(t, core, "--channel-lease", lease.String(), "--firewall-rate", "-1")
	a := ns[0]
	acc := id(a.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	a.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "channels": 10})
	a.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.3", "cps": 20})
	for _, n := range ns {
		waitSnapshot(t, n)
	}

	t.Run("channels", func(t *testing.T) {
		// 3 × 8 calls/s held 2 s ask for ~48 at once; 10 may be up.
		spread(t, ns, "127.0.0.2", "442070000010", 8, 40, 2*time.Second)
		core.mu.Lock()
		peak := core.peak
		core.mu.Unlock()
		got := len(core.coreSaw("442070000010"))
		t.Logf("channels: 120 calls offered through 3 nodes, %d reached the core, at most %d up at once (limit 10)", got, peak)
		if peak > 10 {
			t.Errorf("%d calls up at the core at once; the endpoint has 10 channels", peak)
		}
		if peak < 8 {
			t.Errorf("only %d calls up at once under an offered load of ~48: the limit refuses too much", peak)
		}
	})
	for _, n := range ns {
		n.waitIdle(t)
	}

	t.Run("cps", func(t *testing.T) {
		// 3 × 15 calls/s for 4 s offer 45/s; the cluster lets 20/s through
		// (after the bucket's first second of burst).
		spread(t, ns, "127.0.0.3", "442070000020", 15, 60, 100*time.Millisecond)
		at := core.coreSaw("442070000020")
		if len(at) < 2 {
			t.Fatalf("%d calls reached the core", len(at))
		}
		first, last := at[0], at[len(at)-1]
		var steady int
		for _, x := range at {
			if x.Sub(first) >= time.Second {
				steady++
			}
		}
		span := last.Sub(first) - time.Second
		rate := float64(steady) / span.Seconds()
		t.Logf("cps: 180 calls offered at 45/s through 3 nodes; %d reached the core, %.1f/s after the first second (limit 20)", len(at), rate)
		if rate < 18 || rate > 22 {
			t.Errorf("accepted %.1f calls/s through the cluster, want 20 ± 10 %%", rate)
		}
	})

	t.Run("config change reaches every node within a second", func(t *testing.T) {
		for i := range 3 {
			addr := fmt.Sprintf("127.0.0.%d", 20+i)
			start := time.Now()
			a.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": addr})
			var wg sync.WaitGroup
			took := make([]time.Duration, len(ns))
			for j, n := range ns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					waitSnapshot(t, n)
					took[j] = time.Since(start)
				}()
			}
			wg.Wait()
			slowest := max(took[0], took[1], took[2])
			t.Logf("endpoint %s in force on the three nodes after %v", addr, strings.Trim(fmt.Sprint(took), "[]"))
			if slowest > 1500*time.Millisecond { // the mark is 1 s; the margin is for a busy machine
				t.Errorf("endpoint %s: a node took %v to serve it", addr, slowest)
			}
			if st, reason := placeCall(t, ns[2], addr, "441234567890", "442071234567"); st != 200 {
				t.Errorf("call from the new endpoint %s through node C: %d %s", addr, st, reason)
			}
		}
	})

	t.Run("a killed node's channels come back within the lease", func(t *testing.T) {
		for _, n := range ns {
			n.waitIdle(t)
		}
		// Ten calls up, spread over the nodes; the third node holds some.
		var onC int
		for i := range 10 {
			n := ns[i%3]
			holdCall(t, n, "127.0.0.2")
			if n == ns[2] {
				onC++
			}
		}
		if st, _ := placeCall(t, a, "127.0.0.2", "441234567890", "442071234567"); st != 503 {
			t.Fatalf("an eleventh call: %d, want 503", st)
		}
		c := ns[2]
		c.cmd.Process.Kill()
		<-c.exited
		killed := time.Now()
		var back int
		for back < onC && time.Since(killed) < 3*lease {
			if st, _ := placeCall(t, a, "127.0.0.2", "441234567890", "442071234567"); st == 200 {
				back++
				continue
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("node C (killed) held %d channels; %d came back within %v (lease %v)", onC, back, time.Since(killed).Round(100*time.Millisecond), lease)
		if back < onC {
			t.Errorf("%d of node C's %d channels came back within 3 leases", back, onC)
		}
	})
}
