package sqlstore

import (
	"context"
	"fmt"
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
	"registered, call_id, cseq, user_agent, latency_ms, last_ping"

// saveRegistrationSQL inserts a binding or replaces every field of the one
// with the same (username, contact).
const saveRegistrationSQL = "INSERT INTO registrations (" + registrationCols + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (username, contact) DO UPDATE SET
		sip_user_id = excluded.sip_user_id, account_id = excluded.account_id,
		source = excluded.source, transport = excluded.transport,
		expires = excluded.expires, registered = excluded.registered,
		call_id = excluded.call_id, cseq = excluded.cseq, user_agent = excluded.user_agent,
		latency_ms = excluded.latency_ms, last_ping = excluded.last_ping`

func registrationCulprit(username, contact string) string {
	return fmt.Sprintf("registration %q %q", username, contact)
}

// SaveRegistration stores r, replacing the binding with the same Username
// and Contact. Times are kept in UTC to the microsecond; a zero Registered
// or LastPing is stored as NULL.
func (s *Store) SaveRegistration(ctx context.Context, r store.Registration) error {
	_, err := s.db.ExecContext(ctx, s.d.rebind(saveRegistrationSQL),
		r.Username, r.Contact, r.SIPUserID, r.AccountID, r.Source, r.Transport, normTime(r.Expires),
		nullTime(r.Registered), r.CallID, int64(r.CSeq), r.UserAgent, r.LatencyMS, nullTime(r.LastPing))
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

// ApplyRegistrations deletes and saves bindings in one transaction, with
// prepared statements: a batch of thousands costs one commit.
func (s *Store) ApplyRegistrations(ctx context.Context, saves []store.Registration, deletes []store.RegistrationKey) error {
	if len(saves) == 0 && len(deletes) == 0 {
		return nil
	}
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
	if len(saves) > 0 {
		save, err := tx.PrepareContext(ctx, s.d.rebind(saveRegistrationSQL))
		if err != nil {
			return fmt.Errorf("apply registrations: %w", err)
		}
		defer save.Close()
		for _, r := range saves {
			if _, err := save.ExecContext(ctx, r.Username, r.Contact, r.SIPUserID, r.AccountID, r.Source, r.Transport,
				normTime(r.Expires), nullTime(r.Registered), r.CallID, int64(r.CSeq), r.UserAgent, r.LatencyMS, nullTime(r.LastPing)); err != nil {
				return fmt.Errorf("save %s: %w", registrationCulprit(r.Username, r.Contact), err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply registrations: commit: %w", err)
	}
	return nil
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
			&registered, &r.CallID, &cseq, &r.UserAgent, &r.LatencyMS, &lastPing); err != nil {
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
