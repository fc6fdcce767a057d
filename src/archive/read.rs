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
        let planned = self.tiles.get(&a.path).ok_or_else(|| ArchiveError::Internal(format!("no plan for {}", a.path)))?;
        let tiles = &planned.map;
        let n = a.dims.len();
        let slab = |r: view::Range| crate::model::Hyperslab { start: r.start, stride: r.stride, count: r.count };
        // Rows and columns on the grid read: overview level k holds cell
        // (y, x) at (y / k, x / k), and the plan chose k to divide every
        // selected index.
        let k = planned.overview as usize;
        let on_level = |r: view::Range| crate::model::Hyperslab { start: r.start / k, stride: (r.stride / k).max(1), count: r.count };
        let sel = crate::plan::Selection {
            time: var.has_time.then(|| slab(a.dims[0].range)),
            level: var.has_level.then(|| slab(a.dims[usize::from(var.has_time)].range)),
            y: on_level(a.dims[n - 2].range),
            x: on_level(a.dims[n - 1].range),
        };
        let fill = var.fill_value();
        let mut buffer: Option<TypedArray> = None;
        for b in crate::plan::bands(&sel, (def.grid.ny().div_ceil(k), def.grid.nx().div_ceil(k)), def.tile, var.dtype.size(), BAND_BYTES) {
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

impl Plan {
    /// The whole selection of one data array, its last two dimensions as
    /// `[rows, cols]` (the leading ones must select one slab): what a
    /// picture is drawn from. Blocking (it reads tiles).
    pub fn data_array(&self, reader: &dyn TileStore, a: &SentArray) -> Result<TypedArray, ArchiveError> {
        let n = a.dims.len();
        if n < 2 || a.dims[..n - 2].iter().any(|d| d.range.count != 1) {
            return Err(ArchiveError::Internal(format!("{} is not one 2-D slab", a.name)));
        }
        let (rows, cols) = (a.dims[n - 2].range.count, a.dims[n - 1].range.count);
        let mut out: Option<TypedArray> = None;
        self.data_bands(reader, a, 0, &mut |first_row, band| {
            let whole = out.get_or_insert_with(|| mosaic::fill_band(band.dtype(), rows, cols, 0.0));
            mosaic::place_rows(whole, band, first_row);
            Ok(true)
        })
        .map_err(|stop| match stop {
            Stop::Failed(e) => e,
            Stop::Closed => ArchiveError::Internal("stopped".into()),
        })?;
        out.ok_or_else(|| ArchiveError::Internal(format!("{} selects nothing", a.name)))
    }
}
