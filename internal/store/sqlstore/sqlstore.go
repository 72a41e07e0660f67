// Package sqlstore implements store.Store on SQLite (modernc.org/sqlite, no
// cgo) and PostgreSQL (pgx through database/sql).
//
// One set of Go code serves both databases; only the migrations in
// migrations/<dialect> and a few dialect details (placeholders, the write
// lock) differ. Open runs the embedded goose migrations, so a fresh database
// works at once.
//
// Writes are serialised across every process sharing the database: on SQLite
// each Update is a BEGIN IMMEDIATE transaction; on PostgreSQL each Update
// first takes a transaction-scoped advisory lock and then runs at READ
// COMMITTED, so every statement sees the writes committed before the lock was
// granted. Within one process Updates also queue on a channel, so they do not
// spin on SQLite's busy handler. View runs a read-only transaction (REPEATABLE
// READ on PostgreSQL) that sees one consistent snapshot.
//
// On PostgreSQL each write statement runs in a savepoint, so that after a
// refused write (store.ErrConflict) fn may go on, as it can on SQLite.
//
// Revision is a one-row table bumped in the same transaction by every Update
// whose fn returned nil and that changed at least one row. That transaction
// also inserts the change log's rows (store.Tx.ChangesSince): each write
// method records the objects it changed, including those a delete removes
// or changes through foreign keys, which it selects before deleting. The log
// keeps the last 10,000 revisions; an Update that changes more than 50,000
// objects resets it rather than logging them.
//
// Registrar bindings (store.Registrations) are live state: each call is one
// plain statement on the pool, outside Update, and never advances Revision.
//
// Errors name the culprit and wrap the store sentinels: a unique index
// refusing a write gives `sip user "alice"@"example.com": conflict`
// (store.ErrConflict), a missing row `account 42: not found`, and a write
// naming a missing parent (account, profile, SIP user, rewrite rule owner)
// store.ErrNotFound too.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/sipward/sipward/internal/store"
)

//go:embed migrations
var migrations embed.FS

// Advisory lock keys on PostgreSQL: pgWriteLock ("sipward" in ASCII) is
// taken by every Update, pgMigrateLock by Open while it migrates.
const (
	pgWriteLock   int64 = 0x73697077617264
	pgMigrateLock int64 = pgWriteLock + 1
)

// pgMaxConns caps each node's connections to PostgreSQL.
const pgMaxConns = 16

// dialect holds what differs between the databases, apart from the schema.
type dialect struct {
	name        string        // also the directory of its migrations
	driver      string        // database/sql driver name
	goose       goose.Dialect // migrations dialect
	dollar      bool          // placeholders are $1, $2, … instead of ?
	writeLock   string        // statement that starts every Update, if any
	updateLevel sql.IsolationLevel
	viewLevel   sql.IsolationLevel
	noLimit     string // LIMIT clause that means "no limit", needed before OFFSET
	migrateLock bool   // migrations take a session advisory lock
	savepoints  bool   // a failed statement aborts the transaction unless in a savepoint
}

var (
	sqliteDialect = &dialect{
		name:    "sqlite",
		driver:  "sqlite",
		goose:   goose.DialectSQLite3,
		noLimit: "LIMIT -1",
	}
	postgresDialect = &dialect{
		name:      "postgres",
		driver:    "pgx",
		goose:     goose.DialectPostgres,
		dollar:    true,
		writeLock: "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(pgWriteLock, 10) + ")",
		// READ COMMITTED takes a snapshot per statement, so statements
		// after the lock see every write committed before it. (At
		// REPEATABLE READ the snapshot would predate the lock.)
		updateLevel: sql.LevelReadCommitted,
		viewLevel:   sql.LevelRepeatableRead,
		migrateLock: true,
		savepoints:  true,
	}
)

// rebind rewrites the ? placeholders of q for the dialect. Question marks
// inside single-quoted literals are left alone.
func (d *dialect) rebind(q string) string {
	if !d.dollar || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n, quoted := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Store is a store.Store on SQLite or PostgreSQL. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	d  *dialect
	// gate queues this process's Updates (a one-slot semaphore that, unlike a
	// mutex, gives up when the context ends).
	gate   chan struct{}
	policy logPolicy
}

var _ store.Store = (*Store)(nil)

// Open opens the store named by dsn and migrates its schema to the latest
// version. dsn is "sqlite:<path>" or a bare path for SQLite, or a
// "postgres://" or "postgresql://" URL for PostgreSQL (pgx syntax; runtime
// parameters such as search_path may be added as query parameters).
func Open(ctx context.Context, dsn string) (*Store, error) {
	s, err := open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", redact(dsn), err)
	}
	return s, nil
}

func open(ctx context.Context, dsn string) (*Store, error) {
	d, driverDSN, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(d.driver, driverDSN)
	if err != nil {
		return nil, err
	}
	switch d {
	case sqliteDialect:
		// One writer at a time anyway; a few connections let Views run
		// beside an Update (WAL readers do not block the writer).
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	case postgresDialect:
		// Bounded, so that a burst of registration writes queues here
		// rather than exhausting the server's max_connections, which
		// every node shares.
		db.SetMaxOpenConns(pgMaxConns)
		db.SetMaxIdleConns(pgMaxConns)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return &Store{db: db, d: d, gate: make(chan struct{}, 1), policy: defaultLogPolicy}, nil
}

// parseDSN picks the dialect of dsn and returns the DSN its driver takes.
func parseDSN(dsn string) (*dialect, string, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgresDialect, dsn, nil
	case strings.HasPrefix(dsn, "sqlite:"):
		dsn = strings.TrimPrefix(dsn, "sqlite:")
	case strings.Contains(dsn, "://"):
		return nil, "", errors.New("unsupported database: want sqlite:<path> or postgres://…")
	}
	path, rawQuery, _ := strings.Cut(dsn, "?")
	if path == "" {
		return nil, "", errors.New("empty sqlite path")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, "", fmt.Errorf("parse sqlite parameters: %w", err)
	}
	// busy_timeout comes first so that the other pragmas wait for locks too.
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")   // every write transaction is BEGIN IMMEDIATE
	q.Set("_time_format", "sqlite") // ISO 8601 text, which sorts in time order (in UTC)
	return sqliteDialect, path + "?" + q.Encode(), nil
}

// redact hides a password in a URL-shaped dsn.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

func migrate(ctx context.Context, db *sql.DB, d *dialect) error {
	fsys, err := fs.Sub(migrations, "migrations/"+d.name)
	if err != nil {
		return err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if d.migrateLock {
		// Nodes starting together migrate one at a time.
		l, err := lock.NewPostgresSessionLocker(lock.WithLockID(pgMigrateLock), lock.WithLockTimeout(1, 300))
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(l))
	}
	p, err := goose.NewProvider(d.goose, db, fsys, opts...)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// Update runs fn in a write transaction serialised against every other
// Update on the database. If fn returns an error the transaction is rolled
// back and the error returned unchanged. fn must not call Update: it would
// wait for itself.
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	select {
	case s.gate <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.gate }()

	sqlTx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: s.d.updateLevel})
	if err != nil {
		return fmt.Errorf("begin update: %w", err)
	}
	defer func() { _ = sqlTx.Rollback() }() // no-op after Commit
	if s.d.writeLock != "" {
		if _, err := sqlTx.ExecContext(ctx, s.d.writeLock); err != nil {
			return fmt.Errorf("take write lock: %w", err)
		}
	}
	t := &tx{tx: sqlTx, d: s.d, policy: s.policy}
	if err := fn(t); err != nil {
		return err
	}
	if t.wrote {
		var rev int64
		if err := sqlTx.QueryRowContext(ctx, "UPDATE revision SET rev = rev + 1 WHERE id = 1 RETURNING rev").Scan(&rev); err != nil {
			return fmt.Errorf("bump revision: %w", err)
		}
		if err := t.logChanges(ctx, rev); err != nil {
			return fmt.Errorf("log changes of revision %d: %w", rev, err)
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit update: %w", err)
	}
	return nil
}

// View runs fn in a read-only transaction with a consistent view. Writes in
// fn fail.
func (s *Store) View(ctx context.Context, fn func(tx store.Tx) error) error {
	sqlTx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: s.d.viewLevel, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin view: %w", err)
	}
	defer func() { _ = sqlTx.Rollback() }() // a read-only transaction has nothing to commit
	return fn(&tx{tx: sqlTx, d: s.d, readOnly: true})
}

// Revision returns the configuration revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.db.QueryRowContext(ctx, "SELECT rev FROM revision WHERE id = 1").Scan(&rev); err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return rev, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return s.db.Close()
}
