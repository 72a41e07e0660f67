package web

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/wavfile"
)

// vmUser makes SIP user name in account a, with voicemail on or off.
func (e *env) vmUser(a store.Account, name string, enabled bool) store.SIPUser {
	e.t.Helper()
	u := store.SIPUser{AccountID: a.ID, Username: name, Channels: new(1), Voicemail: store.Voicemail{Enabled: enabled, Email: name + "@acme.example"}}
	if err := e.svc.CreateSIPUser(e.t.Context(), provision.Operator, &u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// tone is a WAV file of d of a square wave, in voicemail's format.
func tone(d time.Duration) []byte {
	pcm := make([]byte, int(d/time.Millisecond)*wavfile.SampleRate/1000*wavfile.BytesPerSample)
	for i := 0; i+1 < len(pcm); i += 2 {
		if (i/2/20)%2 == 0 {
			pcm[i], pcm[i+1] = 0x00, 0x20
		}
	}
	return wavfile.Encode(pcm)
}

// message stores a message in u's mailbox, as the voicemail agent does.
func (e *env) message(u store.SIPUser, caller string, at time.Time, d time.Duration, mail store.MailState) (store.VoicemailMessage, []byte) {
	e.t.Helper()
	wav := tone(d)
	m := store.VoicemailMessage{SIPUserID: u.ID, AccountID: u.AccountID, Caller: caller, Called: u.Username, CreatedAt: at,
		DurationMS: d.Milliseconds(), Mail: mail}
	if err := e.st.SaveMessage(e.t.Context(), &m, wav); err != nil {
		e.t.Fatal(err)
	}
	return m, wav
}

// upload posts a multipart form with one file, and the CSRF token of page.
func (b *browser) upload(page, action, field, filename string, file []byte) resp {
	b.e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("csrf", b.csrf(page)); err != nil {
		b.e.t.Fatal(err)
	}
	fw, err := mw.CreateFormFile(field, filename)
	if err != nil {
		b.e.t.Fatal(err)
	}
	fw.Write(file)
	mw.Close()
	req, err := http.NewRequest("POST", b.e.srv.URL+action, &body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

func TestVoicemailRingTimeout(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 10)
	e.login("root", opPass, 0)
	u := e.vmUser(a, "1001", true)
	b := e.browser()
	b.mustSignIn("root", opPass)
	if v := valueOf(b.get(fmt.Sprintf("/accounts/%d/users/new", a.ID)).body, "f-voicemail-ring-timeout"); v != "25" {
		t.Errorf("new user form: ring timeout %q, want the default 25", v)
	}
	page := fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
	r := b.get(page)
	if v := valueOf(r.body, "f-voicemail-ring-timeout"); v != "25" {
		t.Errorf("user saved without a ring timeout: form shows %q, want 25", v)
	}
	if txt := textOf(r.body); !strings.Contains(txt, vmEnabledHelp) || !strings.Contains(txt, vmRingHelp) || strings.Contains(txt, "not acting yet") {
		t.Errorf("the Voice Mail tab does not say what voicemail does: %.300s", txt)
	}
	form := url.Values{"username": {"1001"}, "channels": {"1"}, "voicemail.enabled": {"on"}, "voicemail.ring_timeout": {"40"}}
	if r := b.submit(page, page, form); r.status != http.StatusSeeOther {
		t.Fatalf("ring timeout 40: %d %.300s", r.status, textOf(r.body))
	}
	if gu, _ := e.svc.GetSIPUser(t.Context(), provision.Operator, u.ID); gu.Voicemail.RingTimeout != 40 {
		t.Errorf("ring timeout stored %d, want 40", gu.Voicemail.RingTimeout)
	}
	if v := valueOf(b.get(page).body, "f-voicemail-ring-timeout"); v != "40" {
		t.Errorf("after saving 40: the form shows %q", v)
	}
	for v, want := range map[string]string{"4": "must be 5 to 300 seconds", "301": "must be 5 to 300 seconds", "soon": "must be a whole number"} {
		form.Set("voicemail.ring_timeout", v)
		r := b.submit(page, page, form)
		if got := errorOf(r.body, "f-voicemail-ring-timeout"); got != want || valueOf(r.body, "f-voicemail-ring-timeout") != v {
			t.Errorf("ring timeout %q: error %q, want %q, with the value kept", v, got, want)
		}
		if !strings.Contains(r.body, `id="tab-voicemail" aria-controls="panel-voicemail" aria-selected="true"`) {
			t.Errorf("ring timeout %q refused: the Voice Mail tab is not the one open", v)
		}
	}
	if gu, _ := e.svc.GetSIPUser(t.Context(), provision.Operator, u.ID); gu.Voicemail.RingTimeout != 40 {
		t.Errorf("after refused values: ring timeout %d, want 40 (unchanged)", gu.Voicemail.RingTimeout)
	}
}

var dec7 = time.Date(2025, 12, 7, 17, 30, 0, 0, time.UTC)

func TestVoicemailMessagesList(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 10)
	e.login("root", opPass, 0)
	u := e.vmUser(a, "1001", false)
	b := e.browser()
	b.mustSignIn("root", opPass)
	page := fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
	if r := b.get(page); strings.Contains(r.body, `id="voicemail"`) {
		t.Error("voicemail off, no messages: the page shows a Messages section")
	}

	old, _ := e.message(u, "3002", dec7, 65400*time.Millisecond, store.MailState{Status: store.MailSent, Attempts: 1, SentAt: dec7.Add(time.Minute)})
	if err := e.st.SetMessageRead(t.Context(), u.ID, old.ID, true); err != nil {
		t.Fatal(err)
	}
	nw, _ := e.message(u, "", dec7.Add(24*time.Hour), 3*time.Second, store.MailState{Status: store.MailFailed, Attempts: 5, Error: "550 no such mailbox"})
	r := b.get(page)
	if !strings.Contains(r.body, `id="voicemail"`) {
		t.Fatal("voicemail off with messages: no Messages section")
	}
	txt := textOf(r.body)
	for _, want := range []string{
		"2 message(s), 1 new.",
		"3002 1001 2025-12-07 17:30:00 UTC 1:05 Read Sent 2025-12-07 17:31:00 UTC",
		"unknown 1001 2025-12-08 17:30:00 UTC 0:03 New Failed gave up after 5 attempts: 550 no such mailbox",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("messages table lacks %q: %s", want, txt)
		}
	}
	if i, j := strings.Index(r.body, fmt.Sprintf(`id="msg-%d"`, nw.ID)), strings.Index(r.body, fmt.Sprintf(`id="msg-%d"`, old.ID)); i < 0 || j < i {
		t.Errorf("messages not newest first: rows at %d (new) and %d (old)", i, j)
	}
	audio := fmt.Sprintf("%s/voicemail/messages/%d/audio", page, old.ID)
	for _, want := range []string{
		`<audio controls preload="none" src="` + audio + `"`,
		`href="` + audio + `?download=1" download`,
		`action="` + fmt.Sprintf("%s/voicemail/messages/%d/delete", page, old.ID) + `" data-confirm="Delete the message from 3002 of 7 Dec 17:30?"`,
		`data-confirm="Delete the message from an unknown caller of 8 Dec 17:30?"`,
		`aria-label="Mark new: the message from 3002 of 7 Dec 17:30">Mark new</button>`,
		fmt.Sprintf(`<tr id="msg-%d" class="unread">`, nw.ID),
		`accept="audio/wav"`, `enctype="multipart/form-data"`, "8 kHz 16-bit mono WAV file (PCM), up to 60 seconds",
	} {
		if !strings.Contains(r.body, html.EscapeString(want)) && !strings.Contains(r.body, want) {
			t.Errorf("user page lacks %s", want)
		}
	}

	// On with no messages: the section says so.
	v := e.vmUser(a, "1002", true)
	if r := b.get(fmt.Sprintf("/accounts/%d/users/%d", a.ID, v.ID)); !strings.Contains(textOf(r.body), "Messages No messages.") {
		t.Errorf("voicemail on, empty mailbox: %s", textOf(r.body))
	}
}

func TestVoicemailAudio(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 10)
	e.login("root", opPass, 0)
	u := e.vmUser(a, "1001", true)
	m, wav := e.message(u, "3002", dec7, 2*time.Second, store.MailState{})
	b := e.browser()
	b.mustSignIn("root", opPass)
	audio := fmt.Sprintf("/accounts/%d/users/%d/voicemail/messages/%d/audio", a.ID, u.ID, m.ID)

	r := b.get(audio)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "audio/wav" || r.body != string(wav) {
		t.Fatalf("GET audio: %d %s, %d bytes (want 200 audio/wav, %d bytes)", r.status, r.header.Get("Content-Type"), len(r.body), len(wav))
	}
	if cd := r.header.Get("Content-Disposition"); cd != "" || r.header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("GET audio: Content-Disposition %q (want none), Accept-Ranges %q", cd, r.header.Get("Accept-Ranges"))
	}
	req, _ := http.NewRequest("GET", e.srv.URL+audio, nil)
	req.Header.Set("Range", "bytes=44-143")
	r = b.do(req)
	if r.status != http.StatusPartialContent || r.body != string(wav[44:144]) || r.header.Get("Content-Type") != "audio/wav" ||
		r.header.Get("Content-Range") != fmt.Sprintf("bytes 44-143/%d", len(wav)) {
		t.Errorf("GET audio with Range: %d %s %q, %d bytes", r.status, r.header.Get("Content-Type"), r.header.Get("Content-Range"), len(r.body))
	}
	r = b.get(audio + "?download=1")
	if cd := r.header.Get("Content-Disposition"); r.status != http.StatusOK || cd != "attachment; filename=voicemail-1001-20251207-1730-"+fmt.Sprint(m.ID)+".wav" {
		t.Errorf("download: %d, Content-Disposition %q", r.status, cd)
	}
	if r := b.get(fmt.Sprintf("/accounts/%d/users/%d/voicemail/messages/%d/audio", a.ID, u.ID, m.ID+1)); r.status != http.StatusNotFound {
		t.Errorf("audio of a message that does not exist: %d, want 404", r.status)
	}
	if r := e.browser().get(audio); r.status != http.StatusSeeOther {
		t.Errorf("anonymous GET audio: %d, want a redirect to sign in", r.status)
	}
}

func TestVoicemailReadAndDelete(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 10)
	e.login("root", opPass, 0)
	u := e.vmUser(a, "1001", true)
	m, _ := e.message(u, "3002", dec7, 2*time.Second, store.MailState{})
	b := e.browser()
	b.mustSignIn("root", opPass)
	page := fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
	base := fmt.Sprintf("%s/voicemail/messages/%d", page, m.ID)
	isRead := func() bool {
		got, err := e.svc.VoicemailMessage(t.Context(), provision.Operator, u.ID, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Read
	}

	r := b.submit(page, base+"/read", url.Values{"read": {"1"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != page+"#voicemail" || !isRead() {
		t.Fatalf("Mark read: %d → %q, read %v", r.status, r.header.Get("Location"), isRead())
	}
	if txt := textOf(b.get(page).body); !strings.Contains(txt, "The message from 3002 of 7 Dec 17:30 is marked read.") || !strings.Contains(txt, "1 message(s), 0 new.") {
		t.Errorf("after Mark read: %s", txt)
	}
	if r := b.submit(page, base+"/read", url.Values{"read": {"0"}}); r.status != http.StatusSeeOther || isRead() {
		t.Errorf("Mark new: %d, read %v", r.status, isRead())
	}
	if r := b.post(base+"/read", url.Values{"read": {"1"}}); r.status != http.StatusForbidden || isRead() {
		t.Errorf("Mark read without the CSRF token: %d, read %v", r.status, isRead())
	}

	r = b.submit(page, base+"/delete", confirmedForm())
	if r.status != http.StatusSeeOther {
		t.Fatalf("Delete: %d %s", r.status, textOf(r.body))
	}
	if msgs, _ := e.svc.VoicemailMessages(t.Context(), provision.Operator, u.ID); len(msgs) != 0 {
		t.Errorf("after Delete: %d messages", len(msgs))
	}
	if txt := textOf(b.get(page).body); !strings.Contains(txt, "The message from 3002 of 7 Dec 17:30 is deleted.") {
		t.Errorf("after Delete: %s", txt)
	}
	if r := b.submit(page, base+"/delete", confirmedForm()); r.status != http.StatusNotFound {
		t.Errorf("Delete again: %d, want 404", r.status)
	}
}

var secretRe = regexp.MustCompile(`<code id="secret-value">([^<]*)</code>`)

func TestVoicemailPINReset(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 10)
	e.login("root", opPass, 0)
	u := e.vmUser(a, "1001", true)
	b := e.browser()
	b.mustSignIn("root", opPass)
	page := fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
	if r := b.get(page); !strings.Contains(r.body, `data-confirm="Set a voicemail PIN for 1001? It is generated and shown once."`) {
		t.Error("Reset voicemail PIN without a PIN: no confirmation")
	}
	r := b.submit(page, page+"/voicemail/pin", nil)
	m := secretRe.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil || !regexp.MustCompile(`^[0-9]{6}$`).MatchString(m[1]) {
		t.Fatalf("Reset voicemail PIN: %d, PIN shown %q: %.300s", r.status, m, textOf(r.body))
	}
	if !strings.Contains(textOf(r.body), "New voicemail PIN of 1001 : shown once.") {
		t.Errorf("the PIN is not labelled: %s", textOf(r.body))
	}
	gu, _ := e.svc.GetSIPUser(t.Context(), provision.Operator, u.ID)
	if !gu.Voicemail.PINSet || !secret.VerifyPassword(gu.Voicemail.PINHash, m[1]) {
		t.Errorf("the PIN shown is not the one stored (set %v)", gu.Voicemail.PINSet)
	}
	r = b.get(page)
	if strings.Contains(r.body, m[1]) || strings.Contains(r.body, `id="secret-value"`) {
		t.Error("the PIN is shown again on a later visit")
	}
	if !strings.Contains(r.body, `data-confirm="Reset the voicemail PIN of 1001? A new PIN, shown once, replaces the current one, which stops working."`) {
		t.Error("Reset voicemail PIN: no confirmation that it replaces the current PIN")
	}
}

func TestVoicemailGreeting(t *testing.T) {
	e := newEnv(t)
	a := e.account("Acme", 10)
	e.login("root", opPass, 0)
	u := e.vmUser(a, "1001", true)
	b := e.browser()
	b.mustSignIn("root", opPass)
	page := fmt.Sprintf("/accounts/%d/users/%d", a.ID, u.ID)
	greeting := page + "/voicemail/greeting"

	good := tone(3 * time.Second)
	r := b.upload(page, greeting, "greeting", "hello.wav", good)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != page+"#voicemail" {
		t.Fatalf("upload a greeting: %d %s", r.status, textOf(r.body))
	}
	if got, err := e.st.Greeting(t.Context(), u.ID); err != nil || !bytes.Equal(got, good) {
		t.Errorf("greeting stored: %d bytes, %v", len(got), err)
	}
	if txt := textOf(b.get(page).body); !strings.Contains(txt, "Greeting saved") {
		t.Errorf("after the upload: %s", txt)
	}

	for _, c := range []struct {
		name string
		file []byte
		want string
	}{
		{"notes.txt", []byte("not a wav"), "wav: not a RIFF/WAVE file"},
		{"long.wav", tone(61 * time.Second), "lasts 1m1s: must be longer than 0 and at most 1m0s"},
		{"", nil, "choose a WAV file to upload"},
	} {
		r := b.upload(page, greeting, "greeting", c.name, c.file)
		if got := errorOf(r.body, "f-greeting"); r.status != http.StatusOK || got != c.want {
			t.Errorf("upload %s: %d, error %q, want %q", c.name, r.status, got, c.want)
		}
	}
	if got, _ := e.st.Greeting(t.Context(), u.ID); !bytes.Equal(got, good) {
		t.Error("a refused upload replaced the greeting")
	}
	if r := b.upload(page, greeting, "greeting", "huge.wav", make([]byte, maxUpload+1)); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("upload over %d bytes: %d, want 413", maxUpload, r.status)
	}

	if r := b.submit(page, greeting+"/delete", confirmedForm()); r.status != http.StatusSeeOther {
		t.Fatalf("Remove greeting: %d %s", r.status, textOf(r.body))
	}
	if _, err := e.st.Greeting(t.Context(), u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after Remove greeting: %v, want none", err)
	}
}

// TestVoicemailOtherAccount: an account login reaches its own users'
// mailboxes, and another account's answer 404 by every route.
func TestVoicemailOtherAccount(t *testing.T) {
	e := newEnv(t)
	a, other := e.account("Acme", 10), e.account("Other", 10)
	e.login("acme", acctPass, a.ID)
	mine, theirs := e.vmUser(a, "1001", true), e.vmUser(other, "2001", true)
	myMsg, _ := e.message(mine, "3002", dec7, time.Second, store.MailState{})
	theirMsg, _ := e.message(theirs, "3003", dec7, time.Second, store.MailState{})
	b := e.browser()
	b.mustSignIn("acme", acctPass)
	own := fmt.Sprintf("/accounts/%d/users/%d", a.ID, mine.ID)
	if r := b.get(fmt.Sprintf("%s/voicemail/messages/%d/audio", own, myMsg.ID)); r.status != http.StatusOK || r.header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("own message's audio: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if r := b.get(own); !strings.Contains(r.body, `id="voicemail"`) || strings.Contains(r.body, "3003") {
		t.Error("own user's page: no messages, or another account's")
	}
	csrf := b.csrf(own)
	for _, user := range []string{fmt.Sprintf("/accounts/%d/users/%d", other.ID, theirs.ID), fmt.Sprintf("/accounts/%d/users/%d", a.ID, theirs.ID)} {
		msg := fmt.Sprintf("%s/voicemail/messages/%d", user, theirMsg.ID)
		if r := b.get(msg + "/audio"); r.status != http.StatusNotFound || strings.Contains(r.body, "RIFF") {
			t.Errorf("GET %s/audio: %d, want 404", msg, r.status)
		}
		for _, p := range []string{msg + "/read", msg + "/delete", user + "/voicemail/pin", user + "/voicemail/greeting/delete"} {
			if r := b.post(p, url.Values{"csrf": {csrf}, "read": {"1"}}); r.status != http.StatusNotFound {
				t.Errorf("POST %s: %d, want 404", p, r.status)
			}
		}
		if r := b.upload(own, user+"/voicemail/greeting", "greeting", "g.wav", tone(time.Second)); r.status != http.StatusNotFound {
			t.Errorf("upload a greeting to %s: %d, want 404", user, r.status)
		}
	}
	// Their message through one's own user's URL.
	if r := b.get(fmt.Sprintf("%s/voicemail/messages/%d/audio", own, theirMsg.ID)); r.status != http.StatusNotFound {
		t.Errorf("another account's message under one's own user: %d, want 404", r.status)
	}
	if got, err := e.svc.VoicemailMessage(t.Context(), provision.Operator, theirs.ID, theirMsg.ID); err != nil || got.Read {
		t.Errorf("their message after the attempts: %+v, %v", got, err)
	}
	if got, _ := e.svc.GetSIPUser(t.Context(), provision.Operator, theirs.ID); got.Voicemail.PINSet {
		t.Error("their PIN was reset")
	}
	if _, err := e.st.Greeting(t.Context(), theirs.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("their greeting: %v, want none", err)
	}
}
