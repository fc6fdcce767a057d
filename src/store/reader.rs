//! The tile reading port, and its libnetcdf adapter with a bounded cache
//! of open files.
//!
//! The request path reads tiles only through [`TileReader`], so another
//! reader (a pure-Rust one, worker processes) can replace libnetcdf's
//! globally locked path without touching the rest. Implementations are
//! blocking: callers run them on blocking threads, never on the async
//! executor.

use super::tile::{quiet_hdf5, read_var};
use super::{Result, StoreError};
use crate::model::{TypedArray, VariableDef};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Reads windows of tiles.
pub trait TileReader: Send + Sync + 'static {
    /// Reads `[levels?, y, x]` of a tile's variable, as its stored type.
    /// `y` and `x` are relative to the tile; `levels` is `None` for
    /// variables without a vertical axis.
    fn read(&self, path: &Path, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Result<TypedArray>;
}

/// libnetcdf, with an LRU of open files: repeat reads of a tile skip the
/// open and keep HDF5's chunk cache warm (50-100x cheaper).
pub struct NetcdfReader {
    open: Mutex<LruCache<PathBuf, Arc<netcdf::File>>>,
}

/// HDF5 chunk cache per open variable: 1 MiB holds a row of four
/// 256 x 256 float32 chunks, which is what band-by-band reading of a tile
/// revisits. With the open-file LRU this bounds the cache memory at about
/// `max_open_files` MiB (libnetcdf's default, 16 MiB, would let 64 open
/// tiles hold a gigabyte).
pub const CHUNK_CACHE_BYTES: usize = 1 << 20;

impl NetcdfReader {
    pub fn new(max_open_files: usize) -> Self {
        // A process-wide libnetcdf setting, applied to files opened later.
        {
            let _lock = netcdf_sys::libnetcdf_lock.lock();
            // SAFETY: plain C call under libnetcdf's global lock.
            unsafe {
                netcdf_sys::nc_set_chunk_cache(CHUNK_CACHE_BYTES, 521, 0.75);
            }
        }
        NetcdfReader { open: Mutex::new(LruCache::new(NonZeroUsize::new(max_open_files.max(1)).expect("at least 1"))) }
    }

    fn file(&self, path: &Path) -> Result<Arc<netcdf::File>> {
        if let Some(f) = self.open.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
            return Ok(f.clone());
        }
        let f = Arc::new(netcdf::open(path).map_err(|e| StoreError::NetCdf { path: path.to_path_buf(), message: e.to_string() })?);
        self.open.lock().unwrap_or_else(|p| p.into_inner()).put(path.to_path_buf(), f.clone());
        Ok(f)
    }

    /// Forgets every open file (after a dataset is deleted, for example).
    pub fn clear(&self) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl TileReader for NetcdfReader {
    fn read(&self, path: &Path, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Result<TypedArray> {
        quiet_hdf5();
        let started = std::time::Instant::now();
        let result = self.read_inner(path, var, levels, y, x);
        metrics::counter!("tessera_tiles_read_total").increment(1);
        metrics::histogram!("tessera_tile_read_seconds").record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("tessera_tile_errors_total").increment(1);
        }
        result
    }
}

impl NetcdfReader {
    fn read_inner(&self, path: &Path, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Result<TypedArray> {
        let file = self.file(path)?;
        let v = file.variable(&var.name).ok_or_else(|| StoreError::Invalid {
            path: path.to_path_buf(),
            message: format!("no variable {} in the tile", var.name),
        })?;
        let dims: Vec<usize> = v.dimensions().iter().map(|d| d.len()).collect();
        let lead = usize::from(var.has_time);
        let want = lead + usize::from(levels.is_some()) + 2;
        if dims.len() != want {
            return Err(StoreError::Invalid {
                path: path.to_path_buf(),
                message: format!("tile variable {} has {} dimensions, expected {want}", var.name, dims.len()),
            });
        }
        let mut ranges = Vec::with_capacity(want);
        if var.has_time {
            ranges.push(0..1);
        }
        if let Some(l) = levels.clone() {
            ranges.push(l);
        }
        ranges.push(y);
        ranges.push(x);
        for (r, &d) in ranges.iter().zip(&dims) {
            if r.start > r.end || r.end > d {
                return Err(StoreError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("window {r:?} is outside a tile dimension of length {d}"),
                });
            }
        }
        let a = read_var(path, &v, var.dtype, &ranges)?;
        // [time?, level?, y, x] -> [level?, y, x]
        Ok(crate::with_typed_array!(a, arr => {
            let shape: Vec<usize> = arr.shape()[lead..].to_vec();
            crate::model::IntoTyped::typed(arr.into_shape_with_order(ndarray::IxDyn(&shape)).expect("same element count"))
        }))
    }
}
