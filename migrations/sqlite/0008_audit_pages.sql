-- Fewer pages written per audit event (docs/performance.md, "The fifth round"). Every token a
-- client or a machine account receives appends an event, and each page the append touches is
-- one more 4 KiB frame in the write-ahead log; before this migration an event touched five.
--
-- - `seq` loses AUTOINCREMENT, which updated `sqlite_sequence` (one page) on every append. The
--   table refuses deletes (the trigger below), so the largest `seq` is never removed and
--   `max(seq) + 1`, SQLite's rule without AUTOINCREMENT, is the same increasing sequence.
-- - `audit_events_institution_at` is dropped: the audit listing's optional institution filter
--   is `(? IS NULL OR institution_code = ?)`, which SQLite plans once for every value, so no
--   plan ever used it (EXPLAIN QUERY PLAN: a scan of `audit_events_at`). PostgreSQL plans with
--   the values and keeps it.
-- - `audit_events_target_at` only holds events about an account; its one query
--   (`target_account_id = ?`) implies that, so SQLite still uses it.

CREATE TABLE audit_events_new (
    seq               INTEGER PRIMARY KEY,
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

INSERT INTO audit_events_new (seq, at, kind, actor_account_id, actor, target_account_id, target,
        institution_code, ip, user_agent, result, reason)
    SELECT seq, at, kind, actor_account_id, actor, target_account_id, target,
        institution_code, ip, user_agent, result, reason
    FROM audit_events ORDER BY seq;

DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;

CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_target_at ON audit_events (target_account_id, at)
    WHERE target_account_id IS NOT NULL;

-- The audit log is append-only: the database itself refuses updates and deletes.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
