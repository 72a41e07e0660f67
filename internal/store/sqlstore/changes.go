package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sipward/sipward/internal/store"
)

// The change log (store.Tx.ChangesSince). Each write method records the
// objects it changed on its tx; Update inserts them, labelled with the new
// revision, in the transaction that bumps the revision. The log keeps the
// last logPolicy.keep revisions (pruned every logPolicy.every revisions),
// and an Update that changes more than logPolicy.maxPerUpdate objects (a
// bulk import) is not logged at all: it prunes the whole log instead, since
// whoever follows it reloads everything anyway. changes_start says where
// the log begins.

// logPolicy bounds the change log.
type logPolicy struct {
	keep         int64 // revisions kept
	every        int64 // prune when the revision is a multiple of every
	maxPerUpdate int   // more changes than this in one Update reset the log
}

var defaultLogPolicy = logPolicy{keep: 10_000, every: 100, maxPerUpdate: 50_000}

// changeKey is one logged object, before it has a revision.
type changeKey struct {
	kind store.ChangeKind
	id   int64
}

// record notes that the tx changed the object (kind, id).
func (t *tx) record(kind store.ChangeKind, id int64) {
	if t.logFull {
		return
	}
	if t.changes == nil {
		t.changes = make(map[changeKey]struct{})
	}
	t.changes[changeKey{kind, id}] = struct{}{}
	if len(t.changes) > t.policy.maxPerUpdate {
		t.logFull, t.changes = true, nil
	}
}

// recordAll notes every (kind, id) of keys.
func (t *tx) recordAll(keys []changeKey) {
	for _, k := range keys {
		t.record(k.kind, k.id)
	}
}

// selectKeys runs q, which selects (kind, id) rows, and returns them.
func (t *tx) selectKeys(ctx context.Context, q string, args ...any) ([]changeKey, error) {
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []changeKey
	for rows.Next() {
		var k changeKey
		if err := rows.Scan(&k.kind, &k.id); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// kindCol is the SQL literal of a change kind, for selectKeys queries.
func kindCol(k store.ChangeKind) string { return "'" + string(k) + "'" }

// logChanges writes what the tx recorded at revision rev and prunes the log;
// it runs inside Update, after the revision bump.
func (t *tx) logChanges(ctx context.Context, rev int64) error {
	if t.logFull {
		// Too many to be worth logging: the log restarts after rev.
		if _, err := t.tx.ExecContext(ctx, "DELETE FROM changes"); err != nil {
			return err
		}
		_, err := t.tx.ExecContext(ctx, t.d.rebind("UPDATE changes_start SET rev = ? WHERE id = 1"), rev)
		return err
	}
	keys := make([]changeKey, 0, len(t.changes))
	for k := range t.changes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b changeKey) int {
		return cmp.Or(strings.Compare(string(a.kind), string(b.kind)), cmp.Compare(a.id, b.id))
	})
	const batch = 500 // rows per INSERT
	for len(keys) > 0 {
		n := min(len(keys), batch)
		args := make([]any, 0, 3*n)
		for _, k := range keys[:n] {
			args = append(args, rev, string(k.kind), k.id)
		}
		q := "INSERT INTO changes (rev, kind, id) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", n), ", ")
		if _, err := t.tx.ExecContext(ctx, t.d.rebind(q), args...); err != nil {
			return err
		}
		keys = keys[n:]
	}
	if rev%t.policy.every != 0 || rev <= t.policy.keep {
		return nil
	}
	start := rev - t.policy.keep
	if _, err := t.tx.ExecContext(ctx, t.d.rebind("DELETE FROM changes WHERE rev <= ?"), start); err != nil {
		return err
	}
	_, err := t.tx.ExecContext(ctx, t.d.rebind("UPDATE changes_start SET rev = ? WHERE id = 1 AND rev < ?"), start, start)
	return err
}

func (t *tx) ChangesSince(ctx context.Context, rev int64) ([]store.Change, error) {
	var start int64
	if err := t.queryRow(ctx, "SELECT rev FROM changes_start WHERE id = 1").Scan(&start); err != nil {
		return nil, fmt.Errorf("changes since revision %d: read log start: %w", rev, err)
	}
	if rev < start {
		return nil, fmt.Errorf("changes since revision %d: the log starts after revision %d: %w", rev, start, store.ErrChangesPruned)
	}
	rows, err := t.query(ctx, "SELECT rev, kind, id FROM changes WHERE rev > ? ORDER BY rev, kind, id", rev)
	if err != nil {
		return nil, fmt.Errorf("changes since revision %d: %w", rev, err)
	}
	defer rows.Close()
	changes := []store.Change{}
	for rows.Next() {
		var c store.Change
		if err := rows.Scan(&c.Revision, &c.Kind, &c.ID); err != nil {
			return nil, fmt.Errorf("changes since revision %d: %w", rev, err)
		}
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("changes since revision %d: %w", rev, err)
	}
	return changes, nil
}
