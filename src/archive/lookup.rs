//! Coordinate values to indices, for the constraint resolver.

use super::served::ServedDataset;
use crate::dap::view::{BoundRole, CoordLookup, ValueQuery};

/// Coordinate-value hyperslabs (`[(40.0):(30.0)]`, `[(2010-01-15)]`,
/// `[(2001-02-30)]` in a 360_day dataset): bounds in the axis's own order
/// select the cells inside them, inclusive; a single value selects the
/// nearest cell. Axes are monotonic, whatever their spacing (Gaussian,
/// stretched), so every lookup is a binary search.
pub(super) struct Lookup<'a>(pub(super) &'a ServedDataset);

impl CoordLookup for Lookup<'_> {
    fn index_of(&self, q: &ValueQuery<'_>) -> Result<usize, String> {
        let dv = self.0;
        let name = &q.dim.name;
        let (values, is_time) = dv.coordinate(name).ok_or_else(|| format!("dimension {name} has no coordinate values"))?;
        let text = q.value.text.trim();
        if values.is_empty() {
            return Err(format!("axis {name} is empty"));
        }
        if is_time {
            let def = &dv.dataset.def;
            let cal = def.time.key_calendar().map_err(|e| e.to_string())?;
            let t = cal.parse_user_time(text).map_err(|e| e.to_string())?;
            let keys: Vec<f64> = dv.times.iter().map(|t| t.0 as f64).collect();
            let show = |i: usize| def.time.show(dv.times[i]);
            return search(&keys, t.0 as f64, 0.0, q.role).map_err(|e| match e {
                Miss::Outside => format!("{text} is outside the axis {name}, which runs from {} to {}", show(0), show(keys.len() - 1)),
                Miss::Before => format!("no {name} value from {text} on"),
                Miss::After => format!("no {name} value up to {text}"),
            });
        }
        let v: f64 = text.parse().map_err(|_| format!("{text:?} is not a number (the axis {name} is numeric)"))?;
        // A small tolerance so that a value printed from a float32
        // coordinate still selects that coordinate.
        let min_width = values.windows(2).map(|w| (w[1] - w[0]).abs()).fold(f64::INFINITY, f64::min);
        let eps = if min_width.is_finite() { min_width * 1e-3 } else { 0.0 };
        search(&values, v, eps, q.role).map_err(|e| match e {
            Miss::Outside => format!("{text} is outside the axis {name}, which runs from {} to {}", values[0], values[values.len() - 1]),
            Miss::Before => format!("no {name} value from {text} on"),
            Miss::After => format!("no {name} value up to {text}"),
        })
    }
}

enum Miss {
    Outside,
    Before,
    After,
}

/// The index a coordinate value selects on a strictly monotonic axis:
/// the nearest cell for a single value (within half a cell beyond either
/// end), the first cell at or after a start bound, the last at or before a
/// stop bound (both in the axis's own direction, `eps` allowed).
fn search(values: &[f64], v: f64, eps: f64, role: BoundRole) -> Result<usize, Miss> {
    let n = values.len();
    let ascending = n < 2 || values[n - 1] > values[0];
    // Position in ascending terms: number of values "before" v.
    let before = |x: f64| if ascending { x < v } else { x > v };
    let p = values.partition_point(|&x| before(x));
    let half = |i: usize, j: usize| (values[i] - values[j]).abs() / 2.0;
    let (first, last) = (values[0], values[n - 1]);
    let (lo, hi) = if ascending { (first, last) } else { (last, first) };
    let (pad_lo, pad_hi) = if n < 2 {
        (eps, eps)
    } else if ascending {
        (half(0, 1), half(n - 1, n - 2))
    } else {
        (half(n - 1, n - 2), half(0, 1))
    };
    if !(v >= lo - pad_lo - eps && v <= hi + pad_hi + eps) {
        return Err(Miss::Outside);
    }
    match role {
        BoundRole::Single => {
            let cands = [p.checked_sub(1), (p < n).then_some(p)];
            cands
                .into_iter()
                .flatten()
                .min_by(|&a, &b| (values[a] - v).abs().total_cmp(&(values[b] - v).abs()))
                .ok_or(Miss::Outside)
        }
        BoundRole::Start => {
            // The first value not before v - eps.
            let within = |x: f64| if ascending { x >= v - eps } else { x <= v + eps };
            let i = values.partition_point(|&x| !within(x));
            if i < n { Ok(i) } else { Err(Miss::Before) }
        }
        BoundRole::Stop => {
            let within = |x: f64| if ascending { x <= v + eps } else { x >= v - eps };
            let i = values.partition_point(|&x| within(x));
            if i > 0 { Ok(i - 1) } else { Err(Miss::After) }
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinate_search_on_irregular_axes() {
        // Gaussian-like latitudes, north to south.
        let lat = [88.57, 86.72, 84.86, 60.0, 10.0, -3.0];
        assert_eq!(search(&lat, 86.72, 0.0, BoundRole::Single).ok(), Some(1));
        assert_eq!(search(&lat, 70.0, 0.0, BoundRole::Single).ok(), Some(3));
        assert_eq!(search(&lat, 34.0, 0.0, BoundRole::Single).ok(), Some(4), "nearest, not first");
        assert_eq!(search(&lat, 36.0, 0.0, BoundRole::Single).ok(), Some(3));
        assert_eq!(search(&lat, 85.0, 0.0, BoundRole::Start).ok(), Some(2), "first at or after, southwards");
        assert_eq!(search(&lat, 85.0, 0.0, BoundRole::Stop).ok(), Some(1));
        assert_eq!(search(&lat, 10.0, 0.0, BoundRole::Stop).ok(), Some(4));
        assert!(matches!(search(&lat, 95.0, 0.0, BoundRole::Single), Err(Miss::Outside)));
        assert!(matches!(search(&lat, -10.0, 0.0, BoundRole::Single), Err(Miss::Outside)));
        assert_eq!(search(&lat, -9.0, 0.0, BoundRole::Single).ok(), Some(5), "within half the end cell");
        // Stretched, ascending; a bound between two cells.
        let z = [0.0, 1.0, 3.0, 7.0, 15.0];
        assert_eq!(search(&z, 2.0, 0.0, BoundRole::Start).ok(), Some(2));
        assert_eq!(search(&z, 2.0, 0.0, BoundRole::Stop).ok(), Some(1));
        assert!(matches!(search(&z, 15.5, 0.0, BoundRole::Start), Err(Miss::Before)));
        // A value printed from a float32 coordinate still selects it.
        let lon = [0.1f32 as f64, 0.2f32 as f64, 0.3f32 as f64];
        assert_eq!(search(&lon, 0.2, 1e-4, BoundRole::Start).ok(), Some(1));
        assert_eq!(search(&lon, 0.2, 1e-4, BoundRole::Stop).ok(), Some(1));
        // Exact float64 cell centres select themselves.
        let c: Vec<f64> = (0..600).map(|i| -180.0 + (i as f64 + 0.5) / 120.0).collect();
        for (i, &v) in c.iter().enumerate() {
            assert_eq!(search(&c, v, 0.0, BoundRole::Single).ok(), Some(i));
        }
    }
}
