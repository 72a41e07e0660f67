package store

import (
	"context"
	"time"
)

// AuditEntry is one change to the configuration, as the audit trail keeps
// it: who made it (Actor, ActorScope, Source, Via), what (Object, ObjectID,
// Action, Changes) and when. Entries are appended in the same transaction
// as the change they describe and never edited; PruneAudit removes them by
// age only.
type AuditEntry struct {
	ID   int64     `json:"id"`
	Time time.Time `json:"time"`
	// Actor names who made the change: "token:<name>", "login:<username>",
	// "operator" (the token from the configuration), "firewall" (fraud
	// detection) or "system" (sipward itself, at first start).
	Actor string `json:"actor"`
	// ActorScope is "operator", "account" (a customer's token or sign-in) or
	// "system" (firewall, system).
	ActorScope string `json:"actor_scope"`
	// AccountID is the account the changed object belongs to; nil for
	// objects of no account (profiles, bans, operator tokens and logins).
	AccountID *int64 `json:"account_id"`
	Source    string `json:"source"` // the client's address; "" for firewall and system
	Via       string `json:"via"`    // "api", "cli", "web", "firewall" or "system"
	// Action is one of the Audit* actions.
	Action   string `json:"action"`
	Object   string `json:"object"` // the API's kind name: "ip_endpoint", "sip_user", …
	ObjectID int64  `json:"object_id"`
	// Changes are the fields that changed, dotted for nested ones
	// ("voicemail.enabled"). A secret's value never appears: see
	// AuditHidden and AuditChanged.
	Changes map[string]FieldChange `json:"changes"`
}

// FieldChange is one field's value before and after a change (nil before
// a create, nil after a delete).
type FieldChange struct {
	Before any `json:"before"`
	After  any `json:"after"`
}

// Audit actions.
const (
	AuditCreate        = "create"
	AuditUpdate        = "update"
	AuditDelete        = "delete"
	AuditResetPassword = "reset_password"
	AuditResetPIN      = "reset_pin"
	AuditBan           = "ban"
	AuditUnban         = "unban"
)

// What a secret field shows in Changes: AuditHidden for its old value and
// AuditChanged for its new one (AuditSet when it had none).
const (
	AuditHidden  = "hidden"
	AuditChanged = "changed"
	AuditSet     = "set"
)

// Actors that are not a person or a token.
const (
	ActorFirewall = "firewall"
	ActorSystem   = "system"
)

// AuditFilter filters ListAudit. Zero fields do not filter. Entries come
// newest first.
type AuditFilter struct {
	Page
	Object    string // kind name
	ObjectID  int64  // with Object
	AccountID int64
	Actor     string // case-insensitive substring of the actor
	Action    string
	Since     time.Time // at or after
	Until     time.Time // before
	// NoSystem leaves out entries by firewall and system (what an
	// account's own callers may not see).
	NoSystem bool
}

// AuditLog reads and prunes the audit trail. Entries are written only by
// Tx.AppendAudit, inside the Update that makes the change.
type AuditLog interface {
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, int, error)
	// PruneAudit deletes the entries older than before and returns how
	// many it deleted.
	PruneAudit(ctx context.Context, before time.Time) (int64, error)
}
