// Package paramrewrite compiles parameter-rewrite rules: ordered rules of an IP
// endpoint or SIP user that rewrite the dialled number or the CLI. A rule
// matches by prefix or by RE2 regex; the first matching rule of a type
// fires. Rules are compiled once when the snapshot is built (Compile); the
// same compiled form answers the API's test call and runs in the rewrite
// stage (internal/stage/rewrite), so what the test shows is what calls get.
package paramrewrite

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/sipward/sipward/internal/store"
)

// Rule is one compiled rewrite rule.
type Rule struct {
	ID          int64
	Type        store.RewriteType
	prefix      string         // prefix rule: replaced by Replacement
	re          *regexp.Regexp // regex rule: first match replaced by the expanded Replacement
	Replacement string
}

// Rules is an owner's compiled rule set, in firing order.
type Rules struct {
	dest []Rule
	cli  []Rule
}

// Compile compiles rules, ordered by Order then ID. The error names the rule.
func Compile(rules []store.RewriteRule) (*Rules, error) {
	sorted := append([]store.RewriteRule(nil), rules...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Order != sorted[j].Order {
			return sorted[i].Order < sorted[j].Order
		}
		return sorted[i].ID < sorted[j].ID
	})
	rs := &Rules{}
	for _, r := range sorted {
		c, err := CompileRule(r)
		if err != nil {
			return nil, fmt.Errorf("rewrite rule %d: %w", r.ID, err)
		}
		if r.Type == store.RewriteCLI {
			rs.cli = append(rs.cli, c)
		} else {
			rs.dest = append(rs.dest, c)
		}
	}
	return rs, nil
}

// CompileRule compiles one rule.
func CompileRule(r store.RewriteRule) (Rule, error) {
	c := Rule{ID: r.ID, Type: r.Type, Replacement: r.Replacement}
	if !r.Regex {
		c.prefix = r.Match
		return c, nil
	}
	re, err := regexp.Compile(r.Match)
	if err != nil {
		return c, fmt.Errorf("match %q: %w", r.Match, err)
	}
	c.re = re
	return c, nil
}

// Apply rewrites input with the first rule of typ that matches. It returns
// the output, the ID of the rule that fired, and whether one did.
func (rs *Rules) Apply(typ store.RewriteType, input string) (string, int64, bool) {
	if rs == nil {
		return input, 0, false
	}
	list := rs.dest
	if typ == store.RewriteCLI {
		list = rs.cli
	}
	for i := range list {
		if out, ok := list[i].apply(input); ok {
			return out, list[i].ID, true
		}
	}
	return input, 0, false
}

func (r *Rule) apply(in string) (string, bool) {
	if r.re == nil {
		if !strings.HasPrefix(in, r.prefix) {
			return in, false
		}
		return r.Replacement + in[len(r.prefix):], true
	}
	m := r.re.FindStringSubmatchIndex(in)
	if m == nil {
		return in, false
	}
	dst := make([]byte, 0, len(in)+len(r.Replacement))
	dst = append(dst, in[:m[0]]...)
	dst = r.re.ExpandString(dst, r.Replacement, in, m)
	dst = append(dst, in[m[1]:]...)
	return string(dst), true
}
