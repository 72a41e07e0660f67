package voicemail

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/store"
)

type nobody struct{}

func (nobody) Mailbox(context.Context, int64) (Box, error)      { return Box{}, store.ErrNotFound }
func (nobody) Find(context.Context, int64, string) (Box, error) { return Box{}, store.ErrNotFound }
func (nobody) SetPIN(context.Context, int64, string) error      { return nil }

// A target carries the mode, the mailbox and the caller's address, and
// only this process's key opens it: a request made up by anyone else (or by
// another sipward) is refused.
func TestTargetKey(t *testing.T) {
	s, err := New(Config{Directory: nobody{}, Store: struct{ store.Mailboxes }{}})
	if err != nil {
		t.Fatal(err)
	}
	s.addr = netip.MustParseAddrPort("127.0.0.1:40000")
	u := &snapshot.User{Username: "3001"}
	u.ID = 7
	src := netip.MustParseAddr("198.51.100.7")
	tgt := s.Deposit(u, "447700900123", "3001", src)
	if tgt.Dest != "127.0.0.1:40000" || tgt.URI.Port != 40000 {
		t.Fatalf("target %+v", tgt)
	}
	req := sip.NewRequest(sip.INVITE, tgt.URI)
	for _, h := range tgt.Headers {
		req.AppendHeader(h)
	}
	r, ok := s.parse(req)
	if !ok || !r.deposit || r.user != 7 || r.src != src {
		t.Errorf("parsed %+v %v", r, ok)
	}
	ret := s.Retrieve(0, 3, src)
	rreq := sip.NewRequest(sip.INVITE, ret.URI)
	rreq.AppendHeader(ret.Headers[0])
	r, ok = s.parse(rreq)
	if !ok || r.deposit || r.user != 0 || r.account != 3 {
		t.Errorf("retrieval parsed %+v %v", r, ok)
	}
	other, _ := New(Config{Directory: nobody{}, Store: struct{ store.Mailboxes }{}})
	if _, ok := other.parse(req); ok {
		t.Error("another process's key was accepted")
	}
	forged := sip.NewRequest(sip.INVITE, tgt.URI)
	forged.AppendHeader(sip.NewHeader(keyHeader, "deposit;user=7;key=00"))
	if _, ok := s.parse(forged); ok {
		t.Error("a forged key was accepted")
	}
}

// The mail of a message: caller and time in the subject, the WAV attached.
func TestMail(t *testing.T) {
	m := store.VoicemailMessage{ID: 12, Caller: "447700900123", Called: "3001", DurationMS: 4400,
		CreatedAt: time.Date(2026, 12, 7, 17, 30, 0, 0, time.UTC)}
	got := Mail(Box{Username: "3001", Email: "alice@example.test"}, m, []byte("RIFF"))
	if got.To != "alice@example.test" || got.Subject != "Voicemail from 447700900123 at 2026-12-07 17:30 UTC" {
		t.Errorf("mail %q to %q", got.Subject, got.To)
	}
	if len(got.Attachments) != 1 || got.Attachments[0].ContentType != "audio/wav" || got.Attachments[0].Name != "voicemail-12.wav" {
		t.Errorf("attachments %+v", got.Attachments)
	}
	if !strings.Contains(got.Text, "4 seconds") {
		t.Errorf("text %q", got.Text)
	}
}

func TestQuiet(t *testing.T) {
	frame := func(amp int16) []byte {
		b := make([]byte, 320)
		for i := 0; i < 160; i++ {
			v := amp
			if i%2 == 1 {
				v = -amp
			}
			b[2*i], b[2*i+1] = byte(v), byte(uint16(v)>>8)
		}
		return b
	}
	if !quiet(frame(0)) || !quiet(frame(150)) || quiet(frame(250)) || quiet(frame(8000)) {
		t.Error("quiet: want silence at or below RMS 150, sound at 250 and above")
	}
}
