-- The index on tiles.variable_id (which the cascade from variables needs)
-- now carries the time and the lookup's columns too. Alone, it competed
-- with tiles_lookup: in a large catalogue a new dataset's rows have no
-- statistics until the next ANALYZE, and the planner then scanned every
-- row of the variable through it (31 ms for a 100,000-row dataset beside
-- 50 M rows, against 0.5 ms through tiles_lookup). Now whichever index it
-- picks is one range scan. The time comes before the level here so that
-- the queries for one slice at every level (ingest --replace, fsck),
-- which tiles_lookup answers only by walking the variable's every entry,
-- are one range too (19 ms -> 0.3 ms for 100,000 rows).
DROP INDEX tiles_variable;
CREATE INDEX tiles_variable ON tiles (variable_id, t, overview, ty, tx);
