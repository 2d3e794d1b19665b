-- Tokens issued before an account's last lock (in an earlier second) stay invalid after it is
-- unlocked (docs/oidc.md, "Machine accounts"; the `notBefore` of Keycloak's users). A machine
-- account's access tokens are stateless and bound only to its credential, which a lock does not
-- change, so before this column unlocking revived every unexpired token issued before the lock;
-- the same held for a person's access tokens and for refresh tokens not presented during the
-- lock. Accounts locked now get their lock time.

ALTER TABLE accounts ADD COLUMN tokens_not_before TIMESTAMPTZ;

UPDATE accounts SET tokens_not_before = locked_at WHERE locked_at IS NOT NULL;
