package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/emiago/diago"
	"github.com/emiago/diago/audio"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/rtpengine/rtpenginetest"
	"github.com/sipward/sipward/internal/wavfile"
)

// Voicemail, end to end: real phones with media (diago UAs) call through
// the real binary; tones are sent as RTP and found again, by frequency, in
// what sipward stored, mailed or played back.

// toneHz is what callers say in their messages; the beep is 1000 Hz.
const (
	toneHz = 440
	beepHz = 1000
)

// vmFixture is a node with account Acme: SIP user 3001 with voicemail on
// (PIN 2468, ring timeout 5 s) and SIP user 3002 to call it from.
type vmFixture struct {
	n                  *node
	acc, box, caller   int64
	boxPass, callerPwd string
}

func newVMFixture(t *testing.T, n *node) vmFixture {
	t.Helper()
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	box := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "3001",
		"voicemail": map[string]any{"enabled": true, "email": "alice@example.test", "pin": "2468", "ring_timeout": 5}})
	caller := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "3002"})
	waitSnapshot(t, n)
	return vmFixture{n: n, acc: acc, box: id(box), caller: id(caller), boxPass: box["password"].(string), callerPwd: caller["password"].(string)}
}

// phone is a SIP UA with media (diago) of SIP user user (its From),
// answering calls with answer.
type phone struct {
	dg   *diago.Diago
	host string
	port int
}

func newPhone(t *testing.T, ip, user string, answer func(d *diago.DialogServerSession)) *phone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(user)) // diago puts it in From
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); ua.Close() })
	if answer == nil {
		answer = func(d *diago.DialogServerSession) { _ = d.Respond(480, "Temporarily Unavailable", nil) }
	}
	var dg *diago.Diago
	port := 0
	for range 3 {
		port = freePort(t, ip)
		dg = diago.NewDiago(ua, diago.WithTransport(diago.Transport{Transport: "udp", BindHost: ip, BindPort: port}))
		if err = dg.ServeBackground(ctx, answer); err == nil {
			return &phone{dg: dg, host: ip, port: port}
		}
	}
	t.Fatalf("phone on %s: %v", ip, err)
	return nil
}

func sipURI(t *testing.T, user, hostport string) sip.Uri {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return sip.Uri{Scheme: "sip", User: user, Host: host, Port: port}
}

// answered is a call a phone made, once answered.
type answered struct {
	*diago.DialogClientSession
	m *diago.DialogMedia
}

func (a answered) Media() *diago.DialogMedia { return a.m }

// call calls to through the node as SIP user user, and returns the
// answered call.
func (p *phone) call(t *testing.T, n *node, to, user, pass string) answered {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	var d *diago.DialogClientSession
	var m *diago.DialogMedia
	var err error
	for range 20 {
		d, m, err = p.dg.Invite(ctx, sipURI(t, to, n.SIP), diago.InviteOptions{Username: user, Password: pass})
		if !listenerRace(err) {
			break
		}
	}
	if err != nil {
		t.Fatalf("call %s as %s: %v", to, user, err)
	}
	t.Cleanup(func() { d.Close() })
	return answered{d, m}
}

// register registers the phone as user through the node.
func (p *phone) register(t *testing.T, n *node, user, pass string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt, err := p.dg.RegisterTransaction(ctx, sipURI(t, user, n.SIP), diago.RegisterOptions{Username: user, Password: pass, Expiry: 300 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err = rt.Register(ctx); !listenerRace(err) {
			break
		}
	}
	if err != nil {
		t.Fatalf("register %s: %v", user, err)
	}
}

// listenerRace reports sipgo's start-up race: its server reports the
// listener ready before the socket is in the pool its client sends from,
// so a request sent at once tries to bind the same port. Nothing was
// sent; a moment later it works.
func listenerRace(err error) bool {
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		time.Sleep(50 * time.Millisecond)
		return true
	}
	return false
}

// heard is the audio a call receives, decoded.
type heard struct {
	mu  sync.Mutex
	pcm []int16
}

func listen(t *testing.T, m *diago.DialogMedia) *heard {
	t.Helper()
	r, err := m.AudioReader()
	if err != nil {
		t.Fatal(err)
	}
	codec := media.CodecAudioFromSession(m.MediaSession())
	h := &heard{}
	go func() {
		buf := make([]byte, media.RTPBufSize)
		pcm := make([]byte, 2*media.RTPBufSize)
		for {
			n, err := r.Read(buf)
			if err != nil {
				return
			}
			if n == 0 || m.RTPPacketReader.PacketHeader.PayloadType != codec.PayloadType {
				continue
			}
			if codec.PayloadType == media.CodecAudioAlaw.PayloadType {
				n, _ = audio.DecodeAlawTo(pcm, buf[:n])
			} else {
				n, _ = audio.DecodeUlawTo(pcm, buf[:n])
			}
			h.mu.Lock()
			h.pcm = append(h.pcm, samples(pcm[:n])...)
			h.mu.Unlock()
		}
	}()
	return h
}

// waitTone waits until the call has heard 100 ms of hz after from
// (a sample index) and returns where it was heard.
func (h *heard) waitTone(t *testing.T, hz float64, from int, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		pcm := h.pcm
		h.mu.Unlock()
		if at := findTone(pcm[min(from, len(pcm)):], hz); at >= 0 {
			return from + at
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %.0f Hz tone heard within %s", hz, within)
	return 0
}

func (h *heard) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pcm)
}

func samples(b []byte) []int16 {
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(b[2*i]) | int16(b[2*i+1])<<8
	}
	return out
}

// findTone returns the start of the first 100 ms window that is mostly
// hz (Goertzel power over the window's energy), or -1.
func findTone(pcm []int16, hz float64) int {
	const win = 800
	for at := 0; at+win <= len(pcm); at += win / 2 {
		if toneShare(pcm[at:at+win], hz) > 0.6 {
			return at
		}
	}
	return -1
}

// toneShare is the share of w's energy at hz: about 1 for a pure tone.
func toneShare(w []int16, hz float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*hz/wavfile.SampleRate)
	var s1, s2, energy float64
	for _, v := range w {
		x := float64(v)
		s0 := x + coeff*s1 - s2
		s2, s1 = s1, s0
		energy += x * x
	}
	if energy < float64(len(w))*100*100 { // quieter than -50 dBFS: silence
		return 0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return power / (float64(len(w)) / 2 * energy)
}

// pcmTone is d of a sine at hz, -6 dBFS, as 16-bit PCM.
func pcmTone(hz float64, d time.Duration) []byte {
	n := int(d.Seconds() * wavfile.SampleRate)
	b := make([]byte, 2*n)
	for i := range n {
		v := int16(16000 * math.Sin(2*math.Pi*hz*float64(i)/wavfile.SampleRate))
		b[2*i], b[2*i+1] = byte(v), byte(v>>8)
	}
	return b
}

// say sends a tone into the call (paced as RTP, 20 ms a packet).
func say(t *testing.T, m *diago.DialogMedia, hz float64, d time.Duration) {
	t.Helper()
	pb, err := m.PlaybackCreate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pb.Play(bytes.NewReader(wavfile.Encode(pcmTone(hz, d))), "audio/wav"); err != nil {
		t.Fatalf("play tone: %v", err)
	}
}

// press sends keys as RFC 4733 events.
func press(t *testing.T, m *diago.DialogMedia, keys string) {
	t.Helper()
	w, err := m.AudioWriterDTMF()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := w.WriteDTMF(k); err != nil {
			t.Fatalf("key %c: %v", k, err)
		}
	}
}

// leaveMessage waits for the beep, says hz for d and hangs up.
func leaveMessage(t *testing.T, c answered, hz float64, d time.Duration) {
	t.Helper()
	h := listen(t, c.Media())
	h.waitTone(t, beepHz, 0, 30*time.Second)
	time.Sleep(500 * time.Millisecond) // the rest of the beep
	say(t, c.Media(), hz, d)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Hangup(ctx); err != nil {
		t.Fatalf("hang up: %v", err)
	}
}

// messages waits until the mailbox holds want messages and returns them.
func (f vmFixture) messages(t *testing.T, n *node, want int) []map[string]any {
	t.Helper()
	var items []any
	waitFor(t, fmt.Sprintf("%d voicemail messages", want), func() bool {
		items = n.mustAPI(t, 200, "GET", fmt.Sprintf("/sip-users/%d/voicemail/messages", f.box), nil)["items"].([]any)
		return len(items) == want
	})
	out := make([]map[string]any, len(items))
	for i, it := range items {
		out[i] = it.(map[string]any)
	}
	return out
}

// raw GETs an API path and returns the body and its headers.
func (n *node) raw(t *testing.T, path string, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", n.HTTP+"/api/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+n.Token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header
}

// checkMessage checks a stored message: from 3002 to 3001, about d long,
// and its WAV holds hz.
func (f vmFixture) checkMessage(t *testing.T, n *node, m map[string]any, hz float64, d time.Duration) {
	t.Helper()
	if m["caller"] != "3002" || m["called"] != "3001" || m["read"] != false {
		t.Errorf("message %v: want caller 3002, called 3001, unread", m)
	}
	got := time.Duration(m["duration_ms"].(float64)) * time.Millisecond
	if got < d-time.Second || got > d+1500*time.Millisecond {
		t.Errorf("message lasts %s, the caller spoke %s", got, d)
	}
	st, wav, h := n.raw(t, fmt.Sprintf("/sip-users/%d/voicemail/messages/%d/audio", f.box, id(m)))
	if st != 200 || h.Get("Content-Type") != "audio/wav" {
		t.Fatalf("audio: %d %s", st, h.Get("Content-Type"))
	}
	pcm, err := wavfile.Parse(wav)
	if err != nil {
		t.Fatalf("stored audio: %v", err)
	}
	if findTone(samples(pcm), hz) < 0 {
		t.Errorf("the stored message (%s) holds no %.0f Hz tone", wavfile.Duration(pcm), hz)
	}
}

// TestVoicemailNotRegistered: a call to a user with voicemail on and no
// registration goes to the mailbox at once; the caller's tone is in the
// stored WAV; the audio is served with range requests.
func TestVoicemailNotRegistered(t *testing.T) {
	n := edgeNode(t, newUAS(t, "127.0.0.1"))
	f := newVMFixture(t, n)
	caller := newPhone(t, "127.0.0.21", "3002", nil)
	c := caller.call(t, n, "3001", "3002", f.callerPwd)
	leaveMessage(t, c, toneHz, 2*time.Second)
	ms := f.messages(t, n, 1)
	f.checkMessage(t, n, ms[0], toneHz, 2*time.Second)
	st, part, h := n.raw(t, fmt.Sprintf("/sip-users/%d/voicemail/messages/%d/audio", f.box, id(ms[0])), "Range", "bytes=0-43")
	if st != 206 || len(part) != 44 || h.Get("Content-Range") == "" {
		t.Errorf("range request: %d, %d bytes, Content-Range %q; want 206 with the 44-byte header", st, len(part), h.Get("Content-Range"))
	}
	if d := n.decisionWith(t, c.InviteRequest.CallID().Value(), 200); d == nil {
		t.Error("no decision for the call")
	}
}

// TestVoicemailDeposit: the user's phone rings and nobody answers: after
// the user's ring timeout (5 s) the phone's INVITE is cancelled and the
// caller reaches the mailbox.
func TestVoicemailDeposit(t *testing.T) {
	n := edgeNode(t, newUAS(t, "127.0.0.1"))
	f := newVMFixture(t, n)
	rang := make(chan time.Time, 1)
	desk := newPhone(t, "127.0.0.22", "3001", func(d *diago.DialogServerSession) {
		_ = d.Ringing()
		rang <- time.Now()
		<-d.Context().Done() // never answers
	})
	desk.register(t, n, "3001", f.boxPass)
	caller := newPhone(t, "127.0.0.21", "3002", nil)
	start := time.Now()
	c := caller.call(t, n, "3001", "3002", f.callerPwd)
	answered := time.Since(start)
	select {
	case <-rang:
	default:
		t.Fatal("the registered phone was not rung")
	}
	if answered < 5*time.Second {
		t.Errorf("the mailbox answered after %s, before the ring timeout of 5s", answered)
	}
	leaveMessage(t, c, toneHz, 2*time.Second)
	f.checkMessage(t, n, f.messages(t, n, 1)[0], toneHz, 2*time.Second)
}

// TestVoicemailOnBusy: the user's phone refuses the call busy (486): the
// caller reaches the mailbox at once.
func TestVoicemailOnBusy(t *testing.T) {
	n := edgeNode(t, newUAS(t, "127.0.0.1"))
	f := newVMFixture(t, n)
	desk := newPhone(t, "127.0.0.22", "3001", func(d *diago.DialogServerSession) { _ = d.Respond(486, "Busy Here", nil) })
	desk.register(t, n, "3001", f.boxPass)
	caller := newPhone(t, "127.0.0.21", "3002", nil)
	start := time.Now()
	c := caller.call(t, n, "3001", "3002", f.callerPwd)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the mailbox answered a busy user's call after %s", d)
	}
	leaveMessage(t, c, toneHz, 2*time.Second)
	f.checkMessage(t, n, f.messages(t, n, 1)[0], toneHz, 2*time.Second)
}

// TestVoicemailRetrieval: the user gets a new PIN (CLI), dials *1 from its
// own phone, keys the PIN and #, presses 1 and hears the message (its tone found in the RTP
// received), then 7 deletes it.
func TestVoicemailRetrieval(t *testing.T) {
	n := edgeNode(t, newUAS(t, "127.0.0.1"))
	f := newVMFixture(t, n)
	caller := newPhone(t, "127.0.0.21", "3002", nil)
	leaveMessage(t, caller.call(t, n, "3001", "3002", f.callerPwd), toneHz, 3*time.Second)
	f.messages(t, n, 1)

	// A new PIN, shown once, through the CLI (the API's POST …/voicemail/pin).
	out, err := n.cli(t, "voicemail", "reset-pin", "--user", fmt.Sprint(f.box))
	pin := regexp.MustCompile(`\b\d{6}\b`).FindString(out)
	if err != nil || pin == "" {
		t.Fatalf("voicemail reset-pin: %v\n%s", err, out)
	}
	if out, err := n.cli(t, "voicemail", "list", "--user", fmt.Sprint(f.box)); err != nil || !strings.Contains(out, "3002") {
		t.Errorf("voicemail list: %v\n%s", err, out)
	}

	own := newPhone(t, "127.0.0.22", "3001", nil)
	c := own.call(t, n, "*1", "3001", f.boxPass)
	h := listen(t, c.Media())
	time.Sleep(time.Second) // "Please enter your PIN"
	press(t, c.Media(), pin+"#")
	time.Sleep(500 * time.Millisecond)
	press(t, c.Media(), "1")
	h.waitTone(t, toneHz, 0, 30*time.Second)
	// The message plays to its end (3 s), then the message menu: 7 deletes.
	time.Sleep(3 * time.Second)
	press(t, c.Media(), "7")
	f.messages(t, n, 0)
}

// nextRequest waits for the next request of method the raw UA receives,
// answering others' requests it is not asked about with 200 (ACKs
// ignored).
func (u *uac) nextRequest(t *testing.T, method sip.RequestMethod, within time.Duration) *sip.Request {
	t.Helper()
	for i, req := range u.early {
		if req.Method == method {
			u.early = append(u.early[:i], u.early[i+1:]...)
			return req
		}
	}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		_, m := u.recv(time.Until(deadline))
		if req, ok := m.(*sip.Request); ok && req.Method == method {
			return req
		}
	}
	t.Fatalf("no %s within %s", method, within)
	return nil
}

// TestVoicemailMessageWaiting: a desk phone that only REGISTERs (never
// SUBSCRIBEs) is told of its messages by NOTIFY message-summary (RFC
// 3842): when one is left (its INVITE refused busy sends the caller to the
// mailbox), and when it is marked read through the API.
func TestVoicemailMessageWaiting(t *testing.T) {
	n := edgeNode(t, newUAS(t, "127.0.0.1"))
	f := newVMFixture(t, n)
	desk := newUAC(t, "127.0.0.23", n.SIP)
	cseq := 0
	if res := desk.register(t, "3001", f.boxPass, "mwi1", &cseq, []string{"<sip:3001@" + desk.local + ">"}, "300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	caller := newPhone(t, "127.0.0.21", "3002", nil)
	done := make(chan answered, 1)
	go func() { done <- caller.call(t, n, "3001", "3002", f.callerPwd) }()
	desk.answer(desk.nextRequest(t, sip.INVITE, 10*time.Second), 486)
	leaveMessage(t, <-done, toneHz, time.Second)
	check := func(req *sip.Request, waiting, counts string) {
		t.Helper()
		body := string(req.Body())
		if ev := req.GetHeader("Event"); ev == nil || ev.Value() != "message-summary" ||
			!strings.Contains(body, "Messages-Waiting: "+waiting) || !strings.Contains(body, "Voice-Message: "+counts) {
			t.Errorf("NOTIFY %v:\n%s\nwant Messages-Waiting %s, Voice-Message %s", req.GetHeader("Event"), body, waiting, counts)
		}
		desk.answer(req, 200)
	}
	check(desk.nextRequest(t, sip.NOTIFY, 10*time.Second), "yes", "1/0")
	m := f.messages(t, n, 1)[0]
	n.mustAPI(t, 200, "PATCH", fmt.Sprintf("/sip-users/%d/voicemail/messages/%d", f.box, id(m)), map[string]any{"read": true})
	check(desk.nextRequest(t, sip.NOTIFY, 10*time.Second), "no", "0/1")
}

// TestVoicemailWrongPIN: three wrong PINs end the call, and (with
// --fraud-threshold 3) ban the source like three failed digest logins.
func TestVoicemailWrongPIN(t *testing.T) {
	n := edgeNode(t, newUAS(t, "127.0.0.1"), "--fraud-threshold", "3")
	f := newVMFixture(t, n)
	own := newPhone(t, "127.0.0.24", "3001", nil)
	c := own.call(t, n, "*1", "3001", f.boxPass)
	time.Sleep(time.Second)
	press(t, c.Media(), "1111#1357#9999#")
	select {
	case <-c.Context().Done(): // sipward hung up
	case <-time.After(40 * time.Second):
		t.Fatal("the mailbox did not hang up after three wrong PINs")
	}
	waitFor(t, "the guesser's ban", func() bool {
		for _, b := range n.mustAPI(t, 200, "GET", "/firewall/bans?source=detection", nil)["items"].([]any) {
			if b.(map[string]any)["address"] == "127.0.0.24" {
				return true
			}
		}
		return false
	})
}

// smtpSink is an SMTP server (emersion/go-smtp) that keeps what it is sent.
type smtpSink struct{ got chan []byte }

func (s *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return s, nil }
func (s *smtpSink) Reset()                                      {}
func (s *smtpSink) Logout() error                               { return nil }
func (s *smtpSink) Mail(string, *smtp.MailOptions) error        { return nil }
func (s *smtpSink) Rcpt(string, *smtp.RcptOptions) error        { return nil }
func (s *smtpSink) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.got <- b
	return err
}

func newSMTPSink(t *testing.T) (*smtpSink, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := &smtpSink{got: make(chan []byte, 4)}
	srv := smtp.NewServer(sink)
	srv.Domain = "mail.e2e.test"
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sink, ln.Addr().String()
}

// attachment returns the part of a MIME message whose type is ctype, decoded.
func attachment(t *testing.T, raw []byte, ctype string) (subject string, data []byte) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no %s part: %v", ctype, err)
		}
		if mt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); mt != ctype {
			continue
		}
		var r io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
			r = base64.NewDecoder(base64.StdEncoding, p)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return subject, data
	}
}

// TestVoicemailEmail: a new message is mailed (--smtp-url, to an SMTP
// server the test runs) to the user's address, caller and time in the
// subject, the recording attached as audio/wav and playable (its tone
// found); the message shows the mail as sent.
func TestVoicemailEmail(t *testing.T) {
	sink, addr := newSMTPSink(t)
	n := edgeNode(t, newUAS(t, "127.0.0.1"), "--smtp-url", "smtp://"+addr, "--smtp-from", "voicemail@e2e.test")
	f := newVMFixture(t, n)
	caller := newPhone(t, "127.0.0.21", "3002", nil)
	leaveMessage(t, caller.call(t, n, "3001", "3002", f.callerPwd), toneHz, 2*time.Second)
	var raw []byte
	select {
	case raw = <-sink.got:
	case <-time.After(30 * time.Second):
		t.Fatal("no mail within 30s")
	}
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err != nil {
		t.Fatalf("mail: %v", err)
	} else if from := msg.Header.Get("From"); !strings.Contains(from, "voicemail@e2e.test") {
		t.Errorf("From %q: want --smtp-from's voicemail@e2e.test", from)
	}
	subject, wav := attachment(t, raw, "audio/wav")
	if !strings.HasPrefix(subject, "Voicemail from 3002 at ") {
		t.Errorf("subject %q", subject)
	}
	pcm, err := wavfile.Parse(wav)
	if err != nil {
		t.Fatalf("attachment: %v", err)
	}
	if findTone(samples(pcm), toneHz) < 0 {
		t.Errorf("the attached recording (%s) holds no %d Hz tone", wavfile.Duration(pcm), toneHz)
	}
	waitFor(t, "mail status sent", func() bool {
		m := f.messages(t, n, 1)[0]["mail"].(map[string]any)
		return m["status"] == "sent" && m["attempts"] == 1.0
	})
}

// TestVoicemailAcrossNodes: two nodes sharing one store: a message left
// through node A is listed and served by node B's API, and heard by the
// user dialling *1 through node B.
func TestVoicemailAcrossNodes(t *testing.T) {
	dir := t.TempDir()
	core := newUAS(t, "127.0.0.1")
	args := []string{"--db", "sqlite:" + filepath.Join(dir, "shared.db"), "--admin-token", "vm-cluster-token",
		"--key-file", filepath.Join(dir, "k"), "--upstream", "sip:" + core.addr, "--core-addr", "127.0.0.1/32"}
	a := start(t, t.TempDir(), args...)
	b := start(t, t.TempDir(), args...)
	a.Token, b.Token = "vm-cluster-token", "vm-cluster-token"
	f := newVMFixture(t, a)
	waitSnapshot(t, b)
	caller := newPhone(t, "127.0.0.21", "3002", nil)
	leaveMessage(t, caller.call(t, a, "3001", "3002", f.callerPwd), toneHz, 2*time.Second)
	f.checkMessage(t, b, f.messages(t, b, 1)[0], toneHz, 2*time.Second)

	own := newPhone(t, "127.0.0.22", "3001", nil)
	c := own.call(t, b, "*1", "3001", f.boxPass)
	h := listen(t, c.Media())
	time.Sleep(time.Second)
	press(t, c.Media(), "2468#1")
	h.waitTone(t, toneHz, 0, 30*time.Second)
}

// subscribe sends a SUBSCRIBE to message-summary as user (answering the
// challenge) and returns the final answer.
func (u *uac) subscribe(t *testing.T, user, pass, callID string, cseq *int, toTag, expires string) *sip.Response {
	t.Helper()
	uri := "sip:" + user + "@" + u.to.String()
	build := func(auth string) string {
		*cseq++
		u.cseq = uint32(*cseq)
		to := "<" + uri + ">"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		var b strings.Builder
		fmt.Fprintf(&b, "SUBSCRIBE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n", uri, u.local, branch())
		fmt.Fprintf(&b, "From: <%s>;tag=s%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d SUBSCRIBE\r\n", uri, callID, to, callID, *cseq)
		fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\nEvent: message-summary\r\nAccept: application/simple-message-summary\r\nExpires: %s\r\n", user, u.local, expires)
		b.WriteString(auth)
		b.WriteString("Content-Length: 0\r\n\r\n")
		return b.String()
	}
	u.send(build(""))
	ch := u.subscribeFinal(t)
	switch ch.StatusCode {
	case 401:
		u.send(build("Authorization: " + digestAuth(ch, user, pass, "SUBSCRIBE", uri, 1) + "\r\n"))
	case 407:
		u.send(build("Proxy-Authorization: " + digestAuth(ch, user, pass, "SUBSCRIBE", uri, 1) + "\r\n"))
	default:
		return ch
	}
	return u.subscribeFinal(t)
}

// subscribeFinal waits for the final answer to the SUBSCRIBE just sent,
// keeping a NOTIFY that overtakes it (RFC 6665 allows that) for
// nextRequest.
func (u *uac) subscribeFinal(t *testing.T) *sip.Response {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		_, m := u.recv(time.Until(deadline))
		switch m := m.(type) {
		case *sip.Request:
			u.early = append(u.early, m)
		case *sip.Response:
			if m.CSeq() != nil && m.CSeq().MethodName == sip.SUBSCRIBE && m.CSeq().SeqNo == u.cseq && m.StatusCode >= 200 {
				return m
			}
		}
	}
	t.Fatal("no final answer to SUBSCRIBE within 3s")
	return nil
}

// TestVoicemailSubscription: a phone that SUBSCRIBEs to message-summary
// gets 200 with the expiry granted, a NOTIFY of its counts in the
// subscription's dialog at once and another when a message is left; a
// SUBSCRIBE to another user's mailbox is refused, an unknown event 489,
// and Expires 0 ends the subscription with a terminated NOTIFY.
func TestVoicemailSubscription(t *testing.T) {
	n := edgeNode(t, newUAS(t, "127.0.0.1"))
	f := newVMFixture(t, n)
	ph := newUAC(t, "127.0.0.25", n.SIP)
	cseq := 0
	res := ph.subscribe(t, "3001", f.boxPass, "sub1", &cseq, "", "600")
	if res.StatusCode != 200 || res.GetHeader("Expires") == nil || res.GetHeader("Expires").Value() != "600" {
		t.Fatalf("SUBSCRIBE: %d %v", res.StatusCode, res.GetHeader("Expires"))
	}
	toTag, _ := res.To().Params.Get("tag")
	inDialog := func(req *sip.Request, state, counts string) {
		t.Helper()
		ft, _ := req.From().Params.Get("tag")
		tt, _ := req.To().Params.Get("tag")
		st := req.GetHeader("Subscription-State")
		if req.CallID().Value() != "sub1" || ft != toTag || tt != "ssub1" || st == nil || !strings.HasPrefix(st.Value(), state) ||
			!strings.Contains(string(req.Body()), "Voice-Message: "+counts) {
			t.Errorf("NOTIFY: Call-ID %s, tags %s/%s (want %s/ssub1), state %v, body\n%s\nwant %s and %s",
				req.CallID().Value(), ft, tt, toTag, st, req.Body(), state, counts)
		}
		ph.answer(req, 200)
	}
	inDialog(ph.nextRequest(t, sip.NOTIFY, 10*time.Second), "active", "0/0")

	caller := newPhone(t, "127.0.0.21", "3002", nil)
	leaveMessage(t, caller.call(t, n, "3001", "3002", f.callerPwd), toneHz, time.Second)
	inDialog(ph.nextRequest(t, sip.NOTIFY, 10*time.Second), "active", "1/0")

	if res := ph.subscribe(t, "3002", f.callerPwd, "sub2", &cseq, "", "600"); res.StatusCode != 200 {
		t.Errorf("3002 watching its own mailbox: %d", res.StatusCode)
	} else {
		ph.answer(ph.nextRequest(t, sip.NOTIFY, 10*time.Second), 200)
	}
	if res := ph.subscribe(t, "3001", f.boxPass, "sub3", &cseq, "", "0"); res.StatusCode != 200 {
		t.Errorf("SUBSCRIBE Expires 0 of a new subscription: %d", res.StatusCode)
	} else {
		ph.answer(ph.nextRequest(t, sip.NOTIFY, 10*time.Second), 200)
	}
	if res := ph.subscribe(t, "3001", f.boxPass, "sub1", &cseq, toTag, "0"); res.StatusCode != 200 {
		t.Fatalf("unsubscribe: %d", res.StatusCode)
	}
	inDialog(ph.nextRequest(t, sip.NOTIFY, 10*time.Second), "terminated", "1/0")
}

// hungUp waits until sipward ends the call.
func hungUp(t *testing.T, c answered, within time.Duration, what string) {
	t.Helper()
	select {
	case <-c.Context().Done():
	case <-time.After(within):
		t.Fatalf("%s: sipward did not hang up within %s", what, within)
	}
}

// TestVoicemailEnds: a message ends at # (sipward says it is saved and
// hangs up), after --voicemail-silence of silence (cut after the last
// sound), or at --voicemail-max-length; a mailbox holding
// --voicemail-quota-messages takes no more (the caller is told and hung
// up on).
func TestVoicemailEnds(t *testing.T) {
	n := edgeNode(t, newUAS(t, "127.0.0.1"), "--voicemail-silence", "2s", "--voicemail-max-length", "5s", "--voicemail-quota-messages", "3")
	f := newVMFixture(t, n)
	caller := newPhone(t, "127.0.0.21", "3002", nil)
	deposit := func(what string, tone time.Duration, then func(c answered)) {
		t.Helper()
		c := caller.call(t, n, "3001", "3002", f.callerPwd)
		h := listen(t, c.Media())
		h.waitTone(t, beepHz, 0, 30*time.Second)
		time.Sleep(500 * time.Millisecond)
		if pb, err := c.Media().PlaybackCreate(); err == nil {
			_, _ = pb.Play(bytes.NewReader(wavfile.Encode(pcmTone(toneHz, tone))), "audio/wav") // cut short at max length
		}
		then(c)
		hungUp(t, c, 15*time.Second, what)
	}
	deposit("#", time.Second, func(c answered) { press(t, c.Media(), "#") })
	deposit("silence", time.Second, func(answered) {})
	deposit("max length", 7*time.Second, func(answered) {})
	ms := f.messages(t, n, 3)
	for i, want := range []time.Duration{time.Second, time.Second, 5 * time.Second} {
		got := time.Duration(ms[i]["duration_ms"].(float64)) * time.Millisecond
		if got < want-600*time.Millisecond || got > want+600*time.Millisecond {
			t.Errorf("message %d lasts %s, want about %s", i+1, got, want)
		}
	}

	c := caller.call(t, n, "3001", "3002", f.callerPwd)
	hungUp(t, c, 20*time.Second, "full mailbox")
	time.Sleep(time.Second)
	f.messages(t, n, 3)
}

// cpuSeconds is the user and system CPU time of process pid.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks (USER_HZ 100 on Linux)
}

// TestVoicemailFiftyDeposits: 50 callers leave 10-second messages at the
// same time. Every recording is whole — no RTP packet missing
// (sipward_voicemail_rtp_gaps_total stays 0), each lasts 10 s within 1 %,
// each holds its caller's tone — and sipward's CPU per second of message
// is logged (docs/voicemail.md).
func TestVoicemailFiftyDeposits(t *testing.T) {
	const callers, speak = 50, 10 * time.Second
	n := edgeNode(t, newUAS(t, "127.0.0.1"))
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Busy", "channels": 200}))
	box := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "3001",
		"voicemail": map[string]any{"enabled": true}})
	caller := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "3002", "channels": 100})
	waitSnapshot(t, n)
	f := vmFixture{n: n, box: id(box), caller: id(caller), callerPwd: caller["password"].(string)}
	ph := newPhone(t, "127.0.0.21", "3002", nil)
	cpu0 := cpuSeconds(t, n.cmd.Process.Pid)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ph.call(t, n, "3001", "3002", f.callerPwd)
			h := listen(t, c.Media())
			h.waitTone(t, beepHz, 0, 60*time.Second)
			time.Sleep(time.Second)
			say(t, c.Media(), 300+float64(10*i), speak) // each caller its own tone
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = c.Hangup(ctx)
		}()
	}
	wg.Wait()
	ms := f.messages(t, n, callers)
	cpu := cpuSeconds(t, n.cmd.Process.Pid) - cpu0
	if gaps := n.metric(t, "sipward_voicemail_rtp_gaps_total"); gaps != 0 {
		t.Errorf("%v RTP packets missing from the recordings", gaps)
	}
	var total time.Duration
	for _, m := range ms {
		d := time.Duration(m["duration_ms"].(float64)) * time.Millisecond
		total += d
		if d < speak*99/100 || d > speak*101/100 {
			t.Errorf("message %v lasts %s, the caller spoke %s (want within 1 %%)", m["id"], d, speak)
		}
	}
	t.Logf("%d simultaneous deposits of %s: sipward used %.2f s of CPU for %s of messages: %.1f ms of CPU per second of message",
		callers, speak, cpu, total, 1000*cpu/total.Seconds())
}

// TestVoicemailByPhoneMenu: a PBX of the account (an IP endpoint, no
// mailbox of its own) dials *1, keys the mailbox number and the PIN; it
// records a new greeting (3: a 600 Hz tone) and changes the PIN (4). The
// next caller hears that greeting before the beep, and the new PIN opens
// the mailbox.
func TestVoicemailByPhoneMenu(t *testing.T) {
	n := edgeNode(t, newUAS(t, "127.0.0.1"))
	f := newVMFixture(t, n)
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", f.acc), map[string]any{"address": "127.0.0.26"})
	waitSnapshot(t, n)
	pbx := newPhone(t, "127.0.0.26", "pbx", nil)
	c := pbx.call(t, n, "*1", "", "")
	h := listen(t, c.Media())
	time.Sleep(time.Second) // "Please enter the mailbox number"
	press(t, c.Media(), "3001#2468#")
	time.Sleep(2 * time.Second) // "You have no messages", the main menu
	press(t, c.Media(), "3")
	h.waitTone(t, beepHz, 0, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	say(t, c.Media(), 600, 2*time.Second)
	press(t, c.Media(), "#")
	time.Sleep(2 * time.Second) // "Your greeting is saved", the main menu
	press(t, c.Media(), "4")
	time.Sleep(500 * time.Millisecond)
	press(t, c.Media(), "13579#")
	waitFor(t, "the PIN changed", func() bool { return strings.Contains(n.Log(), "voicemail: PIN changed") })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Hangup(ctx)

	caller := newPhone(t, "127.0.0.21", "3002", nil)
	d := caller.call(t, n, "3001", "3002", f.callerPwd)
	heard := listen(t, d.Media())
	greeting := heard.waitTone(t, 600, 0, 20*time.Second)
	if beep := heard.waitTone(t, beepHz, 0, 20*time.Second); beep < greeting {
		t.Errorf("the beep (sample %d) came before the recorded greeting (sample %d)", beep, greeting)
	}
	_ = d.Hangup(ctx)

	own := newPhone(t, "127.0.0.22", "3001", nil)
	o := own.call(t, n, "*1", "3001", f.boxPass)
	time.Sleep(time.Second)
	press(t, o.Media(), "13579#")
	waitFor(t, "the mailbox opened with the new PIN", func() bool { return strings.Count(n.Log(), "voicemail: mailbox opened") == 2 })
}

// TestVoicemailThroughTheRelay: a caller whose media goes through the
// media relay (rtpengine; media_relay always) leaves a message: the relay
// carries it to the mailbox, and the tone is in the stored WAV.
func TestVoicemailThroughTheRelay(t *testing.T) {
	eng := rtpenginetest.Start(t)
	n := edgeNode(t, newUAS(t, "127.0.0.1"), "--rtpengine", "udp:"+eng.Addr)
	f := newVMFixture(t, n)
	n.mustAPI(t, 200, "PATCH", fmt.Sprintf("/sip-users/%d", f.caller), map[string]any{"media_relay": "always"})
	waitSnapshot(t, n)
	caller := newPhone(t, "127.0.0.21", "3002", nil)
	c := caller.call(t, n, "3001", "3002", f.callerPwd)
	leaveMessage(t, c, toneHz, 2*time.Second)
	f.checkMessage(t, n, f.messages(t, n, 1)[0], toneHz, 2*time.Second)
	if d := n.decisionWith(t, c.InviteRequest.CallID().Value(), 200); !strings.Contains(fmt.Sprint(d["why"]), "media through the relay") ||
		!strings.Contains(fmt.Sprint(d["why"]), "voicemail") {
		t.Errorf("decision %v: want the mailbox, media through the relay", d["why"])
	}
}
