package rewritegen

import (
	"strings"
	"testing"

	"github.com/sipward/sipward/internal/paramrewrite"
	"github.com/sipward/sipward/internal/store"
)

// ex parses "in>out" pairs.
func ex(pairs ...string) []Example {
	out := make([]Example, len(pairs))
	for i, p := range pairs {
		in, o, ok := strings.Cut(p, ">")
		if !ok {
			panic("ex: no > in " + p)
		}
		out[i] = Example{Input: in, Output: o}
	}
	return out
}

// genCases are real number-normalisation tasks. Each gives a few examples
// (and inputs that must stay unchanged), and held-out inputs the generated
// rule must map (heldOut) or leave alone (heldUnchanged): the test of
// whether the rule generalises as an engineer would expect.
var genCases = []struct {
	name          string
	typ           store.RewriteType
	examples      []Example
	unchanged     []string
	heldOut       []Example
	heldUnchanged []string
	want          Rule   // the rule expected
	explain       string // the explanation expected
}{
	{
		name:     "UK national to E.164",
		examples: ex("07700900123>447700900123", "01782123456>441782123456"),
		heldOut:  ex("02079460000>442079460000", "01632960001>441632960001"),
		want:     Rule{Match: "0", Replacement: "44"},
		explain:  "Strip the leading 0 and add 44.",
	},
	{
		name:          "UK national to E.164, international numbers left alone",
		examples:      ex("07700900123>447700900123", "01782123456>441782123456"),
		unchanged:     []string{"00441782123456"},
		heldOut:       ex("02079460000>442079460000", "0113496000>44113496000"),
		heldUnchanged: []string{"0033612345678", "+447700900123", "447700900123"},
		want:          Rule{Regex: true, Match: `^0([1-9]\d*)$`, Replacement: "44$1"},
		explain:       "Strip the leading 0 and add 44, for numbers with a digit 1-9 after it.",
	},
	{
		name:          "UK mobiles only, geographic numbers left alone",
		examples:      ex("07700900123>447700900123", "07911123456>447911123456"),
		unchanged:     []string{"01782123456", "02079460000"},
		heldOut:       ex("07400123456>447400123456"),
		heldUnchanged: []string{"01632960001", "03001234567", "00447700900123"},
		want:          Rule{Match: "07", Replacement: "447"},
	},
	{
		name:     "Germany national to E.164 (variable length)",
		examples: ex("030123456>4930123456", "08912345678>498912345678"),
		heldOut:  ex("0401234567>49401234567", "015112345678>4915112345678"),
		want:     Rule{Match: "0", Replacement: "49"},
	},
	{
		name:          "Germany national to E.164, international left alone",
		examples:      ex("030123456>4930123456", "08912345678>498912345678", "0221123456>49221123456"),
		unchanged:     []string{"0033612345678", "004930123456"},
		heldOut:       ex("0401234567>49401234567"),
		heldUnchanged: []string{"00447700900123"},
		want:          Rule{Regex: true, Match: `^0([1-9]\d*)$`, Replacement: "49$1"},
	},
	{
		name:          "France national to E.164",
		examples:      ex("0612345678>33612345678", "0145678901>33145678901"),
		heldOut:       ex("0298765432>33298765432", "0756123456>33756123456"),
		heldUnchanged: []string{"+33612345678", "33612345678"},
		want:          Rule{Match: "0", Replacement: "33"},
	},
	{
		name:     "Netherlands national to E.164",
		examples: ex("0612345678>31612345678", "0201234567>31201234567"),
		heldOut:  ex("0101234567>31101234567"),
		want:     Rule{Match: "0", Replacement: "31"},
	},
	{
		name:     "Ireland national to E.164",
		examples: ex("0871234567>353871234567", "014567890>35314567890"),
		heldOut:  ex("0214123456>353214123456"),
		want:     Rule{Match: "0", Replacement: "353"},
	},
	{
		name:          "Australia national to E.164, 0011 international left alone",
		examples:      ex("0412345678>61412345678", "0298765432>61298765432"),
		unchanged:     []string{"0011441782123456"},
		heldOut:       ex("0387654321>61387654321", "0812345678>61812345678"),
		heldUnchanged: []string{"001133612345678"},
		want:          Rule{Regex: true, Match: `^0([1-9]\d*)$`, Replacement: "61$1"},
	},
	{
		name:          "Italy keeps its 0: add 39 to national numbers only",
		examples:      ex("0612345678>390612345678", "0212345678>390212345678", "055123456>39055123456"),
		unchanged:     []string{"0039061234567"},
		heldOut:       ex("0101234567>390101234567"),
		heldUnchanged: []string{"00441782123456"},
		want:          Rule{Regex: true, Match: `^(\d{9,10})$`, Replacement: "39$1"},
	},
	{
		name:          "Spain: add 34 to 9-digit numbers only",
		examples:      ex("612345678>34612345678", "912345678>34912345678"),
		unchanged:     []string{"0034612345678", "34612345678"},
		heldOut:       ex("934123456>34934123456"),
		heldUnchanged: []string{"0044117496000", "34912345678", "112"},
		want:          Rule{Regex: true, Match: `^(\d{9})$`, Replacement: "34$1"},
		explain:       "Add 34 in front of 9-digit numbers.",
	},
	{
		name:          "US 10-digit to 1 + number, 1 + 10 digits left alone",
		examples:      ex("2125550123>12125550123", "4155550100>14155550100", "3125550199>13125550199"),
		unchanged:     []string{"12125550123"},
		heldOut:       ex("7185550111>17185550111", "9175550123>19175550123"),
		heldUnchanged: []string{"14155550100", "+12125550123", "011447700900123"},
		want:          Rule{Regex: true, Match: `^([2-9]\d*)$`, Replacement: "1$1"},
		explain:       "Add 1 in front of numbers that start with 2-9.",
	},
	{
		name:          "US 10-digit to 1 + number, N11 codes left alone",
		examples:      ex("2125550123>12125550123", "4155550100>14155550100"),
		unchanged:     []string{"12125550123", "911"},
		heldOut:       ex("7185550111>17185550111"),
		heldUnchanged: []string{"411", "611", "15555550100"},
		want:          Rule{Regex: true, Match: `^(\d{10})$`, Replacement: "1$1"},
		explain:       "Add 1 in front of 10-digit numbers.",
	},
	{
		name:     "US 1 + 10 digits to 10 digits",
		examples: ex("12125550123>2125550123", "14155550100>4155550100"),
		heldOut:  ex("17185550111>7185550111"),
		want:     Rule{Match: "1", Replacement: ""},
		explain:  "Strip the leading 1.",
	},
	{
		name:          "US 7-digit local numbers get the 212 area code",
		examples:      ex("5550123>12125550123", "5550199>12125550199"),
		unchanged:     []string{"12125550123", "4155550100"},
		heldOut:       ex("8675309>12128675309"),
		heldUnchanged: []string{"2125550123", "911"},
		want:          Rule{Regex: true, Match: `^(\d{7})$`, Replacement: "1212$1"},
	},
	{
		name:          "NANP 011 international prefix to E.164",
		examples:      ex("011447700900123>447700900123", "01133612345678>33612345678"),
		unchanged:     []string{"2125550123"},
		heldOut:       ex("0114930123456>4930123456"),
		heldUnchanged: []string{"12125550123"},
		want:          Rule{Match: "011", Replacement: ""},
	},
	{
		name:          "strip +",
		examples:      ex("+447700900123>447700900123", "+33612345678>33612345678"),
		heldOut:       ex("+4930123456>4930123456", "+12125550123>12125550123"),
		heldUnchanged: []string{"447700900123", "0033612345678"},
		want:          Rule{Match: "+", Replacement: ""},
		explain:       "Remove a leading +.",
	},
	{
		name:          "strip 00",
		examples:      ex("00447700900123>447700900123", "0033612345678>33612345678"),
		unchanged:     []string{"07700900123"},
		heldOut:       ex("0049301234567>49301234567"),
		heldUnchanged: []string{"01782123456", "+447700900123"},
		want:          Rule{Match: "00", Replacement: ""},
		explain:       "Remove a leading 00.",
	},
	{
		name:          "strip + or 00",
		examples:      ex("+447700900123>447700900123", "0033612345678>33612345678"),
		heldOut:       ex("+4930123456>4930123456", "0061298765432>61298765432"),
		heldUnchanged: []string{"447700900123", "07700900123"},
		want:          Rule{Regex: true, Match: `^(?:\+|00)(\d+)$`, Replacement: "$1"},
		explain:       "Remove a leading + or 00.",
	},
	{
		name:          "strip + or 00, national numbers left alone",
		examples:      ex("0033612345678>33612345678", "+447700900123>447700900123", "004930123456>4930123456"),
		unchanged:     []string{"07700900123", "447700900123"},
		heldOut:       ex("+12125550123>12125550123", "0061298765432>61298765432"),
		heldUnchanged: []string{"01782123456"},
		want:          Rule{Regex: true, Match: `^(?:\+|00)(\d+)$`, Replacement: "$1"},
	},
	{
		name:          "UK numbers in any form to E.164",
		examples:      ex("+447700900123>447700900123", "00441782123456>441782123456", "07700900123>447700900123"),
		heldOut:       ex("02079460000>442079460000", "+442079460000>442079460000", "00442079460000>442079460000"),
		heldUnchanged: []string{"447700900123"},
		want:          Rule{Regex: true, Match: `^(?:\+44|0044|0)(\d+)$`, Replacement: "44$1"},
		explain:       "Remove a leading +44, 0044 or 0 and add 44.",
	},
	{
		name:     "00 to +",
		examples: ex("00447700900123>+447700900123", "0033612345678>+33612345678"),
		heldOut:  ex("0049301234567>+49301234567"),
		want:     Rule{Match: "00", Replacement: "+"},
		explain:  "Replace a leading 00 with +.",
	},
	{
		name:          "add + to E.164 numbers that lack it",
		examples:      ex("447700900123>+447700900123", "33612345678>+33612345678"),
		unchanged:     []string{"+447700900123"},
		heldOut:       ex("4930123456>+4930123456"),
		heldUnchanged: []string{"+33612345678", "*99#"},
		want:          Rule{Regex: true, Match: `^(\d+)$`, Replacement: "+$1"},
		explain:       "Add + in front of numbers made only of digits.",
	},
	{
		name:          "trunk prefix removal",
		examples:      ex("01782123456>1782123456", "07700900123>7700900123"),
		heldOut:       ex("02079460000>2079460000"),
		heldUnchanged: []string{"1782123456"},
		want:          Rule{Match: "0", Replacement: ""},
		explain:       "Strip the leading 0.",
	},
	{
		name:          "trunk prefix removal, international left alone",
		examples:      ex("01782123456>1782123456", "07700900123>7700900123"),
		unchanged:     []string{"00441782123456"},
		heldOut:       ex("02079460000>2079460000"),
		heldUnchanged: []string{"0033612345678"},
		want:          Rule{Regex: true, Match: `^0([1-9]\d*)$`, Replacement: "$1"},
	},
	{
		name:          "tech prefix 1234#",
		examples:      ex("1234#442071234567>442071234567", "1234#33612345678>33612345678"),
		unchanged:     []string{"442071234567"},
		heldOut:       ex("1234#4930123456>4930123456", "1234#12125550123>12125550123"),
		heldUnchanged: []string{"1235#442071234567", "4930123456"},
		want:          Rule{Match: "1234#", Replacement: ""},
		explain:       "Remove the tech prefix 1234#.",
	},
	{
		name:          "tech prefix 9999",
		examples:      ex("9999442071234567>442071234567", "999933612345678>33612345678"),
		heldOut:       ex("99994930123456>4930123456"),
		heldUnchanged: []string{"442071234567", "9998442071234567"},
		want:          Rule{Match: "9999", Replacement: ""},
		explain:       "Remove the tech prefix 9999.",
	},
	{
		name:     "tech prefix in front of an international number",
		examples: ex("1234#00442071234567>442071234567", "1234#0033612345678>33612345678"),
		heldOut:  ex("1234#004930123456>4930123456"),
		want:     Rule{Match: "1234#00", Replacement: ""},
	},
	{
		name:          "two carriers' tech prefixes",
		examples:      ex("1234#442071234567>442071234567", "77*33612345678>33612345678"),
		heldOut:       ex("77*4930123456>4930123456", "1234#12125550123>12125550123"),
		heldUnchanged: []string{"442071234567"},
		want:          Rule{Regex: true, Match: `^(?:1234#|77\*)(\d+)$`, Replacement: "$1"},
	},
	{
		name:          "CLI cleanup: strip + from the caller's number",
		typ:           store.RewriteCLI,
		examples:      ex("+441782123456>441782123456", "+447700900123>447700900123"),
		unchanged:     []string{"441782123456"},
		heldOut:       ex("+12125550123>12125550123"),
		heldUnchanged: []string{"4930123456"},
		want:          Rule{Match: "+", Replacement: ""},
	},
	{
		name:          "CLI national to E.164, E.164 and short codes left alone",
		typ:           store.RewriteCLI,
		examples:      ex("01782123456>441782123456", "07700900123>447700900123"),
		unchanged:     []string{"441782123456", "00441782123456", "0"},
		heldOut:       ex("02079460000>442079460000"),
		heldUnchanged: []string{"447700900123", "+441782123456"},
		want:          Rule{Regex: true, Match: `^0([1-9]\d*)$`, Replacement: "44$1"},
	},
	{
		name:          "3-digit extensions to a DDI range",
		examples:      ex("201>441782000201", "315>441782000315"),
		unchanged:     []string{"07700900123", "441782000201"},
		heldOut:       ex("450>441782000450", "999>441782000999"),
		heldUnchanged: []string{"02079460000", "1234", "+441782000201"},
		want:          Rule{Regex: true, Match: `^(\d{3})$`, Replacement: "441782000$1"},
		explain:       "Add 441782000 in front of 3-digit numbers.",
	},
	{
		name:          "4-digit extensions to a DDI range",
		examples:      ex("2001>442079462001", "2345>442079462345", "3999>442079463999"),
		unchanged:     []string{"02079460000", "442079462001", "999"},
		heldOut:       ex("4100>442079464100"),
		heldUnchanged: []string{"112", "07700900123"},
		want:          Rule{Regex: true, Match: `^(\d{4})$`, Replacement: "44207946$1"},
	},
	{
		name:          "add the country code to national-length numbers only",
		examples:      ex("7700900123>447700900123", "1782123456>441782123456"),
		unchanged:     []string{"447700900123", "33612345678"},
		heldOut:       ex("2079460000>442079460000"),
		heldUnchanged: []string{"493012345678", "12125550123"},
		want:          Rule{Regex: true, Match: `^(\d{10})$`, Replacement: "44$1"},
	},
	{
		name:          "keep the last 10 digits behind assorted carrier prefixes",
		examples:      ex("11#7700900123>447700900123", "222#1782123456>441782123456", "3333#2079460000>442079460000", "4*1632960001>441632960001"),
		heldOut:       ex("55#1234567890>441234567890"),
		heldUnchanged: []string{"123"},
		want:          Rule{Regex: true, Match: `^.*(\d{10})$`, Replacement: "44$1"},
		explain:       "Keep the last 10 digits and add 44 in front.",
	},
	{
		name:          "international access code 00 to NANP 011",
		examples:      ex("00447700900123>011447700900123", "0033612345678>01133612345678"),
		unchanged:     []string{"2125550123"},
		heldOut:       ex("004930123456>0114930123456"),
		heldUnchanged: []string{"12125550123"},
		want:          Rule{Match: "00", Replacement: "011"},
	},
	{
		name:          "a single example",
		examples:      ex("07700900123>447700900123"),
		heldOut:       ex("01782123456>441782123456"),
		heldUnchanged: []string{"447700900123"},
		want:          Rule{Match: "0", Replacement: "44"},
	},
	{
		name:          "an example that keeps its number counts as unchanged",
		examples:      ex("07700900123>447700900123", "00441782123456>00441782123456"),
		heldOut:       ex("01782123456>441782123456"),
		heldUnchanged: []string{"0033612345678"},
		want:          Rule{Regex: true, Match: `^0([1-9]\d*)$`, Replacement: "44$1"},
	},
}

func TestGenerateTable(t *testing.T) {
	if len(genCases) < 30 {
		t.Fatalf("%d cases; the table should hold at least 30", len(genCases))
	}
	for _, c := range genCases {
		t.Run(c.name, func(t *testing.T) {
			typ := c.typ
			if typ == "" {
				typ = store.RewriteDestination
			}
			res, err := Generate(Request{Type: c.typ, Examples: c.examples, Unchanged: c.unchanged})
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			t.Logf("%+v  %s", res.Rule, res.Explanation)
			checkValid(t, res.Rule)
			rs := compile(t, res.Rule, typ)
			mapped := append(append([]Example(nil), c.examples...), c.heldOut...)
			for _, e := range mapped {
				if e.Input == e.Output {
					expectUnmatched(t, rs, typ, e.Input)
					continue
				}
				if out, _, ok := rs.Apply(typ, e.Input); !ok || out != e.Output {
					t.Errorf("rule %+v: %s gives %s (matched %v); want %s", res.Rule, e.Input, out, ok, e.Output)
				}
			}
			for _, u := range append(append([]string(nil), c.unchanged...), c.heldUnchanged...) {
				expectUnmatched(t, rs, typ, u)
			}
			if c.want != (Rule{}) && res.Rule != c.want {
				t.Errorf("rule = %+v; want %+v", res.Rule, c.want)
			}
			if c.explain != "" && res.Explanation != c.explain {
				t.Errorf("explanation = %q; want %q", res.Explanation, c.explain)
			}
			checkSamples(t, res, rs, typ, c.examples, c.unchanged)
		})
	}
}

func expectUnmatched(t *testing.T, rs *paramrewrite.Rules, typ store.RewriteType, in string) {
	t.Helper()
	if out, _, ok := rs.Apply(typ, in); ok {
		t.Errorf("rule matches %s (gives %s); it must leave it alone", in, out)
	}
}
