-- Previous password hashes, so a new password can be refused when it repeats one of the last
-- N (password.history_depth). Only argon2id hashes are kept, never passwords.

CREATE TABLE password_history (
    account_id BLOB NOT NULL REFERENCES accounts (id),
    hash       TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX password_history_account ON password_history (account_id, created_at DESC);
CREATE INDEX audit_events_target_at ON audit_events (target_account_id, at);
