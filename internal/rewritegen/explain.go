package rewritegen

import (
	"fmt"
	"slices"
	"strings"
)

// explain says in words what the plan's rule does.
func (p *plan) explain() string {
	switch {
	case p.keep > 0 && p.add == "":
		return fmt.Sprintf("Keep only the last %s.", nDigits(p.keep, p.keep))
	case p.keep > 0:
		return fmt.Sprintf("Keep the last %s and add %s in front.", nDigits(p.keep, p.keep), p.add)
	case p.lv == lvLength && p.max == 0:
		return fmt.Sprintf("Change %s to %s.", orList(p.strips), p.add)
	case len(p.strips) == 1 && p.strips[0] == "":
		return "Add " + p.add + " in front of " + p.numbers() + "."
	}
	s := p.stripWords()
	switch {
	case p.add != "" && len(p.strips) == 1 && (p.strips[0] == "+" || p.strips[0] == "00"):
		s = "Replace a leading " + p.strips[0] + " with " + p.add
	case p.add != "":
		s += " and add " + p.add
	}
	return s + p.condition() + "."
}

// stripWords says what the rule removes.
func (p *plan) stripWords() string {
	if len(p.strips) > 1 {
		if p.add == "" && !slices.ContainsFunc(p.strips, func(s string) bool { return !isTechPrefix(s) }) {
			return "Remove the tech prefix " + orList(p.strips)
		}
		return "Remove a leading " + orList(p.strips)
	}
	s := p.strips[0]
	switch {
	case s == "+" || s == "00":
		return "Remove a leading " + s
	case p.add == "" && isTechPrefix(s):
		return "Remove the tech prefix " + s
	}
	return "Strip the leading " + s
}

// isTechPrefix reports whether a stripped prefix looks like a carrier's tech
// prefix rather than a trunk or international prefix.
func isTechPrefix(s string) bool {
	return strings.ContainsAny(s, "#*") || (len(s) >= 3 && s[0] != '0' && s[0] != '+')
}

// numbers says which numbers an add-only rule applies to.
func (p *plan) numbers() string {
	first := ""
	if lo := p.class(); lo != 0 {
		first = fmt.Sprintf(" that start with %c-9", lo)
	}
	switch {
	case p.lv == lvPrefix:
		return "every number"
	case p.lv == lvDigits && p.digits:
		return "numbers made only of digits"
	case p.lv == lvDigits:
		return "every number"
	case !p.hasLength():
		return "numbers" + first
	case p.min == p.max && p.digits:
		return fmt.Sprintf("%d-digit numbers", p.min) + first
	}
	return "numbers of " + nDigits(p.min, p.max) + first
}

// condition says which numbers a strip rule applies to, "" for all that
// start with the prefix.
func (p *plan) condition() string {
	first := ""
	if lo := p.class(); lo != 0 {
		first = fmt.Sprintf("%c-9", lo)
	}
	switch {
	case p.lv == lvPrefix || (p.lv == lvDigits && (!p.digits || len(p.strips) > 1)):
		// A regex stripping one of several prefixes starts at lvDigits.
		return ""
	case p.lv == lvDigits:
		return ", for numbers with only digits after it"
	case !p.hasLength():
		return ", for numbers with a digit " + first + " after it"
	case first != "":
		return ", for numbers with " + nDigits(p.min, p.max) + " after it, the first " + first
	}
	return ", for numbers with " + nDigits(p.min, p.max) + " after it"
}

// nDigits says "1 digit", "10 digits" or "9 to 10 digits".
func nDigits(lo, hi int) string {
	switch {
	case lo == hi && lo == 1:
		return "1 digit"
	case lo == hi:
		return fmt.Sprintf("%d digits", lo)
	}
	return fmt.Sprintf("%d to %d digits", lo, hi)
}

// orList says "a", "a or b", "a, b or c".
func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
