package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// TestRefusedFormIs422WithEveryError: an invalid form answers 422 and shows
// every field's error at once (a duplicate username with a too-short
// password and a bad email), each next to its field and in the summary.
func TestRefusedFormIs422WithEveryError(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 0)
	e.login("root", opPass, 0)
	if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, &store.SIPUser{AccountID: a.ID, Username: "1001"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn("root", opPass)
	page := fmt.Sprintf("/accounts/%d/users/new", a.ID)
	r := b.submit(page, page, url.Values{"username": {"1001"}, "password": {"short"}, "channels": {"1"}, "voicemail.email": {"nope"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Errorf("status %d, want 422", r.status)
	}
	want := map[string]string{
		"f-username":        provision.MsgDuplicateUser,
		"f-password":        "is too weak",
		"f-voicemail-email": "not an email address",
	}
	for id, msg := range want {
		if got := errorOf(r.body, id); !strings.Contains(got, msg) {
			t.Errorf("%s: error %q, want %q", id, got, msg)
		}
		if !strings.Contains(r.body, `href="#`+id+`"`) {
			t.Errorf("the summary has no link to %s", id)
		}
		if !strings.Contains(r.body, `aria-describedby="`+id+`-err`) {
			t.Errorf("%s is not described by its error", id)
		}
	}
	if !strings.Contains(r.body, `id="form-errors" tabindex="-1"`) || !strings.Contains(r.body, "3 field(s) to correct") {
		t.Errorf("no focusable summary counting 3 fields: %s", textOf(r.body))
	}
	// A valid form still redirects.
	if r := b.submit(page, page, url.Values{"username": {"1002"}, "channels": {"1"}}); r.status != http.StatusSeeOther && r.status != http.StatusOK {
		t.Errorf("valid form: %d", r.status)
	}
}

// TestEmptyMessageIs422NextToItsForm: an empty SIP message is refused with
// 422 and an error summary inside the message section.
func TestEmptyMessageIs422NextToItsForm(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 0)
	e.login("root", opPass, 0)
	u := store.SIPUser{AccountID: a.ID, Username: "1001"}
	if err := e.svc.CreateSIPUser(t.Context(), provision.Operator, &u); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn("root", opPass)
	page := fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
	r := b.submit(page, page+"/message", url.Values{"text": {"  "}})
	if r.status != http.StatusUnprocessableEntity || errorOf(r.body, "f-text") != "is required" {
		t.Fatalf("empty message: %d, error %q", r.status, errorOf(r.body, "f-text"))
	}
	sec := r.body[strings.Index(r.body, `id="msg-h"`):]
	if i := strings.Index(sec, "</section>"); i < 0 || !strings.Contains(sec[:i], `class="alert error error-summary"`) {
		t.Errorf("the message section holds no error summary")
	}
}

// TestFailedSignInIs401: a wrong password answers 401, a missing one 422,
// and the lockout stays 429.
func TestFailedSignInIs401(t *testing.T) {
	e := newEnv(t)
	e.login("root", opPass, 0)
	b := e.browser()
	if r := b.signIn("root", ""); r.status != http.StatusUnprocessableEntity {
		t.Errorf("empty password: %d, want 422", r.status)
	}
	for i := range 5 {
		if r := b.signIn("root", "wrong"); r.status != http.StatusUnauthorized {
			t.Errorf("wrong password %d: %d, want 401", i+1, r.status)
		}
	}
	if r := b.signIn("root", opPass); r.status != http.StatusTooManyRequests {
		t.Errorf("after 5 failures: %d, want 429", r.status)
	}
}
