package web

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

type loginData struct {
	Form *form
	Next string
	CSRF string
}

// signinToken is the CSRF token of the sign-in form: bound to a random
// cookie value, so that another site cannot sign a browser in as someone
// else (login CSRF).
func (s *Server) signinToken(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if c, err := r.Cookie(cookieSignin); err == nil && len(c.Value) == 32 {
		v = c.Value
	} else {
		v = randomID()
		s.setCookie(w, r, cookieSignin, v, 12*time.Hour, "/login")
	}
	return base64.RawURLEncoding.EncodeToString(mac(s.keys.signin, v)[:24])
}

func (s *Server) checkSigninToken(r *http.Request) bool {
	c, err := r.Cookie(cookieSignin)
	if err != nil {
		return false
	}
	want := base64.RawURLEncoding.EncodeToString(mac(s.keys.signin, c.Value)[:24])
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// localPath keeps a redirect target on this site: a path, not "//host".
func localPath(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(next, "/\\") || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.session(r); ok {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login.html", page{Title: "Sign in",
		Data: loginData{Form: newForm(nil), Next: localPath(r.URL.Query().Get("next")), CSRF: s.signinToken(w, r)}})
}

func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, nil, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	f := newForm(url.Values{"username": {r.PostFormValue("username")}})
	next := localPath(r.PostFormValue("next"))
	again := func(status int, msg string) {
		f.Error = msg
		s.render(w, r, status, "login.html", page{Title: "Sign in", Data: loginData{Form: f, Next: next, CSRF: s.signinToken(w, r)}})
	}
	if !s.checkSigninToken(r) {
		again(http.StatusForbidden, "The sign-in form expired. Please sign in again.")
		return
	}
	username := strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
	password := r.PostFormValue("password")
	addr := sourceAddr(r)
	now := s.now()
	if wait := s.lock.Locked(username, addr, now); wait > 0 {
		again(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins. Try again in %d minutes.", int(wait.Minutes())+1))
		return
	}
	if username == "" || password == "" {
		again(http.StatusUnprocessableEntity, "Enter your username and password.")
		return
	}
	select {
	case s.verify <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	l, _, err := s.svc.AuthenticateLogin(r.Context(), username, password)
	<-s.verify
	switch {
	case errors.Is(err, provision.ErrBadLogin):
		s.lock.Fail(username, addr, now)
		s.log.Debug("web: failed sign-in", "username", username, "source", addr)
		again(http.StatusUnauthorized, "Wrong username or password.")
		return
	case err != nil:
		s.serveErr(w, r, nil, err)
		return
	}
	s.lock.Succeed(username, addr, now)
	s.startSession(w, r, l)
	s.setCookie(w, r, cookieSignin, "", -1, "/login")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ss *session) error {
	s.endSession(w, r, ss)
	s.redirect(w, r, "/login", flash{"ok", "You are signed out."})
	return nil
}

// ---- Changing one's own password.

type passwordData struct {
	Form   *form
	Fields []*field
}

func passwordFields(f *form) passwordData {
	d := passwordData{Form: f, Fields: []*field{
		f.field("current", "Current password", "password").auto("current-password"),
		f.field("password", "New password", "password").help("At least 12 characters."),
		f.field("again", "New password again", "password"),
	}}
	f.finish()
	return d
}

func (s *Server) passwordPage(w http.ResponseWriter, r *http.Request, ss *session) error {
	s.render(w, r, http.StatusOK, "password.html", page{Title: "Change password", S: ss, Data: passwordFields(newForm(nil))})
	return nil
}

func (s *Server) passwordSubmit(w http.ResponseWriter, r *http.Request, ss *session) error {
	f := newForm(nil)
	current, pw, again := r.PostFormValue("current"), r.PostFormValue("password"), r.PostFormValue("again")
	addr := sourceAddr(r)
	if wait := s.lock.Locked(ss.Username, addr, s.now()); wait > 0 {
		f.Error = fmt.Sprintf("Too many failed attempts. Try again in %d minutes.", int(wait.Minutes())+1)
	} else if _, _, err := s.svc.AuthenticateLogin(r.Context(), ss.Username, current); err != nil {
		if !errors.Is(err, provision.ErrBadLogin) {
			return err
		}
		s.lock.Fail(ss.Username, addr, s.now())
		f.fail("current", "is not your current password")
	} else if pw != again {
		f.fail("again", "does not match the new password")
	} else {
		l, err := s.svc.GetLogin(r.Context(), provision.Operator, ss.LoginID)
		if err != nil {
			return err
		}
		l.Password = pw
		self := ss.Caller // a customer changes its own login: act as the operator, recorded as itself
		self.Operator = true
		if err := s.svc.UpdateLogin(r.Context(), self, &l); err != nil {
			if !f.refuse(err) {
				return err
			}
		} else {
			// The new password ends every session, this one too: start a new one.
			l, err = s.svc.GetLogin(r.Context(), provision.Operator, ss.LoginID)
			if err != nil {
				return err
			}
			s.endSession(w, r, ss)
			s.startSession(w, r, l)
			s.redirect(w, r, "/", flash{"ok", "Your password is changed. Other sessions of this login are signed out."})
			return nil
		}
	}
	s.render(w, r, http.StatusOK, "password.html", page{Title: "Change password", S: ss, Data: passwordFields(f)})
	return nil
}

// ---- Logins of an account (the customer portal's users).

type loginsData struct {
	Form    *form
	Items   []store.Login
	Pager   pager
	Secret  *shownOnce
	Created string
}

// shownOnce is a secret shown once with a Copy button.
type shownOnce struct {
	Label, Value string
}

func (s *Server) accountLogins(w http.ResponseWriter, r *http.Request, ss *session) error {
	return s.renderLogins(w, r, ss, newForm(nil), nil)
}

func (s *Server) renderLogins(w http.ResponseWriter, r *http.Request, ss *session, f *form, secret *shownOnce) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	pg := listView(r, listSpec{keys: store.LoginSorts})
	items, total, err := s.svc.ListLogins(r.Context(), ss.Caller, store.LoginFilter{AccountID: a.ID, Scope: store.ScopeAccount, Page: pg.store()})
	if err != nil {
		return err
	}
	if s.pastEnd(w, r, pg.done(total), len(items)) {
		return nil
	}
	f.field("username", "Username", "text").req().auto("off")
	f.field("password", "Password", "password").help("At least 12 characters. Leave empty to generate one.")
	f.finish()
	p := page{Title: a.Name + " · Logins", S: ss, Nav: "accounts", Account: &a, Tab: "logins",
		Data: loginsData{Form: f, Items: items, Pager: pg.done(total), Secret: secret}}
	if r.Method == http.MethodPost {
		p.Canonical = fmt.Sprintf("/accounts/%d/logins", a.ID)
	}
	s.render(w, r, http.StatusOK, "account_logins.html", p)
	return nil
}

func (s *Server) loginCreate(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	f := newForm(r.PostForm)
	l := store.Login{Username: f.get("username"), Password: f.raw("password"), Scope: store.ScopeAccount, AccountID: &a.ID}
	if err := s.svc.CreateLogin(r.Context(), ss.Caller, &l); err != nil {
		if !f.refuse(err) {
			return err
		}
		return s.renderLogins(w, r, ss, f, nil)
	}
	if l.Password != "" {
		return s.renderLogins(w, r, ss, newForm(nil), &shownOnce{Label: "Password of login " + l.Username, Value: l.Password})
	}
	s.redirect(w, r, fmt.Sprintf("/accounts/%d/logins", a.ID), flash{"ok", "Login " + l.Username + " created."})
	return nil
}

func (s *Server) loginOf(r *http.Request, ss *session, a store.Account) (store.Login, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return store.Login{}, err
	}
	l, err := s.svc.GetLogin(r.Context(), ss.Caller, id)
	if err != nil {
		return l, err
	}
	if l.AccountID == nil || *l.AccountID != a.ID {
		return l, errNotFound
	}
	return l, nil
}

func (s *Server) loginReset(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	l, err := s.loginOf(r, ss, a)
	if err != nil {
		return err
	}
	back := fmt.Sprintf("/accounts/%d/logins", a.ID)
	if !s.confirmed(w, r, ss, "Replace password", back, ask("password-login", l.Username, a.Name)) {
		return nil
	}
	pw, err := s.svc.ResetLoginPassword(r.Context(), ss.Caller, l.ID)
	if err != nil {
		return err
	}
	return s.renderLogins(w, r, ss, newForm(nil), &shownOnce{Label: "New password of login " + l.Username, Value: pw})
}

func (s *Server) loginDelete(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return err
	}
	l, err := s.loginOf(r, ss, a)
	if err != nil {
		return err
	}
	if !s.confirmed(w, r, ss, "Delete login", fmt.Sprintf("/accounts/%d/logins", a.ID), ask("delete-login", l.Username, a.Name)) {
		return nil
	}
	if err := s.svc.DeleteLogin(r.Context(), ss.Caller, l.ID); err != nil {
		return err
	}
	s.redirect(w, r, fmt.Sprintf("/accounts/%d/logins", a.ID), flash{"ok", "Login " + l.Username + " deleted."})
	return nil
}
