//! The SQL adapters: SQLite (embedded default) and PostgreSQL.
//!
//! Both engines accept `$1..$N` placeholders, `RETURNING`, partial indexes
//! and `ON CONFLICT DO NOTHING`, so the two adapters share their SQL text: a
//! macro stamps out one implementation per engine with native pool types
//! (the `Any` driver cannot carry timestamps). The schemas differ only in
//! column types and live in `migrations/sqlite` and `migrations/postgres`.

use super::{
    Catalogue, CatalogueError, Dataset, DatasetStats, DatasetVersion, IngestBatch, MetadataEdit, OverviewBatch, Result, RetiredTile, TileQuery,
    TileRecord, TimeSel, TimeSlice, Variable, WriterLock, aux_from_json, aux_to_json,
};
use crate::model::{DataType, DatasetDef, DatasetName, Timestamp, VarKind, VariableDef};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a pooled connection before the catalogue
/// counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Converts driver errors at the seam.
fn map_err(e: sqlx::Error) -> CatalogueError {
    use sqlx::Error as E;
    match &e {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::Protocol(_) | E::WorkerCrashed => {
            CatalogueError::Unavailable(e.to_string())
        }
        E::Database(d) if d.is_unique_violation() => CatalogueError::Conflict(d.message().to_string()),
        E::Database(d) => {
            // PostgreSQL class 08 (connection), 57P (shutdown), 53 (resources).
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            if code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") {
                CatalogueError::Unavailable(d.message().to_string())
            } else {
                CatalogueError::Other(d.message().to_string())
            }
        }
        E::ColumnDecode { .. } | E::Decode(_) | E::TypeNotFound { .. } | E::ColumnNotFound(_) => {
            CatalogueError::Corrupt(e.to_string())
        }
        E::Configuration(_) => CatalogueError::Config(e.to_string()),
        E::Migrate(m) => CatalogueError::Other(format!("migration failed: {m}")),
        _ => CatalogueError::Other(e.to_string()),
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> CatalogueError {
    CatalogueError::Corrupt(format!("{what}: {e}"))
}

#[derive(sqlx::FromRow)]
struct DatasetRow {
    id: i64,
    definition: String,
    slice_count: i64,
    t_min: Option<i64>,
    t_max: Option<i64>,
    tile_count: i64,
    bytes: i64,
    overview_tiles: i64,
    overview_bytes: i64,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl DatasetRow {
    fn into_dataset(self) -> Result<Dataset> {
        let def: DatasetDef = serde_json::from_str(&self.definition).map_err(|e| corrupt("dataset definition", e))?;
        Ok(Dataset {
            id: self.id,
            def,
            stats: DatasetStats {
                slice_count: self.slice_count as u64,
                t_min: self.t_min.map(Timestamp),
                t_max: self.t_max.map(Timestamp),
                tile_count: self.tile_count as u64,
                bytes: self.bytes as u64,
                overview_tiles: self.overview_tiles as u64,
                overview_bytes: self.overview_bytes as u64,
            },
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct VariableRow {
    id: i64,
    dataset_id: i64,
    name: String,
    dtype: String,
    has_time: bool,
    has_level: bool,
    attrs: String,
    kind: String,
}

impl VariableRow {
    fn into_variable(self) -> Result<Variable> {
        let dtype = DataType::parse(&self.dtype).ok_or_else(|| corrupt("variable type", &self.dtype))?;
        let attrs = serde_json::from_str(&self.attrs).map_err(|e| corrupt("variable attributes", e))?;
        let kind = VarKind::parse(&self.kind).ok_or_else(|| corrupt("variable kind", &self.kind))?;
        Ok(Variable {
            id: self.id,
            dataset_id: self.dataset_id,
            def: VariableDef { name: self.name, dtype, has_time: self.has_time, has_level: self.has_level, attrs, kind },
        })
    }
}

#[derive(sqlx::FromRow)]
struct SliceRow {
    t: i64,
    value: Option<f64>,
    aux: Option<String>,
}

impl SliceRow {
    fn into_slice(self) -> Result<TimeSlice> {
        Ok(TimeSlice { t: Timestamp(self.t), value: self.value, aux: aux_from_json(self.aux.as_deref())? })
    }
}

#[derive(sqlx::FromRow)]
struct RetiredRow {
    dataset_id: i64,
    path: String,
    retired_at: i64,
}

impl From<RetiredRow> for RetiredTile {
    fn from(r: RetiredRow) -> Self {
        RetiredTile { dataset_id: r.dataset_id, path: r.path, retired_at: r.retired_at }
    }
}

fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| CatalogueError::Other(e.to_string()))
}

#[derive(sqlx::FromRow)]
struct TileRow {
    variable_id: i64,
    t: Option<i64>,
    overview: i32,
    tx: i32,
    ty: i32,
    path: String,
    bytes: i64,
    checksum: String,
    layout: Option<Vec<u8>>,
}

impl From<TileRow> for TileRecord {
    fn from(r: TileRow) -> Self {
        TileRecord {
            variable_id: r.variable_id,
            time: r.t.map(Timestamp),
            overview: r.overview.max(1) as u32,
            tx: r.tx as u32,
            ty: r.ty as u32,
            path: r.path,
            bytes: r.bytes as u64,
            checksum: r.checksum,
            layout: r.layout,
        }
    }
}

// Column lists as macros, so that every statement stays a `&'static str`.
macro_rules! dataset_columns {
    () => {
        "id, definition, slice_count, t_min, t_max, tile_count, bytes, overview_tiles, overview_bytes, version, created_at, updated_at"
    };
}
macro_rules! variable_columns {
    () => {
        "id, dataset_id, name, dtype, has_time, has_level, attrs, kind"
    };
}
macro_rules! tile_columns {
    () => {
        "variable_id, t, overview, tx, ty, path, bytes, checksum, layout"
    };
}

/// Tile rows per INSERT statement: 11 parameters each stays far below
/// SQLite's and PostgreSQL's limits on parameters per statement.
const TILE_ROWS_PER_INSERT: usize = 1000;

/// Clamps a u32 tile bound into the INTEGER column's range.
fn col(v: u32) -> i32 {
    v.min(i32::MAX as u32) as i32
}

/// Tiles and bytes leaving or entering a dataset, full resolution and
/// overviews apart.
#[derive(Default)]
struct TileCounts {
    tiles: i64,
    bytes: i64,
    overview_tiles: i64,
    overview_bytes: i64,
}

impl TileCounts {
    fn add(&mut self, bytes: i64, overview: i64) {
        if overview > 1 {
            self.overview_tiles += 1;
            self.overview_bytes += bytes;
        } else {
            self.tiles += 1;
            self.bytes += bytes;
        }
    }

    fn of(tiles: &[crate::catalogue::NewTile]) -> TileCounts {
        let mut r = TileCounts::default();
        for t in tiles {
            r.add(t.bytes as i64, i64::from(t.overview));
        }
        r
    }
}

macro_rules! sql_catalogue {
    ($name:ident, $pool:ty, $db:ty, $backend:literal, $migrator:ident) => {
        impl $name {
            /// Retires tile files leaving service (readers may still hold
            /// them: removed after a grace period), counting them.
            async fn retire(
                tx: &mut sqlx::Transaction<'static, $db>,
                dataset_id: i64,
                old: &[(String, i64, i32)],
                now: DateTime<Utc>,
                removed: &mut TileCounts,
            ) -> Result<()> {
                for (path, bytes, overview) in old {
                    removed.add(*bytes, i64::from(*overview));
                    sqlx::query("INSERT INTO retired_tiles (dataset_id, path, retired_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                        .bind(dataset_id)
                        .bind(path)
                        .bind(now.timestamp_millis())
                        .execute(&mut **tx)
                        .await
                        .map_err(map_err)?;
                }
                Ok(())
            }

            /// Commits a dataset's change and returns the dataset as it
            /// stands after it (read inside the transaction).
            async fn commit_returning(&self, mut tx: sqlx::Transaction<'static, $db>, dataset_id: i64) -> Result<Dataset> {
                let row: DatasetRow = sqlx::query_as(concat!("SELECT ", dataset_columns!(), " FROM datasets WHERE id = $1"))
                    .bind(dataset_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                self.commit_change(tx).await?;
                row.into_dataset()
            }

            /// Inserts tile rows, many per statement (sqlx's QueryBuilder
            /// rather than one round trip per tile): a file of thousands of
            /// tiles commits in a few statements.
            async fn insert_tiles(
                tx: &mut sqlx::Transaction<'static, $db>,
                dataset_id: i64,
                rows: &[(i64, &crate::catalogue::NewTile)],
                now: DateTime<Utc>,
            ) -> Result<()> {
                for chunk in rows.chunks(TILE_ROWS_PER_INSERT) {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO tiles (dataset_id, variable_id, t, overview, ty, tx, path, bytes, checksum, layout, created_at) ",
                    );
                    q.push_values(chunk, |mut b, (vid, tile)| {
                        b.push_bind(dataset_id)
                            .push_bind(*vid)
                            .push_bind(tile.time.map(|t| t.0))
                            .push_bind(col(tile.overview))
                            .push_bind(col(tile.ty))
                            .push_bind(col(tile.tx))
                            .push_bind(tile.path.clone())
                            .push_bind(tile.bytes as i64)
                            .push_bind(tile.checksum.clone())
                            .push_bind(tile.layout.clone())
                            .push_bind(now);
                    });
                    q.build().execute(&mut **tx).await.map_err(map_err)?;
                }
                Ok(())
            }

            /// Applies pending migrations.
            pub async fn migrate(&self) -> Result<()> {
                $migrator.run(&self.pool).await.map_err(|e| match e {
                    sqlx::migrate::MigrateError::Execute(inner) => match map_err(inner) {
                        CatalogueError::Unavailable(m) => CatalogueError::Unavailable(m),
                        other => CatalogueError::Other(format!("migration failed: {other}")),
                    },
                    other => CatalogueError::Other(format!("migration failed: {other}")),
                })
            }
        }

        #[async_trait]
        impl Catalogue for $name {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn change_token(&self) -> Option<u64> {
                self.token()
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
                Ok(())
            }

            async fn schema_version(&self) -> Result<i64> {
                let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(v.unwrap_or(0))
            }

            async fn dataset(&self, name: &DatasetName) -> Result<Option<Dataset>> {
                let row: Option<DatasetRow> =
                    sqlx::query_as(concat!("SELECT ", dataset_columns!(), " FROM datasets WHERE name = $1"))
                        .bind(name.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_err)?;
                row.map(DatasetRow::into_dataset).transpose()
            }

            async fn dataset_version(&self, name: &DatasetName) -> Result<Option<DatasetVersion>> {
                let row: Option<(i64, i64)> = sqlx::query_as("SELECT id, version FROM datasets WHERE name = $1")
                    .bind(name.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.map(|(id, version)| DatasetVersion { id, version }))
            }

            async fn datasets(&self) -> Result<Vec<Dataset>> {
                let rows: Vec<DatasetRow> =
                    sqlx::query_as(concat!("SELECT ", dataset_columns!(), " FROM datasets ORDER BY name"))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?;
                rows.into_iter().map(DatasetRow::into_dataset).collect()
            }

            async fn dataset_states(&self) -> Result<Vec<(String, DatasetVersion)>> {
                let rows: Vec<(String, i64, i64)> = sqlx::query_as("SELECT name, id, version FROM datasets ORDER BY name")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(rows.into_iter().map(|(name, id, version)| (name, DatasetVersion { id, version })).collect())
            }

            async fn variables(&self, dataset_id: i64) -> Result<Vec<Variable>> {
                let rows: Vec<VariableRow> =
                    sqlx::query_as(concat!("SELECT ", variable_columns!(), " FROM variables WHERE dataset_id = $1 ORDER BY id"))
                        .bind(dataset_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?;
                rows.into_iter().map(VariableRow::into_variable).collect()
            }

            async fn time_slices(&self, dataset_id: i64) -> Result<Vec<TimeSlice>> {
                let rows: Vec<SliceRow> = sqlx::query_as("SELECT t, value, aux FROM time_slices WHERE dataset_id = $1 ORDER BY t")
                    .bind(dataset_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.into_iter().map(SliceRow::into_slice).collect()
            }

            async fn ingested_times(&self, variable_id: i64) -> Result<Vec<Option<Timestamp>>> {
                let ts: Vec<Option<i64>> =
                    sqlx::query_scalar("SELECT t FROM variable_times WHERE variable_id = $1 ORDER BY t")
                        .bind(variable_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?;
                Ok(ts.into_iter().map(|t| t.map(Timestamp)).collect())
            }

            async fn content_hashes(&self, variable_id: i64) -> Result<Vec<(Option<Timestamp>, String)>> {
                let rows: Vec<(Option<i64>, String)> = sqlx::query_as(
                    "SELECT t, content_hash FROM variable_times WHERE variable_id = $1 AND content_hash IS NOT NULL ORDER BY t",
                )
                .bind(variable_id)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(rows.into_iter().map(|(t, h)| (t.map(Timestamp), h)).collect())
            }

            async fn tiles(&self, q: &TileQuery) -> Result<Vec<TileRecord>> {
                if q.tx.is_empty() || q.ty.is_empty() {
                    return Ok(Vec::new());
                }
                let rows: Vec<TileRow> = match q.time {
                    TimeSel::Static => sqlx::query_as(concat!("SELECT ", tile_columns!(), " FROM tiles WHERE dataset_id = $1 AND variable_id = $2 AND t IS NULL \
                         AND ty >= $3 AND ty < $4 AND tx >= $5 AND tx < $6 AND overview = $7 ORDER BY ty, tx"))
                    .bind(q.dataset_id)
                    .bind(q.variable_id)
                    .bind(col(q.ty.start))
                    .bind(col(q.ty.end))
                    .bind(col(q.tx.start))
                    .bind(col(q.tx.end))
                    .bind(col(q.overview))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?,
                    TimeSel::Between(from, to) => sqlx::query_as(concat!("SELECT ", tile_columns!(), " FROM tiles WHERE dataset_id = $1 AND variable_id = $2 AND overview = $9 \
                         AND t >= $3 AND t <= $4 AND ty >= $5 AND ty < $6 AND tx >= $7 AND tx < $8 ORDER BY t, ty, tx"))
                    .bind(q.dataset_id)
                    .bind(q.variable_id)
                    .bind(from.0)
                    .bind(to.0)
                    .bind(col(q.ty.start))
                    .bind(col(q.ty.end))
                    .bind(col(q.tx.start))
                    .bind(col(q.tx.end))
                    .bind(col(q.overview))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?,
                };
                Ok(rows.into_iter().map(TileRecord::from).collect())
            }

            async fn tiles_at(&self, dataset_id: i64, time: Option<Timestamp>) -> Result<Vec<TileRecord>> {
                let mut out = Vec::new();
                for v in self.variables(dataset_id).await? {
                    let rows: Vec<TileRow> = match time {
                        None => sqlx::query_as(concat!("SELECT ", tile_columns!(), " FROM tiles WHERE dataset_id = $1 AND variable_id = $2 AND t IS NULL ORDER BY overview, ty, tx"))
                        .bind(dataset_id)
                        .bind(v.id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?,
                        Some(t) => sqlx::query_as(concat!("SELECT ", tile_columns!(), " FROM tiles WHERE dataset_id = $1 AND variable_id = $2 AND t = $3 ORDER BY overview, ty, tx"))
                        .bind(dataset_id)
                        .bind(v.id)
                        .bind(t.0)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?,
                    };
                    out.extend(rows.into_iter().map(TileRecord::from));
                }
                Ok(out)
            }

            async fn commit_ingest(&self, batch: &IngestBatch) -> Result<Dataset> {
                let now = Utc::now();
                let def = &batch.dataset;
                let def_json = to_json(def)?;
                let mut tx = self.write_tx().await?;

                let existing: Option<(i64, String)> =
                    sqlx::query_as("SELECT id, definition FROM datasets WHERE name = $1")
                        .bind(def.name.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(map_err)?;
                let dataset_id = match existing {
                    Some((id, json)) => {
                        let stored: DatasetDef =
                            serde_json::from_str(&json).map_err(|e| corrupt("dataset definition", e))?;
                        if let Some(d) = stored.grid.difference(&def.grid) {
                            return Err(CatalogueError::Conflict(format!("grid of dataset {} differs: {d}", def.name)));
                        }
                        if stored != *def {
                            sqlx::query("UPDATE datasets SET definition = $1 WHERE id = $2")
                                .bind(&def_json)
                                .bind(id)
                                .execute(&mut *tx)
                                .await
                                .map_err(map_err)?;
                        }
                        id
                    }
                    None => {
                        let (x0, dx, y0, dy) = def
                            .grid
                            .geometry()
                            .map_err(|e| CatalogueError::Conflict(format!("dataset {}: {e}", def.name)))?;
                        sqlx::query_scalar(
                            "INSERT INTO datasets (name, title, definition, nx, ny, x0, dx, y0, dy, tile_w, tile_h, \
                             tile_format, crs_epsg, version, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $14) RETURNING id",
                        )
                        .bind(def.name.as_str())
                        .bind(&def.title)
                        .bind(&def_json)
                        .bind(def.grid.nx() as i64)
                        .bind(def.grid.ny() as i64)
                        .bind(x0)
                        .bind(dx)
                        .bind(y0)
                        .bind(dy)
                        .bind(def.tile.w as i32)
                        .bind(def.tile.h as i32)
                        .bind(def.format.name())
                        .bind(def.grid.crs.epsg)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?
                    }
                };

                let rows: Vec<VariableRow> =
                    sqlx::query_as(concat!("SELECT ", variable_columns!(), " FROM variables WHERE dataset_id = $1"))
                        .bind(dataset_id)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(map_err)?;
                let mut var_ids: HashMap<String, i64> = HashMap::new();
                let mut stored_vars: HashMap<String, Variable> = HashMap::new();
                for r in rows {
                    let v = r.into_variable()?;
                    var_ids.insert(v.def.name.clone(), v.id);
                    stored_vars.insert(v.def.name.clone(), v);
                }
                for v in &batch.variables {
                    if let Some(s) = stored_vars.get(&v.name) {
                        super::check_same_variable(&def.name, &s.def, v)?;
                        continue;
                    }
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO variables (dataset_id, name, dtype, has_time, has_level, attrs, kind) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    )
                    .bind(dataset_id)
                    .bind(&v.name)
                    .bind(v.dtype.name())
                    .bind(v.has_time)
                    .bind(v.has_level)
                    .bind(to_json(&v.attrs)?)
                    .bind(v.kind.name())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    var_ids.insert(v.name.clone(), id);
                }
                let var_id = |name: &str| {
                    var_ids.get(name).copied().ok_or_else(|| {
                        CatalogueError::Conflict(format!("variable {name} is not part of the batch or the dataset"))
                    })
                };

                // Replaced slices: their tiles leave service now and their
                // files are retired, not deleted (readers may hold them).
                let mut removed = TileCounts::default();
                if batch.replace {
                    for (name, t) in &batch.slices {
                        let vid = var_id(name)?;
                        let old: Vec<(String, i64, i32)> = match t {
                            Some(t) => sqlx::query_as("SELECT path, bytes, overview FROM tiles WHERE dataset_id = $1 AND variable_id = $2 AND t = $3")
                                .bind(dataset_id)
                                .bind(vid)
                                .bind(t.0)
                                .fetch_all(&mut *tx)
                                .await
                                .map_err(map_err)?,
                            None => sqlx::query_as("SELECT path, bytes, overview FROM tiles WHERE dataset_id = $1 AND variable_id = $2 AND t IS NULL")
                                .bind(dataset_id)
                                .bind(vid)
                                .fetch_all(&mut *tx)
                                .await
                                .map_err(map_err)?,
                        };
                        Self::retire(&mut tx, dataset_id, &old, now, &mut removed).await?;
                        let (tiles_sql, times_sql) = match t {
                            Some(_) => (
                                "DELETE FROM tiles WHERE dataset_id = $1 AND variable_id = $2 AND t = $3",
                                "DELETE FROM variable_times WHERE variable_id = $1 AND t = $2",
                            ),
                            None => (
                                "DELETE FROM tiles WHERE dataset_id = $1 AND variable_id = $2 AND t IS NULL",
                                "DELETE FROM variable_times WHERE variable_id = $1 AND t IS NULL",
                            ),
                        };
                        let q = sqlx::query(tiles_sql).bind(dataset_id).bind(vid);
                        let q = match t { Some(t) => q.bind(t.0), None => q };
                        q.execute(&mut *tx).await.map_err(map_err)?;
                        let q = sqlx::query(times_sql).bind(vid);
                        let q = match t { Some(t) => q.bind(t.0), None => q };
                        q.execute(&mut *tx).await.map_err(map_err)?;
                    }
                }

                for (name, t) in &batch.slices {
                    let vid = var_id(name)?;
                    let count = batch.tiles.iter().filter(|x| &x.variable == name && x.time == *t && x.overview == 1).count() as i64;
                    sqlx::query("INSERT INTO variable_times (variable_id, t, tile_count, ingested_at, content_hash) VALUES ($1, $2, $3, $4, $5)")
                        .bind(vid)
                        .bind(t.map(|t| t.0))
                        .bind(count)
                        .bind(now)
                        .bind(batch.content_hashes.get(&(name.clone(), *t)))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| match map_err(e) {
                            CatalogueError::Conflict(_) => CatalogueError::Conflict(format!(
                                "{name} at {} is already in dataset {}",
                                t.map_or("static".to_string(), |t| def.time.show(t)),
                                def.name
                            )),
                            other => other,
                        })?;
                }
                let upsert = if batch.replace {
                    "INSERT INTO time_slices (dataset_id, t, value, aux) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (dataset_id, t) DO UPDATE SET value = excluded.value, aux = excluded.aux"
                } else {
                    "INSERT INTO time_slices (dataset_id, t, value, aux) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
                };
                let mut times: Vec<&TimeSlice> = batch.times.iter().collect();
                let bare: Vec<TimeSlice> = batch
                    .slices
                    .iter()
                    .filter_map(|(_, t)| *t)
                    .filter(|t| !batch.times.iter().any(|s| s.t == *t))
                    .map(TimeSlice::new)
                    .collect();
                times.extend(bare.iter());
                for slice in times {
                    sqlx::query(upsert)
                        .bind(dataset_id)
                        .bind(slice.t.0)
                        .bind(slice.value)
                        .bind(aux_to_json(&slice.aux))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }

                let rows: Vec<(i64, &crate::catalogue::NewTile)> =
                    batch.tiles.iter().map(|t| Ok((var_id(&t.variable)?, t))).collect::<Result<_>>()?;
                Self::insert_tiles(&mut tx, dataset_id, &rows, now).await?;
                let added = TileCounts::of(&batch.tiles);
                sqlx::query(
                    "UPDATE datasets SET \
                     slice_count = (SELECT COUNT(*) FROM time_slices WHERE dataset_id = $1), \
                     t_min = (SELECT MIN(t) FROM time_slices WHERE dataset_id = $1), \
                     t_max = (SELECT MAX(t) FROM time_slices WHERE dataset_id = $1), \
                     tile_count = tile_count + $2, bytes = bytes + $3, version = version + 1, updated_at = $4, \
                     overview_tiles = overview_tiles + $5, overview_bytes = overview_bytes + $6 \
                     WHERE id = $1",
                )
                .bind(dataset_id)
                .bind(added.tiles - removed.tiles)
                .bind(added.bytes - removed.bytes)
                .bind(now)
                .bind(added.overview_tiles - removed.overview_tiles)
                .bind(added.overview_bytes - removed.overview_bytes)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;

                self.commit_returning(tx, dataset_id).await
            }

            async fn update_metadata(&self, name: &DatasetName, edit: &MetadataEdit) -> Result<Dataset> {
                let mut tx = self.write_tx().await?;
                let row: Option<(i64, String)> = sqlx::query_as("SELECT id, definition FROM datasets WHERE name = $1")
                    .bind(name.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let Some((id, json)) = row else {
                    return Err(CatalogueError::Conflict(format!("no dataset {name}")));
                };
                let mut def: DatasetDef = serde_json::from_str(&json).map_err(|e| corrupt("dataset definition", e))?;
                let rows: Vec<VariableRow> =
                    sqlx::query_as(concat!("SELECT ", variable_columns!(), " FROM variables WHERE dataset_id = $1 ORDER BY id"))
                        .bind(id)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(map_err)?;
                let mut vars = rows.into_iter().map(VariableRow::into_variable).collect::<Result<Vec<_>>>()?;
                let before = vars.clone();
                super::apply_edit(&mut def, &mut vars, edit)?;
                sqlx::query("UPDATE datasets SET definition = $1, title = $2, version = version + 1, updated_at = $3 WHERE id = $4")
                    .bind(to_json(&def)?)
                    .bind(&def.title)
                    .bind(Utc::now())
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                for (v, old) in vars.iter().zip(&before) {
                    if v.def.attrs != old.def.attrs {
                        sqlx::query("UPDATE variables SET attrs = $1 WHERE id = $2")
                            .bind(to_json(&v.def.attrs)?)
                            .bind(v.id)
                            .execute(&mut *tx)
                            .await
                            .map_err(map_err)?;
                    }
                }
                self.commit_returning(tx, id).await
            }

            async fn retired_before(&self, before_ms: i64, limit: i64) -> Result<Vec<RetiredTile>> {
                let rows: Vec<RetiredRow> = sqlx::query_as(
                    "SELECT dataset_id, path, retired_at FROM retired_tiles WHERE retired_at < $1 ORDER BY retired_at LIMIT $2",
                )
                .bind(before_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(rows.into_iter().map(RetiredTile::from).collect())
            }

            async fn retired_in(&self, dataset_id: i64) -> Result<Vec<RetiredTile>> {
                let rows: Vec<RetiredRow> =
                    sqlx::query_as("SELECT dataset_id, path, retired_at FROM retired_tiles WHERE dataset_id = $1 ORDER BY path")
                        .bind(dataset_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?;
                Ok(rows.into_iter().map(RetiredTile::from).collect())
            }

            async fn try_lock_dataset(&self, name: &DatasetName) -> Result<Option<WriterLock>> {
                self.try_lock(name).await
            }

            async fn apply_migrations(&self) -> Result<()> {
                self.migrate_serialised().await
            }

            async fn forget_retired(&self, paths: &[String]) -> Result<()> {
                let mut tx = self.write_tx().await?;
                for p in paths {
                    sqlx::query("DELETE FROM retired_tiles WHERE path = $1").bind(p).execute(&mut *tx).await.map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn delete_dataset(&self, name: &DatasetName) -> Result<bool> {
                let mut tx = self.write_tx().await?;
                let id: Option<i64> = sqlx::query_scalar("SELECT id FROM datasets WHERE name = $1")
                    .bind(name.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let Some(id) = id else { return Ok(false) };
                // Children first, so neither engine walks cascades row by row.
                for sql in [
                    "DELETE FROM retired_tiles WHERE dataset_id = $1",
                    "DELETE FROM tiles WHERE dataset_id = $1",
                    "DELETE FROM variable_times WHERE variable_id IN (SELECT id FROM variables WHERE dataset_id = $1)",
                    "DELETE FROM time_slices WHERE dataset_id = $1",
                    "DELETE FROM variables WHERE dataset_id = $1",
                    "DELETE FROM datasets WHERE id = $1",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await.map_err(map_err)?;
                }
                self.commit_change(tx).await?;
                Ok(true)
            }

            async fn append_synthetic(&self, batch: &crate::catalogue::SyntheticBatch) -> Result<Dataset> {
                let now = Utc::now();
                let mut tx = self.write_tx().await?;
                let ids: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT d.id, v.id FROM datasets d JOIN variables v ON v.dataset_id = d.id WHERE d.name = $1 AND v.name = $2",
                )
                .bind(batch.dataset.name.as_str())
                .bind(&batch.variable.name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                let Some((dataset_id, vid)) = ids else {
                    return Err(CatalogueError::Conflict(format!("no variable {} in dataset {}", batch.variable.name, batch.dataset.name)));
                };
                for chunk in batch.times.chunks(TILE_ROWS_PER_INSERT) {
                    let mut q = sqlx::QueryBuilder::new("INSERT INTO time_slices (dataset_id, t, value, aux) ");
                    q.push_values(chunk, |mut b, s| {
                        b.push_bind(dataset_id).push_bind(s.t.0).push_bind(s.value).push_bind(aux_to_json(&s.aux));
                    });
                    q.build().execute(&mut *tx).await.map_err(map_err)?;
                    let mut q = sqlx::QueryBuilder::new("INSERT INTO variable_times (variable_id, t, tile_count, ingested_at) ");
                    q.push_values(chunk, |mut b, s| {
                        b.push_bind(vid).push_bind(s.t.0).push_bind(batch.tiles.len() as i64).push_bind(now);
                    });
                    q.build().execute(&mut *tx).await.map_err(map_err)?;
                }
                Self::bulk_tiles(&mut tx, dataset_id, vid, batch, now).await?;
                let per_slice: i64 = batch.tiles.iter().map(|t| t.bytes as i64).sum();
                let n = batch.times.len() as i64;
                let (lo, hi) = (batch.times.iter().map(|s| s.t.0).min(), batch.times.iter().map(|s| s.t.0).max());
                sqlx::query(
                    "UPDATE datasets SET slice_count = slice_count + $2, \
                     t_min = CASE WHEN t_min IS NULL OR t_min > $3 THEN $3 ELSE t_min END, \
                     t_max = CASE WHEN t_max IS NULL OR t_max < $4 THEN $4 ELSE t_max END, \
                     tile_count = tile_count + $5, bytes = bytes + $6, version = version + 1, updated_at = $7 WHERE id = $1",
                )
                .bind(dataset_id)
                .bind(n)
                .bind(lo)
                .bind(hi)
                .bind(n * batch.tiles.len() as i64)
                .bind(n * per_slice)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                self.commit_returning(tx, dataset_id).await
            }

            async fn commit_overviews(&self, batch: &OverviewBatch) -> Result<Dataset> {
                let now = Utc::now();
                let mut tx = self.write_tx().await?;
                let row: Option<(i64, String)> = sqlx::query_as("SELECT id, definition FROM datasets WHERE id = $1")
                    .bind(batch.dataset_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let Some((dataset_id, json)) = row else {
                    return Err(CatalogueError::Conflict(format!("dataset {} is gone", batch.dataset_id)));
                };
                let mut def: DatasetDef = serde_json::from_str(&json).map_err(|e| corrupt("dataset definition", e))?;
                let vars: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM variables WHERE dataset_id = $1")
                    .bind(dataset_id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let var_id = |name: &str| {
                    vars.iter().find(|(_, n)| n == name).map(|(id, _)| *id).ok_or_else(|| CatalogueError::Conflict(format!("no variable {name} in dataset {}", def.name)))
                };
                let mut removed = TileCounts::default();
                for (name, t) in &batch.slices {
                    let vid = var_id(name)?;
                    let old: Vec<(String, i64, i32)> = sqlx::query_as(
                        "SELECT path, bytes, overview FROM tiles WHERE dataset_id = $1 AND variable_id = $2 AND overview > 1 \
                         AND (t = $3 OR (t IS NULL AND $4))",
                    )
                    .bind(dataset_id)
                    .bind(vid)
                    .bind(t.map(|t| t.0))
                    .bind(t.is_none())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    Self::retire(&mut tx, dataset_id, &old, now, &mut removed).await?;
                    sqlx::query("DELETE FROM tiles WHERE dataset_id = $1 AND variable_id = $2 AND overview > 1 AND (t = $3 OR (t IS NULL AND $4))")
                        .bind(dataset_id)
                        .bind(vid)
                        .bind(t.map(|t| t.0))
                        .bind(t.is_none())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                let rows: Vec<(i64, &crate::catalogue::NewTile)> =
                    batch.tiles.iter().map(|t| Ok((var_id(&t.variable)?, t))).collect::<Result<_>>()?;
                if rows.iter().any(|(_, t)| t.overview < 2) {
                    return Err(CatalogueError::Conflict("an overview batch holds a full-resolution tile".into()));
                }
                Self::insert_tiles(&mut tx, dataset_id, &rows, now).await?;
                let added = TileCounts::of(&batch.tiles);
                if batch.complete && !def.overviews {
                    def.overviews = true;
                    sqlx::query("UPDATE datasets SET definition = $1 WHERE id = $2")
                        .bind(to_json(&def)?)
                        .bind(dataset_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                sqlx::query(
                    "UPDATE datasets SET overview_tiles = overview_tiles + $2, overview_bytes = overview_bytes + $3, \
                     version = version + 1, updated_at = $4 WHERE id = $1",
                )
                .bind(dataset_id)
                .bind(added.overview_tiles - removed.overview_tiles)
                .bind(added.overview_bytes - removed.overview_bytes)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                self.commit_returning(tx, dataset_id).await
            }

            async fn set_tile_layouts(&self, dataset_id: i64, tiles: &[TileRecord]) -> Result<u64> {
                let mut tx = self.write_tx().await?;
                let mut changed = 0u64;
                for t in tiles {
                    // By key (the lookup indexes), and only while the row
                    // still names the file that was inspected.
                    let q = match t.time {
                        Some(_) => "UPDATE tiles SET layout = $1 WHERE dataset_id = $2 AND variable_id = $3 AND t = $4 AND ty = $5 AND tx = $6 AND path = $7 AND overview = $8",
                        None => "UPDATE tiles SET layout = $1 WHERE dataset_id = $2 AND variable_id = $3 AND t IS NULL AND ($4 IS NULL) AND ty = $5 AND tx = $6 AND path = $7 AND overview = $8",
                    };
                    changed += sqlx::query(q)
                        .bind(t.layout.clone())
                        .bind(dataset_id)
                        .bind(t.variable_id)
                        .bind(t.time.map(|x| x.0))
                        .bind(col(t.ty))
                        .bind(col(t.tx))
                        .bind(&t.path)
                        .bind(col(t.overview))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?
                        .rows_affected();
                }
                if changed > 0 {
                    sqlx::query("UPDATE datasets SET version = version + 1, updated_at = $2 WHERE id = $1")
                        .bind(dataset_id)
                        .bind(chrono::Utc::now())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                self.commit_change(tx).await?;
                Ok(changed)
            }
        }
    };
}

/// The embedded catalogue: one SQLite file, WAL mode.
///
/// Writers start with `BEGIN IMMEDIATE` (they take SQLite's write lock at
/// once, so two writers queue behind the busy timeout instead of failing
/// with "database is locked" when one upgrades a read); migrations and
/// dataset writer locks are `flock`s on files beside the database
/// (`<db>.locks/`), which every process on the host sees.
pub struct SqliteCatalogue {
    pool: SqlitePool,
    /// `<db>.locks`, or None for an in-memory database (in-process locks).
    lock_dir: Option<std::path::PathBuf>,
    /// The database's write-ahead log (`<db>-wal`), or None in memory.
    wal_file: Option<std::path::PathBuf>,
    local_locks: super::memory::MemoryCatalogue,
}

/// An exclusive `flock` on a file: held while the file is open.
fn try_flock(path: &std::path::Path) -> std::io::Result<Option<std::fs::File>> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    // SAFETY: flock on a descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(Some(f));
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(None) } else { Err(e) }
}

impl SqliteCatalogue {
    /// A synthetic batch's tile rows, many per statement.
    async fn bulk_tiles(
        tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        dataset_id: i64,
        vid: i64,
        batch: &super::SyntheticBatch,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let rows: Vec<(i64, super::NewTile)> =
            batch.times.iter().flat_map(|s| batch.tiles.iter().map(move |t| (vid, super::NewTile { time: Some(s.t), ..t.clone() }))).collect();
        let refs: Vec<(i64, &super::NewTile)> = rows.iter().map(|(v, t)| (*v, t)).collect();
        Self::insert_tiles(tx, dataset_id, &refs, now).await
    }

    /// Size, modification time and inode of the write-ahead log, hashed:
    /// every commit (from any process) writes to the log, so an unchanged
    /// token means nothing was committed, short of a commit within one tick
    /// of the filesystem's clock that leaves a reused log as long as it
    /// was. Callers therefore ask again at least every second (see
    /// [`Catalogue::change_token`]).
    fn token(&self) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        use std::os::unix::fs::MetadataExt;
        let db = self.wal_file.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match std::fs::metadata(db) {
            Ok(m) => (m.len(), m.mtime(), m.mtime_nsec(), m.ino()).hash(&mut h),
            Err(e) => e.kind().hash(&mut h),
        }
        Some(h.finish())
    }

    /// Commits a transaction that changed a dataset (other processes see
    /// it through the change token).
    async fn commit_change(&self, tx: sqlx::Transaction<'static, sqlx::Sqlite>) -> Result<()> {
        tx.commit().await.map_err(map_err)
    }

    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)
    }

    fn lock_file(&self, name: &str) -> Result<Option<std::path::PathBuf>> {
        let Some(dir) = &self.lock_dir else { return Ok(None) };
        std::fs::create_dir_all(dir)
            .map_err(|e| CatalogueError::Config(format!("cannot create the lock directory {}: {e}", dir.display())))?;
        Ok(Some(dir.join(format!("{name}.lock"))))
    }

    async fn try_lock(&self, name: &DatasetName) -> Result<Option<WriterLock>> {
        match self.lock_file(&format!("dataset-{name}"))? {
            None => self.local_locks.try_lock_dataset(name).await,
            Some(path) => try_flock(&path)
                .map(|f| f.map(WriterLock::new))
                .map_err(|e| CatalogueError::Other(format!("lock {}: {e}", path.display()))),
        }
    }

    /// Runs the migrations, one process at a time.
    async fn migrate_serialised(&self) -> Result<()> {
        let _held = match self.lock_file("migrations")? {
            None => None,
            Some(path) => Some(flock_wait(&path).await?),
        };
        self.migrate().await
    }
}

/// Waits for an exclusive `flock` on `path` (polling: the wait must not
/// block a runtime thread).
async fn flock_wait(path: &std::path::Path) -> Result<std::fs::File> {
    loop {
        match try_flock(path) {
            Ok(Some(f)) => return Ok(f),
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(CatalogueError::Other(format!("lock {}: {e}", path.display()))),
        }
    }
}

impl SqliteCatalogue {
    /// Opens (creating if missing) the database at `sqlite://PATH`.
    pub async fn connect(url: &str, migrate: bool) -> Result<Self> {
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    CatalogueError::Config(format!("cannot create directory {} for the catalogue: {e}", parent.display()))
                })?;
            }
        }
        let lock_dir = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .map(|p| p.split('?').next().unwrap_or(p))
            .filter(|p| !p.is_empty() && !p.contains(":memory:"))
            .map(|p| std::path::PathBuf::from(format!("{p}.locks")));
        // Opening is serialised with migrations: the first connection to a
        // new file creates it and switches it to WAL, which takes an
        // exclusive lock that SQLite's busy handler does not wait for, so
        // processes opening a new catalogue at once would otherwise see
        // "database is locked". Held for milliseconds once the file exists.
        let held = match &lock_dir {
            None => None,
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| CatalogueError::Config(format!("cannot create the lock directory {}: {e}", dir.display())))?;
                Some(flock_wait(&dir.join("migrations.lock")).await?)
            }
        };
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(map_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(map_err)?;
        let wal_file = lock_dir.as_ref().and_then(|d| d.to_str()).and_then(|d| d.strip_suffix(".locks")).map(|db| std::path::PathBuf::from(format!("{db}-wal")));
        let cat = SqliteCatalogue { pool, lock_dir, wal_file, local_locks: Default::default() };
        if migrate {
            // The lock is held already (see above); an in-memory database
            // is this process's alone.
            cat.migrate().await?;
        }
        drop(held);
        Ok(cat)
    }
}

sql_catalogue!(SqliteCatalogue, SqlitePool, sqlx::Sqlite, "sqlite", SQLITE_MIGRATOR);

/// The production catalogue on PostgreSQL. Dataset writer locks are
/// session advisory locks (`pg_try_advisory_lock`), held on a connection
/// of their own that is closed, not returned to the pool, when the lock is
/// dropped: every host and process using the database sees them, and a
/// writer that dies releases its lock with its session.
pub struct PostgresCatalogue {
    pool: PgPool,
    changes: std::sync::Arc<Changes>,
}

/// The channel every change to a dataset is announced on (`pg_notify` in
/// the changing transaction, delivered when it commits).
const CHANGES_CHANNEL: &str = "tessera_changes";

/// What this process heard on [`CHANGES_CHANNEL`]: a count that moves with
/// every notification, and whether it is listening at all.
struct Changes {
    heard: std::sync::atomic::AtomicU64,
    listening: std::sync::atomic::AtomicBool,
    started: std::sync::Once,
}

impl Default for Changes {
    fn default() -> Self {
        Changes { heard: Default::default(), listening: Default::default(), started: std::sync::Once::new() }
    }
}

/// Listens on [`CHANGES_CHANNEL`] for as long as the catalogue lives;
/// while it cannot, `listening` is false and callers ask for versions
/// again. A lost connection may have lost notifications: the count moves
/// for it too.
async fn listen_for_changes(pool: PgPool, changes: std::sync::Weak<Changes>) {
    use std::sync::atomic::Ordering::SeqCst;
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
            l.listen(CHANGES_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        match listener.await {
            Ok(mut l) => {
                {
                    let Some(c) = changes.upgrade() else { return };
                    c.heard.fetch_add(1, SeqCst);
                    c.listening.store(true, SeqCst);
                }
                loop {
                    let got = l.try_recv().await;
                    let Some(c) = changes.upgrade() else { return };
                    c.heard.fetch_add(1, SeqCst);
                    match got {
                        // A notification, or a connection lost and made
                        // again (listening again, maybe after a gap).
                        Ok(_) => {}
                        Err(e) => {
                            c.listening.store(false, SeqCst);
                            tracing::warn!(error = %e, "not listening for catalogue changes; asking on every request until it is back");
                            break;
                        }
                    }
                }
            }
            Err(_) => {
                let Some(c) = changes.upgrade() else { return };
                c.listening.store(false, SeqCst);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Text for PostgreSQL's `COPY ... FROM STDIN` (text format): tabs,
/// newlines and backslashes escaped.
fn copy_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

impl PostgresCatalogue {
    /// A synthetic batch's tile rows through `COPY`, the bulk path
    /// (several times the rows a second of multi-row `INSERT`s, which
    /// PostgreSQL parses and binds row by row), streamed in pieces of a
    /// few MB.
    async fn bulk_tiles(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        dataset_id: i64,
        vid: i64,
        batch: &super::SyntheticBatch,
        now: DateTime<Utc>,
    ) -> Result<()> {
        use std::fmt::Write;
        let mut copy = tx
            .copy_in_raw("COPY tiles (dataset_id, variable_id, t, overview, ty, tx, path, bytes, checksum, layout, created_at) FROM STDIN")
            .await
            .map_err(map_err)?;
        // Every row's text but its time, once.
        let when = now.to_rfc3339();
        let tails: Vec<String> = batch
            .tiles
            .iter()
            .map(|t| {
                let mut row = format!("\t{}\t{}\t{}\t", col(t.overview), col(t.ty), col(t.tx));
                copy_text(&mut row, &t.path);
                let _ = write!(row, "\t{}\t", t.bytes);
                copy_text(&mut row, &t.checksum);
                row.push('\t');
                match &t.layout {
                    Some(l) => {
                        row.push_str("\\\\x");
                        for b in l {
                            let _ = write!(row, "{b:02x}");
                        }
                    }
                    None => row.push_str("\\N"),
                }
                let _ = writeln!(row, "\t{when}");
                row
            })
            .collect();
        let mut buf = String::with_capacity(4 << 20);
        for s in &batch.times {
            for tail in &tails {
                let _ = write!(buf, "{dataset_id}\t{vid}\t{}", s.t.0);
                buf.push_str(tail);
                if buf.len() >= 4 << 20 {
                    copy.send(std::mem::take(&mut buf).into_bytes()).await.map_err(map_err)?;
                    buf.reserve(4 << 20);
                }
            }
        }
        if !buf.is_empty() {
            copy.send(buf.into_bytes()).await.map_err(map_err)?;
        }
        copy.finish().await.map_err(map_err)?;
        Ok(())
    }

    /// The count of changes heard, while listening (started by the first
    /// call, on a tokio runtime); `None` otherwise, so that every request
    /// asks for the dataset's version. A notification arrives within
    /// milliseconds of its commit.
    fn token(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.changes.started.is_completed() {
            let Ok(rt) = tokio::runtime::Handle::try_current() else { return None };
            self.changes.started.call_once(|| {
                rt.spawn(listen_for_changes(self.pool.clone(), std::sync::Arc::downgrade(&self.changes)));
            });
        }
        self.changes.listening.load(SeqCst).then(|| self.changes.heard.load(SeqCst))
    }

    /// Commits a transaction that changed a dataset, announcing it to every
    /// server listening.
    async fn commit_change(&self, mut tx: sqlx::Transaction<'static, sqlx::Postgres>) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, '')").bind(CHANGES_CHANNEL).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(map_err)
    }

    /// sqlx takes an advisory lock around PostgreSQL migrations itself.
    async fn migrate_serialised(&self) -> Result<()> {
        self.migrate().await
    }

    async fn try_lock(&self, name: &DatasetName) -> Result<Option<WriterLock>> {
        let key = i64::from_le_bytes(blake3::hash(format!("tessera dataset {name}").as_bytes()).as_bytes()[..8].try_into().expect("8 bytes"));
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        conn.close_on_drop();
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut *conn).await.map_err(map_err)?;
        Ok(got.then(|| WriterLock::new(conn)))
    }
}

impl PostgresCatalogue {
    /// Connects lazily: the service starts (and reports not ready) while the
    /// database is down, and recovers by itself when it returns.
    pub async fn connect(url: &str, migrate: bool) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy(url)
            .map_err(map_err)?;
        let cat = PostgresCatalogue { pool, changes: Default::default() };
        if migrate {
            cat.migrate().await?;
        }
        Ok(cat)
    }
}

sql_catalogue!(PostgresCatalogue, PgPool, sqlx::Postgres, "postgres", POSTGRES_MIGRATOR);
