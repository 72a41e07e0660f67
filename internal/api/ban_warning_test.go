package api

import (
	"fmt"
	"strings"
	"testing"
)

// A ban covering an account's IP endpoint is created (201) with a warning
// naming the account and the endpoint.
func TestBanWarningNamesAccount(t *testing.T) {
	h := newHarness(t)
	a := h.account("Acme", 0)
	ep := id(h.op(201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", a), map[string]any{"address": "192.0.2.10"}))
	m := h.op(201, "POST", "/firewall/bans", map[string]any{"address": "192.0.2.0/24", "reason": "scan"})
	ws, _ := m["warnings"].([]any)
	if len(ws) != 1 || !strings.Contains(fmt.Sprint(ws[0]), fmt.Sprintf(`IP endpoint 192.0.2.10 (id %d) of account "Acme"`, ep)) ||
		!strings.Contains(fmt.Sprint(ws[0]), "ban_covers_endpoint") {
		t.Errorf("warnings = %v", ws)
	}
}
