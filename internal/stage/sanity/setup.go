package sanity

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/pipeline"
)

// Defaults applied by New and NewChecker to zero Config fields.
const (
	// DefaultMaxMessageBytes is the default MaxMessageBytes: 64 KiB, just
	// above sipgo's own parser limit (sip.ParseMaxMessageLength, 65535), so
	// by default this check only bites on messages not built by that parser.
	DefaultMaxMessageBytes = 64 << 10
	// DefaultMaxHeaders is the default MaxHeaders.
	DefaultMaxHeaders = 100
	// DefaultMaxHeaderBytes is the default MaxHeaderBytes: 8 KiB.
	DefaultMaxHeaderBytes = 8 << 10
)

// DefaultBodyTypes is the default BodyTypes: SDP only.
var DefaultBodyTypes = []string{"application/sdp"}

// Config configures the sanity stage. The zero Config is valid and means
// "all defaults".
type Config struct {
	// MaxMessageBytes caps the size of a request: start line, header
	// fields and body. Larger requests get 513 Message Too Large.
	// The size is measured on the parsed message (sipgo keeps no raw
	// bytes), so separators are counted approximately (±a few bytes per
	// header field). 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int

	// MaxHeaders caps the number of header fields, counted after sipgo has
	// split comma-separated values (a "Via: a, b" line counts twice).
	// More gets 400 Bad Request. 0 means DefaultMaxHeaders.
	MaxHeaders int

	// MaxHeaderBytes caps the length of one header field (name and value,
	// measured like MaxMessageBytes). Longer gets 400 Bad Request.
	// 0 means DefaultMaxHeaderBytes.
	MaxHeaderBytes int

	// Supported lists the option tags sipward implements. A request whose
	// Require or Proxy-Require names any other tag gets 420 Bad Extension
	// with an Unsupported header listing them (RFC 3261 §8.2.2.3). Matched
	// case-insensitively. Default: none (sipward implements no extension;
	// in particular not 100rel or timer).
	Supported []string

	// BodyTypes lists the media types accepted in the body of an INVITE
	// (and in its Accept header). An INVITE with a non-empty body of
	// another Content-Type gets 415 Unsupported Media Type with an Accept
	// header listing BodyTypes; an INVITE whose Accept header allows none
	// of them gets 406 Not Acceptable. Matched case-insensitively, without
	// parameters. nil means DefaultBodyTypes.
	BodyTypes []string

	// Registerer receives the stage's metrics (see metrics.go). nil means
	// the metrics are kept but not registered anywhere; the process-wide
	// default registry is never used. Registering twice on the same
	// Registerer (a chain rebuilt on reload) reuses the first collectors.
	Registerer prometheus.Registerer
}

// Checker holds a validated Config. It is immutable and safe for
// concurrent use.
type Checker struct {
	maxMessage   int
	maxHeaders   int
	maxHeader    int
	supported    []string // option tags, as configured
	bodyTypes    []string // media types, lower case
	acceptHeader string   // value of the Accept header sent with 415
}

// NewChecker validates cfg, applies defaults and returns a Checker.
func NewChecker(cfg Config) (*Checker, error) {
	c := &Checker{
		maxMessage: orDefault(cfg.MaxMessageBytes, DefaultMaxMessageBytes),
		maxHeaders: orDefault(cfg.MaxHeaders, DefaultMaxHeaders),
		maxHeader:  orDefault(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes),
	}
	var errs []error
	if cfg.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("max_message_bytes: %d: must not be negative", cfg.MaxMessageBytes))
	}
	if cfg.MaxHeaders < 0 {
		errs = append(errs, fmt.Errorf("max_headers: %d: must not be negative", cfg.MaxHeaders))
	}
	if cfg.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("max_header_bytes: %d: must not be negative", cfg.MaxHeaderBytes))
	}
	for i, tag := range cfg.Supported {
		if tag == "" || !isToken(tag) {
			errs = append(errs, fmt.Errorf("supported[%d]: %q: not an option tag (RFC 3261 token)", i, tag))
			continue
		}
		c.supported = append(c.supported, tag)
	}
	types := cfg.BodyTypes
	if types == nil {
		types = DefaultBodyTypes
	}
	if len(types) == 0 {
		errs = append(errs, errors.New("body_types: empty: list at least one media type or leave unset for the default"))
	}
	for i, t := range types {
		typ, sub, ok := strings.Cut(t, "/")
		if !ok || typ == "" || sub == "" || !isToken(typ) || !isToken(sub) || typ == "*" || sub == "*" {
			errs = append(errs, fmt.Errorf("body_types[%d]: %q: not a media type (type/subtype, no wildcard, no parameters)", i, t))
			continue
		}
		c.bodyTypes = append(c.bodyTypes, strings.ToLower(t))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("stage/sanity: config: %w", err)
	}
	c.acceptHeader = strings.Join(c.bodyTypes, ", ")
	return c, nil
}

// New returns the sanity stage: every request is checked by a Checker built
// from cfg, and only requests that pass reach next. It fails on an invalid
// Config or when the metrics cannot be registered.
func New(cfg Config) (pipeline.Stage, error) {
	c, err := NewChecker(cfg)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return &handler{next: next, check: c, metrics: m}
	}, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
