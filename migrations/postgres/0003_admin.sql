-- Admin API (SPEC §9, §12): indexes for the account search.
--
-- The search always names one institution, skips deleted accounts and orders by
-- (user_id, id) for stable pagination; partial name and reading searches use trigram GIN
-- indexes (pg_trgm, a trusted extension since PostgreSQL 13, so the database owner may create
-- it). Trigrams of Japanese text need a database whose LC_CTYPE classifies kana and kanji as
-- letters (C.UTF-8, ja_JP.UTF-8, en_US.UTF-8 …); with LC_CTYPE = C they are ignored and the
-- search falls back to scanning the institution's rows.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX accounts_search_order ON accounts (institution_code, user_id, id)
    WHERE deleted_at IS NULL;
CREATE INDEX accounts_name_trgm ON accounts USING gin (name gin_trgm_ops);
CREATE INDEX accounts_name_kana_trgm ON accounts USING gin (name_kana gin_trgm_ops);
