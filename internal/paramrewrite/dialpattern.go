package paramrewrite

import (
	"fmt"
	"strings"
)

// DialPattern is how an IP endpoint's switch writes the numbers it dials
// (the seed's "Dial Pattern: Default = E164"), in its stored form. Before
// the endpoint's rewrite rules, the dialled number is brought to what the
// core expects: E.164 digits without '+'. Build one with ParseDialPattern;
// the zero value, DialAsIs, changes nothing (SIP users).
type DialPattern string

// Dial patterns.
const (
	DialAsIs          DialPattern = ""              // numbers as dialled (stored as "none")
	DialE164          DialPattern = "e164"          // E.164, a leading '+' removed
	DialInternational DialPattern = "international" // a leading '00' or '+' removed
	dialNational                  = "national:"     // + CC: also a national number 0… becomes CC…
)

// DialPatterns are the forms ParseDialPattern accepts, for help texts and
// errors.
const DialPatterns = `"e164" (E.164, a leading + removed), "international" (a leading 00 or + removed), ` +
	`"national:CC" (as international, and a national number 0… becomes CC…, CC a country code of 1 to 3 digits) or "none" (numbers as dialled)`

// ParseDialPattern parses a stored dial pattern; "" is "e164", the default.
func ParseDialPattern(s string) (DialPattern, error) {
	switch s {
	case "", "e164":
		return DialE164, nil
	case "international":
		return DialInternational, nil
	case "none":
		return DialAsIs, nil
	}
	if cc, ok := strings.CutPrefix(s, dialNational); ok && len(cc) >= 1 && len(cc) <= 3 && cc[0] != '0' && digits(cc) {
		return DialPattern(s), nil
	}
	return DialAsIs, fmt.Errorf("%q: must be %s", s, DialPatterns)
}

// String returns the stored form.
func (p DialPattern) String() string {
	if p == DialAsIs {
		return "none"
	}
	return string(p)
}

// Apply brings number to E.164 digits by the pattern and reports whether it
// changed it. A number the pattern does not describe (an extension, a short
// code) is left as it is. It allocates only for a national number.
func (p DialPattern) Apply(number string) (string, bool) {
	if p == DialAsIs {
		return number, false
	}
	if rest, ok := strings.CutPrefix(number, "+"); ok {
		return rest, true
	}
	if p == DialE164 {
		return number, false
	}
	if rest, ok := strings.CutPrefix(number, "00"); ok {
		return rest, true
	}
	if cc, ok := strings.CutPrefix(string(p), dialNational); ok && len(number) > 1 && number[0] == '0' {
		return cc + number[1:], true
	}
	return number, false
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
