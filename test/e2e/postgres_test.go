package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver, to make and drop the test schema
)

// TestServeOnPostgres runs the binary on PostgreSQL (SIPWARD_TEST_PG) in a
// fresh schema: provisioning works, and a second node on the same database
// sees the first one's changes and serves them.
func TestServeOnPostgres(t *testing.T) {
	dsn := os.Getenv("SIPWARD_TEST_PG")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SIPWARD_TEST_PG is not set in CI")
		}
		t.Skip("SIPWARD_TEST_PG not set")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := fmt.Sprintf("e2e_%x", rand.Uint64())
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	core := newUAS(t, "127.0.0.1")
	a := start(t, "", "--db", u.String(), "--admin-token", "e2e-admin-token-123", "--upstream", "sip:"+core.addr)
	a.Token = "e2e-admin-token-123"
	b := start(t, "", "--db", u.String(), "--admin-token", "e2e-admin-token-123", "--upstream", "sip:"+core.addr)
	b.Token = a.Token
	acc := id(a.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	a.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2"})
	// Node b learns the change from the shared database within a second.
	var st int
	waitFor(t, "node b to serve node a's endpoint", func() bool {
		st, _ = placeCall(t, b, "127.0.0.2", "441234567890", "442071234567")
		return st == 200
	})
	if st, m := b.api(t, "GET", fmt.Sprintf("/accounts/%d", acc), nil); st != 200 || m["name"] != "Acme" {
		t.Errorf("node b GET account: %d %v", st, m)
	}
	// Node b's audit trail holds the changes made through node a.
	trail := b.mustAPI(t, 200, "GET", fmt.Sprintf("/audit?account=%d", acc), nil)["items"].([]any)
	if len(trail) != 2 || trail[0].(map[string]any)["object"] != "ip_endpoint" || trail[1].(map[string]any)["object"] != "account" {
		t.Errorf("node b's audit trail of account %d: %v; want the account's and its endpoint's creation", acc, trail)
	}
}
