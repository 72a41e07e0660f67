package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sipward/sipward/internal/store"
)

// errReadOnly is returned by writes inside View.
var errReadOnly = errors.New("write in a read-only transaction")

// tx is a store.Tx on one database/sql transaction.
type tx struct {
	tx       *sql.Tx
	d        *dialect
	readOnly bool
	wrote    bool // a statement changed at least one row

	policy  logPolicy
	changes map[changeKey]struct{} // objects changed, for the change log
	logFull bool                   // too many changes to log: reset the log instead
}

var _ store.Tx = (*tx)(nil)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

func (t *tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.d.rebind(q), args...)
}

func (t *tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.rebind(q), args...)
}

// exec runs a write statement and returns how many rows it changed.
func (t *tx) exec(ctx context.Context, q string, args ...any) (n int64, err error) {
	err = t.guard(ctx, func() error {
		res, err := t.tx.ExecContext(ctx, t.d.rebind(q), args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if n > 0 {
		t.wrote = true
	}
	return n, err
}

// writeRow runs a write statement with a RETURNING clause that yields one row
// per changed row, and scans the first. sql.ErrNoRows means nothing changed.
func (t *tx) writeRow(ctx context.Context, q string, args []any, dest ...any) error {
	err := t.guard(ctx, func() error {
		return t.queryRow(ctx, q, args...).Scan(dest...)
	})
	if err == nil {
		t.wrote = true
	}
	return err
}

// writeIDs runs a write statement with a RETURNING clause that yields the id
// of each changed row, and returns them.
func (t *tx) writeIDs(ctx context.Context, q string, args ...any) ([]int64, error) {
	var ids []int64
	err := t.guard(ctx, func() error {
		rows, err := t.query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		t.wrote = true
	}
	return ids, nil
}

// guard runs one write statement. On PostgreSQL a failed statement aborts the
// whole transaction, so there it runs inside a savepoint: after a refused
// write (a conflict) fn may go on, as it can on SQLite.
func (t *tx) guard(ctx context.Context, write func() error) error {
	if t.readOnly {
		return errReadOnly
	}
	if !t.d.savepoints {
		return write()
	}
	if _, err := t.tx.ExecContext(ctx, "SAVEPOINT write"); err != nil {
		return err
	}
	if err := write(); err != nil {
		if _, rerr := t.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT write"); rerr != nil {
			return errors.Join(err, rerr)
		}
		if _, rerr := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT write"); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	_, err := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT write")
	return err
}

// Errors.

type errKind int

const (
	kindOther errKind = iota
	kindUnique
	kindForeignKey
)

// classify tells unique and foreign key violations of either driver apart.
func classify(err error) errKind {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return kindUnique
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return kindForeignKey
		}
		switch msg := se.Error(); {
		case strings.Contains(msg, "UNIQUE constraint failed"):
			return kindUnique
		case strings.Contains(msg, "FOREIGN KEY constraint failed"):
			return kindForeignKey
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return kindUnique
		case "23503": // foreign_key_violation
			return kindForeignKey
		}
	}
	return kindOther
}

// writeErr names the culprit of a failed write: a unique violation wraps
// store.ErrConflict, a reference to a missing row wraps store.ErrNotFound.
func writeErr(culprit, verb string, err error) error {
	switch classify(err) {
	case kindUnique:
		return fmt.Errorf("%s: %w", culprit, store.ErrConflict)
	case kindForeignKey:
		return fmt.Errorf("%s: refers to a missing row: %w", culprit, store.ErrNotFound)
	}
	return fmt.Errorf("%s %s: %w", verb, culprit, err)
}

func notFound(culprit string) error {
	return fmt.Errorf("%s: %w", culprit, store.ErrNotFound)
}

// Column values.

// now is the time Create and Update stamp, at the precision both databases
// keep (PostgreSQL stores microseconds).
func now() time.Time { return normTime(time.Now()) }

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return normTime(t)
}

// dbTime scans a time column; NULL gives the zero time. It also takes the
// text SQLite returns where it does not know the column's declared type
// (expressions, RETURNING).
type dbTime time.Time

func (d *dbTime) Scan(src any) error {
	var t time.Time
	switch v := src.(type) {
	case nil:
	case time.Time:
		t = v
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("time: unexpected %T", src)
	}
	*d = dbTime(normTime(t))
	return nil
}

func (d *dbTime) parse(s string) error {
	t, err := time.Parse("2006-01-02 15:04:05.999999999-07:00", s)
	if err != nil {
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("time: %w", err)
		}
	}
	*d = dbTime(normTime(t))
	return nil
}

func ptrOf(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	v := n.Int64
	return &v
}

// nullBytes stores an empty slice as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// strs returns a non-nil copy of s, so that JSON shows [] rather than null.
func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// jsonText is the stored form of a []string column: a JSON array.
func jsonText(s []string) string {
	b, _ := json.Marshal(strs(s)) // cannot fail for strings
	return string(b)
}

// jsonStrings scans a []string column stored as a JSON array.
type jsonStrings []string

func (j *jsonStrings) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("json strings: unexpected %T", src)
	}
	var s []string
	if len(b) > 0 {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("json strings: %w", err)
		}
	}
	*j = strs(s)
	return nil
}

// Queries.

// where collects the conditions and arguments of a list query.
type where struct {
	conds []string
	args  []any
}

// add adds cond unless ok is false.
func (w *where) add(ok bool, cond string, args ...any) {
	if ok {
		w.conds = append(w.conds, cond)
		w.args = append(w.args, args...)
	}
}

// contains keeps rows whose column col contains sub, ignoring case; an empty
// sub does not filter.
func (w *where) contains(col, sub string) {
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(sub)
	w.add(sub != "", "LOWER("+col+") LIKE LOWER(?) ESCAPE '\\'", "%"+esc+"%")
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// table maps an entity T to its SQL table, so that the common operations are
// written once.
type table[T any] struct {
	what    string                      // noun in errors: "account"
	kind    store.ChangeKind            // what the change log calls it
	name    string                      // SQL table
	cols    []string                    // columns after id, in the order of args and scan
	args    func(v *T) []any            // values of cols
	scan    func(sc scanner) (T, error) // scans id then cols
	id      func(v *T) *int64
	created func(v *T) *time.Time // nil: no created_at column
	updated func(v *T) *time.Time // nil: no updated_at column
	key     func(v *T) string     // culprit of a conflict; nil: "<what> <id>"
	norm    func(v *T)            // brings v to the stored form after a write; may be nil
	// sorts maps each sort key (store.Page.Sort) to its ORDER BY terms.
	sorts map[string][]string
}

// orderBy returns the ORDER BY clause of page p: its sort key's terms,
// then id, each in p's direction; def when p names no key.
func (tb *table[T]) orderBy(p store.Page, def string) (string, error) {
	if p.Sort == "" {
		return def, nil
	}
	terms, ok := tb.sorts[p.Sort]
	if !ok {
		return "", fmt.Errorf("list %ss: sort %q: not a sort key of the list", tb.what, p.Sort)
	}
	dir := ""
	if p.Desc {
		dir = " DESC"
	}
	out := make([]string, 0, len(terms)+1)
	for _, term := range append(terms, "id") {
		out = append(out, term+dir)
	}
	return strings.Join(out, ", "), nil
}

func (tb *table[T]) selectSQL() string {
	return "SELECT id, " + strings.Join(tb.cols, ", ") + " FROM " + tb.name
}

func (tb *table[T]) culprit(v *T) string {
	if tb.key != nil {
		return tb.key(v)
	}
	return tb.what + " " + strconv.FormatInt(*tb.id(v), 10)
}

func (tb *table[T]) idCulprit(id int64) string {
	return tb.what + " " + strconv.FormatInt(id, 10)
}

func (tb *table[T]) insert(ctx context.Context, t *tx, v *T) error {
	ts := now()
	if tb.created != nil {
		*tb.created(v) = ts
	}
	if tb.updated != nil {
		*tb.updated(v) = ts
	}
	if tb.norm != nil {
		tb.norm(v)
	}
	q := "INSERT INTO " + tb.name + " (" + strings.Join(tb.cols, ", ") + ") VALUES (" +
		strings.Repeat("?, ", len(tb.cols)-1) + "?) RETURNING id"
	var id int64
	if err := t.writeRow(ctx, q, tb.args(v), &id); err != nil {
		return writeErr(tb.key0(v), "create", err)
	}
	*tb.id(v) = id
	t.record(tb.kind, id)
	return nil
}

// key0 is the culprit of a row that has no ID yet.
func (tb *table[T]) key0(v *T) string {
	if tb.key != nil {
		return tb.key(v)
	}
	return tb.what
}

// update replaces every column of the row with v's ID except created_at,
// which it reads back into v.
func (tb *table[T]) update(ctx context.Context, t *tx, v *T) error {
	if tb.updated != nil {
		*tb.updated(v) = now()
	}
	if tb.norm != nil {
		tb.norm(v)
	}
	var set []string
	var args []any
	for i, a := range tb.args(v) {
		if tb.cols[i] != "created_at" {
			set = append(set, tb.cols[i]+" = ?")
			args = append(args, a)
		}
	}
	q := "UPDATE " + tb.name + " SET " + strings.Join(set, ", ") + " WHERE id = ? RETURNING "
	var created dbTime
	var dest any = &created
	if tb.created != nil {
		q += "created_at"
	} else {
		q += "id"
		dest = new(int64)
	}
	err := t.writeRow(ctx, q, append(args, *tb.id(v)), dest)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return notFound(tb.idCulprit(*tb.id(v)))
	case err != nil:
		return writeErr(tb.culprit(v), "update", err)
	}
	if tb.created != nil {
		*tb.created(v) = time.Time(created)
	}
	t.record(tb.kind, *tb.id(v))
	return nil
}

func (tb *table[T]) get(ctx context.Context, t *tx, id int64) (T, error) {
	return tb.getWhere(ctx, t, tb.idCulprit(id), "id = ?", id)
}

// getWhere returns the one row that matches cond.
func (tb *table[T]) getWhere(ctx context.Context, t *tx, culprit, cond string, args ...any) (T, error) {
	v, err := tb.scan(t.queryRow(ctx, tb.selectSQL()+" WHERE "+cond, args...))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return v, notFound(culprit)
	case err != nil:
		return v, fmt.Errorf("get %s: %w", culprit, err)
	}
	return v, nil
}

func (tb *table[T]) delete(ctx context.Context, t *tx, id int64) error {
	n, err := t.exec(ctx, "DELETE FROM "+tb.name+" WHERE id = ?", id)
	switch {
	case err != nil:
		return writeErr(tb.idCulprit(id), "delete", err)
	case n == 0:
		return notFound(tb.idCulprit(id))
	}
	t.record(tb.kind, id)
	return nil
}

// list returns the page p of the rows that match w, in the given order, and
// how many rows match w in all.
func (tb *table[T]) list(ctx context.Context, t *tx, w *where, order string, p store.Page) ([]T, int, error) {
	order, err := tb.orderBy(p, order)
	if err != nil {
		return nil, 0, err
	}
	q := tb.selectSQL() + w.String() + " ORDER BY " + order
	args := append([]any(nil), w.args...)
	if p.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, p.Limit)
	}
	if p.Offset > 0 {
		if p.Limit <= 0 && t.d.noLimit != "" {
			q += " " + t.d.noLimit
		}
		q += " OFFSET ?"
		args = append(args, p.Offset)
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list %ss: %w", tb.what, err)
	}
	defer rows.Close()
	items := []T{}
	for rows.Next() {
		v, err := tb.scan(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list %ss: %w", tb.what, err)
		}
		items = append(items, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list %ss: %w", tb.what, err)
	}
	if p.Limit <= 0 && p.Offset <= 0 {
		return items, len(items), nil // the page is everything
	}
	var total int
	if err := t.queryRow(ctx, "SELECT COUNT(*) FROM "+tb.name+w.String(), w.args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count %ss: %w", tb.what, err)
	}
	return items, total, nil
}
