package paramrewrite

import (
	"testing"

	"github.com/sipward/sipward/internal/store"
)

// benchRules is a realistic rule set of one endpoint: two destination
// prefixes that do not match, then an international-prefix rule, and a
// regex CLI rule.
func benchRules(b *testing.B, regex bool) *Rules {
	b.Helper()
	rules := []store.RewriteRule{
		{ID: 1, Type: store.RewriteDestination, Match: "0033", Replacement: "33", Order: 1},
		{ID: 2, Type: store.RewriteDestination, Match: "0049", Replacement: "49", Order: 2},
		{ID: 3, Type: store.RewriteDestination, Match: "00", Replacement: "", Order: 3},
		{ID: 4, Type: store.RewriteCLI, Regex: true, Match: `^0([1-9]\d+)$`, Replacement: "44$1", Order: 1},
	}
	if regex {
		rules[2] = store.RewriteRule{ID: 3, Type: store.RewriteDestination, Regex: true, Match: `^00(\d+)$`, Replacement: "$1", Order: 3}
	}
	rs, err := Compile(rules)
	if err != nil {
		b.Fatal(err)
	}
	return rs
}

// BenchmarkApply is the rewrite of one call's dialled number (third rule
// fires) and CLI (regex rule fires), as the rewrite stage does per INVITE.
func BenchmarkApply(b *testing.B) {
	for _, c := range []struct {
		name  string
		regex bool
		typ   store.RewriteType
		in    string
	}{
		{"prefix-dest", false, store.RewriteDestination, "00442071234567"},
		{"regex-dest", true, store.RewriteDestination, "00442071234567"},
		{"regex-cli", false, store.RewriteCLI, "02071234567"},
		{"no-match", false, store.RewriteDestination, "442071234567"},
	} {
		b.Run(c.name, func(b *testing.B) {
			rs := benchRules(b, c.regex)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := rs.Apply(c.typ, c.in); ok != (c.name != "no-match") {
					b.Fatal("unexpected outcome")
				}
			}
		})
	}
}
