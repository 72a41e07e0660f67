// Package mwi tells SIP users' phones whether messages are waiting in their
// mailboxes (RFC 3842, event message-summary): to every registered device
// without a subscription (most desk phones only REGISTER and expect it from
// their registrar), and within the dialog of each subscription a phone made
// with SUBSCRIBE (RFC 6665). Its SUBSCRIBE handler ends the subscribe chain,
// after digest authentication: a phone subscribes to its own mailbox only.
//
// Subscriptions live in the node's memory: a phone refreshes its own
// within its expiry, and a restart (or a node that is gone) costs it at
// most that — the unsolicited NOTIFY to its registration still reaches it.
package mwi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// Name is the handler's name in traces and decisions.
const Name = "mwi"

// Summary is a mailbox's message counts.
type Summary struct{ New, Old int }

// Body is the application/simple-message-summary body of s for the
// mailbox of username at host.
func (s Summary) Body(username, host string) []byte {
	waiting := "no"
	if s.New > 0 {
		waiting = "yes"
	}
	return fmt.Appendf(nil, "Messages-Waiting: %s\r\nMessage-Account: sip:%s@%s\r\nVoice-Message: %d/%d (0/0)\r\n",
		waiting, username, host, s.New, s.Old)
}

// Sender sends sipward's own requests through the edge.
type Sender interface {
	Client(transport string) (*sipgo.Client, error)
	Contact(transport string) sip.Uri
	Host() string
}

// Config configures the Service.
type Config struct {
	Sender Sender
	// Counts returns the counts of SIP user id's mailbox.
	Counts func(ctx context.Context, id int64) (Summary, error)
	// Username returns SIP user id's username; false when it is gone.
	Username func(id int64) (string, bool)
	// Registered tells the user's registered devices without a subscription
	// (the registrar).
	Registered func(ctx context.Context, username string, s Summary)
	MaxExpires time.Duration // longest subscription granted; default 1 h
	Log        *slog.Logger
	Now        func() time.Time
}

// Service is message waiting.
type Service struct {
	cfg  Config
	mu   sync.Mutex
	subs map[string]*subscription // by Call-ID and the subscriber's tag
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.MaxExpires <= 0 {
		cfg.MaxExpires = time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, subs: map[string]*subscription{}}
}

// Changed tells user id's phones its counts, in the background (a phone
// that does not answer must hold nobody up).
func (s *Service) Changed(id int64) {
	name, ok := s.cfg.Username(id)
	if !ok {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sum, err := s.cfg.Counts(ctx, id)
		if err != nil {
			s.cfg.Log.Warn("mwi: count messages", "sip_user", name, "err", err)
			return
		}
		for _, sub := range s.of(id) {
			s.notify(ctx, sub, sum, false)
		}
		if s.cfg.Registered != nil {
			s.cfg.Registered(ctx, name, sum)
		}
	}()
}

// of returns user id's live subscriptions, forgetting expired ones.
func (s *Service) of(id int64) []*subscription {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*subscription
	for k, sub := range s.subs {
		switch {
		case !now.Before(sub.expires):
			delete(s.subs, k)
		case sub.user == id:
			out = append(out, sub)
		}
	}
	return out
}

// Name returns Name.
func (s *Service) Name() string { return Name }

// ServeSIP answers a SUBSCRIBE (new, refresh or, with Expires 0, end) to
// message-summary from an authenticated SIP user to its own mailbox, then
// NOTIFYs the counts in the subscription's dialog.
func (s *Service) ServeSIP(_ context.Context, r *pipeline.Request) (pipeline.Result, error) {
	req := r.Msg
	if ev := req.GetHeader("Event"); ev == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ev.Value(), ";")[0]), "message-summary") {
		return pipeline.Reject(Name, 489, "Bad Event", "only message-summary is served", sip.NewHeader("Allow-Events", "message-summary")), nil
	}
	if r.Auth.SIPUserID == 0 {
		return pipeline.Reject(Name, 403, "Forbidden", "message-summary needs a SIP user's credentials"), nil
	}
	if u := req.Recipient.User; u != "" && u != r.Auth.Username {
		return pipeline.Reject(Name, 403, "Forbidden", fmt.Sprintf("sip user %q may not watch mailbox %q", r.Auth.Username, u)), nil
	}
	expires := s.cfg.MaxExpires
	if h := req.GetHeader("Expires"); h != nil {
		if v, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && v >= 0 && time.Duration(v)*time.Second < expires {
			expires = time.Duration(v) * time.Second
		}
	}
	sub, err := s.subscribe(r, expires)
	if errors.Is(err, errNoSubscription) {
		return pipeline.Reject(Name, 481, "Subscription Does Not Exist", "refresh of a subscription this node does not hold"), nil
	}
	if err != nil {
		return pipeline.Reject(Name, 400, "Bad Request", err.Error()), nil
	}
	res := pipeline.Reply(Name, 200, "OK", fmt.Sprintf("message-summary of %q for %s", r.Auth.Username, expires),
		sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))),
		&sip.ContactHeader{Address: s.cfg.Sender.Contact(r.Transport)})
	res.ToTag = sub.localTag
	go s.first(sub, expires == 0)
	return res, nil
}

// first sends a subscription's first NOTIFY (or, ending it, its last).
func (s *Service) first(sub *subscription, last bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sum, err := s.cfg.Counts(ctx, sub.user)
	if err != nil {
		s.cfg.Log.Warn("mwi: count messages", "sip_user", sub.username, "err", err)
		return
	}
	s.notify(ctx, sub, sum, last)
}
