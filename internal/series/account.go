package series

import "time"

// An account's series: 10-second steps for the last hour (the Hour chart,
// windows up to an hour) and 5-minute steps for the day (the Day chart,
// longer windows).
const (
	dayStep     = 5 * time.Minute
	hourSlots   = int(time.Hour / Bucket) // 360
	daySlots    = int(Span / dayStep)     // 288
	nAccountCnt = cBans                   // an account's counters: all but bans
)

type account struct {
	last   time.Time // its last event, for forgetting it after Span
	fine   [hourSlots]acctBucket
	coarse [daySlots]acctBucket
}

// acctBucket is one step of an account: k is the step+1 it holds (0: never
// used; a step index fits 32 bits until 2106).
type acctBucket struct {
	k uint32
	c [nAccountCnt]uint32
}

// at returns the bucket of step k in ring, emptied if it held an older one.
func at(ring []acctBucket, k int64) *acctBucket {
	b := &ring[k%int64(len(ring))]
	if b.k != uint32(k+1) {
		*b = acctBucket{k: uint32(k + 1)}
	}
	return b
}

// account returns the series of account id, made at its first event.
func (r *Recorder) account(id int64) *account {
	a := r.accounts[id]
	if a == nil {
		a = new(account)
		r.accounts[id] = a
	}
	return a
}

func (a *account) add(c int, now time.Time) {
	a.last = now
	if c >= nAccountCnt {
		return
	}
	at(a.fine[:], step(now, Bucket)).c[c]++
	at(a.coarse[:], step(now, dayStep)).c[c]++
}

// sum adds the counters of steps (k-n, k] of ring (step d) to into; steps
// that fell out of the ring count nothing.
func sum(ring []acctBucket, k int64, n int, into *[nAccountCnt]int64) {
	for i := k - int64(n) + 1; i <= k; i++ {
		b := &ring[i%int64(len(ring))]
		if i < 0 || b.k != uint32(i+1) {
			continue
		}
		for c, v := range b.c {
			into[c] += int64(v)
		}
	}
}
