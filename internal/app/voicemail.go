package app

// Voicemail's wiring: the agent (package voicemail) with the store's
// mailboxes, provisioning as its directory, the mail queue, the firewall
// told of wrong PINs, and the registrar telling phones of new messages.

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/config"
	"github.com/sipward/sipward/internal/mailer"
	"github.com/sipward/sipward/internal/mwi"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/registrar"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/stage/firewall"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/voicemail"
)

// vmDeps is what the voicemail agent is wired to.
type vmDeps struct {
	svc      *provision.Service
	snap     func() *snapshot.Snapshot
	firewall *firewall.Firewall
	changed  func(mailbox int64) // tells message waiting, on every node
	log      *slog.Logger
	reg      prometheus.Registerer
}

// startVoicemail starts the voicemail agent, and the mail queue when
// --smtp-url is set (resuming mail a previous run left pending).
func startVoicemail(ctx context.Context, cfg config.Config, st store.Mailboxes, d vmDeps) (*voicemail.Service, error) {
	var queue *mailer.Queue
	if cfg.SMTPURL != "" {
		m, err := mailer.New(mailer.Config{URL: cfg.SMTPURL, RequireTLS: cfg.SMTPRequireTLS, From: cfg.SMTPFrom})
		if err != nil {
			return nil, err
		}
		queue = mailer.NewQueue(mailer.QueueConfig{Sender: m, Log: d.log, OnResult: mailResult(st, d.log)})
		go queue.Run(ctx)
	}
	dir := mailboxDir{svc: d.svc, snap: d.snap}
	vcfg := voicemail.Config{Directory: dir, Store: st, BindHost: listenHost(cfg.SIPAddr),
		MaxLength: cfg.VoicemailMaxLength, Silence: cfg.VoicemailSilence,
		QuotaMessages: cfg.VoicemailQuotaMessages, QuotaSeconds: cfg.VoicemailQuotaSeconds,
		PINFailure: func(src netip.Addr, now time.Time) { d.firewall.Detector().Failure(src, firewall.AuthFailure, now) },
		Changed:    d.changed, Log: d.log, Registerer: d.reg}
	if cfg.VoicemailSilence == 0 {
		vcfg.Silence = -1
	}
	if ip := net.ParseIP(cfg.ExternalHost); ip != nil {
		vcfg.ExternalIP = ip
	}
	if queue != nil {
		vcfg.Mailer = queue
	}
	vm, err := voicemail.New(vcfg)
	if err != nil {
		return nil, err
	}
	if err := vm.Start(ctx); err != nil {
		return nil, err
	}
	d.svc.OnVoicemailChange(vcfg.Changed)
	if queue != nil {
		resumeMail(ctx, st, dir, queue, d.log)
	}
	d.log.Info("voicemail: serving", "addr", vm.Addr().String(), "mail", queue != nil)
	return vm, nil
}

// listenHost is the host of a listen address; "" for all interfaces.
func listenHost(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// mailboxDir finds mailboxes through provisioning, as the operator.
type mailboxDir struct {
	svc  *provision.Service
	snap func() *snapshot.Snapshot
}

func (d mailboxDir) Mailbox(ctx context.Context, id int64) (voicemail.Box, error) {
	u, err := d.svc.GetSIPUser(ctx, provision.Operator, id)
	if err != nil {
		return voicemail.Box{}, err
	}
	return voicemail.Box{UserID: u.ID, AccountID: u.AccountID, Username: u.Username, Email: u.Voicemail.Email,
		PINHash: u.Voicemail.PINHash, Enabled: u.Voicemail.Enabled}, nil
}

func (d mailboxDir) Find(ctx context.Context, accountID int64, number string) (voicemail.Box, error) {
	u := d.snap().User(number)
	if u == nil || u.Account == nil || u.Account.ID != accountID {
		return voicemail.Box{}, store.ErrNotFound
	}
	return d.Mailbox(ctx, u.ID)
}

// SetPIN sets a PIN its user changed by phone (the mailbox menu, after the
// old PIN): the audit trail records it as that user's, through the phone.
func (d mailboxDir) SetPIN(ctx context.Context, id int64, pin string) error {
	u, err := d.svc.GetSIPUser(ctx, provision.Operator, id)
	if err != nil {
		return err
	}
	c := provision.Caller{AccountID: u.AccountID, Actor: "sip_user:" + u.Username, Via: "phone"}
	return d.svc.SetVoicemailPIN(ctx, c, id, pin)
}

// mailResult keeps each mail attempt's outcome on its message.
func mailResult(st store.Mailboxes, log *slog.Logger) func(mailer.Result) {
	return func(r mailer.Result) {
		ms := store.MailState{Status: store.MailPending, Attempts: r.Attempts}
		switch {
		case r.Err == nil:
			ms.Status, ms.SentAt = store.MailSent, time.Now().UTC()
		case r.Final:
			ms.Status = store.MailFailed
		}
		if r.Err != nil {
			ms.Error = r.Err.Error()
			log.Warn("voicemail: mail not sent", "message", r.Key, "attempt", r.Attempts, "final", r.Final, "err", r.Err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := st.SetMailState(ctx, r.Key, ms); err != nil {
			log.Warn("voicemail: record mail outcome", "message", r.Key, "err", err)
		}
	}
}

// resumeMail queues again the mail a previous run left pending.
func resumeMail(ctx context.Context, st store.Mailboxes, dir mailboxDir, q *mailer.Queue, log *slog.Logger) {
	ms, err := st.PendingMail(ctx, 1000)
	if err != nil {
		log.Warn("voicemail: pending mail not resumed", "err", err)
		return
	}
	for _, m := range ms {
		box, err := dir.Mailbox(ctx, m.SIPUserID)
		wav, aerr := st.MessageAudio(ctx, m.SIPUserID, m.ID)
		if err = errors.Join(err, aerr); err != nil {
			log.Warn("voicemail: pending mail not resumed", "message", m.ID, "err", err)
			continue
		}
		q.Enqueue(m.ID, voicemail.Mail(box, m, wav))
	}
}

// newMWI is message waiting: counts from the store's mailboxes, told to
// subscriptions and (through the registrar) to registered phones.
func newMWI(st store.Mailboxes, snap func() *snapshot.Snapshot, reg *registrar.Registrar, snd mwi.Sender, log *slog.Logger) *mwi.Service {
	return mwi.New(mwi.Config{Sender: snd, Log: log,
		Counts: func(ctx context.Context, id int64) (mwi.Summary, error) {
			n, err := st.MailboxUsage(ctx, id)
			return mwi.Summary{New: n.Unread, Old: n.Messages - n.Unread}, err
		},
		Username: func(id int64) (string, bool) {
			if u := snap().UserByID(id); u != nil {
				return u.Username, true
			}
			return "", false
		},
		Registered: func(ctx context.Context, username string, s mwi.Summary) { reg.NotifyMessages(ctx, username, s) },
	})
}
