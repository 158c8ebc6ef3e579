-- The Domain Console: accounts, their sessions, failed sign-ins (the throttle) and the audit
-- log of what accounts did. Applications created in the console carry their account in
-- applications.owner_email (0001).

CREATE TABLE console_accounts (
    email TEXT PRIMARY KEY,
    -- argon2id, as a PHC string that records its own parameters and salt.
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE console_sessions (
    -- SHA-256 of the token in the browser's cookie; the token itself is never stored.
    token_hash BYTEA PRIMARY KEY,
    email TEXT NOT NULL REFERENCES console_accounts (email) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen_at);

-- One row per failed sign-in under each of its keys ("account:<email>", "address:<ip>"),
-- counted over a window and forgotten after it.
CREATE TABLE console_signin_failures (
    throttle_key TEXT NOT NULL,
    failed_at BIGINT NOT NULL
);

CREATE INDEX console_signin_failures_by_key ON console_signin_failures (throttle_key, failed_at);

-- No foreign key to applications: the log outlives what it tells of, deleted applications
-- included, so it keeps the application's name as it was.
CREATE TABLE console_audit (
    -- UUIDv7: time-ordered, so entries of the same second keep their order.
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_email TEXT NOT NULL,
    action TEXT NOT NULL,
    client_id TEXT,
    application_name TEXT,
    detail TEXT,
    source_ip TEXT NOT NULL
);

CREATE INDEX console_audit_by_actor ON console_audit (actor_email, id);
CREATE INDEX console_audit_by_application ON console_audit (client_id, id);

-- What the console's pages look things up by.
CREATE INDEX applications_by_owner ON applications (owner_email);
CREATE INDEX sessions_by_application ON sessions (client_id, created_at);
CREATE INDEX sessions_finished_by_application ON sessions (client_id, finished_at);
CREATE INDEX callbacks_by_application ON callbacks (client_id, created_at);
