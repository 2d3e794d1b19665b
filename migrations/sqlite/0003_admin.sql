-- Admin API (SPEC §9, §12): an index for the account search, which always names one
-- institution, skips deleted accounts and orders by (user_id, id) for stable pagination.
-- Partial name searches are LIKE '%…%' with `\`, `%` and `_` escaped; SQLite deployments are
-- small enough to scan an institution's rows.

CREATE INDEX accounts_search_order ON accounts (institution_code, user_id, id)
    WHERE deleted_at IS NULL;
