//! Ingest: source NetCDF files to tiles to catalogue.
//!
//! ```text
//! source -> analyse (grid, CRS, types, time, auxiliary variables)
//!        -> compare with the dataset (grid, calendar, units, encoding)
//!        -> cut into tiles, re-encoded into the dataset's encoding
//!        -> write each tile under a name of its own
//!        -> one catalogue transaction for the whole file
//! ```
//!
//! Guarantees:
//! * A bad source (not NetCDF, truncated, no x/y, a non-monotonic axis, an
//!   unsupported type, a grid, calendar or units that differ from the
//!   dataset's) is refused before anything is written.
//! * **No value is ever reinterpreted.** Each variable keeps the encoding
//!   (type, `scale_factor`/`add_offset`, `_FillValue`) it was created with;
//!   a source encoded otherwise (ERA5's per-file packing) is decoded and
//!   re-encoded into it, with the largest quantisation error reported, or
//!   refused when its values do not fit. `_FillValue` and `missing_value`
//!   cells of the source become the dataset's `_FillValue`.
//! * Times are kept in the dataset's own calendar and units: a source with
//!   other units has its times converted exactly, or is refused.
//! * Files go in first, rows second: killing the process at any moment
//!   leaves the catalogue as it was or with the whole file ingested. Every
//!   tile gets a file name of its own (never an existing one), so a failed
//!   ingest removes exactly what it wrote and nothing another writer owns;
//!   after a kill its files are orphans that `tessera fsck --repair`
//!   removes.
//! * One writer at a time per dataset: an ingest holds the dataset's
//!   writer lock ([`crate::catalogue::lock_dataset`]) from reading what the
//!   dataset holds to its commit; a second one waits, then skips what the
//!   first added. `fsck --repair` and `datasets delete` take the same lock,
//!   so they never remove files an ingest is about to commit; and the
//!   ingest checks every file it commits is there before committing.
//! * Re-running an ingest is a no-op: every (variable, time) already in the
//!   dataset is skipped. `replace` instead rewrites those slices from the
//!   source: the new tiles and the retirement of the old ones commit in one
//!   transaction, and the old files stay for readers in flight until
//!   [`crate::gc`] removes them after a grace period.
//! * Adding a variable writes only that variable's files.
//! * All-fill tiles are not written: the dataset is sparse.

pub mod overviews;
pub mod source;

use crate::catalogue::{Catalogue, CatalogueError, IngestBatch, NewTile, TimeSlice, Variable};
use crate::model::{
    AuxVar, CfTime, DataType, DatasetDef, DatasetName, Encoding, EncodingError, Quantisation, Recode, TileFormat,
    TileIndex, TileShape, TimeAxis, Timestamp, TypedArray, VarKind, VariableDef, encoding_plan, unpacked,
};
use crate::store::tile::{TileSpec, read_var, write_tile};
use crate::store::{Pool, StoreError, tile_rel_path, write_new};
use crate::with_typed_array;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Axis as NdAxis, Slice};
pub use source::{Source, SourceError, analyse};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Reads from the source one band of tile rows at a time, unless a band
/// would be larger than this; then one tile at a time.
const MAX_BAND_BYTES: usize = 256 << 20;

/// Which variables of a new dataset store decoded values instead of the
/// source's packing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Unpack {
    /// Keep every variable's packing (the first source's).
    #[default]
    No,
    /// Every packed variable.
    All,
    /// These variables.
    Vars(Vec<String>),
}

impl Unpack {
    fn applies_to(&self, var: &str) -> bool {
        match self {
            Unpack::No => false,
            Unpack::All => true,
            Unpack::Vars(v) => v.iter().any(|x| x == var),
        }
    }
}

/// How to ingest.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    pub dataset: DatasetName,
    /// Data variables to take (empty: all on the grid).
    pub vars: Vec<String>,
    /// Title for a new dataset (default: the source's `title`, else the name).
    pub title: Option<String>,
    /// Tile shape for a new dataset; must match an existing one.
    pub tile: Option<TileShape>,
    /// Tile encoding for a new dataset; must match an existing one.
    pub format: Option<TileFormat>,
    /// Deflate level for `nc4-deflate` tiles (1-9, default 4).
    pub deflate_level: Option<u8>,
    /// Whether a new dataset keeps overviews (default: yes); must match an
    /// existing one when given.
    pub overviews: Option<bool>,
    /// The time of a source without a time coordinate.
    pub time: Option<Timestamp>,
    /// Store packed variables as floats (chosen when a variable is first
    /// ingested).
    pub unpack: Unpack,
    /// Rewrite the (variable, time) slices the source holds, even those
    /// already in the dataset.
    pub replace: bool,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
    /// Test hook: fail after the tiles are written, before the commit.
    #[doc(hidden)]
    pub fail_before_commit: bool,
}

impl IngestOptions {
    pub fn new(dataset: DatasetName) -> Self {
        IngestOptions {
            dataset,
            vars: Vec::new(),
            title: None,
            tile: None,
            format: None,
            deflate_level: None,
            overviews: None,
            time: None,
            unpack: Unpack::No,
            replace: false,
            progress: false,
            fail_before_commit: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{path}: {reason}; nothing was written")]
    Mismatch { path: PathBuf, reason: String },
    #[error("{path}: {error}; nothing was committed")]
    Encoding { path: PathBuf, error: EncodingError },
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no space left on device writing {tile} (it needs about {need}, {free} are free); nothing was committed")]
    NoSpace { tile: String, need: String, free: String },
    #[error("writing {tile}: {reason}; nothing was committed")]
    Write { tile: String, reason: String },
    #[error("{0}: interrupted before the catalogue commit (test hook)")]
    Interrupted(PathBuf),
    #[error("ingest task failed: {0}")]
    Task(String),
}

/// What one file added.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestReport {
    pub created_dataset: bool,
    pub slices_written: usize,
    pub slices_skipped: usize,
    /// Of `slices_written`, how many replaced slices the dataset had.
    pub slices_replaced: usize,
    /// Of `slices_skipped`, how many hold other values in this source than
    /// in the dataset (`--replace` would rewrite them).
    pub slices_differing: usize,
    /// Something the caller should know (a source with nothing to ingest).
    pub notes: Vec<String>,
    /// Full-resolution tiles written.
    pub tiles_written: usize,
    /// Overview tiles written (levels 2, 4, ...).
    pub overview_tiles: usize,
    pub tiles_sparse: usize,
    pub bytes: u64,
    /// Variables whose values were re-encoded into the dataset's encoding,
    /// with the largest error that introduced.
    pub reencoded: Vec<Reencoded>,
}

/// One variable of a source converted into the dataset's encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct Reencoded {
    pub variable: String,
    /// The dataset's encoding, in words (`int16, scale_factor ...`).
    pub encoding: String,
    /// The variable's units: the error is in them.
    pub units: Option<String>,
    pub quantisation: Quantisation,
}

/// One unit of work: a variable at a time (or static).
#[derive(Clone, Copy, Debug)]
struct Job {
    var: usize,
    /// Index into the source's time dimension, if the variable has one.
    t_index: Option<usize>,
    time: Option<Timestamp>,
    /// The time coordinate value in the dataset's units.
    time_value: Option<f64>,
    /// The slice is in the dataset already: only compare its values (by
    /// content hash) with what is stored, write nothing.
    check_only: bool,
}

/// A tiled variable as it will be written: the dataset's definition, the
/// source's type, and how source values become stored values.
#[derive(Clone, Debug)]
struct Plan {
    def: VariableDef,
    source_dtype: DataType,
    has_time_dim: bool,
    recode: Recode,
}

fn same_units(a: &str, b: &str) -> bool {
    a.split_whitespace().collect::<Vec<_>>() == b.split_whitespace().collect::<Vec<_>>()
}

/// The source's times as dataset keys and dataset values: exact, or refused.
struct TimeMapping {
    src: CfTime,
    dst: CfTime,
    same: bool,
    int_dtype: bool,
}

impl TimeMapping {
    fn new(dataset: &TimeAxis, source: &TimeAxis) -> Result<Self, String> {
        let cal = dataset.key_calendar().map_err(|e| e.to_string())?;
        let src = CfTime::with_calendar(&source.units, cal).map_err(|e| e.to_string())?;
        let dst = dataset.cf().map_err(|e| e.to_string())?;
        Ok(TimeMapping { src, dst, same: same_units(&source.units, &dataset.units), int_dtype: !dataset.dtype.is_float() })
    }

    /// `(key, value in the dataset's units)` of a source value.
    fn map(&self, v: f64, dataset: &TimeAxis) -> Result<(Timestamp, f64), String> {
        let key = self.src.to_timestamp(v).map_err(|e| e.to_string())?;
        let value = if self.same {
            v
        } else {
            self.dst.exact_value(key).ok_or_else(|| {
                format!(
                    "time {} ({v} in this file's units) cannot be written exactly in the dataset's units {:?}",
                    dataset.show(key),
                    dataset.units
                )
            })?
        };
        if self.int_dtype && value.fract() != 0.0 {
            return Err(format!(
                "time {} is {value} {:?}, not a whole number, but the dataset stores {} times as {}",
                dataset.show(key),
                dataset.units,
                dataset.name,
                dataset.dtype.cdl_name()
            ));
        }
        Ok((key, value))
    }
}

/// Auxiliary variables of a later source must agree with the dataset's.
fn same_aux(a: &AuxVar, b: &AuxVar) -> Option<String> {
    if a.dims != b.dims {
        let dims = |v: &AuxVar| v.dims.iter().map(|d| format!("{}={}", d.name, d.len)).collect::<Vec<_>>().join(", ");
        return Some(format!("{} has dimensions ({}) in the dataset but ({}) here", a.name, dims(a), dims(b)));
    }
    for (i, (x, y)) in a.values.iter().zip(&b.values).enumerate() {
        let tol = 1e-6 * x.abs().max(y.abs()).max(1e-30);
        if !(x == y || (x - y).abs() <= tol || (x.is_nan() && y.is_nan())) {
            return Some(format!("{}[{i}] is {x} in the dataset but {y} here", a.name));
        }
    }
    None
}

/// Ingests one source file into a dataset.
pub async fn ingest_file(
    catalogue: &Arc<dyn Catalogue>,
    pool: &Pool,
    path: &Path,
    opts: &IngestOptions,
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let src = {
        let path = path.to_path_buf();
        let vars = opts.vars.clone();
        crate::blocking::run("analyse source", move || analyse(&path, &vars))
            .await
            .map_err(|e| IngestError::Task(e.to_string()))??
    };
    let mismatch = |reason: String| IngestError::Mismatch { path: path.to_path_buf(), reason };
    if src.time_axis.is_some() && opts.time.is_some() {
        return Err(mismatch(format!(
            "the source has its own time coordinate {}; --time is only for sources without one",
            src.time_axis.as_ref().map_or("", |t| t.name.as_str())
        )));
    }

    // One writer at a time per dataset, from here (what is there already
    // is read under the lock) to the commit.
    let _writer = crate::catalogue::lock_dataset(catalogue.as_ref(), &opts.dataset, || {
        tracing::info!(dataset = %opts.dataset, "waiting for another writer of the dataset (an ingest, fsck --repair or delete) to finish")
    })
    .await?;
    let existing = catalogue.dataset(&opts.dataset).await?;
    let mut def = match &existing {
        Some(d) => {
            let def = &d.def;
            if let Some(diff) = def.grid.difference(&src.grid) {
                return Err(mismatch(format!("grid does not match dataset {}: {diff}", def.name)));
            }
            if let Some(t) = opts.tile.filter(|t| *t != def.tile) {
                return Err(mismatch(format!("dataset {} has tile size {}, not {t}; tile size is chosen when a dataset is created", def.name, def.tile)));
            }
            if let Some(f) = opts.format.filter(|f| *f != def.format) {
                return Err(mismatch(format!("dataset {} has tile format {}, not {f}; the format is chosen when a dataset is created", def.name, def.format)));
            }
            if let Some(o) = opts.overviews.filter(|o| *o != def.overviews) {
                return Err(mismatch(if o {
                    format!("dataset {} keeps no overviews; `tessera overviews build --dataset {}` adds them", def.name, def.name)
                } else {
                    format!("dataset {} keeps overviews; whether it does is chosen when a dataset is created", def.name)
                }));
            }
            let mut def = def.clone();
            if let Some(ta) = &src.time_axis {
                if d.stats.slice_count == 0 {
                    // A dataset of static variables takes its first time axis.
                    def.time = ta.clone();
                } else {
                    if ta.name != def.time.name {
                        return Err(mismatch(format!("time axis is {} in the dataset but {} here", def.time.name, ta.name)));
                    }
                    let (a, b) = (def.time.calendar(), ta.calendar());
                    if a.as_ref().ok() != b.as_ref().ok() {
                        return Err(mismatch(format!(
                            "calendar of {} is {} in dataset {} but {} in this file; tessera does not convert between calendars",
                            ta.name, def.time.calendar, def.name, ta.calendar
                        )));
                    }
                }
            }
            def
        }
        None => {
            let title = opts
                .title
                .clone()
                .or_else(|| src.global_attrs.iter().find(|a| a.name == "title").and_then(|a| a.value.as_text().map(str::to_string)))
                .unwrap_or_else(|| opts.dataset.to_string());
            DatasetDef {
                name: opts.dataset.clone(),
                title,
                attrs: src.global_attrs.clone(),
                grid: src.grid.clone(),
                time: src.time_axis.clone().unwrap_or_else(TimeAxis::default_axis),
                tile: opts.tile.unwrap_or(TileShape::DEFAULT),
                format: opts.format.unwrap_or(TileFormat::Nc4Deflate),
                deflate_level: opts.deflate_level.unwrap_or(4).clamp(1, 9),
                overviews: opts.overviews.unwrap_or(true),
                synthetic: false,
                aux: Vec::new(),
                slice_aux: Vec::new(),
            }
        }
    };

    // Times: keys and values in the dataset's calendar and units.
    let mut times: Vec<(Timestamp, f64)> = Vec::new();
    let mut mapping = None;
    if let Some(ta) = &src.time_axis {
        let m = TimeMapping::new(&def.time, ta).map_err(|e| mismatch(format!("time coordinate {}: {e}", ta.name)))?;
        for &v in &src.time_values {
            times.push(m.map(v, &def.time).map_err(&mismatch)?);
        }
        mapping = Some(m);
    }
    let mut slice_rows: BTreeMap<Timestamp, TimeSlice> = times
        .iter()
        .map(|&(t, value)| (t, TimeSlice { t, value: Some(value), aux: BTreeMap::new() }))
        .collect();
    for sa in &src.slice_aux {
        match def.slice_aux.iter().find(|a| a.name == sa.var.name) {
            Some(stored) if stored.dims != sa.var.dims => {
                return Err(mismatch(format!("{}", same_aux(stored, &sa.var).unwrap_or_default())));
            }
            Some(_) => {}
            None => def.slice_aux.push(sa.var.clone()),
        }
        for (k, values) in sa.values.iter().enumerate() {
            let values = match (&mapping, sa.in_time_units) {
                (Some(m), true) => values
                    .iter()
                    .map(|&b| m.map(b, &def.time).map(|(_, v)| v))
                    .collect::<Result<Vec<f64>, String>>()
                    .map_err(|e| mismatch(format!("{}: {e}", sa.var.name)))?,
                _ => values.clone(),
            };
            if let Some(row) = times.get(k).and_then(|(t, _)| slice_rows.get_mut(t)) {
                row.aux.insert(sa.var.name.clone(), values);
            }
        }
    }
    for a in &src.aux {
        match def.aux.iter().find(|x| x.name == a.name) {
            Some(stored) => {
                if let Some(d) = same_aux(stored, a) {
                    return Err(mismatch(format!("auxiliary variable differs from dataset {}: {d}", def.name)));
                }
            }
            None => def.aux.push(a.clone()),
        }
    }

    // Tiled variables as the dataset holds them, and how source values get
    // there.
    let stored: Vec<Variable> = match &existing {
        Some(d) => catalogue.variables(d.id).await?,
        None => Vec::new(),
    };
    if let Unpack::Vars(names) = &opts.unpack {
        for n in names {
            if !src.vars.iter().any(|v| &v.def.name == n) && !stored.iter().any(|v| &v.def.name == n) {
                return Err(mismatch(format!("--unpack {n}: this file has no variable {n}")));
            }
        }
    }
    let mut plans: Vec<Plan> = Vec::new();
    for sv in &src.vars {
        let mut v = sv.def.clone();
        v.has_time = sv.has_time_dim || (v.kind == VarKind::Data && src.time_axis.is_none() && opts.time.is_some());
        let source_enc = Encoding::from_attrs(v.dtype, &v.attrs);
        let encoding_err = |e: EncodingError| IngestError::Encoding { path: path.to_path_buf(), error: e };
        let (def_v, recode) = match stored.iter().find(|s| s.def.name == v.name) {
            Some(s) => {
                crate::catalogue::check_same_variable(&def.name, &s.def, &v).map_err(|e| mismatch(e.to_string()))?;
                if opts.unpack.applies_to(&v.name) && Encoding::from_attrs(s.def.dtype, &s.def.attrs).is_packed() {
                    return Err(mismatch(format!(
                        "--unpack is chosen when a variable is first ingested; {} is stored packed in dataset {} (ingest into a new dataset to unpack it)",
                        v.name, def.name
                    )));
                }
                let dataset_enc = Encoding::from_attrs(s.def.dtype, &s.def.attrs);
                (s.def.clone(), encoding_plan(&v.name, &dataset_enc, &source_enc).map_err(encoding_err)?)
            }
            None if opts.unpack.applies_to(&v.name) && source_enc.is_packed() => {
                let (dtype, attrs) = unpacked(&v.attrs, v.dtype);
                let new = VariableDef { dtype, attrs, ..v.clone() };
                let dataset_enc = Encoding::from_attrs(dtype, &new.attrs);
                let recode = encoding_plan(&v.name, &dataset_enc, &source_enc).map_err(encoding_err)?;
                (new, recode)
            }
            None => (v.clone(), Recode::Identity),
        };
        plans.push(Plan { def: def_v, source_dtype: v.dtype, has_time_dim: sv.has_time_dim, recode });
    }

    // What is already there is skipped, unless replacing; its values are
    // compared with the source's (content hashes) so that a re-ingest of
    // changed data does not pass in silence.
    let mut done: HashMap<(String, Option<Timestamp>), Option<String>> = HashMap::new();
    for s in &stored {
        if plans.iter().any(|p| p.def.name == s.def.name) {
            for t in catalogue.ingested_times(s.id).await? {
                done.insert((s.def.name.clone(), t), None);
            }
            for (t, h) in catalogue.content_hashes(s.id).await? {
                done.insert((s.def.name.clone(), t), Some(h));
            }
        }
    }
    let mut jobs = Vec::new();
    let (mut skipped, mut replaced) = (0, 0);
    for (i, p) in plans.iter().enumerate() {
        let timed: Vec<(Option<usize>, Option<Timestamp>, Option<f64>)> = if p.has_time_dim {
            times.iter().enumerate().map(|(k, &(t, v))| (Some(k), Some(t), Some(v))).collect()
        } else if p.def.has_time {
            let value = opts.time.and_then(|t| def.time.cf().ok().map(|cf| cf.to_value(t)));
            vec![(None, opts.time, value)]
        } else {
            vec![(None, None, None)]
        };
        for (t_index, time, time_value) in timed {
            let present = done.get(&(p.def.name.clone(), time));
            if let (Some(hash), false) = (present, opts.replace) {
                // Auxiliary coordinates on the grid (2-D lat/lon) come with
                // every file; they are part of the grid, not news.
                if !(p.def.kind == VarKind::Coordinate && time.is_none()) {
                    skipped += 1;
                    if hash.is_some() {
                        jobs.push(Job { var: i, t_index, time, time_value, check_only: true });
                    }
                }
                continue;
            }
            replaced += usize::from(present.is_some());
            jobs.push(Job { var: i, t_index, time, time_value, check_only: false });
        }
    }
    if let (None, Some(t), Some(value)) = (&src.time_axis, opts.time, jobs.iter().find_map(|j| j.time_value)) {
        slice_rows.insert(t, TimeSlice { t, value: Some(value), aux: BTreeMap::new() });
    }
    let mut report = IngestReport {
        created_dataset: existing.is_none(),
        slices_skipped: skipped,
        slices_replaced: replaced,
        ..Default::default()
    };
    if let (Some(ta), true) = (&src.time_axis, src.time_values.is_empty()) {
        report.notes.push(format!("its time axis {} has no steps: nothing to ingest", ta.name));
    }
    if jobs.is_empty() {
        tracing::info!(file = %path.display(), dataset = %def.name, skipped, "nothing to do: already ingested (--replace rewrites it)");
        return Ok(report);
    }

    // Write the tiles (and hash the slices to check) on a blocking thread
    // (libnetcdf).
    let (tiles, sparse, quantisation, hashes) = {
        let def = def.clone();
        let plans = plans.clone();
        let path = path.to_path_buf();
        let pool = pool.clone();
        let progress = opts.progress;
        let jobs = jobs.clone();
        crate::blocking::run("write tiles", move || write_tiles(&path, &pool, &def, &plans, &jobs, progress))
            .await
            .map_err(|e| IngestError::Task(e.to_string()))??
    };
    for j in jobs.iter().filter(|j| j.check_only) {
        let key = (plans[j.var].def.name.clone(), j.time);
        if let (Some(Some(stored)), Some(now)) = (done.get(&key), hashes.get(&key)) {
            if stored != now {
                report.slices_differing += 1;
                tracing::warn!(
                    file = %path.display(),
                    dataset = %def.name,
                    variable = %key.0,
                    time = %j.time.map_or("static".to_string(), |t| def.time.show(t)),
                    "already in the dataset with other values; --replace rewrites it"
                );
            }
        }
    }
    jobs.retain(|j| !j.check_only);
    if jobs.is_empty() {
        return Ok(report);
    }
    // The (variable, time) pairs this file completes: exactly the jobs.
    let slices: Vec<(String, Option<Timestamp>)> = jobs.iter().map(|j| (plans[j.var].def.name.clone(), j.time)).collect();
    let job_times: HashSet<Timestamp> = jobs.iter().filter_map(|j| j.time).collect();
    report.slices_written = jobs.len();
    if opts.fail_before_commit {
        // Simulates a crash between the tile writes and the commit: the
        // files stay behind as orphans, as they would after a kill.
        return Err(IngestError::Interrupted(path.to_path_buf()));
    }
    // Every file the commit names must be there, as written.
    for t in &tiles {
        let ok = pool.resolve(&t.path).ok().and_then(|p| std::fs::metadata(p).ok()).is_some_and(|m| m.len() == t.bytes);
        if !ok {
            remove_tiles(pool, &tiles);
            return Err(IngestError::Store(StoreError::Invalid {
                path: PathBuf::from(&t.path),
                message: "a tile written by this ingest vanished or changed before the commit; nothing was committed".into(),
            }));
        }
    }
    report.overview_tiles = tiles.iter().filter(|t| t.overview > 1).count();
    report.tiles_written = tiles.len() - report.overview_tiles;
    report.tiles_sparse = sparse;
    report.bytes = tiles.iter().map(|t| t.bytes).sum();
    report.reencoded = quantisation
        .into_iter()
        .filter_map(|(var, q)| {
            let p = plans.iter().find(|p| p.def.name == var)?;
            let enc = Encoding::from_attrs(p.def.dtype, &p.def.attrs);
            Some(Reencoded { variable: var, encoding: enc.describe(), units: enc.units.clone(), quantisation: q })
        })
        .collect();
    let batch = IngestBatch {
        dataset: def.clone(),
        variables: plans.iter().map(|p| p.def.clone()).collect(),
        slices,
        times: slice_rows.into_values().filter(|s| job_times.contains(&s.t)).collect(),
        tiles,
        replace: opts.replace,
        content_hashes: hashes.into_iter().filter(|(k, _)| jobs.iter().any(|j| plans[j.var].def.name == k.0 && j.time == k.1)).collect(),
    };
    if let Err(e) = catalogue.commit_ingest(&batch).await {
        remove_tiles(pool, &batch.tiles);
        metrics::counter!("tessera_ingest_files_total", "result" => "failed").increment(1);
        return Err(e.into());
    }
    metrics::counter!("tessera_ingest_files_total", "result" => "ingested").increment(1);
    metrics::counter!("tessera_ingest_tiles_total").increment(report.tiles_written as u64);
    for r in &report.reencoded {
        tracing::info!(
            file = %path.display(),
            dataset = %def.name,
            variable = %r.variable,
            encoding = %r.encoding,
            max_quantisation_error = r.quantisation.max_abs_error,
            values = r.quantisation.values,
            "re-encoded into the dataset's encoding"
        );
    }
    tracing::info!(
        file = %path.display(),
        dataset = %def.name,
        slices = report.slices_written,
        replaced = report.slices_replaced,
        skipped = report.slices_skipped,
        tiles = report.tiles_written,
        overview_tiles = report.overview_tiles,
        sparse = report.tiles_sparse,
        bytes = report.bytes,
        seconds = started.elapsed().as_secs_f64(),
        "ingested"
    );
    Ok(report)
}

fn progress_bar(enabled: bool, total_bytes: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("valid template"),
    );
    bar
}

/// Tiles written, all-fill tiles skipped, the re-encoding error per
/// variable, and the content hash of every slice.
type Written = (Vec<NewTile>, usize, Vec<(String, Quantisation)>, HashMap<(String, Option<Timestamp>), String>);

/// Cuts every job into tiles and writes the non-empty ones. On error, the
/// files already written are removed.
fn write_tiles(path: &Path, pool: &Pool, def: &DatasetDef, plans: &[Plan], jobs: &[Job], progress: bool) -> Result<Written, IngestError> {
    let mut written: Vec<NewTile> = Vec::new();
    let mut quantisation: BTreeMap<String, Quantisation> = BTreeMap::new();
    let mut hashes = HashMap::new();
    let result = write_tiles_inner(path, pool, def, plans, jobs, progress, &mut written, &mut quantisation, &mut hashes);
    if result.is_err() {
        remove_tiles(pool, &written);
    }
    result.map(|sparse| (written, sparse, quantisation.into_iter().collect(), hashes))
}

/// A store error in words without a filesystem path (the message names the
/// tile by its pool-relative path).
fn store_reason(e: &StoreError) -> String {
    match e {
        StoreError::Io { source, .. } => crate::store::plain_io_error(source),
        StoreError::NetCdf { message, .. } => format!("NetCDF: {message}"),
        StoreError::Invalid { message, .. } => message.clone(),
    }
}

/// Removes files this ingest wrote. Every tile got a name no other file
/// had (see [`write_new`]), so nothing committed, by this or any other
/// writer, is touched.
fn remove_tiles(pool: &Pool, tiles: &[NewTile]) {
    let mut dirs = std::collections::BTreeSet::new();
    for t in tiles {
        if let Ok(p) = pool.resolve(&t.path) {
            let _ = std::fs::remove_file(&p);
            if let Some(d) = p.parent() {
                dirs.insert(d.to_path_buf());
            }
        }
    }
    // Slice directories (and the dataset's) this left empty; a directory
    // another file is in stays.
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir(d);
        if let Some(up) = d.parent() {
            let _ = std::fs::remove_dir(up);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn write_tiles_inner(
    path: &Path,
    pool: &Pool,
    def: &DatasetDef,
    plans: &[Plan],
    jobs: &[Job],
    progress: bool,
    written: &mut Vec<NewTile>,
    quantisation: &mut BTreeMap<String, Quantisation>,
    hashes: &mut HashMap<(String, Option<Timestamp>), String>,
) -> Result<usize, IngestError> {
    crate::store::tile::quiet_hdf5();
    let fail = |reason: String| SourceError { path: path.to_path_buf(), reason };
    let calendar = def.time.key_calendar().map_err(|e| fail(e.to_string()))?;
    let file = netcdf::open(path).map_err(|e| fail(format!("not a readable NetCDF file ({e})")))?;
    let grid = &def.grid;
    let (ntx, nty) = grid.tile_counts(def.tile);
    let nz = grid.level.as_ref().map_or(1, |l| l.len());
    let total: u64 = jobs
        .iter()
        .map(|j| {
            let v = &plans[j.var].def;
            (grid.nx() * grid.ny() * v.dtype.size() * if v.has_level { nz } else { 1 }) as u64
        })
        .sum();
    let bar = progress_bar(progress, total);
    let mut sparse = 0;
    for job in jobs {
        let plan = &plans[job.var];
        let var = &plan.def;
        let fill = var.fill_value();
        let recode = |a: TypedArray, q: &mut BTreeMap<String, Quantisation>| -> Result<TypedArray, IngestError> {
            if matches!(plan.recode, Recode::Identity) {
                return Ok(a);
            }
            let (out, got) = plan.recode.apply(&a).map_err(|e| IngestError::Encoding { path: path.to_path_buf(), error: e })?;
            if !job.check_only {
                q.entry(var.name.clone()).or_default().merge(&got);
            }
            Ok(out)
        };
        // The slice's content hash: its stored values, tile by tile.
        let mut hasher = blake3::Hasher::new();
        let nc_var = file.variable(&var.name).ok_or_else(|| fail(format!("variable {} disappeared", var.name)))?;
        let levels = if var.has_level { nz } else { 1 };
        let row_bytes = grid.nx() * var.dtype.size() * levels;
        let by_band = row_bytes * def.tile.h <= MAX_BAND_BYTES;
        let job_started = Instant::now();
        let mut job_tiles = 0;
        let mut cuts: Vec<OverviewCut> = if job.check_only { Vec::new() } else { def.overview_levels().into_iter().map(|k| OverviewCut::new(def, k)).collect() };
        for ty in 0..nty {
            for cut in &mut cuts {
                cut.start_row(ty, var, fill, |c, band| c.write_row(band, pool, calendar, var, job, fill, written))?;
            }
            let band_win = grid.tile_window(def.tile, TileIndex { tx: 0, ty });
            let read = |x0: usize, w: usize| -> Result<TypedArray, IngestError> {
                let mut ranges = Vec::new();
                if let Some(k) = job.t_index {
                    ranges.push(k..k + 1);
                }
                if var.has_level {
                    ranges.push(0..nz);
                }
                ranges.push(band_win.y..band_win.y + band_win.h);
                ranges.push(x0..x0 + w);
                let a = read_var(path, &nc_var, plan.source_dtype, &ranges)?;
                // Drop the time dimension: tiles take [level?, y, x].
                Ok(a.drop_leading(usize::from(job.t_index.is_some())))
            };
            let band = if by_band { Some(recode(read(0, grid.nx())?, quantisation)?) } else { None };
            for tx in 0..ntx {
                let win = grid.tile_window(def.tile, TileIndex { tx, ty });
                let data = match &band {
                    Some(b) => with_typed_array!(b, arr => {
                        let last = arr.ndim() - 1;
                        let view = arr.slice_axis(NdAxis(last), Slice::from(win.x..win.x + win.w));
                        crate::store::tile::IntoTyped::typed(view.as_standard_layout().into_owned())
                    }),
                    None => recode(read(win.x, win.w)?, quantisation)?,
                };
                bar.inc((win.cells() * var.dtype.size() * levels) as u64);
                with_typed_array!(&data, a => {
                    let mut bytes = Vec::with_capacity(a.len() * var.dtype.size());
                    for v in a.iter() {
                        bytes.extend_from_slice(&v.to_le_bytes());
                    }
                    hasher.update(&bytes);
                });
                if job.check_only {
                    continue;
                }
                for cut in &mut cuts {
                    cut.take(&data, win);
                }
                if data.all_equal(fill) {
                    sparse += 1;
                    continue;
                }
                put_tile(pool, calendar, def, var, job, 1, TileIndex { tx, ty }, win, &data, written)?;
                job_tiles += 1;
                bar.set_message(format!("{} tiles written, {sparse} all-fill skipped", written.len()));
            }
        }
        for cut in &mut cuts {
            cut.finish(|c, band| c.write_row(band, pool, calendar, var, job, fill, written))?;
        }
        hashes.insert((var.name.clone(), job.time), format!("blake3:{}", hasher.finalize().to_hex()));
        if !progress && !job.check_only {
            tracing::info!(
                variable = %var.name,
                time = %job.time.map_or("static".to_string(), |t| def.time.show(t)),
                tiles = job_tiles,
                seconds = job_started.elapsed().as_secs_f64(),
                "slice written"
            );
        }
    }
    bar.finish_and_clear();
    Ok(sparse)
}

/// Writes one tile of a slice (of the full resolution, `overview` 1, or
/// of overview level `overview`, `def` then being the overview's) into the
/// pool under a name no other file has, and records it in `written`.
#[allow(clippy::too_many_arguments)]
fn put_tile(
    pool: &Pool,
    calendar: crate::model::Calendar,
    def: &DatasetDef,
    var: &VariableDef,
    job: &Job,
    overview: u32,
    tile: TileIndex,
    win: crate::model::Window,
    data: &TypedArray,
    written: &mut Vec<NewTile>,
) -> Result<(), IngestError> {
    let (tx, ty) = (tile.tx as u32, tile.ty as u32);
    let rel = tile_rel_path(&def.name, calendar, &var.name, job.time, overview, tx, ty);
    let abs = pool.resolve(&rel)?;
    let spec = TileSpec { dataset: def, var, time: job.time, time_value: job.time_value, tile, window: win, overview, any_time: false };
    // Never let the filesystem fill under libnetcdf/HDF5, whose errors
    // then say only "HDF error": check the room first, for the tile
    // uncompressed plus its header.
    let need = (data.shape().iter().product::<usize>() * var.dtype.size()) as u64 + (64 << 10);
    let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
    let no_space = |free: u64| IngestError::NoSpace { tile: rel.clone(), need: crate::store::human_bytes(need), free: crate::store::human_bytes(free) };
    let room = |dir: &Path| {
        let mut d = dir.to_path_buf();
        while !d.exists() && d.pop() {}
        crate::store::free_bytes(&d)
    };
    if let Some(free) = room(&dir).filter(|&f| f < need) {
        return Err(no_space(free));
    }
    // Where the values lie in the file is found before it is renamed into
    // place (the rename moves no bytes).
    let mut layout = None;
    let (abs, w) = write_new(&abs, |tmp| {
        write_tile(tmp, &spec, data)?;
        layout = crate::store::inspect::layout(tmp, &var.name)
            .map_err(|message| crate::store::StoreError::Invalid { path: tmp.to_path_buf(), message })?
            .map(|l| l.encode());
        Ok(())
    })
    .map_err(|e| match room(&dir) {
        Some(free) if free < need => no_space(free),
        _ => IngestError::Write { tile: rel.clone(), reason: store_reason(&e) },
    })?;
    let rel = match (rel.rsplit_once('/'), abs.file_name().and_then(|n| n.to_str())) {
        (Some((dir, _)), Some(name)) => format!("{dir}/{name}"),
        _ => rel,
    };
    written.push(NewTile { variable: var.name.clone(), time: job.time, overview, tx, ty, path: rel, bytes: w.bytes, checksum: w.checksum, layout });
    Ok(())
}

/// One overview level of a slice, cut from its full-resolution tiles as
/// they are written, one overview tile row at a time: level `k` keeps
/// every `k`-th cell from the origin, so its tile row `r` is made of the
/// full-resolution tile rows `r*k .. (r+1)*k` (tile rows never straddle).
struct OverviewCut {
    k: usize,
    /// The dataset on the level's grid.
    def: DatasetDef,
    /// The overview tile row being filled: its index and cells
    /// `[levels?, rows, all columns]`.
    row: Option<(usize, TypedArray)>,
}

impl OverviewCut {
    fn new(def: &DatasetDef, k: u32) -> Self {
        OverviewCut { k: k as usize, def: def.overview(k), row: None }
    }

    /// Before full-resolution tile row `ty`: writes the overview row it
    /// no longer feeds, and starts the one it does.
    fn start_row(
        &mut self,
        ty: usize,
        var: &VariableDef,
        fill: f64,
        mut write: impl FnMut(&Self, (usize, TypedArray)) -> Result<(), IngestError>,
    ) -> Result<(), IngestError> {
        let oty = ty / self.k;
        if self.row.as_ref().is_some_and(|(r, _)| *r == oty) {
            return Ok(());
        }
        if let Some(done) = self.row.take() {
            write(self, done)?;
        }
        let grid = &self.def.grid;
        let win = grid.tile_window(self.def.tile, TileIndex { tx: 0, ty: oty });
        let mut shape = Vec::new();
        if let (true, Some(l)) = (var.has_level, grid.level.as_ref()) {
            shape.push(l.len());
        }
        shape.extend([win.h, grid.nx()]);
        let band = crate::with_data_type!(var.dtype, T => crate::model::IntoTyped::typed(ndarray::ArrayD::from_elem(ndarray::IxDyn(&shape), fill as T)));
        self.row = Some((oty, band));
        Ok(())
    }

    /// Takes the level's cells from a full-resolution tile covering `win`.
    fn take(&mut self, data: &TypedArray, win: crate::model::Window) {
        let k = self.k;
        let Some((oty, band)) = self.row.as_mut() else { return };
        let (r0, c0) = ((k - win.y % k) % k, (k - win.x % k) % k);
        if r0 >= win.h || c0 >= win.w {
            return;
        }
        let at = ((win.y + r0) / k - *oty * self.def.tile.h, (win.x + c0) / k);
        crate::mosaic::decimate_into(band, data, (r0, c0), k, at);
    }

    /// After the slice's last tile row: writes the last overview row.
    fn finish(&mut self, mut write: impl FnMut(&Self, (usize, TypedArray)) -> Result<(), IngestError>) -> Result<(), IngestError> {
        match self.row.take() {
            Some(done) => write(self, done),
            None => Ok(()),
        }
    }

    /// Writes the tiles of a finished overview row; all-fill ones are left
    /// out, as at full resolution (a missing tile reads as fill).
    #[allow(clippy::too_many_arguments)]
    fn write_row(
        &self,
        (oty, band): (usize, TypedArray),
        pool: &Pool,
        calendar: crate::model::Calendar,
        var: &VariableDef,
        job: &Job,
        fill: f64,
        written: &mut Vec<NewTile>,
    ) -> Result<(), IngestError> {
        let (ntx, _) = self.def.grid.tile_counts(self.def.tile);
        for tx in 0..ntx {
            let tile = TileIndex { tx, ty: oty };
            let win = self.def.grid.tile_window(self.def.tile, tile);
            let data = with_typed_array!(&band, arr => {
                let last = arr.ndim() - 1;
                let view = arr.slice_axis(NdAxis(last), Slice::from(win.x..win.x + win.w));
                crate::store::tile::IntoTyped::typed(view.as_standard_layout().into_owned())
            });
            if data.all_equal(fill) {
                continue;
            }
            put_tile(pool, calendar, &self.def, var, job, self.k as u32, tile, win, &data, written)?;
        }
        Ok(())
    }
}
