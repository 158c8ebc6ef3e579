-- SQLite's 0010 stores sessions and enrollments in their primary key's B-tree (WITHOUT
-- ROWID). PostgreSQL's tables are heaps with separate indexes either way; this migration keeps
-- the two lists in step.
SELECT 1;
