-- A refresh token names its row: the token is its grant's ID, its generation in the family and a
-- 256-bit secret, and the row, keyed (grant_id, generation), keeps the SHA-256 of the secret
-- (compared in constant time). A rotation spends a row and inserts its successor beside it, on
-- one leaf of one tree, where the table keyed by the token's hash wrote a leaf of the table, of
-- its hash index and of its grant index, the two indexes' at random places (docs/performance.md,
-- "The seventh round").
--
-- Tokens issued before this migration keep working: their rows keep the hash of the whole token
-- as `secret_hash` and get negative generations (the family's unspent token -1, the spent ones
-- -2, -3, ... from the newest), found by that hash through a partial index over them alone. The
-- successor of generation -1 is generation 0, the first of the current format, as for a new
-- family. Once the last of them has expired the index stays empty.

CREATE TABLE refresh_tokens_by_generation (
    grant_id                     BLOB NOT NULL REFERENCES grants (id),
    generation                   INTEGER NOT NULL,
    secret_hash                  TEXT NOT NULL,
    institution_settings_version INTEGER NOT NULL,
    created_at                   TEXT NOT NULL,
    idle_expires_at              TEXT NOT NULL,
    absolute_expires_at          TEXT NOT NULL,
    used_at                      TEXT,
    PRIMARY KEY (grant_id, generation)
) STRICT, WITHOUT ROWID;

INSERT INTO refresh_tokens_by_generation (grant_id, generation, secret_hash,
    institution_settings_version, created_at, idle_expires_at, absolute_expires_at, used_at)
SELECT grant_id,
    -ROW_NUMBER() OVER (PARTITION BY grant_id
        ORDER BY used_at IS NULL DESC, created_at DESC, rowid DESC),
    token_hash, institution_settings_version, created_at, idle_expires_at, absolute_expires_at,
    used_at
FROM refresh_tokens;

DROP TABLE refresh_tokens;

ALTER TABLE refresh_tokens_by_generation RENAME TO refresh_tokens;

CREATE INDEX refresh_tokens_legacy ON refresh_tokens (secret_hash) WHERE generation < 0;
