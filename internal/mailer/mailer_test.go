package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// voicemail is the message every send test mails: a non-ASCII caller name
// in the subject and a binary "recording" holding every byte value.
func voicemail() Mail {
	wav := make([]byte, 3000)
	for i := range wav {
		wav[i] = byte(i * 7)
	}
	return Mail{
		To:      "alice@example.net",
		Subject: "Voicemail from Jürgen Größe (+49 30 1234) — 0:12",
		Text:    "Neue Nachricht von Jürgen, 12 s.\r\nSiehe Anhang.",
		Attachments: []Attachment{
			{Name: "msg-42.wav", ContentType: "audio/wav", Data: wav},
		},
	}
}

// smtpURL builds scheme://user:pass@addr with the credentials escaped.
func smtpURL(scheme, user, pass, addr string) string {
	u := url.URL{Scheme: scheme, Host: addr}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

func newMailer(t *testing.T, cfg Config) *Mailer {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// checkVoicemail checks that r is voicemail() intact, as a client parses it.
func checkVoicemail(t *testing.T, r received) {
	t.Helper()
	want := voicemail()
	if len(r.To) != 1 || r.To[0] != want.To {
		t.Errorf("RCPT TO %q, want [%s]", r.To, want.To)
	}
	_, subject, parts := parseMail(t, r.Data)
	if subject != want.Subject {
		t.Errorf("subject %q, want %q", subject, want.Subject)
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts, want text and attachment", len(parts))
	}
	if parts[0].ContentType != "text/plain" || string(parts[0].Data) != want.Text {
		t.Errorf("body %s %q, want text/plain %q", parts[0].ContentType, parts[0].Data, want.Text)
	}
	a := parts[1]
	if a.ContentType != "audio/wav" || a.FileName != "msg-42.wav" {
		t.Errorf("attachment %s %q, want audio/wav msg-42.wav", a.ContentType, a.FileName)
	}
	if !bytes.Equal(a.Data, want.Attachments[0].Data) {
		t.Errorf("attachment: %d bytes differ from the %d sent", len(a.Data), len(want.Attachments[0].Data))
	}
}

func TestSendSTARTTLS(t *testing.T) {
	cert, roots := testCert(t)
	be := newBackend()
	// Characters that must be escaped in a URL: New has to decode them.
	be.user, be.pass = "vm@example.com", "p@ss:w/rd%"
	addr := startServer(t, be, startTLSServer, cert)
	raw := smtpURL("smtp", be.user, be.pass, addr)
	if !strings.Contains(raw, "%40") {
		t.Fatalf("URL %s does not exercise decoding", raw)
	}
	m := newMailer(t, Config{URL: raw, From: "Voicemail <voicemail@example.com>",
		TLSConfig: &tls.Config{RootCAs: roots}})
	if err := m.Send(t.Context(), voicemail()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := waitMail(t, be)
	if !r.TLS {
		t.Error("DATA came over a plain connection: STARTTLS not used")
	}
	if r.User != be.user {
		t.Errorf("authenticated as %q, want %q", r.User, be.user)
	}
	if r.From != "voicemail@example.com" {
		t.Errorf("MAIL FROM %q, want voicemail@example.com", r.From)
	}
	checkVoicemail(t, r)
}

// TestSendLOGIN: a server offering only LOGIN still gets the credentials.
func TestSendLOGIN(t *testing.T) {
	cert, roots := testCert(t)
	be := newBackend()
	be.user, be.pass, be.mechs = "vm", "secret", []string{"LOGIN"}
	addr := startServer(t, be, startTLSServer, cert)
	m := newMailer(t, Config{URL: smtpURL("smtp", be.user, be.pass, addr), TLSConfig: &tls.Config{RootCAs: roots}})
	if err := m.Send(t.Context(), voicemail()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if r := waitMail(t, be); r.User != "vm" {
		t.Errorf("authenticated as %q, want vm", r.User)
	}
}

func TestSendPlain(t *testing.T) {
	be := newBackend()
	be.user, be.pass = "vm", "secret"
	addr := startServer(t, be, plainServer, tls.Certificate{})
	raw := smtpURL("smtp", be.user, be.pass, addr)

	t.Run("allowed", func(t *testing.T) {
		m := newMailer(t, Config{URL: raw})
		if err := m.Send(t.Context(), voicemail()); err != nil {
			t.Fatalf("Send: %v", err)
		}
		r := waitMail(t, be)
		if r.TLS {
			t.Error("TLS on a server without TLS")
		}
		// go-mail sends credentials in plain text to localhost only.
		if r.User != "vm" {
			t.Errorf("authenticated as %q, want vm", r.User)
		}
		if r.From != DefaultFrom {
			t.Errorf("MAIL FROM %q, want %s", r.From, DefaultFrom)
		}
		checkVoicemail(t, r)
	})

	t.Run("RequireTLS", func(t *testing.T) {
		mails, auths := be.counts()
		m := newMailer(t, Config{URL: raw, RequireTLS: true})
		err := m.Send(t.Context(), voicemail())
		if err == nil {
			t.Fatal("Send over plain text succeeded with RequireTLS")
		}
		t.Log(err)
		for _, want := range []string{"STARTTLS", "127.0.0.1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
		if m2, a2 := be.counts(); m2 != mails || a2 != auths {
			t.Errorf("server saw %d MAIL and %d AUTH commands, want none", m2-mails, a2-auths)
		}
	})
}

// TestSendPlainKeepsPasswordLocal: over plain text to a host that is not
// localhost, the credentials are not sent and neither is the mail.
func TestSendPlainKeepsPasswordLocal(t *testing.T) {
	if l, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("127.0.0.2 not usable here: %v", err)
	} else {
		l.Close()
	}
	be := newBackend()
	be.user, be.pass = "vm", "secret"
	addr := startServerOn(t, "127.0.0.2", be, plainServer, tls.Certificate{})
	m := newMailer(t, Config{URL: smtpURL("smtp", be.user, be.pass, addr)})
	err := m.Send(t.Context(), voicemail())
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "unencrypted") {
		t.Errorf("Send: %v, want an unencrypted-connection error", err)
	}
	if mails, auths := be.counts(); mails != 0 || auths != 0 {
		t.Errorf("server saw %d MAIL and %d AUTH commands, want none", mails, auths)
	}
}

func TestSendSMTPS(t *testing.T) {
	cert, roots := testCert(t)
	be := newBackend()
	be.user, be.pass = "vm", "secret"
	addr := startServer(t, be, implicitServer, cert)

	t.Run("sent", func(t *testing.T) {
		m := newMailer(t, Config{URL: smtpURL("smtps", "vm", "secret", addr), RequireTLS: true,
			TLSConfig: &tls.Config{RootCAs: roots}})
		if err := m.Send(t.Context(), voicemail()); err != nil {
			t.Fatalf("Send: %v", err)
		}
		r := waitMail(t, be)
		if !r.TLS || r.User != "vm" {
			t.Errorf("TLS %v user %q, want TLS and vm", r.TLS, r.User)
		}
		checkVoicemail(t, r)
	})

	t.Run("wrong password", func(t *testing.T) {
		m := newMailer(t, Config{URL: smtpURL("smtps", "vm", "wrong", addr), TLSConfig: &tls.Config{RootCAs: roots}})
		err := m.Send(t.Context(), voicemail())
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "535") || !strings.Contains(err.Error(), addr) {
			t.Errorf("Send: %v, want the server's 535 and its address", err)
		}
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		m := newMailer(t, Config{URL: smtpURL("smtps", "vm", "secret", addr)}) // system roots
		err := m.Send(t.Context(), voicemail())
		var unknown x509.UnknownAuthorityError
		if err == nil || !errors.As(err, &unknown) {
			t.Errorf("Send: %v, want an unknown-authority error", err)
		}
	})
}

// TestSendIPv6 covers the dialer: go-mail alone would dial "::1:port".
func TestSendIPv6(t *testing.T) {
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		l.Close()
	}
	be := newBackend()
	addr := startServerOn(t, "::1", be, plainServer, tls.Certificate{})
	m := newMailer(t, Config{URL: "smtp://" + addr})
	if err := m.Send(t.Context(), voicemail()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	checkVoicemail(t, waitMail(t, be))
}

// TestSendHeaderInjection: a subject built from a hostile caller name
// cannot add headers or recipients.
func TestSendHeaderInjection(t *testing.T) {
	be := newBackend()
	addr := startServer(t, be, plainServer, tls.Certificate{})
	m := newMailer(t, Config{URL: "smtp://" + addr})
	msg := voicemail()
	msg.Subject = "Voicemail from x\r\nBcc: mallory@example.org\r\n\r\nfake body"
	if err := m.Send(t.Context(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := waitMail(t, be)
	parsed, subject, _ := parseMail(t, r.Data)
	if len(r.To) != 1 || parsed.Header.Get("Bcc") != "" {
		t.Errorf("injected: RCPT TO %q, Bcc %q", r.To, parsed.Header.Get("Bcc"))
	}
	if subject != msg.Subject {
		t.Errorf("subject %q, want %q", subject, msg.Subject)
	}
}

func TestSendInvalidRecipient(t *testing.T) {
	m := newMailer(t, Config{URL: "smtp://127.0.0.1:1"})
	msg := voicemail()
	msg.To = "not an address"
	if err := m.Send(t.Context(), msg); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("Send: %v, want ErrInvalidMessage", err)
	}
	msg = voicemail()
	msg.Attachments[0].ContentType = "audio/wav\r\nBcc: mallory@example.org"
	if err := m.Send(t.Context(), msg); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("Send with a bad content type: %v, want ErrInvalidMessage", err)
	}
}

// TestSendTimeout: a server that accepts and never answers costs one
// Timeout, not go-mail's per-step deadlines stacked up.
func TestSendTimeout(t *testing.T) {
	addr := hangingServer(t)
	m := newMailer(t, Config{URL: "smtp://" + addr, Timeout: 200 * time.Millisecond})
	start := time.Now()
	err := m.Send(t.Context(), voicemail())
	t.Log(err)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), addr) {
		t.Errorf("Send: %v, want a deadline error naming %s", err, addr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v with a 200ms timeout", d)
	}
}

// hangingServer accepts connections and never says a word; they stay open
// until the test ends.
func hangingServer(t *testing.T) string {
	t.Helper()
	addr, _ := hangingServerAccepts(t)
	return addr
}

// hangingServerAccepts is hangingServer that also announces each accepted
// connection.
func hangingServerAccepts(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String(), accepted
}

func TestNewDefaults(t *testing.T) {
	tests := []struct {
		url        string
		host       string
		port       int
		implicit   bool
		user, pass string
	}{
		{url: "smtp://mail.example.com", host: "mail.example.com", port: 587},
		{url: "smtp://mail.example.com/", host: "mail.example.com", port: 587},
		{url: "SMTPS://mail.example.com", host: "mail.example.com", port: 465, implicit: true},
		{url: "smtp://mail.example.com:25", host: "mail.example.com", port: 25},
		{url: "smtps://u:p@[2001:db8::1]:2465", host: "2001:db8::1", port: 2465, implicit: true, user: "u", pass: "p"},
		{url: "smtp://vm%40example.com:p%40ss%3Aw%2Frd@h", host: "h", port: 587, user: "vm@example.com", pass: "p@ss:w/rd"},
		{url: "smtp://justuser@h", host: "h", port: 587, user: "justuser"},
		// Pasted without escaping: the last "@" ends the password.
		{url: "smtp://u:s3c/r@t@h:2525", host: "h", port: 2525, user: "u", pass: "s3c/r@t"},
	}
	for _, tt := range tests {
		m, err := New(Config{URL: tt.url})
		if err != nil {
			t.Errorf("New(%q): %v", tt.url, err)
			continue
		}
		if m.host != tt.host || m.port != tt.port || m.implicitTLS != tt.implicit || m.user != tt.user || m.pass != tt.pass {
			t.Errorf("New(%q) = host %q port %d implicit %v user %q pass %q, want %q %d %v %q %q", tt.url,
				m.host, m.port, m.implicitTLS, m.user, m.pass, tt.host, tt.port, tt.implicit, tt.user, tt.pass)
		}
		if m.tls.ServerName != tt.host || m.tls.MinVersion != tls.VersionTLS12 {
			t.Errorf("New(%q): TLS ServerName %q MinVersion %x", tt.url, m.tls.ServerName, m.tls.MinVersion)
		}
		if m.from != DefaultFrom || m.timeout != DefaultTimeout {
			t.Errorf("New(%q): from %q timeout %v, want defaults", tt.url, m.from, m.timeout)
		}
	}

	given := &tls.Config{ServerName: "relay.internal"}
	m, err := New(Config{URL: "smtp://10.0.0.1", TLSConfig: given})
	if err != nil {
		t.Fatal(err)
	}
	if m.tls.ServerName != "relay.internal" || given.MinVersion != 0 {
		t.Errorf("TLSConfig: ServerName %q, caller's config changed: %v", m.tls.ServerName, given.MinVersion != 0)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{URL: ""}, `smtp-url: "": empty URL`},
		{Config{URL: "ftp://x"}, `smtp-url: "ftp://x": scheme must be smtp or smtps`},
		{Config{URL: "mail.example.com:25"}, `smtp-url: "mail.example.com:25": scheme must be smtp or smtps`},
		{Config{URL: "smtp://"}, `smtp-url: "smtp://": missing host`},
		{Config{URL: "smtp://:25"}, `smtp-url: "smtp://:25": missing host`},
		{Config{URL: "smtp:mail.example.com"}, `missing host`},
		{Config{URL: "smtp://h:0"}, `smtp-url: "smtp://h:0": bad port "0": must be 1-65535`},
		{Config{URL: "smtp://h:65536"}, `bad port "65536"`},
		{Config{URL: "smtp://h:abc"}, `smtp-url: "smtp://h:abc": invalid port ":abc" after host`},
		{Config{URL: "smtp://h/relay"}, `unexpected path`},
		{Config{URL: "smtp://h?tls=no"}, `unexpected path, query or fragment`},
		{Config{URL: "smtp://:pw@h"}, `password without user`},
		// The password never appears, even when the URL does not parse.
		{Config{URL: "smtp://u:s3cret@h:abc"}, `smtp-url: "smtp://u:xxxxx@h:abc": invalid port`},
		{Config{URL: "smtp://u:s3c%zz@h"}, `smtp-url: "smtp://u:xxxxx@h": password: bad %-escape`},
		{Config{URL: "u:s3cret@h"}, `smtp-url: "xxxxx@h": scheme must be smtp or smtps`},
		{Config{URL: "a@b://u:s3cret@h:x"}, `smtp-url: "a@b://u:xxxxx@h:x"`},
		{Config{URL: "ftp://u:s3cret@h"}, `smtp-url: "ftp://u:xxxxx@h": scheme`},
		{Config{URL: "smtp://h", From: "not an address"}, `smtp-from: "not an address"`},
		{Config{URL: "smtp://h", Timeout: -time.Second}, `mailer: Timeout -1s: must not be negative`},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if err == nil {
			t.Errorf("New(%+v) succeeded, want %q", tt.cfg, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q): %q, want %q", tt.cfg.URL, err, tt.want)
		}
		if strings.Contains(err.Error(), "s3c") {
			t.Errorf("New(%q): error %q leaks the password", tt.cfg.URL, err)
		}
	}
}
