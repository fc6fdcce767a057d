-- Overviews: tiles of every 2^k-th cell (levels 2, 4, 8, ...), catalogued
-- like any tile. `overview` is the level's factor k; 1 is the full
-- resolution, which every tile of an older archive is.
ALTER TABLE tiles ADD COLUMN overview INTEGER NOT NULL DEFAULT 1;
DROP INDEX tiles_lookup;
DROP INDEX tiles_static;
-- The request path's lookup stays one index range scan: the level is an
-- equality before the time range.
CREATE UNIQUE INDEX tiles_lookup ON tiles (dataset_id, variable_id, overview, t, ty, tx) WHERE t IS NOT NULL;
CREATE UNIQUE INDEX tiles_static ON tiles (dataset_id, variable_id, overview, ty, tx) WHERE t IS NULL;
-- What overviews cost, kept apart from the full resolution's tile_count
-- and bytes.
ALTER TABLE datasets ADD COLUMN overview_tiles BIGINT NOT NULL DEFAULT 0;
ALTER TABLE datasets ADD COLUMN overview_bytes BIGINT NOT NULL DEFAULT 0;
