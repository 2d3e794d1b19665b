-- Retention of ended sign-in state (docs/oidc.md, "What is kept, and for how long"). Grants, their
-- authorization codes, browser sessions and one-time codes were never deleted: one row per
-- sign-in per client, one per sign-in and one per code sent, forever.
--
-- A grant is kept until `retain_until`, which the provider sets when it creates the grant (one
-- day past the longest the grant can matter under the settings of that moment), and then until
-- nothing hangs off it: no refresh token row and no session. Grants made before this migration
-- are kept one day past their creation; the same two checks protect the ones still in use.
ALTER TABLE grants ADD COLUMN retain_until TIMESTAMPTZ;

UPDATE grants SET retain_until = created_at + INTERVAL '1 day';

ALTER TABLE grants ALTER COLUMN retain_until SET NOT NULL;

CREATE INDEX grants_retention ON grants (retain_until, id);

-- The grants of a session, read at logout to notify their clients, were found by a full scan.
CREATE INDEX grants_session ON grants (session_id_hash);

-- Deleting a grant deletes its codes, and checks the foreign key of the rest: both by grant.
CREATE INDEX authorization_codes_grant ON authorization_codes (grant_id);

-- Sessions past their absolute expiry are deleted.
CREATE INDEX sessions_expires ON sessions (expires_at);

-- One-time codes, which are also the send log of the daily caps (counted from midnight in
-- Japan), are deleted two days after they were sent.
CREATE INDEX otp_challenges_created ON otp_challenges (created_at);
