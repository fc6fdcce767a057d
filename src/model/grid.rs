//! Grid geometry and tile arithmetic.
//!
//! A grid is `nx` columns and `ny` rows whose coordinates are kept exactly
//! as the source gave them (bit for bit): any strictly monotonic axis is a
//! grid axis, whether regular, Gaussian or stretched, because the tile
//! geometry works on indices and never on coordinate values. Latitude may run
//! either way and is kept as it is. Tiles cut the grid into windows of
//! `tile_w x tile_h` cells; tile `(tx, ty)` covers columns
//! `tx*tile_w .. min((tx+1)*tile_w, nx)` and rows likewise, so edge tiles are
//! smaller.

use super::attr::{Attribute, Attributes};
use super::dtype::DataType;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;

/// How far a coordinate may stray from the regular spacing, as a fraction of
/// one cell: 1%. Float32 coordinates of a 0.01-degree grid near 360 carry
/// rounding of about 0.3% of a cell; real irregular grids (Gaussian
/// latitudes, stretched model grids) differ by far more.
pub const REGULAR_TOLERANCE: f64 = 0.01;

/// One coordinate axis as the source declared it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    pub name: String,
    pub dtype: DataType,
    pub values: Vec<f64>,
    #[serde(default)]
    pub attrs: Vec<Attribute>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AxisError {
    #[error("axis {0} is empty")]
    Empty(String),
    #[error("axis {name} is not regularly spaced: value {index} is {got} but a regular axis from {first} with step {step} would have {expected} (tolerance {tol}% of a cell)", tol = REGULAR_TOLERANCE * 100.0)]
    Irregular { name: String, index: usize, got: f64, expected: f64, first: f64, step: f64 },
    #[error("axis {name} has repeated or non-finite coordinates")]
    Degenerate { name: String },
    #[error("axis {name} is not monotonic: value {index} ({got}) does not continue the direction of the values before it")]
    NotMonotonic { name: String, index: usize, got: f64 },
}

impl Axis {
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Start and step of a regular axis, or why it is not one.
    pub fn regular(&self) -> Result<(f64, f64), AxisError> {
        let n = self.values.len();
        let first = *self.values.first().ok_or_else(|| AxisError::Empty(self.name.clone()))?;
        if n == 1 {
            return Ok((first, 1.0));
        }
        let last = self.values[n - 1];
        let step = (last - first) / (n - 1) as f64;
        if !step.is_finite() || step == 0.0 {
            return Err(AxisError::Degenerate { name: self.name.clone() });
        }
        for (i, &v) in self.values.iter().enumerate() {
            let expected = first + step * i as f64;
            if !((v - expected).abs() <= REGULAR_TOLERANCE * step.abs()) {
                return Err(AxisError::Irregular {
                    name: self.name.clone(),
                    index: i,
                    got: v,
                    expected,
                    first,
                    step,
                });
            }
        }
        Ok((first, step))
    }

    /// Checks the axis can index a grid: finite, strictly increasing or
    /// strictly decreasing.
    pub fn check_monotonic(&self) -> Result<(), AxisError> {
        if self.values.is_empty() {
            return Err(AxisError::Empty(self.name.clone()));
        }
        if self.values.iter().any(|v| !v.is_finite()) {
            return Err(AxisError::Degenerate { name: self.name.clone() });
        }
        if self.values.len() < 2 {
            return Ok(());
        }
        let up = self.values[1] > self.values[0];
        for (i, w) in self.values.windows(2).enumerate() {
            let ok = if up { w[1] > w[0] } else { w[1] < w[0] };
            if !ok {
                if w[1] == w[0] {
                    return Err(AxisError::Degenerate { name: self.name.clone() });
                }
                return Err(AxisError::NotMonotonic { name: self.name.clone(), index: i + 1, got: w[1] });
            }
        }
        Ok(())
    }

    /// True for a strictly monotonic axis.
    pub fn is_monotonic(&self) -> bool {
        self.check_monotonic().is_ok()
    }

    /// The first value and the mean spacing, for people and for the
    /// catalogue's summary columns (never for geometry).
    pub fn span(&self) -> (f64, f64) {
        let n = self.values.len();
        let first = self.values.first().copied().unwrap_or(0.0);
        let last = self.values.last().copied().unwrap_or(first);
        (first, if n > 1 { (last - first) / (n - 1) as f64 } else { 1.0 })
    }

    /// The width of cell `i`: the distance to its nearer neighbour.
    fn cell_width(&self, i: usize) -> f64 {
        let v = &self.values;
        let left = if i > 0 { (v[i] - v[i - 1]).abs() } else { f64::INFINITY };
        let right = if i + 1 < v.len() { (v[i + 1] - v[i]).abs() } else { f64::INFINITY };
        let w = left.min(right);
        if w.is_finite() { w } else { 1.0 }
    }

    /// The same axis within tolerance (1% of the local cell width), same
    /// name and length. A later source may carry the same coordinates in
    /// another precision; the dataset keeps the first source's values.
    pub fn difference(&self, other: &Axis) -> Option<String> {
        if self.name != other.name {
            return Some(format!("axis is named {} in the dataset but {} here", self.name, other.name));
        }
        if self.len() != other.len() {
            return Some(format!(
                "{} has {} points in the dataset but {} here",
                self.name,
                self.len(),
                other.len()
            ));
        }
        for (i, (a, b)) in self.values.iter().zip(&other.values).enumerate() {
            if !((a - b).abs() <= REGULAR_TOLERANCE * self.cell_width(i)) {
                return Some(format!("{}[{i}] is {a} in the dataset but {b} here", self.name));
            }
        }
        None
    }
}

/// A CF grid mapping variable (name and attributes) for projected data.
/// Its value carries no meaning in CF; the source's type and value are
/// kept when numeric (an `int crs` of 0 otherwise).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridMapping {
    pub name: String,
    pub attrs: Vec<Attribute>,
    #[serde(default = "int_type")]
    pub dtype: DataType,
    #[serde(default)]
    pub value: f64,
}

fn int_type() -> DataType {
    DataType::I32
}

/// Coordinate reference system. `None` everywhere means geographic
/// latitude/longitude (EPSG:4326 assumed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Crs {
    pub epsg: Option<i32>,
    pub wkt: Option<String>,
    pub grid_mapping: Option<GridMapping>,
}

impl Crs {
    pub fn is_geographic(&self) -> bool {
        match &self.grid_mapping {
            None => self.epsg.is_none_or(|e| e == 4326),
            Some(gm) => gm.attrs.text_attr("grid_mapping_name") == Some("latitude_longitude"),
        }
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(e) = self.epsg {
            parts.push(format!("EPSG:{e}"));
        }
        if let Some(gm) = &self.grid_mapping {
            let kind = gm.attrs.text_attr("grid_mapping_name").unwrap_or("unnamed");
            parts.push(format!("grid_mapping {} ({kind})", gm.name));
        }
        if self.wkt.is_some() {
            parts.push("WKT".into());
        }
        if parts.is_empty() { "geographic (EPSG:4326 assumed)".into() } else { parts.join(", ") }
    }
}

/// The horizontal grid (and optional vertical axis) of a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub x: Axis,
    pub y: Axis,
    pub level: Option<Axis>,
    pub crs: Crs,
}

impl Grid {
    pub fn nx(&self) -> usize {
        self.x.len()
    }
    pub fn ny(&self) -> usize {
        self.y.len()
    }

    /// Checks both horizontal axes are monotonic; returns their first
    /// values and mean spacings `(x0, dx, y0, dy)` (a summary only).
    pub fn geometry(&self) -> Result<(f64, f64, f64, f64), AxisError> {
        self.x.check_monotonic()?;
        self.y.check_monotonic()?;
        let (x0, dx) = self.x.span();
        let (y0, dy) = self.y.span();
        Ok((x0, dx, y0, dy))
    }

    /// The first difference between two grids, in words, or `None`.
    pub fn difference(&self, other: &Grid) -> Option<String> {
        if let Some(d) = self.x.difference(&other.x) {
            return Some(d);
        }
        if let Some(d) = self.y.difference(&other.y) {
            return Some(d);
        }
        match (&self.level, &other.level) {
            (None, None) => {}
            (Some(a), None) => return Some(format!("the dataset has a vertical axis {} but this source has none", a.name)),
            (None, Some(b)) => return Some(format!("this source has a vertical axis {} but the dataset has none", b.name)),
            (Some(a), Some(b)) => {
                if let Some(d) = a.difference(b) {
                    return Some(d);
                }
            }
        }
        if self.crs.epsg != other.crs.epsg
            || self.crs.wkt != other.crs.wkt
            || self.crs.grid_mapping.as_ref().map(|g| &g.attrs) != other.crs.grid_mapping.as_ref().map(|g| &g.attrs)
        {
            return Some(format!("CRS is {} in the dataset but {} here", self.crs.describe(), other.crs.describe()));
        }
        None
    }

    /// The grid of every `k`-th cell from the origin, on both horizontal
    /// axes (overview level `k`).
    pub fn decimated(&self, k: usize) -> Grid {
        let pick = |a: &Axis| Axis { values: a.values.iter().copied().step_by(k.max(1)).collect(), ..a.clone() };
        Grid { x: pick(&self.x), y: pick(&self.y), ..self.clone() }
    }

    /// Number of tiles along x and y.
    pub fn tile_counts(&self, shape: TileShape) -> (usize, usize) {
        (self.nx().div_ceil(shape.w), self.ny().div_ceil(shape.h))
    }

    /// The cell window covered by a tile.
    pub fn tile_window(&self, shape: TileShape, t: TileIndex) -> Window {
        let x = t.tx * shape.w;
        let y = t.ty * shape.h;
        Window { x, y, w: shape.w.min(self.nx() - x), h: shape.h.min(self.ny() - y) }
    }

    /// Tile column and row ranges that a window touches.
    pub fn tiles_touching(&self, shape: TileShape, w: Window) -> (Range<usize>, Range<usize>) {
        if w.w == 0 || w.h == 0 {
            return (0..0, 0..0);
        }
        (w.x / shape.w..(w.x + w.w - 1) / shape.w + 1, w.y / shape.h..(w.y + w.h - 1) / shape.h + 1)
    }
}

/// Tile width and height in cells; never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileShape {
    pub w: usize,
    pub h: usize,
}

impl TileShape {
    pub const DEFAULT: TileShape = TileShape { w: 1024, h: 1024 };

    pub fn new(w: usize, h: usize) -> Result<Self, String> {
        if w == 0 || h == 0 {
            return Err(format!("tile size {w}x{h} has a zero side"));
        }
        if w > 65536 || h > 65536 {
            return Err(format!("tile size {w}x{h} is larger than 65536 on a side"));
        }
        Ok(TileShape { w, h })
    }

    /// Parses `WxH` (or a single `N` for a square tile).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("tile size {s:?} is not WIDTHxHEIGHT, e.g. 1024x1024");
        let (w, h) = match s.split_once(['x', 'X']) {
            Some((w, h)) => (w.trim().parse().map_err(|_| bad())?, h.trim().parse().map_err(|_| bad())?),
            None => {
                let n = s.trim().parse().map_err(|_| bad())?;
                (n, n)
            }
        };
        TileShape::new(w, h)
    }
}

impl fmt::Display for TileShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.w, self.h)
    }
}

/// Position of a tile in the tile grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileIndex {
    pub tx: usize,
    pub ty: usize,
}

/// Indices `start, start + stride, ..., start + (count - 1) * stride` of
/// one dimension: what a request selects along it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hyperslab {
    pub start: usize,
    pub stride: usize,
    pub count: usize,
}

impl Hyperslab {
    pub fn indices(self) -> impl Iterator<Item = usize> {
        (0..self.count).map(move |i| self.start + i * self.stride)
    }
    /// The last index selected (`start` when nothing is).
    pub fn last(self) -> usize {
        self.start + self.count.saturating_sub(1) * self.stride
    }
}

/// A rectangle of cells: columns `x..x+w`, rows `y..y+h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

impl Window {
    pub fn cells(&self) -> usize {
        self.w * self.h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(name: &str, values: Vec<f64>) -> Axis {
        Axis { name: name.into(), dtype: DataType::F64, values, attrs: vec![] }
    }

    fn grid(nx: usize, ny: usize) -> Grid {
        Grid {
            x: axis("lon", (0..nx).map(|i| i as f64 * 0.5).collect()),
            y: axis("lat", (0..ny).map(|j| 89.75 - j as f64 * 0.5).collect()),
            level: None,
            crs: Crs::default(),
        }
    }

    #[test]
    fn regular_axes_pass_and_irregular_fail() {
        let a = axis("lat", vec![10.0, 9.5, 9.0, 8.5]);
        assert_eq!(a.regular().unwrap(), (10.0, -0.5));
        // float32 rounding is tolerated
        let f: Vec<f64> = (0..3600).map(|i| (i as f32 * 0.1f32 + 0.05f32) as f64).collect();
        assert!(axis("lon", f).regular().is_ok());
        let b = axis("lat", vec![0.0, 1.0, 2.5, 3.0]);
        let err = b.regular().unwrap_err().to_string();
        assert!(err.contains("not regularly spaced") && err.contains("value 2"), "{err}");
        assert!(axis("x", vec![1.0, 1.0]).regular().is_err());
        assert!(axis("x", vec![]).regular().is_err());
    }

    #[test]
    fn monotonic_axes_pass_whatever_their_spacing() {
        // Gaussian-like and stretched axes are grid axes.
        assert!(axis("lat", vec![88.57, 86.72, 84.86, 60.0, -3.0]).check_monotonic().is_ok());
        assert!(axis("z", vec![0.0, 1.0, 3.0, 7.0, 15.0]).check_monotonic().is_ok());
        let e = axis("x", vec![0.0, 1.0, 0.5]).check_monotonic().unwrap_err().to_string();
        assert!(e.contains("not monotonic") && e.contains("value 2"), "{e}");
        assert!(axis("x", vec![0.0, 0.0]).check_monotonic().is_err());
        assert!(axis("x", vec![0.0, f64::NAN]).check_monotonic().is_err());
        assert!(axis("x", vec![]).check_monotonic().is_err());
        // Differences are judged against the local cell width.
        let a = axis("lat", vec![0.0, 1.0, 1.1, 5.0]);
        let mut b = a.clone();
        b.values[2] = 1.1005;
        assert_eq!(a.difference(&b), None);
        b.values[2] = 1.102;
        assert!(a.difference(&b).unwrap().contains("lat[2]"));
    }

    #[test]
    fn tile_windows_cover_the_grid_exactly_once() {
        for (nx, ny, w, h) in [(800, 600, 256, 256), (1, 1, 1024, 1024), (1024, 1024, 1024, 1024), (1025, 3, 1024, 2), (7, 5, 3, 2)] {
            let g = grid(nx, ny);
            let s = TileShape::new(w, h).unwrap();
            let (ntx, nty) = g.tile_counts(s);
            let mut seen = vec![0u8; nx * ny];
            for ty in 0..nty {
                for tx in 0..ntx {
                    let win = g.tile_window(s, TileIndex { tx, ty });
                    assert!(win.w > 0 && win.h > 0 && win.w <= w && win.h <= h);
                    for y in win.y..win.y + win.h {
                        for x in win.x..win.x + win.w {
                            seen[y * nx + x] += 1;
                        }
                    }
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "{nx}x{ny} / {w}x{h}");
        }
    }

    #[test]
    fn edge_tiles_are_smaller() {
        let g = grid(800, 600);
        let s = TileShape::new(256, 256).unwrap();
        assert_eq!(g.tile_counts(s), (4, 3));
        assert_eq!(g.tile_window(s, TileIndex { tx: 3, ty: 2 }), Window { x: 768, y: 512, w: 32, h: 88 });
    }

    #[test]
    fn tiles_touching_a_window() {
        let g = grid(800, 600);
        let s = TileShape::new(256, 256).unwrap();
        assert_eq!(g.tiles_touching(s, Window { x: 255, y: 0, w: 2, h: 1 }), (0..2, 0..1));
        assert_eq!(g.tiles_touching(s, Window { x: 0, y: 0, w: 800, h: 600 }), (0..4, 0..3));
        assert_eq!(g.tiles_touching(s, Window { x: 799, y: 599, w: 1, h: 1 }), (3..4, 2..3));
    }

    #[test]
    fn tile_shape_parsing() {
        assert_eq!(TileShape::parse("256x128").unwrap(), TileShape { w: 256, h: 128 });
        assert_eq!(TileShape::parse("512").unwrap(), TileShape { w: 512, h: 512 });
        assert!(TileShape::parse("0x5").is_err());
        assert!(TileShape::parse("axb").is_err());
    }

    #[test]
    fn grid_difference_names_the_axis() {
        let a = grid(10, 5);
        assert_eq!(a.difference(&a.clone()), None);
        let b = grid(11, 5);
        assert!(a.difference(&b).unwrap().contains("lon has 10 points in the dataset but 11"));
        let mut c = grid(10, 5);
        c.y.values[3] += 0.3;
        assert!(a.difference(&c).unwrap().contains("lat[3]"));
    }
}
