//! `.ascii`: DAP2's comma-separated text (Hyrax's layout: a Grid's last
//! map as a row, then rows labelled with the other maps' values).

use super::{Encoder, Out, Stop};
use crate::archive::{ArchiveError, Plan};
use crate::dap::ascii;
use crate::dap::view::{SentArray, SentVar};
use crate::model::TypedArray;
use crate::mosaic::{self, BandSlice};
use crate::store::port::TileStore;
use std::ops::Range;

/// A planned `.ascii` response (its length is known only once written).
pub struct Ascii {
    pub plan: Plan,
}

impl Encoder for Ascii {
    fn content_type(&self) -> &'static str {
        "text/plain; charset=utf-8"
    }
    fn description(&self) -> &'static str {
        "dods_ascii"
    }
    fn len(&self) -> Option<u64> {
        None
    }
    fn produce(&self, tiles: &dyn TileStore, _range: Range<u64>, sink: &mut dyn FnMut(Vec<u8>) -> bool) -> Result<(), Stop> {
        let mut out = Out::new(sink);
        produce_ascii(&self.plan, tiles, &mut out)?;
        out.flush()
    }
}

fn ascii_band(arr: &ascii::AsciiArray, first_row: usize, band: &TypedArray, out: &mut String) -> Result<(), Stop> {
    mosaic::with_band_slice(band, |s| match s {
        BandSlice::U8(v) => arr.write_rows(first_row, v, out),
        BandSlice::I8(v) => arr.write_rows(first_row, v, out),
        BandSlice::I16(v) => arr.write_rows(first_row, v, out),
        BandSlice::U16(v) => arr.write_rows(first_row, v, out),
        BandSlice::I32(v) => arr.write_rows(first_row, v, out),
        BandSlice::U32(v) => arr.write_rows(first_row, v, out),
        BandSlice::F32(v) => arr.write_rows(first_row, v, out),
        BandSlice::F64(v) => arr.write_rows(first_row, v, out),
    })
    .map_err(|e| Stop::Failed(ArchiveError::Internal(format!("ascii: {e}"))))
}

fn format_coordinate(values: &TypedArray) -> Vec<String> {
    mosaic::with_band_slice(values, |s| match s {
        BandSlice::U8(v) => ascii::format_values(v),
        BandSlice::I8(v) => ascii::format_values(v),
        BandSlice::I16(v) => ascii::format_values(v),
        BandSlice::U16(v) => ascii::format_values(v),
        BandSlice::I32(v) => ascii::format_values(v),
        BandSlice::U32(v) => ascii::format_values(v),
        BandSlice::F32(v) => ascii::format_values(v),
        BandSlice::F64(v) => ascii::format_values(v),
    })
}

fn produce_ascii(plan: &Plan, reader: &dyn TileStore, out: &mut Out<'_>) -> Result<(), Stop> {
    let mut text = ascii::header(plan.subset.dataset.as_str());
    let emit = |text: &mut String, out: &mut Out<'_>| -> Result<(), Stop> {
        out.buf.extend_from_slice(text.as_bytes());
        text.clear();
        out.maybe_flush()
    };
    for var in &plan.subset.vars {
        let (arrays, grid_maps): (Vec<&SentArray>, Option<&Vec<SentArray>>) = match var {
            SentVar::Grid { array, maps, .. } => (vec![array], Some(maps)),
            other => (other.arrays(), None),
        };
        if let Some(maps) = grid_maps {
            // Hyrax style: the last map as a row, then rows labelled with
            // the values of the other maps.
            let array = arrays[0];
            let last = maps.last().expect("a grid has maps");
            let last_values = plan.coordinate_values(last)?;
            text.push_str(&last.path);
            for v in format_coordinate(&last_values) {
                text.push_str(", ");
                text.push_str(&v);
            }
            text.push('\n');
            let mut labels = Vec::new();
            for m in &maps[..maps.len() - 1] {
                labels.push(format_coordinate(&plan.coordinate_values(m)?));
            }
            let layout = ascii::AsciiArray::grid(array, maps, labels).map_err(|e| Stop::Failed(ArchiveError::Internal(e.to_string())))?;
            plan.data_bands(reader, array, 0, &mut |row, band| {
                ascii_band(&layout, row, band, &mut text)?;
                emit(&mut text, out)?;
                Ok(true)
            })?;
            continue;
        }
        for a in arrays {
            if plan.dataset.data_variable(&a.name).is_some() {
                let layout = ascii::AsciiArray::plain(a);
                plan.data_bands(reader, a, 0, &mut |row, band| {
                    ascii_band(&layout, row, band, &mut text)?;
                    emit(&mut text, out)?;
                    Ok(true)
                })?;
            } else if a.dims.len() > 1 {
                // A multi-dimensional auxiliary array (lat_bnds[lat][bnds]):
                // one labelled row per leading index, like data arrays.
                let values = plan.coordinate_values(a)?;
                ascii_band(&ascii::AsciiArray::plain(a), 0, &values, &mut text)?;
                emit(&mut text, out)?;
            } else {
                let values = plan.coordinate_values(a)?;
                text.push_str(&a.path);
                for v in format_coordinate(&values) {
                    text.push_str(", ");
                    text.push_str(&v);
                }
                text.push('\n');
                emit(&mut text, out)?;
            }
        }
    }
    emit(&mut text, out)
}
