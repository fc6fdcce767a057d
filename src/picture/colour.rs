//! Colour maps: value -> colour through a 256-entry lookup table.
//!
//! The perceptually uniform maps of matplotlib (viridis, magma, inferno,
//! plasma, cividis): equal steps in value look like equal steps in colour,
//! and they stay readable in grey and to most colour-blind eyes. `greys`
//! (matplotlib's `gray`, black to white) is for data that is itself a
//! brightness. The tables are matplotlib's own 8-bit values (`tables.rs`).

use super::tables;

/// A named colour map.
#[derive(Debug)]
pub struct ColourMap {
    /// The WMS style name (lower case).
    pub name: &'static str,
    /// A title for people.
    pub title: &'static str,
    lut: &'static [[u8; 3]; 256],
}

static ALL: [ColourMap; 6] = [
    ColourMap {
        name: "viridis",
        title: "Viridis (blue-green-yellow)",
        lut: &tables::VIRIDIS,
    },
    ColourMap {
        name: "magma",
        title: "Magma (black-purple-cream)",
        lut: &tables::MAGMA,
    },
    ColourMap {
        name: "inferno",
        title: "Inferno (black-red-yellow)",
        lut: &tables::INFERNO,
    },
    ColourMap {
        name: "plasma",
        title: "Plasma (blue-red-yellow)",
        lut: &tables::PLASMA,
    },
    ColourMap {
        name: "cividis",
        title: "Cividis (blue-yellow, colour-blind safe)",
        lut: &tables::CIVIDIS,
    },
    ColourMap {
        name: "greys",
        title: "Greys (black-white)",
        lut: &tables::GREYS,
    },
];

/// Every colour map, the default (viridis) first.
pub fn all() -> &'static [ColourMap] {
    &ALL
}

/// The default colour map: viridis.
pub fn default_map() -> &'static ColourMap {
    &ALL[0]
}

/// The colour map of that name, ignoring case.
pub fn by_name(name: &str) -> Option<&'static ColourMap> {
    ALL.iter()
        .find(|m| m.name.eq_ignore_ascii_case(name.trim()))
}

impl ColourMap {
    /// The colour of `v` on a scale from `lo` to `hi`, opaque; NaN is fully
    /// transparent. Values beyond the range take the end colours. An empty
    /// range (`lo == hi`) colours its one value with the middle colour, and
    /// a reversed one (`lo > hi`) reverses the map.
    pub fn rgba(&self, v: f64, lo: f64, hi: f64) -> [u8; 4] {
        if v.is_nan() {
            return [0, 0, 0, 0];
        }
        let [r, g, b] = self.lut[index(position(v, lo, hi))];
        [r, g, b, 255]
    }

    /// The colour at `t` along the map, 0 (low end) to 1 (high end).
    pub fn at(&self, t: f64) -> [u8; 3] {
        self.lut[index(t)]
    }

    /// The map as a 256-colour PNG palette: entry 0 for missing cells
    /// (`background`), entries 1..=255 along the map (see
    /// [`palette_index`]).
    pub fn palette(&self, background: [u8; 3]) -> Vec<u8> {
        std::iter::once(background)
            .chain((0..255).map(|i| self.at((i as f64 + 0.5) / 255.0)))
            .flatten()
            .collect()
    }
}

/// The palette entry of `v` on a scale from `lo` to `hi` (see
/// [`ColourMap::palette`]): 0 for NaN, else 1..=255, with the ends, empty
/// and reversed ranges as [`ColourMap::rgba`] has them.
pub fn palette_index(v: f64, lo: f64, hi: f64) -> u8 {
    if v.is_nan() {
        return 0;
    }
    let t = position(v, lo, hi);
    if t.is_nan() { 128 } else { 1 + (t * 255.0).clamp(0.0, 254.0) as u8 }
}

/// Where `v` lies between `lo` (0) and `hi` (1), unclamped.
fn position(v: f64, lo: f64, hi: f64) -> f64 {
    let span = hi - lo;
    if span != 0.0 && span.is_finite() {
        (v - lo) / span
    } else if v < lo.min(hi) {
        0.0
    } else if v > lo.max(hi) {
        1.0
    } else {
        0.5
    }
}

/// The table entry for position `t`, matplotlib's way: `floor(t * 256)`,
/// clamped to the table (NaN, from an infinite range, is the middle).
fn index(t: f64) -> usize {
    if t.is_nan() {
        return 128;
    }
    (t * 256.0).clamp(0.0, 255.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_indices_follow_the_map() {
        let m = default_map();
        let p = m.palette([9, 9, 9]);
        assert_eq!(p.len(), 256 * 3);
        assert_eq!(&p[..3], &[9, 9, 9], "entry 0 is the background");
        assert_eq!(palette_index(f64::NAN, 0.0, 1.0), 0);
        assert_eq!((palette_index(-5.0, 0.0, 1.0), palette_index(0.0, 0.0, 1.0), palette_index(1.0, 0.0, 1.0)), (1, 1, 255));
        assert_eq!(palette_index(0.5, 1.0, 0.0), 128, "a reversed range reverses");
        assert_eq!(palette_index(3.0, 3.0, 3.0), 128, "an empty range takes the middle");
        // The palette's colours are the map's.
        assert_eq!(&p[3..6], &m.at(0.0)[..]);
        assert_eq!(&p[255 * 3..], &m.at(1.0)[..]);
    }

    #[test]
    fn six_maps_viridis_first_and_found_in_any_case() {
        let names: Vec<_> = all().iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            ["viridis", "magma", "inferno", "plasma", "cividis", "greys"]
        );
        assert_eq!(default_map().name, "viridis");
        assert_eq!(by_name("MaGmA").unwrap().name, "magma");
        assert_eq!(by_name(" viridis ").unwrap().name, "viridis");
        assert!(by_name("jet").is_none());
        assert!(by_name("").is_none());
    }

    /// matplotlib's `viridis(0.0, bytes=True)`, `viridis(1.0, bytes=True)`.
    #[test]
    fn ends_are_matplotlib_values() {
        let v = by_name("viridis").unwrap();
        assert_eq!(v.rgba(0.0, 0.0, 1.0), [68, 1, 84, 255]);
        assert_eq!(v.rgba(1.0, 0.0, 1.0), [253, 231, 36, 255]);
        let g = by_name("greys").unwrap();
        assert_eq!(g.rgba(0.0, 0.0, 1.0), [0, 0, 0, 255]);
        assert_eq!(g.rgba(1.0, 0.0, 1.0), [255, 255, 255, 255]);
    }

    #[test]
    fn nan_is_transparent_and_out_of_range_clamps() {
        let v = default_map();
        assert_eq!(v.rgba(f64::NAN, 0.0, 1.0), [0, 0, 0, 0]);
        assert_eq!(v.rgba(-5.0, 0.0, 1.0), v.rgba(0.0, 0.0, 1.0));
        assert_eq!(v.rgba(5.0, 0.0, 1.0), v.rgba(1.0, 0.0, 1.0));
        assert_eq!(v.rgba(f64::INFINITY, 0.0, 1.0), v.rgba(1.0, 0.0, 1.0));
        assert_eq!(v.rgba(f64::NEG_INFINITY, 0.0, 1.0), v.rgba(0.0, 0.0, 1.0));
    }

    #[test]
    fn degenerate_ranges_do_not_divide_by_zero() {
        let v = default_map();
        let middle = v.at(0.5);
        assert_eq!(v.rgba(3.0, 3.0, 3.0)[..3], middle);
        assert_eq!(v.rgba(2.0, 3.0, 3.0), v.rgba(0.0, 0.0, 1.0));
        assert_eq!(v.rgba(4.0, 3.0, 3.0), v.rgba(1.0, 0.0, 1.0));
        assert_eq!(v.rgba(1.0, f64::NEG_INFINITY, f64::INFINITY)[3], 255);
        assert_eq!(v.rgba(1.0, f64::NAN, f64::NAN)[3], 255);
        assert_eq!(
            v.rgba(0.0, 1.0, 0.0),
            v.rgba(1.0, 0.0, 1.0),
            "a reversed range reverses the map"
        );
    }

    #[test]
    fn tables_run_smoothly_from_dark_to_light() {
        for m in all() {
            let lum =
                |c: [u8; 3]| 0.2126 * c[0] as f64 + 0.7152 * c[1] as f64 + 0.0722 * c[2] as f64;
            assert!(
                lum(m.at(0.0)) < lum(m.at(0.5)) && lum(m.at(0.5)) < lum(m.at(1.0)),
                "{}",
                m.name
            );
            for w in m.lut.windows(2) {
                let jump = (0..3)
                    .map(|i| (w[0][i] as i32 - w[1][i] as i32).abs())
                    .max()
                    .unwrap_or(0);
                assert!(jump <= 8, "{}: {:?}", m.name, w);
            }
        }
    }
}
