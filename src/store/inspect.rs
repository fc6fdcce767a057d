//! Finding the [`TileLayout`] of a variable in a tile file, once: when the
//! tile is written, by `tessera reindex`, and by `fsck`, which compares it
//! with the catalogued one. Also the other half of HDF5 used directly:
//! [`write_chunks`] stores chunks compressed outside the library lock.
//!
//! NetCDF-4 tiles are asked through HDF5's own API (`H5Dget_chunk_info`,
//! HDF5 >= 1.10.5), under libnetcdf's lock. HDF5 is reached through
//! libnetcdf with `dlsym`, as [`super::tile::quiet_hdf5`] does, rather than
//! through an HDF5 binding crate: those link HDF5 a second time by their
//! own discovery of it, and tessera needs eleven calls of it. NetCDF-3
//! tiles need no library: their header says where each variable begins.

use super::layout::{Chunk, Filter, Storage, TileLayout};
use std::ffi::{CString, c_char, c_int, c_uint, c_void};
use std::io::Read;
use std::path::Path;

type Hid = i64;
type Herr = c_int;

/// The HDF5 functions used, found once.
struct Hdf5 {
    fopen: unsafe extern "C" fn(*const c_char, c_uint, Hid) -> Hid,
    fclose: unsafe extern "C" fn(Hid) -> Herr,
    dopen: unsafe extern "C" fn(Hid, *const c_char, Hid) -> Hid,
    dclose: unsafe extern "C" fn(Hid) -> Herr,
    dget_space: unsafe extern "C" fn(Hid) -> Hid,
    sclose: unsafe extern "C" fn(Hid) -> Herr,
    sget_dims: unsafe extern "C" fn(Hid, *mut u64, *mut u64) -> c_int,
    dget_type: unsafe extern "C" fn(Hid) -> Hid,
    tget_order: unsafe extern "C" fn(Hid) -> c_int,
    tget_size: unsafe extern "C" fn(Hid) -> usize,
    tclose: unsafe extern "C" fn(Hid) -> Herr,
    dget_plist: unsafe extern "C" fn(Hid) -> Hid,
    pclose: unsafe extern "C" fn(Hid) -> Herr,
    pget_layout: unsafe extern "C" fn(Hid) -> c_int,
    pget_chunk: unsafe extern "C" fn(Hid, c_int, *mut u64) -> c_int,
    pget_nfilters: unsafe extern "C" fn(Hid) -> c_int,
    #[allow(clippy::type_complexity)]
    pget_filter: unsafe extern "C" fn(Hid, c_uint, *mut c_uint, *mut usize, *mut c_uint, usize, *mut c_char, *mut c_uint) -> c_int,
    dget_num_chunks: unsafe extern "C" fn(Hid, Hid, *mut u64) -> Herr,
    dget_chunk_info: unsafe extern "C" fn(Hid, Hid, u64, *mut u64, *mut c_uint, *mut u64, *mut u64) -> Herr,
    dget_offset: unsafe extern "C" fn(Hid) -> u64,
    dwrite_chunk: unsafe extern "C" fn(Hid, Hid, u32, *const u64, usize, *const c_void) -> Herr,
}

// Each transmute's target is the type of the field it fills.
#[allow(clippy::missing_transmute_annotations)]
fn hdf5() -> Option<&'static Hdf5> {
    static FOUND: std::sync::OnceLock<Option<Hdf5>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            fn sym(name: &std::ffi::CStr) -> Option<*mut c_void> {
                // SAFETY: dlsym with a NUL-terminated name.
                let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
                (!p.is_null()).then_some(p)
            }
            // SAFETY: each symbol is the HDF5 >= 1.10 function of that name,
            // whose C signature the field's type spells (hid_t = int64_t,
            // hsize_t = haddr_t = uint64_t, herr_t = int).
            unsafe {
                Some(Hdf5 {
                    fopen: std::mem::transmute(sym(c"H5Fopen")?),
                    fclose: std::mem::transmute(sym(c"H5Fclose")?),
                    dopen: std::mem::transmute(sym(c"H5Dopen2")?),
                    dclose: std::mem::transmute(sym(c"H5Dclose")?),
                    dget_space: std::mem::transmute(sym(c"H5Dget_space")?),
                    sclose: std::mem::transmute(sym(c"H5Sclose")?),
                    sget_dims: std::mem::transmute(sym(c"H5Sget_simple_extent_dims")?),
                    dget_type: std::mem::transmute(sym(c"H5Dget_type")?),
                    tget_order: std::mem::transmute(sym(c"H5Tget_order")?),
                    tget_size: std::mem::transmute(sym(c"H5Tget_size")?),
                    tclose: std::mem::transmute(sym(c"H5Tclose")?),
                    dget_plist: std::mem::transmute(sym(c"H5Dget_create_plist")?),
                    pclose: std::mem::transmute(sym(c"H5Pclose")?),
                    pget_layout: std::mem::transmute(sym(c"H5Pget_layout")?),
                    pget_chunk: std::mem::transmute(sym(c"H5Pget_chunk")?),
                    pget_nfilters: std::mem::transmute(sym(c"H5Pget_nfilters")?),
                    pget_filter: std::mem::transmute(sym(c"H5Pget_filter2")?),
                    dget_num_chunks: std::mem::transmute(sym(c"H5Dget_num_chunks")?),
                    dget_chunk_info: std::mem::transmute(sym(c"H5Dget_chunk_info")?),
                    dget_offset: std::mem::transmute(sym(c"H5Dget_offset")?),
                    dwrite_chunk: std::mem::transmute(sym(c"H5Dwrite_chunk")?),
                })
            }
        })
        .as_ref()
}

/// Closes an HDF5 identifier when dropped.
struct Handle(Hid, unsafe extern "C" fn(Hid) -> Herr);

impl Drop for Handle {
    fn drop(&mut self) {
        if self.0 >= 0 {
            // SAFETY: a valid identifier, closed once with its own close.
            unsafe {
                (self.1)(self.0);
            }
        }
    }
}

fn open(id: Hid, close: unsafe extern "C" fn(Hid) -> Herr, what: &str) -> Result<Handle, String> {
    if id < 0 { Err(format!("HDF5 cannot open {what}")) } else { Ok(Handle(id, close)) }
}

/// The layout of `var` in a tile file, or `None` when the direct reader
/// cannot read it (another filter, compact storage, a chunk never written,
/// an HDF5 without `H5Dget_chunk_info`). Errors are files that cannot be
/// read at all.
pub fn layout(path: &Path, var: &str) -> Result<Option<TileLayout>, String> {
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).map_err(|e| format!("{}: {e}", path.display()))?;
    if &magic[..3] == b"CDF" {
        let header = read_header(path)?;
        return classic_layout(&header, var);
    }
    let _lock = netcdf_sys::libnetcdf_lock.lock();
    super::tile::quiet_hdf5();
    hdf5_layout(path, var)
}

fn hdf5_layout(path: &Path, var: &str) -> Result<Option<TileLayout>, String> {
    let Some(h) = hdf5() else { return Ok(None) };
    use std::os::unix::ffi::OsStrExt;
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| "path holds a NUL byte".to_string())?;
    let cvar = CString::new(format!("/{var}")).map_err(|_| "name holds a NUL byte".to_string())?;
    // SAFETY: HDF5 calls with valid identifiers and buffers of the sizes
    // the calls are told; identifiers are closed by `Handle`. Called under
    // libnetcdf's lock, like every other HDF5 use in the process.
    unsafe {
        // H5F_ACC_RDONLY = 0, H5P_DEFAULT = 0.
        let file = open((h.fopen)(cpath.as_ptr(), 0, 0), h.fclose, "the file")?;
        let dset = open((h.dopen)(file.0, cvar.as_ptr(), 0), h.dclose, "the variable")?;
        let space = open((h.dget_space)(dset.0), h.sclose, "its dataspace")?;
        let mut dims = [0u64; 8];
        let ndims = (h.sget_dims)(space.0, dims.as_mut_ptr(), std::ptr::null_mut());
        if !(1..=8).contains(&ndims) {
            return Ok(None);
        }
        let shape = dims[..ndims as usize].to_vec();
        let dtype = open((h.dget_type)(dset.0), h.tclose, "its type")?;
        let elem = (h.tget_size)(dtype.0);
        let big_endian = match (h.tget_order)(dtype.0) {
            0 => false,
            1 => true,
            _ => return Ok(None),
        };
        if !matches!(elem, 1 | 2 | 4 | 8) {
            return Ok(None);
        }
        let plist = open((h.dget_plist)(dset.0), h.pclose, "its properties")?;
        // H5D_CONTIGUOUS = 1, H5D_CHUNKED = 2.
        match (h.pget_layout)(plist.0) {
            1 => {
                let offset = (h.dget_offset)(dset.0);
                if offset == u64::MAX {
                    return Ok(None);
                }
                Ok(Some(TileLayout { shape, elem: elem as u8, big_endian, storage: Storage::Contiguous { offset } }))
            }
            2 => {
                let mut chunk = [0u64; 8];
                if (h.pget_chunk)(plist.0, 8, chunk.as_mut_ptr()) != ndims {
                    return Ok(None);
                }
                let chunk = chunk[..ndims as usize].to_vec();
                let mut filters = Vec::new();
                for i in 0..(h.pget_nfilters)(plist.0).max(0) {
                    let (mut flags, mut nelmts, mut config) = (0u32, 8usize, 0u32);
                    let mut cd = [0u32; 8];
                    let mut name = [0 as c_char; 64];
                    let id = (h.pget_filter)(plist.0, i as c_uint, &mut flags, &mut nelmts, cd.as_mut_ptr(), name.len(), name.as_mut_ptr(), &mut config);
                    match u8::try_from(id).ok().and_then(Filter::from_id) {
                        Some(f) => filters.push(f),
                        None => return Ok(None),
                    }
                }
                let mut n = 0u64;
                // The whole dataspace (HDF5 1.10 refuses H5S_ALL here).
                if (h.dget_num_chunks)(dset.0, space.0, &mut n) < 0 {
                    return Ok(None);
                }
                let grid: Vec<u64> = shape.iter().zip(&chunk).map(|(&d, &c)| d.div_ceil(c)).collect();
                let total: u64 = grid.iter().product();
                if n != total {
                    // Some chunk was never written: its values are the
                    // fill value, which only the library knows to give.
                    return Ok(None);
                }
                let mut chunks = vec![None; total as usize];
                for i in 0..n {
                    let mut at = [0u64; 8];
                    let (mut mask, mut addr, mut size) = (0u32, 0u64, 0u64);
                    if (h.dget_chunk_info)(dset.0, space.0, i, at.as_mut_ptr(), &mut mask, &mut addr, &mut size) < 0 {
                        return Ok(None);
                    }
                    let mut linear = 0u64;
                    for d in 0..ndims as usize {
                        if at[d] % chunk[d] != 0 || at[d] >= shape[d] {
                            return Ok(None);
                        }
                        linear = linear * grid[d] + at[d] / chunk[d];
                    }
                    chunks[linear as usize] = Some(Chunk { offset: addr, size, mask });
                }
                Ok(Some(TileLayout { shape, elem: elem as u8, big_endian, storage: Storage::Chunked { chunk, filters, chunks } }))
            }
            _ => Ok(None),
        }
    }
}

/// Whether [`write_chunks`] can work here (HDF5 >= 1.10.5 found).
pub fn can_write_chunks() -> bool {
    hdf5().is_some()
}

/// Writes the chunks of `var` in a NetCDF-4 tile whose variable is defined
/// (chunked, with its filters) but holds no data yet: each chunk is cut
/// from `values` (native byte order, row-major, `shape` = the variable's
/// dimensions), shuffled and deflated on every core (rayon), then stored
/// as is with `H5Dwrite_chunk` under libnetcdf's lock. What libnetcdf
/// would do one chunk at a time with zlib inside its lock.
#[allow(clippy::too_many_arguments)]
pub fn write_chunks(path: &Path, var: &str, values: &[u8], shape: &[usize], chunk: &[usize], elem: usize, shuffle: bool, level: i32) -> Result<(), String> {
    use rayon::prelude::*;
    let h = hdf5().ok_or("HDF5's direct chunk write is not available")?;
    let grid: Vec<usize> = shape.iter().zip(chunk).map(|(&d, &c)| d.div_ceil(c)).collect();
    let total: usize = grid.iter().product();
    let encoded: Vec<Vec<u8>> = (0..total)
        .into_par_iter()
        .map(|i| super::layout::encode_chunk(&super::layout::cut_chunk(values, shape, chunk, elem, i), elem, shuffle, level))
        .collect::<Result<_, _>>()?;
    use std::os::unix::ffi::OsStrExt;
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| "path holds a NUL byte".to_string())?;
    let cvar = CString::new(format!("/{var}")).map_err(|_| "name holds a NUL byte".to_string())?;
    let _lock = netcdf_sys::libnetcdf_lock.lock();
    super::tile::quiet_hdf5();
    // SAFETY: as in `hdf5_layout`; each buffer outlives its call and its
    // length is the one passed. H5F_ACC_RDWR = 1, H5P_DEFAULT = 0.
    unsafe {
        let file = open((h.fopen)(cpath.as_ptr(), 1, 0), h.fclose, "the file for writing")?;
        let dset = open((h.dopen)(file.0, cvar.as_ptr(), 0), h.dclose, "the variable")?;
        // The chunks hold native values: refuse a variable stored otherwise.
        {
            let dtype = open((h.dget_type)(dset.0), h.tclose, "its type")?;
            let native = if cfg!(target_endian = "big") { 1 } else { 0 };
            if (h.tget_size)(dtype.0) != elem || (h.tget_order)(dtype.0) != native {
                return Err(format!("{var} is not stored as native {elem}-byte values"));
            }
        }
        for (i, bytes) in encoded.iter().enumerate() {
            let mut offset = vec![0u64; shape.len()];
            let mut rest = i;
            for d in (0..shape.len()).rev() {
                offset[d] = ((rest % grid[d]) * chunk[d]) as u64;
                rest /= grid[d];
            }
            if (h.dwrite_chunk)(dset.0, 0, 0, offset.as_ptr(), bytes.len(), bytes.as_ptr().cast()) < 0 {
                return Err(format!("HDF5 cannot write chunk {i}"));
            }
        }
        drop(dset);
        if (h.fclose)(file.0) < 0 {
            std::mem::forget(file);
            return Err("HDF5 cannot close the file".into());
        }
        std::mem::forget(file);
    }
    Ok(())
}

/// The header of a NetCDF-3 file (it is at most a few kilobytes for a tile;
/// 1 MiB is read at most).
fn read_header(path: &Path) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(1 << 20).read_to_end(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(buf)
}

/// Where `var` begins in a NetCDF-3 (CDF-1 or CDF-2) file, from its header
/// (the format is NetCDF's "classic format specification"). `None` for a
/// record variable, whose values are interleaved with other records.
pub fn classic_layout(header: &[u8], var: &str) -> Result<Option<TileLayout>, String> {
    struct H<'a> {
        b: &'a [u8],
        at: usize,
    }
    impl H<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8], String> {
            let s = self.b.get(self.at..self.at + n).ok_or("the NetCDF-3 header ends early")?;
            self.at += n;
            Ok(s)
        }
        fn u32(&mut self) -> Result<u64, String> {
            Ok(u64::from(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes"))))
        }
        fn u64(&mut self) -> Result<u64, String> {
            Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
        }
        fn name(&mut self) -> Result<String, String> {
            let n = self.u32()? as usize;
            let s = String::from_utf8_lossy(self.take(n)?).into_owned();
            self.take((4 - n % 4) % 4)?;
            Ok(s)
        }
        /// A list's tag and length (ABSENT is two zero words).
        fn list(&mut self, tag: u64) -> Result<u64, String> {
            let (t, n) = (self.u32()?, self.u32()?);
            if t != tag && !(t == 0 && n == 0) {
                return Err("the NetCDF-3 header is malformed".into());
            }
            Ok(n)
        }
        fn skip_attrs(&mut self) -> Result<(), String> {
            for _ in 0..self.list(0x0C)? {
                self.name()?;
                let size = type_size(self.u32()?)?;
                let n = self.u32()? as usize * size;
                self.take(n + (4 - n % 4) % 4)?;
            }
            Ok(())
        }
    }
    fn type_size(t: u64) -> Result<usize, String> {
        match t {
            1 | 2 => Ok(1),
            3 => Ok(2),
            4 | 5 => Ok(4),
            6 => Ok(8),
            _ => Err(format!("the NetCDF-3 header names type {t}")),
        }
    }
    let mut h = H { b: header, at: 0 };
    let magic = h.take(4)?;
    let offset64 = match magic {
        b"CDF\x01" => false,
        b"CDF\x02" => true,
        _ => return Ok(None),
    };
    h.u32()?; // numrecs
    let mut dims = Vec::new();
    for _ in 0..h.list(0x0A)? {
        h.name()?;
        dims.push(h.u32()?);
    }
    h.skip_attrs()?;
    for _ in 0..h.list(0x0B)? {
        let name = h.name()?;
        let ids = (0..h.u32()?).map(|_| h.u32()).collect::<Result<Vec<_>, _>>()?;
        h.skip_attrs()?;
        let elem = type_size(h.u32()?)?;
        h.u32()?; // vsize
        let begin = if offset64 { h.u64()? } else { h.u32()? };
        if name != var {
            continue;
        }
        let shape = ids.iter().map(|&i| dims.get(i as usize).copied().ok_or("the NetCDF-3 header names no such dimension")).collect::<Result<Vec<_>, _>>()?;
        if shape.is_empty() || shape.contains(&0) {
            // A scalar, or a record variable (the unlimited dimension has
            // length 0 in the header).
            return Ok(None);
        }
        return Ok(Some(TileLayout { shape, elem: elem as u8, big_endian: true, storage: Storage::Contiguous { offset: begin } }));
    }
    Err(format!("the file has no variable {var}"))
}
