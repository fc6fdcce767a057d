//! Pixels: values coloured into RGBA, RGBA encoded as PNG, and the legend
//! (a colour bar with tick labels) drawn with the embedded bitmap font.

use super::PictureError;
use super::colour::ColourMap;
use super::font;
use super::wms::MAX_SIZE;

/// Legend size when the caller leaves it to us (width or height 0).
pub const LEGEND_WIDTH: u32 = 100;
/// See [`LEGEND_WIDTH`].
pub const LEGEND_HEIGHT: u32 = 300;

/// `values` (row-major) as palette indices of [`ColourMap::palette`]:
/// 0 where NaN. A quarter of RGBA's bytes to filter and compress, which
/// is most of what drawing a map costs.
pub fn render_indexed(values: &[f64], lo: f64, hi: f64) -> Vec<u8> {
    values.iter().map(|&v| super::colour::palette_index(v, lo, hi)).collect()
}

/// An 8-bit indexed PNG of [`render_indexed`] indices with `map`'s
/// palette; entry 0 (missing cells) is `background`, or fully transparent
/// when that is `None`.
pub fn encode_png_indexed(indices: &[u8], map: &ColourMap, background: Option<[u8; 3]>, width: u32, height: u32) -> Result<Vec<u8>, PictureError> {
    let pixels = (width as usize).checked_mul(height as usize);
    if width == 0 || height == 0 || pixels != Some(indices.len()) {
        return Err(PictureError::ImageSize { width, height, len: indices.len() });
    }
    let png_error = |e: png::EncodingError| PictureError::Png(e.to_string());
    let mut out = Vec::with_capacity(indices.len() / 4);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(map.palette(background.unwrap_or([0, 0, 0])));
    if background.is_none() {
        encoder.set_trns(vec![0u8]);
    }
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(indices).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

/// The smallest and largest finite values, if there is one.
pub fn range_of(values: &[f64]) -> Option<(f64, f64)> {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, &v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// An 8-bit RGBA PNG. Compression is `Fast` (fdeflate): maps are drawn
/// per request, and encoding time matters more than a few per cent of size.
pub fn encode_png(rgba: &[u8], width: u32, height: u32) -> Result<Vec<u8>, PictureError> {
    let pixels = (width as usize).checked_mul(height as usize);
    if width == 0 || height == 0 || pixels.and_then(|n| n.checked_mul(4)) != Some(rgba.len()) {
        return Err(PictureError::ImageSize {
            width,
            height,
            len: rgba.len(),
        });
    }
    let png_error = |e: png::EncodingError| PictureError::Png(e.to_string());
    let mut out = Vec::with_capacity(rgba.len() / 4);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(rgba).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

/// A legend as PNG: a vertical colour bar, high values at the top, labelled
/// with the range's ends and a few round values between, and the units
/// above it; black on opaque white. A width or height of 0 takes the
/// default (100x300). Text is drawn at twice the size or more when the
/// legend is that many times the default. Sides beyond WMS's
/// [`MAX_SIZE`] are refused.
pub fn legend_png(
    map: &ColourMap,
    lo: f64,
    hi: f64,
    units: &str,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, PictureError> {
    let width = if width == 0 { LEGEND_WIDTH } else { width };
    let height = if height == 0 { LEGEND_HEIGHT } else { height };
    if width > MAX_SIZE || height > MAX_SIZE {
        return Err(PictureError::TooLarge { width, height });
    }
    let mut canvas = Canvas::new(width, height, WHITE);
    let s = (width / LEGEND_WIDTH).min(height / LEGEND_HEIGHT).max(1) as i64;
    let units = units.trim();
    if !units.is_empty() {
        canvas.text(3 * s, 3 * s, units, s, BLACK);
    }
    let top = if units.is_empty() { 3 * s } else { 13 * s } + LABEL_HALF * s;
    let bar = Bar {
        x: 4 * s,
        width: (width as i64 / 5).max(8 * s),
        top,
        bottom: height as i64 - (3 + LABEL_HALF) * s,
    };
    bar.draw(&mut canvas, map);
    for (value, y) in bar.ticks(lo, hi, s) {
        canvas.fill(bar.x + bar.width, y, 3 * s, s.min(2), BLACK);
        canvas.text(
            bar.x + bar.width + 5 * s,
            y - font::HEIGHT as i64 * s / 2,
            &compact(value),
            s,
            BLACK,
        );
    }
    encode_png(&canvas.px, width, height)
}

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
/// Half a label's height (rounded up) at scale 1: labels are centred on
/// their tick.
const LABEL_HALF: i64 = font::HEIGHT.div_ceil(2) as i64;
/// Least distance between two labels' centres at scale 1.
const LABEL_GAP: i64 = font::HEIGHT as i64 + 4;

/// The colour bar's place on the legend: rows `top..bottom`.
struct Bar {
    x: i64,
    width: i64,
    top: i64,
    bottom: i64,
}

impl Bar {
    fn height(&self) -> i64 {
        self.bottom - self.top
    }

    /// The bar, one colour a row (the top row is the map's high end), in a
    /// thin grey frame.
    fn draw(&self, canvas: &mut Canvas, map: &ColourMap) {
        let h = self.height();
        if h < 1 {
            return;
        }
        canvas.fill(
            self.x - 1,
            self.top - 1,
            self.width + 2,
            h + 2,
            [96, 96, 96],
        );
        for row in 0..h {
            let t = 1.0 - (row as f64 + 0.5) / h as f64;
            canvas.fill(self.x, self.top + row, self.width, 1, map.at(t));
        }
    }

    /// The row of value `v` on a scale from `lo` (bottom row) to `hi` (top).
    fn row_of(&self, v: f64, lo: f64, hi: f64) -> i64 {
        let t = (v - lo) / (hi - lo);
        self.bottom - 1 - (t * (self.height() - 1) as f64).round() as i64
    }

    /// The labelled values and their rows: both ends, and round values
    /// between that leave room for their labels. A range of one value has
    /// one label in the middle; a range with no finite end has none.
    fn ticks(&self, lo: f64, hi: f64, s: i64) -> Vec<(f64, i64)> {
        if !lo.is_finite() || !hi.is_finite() || self.height() < 1 {
            return Vec::new();
        }
        if lo == hi {
            return vec![(lo, self.top + self.height() / 2)];
        }
        let gap = LABEL_GAP * s;
        let mut ticks = vec![(hi, self.top), (lo, self.bottom - 1)];
        let wanted = (self.height() / (3 * gap)).clamp(1, 10) as f64;
        for v in round_values(lo.min(hi), lo.max(hi), wanted) {
            let y = self.row_of(v, lo, hi);
            if ticks.iter().all(|&(_, other)| (y - other).abs() >= gap) {
                ticks.push((v, y));
            }
        }
        ticks
    }
}

/// Multiples of a round step (1, 2, 2.5 or 5 times a power of ten) strictly
/// between `min` and `max`, about `wanted` of them.
fn round_values(min: f64, max: f64, wanted: f64) -> Vec<f64> {
    let raw = (max - min) / wanted;
    if !(raw.is_finite() && raw > 0.0) {
        return Vec::new();
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (min / step).floor() as i64 + 1;
    (first..first + 12)
        .map(|k| k as f64 * step)
        .map(|v| if v.abs() < step * 1e-9 { 0.0 } else { v })
        .filter(|v| *v > min && *v < max)
        .collect()
}

/// A number in at most five significant digits, the way C's `%g` writes
/// it: `271.5`, `300`, `1e-05`, `1.2346e+06`.
fn compact(v: f64) -> String {
    const DIGITS: i32 = 5;
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    // Rust's `{:e}` rounds to the digits first, so the exponent is that
    // of the rounded number (99999.7 -> 1.0000e5).
    let sci = format!("{:.*e}", (DIGITS - 1) as usize, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..DIGITS).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs())
    } else {
        trim_zeros(&format!("{:.*}", (DIGITS - 1 - exp) as usize, v)).to_string()
    }
}

/// `2.5000` -> `2.5`, `3.000` -> `3`, `300` -> `300`.
fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// An opaque RGBA image to draw on; drawing is clipped to it.
struct Canvas {
    width: i64,
    height: i64,
    px: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32, colour: [u8; 3]) -> Canvas {
        let px = [colour[0], colour[1], colour[2], 255].repeat(width as usize * height as usize);
        Canvas {
            width: width as i64,
            height: height as i64,
            px,
        }
    }

    /// Fills the rectangle of `w` by `h` pixels whose top left is (x, y).
    fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, colour: [u8; 3]) {
        let (x0, x1) = (x.max(0), (x + w).min(self.width));
        let (y0, y1) = (y.max(0), (y + h).min(self.height));
        for row in y0..y1 {
            for col in x0..x1 {
                let i = ((row * self.width + col) * 4) as usize;
                self.px[i..i + 3].copy_from_slice(&colour);
            }
        }
    }

    /// Writes `text` with its top left at (x, y), each font pixel `s` by `s`.
    fn text(&mut self, x: i64, y: i64, text: &str, s: i64, colour: [u8; 3]) {
        for (n, c) in text.chars().enumerate() {
            let left = x + n as i64 * font::ADVANCE as i64 * s;
            if left >= self.width {
                break;
            }
            for (r, bits) in font::glyph(c).iter().enumerate() {
                for b in 0..font::WIDTH {
                    if bits & (1 << (font::WIDTH - 1 - b)) != 0 {
                        self.fill(left + b as i64 * s, y + r as i64 * s, s, s, colour);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::colour::{by_name, default_map};

    /// Decodes a PNG into (width, height, RGBA).
    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgba);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn indexed_maps_keep_nan_transparent_or_the_background() {
        let m = default_map();
        let idx = render_indexed(&[0.0, f64::NAN, 10.0], 0.0, 10.0);
        assert_eq!(idx, [1, 0, 255]);
        for background in [None, Some([10, 20, 30])] {
            let bytes = encode_png_indexed(&idx, m, background, 3, 1).unwrap();
            let img = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
            let info = img.info();
            assert_eq!(info.color_type, png::ColorType::Indexed);
            assert_eq!(info.trns.as_ref().map(|t| t.to_vec()), background.is_none().then(|| vec![0]));
            let palette = info.palette.as_ref().unwrap();
            assert_eq!(&palette[..3], &background.unwrap_or([0, 0, 0])[..]);
            assert_eq!(&palette[3..6], &m.at(0.0)[..]);
        }
        assert!(encode_png_indexed(&[0; 3], m, None, 2, 2).is_err());
    }

    #[test]
    fn range_of_skips_nan_and_infinity() {
        assert_eq!(
            range_of(&[f64::NAN, 3.0, -1.0, f64::INFINITY, 2.0]),
            Some((-1.0, 3.0))
        );
        assert_eq!(range_of(&[f64::NAN]), None);
        assert_eq!(range_of(&[]), None);
    }

    #[test]
    fn png_round_trips() {
        let rgba: Vec<u8> = (0..3 * 2 * 4).map(|i| i as u8 * 10).collect();
        let png_bytes = encode_png(&rgba, 3, 2).unwrap();
        assert_eq!(
            png_bytes[..8],
            [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n']
        );
        assert_eq!(decode(&png_bytes), (3, 2, rgba));
    }

    #[test]
    fn png_refuses_a_buffer_of_the_wrong_size() {
        assert!(matches!(
            encode_png(&[0; 12], 2, 2),
            Err(PictureError::ImageSize { .. })
        ));
        assert!(encode_png(&[], 0, 0).is_err());
        assert!(encode_png(&[0; 4], u32::MAX, u32::MAX).is_err());
        let huge = legend_png(default_map(), 0.0, 1.0, "", u32::MAX, 10);
        assert_eq!(
            huge,
            Err(PictureError::TooLarge {
                width: u32::MAX,
                height: 10
            })
        );
    }

    #[test]
    fn compact_writes_numbers_like_printf_g() {
        for (v, s) in [
            (271.5, "271.5"),
            (300.0, "300"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (273.15, "273.15"),
            (0.30000000000000004, "0.3"),
            (1234567.0, "1.2346e+06"),
            (99999.7, "1e+05"),
            (12345.0, "12345"),
            (0.0, "0"),
            (-0.0, "0"),
            (1.5e-10, "1.5e-10"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(compact(v), s, "{v}");
        }
    }

    #[test]
    fn round_values_fall_between_the_ends_on_round_steps() {
        assert_eq!(round_values(271.3, 301.7, 4.0), [280.0, 290.0, 300.0]);
        assert_eq!(round_values(271.3, 301.7, 3.0), [280.0, 300.0]);
        assert_eq!(round_values(0.0, 1.0, 4.0), [0.25, 0.5, 0.75]);
        assert_eq!(round_values(-1.0, 1.0, 2.0), [0.0]);
        assert!(round_values(1.0, 1.0, 3.0).is_empty());
        assert!(round_values(0.0, f64::INFINITY, 3.0).is_empty());
    }

    #[test]
    fn legend_is_opaque_white_with_the_map_high_at_the_top() {
        let m = by_name("magma").unwrap();
        let (w, h, px) = decode(&legend_png(m, 271.5, 301.5, "K", 0, 0).unwrap());
        assert_eq!((w, h), (LEGEND_WIDTH, LEGEND_HEIGHT));
        assert!(px.chunks(4).all(|p| p[3] == 255));
        assert_eq!(px[..4], [255, 255, 255, 255]);
        let at = |x: u32, y: u32| -> [u8; 3] {
            let i = ((y * w + x) * 4) as usize;
            [px[i], px[i + 1], px[i + 2]]
        };
        let x = 4 + 10;
        let top = (0..h)
            .find(|&y| at(x, y) != WHITE && at(x, y) != [96, 96, 96])
            .unwrap();
        let bottom = (0..h)
            .rev()
            .find(|&y| at(x, y) != WHITE && at(x, y) != [96, 96, 96])
            .unwrap();
        assert_eq!(at(x, top), m.at(1.0));
        assert_eq!(at(x, bottom), m.at(0.0));
        // Labels: black pixels right of the bar, near its top and bottom.
        let black_rows: Vec<u32> = (0..h)
            .filter(|&y| (30..w).any(|x| at(x, y) == BLACK))
            .collect();
        assert!(black_rows.iter().any(|&y| y.abs_diff(top) < 5));
        assert!(black_rows.iter().any(|&y| y.abs_diff(bottom) < 5));
    }

    #[test]
    fn legends_of_any_size_or_range_do_not_panic() {
        let m = default_map();
        for (w, h) in [(1, 1), (3, 300), (100, 5), (400, 1200), (20, 20)] {
            for (lo, hi) in [
                (0.0, 1.0),
                (1.0, 1.0),
                (5.0, -5.0),
                (f64::NAN, 1.0),
                (0.0, f64::INFINITY),
                (-1e300, 1e300),
            ] {
                let png_bytes = legend_png(m, lo, hi, "kg m-2 s-1 €", w, h).unwrap();
                assert_eq!(decode(&png_bytes).0, w);
            }
        }
    }

    #[test]
    fn text_is_clipped_to_the_canvas() {
        let mut c = Canvas::new(10, 10, WHITE);
        c.text(-3, -3, "W°", 3, BLACK);
        c.text(8, 8, "888", 1, BLACK);
        assert!(c.px.chunks(4).any(|p| p[..3] == BLACK));
    }
}
