//! A plan executed: coordinate values, and the band loop that reads the
//! tiles of a data array through the store and places them with `mosaic`.

use super::served::Role;
use super::{ArchiveError, Plan, Stop, tile_error};
use crate::dap::view::{self, SentArray};
use crate::model::{DataType, TypedArray};
use crate::mosaic;
use crate::store::port::TileStore;
use crate::with_data_type;

/// Bytes of stored values per band.
const BAND_BYTES: usize = 4 << 20;

impl Plan {
    /// The values of a coordinate array (or the grid mapping scalar) for
    /// its selected range, in the coordinate's stored type.
    pub(crate) fn coordinate_values(&self, a: &SentArray) -> Result<TypedArray, ArchiveError> {
        let dv = &self.dataset;
        let def = &dv.dataset.def;
        let pick = |values: &[f64], dtype: DataType| -> TypedArray {
            let r = a.dims[0].range;
            with_data_type!(dtype, T => TypedArray::from_vec(r.indices().map(|i| values[i] as T).collect::<Vec<T>>()))
        };
        match dv.role(&a.name) {
            Some(Role::Time) => Ok(pick(&dv.time_values, def.time.dtype)),
            Some(Role::Level) => {
                let l = def.grid.level.as_ref().ok_or_else(|| ArchiveError::Internal("no level axis".into()))?;
                Ok(pick(&l.values, l.dtype))
            }
            Some(Role::Y) => Ok(pick(&def.grid.y.values, def.grid.y.dtype)),
            Some(Role::X) => Ok(pick(&def.grid.x.values, def.grid.x.dtype)),
            Some(Role::GridMapping) => {
                let gm = def.grid.crs.grid_mapping.as_ref().ok_or_else(|| ArchiveError::Internal("no grid mapping".into()))?;
                Ok(with_data_type!(gm.dtype, T => TypedArray::from_vec(vec![gm.value as T])))
            }
            Some(Role::Aux(_) | Role::SliceAux(_)) => dv
                .aux_values(&a.name, &a.ranges())
                .ok_or_else(|| ArchiveError::Internal(format!("{}: selection outside the auxiliary variable", a.name))),
            _ => Err(ArchiveError::Internal(format!("{} is not a coordinate", a.name))),
        }
    }

    /// Calls `f` with consecutive bands of a data array, in output order:
    /// `(first_row, band)` where rows are innermost-dimension rows.
    /// Bands before the one holding `first_row` are skipped without reading;
    /// `f` returns `Ok(false)` to stop early.
    pub(crate) fn data_bands(
        &self,
        reader: &dyn TileStore,
        a: &SentArray,
        first_row: usize,
        f: &mut dyn FnMut(usize, &TypedArray) -> Result<bool, Stop>,
    ) -> Result<(), Stop> {
        let dv = &self.dataset;
        let def = &dv.dataset.def;
        let Some(Role::Data(i)) = dv.role(&a.name) else {
            return Err(ArchiveError::Internal(format!("{} is not a data variable", a.name)).into());
        };
        let var = &dv.vars[*i].def;
        let tiles = self.tiles.get(&a.path).ok_or_else(|| ArchiveError::Internal(format!("no plan for {}", a.path)))?;
        let n = a.dims.len();
        let slab = |r: view::Range| crate::model::Hyperslab { start: r.start, stride: r.stride, count: r.count };
        let sel = crate::plan::Selection {
            time: var.has_time.then(|| slab(a.dims[0].range)),
            level: var.has_level.then(|| slab(a.dims[usize::from(var.has_time)].range)),
            y: slab(a.dims[n - 2].range),
            x: slab(a.dims[n - 1].range),
        };
        let fill = var.fill_value();
        let mut buffer: Option<TypedArray> = None;
        for b in crate::plan::bands(&sel, (def.grid.ny(), def.grid.nx()), def.tile, var.dtype.size(), BAND_BYTES) {
            if b.first_row + b.rows <= first_row {
                continue;
            }
            // Reuse the band's memory; only the last band of a tile row has
            // another shape.
            if buffer.as_ref().is_none_or(|x: &TypedArray| x.shape() != [b.rows, b.cols]) {
                buffer = Some(mosaic::fill_band(var.dtype, b.rows, b.cols, fill));
            } else if let Some(x) = buffer.as_mut() {
                mosaic::refill(x, fill);
            }
            let band = buffer.as_mut().expect("set above");
            let key_t = b.time.map(|k| dv.times[k].0);
            // The band's tiles are read at once (each read spreads its
            // chunks over the cores too), then placed in order.
            let read = |r: &crate::plan::TileRead| -> Result<Option<TypedArray>, Stop> {
                let Some(tile) = tiles.get(&(key_t, r.tile.tx as u32, r.tile.ty as u32)) else { return Ok(None) };
                let block = reader
                    .read(tile, var, b.level.map(|z| z..z + 1), r.rows.src.clone(), r.cols.src.clone())
                    .map_err(|e| tile_error(def.name.as_str(), tile, e))?;
                Ok(Some(block))
            };
            let blocks: Vec<Option<TypedArray>> = if b.reads.len() > 1 {
                use rayon::prelude::*;
                b.reads.par_iter().map(read).collect::<Result<_, _>>()?
            } else {
                b.reads.iter().map(read).collect::<Result<_, _>>()?
            };
            for (r, block) in b.reads.iter().zip(blocks) {
                if let Some(block) = block {
                    mosaic::place(band, &squeeze_level(block), &r.rows, &r.cols, b.slab_row);
                }
            }
            if !f(b.first_row, band)? {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// `[1, rows, cols]` -> `[rows, cols]`.
fn squeeze_level(a: TypedArray) -> TypedArray {
    let n = a.shape().len();
    a.drop_leading(n.saturating_sub(2))
}
