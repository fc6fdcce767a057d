//! A map's pixel centres in another CRS, transformed exactly only where
//! interpolation would not do, the way GDAL's approximate transformer
//! works: proj4rs takes 50-300 ns a point, and a 1024x512 map from polar
//! stereographic to longitude/latitude would take 150 ms point by point.
//!
//! The map is cut into 32x32 blocks. A block's corners, edge middles and
//! centre are transformed exactly; if interpolating between the corners
//! predicts the other five within half the tolerance (the error between
//! probes, unseen, may be larger than at them), the rest of the block is
//! interpolated. Otherwise the block is quartered and tried again, down
//! to blocks of 16 pixels, which are transformed exactly. Into a
//! geographic CRS, a block of the last size tried (8x8) that fails in
//! longitude/latitude (near a pole, across the antimeridian) is tried
//! again as unit vectors on the sphere, which have neither singularity.
//! A projection's edge, or a point that fails, leaves exact transforms
//! along it. A pixel is transformed at most once: blocks share their
//! probes.

use super::proj::{Projection, transform};

/// The error allowed, in pixels, of a position interpolated rather than
/// transformed: a quarter of a pixel. Where cells are larger than pixels,
/// a cell's border moves by no more than that; where they are smaller,
/// the sample moves within its pixel. Either way it does not show.
pub const TOLERANCE: f64 = 0.25;

/// The centres of a `width` x `height` map of `bbox` (`[minx, miny, maxx,
/// maxy]`), row-major from the top.
pub(super) fn pixel_centres(bbox: [f64; 4], width: usize, height: usize) -> Vec<(f64, f64)> {
    let pixels = Pixels::new(bbox, width, height);
    pixels.all().map(|(i, j)| pixels.centre(i, j)).collect()
}

/// The map's pixel centres transformed from `from` to `to`, within
/// [`TOLERANCE`] of exact; (NaN, NaN) where they cannot be transformed.
pub(super) fn transformed_centres(
    from: &Projection,
    to: &Projection,
    bbox: [f64; 4],
    width: usize,
    height: usize,
) -> Vec<(f64, f64)> {
    let pixels = Pixels::new(bbox, width, height);
    let mut run = Interpolated {
        from,
        to,
        pixels,
        out: vec![(f64::NAN, f64::NAN); width * height],
        exact: vec![false; width * height],
    };
    for j0 in (0..height).step_by(BLOCK) {
        for i0 in (0..width).step_by(BLOCK) {
            run.block(Block {
                i0,
                j0,
                i1: (i0 + BLOCK).min(width),
                j1: (j0 + BLOCK).min(height),
            });
        }
    }
    run.out
}

/// Side of the first blocks tried.
const BLOCK: usize = 32;
/// Blocks of this many pixels or fewer are transformed exactly.
const SMALL: usize = 16;

/// The map's pixel lattice.
#[derive(Debug, Clone, Copy)]
struct Pixels {
    minx: f64,
    maxy: f64,
    dx: f64,
    dy: f64,
    width: usize,
    height: usize,
}

impl Pixels {
    fn new([minx, miny, maxx, maxy]: [f64; 4], width: usize, height: usize) -> Pixels {
        Pixels {
            minx,
            maxy,
            dx: (maxx - minx) / width as f64,
            dy: (maxy - miny) / height as f64,
            width,
            height,
        }
    }

    fn centre(&self, i: usize, j: usize) -> (f64, f64) {
        (
            self.minx + (i as f64 + 0.5) * self.dx,
            self.maxy - (j as f64 + 0.5) * self.dy,
        )
    }

    fn all(&self) -> impl Iterator<Item = (usize, usize)> {
        Block {
            i0: 0,
            j0: 0,
            i1: self.width,
            j1: self.height,
        }
        .pixels()
    }
}

/// A rectangle of pixels: columns `i0..i1`, rows `j0..j1`.
#[derive(Debug, Clone, Copy)]
struct Block {
    i0: usize,
    j0: usize,
    i1: usize,
    j1: usize,
}

impl Block {
    fn len(&self) -> usize {
        (self.i1 - self.i0) * (self.j1 - self.j0)
    }

    /// Its pixels' (column, row), row-major.
    fn pixels(self) -> impl Iterator<Item = (usize, usize)> {
        (self.j0..self.j1).flat_map(move |j| (self.i0..self.i1).map(move |i| (i, j)))
    }

    /// The columns and rows of its corners and middle lines.
    fn probes(&self) -> ([usize; 3], [usize; 3]) {
        let (i1, j1) = (self.i1 - 1, self.j1 - 1);
        (
            [self.i0, (self.i0 + i1) / 2, i1],
            [self.j0, (self.j0 + j1) / 2, j1],
        )
    }

    /// Where pixel (i, j) lies between the block's outer pixel centres,
    /// 0 to 1 along each axis.
    fn fraction(&self, i: usize, j: usize) -> (f64, f64) {
        let span = |lo: usize, hi: usize, k: usize| (k - lo) as f64 / (hi - 1 - lo) as f64;
        (span(self.i0, self.i1, i), span(self.j0, self.j1, j))
    }

    /// Pixel steps across and down, as fractions of the block.
    fn steps(&self) -> (f64, f64) {
        (
            1.0 / (self.i1 - self.i0 - 1) as f64,
            1.0 / (self.j1 - self.j0 - 1) as f64,
        )
    }

    /// The four quarters, split after the middle lines.
    fn quarters(&self) -> [Block; 4] {
        let ([_, im, _], [_, jm, _]) = self.probes();
        let (im, jm) = (im + 1, jm + 1);
        [
            Block {
                i0: self.i0,
                j0: self.j0,
                i1: im,
                j1: jm,
            },
            Block {
                i0: im,
                j0: self.j0,
                i1: self.i1,
                j1: jm,
            },
            Block {
                i0: self.i0,
                j0: jm,
                i1: im,
                j1: self.j1,
            },
            Block {
                i0: im,
                j0: jm,
                i1: self.i1,
                j1: self.j1,
            },
        ]
    }
}

/// How a block whose probes fit is filled in: from its corners (top left,
/// top right, bottom left, bottom right) in the target CRS's own
/// coordinates, or as unit vectors on the sphere.
enum Fit {
    Plane([[f64; 2]; 4]),
    Sphere([[f64; 3]; 4]),
}

/// The work: positions so far and which of them are exact.
struct Interpolated<'a> {
    from: &'a Projection,
    to: &'a Projection,
    pixels: Pixels,
    out: Vec<(f64, f64)>,
    exact: Vec<bool>,
}

impl Interpolated<'_> {
    fn block(&mut self, b: Block) {
        if b.len() <= SMALL || b.i1 - b.i0 < 3 || b.j1 - b.j0 < 3 {
            return self.transform_exactly(b.pixels());
        }
        let (is, js) = b.probes();
        self.transform_exactly(js.iter().flat_map(|&j| is.iter().map(move |&i| (i, j))));
        let probes: [[f64; 2]; 9] = std::array::from_fn(|k| {
            let (x, y) = self.out[self.index(is[k % 3], js[k / 3])];
            [x, y]
        });
        let at: [(f64, f64); 9] = std::array::from_fn(|k| b.fraction(is[k % 3], js[k / 3]));
        match self.fit(b, &probes, &at) {
            Some(fit) => self.fill(b, fit),
            None => b.quarters().into_iter().for_each(|q| self.block(q)),
        }
    }

    /// How the probes (at fractions `at` of the block) can be
    /// interpolated, if they can.
    fn fit(&self, b: Block, probes: &[[f64; 2]; 9], at: &[(f64, f64); 9]) -> Option<Fit> {
        if probes.iter().flatten().any(|v| !v.is_finite()) {
            return None;
        }
        let middles = [1, 3, 4, 5, 7];
        let corners = [probes[0], probes[2], probes[6], probes[8]];
        let size = PixelSize::of(corners, b.steps());
        if middles
            .iter()
            .all(|&k| size.pixels(sub(bilinear(corners, at[k]), probes[k])) <= TOLERANCE / 2.0)
        {
            return Some(Fit::Plane(corners));
        }
        // Unit vectors cost two arc tangents a pixel, more than a plane
        // fit on quarter blocks: they are the last resort before exact.
        if !self.to.is_geographic() || b.len() > 4 * SMALL {
            return None;
        }
        let units = probes.map(unit_vector);
        let corners = [units[0], units[2], units[6], units[8]];
        let step = sphere_step(corners, b.steps());
        let close = |k: usize| {
            norm(sub(normalised(bilinear(corners, at[k])), units[k])) <= step * TOLERANCE / 2.0
        };
        middles
            .iter()
            .all(|&k| close(k))
            .then_some(Fit::Sphere(corners))
    }

    /// Interpolates the block's pixels that were not transformed.
    fn fill(&mut self, b: Block, fit: Fit) {
        for j in b.j0..b.j1 {
            let v = b.fraction(b.i0, j).1;
            for i in b.i0..b.i1 {
                let k = self.index(i, j);
                if self.exact[k] {
                    continue;
                }
                let at = (b.fraction(i, j).0, v);
                self.out[k] = match &fit {
                    Fit::Plane(c) => {
                        let [x, y] = bilinear(*c, at);
                        (x, y)
                    }
                    Fit::Sphere(c) => lon_lat(bilinear(*c, at)),
                };
            }
        }
    }

    /// Transforms those of the pixels not yet transformed, in one batch.
    fn transform_exactly(&mut self, pixels: impl Iterator<Item = (usize, usize)>) {
        let todo: Vec<usize> = pixels
            .map(|(i, j)| self.index(i, j))
            .filter(|&k| !self.exact[k])
            .collect();
        let width = self.pixels.width;
        let mut points: Vec<(f64, f64)> = todo
            .iter()
            .map(|&k| self.pixels.centre(k % width, k / width))
            .collect();
        transform(self.from, self.to, &mut points);
        for (k, p) in todo.into_iter().zip(points) {
            self.out[k] = p;
            self.exact[k] = true;
        }
    }

    fn index(&self, i: usize, j: usize) -> usize {
        j * self.pixels.width + i
    }
}

/// A block's pixel steps in target units: the vectors one pixel right and
/// one pixel down move a point by, from its corners (the Jacobian).
struct PixelSize {
    right: [f64; 2],
    down: [f64; 2],
}

impl PixelSize {
    fn of([tl, tr, bl, br]: [[f64; 2]; 4], (du, dv): (f64, f64)) -> PixelSize {
        let mean =
            |a: [f64; 2], b: [f64; 2], t: f64| [(a[0] + b[0]) * t / 2.0, (a[1] + b[1]) * t / 2.0];
        PixelSize {
            right: mean(sub(tr, tl), sub(br, bl), du),
            down: mean(sub(bl, tl), sub(br, tr), dv),
        }
    }

    /// An offset in pixels (the larger of its components along the pixel
    /// axes); infinite where the pixel steps are degenerate.
    fn pixels(&self, [ex, ey]: [f64; 2]) -> f64 {
        let ([a, c], [b, d]) = (self.right, self.down);
        let det = a * d - b * c;
        let n = ((d * ex - b * ey) / det)
            .abs()
            .max(((a * ey - c * ex) / det).abs());
        if n.is_finite() { n } else { f64::INFINITY }
    }
}

/// The shorter of a block's mean pixel steps across and down on the unit
/// sphere, from its corners.
fn sphere_step([tl, tr, bl, br]: [[f64; 3]; 4], (du, dv): (f64, f64)) -> f64 {
    let across = (norm(sub(tr, tl)) + norm(sub(br, bl))) / 2.0 * du;
    let down = (norm(sub(bl, tl)) + norm(sub(br, tr))) / 2.0 * dv;
    across.min(down)
}

/// Bilinear interpolation between corners (top left, top right, bottom
/// left, bottom right) at fractions (u, v).
fn bilinear<const N: usize>([tl, tr, bl, br]: [[f64; N]; 4], (u, v): (f64, f64)) -> [f64; N] {
    lerp(lerp(tl, tr, u), lerp(bl, br, u), v)
}

/// The point a fraction `t` of the way from `p` to `q`.
fn lerp<const N: usize>(p: [f64; N], q: [f64; N], t: f64) -> [f64; N] {
    std::array::from_fn(|n| p[n] + (q[n] - p[n]) * t)
}

fn sub<const N: usize>(p: [f64; N], q: [f64; N]) -> [f64; N] {
    std::array::from_fn(|n| p[n] - q[n])
}

fn norm<const N: usize>(p: [f64; N]) -> f64 {
    p.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn normalised(p: [f64; 3]) -> [f64; 3] {
    let n = norm(p);
    p.map(|x| x / n)
}

/// Longitude and latitude (degrees) as a unit vector.
fn unit_vector([lon, lat]: [f64; 2]) -> [f64; 3] {
    let ((sin_lon, cos_lon), (sin_lat, cos_lat)) =
        (lon.to_radians().sin_cos(), lat.to_radians().sin_cos());
    [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
}

/// A vector's direction as longitude and latitude (degrees); its length
/// does not matter.
fn lon_lat([x, y, z]: [f64; 3]) -> (f64, f64) {
    (y.atan2(x).to_degrees(), z.atan2(x.hypot(y)).to_degrees())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crs(code: &str) -> Projection {
        Projection::from_code(code).unwrap()
    }

    fn exact_centres(
        from: &Projection,
        to: &Projection,
        bbox: [f64; 4],
        w: usize,
        h: usize,
    ) -> Vec<(f64, f64)> {
        let mut points = pixel_centres(bbox, w, h);
        transform(from, to, &mut points);
        points
    }

    /// How many pixels `a` is from `e`, by the pixel steps from `e` to its
    /// right and lower neighbours `r` and `d`: the offset written as
    /// steps (least squares), the larger. Geographic positions are taken
    /// as unit vectors, so that poles and the antimeridian measure right.
    fn pixels_off(geographic: bool, [a, e, r, d]: [(f64, f64); 4]) -> f64 {
        let v = |p: (f64, f64)| {
            if geographic {
                unit_vector([p.0, p.1])
            } else {
                [p.0, p.1, 0.0]
            }
        };
        let dot = |p: [f64; 3], q: [f64; 3]| p[0] * q[0] + p[1] * q[1] + p[2] * q[2];
        let (off, right, down) = (sub(v(a), v(e)), sub(v(r), v(e)), sub(v(d), v(e)));
        let (rr, rd, dd) = (dot(right, right), dot(right, down), dot(down, down));
        let (ro, dro) = (dot(right, off), dot(down, off));
        let det = rr * dd - rd * rd;
        ((dd * ro - rd * dro) / det)
            .abs()
            .max(((rr * dro - rd * ro) / det).abs())
    }

    /// Every interpolated position is within the tolerance of the exact
    /// one, in pixels; where one is NaN so is the other, but for a few
    /// pixels at a projection's edge.
    #[test]
    fn interpolation_stays_within_the_tolerance() {
        let half = 20_037_508.342_789_244;
        let cases = [
            ("EPSG:3413", [-4e6, -4e6, 4e6, 4e6], "EPSG:4326"),
            ("EPSG:3031", [-5e6, -3e6, 5e6, 3e6], "EPSG:4326"),
            ("EPSG:3857", [-half, -half, half, half], "EPSG:4326"),
            ("EPSG:3857", [1e6, 5e6, 1.1e6, 5.05e6], "EPSG:4326"),
            ("EPSG:4326", [-180.0, 20.0, 180.0, 90.0], "EPSG:3413"),
            ("EPSG:4326", [-180.0, -90.0, 180.0, 90.0], "EPSG:3857"),
            ("EPSG:3857", [-half, 0.0, half, half], "EPSG:3413"),
            ("EPSG:32633", [0.0, 4e6, 1e6, 6e6], "EPSG:4326"),
        ];
        let (w, h) = (517, 263);
        for (from, bbox, to) in cases {
            let (f, t) = (crs(from), crs(to));
            let fast = transformed_centres(&f, &t, bbox, w, h);
            let exact = exact_centres(&f, &t, bbox, w, h);
            let mut mismatched = 0;
            for j in 0..h - 1 {
                for i in 0..w - 1 {
                    let k = j * w + i;
                    let points = [fast[k], exact[k], exact[k + 1], exact[k + w]];
                    if points.iter().all(|p| p.0.is_finite()) {
                        let err = pixels_off(t.is_geographic(), points);
                        assert!(
                            err <= TOLERANCE,
                            "{from} -> {to} at {i},{j}: {points:?}, {err} px"
                        );
                    } else if fast[k].0.is_finite() != exact[k].0.is_finite() {
                        mismatched += 1;
                    }
                }
            }
            assert!(
                mismatched * 1000 <= fast.len(),
                "{from} -> {to}: {mismatched} pixels NaN in one only"
            );
        }
    }

    #[test]
    fn unit_vectors_round_trip() {
        for (lon, lat) in [
            (0.0, 0.0),
            (-45.0, 70.0),
            (179.9, -89.0),
            (-180.0 + 1e-9, 45.0),
        ] {
            let (x, y) = lon_lat(unit_vector([lon, lat]).map(|c| c * 3.0));
            assert!(
                (x - lon).abs() < 1e-9 && (y - lat).abs() < 1e-9,
                "{lon} {lat}: {x} {y}"
            );
        }
    }

    #[test]
    fn degenerate_pixel_steps_measure_as_infinite() {
        let flat = PixelSize {
            right: [1.0, 0.0],
            down: [2.0, 0.0],
        };
        assert_eq!(flat.pixels([0.0, 1.0]), f64::INFINITY);
        let square = PixelSize {
            right: [2.0, 0.0],
            down: [0.0, -2.0],
        };
        assert_eq!(square.pixels([1.0, 1.0]), 0.5);
    }

    #[test]
    fn tiny_maps_are_transformed_exactly() {
        let (f, t) = (crs("EPSG:3413"), crs("EPSG:4326"));
        for (w, h) in [(1, 1), (2, 7), (5, 1), (0, 3)] {
            let bbox = [-1e6, -1e6, 1e6, 1e6];
            assert_eq!(
                transformed_centres(&f, &t, bbox, w, h),
                exact_centres(&f, &t, bbox, w, h)
            );
        }
    }
}
