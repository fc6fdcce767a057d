//! NetCDF tile files: writing them, and reading windows of their variables
//! (for ingest, and for [`super::reader::PoolTiles`], which adds the
//! verification and the cache of open files).
//!
//! Locking: every call into the `netcdf` crate takes one process-wide lock
//! (shared with HDF5), so two threads reading two tiles get no speed-up.
//! Callers on an async runtime must run these functions on blocking threads.
//!
//! A tile holds one variable at one time (or none, for static variables):
//! dimensions `(time = 1)?, (level)?, y, x` under the dataset's own axis
//! names, its coordinate variables for its window, every attribute of the
//! variable, the dataset's global attributes, and `tessera_*` globals naming
//! the dataset, variable, time and tile index. NetCDF-3 (CDF-2) has no
//! unsigned types: u8/u16/u32 variables are stored as their signed twins,
//! bit for bit, with `_Unsigned = "true"`, and turned back on reading.

use super::{Result, StoreError};
use crate::model::{
    AttrValue, Attribute, DataType, DatasetDef, TileFormat, TileIndex, Timestamp, TypedArray, VariableDef,
    Window,
};
use crate::{with_data_type, with_typed_array};
use ndarray::ArrayD;
use netcdf::{AttributeValue, Extents, NcTypeDescriptor};
use std::ops::Range;
use std::path::Path;

/// Turns off HDF5's automatic error printing on the calling thread.
///
/// Debian's thread-safe HDF5 prints a diagnostic stack to stderr for every
/// failed call, including the ones libnetcdf makes on purpose while probing
/// attributes, and its error settings are per thread; so every thread that
/// touches NetCDF-4 files calls this first. Errors still reach us as return
/// codes. HDF5 is found through libnetcdf (`dlsym`), so no HDF5 link flags
/// are needed; without HDF5 this does nothing. `TESSERA_HDF5_DIAG=1`
/// keeps HDF5's own diagnostics, for debugging.
pub fn quiet_hdf5() {
    thread_local!(static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    QUIET.with(|q| {
        if q.get() {
            return;
        }
        q.set(true);
        if std::env::var_os("TESSERA_HDF5_DIAG").is_some() {
            return;
        }
        // SAFETY: dlsym with a NUL-terminated name; the symbol, if present, is
        // `herr_t H5Eset_auto2(hid_t, H5E_auto2_t, void *)` with `hid_t` a
        // 64-bit integer (HDF5 >= 1.10) and H5E_DEFAULT == 0.
        unsafe {
            let sym = libc::dlsym(libc::RTLD_DEFAULT, c"H5Eset_auto2".as_ptr());
            if !sym.is_null() {
                let f: extern "C" fn(i64, *const std::ffi::c_void, *mut std::ffi::c_void) -> i32 =
                    std::mem::transmute(sym);
                f(0, std::ptr::null(), std::ptr::null_mut());
            }
        }
    });
}

/// Chunk side for NetCDF-4 tiles: a 256x256 window of one level.
const CHUNK: usize = 256;

/// What a tile file is about.
pub struct TileSpec<'a> {
    pub dataset: &'a DatasetDef,
    pub var: &'a VariableDef,
    pub time: Option<Timestamp>,
    /// The time coordinate value in the dataset's units (derived from
    /// `time` when absent).
    pub time_value: Option<f64>,
    pub tile: TileIndex,
    pub window: Window,
    /// 1 for a full-resolution tile, `k` for overview level `k`; `dataset`
    /// is then the overview's (see [`DatasetDef::overview`]).
    pub overview: u32,
    /// The file stands for every slice of a synthetic dataset (`tessera
    /// synth`): it states [`crate::model::SYNTHETIC_TIME`] and no time key.
    /// Tiles ingested into such a dataset state their own time.
    pub any_time: bool,
}

fn nc_err(path: &Path) -> impl Fn(netcdf::Error) -> StoreError + '_ {
    move |e| StoreError::NetCdf { path: path.to_path_buf(), message: e.to_string() }
}

/// Converts a stored attribute value to libnetcdf's representation.
pub fn to_nc(v: &AttrValue) -> AttributeValue {
    match v.clone() {
        AttrValue::Text(s) => AttributeValue::Str(s),
        AttrValue::U8(x) => AttributeValue::Uchars(x),
        AttrValue::I8(x) => AttributeValue::Schars(x),
        AttrValue::I16(x) => AttributeValue::Shorts(x),
        AttrValue::U16(x) => AttributeValue::Ushorts(x),
        AttrValue::I32(x) => AttributeValue::Ints(x),
        AttrValue::U32(x) => AttributeValue::Uints(x),
        AttrValue::I64(x) => AttributeValue::Longlongs(x),
        AttrValue::U64(x) => AttributeValue::Ulonglongs(x),
        AttrValue::F32(x) => AttributeValue::Floats(x),
        AttrValue::F64(x) => AttributeValue::Doubles(x),
    }
}

/// Converts a libnetcdf attribute value; string arrays join with newlines
/// (what netCDF-3 and DAP2 do with them).
pub fn from_nc(v: AttributeValue) -> AttrValue {
    match v {
        AttributeValue::Str(s) => AttrValue::Text(s),
        AttributeValue::Strs(s) => AttrValue::Text(s.join("\n")),
        AttributeValue::Uchar(x) => AttrValue::U8(vec![x]),
        AttributeValue::Uchars(x) => AttrValue::U8(x),
        AttributeValue::Schar(x) => AttrValue::I8(vec![x]),
        AttributeValue::Schars(x) => AttrValue::I8(x),
        AttributeValue::Short(x) => AttrValue::I16(vec![x]),
        AttributeValue::Shorts(x) => AttrValue::I16(x),
        AttributeValue::Ushort(x) => AttrValue::U16(vec![x]),
        AttributeValue::Ushorts(x) => AttrValue::U16(x),
        AttributeValue::Int(x) => AttrValue::I32(vec![x]),
        AttributeValue::Ints(x) => AttrValue::I32(x),
        AttributeValue::Uint(x) => AttrValue::U32(vec![x]),
        AttributeValue::Uints(x) => AttrValue::U32(x),
        AttributeValue::Longlong(x) => AttrValue::I64(vec![x]),
        AttributeValue::Longlongs(x) => AttrValue::I64(x),
        AttributeValue::Ulonglong(x) => AttrValue::U64(vec![x]),
        AttributeValue::Ulonglongs(x) => AttrValue::U64(x),
        AttributeValue::Float(x) => AttrValue::F32(vec![x]),
        AttributeValue::Floats(x) => AttrValue::F32(x),
        AttributeValue::Double(x) => AttrValue::F64(vec![x]),
        AttributeValue::Doubles(x) => AttrValue::F64(x),
    }
}

/// The values of a numeric attribute converted to a data type (for
/// `_FillValue`, which libnetcdf requires to have the variable's type).
pub fn attr_as_type(v: &AttrValue, t: DataType) -> Option<AttrValue> {
    let vals = v.to_f64_vec()?;
    Some(with_data_type!(t, T => {
        let conv: Vec<T> = vals.iter().map(|&x| x as T).collect();
        typed_attr(conv)
    }))
}

trait IntoAttr {
    fn into_attr(v: Vec<Self>) -> AttrValue
    where
        Self: Sized;
}
macro_rules! into_attr {
    ($($t:ty => $v:ident),*) => {$(
        impl IntoAttr for $t { fn into_attr(v: Vec<$t>) -> AttrValue { AttrValue::$v(v) } }
    )*};
}
into_attr!(u8 => U8, i8 => I8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, f32 => F32, f64 => F64);
fn typed_attr<T: IntoAttr>(v: Vec<T>) -> AttrValue {
    T::into_attr(v)
}

struct Writer<'f> {
    file: &'f mut netcdf::FileMut,
    classic: bool,
}

impl Writer<'_> {
    fn add_var(&mut self, name: &str, t: DataType, dims: &[&str]) -> netcdf::Result<netcdf::VariableMut<'_>> {
        let t = if self.classic { t.classic_twin().0 } else { t };
        with_data_type!(t, T => self.file.add_variable::<T>(name, dims))
    }
}

fn put_attrs(var: &mut netcdf::VariableMut<'_>, attrs: &[Attribute], dtype: DataType, classic: bool) -> netcdf::Result<()> {
    for a in attrs {
        if crate::model::is_library_managed(&a.name) || (classic && a.name == "_Unsigned") {
            continue;
        }
        let value = if a.name == "_FillValue" {
            match attr_as_type(&a.value, dtype) {
                Some(v) => v,
                None => continue,
            }
        } else {
            a.value.clone()
        };
        let value = if classic { value.classic() } else { value };
        var.put_attribute(&a.name, to_nc(&value))?;
    }
    if classic && dtype.classic_twin().1 {
        var.put_attribute("_Unsigned", "true")?;
    }
    Ok(())
}

fn put_array<T: NcTypeDescriptor + Copy>(var: &mut netcdf::VariableMut<'_>, a: &ArrayD<T>) -> netcdf::Result<()> {
    let a = a.as_standard_layout();
    var.put_values(a.as_slice().expect("standard layout"), Extents::All)
}

fn put_typed(var: &mut netcdf::VariableMut<'_>, data: &TypedArray, classic: bool) -> netcdf::Result<()> {
    match (data, classic) {
        (TypedArray::U8(a), true) => put_array(var, &a.mapv(|v| v as i8)),
        (TypedArray::U16(a), true) => put_array(var, &a.mapv(|v| v as i16)),
        (TypedArray::U32(a), true) => put_array(var, &a.mapv(|v| v as i32)),
        _ => with_typed_array!(data, a => put_array(var, a)),
    }
}

fn put_coord(var: &mut netcdf::VariableMut<'_>, t: DataType, values: &[f64], classic: bool) -> netcdf::Result<()> {
    let data = with_data_type!(t, T => {
        let v: Vec<T> = values.iter().map(|&x| x as T).collect();
        TypedArray::from_vec(v)
    });
    put_typed(var, &data, classic)
}

pub use crate::model::IntoTyped;

/// Writes one tile file at `path` (normally a temporary name, see
/// [`super::write_new`]). `data` has shape `[level?, h, w]`.
pub fn write_tile(path: &Path, spec: &TileSpec<'_>, data: &TypedArray) -> Result<()> {
    quiet_hdf5();
    let err = nc_err(path);
    let ds = spec.dataset;
    let var = spec.var;
    let w = spec.window;
    let classic = ds.format == TileFormat::Nc3Offset64;
    let options = if classic { netcdf::Options::_64BIT_OFFSET } else { netcdf::Options::NETCDF4 };
    let mut file = netcdf::create_with(path, options).map_err(&err)?;

    let level = if var.has_level { ds.grid.level.as_ref() } else { None };
    let (xname, yname) = (ds.grid.x.name.as_str(), ds.grid.y.name.as_str());
    let tname = ds.time.name.as_str();
    let mut dims: Vec<&str> = Vec::new();
    if spec.time.is_some() && var.has_time {
        file.add_dimension(tname, 1).map_err(&err)?;
        dims.push(tname);
    }
    if let Some(l) = level {
        file.add_dimension(&l.name, l.len()).map_err(&err)?;
        dims.push(&l.name);
    }
    file.add_dimension(yname, w.h).map_err(&err)?;
    file.add_dimension(xname, w.w).map_err(&err)?;
    dims.push(yname);
    dims.push(xname);

    // Global attributes: the dataset's, then our own.
    for a in &ds.attrs {
        if !crate::model::is_library_managed(&a.name) {
            let v = if classic { a.value.classic() } else { a.value.clone() };
            file.add_attribute(&a.name, to_nc(&v)).map_err(&err)?;
        }
    }
    file.add_attribute("tessera_dataset", ds.name.as_str()).map_err(&err)?;
    file.add_attribute("tessera_variable", var.name.as_str()).map_err(&err)?;
    let time_text = match spec.time {
        _ if spec.any_time => crate::model::SYNTHETIC_TIME.to_string(),
        None => "static".to_string(),
        Some(t) => ds.time.show(t),
    };
    file.add_attribute("tessera_time", time_text.as_str()).map_err(&err)?;
    file.add_attribute("tessera_tile_x", spec.tile.tx as i32).map_err(&err)?;
    file.add_attribute("tessera_tile_y", spec.tile.ty as i32).map_err(&err)?;
    if spec.overview > 1 {
        file.add_attribute("tessera_overview", spec.overview as i32).map_err(&err)?;
    }
    if let (Some(t), false) = (spec.time, spec.any_time) {
        // The slice key, exactly (milliseconds below 2^53 are exact as a
        // double, which NetCDF-3 can hold): checked when the tile is read.
        file.add_attribute("tessera_time_key", t.0 as f64).map_err(&err)?;
    }
    file.add_attribute("tessera_x_offset", w.x as i32).map_err(&err)?;
    file.add_attribute("tessera_y_offset", w.y as i32).map_err(&err)?;

    let mut wr = Writer { file: &mut file, classic };
    let mut time_value = None;
    if let (Some(t), true) = (spec.time, var.has_time) {
        let value = match spec.time_value {
            Some(v) => v,
            None => ds.time.cf().map_err(|e| StoreError::Invalid { path: path.to_path_buf(), message: e.to_string() })?.to_value(t),
        };
        let mut tv = wr.add_var(tname, ds.time.dtype, &[tname]).map_err(&err)?;
        put_attrs(&mut tv, &ds.time.attrs, ds.time.dtype, classic).map_err(&err)?;
        time_value = Some(value);
    }
    for (axis, values) in [
        (level, level.map(|l| l.values.clone())),
        (Some(&ds.grid.y), Some(ds.grid.y.values[w.y..w.y + w.h].to_vec())),
        (Some(&ds.grid.x), Some(ds.grid.x.values[w.x..w.x + w.w].to_vec())),
    ] {
        if let (Some(axis), Some(_)) = (axis, values) {
            let mut v = wr.add_var(&axis.name, axis.dtype, &[&axis.name]).map_err(&err)?;
            put_attrs(&mut v, &axis.attrs, axis.dtype, classic).map_err(&err)?;
        }
    }
    if let (Some(gm), true) = (&ds.grid.crs.grid_mapping, var.attrs.iter().any(|a| a.name == "grid_mapping")) {
        let mut v = wr.add_var(&gm.name, gm.dtype, &[]).map_err(&err)?;
        put_attrs(&mut v, &gm.attrs, gm.dtype, classic).map_err(&err)?;
    }
    {
        let mut v = wr.add_var(&var.name, var.dtype, &dims).map_err(&err)?;
        put_attrs(&mut v, &var.attrs, var.dtype, classic).map_err(&err)?;
        if !classic {
            let mut chunks: Vec<usize> = dims.iter().map(|_| 1).collect();
            let n = chunks.len();
            chunks[n - 2] = w.h.min(CHUNK);
            chunks[n - 1] = w.w.min(CHUNK);
            v.set_chunking(&chunks).map_err(&err)?;
            if ds.format == TileFormat::Nc4Deflate {
                v.set_compression(ds.deflate_level.clamp(1, 9) as i32, true).map_err(&err)?;
            }
        }
    }
    if classic {
        file.enddef().map_err(&err)?;
    }

    // Data: coordinates, then the variable.
    if let Some(tv) = time_value {
        let mut v = file.variable_mut(tname).expect("defined above");
        put_coord(&mut v, ds.time.dtype, &[tv], classic).map_err(&err)?;
    }
    if let Some(l) = level {
        let mut v = file.variable_mut(&l.name).expect("defined above");
        put_coord(&mut v, l.dtype, &l.values, classic).map_err(&err)?;
    }
    {
        let mut v = file.variable_mut(yname).expect("defined above");
        put_coord(&mut v, ds.grid.y.dtype, &ds.grid.y.values[w.y..w.y + w.h], classic).map_err(&err)?;
    }
    {
        let mut v = file.variable_mut(xname).expect("defined above");
        put_coord(&mut v, ds.grid.x.dtype, &ds.grid.x.values[w.x..w.x + w.w], classic).map_err(&err)?;
    }
    let expected: Vec<usize> = level.map(|l| vec![l.len()]).unwrap_or_default().into_iter().chain([w.h, w.w]).collect();
    if data.shape() != expected.as_slice() {
        return Err(StoreError::Invalid {
            path: path.to_path_buf(),
            message: format!("tile data has shape {:?}, expected {expected:?}", data.shape()),
        });
    }
    // Deflate tiles: the chunks are compressed on every core and stored
    // as they are (see `inspect::write_chunks`), not one at a time inside
    // libnetcdf's lock.
    let direct = ds.format == TileFormat::Nc4Deflate && super::inspect::can_write_chunks();
    if !direct {
        let mut v = file.variable_mut(&var.name).expect("defined above");
        put_typed(&mut v, data, classic).map_err(&err)?;
    }
    file.close().map_err(&err)?;
    if direct {
        let lead = usize::from(spec.time.is_some() && var.has_time);
        let shape: Vec<usize> = std::iter::repeat_n(1, lead).chain(expected.iter().copied()).collect();
        let n = shape.len();
        let mut chunk = vec![1usize; n];
        chunk[n - 2] = w.h.min(CHUNK);
        chunk[n - 1] = w.w.min(CHUNK);
        with_typed_array!(data, a => {
            let a = a.as_standard_layout();
            let values = a.as_slice().expect("standard layout");
            // SAFETY: plain numeric values seen as their bytes (native order,
            // which is the order libnetcdf gives NetCDF-4 variables).
            let bytes = unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values)) };
            super::inspect::write_chunks(path, &var.name, bytes, &shape, &chunk, var.dtype.size(), true, ds.deflate_level.clamp(1, 9) as i32)
        })
        .map_err(|message| StoreError::Invalid { path: path.to_path_buf(), message })?;
    }
    Ok(())
}

fn get_as<T: NcTypeDescriptor + Copy>(v: &netcdf::Variable<'_>, start: &[usize], count: &[usize]) -> netcdf::Result<ArrayD<T>> {
    v.get::<T, _>((start, count))
}

/// Reads a window of a variable from an open file, as its stored type:
/// `ranges` gives one range per dimension of the variable in the file.
/// Unsigned variables stored as signed twins (NetCDF-3) come back unsigned.
pub fn read_var(path: &Path, v: &netcdf::Variable<'_>, dtype: DataType, ranges: &[Range<usize>]) -> Result<TypedArray> {
    quiet_hdf5();
    let err = nc_err(path);
    let start: Vec<usize> = ranges.iter().map(|r| r.start).collect();
    let count: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
    let stored = nc_type(v.vartype()).ok_or_else(|| StoreError::Invalid {
        path: path.to_path_buf(),
        message: format!("variable {} has an unsupported type", v.name()),
    })?;
    let raw = with_data_type!(stored, T => get_as::<T>(v, &start, &count).map(IntoTyped::typed).map_err(&err)?);
    Ok(match (raw, dtype) {
        (TypedArray::I8(a), DataType::U8) => TypedArray::U8(a.mapv(|v| v as u8)),
        (TypedArray::I16(a), DataType::U16) => TypedArray::U16(a.mapv(|v| v as u16)),
        (TypedArray::I32(a), DataType::U32) => TypedArray::U32(a.mapv(|v| v as u32)),
        (a, t) if a.dtype() == t => a,
        (a, t) => {
            return Err(StoreError::Invalid {
                path: path.to_path_buf(),
                message: format!("variable {} is {} in the file but {t} in the catalogue", v.name(), a.dtype()),
            });
        }
    })
}

/// The stored type of a libnetcdf variable type, if it is one we keep.
pub fn nc_type(t: netcdf::types::NcVariableType) -> Option<DataType> {
    use netcdf::types::{FloatType, IntType, NcVariableType as V};
    Some(match t {
        V::Int(IntType::U8) => DataType::U8,
        V::Int(IntType::I8) => DataType::I8,
        V::Int(IntType::I16) => DataType::I16,
        V::Int(IntType::U16) => DataType::U16,
        V::Int(IntType::I32) => DataType::I32,
        V::Int(IntType::U32) => DataType::U32,
        V::Float(FloatType::F32) => DataType::F32,
        V::Float(FloatType::F64) => DataType::F64,
        _ => return None,
    })
}

/// Reads a window `[level?, y, x]` of a tile's variable. `y` and `x` are
/// relative to the tile.
pub fn read_tile_window(path: &Path, var: &VariableDef, y: Range<usize>, x: Range<usize>) -> Result<TypedArray> {
    quiet_hdf5();
    let err = nc_err(path);
    let file = netcdf::open(path).map_err(&err)?;
    let v = file.variable(&var.name).ok_or_else(|| StoreError::Invalid {
        path: path.to_path_buf(),
        message: format!("no variable {} in the tile", var.name),
    })?;
    let dims: Vec<usize> = v.dimensions().iter().map(|d| d.len()).collect();
    let n = dims.len();
    if n < 2 {
        return Err(StoreError::Invalid { path: path.to_path_buf(), message: "tile variable has fewer than 2 dimensions".into() });
    }
    let mut ranges: Vec<Range<usize>> = dims[..n - 2].iter().map(|&d| 0..d).collect();
    ranges.push(y);
    ranges.push(x);
    for (r, &d) in ranges.iter().zip(&dims) {
        if r.end > d || r.start > r.end {
            return Err(StoreError::Invalid {
                path: path.to_path_buf(),
                message: format!("window {r:?} is outside the tile dimension of length {d}"),
            });
        }
    }
    let a = read_var(path, &v, var.dtype, &ranges)?;
    // Drop the time dimension of length 1: callers get [level?, y, x].
    Ok(a.drop_leading(if var.has_time && n >= 3 { 1 } else { 0 }))
}

/// Reads a whole tile's variable as `[level?, y, x]`.
pub fn read_tile(path: &Path, var: &VariableDef) -> Result<TypedArray> {
    quiet_hdf5();
    let err = nc_err(path);
    let (h, w) = {
        let file = netcdf::open(path).map_err(&err)?;
        let v = file.variable(&var.name).ok_or_else(|| StoreError::Invalid {
            path: path.to_path_buf(),
            message: format!("no variable {} in the tile", var.name),
        })?;
        let d: Vec<usize> = v.dimensions().iter().map(|d| d.len()).collect();
        if d.len() < 2 {
            return Err(StoreError::Invalid { path: path.to_path_buf(), message: "tile variable has fewer than 2 dimensions".into() });
        }
        (d[d.len() - 2], d[d.len() - 1])
    };
    read_tile_window(path, var, 0..h, 0..w)
}
