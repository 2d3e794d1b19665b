-- A refresh token names its row: the token is its grant's ID, its generation in the family and a
-- 256-bit secret, and the row, keyed (grant_id, generation), keeps the SHA-256 of the secret
-- (compared in constant time). A rotation spends a row and inserts its successor beside it in
-- one index, where the table keyed by the token's hash wrote to the table, its hash index and its
-- grant index (docs/performance.md, "The seventh round").
--
-- Tokens issued before this migration keep working: their rows keep the hash of the whole token
-- as `secret_hash` and get negative generations (the family's unspent token -1, the spent ones
-- -2, -3, ... from the newest), found by that hash through a partial index over them alone. The
-- successor of generation -1 is generation 0, the first of the current format, as for a new
-- family. Once the last of them has expired the index stays empty.

CREATE TABLE refresh_tokens_by_generation (
    grant_id                     UUID NOT NULL REFERENCES grants (id),
    generation                   BIGINT NOT NULL,
    secret_hash                  TEXT NOT NULL,
    institution_settings_version BIGINT NOT NULL,
    created_at                   TIMESTAMPTZ NOT NULL,
    idle_expires_at              TIMESTAMPTZ NOT NULL,
    absolute_expires_at          TIMESTAMPTZ NOT NULL,
    used_at                      TIMESTAMPTZ,
    PRIMARY KEY (grant_id, generation)
);

INSERT INTO refresh_tokens_by_generation (grant_id, generation, secret_hash,
    institution_settings_version, created_at, idle_expires_at, absolute_expires_at, used_at)
SELECT grant_id,
    -ROW_NUMBER() OVER (PARTITION BY grant_id
        ORDER BY used_at IS NULL DESC, created_at DESC, token_hash DESC),
    token_hash, institution_settings_version, created_at, idle_expires_at, absolute_expires_at,
    used_at
FROM refresh_tokens;

DROP TABLE refresh_tokens;

ALTER TABLE refresh_tokens_by_generation RENAME TO refresh_tokens;

ALTER INDEX refresh_tokens_by_generation_pkey RENAME TO refresh_tokens_pkey;

CREATE INDEX refresh_tokens_legacy ON refresh_tokens (secret_hash) WHERE generation < 0;
