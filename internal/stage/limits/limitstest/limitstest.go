// Package limitstest is the conformance suite of the limits.Channels and
// limits.Rates contracts. Every implementation runs it from its tests:
//
//	func TestConformance(t *testing.T) {
//		limitstest.Run(t,
//			func(t *testing.T, lease time.Duration) limits.Channels { return newChannels(t, lease) },
//			func(t *testing.T) limits.Rates { return newRates(t) })
//	}
//
// Time is stepped, never slept: every call gets its now from the test.
// Goroutines report failures through t.Errorf only, never t.Fatal.
package limitstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sipward/sipward/internal/stage/limits"
)

// NewChannels returns a new, empty Channels whose holds last lease, and
// registers its cleanup with t.Cleanup.
type NewChannels func(t *testing.T, lease time.Duration) limits.Channels

// NewRates returns a new, empty Rates and registers its cleanup.
type NewRates func(t *testing.T) limits.Rates

// t0 is the suite's starting time: arbitrary, far from the zero time.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// lease is the lease the suite uses unless a test needs its own.
const lease = time.Hour

// Keys of the suite.
var (
	ep1   = limits.Key{Kind: limits.Endpoint, ID: 1}
	ep2   = limits.Key{Kind: limits.Endpoint, ID: 2}
	user1 = limits.Key{Kind: limits.SIPUser, ID: 1}
	acct1 = limits.Key{Kind: limits.Account, ID: 1}
	acct2 = limits.Key{Kind: limits.Account, ID: 2}
)

// Run runs the conformance suite. Either constructor may be nil to skip
// its half.
func Run(t *testing.T, newChannels NewChannels, newRates NewRates) {
	if newChannels != nil {
		for _, tc := range []struct {
			name string
			fn   func(t *testing.T, newChannels NewChannels)
		}{
			{"Channels/Grant", testGrant},
			{"Channels/MaxUnderConcurrency", testMaxUnderConcurrency},
			{"Channels/ChurnUnderConcurrency", testChurn},
			{"Channels/AllOrNothing", testAllOrNothing},
			{"Channels/ReleaseIdempotent", testReleaseIdempotent},
			{"Channels/Held", testHeld},
			{"Channels/Empty", testEmpty},
			{"Channels/Invalid", testInvalid},
			{"Channels/Unlimited", testUnlimited},
			{"Channels/LeaseExpiry", testLeaseExpiry},
			{"Channels/Refresh", testRefresh},
			{"Channels/ReacquireExpired", testReacquireExpired},
			{"Channels/CallIDs", testCallIDs},
			{"Channels/All", testAll},
		} {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, newChannels) })
		}
	}
	if newRates != nil {
		for _, tc := range []struct {
			name string
			fn   func(t *testing.T, r limits.Rates)
		}{
			{"Rates/BurstAndRefill", testBurstAndRefill},
			{"Rates/Unlimited", testRateUnlimited},
			{"Rates/KeysIndependent", testRateKeys},
			{"Rates/Concurrent", testRateConcurrent},
			{"Rates/High", testRateHigh},
			{"Rates/Backwards", testRateBackwards},
		} {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, newRates(t)) })
		}
	}
}

// lims builds a limit list from key, max pairs.
func lims(kv ...any) []limits.Limit {
	var out []limits.Limit
	for i := 0; i < len(kv); i += 2 {
		out = append(out, limits.Limit{Key: kv[i].(limits.Key), Max: kv[i+1].(int)})
	}
	return out
}

func acquire(t *testing.T, c limits.Channels, l []limits.Limit, callID string, now time.Time) limits.Denied {
	t.Helper()
	d, err := c.Acquire(context.Background(), l, callID, now)
	if err != nil {
		t.Fatalf("Acquire(%v, %q): %v", l, callID, err)
	}
	return d
}

func mustGrant(t *testing.T, c limits.Channels, l []limits.Limit, callID string, now time.Time) {
	t.Helper()
	if d := acquire(t, c, l, callID, now); !d.Granted() {
		t.Fatalf("Acquire(%v, %q) = denied %+v, want granted", l, callID, d)
	}
}

func release(t *testing.T, c limits.Channels, callID string) {
	t.Helper()
	if err := c.Release(context.Background(), callID); err != nil {
		t.Fatalf("Release(%q): %v", callID, err)
	}
}

// wantInUse checks InUse of each key against want.
func wantInUse(t *testing.T, c limits.Channels, want map[limits.Key]int) {
	t.Helper()
	for k, w := range want {
		n, err := c.InUse(context.Background(), k)
		if err != nil {
			t.Fatalf("InUse(%v): %v", k, err)
		}
		if n != w {
			t.Errorf("InUse(%v) = %d, want %d", k, n, w)
		}
	}
}

// wantAll checks All against want (keys with InUse 0 omitted), in any order.
func wantAll(t *testing.T, c limits.Channels, want []limits.Count) {
	t.Helper()
	got, err := c.All(context.Background())
	if err != nil {
		t.Fatalf("All: %v", err)
	}
	got = slices.DeleteFunc(got, func(n limits.Count) bool { return n.InUse == 0 })
	sortCounts(got)
	want = slices.Clone(want)
	sortCounts(want)
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("All (-want +got):\n%s", diff)
	}
}

func sortCounts(s []limits.Count) {
	slices.SortFunc(s, func(a, b limits.Count) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
}

// wantZero checks that every key is back at zero and All lists nothing.
func wantZero(t *testing.T, c limits.Channels, keys ...limits.Key) {
	t.Helper()
	want := make(map[limits.Key]int, len(keys))
	for _, k := range keys {
		want[k] = 0
	}
	wantInUse(t, c, want)
	wantAll(t, c, nil)
}

func testGrant(t *testing.T, newChannels NewChannels) {
	c := newChannels(t, lease)
	l := lims(ep1, 2, acct1, 5)
	mustGrant(t, c, l, "a", t0)
	mustGrant(t, c, l, "b", t0)
	d := acquire(t, c, l, "c", t0)
	want := limits.Denied{Limit: limits.Limit{Key: ep1, Max: 2}, InUse: 2}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("third Acquire (-want +got):\n%s", diff)
	}
	wantInUse(t, c, map[limits.Key]int{ep1: 2, acct1: 2})
	release(t, c, "a")
	mustGrant(t, c, l, "c", t0)
	release(t, c, "b")
	release(t, c, "c")
	wantZero(t, c, ep1, acct1)
}

// testMaxUnderConcurrency: 50 goroutines race for 5 channels.
func testMaxUnderConcurrency(t *testing.T, newChannels NewChannels) {
	c := newChannels(t, lease)
	const n, max = 50, 5
	l := lims(ep1, max, acct1, 0)
	var granted, denied atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			d, err := c.Acquire(context.Background(), l, fmt.Sprintf("call-%d", i), t0)
			switch {
			case err != nil:
				t.Errorf("Acquire: %v", err)
			case d.Granted():
				granted.Add(1)
			default:
				denied.Add(1)
				if d.Key != ep1 || d.Max != max || d.InUse != max {
					t.Errorf("Denied = %+v, want ep1 at %d", d, max)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if granted.Load() != max || denied.Load() != n-max {
		t.Errorf("granted %d denied %d, want %d and %d", granted.Load(), denied.Load(), max, n-max)
	}
	wantInUse(t, c, map[limits.Key]int{ep1: max, acct1: max})
	for i := range n { // releasing the denied ones too must change nothing
		release(t, c, fmt.Sprintf("call-%d", i))
	}
	wantZero(t, c, ep1, acct1)
}

// testChurn: 50 goroutines acquire and release in a loop; the number of
// calls known to hold (counted after Acquire, uncounted before Release)
// never passes the max, and everything ends at zero.
func testChurn(t *testing.T, newChannels NewChannels) {
	c := newChannels(t, lease)
	const n, rounds, max = 50, 20, 3
	l := lims(user1, max, acct2, 0)
	var holding, peak, granted atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx := context.Background()
			for j := range rounds {
				id := fmt.Sprintf("churn-%d-%d", i, j)
				d, err := c.Acquire(ctx, l, id, t0)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				if !d.Granted() {
					continue
				}
				granted.Add(1)
				h := holding.Add(1)
				for {
					p := peak.Load()
					if h <= p || peak.CompareAndSwap(p, h) {
						break
					}
				}
				holding.Add(-1)
				if err := c.Release(ctx, id); err != nil {
					t.Errorf("Release: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > max {
		t.Errorf("peak holding %d, max %d", p, max)
	}
	if granted.Load() == 0 {
		t.Error("no Acquire granted")
	}
	wantZero(t, c, user1, acct2)
}

func testAllOrNothing(t *testing.T, newChannels NewChannels) {
	c := newChannels(t, lease)
	ctx := context.Background()
	mustGrant(t, c, lims(ep1, 5, acct1, 1), "a", t0)

	// The account is full: ep2 must not be taken.
	d := acquire(t, c, lims(ep2, 5, acct1, 1), "b", t0)
	if diff := cmp.Diff(limits.Denied{Limit: limits.Limit{Key: acct1, Max: 1}, InUse: 1}, d); diff != "" {
		t.Errorf("Acquire on a full account (-want +got):\n%s", diff)
	}
	wantInUse(t, c, map[limits.Key]int{ep1: 1, ep2: 0, acct1: 1})

	// Both full: the first key in order is named.
	d = acquire(t, c, lims(ep1, 1, acct1, 1), "c", t0)
	if d.Key != ep1 {
		t.Errorf("Denied names %v, want the first full key %v", d.Key, ep1)
	}
	// The endpoint full, the account not: the account is not taken.
	mustGrant(t, c, lims(ep2, 1, acct2, 3), "d", t0)
	d = acquire(t, c, lims(ep2, 1, acct2, 3), "e", t0)
	if d.Key != ep2 {
		t.Errorf("Denied names %v, want %v", d.Key, ep2)
	}
	wantInUse(t, c, map[limits.Key]int{ep2: 1, acct2: 1})
	// A denied callID holds nothing and is free to try again.
	if ok, err := c.Refresh(ctx, "e", t0); err != nil || ok {
		t.Errorf("Refresh(denied call) = %v, %v; want false", ok, err)
	}
	release(t, c, "d")
	mustGrant(t, c, lims(ep2, 1, acct2, 3), "e", t0)
	for _, id := range []string{"a", "b", "c", "e"} {
		release(t, c, id)
	}
	wantZero(t, c, ep1, ep2, acct1, acct2)
}

func testReleaseIdempotent(t *testing.T, newChannels NewChannels) {
	c := newChannels(t, lease)
	l := lims(ep1, 1, acct1, 0)
	mustGrant(t, c, l, "a", t0)
	release(t, c, "a")
	release(t, c, "a")
	release(t, c, "never-acquired")
	release(t, c, "")
	wantZero(t, c, ep1, acct1)
	// Counts did not go negative: max 1 still admits exactly one.
	mustGrant(t, c, l, "b", t0)
	if d := acquire(t, c, l, "c", t0); d.Granted() {
		t.Error("second Acquire at max 1 granted after double Release")
	}
	release(t, c, "b")
	// A released callID may acquire again.
	mustGrant(t, c, l, "a", t0)
	release(t, c, "a")
	wantZero(t, c, ep1, acct1)
}

func testHeld(t *testing.T, newChannels NewChannels) {
	c := newChannels(t, lease)
	l := lims(ep1, 5, acct1, 5)
	mustGrant(t, c, l, "a", t0)
	for _, again := range [][]limits.Limit{l, lims(ep2, 5), nil} {
		_, err := c.Acquire(context.Background(), again, "a", t0.Add(time.Second))
		if !errors.Is(err, limits.ErrHeld) {
			t.Errorf("Acquire(%v) of a holding call: err %v, want ErrHeld", again, err)
		}
	}
	wantInUse(t, c, map[limits.Key]int{ep1: 1, ep2: 0, acct1: 1})
	release(t, c, "a")
	wantZero(t, c, ep1, ep2, acct1)
}

func testEmpty(t *testing.T, newChannels NewChannels) {
	c := newChannels(t, lease)
	mustGrant(t, c, nil, "a", t0)
	mustGrant(t, c, nil, "a", t0) // nothing recorded, so not held
	if ok, err := c.Refresh(context.Background(), "a", t0); err != nil || ok {
		t.Errorf("Refresh after empty Acquire = %v, %v; want false", ok, err)
	}
	release(t, c, "a")
	wantZero(t, c)
}

func testInvalid(t *testing.T, newChannels NewChannels) {
	c := newChannels(t, lease)
	many := make([]limits.Limit, limits.MaxKeys+1)
	for i := range many {
		many[i] = limits.Limit{Key: limits.Key{Kind: limits.Endpoint, ID: int64(100 + i)}}
	}
	for _, tc := range []struct {
		name   string
		l      []limits.Limit
		callID string
	}{
		{"empty call id", lims(ep1, 1), ""},
		{"too many keys", many, "x"},
		{"duplicate key", lims(ep1, 1, ep1, 2), "x"},
		{"invalid kind", []limits.Limit{{Key: limits.Key{ID: 1}, Max: 1}}, "x"},
		{"negative max", lims(ep1, -1), "x"},
	} {
		if _, err := c.Acquire(context.Background(), tc.l, tc.callID, t0); !errors.Is(err, limits.ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", tc.name, err)
		}
	}
	wantZero(t, c, ep1, many[0].Key)
}

func testUnlimited(t *testing.T, newChannels NewChannels) {
	c := newChannels(t, lease)
	const n = 100
	l := lims(ep1, 0, acct1, 0)
	for i := range n {
		mustGrant(t, c, l, fmt.Sprintf("u-%d", i), t0)
	}
	wantInUse(t, c, map[limits.Key]int{ep1: n, acct1: n})
	wantAll(t, c, []limits.Count{{Key: ep1, InUse: n}, {Key: acct1, InUse: n}})
	for i := range n {
		release(t, c, fmt.Sprintf("u-%d", i))
	}
	wantZero(t, c, ep1, acct1)
}

// testLeaseExpiry: holds of a "crashed" holder, who never releases, end
// with their lease.
func testLeaseExpiry(t *testing.T, newChannels NewChannels) {
	ctx := context.Background()
	const lease = time.Minute
	c := newChannels(t, lease)
	l := lims(ep1, 2, acct1, 0)
	mustGrant(t, c, l, "crashed-1", t0)
	mustGrant(t, c, l, "crashed-2", t0)
	if d := acquire(t, c, l, "x", t0.Add(lease-time.Millisecond)); d.Granted() {
		t.Fatal("Acquire granted before the lease ended")
	}
	// At the expiry instant, the holds are gone for Acquire.
	mustGrant(t, c, l, "x", t0.Add(lease))
	mustGrant(t, c, l, "y", t0.Add(lease))
	if d := acquire(t, c, l, "z", t0.Add(lease)); d.Granted() {
		t.Error("third Acquire granted over expired holds")
	}
	wantInUse(t, c, map[limits.Key]int{ep1: 2})
	// An expired hold is not revived and its late Release changes nothing.
	if ok, err := c.Refresh(ctx, "crashed-1", t0.Add(lease)); err != nil || ok {
		t.Errorf("Refresh(expired) = %v, %v; want false", ok, err)
	}
	release(t, c, "crashed-2")
	wantInUse(t, c, map[limits.Key]int{ep1: 2})

	// Reap frees x and y once their lease ends, without any Acquire.
	if _, err := c.Reap(ctx, t0.Add(2*lease-time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	wantInUse(t, c, map[limits.Key]int{ep1: 2, acct1: 2})
	n, err := c.Reap(ctx, t0.Add(2*lease))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("Reap freed %d holds, want 2", n)
	}
	wantZero(t, c, ep1, acct1)
	release(t, c, "x")
	wantZero(t, c, ep1, acct1)
}

func testRefresh(t *testing.T, newChannels NewChannels) {
	ctx := context.Background()
	const lease = time.Minute
	c := newChannels(t, lease)
	l := lims(ep1, 1, acct1, 0)
	mustGrant(t, c, l, "a", t0)
	now := t0
	for range 5 { // a keepalive every 50s keeps the call for 250s
		now = now.Add(50 * time.Second)
		if ok, err := c.Refresh(ctx, "a", now); err != nil || !ok {
			t.Fatalf("Refresh at %v = %v, %v; want true", now.Sub(t0), ok, err)
		}
		if d := acquire(t, c, l, "b", now); d.Granted() {
			t.Fatalf("Acquire granted at %v over a refreshed hold", now.Sub(t0))
		}
	}
	if n, err := c.Reap(ctx, now.Add(lease-time.Millisecond)); err != nil || n != 0 {
		t.Errorf("Reap before the refreshed lease = %d, %v; want 0", n, err)
	}
	if ok, err := c.Refresh(ctx, "unknown", now); err != nil || ok {
		t.Errorf("Refresh(unknown) = %v, %v; want false", ok, err)
	}
	wantInUse(t, c, map[limits.Key]int{ep1: 1, acct1: 1})
	// Missed keepalives: the hold ends a lease after the last Refresh.
	mustGrant(t, c, l, "b", now.Add(lease))
	release(t, c, "b")
	release(t, c, "a")
	wantZero(t, c, ep1, acct1)
}

// testReacquireExpired: a callID whose hold expired may acquire again; the
// old hold is replaced, not added to.
func testReacquireExpired(t *testing.T, newChannels NewChannels) {
	const lease = time.Minute
	c := newChannels(t, lease)
	l := lims(ep1, 1, acct1, 0)
	mustGrant(t, c, l, "a", t0)
	mustGrant(t, c, lims(acct1, 0), "a", t0.Add(lease))
	wantInUse(t, c, map[limits.Key]int{ep1: 0, acct1: 1})
	release(t, c, "a")
	wantZero(t, c, ep1, acct1)
}

// testCallIDs: any non-empty string names a hold.
func testCallIDs(t *testing.T, newChannels NewChannels) {
	c := newChannels(t, lease)
	ids := []string{"a b", "x@y;z=1", "{slot}", "ünï", "*", "1 2 3:4", strings.Repeat("long", 500)}
	for _, id := range ids {
		mustGrant(t, c, lims(ep1, 0, acct1, 0), id, t0)
	}
	wantInUse(t, c, map[limits.Key]int{ep1: len(ids), acct1: len(ids)})
	for _, id := range ids {
		if ok, err := c.Refresh(context.Background(), id, t0.Add(time.Second)); err != nil || !ok {
			t.Errorf("Refresh(%.20q) = %v, %v; want true", id, ok, err)
		}
		release(t, c, id)
	}
	wantZero(t, c, ep1, acct1)
}

func testAll(t *testing.T, newChannels NewChannels) {
	c := newChannels(t, lease)
	mustGrant(t, c, lims(ep1, 0, acct1, 0), "a", t0)
	mustGrant(t, c, lims(ep2, 0, acct1, 0), "b", t0)
	mustGrant(t, c, lims(user1, 0, acct2, 0), "c", t0)
	wantAll(t, c, []limits.Count{
		{Key: ep1, InUse: 1}, {Key: ep2, InUse: 1}, {Key: user1, InUse: 1},
		{Key: acct1, InUse: 2}, {Key: acct2, InUse: 1},
	})
	release(t, c, "b")
	wantAll(t, c, []limits.Count{{Key: ep1, InUse: 1}, {Key: user1, InUse: 1}, {Key: acct1, InUse: 1}, {Key: acct2, InUse: 1}})
	release(t, c, "a")
	release(t, c, "c")
	wantZero(t, c, ep1, ep2, user1, acct1, acct2)
}

// allowN calls Allow n times at now and returns how many were allowed.
func allowN(t *testing.T, r limits.Rates, k limits.Key, perSecond, n int, now time.Time) int {
	t.Helper()
	ok := 0
	for range n {
		a, err := r.Allow(context.Background(), k, perSecond, now)
		if err != nil {
			t.Fatalf("Allow(%v, %d): %v", k, perSecond, err)
		}
		if a {
			ok++
		}
	}
	return ok
}

func testBurstAndRefill(t *testing.T, r limits.Rates) {
	const cps = 5 // one token per 200ms, burst 5
	for _, tc := range []struct {
		at   time.Duration
		n    int
		want int
	}{
		{0, 10, 5},                     // the burst, then refused
		{199 * time.Millisecond, 1, 0}, // not a whole token yet
		{200 * time.Millisecond, 3, 1}, // one token
		{time.Second, 10, 4},           // 800ms more: four
		{10 * time.Second, 10, 5},      // idle long: the burst again, no more
		{10*time.Second + 400*time.Millisecond, 10, 2},
	} {
		if got := allowN(t, r, ep1, cps, tc.n, t0.Add(tc.at)); got != tc.want {
			t.Errorf("at +%v: %d of %d allowed, want %d", tc.at, got, tc.n, tc.want)
		}
	}
}

func testRateUnlimited(t *testing.T, r limits.Rates) {
	if got := allowN(t, r, ep1, 0, 1000, t0); got != 1000 {
		t.Errorf("perSecond 0: %d of 1000 allowed", got)
	}
	if got := allowN(t, r, ep1, -1, 10, t0); got != 10 {
		t.Errorf("perSecond -1: %d of 10 allowed", got)
	}
	if _, err := r.Allow(context.Background(), limits.Key{ID: 1}, 5, t0); !errors.Is(err, limits.ErrInvalid) {
		t.Errorf("Allow(invalid kind): err %v, want ErrInvalid", err)
	}
	// Unlimited calls took no tokens.
	if got := allowN(t, r, ep1, 2, 5, t0); got != 2 {
		t.Errorf("perSecond 2 after unlimited calls: %d allowed, want 2", got)
	}
}

func testRateKeys(t *testing.T, r limits.Rates) {
	if got := allowN(t, r, ep1, 1, 3, t0); got != 1 {
		t.Errorf("ep1: %d allowed, want 1", got)
	}
	for _, k := range []limits.Key{ep2, user1, acct1, {Kind: limits.SIPUser, ID: ep2.ID}} {
		if got := allowN(t, r, k, 1, 3, t0); got != 1 {
			t.Errorf("%v after ep1 ran out: %d allowed, want 1", k, got)
		}
	}
}

func testRateConcurrent(t *testing.T, r limits.Rates) {
	const n, cps = 50, 10
	var allowed atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			ok, err := r.Allow(context.Background(), user1, cps, t0)
			if err != nil {
				t.Errorf("Allow: %v", err)
				return
			}
			if ok {
				allowed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := allowed.Load(); got != cps {
		t.Errorf("%d of %d concurrent calls allowed, want %d", got, n, cps)
	}
}

// testRateHigh: a rate above 1000/s works below the millisecond.
func testRateHigh(t *testing.T, r limits.Rates) {
	const cps = 2000 // one token per 500µs
	if got := allowN(t, r, ep2, cps, cps+10, t0); got != cps {
		t.Errorf("burst: %d allowed, want %d", got, cps)
	}
	if got := allowN(t, r, ep2, cps, 5, t0.Add(time.Millisecond)); got != 2 {
		t.Errorf("after 1ms: %d allowed, want 2", got)
	}
}

// testRateBackwards: a now earlier than one already seen refills nothing.
func testRateBackwards(t *testing.T, r limits.Rates) {
	if got := allowN(t, r, acct2, 3, 5, t0.Add(time.Minute)); got != 3 {
		t.Fatalf("burst: %d allowed, want 3", got)
	}
	if got := allowN(t, r, acct2, 3, 5, t0); got != 0 {
		t.Errorf("earlier now: %d allowed, want 0", got)
	}
}
