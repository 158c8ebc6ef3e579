-- The rows a batched statement gets as one JSON array (json_rows in eauth-store's lib.rs).
-- json_array_elements tells the planner nothing of how many there are, and it assumes 100:
-- enough to join them to a table by scanning all of it (a batch of new sessions read every
-- enrollment). Batches are a few rows: said so here, each one is looked up by its index.
-- PL/pgSQL, which the planner does not inline, so that the estimate holds.
CREATE FUNCTION eauth_rows(rows json) RETURNS SETOF json
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE ROWS 10
    AS $$ BEGIN RETURN QUERY SELECT json_array_elements(rows); END $$;
