package voicemail

// Hearing messages: which mailbox, its PIN, then the menu.
//
// Main menu: 1 new messages, 2 saved messages, 3 record the greeting,
// 4 change the PIN, * hang up. After each message: 5 again, 7 delete,
// 9 keep it and go to the next, * back to the main menu. A message heard
// to its end, or kept, is no longer new.

import (
	"context"
	"time"

	"github.com/emiago/diago"

	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/voicemail/prompts"
	"github.com/sipward/sipward/internal/wavfile"
)

// keyWait is how long a menu waits for a key, twice, before hanging up.
const keyWait = 10 * time.Second

// PIN lengths, as provisioning checks them.
const (
	minPIN = 4
	maxPIN = 12
)

func (s *Service) retrieve(d *diago.DialogServerSession, r request) {
	med, err := d.Answer(diago.AnswerOptions{})
	if err != nil {
		s.log.Warn("voicemail: answer a retrieval", "err", err)
		return
	}
	ss := newSession(med)
	ctx := d.Context()
	box, ok := s.whichBox(ctx, ss, r)
	if !ok || !s.login(ctx, ss, r, box) {
		_ = ss.play(false, prompts.Get(prompts.Goodbye))
		return
	}
	s.log.Info("voicemail: mailbox opened", "sip_user", box.Username)
	s.menu(ctx, ss, box)
}

// whichBox is the caller's own mailbox, or the one it keys the number of.
func (s *Service) whichBox(ctx context.Context, ss *session, r request) (Box, bool) {
	if r.user != 0 {
		b, err := s.cfg.Directory.Mailbox(ctx, r.user)
		return b, err == nil && b.Enabled
	}
	for range 3 {
		if ss.say(prompts.EnterMailbox) != nil {
			return Box{}, false
		}
		num, ok, err := ss.collect(32, keyWait)
		if err != nil {
			return Box{}, false
		}
		if ok {
			if b, err := s.cfg.Directory.Find(ctx, r.account, num); err == nil && b.Enabled {
				return b, true
			}
		}
		if ss.say(prompts.NoMailbox) != nil {
			return Box{}, false
		}
	}
	return Box{}, false
}

// login asks for the PIN, at most PINAttempts times; each wrong one is
// told to the firewall.
func (s *Service) login(ctx context.Context, ss *session, r request, box Box) bool {
	for range s.cfg.PINAttempts {
		if ss.say(prompts.EnterPIN) != nil {
			return false
		}
		pin, ok, err := ss.collect(maxPIN+1, keyWait)
		if err != nil {
			return false
		}
		if ok && box.PINHash != "" && secret.VerifyPassword(box.PINHash, pin) {
			return true
		}
		if ok {
			s.m.pins.Inc()
			s.log.Info("voicemail: wrong PIN", "sip_user", box.Username, "source", r.src)
			if s.cfg.PINFailure != nil && r.src.IsValid() {
				s.cfg.PINFailure(r.src, time.Now())
			}
		}
		if ss.say(prompts.WrongPIN) != nil {
			return false
		}
	}
	_ = ss.play(false, prompts.Get(prompts.TooManyAttempts))
	return false
}

// menu is the main menu, until the caller hangs up or leaves.
func (s *Service) menu(ctx context.Context, ss *session, box Box) {
	if !s.summary(ctx, ss, box) {
		return
	}
	idle := 0
	for idle < 2 {
		if ss.say(prompts.MainMenu) != nil {
			return
		}
		k, err := ss.choice(keyWait)
		if err != nil {
			return
		}
		idle++
		if k != 0 {
			idle = 0
		}
		var goOn bool
		switch k {
		case 0:
			goOn = true
		case '1', '2':
			goOn = s.listen(ctx, ss, box, k == '1')
		case '3':
			goOn = s.recordGreeting(ctx, ss, box)
		case '4':
			goOn = s.changePIN(ctx, ss, box)
		case '*':
			goOn = false
		default:
			goOn = ss.say(prompts.InvalidChoice) == nil
		}
		if !goOn {
			return
		}
	}
}

// summary says how many new and saved messages there are.
func (s *Service) summary(ctx context.Context, ss *session, box Box) bool {
	msgs, err := s.cfg.Store.ListMessages(ctx, box.UserID)
	if err != nil {
		s.log.Warn("voicemail: list messages", "sip_user", box.Username, "err", err)
		return false
	}
	fresh := 0
	for _, m := range msgs {
		if !m.Read {
			fresh++
		}
	}
	if len(msgs) == 0 {
		return ss.say(prompts.NoMessages) == nil
	}
	say := []string{prompts.YouHave}
	say = append(say, count(fresh, prompts.NewMessage, prompts.NewMessages)...)
	if saved := len(msgs) - fresh; saved > 0 {
		say = append(say, prompts.And)
		say = append(say, count(saved, prompts.SavedMessage, prompts.SavedMessages)...)
	}
	return ss.say(say...) == nil
}

func count(n int, one, many string) []string {
	if n == 1 {
		return append(prompts.Number(1), one)
	}
	return append(prompts.Number(min(n, 999)), many)
}

// listen plays the new (or saved) messages with the message menu; false
// when the call is over.
func (s *Service) listen(ctx context.Context, ss *session, box Box, fresh bool) bool {
	msgs, err := s.cfg.Store.ListMessages(ctx, box.UserID)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		if m.Read == fresh {
			continue
		}
		next, ok := s.message(ctx, ss, box, m)
		if !ok {
			return false
		}
		if !next {
			return true // * : back to the main menu
		}
	}
	return ss.say(prompts.NoMoreMessages) == nil
}

// message plays one message and its menu: next says go on to the next
// message, ok false that the call is over.
func (s *Service) message(ctx context.Context, ss *session, box Box, m store.VoicemailMessage) (next, ok bool) {
	wav, err := s.cfg.Store.MessageAudio(ctx, box.UserID, m.ID)
	if err != nil {
		return true, true // deleted meanwhile (through the API)
	}
	for {
		if ss.play(true, wav) != nil {
			return false, false
		}
		if !m.Read {
			s.markRead(ctx, box, m.ID)
			m.Read = true
		}
		if ss.say(prompts.MessageMenu) != nil {
			return false, false
		}
		k, err := ss.choice(keyWait)
		if err != nil {
			return false, false
		}
		switch k {
		case '5':
			continue
		case '7':
			if err := s.cfg.Store.DeleteMessage(ctx, box.UserID, m.ID); err != nil {
				s.log.Warn("voicemail: delete message", "message", m.ID, "err", err)
			}
			s.cfg.Changed(box.UserID)
			return true, ss.say(prompts.MessageDeleted) == nil
		case '9', 0:
			return true, ss.say(prompts.MessageSaved) == nil
		case '*':
			return false, true
		default:
			if ss.say(prompts.InvalidChoice) != nil {
				return false, false
			}
		}
	}
}

func (s *Service) markRead(ctx context.Context, box Box, id int64) {
	if err := s.cfg.Store.SetMessageRead(ctx, box.UserID, id, true); err != nil {
		s.log.Warn("voicemail: mark message read", "message", id, "err", err)
		return
	}
	s.cfg.Changed(box.UserID)
}

// recordGreeting records the user's own greeting.
func (s *Service) recordGreeting(ctx context.Context, ss *session, box Box) bool {
	if ss.say(prompts.RecordGreeting) != nil || ss.play(false, prompts.Get(prompts.Beep)) != nil {
		return false
	}
	rec := ss.record(60*time.Second, s.cfg.Silence)
	if rec.end == "hangup" {
		return false
	}
	if wavfile.Duration(rec.pcm) < minMessage {
		return ss.say(prompts.InvalidChoice) == nil
	}
	if err := s.cfg.Store.PutGreeting(ctx, box.UserID, wavfile.Encode(rec.pcm)); err != nil {
		s.log.Warn("voicemail: save greeting", "sip_user", box.Username, "err", err)
		return false
	}
	s.log.Info("voicemail: greeting recorded", "sip_user", box.Username, "duration_ms", wavfile.Duration(rec.pcm).Milliseconds())
	return ss.say(prompts.GreetingSaved) == nil
}

// changePIN takes a new PIN of minPIN to maxPIN digits.
func (s *Service) changePIN(ctx context.Context, ss *session, box Box) bool {
	if ss.say(prompts.NewPIN) != nil {
		return false
	}
	pin, ok, err := ss.collect(maxPIN+1, keyWait)
	if err != nil {
		return false
	}
	if !ok || len(pin) < minPIN || len(pin) > maxPIN || !digits(pin) {
		return ss.say(prompts.PINInvalid) == nil
	}
	if err := s.cfg.Directory.SetPIN(ctx, box.UserID, pin); err != nil {
		s.log.Warn("voicemail: change PIN", "sip_user", box.Username, "err", err)
		return ss.say(prompts.PINInvalid) == nil
	}
	s.log.Info("voicemail: PIN changed", "sip_user", box.Username)
	return ss.say(prompts.PINChanged) == nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
