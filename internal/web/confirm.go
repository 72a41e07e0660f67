package web

import (
	"fmt"
	"net/http"
	"net/url"
)

// Confirmations of destructive actions. Each question names the object and
// says what happens; the same text is the dialog of app.js (a form's
// data-confirm, through the template function "ask") and, without script,
// the confirmation page a POST without confirmed=1 gets instead of being
// carried out.
var questions = map[string]string{
	"delete-account":           "Delete account %s with its IP endpoints, SIP users, CLI patterns, DIDs, tokens and portal logins?",
	"delete-endpoint-sends":    "Delete IP endpoint %s of account %s, with its rewrite rules? Calls from this address are no longer accepted for the account.",
	"delete-endpoint-receives": "Delete IP endpoint %s of account %s, with its rewrite rules? The account's calls are no longer sent to it.",
	"delete-user":              "Delete SIP user %s (account %s)? Its phones can no longer register or make calls, and its DIDs go to the account's receiving IP endpoints.",
	"password-user":            "Replace the password of SIP user %s (account %s)? Phones using the old one stop registering.",
	"password-login":           "Replace the password of portal login %s (account %s)? Its sessions end and the old password stops working.",
	"delete-login":             "Delete portal login %s (account %s)? It can no longer sign in.",
	"delete-rule":              "Delete rewrite rule %s of %s?",
	"delete-cli":               "Delete CLI pattern %s of account %s?",
	"delete-did":               "Delete DID +%s of account %s? Calls to it are no longer accepted.",
	"delete-profile":           "Delete profile %s? Its %d user(s) keep the settings it gives them now, as their own.",
	"delete-message":           "Delete %s?",
	"delete-greeting":          "Remove the greeting of %s? Callers hear the default greeting again.",
	"reset-pin":                "Reset the voicemail PIN of %s? A new PIN, shown once, replaces the current one, which stops working.",
	"set-pin":                  "Set a voicemail PIN for %s? It is generated and shown once.",
}

// ask is the question of key about the named objects.
func ask(key string, args ...any) string {
	q, ok := questions[key]
	if !ok {
		return "Are you sure?"
	}
	return fmt.Sprintf(q, args...)
}

// confirmation is the page that asks before a destructive POST is carried
// out, when the browser ran no script.
type confirmation struct {
	Question string
	Verb     string     // the confirm button: "Delete", "Replace password"
	Action   string     // where the confirmed form posts (the same URL)
	Back     string     // Cancel goes here
	Fields   url.Values // the form's other fields, posted again
	CSRF     string
}

// confirmed reports whether a destructive POST was confirmed (confirmed=1,
// set by the dialog of app.js or by the confirmation page). When it was not,
// it renders the confirmation page naming the object, and nothing changes.
func (s *Server) confirmed(w http.ResponseWriter, r *http.Request, ss *session, verb, back, question string) bool {
	if r.PostForm.Get("confirmed") == "1" {
		return true
	}
	keep := url.Values{}
	for k, v := range r.PostForm {
		if k != "csrf" && k != "confirmed" {
			keep[k] = v
		}
	}
	s.render(w, r, http.StatusOK, "confirm.html", page{Title: "Confirm: " + verb, S: ss,
		Data: confirmation{Question: question, Verb: verb, Action: r.URL.Path, Back: back, Fields: keep, CSRF: ss.CSRF}})
	return false
}
