package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// page is what every page template gets.
type page struct {
	Title     string
	S         *session // nil on the sign-in and error pages of anonymous users
	Nav       string   // the active top-level section
	Flash     []flash
	Account   *store.Account // set on an account's pages (tabs, breadcrumbs)
	Tab       string         // the account tab
	Sub       bool           // a page of one of the account's objects (an IP endpoint, a SIP user)
	Canonical string         // the page's own URL when it answers a POST (the browser shows it)
	Data      any
}

// Operator reports whether the signed-in user is the operator.
func (p page) Operator() bool { return p.S != nil && p.S.Caller.Operator }

var funcs = template.FuncMap{
	"inc":      func(i int) int { return i + 1 },
	"time":     fmtTime,
	"ago":      func(t time.Time) string { return fmtAgo(t, time.Now()) },
	"join":     strings.Join,
	"ask":      ask,
	"editLink": func(href, row, label string) editLink { return editLink{href, row, label} },
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"limit": func(n int) string {
		if n == 0 {
			return "unlimited"
		}
		return strconv.Itoa(n)
	},
	"ms": func(f float64) string {
		if f == 0 {
			return "–"
		}
		return strconv.FormatFloat(f, 'f', 1, 64) + " ms"
	},
	"percent": func(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + " %" },
	"pct": func(n, of int) int {
		if of <= 0 {
			return 0
		}
		return min(100, n*100/of)
	},
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

func fmtAgo(t, now time.Time) string {
	if t.IsZero() {
		return "–"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}

// parsePages parses each page template with the layout, the partials and the
// shared pieces ("shared-name.html": the charts).
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" || base == "partials.html" || strings.HasPrefix(base, "shared-") {
			continue // "shared-name.html": pieces parsed with every page
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/partials.html", "templates/shared-*.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", n, err)
		}
		out[base] = t
	}
	return out, nil
}

// render writes a page with status. Pages are rendered into a buffer first,
// so that a template error becomes a 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	s.exec(w, r, status, name, "layout", p)
}

// fragment writes one named template of a page (an htmx swap).
func (s *Server) fragment(w http.ResponseWriter, r *http.Request, name, block string, data any) {
	s.exec(w, r, http.StatusOK, name, block, data)
}

func (s *Server) exec(w http.ResponseWriter, r *http.Request, status int, name, block string, data any) {
	t := s.pages[name]
	if t == nil {
		s.log.Error("web: no such template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if p, ok := data.(page); ok && p.Flash == nil && block == "layout" {
		p.Flash = s.takeFlash(w, r)
		data = p
	}
	if status == http.StatusOK && r.Method == http.MethodPost && refused(data) {
		status = http.StatusUnprocessableEntity
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, block, data); err != nil {
		s.log.Error("web: render", "template", name, "block", block, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// refused reports whether data (a page or a fragment's data) holds a form
// with errors among the fields of the struct it holds, or of the structs
// that struct embeds (as every page's data keeps its forms). A POST that
// shows one answers 422, whichever handler rendered it.
func refused(data any) bool {
	if p, ok := data.(page); ok {
		data = p.Data
	}
	return holdsRefused(reflect.ValueOf(data))
}

var formType = reflect.TypeFor[*form]()

func holdsRefused(v reflect.Value) bool {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return false
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return false
	}
	for i := range v.NumField() {
		fv, sf := v.Field(i), v.Type().Field(i)
		if fv.Type() == formType {
			// Read as HasErrors does, through reflection: a form inside an
			// unexported embedded struct cannot be had as an interface.
			if !fv.IsNil() && (fv.Elem().FieldByName("errs").Len() > 0 || fv.Elem().FieldByName("Error").String() != "") {
				return true
			}
			continue
		}
		if sf.Anonymous && holdsRefused(fv) {
			return true
		}
	}
	return false
}

type errorData struct{ Heading, Message string }

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, ss *session, status int, heading, msg string) {
	s.render(w, r, status, "error.html", page{Title: heading, S: ss, Data: errorData{heading, msg}})
}

// redirect answers a successful POST: see the result at target, with notices.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, target string, msgs ...flash) {
	if len(msgs) > 0 {
		s.setFlash(w, r, msgs...)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// ---- Forms: what the user typed, and the errors to show next to it.

// form holds a submitted (or stored) form's values as text, so that a
// refused form shows exactly what was typed, and the errors by field name
// (the API's JSON names: "address", "voicemail.email").
type form struct {
	vals   url.Values
	errs   map[string]string
	used   map[string]bool
	Error  string // an error that belongs to no field
	Warns  []string
	Fields []*field // every field built, for the error summary
}

func newForm(vals url.Values) *form {
	if vals == nil {
		vals = url.Values{}
	}
	return &form{vals: vals, errs: map[string]string{}, used: map[string]bool{}}
}

func (f *form) get(name string) string { return strings.TrimSpace(f.vals.Get(name)) }
func (f *form) raw(name string) string { return f.vals.Get(name) }

// Value is what was typed in name, for templates that lay out inputs themselves.
func (f *form) Value(name string) string { return f.vals.Get(name) }
func (f *form) on(name string) bool {
	v := f.vals.Get(name)
	return v == "on" || v == "true" || v == "1"
}

// HasErrors reports whether anything was refused.
func (f *form) HasErrors() bool { return len(f.errs) > 0 || f.Error != "" }

// Errored lists the fields with errors, for the summary.
func (f *form) Errored() []*field {
	var out []*field
	for _, fl := range f.Fields {
		if fl.Error != "" {
			out = append(out, fl)
		}
	}
	return out
}

// int reads a whole number; empty is 0. A malformed one is an error on the field.
func (f *form) int(name string) int {
	v := f.get(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		f.fail(name, "must be a whole number")
		return 0
	}
	return n
}

// optInt reads a number that may be left empty (nil: inherit).
func (f *form) optInt(name string) *int {
	if f.get(name) == "" {
		return nil
	}
	return new(f.int(name))
}

func (f *form) int64(name string) int64 {
	v := f.get(name)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		f.fail(name, "must be a whole number")
		return 0
	}
	return n
}

func (f *form) fail(name, msg string) {
	if _, ok := f.errs[name]; !ok {
		f.errs[name] = msg
	}
}

var indexSuffix = regexp.MustCompile(`\[[0-9]+\]`)

// refuse records a refused change: each provisioning error goes next to
// its field, or above the form when no field is named. It returns false
// for errors that are not rejections (technical failures), which the
// caller returns.
func (f *form) refuse(err error) bool {
	all := provision.AllErrors(err)
	if all == nil {
		if he, ok := err.(httpError); ok {
			f.Error = he.msg
			return true
		}
		return false
	}
	for _, pe := range all {
		name := indexSuffix.ReplaceAllString(pe.Field, "")
		if name == "" {
			f.Error = strings.TrimSpace(f.Error + " " + pe.Message)
			continue
		}
		f.fail(name, pe.Message)
	}
	return true
}

// finish moves errors no built field showed above the form.
func (f *form) finish() {
	for name, msg := range f.errs {
		if !f.used[name] {
			if f.Error != "" {
				f.Error += " "
			}
			f.Error += name + ": " + msg
		}
	}
}

// field is one input as the templates render it.
type field struct {
	Name, ID, Label, Type string // Type: text, number, password, email, select, checkbox, textarea, checkboxes
	Value                 string
	Checked               bool
	Options               []option
	Error, Help           string
	Required              bool
	Autocomplete          string
	Inputmode             string
	Placeholder           string
	Pattern               string
	Accept                string // a file input's accepted types
	// ShowIf ("direction=receives") shows the field only while the form's
	// control of that name has that value; Off: it has not now, so the
	// field is hidden and disabled (not posted). app.js keeps both in step.
	ShowIf string
	Off    bool
}

type option struct {
	Value, Label string
	Selected     bool
}

func fieldID(name string) string {
	return "f-" + strings.NewReplacer(".", "-", "_", "-").Replace(name)
}

// field builds an input bound to the form's value and error for name.
func (f *form) field(name, label, typ string) *field {
	fl := &field{Name: name, ID: fieldID(name), Label: label, Type: typ, Value: f.raw(name), Error: f.errs[name]}
	switch typ {
	case "checkbox":
		fl.Checked = f.on(name)
	case "password":
		fl.Value = "" // never echo a secret back
		fl.Autocomplete = "new-password"
	case "number":
		fl.Inputmode = "numeric"
		fl.Type = "text" // keeps what was typed, even when it is not a number
		fl.Pattern = "[0-9]*"
	}
	f.used[name] = true
	f.Fields = append(f.Fields, fl)
	return fl
}

func (fl *field) help(s string) *field { fl.Help = s; return fl }

// showIf shows the field only while the control name has value; off says
// it has not now.
func (fl *field) showIf(name, value string, off bool) *field {
	fl.ShowIf, fl.Off = name+"="+value, off
	return fl
}
func (fl *field) req() *field          { fl.Required = true; return fl }
func (fl *field) auto(s string) *field { fl.Autocomplete = s; return fl }
func (fl *field) ph(s string) *field   { fl.Placeholder = s; return fl }

// choices makes a select of values (labels default to the values).
func (fl *field) choices(values ...string) *field {
	fl.Type = "select"
	for i := 0; i < len(values); i += 2 {
		v, l := values[i], values[i+1]
		fl.Options = append(fl.Options, option{Value: v, Label: l, Selected: v == fl.Value})
	}
	return fl
}

// checkboxes makes a group of checkboxes, one per value, checked when the
// form has that value for name.
func (f *form) checkboxes(name, label string, values []string) *field {
	fl := f.field(name, label, "checkboxes")
	have := map[string]bool{}
	for _, v := range f.vals[name] {
		have[strings.ToLower(v)] = true
	}
	for _, v := range values {
		fl.Options = append(fl.Options, option{Value: v, Label: v, Selected: have[strings.ToLower(v)]})
	}
	return fl
}

// Codecs that may be restricted, as provision knows them.
var codecNames = []string{"PCMU", "PCMA", "G722", "G723", "G726-32", "G728", "G729", "GSM", "iLBC", "opus", "speex",
	"AMR", "AMR-WB", "telephone-event", "H261", "H263", "H264", "VP8", "VP9", "T38"}

// The media relay modes, for endpoint and SIP user forms.
var relayChoices = []string{"auto", "Auto (when behind NAT)", "always", "Always", "never", "Never"}

const relayHelp = "Whether its calls' media go through the media relay (rtpengine, sipward serve --rtpengine): auto when it is behind NAT or its SDP names a private address. Without a relay configured nothing is relayed."

// The session timer fields (RFC 4028), for endpoint and SIP user forms.
const (
	sessionTimersHelp = "sipward keeps a session timer (RFC 4028) on this device's calls: it offers Session-Expires, " +
		"refreshes the call itself (re-INVITE, or UPDATE where the peer allows it) when the peer does not, " +
		"and ends a call whose refresh fails or whose peer stops refreshing, freeing its channel. " +
		"Off: no Session-Expires is offered or answered."
	sessionExpiresHelp = "The interval sipward offers, 90 to 86400 seconds (default 1800). " +
		"A peer asking for less than 90 s is answered 422 with Min-SE: 90."
)

// sessionDefaults are the session timer fields of a new endpoint's or SIP
// user's form: on, the default interval.
func sessionDefaults(v url.Values) url.Values {
	v.Set("session_timers", "on")
	v.Set("session_expires", strconv.Itoa(store.DefaultSessionExpires))
	return v
}

var protocolChoices = []string{"udp", "UDP", "tcp", "TCP", "tls", "TLS", "tls-srtp", "TLS & SRTP"}
