-- The index on tiles.variable_id (which the cascade from variables needs)
-- now carries the lookup's columns too. Alone, it competed with
-- tiles_lookup: in a large catalogue a new dataset's rows have no
-- statistics until the next ANALYZE, and the planner then scanned every
-- row of the variable through it (31 ms for a 100,000-row dataset beside
-- 50 M rows, against 0.5 ms through tiles_lookup). With the same columns,
-- whichever it picks is one range scan.
DROP INDEX tiles_variable;
CREATE INDEX tiles_variable ON tiles (variable_id, overview, t, ty, tx);
