// Package mailer sends mail through one SMTP server: voicemail messages go to
// a SIP user's address with the recording attached.
//
// The server is named by a URL:
//
//	smtp://[user[:pass]@]host[:port]   plain TCP, upgraded with STARTTLS when the
//	                                   server offers it; default port 587
//	smtps://[user[:pass]@]host[:port]  TLS from the first byte; default port 465
//
// User and password are URL-decoded ("%40" for "@"). When a user is given the
// mailer authenticates with PLAIN, or LOGIN when the server offers only that.
// Credentials never cross an unencrypted connection, except to localhost
// (go-mail's rule): smtp:// to a server without STARTTLS and with a user fails
// rather than leak the password.
//
// TLS policy: smtp:// sends in plain text when the server does not offer
// STARTTLS, unless Config.RequireTLS is set; then the attempt fails before
// MAIL FROM and nothing is sent. Certificates are checked against the system
// roots (or Config.TLSConfig) for the URL's host; there is no option to skip
// verification.
//
// Mailer.Send makes one attempt. Queue sends in the background and retries
// failed attempts after growing waits (by default 30s, 2m, 10m, 30m, 1h, 2h:
// 7 attempts over about 4 hours), reporting each attempt to a callback so the
// caller can store the outcome. Waiting retries live only in memory: after a
// restart the caller re-enqueues what its store still has as pending.
package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"
)

// Config says which server to use and how. The zero value of every field
// but URL is usable.
type Config struct {
	// URL is smtp://[user[:pass]@]host[:port] (STARTTLS when the server
	// offers it; default port 587) or smtps://[user[:pass]@]host[:port] (TLS
	// from the first byte; default port 465).
	URL string
	// RequireTLS refuses to send over a plain connection: smtp:// then needs
	// STARTTLS, and a server that does not offer it fails the send with an
	// error saying so.
	RequireTLS bool
	// From is the sender address; "sipward@localhost" when empty.
	From string
	// TLSConfig sets roots (tests) or a ServerName; nil means the system
	// roots with the URL's host as ServerName.
	TLSConfig *tls.Config
	// Timeout bounds one attempt, connection to QUIT; 30s when zero.
	Timeout time.Duration
}

// Defaults of Config.
const (
	DefaultFrom    = "sipward@localhost"
	DefaultTimeout = 30 * time.Second
)

// ErrInvalidMessage marks a Mail that cannot be sent however often it is
// tried (a malformed recipient address); Queue gives up on it at once.
var ErrInvalidMessage = errors.New("invalid message")

// Attachment is a file attached to a Mail.
type Attachment struct {
	Name        string // file name shown to the recipient
	ContentType string // e.g. "audio/wav"; application/octet-stream when empty
	Data        []byte
}

// Mail is one message to one recipient. Text is the plain-text body.
type Mail struct {
	To, Subject, Text string
	Attachments       []Attachment
}

// Sender sends one Mail in one attempt; *Mailer is one, and tests of Queue
// use fakes.
type Sender interface {
	Send(ctx context.Context, msg Mail) error
}

var _ Sender = (*Mailer)(nil)

// Mailer sends mail through one SMTP server. It is safe for concurrent use:
// every Send opens its own connection.
type Mailer struct {
	host        string
	port        int
	implicitTLS bool // smtps://
	requireTLS  bool
	user, pass  string
	from        string
	tls         *tls.Config // ServerName always set
	timeout     time.Duration
}

// New validates cfg. Its errors name the flag at fault, e.g.
// `smtp-url: "ftp://x": scheme must be smtp or smtps`; a password in the URL
// is shown as "xxxxx".
func New(cfg Config) (*Mailer, error) {
	m, shown, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("smtp-url: %q: %w", shown, err)
	}
	m.requireTLS = cfg.RequireTLS
	m.from = cfg.From
	if m.from == "" {
		m.from = DefaultFrom
	}
	if _, err := netmail.ParseAddress(m.from); err != nil {
		return nil, fmt.Errorf("smtp-from: %q: %w", m.from, err)
	}
	m.timeout = cfg.Timeout
	switch {
	case m.timeout == 0:
		m.timeout = DefaultTimeout
	case m.timeout < 0:
		// No flag sets it (yet), so the error names the field.
		return nil, fmt.Errorf("mailer: Timeout %v: must not be negative", cfg.Timeout)
	}
	// go-mail replaces its whole default tls.Config (ServerName = host,
	// TLS 1.2 minimum) with ours, so ours must carry both.
	m.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		m.tls = cfg.TLSConfig.Clone()
	}
	if m.tls.ServerName == "" {
		m.tls.ServerName = m.host
	}
	if m.tls.MinVersion == 0 {
		m.tls.MinVersion = tls.VersionTLS12
	}
	return m, nil
}

// parseURL reads scheme, credentials, host and port. It also returns the
// URL as errors may quote it: with the password replaced by "xxxxx".
//
// The user info is split off at the last "@" before url.Parse sees the
// rest, for two reasons: url.Parse's errors quote the input, and a password
// with an unescaped "/" makes it read part of the password as a port and
// print it. Splitting at the last "@" also accepts passwords pasted with a
// raw "@" or "/", as curl does.
func parseURL(raw string) (m *Mailer, shown string, err error) {
	if raw == "" {
		return nil, raw, errors.New("empty URL")
	}
	shown, rest := raw, raw
	var userinfo string
	scheme, afterScheme, hasScheme := strings.Cut(raw, "://")
	switch at := strings.LastIndex(afterScheme, "@"); {
	case !hasScheme && strings.Contains(raw, "@"):
		// "user:pass@host": without a scheme, url.Parse would take the
		// user for one and keep the password in the opaque part.
		return nil, "xxxxx" + raw[strings.LastIndex(raw, "@"):], errors.New("scheme must be smtp or smtps")
	case at >= 0:
		userinfo, rest = afterScheme[:at], scheme+"://"+afterScheme[at+1:]
		if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
			shown = scheme + "://" + user + ":xxxxx" + afterScheme[at:]
		}
	}
	u, err := url.Parse(rest)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the *url.Error text repeats the URL
		}
		return nil, shown, err
	}
	m, err = urlMailer(u)
	if err != nil {
		return nil, shown, err
	}
	if userinfo != "" {
		if m.user, m.pass, err = splitUserinfo(userinfo); err != nil {
			return nil, shown, err
		}
	}
	return m, shown, nil
}

// urlMailer reads scheme, host and port of a URL without user info.
func urlMailer(u *url.URL) (*Mailer, error) {
	m := &Mailer{}
	switch u.Scheme { // url.Parse lowercases it
	case "smtp":
		m.port = mail.DefaultPortTLS
	case "smtps":
		m.port, m.implicitTLS = mail.DefaultPortSSL, true
	default:
		return nil, errors.New("scheme must be smtp or smtps")
	}
	m.host = u.Hostname()
	if m.host == "" {
		return nil, errors.New("missing host")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("unexpected path, query or fragment")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("bad port %q: must be 1-65535", p)
		}
		m.port = n
	}
	return m, nil
}

// splitUserinfo percent-decodes "user[:pass]". Its errors never quote the
// input, which holds the password.
func splitUserinfo(userinfo string) (user, pass string, err error) {
	rawUser, rawPass, _ := strings.Cut(userinfo, ":")
	if user, err = url.PathUnescape(rawUser); err != nil {
		return "", "", errors.New("user: bad %-escape")
	}
	if pass, err = url.PathUnescape(rawPass); err != nil {
		return "", "", errors.New("password: bad %-escape")
	}
	if user == "" {
		return "", "", errors.New("password without user")
	}
	return user, pass, nil
}

// Addr is the server's host:port, for logs.
func (m *Mailer) Addr() string { return net.JoinHostPort(m.host, strconv.Itoa(m.port)) }

// Send makes one attempt to deliver msg, bounded by Config.Timeout and ctx:
// cancelling ctx aborts the attempt at once, even mid-transfer. Errors name
// the server and carry its answer (e.g. "451 4.3.0 try again later"). A
// message that cannot be built wraps ErrInvalidMessage.
func (m *Mailer) Send(ctx context.Context, msg Mail) error {
	gm, err := m.message(msg)
	if err != nil {
		return fmt.Errorf("mailer: %w: %w", ErrInvalidMessage, err)
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	c, err := m.client(ctx)
	if err != nil {
		return fmt.Errorf("mailer: %s: %w", m.Addr(), err)
	}
	if err := c.DialAndSendWithContext(ctx, gm); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			// The closed socket's error hides why it was closed.
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return fmt.Errorf("mailer: send via %s: %w", m.Addr(), err)
	}
	return nil
}

// message builds the go-mail message. Headers are RFC 2047 encoded by
// go-mail (quoted-printable words), which also defuses CR/LF in a subject
// built from a caller's display name.
func (m *Mailer) message(msg Mail) (*mail.Msg, error) {
	gm := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := gm.From(m.from); err != nil {
		return nil, fmt.Errorf("from %q: %w", m.from, err)
	}
	if err := gm.To(msg.To); err != nil {
		return nil, fmt.Errorf("recipient %q: %w", msg.To, err)
	}
	gm.Subject(msg.Subject)
	gm.SetBodyString(mail.TypeTextPlain, msg.Text)
	for _, a := range msg.Attachments {
		ct := a.ContentType
		if ct == "" {
			ct = string(mail.TypeAppOctetStream)
		}
		// go-mail writes it into the header as it is.
		if _, _, err := mime.ParseMediaType(ct); err != nil {
			return nil, fmt.Errorf("attachment %q: content type %q: %w", a.Name, ct, err)
		}
		gm.AttachReadSeeker(a.Name, bytes.NewReader(a.Data),
			mail.WithFileContentType(mail.ContentType(ct)))
	}
	return gm, nil
}

// client configures a go-mail client for one attempt. A fresh client per
// attempt because go-mail's Client keeps per-connection state (it may
// rewrite its auth type during AUTH, under a read lock) and so is not safe
// for concurrent sends.
func (m *Mailer) client(ctx context.Context) (*mail.Client, error) {
	opts := []mail.Option{
		mail.WithPort(m.port),
		// A backstop only: go-mail renews this deadline at every step, while
		// the attempt's ctx (see dialer) bounds the whole attempt. Longer,
		// so that ctx fires first and the error says why.
		mail.WithTimeout(2 * m.timeout),
		mail.WithTLSConfig(m.tls),
		mail.WithDialContextFunc(m.dialer(ctx)),
	}
	if m.implicitTLS {
		// Stops go-mail from trying STARTTLS; the TLS itself is done in
		// dialer, since go-mail skips its own when a dial func is set.
		opts = append(opts, mail.WithSSL())
	} else {
		// WithTLSPolicy, not WithTLSPortPolicy: unless a port was set
		// before it, the latter retries a failed dial to 587 on port 25.
		policy := mail.TLSOpportunistic
		if m.requireTLS {
			policy = mail.TLSMandatory
		}
		opts = append(opts, mail.WithTLSPolicy(policy))
	}
	if m.user != "" {
		// PLAIN when offered, else LOGIN; go-mail falls back to its
		// discovery (SCRAM, CRAM-MD5...) when neither is. Plain
		// SMTPAuthAutoDiscover would never pick PLAIN or LOGIN on a plain
		// connection, not even to localhost, and prefers CRAM-MD5 to PLAIN.
		opts = append(opts,
			mail.WithOpportunisticSMTPAuth(mail.SMTPAuthPlain, mail.SMTPAuthLogin),
			mail.WithUsername(m.user), mail.WithPassword(m.pass))
	}
	return mail.NewClient(m.host, opts...)
}

// dialer connects to the server and ties the connection to the attempt's
// ctx: when ctx ends (cancel, timeout, or Send returning) the socket is
// closed. go-mail itself uses ctx only while dialling, leaves a connection
// open when EHLO, STARTTLS or AUTH fails, and formats the address with
// "%s:%d", which breaks IPv6 literals; this dialer fixes all three.
func (m *Mailer) dialer(attempt context.Context) mail.DialContextFunc {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(ctx, network, m.Addr())
		if err != nil {
			return nil, err
		}
		context.AfterFunc(attempt, func() { _ = raw.Close() })
		if !m.implicitTLS {
			return raw, nil
		}
		tc := tls.Client(raw, m.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		return tc, nil
	}
}
