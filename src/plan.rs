//! The plan of a data array's response: from what a request selects, the
//! grid's size and the tile shape, to bands of tile reads. Pure: no I/O.
//!
//! A data array `var[time?][level?][y][x]` is sent as a sequence of rows
//! (runs along x), slab after slab (one slab per selected time and level).
//! Its plan cuts each slab into bands of whole rows that fit a memory budget
//! and never straddle a tile row, and says, for each band, which tiles
//! supply which of its cells: a [`TileRead`] names the tile, the block of
//! its cells to read (relative to the tile) and where they land in the band
//! (with the stride to subsample the block by, see [`crate::mosaic`]).
//! The reads of a plan cover every cell of the response exactly once
//! (tested below). Executing a plan is [`crate::archive`]'s job: read each
//! block through the tile store, place it, encode the band.

use crate::model::{Hyperslab, TileIndex, TileShape};
use crate::mosaic::{self, AxisPiece};

/// What a data array's response selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Time indices (into the dataset's slices), if the variable has time.
    pub time: Option<Hyperslab>,
    /// Level indices, if the variable has levels.
    pub level: Option<Hyperslab>,
    pub y: Hyperslab,
    pub x: Hyperslab,
}

/// One read of a band: the block of a tile to read and where it lands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileRead {
    pub tile: TileIndex,
    /// Rows: `src` relative to the tile, `out` as slab rows (the band's
    /// `slab_row` is its first), `stride` to subsample by.
    pub rows: AxisPiece,
    /// Columns: likewise, `out` as positions in the row.
    pub cols: AxisPiece,
}

/// Consecutive rows of one slab, produced and sent together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Band {
    /// The band's first row among all the response's rows.
    pub first_row: usize,
    /// The band's first row within its slab.
    pub slab_row: usize,
    pub rows: usize,
    pub cols: usize,
    /// The slab: selected time and level indices.
    pub time: Option<usize>,
    pub level: Option<usize>,
    /// Every tile that supplies cells of the band; cells no read covers
    /// are fill (a missing tile).
    pub reads: Vec<TileRead>,
}

/// The bands of a selection, in response order. A band holds at most
/// `budget` bytes of `value_size`-byte values (one row at least).
pub fn bands(sel: &Selection, grid: (usize, usize), tile: TileShape, value_size: usize, budget: usize) -> impl Iterator<Item = Band> + use<> {
    let (ny, nx) = grid;
    let row_pieces = mosaic::pieces(sel.y.start, sel.y.stride, sel.y.count, tile.h, ny);
    let col_pieces = mosaic::pieces(sel.x.start, sel.x.stride, sel.x.count, tile.w, nx);
    let per_band = mosaic::rows_per_band(sel.x.count, value_size, budget);
    let times: Vec<Option<usize>> = sel.time.map_or(vec![None], |r| r.indices().map(Some).collect());
    let levels: Vec<Option<usize>> = sel.level.map_or(vec![None], |r| r.indices().map(Some).collect());
    let (y, cols, slab_rows) = (sel.y, sel.x.count, sel.y.count);
    let slabs: Vec<(Option<usize>, Option<usize>)> = times.iter().flat_map(|&t| levels.iter().map(move |&z| (t, z))).collect();
    slabs.into_iter().enumerate().flat_map(move |(k, (time, level))| {
        let col_pieces = col_pieces.clone();
        row_pieces.clone().into_iter().flat_map(move |rp| {
            let col_pieces = col_pieces.clone();
            let starts: Vec<usize> = (rp.out.start..rp.out.end).step_by(per_band).collect();
            starts.into_iter().map(move |o| {
                let o1 = (o + per_band).min(rp.out.end);
                let tile_y0 = rp.tile * tile.h;
                let rows = AxisPiece {
                    tile: rp.tile,
                    out: o..o1,
                    src: y.start + o * y.stride - tile_y0..y.start + (o1 - 1) * y.stride - tile_y0 + 1,
                    stride: y.stride,
                };
                let reads = col_pieces
                    .iter()
                    .map(|cp| TileRead { tile: TileIndex { tx: cp.tile, ty: rp.tile }, rows: rows.clone(), cols: cp.clone() })
                    .collect();
                Band { first_row: k * slab_rows + o, slab_row: o, rows: o1 - o, cols, time, level, reads }
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn slab(start: usize, stride: usize, count: usize) -> Hyperslab {
        Hyperslab { start, stride, count }
    }

    /// Every cell of the response exactly once, every read inside its tile,
    /// bands in order.
    fn covers_exactly_once(sel: &Selection, grid: (usize, usize), tile: TileShape, budget: usize) {
        let slabs = sel.time.map_or(1, |t| t.count) * sel.level.map_or(1, |l| l.count);
        let rows = slabs * sel.y.count;
        let mut seen = vec![0u8; rows * sel.x.count];
        let mut next_row = 0;
        for b in bands(sel, grid, tile, 4, budget) {
            assert_eq!(b.first_row, next_row, "bands in order, none skipped");
            next_row += b.rows;
            assert!(b.rows * b.cols * 4 <= budget.max(b.cols * 4), "band within budget");
            for r in &b.reads {
                let tile_rows = tile.h.min(grid.0 - r.tile.ty * tile.h);
                let tile_cols = tile.w.min(grid.1 - r.tile.tx * tile.w);
                assert!(r.rows.src.end <= tile_rows && r.cols.src.end <= tile_cols, "read inside the tile");
                assert_eq!(r.rows.src.len(), (r.rows.out.len() - 1) * r.rows.stride + 1);
                assert_eq!(r.cols.src.len(), (r.cols.out.len() - 1) * r.cols.stride + 1);
                for o in r.rows.out.clone() {
                    assert!(o >= b.slab_row && o < b.slab_row + b.rows);
                    let row = b.first_row - b.slab_row + o;
                    for c in r.cols.out.clone() {
                        seen[row * sel.x.count + c] += 1;
                    }
                }
            }
        }
        assert_eq!(next_row, rows);
        assert!(seen.iter().all(|&n| n == 1), "every cell once");
    }

    #[test]
    fn case_table() {
        let t = |w, h| TileShape::new(w, h).unwrap();
        for (sel, grid, tile, budget) in [
            // one cell
            (Selection { time: None, level: None, y: slab(5, 1, 1), x: slab(7, 1, 1) }, (10, 10), t(4, 4), 1 << 20),
            // a stride larger than a tile
            (Selection { time: None, level: None, y: slab(0, 9, 3), x: slab(1, 5, 4) }, (20, 20), t(4, 4), 1 << 20),
            // partial edge tiles, two times, three levels, small bands
            (Selection { time: Some(slab(0, 1, 2)), level: Some(slab(0, 1, 3)), y: slab(0, 1, 13), x: slab(0, 1, 11) }, (13, 11), t(5, 4), 40),
            // a window across four tiles
            (Selection { time: Some(slab(1, 1, 1)), level: None, y: slab(3, 1, 6), x: slab(2, 1, 7) }, (12, 12), t(4, 4), 1 << 20),
        ] {
            covers_exactly_once(&sel, grid, tile, budget);
        }
        // The band of one cell reads one tile, the right one.
        let b: Vec<Band> = bands(&Selection { time: None, level: None, y: slab(5, 1, 1), x: slab(7, 1, 1) }, (10, 10), t(4, 4), 4, 1 << 20).collect();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].reads.len(), 1);
        assert_eq!(b[0].reads[0].tile, TileIndex { tx: 1, ty: 1 });
        assert_eq!((b[0].reads[0].rows.src.clone(), b[0].reads[0].cols.src.clone()), (1..2, 3..4));
    }

    proptest! {
        #[test]
        fn plans_cover_every_cell_exactly_once(
            ny in 1usize..40, nx in 1usize..40, th in 1usize..12, tw in 1usize..12,
            y0 in 0usize..40, x0 in 0usize..40, sy in 1usize..7, sx in 1usize..7,
            cy in 1usize..40, cx in 1usize..40, nt in 1usize..3, budget in 4usize..400,
        ) {
            let (y0, x0) = (y0 % ny, x0 % nx);
            let cy = cy.min((ny - 1 - y0) / sy + 1);
            let cx = cx.min((nx - 1 - x0) / sx + 1);
            let sel = Selection { time: Some(slab(0, 1, nt)), level: None, y: slab(y0, sy, cy), x: slab(x0, sx, cx) };
            covers_exactly_once(&sel, (ny, nx), TileShape::new(tw, th).unwrap(), budget);
        }
    }
}
