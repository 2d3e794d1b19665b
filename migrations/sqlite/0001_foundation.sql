-- Foundation schema: institutions, accounts (operators included), clients, signing keys,
-- sessions and the append-only audit log. Never edit this file once applied; add a new one.
-- Timestamps are stored as fixed-width RFC 3339 text in UTC with six fraction digits
-- (2000-01-01T00:00:00.000000Z) so that text comparison and ORDER BY are chronological; the store
-- writes them in that form (store/src/common.rs, `Timestamp`). Dates are YYYY-MM-DD, UUIDs
-- 16-byte blobs, booleans 0/1.

CREATE TABLE institutions (
    code             TEXT PRIMARY KEY CHECK (length(code) = 10 AND code NOT GLOB '*[^0-9]*'),
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('medical','dental','pharmacy','home_nursing','platform')),
    usage_start      TEXT NOT NULL,
    settings         TEXT NOT NULL DEFAULT '{}',
    settings_version INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL
) STRICT;

-- The platform operators' pseudo-institution: operators sign in with code 0000000000.
INSERT INTO institutions (code, name, kind, usage_start, created_at)
VALUES ('0000000000', '運用事業者', 'platform', '2000-01-01', '2000-01-01T00:00:00.000000Z');

CREATE TABLE accounts (
    id                     BLOB PRIMARY KEY,
    institution_code       TEXT NOT NULL REFERENCES institutions (code),
    account_type           TEXT NOT NULL CHECK (account_type IN ('operator','master','master_reset','manager','general','clinical_viewer','web_api','linked_app','card_reader')),
    user_id                TEXT NOT NULL,
    name                   TEXT NOT NULL,
    name_kana              TEXT NOT NULL,
    enabled                INTEGER NOT NULL DEFAULT 1,
    lock_state             TEXT NOT NULL DEFAULT 'none' CHECK (lock_state IN ('none','failures','admin')),
    locked_at              TEXT,
    failed_attempts        INTEGER NOT NULL DEFAULT 0,
    usage_start            TEXT NOT NULL,
    usage_end              TEXT NOT NULL DEFAULT '9999-12-31',
    second_factor_method   TEXT CHECK (second_factor_method IN ('email','sms','voice')),
    second_factor_email    TEXT,
    second_factor_phone    TEXT,
    second_factor_verified INTEGER NOT NULL DEFAULT 0,
    password_hash          TEXT NOT NULL,
    initial_issued_at      TEXT,
    initial_sealed         BLOB,
    password_changed_at    TEXT,
    notice_issued          INTEGER NOT NULL DEFAULT 0,
    last_login_at          TEXT,
    created_by             BLOB,
    created_at             TEXT NOT NULL,
    deleted_at             TEXT,
    -- Deleted rows keep their user ID: an ID is never reused within an institution.
    CONSTRAINT accounts_user_id_unique UNIQUE (institution_code, user_id),
    CHECK (usage_start <= usage_end)
) STRICT;

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
    created_at                TEXT NOT NULL
) STRICT;

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    private_sealed BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    retired_at     TEXT
) STRICT;

CREATE TABLE sessions (
    id_hash                      TEXT PRIMARY KEY,
    account_id                   BLOB NOT NULL REFERENCES accounts (id),
    institution_settings_version INTEGER NOT NULL,
    auth_time                    TEXT NOT NULL,
    amr                          TEXT NOT NULL,
    created_at                   TEXT NOT NULL,
    last_seen_at                 TEXT NOT NULL,
    expires_at                   TEXT NOT NULL,
    ip                           TEXT,
    user_agent                   TEXT
) STRICT;

CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE audit_events (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    at                TEXT NOT NULL,
    kind              TEXT NOT NULL,
    actor_account_id  BLOB,
    actor             TEXT NOT NULL,
    target_account_id BLOB,
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
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
