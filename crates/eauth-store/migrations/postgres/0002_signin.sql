-- The sign-in page: attempts per session and per enrollment, and the callback outbox.

ALTER TABLE sessions ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
-- How and from where the browser opened the sign-in page (first opening), for the console.
ALTER TABLE sessions ADD COLUMN signin_method TEXT;
ALTER TABLE sessions ADD COLUMN source_ip TEXT;

ALTER TABLE enrollments ADD COLUMN last_failure_at BIGINT;

-- Written in the transaction that finishes a session, so that a finished session always has
-- its callback (at-least-once delivery, surviving crashes). One per session.
CREATE TABLE callbacks (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL UNIQUE REFERENCES sessions (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    approved BOOLEAN NOT NULL,
    session_token TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A worker that claims a callback holds it until then; a crashed worker's claim expires.
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);

CREATE INDEX callbacks_due ON callbacks (next_attempt_at) WHERE status = 'PENDING';
