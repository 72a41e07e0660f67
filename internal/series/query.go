package series

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// TopSources is how many refused sources a dashboard view lists;
// PeerSources how many each node sends to the merge (so that a source
// refused on several nodes, below any one node's first TopSources, still
// ranks close to its true place).
const (
	TopSources  = 10
	PeerSources = 100
)

// lineNames name the chart lines, in counter order.
var lineNames = [nCounters]string{"calls", "rejected", "challenges", "registrations", "register_rejects", "bans"}

// CheckWindow returns the window q selects (DefaultWindow for 0), or an
// error when it is outside 1 minute..Span.
func (q Query) CheckWindow() (time.Duration, error) {
	w := q.Window
	if w == 0 {
		return DefaultWindow, nil
	}
	if w < time.Minute || w > Span {
		return 0, fmt.Errorf("window %s is outside 1m..24h", w)
	}
	return w, nil
}

// View returns this node's view for q at now, listing at most top refused
// sources. ActiveCalls and Registered are left 0 (the live state is not
// kept here); the account names are left empty (the store has them).
func (r *Recorder) View(q Query, now time.Time, top int) (View, error) {
	w, err := q.CheckWindow()
	if err != nil {
		return View{}, err
	}
	v := View{Now: now, Window: w, AccountID: q.AccountID}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := step(now, Bucket)
	n := int((w + Bucket - 1) / Bucket)
	r.nodeCounts(&v, q.AccountID, k, n, top)
	if q.AccountID == 0 {
		v.Totals = r.totals(k, n)
		v.CPS = float64(r.totals(k, 6).Calls) / 60
		v.Accounts = r.accountRows(now, w)
		v.Hour, v.Day = r.nodeCharts(now)
	} else {
		r.accountView(&v, now, w)
	}
	return v, nil
}

// totals sums the node counters of steps (k-n, k].
func (r *Recorder) totals(k int64, n int) Totals {
	var s [nCounters]int64
	for i := k - int64(n) + 1; i <= k; i++ {
		if b := &r.ring[i%int64(slots)]; b.k == i+1 {
			for c, x := range b.c {
				s[c] += int64(x)
			}
		}
	}
	return Totals{Calls: s[cCalls], Rejected: s[cRejected], Challenges: s[cChallenges],
		Registrations: s[cRegistrations], RegisterRejects: s[cRegisterRejects], Bans: s[cBans]}
}

// nodeCounts fills v's refusals by kind and its top sources from the node
// buckets of steps (k-n, k], of every account (0) or of one.
func (r *Recorder) nodeCounts(v *View, accountID, k int64, n, top int) {
	var kinds [MaxKinds]int64
	srcs := map[netip.Addr]int64{}
	for i := k - int64(n) + 1; i <= k; i++ {
		b := &r.ring[i%int64(slots)]
		if b.k != i+1 {
			continue
		}
		for _, e := range b.kinds {
			if accountID == 0 || e.account == accountID {
				kinds[e.kind] += int64(e.n)
			}
		}
		for _, e := range b.srcs {
			if accountID == 0 || e.account == accountID {
				srcs[e.addr] += int64(e.n)
			}
		}
		if accountID == 0 {
			v.OtherSources += int64(b.srcOther)
		}
	}
	v.Rejects = []Reject{}
	for id, c := range kinds {
		if c > 0 {
			key := r.kinds.keys[id]
			v.Rejects = append(v.Rejects, Reject{Method: key.method, Stage: key.stage, Status: key.status, Reason: key.reason, Count: c})
		}
	}
	sortRejects(v.Rejects)
	v.TopSources = []Source{}
	for a, c := range srcs {
		v.TopSources = append(v.TopSources, Source{Source: a.String(), Count: c})
	}
	v.TopSources, v.OtherSources = topSources(v.TopSources, top, v.OtherSources)
}

func sortRejects(rs []Reject) {
	slices.SortFunc(rs, func(a, b Reject) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Method, b.Method), cmp.Compare(a.Stage, b.Stage),
			cmp.Compare(a.Status, b.Status), cmp.Compare(a.Reason, b.Reason))
	})
}

// topSources sorts ss by count, keeps the first top and adds the others'
// counts to other.
func topSources(ss []Source, top int, other int64) ([]Source, int64) {
	slices.SortFunc(ss, func(a, b Source) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Source, b.Source)) })
	if len(ss) > top {
		for _, s := range ss[top:] {
			other += s.Count
		}
		ss = ss[:top]
	}
	return ss, other
}

// accountSums returns an account's counters over w before now: from its
// 10-second steps up to an hour, else from its 5-minute steps (so a window
// longer than an hour may take in up to 5 minutes more at its far end).
func (a *account) sums(now time.Time, w time.Duration) [nAccountCnt]int64 {
	var s [nAccountCnt]int64
	if w <= time.Hour {
		sum(a.fine[:], step(now, Bucket), int((w+Bucket-1)/Bucket), &s)
	} else {
		sum(a.coarse[:], step(now, dayStep), int((w+dayStep-1)/dayStep), &s)
	}
	return s
}

// accountRows lists the accounts with traffic in w before now, by calls.
func (r *Recorder) accountRows(now time.Time, w time.Duration) []Account {
	rows := []Account{}
	for id, a := range r.accounts {
		if now.Sub(a.last) > w+dayStep {
			continue // nothing in the window
		}
		s := a.sums(now, w)
		if s != ([nAccountCnt]int64{}) {
			rows = append(rows, accountRow(id, s))
		}
	}
	sortAccounts(rows)
	return rows
}

func accountRow(id int64, s [nAccountCnt]int64) Account {
	return Account{ID: id, Calls: s[cCalls], Rejected: s[cRejected], Challenges: s[cChallenges],
		Registrations: s[cRegistrations], RegisterRejects: s[cRegisterRejects]}
}

func sortAccounts(rows []Account) {
	slices.SortFunc(rows, func(a, b Account) int { return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.ID, b.ID)) })
}

// accountView fills v with one account's counts and charts.
func (r *Recorder) accountView(v *View, now time.Time, w time.Duration) {
	v.Accounts = []Account{{ID: v.AccountID}}
	v.Hour, v.Day = emptyChart(now, Bucket, hourSlots, nAccountCnt), emptyChart(now, dayStep, daySlots, nAccountCnt)
	a := r.accounts[v.AccountID]
	if a == nil {
		return
	}
	s := a.sums(now, w)
	v.Totals = Totals{Calls: s[cCalls], Rejected: s[cRejected], Challenges: s[cChallenges],
		Registrations: s[cRegistrations], RegisterRejects: s[cRegisterRejects]}
	v.Accounts[0] = accountRow(v.AccountID, s)
	var last [nAccountCnt]int64
	sum(a.fine[:], step(now, Bucket), 6, &last)
	v.CPS = float64(last[cCalls]) / 60
	fillChart(&v.Hour, a.fine[:], step(now, Bucket))
	fillChart(&v.Day, a.coarse[:], step(now, dayStep))
}

// emptyChart returns a chart of n steps of d ending with the one holding
// now, with lines zeroed lines.
func emptyChart(now time.Time, d time.Duration, n, lines int) Chart {
	k := step(now, d)
	c := Chart{Start: time.Unix(0, (k-int64(n)+1)*int64(d)).UTC(), Step: d, Lines: make([]Line, lines)}
	for i := range c.Lines {
		c.Lines[i] = Line{Name: lineNames[i], Values: make([]int64, n)}
	}
	return c
}

// fillChart sets c's values from ring, whose step k is c's last.
func fillChart(c *Chart, ring []acctBucket, k int64) {
	n := len(c.Lines[0].Values)
	for j := range n {
		i := k - int64(n) + 1 + int64(j)
		b := &ring[i%int64(len(ring))]
		if i < 0 || b.k != uint32(i+1) {
			continue
		}
		for l := range c.Lines {
			c.Lines[l].Values[j] = int64(b.c[l])
		}
	}
}

// nodeCharts returns the node's Hour and Day charts at now.
func (r *Recorder) nodeCharts(now time.Time) (Chart, Chart) {
	hour, day := emptyChart(now, Bucket, hourSlots, nCounters), emptyChart(now, dayStep, daySlots, nCounters)
	k := step(now, Bucket)
	dayStart := step(day.Start, Bucket)
	per := int64(dayStep / Bucket)
	for i := max(dayStart, k-int64(slots)+1); i <= k; i++ {
		b := &r.ring[i%int64(slots)]
		if b.k != i+1 {
			continue
		}
		h := int(i - (k - int64(hourSlots) + 1))
		for l := range nCounters {
			day.Lines[l].Values[(i-dayStart)/per] += int64(b.c[l])
			if h >= 0 {
				hour.Lines[l].Values[h] = int64(b.c[l])
			}
		}
	}
	return hour, day
}
