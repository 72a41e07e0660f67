package api

// A SIP user's mailbox: its messages (listed, played with range requests,
// marked read, deleted), its greeting and its PIN.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// VoicemailMessages is the list of a mailbox's messages.
type VoicemailMessages struct {
	Items []store.VoicemailMessage `json:"items"`
	Total int                      `json:"total"`
}

// VoicemailRead is the body of PATCH …/messages/{mid}.
type VoicemailRead struct {
	Read *bool `json:"read"`
}

// PINReset is the answer of POST …/voicemail/pin: the new PIN, shown once.
type PINReset struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	PIN      string `json:"pin"`
}

// voicemailRoutes are the mailbox's routes under /sip-users/{id}.
func voicemailRoutes(svc *provision.Service) []*route {
	base := v1 + "/sip-users/{id}/voicemail"
	msg := base + "/messages/{mid}"
	// on reads the path's user ID (and message ID) for f.
	on := func(f func(w http.ResponseWriter, r *http.Request, c provision.Caller, user, mid int64) error) func(http.ResponseWriter, *http.Request, provision.Caller) error {
		return func(w http.ResponseWriter, r *http.Request, c provision.Caller) error {
			user, err := pathID(r, "id")
			if err != nil {
				return err
			}
			var mid int64
			if r.PathValue("mid") != "" {
				if mid, err = pathID(r, "mid"); err != nil {
					return err
				}
			}
			return f(w, r, c, user, mid)
		}
	}
	return []*route{
		{method: "GET", path: base + "/messages", tag: "voicemail", out: VoicemailMessages{},
			summary: "A SIP user's voicemail messages, oldest first",
			handle: on(func(w http.ResponseWriter, r *http.Request, c provision.Caller, user, mid int64) error {
				ms, err := svc.VoicemailMessages(r.Context(), c, user)
				if err != nil {
					return err
				}
				if ms == nil {
					ms = []store.VoicemailMessage{}
				}
				writeJSON(w, http.StatusOK, VoicemailMessages{Items: ms, Total: len(ms)})
				return nil
			})},
		{method: "GET", path: msg, tag: "voicemail", out: store.VoicemailMessage{}, summary: "One voicemail message",
			handle: on(func(w http.ResponseWriter, r *http.Request, c provision.Caller, user, mid int64) error {
				m, err := svc.VoicemailMessage(r.Context(), c, user, mid)
				if err != nil {
					return err
				}
				writeJSON(w, http.StatusOK, m)
				return nil
			})},
		{method: "GET", path: msg + "/audio", tag: "voicemail",
			summary: "A message's recording (audio/wav, 8 kHz 16-bit mono; range requests served)",
			handle: on(func(w http.ResponseWriter, r *http.Request, c provision.Caller, user, mid int64) error {
				m, wav, err := svc.VoicemailAudio(r.Context(), c, user, mid)
				if err != nil {
					return err
				}
				w.Header().Set("Content-Type", "audio/wav")
				w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=\"voicemail-%d.wav\"", mid))
				http.ServeContent(w, r, "", m.CreatedAt, bytes.NewReader(wav))
				return nil
			})},
		{method: "PATCH", path: msg, tag: "voicemail", in: VoicemailRead{}, out: store.VoicemailMessage{},
			summary: "Mark a voicemail message read (or new again)",
			handle: on(func(w http.ResponseWriter, r *http.Request, c provision.Caller, user, mid int64) error {
				var in VoicemailRead
				if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Read == nil {
					return BadRequest("read", "body must be {\"read\": true|false}")
				}
				m, err := svc.SetVoicemailRead(r.Context(), c, user, mid, *in.Read)
				if err != nil {
					return err
				}
				writeJSON(w, http.StatusOK, m)
				return nil
			})},
		{method: "DELETE", path: msg, tag: "voicemail", status: http.StatusNoContent, summary: "Delete a voicemail message",
			handle: on(func(w http.ResponseWriter, r *http.Request, c provision.Caller, user, mid int64) error {
				if err := svc.DeleteVoicemail(r.Context(), c, user, mid); err != nil {
					return err
				}
				w.WriteHeader(http.StatusNoContent)
				return nil
			})},
		{method: "POST", path: base + "/pin", tag: "voicemail", out: PINReset{},
			summary: "Reset a SIP user's voicemail PIN: a new one of six digits is generated and returned, once",
			handle: on(func(w http.ResponseWriter, r *http.Request, c provision.Caller, user, mid int64) error {
				u, err := svc.GetSIPUser(r.Context(), c, user)
				if err != nil {
					return err
				}
				pin, err := svc.ResetVoicemailPIN(r.Context(), c, user)
				if err != nil {
					return err
				}
				writeJSON(w, http.StatusOK, PINReset{ID: user, Username: u.Username, PIN: pin})
				return nil
			})},
		{method: "PUT", path: base + "/greeting", tag: "voicemail", status: http.StatusNoContent,
			summary: "Set the SIP user's own greeting: the body is a WAV file (audio/wav, 8 kHz 16-bit mono PCM, up to 60 s)",
			handle: on(func(w http.ResponseWriter, r *http.Request, c provision.Caller, user, mid int64) error {
				wav, err := io.ReadAll(r.Body)
				if err != nil {
					return BadRequest("greeting", "the body must be a WAV file of at most 1 MiB")
				}
				if err := svc.PutVoicemailGreeting(r.Context(), c, user, wav); err != nil {
					return err
				}
				w.WriteHeader(http.StatusNoContent)
				return nil
			})},
		{method: "DELETE", path: base + "/greeting", tag: "voicemail", status: http.StatusNoContent,
			summary: "Remove the SIP user's own greeting: the default one plays again",
			handle: on(func(w http.ResponseWriter, r *http.Request, c provision.Caller, user, mid int64) error {
				if err := svc.DeleteVoicemailGreeting(r.Context(), c, user); err != nil {
					return err
				}
				w.WriteHeader(http.StatusNoContent)
				return nil
			})},
	}
}
