-- When a party's media goes through the media relay (rtpengine, sipward
-- serve --rtpengine): "auto" (behind NAT or a private SDP address),
-- "always" or "never", per IP endpoint and SIP user. Existing ones get
-- "auto", the default; without --rtpengine nothing is relayed whatever the
-- mode.

-- +goose Up
ALTER TABLE ip_endpoints ADD COLUMN media_relay TEXT NOT NULL DEFAULT 'auto';
ALTER TABLE sip_users ADD COLUMN media_relay TEXT NOT NULL DEFAULT 'auto';

-- +goose Down
ALTER TABLE ip_endpoints DROP COLUMN media_relay;
ALTER TABLE sip_users DROP COLUMN media_relay;
