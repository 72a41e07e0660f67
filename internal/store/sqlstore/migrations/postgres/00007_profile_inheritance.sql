-- SIP profiles are live: a SIP user takes each of channels, cps, protocol,
-- nat_ping and restricted_codecs from its profile (or the defaults without
-- one) unless it sets its own. The columns keep the values that apply (the
-- store writes a profile's change through to its users in the same
-- transaction), and inherits lists, space-separated, the settings a user
-- takes from elsewhere.
--
-- Profiles used to be copied into a user at creation. A user of a profile
-- whose value equals the profile's now inherits it, so nothing that applies
-- changes today and the profile's next edit reaches it; a value that differs
-- was set on the user and stays its own. No revision move: no value that
-- applies changes.

-- +goose Up
ALTER TABLE sip_users ADD COLUMN inherits TEXT NOT NULL DEFAULT '';
UPDATE sip_users SET inherits = TRIM(
    (SELECT CASE WHEN p.channels = sip_users.channels THEN 'channels ' ELSE '' END
         || CASE WHEN p.cps = sip_users.cps THEN 'cps ' ELSE '' END
         || CASE WHEN p.protocol = sip_users.protocol THEN 'protocol ' ELSE '' END
         || CASE WHEN p.nat_ping = sip_users.nat_ping THEN 'nat_ping ' ELSE '' END
         || CASE WHEN p.restricted_codecs = sip_users.restricted_codecs THEN 'restricted_codecs' ELSE '' END
       FROM profiles p WHERE p.id = sip_users.profile_id))
 WHERE profile_id IS NOT NULL;

-- +goose Down
ALTER TABLE sip_users DROP COLUMN inherits;
