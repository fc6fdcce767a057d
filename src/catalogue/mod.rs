//! The catalogue: which datasets, variables, time slices and tiles exist.
//!
//! One port, [`Catalogue`], three adapters: [`sql::SqliteCatalogue`] (the
//! embedded default), [`sql::PostgresCatalogue`] (production) and
//! [`memory::MemoryCatalogue`] (the twin used by tests and benchmarks). All
//! three pass one conformance suite (`tests/catalogue.rs`). No driver type
//! crosses the port: each adapter turns its errors into [`CatalogueError`].
//!
//! Tile lookups are index range scans on `(dataset, variable, time, ty, tx)`.
//! Everything derived (time slices, extent, tile count, bytes) is written at
//! ingest time, inside the same transaction as the tiles.

pub mod memory;
pub mod sql;

use crate::model::{DatasetDef, DatasetName, Timestamp, VariableDef};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::ops::Range;
use std::sync::Arc;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The catalogue cannot be reached (or timed out): retry later.
    #[error("catalogue unavailable: {0}")]
    Unavailable(String),
    /// The change contradicts what is stored (another writer, a type change).
    #[error("catalogue conflict: {0}")]
    Conflict(String),
    /// Stored data cannot be decoded.
    #[error("catalogue is corrupt: {0}")]
    Corrupt(String),
    /// The URL or configuration is wrong.
    #[error("catalogue configuration: {0}")]
    Config(String),
    #[error("catalogue error: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, CatalogueError>;

/// A dataset as stored, with its derived figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub id: i64,
    pub def: DatasetDef,
    pub stats: DatasetStats,
    /// Bumped by every change to the dataset.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Figures kept up to date at ingest time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatasetStats {
    pub slice_count: u64,
    pub t_min: Option<Timestamp>,
    pub t_max: Option<Timestamp>,
    pub tile_count: u64,
    pub bytes: u64,
}

/// A variable as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Variable {
    pub id: i64,
    pub dataset_id: i64,
    pub def: VariableDef,
}

/// One tile file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileRecord {
    pub variable_id: i64,
    /// `None` for time-invariant variables.
    pub time: Option<Timestamp>,
    pub tx: u32,
    pub ty: u32,
    /// Relative to the pool root.
    pub path: String,
    pub bytes: u64,
    /// `blake3:<hex>` of the file's bytes.
    pub checksum: String,
}

/// Which times a tile lookup covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSel {
    /// Time-invariant tiles.
    Static,
    /// Slices with `from <= t <= to`.
    Between(Timestamp, Timestamp),
}

/// A tile lookup: one index range scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileQuery {
    pub dataset_id: i64,
    pub variable_id: i64,
    pub time: TimeSel,
    pub tx: Range<u32>,
    pub ty: Range<u32>,
}

/// A tile written by an ingest, to be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTile {
    pub variable: String,
    pub time: Option<Timestamp>,
    pub tx: u32,
    pub ty: u32,
    pub path: String,
    pub bytes: u64,
    pub checksum: String,
}

/// Everything one source file adds, committed in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct IngestBatch {
    /// Created if no dataset of that name exists; otherwise its grid must match.
    pub dataset: DatasetDef,
    /// Created if absent; otherwise type and dimensions must match.
    pub variables: Vec<VariableDef>,
    /// The (variable, time) pairs this batch completes, with or without tiles.
    pub slices: Vec<(String, Option<Timestamp>)>,
    pub tiles: Vec<NewTile>,
}

/// The port. Every method is one short round trip or one transaction.
#[async_trait]
pub trait Catalogue: Send + Sync + 'static {
    /// `sqlite`, `postgres` or `memory`.
    fn backend(&self) -> &'static str;
    /// A cheap query proving the catalogue answers.
    async fn ping(&self) -> Result<()>;
    /// The applied schema version (highest migration).
    async fn schema_version(&self) -> Result<i64>;
    async fn dataset(&self, name: &DatasetName) -> Result<Option<Dataset>>;
    /// All datasets, by name.
    async fn datasets(&self) -> Result<Vec<Dataset>>;
    /// Variables of a dataset, in the order they were added.
    async fn variables(&self, dataset_id: i64) -> Result<Vec<Variable>>;
    /// Time slices of a dataset, ascending.
    async fn time_slices(&self, dataset_id: i64) -> Result<Vec<Timestamp>>;
    /// The times (None = static) already ingested for a variable.
    async fn ingested_times(&self, variable_id: i64) -> Result<Vec<Option<Timestamp>>>;
    /// Tiles in a (time, ty, tx) box, ordered by time, ty, tx.
    async fn tiles(&self, q: &TileQuery) -> Result<Vec<TileRecord>>;
    /// Every tile of a dataset at one time (None = static), for `fsck`.
    async fn tiles_at(&self, dataset_id: i64, time: Option<Timestamp>) -> Result<Vec<TileRecord>>;
    /// Records one ingest atomically; returns the dataset as it is after it.
    async fn commit_ingest(&self, batch: &IngestBatch) -> Result<Dataset>;
    /// Removes a dataset's rows; false if there was none.
    async fn delete_dataset(&self, name: &DatasetName) -> Result<bool>;
}

/// Opens the catalogue a URL names: `sqlite://PATH` (created if missing),
/// `postgres://...` / `postgresql://...`, or `memory:`. Migrations are
/// applied when `migrate` is true.
pub async fn open(url: &str, migrate: bool) -> Result<Arc<dyn Catalogue>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sql::SqliteCatalogue::connect(url, migrate).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(sql::PostgresCatalogue::connect(url, migrate).await?))
    } else if url == "memory:" {
        Ok(Arc::new(memory::MemoryCatalogue::default()))
    } else {
        Err(CatalogueError::Config(format!(
            "catalogue URL {:?} is neither sqlite://PATH, postgres://... nor memory:",
            redact(url)
        )))
    }
}

/// A URL with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// Tiles are keyed by (time, ty, tx); both adapters order results this way.
pub(crate) fn tile_order(a: &TileRecord, b: &TileRecord) -> std::cmp::Ordering {
    (a.time, a.ty, a.tx).cmp(&(b.time, b.ty, b.tx))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(super::redact("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}

/// A variable may be ingested again only with the same type and dimensions.
pub(crate) fn check_same_variable(dataset: &DatasetName, stored: &VariableDef, new: &VariableDef) -> Result<()> {
    let dims = |v: &VariableDef| match (v.has_time, v.has_level) {
        (true, true) => "(time, level, y, x)",
        (true, false) => "(time, y, x)",
        (false, true) => "(level, y, x)",
        (false, false) => "(y, x)",
    };
    if stored.dtype != new.dtype {
        return Err(CatalogueError::Conflict(format!(
            "variable {} of dataset {dataset} is stored as {} but this source has {}",
            stored.name, stored.dtype, new.dtype
        )));
    }
    if (stored.has_time, stored.has_level) != (new.has_time, new.has_level) {
        return Err(CatalogueError::Conflict(format!(
            "variable {} of dataset {dataset} has dimensions {} but this source has {}",
            stored.name,
            dims(stored),
            dims(new)
        )));
    }
    Ok(())
}
