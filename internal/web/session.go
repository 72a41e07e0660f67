package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// Cookies the UI sets. All are HttpOnly and host-only.
const (
	cookieSession = "sipward_session" // the signed session
	cookieSignin  = "sipward_signin"  // random value the sign-in form's CSRF token is bound to
	cookieFlash   = "sipward_flash"   // a signed one-shot notice for the next page
)

// sessionKeys are derived from the store's session key, one per use, so
// that a value signed for one purpose is never valid for another.
type sessionKeys struct{ session, csrf, signin, flash, fingerprint []byte }

func newSessionKeys(master []byte) sessionKeys {
	d := func(label string) []byte {
		m := hmac.New(sha256.New, master)
		m.Write([]byte("sipward web " + label))
		return m.Sum(nil)
	}
	return sessionKeys{session: d("session"), csrf: d("csrf"), signin: d("signin"), flash: d("flash"), fingerprint: d("fingerprint")}
}

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// sign returns payload and its MAC, both base64url, joined by a dot.
func sign(key []byte, payload string) string {
	b := base64.RawURLEncoding
	return b.EncodeToString([]byte(payload)) + "." + b.EncodeToString(mac(key, payload))
}

// verify returns the payload of a value made by sign with key.
func verify(key []byte, v string) (string, bool) {
	p, m, ok := strings.Cut(v, ".")
	if !ok {
		return "", false
	}
	b := base64.RawURLEncoding
	payload, err1 := b.DecodeString(p)
	got, err2 := b.DecodeString(m)
	if err1 != nil || err2 != nil || !hmac.Equal(got, mac(key, string(payload))) {
		return "", false
	}
	return string(payload), true
}

func randomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b)
}

// fingerprint binds a session to the login's password hash: a new password
// ends every session signed with the old one.
func (k sessionKeys) fingerprintOf(l store.Login) string {
	return hex.EncodeToString(mac(k.fingerprint, strconv.FormatInt(l.ID, 10), l.Hash)[:12])
}

// csrfToken is the CSRF token of a session.
func (k sessionKeys) csrfToken(sid string) string {
	return base64.RawURLEncoding.EncodeToString(mac(k.csrf, sid)[:24])
}

func (k sessionKeys) checkCSRF(ss *session, token string) bool {
	want := k.csrfToken(ss.SID)
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(want)) == 1
}

// csrfOf returns the CSRF token a request carries: the X-CSRF-Token header
// (htmx) or the csrf form field.
func csrfOf(r *http.Request) string {
	if t := r.Header.Get("X-CSRF-Token"); t != "" {
		return t
	}
	return r.PostFormValue("csrf")
}

// session is a signed-in user.
type session struct {
	SID      string
	LoginID  int64
	Username string
	Caller   provision.Caller
	Expires  time.Time
	CSRF     string
}

// sessionPayload is what the session cookie carries (signed, not secret).
func sessionPayload(loginID int64, issued, expires time.Time, fp, sid string) string {
	return strings.Join([]string{"1", strconv.FormatInt(loginID, 10), strconv.FormatInt(issued.Unix(), 10),
		strconv.FormatInt(expires.Unix(), 10), fp, sid}, "|")
}

// session returns the request's session, if it has a valid one: signed,
// not expired, not signed out (Revocations), and its login still exists with the
// same password.
func (s *Server) session(r *http.Request) (*session, bool) {
	c, err := r.Cookie(cookieSession)
	if err != nil {
		return nil, false
	}
	payload, ok := verify(s.keys.session, c.Value)
	if !ok {
		return nil, false
	}
	f := strings.Split(payload, "|")
	if len(f) != 6 || f[0] != "1" {
		return nil, false
	}
	id, err1 := strconv.ParseInt(f[1], 10, 64)
	exp, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	expires := time.Unix(exp, 0)
	if !s.now().Before(expires) || s.revoked.Revoked(f[5], s.now()) {
		return nil, false
	}
	l, err := s.svc.GetLogin(r.Context(), provision.Operator, id)
	if err != nil {
		return nil, false
	}
	if subtle.ConstantTimeCompare([]byte(s.keys.fingerprintOf(l)), []byte(f[4])) != 1 {
		return nil, false
	}
	caller := provision.LoginCaller(l)
	caller.Source, caller.Via = sourceAddr(r), "web"
	return &session{SID: f[5], LoginID: l.ID, Username: l.Username, Caller: caller, Expires: expires,
		CSRF: s.keys.csrfToken(f[5])}, true
}

func (s *Server) secureRequest(r *http.Request) bool { return s.secure || r.TLS != nil }

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration, path string) {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: s.secureRequest(r)}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
		c.Expires = s.now().Add(maxAge)
	}
	http.SetCookie(w, c)
}

// startSession signs l in: a new session (and session ID) every time.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, l store.Login) {
	now := s.now()
	v := sign(s.keys.session, sessionPayload(l.ID, now, now.Add(s.ttl), s.keys.fingerprintOf(l), randomID()))
	s.setCookie(w, r, cookieSession, v, s.ttl, "/")
}

func (s *Server) endSession(w http.ResponseWriter, r *http.Request, ss *session) {
	if ss != nil {
		s.revoked.Revoke(ss.SID, ss.Expires, s.now())
	}
	s.setCookie(w, r, cookieSession, "", -1, "/")
}

// flash is a notice shown once on the next page (after a redirect).
type flash struct {
	Kind string `json:"k"` // ok | warn | error
	Text string `json:"t"`
}

func (s *Server) setFlash(w http.ResponseWriter, r *http.Request, msgs ...flash) {
	b, err := json.Marshal(msgs)
	if err != nil || len(b) > 3000 {
		return
	}
	s.setCookie(w, r, cookieFlash, sign(s.keys.flash, string(b)), time.Minute, "/")
}

// takeFlash returns the notices left for this page and clears them.
func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) []flash {
	c, err := r.Cookie(cookieFlash)
	if err != nil {
		return nil
	}
	s.setCookie(w, r, cookieFlash, "", -1, "/")
	payload, ok := verify(s.keys.flash, c.Value)
	if !ok {
		return nil
	}
	var msgs []flash
	if json.Unmarshal([]byte(payload), &msgs) != nil {
		return nil
	}
	return msgs
}
