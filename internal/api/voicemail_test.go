package api

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/wavfile"
)

// The mailbox's routes: messages listed, served (with ranges), marked and
// deleted; the PIN reset shown once; the greeting checked and kept; an
// account token sees only its own account's mailboxes.
func TestVoicemailRoutes(t *testing.T) {
	h := newHarness(t)
	a, b := h.account("Acme", 0), h.account("Other", 0)
	u := id(h.op(201, "POST", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "3001",
		"voicemail": map[string]any{"enabled": true, "ring_timeout": 30}}))
	if got := h.op(200, "GET", fmt.Sprintf("/sip-users/%d", u), nil)["voicemail"].(map[string]any)["ring_timeout"]; got != 30.0 {
		t.Errorf("ring_timeout %v, want 30", got)
	}
	if st, m := h.call(opToken, "PATCH", fmt.Sprintf("/sip-users/%d", u), map[string]any{"voicemail": map[string]any{"enabled": true, "ring_timeout": 4}}); st != 400 || errOf(m)["field"] != "voicemail.ring_timeout" {
		t.Errorf("ring_timeout 4: %d %v, want 400 naming voicemail.ring_timeout", st, m)
	}
	wav := wavfile.Encode(make([]byte, 16000))
	m := store.VoicemailMessage{SIPUserID: u, AccountID: a, Caller: "3002", Called: "3001", DurationMS: 1000}
	if err := h.st.SaveMessage(t.Context(), &m, wav); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("/sip-users/%d/voicemail", u)
	items := h.op(200, "GET", base+"/messages", nil)["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["caller"] != "3002" || items[0].(map[string]any)["read"] != false {
		t.Fatalf("messages %v", items)
	}
	msg := fmt.Sprintf("%s/messages/%d", base, m.ID)
	req, _ := http.NewRequest("GET", h.srv.URL+"/api/v1"+msg+"/audio", nil)
	req.Header.Set("Authorization", "Bearer "+opToken)
	req.Header.Set("Range", "bytes=44-")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 206 || res.Header.Get("Content-Type") != "audio/wav" || len(body) != 16000 {
		t.Errorf("audio range: %d %s, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	if got := h.op(200, "PATCH", msg, map[string]any{"read": true})["read"]; got != true {
		t.Errorf("PATCH read: %v", got)
	}
	if st, m := h.call(opToken, "PATCH", msg, map[string]any{}); st != 400 || errOf(m)["field"] != "read" {
		t.Errorf("PATCH without read: %d %v", st, m)
	}

	pin := h.op(200, "POST", base+"/pin", nil)["pin"].(string)
	if !regexp.MustCompile(`^\d{6}$`).MatchString(pin) {
		t.Errorf("PIN %q, want six digits", pin)
	}
	if v := h.op(200, "GET", fmt.Sprintf("/sip-users/%d", u), nil)["voicemail"].(map[string]any); v["pin_set"] != true || v["pin"] != nil {
		t.Errorf("after the reset: %v; want pin_set and no pin", v)
	}
	if st, m := h.call(opToken, "PUT", base+"/greeting", "not a wav file"); st != 400 || errOf(m)["field"] != "greeting" ||
		!strings.Contains(errOf(m)["message"].(string), "RIFF") {
		t.Errorf("bad greeting: %d %v", st, m)
	}
	if st, _ := h.call(opToken, "PUT", base+"/greeting", string(wav)); st != 204 {
		t.Errorf("greeting: %d", st)
	}
	if g, err := h.st.Greeting(t.Context(), u); err != nil || len(g) != len(wav) {
		t.Errorf("stored greeting: %d bytes, %v", len(g), err)
	}

	tok := h.op(201, "POST", "/tokens", map[string]any{"name": "other", "scope": "account", "account_id": b})["token"].(string)
	for _, p := range []string{base + "/messages", msg, msg + "/audio"} {
		if st, _ := h.call(tok, "GET", p, nil); st != 404 {
			t.Errorf("another account's token: GET %s = %d, want 404", p, st)
		}
	}
	if st, _ := h.call(tok, "DELETE", msg, nil); st != 404 {
		t.Errorf("another account's token deleted a message: %d", st)
	}
	h.op(204, "DELETE", msg, nil)
	if st, _ := h.call(opToken, "GET", msg, nil); st != 404 {
		t.Errorf("deleted message: %d, want 404", st)
	}
	// The audit trail: the PIN reset, the greeting, the deleted message.
	for _, q := range []string{fmt.Sprintf("object=sip_user:%d&action=reset_pin", u), fmt.Sprintf("object=voicemail_greeting:%d", u),
		fmt.Sprintf("object=voicemail_message:%d&action=delete", m.ID)} {
		if got := h.auditItems(opToken, q); len(got) != 1 || got[0]["account_id"] != float64(a) {
			t.Errorf("audit %s: %v, want one entry of account %d", q, got, a)
		}
	}
}
