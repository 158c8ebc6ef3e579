-- Push approval: the app's registered devices, the nonces of their signed requests, and the
-- number a pending sign-in shows for the app to match.

-- One per registered app. Tied to its enrollment: DISABLE deletes the enrollment and, by
-- cascade, its devices; ENABLE replaces the secret and deletes them explicitly (same
-- transaction), since a device proved only the old secret.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    email TEXT NOT NULL,
    -- Ed25519, 32 bytes. Unique: one key, one device.
    public_key BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (client_id, email) REFERENCES enrollments (client_id, email) ON DELETE CASCADE
);

CREATE INDEX devices_by_enrollment ON devices (client_id, email);

-- The nonce of every accepted signed request, until its request can no longer be fresh
-- (expires_at = its timestamp + 60 s); the primary key makes a replay fail in any process.
-- signer: the device id, or the public key (base64url) of a registration.
CREATE TABLE app_nonces (
    signer TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (signer, nonce)
);

CREATE INDEX app_nonces_by_expiry ON app_nonces (expires_at);

-- The number the sign-in page shows (10-99), set when the page is first shown to a user with
-- a device; a sign-in without one is not offered to the app. Wrong numbers sent so far.
ALTER TABLE sessions ADD COLUMN push_number INTEGER;
ALTER TABLE sessions ADD COLUMN push_failures INTEGER NOT NULL DEFAULT 0;

-- The app lists a user's pending sign-ins once a second or on every wake-up.
CREATE INDEX sessions_pending_by_user ON sessions (client_id, email) WHERE status = 'PENDING';
