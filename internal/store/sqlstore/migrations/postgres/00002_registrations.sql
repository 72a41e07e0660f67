-- Registrar bindings (PostgreSQL): live state, not configuration. The store
-- writes them with plain statements, outside Update (no advisory lock), and
-- they do not advance the revision. No foreign key ties a binding to its SIP
-- user: a binding may outlive the user, and whoever loads it checks the user
-- still exists.

-- +goose Up
CREATE TABLE registrations (
    username    TEXT             NOT NULL,
    contact     TEXT             NOT NULL,
    sip_user_id BIGINT           NOT NULL DEFAULT 0,
    account_id  BIGINT           NOT NULL DEFAULT 0,
    source      TEXT             NOT NULL DEFAULT '',
    transport   TEXT             NOT NULL DEFAULT '',
    expires     TIMESTAMPTZ      NOT NULL,
    registered  TIMESTAMPTZ, -- NULL: unknown
    call_id     TEXT             NOT NULL DEFAULT '',
    cseq        BIGINT           NOT NULL DEFAULT 0, -- a uint32
    user_agent  TEXT             NOT NULL DEFAULT '',
    latency_ms  DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_ping   TIMESTAMPTZ, -- NULL: never pinged
    PRIMARY KEY (username, contact)
);
CREATE INDEX registrations_expires ON registrations (expires);

-- +goose Down
DROP TABLE registrations;
