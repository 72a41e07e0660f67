package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/store/storetest"
)

// pgEnv names the PostgreSQL DSN the tests use, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. Unset: SQLite only.
const pgEnv = "SIPWARD_TEST_PG"

// backend makes the DSN of a new, empty database.
type backend struct {
	name  string
	fresh func(t *testing.T) string
}

func backends(t *testing.T) []backend {
	b := []backend{{"sqlite", sqliteDSN}}
	if os.Getenv(pgEnv) != "" {
		b = append(b, backend{"postgres", pgDSN})
	} else {
		t.Logf("%s not set: PostgreSQL not tested", pgEnv)
	}
	return b
}

func sqliteDSN(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "sipward.db")
}

// pgDSN creates a schema of its own for the test, dropped at cleanup, and
// returns a DSN whose search_path selects it.
func pgDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv(pgEnv)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", pgEnv, err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "t_" + hex.EncodeToString(b[:])

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is done by now.
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// openStore opens the store at dsn and closes it at cleanup.
func openStore(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return openStore(t, b.fresh(t)) })
		})
	}
}

func TestLogins(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			storetest.RunLogins(t, func(t *testing.T) store.Store { return openStore(t, b.fresh(t)) })
		})
	}
}

func TestRegistrations(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			storetest.RunRegistrations(t, func(t *testing.T) storetest.RegistrationStore { return openStore(t, b.fresh(t)) })
		})
	}
}

func TestMailboxes(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			storetest.RunMailboxes(t, func(t *testing.T) storetest.MailboxStore { return openStore(t, b.fresh(t)) })
		})
	}
}

func TestAudit(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			storetest.RunAudit(t, func(t *testing.T) storetest.AuditStore { return openStore(t, b.fresh(t)) })
		})
	}
}

// TestRegistrationsOutsideUpdate checks that registration writes do not
// queue behind Updates: with this process's Update gate held, and on
// PostgreSQL from inside an open Update (which holds the write lock too),
// they still complete.
func TestRegistrationsOutsideUpdate(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := openStore(t, b.fresh(t))
			r := store.Registration{Username: "alice", Contact: "sip:alice@192.0.2.1", Expires: time.Now().Add(time.Hour)}
			exercise := func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if err := s.SaveRegistration(ctx, r); err != nil {
					return err
				}
				if _, err := s.LoadRegistrations(ctx, time.Now()); err != nil {
					return err
				}
				return s.DeleteRegistration(ctx, r.Username, r.Contact)
			}

			s.gate <- struct{}{} // as if an Update were running
			err := exercise(t.Context())
			<-s.gate
			if err != nil {
				t.Errorf("with the Update gate held: %v", err)
			}

			if s.d.writeLock == "" {
				return // SQLite: an open Update holds the database's only write lock
			}
			if err := s.Update(t.Context(), func(tx store.Tx) error {
				if err := tx.PutSetting(t.Context(), "k", "v"); err != nil {
					return err
				}
				return exercise(t.Context())
			}); err != nil {
				t.Errorf("inside an Update: %v", err)
			}
		})
	}
}

// TestTwoStores opens one database twice, as two processes or nodes would.
func TestTwoStores(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.fresh(t)
			s1, s2 := openStore(t, dsn), openStore(t, dsn)
			ctx := t.Context()

			a := store.Account{Name: "from s1"}
			if err := s1.Update(ctx, func(tx store.Tx) error { return tx.CreateAccount(ctx, &a) }); err != nil {
				t.Fatal(err)
			}
			if err := s2.View(ctx, func(tx store.Tx) error {
				got, err := tx.GetAccount(ctx, a.ID)
				if err == nil && got.Name != a.Name {
					t.Errorf("s2 reads account name %q, want %q", got.Name, a.Name)
				}
				return err
			}); err != nil {
				t.Fatalf("s2 reads the account s1 wrote: %v", err)
			}
			r1, err1 := s1.Revision(ctx)
			r2, err2 := s2.Revision(ctx)
			if err1 != nil || err2 != nil || r1 != r2 || r1 == 0 {
				t.Errorf("revisions s1 %d (%v), s2 %d (%v): want equal and > 0", r1, err1, r2, err2)
			}

			if err := s2.Update(ctx, func(tx store.Tx) error { return tx.DeleteAccount(ctx, a.ID) }); err != nil {
				t.Fatal(err)
			}
			if err := s1.View(ctx, func(tx store.Tx) error {
				_, err := tx.GetAccount(ctx, a.ID)
				return err
			}); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("s1 reads the account s2 deleted: %v, want ErrNotFound", err)
			}
			if r, err := s1.Revision(ctx); err != nil || r <= r1 {
				t.Errorf("s1 revision %d (%v) after s2 wrote, want > %d", r, err, r1)
			}

			storetest.Serialised(t, s1, s2)
		})
	}
}

// TestReopen checks that a second Open of a migrated database keeps its data.
func TestReopen(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.fresh(t)
			ctx := t.Context()
			s, err := Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Update(ctx, func(tx store.Tx) error { return tx.PutSetting(ctx, "k", "v") }); err != nil {
				t.Fatal(err)
			}
			reg := store.Registration{Username: "alice", Contact: "sip:alice@192.0.2.1", Expires: time.Now().Add(time.Hour)}
			if err := s.SaveRegistration(ctx, reg); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, dsn)
			if err := s.View(ctx, func(tx store.Tx) error {
				v, err := tx.GetSetting(ctx, "k")
				if err == nil && v != "v" {
					t.Errorf("setting = %q, want %q", v, "v")
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			regs, err := s.LoadRegistrations(ctx, time.Now())
			if err != nil || len(regs) != 1 || regs[0].Contact != reg.Contact {
				t.Errorf("registrations after reopening: %+v, %v; want the one saved", regs, err)
			}
		})
	}
}

// TestRevisionOnlyOnWrite checks what this implementation promises beyond
// the contract: an Update that changed no row leaves Revision alone.
func TestRevisionOnlyOnWrite(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := openStore(t, b.fresh(t))
			ctx := t.Context()
			before, err := s.Revision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Update(ctx, func(tx store.Tx) error {
				_, _, err := tx.ListAccounts(ctx, store.AccountFilter{})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if after, err := s.Revision(ctx); err != nil || after != before {
				t.Errorf("revision %d (%v) after a read-only Update, want %d", after, err, before)
			}
		})
	}
}

// changesSince reads the change log after rev; it returns the error.
func changesSince(t *testing.T, s *Store, rev int64) ([]store.Change, error) {
	var changes []store.Change
	err := s.View(t.Context(), func(tx store.Tx) (err error) {
		changes, err = tx.ChangesSince(t.Context(), rev)
		return err
	})
	return changes, err
}

func revisionOf(t *testing.T, s *Store) int64 {
	t.Helper()
	rev, err := s.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// TestChangeLogPruning checks this implementation's bounds on the log: it
// keeps the last policy.keep revisions, and an Update of more than
// policy.maxPerUpdate changes resets it.
func TestChangeLogPruning(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := openStore(t, b.fresh(t))
			s.policy = logPolicy{keep: 5, every: 1, maxPerUpdate: 3}
			ctx := t.Context()
			create := func(n int) {
				t.Helper()
				err := s.Update(ctx, func(tx store.Tx) error {
					for range n {
						if err := tx.CreateAccount(ctx, &store.Account{Name: "a"}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for range 10 {
				create(1)
			}
			rev := revisionOf(t, s)
			if got, err := changesSince(t, s, rev-5); err != nil || len(got) != 5 {
				t.Errorf("changes since %d: %d, %v; want the last 5", rev-5, len(got), err)
			}
			if _, err := changesSince(t, s, rev-6); !errors.Is(err, store.ErrChangesPruned) {
				t.Errorf("changes since %d (pruned): %v, want ErrChangesPruned", rev-6, err)
			}

			create(4) // more than maxPerUpdate: not logged, the log restarts
			rev = revisionOf(t, s)
			if _, err := changesSince(t, s, rev-1); !errors.Is(err, store.ErrChangesPruned) {
				t.Errorf("changes since the revision before a bulk Update: %v, want ErrChangesPruned", err)
			}
			create(1)
			if got, err := changesSince(t, s, rev); err != nil || len(got) != 1 || got[0].Revision != rev+1 {
				t.Errorf("changes since the bulk Update: %+v, %v; want the one after it", got, err)
			}
		})
	}
}

// migratedTo opens the database of dsn with only the migrations up to
// version run, as an older sipward left it.
func migratedTo(t *testing.T, dsn string, version int64) *sql.DB {
	t.Helper()
	d, driverDSN, err := parseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(d.driver, driverDSN)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := fs.Sub(migrations, "migrations/"+d.name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(d.goose, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), version); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestChangeLogAfterMigration checks that on a database that had data before
// the change log existed, the log starts at the revision it had.
func TestChangeLogAfterMigration(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.fresh(t)
			db := migratedTo(t, dsn, 3)
			if _, err := db.ExecContext(t.Context(), "UPDATE revision SET rev = 7 WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			db.Close()

			s := openStore(t, dsn)
			if _, err := changesSince(t, s, 6); !errors.Is(err, store.ErrChangesPruned) {
				t.Errorf("changes since 6: %v, want ErrChangesPruned", err)
			}
			if got, err := changesSince(t, s, 7); err != nil || len(got) != 0 {
				t.Errorf("changes since 7: %+v, %v; want none", got, err)
			}
		})
	}
}

// TestUserChannelsMigration runs migration 5 on a copy of old data: SIP
// users and profiles with 0 channels ("unlimited", before every user held a
// channel) get one; others keep theirs; the revision moves on and the change
// log restarts there, so that running nodes reload everything.
func TestUserChannelsMigration(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.fresh(t)
			db := migratedTo(t, dsn, 4)
			const at = "'2025-06-01 12:00:00+00:00'"
			for _, q := range []string{
				"INSERT INTO accounts (id, name, channels, created_at, updated_at) VALUES (1, 'Acme', 2, " + at + ", " + at + ")",
				"INSERT INTO profiles (id, name, channels) VALUES (1, 'unlimited', 0), (2, 'four', 4)",
				"INSERT INTO sip_users (id, account_id, username, realm, channels, created_at, updated_at) VALUES " +
					"(1, 1, '1001', 'sipward', 0, " + at + ", " + at + "), (2, 1, '1002', 'sipward', 2, " + at + ", " + at + ")",
				"UPDATE revision SET rev = 7 WHERE id = 1",
			} {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()

			s := openStore(t, dsn)
			if rev := revisionOf(t, s); rev != 8 {
				t.Errorf("revision after the migration: %d, want 8", rev)
			}
			if _, err := changesSince(t, s, 7); !errors.Is(err, store.ErrChangesPruned) {
				t.Errorf("changes since 7: %v, want ErrChangesPruned (nodes reload everything)", err)
			}
			err := s.View(t.Context(), func(tx store.Tx) error {
				for id, want := range map[int64]int{1: 1, 2: 2} {
					u, err := tx.GetSIPUser(t.Context(), id)
					if err != nil {
						return err
					}
					if u.Effective.Channels.Value != want {
						t.Errorf("sip user %s: %d channels, want %d", u.Username, u.Effective.Channels.Value, want)
					}
				}
				for id, want := range map[int64]int{1: 1, 2: 4} {
					p, err := tx.GetProfile(t.Context(), id)
					if err != nil {
						return err
					}
					if p.Channels != want {
						t.Errorf("profile %s: %d channels, want %d", p.Name, p.Channels, want)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDialPatternMigration runs migration 6 on a copy of old data: the free
// text nothing read becomes a pattern that keeps each endpoint's numbers as
// they were handled ("none"), "" the default "e164", known values stay.
func TestDialPatternMigration(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.fresh(t)
			db := migratedTo(t, dsn, 5)
			const at = "'2025-06-01 12:00:00+00:00'"
			row := func(id int, pattern string) string {
				return fmt.Sprintf("(%d, 1, '192.0.2.%d', 'sends', '%s', %s, %s)", id, id, pattern, at, at)
			}
			for _, q := range []string{
				"INSERT INTO accounts (id, name, created_at, updated_at) VALUES (1, 'Acme', " + at + ", " + at + ")",
				"INSERT INTO ip_endpoints (id, account_id, address, direction, dial_pattern, created_at, updated_at) VALUES " +
					row(1, "") + ", " + row(2, "e164") + ", " + row(3, `^00\d+$`) + ", " + row(4, "international") + ", " + row(5, "E164"),
				"UPDATE revision SET rev = 3 WHERE id = 1",
			} {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()

			s := openStore(t, dsn)
			if rev := revisionOf(t, s); rev != 4 {
				t.Errorf("revision after the migration: %d, want 4", rev)
			}
			want := map[int64]string{1: "e164", 2: "e164", 3: "none", 4: "international", 5: "none"}
			err := s.View(t.Context(), func(tx store.Tx) error {
				for id, w := range want {
					e, err := tx.GetEndpoint(t.Context(), id)
					if err != nil {
						return err
					}
					if e.DialPattern != w {
						t.Errorf("endpoint %d: dial pattern %q, want %q", id, e.DialPattern, w)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestErrorsNameCulprit(t *testing.T) {
	s := openStore(t, sqliteDSN(t))
	ctx := t.Context()
	var u store.SIPUser
	err := s.Update(ctx, func(tx store.Tx) error {
		acc := store.Account{Name: "a"}
		if err := tx.CreateAccount(ctx, &acc); err != nil {
			return err
		}
		u = store.SIPUser{AccountID: acc.ID, Username: "alice", Realm: "example.com"}
		if err := tx.CreateSIPUser(ctx, &u); err != nil {
			return err
		}
		dup := u
		return tx.CreateSIPUser(ctx, &dup)
	})
	if want := `sip user "alice"@"example.com": conflict`; err == nil || err.Error() != want {
		t.Errorf("duplicate sip user: got %v, want %s", err, want)
	}
	err = s.View(ctx, func(tx store.Tx) error {
		_, err := tx.GetAccount(ctx, 42)
		return err
	})
	if want := "account 42: not found"; err == nil || err.Error() != want {
		t.Errorf("missing account: got %v, want %s", err, want)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		dsn, prefix, hidden string
	}{
		{"sqlite:" + dir + "/missing/dir/x.db", `open store "sqlite:` + dir + `/missing/dir/x.db": `, ""},
		{"mysql://u@h/db", `open store "mysql://u@h/db": unsupported database`, ""},
		{"sqlite:", `open store "sqlite:": empty sqlite path`, ""},
		// Port 1 refuses at once; the password stays out of the message.
		{"postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2", `open store "postgres://u:xxxxx@127.0.0.1:1/db?connect_timeout=2": connect: `, "hunter2"},
	} {
		s, err := Open(t.Context(), c.dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", c.dsn)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.prefix) {
			t.Errorf("Open(%q) = %q, want prefix %q", c.dsn, err, c.prefix)
		}
		if c.hidden != "" && strings.Contains(err.Error(), c.hidden) {
			t.Errorf("Open(%q) = %q: shows the password", c.dsn, err)
		}
	}
}

func TestOpenBarePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bare.db")
	openStore(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"x LIKE ? ESCAPE '\\' AND y = '?' AND z = ?", "x LIKE $1 ESCAPE '\\' AND y = '?' AND z = $2"},
	} {
		if got := postgresDialect.rebind(c.in); got != c.want {
			t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := sqliteDialect.rebind(c.in); got != c.in {
			t.Errorf("sqlite rebind(%q) = %q, want it unchanged", c.in, got)
		}
	}
}

// TestProfileInheritanceMigration runs migration 7 on a copy of old data:
// profiles were copied into users at creation, so a user of a profile now
// inherits each setting equal to the profile's and keeps the ones that
// differ as its own; a user without a profile keeps all its values as its
// own; nothing that applies changes.
func TestProfileInheritanceMigration(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.fresh(t)
			db := migratedTo(t, dsn, 6)
			const at = "'2025-06-01 12:00:00+00:00'"
			for _, q := range []string{
				"INSERT INTO accounts (id, name, created_at, updated_at) VALUES (1, 'Acme', " + at + ", " + at + ")",
				`INSERT INTO profiles (id, name, channels, cps, protocol, nat_ping, restricted_codecs)
				 VALUES (1, 'gold', 4, 2, 'tls', 'enabled', '["G729"]')`,
				`INSERT INTO sip_users (id, account_id, username, realm, profile_id, channels, cps, protocol, nat_ping, restricted_codecs,
				 created_at, updated_at) VALUES
				 (1, 1, '1001', 'sipward', 1, 4, 2, 'tls', 'enabled', '["G729"]', ` + at + ", " + at + `),
				 (2, 1, '1002', 'sipward', 1, 8, 2, 'udp', 'enabled', '[]', ` + at + ", " + at + `),
				 (3, 1, '1003', 'sipward', NULL, 1, 0, 'udp', 'disabled', '[]', ` + at + ", " + at + ")",
			} {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()

			s := openStore(t, dsn)
			for id, want := range map[int64]struct {
				inherited []string
				channels  int
				protocol  store.Protocol
			}{
				1: {[]string{"channels", "cps", "protocol", "nat_ping", "restricted_codecs"}, 4, store.ProtoTLS},
				2: {[]string{"cps", "nat_ping"}, 8, store.ProtoUDP},
				3: {nil, 1, store.ProtoUDP},
			} {
				var u store.SIPUser
				err := s.View(t.Context(), func(tx store.Tx) (err error) { u, err = tx.GetSIPUser(t.Context(), id); return err })
				if err != nil {
					t.Fatal(err)
				}
				if got := u.Effective.Inherited(); !slices.Equal(got, want.inherited) {
					t.Errorf("sip user %s inherits %v, want %v", u.Username, got, want.inherited)
				}
				if u.Effective.Channels.Value != want.channels || u.Effective.Protocol.Value != want.protocol {
					t.Errorf("sip user %s applies %d channels over %s, want %d over %s (unchanged)", u.Username,
						u.Effective.Channels.Value, u.Effective.Protocol.Value, want.channels, want.protocol)
				}
			}
		})
	}
}

// TestSessionTimersMigration runs migration 10 on a copy of old data: every
// IP endpoint and SIP user gets session timers on with the default interval.
func TestSessionTimersMigration(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.fresh(t)
			db := migratedTo(t, dsn, 9)
			const at = "'2025-06-01 12:00:00+00:00'"
			for _, q := range []string{
				"INSERT INTO accounts (id, name, created_at, updated_at) VALUES (1, 'Acme', " + at + ", " + at + ")",
				"INSERT INTO ip_endpoints (id, account_id, address, direction, created_at, updated_at) VALUES (1, 1, '192.0.2.1', 'sends', " + at + ", " + at + ")",
				"INSERT INTO sip_users (id, account_id, username, realm, created_at, updated_at) VALUES (1, 1, '1001', 'sipward', " + at + ", " + at + ")",
			} {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()

			s := openStore(t, dsn)
			err := s.View(t.Context(), func(tx store.Tx) error {
				e, err := tx.GetEndpoint(t.Context(), 1)
				if err != nil {
					return err
				}
				if !e.SessionTimers || e.SessionExpires != store.DefaultSessionExpires {
					t.Errorf("endpoint after the migration: session timers %v, %d s; want on, %d s", e.SessionTimers, e.SessionExpires, store.DefaultSessionExpires)
				}
				u, err := tx.GetSIPUser(t.Context(), 1)
				if err != nil {
					return err
				}
				if !u.SessionTimers || u.SessionExpires != store.DefaultSessionExpires {
					t.Errorf("sip user after the migration: session timers %v, %d s; want on, %d s", u.SessionTimers, u.SessionExpires, store.DefaultSessionExpires)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestVoicemailMigration runs migration 11 on a copy of old data (existing
// SIP users get the default ring timeout) and then its Down, which drops
// what it added.
func TestVoicemailMigration(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.fresh(t)
			db := migratedTo(t, dsn, 10)
			const at = "'2025-06-01 12:00:00+00:00'"
			for _, q := range []string{
				"INSERT INTO accounts (id, name, created_at, updated_at) VALUES (1, 'Acme', " + at + ", " + at + ")",
				"INSERT INTO sip_users (id, account_id, username, realm, created_at, updated_at) VALUES (1, 1, '1001', 'sipward', " + at + ", " + at + ")",
			} {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()

			s := openStore(t, dsn)
			var u store.SIPUser
			err := s.View(t.Context(), func(tx store.Tx) (err error) { u, err = tx.GetSIPUser(t.Context(), 1); return err })
			if err != nil {
				t.Fatal(err)
			}
			if u.Voicemail.RingTimeout != store.DefaultRingTimeout {
				t.Errorf("ring timeout after the migration: %d, want %d", u.Voicemail.RingTimeout, store.DefaultRingTimeout)
			}
			m := store.VoicemailMessage{SIPUserID: 1, AccountID: 1}
			if err := s.SaveMessage(t.Context(), &m, []byte("RIFF")); err != nil {
				t.Fatal(err)
			}
			migrateDown(t, s, 10)
			for _, q := range []string{"SELECT COUNT(*) FROM voicemail_messages", "SELECT COUNT(*) FROM voicemail_greetings",
				"SELECT COUNT(voicemail_ring_timeout) FROM sip_users"} {
				if _, err := s.db.ExecContext(t.Context(), q); err == nil {
					t.Errorf("%s after the Down migration: no error, want the table or column gone", q)
				}
			}
		})
	}
}

// migrateDown runs s's Down migrations to version.
func migrateDown(t *testing.T, s *Store, version int64) {
	t.Helper()
	fsys, err := fs.Sub(migrations, "migrations/"+s.d.name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(s.d.goose, s.db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(t.Context(), version); err != nil {
		t.Fatalf("migrate down to %d: %v", version, err)
	}
}

// TestMailboxErrorsNameCulprit checks the text of mailbox errors.
func TestMailboxErrorsNameCulprit(t *testing.T) {
	s := openStore(t, sqliteDSN(t))
	ctx := t.Context()
	for _, c := range []struct {
		err  error
		want string
	}{
		{func() error { _, err := s.GetMessage(ctx, 3, 7); return err }(), "voicemail message 7 of sip user 3: not found"},
		{s.DeleteMessage(ctx, 3, 7), "voicemail message 7 of sip user 3: not found"},
		{s.SetMailState(ctx, 7, store.MailState{}), "voicemail message 7: not found"},
		{func() error { _, err := s.Greeting(ctx, 3); return err }(), "voicemail greeting of sip user 3: not found"},
		{s.SaveMessage(ctx, &store.VoicemailMessage{SIPUserID: 3}, nil), "voicemail message of sip user 3: refers to a missing row: not found"},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("got %v, want %s", c.err, c.want)
		}
	}
}

// TestSortKeys: every sort key a list documents (store.*Sorts) is one its
// table knows, and no table knows one the list does not document.
func TestSortKeys(t *testing.T) {
	for name, c := range map[string]struct {
		keys  []string
		sorts map[string][]string
	}{
		"accounts":  {store.AccountSorts, accounts.sorts},
		"endpoints": {store.EndpointSorts, endpoints.sorts},
		"sip users": {store.SIPUserSorts, sipUsers.sorts},
		"cli":       {store.CLISorts, cliPatterns.sorts},
		"dids":      {store.DIDSorts, dids.sorts},
		"profiles":  {store.ProfileSorts, profiles.sorts},
		"bans":      {store.BanSorts, bans.sorts},
		"logins":    {store.LoginSorts, logins.sorts},
		"audit":     {store.AuditSorts, auditLog.sorts},
	} {
		got := slices.Sorted(maps.Keys(c.sorts))
		if want := slices.Sorted(slices.Values(c.keys)); !slices.Equal(got, want) {
			t.Errorf("%s: table sorts by %v, the list documents %v", name, got, want)
		}
	}
}
