// Package provision applies operator and customer changes to the
// configuration store and enforces the rules the product promises at save
// time: unique SIP usernames per realm ("Duplicate User Detected"), SIP users'
// channels (at least one each: no user is unlimited) within the account's
// capacity ("No channel capacity available for your account."), usernames inside the account's internal number block,
// valid addresses, ports, regexes and numbers with the field named, duplicate
// IP warnings and refusal of ambiguous IP endpoints, strong or generated
// passwords that are stored only as HA1 digests, and sealed egress passwords.
//
// Every change runs its checks and its writes in one store.Update, which the
// store serialises across nodes, so a rule that held when checked still holds
// when the change commits. The REST API, the CLI (through the API) and the web
// UI all change configuration only through this package.
package provision

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/store"
)

// Caller is who asks for a change: the operator, or one account (the
// customer portal, an account-scoped API token).
type Caller struct {
	Operator  bool
	AccountID int64 // when !Operator
	TokenID   int64 // 0 for the operator token from config

	// Who the caller is, for the audit trail: Actor is "token:<name>",
	// "login:<username>" or "" (the operator token from the
	// configuration); Source the client's address; Via how the change
	// came ("api", "cli", "web").
	Actor, Source, Via string
}

// Operator is the all-seeing caller.
var Operator = Caller{Operator: true}

// sees reports whether the caller may see objects of account id.
func (c Caller) sees(accountID int64) bool { return c.Operator || c.AccountID == accountID }

// Options configure a Service.
type Options struct {
	Realm  string         // digest realm of new SIP users
	Sealer *secret.Sealer // seals egress passwords at rest
	Rand   io.Reader      // crypto/rand.Reader when nil
	Now    func() time.Time
	// Mailboxes keeps voicemail messages and greetings; nil: voicemail's
	// API answers that this store keeps none.
	Mailboxes store.Mailboxes
	// Banned, when set, is told of each ban an operator makes through
	// CreateBan, once, on the node that made it (the dashboard counts bans
	// with it).
	Banned func(now time.Time)
}

// Service applies changes through the store.
type Service struct {
	st     store.Store
	realm  string
	sealer *secret.Sealer
	rand   io.Reader
	now    func() time.Time
	vm     voicemail
	audit  store.AuditLog // nil: the store keeps no audit trail
	banned func(time.Time)
}

// New returns a Service on st.
func New(st store.Store, o Options) *Service {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	svc := &Service{st: st, realm: o.Realm, sealer: o.Sealer, rand: o.Rand, now: o.Now, banned: o.Banned}
	svc.vm.boxes = o.Mailboxes
	svc.audit, _ = st.(store.AuditLog)
	return svc
}

// Realm returns the digest realm new SIP users get.
func (s *Service) Realm() string { return s.realm }

// Sealer returns the key egress passwords are sealed with (nil when the
// Service was built without one): the B2BUA opens a password with it to
// answer a receives endpoint's challenge.
func (s *Service) Sealer() *secret.Sealer { return s.sealer }

// Store returns the underlying store (for read-only consumers such as the snapshot builder).
func (s *Service) Store() store.Store { return s.st }

// storeErr turns store sentinels into provisioning errors; other errors pass
// unchanged (they are technical failures).
func storeErr(what string, id int64, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return notFound(what, id)
	case errors.Is(err, store.ErrConflict):
		return &Error{Kind: Conflict, Code: "conflict", Message: fmt.Sprintf("%s conflicts with an existing one", what), Err: err}
	}
	return err
}

// account loads an account the caller may see, or NotFound.
func (s *Service) account(ctx context.Context, tx store.Tx, c Caller, id int64) (store.Account, error) {
	if !c.sees(id) {
		return store.Account{}, notFound("account", id)
	}
	a, err := tx.GetAccount(ctx, id)
	return a, storeErr("account", id, err)
}

// HA1 digests of a SIP password.
func ha1(username, realm, password string) (md5hex, sha256hex string) {
	m := md5.Sum([]byte(username + ":" + realm + ":" + password))
	s := sha256.Sum256([]byte(username + ":" + realm + ":" + password))
	return hex.EncodeToString(m[:]), hex.EncodeToString(s[:])
}

// page bounds a requested page.
func page(p store.Page) store.Page {
	if p.Limit <= 0 || p.Limit > 1000 {
		p.Limit = 100
	}
	if p.Offset < 0 {
		p.Offset = 0
	}
	return p
}
