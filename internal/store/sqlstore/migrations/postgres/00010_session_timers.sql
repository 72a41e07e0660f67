-- Session timers (RFC 4028) per IP endpoint and SIP user: session_timers
-- turns them on for the party's calls, session_expires is the interval
-- sipward offers as Session-Expires (90 to 86400 seconds). Existing ones get
-- the defaults: on, 1800 seconds.

-- +goose Up
ALTER TABLE ip_endpoints ADD COLUMN session_timers BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE ip_endpoints ADD COLUMN session_expires INTEGER NOT NULL DEFAULT 1800;
ALTER TABLE sip_users ADD COLUMN session_timers BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE sip_users ADD COLUMN session_expires INTEGER NOT NULL DEFAULT 1800;

-- +goose Down
ALTER TABLE ip_endpoints DROP COLUMN session_timers;
ALTER TABLE ip_endpoints DROP COLUMN session_expires;
ALTER TABLE sip_users DROP COLUMN session_timers;
ALTER TABLE sip_users DROP COLUMN session_expires;
