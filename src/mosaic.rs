//! From requested index ranges to tile windows, and from tile windows to
//! output bands. Pure: no I/O.
//!
//! A request selects, along each horizontal axis, indices
//! `start, start + stride, ..., start + (count - 1) * stride`. Along an
//! axis cut into tiles of `tile_len` cells, [`pieces`] groups the selected
//! indices by tile: for each tile touched, which output positions it
//! supplies and the smallest enclosing block of its cells to read. The
//! block is read contiguously and subsampled here (asking libnetcdf for a
//! stride is 30-40x slower than reading the enclosing block).

use crate::model::TypedArray;
use crate::with_typed_array;
use ndarray::{ArrayD, IxDyn, s};
use std::ops::Range;

/// The part of one axis selection that one tile supplies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AxisPiece {
    /// Tile index along the axis.
    pub tile: usize,
    /// Output positions supplied (indices into the selection).
    pub out: Range<usize>,
    /// Cells to read, relative to the tile's first cell (enclosing block).
    pub src: Range<usize>,
    /// Step between selected cells within `src`.
    pub stride: usize,
}

/// Groups the selection `start + i * stride, i < count` along an axis of
/// `len` cells cut into tiles of `tile_len` by tile, in order.
pub fn pieces(start: usize, stride: usize, count: usize, tile_len: usize, len: usize) -> Vec<AxisPiece> {
    assert!(stride >= 1 && tile_len >= 1, "stride and tile length are at least 1");
    let mut out = Vec::new();
    if count == 0 {
        return out;
    }
    let last = start + (count - 1) * stride;
    debug_assert!(last < len, "selection {start}:{stride}:{last} outside axis of {len}");
    let mut i = 0;
    while i < count {
        let cell = start + i * stride;
        let tile = cell / tile_len;
        let tile_start = tile * tile_len;
        let tile_end = (tile_start + tile_len).min(len);
        // Last selected output index whose cell is inside this tile.
        let last_in_tile = ((tile_end - 1 - start) / stride).min(count - 1);
        let first_cell = cell - tile_start;
        let last_cell = start + last_in_tile * stride - tile_start;
        out.push(AxisPiece { tile, out: i..last_in_tile + 1, src: first_cell..last_cell + 1, stride });
        i = last_in_tile + 1;
    }
    out
}

/// Calls the generic `go(dst, src, args...)` on the arrays inside two
/// typed arrays of one type (a band and what is placed in it).
macro_rules! same_type {
    ($dst:expr, $src:expr, $go:ident($($arg:expr),*)) => {
        match ($dst, $src) {
            (TypedArray::U8(d), TypedArray::U8(x)) => $go(d, x, $($arg),*),
            (TypedArray::I8(d), TypedArray::I8(x)) => $go(d, x, $($arg),*),
            (TypedArray::I16(d), TypedArray::I16(x)) => $go(d, x, $($arg),*),
            (TypedArray::U16(d), TypedArray::U16(x)) => $go(d, x, $($arg),*),
            (TypedArray::I32(d), TypedArray::I32(x)) => $go(d, x, $($arg),*),
            (TypedArray::U32(d), TypedArray::U32(x)) => $go(d, x, $($arg),*),
            (TypedArray::F32(d), TypedArray::F32(x)) => $go(d, x, $($arg),*),
            (TypedArray::F64(d), TypedArray::F64(x)) => $go(d, x, $($arg),*),
            (d, x) => panic!("an array of {} given values of {}", d.dtype(), x.dtype()),
        }
    };
}

/// A band of output rows of one 2-D slab, in the stored type.
pub fn fill_band(dtype: crate::model::DataType, rows: usize, cols: usize, fill: f64) -> TypedArray {
    crate::with_data_type!(dtype, T => crate::model::IntoTyped::typed(ArrayD::from_elem(IxDyn(&[rows, cols]), fill as T)))
}

/// Sets every value of a band back to the fill value.
pub fn refill(band: &mut TypedArray, fill: f64) {
    crate::with_typed_array!(band, a => a.fill(fill as _))
}

/// Copies a tile block (`[rows, cols]`, the enclosing block of `rows` x
/// `cols` pieces) into `band` at the pieces' output positions, subsampling
/// by the pieces' strides. `row_offset` is the output row of the band's
/// first row.
pub fn place(band: &mut TypedArray, block: &TypedArray, rows: &AxisPiece, cols: &AxisPiece, row_offset: usize) {
    fn go<T: Copy>(band: &mut ArrayD<T>, block: &ArrayD<T>, rows: &AxisPiece, cols: &AxisPiece, row_offset: usize) {
        let src = block.slice(s![..;rows.stride as isize, ..;cols.stride as isize]);
        let r0 = rows.out.start - row_offset;
        let mut dst = band.slice_mut(s![r0..r0 + rows.out.len(), cols.out.clone()]);
        dst.assign(&src);
    }
    same_type!(band, block, go(rows, cols, row_offset));
}

/// Copies every `k`-th row and column of `block` (`[levels?, rows, cols]`),
/// from its cell `first` (row, column), into `band` (the same leading
/// shape) from its cell `at`: how an overview level is cut from
/// full-resolution tiles.
pub fn decimate_into(band: &mut TypedArray, block: &TypedArray, first: (usize, usize), k: usize, at: (usize, usize)) {
    fn go<T: Copy>(band: &mut ArrayD<T>, block: &ArrayD<T>, first: (usize, usize), k: usize, at: (usize, usize)) {
        let n = block.ndim();
        let src = block.slice_each_axis(|ax| match ax.axis.index() {
            i if i == n - 2 => ndarray::Slice::new(first.0 as isize, None, k as isize),
            i if i == n - 1 => ndarray::Slice::new(first.1 as isize, None, k as isize),
            _ => ndarray::Slice::from(..),
        });
        let (rows, cols) = (src.shape()[n - 2], src.shape()[n - 1]);
        let mut dst = band.slice_each_axis_mut(|ax| match ax.axis.index() {
            i if i == n - 2 => ndarray::Slice::from(at.0..at.0 + rows),
            i if i == n - 1 => ndarray::Slice::from(at.1..at.1 + cols),
            _ => ndarray::Slice::from(..),
        });
        dst.assign(&src);
    }
    same_type!(band, block, go(first, k, at));
}

/// Copies a band (`[rows, cols]`) into `whole` from row `first_row`.
pub fn place_rows(whole: &mut TypedArray, band: &TypedArray, first_row: usize) {
    fn go<T: Copy>(whole: &mut ArrayD<T>, band: &ArrayD<T>, first_row: usize) {
        let rows = band.shape()[0];
        whole.slice_mut(s![first_row..first_row + rows, ..]).assign(band);
    }
    same_type!(whole, band, go(first_row));
}

/// Rows per band so that one band of `cols` values of `size` bytes stays
/// under `budget` bytes (at least one row).
pub fn rows_per_band(cols: usize, size: usize, budget: usize) -> usize {
    (budget / (cols.max(1) * size)).max(1)
}

/// The values of a band as a contiguous slice, for encoding.
pub fn with_band_slice<R>(band: &TypedArray, f: impl FnOnce(BandSlice<'_>) -> R) -> R {
    with_typed_array!(band, a => f(a.as_slice().expect("bands are built in standard layout").into()))
}

/// A typed, contiguous run of values.
pub enum BandSlice<'a> {
    U8(&'a [u8]),
    I8(&'a [i8]),
    I16(&'a [i16]),
    U16(&'a [u16]),
    I32(&'a [i32]),
    U32(&'a [u32]),
    F32(&'a [f32]),
    F64(&'a [f64]),
}

macro_rules! band_from {
    ($($t:ty => $v:ident),*) => {$(
        impl<'a> From<&'a [$t]> for BandSlice<'a> { fn from(s: &'a [$t]) -> Self { BandSlice::$v(s) } }
    )*};
}
band_from!(u8 => U8, i8 => I8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, f32 => F32, f64 => F64);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pieces_case_table() {
        // 10 cells, tiles of 4: [0..4) [4..8) [8..10)
        assert_eq!(
            pieces(0, 1, 10, 4, 10),
            vec![
                AxisPiece { tile: 0, out: 0..4, src: 0..4, stride: 1 },
                AxisPiece { tile: 1, out: 4..8, src: 0..4, stride: 1 },
                AxisPiece { tile: 2, out: 8..10, src: 0..2, stride: 1 },
            ]
        );
        // A single cell on a partial edge tile.
        assert_eq!(pieces(9, 1, 1, 4, 10), vec![AxisPiece { tile: 2, out: 0..1, src: 1..2, stride: 1 }]);
        // A stride larger than a tile skips tile 1 entirely.
        assert_eq!(
            pieces(1, 7, 2, 4, 10),
            vec![AxisPiece { tile: 0, out: 0..1, src: 1..2, stride: 7 }, AxisPiece { tile: 2, out: 1..2, src: 0..1, stride: 7 }]
        );
        // Stride 3 from 2: cells 2 5 8 -> tiles 0, 1, 2.
        assert_eq!(pieces(2, 3, 3, 4, 10).iter().map(|p| p.tile).collect::<Vec<_>>(), [0, 1, 2]);
        // Stride 2 within a tile: enclosing block 1..6 -> cells 1, 3, 5? (tile 0 is 0..4: cells 1, 3)
        assert_eq!(pieces(1, 2, 4, 4, 10)[0], AxisPiece { tile: 0, out: 0..2, src: 1..4, stride: 2 });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        /// The pieces cover the selection exactly once, in order, and each
        /// piece's block subsampled by the stride gives exactly its cells.
        #[test]
        fn pieces_cover_the_selection_exactly_once(len in 1usize..300, tile in 1usize..70, a in 0usize..300, stride in 1usize..90, count in 1usize..300) {
            let start = a % len;
            let count = count.min((len - 1 - start) / stride + 1);
            let ps = pieces(start, stride, count, tile, len);
            let mut next = 0;
            for p in &ps {
                prop_assert_eq!(p.out.start, next);
                next = p.out.end;
                let cells: Vec<usize> = p.src.clone().step_by(p.stride).map(|c| c + p.tile * tile).collect();
                let want: Vec<usize> = p.out.clone().map(|i| start + i * stride).collect();
                prop_assert_eq!(cells, want);
                prop_assert!(p.src.end <= tile && p.tile * tile + p.src.end <= len);
            }
            prop_assert_eq!(next, count);
        }
    }

    #[test]
    fn place_subsamples_into_the_band() {
        let mut band = fill_band(crate::model::DataType::I16, 2, 5, -1.0);
        // The block is the enclosing window already read from the tile:
        // rows 0..3, columns 1..4 of a tile whose cell (r, c) holds 10r + c.
        let block = TypedArray::I16(ArrayD::from_shape_fn(IxDyn(&[3, 3]), |i| (i[0] * 10 + i[1] + 1) as i16));
        let rows = AxisPiece { tile: 0, out: 4..6, src: 0..3, stride: 2 };
        let cols = AxisPiece { tile: 0, out: 1..3, src: 1..4, stride: 2 };
        place(&mut band, &block, &rows, &cols, 4);
        assert_eq!(band.to_f64_vec(), vec![-1.0, 1.0, 3.0, -1.0, -1.0, -1.0, 21.0, 23.0, -1.0, -1.0]);
    }
}
