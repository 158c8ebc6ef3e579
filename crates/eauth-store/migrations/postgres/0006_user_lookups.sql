-- Lookups by user that had no index of their own and scanned every session of the
-- application: fine for a demo, not for a million users.

-- The console's list of enrolled users shows each one's last approved sign-in. It is kept on
-- the enrollment, written with the approval, instead of looked up among all the application's
-- sessions for every user listed. Enabling a user again keeps it (the user's history); the
-- enrollment's deletion ends it.
ALTER TABLE enrollments ADD COLUMN last_approved_at BIGINT;

UPDATE enrollments SET last_approved_at = (
    SELECT MAX(s.finished_at) FROM sessions s
    WHERE s.client_id = enrollments.client_id AND s.email = enrollments.email AND s.status = 'APPROVED'
);

-- What the app lists for a user: pending sign-ins offered to a device. Only those are
-- indexed, so the insert of a new session pays nothing for it.
CREATE INDEX sessions_offered_by_user ON sessions (client_id, email)
    WHERE status = 'PENDING' AND push_number IS NOT NULL;
