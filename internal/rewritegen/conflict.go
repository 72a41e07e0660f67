package rewritegen

import "slices"

const (
	seedTries    = 8  // first examples tried as the seed of each group
	seedTriesBig = 40 // remaining examples above which only one seed is tried
	maxPairTries = 64 // earlier examples checked against a group's first
)

// conflict partitions the examples greedily into groups that one rule each
// maps, largest group first, and names examples that disagree.
func conflict(in *input) *ConflictError {
	remaining := make([]int, len(in.examples))
	for i := range remaining {
		remaining[i] = i
	}
	var groups [][]int
	var plans []plan
	for len(remaining) > 0 {
		tries := min(len(remaining), seedTries)
		if len(remaining) > seedTriesBig {
			tries = 1
		}
		var members []int
		var p plan
		for _, seed := range remaining[:tries] {
			m, q := in.grow(seed, remaining)
			if len(m) > len(members) {
				members, p = m, q
			}
		}
		groups, plans = append(groups, members), append(plans, p)
		remaining = slices.DeleteFunc(remaining, func(i int) bool { return slices.Contains(members, i) })
	}
	return in.conflictError(groups, plans)
}

// grow builds a group from seed, adding each example of pool (in order) that
// a rule can still map together with the group, and returns the members
// (ascending) with the group's rule.
func (in *input) grow(seed int, pool []int) ([]int, plan) {
	members := []int{seed}
	set := []Example{in.examples[seed]}
	viable := feasible(seedShapes(in.examples[seed]), set, in.unchanged)
	for _, i := range pool {
		if i == seed {
			continue
		}
		next := extendAll(viable, in.examples[i])
		if len(next) == 0 {
			continue
		}
		try := append(slices.Clip(set), in.examples[i])
		if next = feasible(next, try, in.unchanged); len(next) > 0 {
			members, set, viable = append(members, i), try, next
		}
	}
	if p, _, ok := best(viable, set, in); ok {
		slices.Sort(members)
		return members, p
	}
	// Not reached: the seed alone always has a rule (its exact input).
	p, _, _ := best(seedShapes(in.examples[seed]), set[:1], in)
	return []int{seed}, p
}

// compatible reports whether one rule maps examples a and b.
func (in *input) compatible(a, b int) bool {
	ex := []Example{in.examples[a], in.examples[b]}
	return len(feasible(extendAll(seedShapes(ex[0]), ex[1]), ex, in.unchanged)) > 0
}

func (in *input) conflictError(groups [][]int, plans []plan) *ConflictError {
	ce := &ConflictError{}
	for g, members := range groups {
		var ex []Example
		for _, i := range members {
			ex = append(ex, in.examples[i])
		}
		if g == 0 {
			ex = in.withIdentity(members)
		}
		ce.Groups = append(ce.Groups, Group{Examples: ex, Rule: plans[g].rule(), Explanation: plans[g].explain()})
		if g == 0 {
			continue
		}
		if a, ok := in.disagreeing(groups[:g], members[0]); ok {
			ce.Disagree = append(ce.Disagree, Pair{
				A: in.index[a], B: in.index[members[0]],
				InputA: in.examples[a].Input, InputB: in.examples[members[0]].Input,
			})
		}
	}
	return ce
}

// disagreeing returns an example of the earlier groups (their first
// examples tried first) that no rule maps together with example b.
func (in *input) disagreeing(earlier [][]int, b int) (int, bool) {
	tries := 0
	for pass := range 2 {
		for _, g := range earlier {
			for k, a := range g {
				if (pass == 0) != (k == 0) {
					continue
				}
				if tries++; tries > maxPairTries {
					return 0, false
				}
				if !in.compatible(a, b) {
					return a, true
				}
			}
		}
	}
	return 0, false
}

// withIdentity returns the examples of members and the examples that change
// nothing, in request order.
func (in *input) withIdentity(members []int) []Example {
	idx := slices.Clone(in.identity)
	for _, i := range members {
		idx = append(idx, in.index[i])
	}
	slices.Sort(idx)
	ex := make([]Example, len(idx))
	for k, i := range idx {
		ex[k] = in.all[i]
	}
	return ex
}
