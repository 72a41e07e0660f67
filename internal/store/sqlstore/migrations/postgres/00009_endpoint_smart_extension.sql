-- Smart Extension on IP endpoints as well as SIP users: sipward carries out
-- transfers (REFER) in the endpoint's calls itself instead of relaying them.
-- Existing endpoints get false: REFER relayed as before.

-- +goose Up
ALTER TABLE ip_endpoints ADD COLUMN smart_extension BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE ip_endpoints DROP COLUMN smart_extension;
