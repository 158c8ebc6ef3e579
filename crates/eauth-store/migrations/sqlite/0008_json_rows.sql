-- PostgreSQL's 0008 gives the planner an estimate of a batch's JSON rows. SQLite's planner
-- already looks each row up by its index (jsonb_each, see json_rows in eauth-store's lib.rs);
-- this migration keeps the two lists in step.
SELECT 1;
