-- no-transaction
-- Sessions and enrollments are stored in their primary key's B-tree (WITHOUT ROWID), where
-- they were rows of a table found through a second B-tree, the key's index: every read of
-- one by its key, and every new session, touched both. A read on SQLite usually starts with
-- a cold page cache (another connection committed since), so each B-tree is pages read
-- again; at a million users, the enrollment checked by each new session was one more page
-- read from disk per tree (eauth-bench --scale: session-token 18 % slower than at a
-- thousand users).
--
-- Rebuilt the way SQLite's documentation prescribes: with foreign keys off, since dropping a
-- table they reference would otherwise delete the callbacks and devices that point at it
-- (ON DELETE CASCADE), and in one transaction of its own (sqlx's would make the pragma a
-- no-op, hence no-transaction above).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE enrollments_by_key (
    client_id TEXT NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    sealed_secret BLOB NOT NULL,
    algorithm TEXT NOT NULL,
    digits INTEGER NOT NULL,
    period INTEGER NOT NULL,
    -- RFC 6238 §5.2: the last time step accepted; only later steps are accepted after it.
    last_used_step BIGINT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    locked_at BIGINT,
    enabled_at BIGINT NOT NULL,
    last_failure_at BIGINT,
    last_approved_at BIGINT,
    PRIMARY KEY (client_id, email)
) WITHOUT ROWID;
INSERT INTO enrollments_by_key (client_id, email, sealed_secret, algorithm, digits, period,
        last_used_step, consecutive_failures, locked_at, enabled_at, last_failure_at,
        last_approved_at)
    SELECT client_id, email, sealed_secret, algorithm, digits, period, last_used_step,
        consecutive_failures, locked_at, enabled_at, last_failure_at, last_approved_at
    FROM enrollments;
DROP TABLE enrollments;
ALTER TABLE enrollments_by_key RENAME TO enrollments;

CREATE TABLE sessions_by_key (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    finished_at BIGINT,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    signin_method TEXT,
    source_ip TEXT,
    push_number INTEGER,
    push_failures INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO sessions_by_key (id, client_id, email, status, created_at, expires_at, finished_at,
        failed_attempts, signin_method, source_ip, push_number, push_failures)
    SELECT id, client_id, email, status, created_at, expires_at, finished_at, failed_attempts,
        signin_method, source_ip, push_number, push_failures
    FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_by_key RENAME TO sessions;
CREATE INDEX sessions_pending_by_expiry ON sessions (expires_at) WHERE status = 'PENDING';
CREATE INDEX sessions_by_application ON sessions (client_id, created_at);
CREATE INDEX sessions_finished_by_application ON sessions (client_id, finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX sessions_offered_by_user ON sessions (client_id, email)
    WHERE status = 'PENDING' AND push_number IS NOT NULL;

COMMIT;
PRAGMA foreign_keys = ON;
