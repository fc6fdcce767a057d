//! The pool adapter of the tile store port ([`super::port::TileStore`]):
//! NetCDF tile files.
//!
//! **Two ways to read.** A tile whose catalogue row carries its layout
//! ([`super::layout`]) is read directly: positioned reads of the chunks a
//! window touches, inflated with libdeflate and unshuffled on every core
//! (rayon's pool, one per process, so requests share the cores rather than
//! multiply threads), and kept decoded in a cache bounded in bytes. No
//! libnetcdf lock is taken. Other tiles (older archives before `tessera
//! reindex`, storage the direct reader does not decode) are read through
//! libnetcdf with a bounded cache of open files. Both give the same values:
//! `tests/it/store.rs` reads every tile of its archives both ways.
//!
//! **No tile is served unverified.** Before a tile file's first read, its
//! size and blake3 checksum are compared with its catalogue row (a file
//! swapped for another tile, truncated or with one flipped bit fails), the
//! identity it carries in its attributes (dataset, variable, time, tile
//! index) with the key the request expects, and its recorded layout with
//! the one the file has. Tile files are never
//! rewritten in place (see [`super::write_new`]), so a verified file stays
//! verified while its size, modification time and inode are unchanged;
//! the store remembers that for [`VERIFIED_MEMORY`] files. The cost: one
//! sequential read and hash of the file at blake3's speed (about 1.3 GB/s
//! measured here, so 2-3 ms for a 3.4 MB tile), and a look at its header
//! and chunk index, once.

use super::layout::{Storage, TileLayout};
use super::port::{Depth, TileError, TileRef, TileStore};
use super::tile::{quiet_hdf5, read_var};
use super::{Pool, StoreError};
use crate::model::{TypedArray, VariableDef};
use lru::LruCache;
use rayon::prelude::*;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Decoded chunks kept by default: 128 MiB, which holds a whole 64 MiB
/// float32 slice of 4096 x 4096 twice over, and keeps a server with the
/// defaults under 300 MiB whatever the catalogue's size
/// (`benches/scale.py`).
pub const DEFAULT_CHUNK_CACHE_BYTES: u64 = 128 << 20;

/// A decoded chunk: the tile's content (its checksum's first 128 bits,
/// so that a chunk is known by what it holds, whatever the file's name)
/// and the chunk's index.
type ChunkKey = (u128, u32);

#[derive(Clone)]
struct ByteWeight;

impl quick_cache::Weighter<ChunkKey, Arc<Vec<u8>>> for ByteWeight {
    fn weight(&self, _: &ChunkKey, v: &Arc<Vec<u8>>) -> u64 {
        v.len() as u64 + 64
    }
}

type ChunkCache = quick_cache::sync::Cache<ChunkKey, Arc<Vec<u8>>, ByteWeight>;

fn content_id(checksum: &str) -> Option<u128> {
    let hex = checksum.strip_prefix("blake3:")?;
    u128::from_str_radix(hex.get(..32)?, 16).ok()
}

/// Verified files remembered (about 100 bytes each).
pub const VERIFIED_MEMORY: usize = 200_000;

/// A verified file: its stamp then, and the recorded layout it matched.
type Verified = (Stamp, Option<Arc<TileLayout>>);

/// Whether a tile is the one verified (same stamp, same layout).
fn same(v: Option<&Verified>, now: Stamp, layout: &Option<Arc<TileLayout>>) -> bool {
    v.is_some_and(|(s, l)| *s == now && l == layout)
}

/// Size, modification time and inode: a verified file is known again by them.
type Stamp = (u64, i128, u64);

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    std::fs::metadata(path).map(|m| stamp_of(&m))
}

fn stamp_of(m: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    (m.len(), i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()), m.ino())
}

fn damaged(why: String) -> TileError {
    metrics::counter!("tessera_tiles_damaged_total").increment(1);
    TileError::Corrupt(why)
}

/// An I/O error of the pool: a missing file, or one that may pass.
fn io_error(e: &std::io::Error) -> TileError {
    if e.kind() == std::io::ErrorKind::NotFound {
        TileError::Missing
    } else {
        TileError::Unavailable(format!("the file cannot be read: {}", super::plain_io_error(e)))
    }
}

/// The identity a tile file states in its attributes, compared with the
/// expected one; the first difference, in words.
fn identity_difference(file: &netcdf::File, tile: &TileRef) -> Option<String> {
    use netcdf::AttributeValue as A;
    let attr = |n: &str| file.attribute(n).and_then(|a| a.value().ok());
    let text = |n: &str| match attr(n) {
        Some(A::Str(s)) => Some(s),
        _ => None,
    };
    let num = |n: &str| match attr(n) {
        Some(A::Int(v)) => Some(f64::from(v)),
        Some(A::Double(v)) => Some(v),
        Some(A::Longlong(v)) => Some(v as f64),
        _ => None,
    };
    let want_time = if tile.key.time.is_some() { tile.time_text.clone() } else { "static".to_string() };
    let checks: [(&str, Option<String>, String); 5] = [
        ("dataset", text("tessera_dataset"), tile.key.dataset.clone()),
        ("variable", text("tessera_variable"), tile.key.variable.clone()),
        // Tiles without the attribute are full-resolution ones.
        ("overview level", Some(num("tessera_overview").unwrap_or(1.0).to_string()), tile.key.overview.to_string()),
        ("tile x", num("tessera_tile_x").map(|v| v.to_string()), tile.key.tx.to_string()),
        ("tile y", num("tessera_tile_y").map(|v| v.to_string()), tile.key.ty.to_string()),
    ];
    for (what, got, want) in checks {
        if got.as_deref() != Some(want.as_str()) {
            return Some(format!("it is a tile of {what} {} where {want} is expected", got.unwrap_or_else(|| "(none)".into())));
        }
    }
    // A synthetic dataset's tiles stand for every slice: accepted when
    // both the catalogue (its dataset is synthetic) and the file say so.
    if tile.time_text == crate::model::SYNTHETIC_TIME && text("tessera_time").as_deref() == Some(crate::model::SYNTHETIC_TIME) {
        return None;
    }
    match (num("tessera_time_key"), tile.key.time) {
        (Some(k), Some(t)) if k != t as f64 => Some(format!("it holds time {} where {want_time} is expected", text("tessera_time").unwrap_or_default())),
        (Some(_), None) => Some(format!("it holds time {} where a static tile is expected", text("tessera_time").unwrap_or_default())),
        (None, _) if text("tessera_time").as_deref() != Some(want_time.as_str()) => {
            Some(format!("it holds time {} where {want_time} is expected", text("tessera_time").unwrap_or_default()))
        }
        _ => None,
    }
}

/// The pool's tiles through libnetcdf, with an LRU of open files: repeat
/// reads of a tile skip the open and keep HDF5's chunk cache warm (50-100x
/// cheaper).
pub struct PoolTiles {
    pool: Pool,
    /// Open files with the stamp they had when verified: a file changed
    /// since (by anything but tessera, which never rewrites a tile) is
    /// verified again before its next read.
    open: Mutex<LruCache<PathBuf, (Arc<netcdf::File>, Stamp)>>,
    /// Files whose checksum, identity and layout were verified, by path,
    /// with the stamp they had then and the layout they were verified
    /// against.
    verified: Mutex<LruCache<PathBuf, Verified>>,
    /// Decoded chunks of directly read tiles; `None` when disabled.
    chunks: Option<ChunkCache>,
}

/// HDF5 chunk cache per open variable: 1 MiB holds a row of four
/// 256 x 256 float32 chunks, which is what band-by-band reading of a tile
/// revisits. With the open-file LRU this bounds the cache memory at about
/// `max_open_files` MiB (libnetcdf's default, 16 MiB, would let 64 open
/// tiles hold a gigabyte).
pub const CHUNK_CACHE_BYTES: usize = 1 << 20;

impl PoolTiles {
    pub fn new(pool: Pool, max_open_files: usize) -> Self {
        // A process-wide libnetcdf setting, applied to files opened later.
        {
            let _lock = netcdf_sys::libnetcdf_lock.lock();
            // SAFETY: plain C call under libnetcdf's global lock.
            unsafe {
                netcdf_sys::nc_set_chunk_cache(CHUNK_CACHE_BYTES, 521, 0.75);
            }
        }
        PoolTiles {
            pool,
            open: Mutex::new(LruCache::new(NonZeroUsize::new(max_open_files.max(1)).expect("at least 1"))),
            // Grown as files are verified, not allocated up front.
            verified: Mutex::new(LruCache::unbounded()),
            chunks: None,
        }
        .with_chunk_cache(DEFAULT_CHUNK_CACHE_BYTES)
    }

    /// Keeps up to `bytes` of decoded chunks (0: none).
    pub fn with_chunk_cache(mut self, bytes: u64) -> Self {
        self.chunks = (bytes > 0).then(|| {
            // quick_cache sizes its tables from an item estimate: chunks
            // are 256 KiB for float32 tiles.
            let items = (bytes / (256 << 10)).clamp(16, 1 << 20) as usize;
            ChunkCache::with_weighter(items, bytes, ByteWeight)
        });
        self
    }

    /// Whether the file was verified with this stamp and this layout (no
    /// file read).
    fn is_verified(&self, tile: &TileRef, path: &Path, now: Stamp) -> bool {
        now.0 == tile.bytes && same(self.verified.lock().unwrap_or_else(|p| p.into_inner()).get(path), now, &tile.layout)
    }

    /// Checks a tile file's size and, once while it is unchanged, its
    /// checksum, the identity it states and its recorded layout.
    fn verify_bytes(&self, tile: &TileRef, path: &Path, now: Stamp) -> Result<(), TileError> {
        if now.0 != tile.bytes {
            return Err(damaged(format!("the file is {} bytes long, the catalogue says {} (truncated or replaced)", now.0, tile.bytes)));
        }
        if self.is_verified(tile, path, now) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let written = super::checksum_file(path).map_err(|e| match e {
            StoreError::Io { source, .. } => io_error(&source),
            other => TileError::Unavailable(other.to_string()),
        })?;
        metrics::histogram!("tessera_tile_verify_seconds").record(started.elapsed().as_secs_f64());
        if written.checksum != tile.checksum || written.bytes != tile.bytes {
            return Err(damaged("the file does not match its catalogued checksum (damaged, or another file in its place)".into()));
        }
        // The identity the file states, once with its checksum: direct
        // reads never open it with libnetcdf.
        let f = netcdf::open(path).map_err(|e| damaged(format!("the file is not a readable NetCDF file ({e})")))?;
        if let Some(why) = identity_difference(&f, tile) {
            return Err(damaged(format!("the file is not the tile the catalogue names: {why}")));
        }
        drop(f);
        // The recorded layout is the file's own: a catalogue row whose
        // layout was damaged or belongs elsewhere could otherwise read
        // other values that happen to inflate.
        if let Some(recorded) = &tile.layout {
            match super::inspect::layout(path, &tile.key.variable) {
                Ok(Some(found)) if found == **recorded => {}
                _ => return Err(damaged("its recorded layout is not the file's (`tessera reindex --all` records it again)".into())),
            }
        }
        let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        v.put(path.to_path_buf(), (now, tile.layout.clone()));
        while v.len() > VERIFIED_MEMORY {
            v.pop_lru();
        }
        Ok(())
    }

    /// The open file of a tile: its bytes verified before its first use,
    /// its identity checked at every open.
    fn file(&self, tile: &TileRef) -> Result<Arc<netcdf::File>, TileError> {
        let path = self.path(tile)?;
        let path = path.as_path();
        let now = stamp(path).map_err(|e| io_error(&e))?;
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            match open.get(path) {
                Some((f, s)) if *s == now => return Ok(f.clone()),
                Some(_) => {
                    open.pop(path);
                }
                None => {}
            }
        }
        // Checksum, identity and layout, once while the file is unchanged.
        self.verify_bytes(tile, path, now)?;
        let f = netcdf::open(path).map_err(|e| damaged(format!("the file is not a readable NetCDF file ({e})")))?;
        let f = Arc::new(f);
        self.open.lock().unwrap_or_else(|p| p.into_inner()).put(path.to_path_buf(), (f.clone(), now));
        Ok(f)
    }

    /// Forgets every open file (after a dataset is deleted, for example).
    pub fn clear(&self) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).clear();
        if let Some(c) = &self.chunks {
            c.clear();
        }
    }

    fn path(&self, tile: &TileRef) -> Result<PathBuf, TileError> {
        self.pool.resolve(&tile.rel).map_err(|_| damaged("its catalogued path leaves the pool".into()))
    }
}

impl TileStore for PoolTiles {
    fn read(&self, tile: &TileRef, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Result<TypedArray, TileError> {
        quiet_hdf5();
        let started = std::time::Instant::now();
        let result = self.read_inner(tile, var, levels, y, x);
        metrics::counter!("tessera_tiles_read_total").increment(1);
        metrics::histogram!("tessera_tile_read_seconds").record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("tessera_tile_errors_total").increment(1);
        }
        result
    }

    fn check_now(&self, tile: &TileRef, depth: Depth) -> Option<Result<(), TileError>> {
        match depth {
            Depth::Size => Some(self.check(tile, depth)),
            Depth::Full => {
                let path = match self.path(tile) {
                    Ok(p) => p,
                    Err(e) => return Some(Err(e)),
                };
                let now = match stamp(&path) {
                    Ok(s) => s,
                    Err(e) => return Some(Err(io_error(&e))),
                };
                self.is_verified(tile, &path, now).then_some(Ok(()))
            }
        }
    }

    fn read_now(&self, tile: &TileRef, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Option<Result<TypedArray, TileError>> {
        let layout = tile.layout.as_ref()?;
        let cache = self.chunks.as_ref()?;
        let Storage::Chunked { .. } = &layout.storage else { return None };
        let path = self.path(tile).ok()?;
        let now = stamp(&path).ok()?;
        if !self.is_verified(tile, &path, now) {
            return None;
        }
        let ranges = match Self::file_window(var, &Self::dims(layout), levels, y, x) {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let content = content_id(&tile.checksum)?;
        let mut decoded = Vec::new();
        for i in layout.chunks_touching(&ranges) {
            decoded.push((i, cache.get(&(content, i as u32))?));
        }
        metrics::counter!("tessera_chunk_cache_total", "result" => "hit").increment(decoded.len() as u64);
        metrics::counter!("tessera_tiles_read_total").increment(1);
        Some(Self::assembled(layout, var, &ranges, &decoded))
    }

    fn check(&self, tile: &TileRef, depth: Depth) -> Result<(), TileError> {
        match depth {
            Depth::Size => {
                let n = std::fs::metadata(self.path(tile)?).map_err(|e| io_error(&e))?.len();
                if n != tile.bytes {
                    return Err(damaged(format!("the file is {n} bytes long, the catalogue says {} (truncated or replaced)", tile.bytes)));
                }
                Ok(())
            }
            Depth::Full => {
                // Size, then (once while the file is unchanged) checksum
                // and the identity in its attributes, without keeping it
                // open: opening every tile of a request ahead would churn
                // the cache of open files just before the response reads
                // them.
                let path = self.path(tile)?;
                let now = stamp(&path).map_err(|e| io_error(&e))?;
                self.verify_bytes(tile, &path, now)
            }
        }
    }
}

impl PoolTiles {
    fn read_inner(&self, tile: &TileRef, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Result<TypedArray, TileError> {
        if let Some(layout) = &tile.layout {
            return self.read_direct(tile, layout, var, levels, y, x);
        }
        self.read_library(tile, var, levels, y, x)
    }

    /// The window's ranges over the variable's dimensions in the file
    /// (`[time?, level?, y, x]`), checked against them.
    fn file_window(var: &VariableDef, dims: &[usize], levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Result<Vec<Range<usize>>, TileError> {
        let lead = usize::from(var.has_time);
        let want = lead + usize::from(levels.is_some()) + 2;
        if dims.len() != want {
            return Err(damaged(format!("the file's variable {} has {} dimensions, {want} expected", var.name, dims.len())));
        }
        let mut ranges = Vec::with_capacity(want);
        if var.has_time {
            ranges.push(0..1);
        }
        if let Some(l) = levels {
            ranges.push(l);
        }
        ranges.push(y);
        ranges.push(x);
        for (r, &d) in ranges.iter().zip(dims) {
            if r.start > r.end || r.end > d {
                return Err(damaged(format!("window {r:?} is outside a tile dimension of length {d}")));
            }
        }
        Ok(ranges)
    }

    /// Reads through the tile's recorded layout: positioned reads, the
    /// chunks inflated in parallel, decoded chunks cached.
    fn read_direct(&self, tile: &TileRef, layout: &TileLayout, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Result<TypedArray, TileError> {
        let path = self.path(tile)?;
        let file = std::fs::File::open(&path).map_err(|e| io_error(&e))?;
        // The stamp of the file actually read: verified once, as a whole.
        let now = stamp_of(&file.metadata().map_err(|e| io_error(&e))?);
        self.verify_bytes(tile, &path, now)?;
        let ranges = Self::file_window(var, &Self::dims(layout), levels, y, x)?;
        let corrupt = |why: String| damaged(format!("its recorded layout does not read: {why}"));
        let read_at = |offset: u64, len: usize| -> Result<Vec<u8>, TileError> {
            if offset.checked_add(len as u64).is_none_or(|end| end > now.0) {
                return Err(corrupt(format!("{len} bytes at {offset} lie past the end of the file")));
            }
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, offset).map_err(|e| io_error(&e))?;
            Ok(buf)
        };
        match &layout.storage {
            Storage::Contiguous { .. } => {
                let mut bytes = Vec::new();
                for (offset, len) in layout.runs(&ranges) {
                    bytes.extend(read_at(offset, len)?);
                }
                if !layout.fits(var.dtype) {
                    return Err(corrupt(format!("values of {} bytes where {} has {}", layout.elem, var.dtype.name(), var.dtype.size())));
                }
                let a = layout.values_from_runs(var.dtype, &ranges, bytes).map_err(corrupt)?;
                Ok(a.drop_leading(usize::from(var.has_time)))
            }
            Storage::Chunked { chunks, .. } => {
                let need = layout.chunks_touching(&ranges);
                let content = content_id(&tile.checksum);
                let one = |&i: &usize| -> Result<(usize, Arc<Vec<u8>>), TileError> {
                    let key = content.map(|c| (c, i as u32));
                    if let (Some(cache), Some(key)) = (&self.chunks, key) {
                        if let Some(hit) = cache.get(&key) {
                            metrics::counter!("tessera_chunk_cache_total", "result" => "hit").increment(1);
                            return Ok((i, hit));
                        }
                        metrics::counter!("tessera_chunk_cache_total", "result" => "miss").increment(1);
                    }
                    let c = chunks.get(i).copied().flatten().ok_or_else(|| corrupt(format!("chunk {i} is not recorded")))?;
                    let raw = read_at(c.offset, usize::try_from(c.size).map_err(|_| corrupt("a chunk is too large".into()))?)?;
                    let decoded = Arc::new(layout.decode_chunk(&raw, c.mask).map_err(corrupt)?);
                    metrics::counter!("tessera_chunks_decoded_total").increment(1);
                    if let (Some(cache), Some(key)) = (&self.chunks, key) {
                        cache.insert(key, decoded.clone());
                    }
                    Ok((i, decoded))
                };
                // One chunk (a point, a small window) stays on this thread;
                // more go to every core.
                let decoded: Vec<(usize, Arc<Vec<u8>>)> = if need.len() > 1 {
                    need.par_iter().map(one).collect::<Result<_, _>>()?
                } else {
                    need.iter().map(one).collect::<Result<_, _>>()?
                };
                if let Some(cache) = &self.chunks {
                    metrics::gauge!("tessera_chunk_cache_bytes").set(cache.weight() as f64);
                }
                Self::assembled(layout, var, &ranges, &decoded)
            }
        }
    }

    fn dims(layout: &TileLayout) -> Vec<usize> {
        layout.shape.iter().map(|&d| d as usize).collect()
    }

    /// Decoded chunks copied into the window, as `[level?, y, x]`.
    fn assembled(layout: &TileLayout, var: &VariableDef, ranges: &[Range<usize>], decoded: &[(usize, Arc<Vec<u8>>)]) -> Result<TypedArray, TileError> {
        let parts: Vec<(usize, &[u8])> = decoded.iter().map(|(i, b)| (*i, b.as_slice())).collect();
        let a = layout.assemble(var.dtype, ranges, &parts).map_err(|why| damaged(format!("its recorded layout does not read: {why}")))?;
        Ok(a.drop_leading(usize::from(var.has_time)))
    }

    /// Reads through libnetcdf (under its process-wide lock).
    fn read_library(&self, tile: &TileRef, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Result<TypedArray, TileError> {
        let file = self.file(tile)?;
        let path = self.path(tile)?;
        let v = file.variable(&var.name).ok_or_else(|| damaged(format!("the file has no variable {}", var.name)))?;
        let dims: Vec<usize> = v.dimensions().iter().map(|d| d.len()).collect();
        let lead = usize::from(var.has_time);
        let ranges = Self::file_window(var, &dims, levels, y, x)?;
        let a = read_var(&path, &v, var.dtype, &ranges).map_err(|e| match e {
            StoreError::NetCdf { message, .. } => damaged(format!("NetCDF: {message}")),
            StoreError::Invalid { message, .. } => damaged(message),
            StoreError::Io { source, .. } => io_error(&source),
        })?;
        // [time?, level?, y, x] -> [level?, y, x]
        Ok(a.drop_leading(lead))
    }
}
