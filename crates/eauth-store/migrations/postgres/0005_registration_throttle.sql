-- Failed device registrations (POST /app-api/v1/devices), counted apart from the sign-in
-- page's failures so that a stranger guessing codes can never lock a user's sign-in: one row
-- per key ("user:<client_id>:<email>", kept whether or not anyone is enrolled, so that the
-- throttle does not tell who is; "address:<ip or IPv6 /64>"), with the failures of its
-- current window and when that window ends (eauth_core::device_registration). The row is what a
-- registration locks, so concurrent registrations, in any process, count one after another.
CREATE TABLE registration_failures (
    throttle_key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_ends_at BIGINT NOT NULL
);

-- The worker forgets windows that ended.
CREATE INDEX registration_failures_by_window_end ON registration_failures (window_ends_at);
