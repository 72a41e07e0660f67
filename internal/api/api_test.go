package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/store/sqlstore"
)

const opToken = "operator-test-token"

type harness struct {
	t      *testing.T
	srv    *httptest.Server
	dbPath string
	st     *sqlstore.Store
}

func newHarness(t *testing.T, opts ...func(*Options)) *harness {
	t.Helper()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "sipward.db")
	st, err := sqlstore.Open(context.Background(), "sqlite:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, secret.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := secret.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	svc := provision.New(st, provision.Options{Realm: "test.example", Sealer: sealer, Mailboxes: st})
	log := slog.New(slog.NewTextHandler(testLog{t}, nil))
	o := Options{Service: svc, AdminToken: opToken, Log: log}
	for _, f := range opts {
		f(&o)
	}
	srv := httptest.NewServer(New(o))
	t.Cleanup(srv.Close)
	return &harness{t: t, srv: srv, dbPath: dbPath, st: st}
}

// testLog sends server logs to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// call sends a request and returns the status and the decoded JSON body.
func (h *harness) call(token, method, path string, body any) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.srv.URL+"/api/v1"+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			h.t.Fatalf("%s %s: body is not a JSON object: %s", method, path, raw)
		}
	}
	return resp.StatusCode, m
}

// op calls as the operator and fails the test unless the status is want.
func (h *harness) op(want int, method, path string, body any) map[string]any {
	h.t.Helper()
	st, m := h.call(opToken, method, path, body)
	if st != want {
		h.t.Fatalf("%s %s: status %d, want %d: %v", method, path, st, want, m)
	}
	return m
}

func id(m map[string]any) int64 { return int64(m["id"].(float64)) }

// errOf returns the error member of a response.
func errOf(m map[string]any) map[string]any {
	e, _ := m["error"].(map[string]any)
	return e
}

func (h *harness) account(name string, channels int) int64 {
	return id(h.op(201, "POST", "/accounts", map[string]any{"name": name, "channels": channels}))
}

func TestDuplicateUserIsRefusedAcrossAccounts(t *testing.T) {
	h := newHarness(t)
	a, b := h.account("Acme", 0), h.account("Beta", 0)
	h.op(201, "POST", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "1001"})
	for _, acc := range []int64{a, b} {
		st, m := h.call(opToken, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "1001"})
		want := map[string]any{"code": "duplicate_user", "message": "Duplicate User Detected", "field": "username"}
		if st != 409 || !cmp.Equal(errOf(m), want) {
			t.Errorf("account %d: got %d %v, want 409 %v", acc, st, m, want)
		}
	}
	// Renaming another user onto the name is refused the same way.
	u2 := id(h.op(201, "POST", fmt.Sprintf("/accounts/%d/sip-users", b), map[string]any{"username": "2002"}))
	st, m := h.call(opToken, "PATCH", fmt.Sprintf("/sip-users/%d", u2), map[string]any{"username": "1001", "password": "a-long-enough-password"})
	if st != 409 || errOf(m)["message"] != provision.MsgDuplicateUser {
		t.Errorf("rename onto existing: got %d %v", st, m)
	}
}

func TestChannelCapacity(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 10)
	users := fmt.Sprintf("/accounts/%d/sip-users", a)
	u1 := id(h.op(201, "POST", users, map[string]any{"username": "alice", "channels": 6}))
	want := map[string]any{"code": "no_capacity", "message": "No channel capacity available for your account.", "field": "channels"}
	check := func(what string, st int, m map[string]any) {
		t.Helper()
		if st != 409 || !cmp.Equal(errOf(m), want) {
			t.Errorf("%s: got %d %v, want 409 %v", what, st, m, want)
		}
	}
	st, m := h.call(opToken, "POST", users, map[string]any{"username": "bob", "channels": 5})
	check("create past capacity", st, m)
	st, m = h.call(opToken, "PATCH", fmt.Sprintf("/sip-users/%d", u1), map[string]any{"channels": 11})
	check("update user past capacity", st, m)
	h.op(201, "POST", users, map[string]any{"username": "bob", "channels": 4}) // exactly 10
	st, m = h.call(opToken, "PATCH", fmt.Sprintf("/accounts/%d", a), map[string]any{"channels": 9})
	check("shrink account below allocation", st, m)
	h.op(200, "PATCH", fmt.Sprintf("/accounts/%d", a), map[string]any{"channels": 12})
	h.op(201, "POST", users, map[string]any{"username": "carol", "channels": 2})
	// No unlimited SIP user: one without channels holds one, and the account is full.
	st, m = h.call(opToken, "POST", users, map[string]any{"username": "dave"})
	check("a user without channels in a full account", st, m)
	st, m = h.call(opToken, "POST", users, map[string]any{"username": "dave", "channels": 0})
	if e := errOf(m); st != 400 || e["field"] != "channels" || !strings.Contains(fmt.Sprint(e["message"]), "at least 1 channel") {
		t.Errorf("a user with 0 channels: got %d %v, want 400 naming channels", st, m)
	}
	h.op(200, "PATCH", fmt.Sprintf("/accounts/%d", a), map[string]any{"channels": 13})
	dave := h.op(201, "POST", users, map[string]any{"username": "dave"})
	if got := effective(dave, "channels"); got["value"] != float64(1) || got["from"] != "default" || dave["channels"] != nil {
		t.Errorf("a user created without channels: own %v, effective %v; want none of its own and 1 by default", dave["channels"], got)
	}
	// The same through the one-call account creation.
	st, m = h.call(opToken, "POST", "/accounts", map[string]any{"name": "Full", "channels": 1,
		"sip_users": []map[string]any{{"username": "3001"}, {"username": "3002"}}})
	if e := errOf(m); st != 409 || e["code"] != "no_capacity" || e["field"] != "sip_users[1].channels" {
		t.Errorf("two users without channels in a one-channel account: got %d %v, want 409 no_capacity on sip_users[1].channels", st, m)
	}
	// An account without capacity takes any number of users, each holding its channels.
	h.op(201, "POST", "/accounts", map[string]any{"name": "Open", "sip_users": []map[string]any{{"username": "4001"}, {"username": "4002"}}})
}

func TestNumberBlock(t *testing.T) {
	h := newHarness(t)
	a := id(h.op(201, "POST", "/accounts", map[string]any{"name": "Acme", "number_block_start": 1000, "number_block_size": 100}))
	users := fmt.Sprintf("/accounts/%d/sip-users", a)
	for _, name := range []string{"2000", "999", "1100", "alice"} {
		st, m := h.call(opToken, "POST", users, map[string]any{"username": name})
		e := errOf(m)
		if st != 409 || e["field"] != "username" || !strings.Contains(fmt.Sprint(e["message"]), "1000-1099") {
			t.Errorf("username %s: got %d %v, want 409 naming the range 1000-1099", name, st, m)
		}
	}
	h.op(201, "POST", users, map[string]any{"username": "1000"})
	h.op(201, "POST", users, map[string]any{"username": "1099"})
}

func TestFieldValidation(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 0)
	eps := fmt.Sprintf("/accounts/%d/ip-endpoints", a)
	tests := []struct {
		name, path string
		body       map[string]any
		field, msg string
	}{
		{"bad prefix length", eps, map[string]any{"address": "10.0.0.0/33"}, "address", `"10.0.0.0/33": invalid prefix length`},
		{"bad address", eps, map[string]any{"address": "10.0.0.300"}, "address", `"10.0.0.300": invalid IP address`},
		{"host bits", eps, map[string]any{"address": "10.0.0.1/24"}, "address", `"10.0.0.1/24": host bits set; did you mean 10.0.0.0/24?`},
		{"fqdn sends", eps, map[string]any{"address": "pbx.example.com", "direction": "sends"}, "address", `"pbx.example.com": an FQDN is only allowed for direction receives (calls are authenticated by source address)`},
		{"port", eps, map[string]any{"address": "10.0.0.1", "port": 70000}, "port", "70000: must be between 1 and 65535"},
		{"smpp", eps, map[string]any{"address": "10.0.0.1", "protocol": "smpp"}, "protocol", "SMPP is not supported"},
		{"protocol", eps, map[string]any{"address": "10.0.0.1", "protocol": "sctp"}, "protocol", `"sctp": must be one of udp, tcp, tls, tls-srtp`},
		{"codec", eps, map[string]any{"address": "10.0.0.1", "restricted_codecs": []string{"PCMA", "FOO"}}, "restricted_codecs[1]", `"FOO": unknown codec`},
		{"tech prefix", eps, map[string]any{"address": "10.0.0.1", "tech_prefix": "12a"}, "tech_prefix", `"12a": only digits, *, # and + are allowed`},
		{"negative channels", eps, map[string]any{"address": "10.0.0.1", "channels": -1}, "channels", "-1: must not be negative (0 means unlimited)"},
		{"wrong type", eps, map[string]any{"address": "10.0.0.1", "channels": "ten"}, "channels", "must be an integer, not string"},
		{"nat", eps, map[string]any{"address": "10.0.0.1", "force_nat": true, "disable_nat": true}, "disable_nat", "cannot be set with force_nat"},
		{"dial pattern", eps, map[string]any{"address": "10.0.0.1", "dial_pattern": `^00\d+$`}, "dial_pattern", `"^00\\d+$": must be "e164" (E.164, a leading + removed)`},
		{"unknown field", eps, map[string]any{"address": "10.0.0.1", "colour": "red"}, "colour", "unknown field"},
		{"bad regex", fmt.Sprintf("/accounts/%d/cli-patterns", a), map[string]any{"pattern": "^(44", "regex": true}, "pattern", `invalid RE2 regex: missing closing ) in ^(44`},
		{"long regex", fmt.Sprintf("/accounts/%d/cli-patterns", a), map[string]any{"pattern": strings.Repeat("a", 257), "regex": true}, "pattern", "regex is longer than 256 characters"},
		{"non-RE2 regex", fmt.Sprintf("/accounts/%d/cli-patterns", a), map[string]any{"pattern": `^(?=44)`, "regex": true}, "pattern", `invalid RE2 regex: invalid or unsupported Perl syntax in (?=`},
		{"e164", fmt.Sprintf("/accounts/%d/dids", a), map[string]any{"number": "0044123"}, "number", `"0044123": not an E.164 number (country code and number, 6 to 15 digits, optional leading +)`},
		{"weak password", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "u1", "password": "short"}, "password", "is too weak: use at least 12 characters, or leave it empty to have one generated"},
		{"whitelist", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "u1", "ip_whitelist": []string{"1.2.3.4", "nope"}}, "ip_whitelist[1]", `"nope": invalid IP address`},
		{"nested", "/accounts", map[string]any{"name": "N", "ip_endpoints": []map[string]any{{"address": "10.0.0.0/33"}}}, "ip_endpoints[0].address", `"10.0.0.0/33": invalid prefix length`},
		{"nested user", "/accounts", map[string]any{"name": "N", "sip_users": []map[string]any{{"username": "ok1"}, {"username": "x", "password": "weak"}}}, "sip_users[1].password", "is too weak: use at least 12 characters, or leave it empty to have one generated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, m := h.call(opToken, "POST", tt.path, tt.body)
			e := errOf(m)
			if st != 400 || e["field"] != tt.field || !strings.HasPrefix(fmt.Sprint(e["message"]), tt.msg) {
				t.Errorf("got %d field=%v message=%q\nwant 400 field=%s message=%q", st, e["field"], e["message"], tt.field, tt.msg)
			}
		})
	}
	// A failed nested create saves nothing.
	m := h.op(200, "GET", "/accounts?name=N", nil)
	if m["total"].(float64) != 0 {
		t.Errorf("failed nested creates left accounts behind: %v", m)
	}
	// Accepted forms are canonicalised.
	e := h.op(201, "POST", eps, map[string]any{"address": "pbx.Example.com.", "direction": "receives", "protocol": "TLS"})
	if e["address"] != "pbx.example.com" || e["port"].(float64) != 5061 || e["protocol"] != "tls" || e["dial_pattern"] != "e164" {
		t.Errorf("receives endpoint not canonicalised: %v", e)
	}
	d := h.op(201, "POST", fmt.Sprintf("/accounts/%d/dids", a), map[string]any{"number": "+442071234567"})
	if d["number"] != "442071234567" {
		t.Errorf("DID number = %v, want 442071234567", d["number"])
	}
}

func TestDuplicateIP(t *testing.T) {
	h := newHarness(t)
	a, b := h.account("Acme", 0), h.account("Beta", 0)
	h.op(201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", a), map[string]any{"address": "192.0.2.10"})
	bEps := fmt.Sprintf("/accounts/%d/ip-endpoints", b)

	// Same address, nothing to tell the accounts apart: refused naming Acme.
	st, m := h.call(opToken, "POST", bEps, map[string]any{"address": "192.0.2.10/32"})
	e := errOf(m)
	if st != 409 || e["code"] != "ambiguous_ip" || !strings.Contains(fmt.Sprint(e["message"]), `account "Acme"`) {
		t.Fatalf("ambiguous endpoint: got %d %v", st, m)
	}
	// With a tech prefix it is saved, with a warning naming Acme.
	m = h.op(201, "POST", bEps, map[string]any{"address": "192.0.2.10", "tech_prefix": "99#"})
	ws, _ := m["warnings"].([]any)
	if len(ws) != 1 || !strings.Contains(fmt.Sprint(ws[0]), "duplicate IP") || !strings.Contains(fmt.Sprint(ws[0]), `"Acme"`) {
		t.Errorf("tech-prefixed duplicate: warnings = %v", ws)
	}
	// An overlapping range is a warning too.
	m = h.op(201, "POST", bEps, map[string]any{"address": "192.0.2.0/24"})
	if ws, _ := m["warnings"].([]any); len(ws) == 0 {
		t.Errorf("overlapping range: no warning: %v", m)
	}
	// CLI authentication on both sides tells them apart.
	c := h.account("Gamma", 0)
	h.op(201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", c), map[string]any{"address": "198.51.100.1", "cli_auth": true})
	h.op(201, "POST", bEps, map[string]any{"address": "198.51.100.1", "cli_auth": true})
	// A receives endpoint never conflicts.
	h.op(201, "POST", bEps, map[string]any{"address": "192.0.2.10", "direction": "receives"})
	// PATCH runs the same rule: Beta's /24 narrowed onto Acme's address.
	r := id(h.op(201, "POST", bEps, map[string]any{"address": "203.0.113.0/24"}))
	st, _ = h.call(opToken, "PATCH", fmt.Sprintf("/ip-endpoints/%d", r), map[string]any{"address": "192.0.2.10"})
	if st != 409 {
		t.Errorf("PATCH onto an ambiguous address: status %d, want 409", st)
	}
}

func TestEndpointLiftsBans(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 0)
	h.op(201, "POST", "/firewall/bans", map[string]any{"address": "192.0.2.10", "reason": "brute force"})
	h.op(201, "POST", "/firewall/bans", map[string]any{"address": "198.51.100.0/24", "reason": "scan"})
	h.op(201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", a), map[string]any{"address": "192.0.2.0/28"})
	m := h.op(200, "GET", "/firewall/bans", nil)
	items := m["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["address"] != "198.51.100.0/24" {
		t.Errorf("bans after adding 192.0.2.0/28: %v, want only 198.51.100.0/24", items)
	}
}

// TestEndpointSmartExtension: smart_extension is taken on create and
// update of an IP endpoint and returned by GET; off unless given; anything
// but true or false is refused naming the field.
func TestEndpointSmartExtension(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 0)
	eps := fmt.Sprintf("/accounts/%d/ip-endpoints", a)
	ep := h.op(201, "POST", eps, map[string]any{"address": "192.0.2.1", "smart_extension": true})
	path := fmt.Sprintf("/ip-endpoints/%d", id(ep))
	if got := h.op(200, "GET", path, nil)["smart_extension"]; got != true {
		t.Errorf("GET after create with smart_extension true: %v, want true", got)
	}
	h.op(200, "PATCH", path, map[string]any{"smart_extension": false})
	if got := h.op(200, "GET", path, nil)["smart_extension"]; got != false {
		t.Errorf("GET after PATCH smart_extension false: %v, want false", got)
	}
	h.op(200, "PATCH", path, map[string]any{"smart_extension": true})
	if got := h.op(200, "GET", path, nil)["smart_extension"]; got != true {
		t.Errorf("GET after PATCH smart_extension true: %v, want true", got)
	}
	if got := h.op(201, "POST", eps, map[string]any{"address": "192.0.2.2"})["smart_extension"]; got != false {
		t.Errorf("endpoint created without smart_extension: %v, want false", got)
	}
	for _, c := range []struct {
		method, path string
		body         map[string]any
	}{
		{"POST", eps, map[string]any{"address": "192.0.2.3", "smart_extension": "yes"}},
		{"PATCH", path, map[string]any{"smart_extension": 1}},
	} {
		st, m := h.call(opToken, c.method, c.path, c.body)
		if e := errOf(m); st != 400 || e["field"] != "smart_extension" || !strings.HasPrefix(fmt.Sprint(e["message"]), "must be true or false") {
			t.Errorf("%s %s %v: got %d %v, want 400 naming smart_extension", c.method, c.path, c.body, st, m)
		}
	}
	if got := h.op(200, "GET", path, nil)["smart_extension"]; got != true {
		t.Errorf("GET after a refused PATCH: %v, want true (unchanged)", got)
	}
}

// TestSessionTimerSettings: session_timers and session_expires of IP
// endpoints and SIP users are taken on create and update and returned by
// GET; left out (or null in a PATCH) they are on and 1800 s, also in a new
// account's nested ones; an interval outside 90 to 86400 seconds, or a value
// of the wrong type, is refused naming the field and changes nothing.
func TestSessionTimerSettings(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 0)
	timers := func(m map[string]any) [2]any { return [2]any{m["session_timers"], m["session_expires"]} }
	def := [2]any{true, float64(1800)}
	for _, k := range []struct {
		kind, coll, item string
		body             func(n int) map[string]any // a valid new one, the nth
	}{
		{"ip endpoint", fmt.Sprintf("/accounts/%d/ip-endpoints", a), "/ip-endpoints/%d",
			func(n int) map[string]any { return map[string]any{"address": fmt.Sprintf("192.0.2.%d", n)} }},
		{"sip user", fmt.Sprintf("/accounts/%d/sip-users", a), "/sip-users/%d",
			func(n int) map[string]any { return map[string]any{"username": fmt.Sprint(1000 + n)} }},
	} {
		with := func(n int, kv ...any) map[string]any {
			b := k.body(n)
			for i := 0; i < len(kv); i += 2 {
				b[kv[i].(string)] = kv[i+1]
			}
			return b
		}
		created := h.op(201, "POST", k.coll, k.body(1))
		path := fmt.Sprintf(k.item, id(created))
		if got := timers(created); got != def {
			t.Errorf("%s created without the fields: %v, want %v", k.kind, got, def)
		}
		if got := timers(h.op(200, "GET", path, nil)); got != def {
			t.Errorf("%s created without the fields, GET: %v, want %v", k.kind, got, def)
		}
		other := h.op(201, "POST", k.coll, with(2, "session_timers", false, "session_expires", 600))
		if got, want := timers(h.op(200, "GET", fmt.Sprintf(k.item, id(other)), nil)), [2]any{false, float64(600)}; got != want {
			t.Errorf("%s created with session timers off, 600 s: GET %v, want %v", k.kind, got, want)
		}
		for _, c := range []struct {
			patch map[string]any
			want  [2]any
		}{
			{map[string]any{"session_timers": false, "session_expires": 600}, [2]any{false, float64(600)}},
			{map[string]any{"session_expires": 90}, [2]any{false, float64(90)}},
			{map[string]any{"session_timers": true, "session_expires": 86400}, [2]any{true, float64(86400)}},
			{map[string]any{"session_timers": nil, "session_expires": nil}, def},
			{map[string]any{"session_timers": false, "session_expires": 0}, [2]any{false, float64(1800)}}, // 0: the default, as for port
			{map[string]any{"session_timers": true, "session_expires": 600}, [2]any{true, float64(600)}},
		} {
			h.op(200, "PATCH", path, c.patch)
			if got := timers(h.op(200, "GET", path, nil)); got != c.want {
				t.Errorf("%s after PATCH %v: %v, want %v", k.kind, c.patch, got, c.want)
			}
		}
		for _, c := range []struct {
			method, path string
			body         map[string]any
			field, msg   string
		}{
			{"POST", k.coll, with(3, "session_expires", 89), "session_expires", "89: must be between 90 and 86400 seconds"},
			{"POST", k.coll, with(3, "session_expires", 86401), "session_expires", "86401: must be between 90 and 86400 seconds"},
			{"POST", k.coll, with(3, "session_expires", "600"), "session_expires", "must be an integer, not string"},
			{"POST", k.coll, with(3, "session_timers", "yes"), "session_timers", "must be true or false, not string"},
			{"PATCH", path, map[string]any{"session_timers": false, "session_expires": 89}, "session_expires", "89: must be between 90 and 86400 seconds"},
			{"PATCH", path, map[string]any{"session_timers": false, "session_expires": 86401}, "session_expires", "86401: must be between 90 and 86400 seconds"},
			{"PATCH", path, map[string]any{"session_expires": "1800"}, "session_expires", "must be an integer, not string"},
			{"PATCH", path, map[string]any{"session_expires": 120.5}, "session_expires", "must be an integer, not number 120.5"},
			{"PATCH", path, map[string]any{"session_timers": 1}, "session_timers", "must be true or false, not number"},
		} {
			st, m := h.call(opToken, c.method, c.path, c.body)
			if e := errOf(m); st != 400 || e["field"] != c.field || e["message"] != c.msg {
				t.Errorf("%s: %s %v: got %d %v, want 400 %s: %s", k.kind, c.method, c.body, st, m, c.field, c.msg)
			}
		}
		if got, want := timers(h.op(200, "GET", path, nil)), [2]any{true, float64(600)}; got != want {
			t.Errorf("%s after refused PATCHes: %v, want %v (unchanged)", k.kind, got, want)
		}
		if st, m := h.call(opToken, "GET", k.coll, nil); st != 200 || len(m["items"].([]any)) != 2 {
			t.Errorf("%s: refused creates left %d %v, want the 2 created", k.kind, st, m)
		}
	}

	acc := h.op(201, "POST", "/accounts", map[string]any{"name": "Nested",
		"ip_endpoints": []map[string]any{{"address": "198.51.100.1"}, {"address": "198.51.100.2", "session_timers": false, "session_expires": 300}},
		"sip_users":    []map[string]any{{"username": "2001"}}})
	for _, c := range []struct {
		field string
		i     int
		want  [2]any
	}{{"ip_endpoints", 0, def}, {"ip_endpoints", 1, [2]any{false, float64(300)}}, {"sip_users", 0, def}} {
		if got := timers(acc[c.field].([]any)[c.i].(map[string]any)); got != c.want {
			t.Errorf("new account's %s[%d]: %v, want %v", c.field, c.i, got, c.want)
		}
	}
	st, m := h.call(opToken, "POST", "/accounts", map[string]any{"name": "Bad",
		"sip_users": []map[string]any{{"username": "3001", "session_expires": 89}}})
	if e := errOf(m); st != 400 || e["field"] != "sip_users[0].session_expires" {
		t.Errorf("new account with a SIP user's session_expires 89: got %d %v, want 400 naming sip_users[0].session_expires", st, m)
	}
	schemas := h.op(200, "GET", "/openapi.json", nil)["components"].(map[string]any)["schemas"].(map[string]any)
	for _, name := range []string{"IPEndpoint", "SIPUser"} {
		props := schemas[name].(map[string]any)["properties"].(map[string]any)
		got := [2]any{props["session_timers"].(map[string]any)["default"], props["session_expires"].(map[string]any)["default"]}
		if got != def {
			t.Errorf("OpenAPI %s: session timer defaults %v, want %v", name, got, def)
		}
	}
}

// fileContains reports whether the database files hold s anywhere.
func (h *harness) fileContains(s string) bool {
	for _, p := range []string{h.dbPath, h.dbPath + "-wal"} {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

func TestPasswordsAreNeverStoredOrShownAgain(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 0)
	m := h.op(201, "POST", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "1001"})
	gen, _ := m["password"].(string)
	if len(gen) < 20 {
		t.Fatalf("generated password %q: want at least 20 characters", gen)
	}
	u := id(m)
	chosen := "my-chosen-password-42"
	m2 := h.op(201, "POST", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "1002", "password": chosen})
	if _, ok := m2["password"]; ok {
		t.Errorf("a chosen password was echoed back: %v", m2)
	}
	reset := h.op(200, "POST", fmt.Sprintf("/sip-users/%d/password", u), nil)
	newPw, _ := reset["password"].(string)
	if len(newPw) < 20 || newPw == gen {
		t.Errorf("reset password %q: want a new one of at least 20 characters", newPw)
	}
	egress := "egress-secret-pass"
	ep := h.op(201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", a), map[string]any{"address": "192.0.2.1", "direction": "receives", "username": "trunk", "password": egress})
	// A sending endpoint has no use for egress credentials: refused.
	if st, body := h.call(opToken, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", a), map[string]any{"address": "192.0.2.2", "username": "trunk"}); st != 400 ||
		!strings.Contains(fmt.Sprint(body), "field:username") {
		t.Errorf("egress username on a sending endpoint: %d %v; want 400 naming username", st, body)
	}
	if _, ok := ep["password"]; ok || ep["password_set"] != true {
		t.Errorf("endpoint response: password must be absent and password_set true: %v", ep)
	}
	for _, path := range []string{fmt.Sprintf("/sip-users/%d", u), "/sip-users", fmt.Sprintf("/ip-endpoints/%d", id(ep)), "/ip-endpoints"} {
		_, body := h.call(opToken, "GET", path, nil)
		raw, _ := json.Marshal(body)
		for _, pw := range []string{gen, newPw, chosen, egress} {
			if strings.Contains(string(raw), pw) {
				t.Errorf("GET %s shows a password in clear", path)
			}
		}
	}
	// PATCH of other fields keeps the stored egress password.
	ep2 := h.op(200, "PATCH", fmt.Sprintf("/ip-endpoints/%d", id(ep)), map[string]any{"channels": 5})
	if ep2["password_set"] != true || ep2["channels"].(float64) != 5 || ep2["address"] != "192.0.2.1" {
		t.Errorf("PATCH lost fields: %v", ep2)
	}
	for _, pw := range []string{gen, newPw, chosen, egress} {
		if h.fileContains(pw) {
			t.Errorf("the database holds password %q in clear", pw)
		}
	}
}

func TestAccountTokensSeeOnlyTheirAccount(t *testing.T) {
	h := newHarness(t)
	a, b := h.account("Acme", 10), h.account("Beta", 0)
	bUser := id(h.op(201, "POST", fmt.Sprintf("/accounts/%d/sip-users", b), map[string]any{"username": "b1"}))
	bEp := id(h.op(201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", b), map[string]any{"address": "192.0.2.99"}))
	h.op(201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", a), map[string]any{"address": "192.0.2.1"})
	tok := h.op(201, "POST", "/tokens", map[string]any{"name": "portal", "scope": "account", "account_id": a})["token"].(string)

	for _, tt := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", fmt.Sprintf("/accounts/%d", a), nil, 200},
		{"GET", fmt.Sprintf("/accounts/%d", b), nil, 404},
		{"GET", fmt.Sprintf("/sip-users/%d", bUser), nil, 404},
		{"PATCH", fmt.Sprintf("/sip-users/%d", bUser), map[string]any{"channels": 1}, 404},
		{"DELETE", fmt.Sprintf("/ip-endpoints/%d", bEp), nil, 404},
		{"GET", fmt.Sprintf("/accounts/%d/sip-users", b), nil, 404},
		{"POST", fmt.Sprintf("/accounts/%d/sip-users", b), map[string]any{"username": "x1"}, 404},
		{"POST", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "a1"}, 201},
		{"POST", "/accounts", map[string]any{"name": "Mine"}, 403},
		{"PATCH", fmt.Sprintf("/accounts/%d", a), map[string]any{"channels": 1000}, 403},
		{"PATCH", fmt.Sprintf("/accounts/%d", a), map[string]any{"name": "Acme Ltd"}, 200},
		{"GET", "/firewall/bans", nil, 403},
		{"POST", "/tokens", map[string]any{"name": "x", "scope": "operator"}, 403},
	} {
		st, m := h.call(tok, tt.method, tt.path, tt.body)
		if st != tt.want {
			t.Errorf("account token %s %s: status %d, want %d (%v)", tt.method, tt.path, st, tt.want, m)
		}
	}
	for _, path := range []string{"/accounts", "/ip-endpoints", "/sip-users"} {
		_, m := h.call(tok, "GET", path, nil)
		for _, it := range m["items"].([]any) {
			o := it.(map[string]any)
			if got := o["account_id"]; got != nil && int64(got.(float64)) != a {
				t.Errorf("account token GET %s shows account %v's object", path, got)
			}
			if path == "/accounts" && id(o) != a {
				t.Errorf("account token GET /accounts shows account %d", id(o))
			}
		}
		if m["total"].(float64) < 1 {
			t.Errorf("account token GET %s: total %v, want its own objects", path, m["total"])
		}
	}
	if st, _ := h.call("", "GET", "/accounts", nil); st != 401 {
		t.Errorf("no token: status %d, want 401", st)
	}
	if st, _ := h.call("swd_nope", "GET", "/accounts", nil); st != 401 {
		t.Errorf("unknown token: status %d, want 401", st)
	}
}

func TestListPaginationAndFilters(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 5; i++ {
		h.account(fmt.Sprintf("Customer %d", i), 0)
	}
	h.account("Other", 0)
	m := h.op(200, "GET", "/accounts?limit=2&offset=2&name=customer", nil)
	items := m["items"].([]any)
	if m["total"].(float64) != 5 || len(items) != 2 || items[0].(map[string]any)["name"] != "Customer 2" {
		t.Errorf("page: total=%v items=%v", m["total"], items)
	}
	st, e := h.call(opToken, "GET", "/accounts?limit=abc", nil)
	if st != 400 || errOf(e)["field"] != "limit" {
		t.Errorf("bad limit: %d %v", st, e)
	}
}

func TestRewriteTestCall(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 0)
	ep := id(h.op(201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", a), map[string]any{"address": "192.0.2.1"}))
	rules := fmt.Sprintf("/ip-endpoints/%d/rewrites", ep)
	r1 := id(h.op(201, "POST", rules, map[string]any{"type": "destination", "regex": true, "match": `^0([1-9][0-9]+)$`, "replacement": "44$1", "order": 1}))
	r2 := id(h.op(201, "POST", rules, map[string]any{"type": "destination", "match": "00", "replacement": "", "order": 0}))
	h.op(201, "POST", rules, map[string]any{"type": "cli", "match": "+", "replacement": ""})
	for _, tt := range []struct {
		typ, in, out string
		rule         int64
	}{
		{"destination", "00442071234567", "442071234567", r2},
		{"destination", "02071234567", "442071234567", r1},
		{"destination", "442071234567", "442071234567", 0},
		{"cli", "+447700900123", "447700900123", -1},
	} {
		m := h.op(200, "POST", rules+"/test", map[string]any{"type": tt.typ, "input": tt.in})
		if m["output"] != tt.out {
			t.Errorf("%s %q: output %v, want %q", tt.typ, tt.in, m["output"], tt.out)
		}
		if tt.rule >= 0 {
			got, _ := m["rule_id"].(float64)
			if int64(got) != tt.rule {
				t.Errorf("%s %q: rule %v fired, want %d", tt.typ, tt.in, m["rule_id"], tt.rule)
			}
		}
	}
	st, m := h.call(opToken, "POST", rules, map[string]any{"type": "destination", "regex": true, "match": `^0(\d+)$`, "replacement": "44$2"})
	if st != 400 || errOf(m)["field"] != "replacement" {
		t.Errorf("replacement with a missing group: %d %v", st, m)
	}
	// The endpoint's dial pattern comes first, and the test call shows it.
	h.op(200, "PATCH", fmt.Sprintf("/ip-endpoints/%d", ep), map[string]any{"dial_pattern": "international"})
	m = h.op(200, "POST", rules+"/test", map[string]any{"type": "destination", "input": "+442071234567"})
	if m["dial_pattern"] != "international" || m["dialled"] != "442071234567" || m["output"] != "442071234567" {
		t.Errorf("test call through the dial pattern: %v", m)
	}
	m = h.op(200, "POST", rules+"/test", map[string]any{"type": "cli", "input": "+447700900123"})
	if _, ok := m["dial_pattern"]; ok {
		t.Errorf("the dial pattern shown for a CLI: %v", m)
	}
}

// effective returns the effective setting name of a SIP user's answer.
func effective(u map[string]any, name string) map[string]any {
	e, _ := u["effective"].(map[string]any)
	v, _ := e[name].(map[string]any)
	return v
}

// TestLiveProfiles: a SIP user takes what it leaves unset (absent or null)
// from its profile, an empty list is a value of its own, the answer shows
// each effective value and where it comes from, a profile's edit reaches its
// users, null gives a setting back to the profile, and a profile's edit that
// would take an account over its capacity is refused naming the account.
func TestLiveProfiles(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 10)
	p := id(h.op(201, "POST", "/profiles", map[string]any{"name": "softphones", "channels": 2, "nat_ping": "enabled", "restricted_codecs": []string{"g729"}}))
	users := fmt.Sprintf("/accounts/%d/sip-users", a)
	u := h.op(201, "POST", users, map[string]any{"username": "1001", "profile_id": p, "cps": 3})
	if u["channels"] != nil || u["nat_ping"] != nil || u["cps"] != float64(3) {
		t.Errorf("own settings of a user from a profile: %v", u)
	}
	for name, want := range map[string]string{"channels": "2 profile", "nat_ping": "enabled profile", "cps": "3 user",
		"restricted_codecs": "[G729] profile", "protocol": "udp profile"} {
		e := effective(u, name)
		if got := fmt.Sprint(e["value"], " ", e["from"]); got != want {
			t.Errorf("effective %s: %s, want %s", name, got, want)
		}
	}
	uid := id(u)
	empty := h.op(201, "POST", users, map[string]any{"username": "1002", "profile_id": p, "restricted_codecs": []string{}})
	if e := effective(empty, "restricted_codecs"); fmt.Sprint(e["value"], " ", e["from"]) != "[] user" {
		t.Errorf("an empty codec list is the user's own value: %v", e)
	}

	// The profile's edit reaches its user; its own cps stays.
	h.op(200, "PATCH", fmt.Sprintf("/profiles/%d", p), map[string]any{"channels": 3, "cps": 9})
	u = h.op(200, "GET", fmt.Sprintf("%s/%d", users, uid), nil)
	if effective(u, "channels")["value"] != float64(3) || effective(u, "cps")["value"] != float64(3) {
		t.Errorf("after the profile's edit: %v", u["effective"])
	}
	// Own value, then null: back to the profile's.
	u = h.op(200, "PATCH", fmt.Sprintf("%s/%d", users, uid), map[string]any{"channels": 1})
	if fmt.Sprint(effective(u, "channels")) != "map[from:user value:1]" {
		t.Errorf("own channels: %v", effective(u, "channels"))
	}
	u = h.op(200, "PATCH", fmt.Sprintf("%s/%d", users, uid), map[string]any{"channels": nil, "cps": nil})
	if fmt.Sprint(effective(u, "channels")) != "map[from:profile value:3]" || fmt.Sprint(effective(u, "cps")) != "map[from:profile value:9]" {
		t.Errorf("after null: %v", u["effective"])
	}
	// Both users take 3 channels of 10; 5 each would be 10, 6 each 12.
	h.op(200, "PATCH", fmt.Sprintf("/profiles/%d", p), map[string]any{"channels": 5})
	st, m := h.call(opToken, "PATCH", fmt.Sprintf("/profiles/%d", p), map[string]any{"channels": 6})
	if e := errOf(m); st != 409 || e["code"] != "no_capacity" || !strings.Contains(fmt.Sprint(e["message"]), `account "Acme"`) {
		t.Errorf("a profile edit beyond an account's capacity: %d %v, want 409 no_capacity naming the account", st, m)
	}
	if got := h.op(200, "GET", fmt.Sprintf("/profiles/%d", p), nil)["channels"]; got != float64(5) {
		t.Errorf("the refused edit changed the profile: %v channels", got)
	}
	// Deleting the profile leaves its users with the values that applied, as their own.
	h.op(204, "DELETE", fmt.Sprintf("/profiles/%d", p), nil)
	u = h.op(200, "GET", fmt.Sprintf("%s/%d", users, uid), nil)
	if u["profile_id"] != nil || u["channels"] != float64(5) || fmt.Sprint(effective(u, "nat_ping")) != "map[from:user value:enabled]" {
		t.Errorf("a user of a deleted profile: %v", u)
	}
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	h := newHarness(t)
	doc := h.op(200, "GET", "/openapi.json", nil)
	paths := doc["paths"].(map[string]any)
	s := New(Options{Service: provision.New(nil, provision.Options{}), AdminToken: "x"})
	for _, rt := range s.routes {
		p, ok := paths[rt.path].(map[string]any)
		if !ok || p[strings.ToLower(rt.method)] == nil {
			t.Errorf("%s %s is served but not in the OpenAPI document", rt.method, rt.path)
		}
	}
	for _, want := range []string{"/api/v1/accounts", "/api/v1/accounts/{aid}/ip-endpoints", "/api/v1/sip-users/{id}/password",
		"/api/v1/ip-endpoints/{oid}/rewrites/test", "/api/v1/firewall/bans", "/api/v1/tokens", "/api/v1/profiles", "/api/v1/accounts/{aid}/dids", "/api/v1/accounts/{aid}/cli-patterns", "/api/v1/ip-endpoints", "/api/v1/sip-users"} {
		if paths[want] == nil {
			t.Errorf("OpenAPI lacks %s", want)
		}
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	ep := schemas["IPEndpoint"].(map[string]any)["properties"].(map[string]any)
	for _, f := range []string{"address", "direction", "tech_prefix", "restricted_codecs", "password"} {
		if ep[f] == nil {
			t.Errorf("IPEndpoint schema lacks %s", f)
		}
	}
	if ep["password_sealed"] != nil || ep["PasswordSealed"] != nil {
		t.Error("IPEndpoint schema exposes the sealed password")
	}
}

func TestTokenRename(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 0)
	tok := h.op(201, "POST", "/tokens", map[string]any{"name": "portal", "scope": "account", "account_id": a})
	secretStr := tok["token"].(string)
	m := h.op(200, "PATCH", fmt.Sprintf("/tokens/%d", id(tok)), map[string]any{"name": "billing portal"})
	if m["name"] != "billing portal" || m["token"] != nil {
		t.Errorf("renamed token: %v", m)
	}
	if st, _ := h.call(secretStr, "GET", fmt.Sprintf("/accounts/%d", a), nil); st != 200 {
		t.Errorf("a renamed token stopped working: %d", st)
	}
	st, e := h.call(opToken, "PATCH", fmt.Sprintf("/tokens/%d", id(tok)), map[string]any{"scope": "operator"})
	if st != 400 || errOf(e)["field"] != "scope" {
		t.Errorf("scope change: %d %v, want 400 naming scope", st, e)
	}
}

// TestSettingsDocumented: every writable field of accounts, IP endpoints,
// SIP users and profiles in the OpenAPI document has a row in
// docs/settings.md saying what it does (no inert field arrives unnoticed).
func TestSettingsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "settings.md"))
	if err != nil {
		t.Fatal(err)
	}
	readOnly := map[string]bool{"id": true, "account_id": true, "realm": true, "created_at": true, "updated_at": true,
		"password_set": true, "voicemail.pin_set": true, "effective": true}
	h := newHarness(t)
	schemas := h.op(200, "GET", "/openapi.json", nil)["components"].(map[string]any)["schemas"].(map[string]any)
	for _, name := range []string{"Account", "IPEndpoint", "SIPUser", "Profile"} {
		start := bytes.Index(doc, []byte("(`"+name+"`)"))
		if start < 0 {
			t.Errorf("docs/settings.md has no section (`%s`)", name)
			continue
		}
		section := doc[start:]
		if end := bytes.Index(section[1:], []byte("\n## ")); end >= 0 {
			section = section[:end+1]
		}
		documented := map[string]bool{}
		for _, line := range strings.Split(string(section), "\n") {
			if first, _, ok := strings.Cut(strings.TrimPrefix(line, "| "), " |"); ok && strings.HasPrefix(line, "| `") {
				for _, f := range regexp.MustCompile("`([a-z_.]+)`").FindAllStringSubmatch(first, -1) {
					documented[f[1]] = true
				}
			}
		}
		var walk func(prefix string, props map[string]any)
		walk = func(prefix string, props map[string]any) {
			for f, v := range props {
				if readOnly[prefix+f] {
					continue
				}
				if sub, ok := v.(map[string]any)["properties"].(map[string]any); ok {
					walk(prefix+f+".", sub)
					continue
				}
				if ref, ok := v.(map[string]any)["$ref"].(string); ok {
					walk(prefix+f+".", schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)["properties"].(map[string]any))
					continue
				}
				if !readOnly[prefix+f] && !documented[prefix+f] {
					t.Errorf("%s.%s is writable but has no row in docs/settings.md", name, prefix+f)
				}
			}
		}
		walk("", schemas[name].(map[string]any)["properties"].(map[string]any))
	}
}

// TestEveryFieldErrorListed: a change with several wrong fields keeps the
// first as code/field/message (and its status) and lists them all.
func TestEveryFieldErrorListed(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 0)
	h.op(201, "POST", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "1001"})
	st, m := h.call(opToken, "POST", fmt.Sprintf("/accounts/%d/sip-users", a), map[string]any{"username": "1001", "password": "short"})
	e := errOf(m)
	if st != 409 || e["field"] != "username" || e["code"] != "duplicate_user" {
		t.Fatalf("got %d %v, want 409 duplicate_user first", st, m)
	}
	var fields []string
	for _, x := range e["errors"].([]any) {
		fields = append(fields, fmt.Sprint(x.(map[string]any)["field"]))
	}
	if !cmp.Equal(fields, []string{"username", "password"}) {
		t.Errorf("errors fields = %v, want [username password]", fields)
	}
}
