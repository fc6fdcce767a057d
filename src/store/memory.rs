//! The in-memory twin of the pool: tiles held as arrays, keyed by
//! [`TileKey`]. Same behaviour at the port (windows, missing and damaged
//! tiles), no files: tests and benchmarks of the request path measure
//! tessera, not the disk or libnetcdf.

use super::port::{Depth, TileError, TileKey, TileRef, TileStore};
use crate::model::{TypedArray, VariableDef};
use crate::with_typed_array;
use ndarray::{IxDyn, SliceInfoElem};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

/// One stored tile: `[level?, y, x]` and the checksum its catalogue row
/// must carry.
struct Held {
    data: TypedArray,
    checksum: String,
    bytes: u64,
}

/// Tiles in memory.
#[derive(Default)]
pub struct MemoryTiles {
    tiles: Mutex<HashMap<TileKey, Held>>,
}

impl MemoryTiles {
    /// Stores a tile `[level?, y, x]`; returns the catalogue row that names
    /// it (`rel` is a made-up path, the checksum hashes the values).
    pub fn insert(&self, key: TileKey, data: TypedArray) -> TileRef {
        let mut hasher = blake3::Hasher::new();
        with_typed_array!(&data, a => {
            for v in a.iter() {
                hasher.update(&v.to_le_bytes());
            }
        });
        let checksum = format!("blake3:{}", hasher.finalize().to_hex());
        let bytes = (data.shape().iter().product::<usize>() * data.dtype().size()) as u64;
        let rel = format!("{}/{:?}/{}_tile_x{}_y{}", key.dataset, key.time, key.variable, key.tx, key.ty);
        let tile = TileRef { key: key.clone(), rel, bytes, checksum: checksum.clone(), time_text: String::new(), layout: None };
        self.tiles.lock().unwrap_or_else(|p| p.into_inner()).insert(key, Held { data, checksum, bytes });
        tile
    }

    /// Forgets a tile (as a file deleted from the pool).
    pub fn remove(&self, key: &TileKey) {
        self.tiles.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// Puts another tile's values under `key` (as a file swapped for
    /// another in the pool): its checksum no longer matches its row.
    pub fn swap(&self, key: &TileKey, with: &TileKey) {
        let mut m = self.tiles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(other) = m.get(with).map(|h| (h.data.clone(), h.checksum.clone(), h.bytes)) {
            if let Some(h) = m.get_mut(key) {
                (h.data, h.checksum, h.bytes) = other;
            }
        }
    }

    fn checked(&self, tile: &TileRef, depth: Depth) -> Result<TypedArray, TileError> {
        let m = self.tiles.lock().unwrap_or_else(|p| p.into_inner());
        let held = m.get(&tile.key).ok_or(TileError::Missing)?;
        if held.bytes != tile.bytes {
            return Err(TileError::Corrupt(format!("the tile is {} bytes long, the catalogue says {}", held.bytes, tile.bytes)));
        }
        if depth == Depth::Full && held.checksum != tile.checksum {
            return Err(TileError::Corrupt("the tile does not match its catalogued checksum".into()));
        }
        Ok(held.data.clone())
    }
}

impl TileStore for MemoryTiles {
    fn read(&self, tile: &TileRef, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Result<TypedArray, TileError> {
        let data = self.checked(tile, Depth::Full)?;
        let shape = data.shape().to_vec();
        let mut ranges: Vec<Range<usize>> = Vec::new();
        if var.has_level {
            ranges.push(levels.clone().unwrap_or(0..shape[0]));
        }
        ranges.push(y);
        ranges.push(x);
        if ranges.len() != shape.len() {
            return Err(TileError::Corrupt(format!("the tile has {} dimensions, {} expected", shape.len(), ranges.len())));
        }
        for (r, &d) in ranges.iter().zip(&shape) {
            if r.start > r.end || r.end > d {
                return Err(TileError::Corrupt(format!("window {r:?} is outside a tile dimension of length {d}")));
            }
        }
        let info: Vec<SliceInfoElem> = ranges.iter().map(|r| SliceInfoElem::Slice { start: r.start as isize, end: Some(r.end as isize), step: 1 }).collect();
        Ok(with_typed_array!(data, a => {
            let view = a.slice(info.as_slice());
            crate::model::IntoTyped::typed(view.to_owned().into_shape_with_order(IxDyn(&ranges.iter().map(|r| r.len()).collect::<Vec<_>>())).expect("same element count"))
        }))
    }

    fn check(&self, tile: &TileRef, depth: Depth) -> Result<(), TileError> {
        self.checked(tile, depth).map(|_| ())
    }

    fn check_now(&self, tile: &TileRef, depth: Depth) -> Option<Result<(), TileError>> {
        Some(self.check(tile, depth))
    }

    fn read_now(&self, tile: &TileRef, var: &VariableDef, levels: Option<Range<usize>>, y: Range<usize>, x: Range<usize>) -> Option<Result<TypedArray, TileError>> {
        Some(self.read(tile, var, levels, y, x))
    }
}
