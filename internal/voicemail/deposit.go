package voicemail

// Leaving a message: greeting, beep, the caller's audio, then the store,
// mail and message waiting.

import (
	"context"
	"fmt"
	"time"

	"github.com/emiago/diago"

	"github.com/sipward/sipward/internal/mailer"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/voicemail/prompts"
	"github.com/sipward/sipward/internal/wavfile"
)

// minMessage: a recording shorter than this (a caller who hung up at the
// beep) is not a message.
const minMessage = 500 * time.Millisecond

func (s *Service) deposit(d *diago.DialogServerSession, r request) {
	ctx := d.Context()
	box, err := s.cfg.Directory.Mailbox(ctx, r.user)
	if err != nil || !box.Enabled {
		s.log.Info("voicemail: no mailbox for a deposit", "sip_user", r.user, "err", err)
		_ = d.Respond(404, "Not Found", nil)
		return
	}
	med, err := d.Answer(diago.AnswerOptions{})
	if err != nil {
		s.log.Warn("voicemail: answer a deposit", "sip_user", r.user, "err", err)
		return
	}
	ss := newSession(med)
	if full, err := s.full(ctx, box.UserID); err != nil || full {
		if err == nil {
			s.log.Info("voicemail: mailbox full", "sip_user", box.Username)
		}
		_ = ss.play(false, prompts.Get(prompts.MailboxFull))
		return
	}
	greeting, err := s.cfg.Store.Greeting(ctx, box.UserID)
	if err != nil {
		greeting = prompts.Get(prompts.Greeting)
	}
	if ss.play(true, greeting) != nil || ss.play(false, prompts.Get(prompts.Beep)) != nil {
		return
	}
	rec := ss.record(s.cfg.MaxLength, s.cfg.Silence)
	s.m.gaps.Add(float64(ss.gaps.Load()))
	if wavfile.Duration(rec.pcm) < minMessage {
		s.log.Info("voicemail: nothing recorded", "sip_user", box.Username, "end", rec.end)
		return
	}
	// The call may be gone: the message is kept whatever happens to it.
	s.keep(context.WithoutCancel(ctx), box, d, rec)
	if rec.end != "hangup" {
		_ = ss.play(false, prompts.Get(prompts.MessageSaved), prompts.Get(prompts.Goodbye))
	}
}

// full reports whether the mailbox holds its quota.
func (s *Service) full(ctx context.Context, user int64) (bool, error) {
	u, err := s.cfg.Store.MailboxUsage(ctx, user)
	if err != nil {
		return false, err
	}
	return u.Messages >= s.cfg.QuotaMessages || u.DurationMS >= int64(s.cfg.QuotaSeconds)*1000, nil
}

// keep stores a recording as a message, mails it and tells the phones.
func (s *Service) keep(ctx context.Context, box Box, d *diago.DialogServerSession, rec recording) {
	m := store.VoicemailMessage{SIPUserID: box.UserID, AccountID: box.AccountID,
		Caller: d.FromUser(), Called: d.ToUser(), DurationMS: wavfile.Duration(rec.pcm).Milliseconds()}
	if s.cfg.Mailer != nil && box.Email != "" {
		m.Mail.Status = store.MailPending
	}
	wav := wavfile.Encode(rec.pcm)
	if err := s.cfg.Store.SaveMessage(ctx, &m, wav); err != nil {
		s.log.Error("voicemail: message lost: the store refused it", "sip_user", box.Username, "err", err)
		return
	}
	s.log.Info("voicemail: message left", "sip_user", box.Username, "message", m.ID, "caller", m.Caller,
		"duration_ms", m.DurationMS, "end", rec.end)
	s.m.messages.WithLabelValues(rec.end).Inc()
	s.cfg.Changed(box.UserID)
	if m.Mail.Status == store.MailPending {
		s.cfg.Mailer.Enqueue(m.ID, Mail(box, m, wav))
	}
}

// Mail is the mail of message m: the recording attached, caller and time
// in the subject.
func Mail(box Box, m store.VoicemailMessage, wav []byte) mailer.Mail {
	when := m.CreatedAt.UTC().Format("2006-01-02 15:04 MST")
	caller := m.Caller
	if caller == "" {
		caller = "an unknown caller"
	}
	secs := (m.DurationMS + 500) / 1000
	return mailer.Mail{To: box.Email,
		Subject: fmt.Sprintf("Voicemail from %s at %s", caller, when),
		Text: fmt.Sprintf("%s left a message of %d seconds for %s (dialled %s) at %s.\n\nThe recording is attached.\n",
			caller, secs, box.Username, m.Called, when),
		Attachments: []mailer.Attachment{{Name: fmt.Sprintf("voicemail-%d.wav", m.ID), ContentType: "audio/wav", Data: wav}}}
}
