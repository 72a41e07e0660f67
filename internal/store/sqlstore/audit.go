package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sipward/sipward/internal/store"
)

var _ store.AuditLog = (*Store)(nil)

// The audit trail: rows appended by Tx.AppendAudit inside the Update of the
// change they describe (without marking the transaction as a write, so an
// entry alone does not advance the revision), read by ListAudit and deleted
// only by PruneAudit.

var auditLog = &table[store.AuditEntry]{
	what: "audit entry",
	name: "audit_log",
	cols: []string{"time", "actor", "actor_scope", "account_id", "source", "via", "action", "object", "object_id", "changes"},
	args: func(e *store.AuditEntry) []any {
		changes, _ := json.Marshal(e.Changes) // values come from JSON: they marshal
		if e.Changes == nil {
			changes = []byte("{}")
		}
		return []any{e.Time, e.Actor, e.ActorScope, e.AccountID, e.Source, e.Via, e.Action, e.Object, e.ObjectID, string(changes)}
	},
	scan: func(sc scanner) (e store.AuditEntry, err error) {
		var account sql.NullInt64
		var at dbTime
		var changes string
		err = sc.Scan(&e.ID, &at, &e.Actor, &e.ActorScope, &account, &e.Source, &e.Via, &e.Action, &e.Object, &e.ObjectID, &changes)
		if err != nil {
			return e, err
		}
		e.Time, e.AccountID = time.Time(at), ptrOf(account)
		e.Changes = map[string]store.FieldChange{}
		if err := json.Unmarshal([]byte(changes), &e.Changes); err != nil {
			return e, fmt.Errorf("audit entry %d: changes: %w", e.ID, err)
		}
		return e, nil
	},
	id:    func(e *store.AuditEntry) *int64 { return &e.ID },
	sorts: map[string][]string{"time": {"time"}},
}

// AppendAudit appends e in this transaction. It sets e.ID, and e.Time when
// zero.
func (t *tx) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	if t.readOnly {
		return errReadOnly
	}
	if e.Time.IsZero() {
		e.Time = now()
	}
	e.Time = normTime(e.Time)
	q := "INSERT INTO audit_log (time, actor, actor_scope, account_id, source, via, action, object, object_id, changes) " +
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
	if err := t.queryRow(ctx, q, auditLog.args(e)...).Scan(&e.ID); err != nil {
		return fmt.Errorf("append audit entry for %s %d: %w", e.Object, e.ObjectID, err)
	}
	return nil
}

// ListAudit lists the entries f selects, newest first.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) (items []store.AuditEntry, total int, err error) {
	var w where
	w.add(f.Object != "", "object = ?", f.Object)
	w.add(f.Object != "" && f.ObjectID != 0, "object_id = ?", f.ObjectID)
	w.add(f.AccountID != 0, "account_id = ?", f.AccountID)
	w.contains("actor", f.Actor)
	w.add(f.Action != "", "action = ?", f.Action)
	w.add(!f.Since.IsZero(), "time >= ?", normTime(f.Since))
	w.add(!f.Until.IsZero(), "time < ?", normTime(f.Until))
	w.add(f.NoSystem, "actor_scope <> ?", "system")
	err = s.View(ctx, func(stx store.Tx) error {
		items, total, err = auditLog.list(ctx, stx.(*tx), &w, "id DESC", f.Page)
		return err
	})
	return items, total, err
}

// PruneAudit deletes the entries older than before: one plain statement,
// outside Update (the trail is not configuration).
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.d.rebind("DELETE FROM audit_log WHERE time < ?"), normTime(before))
	if err != nil {
		return 0, fmt.Errorf("prune audit entries before %s: %w", before.Format(time.RFC3339), err)
	}
	return res.RowsAffected()
}
