// Package api serves sipward's REST API under /api/v1: JSON in and out,
// bearer-token authentication (operator tokens see everything, account
// tokens only their own account, with 404 for anything else), errors as
// {"error": {"code", "message", "field"}}, and an OpenAPI 3 document at
// /api/v1/openapi.json generated from the same route table that serves the
// requests, so the two cannot drift apart.
//
// The live views of active calls and decisions are the cluster's: with a
// Cluster (package nodes) they merge the rows of every up node, each row
// naming its node, and missing_nodes names the nodes that did not answer.
// GET /nodes lists the nodes to the operator.
//
// Handlers return errors; one function (writeError) turns them into
// responses. Provisioning rejections carry their safe message to the client;
// anything else is logged and answered 500 without detail.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/sipward/sipward/internal/provision"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// Server is the REST API.
type Server struct {
	svc    *provision.Service
	auth   *provision.Authenticator
	log    *slog.Logger
	mux    *http.ServeMux
	routes []*route
	extra  []Extension
}

// Extension adds routes served by other components (live views of the SIP
// edge: registrations, calls, decisions). They are documented in OpenAPI too.
type Extension struct {
	Method, Path, Summary, Tag string
	Out                        any // example of the response type, for the document
	Operator                   bool
	Handle                     func(w http.ResponseWriter, r *http.Request, c provision.Caller) error
}

// Options configure New.
type Options struct {
	Service    *provision.Service
	AdminToken string // operator token from config; may be empty
	Log        *slog.Logger
	Extensions []Extension
	// Live, when set, serves the live views of the node: calls,
	// registrations, decisions, and MESSAGE to a user's devices.
	Live Live
	// Cluster, when set with Live, serves the nodes of the cluster and
	// merges the calls and decisions of its nodes; without it they are this
	// node's only, and the node list is empty.
	Cluster Cluster
}

// New returns the API server.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: o.Service, auth: o.Service.NewAuthenticator(o.AdminToken), log: o.Log, mux: http.NewServeMux()}
	s.routes = s.table()
	if o.Live != nil {
		cl := o.Cluster
		if cl == nil {
			cl = local{o.Live}
		}
		o.Extensions = append(liveViews(o.Live, cl, o.Service), o.Extensions...)
	}
	for _, e := range o.Extensions {
		e := e
		s.routes = append(s.routes, &route{method: e.Method, path: e.Path, summary: e.Summary, tag: e.Tag, out: e.Out,
			operator: e.Operator, handle: e.Handle})
	}
	for _, rt := range s.routes {
		rt := rt
		s.mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) { s.serve(rt, w, r) })
	}
	s.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.OpenAPI())
	})
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &apiError{Status: http.StatusNotFound, Code: "not_found", Msg: "no such API endpoint: " + r.Method + " " + r.URL.Path})
	})
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) serve(rt *route, w http.ResponseWriter, r *http.Request) {
	c, err := s.caller(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rt.operator && !c.Operator {
		s.writeError(w, r, &apiError{Status: http.StatusForbidden, Code: "forbidden", Msg: "this needs an operator token"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := rt.handle(w, r, c); err != nil {
		s.writeError(w, r, err)
	}
}

// Caller authenticates a request's bearer token (also used by other HTTP
// components that share the API's authorisation, such as /debug/pprof).
func (s *Server) Caller(r *http.Request) (provision.Caller, error) { return s.caller(r) }

func (s *Server) caller(r *http.Request) (provision.Caller, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return provision.Caller{}, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Msg: "missing bearer token (Authorization: Bearer <token>)"}
	}
	c, err := s.auth.Authenticate(r.Context(), tok)
	if errors.Is(err, provision.ErrBadToken) {
		return c, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Msg: "invalid or revoked token"}
	}
	c.Source, c.Via = clientAddr(r), "api"
	if strings.HasPrefix(r.UserAgent(), "sipward-cli") { // cli.CLIAgent
		c.Via = "cli"
	}
	return c, err
}

// clientAddr is the request's client IP address (the audit trail's source).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// apiError is an error with an HTTP status: Msg goes to the client, Err to the log.
type apiError struct {
	Status int
	Code   string
	Field  string
	Msg    string
	Err    error
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func badRequest(field, format string, args ...any) error {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid", Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ErrorBody is the shape of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong and, when a field is at fault, which.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// Errors lists every rejected field when there is more than one; the
	// first is the one code, message and field above repeat.
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError is one rejected field of a change.
type FieldError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var body ErrorDetail
	status := http.StatusInternalServerError
	var ae *apiError
	if pe, ok := provision.AsError(err); ok {
		body = ErrorDetail{Code: pe.Code, Message: pe.Message, Field: pe.Field}
		if all := provision.AllErrors(err); len(all) > 1 {
			for _, e := range all {
				body.Errors = append(body.Errors, FieldError{Code: e.Code, Message: e.Message, Field: e.Field})
			}
		}
		switch pe.Kind {
		case provision.Invalid:
			status = http.StatusBadRequest
		case provision.Conflict:
			status = http.StatusConflict
		case provision.NotFound:
			status = http.StatusNotFound
		case provision.Forbidden:
			status = http.StatusForbidden
		}
		if pe.Err != nil {
			s.log.Debug("api: change refused", "method", r.Method, "path", r.URL.Path, "err", pe.Err)
		}
	} else if errors.As(err, &ae) {
		status = ae.Status
		body = ErrorDetail{Code: ae.Code, Message: ae.Msg, Field: ae.Field}
	} else {
		s.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		body = ErrorDetail{Code: "internal", Message: "internal error; see the server log"}
	}
	writeJSON(w, status, ErrorBody{Error: body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decodeMap reads a JSON object body.
func decodeMap(r *http.Request) (map[string]any, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Msg: fmt.Sprintf("request body over %d bytes", maxBody)}
		}
		return nil, badRequest("", "read body: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return map[string]any{}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, jsonError(err)
	}
	if m == nil {
		return nil, badRequest("", "body must be a JSON object")
	}
	return m, nil
}

// decodeInto converts a JSON object into v strictly: unknown fields and
// wrong types are refused, naming the field.
func decodeInto(m map[string]any, v any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return badRequest("", "body: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	return nil
}

func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return badRequest(te.Field, "must be %s, not %s", jsonKind(te.Type.String()), te.Value)
	case errors.As(err, &se):
		return badRequest("", "malformed JSON at byte %d: %v", se.Offset, se)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(f, "unknown field")
	}
	return badRequest("", "malformed JSON: %v", err)
}

func jsonKind(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "*int"):
		return "an integer"
	case t == "string", strings.HasSuffix(t, "Direction"), strings.HasSuffix(t, "Protocol"), strings.HasSuffix(t, "NATPing"):
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case t == "time.Time":
		return "an RFC 3339 time"
	}
	return "a " + t
}

// mergePatch applies an RFC 7386 JSON merge patch to dst.
func mergePatch(dst, patch map[string]any) {
	for k, v := range patch {
		if v == nil {
			delete(dst, k)
			continue
		}
		pm, ok1 := v.(map[string]any)
		dm, ok2 := dst[k].(map[string]any)
		if ok1 && ok2 {
			mergePatch(dm, pm)
			continue
		}
		dst[k] = v
	}
}

// toMap turns a value into its JSON object form.
func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func pathID(r *http.Request, name string) (int64, error) {
	s := r.PathValue(name)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, &apiError{Status: http.StatusNotFound, Code: "not_found", Field: name, Msg: fmt.Sprintf("%q is not an ID", s)}
	}
	return id, nil
}

func queryInt(r *http.Request, name string, def int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badRequest(name, "%q: must be a non-negative integer", s)
	}
	return n, nil
}

func queryInt64(r *http.Request, name string) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest(name, "%q: must be a non-negative integer", s)
	}
	return n, nil
}

// List is the shape of every list response.
type List[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// withWarnings writes v with a "warnings" member when there are any.
func withWarnings(v any, warns []provision.Warning) (any, error) {
	if len(warns) == 0 {
		return v, nil
	}
	m, err := toMap(v)
	if err != nil {
		return nil, err
	}
	m["warnings"] = warns
	return m, nil
}

// BadRequest is a 400 naming the field, for extensions.
func BadRequest(field, msg string) error { return badRequest(field, "%s", msg) }

// NotFound is a 404, for extensions.
func NotFound(msg string) error {
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Msg: msg}
}

// Conflict is a 409 with a code, for extensions.
func Conflict(code, msg string) error {
	return &apiError{Status: http.StatusConflict, Code: code, Msg: msg}
}
