package rewritegen

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/sipward/sipward/internal/paramrewrite"
)

const (
	maxAlternatives = 3 // prefixes one rule may strip ("+ or 00")
	minKeep         = 4 // fewest digits a keep-the-last-k rule keeps
)

// shape is the skeleton of a rule: strip one of strips from the front of the
// number and put add there, keeping the rest; or, when keep > 0, keep the
// last keep digits and put add in front of them.
type shape struct {
	strips []string // ordered as the regex alternation tries them
	add    string
	keep   int
}

// seedShapes lists every shape that maps e, shortest strip first.
func seedShapes(e Example) []shape {
	var out []shape
	for j := 0; j <= len(e.Output); j++ {
		add, rest := e.Output[:j], e.Output[j:]
		if !strings.HasSuffix(e.Input, rest) {
			continue
		}
		out = append(out, shape{strips: []string{e.Input[:len(e.Input)-len(rest)]}, add: add})
		if len(rest) >= minKeep && allDigits(rest) {
			out = append(out, shape{keep: len(rest), add: add})
		}
	}
	return out
}

// strip returns what s removes from e's input and the rest it keeps, or
// ok=false when no shape with s's add and keep maps e.
func (s shape) strip(e Example) (strip, rest string, ok bool) {
	if !strings.HasPrefix(e.Output, s.add) {
		return "", "", false
	}
	rest = e.Output[len(s.add):]
	if !strings.HasSuffix(e.Input, rest) {
		return "", "", false
	}
	if s.keep > 0 && (len(rest) != s.keep || !allDigits(rest)) {
		return "", "", false
	}
	return e.Input[:len(e.Input)-len(rest)], rest, true
}

// extend returns s widened to also map e (one more prefix to strip), or
// ok=false when it cannot.
func (s shape) extend(e Example) (shape, bool) {
	strip, _, ok := s.strip(e)
	switch {
	case !ok:
		return s, false
	case s.keep > 0 || slices.Contains(s.strips, strip):
		return s, true
	case strip == "" || s.strips[0] == "" || len(s.strips) == maxAlternatives:
		// An empty alternative would match every number.
		return s, false
	}
	n := shape{strips: append(slices.Clone(s.strips), strip), add: s.add}
	sortAlternatives(n.strips)
	return n, true
}

func extendAll(shapes []shape, e Example) []shape {
	var out []shape
	for _, s := range shapes {
		if n, ok := s.extend(e); ok {
			out = append(out, n)
		}
	}
	return out
}

// sortAlternatives orders prefixes lexically, except that a prefix comes
// after its extensions ("00" before "0"): the regex alternation tries them in
// order, so the longest one a number has is the one stripped.
func sortAlternatives(a []string) {
	slices.SortFunc(a, func(x, y string) int { return strings.Compare(x+"\xff", y+"\xff") })
}

// compareShapes orders shapes from the simplest: stripping before keeping
// the last digits, fewer prefixes to strip, shorter ones, a shorter add.
func compareShapes(a, b shape) int {
	if ak, bk := a.keep > 0, b.keep > 0; ak != bk {
		if ak {
			return 1
		}
		return -1
	}
	sum := func(s []string) (n int) {
		for _, x := range s {
			n += len(x)
		}
		return n
	}
	return cmp.Or(
		cmp.Compare(len(a.strips), len(b.strips)),
		cmp.Compare(sum(a.strips), sum(b.strips)),
		cmp.Compare(len(a.add), len(b.add)),
		slices.Compare(a.strips, b.strips),
		strings.Compare(a.add, b.add),
		cmp.Compare(a.keep, b.keep),
	)
}

// best returns the first shape and level, in order of generality, whose rule
// maps ex, matches no unchanged input, is valid and passes paramrewrite.
func best(shapes []shape, ex []Example, in *input) (plan, *paramrewrite.Rules, bool) {
	shapes = slices.Clone(shapes)
	slices.SortStableFunc(shapes, compareShapes)
	for _, s := range shapes {
		for _, lv := range s.levels(len(in.unchanged) > 0) {
			p, ok := newPlan(s, lv, ex)
			if !ok || !p.fits(ex, in.unchanged) {
				continue
			}
			r := p.rule()
			if !validRule(r) {
				continue
			}
			if rs, ok := verify(r, in.typ, ex, in.unchanged); ok {
				return p, rs, true
			}
		}
	}
	return plan{}, nil, false
}

// feasible keeps the shapes with a level whose rule maps ex and matches no
// unchanged input (checked natively; best verifies with paramrewrite).
func feasible(shapes []shape, ex []Example, unchanged []string) []shape {
	var out []shape
	for _, s := range shapes {
		for _, lv := range s.levels(len(unchanged) > 0) {
			if p, ok := newPlan(s, lv, ex); ok && p.fits(ex, unchanged) && validRule(p.rule()) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// level is how a rule of a shape is fenced in, from the most general.
type level uint8

const (
	lvPrefix       level = iota // a plain prefix rule
	lvDigits                    // regex: only digits follow the prefix
	lvFirst1                    // the first digit after the prefix is 1-9
	lvFirst2                    // ... is 2-9
	lvLength                    // as many digits follow as in the examples
	lvFirst1Length              // lvFirst1 and lvLength
	lvFirst2Length              // lvFirst2 and lvLength
	lvKeep                      // keep the last digits
)

var (
	regexLevels  = []level{lvDigits, lvFirst1, lvFirst2, lvLength, lvFirst1Length, lvFirst2Length}
	prefixLevels = append([]level{lvPrefix}, regexLevels...)
	keepLevels   = []level{lvKeep}
)

// levels lists the levels to try for s. A prefix rule that matches every
// number (empty Match) is tried only when no input must stay unchanged.
func (s shape) levels(hasUnchanged bool) []level {
	switch {
	case s.keep > 0:
		return keepLevels
	case len(s.strips) == 1 && (s.strips[0] != "" || !hasUnchanged):
		return prefixLevels
	}
	return regexLevels
}

// plan is a shape fenced in at a level, with what the examples show of the
// rest of the number after the stripped prefix.
type plan struct {
	shape
	lv       level
	min, max int  // shortest and longest rest
	digits   bool // every rest is digits only
}

// newPlan fences s in at lv for ex (which s maps), or ok=false when lv does
// not suit ex (a digit class some example's rest does not start with).
func newPlan(s shape, lv level, ex []Example) (plan, bool) {
	p := plan{shape: s, lv: lv, min: maxNumber + 1, digits: true}
	lo := p.class()
	for _, e := range ex {
		if !strings.HasPrefix(e.Output, s.add) {
			return p, false
		}
		rest := e.Output[len(s.add):]
		p.min, p.max = min(p.min, len(rest)), max(p.max, len(rest))
		p.digits = p.digits && allDigits(rest)
		if lo != 0 && (rest == "" || rest[0] < lo || rest[0] > '9') {
			return p, false
		}
	}
	return p, lo == 0 || p.digits
}

// class returns the lowest first digit lv allows after the prefix, or 0.
func (p *plan) class() byte {
	switch p.lv {
	case lvFirst1, lvFirst1Length:
		return '1'
	case lvFirst2, lvFirst2Length:
		return '2'
	}
	return 0
}

func (p *plan) hasLength() bool {
	return p.lv == lvLength || p.lv == lvFirst1Length || p.lv == lvFirst2Length
}

// apply is what the plan's rule does to in, mirroring paramrewrite.
func (p *plan) apply(in string) (string, bool) {
	switch p.lv {
	case lvPrefix:
		if !strings.HasPrefix(in, p.strips[0]) {
			return in, false
		}
		return p.add + in[len(p.strips[0]):], true
	case lvKeep:
		if len(in) < p.keep || !allDigits(in[len(in)-p.keep:]) {
			return in, false
		}
		return p.add + in[len(in)-p.keep:], true
	}
	for _, s := range p.strips {
		if strings.HasPrefix(in, s) && p.restOK(in[len(s):]) {
			return p.add + in[len(s):], true
		}
	}
	return in, false
}

// restOK reports whether the regex's group matches all of r.
func (p *plan) restOK(r string) bool {
	if p.digits && !allDigits(r) {
		return false
	}
	if p.hasLength() && (len(r) < p.min || len(r) > p.max) {
		return false
	}
	if lo := p.class(); lo != 0 {
		return r != "" && r[0] >= lo
	}
	return r != "" || p.min == 0 || p.hasLength()
}

// fits reports whether the plan maps every example and matches no
// unchanged input.
func (p *plan) fits(ex []Example, unchanged []string) bool {
	for _, e := range ex {
		if out, ok := p.apply(e.Input); !ok || out != e.Output {
			return false
		}
	}
	for _, u := range unchanged {
		if _, ok := p.apply(u); ok {
			return false
		}
	}
	return true
}

// rule renders the plan.
func (p *plan) rule() Rule {
	switch p.lv {
	case lvPrefix:
		return Rule{Match: p.strips[0], Replacement: p.add}
	case lvKeep:
		return Rule{Regex: true, Match: fmt.Sprintf(`^.*(\d{%d})$`, p.keep), Replacement: p.add + "$1"}
	}
	alt := make([]string, len(p.strips))
	for i, s := range p.strips {
		alt[i] = regexp.QuoteMeta(s)
	}
	pre := strings.Join(alt, "|")
	if len(alt) > 1 {
		pre = "(?:" + pre + ")"
	}
	body := p.body()
	if body == "" {
		return Rule{Regex: true, Match: "^" + pre + "$", Replacement: p.add}
	}
	return Rule{Regex: true, Match: "^" + pre + "(" + body + ")$", Replacement: p.add + "$1"}
}

// body is the regex of the rest of the number; "" when nothing may follow.
func (p *plan) body() string {
	atom := `\d`
	if !p.digits {
		atom = "."
	}
	cls := ""
	if lo := p.class(); lo != 0 {
		cls = "[" + string(lo) + "-9]"
	}
	switch {
	case p.hasLength() && cls != "":
		return cls + quant(atom, p.min-1, p.max-1)
	case p.hasLength():
		return quant(atom, p.min, p.max)
	case cls != "":
		return cls + atom + "*"
	case p.min == 0:
		return atom + "*"
	}
	return atom + "+"
}

// quant repeats atom lo to hi times.
func quant(atom string, lo, hi int) string {
	switch {
	case hi == 0:
		return ""
	case lo == hi && lo == 1:
		return atom
	case lo == hi:
		return fmt.Sprintf("%s{%d}", atom, lo)
	}
	return fmt.Sprintf("%s{%d,%d}", atom, lo, hi)
}
