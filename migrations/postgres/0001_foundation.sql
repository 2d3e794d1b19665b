-- Foundation schema: institutions, accounts (operators included), clients, signing keys,
-- sessions and the append-only audit log. Never edit this file once applied; add a new one.

CREATE TABLE institutions (
    code             TEXT PRIMARY KEY CHECK (code ~ '^[0-9]{10}$'),
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('medical','dental','pharmacy','home_nursing','platform')),
    usage_start      DATE NOT NULL,
    settings         TEXT NOT NULL DEFAULT '{}',
    settings_version BIGINT NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL
);

-- The platform operators' pseudo-institution: operators sign in with code 0000000000.
INSERT INTO institutions (code, name, kind, usage_start, created_at)
VALUES ('0000000000', '運用事業者', 'platform', DATE '2000-01-01', TIMESTAMPTZ '2000-01-01 00:00:00+00');

CREATE TABLE accounts (
    id                     UUID PRIMARY KEY,
    institution_code       TEXT NOT NULL REFERENCES institutions (code),
    account_type           TEXT NOT NULL CHECK (account_type IN ('operator','master','master_reset','manager','general','clinical_viewer','web_api','linked_app','card_reader')),
    user_id                TEXT NOT NULL,
    name                   TEXT NOT NULL,
    name_kana              TEXT NOT NULL,
    enabled                BOOLEAN NOT NULL DEFAULT TRUE,
    lock_state             TEXT NOT NULL DEFAULT 'none' CHECK (lock_state IN ('none','failures','admin')),
    locked_at              TIMESTAMPTZ,
    failed_attempts        BIGINT NOT NULL DEFAULT 0,
    usage_start            DATE NOT NULL,
    usage_end              DATE NOT NULL DEFAULT DATE '9999-12-31',
    second_factor_method   TEXT CHECK (second_factor_method IN ('email','sms','voice')),
    second_factor_email    TEXT,
    second_factor_phone    TEXT,
    second_factor_verified BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash          TEXT NOT NULL,
    initial_issued_at      TIMESTAMPTZ,
    initial_sealed         BYTEA,
    password_changed_at    TIMESTAMPTZ,
    notice_issued          BOOLEAN NOT NULL DEFAULT FALSE,
    last_login_at          TIMESTAMPTZ,
    created_by             UUID,
    created_at             TIMESTAMPTZ NOT NULL,
    deleted_at             TIMESTAMPTZ,
    -- Deleted rows keep their user ID: an ID is never reused within an institution.
    CONSTRAINT accounts_user_id_unique UNIQUE (institution_code, user_id),
    CHECK (usage_start <= usage_end)
);

CREATE INDEX accounts_institution_type ON accounts (institution_code, account_type);

CREATE TABLE clients (
    client_id                 TEXT PRIMARY KEY,
    secret_hash               TEXT,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    grant_types               TEXT NOT NULL,
    scopes                    TEXT NOT NULL,
    backchannel_logout_uri    TEXT,
    signing_alg               TEXT NOT NULL CHECK (signing_alg IN ('RS256','ES256','EdDSA')),
    created_at                TIMESTAMPTZ NOT NULL
);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    private_sealed BYTEA NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    retired_at     TIMESTAMPTZ
);

CREATE TABLE sessions (
    id_hash                      TEXT PRIMARY KEY,
    account_id                   UUID NOT NULL REFERENCES accounts (id),
    institution_settings_version BIGINT NOT NULL,
    auth_time                    TIMESTAMPTZ NOT NULL,
    amr                          TEXT NOT NULL,
    created_at                   TIMESTAMPTZ NOT NULL,
    last_seen_at                 TIMESTAMPTZ NOT NULL,
    expires_at                   TIMESTAMPTZ NOT NULL,
    ip                           TEXT,
    user_agent                   TEXT
);

CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE audit_events (
    seq               BIGSERIAL PRIMARY KEY,
    at                TIMESTAMPTZ NOT NULL,
    kind              TEXT NOT NULL,
    actor_account_id  UUID,
    actor             TEXT NOT NULL,
    target_account_id UUID,
    target            TEXT,
    institution_code  TEXT,
    ip                TEXT,
    user_agent        TEXT,
    result            TEXT NOT NULL CHECK (result IN ('success','failure')),
    reason            TEXT
);

CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_institution_at ON audit_events (institution_code, at);

-- The audit log is append-only: the database itself refuses updates and deletes.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
