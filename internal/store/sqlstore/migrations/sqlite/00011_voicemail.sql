-- Voicemail (SQLite). sip_users gets voicemail_ring_timeout: how many
-- seconds a call rings the user's phones before it goes to the mailbox
-- (existing users get the default, 25). voicemail_messages and
-- voicemail_greetings hold the mailboxes: live state, not configuration. The
-- store writes them with plain statements, outside Update, and they do not
-- advance the revision. Unlike registrations they belong to their SIP user:
-- deleting the user deletes them (ON DELETE CASCADE; the store opens SQLite
-- with foreign_keys on). account_id is a copy of the user's, kept for
-- listing without a join.

-- +goose Up
ALTER TABLE sip_users ADD COLUMN voicemail_ring_timeout INTEGER NOT NULL DEFAULT 25;

CREATE TABLE voicemail_messages (
    id            INTEGER  PRIMARY KEY AUTOINCREMENT,
    sip_user_id   INTEGER  NOT NULL REFERENCES sip_users (id) ON DELETE CASCADE,
    account_id    INTEGER  NOT NULL DEFAULT 0,
    caller        TEXT     NOT NULL DEFAULT '',
    called        TEXT     NOT NULL DEFAULT '',
    created_at    DATETIME NOT NULL,
    duration_ms   BIGINT   NOT NULL DEFAULT 0,
    read          BOOLEAN  NOT NULL DEFAULT 0,
    mail_status   TEXT     NOT NULL DEFAULT 'none',
    mail_attempts INTEGER  NOT NULL DEFAULT 0,
    mail_error    TEXT     NOT NULL DEFAULT '',
    mail_sent_at  DATETIME, -- NULL: not sent
    audio         BLOB     NOT NULL -- WAV file
);
CREATE INDEX voicemail_messages_user ON voicemail_messages (sip_user_id, id);
-- Messages whose mail is still to send, for a restarted node to resume.
CREATE INDEX voicemail_messages_pending ON voicemail_messages (id) WHERE mail_status = 'pending';

CREATE TABLE voicemail_greetings (
    sip_user_id INTEGER  PRIMARY KEY REFERENCES sip_users (id) ON DELETE CASCADE,
    audio       BLOB     NOT NULL, -- WAV file
    updated_at  DATETIME NOT NULL
);

-- +goose Down
DROP TABLE voicemail_greetings;
DROP TABLE voicemail_messages;
ALTER TABLE sip_users DROP COLUMN voicemail_ring_timeout;
