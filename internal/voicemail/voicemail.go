// Package voicemail is the mailboxes of SIP users: a SIP user agent with
// media, in the same process, to which the B2BUA sends calls like to any
// other target (route.Mailboxes builds those targets).
//
//   - Deposit: greeting (the user's own, or the shipped one), beep, then
//     the caller's audio until hang-up, #, silence or the maximum length,
//     kept in the store as a WAV file (8 kHz 16-bit PCM) with caller,
//     called number, time and duration; then mailed (package mailer) and
//     the user's phones told (message waiting).
//   - Retrieval (*1): the mailbox of the calling SIP user, or the one whose
//     number the caller keys in, then its PIN and #; a menu of DTMF keys
//     (RFC 4733) plays new and saved messages, deletes, repeats, records a
//     greeting and changes the PIN. Wrong PINs are limited per call and
//     counted by the firewall like failed digest logins.
//
// Media is emiago/diago's (RTP, G.711, RFC 4733, playback), the media side
// of sipgo; this package only keeps it behind session (media.go). The
// agent listens on its own port; a request without the per-process key
// sipward's targets carry is refused, so nothing else can use a mailbox.
package voicemail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/mailer"
	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/store"
)

// Box is a mailbox: its SIP user's voicemail settings as stored.
type Box struct {
	UserID    int64
	AccountID int64
	Username  string
	Email     string
	PINHash   string // empty: no PIN set, retrieval by phone refused
	Enabled   bool
}

// Directory finds mailboxes and changes their PINs (the store, through
// provisioning).
type Directory interface {
	// Mailbox returns SIP user id's mailbox; store.ErrNotFound when the user is gone.
	Mailbox(ctx context.Context, id int64) (Box, error)
	// Find returns the mailbox numbered number (a username) in account accountID.
	Find(ctx context.Context, accountID int64, number string) (Box, error)
	// SetPIN sets the user's voicemail PIN (validated and hashed there).
	SetPIN(ctx context.Context, id int64, pin string) error
}

// Mailer queues mail (a *mailer.Queue).
type Mailer interface {
	Enqueue(key int64, m mailer.Mail)
}

// Config configures the Service.
type Config struct {
	Directory Directory
	Store     store.Mailboxes
	Mailer    Mailer // nil: nothing is mailed
	// Changed is told when a user's message count changed (message waiting).
	Changed func(userID int64)
	// PINFailure is told of every wrong PIN, with the caller's address.
	PINFailure func(src netip.Addr, now time.Time)

	BindHost   string // the agent's SIP and RTP address; "" or unspecified: all (media on the first interface)
	ExternalIP net.IP // media address put in SDP, when not the bound one (behind NAT)

	MaxLength     time.Duration // longest message; default 120 s
	Silence       time.Duration // a deposit ends after this much silence; default 10 s, negative: never
	QuotaMessages int           // messages a mailbox holds; default 100
	QuotaSeconds  int           // seconds of messages a mailbox holds; default 3600
	PINAttempts   int           // wrong PINs per call; default 3
	Log           *slog.Logger
	Registerer    prometheus.Registerer // receives the agent's metrics; nil: kept, not registered
}

// Service is the voicemail agent.
type Service struct {
	cfg  Config
	key  string // proves a request comes from this process's B2BUA
	addr netip.AddrPort
	ua   *sipgo.UserAgent
	dg   *diago.Diago
	log  *slog.Logger
	m    *metrics
}

// New returns a Service; Start serves it.
func New(cfg Config) (*Service, error) {
	if cfg.Directory == nil || cfg.Store == nil {
		return nil, errors.New("voicemail: a directory and a store are needed")
	}
	if cfg.MaxLength <= 0 {
		cfg.MaxLength = 120 * time.Second
	}
	if cfg.Silence == 0 {
		cfg.Silence = 10 * time.Second
	}
	if cfg.QuotaMessages <= 0 {
		cfg.QuotaMessages = 100
	}
	if cfg.QuotaSeconds <= 0 {
		cfg.QuotaSeconds = 3600
	}
	if cfg.PINAttempts <= 0 {
		cfg.PINAttempts = 3
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Changed == nil {
		cfg.Changed = func(int64) {}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	return &Service{cfg: cfg, key: hex.EncodeToString(k[:]), log: cfg.Log, m: m}, nil
}

// Start binds the agent and serves it until ctx ends.
func (s *Service) Start(ctx context.Context) error {
	host := s.cfg.BindHost
	if host == "" {
		host = "0.0.0.0"
	}
	var err error
	for range 3 { // a free port picked, then bound by diago: another process may take it between
		var port int
		if port, err = freeUDPPort(host); err != nil {
			return fmt.Errorf("voicemail: %w", err)
		}
		if err = s.serve(ctx, host, port); err == nil {
			return nil
		}
	}
	return fmt.Errorf("voicemail: listen on %s: %w", host, err)
}

func (s *Service) serve(ctx context.Context, host string, port int) error {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("sipward-voicemail"))
	if err != nil {
		return err
	}
	dg := diago.NewDiago(ua, diago.WithLogger(s.log),
		diago.WithTransport(diago.Transport{Transport: "udp", BindHost: host, BindPort: port, MediaExternalIP: s.cfg.ExternalIP}),
		diago.WithMediaConfig(diago.MediaConfig{Codecs: []media.Codec{media.CodecAudioUlaw, media.CodecAudioAlaw, media.CodecTelephoneEvent8000}}))
	if err := dg.ServeBackground(ctx, s.handle); err != nil {
		ua.Close()
		return err
	}
	ip := netip.MustParseAddr("127.0.0.1")
	if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
		ip = a
	}
	s.ua, s.dg, s.addr = ua, dg, netip.AddrPortFrom(ip, uint16(port))
	context.AfterFunc(ctx, func() { ua.Close() })
	return nil
}

func freeUDPPort(host string) (int, error) {
	c, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// Addr is where the agent listens (for logs and tests).
func (s *Service) Addr() netip.AddrPort { return s.addr }

// keyHeader carries what a request to the agent is for: the mode, the
// mailbox, the caller's address, and the process's key.
const keyHeader = "X-Sipward-Voicemail"

// request is what keyHeader said.
type request struct {
	deposit bool
	user    int64 // the mailbox's user; 0: ask for its number
	account int64 // retrieval: the caller's account, where a keyed-in number is looked up
	src     netip.Addr
}

// Deposit is the target of a call to u that leaves a message
// (route.Mailboxes).
func (s *Service) Deposit(u *snapshot.User, from, to string, src netip.Addr) pipeline.Target {
	return s.target("deposit", u.ID, 0, src, fmt.Sprintf("voicemail of sip user %q", u.Username))
}

// Retrieve is the target of a call that hears a mailbox's messages
// (route.Mailboxes).
func (s *Service) Retrieve(userID, accountID int64, src netip.Addr) pipeline.Target {
	why := fmt.Sprintf("voicemail retrieval of sip user %d", userID)
	if userID == 0 {
		why = fmt.Sprintf("voicemail retrieval in account %d", accountID)
	}
	return s.target("retrieve", userID, accountID, src, why)
}

func (s *Service) target(mode string, user, account int64, src netip.Addr, why string) pipeline.Target {
	v := fmt.Sprintf("%s;user=%d;account=%d;key=%s", mode, user, account, s.key)
	if src.IsValid() {
		v += ";src=" + src.String()
	}
	uri := sip.Uri{Scheme: "sip", User: "voicemail", Host: s.addr.Addr().String(), Port: int(s.addr.Port())}
	return pipeline.Target{URI: uri, Transport: "udp", Dest: s.addr.String(), Why: why,
		Headers: []sip.Header{sip.NewHeader(keyHeader, v)}}
}

// parse reads keyHeader; false when it is missing or not this process's.
func (s *Service) parse(req *sip.Request) (request, bool) {
	h := req.GetHeader(keyHeader)
	if h == nil {
		return request{}, false
	}
	parts := strings.Split(h.Value(), ";")
	r := request{deposit: parts[0] == "deposit"}
	keyOK := false
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "user":
			r.user, _ = strconv.ParseInt(v, 10, 64)
		case "account":
			r.account, _ = strconv.ParseInt(v, 10, 64)
		case "src":
			r.src, _ = netip.ParseAddr(v)
		case "key":
			keyOK = v == s.key
		}
	}
	return r, keyOK && (parts[0] == "deposit" || parts[0] == "retrieve")
}

// handle serves one call to the agent.
func (s *Service) handle(d *diago.DialogServerSession) {
	r, ok := s.parse(d.InviteRequest)
	if !ok {
		_ = d.Respond(403, "Forbidden", nil)
		return
	}
	mode := "retrieve"
	if r.deposit {
		mode = "deposit"
	}
	s.m.calls.WithLabelValues(mode).Inc()
	defer s.m.calls.WithLabelValues(mode).Dec()
	if r.deposit {
		s.deposit(d, r)
		return
	}
	s.retrieve(d, r)
}
