-- The outcome charts read finished sessions by finish time; a pending session has none, yet
-- every new session was written into this index (a NULL among the application's entries),
-- one of the five pages each batch of new sessions dirtied. Only finished sessions are kept
-- now: a session enters the index when it finishes. (`finished_at >= $n` in the charts'
-- query implies `finished_at IS NOT NULL`, which lets both planners use it.)
DROP INDEX sessions_finished_by_application;
CREATE INDEX sessions_finished_by_application ON sessions (client_id, finished_at)
    WHERE finished_at IS NOT NULL;
