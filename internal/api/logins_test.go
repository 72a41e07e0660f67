package api

import (
	"fmt"
	"strings"
	"testing"
)

func TestLogins(t *testing.T) {
	h := newHarness(t)
	a, b := h.account("Acme", 10), h.account("Beta", 0)

	// The operator creates a login for any account; the password is
	// generated and shown once, the hash never.
	created := h.op(201, "POST", "/logins", map[string]any{"username": "Portal-A", "account_id": a})
	if created["username"] != "portal-a" || created["scope"] != "account" || len(created["password"].(string)) != 24 {
		t.Errorf("created login: %v", created)
	}
	la := id(created)
	got := h.op(200, "GET", fmt.Sprintf("/logins/%d", la), nil)
	for _, k := range []string{"password", "hash", "Hash"} {
		if _, ok := got[k]; ok {
			t.Errorf("GET login shows %q: %v", k, got)
		}
	}
	lb := id(h.op(201, "POST", "/logins", map[string]any{"username": "portal-b", "account_id": b, "password": "b's long password"}))
	op := id(h.op(201, "POST", "/logins", map[string]any{"username": "ops"}))
	st, m := h.call(opToken, "POST", "/logins", map[string]any{"username": "PORTAL-A", "account_id": b})
	if st != 409 || errOf(m)["field"] != "username" {
		t.Errorf("duplicate username: %d %v", st, m)
	}

	tok := h.op(201, "POST", "/tokens", map[string]any{"name": "portal", "scope": "account", "account_id": a})["token"].(string)
	for _, tt := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", fmt.Sprintf("/logins/%d", la), nil, 200},
		{"GET", fmt.Sprintf("/logins/%d", lb), nil, 404},
		{"GET", fmt.Sprintf("/logins/%d", op), nil, 404},
		{"PATCH", fmt.Sprintf("/logins/%d", lb), map[string]any{"password": "hijacked password"}, 404},
		{"DELETE", fmt.Sprintf("/logins/%d", lb), nil, 404},
		{"POST", fmt.Sprintf("/logins/%d/password", lb), nil, 404},
		{"POST", "/logins", map[string]any{"username": "x", "scope": "operator"}, 403},
		{"POST", "/logins", map[string]any{"username": "x", "account_id": b}, 404},
		{"POST", "/logins", map[string]any{"username": "a-second"}, 201},
		{"PATCH", fmt.Sprintf("/logins/%d", la), map[string]any{"scope": "operator"}, 400},
		{"PATCH", fmt.Sprintf("/logins/%d", la), map[string]any{"password": "a new long password"}, 200},
		{"POST", fmt.Sprintf("/logins/%d/password", la), nil, 200},
	} {
		st, m := h.call(tok, tt.method, tt.path, tt.body)
		if st != tt.want {
			t.Errorf("account token %s %s: status %d, want %d (%v)", tt.method, tt.path, st, tt.want, m)
		}
		if strings.Contains(fmt.Sprint(m), "argon2id") {
			t.Errorf("%s %s shows a hash: %v", tt.method, tt.path, m)
		}
	}
	_, m = h.call(tok, "GET", "/logins", nil)
	if m["total"].(float64) != 2 {
		t.Errorf("account token lists %v logins, want its 2", m["total"])
	}
	for _, it := range m["items"].([]any) {
		if o := it.(map[string]any); int64(o["account_id"].(float64)) != a {
			t.Errorf("account token lists another account's login %v", o)
		}
	}
	if m := h.op(200, "GET", "/logins?scope=operator", nil); m["total"].(float64) != 1 {
		t.Errorf("operator logins: %v", m)
	}
	h.op(204, "DELETE", fmt.Sprintf("/logins/%d", la), nil)
}
