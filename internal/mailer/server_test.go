package mailer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message as the test server saw it.
type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool   // the connection was TLS when DATA came
	User string // authenticated user, "" without AUTH
}

// backend is a go-smtp backend that records what it receives. With user
// set it offers AUTH (mechs, PLAIN by default) and requires it for MAIL.
type backend struct {
	user, pass string
	mechs      []string
	// refuse, when set, answers MAIL number n (from 1) with its error.
	refuse func(n int) error

	mu    sync.Mutex
	mails int // MAIL commands seen
	auths int // AUTH attempts seen
	got   chan received
}

func newBackend() *backend { return &backend{got: make(chan received, 100)} }

func (b *backend) counts() (mails, auths int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mails, b.auths
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{b: b, c: c}, nil
}

type session struct {
	b    *backend
	c    *smtp.Conn
	user string
	r    received
}

var _ smtp.AuthSession = (*session)(nil)

func (s *session) AuthMechanisms() []string {
	switch {
	case s.b.user == "":
		return nil
	case s.b.mechs != nil:
		return s.b.mechs
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	s.b.mu.Lock()
	s.b.auths++
	s.b.mu.Unlock()
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return s.check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: s.check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) check(user, pass string) error {
	if user != s.b.user || pass != s.b.pass {
		return smtp.ErrAuthFailed
	}
	s.user = user
	return nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.b.mu.Lock()
	s.b.mails++
	n := s.b.mails
	s.b.mu.Unlock()
	if s.b.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	if s.b.refuse != nil {
		if err := s.b.refuse(n); err != nil {
			return err
		}
	}
	s.r = received{From: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.To = append(s.r.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.Data = data
	_, s.r.TLS = s.c.TLSConnectionState()
	s.r.User = s.user
	s.b.got <- s.r
	return nil
}

func (s *session) Reset()        { s.r = received{} }
func (s *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN, which go-sasl dropped.
type loginServer struct {
	step  int
	user  string
	check func(user, pass string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch {
	case l.step == 1 && resp == nil:
		return []byte("Username:"), false, nil
	case l.step == 1:
		l.step++ // initial response carried the user name
		fallthrough
	case l.step == 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

var refuse451 = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}

type serverMode int

const (
	plainServer    serverMode = iota // no TLS at all
	startTLSServer                   // offers STARTTLS
	implicitServer                   // TLS from the first byte (smtps)
)

// startServer serves be on 127.0.0.1 (or host) port 0 and returns its
// address; it stops at the end of the test.
func startServer(t *testing.T, be *backend, mode serverMode, cert tls.Certificate) string {
	t.Helper()
	return startServerOn(t, "127.0.0.1", be, mode, cert)
}

func startServerOn(t *testing.T, host string, be *backend, mode serverMode, cert tls.Certificate) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := smtp.NewServer(be)
	s.Domain = "localhost"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	logger := &testLogger{t: t}
	s.ErrorLog = logger
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch mode {
	case plainServer:
		s.AllowInsecureAuth = true
	case startTLSServer:
		s.TLSConfig = tlsCfg
	case implicitServer:
		l = tls.NewListener(l, tlsCfg)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		// Shutdown waits for the connection goroutines, which Close does
		// not (clients have hung up by now); the logger is muted in case
		// one outlives the deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("smtp server shutdown: %v", err)
		}
		<-done
		logger.mute()
	})
	return l.Addr().String()
}

// testLogger sends go-smtp's connection errors to the test log until the
// test ends (t.Log panics after that).
type testLogger struct {
	t     *testing.T
	mu    sync.Mutex
	muted bool
}

func (l *testLogger) mute() {
	l.mu.Lock()
	l.muted = true
	l.mu.Unlock()
}

func (l *testLogger) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.muted {
		l.t.Logf("smtp server: "+format, v...)
	}
}

func (l *testLogger) Println(v ...any) { l.Printf("%s", fmt.Sprintln(v...)) }

// testCert makes a self-signed certificate for 127.0.0.1, ::1 and
// localhost, and a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sipward mailer test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// waitMail returns the next message be receives, failing after a generous
// deadline (a busy CI machine is slow, never this slow).
func waitMail(t *testing.T, be *backend) received {
	t.Helper()
	select {
	case r := <-be.got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no mail received")
		return received{}
	}
}

// part is one decoded MIME part of a parsed message.
type part struct {
	ContentType string // media type without parameters
	FileName    string
	Data        []byte
}

// parseMail parses a message as a mail client would: the decoded subject,
// and the decoded parts of its multipart/mixed body.
func parseMail(t *testing.T, data []byte) (*netmail.Message, string, []part) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q (%v): want multipart/mixed", msg.Header.Get("Content-Type"), err)
	}
	var parts []part
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable itself
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		var r io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
			r = base64.NewDecoder(base64.StdEncoding, p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts = append(parts, part{ContentType: ct, FileName: p.FileName(), Data: b})
	}
	return msg, subject, parts
}
