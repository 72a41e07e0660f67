package rewritegen

import (
	"slices"
	"strings"

	"github.com/sipward/sipward/internal/paramrewrite"
)

const maxSamples = 6

// samples makes up inputs near the first example (another number of the
// same shape, a different first digit, other lengths, the number without its
// prefix, international forms) and shows what the compiled rule rs does to
// them. When the rule does not match every number, at least one sample shows
// a number it leaves alone.
func samples(p *plan, rs *paramrewrite.Rules, in *input) []Sample {
	taken := map[string]bool{}
	for _, e := range in.all {
		taken[e.Input] = true
	}
	for _, u := range in.unchanged {
		taken[u] = true
	}
	var all []Sample
	for _, c := range candidates(p, in.examples[0]) {
		if taken[c] || len(c) > maxNumber || !isDialString(c) || c == "" {
			continue
		}
		taken[c] = true
		out, _, ok := rs.Apply(in.typ, c)
		all = append(all, Sample{Input: c, Output: out, Matched: ok})
	}
	if len(all) <= maxSamples {
		return all
	}
	out := all[:maxSamples:maxSamples]
	everything := p.lv == lvPrefix && p.strips[0] == ""
	isMiss := func(s Sample) bool { return !s.Matched }
	if !everything && !slices.ContainsFunc(out, isMiss) {
		if i := slices.IndexFunc(all, isMiss); i >= 0 {
			out = append(out[:maxSamples-1], all[i])
		}
	}
	return out
}

// candidates lists made-up inputs, the most telling first: another number
// of the same shape, another first digit, a longer number, the number
// without its prefix, the international form, a shorter number.
func candidates(p *plan, e Example) []string {
	rest := e.Output[len(p.add):]
	pre := e.Input[:len(e.Input)-len(rest)]
	c := []string{pre + vary(rest)}
	if rest != "" {
		c = append(c, pre+swapFirst(rest, '0', '5'))
	}
	c = append(c, pre+rest+"9")
	if pre != "" {
		c = append(c, rest)
	}
	intl := strings.TrimPrefix(e.Output, "+")
	c = append(c, "+"+intl)
	if len(rest) > 1 {
		c = append(c, pre+rest[:len(rest)-1])
	}
	if rest != "" {
		c = append(c, pre+swapFirst(rest, '1', '6'))
	}
	return append(c, "00"+intl, "112", "*99#", "1234", "+1", "9", "#31#", "0")
}

// vary changes up to the last three digits of s, but not its first.
func vary(s string) string {
	b := []byte(s)
	for i, n := len(b)-1, 0; i >= 1 && n < 3; i-- {
		if isDigit(b[i]) {
			b[i] = '0' + (b[i]-'0'+4)%10
			n++
		}
	}
	return string(b)
}

// swapFirst replaces the first character of s by d, or by alt when s
// already starts with d.
func swapFirst(s string, d, alt byte) string {
	if s[0] == d {
		d = alt
	}
	return string(d) + s[1:]
}
