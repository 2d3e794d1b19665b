-- One-time codes of the second factor (SPEC §7): one row per code sent. The code itself is never
-- stored, only an HMAC-SHA-256 under a key derived from the key-encryption key, bound to the
-- row's id. Rows also serve as the send log for the resend cooldown and the daily caps.

CREATE TABLE otp_challenges (
    id          BLOB PRIMARY KEY,
    account_id  BLOB NOT NULL REFERENCES accounts (id),
    purpose     TEXT NOT NULL CHECK (purpose IN ('sign_in','enroll','change','reset')),
    method      TEXT NOT NULL CHECK (method IN ('email','sms','voice')),
    destination TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    tries       INTEGER NOT NULL DEFAULT 0,
    used_at     TEXT
) STRICT;

CREATE INDEX otp_challenges_account_at ON otp_challenges (account_id, created_at);
CREATE INDEX otp_challenges_destination_at ON otp_challenges (destination, created_at);
