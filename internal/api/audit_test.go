package api

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// auditItems returns the entries GET /audit?query answers to token.
func (h *harness) auditItems(token, query string) []map[string]any {
	h.t.Helper()
	st, m := h.call(token, "GET", "/audit?"+query, nil)
	if st != 200 {
		h.t.Fatalf("GET /audit?%s: %d %v", query, st, m)
	}
	var out []map[string]any
	for _, it := range m["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

func change(e map[string]any, field string) (before, after any, ok bool) {
	c, ok := e["changes"].(map[string]any)[field].(map[string]any)
	if !ok {
		return nil, nil, false
	}
	return c["before"], c["after"], true
}

// A change through the API leaves one entry naming who (the token, its
// scope, the client's address), what (object, action) and a field-level
// diff; filters select; an account token reads only its own account's
// entries and none of the firewall's.
func TestAuditTrail(t *testing.T) {
	h := newHarness(t)
	a, b := h.account("Acme", 0), h.account("Other", 0)
	ep := id(h.op(201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", a), map[string]any{"address": "192.0.2.10", "channels": 10}))
	h.op(200, "PATCH", fmt.Sprintf("/ip-endpoints/%d", ep), map[string]any{"channels": 5})
	h.op(200, "PATCH", fmt.Sprintf("/ip-endpoints/%d", ep), map[string]any{"channels": 5}) // no change: no entry

	items := h.auditItems(opToken, fmt.Sprintf("object=ip_endpoint:%d", ep))
	if len(items) != 2 {
		t.Fatalf("entries of ip_endpoint:%d: %v, want create and one update", ep, items)
	}
	up, cr := items[0], items[1]
	if up["action"] != "update" || up["actor"] != "operator" || up["actor_scope"] != "operator" || up["source"] != "127.0.0.1" ||
		up["via"] != "api" || up["object"] != "ip_endpoint" || up["account_id"] != float64(a) || up["object_id"] != float64(ep) {
		t.Errorf("update entry %v", up)
	}
	if before, after, ok := change(up, "channels"); !ok || before != 10.0 || after != 5.0 || len(up["changes"].(map[string]any)) != 1 {
		t.Errorf("update changes %v, want only channels 10 → 5", up["changes"])
	}
	if _, after, ok := change(cr, "address"); cr["action"] != "create" || !ok || after != "192.0.2.10" {
		t.Errorf("create entry %v", cr)
	}

	// A named token is the actor; an account token sees only its account.
	tok := h.op(201, "POST", "/tokens", map[string]any{"name": "acme-ci", "scope": "account", "account_id": a})["token"].(string)
	u := id(h.op(201, "POST", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "1001"}))
	if st, m := h.call(tok, "POST", fmt.Sprintf("/sip-users/%d/password", u), nil); st != 200 {
		t.Fatalf("reset by the account token: %d %v", st, m)
	}
	h.op(201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", b), map[string]any{"address": "198.51.100.7"})
	h.op(201, "POST", "/firewall/bans", map[string]any{"address": "203.0.113.9", "reason": "scanner"})
	reset := h.auditItems(tok, fmt.Sprintf("object=sip_user:%d&action=reset_password", u))
	if len(reset) != 1 || reset[0]["actor"] != "token:acme-ci" || reset[0]["actor_scope"] != "account" {
		t.Fatalf("reset entry %v", reset)
	}
	if before, after, _ := change(reset[0], "password"); before != store.AuditHidden || after != store.AuditChanged {
		t.Errorf("password change shown as %v → %v, want hidden → changed", before, after)
	}
	for _, e := range h.auditItems(tok, "limit=1000") {
		if e["account_id"] != float64(a) {
			t.Errorf("the account token sees an entry of another account or none: %v", e)
		}
		if (e["actor_scope"] == "operator") != (e["source"] == "") {
			t.Errorf("the account token sees the source of %v: want the operator's hidden, its own shown", e)
		}
	}
	if got := h.auditItems(tok, fmt.Sprintf("account=%d", b)); len(got) != 0 {
		t.Errorf("the account token asked for account %d and got %v", b, got)
	}
	if got := h.auditItems(opToken, "object=ban&action=ban"); len(got) != 1 || got[0]["account_id"] != nil {
		t.Errorf("ban entries %v", got)
	}
	if got := h.auditItems(opToken, "actor=ACME-CI"); len(got) != 1 {
		t.Errorf("actor filter: %v", got)
	}
	if got := h.auditItems(opToken, "since=1h&until="+url.QueryEscape(time.Now().Add(time.Minute).UTC().Format(time.RFC3339))); len(got) < 5 {
		t.Errorf("the last hour's entries: %d, want all of this test's", len(got))
	}
	if got := h.auditItems(opToken, "until="+url.QueryEscape("2000-01-01T00:00:00Z")); len(got) != 0 {
		t.Errorf("entries before 2000: %v", got)
	}

	for q, field := range map[string]string{"object=widget": "object", "object=sip_user:x": "object", "action=rename": "action",
		"since=yesterday": "since", "since=1h&until=2h": "until", "account=abc": "account", "limit=0": "limit"} {
		if st, m := h.call(opToken, "GET", "/audit?"+q, nil); st != 400 || errOf(m)["field"] != field {
			t.Errorf("GET /audit?%s: %d %v, want 400 naming %s", q, st, m, field)
		}
	}
	for _, m := range []string{"POST", "PATCH", "DELETE", "PUT"} {
		if st, _ := h.call(opToken, m, "/audit", map[string]any{}); st != 405 && st != 404 {
			t.Errorf("%s /audit: %d, want the trail to take no edits", m, st)
		}
	}
}

// No secret reaches the audit trail: not a clear password, PIN or egress
// password, nor a stored HA1, PIN hash, sealed password or token hash.
func TestAuditHoldsNoSecrets(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 0)
	chosen := "my-chosen-password-42"
	um := h.op(201, "POST", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "1002", "password": chosen,
		"voicemail": map[string]any{"enabled": true, "pin": "918273"}})
	u := id(um)
	reset := h.op(200, "POST", fmt.Sprintf("/sip-users/%d/password", u), nil)["password"].(string)
	pin := h.op(200, "POST", fmt.Sprintf("/sip-users/%d/voicemail/pin", u), nil)["pin"].(string)
	egress := "egress-secret-pass"
	ep := id(h.op(201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", a), map[string]any{"address": "192.0.2.1", "direction": "receives",
		"username": "trunk", "password": egress}))
	h.op(200, "PATCH", fmt.Sprintf("/ip-endpoints/%d", ep), map[string]any{"password": egress + "-2"})
	tokSecret := h.op(201, "POST", "/tokens", map[string]any{"name": "t", "scope": "operator"})["token"].(string)
	login := h.op(201, "POST", "/logins", map[string]any{"username": "alice", "scope": "account", "account_id": a, "password": "alice-secret-password-1"})
	h.op(200, "POST", fmt.Sprintf("/logins/%d/password", id(login)), nil)

	secrets := []string{chosen, reset, pin, egress, egress + "-2", tokSecret, "alice-secret-password-1", "918273"}
	err := h.st.View(t.Context(), func(tx store.Tx) error {
		us, err := tx.GetSIPUser(t.Context(), u)
		if err != nil {
			return err
		}
		e, err := tx.GetEndpoint(t.Context(), ep)
		if err != nil {
			return err
		}
		l, err := tx.GetLogin(t.Context(), id(login))
		if err != nil {
			return err
		}
		toks, _, err := tx.ListTokens(t.Context(), store.TokenFilter{})
		for _, tk := range toks {
			secrets = append(secrets, tk.Hash)
		}
		secrets = append(secrets, us.HA1MD5, us.HA1SHA256, us.Voicemail.PINHash, hex.EncodeToString(e.PasswordSealed), l.Hash)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	entries, total, err := h.st.ListAudit(t.Context(), store.AuditFilter{})
	if err != nil || total < 8 {
		t.Fatalf("%d entries, %v; want every change", total, err)
	}
	raw, _ := json.Marshal(entries)
	for _, s := range secrets {
		if s != "" && strings.Contains(string(raw), s) {
			t.Errorf("the audit trail holds the secret %q", s)
		}
	}
	var pinEntry bool
	for _, e := range entries {
		if e.Action == store.AuditResetPIN {
			pinEntry = e.Changes["voicemail.pin"].After == store.AuditChanged
		}
	}
	if !pinEntry {
		t.Errorf("no reset_pin entry showing the PIN changed: %s", raw)
	}
}

// The generator answers a rule, a 422 with one rule per group when the
// examples disagree, and 400 naming the field of bad input.
func TestRewriteGenerate(t *testing.T) {
	h := newHarness(t)
	m := h.op(200, "POST", "/rewrites/generate", map[string]any{"type": "destination",
		"examples": []map[string]string{{"input": "01782123456", "output": "441782123456"}, {"input": "07700900123", "output": "447700900123"}}})
	rule := m["rule"].(map[string]any)
	if rule["regex"] != false || rule["match"] != "0" || rule["replacement"] != "44" ||
		!strings.Contains(m["explanation"].(string), "44") || len(m["samples"].([]any)) == 0 {
		t.Errorf("generate: %v", m)
	}
	st, m := h.call(opToken, "POST", "/rewrites/generate", map[string]any{"type": "destination",
		"examples": []map[string]string{{"input": "01782123456", "output": "441782123456"}, {"input": "030123456", "output": "4930123456"}}})
	if st != 422 || len(m["groups"].([]any)) != 2 || !strings.Contains(errOf(m)["message"].(string), "030123456") {
		t.Errorf("conflicting examples: %d %v", st, m)
	}
	st, m = h.call(opToken, "POST", "/rewrites/generate", map[string]any{"examples": []map[string]string{{"input": "0178", "output": "44a"}}})
	if st != 400 || errOf(m)["field"] != "examples[0].output" {
		t.Errorf("bad output: %d %v, want 400 naming examples[0].output", st, m)
	}
}
