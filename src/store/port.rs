//! The tile store port: tiles by what they are (dataset, variable, time,
//! tile index), not by where a file lies.
//!
//! The request path reads tiles only through [`TileStore`]. Two adapters
//! implement it and pass one conformance suite (`tests/it/store.rs`): the
//! pool of NetCDF files ([`super::reader::PoolTiles`]) and an in-memory
//! twin ([`super::memory::MemoryTiles`]) for tests and benchmarks of the
//! request path. Implementations are blocking: callers run them through
//! [`crate::blocking`].

use crate::model::{TypedArray, VariableDef};
use std::ops::Range;

/// What a tile is: the domain values that name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileKey {
    pub dataset: String,
    pub variable: String,
    /// The slice key (`None` for a time-invariant tile).
    pub time: Option<i64>,
    /// 1 for the full resolution, `k` for overview level `k` (tile
    /// indices on the grid of every `k`-th cell).
    pub overview: u32,
    pub tx: u32,
    pub ty: u32,
}

/// A tile as the catalogue records it: its key, and what the store must
/// find (the pool-relative file, its size and checksum).
#[derive(Clone, Debug, PartialEq)]
pub struct TileRef {
    pub key: TileKey,
    /// Where the catalogue says the tile is, relative to the store's root;
    /// also how messages name it.
    pub rel: String,
    pub bytes: u64,
    /// `blake3:<hex>`.
    pub checksum: String,
    /// The date text older tiles carry instead of their key
    /// (`tessera_time`, in the dataset's calendar; `static` without time).
    pub time_text: String,
    /// Where the values lie in the file, when recorded: the pool then
    /// reads without libnetcdf.
    pub layout: Option<std::sync::Arc<super::layout::TileLayout>>,
}

impl TileRef {
    /// A tile as its catalogue row gives it: the recorded layout decoded
    /// (one that does not decode leaves the tile to libnetcdf, with a
    /// warning; fsck reports it too).
    pub fn catalogued(key: TileKey, rel: String, bytes: u64, checksum: String, time_text: String, layout: Option<&[u8]>) -> TileRef {
        let layout = layout.and_then(|b| match super::layout::TileLayout::decode(b) {
            Ok(l) => Some(std::sync::Arc::new(l)),
            Err(why) => {
                tracing::warn!(dataset = %key.dataset, tile = %rel, %why, "recorded layout unreadable; tile read through libnetcdf");
                None
            }
        });
        TileRef { key, rel, bytes, checksum, time_text, layout }
    }
}

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TileError {
    /// The catalogue names a tile the store does not have (restore it with
    /// `ingest --replace` of its source).
    #[error("the file is missing from the pool")]
    Missing,
    /// The tile is not what the catalogue says (truncated, damaged,
    /// another tile in its place): never served.
    #[error("{0}")]
    Corrupt(String),
    /// The store cannot be reached now (I/O errors that may pass): retry.
    #[error("{0}")]
    Unavailable(String),
}

/// How deep [`TileStore::check`] looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Present, with the catalogued size: cheap, done for every tile of a
    /// request before its status line.
    Size,
    /// The size, the checksum (a file with another tile's bytes, truncated
    /// or damaged fails it) and the identity a tile file states in its
    /// attributes; a store may remember a file verified while unchanged.
    Full,
}

/// Reads windows of tiles.
pub trait TileStore: Send + Sync + 'static {
    /// Reads `[levels?, y, x]` of a tile's variable, as its stored type,
    /// after verifying the tile (see [`Depth::Full`]). `y` and `x` are
    /// relative to the tile; `levels` is `None` for variables without a
    /// vertical axis.
    fn read(&self, tile: &TileRef, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Result<TypedArray, TileError>;
    /// Checks a tile without reading data from it.
    fn check(&self, tile: &TileRef, depth: Depth) -> Result<(), TileError>;
    /// [`TileStore::check`] when memory and file metadata answer it (a
    /// size, a checksum verified before), `None` when it would read a file.
    fn check_now(&self, _tile: &TileRef, _depth: Depth) -> Option<Result<(), TileError>> {
        None
    }
    /// [`TileStore::read`] when memory answers it (decoded chunks kept from
    /// earlier reads), `None` when it would read a file. What lets a small
    /// response be answered without a blocking thread.
    fn read_now(&self, _tile: &TileRef, _var: &VariableDef, _levels: Option<Range<usize>>, _y: Range<usize>, _x: Range<usize>) -> Option<Result<TypedArray, TileError>> {
        None
    }
}

/// A store that answers only from memory: reads and checks that would
/// touch a file fail, and say so in [`FromMemory::missed`]. Producing a
/// small response through it on the async runtime is safe; when it
/// missed, the response is produced again on a blocking thread.
pub struct FromMemory {
    inner: std::sync::Arc<dyn TileStore>,
    missed: std::sync::atomic::AtomicBool,
}

impl FromMemory {
    pub fn new(inner: std::sync::Arc<dyn TileStore>) -> Self {
        FromMemory { inner, missed: std::sync::atomic::AtomicBool::new(false) }
    }

    /// Whether anything needed a file.
    pub fn missed(&self) -> bool {
        self.missed.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn miss<T>(&self) -> Result<T, TileError> {
        self.missed.store(true, std::sync::atomic::Ordering::Relaxed);
        Err(TileError::Unavailable("not in memory".into()))
    }
}

impl TileStore for FromMemory {
    fn read(&self, tile: &TileRef, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Result<TypedArray, TileError> {
        self.inner.read_now(tile, var, levels, y, x).unwrap_or_else(|| self.miss())
    }

    fn check(&self, tile: &TileRef, depth: Depth) -> Result<(), TileError> {
        self.inner.check_now(tile, depth).unwrap_or_else(|| self.miss())
    }
}
