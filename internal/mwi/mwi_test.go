package mwi

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

type noSender struct{}

func (noSender) Client(string) (*sipgo.Client, error) {
	return nil, errors.New("no network in unit tests")
}
func (noSender) Contact(string) sip.Uri { return sip.Uri{Scheme: "sip", Host: "192.0.2.1"} }
func (noSender) Host() string           { return "192.0.2.1" }

func TestBody(t *testing.T) {
	got := string(Summary{New: 2, Old: 5}.Body("3001", "sip.example"))
	want := "Messages-Waiting: yes\r\nMessage-Account: sip:3001@sip.example\r\nVoice-Message: 2/5 (0/0)\r\n"
	if got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if got := string(Summary{Old: 1}.Body("3001", "h")); got[:20] != "Messages-Waiting: no" {
		t.Errorf("no new messages: %q", got)
	}
}

func subscribeReq(t *testing.T, user, event, toTag, expires string) *pipeline.Request {
	t.Helper()
	raw := "SUBSCRIBE sip:" + user + "@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1\r\n" +
		"From: <sip:3001@192.0.2.1>;tag=abc\r\nTo: <sip:" + user + "@192.0.2.1>" + toTag + "\r\nCall-ID: c1\r\nCSeq: 1 SUBSCRIBE\r\n" +
		"Contact: <sip:3001@10.0.0.5:5060>\r\nEvent: " + event + "\r\nExpires: " + expires + "\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return &pipeline.Request{Msg: m.(*sip.Request), Source: netip.MustParseAddrPort("198.51.100.7:5060"), Transport: pipeline.UDP,
		Auth: pipeline.Identity{Method: pipeline.AuthDigest, SIPUserID: 7, Username: "3001"}}
}

// A subscription to one's own mailbox is granted (expiry bounded, a To tag
// of its dialog); another event, another's mailbox and a refresh of an
// unknown subscription are refused.
func TestServeSIP(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	s := New(Config{Sender: noSender{}, MaxExpires: time.Hour, Now: func() time.Time { return now },
		Counts:   func(context.Context, int64) (Summary, error) { return Summary{}, nil },
		Username: func(int64) (string, bool) { return "3001", true }})
	for _, tt := range []struct {
		name                        string
		user, event, toTag, expires string
		status                      int
		expiresOut                  string
	}{
		{"unknown refresh", "3001", "message-summary", ";tag=zzz", "600", 481, ""},
		{"own mailbox", "3001", "message-summary", "", "600", 200, "600"},
		{"bounded", "3001", "message-summary", "", "86400", 200, "3600"},
		{"presence", "3001", "presence", "", "600", 489, ""},
		{"another's mailbox", "3002", "message-summary", "", "600", 403, ""},
	} {
		res, err := s.ServeSIP(t.Context(), subscribeReq(t, tt.user, tt.event, tt.toTag, tt.expires))
		if err != nil || res.Status != tt.status {
			t.Errorf("%s: %d %v, want %d", tt.name, res.Status, err, tt.status)
			continue
		}
		if tt.status != 200 {
			continue
		}
		var exp string
		for _, h := range res.Headers {
			if h.Name() == "Expires" {
				exp = h.Value()
			}
		}
		if exp != tt.expiresOut || res.ToTag == "" {
			t.Errorf("%s: Expires %q, To tag %q; want %s and a tag", tt.name, exp, res.ToTag, tt.expiresOut)
		}
	}
	if subs := s.of(7); len(subs) != 1 || subs[0].dest != "198.51.100.7:5060" || subs[0].target.Host != "10.0.0.5" {
		t.Errorf("subscriptions %+v: want one, NOTIFYs to its Contact through its source", subs)
	}
	now = now.Add(2 * time.Hour)
	if subs := s.of(7); len(subs) != 0 {
		t.Errorf("expired subscriptions kept: %d", len(subs))
	}
}
