package provision

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sipward/sipward/internal/store"
)

// Bounds on user input.
const (
	maxName       = 100
	maxText       = 200
	maxLimit      = 1_000_000 // channels, cps
	maxRegex      = 256
	maxPrefix     = 16
	maxCodecs     = 32
	maxWhitelist  = 64
	minPassword   = 12
	maxPassword   = 128
	maxUsername   = 64
	maxReplace    = 64
	maxBlockSize  = 10_000_000
	maxBlockStart = 999_999_999_999
)

func checkName(field, s string, required bool) error {
	if strings.TrimSpace(s) == "" {
		if required {
			return invalid(field, "is required")
		}
		return nil
	}
	if utf8.RuneCountInString(s) > maxName {
		return invalid(field, "is longer than %d characters", maxName)
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return invalid(field, "must not contain line breaks or NUL")
	}
	return nil
}

func checkText(field, s string, max int) error {
	if utf8.RuneCountInString(s) > max {
		return invalid(field, "is longer than %d characters", max)
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return invalid(field, "must not contain line breaks or NUL")
	}
	return nil
}

// checkUserChannels checks the channels of a SIP user or profile: at least
// one, since every SIP user holds its channels from its account's capacity
// (an "unlimited" user would sidestep it).
func checkUserChannels(field string, n int) error {
	if n < 1 {
		return invalid(field, "%d: a SIP user holds at least 1 channel of its account's capacity (there is no unlimited SIP user)", n)
	}
	return checkLimit(field, n)
}

func checkLimit(field string, n int) error {
	if n < 0 {
		return invalid(field, "%d: must not be negative (0 means unlimited)", n)
	}
	if n > maxLimit {
		return invalid(field, "%d: must be at most %d", n, maxLimit)
	}
	return nil
}

// parsePrefix parses an IP address or CIDR and returns its canonical form: a
// bare address for a single host, the masked prefix otherwise.
func parsePrefix(field, s string) (netip.Prefix, string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, "", invalid(field, "is required")
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		addr, err := netip.ParseAddr(s[:i])
		if err != nil {
			return netip.Prefix{}, "", invalid(field, "%q: invalid IP address", s)
		}
		bits, err := strconv.Atoi(s[i+1:])
		if err != nil || bits < 0 || bits > addr.BitLen() {
			return netip.Prefix{}, "", invalid(field, "%q: invalid prefix length", s)
		}
		p := netip.PrefixFrom(addr.Unmap(), bits)
		if p.Masked() != p {
			return netip.Prefix{}, "", invalid(field, "%q: host bits set; did you mean %s?", s, p.Masked())
		}
		if p.IsSingleIP() {
			return p, p.Addr().String(), nil
		}
		return p, p.String(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, "", invalid(field, "%q: invalid IP address", s)
	}
	addr = addr.Unmap()
	if addr.Zone() != "" {
		return netip.Prefix{}, "", invalid(field, "%q: zoned addresses are not allowed", s)
	}
	return netip.PrefixFrom(addr, addr.BitLen()), addr.String(), nil
}

// ParsePrefix parses a stored address (canonical form) into a prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, _, err := parsePrefix("address", s)
	return p, err
}

var fqdnLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

func isFQDN(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if !fqdnLabel.MatchString(l) {
			return false
		}
	}
	// The last label of a host name is not all digits (that would be an IP).
	_, err := strconv.Atoi(labels[len(labels)-1])
	return err != nil
}

func checkProtocol(field string, p *store.Protocol) error {
	switch strings.ToLower(string(*p)) {
	case "":
		*p = store.ProtoUDP
	case "udp", "tcp", "tls", "tls-srtp":
		*p = store.Protocol(strings.ToLower(string(*p)))
	case "smpp":
		return invalid(field, MsgSMPP)
	default:
		return invalid(field, "%q: must be one of udp, tcp, tls, tls-srtp", *p)
	}
	return nil
}

func checkMediaRelay(field string, m *store.MediaRelay) error {
	switch *m {
	case "":
		*m = store.RelayAuto
	case store.RelayAuto, store.RelayAlways, store.RelayNever:
	default:
		return invalid(field, "%q: must be one of auto, always, never", *m)
	}
	return nil
}

// checkSessionExpires checks the Session-Expires interval of an IP endpoint
// or SIP user, in seconds; 0 (absent) takes the default.
func checkSessionExpires(field string, n *int) error {
	if *n == 0 {
		*n = store.DefaultSessionExpires
		return nil
	}
	if *n < store.MinSessionExpires || *n > store.MaxSessionExpires {
		return invalid(field, "%d: must be between %d and %d seconds", *n, store.MinSessionExpires, store.MaxSessionExpires)
	}
	return nil
}

func checkNATPing(field string, n *store.NATPing) error {
	switch *n {
	case "":
		*n = store.NATPingDisabled
	case store.NATPingDisabled, store.NATPingEnabled, store.NATPingTimeout:
	default:
		return invalid(field, "%q: must be one of disabled, enabled, timeout", *n)
	}
	return nil
}

// Codecs that may be restricted, by canonical name (RTP/AVP encoding names).
var knownCodecs = func() map[string]string {
	m := map[string]string{}
	for _, c := range []string{"PCMU", "PCMA", "G722", "G723", "G726-32", "G728", "G729", "GSM",
		"iLBC", "opus", "speex", "AMR", "AMR-WB", "telephone-event", "H261", "H263", "H264", "VP8", "VP9", "T38"} {
		m[strings.ToLower(c)] = c
	}
	return m
}()

// checkCodecs canonicalises a codec list in place and refuses unknown or repeated names.
func checkCodecs(field string, codecs *[]string) error {
	if *codecs == nil {
		*codecs = []string{}
		return nil
	}
	if len(*codecs) > maxCodecs {
		return invalid(field, "has more than %d codecs", maxCodecs)
	}
	seen := map[string]bool{}
	for i, c := range *codecs {
		canon, ok := knownCodecs[strings.ToLower(strings.TrimSpace(c))]
		if !ok {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "%q: unknown codec", c)
		}
		if seen[canon] {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "%q: listed twice", c)
		}
		seen[canon] = true
		(*codecs)[i] = canon
	}
	return nil
}

// checkRegex compiles an RE2 pattern of bounded length.
func checkRegex(field, s string) (*regexp.Regexp, error) {
	if s == "" {
		return nil, invalid(field, "is required")
	}
	if len(s) > maxRegex {
		return nil, invalid(field, "regex is longer than %d characters", maxRegex)
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, invalid(field, "%s", regexError(err))
	}
	return re, nil
}

// regexError says what is wrong with a regex in plain text, as typed (not
// Go-quoted, so a \d reads \d): "invalid RE2 regex: missing closing ) in
// ^(44".
func regexError(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid RE2 regex: %s in %s", se.Code, se.Expr)
	}
	return "invalid RE2 regex: " + strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

var dialChars = regexp.MustCompile(`^[0-9*#+]*$`)

// checkDialString checks a tech prefix, CLI prefix or prefix match: digits, *, #, +.
func checkDialString(field, s string, max int) error {
	if len(s) > max {
		return invalid(field, "%q: longer than %d characters", s, max)
	}
	if !dialChars.MatchString(s) {
		return invalid(field, "%q: only digits, *, # and + are allowed", s)
	}
	return nil
}

var e164 = regexp.MustCompile(`^\+?[1-9][0-9]{5,14}$`)

// checkE164 validates an E.164 number and returns it without the leading '+'.
func checkE164(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalid(field, "is required")
	}
	if !e164.MatchString(s) {
		return "", invalid(field, "%q: not an E.164 number (country code and number, 6 to 15 digits, optional leading +)", s)
	}
	return strings.TrimPrefix(s, "+"), nil
}

// SIP user names: RFC 3261 "user" unreserved characters, no escapes.
var usernameChars = regexp.MustCompile(`^[A-Za-z0-9\-_.!~*'()&=+$,;?/]+$`)

func checkUsername(field, s string) error {
	if s == "" {
		return invalid(field, "is required")
	}
	if len(s) > maxUsername {
		return invalid(field, "is longer than %d characters", maxUsername)
	}
	if !usernameChars.MatchString(s) {
		return invalid(field, "%q: only letters, digits and - _ . ! ~ * ' ( ) & = + $ , ; ? / are allowed", s)
	}
	return nil
}

func checkPassword(field, s string) error {
	if utf8.RuneCountInString(s) < minPassword {
		return invalid(field, "is too weak: use at least %d characters, or leave it empty to have one generated", minPassword)
	}
	if len(s) > maxPassword {
		return invalid(field, "is longer than %d characters", maxPassword)
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return invalid(field, "must not contain line breaks or NUL")
	}
	return nil
}

func checkEmail(field, s string) error {
	if s == "" {
		return nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return invalid(field, "%q: not an email address", s)
	}
	return nil
}

var pinChars = regexp.MustCompile(`^[0-9]{4,12}$`)

func checkPIN(field, s string) error {
	if !pinChars.MatchString(s) {
		return invalid(field, "must be 4 to 12 digits")
	}
	return nil
}

// checkHostPort checks an outbound proxy: host or IP, optional port, optional sip: scheme.
func checkHostPort(field, s string) error {
	if s == "" {
		return nil
	}
	h := strings.TrimPrefix(strings.TrimPrefix(s, "sips:"), "sip:")
	if i := strings.IndexByte(h, ';'); i >= 0 {
		h = h[:i]
	}
	host := h
	if ap, err := netip.ParseAddrPort(h); err == nil {
		_ = ap
		return nil
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[:i], ":") {
		port, err := strconv.Atoi(h[i+1:])
		if err != nil || port < 1 || port > 65535 {
			return invalid(field, "%q: invalid port", s)
		}
		host = h[:i]
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil || isFQDN(host) {
		return nil
	}
	return invalid(field, "%q: not a host, host:port or sip: URI", s)
}
