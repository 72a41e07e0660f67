-- Every SIP user holds at least one channel of its account's capacity: 0 no
-- longer means "unlimited" for SIP users (nor for the profiles users are made
-- from), since such a user sidestepped the capacity rule. Unlimited users and
-- profiles get one channel. An account whose users now hold more than its
-- capacity keeps it (calls are still capped by it at call time); raising a
-- user's channels there is refused until they fit.
--
-- The configuration revision moves on, and the change log restarts there,
-- so that running nodes reload everything instead of applying a log that
-- does not hold this change.

-- +goose Up
UPDATE revision SET rev = rev + 1
 WHERE id = 1
   AND (EXISTS (SELECT 1 FROM sip_users WHERE channels = 0) OR EXISTS (SELECT 1 FROM profiles WHERE channels = 0));
UPDATE sip_users SET channels = 1 WHERE channels = 0;
UPDATE profiles SET channels = 1 WHERE channels = 0;
UPDATE changes_start SET rev = (SELECT rev FROM revision WHERE id = 1) WHERE id = 1;

-- +goose Down
-- Which users were unlimited is not kept: one channel each stays.
SELECT 1;
