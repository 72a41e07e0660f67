package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestQuickStart walks the README's quick start with the admin CLI: the
// token printed at first start, an account, an IP endpoint, a SIP user with a
// generated password shown once; then a restart keeps everything and prints
// no new token.
func TestQuickStart(t *testing.T) {
	dir := t.TempDir()
	n := start(t, dir)
	if n.Token == "" {
		t.Fatalf("no operator token printed at first start:\n%s", n.Log())
	}
	out, err := n.cli(t, "account", "create", "name=Acme", "channels=20")
	if err != nil || !regexp.MustCompile(`(?m)^1\s+Acme\s+20\s`).MatchString(out) {
		t.Fatalf("account create: %v\n%s", err, out)
	}
	out, err = n.cli(t, "endpoint", "create", "--account", "1", "address=203.0.113.7", "channels=10", "tech_prefix=123#")
	if err != nil || !strings.Contains(out, "203.0.113.7") {
		t.Fatalf("endpoint create: %v\n%s", err, out)
	}
	out, err = n.cli(t, "user", "create", "--account", "1", "username=1001", "channels=2")
	m := regexp.MustCompile(`Generated password \(shown once\): (\S+)`).FindStringSubmatch(out)
	if err != nil || m == nil || len(m[1]) < 20 {
		t.Fatalf("user create: want a generated password of 20+ characters: %v\n%s", err, out)
	}
	pw := m[1]
	out, err = n.cli(t, "user", "get", "1", "-o", "json")
	if err != nil || strings.Contains(out, pw) || !strings.Contains(out, `"username": "1001"`) {
		t.Fatalf("user get shows the password or fails: %v\n%s", err, out)
	}
	// The rules reach the CLI user with their exact message.
	out, err = n.cli(t, "user", "create", "--account", "1", "username=1001")
	if err == nil || !strings.Contains(out, "Duplicate User Detected") {
		t.Errorf("duplicate user through the CLI: err=%v\n%s", err, out)
	}
	out, err = n.cli(t, "user", "create", "--account", "1", "username=1002", "channels=19")
	if err == nil || !strings.Contains(out, "No channel capacity available for your account.") {
		t.Errorf("capacity through the CLI: err=%v\n%s", err, out)
	}
	// No unlimited SIP user to sidestep the capacity: 0 is refused, and a
	// user that names no channels holds one (2 + 17 + 1 = 20).
	out, err = n.cli(t, "user", "create", "--account", "1", "username=1002", "channels=0")
	if err == nil || !strings.Contains(out, "channels") || !strings.Contains(out, "at least 1 channel") {
		t.Errorf("a user with 0 channels through the CLI: err=%v\n%s", err, out)
	}
	if out, err = n.cli(t, "user", "create", "--account", "1", "username=1002", "channels=17"); err != nil {
		t.Fatalf("user 1002: %v\n%s", err, out)
	}
	if out, err = n.cli(t, "user", "create", "--account", "1", "username=1003"); err != nil {
		t.Fatalf("user 1003 without channels: %v\n%s", err, out)
	}
	out, err = n.cli(t, "user", "create", "--account", "1", "username=1004")
	if err == nil || !strings.Contains(out, "No channel capacity available for your account.") {
		t.Errorf("a user without channels in a full account: err=%v\n%s", err, out)
	}
	token := n.Token
	n.stop()

	// Restart on the same data: nothing lost, no new token.
	n2 := start(t, dir)
	if n2.Token != "" {
		t.Errorf("a second start printed a new token")
	}
	n2.Token = token
	out, err = n2.cli(t, "user", "list")
	if err != nil || !strings.Contains(out, "1001") {
		t.Errorf("after restart, user list: %v\n%s", err, out)
	}
	// No password in clear in the database files or the log.
	for _, f := range []string{"sipward.db", "sipward.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if strings.Contains(string(b), pw) {
			t.Errorf("%s holds the SIP password in clear", f)
		}
	}
	if strings.Contains(n.Log()+n2.Log(), pw) {
		t.Error("the log holds the SIP password")
	}
}

// TestBadFlagsExitNonZero: a configuration error is named and the process exits non-zero.
func TestBadFlagsExitNonZero(t *testing.T) {
	out, err := runBinary(t, "serve", "--log-level", "loud")
	if err == nil || !strings.Contains(out, `log-level: "loud"`) {
		t.Errorf("want a non-zero exit naming log-level, got %v: %s", err, out)
	}
}
