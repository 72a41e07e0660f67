package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// webClient is a signed-in web UI session (a cookie jar), for posting forms
// as a browser would.
type webClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func signIn(t *testing.T, base, username, password string) *webClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	w := &webClient{t: t, base: base, hc: &http.Client{Jar: jar}}
	csrf := w.csrf("/login")
	if st, body := w.post("/login", url.Values{"username": {username}, "password": {password}, "csrf": {csrf}, "next": {"/"}}); st != 200 ||
		strings.Contains(body, `id="password"`) {
		t.Fatalf("sign in as %s: %d", username, st)
	}
	return w
}

// csrf loads page and returns its form's CSRF token.
func (w *webClient) csrf(page string) string {
	w.t.Helper()
	resp, err := w.hc.Get(w.base + page)
	if err != nil {
		w.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRe.FindSubmatch(body)
	if m == nil {
		w.t.Fatalf("GET %s (%d): no form with a CSRF token", page, resp.StatusCode)
	}
	return string(m[1])
}

// post submits a form and returns the status and body after redirects.
func (w *webClient) post(page string, form url.Values) (int, string) {
	w.t.Helper()
	resp, err := w.hc.PostForm(w.base+page, form)
	if err != nil {
		w.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// TestAuditTrail: one change each through the API (a named token), the CLI
// (the operator token) and a web form (the admin sign-in) leaves one entry
// each, with its actor, channel and diff; the CLI lists them; an account
// token reads only its own account's entries; no secret reaches the trail.
func TestAuditTrail(t *testing.T) {
	const adminPW = "e2e-admin-password-1"
	n := start(t, "", "--admin-password", adminPW)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme", "channels": 20}))
	other := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Other"}))
	path := fmt.Sprintf("/accounts/%d", acc)

	apiTok := n.mustAPI(t, 201, "POST", "/tokens", map[string]any{"name": "e2e-api", "scope": "operator"})["token"].(string)
	if st, m := n.apiAs(t, apiTok, "PATCH", path, map[string]any{"channels": 30}); st != 200 {
		t.Fatalf("PATCH through the API: %d %v", st, m)
	}
	if out, err := n.cli(t, "account", "update", fmt.Sprint(acc), "channels=40"); err != nil {
		t.Fatalf("CLI update: %v\n%s", err, out)
	}
	web := signIn(t, n.HTTP, "admin", adminPW)
	settings := fmt.Sprintf("/accounts/%d/settings", acc)
	if st, body := web.post(settings, url.Values{"csrf": {web.csrf(settings)}, "name": {"Acme"}, "channels": {"50"}, "cps": {"0"},
		"number_block_start": {"0"}, "number_block_size": {"0"}}); st != 200 || !strings.Contains(body, "saved") {
		t.Fatalf("web form: %d", st)
	}

	items := n.mustAPI(t, 200, "GET", fmt.Sprintf("/audit?object=account:%d", acc), nil)["items"].([]any)
	want := []struct{ actor, via, action, before, after string }{
		{"login:admin", "web", "update", "40", "50"},
		{"token:operator (generated at first start)", "cli", "update", "30", "40"},
		{"token:e2e-api", "api", "update", "20", "30"},
		{"token:operator (generated at first start)", "api", "create", "<nil>", "20"},
	}
	if len(items) != len(want) {
		t.Fatalf("entries of account %d: %d, want %d: %v", acc, len(items), len(want), items)
	}
	for i, w := range want {
		e := items[i].(map[string]any)
		ch, _ := e["changes"].(map[string]any)["channels"].(map[string]any)
		if e["actor"] != w.actor || e["via"] != w.via || e["action"] != w.action || e["source"] != "127.0.0.1" ||
			fmt.Sprint(ch["before"]) != w.before || fmt.Sprint(ch["after"]) != w.after {
			t.Errorf("entry %d: %v; want %s via %s, %s, channels %s → %s", i, e, w.actor, w.via, w.action, w.before, w.after)
		}
		if i < 3 && len(e["changes"].(map[string]any)) != 1 {
			t.Errorf("entry %d changes %v: want only channels", i, e["changes"])
		}
	}
	out, err := n.cli(t, "audit", "list", fmt.Sprintf("object=account:%d", acc), "action=update")
	if err != nil || !strings.Contains(out, "channels: 40 → 50") || !strings.Contains(out, "login:admin") || strings.Count(out, "update") != 3 {
		t.Errorf("sipward audit list: %v\n%s", err, out)
	}

	// An account's token sees its own account's entries only.
	accTok := n.mustAPI(t, 201, "POST", "/tokens", map[string]any{"name": "acme", "scope": "account", "account_id": acc})["token"].(string)
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", other), map[string]any{"address": "198.51.100.20"})
	n.mustAPI(t, 201, "POST", "/firewall/bans", map[string]any{"address": "203.0.113.50", "reason": "test"})
	st, m := n.apiAs(t, accTok, "GET", "/audit?limit=1000", nil)
	if st != 200 || len(m["items"].([]any)) < 4 {
		t.Fatalf("account token: %d %v", st, m)
	}
	for _, it := range m["items"].([]any) {
		if a, _ := it.(map[string]any)["account_id"].(float64); int64(a) != acc {
			t.Errorf("the account token reads an entry of another account: %v", it)
		}
	}
	if st, m := n.apiAs(t, accTok, "GET", fmt.Sprintf("/audit?account=%d", other), nil); st != 200 || len(m["items"].([]any)) != 0 {
		t.Errorf("the account token asked for account %d: %d %v", other, st, m)
	}

	// Secrets: a SIP user's password, a PIN, an egress password.
	secrets := []string{"audit-user-password-1", "555123", "audit-egress-secret"}
	u := id(n.mustAPI(t, 201, "POST", path+"/sip-users", map[string]any{"username": "1001", "password": secrets[0],
		"channels": 1, "voicemail": map[string]any{"enabled": true, "pin": secrets[1]}}))
	n.mustAPI(t, 201, "POST", path+"/ip-endpoints", map[string]any{"address": "192.0.2.77", "direction": "receives",
		"username": "trunk", "password": secrets[2]})
	n.mustAPI(t, 200, "POST", fmt.Sprintf("/sip-users/%d/password", u), nil)
	raw, _ := json.Marshal(n.mustAPI(t, 200, "GET", "/audit?limit=1000", nil))
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("the audit trail shows the secret %q", s)
		}
	}
	for _, f := range []string{"sipward.db", "sipward.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(n.dir, f))
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds the secret %q in clear", f, s)
			}
		}
	}
	if !strings.Contains(string(raw), `"reset_password"`) {
		t.Errorf("no reset_password entry in %s", raw)
	}
}

// TestRewriteGenerateCLI: `sipward rewrite generate` prints the rule, what
// it does, and what it does to other numbers; conflicting examples get one
// rule per group and a failing exit.
func TestRewriteGenerateCLI(t *testing.T) {
	n := start(t, "")
	out, err := n.cli(t, "rewrite", "generate", "01782123456=441782123456", "07700900123=447700900123", "unchanged=00441782123456")
	if err != nil || !strings.Contains(out, "441782123456") || !strings.Contains(out, "replacement='44") || !strings.Contains(out, "unchanged") {
		t.Errorf("generate: %v\n%s", err, out)
	}
	out, err = n.cli(t, "rewrite", "generate", "01782123456=441782123456", "030123456=4930123456")
	if err == nil || !strings.Contains(out, "group 2") || !strings.Contains(out, "030123456") {
		t.Errorf("conflicting examples: %v\n%s", err, out)
	}
}
