-- Real archives: exact time values and per-slice auxiliary values (time
-- bounds), auxiliary coordinates stored as tiles, and tiles retired by
-- `ingest --replace` awaiting removal.

-- The time coordinate value of a slice in the dataset's own units, exactly
-- as the source gave it (NULL in archives made before: derived from t).
ALTER TABLE time_slices ADD COLUMN value DOUBLE PRECISION;
-- Per-slice auxiliary values as JSON, e.g. {"time_bnds": [0.0, 31.0]}.
ALTER TABLE time_slices ADD COLUMN aux TEXT;

-- blake3 of a slice's stored values as ingested: a later ingest of the
-- same slice with other values says so instead of skipping it silently.
ALTER TABLE variable_times ADD COLUMN content_hash TEXT;

-- 'data' for data variables, 'coordinate' for auxiliary coordinates and
-- cell measures kept as tiles (2-D lat/lon of projected grids).
ALTER TABLE variables ADD COLUMN kind TEXT NOT NULL DEFAULT 'data';

-- Tile files replaced by a later ingest: readers that planned before the
-- replacement may still read them, so they are removed only after a grace
-- period (`tessera gc`, run by the server and after each ingest).
CREATE TABLE retired_tiles (
    dataset_id  BIGINT NOT NULL,
    path        TEXT NOT NULL PRIMARY KEY,
    retired_at  BIGINT NOT NULL
);
CREATE INDEX retired_tiles_age ON retired_tiles (retired_at);
CREATE INDEX retired_tiles_dataset ON retired_tiles (dataset_id);
