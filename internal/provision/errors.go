package provision

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies a provisioning Error; the API maps it to an HTTP status.
type Kind int

// Kinds of provisioning errors.
const (
	Invalid   Kind = iota + 1 // a field is malformed or out of range (400)
	Conflict                  // the change contradicts stored state (409)
	NotFound                  // no such object, or not the caller's (404)
	Forbidden                 // the caller may not do this (403)
)

// Error is a rejection of a change, safe to show to the user: Message names
// the field and why. Err, when set, is for the log only.
type Error struct {
	Kind    Kind
	Code    string // stable machine-readable code, e.g. "duplicate_user"
	Field   string // JSON path of the culprit, e.g. "ip_endpoints[0].address"
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Warning is a remark about a change that was saved anyway.
type Warning struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// The exact messages ConnexCS users know.
const (
	MsgDuplicateUser = "Duplicate User Detected"
	MsgNoCapacity    = "No channel capacity available for your account."
	MsgSMPP          = "SMPP is not supported"
)

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Code: "invalid", Field: field, Message: fmt.Sprintf(format, args...)}
}

func conflict(code, field, msg string) *Error {
	return &Error{Kind: Conflict, Code: code, Field: field, Message: msg}
}

func notFound(what string, id int64) *Error {
	return &Error{Kind: NotFound, Code: "not_found", Message: fmt.Sprintf("%s %d not found", what, id)}
}

func forbidden(msg string) *Error {
	return &Error{Kind: Forbidden, Code: "forbidden", Message: msg}
}

// AsError returns err as a provisioning *Error, if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// prefixed returns e with its field prefixed by p ("ip_endpoints[0]").
func prefixed(p string, err error) error {
	var es Errors
	if errors.As(err, &es) && p != "" {
		out := make(Errors, len(es))
		for i, e := range es {
			out[i] = prefixed(p, e).(*Error)
		}
		return out
	}
	e, ok := AsError(err)
	if !ok || p == "" {
		return err
	}
	c := *e
	if c.Field == "" {
		c.Field = p
	} else {
		c.Field = p + "." + c.Field
	}
	return &c
}

// Errors is every rejection of one change, in the order of the form's
// fields. The first is the one a caller that shows a single error (the
// REST API's code, field and message) reports; AsError finds it.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// Unwrap lets errors.As reach the first *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// AllErrors returns every provisioning rejection in err: the list of an
// Errors, or the one *Error; nil when err is neither.
func AllErrors(err error) []*Error {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	if e, ok := AsError(err); ok {
		return []*Error{e}
	}
	return nil
}

// errList collects the rejections of one change so a form shows them all.
type errList struct{ es Errors }

// add records err when it is a rejection and reports whether it was nil or
// one; a technical failure (false) is the caller's to return at once.
func (l *errList) add(err error) bool {
	if err == nil {
		return true
	}
	es := AllErrors(err)
	if es == nil {
		return false
	}
	l.es = append(l.es, es...)
	return true
}

// err is nil, the one rejection, or all of them.
func (l *errList) err() error {
	switch len(l.es) {
	case 0:
		return nil
	case 1:
		return l.es[0]
	}
	return l.es
}
