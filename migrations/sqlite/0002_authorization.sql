-- Authorization grants and codes (OpenID Connect authorization code flow).
-- A grant is what one authorization produced; codes and tokens hang off it, so revoking the
-- grant (e.g. when a code is replayed) revokes everything it issued.

CREATE TABLE grants (
    id              BLOB PRIMARY KEY,
    account_id      BLOB NOT NULL REFERENCES accounts (id),
    client_id       TEXT NOT NULL REFERENCES clients (client_id),
    session_id_hash TEXT,
    scopes          TEXT NOT NULL,
    auth_time       TEXT NOT NULL,
    amr             TEXT NOT NULL,
    acr             TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    revoked_at      TEXT
) STRICT;

CREATE INDEX grants_account ON grants (account_id);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       BLOB NOT NULL REFERENCES grants (id),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    used_at        TEXT
) STRICT;

CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);
