package web

// The voicemail actions of a SIP user's page: play or download a message,
// mark it read or new, delete it, reset the PIN, upload or remove the
// greeting. Every one goes through provisioning with the login's Caller, so
// an account login reaches only its own account's mailboxes.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/sipward/sipward/internal/store"
)

// vmUser returns the account and SIP user of the request's path.
func (s *Server) vmUser(r *http.Request, ss *session) (store.Account, store.SIPUser, error) {
	a, err := s.accountOf(r, ss)
	if err != nil {
		return a, store.SIPUser{}, err
	}
	u, err := s.userOf(r, ss, a)
	return a, u, err
}

// vmMessageOf returns the account, SIP user and message of the request's path.
func (s *Server) vmMessageOf(r *http.Request, ss *session) (store.Account, store.SIPUser, store.VoicemailMessage, error) {
	a, u, err := s.vmUser(r, ss)
	if err != nil {
		return a, u, store.VoicemailMessage{}, err
	}
	id, err := pathID(r, "mid")
	if err != nil {
		return a, u, store.VoicemailMessage{}, err
	}
	m, err := s.svc.VoicemailMessage(r.Context(), ss.Caller, u.ID, id)
	return a, u, m, err
}

// vmBack answers a voicemail action: the user's page, at its voicemail.
func (s *Server) vmBack(w http.ResponseWriter, r *http.Request, a store.Account, u store.SIPUser, msg string) {
	s.redirect(w, r, fmt.Sprintf("/accounts/%d/users/%d#voicemail", a.ID, u.ID), flash{"ok", msg})
}

// vmAudio serves a message's WAV file, with range requests (browsers' audio
// players seek with them); ?download=1 makes it an attachment.
func (s *Server) vmAudio(w http.ResponseWriter, r *http.Request, ss *session) error {
	_, u, m, err := s.vmMessageOf(r, ss)
	if err != nil {
		return err
	}
	_, wav, err := s.svc.VoicemailAudio(r.Context(), ss.Caller, u.ID, m.ID)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("voicemail-%s-%s-%d.wav", fileSafe(u.Username), m.CreatedAt.UTC().Format("20060102-1504"), m.ID)
	h := w.Header()
	h.Set("Content-Type", "audio/wav")
	h.Set("Cache-Control", "private, no-store")
	if r.URL.Query().Get("download") == "1" {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	}
	http.ServeContent(w, r, name, m.CreatedAt, bytes.NewReader(wav))
	return nil
}

// fileSafe keeps letters, digits, '+', '-' and '_' of s, for a file name.
func fileSafe(s string) string {
	return strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '+', c == '-', c == '_':
			return c
		}
		return '_'
	}, s)
}

// vmRead marks a message read (read=1) or new (read=0).
func (s *Server) vmRead(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, u, m, err := s.vmMessageOf(r, ss)
	if err != nil {
		return err
	}
	read := r.PostForm.Get("read") == "1"
	if _, err := s.svc.SetVoicemailRead(r.Context(), ss.Caller, u.ID, m.ID, read); err != nil {
		return err
	}
	state := "new"
	if read {
		state = "read"
	}
	s.vmBack(w, r, a, u, upperFirst(messageRow(m, "").Name)+" is marked "+state+".")
	return nil
}

// vmDelete deletes a message.
func (s *Server) vmDelete(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, u, m, err := s.vmMessageOf(r, ss)
	if err != nil {
		return err
	}
	back := fmt.Sprintf("/accounts/%d/users/%d#voicemail", a.ID, u.ID)
	if !s.confirmed(w, r, ss, "Delete message", back, ask("delete-message", messageRow(m, "").Name)) {
		return nil
	}
	if err := s.svc.DeleteVoicemail(r.Context(), ss.Caller, u.ID, m.ID); err != nil {
		return err
	}
	s.vmBack(w, r, a, u, upperFirst(messageRow(m, "").Name)+" is deleted.")
	return nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// vmPIN is Reset voicemail PIN: a new generated PIN, shown once.
func (s *Server) vmPIN(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, u, err := s.vmUser(r, ss)
	if err != nil {
		return err
	}
	// Replacing a PIN in use is asked first; setting the first one is not.
	back := fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
	if u.Voicemail.PINSet && !s.confirmed(w, r, ss, "Reset PIN", back, ask("reset-pin", u.Username)) {
		return nil
	}
	pin, err := s.svc.ResetVoicemailPIN(r.Context(), ss.Caller, u.ID)
	if err != nil {
		return err
	}
	u.Voicemail.PINSet = true
	return s.renderUser(w, r, ss, a, &u, userView{Form: newForm(userValues(u)),
		Secret: &shownOnce{Label: "New voicemail PIN of " + u.Username, Value: pin}})
}

// vmGreeting sets the user's greeting from the uploaded WAV file.
func (s *Server) vmGreeting(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, u, err := s.vmUser(r, ss)
	if err != nil {
		return err
	}
	g := newForm(nil)
	wav, err := uploaded(r, "greeting")
	switch {
	case errors.Is(err, http.ErrMissingFile):
		g.fail("greeting", "choose a WAV file to upload")
	case err != nil:
		return err
	default:
		err := s.svc.PutVoicemailGreeting(r.Context(), ss.Caller, u.ID, wav)
		if err == nil {
			s.vmBack(w, r, a, u, "Greeting saved: callers hear it before the beep.")
			return nil
		}
		if !g.refuse(err) {
			return err
		}
	}
	return s.renderUser(w, r, ss, a, &u, userView{Form: newForm(userValues(u)), Greeting: g})
}

// uploaded returns the file of a multipart form's field name;
// http.ErrMissingFile when none was chosen.
func uploaded(r *http.Request, name string) ([]byte, error) {
	f, hdr, err := r.FormFile(name)
	if errors.Is(err, http.ErrNotMultipart) {
		return nil, http.ErrMissingFile
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if hdr.Size == 0 {
		return nil, http.ErrMissingFile
	}
	return io.ReadAll(f)
}

// vmGreetingDelete removes the user's greeting: the default plays again.
func (s *Server) vmGreetingDelete(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, u, err := s.vmUser(r, ss)
	if err != nil {
		return err
	}
	back := fmt.Sprintf("/accounts/%d/users/%d#greeting", a.ID, u.ID)
	if !s.confirmed(w, r, ss, "Remove greeting", back, ask("delete-greeting", u.Username)) {
		return nil
	}
	if err := s.svc.DeleteVoicemailGreeting(r.Context(), ss.Caller, u.ID); err != nil {
		return err
	}
	s.vmBack(w, r, a, u, "Greeting removed: callers hear the default greeting again.")
	return nil
}
