-- Change log (PostgreSQL): which configuration objects each committed Update
-- created, updated or deleted, so that a node can apply a change to its
-- snapshot instead of reloading everything (store.Tx.ChangesSince). The
-- store prunes old revisions; changes_start says where the log begins.

-- +goose Up
CREATE TABLE changes (
    rev  BIGINT NOT NULL,
    kind TEXT   NOT NULL,
    id   BIGINT NOT NULL,
    PRIMARY KEY (rev, kind, id)
);

-- One row: the log holds every change of the revisions after rev. Earlier
-- revisions were pruned, or predate the log (a database migrated with data).
CREATE TABLE changes_start (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    rev BIGINT  NOT NULL
);
INSERT INTO changes_start (id, rev) SELECT 1, rev FROM revision WHERE id = 1;

-- +goose Down
DROP TABLE changes_start;
DROP TABLE changes;
