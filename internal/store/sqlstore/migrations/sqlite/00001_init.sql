-- Initial schema of the configuration store (SQLite).
-- Times are DATETIME text in UTC ("2006-01-02 15:04:05.999999-07:00"), which
-- sorts in time order; string slices are JSON arrays; booleans are 0/1.

-- +goose Up
CREATE TABLE accounts (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    name       TEXT     NOT NULL,
    channels   INTEGER  NOT NULL DEFAULT 0,
    cps        INTEGER  NOT NULL DEFAULT 0,
    block_from INTEGER  NOT NULL DEFAULT 0,
    block_size INTEGER  NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

CREATE TABLE ip_endpoints (
    id                 INTEGER  PRIMARY KEY AUTOINCREMENT,
    account_id         INTEGER  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    address            TEXT     NOT NULL,
    direction          TEXT     NOT NULL,
    channels           INTEGER  NOT NULL DEFAULT 0,
    cps                INTEGER  NOT NULL DEFAULT 0,
    protocol           TEXT     NOT NULL DEFAULT '',
    port               INTEGER  NOT NULL DEFAULT 0,
    manufacturer       TEXT     NOT NULL DEFAULT '',
    version            TEXT     NOT NULL DEFAULT '',
    dial_pattern       TEXT     NOT NULL DEFAULT '',
    tech_prefix        TEXT     NOT NULL DEFAULT '',
    cli_prefix         TEXT     NOT NULL DEFAULT '',
    force_from         TEXT     NOT NULL DEFAULT '',
    username           TEXT     NOT NULL DEFAULT '',
    password_sealed    BLOB,
    force_nat          BOOLEAN  NOT NULL DEFAULT 0,
    intercept_reinvite BOOLEAN  NOT NULL DEFAULT 0,
    outbound_proxy     TEXT     NOT NULL DEFAULT '',
    cli_auth           BOOLEAN  NOT NULL DEFAULT 0,
    disable_nat        BOOLEAN  NOT NULL DEFAULT 0,
    restricted_codecs  TEXT     NOT NULL DEFAULT '[]',
    created_at         DATETIME NOT NULL,
    updated_at         DATETIME NOT NULL
);
CREATE INDEX ip_endpoints_account_id ON ip_endpoints (account_id);

CREATE TABLE profiles (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL,
    channels          INTEGER NOT NULL DEFAULT 0,
    cps               INTEGER NOT NULL DEFAULT 0,
    protocol          TEXT    NOT NULL DEFAULT '',
    nat_ping          TEXT    NOT NULL DEFAULT '',
    restricted_codecs TEXT    NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX profiles_name ON profiles (name);

CREATE TABLE sip_users (
    id                INTEGER  PRIMARY KEY AUTOINCREMENT,
    account_id        INTEGER  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    username          TEXT     NOT NULL,
    realm             TEXT     NOT NULL,
    ha1_md5           TEXT     NOT NULL DEFAULT '',
    ha1_sha256        TEXT     NOT NULL DEFAULT '',
    profile_id        INTEGER  REFERENCES profiles (id) ON DELETE SET NULL,
    channels          INTEGER  NOT NULL DEFAULT 0,
    cps               INTEGER  NOT NULL DEFAULT 0,
    protocol          TEXT     NOT NULL DEFAULT '',
    ip_whitelist      TEXT     NOT NULL DEFAULT '[]',
    nat_ping          TEXT     NOT NULL DEFAULT '',
    retain_did        BOOLEAN  NOT NULL DEFAULT 0,
    smart_extension   BOOLEAN  NOT NULL DEFAULT 0,
    restricted_codecs TEXT     NOT NULL DEFAULT '[]',
    vm_enabled        BOOLEAN  NOT NULL DEFAULT 0,
    vm_email          TEXT     NOT NULL DEFAULT '',
    vm_pin_hash       TEXT     NOT NULL DEFAULT '',
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL
);
CREATE UNIQUE INDEX sip_users_realm_username ON sip_users (realm, username);
CREATE INDEX sip_users_account_id ON sip_users (account_id);
CREATE INDEX sip_users_profile_id ON sip_users (profile_id);

CREATE TABLE cli_patterns (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    pattern    TEXT    NOT NULL,
    regex      BOOLEAN NOT NULL DEFAULT 0
);
CREATE INDEX cli_patterns_account_id ON cli_patterns (account_id);

CREATE TABLE dids (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    number      TEXT    NOT NULL,
    sip_user_id INTEGER REFERENCES sip_users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX dids_number ON dids (number);
CREATE INDEX dids_account_id ON dids (account_id);
CREATE INDEX dids_sip_user_id ON dids (sip_user_id);

-- Rewrite rules belong to an endpoint or a SIP user (owner_kind, owner_id).
-- No foreign key can express that, so the store deletes them explicitly.
CREATE TABLE rewrite_rules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_kind  TEXT    NOT NULL CHECK (owner_kind IN ('endpoint', 'sip_user')),
    owner_id    INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    regex       BOOLEAN NOT NULL DEFAULT 0,
    match_value TEXT    NOT NULL DEFAULT '',
    replacement TEXT    NOT NULL DEFAULT '',
    sort_order  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX rewrite_rules_owner ON rewrite_rules (owner_kind, owner_id, sort_order);

CREATE TABLE bans (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    address    TEXT     NOT NULL,
    reason     TEXT     NOT NULL DEFAULT '',
    source     TEXT     NOT NULL,
    created_at DATETIME NOT NULL,
    expires_at DATETIME -- NULL: never
);

CREATE TABLE tokens (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    name       TEXT     NOT NULL,
    scope      TEXT     NOT NULL,
    account_id INTEGER  REFERENCES accounts (id) ON DELETE CASCADE,
    hash       TEXT     NOT NULL,
    created_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX tokens_hash ON tokens (hash);
CREATE INDEX tokens_account_id ON tokens (account_id);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row: the configuration revision, bumped by every Update that wrote.
CREATE TABLE revision (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    rev INTEGER NOT NULL
);
INSERT INTO revision (id, rev) VALUES (1, 0);

-- +goose Down
DROP TABLE revision;
DROP TABLE settings;
DROP TABLE tokens;
DROP TABLE bans;
DROP TABLE rewrite_rules;
DROP TABLE dids;
DROP TABLE cli_patterns;
DROP TABLE sip_users;
DROP TABLE profiles;
DROP TABLE ip_endpoints;
DROP TABLE accounts;
