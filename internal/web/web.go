// Package web serves sipward's web UI: the operator's control panel and the
// customer portal, from the same binary, on the HTTP address at "/" (the
// REST API stays under /api/).
//
// Pages are rendered on the server with html/template from files embedded in
// the binary; a small vendored script (htmx, static/htmx.min.js) adds live
// refresh, search as you type, the rewrite "Testing Input" box and its
// "Generate from examples" panel, and every form also works without it.
// The dashboard (the start page, "/") and the SIP user page draw their
// charts with uPlot 1.6.32 (MIT; static/uPlot.iife.min.js, uPlot.min.css and
// uPlot.LICENSE, from npm "uplot") from a JSON data block, in
// static/dashboard.js; each chart's figures are also in a table, for
// readers without script. There is no build step.
//
// Sign-in is by username and password (logins in the store, argon2id hashes).
// A session is a cookie signed with HMAC-SHA256 under a key kept in the
// store, so sessions survive restarts and are valid on every node; it names
// the login and a fingerprint of its password hash (changing the password
// ends its sessions), expires after Options.SessionTTL, and is HttpOnly,
// SameSite=Lax, and Secure when served over TLS or when Options.SecureCookies
// says so (behind a TLS-terminating proxy). Every state-changing request
// carries a CSRF token bound to the session (a hidden form field, or the
// X-CSRF-Token header htmx sends), and cross-origin requests are refused
// (net/http.CrossOriginProtection). Failed sign-ins are counted per username
// and source address, and per source address, and lock them out for a while;
// signing out revokes the session. Both are kept in memory on each node by
// default (package signin), or shared by every node through
// Redis (Options.Lockouts and Options.Revocations, from package cluster), so
// that failures spread over the nodes lock out at the same count and a
// session signed out on one node is refused on all.
//
// Authorisation is the API's: every read and change goes through
// provision.Service with the login's provision.Caller, so an account login
// sees and changes only its own account, and another account's pages answer
// 404.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/signin"
	"github.com/sipward/sipward/internal/store"
)

//go:embed templates static
var assets embed.FS

// Live is what the UI shows of the SIP edge's live state. app wires it to
// the running edge; nil shows the live pages as unavailable.
type Live interface {
	// Calls lists active calls; accountID 0 lists every account's.
	Calls(accountID int64) []live.Call
	// Registrations lists registered contacts; 0 and "" do not filter.
	Registrations(accountID int64, username string) []live.Binding
	// Decisions lists recent call and registration decisions, newest first.
	Decisions(f live.DecisionFilter) []live.Decision
	// ChannelsInUse returns the channels an account's calls hold now, on
	// every node sharing the live state.
	ChannelsInUse(ctx context.Context, accountID int64) (int, error)
}

// Stats is the dashboard's data: the time series of every node of the
// cluster (package series). app wires it; nil shows the dashboard as
// unavailable.
type Stats interface {
	// Dashboard returns the view q selects: every account's traffic when
	// q.AccountID is 0, else that account's.
	Dashboard(ctx context.Context, q series.Query) (series.View, error)
	// Latency returns a SIP user's NAT-ping round trips over the last span
	// (at most series.Span), oldest first.
	Latency(ctx context.Context, sipUserID int64, span time.Duration) ([]series.LatencyPoint, error)
}

// Messenger sends a SIP MESSAGE to a SIP user's registered devices.
type Messenger interface {
	// SendMessage sends text to every registered contact of u and returns
	// how many accepted it.
	SendMessage(ctx context.Context, u store.SIPUser, text string) (int, error)
}

// ErrNoMessenger is what sending a message answers when the node has no
// Messenger.
var ErrNoMessenger = errors.New("sending SIP messages is not available yet: this node has no SIP MESSAGE sender")

// Options configure New.
type Options struct {
	Service   *provision.Service
	Live      Live      // nil: live pages say the SIP edge is not available
	Messenger Messenger // nil: the message form answers ErrNoMessenger
	Nodes     Nodes     // nil: the Nodes page says the list is not available
	Stats     Stats     // nil: the dashboard says its figures are not available
	// SecureCookies marks cookies Secure even on plain HTTP: set it when a
	// TLS-terminating proxy serves the UI. Requests that arrive over TLS
	// get Secure cookies anyway.
	SecureCookies bool
	SessionTTL    time.Duration        // how long a sign-in lasts; 0: 12 hours
	Lockout       signin.LockoutPolicy // zero: signin.DefaultLockout
	// Lockouts counts failed sign-ins under its own policy (Lockout is then
	// unused); cluster.RedisLockouts counts them for every node. nil: in
	// memory on this node, under Lockout.
	Lockouts signin.Lockouts
	// Revocations remembers signed-out sessions; cluster.RedisRevocations
	// refuses them on every node. nil: in memory, on this node only.
	Revocations signin.Revocations
	Log         *slog.Logger
	Now         func() time.Time
}

// DefaultSessionTTL is how long a sign-in lasts unless configured.
const DefaultSessionTTL = 12 * time.Hour

// Server is the web UI. It is an http.Handler for "/".
type Server struct {
	svc       *provision.Service
	live      Live
	messenger Messenger
	nodes     Nodes
	stats     Stats
	secure    bool
	ttl       time.Duration
	log       *slog.Logger
	now       func() time.Time
	keys      sessionKeys
	revoked   signin.Revocations
	lock      signin.Lockouts
	verify    chan struct{} // bounds concurrent password checks (argon2id uses memory)
	pages     map[string]*template.Template
	static    http.Handler
	handler   http.Handler
}

// New returns the web UI. It reads (or makes, at first start) the session
// signing key from the store.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Service == nil {
		return nil, errors.New("web: no provisioning service")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.Lockout == (signin.LockoutPolicy{}) {
		o.Lockout = signin.DefaultLockout
	}
	key, err := o.Service.SessionKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("web: session key: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	if o.Lockouts == nil {
		o.Lockouts = signin.NewLocalLockouts(o.Lockout)
	}
	if o.Revocations == nil {
		o.Revocations = signin.NewLocalRevocations()
	}
	s := &Server{
		svc: o.Service, live: o.Live, messenger: o.Messenger, nodes: o.Nodes, stats: o.Stats, secure: o.SecureCookies, ttl: o.SessionTTL,
		log: o.Log, now: o.Now, keys: newSessionKeys(key), revoked: o.Revocations,
		lock: o.Lockouts, verify: make(chan struct{}, 4), pages: pages,
		static: http.StripPrefix("/static/", http.FileServerFS(static)),
	}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP serves the UI.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// handlerFunc is a page handler of a signed-in user; it returns an error
// that serveErr turns into a page.
type handlerFunc func(w http.ResponseWriter, r *http.Request, ss *session) error

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", cacheStatic(s.static))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginSubmit)

	auth := func(pattern string, h handlerFunc) { mux.Handle(pattern, s.authed(h)) }
	auth("POST /logout", s.logout)
	auth("GET /{$}", s.dashboardPage)
	auth("GET /dashboard/live", s.dashboardLive)
	auth("GET /password", s.passwordPage)
	auth("POST /password", s.passwordSubmit)

	auth("GET /accounts", s.accountsPage)
	auth("GET /accounts/new", s.accountNewPage)
	auth("POST /accounts/new", s.accountCreate)
	auth("GET /accounts/{aid}", s.accountEndpoints)
	auth("GET /accounts/{aid}/budget", s.accountBudget)
	auth("GET /accounts/{aid}/settings", s.accountSettingsPage)
	auth("POST /accounts/{aid}/settings", s.accountSettingsSubmit)
	auth("POST /accounts/{aid}/delete", s.accountDelete)

	auth("GET /accounts/{aid}/ip/new", s.endpointNewPage)
	auth("POST /accounts/{aid}/ip/new", s.endpointCreate)
	auth("GET /accounts/{aid}/ip/{id}", s.endpointPage)
	auth("POST /accounts/{aid}/ip/{id}", s.endpointSubmit)
	auth("POST /accounts/{aid}/ip/{id}/delete", s.endpointDelete)

	s.userRoutes(mux, auth)

	for _, k := range []string{"ip", "users"} {
		base := "/accounts/{aid}/" + k + "/{id}/rewrites"
		auth("POST "+base, s.rewriteCreate)
		auth("POST "+base+"/test", s.rewriteTest)
		auth("POST "+base+"/generate", s.rewriteGenerate)
		auth("POST "+base+"/{rid}", s.rewriteUpdate)
		auth("POST "+base+"/{rid}/delete", s.rewriteDelete)
	}

	auth("GET /accounts/{aid}/cli", s.accountCLI)
	auth("POST /accounts/{aid}/cli", s.cliCreate)
	auth("POST /accounts/{aid}/cli/{id}", s.cliUpdate)
	auth("POST /accounts/{aid}/cli/{id}/delete", s.cliDelete)
	auth("GET /accounts/{aid}/dids", s.accountDIDs)
	auth("POST /accounts/{aid}/dids", s.didCreate)
	auth("POST /accounts/{aid}/dids/{id}", s.didUpdate)
	auth("POST /accounts/{aid}/dids/{id}/delete", s.didDelete)
	auth("GET /accounts/{aid}/logins", s.accountLogins)
	auth("POST /accounts/{aid}/logins", s.loginCreate)
	auth("POST /accounts/{aid}/logins/{id}/password", s.loginReset)
	auth("POST /accounts/{aid}/logins/{id}/delete", s.loginDelete)

	auth("GET /ip", s.globalEndpoints)
	auth("GET /users", s.globalUsers)
	auth("GET /registrations", s.registrationsPage)
	auth("GET /calls", s.callsPage)
	auth("GET /decisions", s.decisionsPage)
	auth("GET /audit", s.auditPage)
	auth("GET /firewall", s.firewallPage)
	auth("POST /firewall", s.banCreate)
	auth("POST /firewall/{id}/unblock", s.banUnblock)
	auth("GET /nodes", s.nodesPage)
	auth("GET /profiles", s.profilesPage)
	auth("POST /profiles", s.profileCreate)
	auth("GET /profiles/{id}", s.profilePage)
	auth("POST /profiles/{id}", s.profileSubmit)
	auth("POST /profiles/{id}/delete", s.profileDelete)

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ss, _ := s.session(r)
		s.renderError(w, r, ss, http.StatusNotFound, "Page not found", "There is no page at this address.")
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, nil, http.StatusForbidden, "Request refused", "This request came from another site and was refused.")
	}))
	return securityHeaders(cop.Handler(mux))
}

// Bounds of a request body: a form's, and a file upload's. A voicemail
// greeting is under 1 MiB; the larger bound lets a file of the wrong format
// reach provisioning, which says what is wrong with it.
const (
	maxForm   = 1 << 20
	maxUpload = 10 << 20
)

// userRoutes are the pages and actions of an account's SIP users, their
// voicemail's among them.
func (s *Server) userRoutes(mux *http.ServeMux, auth func(string, handlerFunc)) {
	auth("GET /accounts/{aid}/users", s.accountUsers)
	auth("GET /accounts/{aid}/users/new", s.userNewPage)
	auth("POST /accounts/{aid}/users/new", s.userCreate)
	auth("GET /accounts/{aid}/users/{id}", s.userPage)
	auth("POST /accounts/{aid}/users/{id}", s.userSubmit)
	auth("POST /accounts/{aid}/users/{id}/delete", s.userDelete)
	auth("POST /accounts/{aid}/users/{id}/password", s.userPassword)
	auth("POST /accounts/{aid}/users/{id}/message", s.userMessage)
	vm := "/accounts/{aid}/users/{id}/voicemail"
	auth("GET "+vm+"/messages/{mid}/audio", s.vmAudio)
	auth("POST "+vm+"/messages/{mid}/read", s.vmRead)
	auth("POST "+vm+"/messages/{mid}/delete", s.vmDelete)
	auth("POST "+vm+"/pin", s.vmPIN)
	mux.Handle("POST "+vm+"/greeting", s.authedBody(s.vmGreeting, maxUpload)) // a file upload
	auth("POST "+vm+"/greeting/delete", s.vmGreetingDelete)
}

// authed requires a session (redirecting to the sign-in page otherwise) and,
// on state-changing requests, a valid CSRF token.
func (s *Server) authed(h handlerFunc) http.Handler { return s.authedBody(h, maxForm) }

// authedBody is authed with a request body of up to limit bytes. Forms may
// be URL-encoded or multipart (file uploads): either way the CSRF token is
// their "csrf" field.
func (s *Server) authedBody(h handlerFunc, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss, ok := s.session(r)
		if !ok {
			s.toLogin(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			if err := parseForm(r, limit); err != nil {
				if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
					s.renderError(w, r, ss, http.StatusRequestEntityTooLarge, "Too large",
						fmt.Sprintf("The form is larger than %d MiB and was not read.", limit>>20))
					return
				}
				s.renderError(w, r, ss, http.StatusBadRequest, "Bad request", "The form could not be read.")
				return
			}
			if !s.keys.checkCSRF(ss, csrfOf(r)) {
				s.renderError(w, r, ss, http.StatusForbidden, "Form expired",
					"This form expired or did not come from this site. Reload the page and try again.")
				return
			}
		}
		if err := h(w, r, ss); err != nil {
			s.serveErr(w, r, ss, err)
		}
	})
}

// parseForm reads a URL-encoded or multipart form, whose files are kept in
// memory up to limit.
func parseForm(r *http.Request, limit int64) error {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
		return r.ParseMultipartForm(limit)
	}
	return r.ParseForm()
}

// toLogin sends an anonymous request to the sign-in page, remembering where
// it was going when it was a page load.
func (s *Server) toLogin(w http.ResponseWriter, r *http.Request) {
	target := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// serveErr turns a handler error into a page: provisioning rejections by
// kind, anything else a logged 500.
func (s *Server) serveErr(w http.ResponseWriter, r *http.Request, ss *session, err error) {
	if pe, ok := provision.AsError(err); ok {
		switch pe.Kind {
		case provision.NotFound:
			s.renderError(w, r, ss, http.StatusNotFound, "Page not found", "There is no page at this address.")
			return
		case provision.Forbidden:
			s.renderError(w, r, ss, http.StatusForbidden, "Not allowed", pe.Message)
			return
		default:
			s.renderError(w, r, ss, http.StatusBadRequest, "Not saved", pe.Message)
			return
		}
	}
	var he httpError
	if errors.As(err, &he) {
		s.renderError(w, r, ss, he.status, he.title, he.msg)
		return
	}
	s.log.Error("web: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	s.renderError(w, r, ss, http.StatusInternalServerError, "Something went wrong", "The server could not answer; the error is in its log.")
}

// httpError is a handler error with its own status and text.
type httpError struct {
	status     int
	title, msg string
}

func (e httpError) Error() string { return e.msg }

var errNotFound = httpError{http.StatusNotFound, "Page not found", "There is no page at this address."}

func operatorOnly(ss *session) error {
	if !ss.Caller.Operator {
		return errNotFound
	}
	return nil
}

// securityHeaders sets the headers every answer carries. The policy allows
// only this origin's scripts and styles: no inline script, no eval.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }
