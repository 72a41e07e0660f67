package provision

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// The audit trail. Every change this package makes runs in s.update, which
// hands fn an auditTx: a store.Tx whose writes of configuration objects
// also note who changed what, with a field-level diff of the object before
// and after. The notes are appended to the trail in the same transaction, so
// an entry exists exactly when its change commits. Secrets (passwords,
// PINs, egress credentials, digest HA1 values, token hashes) never reach a
// diff: a changed secret shows as store.AuditHidden → store.AuditChanged.

// Firewall is the caller fraud detection's bans are made as.
var Firewall = Caller{Operator: true, Actor: store.ActorFirewall, Via: store.ActorFirewall}

// system is the caller of changes sipward makes itself (first start).
var system = Caller{Operator: true, Actor: store.ActorSystem, Via: store.ActorSystem}

// actor returns who c is for the trail: its name and scope.
func (c Caller) actor() (name, scope string) {
	name = c.Actor
	if name == "" {
		name = "operator"
	}
	switch {
	case name == store.ActorFirewall || name == store.ActorSystem:
		return name, "system"
	case c.Operator:
		return name, string(store.ScopeOperator)
	}
	return name, string(store.ScopeAccount)
}

// update runs fn in one store.Update, recording its changes as c's.
func (s *Service) update(ctx context.Context, c Caller, fn func(tx store.Tx) error) error {
	return s.updateAs(ctx, c, "", fn)
}

// updateAs is update where an update of an object is recorded as action
// (reset_password, reset_pin) rather than "update".
func (s *Service) updateAs(ctx context.Context, c Caller, action string, fn func(tx store.Tx) error) error {
	return s.st.Update(ctx, func(tx store.Tx) error {
		a := &auditTx{Tx: tx, by: c, updateAction: action}
		if err := fn(a); err != nil {
			return err
		}
		name, scope := c.actor()
		at := s.now().UTC()
		for i := range a.entries {
			e := &a.entries[i]
			e.Time, e.Actor, e.ActorScope, e.Source, e.Via = at, name, scope, c.Source, c.Via
			if e.Via == "" {
				e.Via = "api"
			}
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// record appends e, a change c made outside a configuration transaction
// (a mailbox's messages and greeting are live state), once it is made.
func (s *Service) record(ctx context.Context, c Caller, e store.AuditEntry) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		tx.(*auditTx).entries = append(tx.(*auditTx).entries, e)
		return nil
	})
}

// auditTx is a store.Tx that notes the configuration writes made through it.
type auditTx struct {
	store.Tx
	by           Caller
	updateAction string
	entries      []store.AuditEntry
}

// kind says how the trail sees one type of object.
type kind[T any] struct {
	object  string
	get     func(store.Tx, context.Context, int64) (T, error)
	id      func(*T) int64
	account func(ctx context.Context, tx store.Tx, v *T) *int64
	secrets func(*T) map[string]string // secret fields by the name the diff shows; "" = none set
	create  string                     // action of a create; "" = create
	del     string                     // action of a delete; "" = delete
}

func (k *kind[T]) action(a, def string) string {
	if a != "" {
		return a
	}
	return def
}

func (a *auditTx) note(action, object string, id int64, account *int64, before, after map[string]any) {
	ch := diff(before, after)
	if action == store.AuditUpdate && len(ch) == 0 {
		return // saved as it was: nothing changed
	}
	a.entries = append(a.entries, store.AuditEntry{Action: action, Object: object, ObjectID: id, AccountID: account, Changes: ch})
}

func auditCreate[T any](ctx context.Context, a *auditTx, k *kind[T], v *T, write func(context.Context, *T) error) error {
	if err := write(ctx, v); err != nil {
		return err
	}
	a.note(k.action(k.create, store.AuditCreate), k.object, k.id(v), k.account(ctx, a.Tx, v), nil, view(v, k.secrets))
	return nil
}

func auditUpdate[T any](ctx context.Context, a *auditTx, k *kind[T], v *T, write func(context.Context, *T) error) error {
	before, err := k.get(a.Tx, ctx, k.id(v))
	if err != nil {
		return write(ctx, v) // the store names the missing object
	}
	if err := write(ctx, v); err != nil {
		return err
	}
	a.note(k.action(a.updateAction, store.AuditUpdate), k.object, k.id(v), k.account(ctx, a.Tx, v),
		view(&before, k.secrets), view(v, k.secrets))
	return nil
}

func auditDelete[T any](ctx context.Context, a *auditTx, k *kind[T], id int64, del func(context.Context, int64) error) error {
	before, err := k.get(a.Tx, ctx, id)
	if err != nil {
		return del(ctx, id)
	}
	account := k.account(ctx, a.Tx, &before)
	if err := del(ctx, id); err != nil {
		return err
	}
	a.note(k.action(k.del, store.AuditDelete), k.object, id, account, view(&before, k.secrets), nil)
	return nil
}

// Fields the trail leaves out: identities and times it keeps apart, values
// derived from others, and write-only clear secrets.
var unaudited = map[string]bool{
	"id": true, "created_at": true, "updated_at": true, "password_set": true, "voicemail.pin_set": true,
	"password": true, "voicemail.pin": true, "token": true,
}

// secretValue is a secret's stored form (a hash, a sealed value), kept in a
// view only to compare.
type secretValue string

// view is v as the trail sees it: its JSON fields, nested ones dotted,
// without the unaudited ones, with its secrets' stored forms.
func view[T any](v *T, secrets func(*T) map[string]string) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return map[string]any{}
	}
	out := map[string]any{}
	flatten("", m, out)
	if secrets != nil {
		for name, val := range secrets(v) {
			if val != "" {
				out[name] = secretValue(val)
			}
		}
	}
	return out
}

func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		key := prefix + k
		if key == "effective" || unaudited[key] {
			continue // effective settings are derived from the user's own and its profile's
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key+".", sub, out)
			continue
		}
		if v == zeroTime {
			v = nil // a time not set ("never expires") reads as none
		}
		out[key] = v
	}
}

// zeroTime is the zero time.Time as JSON.
const zeroTime = "0001-01-01T00:00:00Z"

// diff returns the fields whose values differ between before and after
// (either may be nil: a create, a delete), secrets redacted.
func diff(before, after map[string]any) map[string]store.FieldChange {
	ch := map[string]store.FieldChange{}
	for k, b := range before {
		if a, ok := after[k]; (!ok && b != nil) || (ok && !reflect.DeepEqual(a, b)) {
			ch[k] = redact(b, after[k])
		}
	}
	for k, a := range after {
		if _, ok := before[k]; !ok && a != nil {
			ch[k] = redact(nil, a)
		}
	}
	return ch
}

func redact(before, after any) store.FieldChange {
	_, sb := before.(secretValue)
	_, sa := after.(secretValue)
	if !sb && !sa {
		return store.FieldChange{Before: before, After: after}
	}
	var c store.FieldChange
	if sb {
		c.Before = store.AuditHidden
	}
	switch {
	case sa && sb:
		c.After = store.AuditChanged
	case sa:
		c.After = store.AuditSet
	}
	return c
}

// accountOf is the account of objects that name it.
func accountOf(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// ListAudit lists the audit trail, newest first. An account's callers see
// only their account's entries, none made by the firewall or sipward
// itself, and not the source address of the operator's.
func (s *Service) ListAudit(ctx context.Context, c Caller, f store.AuditFilter) ([]store.AuditEntry, int, error) {
	if s.audit == nil {
		return nil, 0, errors.New("this store keeps no audit trail")
	}
	f.Page = page(f.Page)
	if !c.Operator {
		if f.AccountID != 0 && f.AccountID != c.AccountID {
			return []store.AuditEntry{}, 0, nil
		}
		f.AccountID, f.NoSystem = c.AccountID, true
	}
	items, total, err := s.audit.ListAudit(ctx, f)
	if !c.Operator {
		for i := range items {
			if items[i].ActorScope != string(store.ScopeAccount) {
				items[i].Source = "" // the operator's addresses are not the customer's to see
			}
		}
	}
	return items, total, err
}

// PruneAudit deletes the audit entries older than retention at now (0:
// none) and returns how many.
func (s *Service) PruneAudit(ctx context.Context, now time.Time, retention time.Duration) (int64, error) {
	if s.audit == nil || retention <= 0 {
		return 0, nil
	}
	return s.audit.PruneAudit(ctx, now.Add(-retention))
}

// ExpireBans lifts the bans whose time is up at now, recorded in the trail
// as unbans by the firewall, and returns how many it lifted. (An expired ban
// no longer applies anyway; this removes it from the lists and the
// snapshot.)
func (s *Service) ExpireBans(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.update(ctx, Firewall, func(tx store.Tx) error {
		n = 0
		bans, _, err := tx.ListBans(ctx, store.BanFilter{})
		if err != nil {
			return err
		}
		for _, b := range bans {
			if b.ExpiresAt.IsZero() || b.ExpiresAt.After(now) {
				continue
			}
			if err := tx.DeleteBan(ctx, b.ID); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
