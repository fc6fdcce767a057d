//! Ingest: source NetCDF files to tiles to catalogue.
//!
//! ```text
//! source -> analyse (grid, CRS, types, time) -> compare with the dataset
//!        -> cut into tiles -> write each tile atomically
//!        -> one catalogue transaction for the whole file
//! ```
//!
//! Guarantees:
//! * A bad source (not NetCDF, truncated, no x/y, irregular spacing, an
//!   unsupported type, a grid that differs from the dataset's) is refused
//!   before anything is written.
//! * Files go in first, rows second: killing the process at any moment
//!   leaves the catalogue as it was or with the whole file ingested. Tiles
//!   written before a failure are removed; after a kill they are orphans that
//!   no catalogue row points at, and `tessera fsck --repair` removes them.
//! * Re-running an ingest is a no-op: every (variable, time) already in the
//!   dataset is skipped, so nothing is duplicated and nothing committed is
//!   ever overwritten.
//! * Adding a variable writes only that variable's files.
//! * All-fill tiles are not written: the dataset is sparse.

pub mod source;

use crate::catalogue::{Catalogue, CatalogueError, IngestBatch, NewTile};
use crate::model::{
    DatasetDef, DatasetName, TileFormat, TileIndex, TileShape, TimeAxis, Timestamp, TypedArray,
};
use crate::store::tile::{TileSpec, read_var, write_tile};
use crate::store::{Pool, StoreError, tile_rel_path, write_atomic};
use crate::with_typed_array;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Axis as NdAxis, IxDyn, Slice};
pub use source::{Source, SourceError, analyse};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Reads from the source one band of tile rows at a time, unless a band
/// would be larger than this; then one tile at a time.
const MAX_BAND_BYTES: usize = 256 << 20;

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
    /// The time of a source without a time coordinate.
    pub time: Option<Timestamp>,
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
            time: None,
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
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}: interrupted before the catalogue commit (test hook)")]
    Interrupted(PathBuf),
    #[error("ingest task failed: {0}")]
    Task(String),
}

/// What one file added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub created_dataset: bool,
    pub slices_written: usize,
    pub slices_skipped: usize,
    pub tiles_written: usize,
    pub tiles_sparse: usize,
    pub bytes: u64,
}

/// One unit of work: a variable at a time (or static).
struct Job {
    var: usize,
    /// Index into the source's time dimension, if the variable has one.
    t_index: Option<usize>,
    time: Option<Timestamp>,
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
        tokio::task::spawn_blocking(move || analyse(&path, &vars))
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

    let existing = catalogue.dataset(&opts.dataset).await?;
    let def = match &existing {
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
            if let Some(ta) = &src.time_axis {
                if d.stats.slice_count > 0 && ta.name != def.time.name {
                    return Err(mismatch(format!("time axis is {} in the dataset but {} here", def.time.name, ta.name)));
                }
            }
            def.clone()
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
            }
        }
    };

    // Variables as the dataset will hold them: timed by --time when the
    // source has no time dimension.
    let mut var_defs = Vec::new();
    for sv in &src.vars {
        let mut v = sv.def.clone();
        v.has_time = sv.has_time_dim || (src.time_axis.is_none() && opts.time.is_some());
        var_defs.push(v);
    }

    // What is already there is skipped.
    let mut done: HashSet<(String, Option<Timestamp>)> = HashSet::new();
    if let Some(d) = &existing {
        for stored in catalogue.variables(d.id).await? {
            if let Some(new) = var_defs.iter().find(|v| v.name == stored.def.name) {
                crate::catalogue::check_same_variable(&d.def.name, &stored.def, new)
                    .map_err(|e| mismatch(e.to_string()))?;
                for t in catalogue.ingested_times(stored.id).await? {
                    done.insert((stored.def.name.clone(), t));
                }
            }
        }
    }
    let mut jobs = Vec::new();
    let mut skipped = 0;
    for (i, (sv, v)) in src.vars.iter().zip(&var_defs).enumerate() {
        let timed: Vec<(Option<usize>, Option<Timestamp>)> = if sv.has_time_dim {
            src.times.iter().enumerate().map(|(k, t)| (Some(k), Some(*t))).collect()
        } else if v.has_time {
            vec![(None, opts.time)]
        } else {
            vec![(None, None)]
        };
        for (t_index, time) in timed {
            if done.contains(&(v.name.clone(), time)) {
                skipped += 1;
            } else {
                jobs.push(Job { var: i, t_index, time });
            }
        }
    }
    let mut report = IngestReport { created_dataset: existing.is_none(), slices_skipped: skipped, ..Default::default() };
    if jobs.is_empty() {
        tracing::info!(file = %path.display(), dataset = %def.name, skipped, "nothing to do: already ingested");
        return Ok(report);
    }

    // The (variable, time) pairs this file completes: exactly the jobs.
    let slices: Vec<(String, Option<Timestamp>)> = jobs.iter().map(|j| (var_defs[j.var].name.clone(), j.time)).collect();
    report.slices_written = jobs.len();

    // Write the tiles on a blocking thread (libnetcdf).
    let (tiles, sparse) = {
        let def = def.clone();
        let var_defs = var_defs.clone();
        let path = path.to_path_buf();
        let pool = pool.clone();
        let progress = opts.progress;
        tokio::task::spawn_blocking(move || write_tiles(&path, &pool, &def, &var_defs, &jobs, progress))
            .await
            .map_err(|e| IngestError::Task(e.to_string()))??
    };
    if opts.fail_before_commit {
        // Simulates a crash between the tile writes and the commit: the
        // files stay behind as orphans, as they would after a kill.
        return Err(IngestError::Interrupted(path.to_path_buf()));
    }
    report.tiles_written = tiles.len();
    report.tiles_sparse = sparse;
    report.bytes = tiles.iter().map(|t| t.bytes).sum();
    let batch = IngestBatch { dataset: def.clone(), variables: var_defs, slices, tiles };
    if let Err(e) = catalogue.commit_ingest(&batch).await {
        remove_tiles(pool, &batch.tiles);
        metrics::counter!("tessera_ingest_files_total", "result" => "failed").increment(1);
        return Err(e.into());
    }
    metrics::counter!("tessera_ingest_files_total", "result" => "ingested").increment(1);
    metrics::counter!("tessera_ingest_tiles_total").increment(report.tiles_written as u64);
    tracing::info!(
        file = %path.display(),
        dataset = %def.name,
        slices = report.slices_written,
        skipped = report.slices_skipped,
        tiles = report.tiles_written,
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

/// Cuts every job into tiles and writes the non-empty ones. On error, the
/// files already written are removed.
fn write_tiles(
    path: &Path,
    pool: &Pool,
    def: &DatasetDef,
    vars: &[crate::model::VariableDef],
    jobs: &[Job],
    progress: bool,
) -> Result<(Vec<NewTile>, usize), IngestError> {
    let mut written: Vec<NewTile> = Vec::new();
    let result = write_tiles_inner(path, pool, def, vars, jobs, progress, &mut written);
    if result.is_err() {
        remove_tiles(pool, &written);
    }
    result.map(|sparse| (written, sparse))
}

/// Removes files this ingest wrote (never committed ones: re-ingesting
/// skips every committed variable and time, so no path is shared).
fn remove_tiles(pool: &Pool, tiles: &[NewTile]) {
    for t in tiles {
        if let Ok(p) = pool.resolve(&t.path) {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn write_tiles_inner(
    path: &Path,
    pool: &Pool,
    def: &DatasetDef,
    vars: &[crate::model::VariableDef],
    jobs: &[Job],
    progress: bool,
    written: &mut Vec<NewTile>,
) -> Result<usize, IngestError> {
    crate::store::tile::quiet_hdf5();
    let fail = |reason: String| SourceError { path: path.to_path_buf(), reason };
    let file = netcdf::open(path).map_err(|e| fail(format!("not a readable NetCDF file ({e})")))?;
    let grid = &def.grid;
    let (ntx, nty) = grid.tile_counts(def.tile);
    let nz = grid.level.as_ref().map_or(1, |l| l.len());
    let total: u64 = jobs
        .iter()
        .map(|j| {
            let v = &vars[j.var];
            (grid.nx() * grid.ny() * v.dtype.size() * if v.has_level { nz } else { 1 }) as u64
        })
        .sum();
    let bar = progress_bar(progress, total);
    let mut sparse = 0;
    for job in jobs {
        let var = &vars[job.var];
        let fill = var.fill_value();
        let nc_var = file.variable(&var.name).ok_or_else(|| fail(format!("variable {} disappeared", var.name)))?;
        let levels = if var.has_level { nz } else { 1 };
        let row_bytes = grid.nx() * var.dtype.size() * levels;
        let by_band = row_bytes * def.tile.h <= MAX_BAND_BYTES;
        let job_started = Instant::now();
        let mut job_tiles = 0;
        for ty in 0..nty {
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
                let a = read_var(path, &nc_var, var.dtype, &ranges)?;
                // Drop the time dimension: tiles take [level?, y, x].
                let lead = usize::from(job.t_index.is_some());
                Ok(with_typed_array!(a, arr => {
                    let shape: Vec<usize> = arr.shape()[lead..].to_vec();
                    crate::store::tile::IntoTyped::typed(arr.into_shape_with_order(IxDyn(&shape)).expect("same element count"))
                }))
            };
            let band = if by_band { Some(read(0, grid.nx())?) } else { None };
            for tx in 0..ntx {
                let win = grid.tile_window(def.tile, TileIndex { tx, ty });
                let data = match &band {
                    Some(b) => with_typed_array!(b, arr => {
                        let last = arr.ndim() - 1;
                        let view = arr.slice_axis(NdAxis(last), Slice::from(win.x..win.x + win.w));
                        crate::store::tile::IntoTyped::typed(view.as_standard_layout().into_owned())
                    }),
                    None => read(win.x, win.w)?,
                };
                bar.inc((win.cells() * var.dtype.size() * levels) as u64);
                if data.all_equal(fill) {
                    sparse += 1;
                    continue;
                }
                let rel = tile_rel_path(&def.name, &var.name, job.time, tx as u32, ty as u32);
                let abs = pool.resolve(&rel)?;
                let spec = TileSpec { dataset: def, var, time: job.time, tile: TileIndex { tx, ty }, window: win };
                let w = write_atomic(&abs, |tmp| write_tile(tmp, &spec, &data))?;
                written.push(NewTile {
                    variable: var.name.clone(),
                    time: job.time,
                    tx: tx as u32,
                    ty: ty as u32,
                    path: rel,
                    bytes: w.bytes,
                    checksum: w.checksum,
                });
                job_tiles += 1;
                bar.set_message(format!("{} tiles written, {sparse} all-fill skipped", written.len()));
            }
        }
        if !progress {
            tracing::info!(
                variable = %var.name,
                time = %job.time.map_or("static".to_string(), |t| t.iso()),
                tiles = job_tiles,
                seconds = job_started.elapsed().as_secs_f64(),
                "slice written"
            );
        }
    }
    bar.finish_and_clear();
    Ok(sparse)
}
