package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// Web UI sign-ins. The clear password has no column: only its hash.

var logins = &table[store.Login]{
	what: "login",
	kind: store.ChangeLogin,
	name: "logins",
	cols: []string{"username", "scope", "account_id", "hash", "created_at", "updated_at"},
	args: func(l *store.Login) []any {
		return []any{l.Username, string(l.Scope), l.AccountID, l.Hash, l.CreatedAt, l.UpdatedAt}
	},
	scan: func(sc scanner) (l store.Login, err error) {
		var account sql.NullInt64
		var created, updated dbTime
		err = sc.Scan(&l.ID, &l.Username, &l.Scope, &account, &l.Hash, &created, &updated)
		l.AccountID = ptrOf(account)
		l.CreatedAt, l.UpdatedAt = time.Time(created), time.Time(updated)
		return l, err
	},
	id:      func(l *store.Login) *int64 { return &l.ID },
	created: func(l *store.Login) *time.Time { return &l.CreatedAt },
	updated: func(l *store.Login) *time.Time { return &l.UpdatedAt },
	key:     func(l *store.Login) string { return fmt.Sprintf("login %q", l.Username) },
	sorts:   map[string][]string{"username": {"LOWER(username)"}, "created": {"created_at"}},
}

func (t *tx) CreateLogin(ctx context.Context, l *store.Login) error {
	return logins.insert(ctx, t, l)
}

func (t *tx) GetLogin(ctx context.Context, id int64) (store.Login, error) {
	return logins.get(ctx, t, id)
}

func (t *tx) GetLoginByUsername(ctx context.Context, username string) (store.Login, error) {
	return logins.getWhere(ctx, t, fmt.Sprintf("login %q", username), "username = ?", username)
}

func (t *tx) UpdateLogin(ctx context.Context, l *store.Login) error {
	return logins.update(ctx, t, l)
}

func (t *tx) DeleteLogin(ctx context.Context, id int64) error {
	return logins.delete(ctx, t, id)
}

func (t *tx) ListLogins(ctx context.Context, f store.LoginFilter) ([]store.Login, int, error) {
	var w where
	w.add(f.AccountID != 0, "account_id = ?", f.AccountID)
	w.add(f.Scope != "", "scope = ?", string(f.Scope))
	w.contains("username", f.Username)
	return logins.list(ctx, t, &w, "id", f.Page)
}
