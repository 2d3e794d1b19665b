-- Access tokens that have no grant, revoked one by one (RFC 7009): registered clients' own
-- client_credentials tokens. They are JWTs, valid by their signature alone, so a revoked one is
-- kept here by its `jti` until it would have expired, and then purged.

CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX revoked_access_tokens_expiry ON revoked_access_tokens (expires_at);
