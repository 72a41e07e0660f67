-- Audit trail (SQLite): one row per configuration change, appended in the
-- transaction that makes the change and never updated. changes is a JSON
-- object {field: {before, after}} with secrets already redacted. Rows are
-- deleted only by age (PruneAudit). account_id is NULL for objects of no
-- account; there is no foreign key: an entry outlives what it describes.

-- +goose Up
CREATE TABLE audit_log (
    id          INTEGER  PRIMARY KEY AUTOINCREMENT,
    time        DATETIME NOT NULL,
    actor       TEXT     NOT NULL,
    actor_scope TEXT     NOT NULL,
    account_id  INTEGER,
    source      TEXT     NOT NULL DEFAULT '',
    via         TEXT     NOT NULL DEFAULT '',
    action      TEXT     NOT NULL,
    object      TEXT     NOT NULL,
    object_id   INTEGER  NOT NULL DEFAULT 0,
    changes     TEXT     NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_time ON audit_log (time);
CREATE INDEX audit_log_object ON audit_log (object, object_id, id);
CREATE INDEX audit_log_account ON audit_log (account_id, id);

-- +goose Down
DROP TABLE audit_log;
