-- Web UI sign-ins (SQLite): operators, and users of one account (the
-- customer portal). Only an argon2id hash of the password is stored.

-- +goose Up
CREATE TABLE logins (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    username   TEXT     NOT NULL,
    scope      TEXT     NOT NULL,
    account_id INTEGER  REFERENCES accounts (id) ON DELETE CASCADE,
    hash       TEXT     NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX logins_username ON logins (username);
CREATE INDEX logins_account_id ON logins (account_id);

-- +goose Down
DROP TABLE logins;
