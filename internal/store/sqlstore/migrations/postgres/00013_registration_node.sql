-- The node a registrar binding was made through: its id (unique per
-- process) and its SIP address (host:port of its UDP listener). With
-- several nodes sharing the store and Redis, a NAT-ed phone is reached
-- through the node that holds its NAT pinhole, and a node that restarts on
-- the same address takes back its bindings by that address. Existing
-- bindings get '' (made by a node running alone).

-- +goose Up
ALTER TABLE registrations ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE registrations ADD COLUMN node_addr TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE registrations DROP COLUMN node;
ALTER TABLE registrations DROP COLUMN node_addr;
