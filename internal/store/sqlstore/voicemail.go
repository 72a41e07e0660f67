package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sipward/sipward/internal/store"
)

var _ store.Mailboxes = (*Store)(nil)

// Voicemail messages and greetings are live state, like registrar bindings:
// each call below is one plain statement on the pool, outside Update. It
// does not queue on the gate, does not take PostgreSQL's write lock, does
// not advance Revision and is not in the change log. They belong to their
// SIP user: its row's ON DELETE CASCADE deletes them with it.

const messageCols = "id, sip_user_id, account_id, caller, called, created_at, duration_ms, read, " +
	"mail_status, mail_attempts, mail_error, mail_sent_at"

func messageCulprit(userID, id int64) string {
	return fmt.Sprintf("voicemail message %d of sip user %d", id, userID)
}

func greetingCulprit(userID int64) string {
	return fmt.Sprintf("voicemail greeting of sip user %d", userID)
}

// mailStatus is st's status as stored: empty is store.MailNone.
func mailStatus(st store.MailState) string {
	if st.Status == "" {
		return store.MailNone
	}
	return st.Status
}

// blob stores a nil slice as an empty one: the audio columns are NOT NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func scanMessage(sc scanner) (store.VoicemailMessage, error) {
	var m store.VoicemailMessage
	var created, sent dbTime
	err := sc.Scan(&m.ID, &m.SIPUserID, &m.AccountID, &m.Caller, &m.Called, &created, &m.DurationMS, &m.Read,
		&m.Mail.Status, &m.Mail.Attempts, &m.Mail.Error, &sent)
	m.CreatedAt, m.Mail.SentAt = time.Time(created), time.Time(sent)
	return m, err
}

// SaveMessage stores m and its audio as a new message and sets m.ID (a
// caller-set ID is ignored). A zero CreatedAt becomes the current time, an
// empty Mail.Status store.MailNone; m is left in its stored form (times in
// UTC to the microsecond). A missing SIP user is store.ErrNotFound.
func (s *Store) SaveMessage(ctx context.Context, m *store.VoicemailMessage, wav []byte) error {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now()
	}
	m.CreatedAt, m.Mail.SentAt = normTime(m.CreatedAt), normTime(m.Mail.SentAt)
	m.Mail.Status = mailStatus(m.Mail)
	q := "INSERT INTO voicemail_messages (sip_user_id, account_id, caller, called, created_at, duration_ms, read, " +
		"mail_status, mail_attempts, mail_error, mail_sent_at, audio) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
	var id int64
	err := s.db.QueryRowContext(ctx, s.d.rebind(q), m.SIPUserID, m.AccountID, m.Caller, m.Called, m.CreatedAt,
		m.DurationMS, m.Read, m.Mail.Status, m.Mail.Attempts, m.Mail.Error, nullTime(m.Mail.SentAt), blob(wav)).Scan(&id)
	if err != nil {
		return writeErr(fmt.Sprintf("voicemail message of sip user %d", m.SIPUserID), "save", err)
	}
	m.ID = id
	return nil
}

// ListMessages returns the user's messages, oldest first (by ID); a user
// without messages, or a missing one, has none.
func (s *Store) ListMessages(ctx context.Context, userID int64) ([]store.VoicemailMessage, error) {
	return s.messages(ctx, fmt.Sprintf("list voicemail messages of sip user %d", userID),
		"SELECT "+messageCols+" FROM voicemail_messages WHERE sip_user_id = ? ORDER BY id", userID)
}

// PendingMail returns up to limit messages whose mail is pending, oldest
// first (by ID). A limit of 0 or less means no limit, as in store.Page.
func (s *Store) PendingMail(ctx context.Context, limit int) ([]store.VoicemailMessage, error) {
	// The status is a literal, not a parameter, so that PostgreSQL can use
	// the partial index on it in a generic plan.
	q := "SELECT " + messageCols + " FROM voicemail_messages WHERE mail_status = '" + store.MailPending + "' ORDER BY id"
	var args []any
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	return s.messages(ctx, "list pending voicemail mail", q, args...)
}

// messages runs a query of messageCols and returns its rows; what names the
// query in errors.
func (s *Store) messages(ctx context.Context, what, q string, args ...any) ([]store.VoicemailMessage, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	msgs := []store.VoicemailMessage{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return msgs, nil
}

// GetMessage returns the user's message id; a message of another user is
// store.ErrNotFound.
func (s *Store) GetMessage(ctx context.Context, userID, id int64) (store.VoicemailMessage, error) {
	q := "SELECT " + messageCols + " FROM voicemail_messages WHERE id = ? AND sip_user_id = ?"
	m, err := scanMessage(s.db.QueryRowContext(ctx, s.d.rebind(q), id, userID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.VoicemailMessage{}, notFound(messageCulprit(userID, id))
	case err != nil:
		return store.VoicemailMessage{}, fmt.Errorf("get %s: %w", messageCulprit(userID, id), err)
	}
	return m, nil
}

// MessageAudio returns the audio of the user's message id.
func (s *Store) MessageAudio(ctx context.Context, userID, id int64) ([]byte, error) {
	var wav []byte
	err := s.db.QueryRowContext(ctx, s.d.rebind("SELECT audio FROM voicemail_messages WHERE id = ? AND sip_user_id = ?"),
		id, userID).Scan(&wav)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, notFound(messageCulprit(userID, id))
	case err != nil:
		return nil, fmt.Errorf("read audio of %s: %w", messageCulprit(userID, id), err)
	}
	return blob(wav), nil
}

// SetMessageRead marks the user's message id read or unread.
func (s *Store) SetMessageRead(ctx context.Context, userID, id int64, read bool) error {
	return s.execOne(ctx, "mark", messageCulprit(userID, id),
		"UPDATE voicemail_messages SET read = ? WHERE id = ? AND sip_user_id = ?", read, id, userID)
}

// DeleteMessage deletes the user's message id.
func (s *Store) DeleteMessage(ctx context.Context, userID, id int64) error {
	return s.execOne(ctx, "delete", messageCulprit(userID, id),
		"DELETE FROM voicemail_messages WHERE id = ? AND sip_user_id = ?", id, userID)
}

// SetMailState records how mailing message id went, whichever user's it is.
// An empty Status is stored as store.MailNone.
func (s *Store) SetMailState(ctx context.Context, id int64, st store.MailState) error {
	return s.execOne(ctx, "set mail state of", fmt.Sprintf("voicemail message %d", id),
		"UPDATE voicemail_messages SET mail_status = ?, mail_attempts = ?, mail_error = ?, mail_sent_at = ? WHERE id = ?",
		mailStatus(st), st.Attempts, st.Error, nullTime(st.SentAt), id)
}

// execOne runs a write statement that must match a row: matching none is
// store.ErrNotFound with culprit. (SQLite and PostgreSQL count the rows
// matched, changed or not.)
func (s *Store) execOne(ctx context.Context, verb, culprit, q string, args ...any) error {
	res, err := s.db.ExecContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return writeErr(culprit, verb, err)
	}
	n, err := res.RowsAffected()
	switch {
	case err != nil:
		return fmt.Errorf("%s %s: %w", verb, culprit, err)
	case n == 0:
		return notFound(culprit)
	}
	return nil
}

// MailboxUsage returns how many messages the user has, how many of them are
// unread and their total duration; a missing user has none.
func (s *Store) MailboxUsage(ctx context.Context, userID int64) (store.MailboxUsage, error) {
	// CAST: PostgreSQL sums a BIGINT column to a NUMERIC.
	q := "SELECT COUNT(*), COALESCE(SUM(CASE WHEN read THEN 0 ELSE 1 END), 0), " +
		"CAST(COALESCE(SUM(duration_ms), 0) AS BIGINT) FROM voicemail_messages WHERE sip_user_id = ?"
	var u store.MailboxUsage
	if err := s.db.QueryRowContext(ctx, s.d.rebind(q), userID).Scan(&u.Messages, &u.Unread, &u.DurationMS); err != nil {
		return store.MailboxUsage{}, fmt.Errorf("read mailbox usage of sip user %d: %w", userID, err)
	}
	return u, nil
}

// PutGreeting stores the user's greeting, replacing any. A missing SIP user
// is store.ErrNotFound.
func (s *Store) PutGreeting(ctx context.Context, userID int64, wav []byte) error {
	q := "INSERT INTO voicemail_greetings (sip_user_id, audio, updated_at) VALUES (?, ?, ?) " +
		"ON CONFLICT (sip_user_id) DO UPDATE SET audio = excluded.audio, updated_at = excluded.updated_at"
	if _, err := s.db.ExecContext(ctx, s.d.rebind(q), userID, blob(wav), now()); err != nil {
		return writeErr(greetingCulprit(userID), "put", err)
	}
	return nil
}

// Greeting returns the user's greeting, or store.ErrNotFound.
func (s *Store) Greeting(ctx context.Context, userID int64) ([]byte, error) {
	var wav []byte
	err := s.db.QueryRowContext(ctx, s.d.rebind("SELECT audio FROM voicemail_greetings WHERE sip_user_id = ?"),
		userID).Scan(&wav)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, notFound(greetingCulprit(userID))
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", greetingCulprit(userID), err)
	}
	return blob(wav), nil
}

// DeleteGreeting deletes the user's greeting; deleting none is not an error.
func (s *Store) DeleteGreeting(ctx context.Context, userID int64) error {
	_, err := s.db.ExecContext(ctx, s.d.rebind("DELETE FROM voicemail_greetings WHERE sip_user_id = ?"), userID)
	if err != nil {
		return fmt.Errorf("delete %s: %w", greetingCulprit(userID), err)
	}
	return nil
}
