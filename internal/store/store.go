// Package store defines sipward's configuration model (accounts, IP endpoints,
// SIP users, CLI patterns, DIDs, rewrite rules, profiles, firewall bans, API
// tokens) and the Store contract its implementations meet.
//
// The store holds configuration only. It enforces uniqueness with constraints
// but not the product rules (channel capacity, number blocks, duplicate IPs):
// those live in package provision, which runs them inside one Store.Update
// transaction so that they hold under concurrent writers and across nodes.
//
// Implementations: package store/sqlstore (SQLite by default, PostgreSQL for
// scale-out). Every implementation passes the conformance suite in
// store/storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Implementations wrap them with the culprit:
// fmt.Errorf("sip user %d: %w", id, store.ErrNotFound).
var (
	// ErrNotFound: no object with that ID (or key) exists.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a uniqueness constraint refused the write
	// (SIP username per realm, DID number, profile name, token hash).
	ErrConflict = errors.New("conflict")
	// ErrChangesPruned: the change log no longer reaches back to the
	// revision asked for (Tx.ChangesSince); read everything afresh.
	ErrChangesPruned = errors.New("changes pruned")
)

// Store is the configuration store.
//
// All writes happen in Update, which runs fn in one transaction that is
// serialised against every other Update on every node sharing the database
// (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock).
// So a rule checked by reading inside fn still holds when fn's writes commit.
// If fn returns an error the transaction is rolled back and the error returned
// unchanged. Each committed Update that wrote anything advances Revision and,
// in the same transaction, logs which objects it changed (Tx.ChangesSince).
//
// View runs fn in a read-only transaction with a consistent view.
type Store interface {
	Update(ctx context.Context, fn func(tx Tx) error) error
	View(ctx context.Context, fn func(tx Tx) error) error
	// Revision returns the configuration revision: it grows with every
	// committed write, so a node polls it to learn that its snapshot is stale.
	Revision(ctx context.Context) (int64, error)
	Close() error
}

// Page selects a window of a list. Limit 0 means no limit.
//
// Sort, when not empty, orders the list by one of the keys its List method
// documents (then by ID, in the same direction); Desc reverses it. A key
// the list does not know is an error, never a silent default.
type Page struct {
	Limit  int
	Offset int
	Sort   string
	Desc   bool
}

// Sort keys of the lists (Page.Sort). Text sorts ignore case.
var (
	AccountSorts  = []string{"name", "channels", "cps", "block", "created"}
	EndpointSorts = []string{"address", "direction", "protocol", "port", "channels", "cps", "tech_prefix", "cli_auth"}
	SIPUserSorts  = []string{"username", "channels", "cps", "protocol", "nat_ping", "voicemail"}
	CLISorts      = []string{"pattern", "kind"}
	DIDSorts      = []string{"number"}
	ProfileSorts  = []string{"name", "channels", "cps", "protocol", "nat_ping"}
	BanSorts      = []string{"address", "source", "reason", "since", "expires"} // expires: never-expiring last
	LoginSorts    = []string{"username", "created"}
	AuditSorts    = []string{"time"}
)

// AccountFilter filters ListAccounts. Zero fields do not filter.
type AccountFilter struct {
	Page
	Name string // case-insensitive substring of the name
}

// EndpointFilter filters ListEndpoints. Zero fields do not filter.
type EndpointFilter struct {
	Page
	AccountID int64
	Address   string // substring of the address
	Direction Direction
}

// SIPUserFilter filters ListSIPUsers. Zero fields do not filter.
type SIPUserFilter struct {
	Page
	AccountID int64
	Username  string // case-insensitive substring of the username
	ProfileID int64  // users of this profile
}

// CLIPatternFilter filters ListCLIPatterns.
type CLIPatternFilter struct {
	Page
	AccountID int64
}

// DIDFilter filters ListDIDs.
type DIDFilter struct {
	Page
	AccountID int64
	Number    string // substring of the number
	SIPUserID int64
}

// RewriteFilter filters ListRewriteRules; results are ordered by Order, then ID.
type RewriteFilter struct {
	Page
	OwnerKind OwnerKind
	OwnerID   int64
}

// ProfileFilter filters ListProfiles.
type ProfileFilter struct {
	Page
	Name string
}

// BanFilter filters ListBans.
type BanFilter struct {
	Page
	Address string    // substring of the address
	Source  BanSource // operator | detection
	// ActiveAt, when not zero, keeps only bans not expired at that time.
	ActiveAt time.Time
}

// TokenFilter filters ListTokens.
type TokenFilter struct {
	Page
	AccountID int64
}

// LoginFilter filters ListLogins. Zero fields do not filter.
type LoginFilter struct {
	Page
	AccountID int64
	Scope     TokenScope
	Username  string // case-insensitive substring of the username
}

// Tx is what a transaction can do. Lists return the page of items and the
// total count of items that match the filter (ignoring the page), ordered by
// ID unless the filter says otherwise; substring filters are
// case-insensitive. Create ignores a caller-set ID and sets ID (and
// CreatedAt/UpdatedAt where the type has them). Update replaces every stored
// field of the object with that ID except CreatedAt, which it keeps (and
// copies back). Get, Update and Delete of a missing ID return ErrNotFound; a
// Create or Update that refers to a missing parent returns ErrNotFound too.
// Deleting an account deletes everything that belongs to it. A SIP user's
// Create and Update resolve its Effective settings (store.Resolve with its
// profile); a profile's Update writes its new values through to the users
// that inherit them; deleting a profile clears its users' ProfileID and
// makes the values they inherited their own (nothing that applies changes). A failed call does not spoil the
// transaction: fn may go on after an ErrConflict. The store checks
// references exist, not that they belong to the same account (package
// provision does). SIP usernames are unique per realm, case-sensitively.
type Tx interface {
	CreateAccount(ctx context.Context, a *Account) error
	GetAccount(ctx context.Context, id int64) (Account, error)
	UpdateAccount(ctx context.Context, a *Account) error
	DeleteAccount(ctx context.Context, id int64) error
	ListAccounts(ctx context.Context, f AccountFilter) ([]Account, int, error)

	CreateEndpoint(ctx context.Context, e *IPEndpoint) error
	GetEndpoint(ctx context.Context, id int64) (IPEndpoint, error)
	UpdateEndpoint(ctx context.Context, e *IPEndpoint) error
	DeleteEndpoint(ctx context.Context, id int64) error
	ListEndpoints(ctx context.Context, f EndpointFilter) ([]IPEndpoint, int, error)

	CreateSIPUser(ctx context.Context, u *SIPUser) error
	GetSIPUser(ctx context.Context, id int64) (SIPUser, error)
	// GetSIPUserByName finds a user by realm and username (exact).
	GetSIPUserByName(ctx context.Context, realm, username string) (SIPUser, error)
	UpdateSIPUser(ctx context.Context, u *SIPUser) error
	DeleteSIPUser(ctx context.Context, id int64) error
	ListSIPUsers(ctx context.Context, f SIPUserFilter) ([]SIPUser, int, error)
	// SumSIPUserChannels returns the sum of Channels over the account's SIP
	// users, leaving out the user with ID exclude (0 leaves out none).
	SumSIPUserChannels(ctx context.Context, accountID, exclude int64) (int, error)

	CreateCLIPattern(ctx context.Context, p *CLIPattern) error
	GetCLIPattern(ctx context.Context, id int64) (CLIPattern, error)
	UpdateCLIPattern(ctx context.Context, p *CLIPattern) error
	DeleteCLIPattern(ctx context.Context, id int64) error
	ListCLIPatterns(ctx context.Context, f CLIPatternFilter) ([]CLIPattern, int, error)

	CreateDID(ctx context.Context, d *DID) error
	GetDID(ctx context.Context, id int64) (DID, error)
	UpdateDID(ctx context.Context, d *DID) error
	DeleteDID(ctx context.Context, id int64) error
	ListDIDs(ctx context.Context, f DIDFilter) ([]DID, int, error)

	CreateRewriteRule(ctx context.Context, r *RewriteRule) error
	GetRewriteRule(ctx context.Context, id int64) (RewriteRule, error)
	UpdateRewriteRule(ctx context.Context, r *RewriteRule) error
	DeleteRewriteRule(ctx context.Context, id int64) error
	ListRewriteRules(ctx context.Context, f RewriteFilter) ([]RewriteRule, int, error)

	CreateProfile(ctx context.Context, p *Profile) error
	GetProfile(ctx context.Context, id int64) (Profile, error)
	UpdateProfile(ctx context.Context, p *Profile) error
	DeleteProfile(ctx context.Context, id int64) error
	ListProfiles(ctx context.Context, f ProfileFilter) ([]Profile, int, error)

	CreateBan(ctx context.Context, b *Ban) error
	GetBan(ctx context.Context, id int64) (Ban, error)
	UpdateBan(ctx context.Context, b *Ban) error
	DeleteBan(ctx context.Context, id int64) error
	ListBans(ctx context.Context, f BanFilter) ([]Ban, int, error)

	CreateToken(ctx context.Context, t *Token) error
	GetToken(ctx context.Context, id int64) (Token, error)
	// GetTokenByHash finds a token by the hex SHA-256 of its secret.
	GetTokenByHash(ctx context.Context, hash string) (Token, error)
	UpdateToken(ctx context.Context, t *Token) error
	DeleteToken(ctx context.Context, id int64) error
	ListTokens(ctx context.Context, f TokenFilter) ([]Token, int, error)

	// ChangesSince returns the change log after revision rev: for each
	// Update committed at a revision > rev, one Change per object it
	// created, updated or deleted, in revision order (then by kind and ID).
	// It covers accounts, IP endpoints, SIP users, CLI patterns, DIDs,
	// rewrite rules, bans, profiles, tokens and logins, not settings. A
	// delete also logs the rows it deleted or changed through their
	// references (an account's endpoints, users, CLI patterns, DIDs, tokens,
	// logins and rules; a user's rules and the DIDs routed to it; an
	// endpoint's rules; the users of a profile). A rewrite rule's write also
	// logs its owner, before and after, as a change of that endpoint or SIP
	// user (its rules are part of its configuration). The log is pruned:
	// when it no longer reaches back to rev, ChangesSince returns
	// ErrChangesPruned and the caller reads everything afresh.
	ChangesSince(ctx context.Context, rev int64) ([]Change, error)

	// GetSetting and PutSetting keep small named values (secrets generated at
	// first start, such as the nonce HMAC key). GetSetting of a missing key
	// returns ErrNotFound.
	GetSetting(ctx context.Context, key string) (string, error)
	PutSetting(ctx context.Context, key, value string) error

	// Web UI sign-ins. Usernames are unique (case-sensitively: package
	// provision lowercases them); a duplicate gives ErrConflict. Deleting an
	// account deletes its logins.
	CreateLogin(ctx context.Context, l *Login) error
	GetLogin(ctx context.Context, id int64) (Login, error)
	// GetLoginByUsername finds a login by its username (exact).
	GetLoginByUsername(ctx context.Context, username string) (Login, error)
	UpdateLogin(ctx context.Context, l *Login) error
	DeleteLogin(ctx context.Context, id int64) error
	ListLogins(ctx context.Context, f LoginFilter) ([]Login, int, error)

	// AppendAudit appends e to the audit trail (setting e.ID, and e.Time
	// when zero) in this transaction, so an entry exists exactly when its
	// change commits. It does not advance Revision by itself.
	AppendAudit(ctx context.Context, e *AuditEntry) error
}

// Registration is a registrar binding kept so that registrations survive a
// restart. It is live state, not configuration: writing it does not advance
// Revision and does not go through Update.
type Registration struct {
	Username   string    `json:"username"`
	SIPUserID  int64     `json:"sip_user_id"`
	AccountID  int64     `json:"account_id"`
	Contact    string    `json:"contact"`   // Contact URI as registered
	Source     string    `json:"source"`    // ip:port the REGISTER came from
	Transport  string    `json:"transport"` // udp | tcp | tls
	Expires    time.Time `json:"expires"`
	Registered time.Time `json:"registered"`
	CallID     string    `json:"call_id"`
	CSeq       uint32    `json:"cseq"`
	UserAgent  string    `json:"user_agent,omitempty"`
	// LatencyMS is the round-trip time of the last NAT ping (0: never pinged).
	LatencyMS float64   `json:"latency_ms,omitempty"`
	LastPing  time.Time `json:"last_ping,omitempty"`
	// Node is the id of the node the binding was made through, and
	// NodeAddr that node's SIP address (host:port of its UDP listener): a
	// NAT-ed phone is reached through it. Both are empty for bindings made
	// by a node running alone (no Redis).
	Node     string `json:"node,omitempty"`
	NodeAddr string `json:"node_addr,omitempty"`
}

// Registrations keeps registrar bindings. (Username, Contact) is the key:
// saving an existing one replaces it. Load returns the bindings that have
// not expired at now.
type Registrations interface {
	SaveRegistration(ctx context.Context, r Registration) error
	DeleteRegistration(ctx context.Context, username, contact string) error
	LoadRegistrations(ctx context.Context, now time.Time) ([]Registration, error)
	// ApplyRegistrations deletes then saves, all in one transaction: the
	// registrar's periodic flush of what changed since the last one.
	ApplyRegistrations(ctx context.Context, saves []Registration, deletes []RegistrationKey) error
}

// RegistrationKey names one binding.
type RegistrationKey struct{ Username, Contact string }

// VoicemailMessage is one message left in a SIP user's mailbox. Its audio
// (a WAV file, 8 kHz 16-bit mono PCM) is kept beside it and read apart
// (Mailboxes.MessageAudio), so lists stay small.
type VoicemailMessage struct {
	ID         int64     `json:"id"`
	SIPUserID  int64     `json:"sip_user_id"`
	AccountID  int64     `json:"account_id"`
	Caller     string    `json:"caller"` // the caller's number (From user) as the B2BUA passed it
	Called     string    `json:"called"` // the number dialled
	CreatedAt  time.Time `json:"created_at"`
	DurationMS int64     `json:"duration_ms"`
	Read       bool      `json:"read"`
	Mail       MailState `json:"mail"`
}

// MailState is how mailing a message went.
type MailState struct {
	// Status: "none" (no address, or no SMTP server configured), "pending"
	// (queued or being retried), "sent", "failed" (gave up).
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error,omitempty"` // the last attempt's error
	SentAt   time.Time `json:"sent_at,omitzero"`
}

// Mail statuses of MailState.Status.
const (
	MailNone    = "none"
	MailPending = "pending"
	MailSent    = "sent"
	MailFailed  = "failed"
)

// MailboxUsage is what a mailbox holds, for its quota.
type MailboxUsage struct {
	Messages   int
	Unread     int
	DurationMS int64
}

// Mailboxes keeps voicemail messages and custom greetings. Like
// registrations they are live state, not configuration: writes are plain
// statements outside Update and do not advance Revision. Every node sharing
// the database sees every message. Deleting a SIP user deletes its messages
// and greeting. Methods taking userID act only on that user's messages: a
// message of another user is ErrNotFound.
type Mailboxes interface {
	// SaveMessage stores m with its audio, in the user's mailbox: it sets
	// m.ID (one set by the caller is ignored) and, when zero, CreatedAt. A
	// user that does not exist is ErrNotFound.
	SaveMessage(ctx context.Context, m *VoicemailMessage, wav []byte) error
	// ListMessages returns the user's messages in the order saved.
	ListMessages(ctx context.Context, userID int64) ([]VoicemailMessage, error)
	GetMessage(ctx context.Context, userID, id int64) (VoicemailMessage, error)
	MessageAudio(ctx context.Context, userID, id int64) ([]byte, error)
	SetMessageRead(ctx context.Context, userID, id int64, read bool) error
	DeleteMessage(ctx context.Context, userID, id int64) error
	// SetMailState records how mailing message id went.
	SetMailState(ctx context.Context, id int64, st MailState) error
	// PendingMail returns up to limit messages whose mail is pending, oldest
	// first (a restarted node resumes them).
	PendingMail(ctx context.Context, limit int) ([]VoicemailMessage, error)
	MailboxUsage(ctx context.Context, userID int64) (MailboxUsage, error)

	// PutGreeting stores the user's custom greeting (a WAV file), replacing
	// any; Greeting returns it, or ErrNotFound; DeleteGreeting removes it
	// (none is not an error).
	PutGreeting(ctx context.Context, userID int64, wav []byte) error
	Greeting(ctx context.Context, userID int64) ([]byte, error)
	DeleteGreeting(ctx context.Context, userID int64) error
}
