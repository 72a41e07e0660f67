-- Registrar bindings (SQLite): live state, not configuration. The store
-- writes them with plain statements, outside Update, and they do not advance
-- the revision. No foreign key ties a binding to its SIP user: a binding may
-- outlive the user, and whoever loads it checks the user still exists.

-- +goose Up
CREATE TABLE registrations (
    username    TEXT     NOT NULL,
    contact     TEXT     NOT NULL,
    sip_user_id INTEGER  NOT NULL DEFAULT 0,
    account_id  INTEGER  NOT NULL DEFAULT 0,
    source      TEXT     NOT NULL DEFAULT '',
    transport   TEXT     NOT NULL DEFAULT '',
    expires     DATETIME NOT NULL,
    registered  DATETIME, -- NULL: unknown
    call_id     TEXT     NOT NULL DEFAULT '',
    cseq        INTEGER  NOT NULL DEFAULT 0,
    user_agent  TEXT     NOT NULL DEFAULT '',
    latency_ms  REAL     NOT NULL DEFAULT 0,
    last_ping   DATETIME, -- NULL: never pinged
    PRIMARY KEY (username, contact)
);
CREATE INDEX registrations_expires ON registrations (expires);

-- +goose Down
DROP TABLE registrations;
