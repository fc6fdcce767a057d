//! The `.ascii` / `.asc` response, Hyrax style (dap2.md §1.2 notes).
//!
//! No client parses it; it is for people and spreadsheets. Layout:
//!
//! ```text
//! Dataset: example                                  first line
//! lat, -10, 0, 10                                   1-D array: name, values
//! mask.mask[0], 0, 1, 1, 0                          n-D array: one row per innermost row,
//! mask.mask[1], 1, 1, 0, 0                          labelled with subset indices
//! sst.lon, 270                                      Grid: its last map first, then
//! sst.sst[sst.time=31][sst.lat=-10], 1650           rows labelled with map values
//! crs, 0                                            scalar
//! strv, "a", "bcd"                                  strings double-quoted (DAS escaping)
//! ```
//!
//! Values are comma + space separated; floats use the DAS's shortest
//! round-trip format ([`super::das::format_f64`]); integers are printed
//! as stored (an i8 variable shows −5, not its Byte bit pattern 251).
//!
//! Streaming: build an [`AsciiArray`] per sent array, then call
//! [`AsciiArray::write_rows`] per band with whole rows of data and the
//! index of the band's first row.

use std::fmt::Write as _;

use super::das::{format_f32, format_f64, quote};
use super::view::SentArray;

/// Errors from feeding data that does not fit the array's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsciiError {
    /// A band whose length is not a whole number of rows.
    #[error("band of {len} values is not a whole number of rows of {row_len}")]
    PartialRow {
        /// Values given.
        len: usize,
        /// Values per row.
        row_len: usize,
    },
    /// Rows past the end of the array.
    #[error("rows {first}..{end} are outside the array's {rows} rows")]
    RowsOutOfRange {
        /// First row given.
        first: usize,
        /// One past the last row given.
        end: usize,
        /// Rows in the array.
        rows: usize,
    },
    /// Map values that do not match the Grid's dimensions.
    #[error("map {index} has {got} values for a dimension of {want}")]
    MapLength {
        /// Which map.
        index: usize,
        /// Values given.
        got: usize,
        /// Dimension length.
        want: usize,
    },
}

/// A value that can be printed in an `.ascii` row.
pub trait AsciiValue {
    /// Appends the value's text.
    fn write(&self, out: &mut String);
}

macro_rules! ascii_int {
    ($($t:ty),*) => {$(
        impl AsciiValue for $t {
            fn write(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
ascii_int!(u8, i8, i16, u16, i32, u32);

impl AsciiValue for f32 {
    fn write(&self, out: &mut String) {
        out.push_str(&format_f32(*self));
    }
}

impl AsciiValue for f64 {
    fn write(&self, out: &mut String) {
        out.push_str(&format_f64(*self));
    }
}

impl AsciiValue for &str {
    fn write(&self, out: &mut String) {
        out.push_str(&quote(self));
    }
}

impl AsciiValue for String {
    fn write(&self, out: &mut String) {
        out.push_str(&quote(self));
    }
}

/// The first line: `Dataset: <name>`.
pub fn header(dataset: &str) -> String {
    format!("Dataset: {dataset}\n")
}

/// Formats values for use as Grid row labels.
pub fn format_values<T: AsciiValue>(values: &[T]) -> Vec<String> {
    values
        .iter()
        .map(|v| {
            let mut s = String::new();
            v.write(&mut s);
            s
        })
        .collect()
}

/// Appends one row `label, v1, v2, …` (a 1-D array, a scalar, or the
/// map row that precedes a Grid's data rows).
pub fn write_row<T: AsciiValue>(label: &str, values: &[T], out: &mut String) {
    out.push_str(label);
    for v in values {
        out.push_str(", ");
        v.write(out);
    }
    out.push('\n');
}

/// How a leading dimension labels rows.
#[derive(Debug, Clone, PartialEq)]
enum Lead {
    /// `[i]`, the index within the subset.
    Index { count: usize },
    /// `[grid.map=value]`.
    Map { label: String, values: Vec<String> },
}

impl Lead {
    fn count(&self) -> usize {
        match self {
            Lead::Index { count } => *count,
            Lead::Map { values, .. } => values.len(),
        }
    }
}

/// Row layout of one sent array.
#[derive(Debug, Clone, PartialEq)]
pub struct AsciiArray {
    label: String,
    row_len: usize,
    lead: Vec<Lead>,
}

impl AsciiArray {
    /// A top-level array or Structure member: rows labelled
    /// `path[i][j]` with indices of the subset.
    pub fn plain(a: &SentArray) -> AsciiArray {
        let shape = a.shape();
        let (lead, row_len) = match shape.split_last() {
            None => (vec![], 1),
            Some((last, lead)) => (
                lead.iter().map(|&count| Lead::Index { count }).collect(),
                *last,
            ),
        };
        AsciiArray {
            label: a.path.clone(),
            row_len,
            lead,
        }
    }

    /// A Grid's array: rows labelled with the values of maps 0..rank−1
    /// (`map_values[i]` = the already-formatted subset values of map `i`,
    /// see [`format_values`]; the last map's entry is not used for labels
    /// and may be omitted). Write the last map's row with [`write_row`]
    /// before the data rows.
    pub fn grid(
        array: &SentArray,
        maps: &[SentArray],
        map_values: Vec<Vec<String>>,
    ) -> Result<AsciiArray, AsciiError> {
        let shape = array.shape();
        let Some((&last, lead_shape)) = shape.split_last() else {
            return Ok(AsciiArray::plain(array));
        };
        let mut lead = Vec::with_capacity(lead_shape.len());
        let mut values = map_values.into_iter();
        for (index, &want) in lead_shape.iter().enumerate() {
            let v = values.next().unwrap_or_default();
            if v.len() != want {
                return Err(AsciiError::MapLength {
                    index,
                    got: v.len(),
                    want,
                });
            }
            let label = maps
                .get(index)
                .map_or_else(|| format!("dim{index}"), |m| m.path.clone());
            lead.push(Lead::Map { label, values: v });
        }
        Ok(AsciiArray {
            label: array.path.clone(),
            row_len: last,
            lead,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.lead.iter().map(Lead::count).product()
    }

    /// Values per row (the innermost dimension's count, 1 for a scalar).
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// Appends the rows of one band: `data` holds whole rows in row-major
    /// order, the first of which is row `first_row` of the array.
    pub fn write_rows<T: AsciiValue>(
        &self,
        first_row: usize,
        data: &[T],
        out: &mut String,
    ) -> Result<(), AsciiError> {
        let row_len = self.row_len.max(1);
        if !data.len().is_multiple_of(row_len) {
            return Err(AsciiError::PartialRow {
                len: data.len(),
                row_len,
            });
        }
        let n = data.len() / row_len;
        let rows = self.rows();
        let end = first_row.saturating_add(n);
        if end > rows {
            return Err(AsciiError::RowsOutOfRange {
                first: first_row,
                end,
                rows,
            });
        }
        let mut idx = vec![0usize; self.lead.len()];
        for (k, row) in data.chunks_exact(row_len).enumerate() {
            // Decompose the row number over the leading dimensions.
            let mut r = first_row + k;
            for (d, lead) in self.lead.iter().enumerate().rev() {
                idx[d] = r % lead.count();
                r /= lead.count();
            }
            out.push_str(&self.label);
            for (lead, &i) in self.lead.iter().zip(&idx) {
                match lead {
                    Lead::Index { .. } => {
                        let _ = write!(out, "[{i}]");
                    }
                    Lead::Map { label, values } => {
                        let _ = write!(out, "[{label}={}]", values[i]);
                    }
                }
            }
            for v in row {
                out.push_str(", ");
                v.write(out);
            }
            out.push('\n');
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::ce::parse;
    use super::super::types::DapType;
    use super::super::view::{Array, SentVar, View, ViewVar, resolve, tests::example};
    use super::*;

    #[test]
    fn grid_slab_rows() {
        let s = resolve(&example(), &parse("sst[1][0:2:2][0:1]").unwrap()).unwrap();
        let SentVar::Grid { array, maps, .. } = &s.vars[0] else {
            panic!()
        };
        let mut out = header(&s.dataset);
        write_row(&maps[2].path, &[0.0f32, 90.0], &mut out);
        let labels = vec![format_values(&[31.0f64]), format_values(&[-10.0f32, 10.0])];
        let a = AsciiArray::grid(array, maps, labels).unwrap();
        assert_eq!(a.rows(), 2);
        // Two bands of one row each.
        a.write_rows(0, &[1640i16, 1650], &mut out).unwrap();
        a.write_rows(1, &[1720i16, 1730], &mut out).unwrap();
        assert_eq!(
            out,
            "Dataset: example\nsst.lon, 0, 90\nsst.sst[sst.time=31][sst.lat=-10], 1640, 1650\nsst.sst[sst.time=31][sst.lat=10], 1720, 1730\n"
        );
    }

    #[test]
    fn plain_rows_use_subset_indices() {
        let s = resolve(&example(), &parse("mask.mask[1:2][0:3],lat").unwrap()).unwrap();
        let arrays = s.arrays();
        let mut out = String::new();
        write_row(&arrays[0].path, &[-10.0f32, 0.0, 10.0], &mut out);
        let m = AsciiArray::plain(arrays[1]);
        assert_eq!((m.rows(), m.row_len()), (2, 4));
        m.write_rows(0, &[1u8, 1, 0, 0, 200, 7, 9, 1], &mut out)
            .unwrap();
        assert_eq!(
            out,
            "lat, -10, 0, 10\nmask.mask[0], 1, 1, 0, 0\nmask.mask[1], 200, 7, 9, 1\n"
        );
    }

    #[test]
    fn three_d_band_offsets_and_errors() {
        let s = resolve(&example(), &parse("sst.sst[0:1][0:2][0:1]").unwrap()).unwrap();
        let a = AsciiArray::plain(s.arrays()[0]);
        assert_eq!(a.rows(), 6);
        let mut out = String::new();
        a.write_rows(4, &[1i16, 2, 3, 4], &mut out).unwrap();
        assert_eq!(out, "sst.sst[1][1], 1, 2\nsst.sst[1][2], 3, 4\n");
        assert_eq!(
            a.write_rows(0, &[1i16], &mut out),
            Err(AsciiError::PartialRow { len: 1, row_len: 2 })
        );
        assert_eq!(
            a.write_rows(5, &[1i16, 2, 3, 4], &mut out),
            Err(AsciiError::RowsOutOfRange {
                first: 5,
                end: 7,
                rows: 6
            })
        );
        let SentVar::Structure { members, .. } = &s.vars[0] else {
            panic!()
        };
        assert!(AsciiArray::grid(&members[0], &[], vec![vec!["1".into()]]).is_err());
    }

    #[test]
    fn scalars_strings_and_floats() {
        let v = View::new(
            "d",
            vec![
                ViewVar::Array(Array::new(
                    "crs",
                    DapType::Int32,
                    Vec::<(&str, usize)>::new(),
                )),
                ViewVar::Array(Array::new("strv", DapType::String, [("n", 2)])),
            ],
        )
        .unwrap();
        let s = resolve(&v, &parse("").unwrap()).unwrap();
        let mut out = String::new();
        let crs = AsciiArray::plain(s.arrays()[0]);
        assert_eq!((crs.rows(), crs.row_len()), (1, 1));
        crs.write_rows(0, &[0i32], &mut out).unwrap();
        AsciiArray::plain(s.arrays()[1])
            .write_rows(0, &["a", "b\"cd"], &mut out)
            .unwrap();
        write_row("x", &[0.1f64, 1e20, f64::NAN], &mut out);
        write_row("y", &[-5i8], &mut out);
        assert_eq!(
            out,
            "crs, 0\nstrv, \"a\", \"b\\\"cd\"\nx, 0.1, 1e+20, NaN\ny, -5\n"
        );
    }
}
