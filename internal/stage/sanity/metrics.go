package sanity

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/promreg"
)

// reason is why a request was stopped; its String is the "reason" label of
// sipward_sanity_rejected_total.
type reason uint8

// Reasons, one per check. reasonNone means the request passed.
const (
	reasonNone          reason = iota
	reasonMissingHeader        // drop: no Via, CSeq, From, To or Call-ID
	reasonMethod               // 400: method is not a token
	reasonVersion              // 505
	reasonBadChar              // 400: CR, LF or NUL in a header or the request line
	reasonHeaderCount          // 400
	reasonHeaderSize           // 400
	reasonMessageSize          // 513
	reasonDuplicate            // 400: single-valued header repeated
	reasonURIScheme            // 416
	reasonURIHeaders           // 400: escaped headers in the Request-URI
	reasonIPv6Reference        // 400: a [bracketed] URI host that is no IPv6 address
	reasonMaxForwards          // 400: over 255
	reasonTooManyHops          // 483
	reasonCSeq                 // 400: number out of range or method mismatch
	reasonVia                  // 400: top Via malformed
	reasonBranch               // 400: top Via branch missing or bare magic cookie
	reasonAOR                  // 400: REGISTER To is not sip/sips
	reasonContentLength        // 400
	reasonContentType          // 400: body without Content-Type
	reasonExtension            // 420
	reasonMediaType            // 415
	reasonAccept               // 406
	numReasons
)

var reasonLabels = [numReasons]string{
	reasonNone:          "none",
	reasonMissingHeader: "missing_header",
	reasonMethod:        "method",
	reasonVersion:       "version",
	reasonBadChar:       "bad_char",
	reasonHeaderCount:   "header_count",
	reasonHeaderSize:    "header_size",
	reasonMessageSize:   "message_size",
	reasonDuplicate:     "duplicate_header",
	reasonURIScheme:     "uri_scheme",
	reasonURIHeaders:    "uri_headers",
	reasonIPv6Reference: "ipv6_reference",
	reasonMaxForwards:   "max_forwards",
	reasonTooManyHops:   "too_many_hops",
	reasonCSeq:          "cseq",
	reasonVia:           "via",
	reasonBranch:        "branch",
	reasonAOR:           "aor_scheme",
	reasonContentLength: "content_length",
	reasonContentType:   "content_type",
	reasonExtension:     "bad_extension",
	reasonMediaType:     "media_type",
	reasonAccept:        "not_acceptable",
}

// String returns the metric label of r.
func (r reason) String() string {
	if r < numReasons {
		return reasonLabels[r]
	}
	return "unknown"
}

// metrics are the stage's Prometheus collectors.
type metrics struct {
	// rejected is indexed by reason; rejected[reasonNone] is unused.
	rejected          [numReasons]prometheus.Counter
	maxForwardsAbsent prometheus.Counter
}

// newMetrics builds the collectors and registers them on reg, if not nil.
// Every reason label is created up front, so each series exists from the
// start at 0 and counting allocates nothing.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sipward",
		Subsystem: "sanity",
		Name:      "rejected_total",
		Help:      "Requests stopped by the sanity stage (answered or dropped), by reason.",
	}, []string{"reason"})
	absent := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "sipward",
		Subsystem: "sanity",
		Name:      "max_forwards_absent_total",
		Help:      "Requests passed by the sanity stage without a Max-Forwards header field.",
	})
	if reg != nil {
		var err error
		if rejected, err = register(reg, rejected); err != nil {
			return nil, err
		}
		if absent, err = register(reg, absent); err != nil {
			return nil, err
		}
	}
	m := &metrics{maxForwardsAbsent: absent}
	for r := reasonNone + 1; r < numReasons; r++ {
		m.rejected[r] = rejected.WithLabelValues(r.String())
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	return promreg.Register(reg, c, "stage/sanity")
}
