package mwi

// A subscription's dialog (RFC 6665): made by the first SUBSCRIBE, kept
// by refreshes, ended by Expires 0 or by running out; its NOTIFYs go to
// the subscriber's Contact through the address it subscribed from.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// subscription is one phone's subscription to one mailbox.
type subscription struct {
	user      int64
	username  string
	callID    string
	localTag  string
	remoteTag string
	local     sip.Uri // the mailbox's address (the SUBSCRIBE's To): our From
	remote    sip.Uri // the subscriber (its From): our To
	transport string

	mu      sync.Mutex
	target  sip.Uri // the subscriber's Contact
	dest    string  // where it subscribed from (through its NAT)
	cseq    uint32
	expires time.Time
}

// errNoSubscription: a refresh of a subscription this node does not hold.
var errNoSubscription = errors.New("no such subscription")

// subscribe makes, refreshes or (expires 0) ends r's subscription.
func (s *Service) subscribe(r *pipeline.Request, expires time.Duration) (*subscription, error) {
	req := r.Msg
	from, to := req.From(), req.To()
	if from == nil || to == nil || req.CallID() == nil {
		return nil, errors.New("SUBSCRIBE without From, To or Call-ID")
	}
	tag, ok := from.Params.Get("tag")
	if !ok {
		return nil, errors.New("SUBSCRIBE without a From tag")
	}
	target := from.Address
	if ct := req.Contact(); ct != nil {
		target = ct.Address
	}
	key := req.CallID().Value() + "|" + tag
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subs[key]
	if sub == nil {
		if to.Params.Has("tag") {
			return nil, errNoSubscription
		}
		sub = &subscription{user: r.Auth.SIPUserID, username: r.Auth.Username, callID: req.CallID().Value(),
			localTag: sip.GenerateTagN(16), remoteTag: tag, local: to.Address, remote: from.Address,
			transport: r.Transport}
		s.subs[key] = sub
	}
	sub.mu.Lock()
	sub.target, sub.dest, sub.expires = target, r.Source.String(), s.cfg.Now().Add(expires)
	sub.mu.Unlock()
	if expires == 0 {
		delete(s.subs, key)
	}
	return sub, nil
}

// notify sends sum in sub's dialog; last ends the subscription.
func (s *Service) notify(ctx context.Context, sub *subscription, sum Summary, last bool) {
	cl, err := s.cfg.Sender.Client(sub.transport)
	if err != nil {
		return
	}
	sub.mu.Lock()
	sub.cseq++
	req := sip.NewRequest(sip.NOTIFY, sub.target)
	req.SetTransport(strings.ToUpper(sub.transport))
	req.SetDestination(sub.dest)
	state := "terminated;reason=timeout"
	if left := sub.expires.Sub(s.cfg.Now()); !last && left > 0 {
		state = fmt.Sprintf("active;expires=%d", int(left/time.Second))
	}
	f := &sip.FromHeader{Address: sub.local}
	f.Params.Add("tag", sub.localTag)
	t := &sip.ToHeader{Address: sub.remote}
	t.Params.Add("tag", sub.remoteTag)
	cid := sip.CallIDHeader(sub.callID)
	req.AppendHeader(f)
	req.AppendHeader(t)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: sub.cseq, MethodName: sip.NOTIFY})
	sub.mu.Unlock()
	req.AppendHeader(&sip.ContactHeader{Address: s.cfg.Sender.Contact(sub.transport)})
	req.AppendHeader(sip.NewHeader("Event", "message-summary"))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/simple-message-summary"))
	req.SetBody(sum.Body(sub.username, s.cfg.Sender.Host()))
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := cl.Do(cctx, req)
	switch {
	case err != nil:
		s.cfg.Log.Debug("mwi: NOTIFY got no answer", "sip_user", sub.username, "err", err)
	case res.StatusCode == 481:
		s.forget(sub) // the phone dropped it
	}
}

func (s *Service) forget(sub *subscription) {
	s.mu.Lock()
	delete(s.subs, sub.callID+"|"+sub.remoteTag)
	s.mu.Unlock()
}
