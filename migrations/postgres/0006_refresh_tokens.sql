-- Refresh tokens (scope offline_access): opaque, stored as SHA-256, rotated on every use. A grant
-- is the token family: reusing a rotated token revokes the grant and with it every token issued
-- under it.

CREATE TABLE refresh_tokens (
    token_hash                   TEXT PRIMARY KEY,
    grant_id                     UUID NOT NULL REFERENCES grants (id),
    institution_settings_version BIGINT NOT NULL,
    created_at                   TIMESTAMPTZ NOT NULL,
    idle_expires_at              TIMESTAMPTZ NOT NULL,
    absolute_expires_at          TIMESTAMPTZ NOT NULL,
    used_at                      TIMESTAMPTZ
);

CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
