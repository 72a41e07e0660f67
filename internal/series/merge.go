package series

import "time"

// Merge sums the views of several nodes, computed for the same query at the
// same time, into one: totals, refusals by kind, sources (the first
// TopSources kept, the rest counted in OtherSources), accounts and charts.
// Live figures (ActiveCalls, Registered) and the nodes' lists are summed
// and joined too. A source is exact when every node listed it (each sends
// PeerSources).
func Merge(views ...View) View {
	if len(views) == 0 {
		return View{}
	}
	out := views[0]
	out.Rejects = append([]Reject{}, out.Rejects...)
	out.Accounts = append([]Account{}, out.Accounts...)
	out.TopSources = append([]Source{}, out.TopSources...)
	out.Nodes, out.MissingNodes = append([]string(nil), out.Nodes...), append([]string(nil), out.MissingNodes...)
	out.Hour, out.Day = cloneChart(out.Hour), cloneChart(out.Day)
	for _, v := range views[1:] {
		out.ActiveCalls += v.ActiveCalls
		out.Registered += v.Registered
		out.CPS += v.CPS
		out.Totals = addTotals(out.Totals, v.Totals)
		out.Rejects = mergeRejects(out.Rejects, v.Rejects)
		out.TopSources = append(out.TopSources, v.TopSources...)
		out.OtherSources += v.OtherSources
		out.Accounts = mergeAccounts(out.Accounts, v.Accounts)
		addChart(&out.Hour, v.Hour)
		addChart(&out.Day, v.Day)
		out.Nodes = append(out.Nodes, v.Nodes...)
		out.MissingNodes = append(out.MissingNodes, v.MissingNodes...)
	}
	out.TopSources, out.OtherSources = topSources(sumSources(out.TopSources), TopSources, out.OtherSources)
	sortRejects(out.Rejects)
	sortAccounts(out.Accounts)
	return out
}

func addTotals(a, b Totals) Totals {
	return Totals{Calls: a.Calls + b.Calls, Rejected: a.Rejected + b.Rejected, Challenges: a.Challenges + b.Challenges,
		Registrations: a.Registrations + b.Registrations, RegisterRejects: a.RegisterRejects + b.RegisterRejects,
		Bans: a.Bans + b.Bans}
}

func mergeRejects(into, add []Reject) []Reject {
	type key struct {
		method, stage string
		status        int
		reason        string
	}
	at := map[key]int{}
	for i, r := range into {
		at[key{r.Method, r.Stage, r.Status, r.Reason}] = i
	}
	for _, r := range add {
		if i, ok := at[key{r.Method, r.Stage, r.Status, r.Reason}]; ok {
			into[i].Count += r.Count
		} else {
			into = append(into, r)
		}
	}
	return into
}

func sumSources(ss []Source) []Source {
	at := map[string]int{}
	out := ss[:0:0]
	for _, s := range ss {
		if i, ok := at[s.Source]; ok {
			out[i].Count += s.Count
			continue
		}
		at[s.Source] = len(out)
		out = append(out, s)
	}
	return out
}

func mergeAccounts(into, add []Account) []Account {
	at := map[int64]int{}
	for i, a := range into {
		at[a.ID] = i
	}
	for _, a := range add {
		i, ok := at[a.ID]
		if !ok {
			at[a.ID] = len(into)
			into = append(into, a)
			continue
		}
		b := &into[i]
		b.Calls += a.Calls
		b.Rejected += a.Rejected
		b.Challenges += a.Challenges
		b.Registrations += a.Registrations
		b.RegisterRejects += a.RegisterRejects
		if b.Name == "" {
			b.Name = a.Name
		}
	}
	return into
}

func cloneChart(c Chart) Chart {
	lines := make([]Line, len(c.Lines))
	for i, l := range c.Lines {
		lines[i] = Line{Name: l.Name, Values: append([]int64(nil), l.Values...)}
	}
	c.Lines = lines
	return c
}

// addChart adds add's values to c's, line by line by name and step by step
// by time (a step of add outside c is dropped).
func addChart(c *Chart, add Chart) {
	if c.Step <= 0 || add.Step != c.Step {
		return
	}
	shift := int(add.Start.Sub(c.Start) / c.Step)
	for _, al := range add.Lines {
		for i := range c.Lines {
			if c.Lines[i].Name != al.Name {
				continue
			}
			vs := c.Lines[i].Values
			for j, x := range al.Values {
				if t := j + shift; t >= 0 && t < len(vs) {
					vs[t] += x
				}
			}
		}
	}
}

// MergeLatency merges the latency points of several nodes (a SIP user
// may have been pinged by more than one): points of the same time are one,
// with the smallest minimum, the largest maximum and the mean weighted by
// count.
func MergeLatency(lists ...[]LatencyPoint) []LatencyPoint {
	byTime := map[time.Time]int{}
	var out []LatencyPoint
	for _, l := range lists {
		for _, p := range l {
			i, ok := byTime[p.Time]
			if !ok {
				byTime[p.Time] = len(out)
				out = append(out, p)
				continue
			}
			q := &out[i]
			n := q.Count + p.Count
			q.AvgMS = (q.AvgMS*float64(q.Count) + p.AvgMS*float64(p.Count)) / float64(n)
			q.MinMS, q.MaxMS, q.Count = min(q.MinMS, p.MinMS), max(q.MaxMS, p.MaxMS), n
		}
	}
	sortPoints(out)
	return out
}
