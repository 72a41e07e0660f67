package provision

// Voicemail: a SIP user's messages and greeting (live data in
// store.Mailboxes, seen through the user, so a customer sees only its own
// account's mailboxes) and its PIN.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/wavfile"
)

// voicemail is the Service's part for mailboxes.
type voicemail struct {
	boxes   store.Mailboxes // nil: the store keeps none
	changed atomic.Pointer[func(userID int64)]
}

// OnVoicemailChange sets who is told when a mailbox's messages change
// through the API (message waiting on the user's phones).
func (s *Service) OnVoicemailChange(f func(userID int64)) { s.vm.changed.Store(&f) }

func (s *Service) vmChanged(userID int64) {
	if f := s.vm.changed.Load(); f != nil {
		(*f)(userID)
	}
}

// checkRingTimeout applies the default to 0 and checks the bounds.
func checkRingTimeout(field string, v *int) error {
	if *v == 0 {
		*v = store.DefaultRingTimeout
	}
	if *v < store.MinRingTimeout || *v > store.MaxRingTimeout {
		return invalid(field, "must be %d to %d seconds", store.MinRingTimeout, store.MaxRingTimeout)
	}
	return nil
}

// mailbox checks the caller sees SIP user id and returns the store's mailboxes.
func (s *Service) mailbox(ctx context.Context, c Caller, id int64) (store.SIPUser, store.Mailboxes, error) {
	if s.vm.boxes == nil {
		return store.SIPUser{}, nil, errors.New("voicemail: this store keeps no mailboxes")
	}
	var u store.SIPUser
	err := s.st.View(ctx, func(tx store.Tx) (err error) {
		u, err = getSIPUser(ctx, tx, c, id)
		return err
	})
	return u, s.vm.boxes, err
}

func messageErr(user, id int64, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Kind: NotFound, Code: "not_found", Message: fmt.Sprintf("voicemail message %d of sip user %d not found", id, user)}
	}
	return err
}

// VoicemailMessages lists a SIP user's messages, oldest first.
func (s *Service) VoicemailMessages(ctx context.Context, c Caller, user int64) ([]store.VoicemailMessage, error) {
	_, mb, err := s.mailbox(ctx, c, user)
	if err != nil {
		return nil, err
	}
	return mb.ListMessages(ctx, user)
}

// VoicemailMessage returns one message.
func (s *Service) VoicemailMessage(ctx context.Context, c Caller, user, id int64) (store.VoicemailMessage, error) {
	_, mb, err := s.mailbox(ctx, c, user)
	if err != nil {
		return store.VoicemailMessage{}, err
	}
	m, err := mb.GetMessage(ctx, user, id)
	return m, messageErr(user, id, err)
}

// VoicemailAudio returns a message and its WAV file.
func (s *Service) VoicemailAudio(ctx context.Context, c Caller, user, id int64) (store.VoicemailMessage, []byte, error) {
	_, mb, err := s.mailbox(ctx, c, user)
	if err != nil {
		return store.VoicemailMessage{}, nil, err
	}
	m, err := mb.GetMessage(ctx, user, id)
	if err != nil {
		return m, nil, messageErr(user, id, err)
	}
	b, err := mb.MessageAudio(ctx, user, id)
	return m, b, messageErr(user, id, err)
}

// SetVoicemailRead marks a message read or new and returns it.
func (s *Service) SetVoicemailRead(ctx context.Context, c Caller, user, id int64, read bool) (store.VoicemailMessage, error) {
	_, mb, err := s.mailbox(ctx, c, user)
	if err != nil {
		return store.VoicemailMessage{}, err
	}
	if err := mb.SetMessageRead(ctx, user, id, read); err != nil {
		return store.VoicemailMessage{}, messageErr(user, id, err)
	}
	s.vmChanged(user)
	m, err := mb.GetMessage(ctx, user, id)
	return m, messageErr(user, id, err)
}

// DeleteVoicemail deletes a message.
func (s *Service) DeleteVoicemail(ctx context.Context, c Caller, user, id int64) error {
	_, mb, err := s.mailbox(ctx, c, user)
	if err != nil {
		return err
	}
	m, err := mb.GetMessage(ctx, user, id)
	if err != nil {
		return messageErr(user, id, err)
	}
	if err := mb.DeleteMessage(ctx, user, id); err != nil {
		return messageErr(user, id, err)
	}
	s.vmChanged(user)
	return s.record(ctx, c, store.AuditEntry{Action: store.AuditDelete, Object: "voicemail_message", ObjectID: id, AccountID: accountOf(m.AccountID),
		Changes: map[string]store.FieldChange{"sip_user_id": {Before: user}, "caller": {Before: m.Caller}, "called": {Before: m.Called},
			"created_at": {Before: m.CreatedAt}, "duration_ms": {Before: m.DurationMS}}})
}

// PutVoicemailGreeting sets the user's own greeting: a WAV file of 8 kHz
// 16-bit mono PCM, at most maxGreeting long.
func (s *Service) PutVoicemailGreeting(ctx context.Context, c Caller, user int64, wav []byte) error {
	pcm, err := wavfile.Parse(wav)
	if err != nil {
		return invalid("greeting", "%v", err)
	}
	if d := wavfile.Duration(pcm); d > maxGreeting || d == 0 {
		return invalid("greeting", "lasts %s: must be longer than 0 and at most %s", d, maxGreeting)
	}
	u, mb, err := s.mailbox(ctx, c, user)
	if err != nil {
		return err
	}
	if err := mb.PutGreeting(ctx, user, wavfile.Encode(pcm)); err != nil {
		return err
	}
	return s.record(ctx, c, store.AuditEntry{Action: store.AuditUpdate, Object: "voicemail_greeting", ObjectID: user, AccountID: accountOf(u.AccountID),
		Changes: map[string]store.FieldChange{"duration_ms": {After: wavfile.Duration(pcm).Milliseconds()}}})
}

// maxGreeting is the longest greeting kept.
const maxGreeting = time.Minute // its WAV file fits the API's 1 MiB body limit

// DeleteVoicemailGreeting removes the user's own greeting: the default plays again.
func (s *Service) DeleteVoicemailGreeting(ctx context.Context, c Caller, user int64) error {
	u, mb, err := s.mailbox(ctx, c, user)
	if err != nil {
		return err
	}
	if err := mb.DeleteGreeting(ctx, user); err != nil {
		return err
	}
	return s.record(ctx, c, store.AuditEntry{Action: store.AuditDelete, Object: "voicemail_greeting", ObjectID: user, AccountID: accountOf(u.AccountID)})
}

// ResetVoicemailPIN sets a new generated PIN of six digits and returns it, once.
func (s *Service) ResetVoicemailPIN(ctx context.Context, c Caller, user int64) (string, error) {
	pin := make([]byte, 0, 6)
	var b [1]byte
	for len(pin) < cap(pin) {
		if _, err := s.rand.Read(b[:]); err != nil {
			return "", err
		}
		if b[0] < 250 { // 250 = 25×10: every digit equally likely
			pin = append(pin, '0'+b[0]%10)
		}
	}
	return string(pin), s.setVoicemailPIN(ctx, c, user, string(pin), store.AuditResetPIN)
}

// SetVoicemailPIN sets the user's PIN (4 to 12 digits).
func (s *Service) SetVoicemailPIN(ctx context.Context, c Caller, user int64, pin string) error {
	return s.setVoicemailPIN(ctx, c, user, pin, "")
}

// setVoicemailPIN sets the PIN; the trail records it as action ("" is an update).
func (s *Service) setVoicemailPIN(ctx context.Context, c Caller, user int64, pin, action string) error {
	if err := checkPIN("pin", pin); err != nil {
		return err
	}
	h, err := secret.HashPassword(s.rand, pin)
	if err != nil {
		return err
	}
	return s.updateAs(ctx, c, action, func(tx store.Tx) error {
		u, err := getSIPUser(ctx, tx, c, user)
		if err != nil {
			return err
		}
		u.Voicemail.PINHash, u.Voicemail.PINSet = h, true
		return storeErr("sip user", user, tx.UpdateSIPUser(ctx, &u))
	})
}
