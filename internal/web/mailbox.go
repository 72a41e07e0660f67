package web

// A SIP user's voicemail as its page shows it: the Voice Mail tab's fields,
// the messages table and the greeting form. The handlers that change them
// are in voicemail.go.

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// What voicemail does, in the Voice Mail tab. Keep it to what the SIP side
// does (internal/voicemail, route's mailbox fallback).
const (
	vmEnabledHelp = "A call to this user goes to its mailbox when no phone answers within the ring timeout, " +
		"a phone refuses it (busy or unavailable), or the user is not registered. " +
		"The caller hears the greeting, then a beep, and the message records until the caller hangs up, presses # or stays silent. " +
		"The user dials *1 from its phone and enters its PIN then # to hear its messages: " +
		"1 new messages, 2 saved messages, 3 record the greeting, 4 change the PIN; " +
		"after a message, 5 plays it again, 7 deletes it, 9 keeps it and plays the next, * goes back to the main menu. " +
		"Off: calls are not answered by the mailbox."
	vmEmailHelp = "Each new message is mailed to this address with the recording attached, " +
		"when the operator has configured an SMTP server. Empty: messages are not mailed."
	vmRingHelp     = "How long the user's phones ring before the call goes to the mailbox: 5 to 300 seconds (default 25)."
	vmGreetingHelp = "An 8 kHz 16-bit mono WAV file (PCM), up to 60 seconds. Callers hear it before the beep; " +
		"without one they hear the default greeting. The user can also record it from its phone (*1, then 3)."
)

// voicemailFields are the Voice Mail tab's fields; u is nil for a new user.
func voicemailFields(f *form, u *store.SIPUser) []*field {
	pin := "4 to 12 digits, asked when the user dials *1 (then #)."
	if u != nil && u.Voicemail.PINSet {
		pin = "A PIN is set (never shown). Leave empty to keep it, or use Reset voicemail PIN."
	}
	pinField := f.field("voicemail.pin", "Voicemail PIN", "password").help(pin)
	pinField.Inputmode, pinField.Autocomplete = "numeric", "off"
	return []*field{
		f.field("voicemail.enabled", "Voicemail enabled", "checkbox").help(vmEnabledHelp),
		f.field("voicemail.email", "Send messages to email", "email").auto("email").help(vmEmailHelp),
		pinField,
		f.field("voicemail.ring_timeout", "Ring timeout (s)", "number").help(vmRingHelp),
	}
}

// vmValues adds a user's voicemail settings to its form's values.
func vmValues(v url.Values, vm store.Voicemail) {
	if vm.Enabled {
		v.Set("voicemail.enabled", "on")
	}
	v.Set("voicemail.email", vm.Email)
	if vm.RingTimeout != 0 {
		v.Set("voicemail.ring_timeout", strconv.Itoa(vm.RingTimeout))
	}
}

// readVoicemail reads the Voice Mail tab's fields into vm (the PIN only
// when typed: empty keeps the stored one).
func (f *form) readVoicemail(vm *store.Voicemail) {
	vm.Enabled, vm.Email, vm.PIN = f.on("voicemail.enabled"), f.get("voicemail.email"), f.get("voicemail.pin")
	vm.RingTimeout = f.int("voicemail.ring_timeout")
}

// vmView is the voicemail part of a SIP user's page.
type vmView struct {
	Show     bool   // voicemail is on, or the mailbox holds messages
	Base     string // the user's voicemail URL: …/users/{id}/voicemail
	Messages []vmMessage
	New      int
	Error    string // the messages could not be read
	Greeting *form
	Upload   *field // the greeting file input
	Username string
	CSRF     string
}

// vmMessage is one row of the messages table.
type vmMessage struct {
	ID        int64
	From, To  string
	Received  time.Time
	Duration  string // m:ss
	Read      bool
	Mail      string // Sent, Pending, Failed, Not mailed
	MailClass string // its tag's class: accepted (sent), failed, or none
	MailNote  string // when it was sent, or why not
	Audio     string // the WAV's URL
	Name      string // "the message from 3002 of 7 Dec 17:30", for labels and the confirmation
}

// loadVoicemail fills a SIP user's voicemail view; greeting is the greeting
// form (nil: a fresh one). base is the user's page URL.
func (s *Server) loadVoicemail(r *http.Request, ss *session, u *store.SIPUser, base string, greeting *form) *vmView {
	if greeting == nil {
		greeting = newForm(nil)
	}
	v := &vmView{Base: base + "/voicemail", Greeting: greeting, Username: u.Username, CSRF: ss.CSRF}
	v.Upload = greeting.field("greeting", "Greeting file", "file").help(vmGreetingHelp)
	v.Upload.Accept = "audio/wav"
	greeting.finish()
	msgs, err := s.svc.VoicemailMessages(r.Context(), ss.Caller, u.ID)
	if err != nil {
		s.log.Warn("web: list voicemail messages", "sip_user", u.ID, "err", err)
		v.Error = "The messages could not be read: " + err.Error()
	}
	for i := len(msgs) - 1; i >= 0; i-- { // newest first
		row := messageRow(msgs[i], v.Base)
		if !row.Read {
			v.New++
		}
		v.Messages = append(v.Messages, row)
	}
	v.Show = u.Voicemail.Enabled || len(msgs) > 0 || greeting.HasErrors()
	return v
}

func messageRow(m store.VoicemailMessage, base string) vmMessage {
	from := m.Caller
	if from == "" {
		from = "an unknown caller"
	}
	row := vmMessage{ID: m.ID, From: m.Caller, To: m.Called, Received: m.CreatedAt, Duration: fmtDuration(m.DurationMS), Read: m.Read,
		Audio: fmt.Sprintf("%s/messages/%d/audio", base, m.ID), Name: "the message from " + from + " of " + m.CreatedAt.UTC().Format("2 Jan 15:04")}
	if row.From == "" {
		row.From = "unknown"
	}
	row.Mail, row.MailClass, row.MailNote = mailText(m.Mail)
	return row
}

// fmtDuration is ms as m:ss, rounded to the second.
func fmtDuration(ms int64) string {
	sec := (ms + 500) / 1000
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}

// mailText says how mailing a message went: its status, the status tag's
// class, and a note (when, or why not).
func mailText(st store.MailState) (status, class, note string) {
	tries := func(n int) string {
		if n == 1 {
			return "1 attempt"
		}
		return strconv.Itoa(n) + " attempts"
	}
	switch st.Status {
	case store.MailSent:
		return "Sent", "accepted", fmtTime(st.SentAt)
	case store.MailPending:
		if st.Attempts == 0 {
			return "Pending", "", ""
		}
		return "Pending", "", "retrying after " + tries(st.Attempts) + ": " + st.Error
	case store.MailFailed:
		return "Failed", "failed", "gave up after " + tries(st.Attempts) + ": " + st.Error
	}
	return "Not mailed", "", "no email address, or no SMTP server"
}
