//! `fsck`: the catalogue checked against the pool.
//!
//! For every dataset, every slice directory on disk and every time slice in
//! the catalogue is visited; each catalogued tile must exist with its size
//! and (unless `quick`) its blake3 checksum; each file no row points at is an
//! orphan (an interrupted ingest leaves these), except files retired by
//! `ingest --replace` that wait for their grace period (see [`crate::gc`]).
//! A tile's recorded layout (where its values lie in the file, which the
//! direct reader trusts once the checksum holds) must be the file's own:
//! unless `quick`, it is found again from the file and compared.
//! Work is bounded by one slice
//! at a time, never by the whole catalogue. `repair` deletes orphans only:
//! a missing or damaged tile cannot be repaired from here.
//!
//! `deep` also reads every slice of a dataset that keeps overviews and
//! checks that each level holds exactly every `k`-th cell of the full
//! resolution (an overview tile absent where those cells are not all fill
//! is a problem too): what lets a strided read trust them.

use crate::catalogue::{Catalogue, CatalogueError, Dataset};
use crate::model::{Calendar, DatasetName, Timestamp};
use crate::store::{Pool, checksum_file, is_temporary, parse_slice_dir_name, slice_dir_name};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default)]
pub struct FsckOptions {
    /// Delete orphan files (and empty slice directories).
    pub repair: bool,
    /// Check sizes only, not checksums.
    pub quick: bool,
    /// Only this dataset.
    pub dataset: Option<DatasetName>,
    /// Also compare every overview level with the full resolution.
    pub deep: bool,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A catalogued tile whose file is absent.
    Missing { path: String },
    /// A file of the wrong size.
    Size { path: String, expected: u64, found: u64 },
    /// A file whose bytes changed.
    Checksum { path: String },
    /// A recorded layout that is not the file's.
    Layout { path: String, why: String },
    /// A file (or directory) no catalogue row accounts for.
    Orphan { path: PathBuf, removed: bool },
    /// An overview tile whose values are not the full resolution's every
    /// `k`-th cell (`deep` only).
    Overview { dataset: String, tile: String, why: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing { path } => write!(f, "missing: {path} is catalogued but absent from the pool"),
            Problem::Size { path, expected, found } => {
                write!(f, "size mismatch: {path} has {found} bytes, the catalogue says {expected}")
            }
            Problem::Checksum { path } => write!(f, "checksum mismatch: {path} differs from the catalogued checksum"),
            Problem::Layout { path, why } => write!(f, "layout mismatch: {path}: {why} (`tessera reindex --all` records it again)"),
            Problem::Orphan { path, removed } => {
                write!(f, "orphan: {} is in the pool but not in the catalogue{}", path.display(), if *removed { " (removed)" } else { "" })
            }
            Problem::Overview { dataset, tile, why } => {
                write!(f, "overview mismatch: {tile}: {why} (`tessera overviews build --dataset {dataset}` makes them again)")
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct FsckReport {
    pub datasets: usize,
    /// Tile files retired by `ingest --replace`, awaiting removal.
    pub retired: u64,
    pub tiles_checked: u64,
    pub bytes_checked: u64,
    /// Tiles without a recorded layout (read through libnetcdf).
    pub unindexed: u64,
    /// Overview tiles compared with the full resolution (`deep`).
    pub overviews_compared: u64,
    pub problems: Vec<Problem>,
}

impl FsckReport {
    /// True when something is still wrong (removed orphans do not count).
    pub fn has_problems(&self) -> bool {
        self.problems.iter().any(|p| !matches!(p, Problem::Orphan { removed: true, .. }))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no dataset {0}")]
    NoDataset(DatasetName),
}

fn list_dir(dir: &Path) -> Result<Vec<(String, bool)>, FsckError> {
    match fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(FsckError::Io { path: dir.to_path_buf(), source }),
        Ok(rd) => {
            let mut out = Vec::new();
            for e in rd {
                let e = e.map_err(|source| FsckError::Io { path: dir.to_path_buf(), source })?;
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                out.push((e.file_name().to_string_lossy().into_owned(), is_dir));
            }
            out.sort();
            Ok(out)
        }
    }
}

fn remove(path: &Path, is_dir: bool) -> bool {
    if is_dir { fs::remove_dir_all(path).is_ok() } else { fs::remove_file(path).is_ok() }
}

fn waiting(name: &DatasetName) {
    tracing::info!(dataset = %name, "waiting for the dataset's writer (an ingest) to finish before checking it");
}

/// Checks the catalogue against the pool, one dataset at a time, each
/// between two writers (it takes the dataset's writer lock).
pub async fn fsck(catalogue: &dyn Catalogue, pool: &Pool, opts: &FsckOptions) -> Result<FsckReport, FsckError> {
    let mut report = FsckReport::default();
    let datasets: Vec<Dataset> = match &opts.dataset {
        Some(name) => vec![catalogue.dataset(name).await?.ok_or_else(|| FsckError::NoDataset(name.clone()))?],
        None => catalogue.datasets().await?,
    };
    report.datasets = datasets.len();

    if opts.dataset.is_none() {
        // Directories of datasets the catalogue does not know. Only
        // directories laid out like a dataset are touched, and only while
        // holding that name's writer lock: an ingest creating the dataset
        // holds it until its commit.
        let known: BTreeSet<&str> = datasets.iter().map(|d| d.def.name.as_str()).collect();
        for (name, is_dir) in list_dir(pool.root())? {
            let Ok(dn) = DatasetName::parse(&name) else { continue };
            if !is_dir || known.contains(name.as_str()) {
                continue;
            }
            let _writer = crate::catalogue::lock_dataset(catalogue, &dn, || waiting(&dn)).await?;
            if catalogue.dataset(&dn).await?.is_some() {
                continue; // an ingest created it while we waited
            }
            let path = pool.root().join(&name);
            let looks_like_dataset = list_dir(&path)?.iter().all(|(n, d)| {
                *d && [Calendar::Standard, Calendar::ProlepticGregorian, Calendar::Julian, Calendar::NoLeap, Calendar::AllLeap, Calendar::Day360]
                    .iter()
                    .any(|c| parse_slice_dir_name(*c, n).is_some())
            });
            if looks_like_dataset {
                let removed = opts.repair && remove(&path, true);
                report.problems.push(Problem::Orphan { path, removed });
            }
        }
    }

    for d in &datasets {
        // Between writers: an ingest's files are orphans until its commit.
        let _writer = crate::catalogue::lock_dataset(catalogue, &d.def.name, || waiting(&d.def.name)).await?;
        let Some(d) = &catalogue.dataset(&d.def.name).await? else { continue };
        let dir = pool.dataset_dir(&d.def.name);
        let calendar = d.def.time.key_calendar().unwrap_or(Calendar::Standard);
        let mut slices: BTreeSet<Option<Timestamp>> = catalogue.time_slices(d.id).await?.into_iter().map(|s| Some(s.t)).collect();
        slices.insert(None);
        let retired: BTreeSet<String> = catalogue.retired_in(d.id).await?.into_iter().map(|r| r.path).collect();
        report.retired += retired.len() as u64;
        for (name, is_dir) in list_dir(&dir)? {
            match parse_slice_dir_name(calendar, &name) {
                Some(t) if is_dir => {
                    slices.insert(t);
                }
                _ => {
                    let path = dir.join(&name);
                    let removed = opts.repair && remove(&path, is_dir);
                    report.problems.push(Problem::Orphan { path, removed });
                }
            }
        }
        let names: HashMap<i64, String> = catalogue.variables(d.id).await?.into_iter().map(|v| (v.id, v.def.name)).collect();
        for t in slices {
            check_slice(catalogue, pool, d, calendar, t, &retired, &names, opts, &mut report).await?;
        }
        if opts.deep {
            check_overviews(catalogue, pool, d, &mut report).await?;
        }
    }
    Ok(report)
}

/// Compares every overview level of every slice of a dataset with the full
/// resolution, one slice at a time.
async fn check_overviews(catalogue: &dyn Catalogue, pool: &Pool, d: &Dataset, report: &mut FsckReport) -> Result<(), FsckError> {
    use crate::catalogue::{TileQuery, TimeSel};
    if d.def.overview_levels().is_empty() {
        return Ok(());
    }
    let store: std::sync::Arc<dyn crate::store::port::TileStore> = std::sync::Arc::new(crate::store::reader::PoolTiles::new(pool.clone(), 16));
    for v in catalogue.variables(d.id).await? {
        for t in catalogue.ingested_times(v.id).await? {
            let mut levels = Vec::new();
            for k in std::iter::once(1).chain(d.def.overview_levels()) {
                let q = TileQuery {
                    dataset_id: d.id,
                    variable_id: v.id,
                    time: t.map_or(TimeSel::Static, |t| TimeSel::Between(t, t)),
                    overview: k,
                    tx: 0..u32::MAX,
                    ty: 0..u32::MAX,
                };
                levels.push((k, catalogue.tiles(&q).await?));
            }
            let (def, var, store) = (d.def.clone(), v.def.clone(), store.clone());
            let (compared, problems) = crate::blocking::run("fsck overviews", move || overviews::compare(store.as_ref(), &def, &var, t, &levels))
                .await
                .map_err(|e| FsckError::Io { path: pool.dataset_dir(&d.def.name), source: std::io::Error::other(e.to_string()) })?;
            report.overviews_compared += compared;
            report.problems.extend(problems);
        }
    }
    Ok(())
}

/// The comparison itself: blocking, it reads tiles.
mod overviews {
    use super::Problem;
    use crate::catalogue::TileRecord;
    use crate::model::{DatasetDef, TileIndex, Timestamp, TypedArray, VariableDef, Window};
    use crate::store::port::{TileKey, TileRef, TileStore};
    use std::collections::HashMap;

    /// The overview tiles of one slice compared with the every-`k`-th cells
    /// of its full-resolution tiles; `levels` starts with level 1 (the full
    /// resolution). Returns how many overview tiles were compared.
    pub(super) fn compare(store: &dyn TileStore, def: &DatasetDef, var: &VariableDef, t: Option<Timestamp>, levels: &[(u32, Vec<TileRecord>)]) -> (u64, Vec<Problem>) {
        let Some(((_, full), overviews)) = levels.split_first() else { return (0, Vec::new()) };
        let full: HashMap<(u32, u32), &TileRecord> = full.iter().map(|r| ((r.tx, r.ty), r)).collect();
        let fill = var.fill_value();
        let nz = def.grid.level.as_ref().map_or(1, |l| l.len());
        let levels_range = var.has_level.then_some(0..nz);
        let tile_ref = |r: &TileRecord, k: u32| {
            let key = TileKey { dataset: def.name.to_string(), variable: var.name.clone(), time: t.map(|t| t.0), overview: k, tx: r.tx, ty: r.ty };
            let time_text = def.tile_time_text(t);
            TileRef::catalogued(key, r.path.clone(), r.bytes, r.checksum.clone(), time_text, r.layout.as_deref())
        };
        let mut problems = Vec::new();
        let mut compared = 0;
        let problem = |tile: String, why: String| Problem::Overview { dataset: def.name.to_string(), tile, why };
        for (k, tiles) in overviews {
            let level = def.overview(*k);
            let found: HashMap<(u32, u32), &TileRecord> = tiles.iter().map(|r| ((r.tx, r.ty), r)).collect();
            let (ntx, nty) = level.grid.tile_counts(def.tile);
            for oty in 0..nty {
                for otx in 0..ntx {
                    let idx = TileIndex { tx: otx, ty: oty };
                    let win = level.grid.tile_window(def.tile, idx);
                    let name = found.get(&(otx as u32, oty as u32)).map_or_else(
                        || format!("{}/{} level {k} tile x{otx} y{oty} (absent)", def.name, var.name),
                        |r| r.path.clone(),
                    );
                    let expected = match expected_tile(store, def, var, &full, *k as usize, win, levels_range.clone(), fill, &tile_ref) {
                        Ok(e) => e,
                        Err(why) => {
                            problems.push(problem(name, format!("its full-resolution tiles cannot be read: {why}")));
                            continue;
                        }
                    };
                    compared += 1;
                    let got = match found.get(&(otx as u32, oty as u32)) {
                        Some(r) => match store.read(&tile_ref(r, *k), var, levels_range.clone(), 0..win.h, 0..win.w) {
                            Ok(a) => a,
                            Err(e) => {
                                problems.push(problem(name, format!("cannot be read: {e}")));
                                continue;
                            }
                        },
                        None if expected.all_equal(fill) => continue,
                        None => {
                            problems.push(problem(name, "is absent but the cells it would hold are not all fill".into()));
                            continue;
                        }
                    };
                    if bits(&got) != bits(&expected) {
                        problems.push(problem(name, format!("its values are not the full resolution's cells at every {k}th row and column")));
                    }
                }
            }
        }
        (compared, problems)
    }

    /// Every `k`-th cell of the full resolution over an overview tile's
    /// window `win` (in the level's cells), fill where tiles are absent.
    #[allow(clippy::too_many_arguments)]
    fn expected_tile(
        store: &dyn TileStore,
        def: &DatasetDef,
        var: &VariableDef,
        full: &HashMap<(u32, u32), &TileRecord>,
        k: usize,
        win: Window,
        levels: Option<std::ops::Range<usize>>,
        fill: f64,
        tile_ref: &dyn Fn(&TileRecord, u32) -> TileRef,
    ) -> Result<TypedArray, String> {
        let mut shape: Vec<usize> = levels.as_ref().map(|l| vec![l.len()]).unwrap_or_default();
        shape.extend([win.h, win.w]);
        let mut out = crate::with_data_type!(var.dtype, T => crate::model::IntoTyped::typed(ndarray::ArrayD::from_elem(ndarray::IxDyn(&shape), fill as T)));
        // The full-resolution cells the window covers.
        let cover = Window { x: win.x * k, y: win.y * k, w: ((win.x + win.w - 1) * k + 1).min(def.grid.nx()) - win.x * k, h: ((win.y + win.h - 1) * k + 1).min(def.grid.ny()) - win.y * k };
        let (txs, tys) = def.grid.tiles_touching(def.tile, cover);
        for ty in tys {
            for tx in txs.clone() {
                let Some(r) = full.get(&(tx as u32, ty as u32)) else { continue };
                let tw = def.grid.tile_window(def.tile, TileIndex { tx, ty });
                let data = store.read(&tile_ref(r, 1), var, levels.clone(), 0..tw.h, 0..tw.w).map_err(|e| format!("{}: {e}", r.path))?;
                // This tile's cells on the level's lattice, placed where
                // they fall in the window.
                let (r0, c0) = ((k - tw.y % k) % k, (k - tw.x % k) % k);
                if r0 >= tw.h || c0 >= tw.w {
                    continue;
                }
                let (ly, lx) = ((tw.y + r0) / k, (tw.x + c0) / k);
                // Only the part inside the window.
                let (ry, rx) = (ly.max(win.y), lx.max(win.x));
                let (ey, ex) = ((ly + (tw.h - r0).div_ceil(k)).min(win.y + win.h), (lx + (tw.w - c0).div_ceil(k)).min(win.x + win.w));
                if ry >= ey || rx >= ex {
                    continue;
                }
                let first = (r0 + (ry - ly) * k, c0 + (rx - lx) * k);
                let block = crop(&data, first, ((ey - ry - 1) * k + 1, (ex - rx - 1) * k + 1));
                crate::mosaic::decimate_into(&mut out, &block, (0, 0), k, (ry - win.y, rx - win.x));
            }
        }
        Ok(out)
    }

    /// `[levels?, rows, cols]` cut to `rows x cols` cells from `first`.
    fn crop(a: &TypedArray, first: (usize, usize), size: (usize, usize)) -> TypedArray {
        crate::with_typed_array!(a, x => {
            let n = x.ndim();
            let v = x.slice_each_axis(|ax| match ax.axis.index() {
                i if i == n - 2 => ndarray::Slice::from(first.0..first.0 + size.0),
                i if i == n - 1 => ndarray::Slice::from(first.1..first.1 + size.1),
                _ => ndarray::Slice::from(..),
            });
            crate::model::IntoTyped::typed(v.to_owned())
        })
    }

    /// The values' bits, so that NaN fill compares equal to itself.
    fn bits(a: &TypedArray) -> Vec<u8> {
        crate::with_typed_array!(a, x => x.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}

#[allow(clippy::too_many_arguments)]
async fn check_slice(
    catalogue: &dyn Catalogue,
    pool: &Pool,
    d: &Dataset,
    calendar: Calendar,
    t: Option<Timestamp>,
    retired: &BTreeSet<String>,
    names: &HashMap<i64, String>,
    opts: &FsckOptions,
    report: &mut FsckReport,
) -> Result<(), FsckError> {
    let dir_name = slice_dir_name(calendar, t);
    let slice_dir = pool.dataset_dir(&d.def.name).join(&dir_name);
    let tiles = catalogue.tiles_at(d.id, t).await?;
    let by_name: HashMap<String, _> = tiles
        .iter()
        .map(|r| (Path::new(&r.path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), r))
        .collect();
    let on_disk = list_dir(&slice_dir)?;
    for (name, is_dir) in &on_disk {
        // Files retired by `ingest --replace` wait for `gc`, not for fsck.
        let is_retired = retired.contains(&format!("{}/{dir_name}/{name}", d.def.name));
        if *is_dir || (!by_name.contains_key(name) && !is_retired) || is_temporary(name) {
            let path = slice_dir.join(name);
            let removed = opts.repair && remove(&path, *is_dir);
            report.problems.push(Problem::Orphan { path, removed });
        }
    }
    for r in &tiles {
        let path = match pool.resolve(&r.path) {
            Ok(p) => p,
            Err(_) => {
                report.problems.push(Problem::Missing { path: r.path.clone() });
                continue;
            }
        };
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(_) => {
                report.problems.push(Problem::Missing { path: r.path.clone() });
                continue;
            }
        };
        report.tiles_checked += 1;
        if meta.len() != r.bytes {
            report.problems.push(Problem::Size { path: r.path.clone(), expected: r.bytes, found: meta.len() });
            continue;
        }
        if !opts.quick {
            let p = path.clone();
            let w = crate::blocking::run("fsck checksum", move || checksum_file(&p)).await.map_err(|e| FsckError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            match w {
                Ok(w) if w.checksum == r.checksum => report.bytes_checked += w.bytes,
                Ok(_) => {
                    report.problems.push(Problem::Checksum { path: r.path.clone() });
                    continue;
                }
                Err(_) => {
                    report.problems.push(Problem::Missing { path: r.path.clone() });
                    continue;
                }
            }
        }
        match (&r.layout, opts.quick) {
            (None, _) => report.unindexed += 1,
            (Some(_), true) => {}
            (Some(recorded), false) => {
                let var = names.get(&r.variable_id).cloned().unwrap_or_default();
                let p = path.clone();
                let found = crate::blocking::run("fsck layout", move || crate::store::inspect::layout(&p, &var))
                    .await
                    .map_err(|e| FsckError::Io { path: path.clone(), source: std::io::Error::other(e.to_string()) })?;
                let why = match found {
                    Ok(Some(l)) if l.encode() == *recorded => None,
                    Ok(Some(_)) => Some("the file's chunks lie elsewhere than recorded".to_string()),
                    Ok(None) => Some("the file's storage is not one the direct reader reads".to_string()),
                    Err(e) => Some(e),
                };
                if let Some(why) = why {
                    report.problems.push(Problem::Layout { path: r.path.clone(), why });
                }
            }
        }
    }
    if opts.repair && t.is_some() && tiles.is_empty() {
        // An emptied slice directory that only held orphans.
        let _ = fs::remove_dir(&slice_dir);
    }
    Ok(())
}
