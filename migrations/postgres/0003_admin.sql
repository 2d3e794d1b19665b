-- Admin API (SPEC §9, §12): indexes for the account search.
--
-- The search always names one institution, skips deleted accounts and orders by
-- (user_id, id) for stable pagination: a partial B-tree index serves the order and the paging.
--
-- Partial name and reading searches ("佐藤", "藤", "サトウ") are LIKE '%…%' with `\`, `%`
-- and `_` escaped. Japanese searches are mostly one or two characters, which pg_trgm cannot
-- index (a two-character pattern has no trigram, so its GIN index returns every row; measured
-- 315 ms on one institution of 1,000,000 accounts, see docs/performance.md). Instead every name
-- is indexed by its characters and character pairs (`sekimori_grams`); the store adds
-- `sekimori_grams(name) @> <grams of the search text>` to the LIKE, which stays as the exact
-- check. No extension is needed.

CREATE FUNCTION sekimori_grams(t text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT g), '{}') FROM (
        SELECT substr(t, i, 1) AS g FROM generate_series(1, char_length(t)) AS i
        UNION ALL
        SELECT substr(t, i, 2) FROM generate_series(1, char_length(t) - 1) AS i
    ) AS grams
$$;

CREATE INDEX accounts_search_order ON accounts (institution_code, user_id, id)
    WHERE deleted_at IS NULL;
CREATE INDEX accounts_name_grams ON accounts USING gin (sekimori_grams(name));
CREATE INDEX accounts_name_kana_grams ON accounts USING gin (sekimori_grams(name_kana));
