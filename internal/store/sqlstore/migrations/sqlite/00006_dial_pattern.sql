-- An IP endpoint's dial pattern now acts (package paramrewrite): "e164",
-- "international", "national:CC" or "none". It used to be free text that
-- nothing read, so any other value stored becomes "none", which keeps such an
-- endpoint's numbers exactly as they were handled; "" becomes "e164", the
-- default it already showed. The revision moves on and the change log
-- restarts there when anything changed, as in migration 5.

-- +goose Up
UPDATE revision SET rev = rev + 1
 WHERE id = 1
   AND EXISTS (SELECT 1 FROM ip_endpoints WHERE dial_pattern NOT IN ('e164', 'international', 'none'));
UPDATE ip_endpoints SET dial_pattern = 'e164' WHERE dial_pattern = '';
UPDATE ip_endpoints SET dial_pattern = 'none' WHERE dial_pattern NOT IN ('e164', 'international', 'none');
UPDATE changes_start SET rev = (SELECT rev FROM revision WHERE id = 1) WHERE id = 1;

-- +goose Down
SELECT 1;
