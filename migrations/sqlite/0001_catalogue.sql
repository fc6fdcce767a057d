-- The tessera catalogue: datasets, variables, time slices and tiles.
-- Times are BIGINT milliseconds since 1970-01-01T00:00:00Z; a NULL tile
-- time marks a time-invariant (static) variable.

CREATE TABLE datasets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    title        TEXT NOT NULL,
    -- The full definition (axes, CRS, attributes, time axis) as JSON.
    definition   TEXT NOT NULL,
    nx           BIGINT NOT NULL,
    ny           BIGINT NOT NULL,
    x0           REAL NOT NULL,
    dx           REAL NOT NULL,
    y0           REAL NOT NULL,
    dy           REAL NOT NULL,
    tile_w       INTEGER NOT NULL,
    tile_h       INTEGER NOT NULL,
    tile_format  TEXT NOT NULL,
    crs_epsg     INTEGER,
    -- Derived at ingest time, never recomputed per request.
    slice_count  BIGINT NOT NULL DEFAULT 0,
    t_min        BIGINT,
    t_max        BIGINT,
    tile_count   BIGINT NOT NULL DEFAULT 0,
    bytes        BIGINT NOT NULL DEFAULT 0,
    -- Bumped by every change; caches and ETags key on it.
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE variables (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id  BIGINT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    dtype       TEXT NOT NULL,
    has_time    BOOLEAN NOT NULL,
    has_level   BOOLEAN NOT NULL,
    attrs       TEXT NOT NULL,
    UNIQUE (dataset_id, name)
);

CREATE TABLE time_slices (
    dataset_id  BIGINT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    t           BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, t)
);

-- One row per (variable, time) that has been ingested, tiles or not (an
-- all-fill slice has none): what makes re-running an ingest a no-op.
CREATE TABLE variable_times (
    variable_id  BIGINT NOT NULL REFERENCES variables (id) ON DELETE CASCADE,
    t            BIGINT,
    tile_count   BIGINT NOT NULL,
    ingested_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX variable_times_timed ON variable_times (variable_id, t) WHERE t IS NOT NULL;
CREATE UNIQUE INDEX variable_times_static ON variable_times (variable_id) WHERE t IS NULL;

CREATE TABLE tiles (
    dataset_id   BIGINT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    variable_id  BIGINT NOT NULL REFERENCES variables (id) ON DELETE CASCADE,
    t            BIGINT,
    ty           INTEGER NOT NULL,
    tx           INTEGER NOT NULL,
    -- Relative to the pool root.
    path         TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    checksum     TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
-- The request path's lookup: one index range scan.
CREATE UNIQUE INDEX tiles_lookup ON tiles (dataset_id, variable_id, t, ty, tx) WHERE t IS NOT NULL;
CREATE UNIQUE INDEX tiles_static ON tiles (dataset_id, variable_id, ty, tx) WHERE t IS NULL;
CREATE INDEX tiles_variable ON tiles (variable_id);
