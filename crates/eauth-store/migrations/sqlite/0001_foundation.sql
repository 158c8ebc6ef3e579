-- Times are Unix seconds (BIGINT) in both backends, so one set of queries serves both.

CREATE TABLE session_keys (
    -- Slot 0 holds the key that signs new session tokens. A fixed slot, filled with
    -- INSERT ... ON CONFLICT DO NOTHING, lets processes that start together agree on one key.
    slot INTEGER PRIMARY KEY,
    kid TEXT NOT NULL UNIQUE,
    sealed_secret BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE applications (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner_email TEXT,
    -- JSON arrays of canonical strings; always read and written whole with the application.
    ip_allow_list TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    api_key_hash BLOB NOT NULL,
    sealed_callback_secret BLOB NOT NULL,
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE enrollments (
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
    PRIMARY KEY (client_id, email)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    finished_at BIGINT
);

CREATE INDEX sessions_pending_by_expiry ON sessions (expires_at) WHERE status = 'PENDING';
