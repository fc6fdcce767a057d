//! From map pixels to grid cells: where each pixel centre of a requested
//! map falls in a source grid, as fractional cell indices, and how many
//! cells a pixel spans (to pick an overview level).

pub use super::approx::TOLERANCE;
use super::approx::{pixel_centres, transformed_centres};
use super::proj::{Projection, transform};

/// A grid axis: the cell-centre coordinate of index 0 and the signed
/// spacing (negative for a descending axis, such as latitudes from north
/// to south); for an irregular axis (a Gaussian grid's latitudes, a
/// stretched model axis) also every cell centre, strictly monotonic.
#[derive(Debug, Clone, PartialEq)]
pub struct GridAxis {
    pub first: f64,
    pub step: f64,
    pub len: usize,
    /// Every cell centre, when the axis is not regular.
    pub centres: Option<std::sync::Arc<[f64]>>,
}

impl GridAxis {
    /// A regular axis.
    pub fn regular(first: f64, step: f64, len: usize) -> GridAxis {
        GridAxis { first, step, len, centres: None }
    }

    /// An axis of any strictly monotonic cell centres (`None` for fewer
    /// than two); between two centres, indices are interpolated linearly,
    /// so the nearest centre is the nearest index.
    pub fn irregular(centres: &[f64]) -> Option<GridAxis> {
        let n = centres.len();
        if n < 2 {
            return None;
        }
        let step = (centres[n - 1] - centres[0]) / (n - 1) as f64;
        Some(GridAxis { first: centres[0], step, len: n, centres: Some(centres.into()) })
    }

    /// The fractional index of coordinate `c` (0.0 at `first`), or `None`
    /// outside the axis' cells (below -0.5 or above `len - 0.5`) or on an
    /// axis that has no cells or no usable spacing.
    pub fn index_of(&self, c: f64) -> Option<f64> {
        if self.len == 0 || self.step == 0.0 || !self.step.is_finite() || !self.first.is_finite() {
            return None;
        }
        let i = match &self.centres {
            None => (c - self.first) / self.step,
            Some(v) => Self::interpolated(v, c)?,
        };
        (-0.5..=self.len as f64 - 0.5).contains(&i).then_some(i)
    }

    /// The fractional index of `c` among irregular centres: linear between
    /// the two around it, and by the end spacing beyond either end.
    fn interpolated(v: &[f64], c: f64) -> Option<f64> {
        let n = v.len();
        if !c.is_finite() || n < 2 {
            return None;
        }
        let ascending = v[n - 1] > v[0];
        // Centres on c's low side (in index order).
        let k = if ascending { v.partition_point(|&x| x <= c) } else { v.partition_point(|&x| x >= c) };
        let a = k.clamp(1, n - 1) - 1;
        Some(a as f64 + (c - v[a]) / (v[a + 1] - v[a]))
    }

    /// The index of the cell that contains fractional index `i` (nearest
    /// neighbour), kept within the axis even at its outer edges.
    pub fn nearest(&self, i: f64) -> usize {
        // (i + 0.5) truncated rounds as `round` does for i >= -0.5, which
        // is all `index_of` gives, at a fraction of its cost (a map calls
        // this per pixel).
        (((i + 0.5).max(0.0)) as usize).min(self.len.saturating_sub(1))
    }

    /// The outer edges of the axis' lowest and highest cells.
    pub fn edges(&self) -> (f64, f64) {
        let (a, b) = match &self.centres {
            Some(v) if v.len() >= 2 => {
                let n = v.len();
                (v[0] - (v[1] - v[0]) / 2.0, v[n - 1] + (v[n - 1] - v[n - 2]) / 2.0)
            }
            _ => {
                let last = self.first + self.step * (self.len as f64 - 1.0);
                (self.first - self.step / 2.0, last + self.step / 2.0)
            }
        };
        (a.min(b), a.max(b))
    }

    /// The outer edge of the axis' lowest cell.
    fn low_edge(&self) -> f64 {
        self.edges().0
    }
}

/// For each pixel of a `width` x `height` map of `bbox` (`[minx, miny,
/// maxx, maxy]`, east/north order, in the `target` CRS), the fractional
/// (column, row) in the source grid whose axes are `x` and `y` in the
/// `source` CRS, or `None` where the pixel centre is outside the grid or
/// cannot be transformed. Row-major, row 0 at the top (`maxy`: north up);
/// pixel centres at `minx + (i + 0.5) * dx` and `maxy - (j + 0.5) * dy`.
///
/// For a geographic source, longitudes are wrapped into the x axis'
/// 360-degree window (a 0..360 grid answers a request in -180..180, and
/// the other way round), and latitudes beyond ±90 fall outside.
///
/// Between two CRSs, pixel centres are transformed exactly only where
/// interpolation would not do: a position may be off by a small fraction
/// of a pixel, [`TOLERANCE`], not more.
pub fn pixel_cells(
    target: &Projection,
    bbox: [f64; 4],
    width: usize,
    height: usize,
    source: &Projection,
    x: &GridAxis,
    y: &GridAxis,
) -> Vec<Option<(f64, f64)>> {
    let points = if target.same_as(source) {
        pixel_centres(bbox, width, height)
    } else {
        transformed_centres(target, source, bbox, width, height)
    };
    cells_of(points, source, x, y)
}

/// The cells of a map whose pixel columns and rows fall on grid columns
/// and rows independently.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisCells {
    /// The fractional grid column of each pixel column (`None` outside).
    pub cols: Vec<Option<f64>>,
    /// The fractional grid row of each pixel row (`None` outside).
    pub rows: Vec<Option<f64>>,
}

/// Longitude-latitude and Mercator systems: a meridian is a straight
/// column and a parallel a straight row in both.
fn cylindrical(p: &Projection) -> bool {
    p.is_geographic() || p.definition().split_whitespace().any(|t| t == "+proj=merc")
}

/// What [`pixel_cells`] gives, as one column index per pixel column and
/// one row index per pixel row, when both CRSs are longitude-latitude or
/// Mercator (the usual maps: a geographic grid drawn in EPSG:4326, CRS:84
/// or EPSG:3857); `None` otherwise. Exact (no interpolation), and
/// `width + height` transforms instead of `width * height`.
pub fn axis_cells(target: &Projection, bbox: [f64; 4], width: usize, height: usize, source: &Projection, x: &GridAxis, y: &GridAxis) -> Option<AxisCells> {
    if !(cylindrical(target) && cylindrical(source)) || width == 0 || height == 0 {
        return None;
    }
    let (dx, dy) = ((bbox[2] - bbox[0]) / width as f64, (bbox[3] - bbox[1]) / height as f64);
    // Columns along the equator, rows along the prime meridian: (0, 0)
    // is on both in every such system without false origins, and only
    // the one coordinate of each is used.
    let mut cols: Vec<(f64, f64)> = (0..width).map(|i| (bbox[0] + (i as f64 + 0.5) * dx, 0.0)).collect();
    let mut rows: Vec<(f64, f64)> = (0..height).map(|j| (0.0, bbox[3] - (j as f64 + 0.5) * dy)).collect();
    if !target.same_as(source) {
        transform(target, source, &mut cols);
        transform(target, source, &mut rows);
    }
    let geographic = source.is_geographic();
    let west = x.low_edge();
    let cols = cols
        .into_iter()
        .map(|(px, _)| x.index_of(if geographic && px.is_finite() { wrap_longitude(px, west) } else { px }))
        .collect();
    let rows = rows
        .into_iter()
        .map(|(_, py)| if geographic && !(-90.0..=90.0).contains(&py) { None } else { y.index_of(py) })
        .collect();
    Some(AxisCells { cols, rows })
}

/// [`decimation`] for a map of [`AxisCells`]: the median step between
/// adjacent pixel columns and between adjacent pixel rows, the smaller.
pub fn axis_decimation(cells: &AxisCells) -> f64 {
    let steps = |v: &[Option<f64>]| median(v.windows(2).filter_map(|w| Some((w[1]? - w[0]?).abs())).collect());
    match (steps(&cells.cols), steps(&cells.rows)) {
        (Some(a), Some(d)) => a.min(d),
        (Some(m), None) | (None, Some(m)) => m,
        (None, None) => 1.0,
    }
}

/// The fractional cells of points in the source CRS.
fn cells_of(
    points: Vec<(f64, f64)>,
    source: &Projection,
    x: &GridAxis,
    y: &GridAxis,
) -> Vec<Option<(f64, f64)>> {
    let geographic = source.is_geographic();
    let west = x.low_edge();
    points
        .into_iter()
        .map(|(px, py)| {
            let px = if geographic {
                if !(-90.0..=90.0).contains(&py) {
                    return None;
                }
                wrap_longitude(px, west)
            } else {
                px
            };
            Some((x.index_of(px)?, y.index_of(py)?))
        })
        .collect()
}

/// `lon` moved by whole turns into `[west, west + 360)`; one turn or none
/// without a division, as nearly every longitude needs.
fn wrap_longitude(lon: f64, west: f64) -> f64 {
    if lon >= west && lon < west + 360.0 {
        lon
    } else if lon < west && lon + 360.0 >= west {
        lon + 360.0
    } else if lon >= west + 360.0 && lon - 360.0 < west + 360.0 {
        lon - 360.0
    } else {
        west + (lon - west).rem_euclid(360.0)
    }
}

/// How many source cells one map pixel spans: the median distance, in
/// cells, between horizontally adjacent pixels and between vertically
/// adjacent ones, the smaller of the two (so that a grid thinned by this
/// factor still has a cell for every pixel along both axes). The distance
/// counts both index directions, as a rotated view moves along both.
/// Measured on a lattice of some 16,000 pixels, which is plenty for a
/// median. 1.0 when no two adjacent pixels are in the grid.
pub fn decimation(cells: &[Option<(f64, f64)>], width: usize, height: usize) -> f64 {
    if width == 0 || width.checked_mul(height).is_none_or(|n| cells.len() < n) {
        return 1.0;
    }
    let stride = ((width * height / 16_384) as f64).sqrt().max(1.0) as usize;
    let at = |i: usize, j: usize| cells[j * width + i];
    let mut across = Vec::new();
    let mut down = Vec::new();
    for j in (0..height).step_by(stride) {
        for i in (0..width).step_by(stride) {
            across.extend(
                (i + 1 < width)
                    .then(|| distance(at(i, j), at(i + 1, j)))
                    .flatten(),
            );
            down.extend(
                (j + 1 < height)
                    .then(|| distance(at(i, j), at(i, j + 1)))
                    .flatten(),
            );
        }
    }
    match (median(across), median(down)) {
        (Some(a), Some(d)) => a.min(d),
        (Some(m), None) | (None, Some(m)) => m,
        (None, None) => 1.0,
    }
}

fn distance(a: Option<(f64, f64)>, b: Option<(f64, f64)>) -> Option<f64> {
    let ((c0, r0), (c1, r1)) = (a?, b?);
    Some((c1 - c0).hypot(r1 - r0))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    Some(*m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Gaussian-like axis: indices interpolate between centres, the
    /// nearest centre is the rounded index, and the edges are half a
    /// spacing out.
    #[test]
    fn irregular_axes_index_between_their_centres() {
        let lat = [80.0, 60.0, 45.0, 35.0, 30.0, 28.0];
        let a = GridAxis::irregular(&lat).unwrap();
        assert_eq!(a.index_of(60.0), Some(1.0));
        assert_eq!(a.index_of(40.0), Some(2.5));
        assert_eq!(a.nearest(a.index_of(39.0).unwrap()), 3, "39 is nearer 35 than 45");
        assert_eq!(a.nearest(a.index_of(41.0).unwrap()), 2, "41 is nearer 45 than 35");
        assert_eq!(a.nearest(a.index_of(52.0).unwrap()), 2, "52 is nearer 45 than 60");
        assert_eq!(a.edges(), (27.0, 90.0));
        assert!(a.index_of(90.5).is_none() && a.index_of(26.9).is_none());
        assert_eq!(a.index_of(89.0), Some(-0.45));
        let up: Vec<f64> = lat.iter().rev().copied().collect();
        let b = GridAxis::irregular(&up).unwrap();
        assert_eq!(b.index_of(40.0), Some(2.5));
        assert!(GridAxis::irregular(&[1.0]).is_none());
    }

    /// The separable shortcut gives what the general path gives, pixel for
    /// pixel, for the maps it takes, and declines the others.
    #[test]
    fn axis_cells_agree_with_pixel_cells() {
        let (x, y) = quarter_degree();
        let geo = crs("EPSG:4326");
        let m = 20_037_508.342_789_244;
        for (code, bbox, w, h) in [
            ("CRS:84", [-180.0, -90.0, 180.0, 90.0], 360, 180),
            ("EPSG:4326", [100.0, -20.0, 260.0, 75.0], 200, 90),
            ("EPSG:3857", [-m, -m, m, m], 256, 256),
            ("EPSG:3857", [-m / 2.0, 0.0, 0.0, m / 2.0], 64, 64),
        ] {
            let target = crs(code);
            let axes = axis_cells(&target, bbox, w, h, &geo, &x, &y).expect("separable");
            let all = pixel_cells(&target, bbox, w, h, &geo, &x, &y);
            for j in 0..h {
                for i in 0..w {
                    let want = all[j * w + i];
                    let got = axes.cols[i].zip(axes.rows[j]);
                    // The general path interpolates within a quarter pixel.
                    let step = |v: &[Option<f64>], k: usize| {
                        let n = v.len();
                        let (a, b) = if k + 1 < n { (k, k + 1) } else { (k.saturating_sub(1), k) };
                        v[a].zip(v[b]).map_or(1.0, |(p, q)| (q - p).abs().max(1e-9))
                    };
                    let (tc, tr) = (0.26 * step(&axes.cols, i), 0.26 * step(&axes.rows, j));
                    match (got, want) {
                        (Some(a), Some(b)) => assert!((a.0 - b.0).abs() <= tc && (a.1 - b.1).abs() <= tr, "{code} {i},{j}: {a:?} {b:?}"),
                        (None, None) => {}
                        other => panic!("{code} {i},{j}: {other:?}"),
                    }
                }
            }
        }
        assert!(axis_cells(&crs("EPSG:3413"), [-1e6, -1e6, 1e6, 1e6], 8, 8, &geo, &x, &y).is_none());
    }

    fn crs(code: &str) -> Projection {
        Projection::from_code(code).unwrap()
    }

    /// A global 0.25-degree grid: longitudes 0.125..359.875, latitudes
    /// from 89.875 down to -89.875.
    fn quarter_degree() -> (GridAxis, GridAxis) {
        (
            GridAxis::regular(0.125, 0.25, 1440),
            GridAxis::regular(89.875, -0.25, 720),
        )
    }

    /// NSIDC's 25 km polar stereographic north grid (EPSG:3413), 304 x 448
    /// cells, y descending.
    fn nsidc() -> (GridAxis, GridAxis) {
        (
            GridAxis::regular(-3_850_000.0 + 12_500.0, 25_000.0, 304),
            GridAxis::regular(5_850_000.0 - 12_500.0, -25_000.0, 448),
        )
    }

    fn close(a: Option<(f64, f64)>, b: (f64, f64), tol: f64) -> bool {
        a.is_some_and(|a| (a.0 - b.0).abs() <= tol && (a.1 - b.1).abs() <= tol)
    }

    #[test]
    fn axis_indices_cover_half_a_cell_beyond_the_centres() {
        let ax = GridAxis::regular(10.0, -2.0, 3);
        assert_eq!(ax.index_of(10.0), Some(0.0));
        assert_eq!(ax.index_of(6.0), Some(2.0));
        assert_eq!(ax.index_of(11.0), Some(-0.5));
        assert_eq!(ax.index_of(5.0), Some(2.5));
        assert_eq!(ax.index_of(4.9), None);
        assert_eq!(ax.index_of(f64::NAN), None);
        assert_eq!(ax.nearest(-0.5), 0);
        assert_eq!(ax.nearest(2.5), 2);
        assert_eq!(ax.nearest(1.4), 1);
        for broken in [
            GridAxis::regular(0.0, 0.0, 3),
            GridAxis::regular(0.0, 1.0, 0),
        ] {
            assert_eq!(broken.index_of(0.0), None);
        }
        assert_eq!(
            GridAxis::regular(0.0, 1.0, 0)
            .nearest(3.0),
            0
        );
    }

    #[test]
    fn a_global_grid_in_epsg_4326_is_north_up_and_wrapped() {
        let (x, y) = quarter_degree();
        let wgs84 = crs("EPSG:4326");
        let cells = pixel_cells(
            &wgs84,
            [-180.0, -90.0, 180.0, 90.0],
            720,
            360,
            &wgs84,
            &x,
            &y,
        );
        assert_eq!(cells.len(), 720 * 360);
        assert!(cells.iter().all(Option::is_some));
        // Top left pixel: lon -179.75 (= 180.25), lat 89.75.
        assert!(close(cells[0], (720.5, 0.5), 1e-9), "{:?}", cells[0]);
        // Bottom right: lon 179.75, lat -89.75.
        assert!(
            close(cells[720 * 360 - 1], (718.5, 718.5), 1e-9),
            "{:?}",
            cells[720 * 360 - 1]
        );
        assert!((decimation(&cells, 720, 360) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_global_grid_in_web_mercator_is_north_up() {
        let (x, y) = quarter_degree();
        let half = 20_037_508.342_789_244;
        let cells = pixel_cells(
            &crs("EPSG:3857"),
            [-half, -half, half, half],
            256,
            256,
            &crs("EPSG:4326"),
            &x,
            &y,
        );
        assert!(cells.iter().all(Option::is_some));
        let top = cells[128].unwrap();
        let bottom = cells[255 * 256 + 128].unwrap();
        assert!(top.1 < 25.0 && bottom.1 > 695.0, "{top:?} {bottom:?}");
        // Pixel column 128 starts at x = 0: lon 0.70 degrees, column 2.3.
        assert!((top.0 - 2.3125).abs() < 1e-6, "{top:?}");
        // Rows grow southwards, and faster near the poles.
        let rows: Vec<f64> = (0..256).map(|j| cells[j * 256].unwrap().1).collect();
        assert!(rows.windows(2).all(|w| w[1] > w[0]));
        assert!(rows[1] - rows[0] < rows[128] - rows[127]);
    }

    #[test]
    fn longitudes_wrap_both_ways() {
        let wgs84 = crs("EPSG:4326");
        let lat = GridAxis::regular(0.5, 1.0, 1);
        // A -180..180 grid answers a request in 0..360.
        let west = GridAxis::regular(-179.5, 1.0, 360);
        let cells = pixel_cells(&wgs84, [179.0, 0.0, 183.0, 1.0], 4, 1, &wgs84, &west, &lat);
        let cols: Vec<f64> = cells.iter().map(|c| c.unwrap().0).collect();
        assert_eq!(cols, [359.0, 0.0, 1.0, 2.0]);
        // A regional 0..360 grid (180..300 E) answers -180..180, and is
        // outside it elsewhere.
        let pacific = GridAxis::regular(180.5, 1.0, 120);
        let cells = pixel_cells(
            &wgs84,
            [-101.0, 0.0, -59.0, 1.0],
            42,
            1,
            &wgs84,
            &pacific,
            &lat,
        );
        assert_eq!(cells[0].unwrap().0, 79.0);
        assert_eq!(cells[40], Some((119.0, 0.0)));
        assert_eq!(cells[41], None);
        // CRS:84 is the same system as EPSG:4326, no transform needed.
        let cells = pixel_cells(
            &crs("CRS:84"),
            [-101.0, 0.0, -100.0, 1.0],
            1,
            1,
            &wgs84,
            &pacific,
            &lat,
        );
        assert_eq!(cells[0].unwrap().0, 79.0);
    }

    #[test]
    fn longitudes_wrap_by_any_number_of_turns() {
        for (lon, west, wrapped) in [
            (10.0, 0.0, 10.0),
            (-10.0, 0.0, 350.0),
            (370.0, 0.0, 10.0),
            (-730.0, 0.0, 350.0),
            (1090.0, -180.0, 10.0),
        ] {
            assert_eq!(wrap_longitude(lon, west), wrapped, "{lon}");
        }
        assert_eq!(wrap_longitude(360.0, 0.0), 0.0);
        assert_eq!(wrap_longitude(180.0, -180.0), -180.0);
        assert!(wrap_longitude(f64::NAN, 0.0).is_nan());
    }

    #[test]
    fn latitudes_beyond_the_poles_are_outside() {
        let (x, y) = quarter_degree();
        let wgs84 = crs("EPSG:4326");
        let cells = pixel_cells(&wgs84, [0.0, -100.0, 10.0, 100.0], 1, 20, &wgs84, &x, &y);
        assert_eq!(cells[0], None);
        assert_eq!(cells[19], None);
        assert!(cells[1..19].iter().all(Option::is_some));
    }

    #[test]
    fn a_polar_grid_in_its_own_crs_maps_pixel_to_cell() {
        let (x, y) = nsidc();
        let polar = crs("EPSG:3413");
        let bbox = [-3_850_000.0, -5_350_000.0, 3_750_000.0, 5_850_000.0];
        let cells = pixel_cells(&polar, bbox, 304, 448, &polar, &x, &y);
        for (j, i) in [(0, 0), (0, 303), (447, 0), (200, 100)] {
            assert!(
                close(cells[j * 304 + i], (i as f64, j as f64), 1e-9),
                "{j} {i}: {:?}",
                cells[j * 304 + i]
            );
        }
        assert!((decimation(&cells, 304, 448) - 1.0).abs() < 1e-9);
        // Half the size: two cells a pixel.
        let half = pixel_cells(&polar, bbox, 152, 224, &polar, &x, &y);
        assert!((decimation(&half, 152, 224) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_polar_grid_seen_from_epsg_4326() {
        let (x, y) = nsidc();
        // One-degree pixels whose centres fall on whole degrees.
        let cells = pixel_cells(
            &crs("EPSG:4326"),
            [-180.5, 29.5, 179.5, 90.5],
            360,
            61,
            &crs("EPSG:3413"),
            &x,
            &y,
        );
        let at = |lon: i32, lat: i32| cells[(90 - lat) as usize * 360 + (lon + 180) as usize];
        // Pixels are 1 degree, 38 by 111 km at 70N: interpolation may
        // move positions by a quarter of that, and does by about 2 km, a
        // tenth of a 25 km cell.
        let tolerance = 0.1;
        // The pole is the centre of the grid, (153.5, 233.5).
        assert!(
            close(at(0, 90), (153.5, 233.5), tolerance),
            "{:?}",
            at(0, 90)
        );
        // lat 70 on the -45 meridian is straight "down" from the pole:
        // y = -2187927.65 m (pyproj).
        let row = (-2_187_927.649_279_021 - 5_837_500.0) / -25_000.0;
        assert!(
            close(at(-45, 70), (153.5, row), tolerance),
            "{:?}",
            at(-45, 70)
        );
        // The whole 60N circle is inside the grid, the 30N circle is not.
        assert!((-180..180).all(|lon| at(lon, 60).is_some()));
        assert!((-180..180).any(|lon| at(lon, 30).is_none()));
    }

    #[test]
    fn a_polar_view_of_a_geographic_grid_has_a_cell_everywhere() {
        let (x, y) = quarter_degree();
        let bbox = [-4_000_000.0, -4_000_000.0, 4_000_000.0, 4_000_000.0];
        let cells = pixel_cells(&crs("EPSG:3413"), bbox, 1024, 512, &crs("EPSG:4326"), &x, &y);
        assert!(cells.iter().all(Option::is_some));
    }

    #[test]
    fn decimation_ignores_holes_and_seams() {
        let row = [
            Some((0.0, 0.0)),
            Some((3.0, 0.0)),
            None,
            Some((9.0, 0.0)),
            Some((1000.0, 0.0)),
            Some((1003.0, 0.0)),
        ];
        assert_eq!(decimation(&row, 6, 1), 3.0);
        assert_eq!(decimation(&[None, None], 2, 1), 1.0);
        assert_eq!(decimation(&[], 0, 0), 1.0);
        assert_eq!(decimation(&[Some((0.0, 0.0))], 4, 4), 1.0);
    }
}
