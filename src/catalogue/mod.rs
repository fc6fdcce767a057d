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

use crate::model::{AttrValue, DatasetDef, DatasetName, Timestamp, VariableDef};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
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

/// Which state of a dataset: its id (a deleted and re-created dataset has
/// another) and its version (bumped by every change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetVersion {
    pub id: i64,
    pub version: i64,
}

impl Dataset {
    pub fn state(&self) -> DatasetVersion {
        DatasetVersion { id: self.id, version: self.version }
    }
}

/// Figures kept up to date at ingest time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatasetStats {
    pub slice_count: u64,
    pub t_min: Option<Timestamp>,
    pub t_max: Option<Timestamp>,
    /// Full-resolution tiles and their bytes.
    pub tile_count: u64,
    pub bytes: u64,
    /// Overview tiles and their bytes (levels 2, 4, ...).
    pub overview_tiles: u64,
    pub overview_bytes: u64,
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
    /// 1 for the full resolution, `k` for overview level `k` (whose tile
    /// indices are on the grid of every `k`-th cell).
    pub overview: u32,
    pub tx: u32,
    pub ty: u32,
    /// Relative to the pool root.
    pub path: String,
    pub bytes: u64,
    /// `blake3:<hex>` of the file's bytes.
    pub checksum: String,
    /// Where the tile's values lie in its file
    /// (the store's tile layout, encoded); `None` when not
    /// recorded (older archives before `tessera reindex`).
    pub layout: Option<Vec<u8>>,
}

/// Which times a tile lookup covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeSel {
    /// Time-invariant tiles.
    Static,
    /// Slices with `from <= t <= to`.
    Between(Timestamp, Timestamp),
}

/// A tile lookup: one index range scan.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TileQuery {
    pub dataset_id: i64,
    pub variable_id: i64,
    pub time: TimeSel,
    /// See [`TileRecord::overview`].
    pub overview: u32,
    pub tx: Range<u32>,
    pub ty: Range<u32>,
}

/// One time slice of a dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSlice {
    pub t: Timestamp,
    /// The time coordinate in the dataset's units, exactly as the source
    /// gave it (None in archives made before values were kept: derive it
    /// from `t`).
    pub value: Option<f64>,
    /// Values of the dataset's per-slice auxiliary variables (time bounds),
    /// by name.
    pub aux: BTreeMap<String, Vec<f64>>,
}

impl TimeSlice {
    pub fn new(t: Timestamp) -> Self {
        TimeSlice { t, value: None, aux: BTreeMap::new() }
    }
}

/// `aux` as stored: JSON with non-finite values as strings.
pub(crate) fn aux_to_json(aux: &BTreeMap<String, Vec<f64>>) -> Option<String> {
    if aux.is_empty() {
        return None;
    }
    #[derive(serde::Serialize)]
    struct W<'a>(#[serde(with = "crate::model::float_vec")] &'a Vec<f64>);
    let m: BTreeMap<&String, W<'_>> = aux.iter().map(|(k, v)| (k, W(v))).collect();
    serde_json::to_string(&m).ok()
}

pub(crate) fn aux_from_json(s: Option<&str>) -> Result<BTreeMap<String, Vec<f64>>> {
    #[derive(serde::Deserialize)]
    struct W(#[serde(with = "crate::model::float_vec")] Vec<f64>);
    match s {
        None | Some("") => Ok(BTreeMap::new()),
        Some(s) => {
            let m: BTreeMap<String, W> =
                serde_json::from_str(s).map_err(|e| CatalogueError::Corrupt(format!("time slice auxiliary values: {e}")))?;
            Ok(m.into_iter().map(|(k, W(v))| (k, v)).collect())
        }
    }
}

/// A tile file taken out of service by `ingest --replace`, kept for
/// readers that planned before the replacement until its grace period ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredTile {
    pub dataset_id: i64,
    pub path: String,
    /// Milliseconds since the Unix epoch.
    pub retired_at: i64,
}

/// Metadata edits (`tessera datasets set`): `None` removes an attribute.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetadataEdit {
    pub title: Option<String>,
    /// Global attributes.
    pub global: Vec<(String, Option<AttrValue>)>,
    /// Variable attributes: (variable, attribute, value).
    pub variable: Vec<(String, String, Option<AttrValue>)>,
}

/// A tile written by an ingest, to be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTile {
    pub variable: String,
    pub time: Option<Timestamp>,
    /// See [`TileRecord::overview`].
    pub overview: u32,
    pub tx: u32,
    pub ty: u32,
    pub path: String,
    pub bytes: u64,
    pub checksum: String,
    /// See [`TileRecord::layout`].
    pub layout: Option<Vec<u8>>,
}

/// Everything one source file adds, committed in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct IngestBatch {
    /// Created if no dataset of that name exists; otherwise its grid must
    /// match, and its stored definition is replaced by this one (which adds
    /// auxiliary variables the dataset did not have yet).
    pub dataset: DatasetDef,
    /// Created if absent; otherwise dimensions must match.
    pub variables: Vec<VariableDef>,
    /// The (variable, time) pairs this batch completes, with or without tiles.
    pub slices: Vec<(String, Option<Timestamp>)>,
    /// The time slices the batch touches, with their values; slices the
    /// dataset already has keep theirs unless `replace`.
    pub times: Vec<TimeSlice>,
    pub tiles: Vec<NewTile>,
    /// Replace the (variable, time) pairs of `slices` that exist: their
    /// tiles are retired (see [`RetiredTile`]) in the same transaction.
    pub replace: bool,
    /// blake3 of each slice's stored values (see [`Catalogue::content_hashes`]).
    pub content_hashes: std::collections::HashMap<(String, Option<Timestamp>), String>,
}

/// Time slices that share their tile files, for `tessera synth`: every
/// slice of `times` gets a row for every tile of `tiles` (whose `time` is
/// ignored). The dataset and its variable exist already.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticBatch {
    pub dataset: DatasetDef,
    pub variable: VariableDef,
    /// New slices, after the dataset's last.
    pub times: Vec<TimeSlice>,
    pub tiles: Vec<NewTile>,
}

impl SyntheticBatch {
    /// The batch as one ingest per slice: what any catalogue can commit,
    /// one transaction at a time.
    pub fn as_ingests(&self) -> impl Iterator<Item = IngestBatch> + '_ {
        self.times.iter().map(|s| IngestBatch {
            dataset: self.dataset.clone(),
            variables: vec![self.variable.clone()],
            slices: vec![(self.variable.name.clone(), Some(s.t))],
            times: vec![s.clone()],
            tiles: self.tiles.iter().map(|t| NewTile { time: Some(s.t), ..t.clone() }).collect(),
            replace: false,
            content_hashes: Default::default(),
        })
    }
}

/// Overviews made for slices already in a dataset (`tessera overviews
/// build`), committed in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct OverviewBatch {
    pub dataset_id: i64,
    /// The (variable, time) slices these overviews are of: the overview
    /// tiles they had are retired and replaced by `tiles`.
    pub slices: Vec<(String, Option<Timestamp>)>,
    /// Overview tiles only (`overview` > 1).
    pub tiles: Vec<NewTile>,
    /// The last batch of a build: the dataset now keeps overviews (every
    /// slice has them), and readers may use them.
    pub complete: bool,
}

/// Held by the one writer of a dataset's files and rows (an ingest from
/// its first tile write to its commit, `fsck --repair`, `datasets delete`):
/// every process and host that shares the catalogue sees it. Dropping it
/// lets the next writer in.
pub struct WriterLock {
    _held: Box<dyn std::any::Any + Send + Sync>,
}

impl WriterLock {
    pub fn new(held: impl std::any::Any + Send + Sync) -> Self {
        WriterLock { _held: Box::new(held) }
    }
}

impl std::fmt::Debug for WriterLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriterLock")
    }
}

/// Takes the writer lock of a dataset (which need not exist yet), waiting
/// for the writer that holds it; `waiting` is called once if it has to.
pub async fn lock_dataset(catalogue: &dyn Catalogue, name: &DatasetName, waiting: impl FnOnce()) -> Result<WriterLock> {
    if let Some(l) = catalogue.try_lock_dataset(name).await? {
        return Ok(l);
    }
    waiting();
    let mut pause = std::time::Duration::from_millis(20);
    loop {
        tokio::time::sleep(pause).await;
        if let Some(l) = catalogue.try_lock_dataset(name).await? {
            return Ok(l);
        }
        pause = (pause * 2).min(std::time::Duration::from_millis(500));
    }
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
    /// A dataset's id and version only: the cheap question "has it
    /// changed?" (one indexed row, no definition parsed), asked on every
    /// request before a cached view is used.
    async fn dataset_version(&self, name: &DatasetName) -> Result<Option<DatasetVersion>>;
    /// A token read without a round trip that changes whenever anything
    /// may have been committed (by this process or another), or `None` when
    /// the adapter has none. An unchanged token may still hide a change for
    /// a short while (SQLite's is file metadata), so callers that skip
    /// [`Catalogue::dataset_version`] on an unchanged token ask again after
    /// at most a second.
    fn change_token(&self) -> Option<u64> {
        None
    }
    /// All datasets, by name.
    async fn datasets(&self) -> Result<Vec<Dataset>>;
    /// Every dataset's name and state, by name: what a listing that keeps
    /// its own per-dataset summaries needs to know which moved, without
    /// reading every definition (which holds the grid's coordinates).
    async fn dataset_states(&self) -> Result<Vec<(String, DatasetVersion)>>;
    /// Variables of a dataset, in the order they were added.
    async fn variables(&self, dataset_id: i64) -> Result<Vec<Variable>>;
    /// Time slices of a dataset, ascending.
    async fn time_slices(&self, dataset_id: i64) -> Result<Vec<TimeSlice>>;
    /// The times (None = static) already ingested for a variable.
    async fn ingested_times(&self, variable_id: i64) -> Result<Vec<Option<Timestamp>>>;
    /// The content hashes of a variable's ingested slices that have one
    /// (slices ingested by earlier versions have none).
    async fn content_hashes(&self, variable_id: i64) -> Result<Vec<(Option<Timestamp>, String)>>;
    /// Tiles in a (time, ty, tx) box, ordered by time, ty, tx.
    async fn tiles(&self, q: &TileQuery) -> Result<Vec<TileRecord>>;
    /// Every tile of a dataset at one time (None = static), for `fsck`.
    async fn tiles_at(&self, dataset_id: i64, time: Option<Timestamp>) -> Result<Vec<TileRecord>>;
    /// Records one ingest atomically; returns the dataset as it is after it.
    async fn commit_ingest(&self, batch: &IngestBatch) -> Result<Dataset>;
    /// Records the layouts of tiles of a dataset (`tessera reindex`): each
    /// row found by its key and path gets the record's layout. A new
    /// dataset version when anything changed, so that servers take them up.
    /// Returns the rows changed.
    async fn set_tile_layouts(&self, dataset_id: i64, tiles: &[TileRecord]) -> Result<u64>;
    /// Records overviews built for slices already in a dataset, replacing
    /// the overview tiles those slices had; the last batch of a build
    /// (`complete`) marks the dataset as keeping overviews. Callers hold the
    /// dataset's writer lock.
    async fn commit_overviews(&self, batch: &OverviewBatch) -> Result<Dataset>;
    /// Appends synthetic slices in one transaction (see
    /// [`SyntheticBatch`]). The SQL catalogues insert their rows in bulk;
    /// this default commits one ingest per slice.
    async fn append_synthetic(&self, batch: &SyntheticBatch) -> Result<Dataset> {
        let mut last = None;
        for b in batch.as_ingests() {
            last = Some(self.commit_ingest(&b).await?);
        }
        match last {
            Some(d) => Ok(d),
            None => self.dataset(&batch.dataset.name).await?.ok_or_else(|| CatalogueError::Conflict(format!("no dataset {}", batch.dataset.name))),
        }
    }
    /// Removes a dataset's rows; false if there was none.
    async fn delete_dataset(&self, name: &DatasetName) -> Result<bool>;
    /// Edits a dataset's title and attributes; bumps its version.
    async fn update_metadata(&self, name: &DatasetName, edit: &MetadataEdit) -> Result<Dataset>;
    /// Retired tiles retired before `before_ms`, oldest first, at most `limit`.
    async fn retired_before(&self, before_ms: i64, limit: i64) -> Result<Vec<RetiredTile>>;
    /// Retired tiles of one dataset (`fsck` does not call them orphans).
    async fn retired_in(&self, dataset_id: i64) -> Result<Vec<RetiredTile>>;
    /// Forgets retired tiles (their files are removed next).
    async fn forget_retired(&self, paths: &[String]) -> Result<()>;
    /// The writer lock of a dataset if nobody holds it (see [`lock_dataset`]).
    async fn try_lock_dataset(&self, name: &DatasetName) -> Result<Option<WriterLock>>;
    /// Applies pending migrations (one process at a time); `open(url,
    /// true)` does this, a server that starts before its database calls it
    /// until it succeeds.
    async fn apply_migrations(&self) -> Result<()>;
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

/// Query parameters of a catalogue URL that carry secrets.
const SECRET_PARAMS: [&str; 5] = ["password", "sslpassword", "passwd", "pass", "secret"];

/// A catalogue URL with every secret replaced by `***`, for messages and
/// logs: the password of the userinfo (whatever characters it holds, `@`
/// included) and query parameters such as `password` and `sslpassword`.
/// Parsed with the same URL parser the PostgreSQL driver uses; a URL it
/// cannot parse loses its whole userinfo and query.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.has_host() || u.query().is_some() => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query().is_some() {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let secret = SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str());
                        (k.into_owned(), if secret { "***".to_string() } else { v.into_owned() })
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            let rest = rest.split_once('?').map_or(rest, |(h, _)| h);
            if scheme.is_empty() { rest.to_string() } else { format!("{scheme}://***@{rest}") }
        }
    }
}

/// Tiles are keyed by (time, ty, tx); both adapters order results this way.
pub(crate) fn tile_order(a: &TileRecord, b: &TileRecord) -> std::cmp::Ordering {
    (a.time, a.ty, a.tx).cmp(&(b.time, b.ty, b.tx))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_in_every_form() {
        let r = super::redact;
        assert_eq!(r("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(r("postgres://u:p%40ss@h/db"), "postgres://u:***@h/db");
        // A raw '@' in the password: the last '@' ends the userinfo.
        let at = r("postgres://u:p@ss@h/db");
        assert!(!at.contains("ss@") && !at.contains("p@") && at.ends_with("@h/db"), "{at}");
        assert_eq!(r("postgres://u@h/db?password=secret&sslmode=require"), "postgres://u@h/db?password=***&sslmode=require");
        assert_eq!(r("postgresql://h/db?user=u&sslpassword=k3y"), "postgresql://h/db?user=u&sslpassword=***");
        assert_eq!(r("postgres://u:a:b@h/db?PASSWORD=x"), "postgres://u:***@h/db?PASSWORD=***");
        assert_eq!(r("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(r("sqlite:///var/lib/t/c.db"), "sqlite:///var/lib/t/c.db");
        for url in ["postgres://u:secret@h/db", "postgres://u:sec@ret@h/db", "postgres://h/db?password=secret", "postgres://u:secret@[bad/db"] {
            assert!(!r(url).contains("secret") && !r(url).contains("ret@"), "{url} -> {}", r(url));
        }
    }
}

/// A variable may be ingested again only with the same dimensions and
/// kind; its encoding is the dataset's (ingest re-encodes sources into it).
pub(crate) fn check_same_variable(dataset: &DatasetName, stored: &VariableDef, new: &VariableDef) -> Result<()> {
    let dims = |v: &VariableDef| match (v.has_time, v.has_level) {
        (true, true) => "(time, level, y, x)",
        (true, false) => "(time, y, x)",
        (false, true) => "(level, y, x)",
        (false, false) => "(y, x)",
    };
    if (stored.has_time, stored.has_level) != (new.has_time, new.has_level) {
        return Err(CatalogueError::Conflict(format!(
            "variable {} of dataset {dataset} has dimensions {} but this source has {}",
            stored.name,
            dims(stored),
            dims(new)
        )));
    }
    if stored.kind != new.kind {
        return Err(CatalogueError::Conflict(format!(
            "{} of dataset {dataset} is a {} variable but a {} variable in this source",
            stored.name,
            stored.kind.name(),
            new.kind.name()
        )));
    }
    Ok(())
}

/// Attributes that say how stored values are read: editing one would
/// reinterpret every value.
pub const ENCODING_ATTRS: [&str; 9] =
    ["scale_factor", "add_offset", "_FillValue", "missing_value", "valid_min", "valid_max", "valid_range", "_Unsigned", "units"];

/// Applies a metadata edit to a definition and its variables.
pub(crate) fn apply_edit(def: &mut DatasetDef, vars: &mut [Variable], edit: &MetadataEdit) -> Result<()> {
    use crate::model::Attribute;
    fn set(attrs: &mut Vec<Attribute>, key: &str, value: &Option<AttrValue>) {
        match value {
            Some(v) => match attrs.iter_mut().find(|a| a.name == key) {
                Some(a) => a.value = v.clone(),
                None => attrs.push(Attribute::new(key, v.clone())),
            },
            None => attrs.retain(|a| a.name != key),
        }
    }
    if let Some(t) = &edit.title {
        def.title = t.clone();
        set(&mut def.attrs, "title", &Some(AttrValue::Text(t.clone())));
    }
    for (k, v) in &edit.global {
        if k == "title" {
            if let Some(AttrValue::Text(t)) = v {
                def.title = t.clone();
            }
        }
        set(&mut def.attrs, k, v);
    }
    for (var, k, v) in &edit.variable {
        if ENCODING_ATTRS.contains(&k.as_str()) {
            return Err(CatalogueError::Conflict(format!(
                "{var}:{k} cannot be edited: the stored values of {var} are encoded with it; re-ingest into a new dataset to change it"
            )));
        }
        let target = vars.iter_mut().find(|x| &x.def.name == var).ok_or_else(|| {
            CatalogueError::Conflict(format!("dataset {} has no variable {var}", def.name))
        })?;
        set(&mut target.def.attrs, k, v);
    }
    Ok(())
}
