//! The request path: resolve -> plan -> read -> mosaic -> encode.
//!
//! ```text
//! name -> ServedDataset (catalogue, cached per dataset version)
//!      -> dap::view::Subset (pure: constraint resolved against the view)
//!      -> Plan (one catalogue range query per data array; files checked)
//!      -> bands of output rows: tile windows read through TileStore,
//!         placed with `mosaic` ([`Plan::data_bands`])
//!      -> an encoder per format (the `encode` module) turns bands into bytes
//! ```
//!
//! Everything that can fail with a status (unknown dataset, bad constraint,
//! response too large, a catalogued tile missing from the pool) fails before
//! the first byte; after that, production can only cut the body short
//! ([`Stop`]).
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | the [`Archive`]: served datasets cached per version, planning (tile lookup and verification ahead), errors |
//! | `served.rs` | [`ServedDataset`]: names and roles, DAP2 structure, DDS, DAS, auxiliary values |
//! | `lookup.rs` | coordinate values to indices for the constraint resolver |
//! | `read.rs` | a plan executed: coordinate values and the band loop over `crate::plan::bands` |

mod lookup;
mod read;
mod served;

pub use served::{ServedDataset, unserved_reference_notes};

use crate::catalogue::{Catalogue, CatalogueError, TimeSel, TileQuery};
use crate::dap::ce::CeError;
use crate::dap::view::Subset;
use crate::model::DatasetName;
use crate::store::Pool;
use crate::store::port::{Depth, TileError, TileKey, TileRef, TileStore};
use served::Role;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why a request cannot be answered, by kind: `http::error` maps each kind
/// to one status and the CLI prints it on one line. Kinds stay typed up to
/// that edge (a constraint error keeps its [`crate::dap::ce::CeErrorKind`] and caret, a tile
/// error its [`TileError`]), so the edge decides, not this module.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    NotFound(String),
    /// The constraint expression is wrong (or asks for more than DAP2 can
    /// send): its kind decides 400 or 413.
    #[error("Constraint error: {0}")]
    Constraint(#[from] CeError),
    #[error("response of {size} bytes exceeds the limit of {limit} bytes; request a smaller subset (fewer variables, a shorter range or a stride)")]
    TooLarge { size: u64, limit: u64 },
    /// Too large for the format or the protocol, whatever the server's
    /// limit (more than 2^31 - 1 elements in a DAP2 array, say): the
    /// message says which.
    #[error("{0}")]
    TooLargeFor(String),
    #[error("{0}")]
    Unavailable(String),
    /// A catalogued tile the store could not give: missing, corrupt, or
    /// unreachable for now (the [`TileError`] says which).
    #[error("dataset {dataset}: tile {path}: {error}")]
    Tile { dataset: String, path: String, error: TileError },
    #[error("{0}")]
    Internal(String),
}

impl From<CatalogueError> for ArchiveError {
    fn from(e: CatalogueError) -> Self {
        match e {
            CatalogueError::Unavailable(m) => ArchiveError::Unavailable(format!("catalogue unavailable: {m}")),
            other => ArchiveError::Internal(other.to_string()),
        }
    }
}

/// Limits of the request path.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_response_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_response_bytes: 4 << 30 }
    }
}

/// The archive as the HTTP layer sees it.
pub struct Archive {
    pub catalogue: Arc<dyn Catalogue>,
    pub pool: Pool,
    /// The tiles, by key (the pool, or its in-memory twin).
    pub tiles: Arc<dyn TileStore>,
    pub limits: Limits,
    /// The views of the datasets asked for lately, at most [`MAX_VIEWS`]:
    /// memory does not grow with the number of datasets in the catalogue.
    views: Mutex<lru::LruCache<String, Arc<ServedDataset>>>,
    /// The catalogue's change token at each dataset's last version check.
    checked: Mutex<lru::LruCache<String, (u64, std::time::Instant)>>,
}

/// Dataset views kept at most. A view is the dataset's definition, slice
/// list, DDS and DAS (a few MB for 10^5 slices) and its tile lookups; one
/// that was dropped is built again in one to a few tens of ms.
pub const MAX_VIEWS: usize = 256;

/// The longest a served view may lag behind the catalogue when the
/// catalogue's change token did not move (see
/// [`Catalogue::change_token`]).
pub const MAX_STALENESS: std::time::Duration = std::time::Duration::from_secs(1);

/// Tiles of one data array: (time, tx, ty) -> file.
type TileMap = HashMap<(Option<i64>, u32, u32), Arc<TileRef>>;

/// The tiles a data array is read from: of the full resolution
/// (`overview` 1) or of overview level `overview`, whose tile indices are
/// on the grid of every `overview`-th cell.
struct ArrayTiles {
    overview: u32,
    map: TileMap,
}

/// A level's metric label without an allocation per request (levels are
/// powers of two).
fn level_label(k: u32) -> &'static str {
    const LABELS: [&str; 16] = ["1", "2", "4", "8", "16", "32", "64", "128", "256", "512", "1024", "2048", "4096", "8192", "16384", "32768"];
    LABELS.get(k.trailing_zeros() as usize).copied().unwrap_or("more")
}

/// The overview level that answers a selection of rows and columns
/// exactly: the largest `k` of `levels` that divides both starts and every
/// stride that steps (a strided read then picks cells the level holds).
/// `None` (the full resolution) for selections that do not step by at
/// least `k` somewhere, such as windows and points.
pub(crate) fn overview_for(levels: &[u32], y: crate::dap::view::Range, x: crate::dap::view::Range) -> Option<u32> {
    levels.iter().rev().copied().find(|&k| {
        let k = k as usize;
        let fits = |r: crate::dap::view::Range| r.start.is_multiple_of(k) && (r.count == 1 || r.stride.is_multiple_of(k));
        let steps = |r: crate::dap::view::Range| r.count > 1 && r.stride >= k;
        fits(y) && fits(x) && (steps(y) || steps(x))
    })
}

/// Tiles verified before the first byte of a response: all of them up to
/// this many; a larger request verifies the rest as it reads them (a
/// failure then cuts the response short, loudly).
const VERIFY_AHEAD_TILES: usize = 256;

/// Plans of at most this many tiles are checked on the async runtime when
/// memory and file metadata answer every check.
const FEW_TILES: usize = 16;

/// A resolved request, ready to produce.
pub struct Plan {
    pub dataset: Arc<ServedDataset>,
    pub subset: Subset,
    tiles: HashMap<String, ArrayTiles>,
}

impl Archive {
    pub fn new(catalogue: Arc<dyn Catalogue>, pool: Pool, tiles: Arc<dyn TileStore>, limits: Limits) -> Self {
        let n = std::num::NonZeroUsize::new(MAX_VIEWS).expect("MAX_VIEWS > 0");
        Archive { catalogue, pool, tiles, limits, views: Mutex::new(lru::LruCache::new(n)), checked: Mutex::new(lru::LruCache::new(n)) }
    }

    /// The current view of a dataset: from memory when the catalogue's
    /// change token (SQLite: file metadata, no query) is what it was at
    /// the last check, less than [`MAX_STALENESS`] ago; otherwise one
    /// indexed query of two integers (id, version), and a rebuild from the
    /// catalogue when the dataset changed. New slices are visible to the
    /// next request after their ingest commits (at worst, after
    /// [`MAX_STALENESS`]).
    pub async fn dataset(&self, name: &str) -> Result<Arc<ServedDataset>, ArchiveError> {
        let not_found = || ArchiveError::NotFound(format!("no dataset {name:?} on this server"));
        let token = self.catalogue.change_token();
        if let Some(tok) = token {
            let unchanged = self.checked.lock().unwrap_or_else(|p| p.into_inner()).get(name).is_some_and(|(t, at)| *t == tok && at.elapsed() < MAX_STALENESS);
            let kept = if unchanged { self.views.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned() } else { None };
            if let Some(v) = kept {
                metrics::counter!("tessera_dataset_views_total", "result" => "unchanged").increment(1);
                return Ok(v);
            }
        }
        let v = self.dataset_checked(name, not_found).await?;
        if let Some(tok) = token {
            // The token read before the check: a commit since changes it.
            self.checked.lock().unwrap_or_else(|p| p.into_inner()).put(name.to_string(), (tok, std::time::Instant::now()));
        }
        Ok(v)
    }

    async fn dataset_checked(&self, name: &str, not_found: impl Fn() -> ArchiveError) -> Result<Arc<ServedDataset>, ArchiveError> {
        let dn = DatasetName::parse(name).map_err(|_| not_found())?;
        let t = std::time::Instant::now();
        let current = self.catalogue.dataset_version(&dn).await;
        metrics::histogram!("tessera_catalogue_query_seconds", "op" => "dataset_version").record(t.elapsed().as_secs_f64());
        let cached = |state| self.views.lock().unwrap_or_else(|p| p.into_inner()).get(name).filter(|v| v.dataset.state() == state).cloned();
        let Some(state) = current? else {
            self.views.lock().unwrap_or_else(|p| p.into_inner()).pop(name);
            return Err(not_found());
        };
        if let Some(v) = cached(state) {
            metrics::counter!("tessera_dataset_views_total", "result" => "hit").increment(1);
            return Ok(v);
        }
        metrics::counter!("tessera_dataset_views_total", "result" => "rebuilt").increment(1);
        // Three reads, not one transaction: a commit between them would
        // mix two versions, so the version is read again after them and
        // the view built again when it moved.
        let mut attempts = 0;
        let v = loop {
            let t = std::time::Instant::now();
            let found = self.catalogue.dataset(&dn).await;
            metrics::histogram!("tessera_catalogue_query_seconds", "op" => "dataset").record(t.elapsed().as_secs_f64());
            let Some(dataset) = found? else { return Err(not_found()) };
            let state = dataset.state();
            let vars = self.catalogue.variables(dataset.id).await?;
            let slices = self.catalogue.time_slices(dataset.id).await?;
            attempts += 1;
            if self.catalogue.dataset_version(&dn).await? == Some(state) {
                break Arc::new(ServedDataset::build(dataset, vars, slices)?);
            }
            if attempts == 5 {
                return Err(ArchiveError::Unavailable(format!("dataset {name} is changing too fast to be read; retry")));
            }
        };
        self.views.lock().unwrap_or_else(|p| p.into_inner()).put(name.to_string(), v.clone());
        Ok(v)
    }

    /// Looks up the tiles every data array needs (one range query each),
    /// checks the response size and that every tile file exists.
    pub async fn plan(&self, served: Arc<ServedDataset>, subset: Subset, data_bytes: Option<u64>) -> Result<Plan, ArchiveError> {
        if let Some(size) = data_bytes {
            if size > self.limits.max_response_bytes {
                return Err(ArchiveError::TooLarge { size, limit: self.limits.max_response_bytes });
            }
        }
        let def = &served.dataset.def;
        let mut tiles = HashMap::new();
        for a in subset.arrays() {
            let Some(Role::Data(i)) = served.role(&a.name) else { continue };
            let var = &served.vars[*i];
            let n = a.dims.len();
            let (yr, xr) = (a.dims[n - 2].range, a.dims[n - 1].range);
            let (th, tw) = (def.tile.h, def.tile.w);
            // Strided reads that a level answers exactly read it instead.
            let k = overview_for(&served.overview_levels, yr, xr).unwrap_or(1);
            metrics::counter!("tessera_array_reads_total", "overview" => level_label(k)).increment(1);
            let (y0, y1, x0, x1) = (yr.start / k as usize, yr.last() / k as usize, xr.start / k as usize, xr.last() / k as usize);
            let time = if var.def.has_time {
                let tr = a.dims[0].range;
                TimeSel::Between(served.times[tr.start], served.times[tr.last()])
            } else {
                TimeSel::Static
            };
            let q = TileQuery {
                dataset_id: served.dataset.id,
                variable_id: var.id,
                time,
                overview: k,
                tx: (x0 / tw) as u32..(x1 / tw + 1) as u32,
                ty: (y0 / th) as u32..(y1 / th + 1) as u32,
            };
            let found = match served.tile_index.get(&q) {
                Some(found) => {
                    metrics::counter!("tessera_tile_index_total", "result" => "hit").increment(1);
                    found
                }
                None => {
                    metrics::counter!("tessera_tile_index_total", "result" => "query").increment(1);
                    let started = std::time::Instant::now();
                    let found = self.catalogue.tiles(&q).await;
                    metrics::histogram!("tessera_catalogue_query_seconds", "op" => "tiles").record(started.elapsed().as_secs_f64());
                    let refs: Vec<Arc<TileRef>> = found?
                        .into_iter()
                        .map(|t| {
                            let key = TileKey {
                                dataset: def.name.to_string(),
                                variable: var.def.name.clone(),
                                time: t.time.map(|t| t.0),
                                overview: t.overview,
                                tx: t.tx,
                                ty: t.ty,
                            };
                            let time_text = def.tile_time_text(t.time);
                            Arc::new(TileRef::catalogued(key, t.path.clone(), t.bytes, t.checksum.clone(), time_text, t.layout.as_deref()))
                        })
                        .collect();
                    let found = Arc::new(refs);
                    served.tile_index.keep(q, found.clone());
                    found
                }
            };
            let map: TileMap = found.iter().map(|t| ((t.key.time, t.key.tx, t.key.ty), t.clone())).collect();
            tiles.insert(a.path.clone(), ArrayTiles { overview: k, map });
        }
        // Every planned tile must be what its catalogue row says before the
        // status line goes out: present with its size, and (up to
        // VERIFY_AHEAD_TILES of them) checksum and identity verified.
        let mut all: Vec<Arc<TileRef>> = tiles.values().flat_map(|m| m.map.values().cloned()).collect();
        // In reading order, so that the tiles verified ahead are the first
        // ones the response needs.
        all.sort_by(|a, b| (a.key.time, a.key.ty, a.key.tx, &a.key.variable).cmp(&(b.key.time, b.key.ty, b.key.tx, &b.key.variable)));
        let all_len = all.len();
        let store = self.tiles.clone();
        let name = def.name.to_string();
        let check = move |now: bool| {
            // The first tiles fully (size and checksum), the rest by size.
            for (i, t) in all.iter().enumerate() {
                let depth = if i < VERIFY_AHEAD_TILES { Depth::Full } else { Depth::Size };
                let result = if now {
                    match store.check_now(t, depth) {
                        Some(r) => r,
                        None => return Ok(false),
                    }
                } else {
                    store.check(t, depth)
                };
                if let Err(e) = result {
                    metrics::counter!("tessera_tile_errors_total").increment(1);
                    tracing::error!(dataset = %name, tile = %t.rel, error = %e, "catalogued tile failed its check");
                    return Err(tile_error(&name, t, e));
                }
            }
            Ok(true)
        };
        // A few tiles verified before are checked here (a stat each);
        // anything that needs reading a file goes to a blocking thread.
        let few = all_len <= FEW_TILES;
        if !(few && check(true)?) {
            crate::blocking::run("verify tiles", move || check(false)).await.map_err(|e| ArchiveError::Internal(e.to_string()))??;
        }
        Ok(Plan { dataset: served, subset, tiles })
    }
}

/// A tile that failed, named by its dataset and pool-relative path.
pub(super) fn tile_error(dataset: &str, tile: &TileRef, error: TileError) -> ArchiveError {
    ArchiveError::Tile { dataset: dataset.to_string(), path: tile.rel.clone(), error }
}

/// Why production of a response stopped early.
#[derive(Debug)]
pub enum Stop {
    /// The client went away.
    Closed,
    Failed(ArchiveError),
}

impl From<ArchiveError> for Stop {
    fn from(e: ArchiveError) -> Self {
        Stop::Failed(e)
    }
}
