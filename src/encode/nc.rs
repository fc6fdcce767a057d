//! NetCDF downloads and exports of a constrained subset.
//!
//! `.nc` is a NetCDF classic file (CDF-2; CDF-5 when a variable outgrows
//! CDF-2) produced while it is sent: the header is computed from the plan,
//! then the data follows band by band, so memory stays constant, the length
//! is known up front, and an HTTP `Range` deep in the file is produced
//! without generating the bytes before it ([`classic::Layout::pieces`]).
//! The output is a pure function of the catalogue state and the
//! constraint, so ranges from two requests join into the same file.
//!
//! `.nc4` is NetCDF-4 (chunked, deflate) written through libnetcdf to a
//! temporary file that is removed on every path.
//!
//! The file holds every projected variable with its attributes (packed
//! variables stay packed), a coordinate variable for each of their
//! dimensions, the grid mapping, and the dataset's global attributes with a
//! `history` line naming the dataset and the constraint.

use super::{Encoder, Out, Stop};
use crate::archive::{ArchiveError, Plan, ServedDataset};
use crate::dap::view::{self, SentArray};
use crate::model::{AttrValue, Attribute, DataType, TypedArray};
use crate::mosaic::{self, BandSlice};
use crate::store::port::TileStore;
use super::classic::{self, Dim, Layout, NcType, Piece, Var, encode_be};
use std::ops::Range;

/// Where the values of one file variable come from.
#[derive(Clone, Debug)]
enum Source {
    /// A coordinate axis (DAP name) over a selected range.
    Axis { name: String, range: view::Range },
    /// The grid-mapping scalar.
    GridMapping,
    /// A data array of the subset (data or a tiled auxiliary coordinate).
    Data(SentArray),
    /// A small auxiliary variable (bounds, scalar coordinates).
    Aux(SentArray),
}

/// One file variable: what the file declares and where its values come from.
#[derive(Clone, Debug)]
struct Item {
    name: String,
    dtype: DataType,
    dims: Vec<usize>,
    attrs: Vec<Attribute>,
    source: Source,
}

/// A planned NetCDF download.
pub struct NcExport {
    pub plan: Plan,
    pub layout: Layout,
    dims: Vec<(String, u64)>,
    items: Vec<Item>,
    globals: Vec<Attribute>,
    /// A sensible file name: `<dataset>_<vars>_<time range>.nc`.
    pub filename: String,
}

/// The classic type of a stored type, and whether it travels as its signed
/// twin with `_Unsigned = "true"` (keeping files CDF-2).
fn classic_type(t: DataType) -> (NcType, bool) {
    let (twin, unsigned) = t.classic_twin();
    let nc = match twin {
        DataType::I8 | DataType::U8 => NcType::Byte,
        DataType::I16 | DataType::U16 => NcType::Short,
        DataType::I32 | DataType::U32 => NcType::Int,
        DataType::F32 => NcType::Float,
        DataType::F64 => NcType::Double,
    };
    (nc, unsigned)
}

/// A variable's attributes as written: reserved ones dropped, `_FillValue`
/// in the variable's own type.
fn file_attrs(attrs: &[Attribute], dtype: DataType) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| !crate::model::is_library_managed(&a.name) && a.name != "_Unsigned")
        .filter_map(|a| {
            if a.name == "_FillValue" {
                crate::store::tile::attr_as_type(&a.value, dtype).map(|v| Attribute::new("_FillValue", v))
            } else {
                Some(a.clone())
            }
        })
        .collect()
}

/// `2001-02-30T06:00:00.000` -> `20010230T060000`; midnight -> `20010230`.
fn compact_time(iso: &str) -> String {
    let iso = iso.trim_end_matches('Z');
    let (date, time) = iso.split_once('T').unwrap_or((iso, ""));
    let time = time.split('.').next().unwrap_or("");
    let (neg, date) = match date.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", date),
    };
    let date: String = date.chars().filter(|c| *c != '-').collect();
    let time: String = time.chars().filter(|c| *c != ':').collect();
    if time.chars().all(|c| c == '0') { format!("{neg}{date}") } else { format!("{neg}{date}T{time}") }
}

impl Encoder for NcExport {
    fn content_type(&self) -> &'static str {
        "application/x-netcdf"
    }
    fn description(&self) -> &'static str {
        "dods_netcdf"
    }
    fn len(&self) -> Option<u64> {
        Some(self.layout.total_len())
    }
    fn ranges(&self) -> bool {
        true
    }
    fn filename(&self) -> Option<String> {
        Some(self.filename.clone())
    }
    fn produce(&self, tiles: &dyn TileStore, range: Range<u64>, sink: &mut dyn FnMut(Vec<u8>) -> bool) -> Result<(), Stop> {
        self.produce_range(tiles, range, sink)
    }
}

impl NcExport {
    /// Lays out the file for a planned subset. `ce` is the decoded
    /// constraint, recorded in `history`.
    pub fn new(plan: Plan, ce: &str) -> Result<NcExport, ArchiveError> {
        let dv: &ServedDataset = &plan.dataset;
        let def = &dv.dataset.def;
        let mut dims: Vec<(String, String, view::Range)> = Vec::new(); // file name, view name, range
        let mut coords: Vec<Item> = Vec::new();
        let mut others: Vec<Item> = Vec::new();
        let mut dim_for = |view_name: &str, r: view::Range, coords: &mut Vec<Item>| -> usize {
            if let Some(i) = dims.iter().position(|(_, v, rr)| v == view_name && *rr == r) {
                return i;
            }
            let mut name = view_name.to_string();
            let mut n = 1;
            while dims.iter().any(|(f, ..)| *f == name) {
                n += 1;
                name = format!("{view_name}_{n}");
            }
            dims.push((name.clone(), view_name.to_string(), r));
            let i = dims.len() - 1;
            if let Some(dtype) = dv.axis_dtype(view_name) {
                coords.push(Item {
                    name,
                    dtype,
                    dims: vec![i],
                    attrs: file_attrs(&dv.attributes_of(view_name), dtype),
                    source: Source::Axis { name: view_name.to_string(), range: r },
                });
            }
            i
        };
        let mut data_names = Vec::new();
        let mut time_range: Option<(usize, usize)> = None;
        for a in plan.subset.arrays() {
            if let Some(var) = dv.data_variable(&a.name) {
                if others.iter().any(|o: &Item| o.name == a.name) {
                    continue;
                }
                let d: Vec<usize> = a.dims.iter().map(|d| dim_for(&d.name, d.range, &mut coords)).collect();
                if var.def.has_time {
                    let r = a.dims[0].range;
                    time_range = Some(time_range.map_or((r.start, r.last()), |(s, e)| (s.min(r.start), e.max(r.last()))));
                }
                data_names.push(a.name.clone());
                others.push(Item {
                    name: a.name.clone(),
                    dtype: var.def.dtype,
                    dims: d,
                    attrs: file_attrs(&var.def.attrs, var.def.dtype),
                    source: Source::Data(a.clone()),
                });
            } else if dv.is_grid_mapping(&a.name) {
                if !others.iter().any(|o| o.name == a.name) {
                    let dtype = def.grid.crs.grid_mapping.as_ref().map_or(DataType::I32, |g| g.dtype);
                    others.insert(0, Item { name: a.name.clone(), dtype, dims: vec![], attrs: dv.attributes_of(&a.name), source: Source::GridMapping });
                }
            } else if let Some((aux, _)) = dv.aux_variable(&a.name) {
                if !others.iter().any(|o| o.name == a.name) {
                    let d: Vec<usize> = a.dims.iter().map(|d| dim_for(&d.name, d.range, &mut coords)).collect();
                    others.push(Item {
                        name: a.name.clone(),
                        dtype: aux.dtype,
                        dims: d,
                        attrs: file_attrs(&aux.attrs, aux.dtype),
                        source: Source::Aux(a.clone()),
                    });
                }
            } else if a.dims.len() == 1 {
                dim_for(&a.dims[0].name, a.dims[0].range, &mut coords);
            }
        }
        // The grid mapping travels with any data variable that names it.
        if let Some(gm) = &def.grid.crs.grid_mapping {
            if !others.iter().any(|o| o.name == gm.name) && others.iter().any(|o| o.attrs.iter().any(|a| a.name == "grid_mapping")) {
                others.insert(0, Item { name: gm.name.clone(), dtype: gm.dtype, dims: vec![], attrs: gm.attrs.clone(), source: Source::GridMapping });
            }
        }
        let mut items = coords;
        items.extend(others);

        let line = format!("{}: tessera subset of dataset {}: {}", dv.dataset.updated_at.format("%Y-%m-%dT%H:%M:%SZ"), def.name, if ce.is_empty() { "(everything)" } else { ce });
        let mut globals: Vec<Attribute> = def.attrs.iter().filter(|a| !crate::model::is_library_managed(&a.name) && a.name != "history").cloned().collect();
        let history = match def.attrs.iter().find(|a| a.name == "history").and_then(|a| a.value.as_text()) {
            Some(h) if !h.is_empty() => format!("{h}\n{line}"),
            _ => line,
        };
        globals.push(Attribute::text("history", history));

        let file_dims: Vec<(String, u64)> = dims.iter().map(|(f, _, r)| (f.clone(), r.count as u64)).collect();
        let layout = classic_layout(&file_dims, &items, &globals)?;
        let vars_part = match data_names.len() {
            0 => "coordinates".to_string(),
            1..=3 => data_names.join("-"),
            n => format!("{}-and-{}-more", data_names[..2].join("-"), n - 2),
        };
        let time_part = match time_range {
            Some((s, e)) if s == e => format!("_{}", compact_time(&def.time.show(dv.times[s]))),
            Some((s, e)) => format!("_{}-{}", compact_time(&def.time.show(dv.times[s])), compact_time(&def.time.show(dv.times[e]))),
            None => String::new(),
        };
        let filename = format!("{}_{vars_part}{time_part}.nc", def.name);
        Ok(NcExport { plan, layout, dims: file_dims, items, globals, filename })
    }

    /// Produces bytes `range` of the classic file into `sink`. Blocking.
    pub fn produce_range(&self, reader: &dyn TileStore, range: Range<u64>, sink: &mut dyn FnMut(Vec<u8>) -> bool) -> Result<(), Stop> {
        let mut out = Out::new(sink);
        for piece in self.layout.pieces(range) {
            match piece {
                Piece::Header(r) => out.buf.extend_from_slice(&self.layout.header()[r]),
                Piece::Padding { var, len } => out.buf.extend_from_slice(&self.layout.padding_bytes(var)[..len]),
                Piece::Data { var, elements, skip_front, skip_back } => {
                    let size = self.layout.element_size(var) as u64;
                    let want = (elements.end - elements.start) * size - skip_front as u64 - skip_back as u64;
                    let mut sent = 0u64;
                    let mut skip = skip_front;
                    let mut emit = |bytes: &[u8], out: &mut Out<'_>| -> Result<bool, Stop> {
                        let drop = skip.min(bytes.len());
                        skip -= drop;
                        let bytes = &bytes[drop..];
                        let take = (want - sent).min(bytes.len() as u64) as usize;
                        out.buf.extend_from_slice(&bytes[..take]);
                        sent += take as u64;
                        out.maybe_flush()?;
                        Ok(sent < want)
                    };
                    self.values(reader, &self.items[var], elements, &mut |bytes, out| emit(bytes, out), &mut out)?;
                }
            }
            out.maybe_flush()?;
        }
        out.flush()
    }

    /// Calls `f` with the big-endian bytes of elements `elements` of an
    /// item, in order, in pieces; `f` returns false to stop.
    fn values(
        &self,
        reader: &dyn TileStore,
        item: &Item,
        elements: Range<u64>,
        f: &mut dyn FnMut(&[u8], &mut Out<'_>) -> Result<bool, Stop>,
        out: &mut Out<'_>,
    ) -> Result<(), Stop> {
        let (e0, e1) = (elements.start as usize, elements.end as usize);
        match &item.source {
            Source::GridMapping => {
                let values = self.plan.dataset.grid_mapping_value().ok_or_else(|| Stop::Failed(ArchiveError::Internal("no grid mapping".into())))?;
                let mut bytes = Vec::new();
                be_slice(&values, 0..1, &mut bytes);
                f(&bytes, out)?;
            }
            Source::Aux(a) => {
                let values = self
                    .plan
                    .dataset
                    .aux_values(&a.name, &a.ranges())
                    .ok_or_else(|| Stop::Failed(ArchiveError::Internal(format!("no auxiliary variable {}", a.name))))?;
                let mut bytes = Vec::new();
                be_slice(&values, e0..e1, &mut bytes);
                f(&bytes, out)?;
            }
            Source::Axis { name, range } => {
                let values = self.plan.dataset.axis_values(name, *range).ok_or_else(|| Stop::Failed(ArchiveError::Internal(format!("no axis {name}"))))?;
                let mut bytes = Vec::new();
                be_slice(&values, e0..e1, &mut bytes);
                f(&bytes, out)?;
            }
            Source::Data(a) => {
                let row_len = a.dims.last().map_or(1, |d| d.range.count).max(1);
                let first_row = e0 / row_len;
                let mut bytes = Vec::new();
                self.plan.data_bands(reader, a, first_row, &mut |row, band| {
                    let b0 = row * row_len;
                    let n = band.shape().iter().product::<usize>();
                    let (s, e) = (e0.max(b0), e1.min(b0 + n));
                    if s >= e {
                        return Ok(b0 + n < e1);
                    }
                    // Encode in pieces of about 1 MiB.
                    let per = (1 << 20) / item.dtype.size();
                    let mut k = s;
                    while k < e {
                        let k1 = (k + per).min(e);
                        bytes.clear();
                        be_slice(band, k - b0..k1 - b0, &mut bytes);
                        if !f(&bytes, out)? {
                            return Ok(false);
                        }
                        k = k1;
                    }
                    Ok(e < e1)
                })?;
            }
        }
        Ok(())
    }

    /// Writes the whole classic file to `w` (the export CLI). Blocking.
    pub fn write_to(&self, reader: &dyn TileStore, w: &mut dyn std::io::Write, progress: &dyn Fn(u64)) -> Result<(), ArchiveError> {
        let mut err = None;
        let mut sink = |chunk: Vec<u8>| match w.write_all(&chunk) {
            Ok(()) => {
                progress(chunk.len() as u64);
                true
            }
            Err(e) => {
                err = Some(e);
                false
            }
        };
        let r = self.produce_range(reader, 0..self.layout.total_len(), &mut sink);
        if let Some(e) = err {
            return Err(ArchiveError::Internal(format!("write failed: {e}")));
        }
        match r {
            Ok(()) => Ok(()),
            Err(Stop::Closed) => Err(ArchiveError::Internal("write stopped".into())),
            Err(Stop::Failed(e)) => Err(e),
        }
    }

    /// Writes a NetCDF-4 file (chunked, deflate level 4) at `path` through
    /// libnetcdf. Blocking.
    pub fn write_nc4(&self, reader: &dyn TileStore, path: &std::path::Path) -> Result<(), ArchiveError> {
        use crate::store::tile::{attr_as_type, quiet_hdf5, to_nc};
        quiet_hdf5();
        let err = |e: netcdf::Error| ArchiveError::Internal(format!("writing the NetCDF-4 file: {e}"));
        let mut f = netcdf::create_with(path, netcdf::Options::NETCDF4).map_err(err)?;
        for (name, len) in &self.dims {
            f.add_dimension(name, *len as usize).map_err(err)?;
        }
        for a in &self.globals {
            f.add_attribute(&a.name, to_nc(&a.value)).map_err(err)?;
        }
        for item in &self.items {
            let dims: Vec<&str> = item.dims.iter().map(|&d| self.dims[d].0.as_str()).collect();
            let mut v = crate::with_data_type!(item.dtype, T => f.add_variable::<T>(&item.name, &dims)).map_err(err)?;
            for a in &item.attrs {
                let value = if a.name == "_FillValue" { attr_as_type(&a.value, item.dtype).unwrap_or(a.value.clone()) } else { a.value.clone() };
                v.put_attribute(&a.name, to_nc(&value)).map_err(err)?;
            }
            if matches!(item.source, Source::Data(_)) && !dims.is_empty() {
                let shape: Vec<usize> = item.dims.iter().map(|&d| self.dims[d].1 as usize).collect();
                let n = shape.len();
                let mut chunks: Vec<usize> = vec![1; n];
                chunks[n - 1] = shape[n - 1].min(512);
                if n >= 2 {
                    chunks[n - 2] = shape[n - 2].min(512);
                }
                v.set_chunking(&chunks).map_err(err)?;
                v.set_compression(4, true).map_err(err)?;
            }
        }
        for item in &self.items {
            let mut v = f.variable_mut(&item.name).expect("defined above");
            match &item.source {
                Source::GridMapping => {
                    let values = self.plan.dataset.grid_mapping_value().ok_or_else(|| ArchiveError::Internal("no grid mapping".into()))?;
                    put_typed(&mut v, &values, &[], &[]).map_err(err)?
                }
                Source::Aux(a) => {
                    let values = self
                        .plan
                        .dataset
                        .aux_values(&a.name, &a.ranges())
                        .ok_or_else(|| ArchiveError::Internal(format!("no auxiliary variable {}", a.name)))?;
                    let count: Vec<usize> = a.shape();
                    let start = vec![0usize; count.len()];
                    put_typed(&mut v, &values, &start, &count).map_err(err)?;
                }
                Source::Axis { name, range } => {
                    let values = self.plan.dataset.axis_values(name, *range).ok_or_else(|| ArchiveError::Internal(format!("no axis {name}")))?;
                    put_typed(&mut v, &values, &[0], &[values.shape()[0]]).map_err(err)?;
                }
                Source::Data(a) => {
                    let shape: Vec<usize> = a.shape();
                    let n = shape.len();
                    let (yc, xc) = (shape[n - 2], shape[n - 1]);
                    let lead = &shape[..n - 2];
                    let mut failure = None;
                    let r = self.plan.data_bands(reader, a, 0, &mut |row, band| {
                        let rows = band.shape()[0];
                        let y0 = row % yc;
                        let mut rest = row / yc;
                        let mut idx = vec![0usize; lead.len()];
                        for (d, &len) in lead.iter().enumerate().rev() {
                            idx[d] = rest % len;
                            rest /= len;
                        }
                        let mut start = idx;
                        start.extend([y0, 0]);
                        let mut count = vec![1usize; lead.len()];
                        count.extend([rows, xc]);
                        if let Err(e) = put_typed(&mut v, band, &start, &count) {
                            failure = Some(e);
                            return Ok(false);
                        }
                        Ok(true)
                    });
                    if let Some(e) = failure {
                        return Err(err(e));
                    }
                    match r {
                        Ok(()) => {}
                        Err(Stop::Failed(e)) => return Err(e),
                        Err(Stop::Closed) => return Err(ArchiveError::Internal("stopped".into())),
                    }
                }
            }
        }
        f.close().map_err(err)
    }
}

fn put_typed(v: &mut netcdf::VariableMut<'_>, a: &TypedArray, start: &[usize], count: &[usize]) -> netcdf::Result<()> {
    if start.is_empty() {
        // A scalar.
        return mosaic::with_band_slice(a, |s| match s {
            BandSlice::U8(x) => v.put_values(&x[..1], netcdf::Extents::All),
            BandSlice::I8(x) => v.put_values(&x[..1], netcdf::Extents::All),
            BandSlice::I16(x) => v.put_values(&x[..1], netcdf::Extents::All),
            BandSlice::U16(x) => v.put_values(&x[..1], netcdf::Extents::All),
            BandSlice::I32(x) => v.put_values(&x[..1], netcdf::Extents::All),
            BandSlice::U32(x) => v.put_values(&x[..1], netcdf::Extents::All),
            BandSlice::F32(x) => v.put_values(&x[..1], netcdf::Extents::All),
            BandSlice::F64(x) => v.put_values(&x[..1], netcdf::Extents::All),
        });
    }
    mosaic::with_band_slice(a, |s| match s {
        BandSlice::U8(x) => v.put_values(x, (start, count)),
        BandSlice::I8(x) => v.put_values(x, (start, count)),
        BandSlice::I16(x) => v.put_values(x, (start, count)),
        BandSlice::U16(x) => v.put_values(x, (start, count)),
        BandSlice::I32(x) => v.put_values(x, (start, count)),
        BandSlice::U32(x) => v.put_values(x, (start, count)),
        BandSlice::F32(x) => v.put_values(x, (start, count)),
        BandSlice::F64(x) => v.put_values(x, (start, count)),
    })
}

/// Big-endian bytes of `values[r]` (unsigned values keep their bits, which
/// are those of the signed twin the file declares).
fn be_slice(values: &TypedArray, r: Range<usize>, out: &mut Vec<u8>) {
    mosaic::with_band_slice(values, |s| match s {
        BandSlice::U8(x) => encode_be(&x[r], out),
        BandSlice::I8(x) => encode_be(&x[r], out),
        BandSlice::I16(x) => encode_be(&x[r], out),
        BandSlice::U16(x) => encode_be(&x[r], out),
        BandSlice::I32(x) => encode_be(&x[r], out),
        BandSlice::U32(x) => encode_be(&x[r], out),
        BandSlice::F32(x) => encode_be(&x[r], out),
        BandSlice::F64(x) => encode_be(&x[r], out),
    })
}

fn classic_layout(dims: &[(String, u64)], items: &[Item], globals: &[Attribute]) -> Result<Layout, ArchiveError> {
    let d: Vec<Dim> = dims.iter().map(|(n, l)| Dim::new(n.clone(), *l)).collect();
    let vars: Vec<Var> = items
        .iter()
        .map(|it| {
            let (t, unsigned) = classic_type(it.dtype);
            let mut v = Var::new(it.name.clone(), t, it.dims.clone());
            for a in &it.attrs {
                v = v.with_attr(a.name.clone(), a.value.classic());
            }
            if unsigned {
                v = v.with_attr("_Unsigned", "true");
            }
            v
        })
        .collect();
    let g: Vec<(String, AttrValue)> = globals.iter().map(|a| (a.name.clone(), a.value.classic())).collect();
    Layout::new(&d, &vars, &g, None).map_err(|e| match e {
        e @ classic::ClassicError::TooLarge { .. } => {
            ArchiveError::TooLargeFor(format!("this subset does not fit a NetCDF classic file ({e}); ask for less, or for .nc4"))
        }
        other => ArchiveError::Internal(format!("NetCDF layout: {other}")),
    })
}
