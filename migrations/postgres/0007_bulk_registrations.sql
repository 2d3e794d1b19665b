-- Bulk registration jobs (SPEC §9, seed 002 §2-4/§2-5). A job keeps its uploaded file until it
-- ends, so a node that takes over after a crash re-runs it from the start; the lease (owner and
-- expiry) says which node runs it now, `attempts` how often it was started. The result rows are
-- JSON; the initial passwords of the result are one blob sealed with the KEK, cleared after 30
-- days.

CREATE TABLE bulk_registrations (
    institution_code    TEXT NOT NULL REFERENCES institutions (code),
    reception_number    TEXT NOT NULL,
    submitter_id        UUID NOT NULL REFERENCES accounts (id),
    submitter_type      TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('queued','running','done','done_with_duplicates','failed_validation','failed_file_structure','failed_system')),
    submitted_at        TIMESTAMPTZ NOT NULL,
    started_at          TIMESTAMPTZ,
    finished_at         TIMESTAMPTZ,
    row_count           BIGINT NOT NULL DEFAULT 0,
    registered_count    BIGINT NOT NULL DEFAULT 0,
    duplicate_count     BIGINT NOT NULL DEFAULT 0,
    invalid_count       BIGINT NOT NULL DEFAULT 0,
    attempts            BIGINT NOT NULL DEFAULT 0,
    lease_owner         TEXT,
    lease_expires_at    TIMESTAMPTZ,
    file                BYTEA NOT NULL,
    errors              TEXT NOT NULL DEFAULT '[]',
    result_rows         TEXT,
    passwords_sealed    BYTEA,
    passwords_purged_at TIMESTAMPTZ,
    PRIMARY KEY (institution_code, reception_number)
);

-- One job in progress per institution: a second upload collides here.
CREATE UNIQUE INDEX bulk_registrations_one_active ON bulk_registrations (institution_code)
    WHERE status IN ('queued', 'running');
CREATE INDEX bulk_registrations_submitter ON bulk_registrations (submitter_id, submitted_at);
CREATE INDEX bulk_registrations_claimable ON bulk_registrations (status, lease_expires_at);
