package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/sipward/sipward/internal/store"
)

var _ store.Registrations = (*Store)(nil)

// Registrar bindings are live state: each call below is one plain statement
// on the pool, outside Update. It does not queue on the gate, does not take
// PostgreSQL's write lock and does not advance Revision, so a REGISTER storm
// neither waits behind configuration writes nor makes nodes rebuild their
// snapshots. (On SQLite the database still has one writer at a time: a save
// waits, up to the busy timeout, while an Update's transaction is open.)

const registrationCols = "username, contact, sip_user_id, account_id, source, transport, expires, " +
	"registered, call_id, cseq, user_agent, latency_ms, last_ping, node, node_addr"

// saveRegistrationSQL inserts a binding or replaces every field of the one
// with the same (username, contact).
var saveRegistrationSQL = saveRegistrationsSQL(1)

// saveRegistrationsSQL is saveRegistrationSQL for n bindings in one
// statement (n rows of 15 placeholders).
func saveRegistrationsSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO registrations (" + registrationCols + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	b.WriteString(` ON CONFLICT (username, contact) DO UPDATE SET
		sip_user_id = excluded.sip_user_id, account_id = excluded.account_id,
		source = excluded.source, transport = excluded.transport,
		expires = excluded.expires, registered = excluded.registered,
		call_id = excluded.call_id, cseq = excluded.cseq, user_agent = excluded.user_agent,
		latency_ms = excluded.latency_ms, last_ping = excluded.last_ping,
		node = excluded.node, node_addr = excluded.node_addr`)
	return b.String()
}

// registrationRows is how many bindings one statement of ApplyRegistrations
// saves: 15 × 256 placeholders stay far below SQLite's and PostgreSQL's
// limits (32,766 and 65,535).
const registrationRows = 256

func registrationArgs(args []any, r *store.Registration) []any {
	return append(args, r.Username, r.Contact, r.SIPUserID, r.AccountID, r.Source, r.Transport, normTime(r.Expires),
		nullTime(r.Registered), r.CallID, int64(r.CSeq), r.UserAgent, r.LatencyMS, nullTime(r.LastPing),
		r.Node, r.NodeAddr)
}

func registrationCulprit(username, contact string) string {
	return fmt.Sprintf("registration %q %q", username, contact)
}

// SaveRegistration stores r, replacing the binding with the same Username
// and Contact. Times are kept in UTC to the microsecond; a zero Registered
// or LastPing is stored as NULL.
func (s *Store) SaveRegistration(ctx context.Context, r store.Registration) error {
	_, err := s.db.ExecContext(ctx, s.d.rebind(saveRegistrationSQL), registrationArgs(nil, &r)...)
	if err != nil {
		return fmt.Errorf("save %s: %w", registrationCulprit(r.Username, r.Contact), err)
	}
	return nil
}

// DeleteRegistration deletes the binding of username and contact; deleting
// one that does not exist is not an error.
func (s *Store) DeleteRegistration(ctx context.Context, username, contact string) error {
	_, err := s.db.ExecContext(ctx, s.d.rebind("DELETE FROM registrations WHERE username = ? AND contact = ?"),
		username, contact)
	if err != nil {
		return fmt.Errorf("delete %s: %w", registrationCulprit(username, contact), err)
	}
	return nil
}

// ApplyRegistrations deletes and saves bindings in one transaction: a batch
// of thousands costs one commit, and saves go 256 rows to a statement. When
// saves holds the same binding twice, the last one is stored.
func (s *Store) ApplyRegistrations(ctx context.Context, saves []store.Registration, deletes []store.RegistrationKey) error {
	if len(saves) == 0 && len(deletes) == 0 {
		return nil
	}
	saves = lastOfEachBinding(saves)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("apply registrations: begin: %w", err)
	}
	defer tx.Rollback()
	if len(deletes) > 0 {
		del, err := tx.PrepareContext(ctx, s.d.rebind("DELETE FROM registrations WHERE username = ? AND contact = ?"))
		if err != nil {
			return fmt.Errorf("apply registrations: %w", err)
		}
		defer del.Close()
		for _, k := range deletes {
			if _, err := del.ExecContext(ctx, k.Username, k.Contact); err != nil {
				return fmt.Errorf("delete %s: %w", registrationCulprit(k.Username, k.Contact), err)
			}
		}
	}
	var full *sql.Stmt // the statement for registrationRows rows, prepared once per batch
	args := make([]any, 0, 15*min(len(saves), registrationRows))
	for len(saves) > 0 {
		chunk := saves[:min(len(saves), registrationRows)]
		saves = saves[len(chunk):]
		args = args[:0]
		for i := range chunk {
			args = registrationArgs(args, &chunk[i])
		}
		var err error
		if len(chunk) == registrationRows {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, s.d.rebind(saveRegistrationsSQL(registrationRows))); err != nil {
					return fmt.Errorf("apply registrations: %w", err)
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, s.d.rebind(saveRegistrationsSQL(len(chunk))), args...)
		}
		if err != nil {
			return fmt.Errorf("save %d registrations from %s: %w", len(chunk), registrationCulprit(chunk[0].Username, chunk[0].Contact), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply registrations: commit: %w", err)
	}
	return nil
}

// lastOfEachBinding returns saves without the earlier of two saves of the
// same binding (one statement cannot update a row twice on PostgreSQL).
func lastOfEachBinding(saves []store.Registration) []store.Registration {
	seen := make(map[store.RegistrationKey]int, len(saves))
	dup := false
	for i := range saves {
		k := store.RegistrationKey{Username: saves[i].Username, Contact: saves[i].Contact}
		if _, ok := seen[k]; ok {
			dup = true
		}
		seen[k] = i
	}
	if !dup {
		return saves
	}
	out := make([]store.Registration, 0, len(seen))
	for i := range saves {
		if seen[store.RegistrationKey{Username: saves[i].Username, Contact: saves[i].Contact}] == i {
			out = append(out, saves[i])
		}
	}
	return out
}

// LoadRegistrations deletes the bindings that expired at now and returns
// the others, ordered by username and contact. now should be the current
// time: a later one would delete live bindings.
func (s *Store) LoadRegistrations(ctx context.Context, now time.Time) ([]store.Registration, error) {
	now = normTime(now)
	if _, err := s.db.ExecContext(ctx, s.d.rebind("DELETE FROM registrations WHERE expires <= ?"), now); err != nil {
		return nil, fmt.Errorf("delete expired registrations: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind("SELECT "+registrationCols+
		" FROM registrations WHERE expires > ? ORDER BY username, contact"), now)
	if err != nil {
		return nil, fmt.Errorf("load registrations: %w", err)
	}
	defer rows.Close()
	regs := []store.Registration{}
	for rows.Next() {
		var r store.Registration
		var expires, registered, lastPing dbTime
		var cseq int64
		if err := rows.Scan(&r.Username, &r.Contact, &r.SIPUserID, &r.AccountID, &r.Source, &r.Transport, &expires,
			&registered, &r.CallID, &cseq, &r.UserAgent, &r.LatencyMS, &lastPing, &r.Node, &r.NodeAddr); err != nil {
			return nil, fmt.Errorf("load registrations: %w", err)
		}
		r.Expires, r.Registered, r.LastPing = time.Time(expires), time.Time(registered), time.Time(lastPing)
		r.CSeq = uint32(cseq)
		regs = append(regs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load registrations: %w", err)
	}
	return regs, nil
}
