-- Every new session paid for this index with a write at a random place (users' emails are
-- random), which made most of the pages a batch of sessions dirtied: the group commit's
-- WAL writes. Its one reader, the app's list of a user's pending sign-ins, asks only for
-- sign-ins offered to a device, which sessions_offered_by_user (0006) covers.
DROP INDEX sessions_pending_by_user;
