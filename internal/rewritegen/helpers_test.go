package rewritegen

import (
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/sipward/sipward/internal/paramrewrite"
	"github.com/sipward/sipward/internal/store"
)

var (
	testDialChars = regexp.MustCompile(`^[0-9*#+]*$`)
	testGroupRef  = regexp.MustCompile(`\$\{?([0-9]+)\}?`)
)

// checkValid holds r to the limits internal/provision puts on a rewrite
// rule (validateRewrite), written out again here so the test does not
// trust the package's own check.
func checkValid(t *testing.T, r Rule) {
	t.Helper()
	if len(r.Replacement) > 64 {
		t.Errorf("replacement %q is longer than 64 characters", r.Replacement)
	}
	if !r.Regex {
		if r.Match == "" && r.Replacement == "" {
			t.Errorf("prefix rule with empty match and replacement")
		}
		if len(r.Match) > 16 || !testDialChars.MatchString(r.Match) {
			t.Errorf("prefix match %q: want at most 16 of digits, *, #, +", r.Match)
		}
		if !testDialChars.MatchString(r.Replacement) {
			t.Errorf("prefix replacement %q: want digits, *, #, +", r.Replacement)
		}
		return
	}
	if r.Match == "" || len(r.Match) > 256 {
		t.Errorf("regex %q: want 1 to 256 characters", r.Match)
	}
	re, err := regexp.Compile(r.Match)
	if err != nil {
		t.Errorf("regex %q: %v", r.Match, err)
		return
	}
	if r.Match[0] != '^' || r.Match[len(r.Match)-1] != '$' {
		t.Errorf("regex %q is not anchored", r.Match)
	}
	for _, m := range testGroupRef.FindAllStringSubmatch(r.Replacement, -1) {
		if n, _ := strconv.Atoi(m[1]); n > re.NumSubexp() {
			t.Errorf("replacement %q refers to group %d; regex %q has %d", r.Replacement, n, r.Match, re.NumSubexp())
		}
	}
}

// compile compiles r as the snapshot does.
func compile(t testing.TB, r Rule, typ store.RewriteType) *paramrewrite.Rules {
	t.Helper()
	sr := r.RewriteRule(typ)
	sr.ID = 7
	rs, err := paramrewrite.Compile([]store.RewriteRule{sr})
	if err != nil {
		t.Fatalf("compile %+v: %v", r, err)
	}
	return rs
}

// checkSamples checks that the samples are 3 to 6 made-up inputs (no
// example, no unchanged input, no repeats), that each shows what the rule
// does, and that a rule that does not match every number shows a number
// it leaves alone.
func checkSamples(t *testing.T, res Result, rs *paramrewrite.Rules, typ store.RewriteType, ex []Example, unchanged []string) {
	t.Helper()
	if n := len(res.Samples); n < 3 || n > 6 {
		t.Errorf("%d samples; want 3 to 6: %+v", n, res.Samples)
	}
	seen := map[string]bool{}
	for _, e := range ex {
		seen[e.Input] = true
	}
	for _, u := range unchanged {
		seen[u] = true
	}
	missed := false
	for _, s := range res.Samples {
		if seen[s.Input] {
			t.Errorf("sample %q is an example, an unchanged input or a repeat", s.Input)
		}
		seen[s.Input] = true
		out, _, ok := rs.Apply(typ, s.Input)
		if out != s.Output || ok != s.Matched {
			t.Errorf("sample %+v; the rule gives %q, matched %v", s, out, ok)
		}
		missed = missed || !ok
	}
	matchesAll := !res.Rule.Regex && res.Rule.Match == ""
	if !matchesAll && !missed && !slices.ContainsFunc(res.Samples, func(s Sample) bool { return !s.Matched }) {
		t.Errorf("rule %+v is constrained but no sample shows an input it leaves alone: %+v", res.Rule, res.Samples)
	}
}
