//! The tile pool: a plain directory tree of NetCDF files.
//!
//! ```text
//! <pool>/<dataset>/<YYYY-MM-DDTHH-MM-SS.sss>/<var>_tile_x<tx>_y<ty>.nc
//! <pool>/<dataset>/static/<var>_tile_x<tx>_y<ty>.nc
//! ```
//!
//! Every file is written under a temporary name in its final directory
//! (`.<name>.tmp-<pid>-<n>`), fsynced, renamed onto a name no other file has
//! (`<var>_tile_x<tx>_y<ty>.nc`, else `....1.nc`, `....2.nc`: see
//! [`write_new`]) and the directory fsynced: a reader never sees half a
//! tile, no writer ever replaces a file another one wrote, and a crash
//! leaves at most files no catalogue row names, which `fsck --repair`
//! removes. The pool is the data; the catalogue is the index.

pub mod inspect;
pub mod layout;
pub mod memory;
pub mod port;
pub mod reader;
pub mod tile;

use crate::model::{Calendar, DatasetName, Timestamp};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory of time-invariant tiles.
pub const STATIC_DIR: &str = "static";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: NetCDF: {message}")]
    NetCdf { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// A pool rooted at a directory.
#[derive(Clone, Debug)]
pub struct Pool {
    root: PathBuf,
}

/// Where one tile lives, relative to the pool root (the first choice: a
/// writer takes the next free name when it is taken, see [`write_new`]).
/// Slice directories are dates in the dataset's calendar (`2001-02-30T...`
/// in a 360_day dataset). Overview level `k` tiles sit beside the slice's
/// own as `<var>_ovr<k>_tile_...`.
pub fn tile_rel_path(dataset: &DatasetName, calendar: Calendar, var: &str, time: Option<Timestamp>, overview: u32, tx: u32, ty: u32) -> String {
    let level = if overview > 1 { format!("_ovr{overview}") } else { String::new() };
    format!("{}/{}/{var}{level}_tile_x{tx}_y{ty}.nc", dataset, slice_dir_name(calendar, time))
}

/// The directory name of a time slice, or `static`.
pub fn slice_dir_name(calendar: Calendar, time: Option<Timestamp>) -> String {
    time.map_or_else(|| STATIC_DIR.to_string(), |t| calendar.slice_dir(t))
}

/// The time a slice directory stands for: `Some(None)` for `static`,
/// `None` if the name is neither.
pub fn parse_slice_dir_name(calendar: Calendar, name: &str) -> Option<Option<Timestamp>> {
    if name == STATIC_DIR { Some(None) } else { calendar.parse_slice_dir(name).map(Some) }
}

impl Pool {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Pool { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dataset_dir(&self, dataset: &DatasetName) -> PathBuf {
        self.root.join(dataset.as_str())
    }

    /// The absolute path of a catalogued relative path. Refuses anything that
    /// could leave the pool (absolute paths, `..`).
    pub fn resolve(&self, rel: &str) -> Result<PathBuf> {
        // Names between slashes, none empty (so not absolute), `.` or `..`:
        // exactly the paths whose components are all normal.
        let plain = rel.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
        if !plain {
            return Err(StoreError::Invalid {
                path: PathBuf::from(rel),
                message: "tile path escapes the pool".into(),
            });
        }
        Ok(self.root.join(rel))
    }

    /// Creates the pool root if needed and checks it is a writable directory.
    pub fn ensure(&self) -> Result<()> {
        fs::create_dir_all(&self.root).map_err(io_err(&self.root))
    }

    /// Removes a dataset's directory and everything in it.
    pub fn remove_dataset(&self, dataset: &DatasetName) -> Result<()> {
        let dir = self.dataset_dir(dataset);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&dir)(e)),
            _ => Ok(()),
        }
    }
}

/// A file written to its final place: size and checksum of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub bytes: u64,
    pub checksum: String,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// True for the temporary names [`write_new`] uses.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Writes a new file at `path` or, when that name is taken, at the first
/// free `<stem>.<n>.<ext>` (n = 1, 2, ...); never over an existing file.
/// Returns the path written. The name is claimed with an exclusive create
/// (atomic on local filesystems and NFSv3+), so two writers can never end
/// up with the same file, and a writer that cleans up after itself removes
/// only what it wrote. The bytes go to a temporary file first, fsynced and
/// hashed, then renamed onto the claimed name: a reader never sees half a
/// file.
pub fn write_new(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<(PathBuf, Written)> {
    let dir = path.parent().ok_or_else(|| StoreError::Invalid {
        path: path.to_path_buf(),
        message: "no parent directory".into(),
    })?;
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("tile");
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        write(&tmp)?;
        let file = fs::File::open(&tmp).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        let written = checksum_file(&tmp)?;
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) => (s, format!(".{e}")),
            None => (name, String::new()),
        };
        for n in 0..100_000u32 {
            let candidate = if n == 0 { path.to_path_buf() } else { dir.join(format!("{stem}.{n}{ext}")) };
            match fs::OpenOptions::new().write(true).create_new(true).open(&candidate) {
                Ok(_) => {
                    if let Err(e) = fs::rename(&tmp, &candidate) {
                        let _ = fs::remove_file(&candidate);
                        return Err(io_err(&candidate)(e));
                    }
                    sync_dir(dir)?;
                    return Ok((candidate, written));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&candidate)(e)),
            }
        }
        Err(StoreError::Invalid { path: path.to_path_buf(), message: "no free file name".into() })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// 1536 -> "1.5 KiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// Bytes an unprivileged writer may still use on the filesystem of `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct we pass; the path is NUL-terminated.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }
}

/// An I/O error in words, without the OS error code clutter:
/// "no space left on device".
pub fn plain_io_error(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

/// fsyncs a directory so that renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// Size and `blake3:<hex>` checksum of a file. blake3 hashes at several
/// GB/s per core, so `fsck` can afford to verify every byte.
pub fn checksum_file(path: &Path) -> Result<Written> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(Written { bytes, checksum: format!("blake3:{}", hasher.finalize().to_hex()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let ds = DatasetName::parse("sst").unwrap();
        let std = Calendar::Standard;
        let t = crate::model::parse_user_time("2010-01-15T12:00:00Z").unwrap();
        assert_eq!(tile_rel_path(&ds, std, "sst", Some(t), 1, 2, 1), "sst/2010-01-15T12-00-00.000/sst_tile_x2_y1.nc");
        assert_eq!(tile_rel_path(&ds, std, "sst", Some(t), 4, 0, 1), "sst/2010-01-15T12-00-00.000/sst_ovr4_tile_x0_y1.nc");
        assert_eq!(tile_rel_path(&ds, std, "mask", None, 1, 0, 0), "sst/static/mask_tile_x0_y0.nc");
        assert_eq!(parse_slice_dir_name(std, "static"), Some(None));
        assert_eq!(parse_slice_dir_name(std, "2010-01-15T12-00-00.000"), Some(Some(t)));
        assert_eq!(parse_slice_dir_name(std, "junk"), None);
        // A date only the 360_day calendar has names its directory.
        let d360 = Calendar::Day360;
        let t = d360.parse_user_time("2001-02-30").unwrap();
        assert_eq!(slice_dir_name(d360, Some(t)), "2001-02-30T00-00-00.000");
        assert_eq!(parse_slice_dir_name(d360, "2001-02-30T00-00-00.000"), Some(Some(t)));
        assert_eq!(parse_slice_dir_name(std, "2001-02-30T00-00-00.000"), None);
    }

    #[test]
    fn resolve_refuses_escapes() {
        let p = Pool::new("/pool");
        assert!(p.resolve("a/b.nc").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/./b"] {
            assert!(p.resolve(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_files_never_replace_existing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("s/sst_tile_x0_y0.nc");
        let (a, _) = write_new(&target, |tmp| fs::write(tmp, b"one").map_err(io_err(tmp))).unwrap();
        let (b, _) = write_new(&target, |tmp| fs::write(tmp, b"two").map_err(io_err(tmp))).unwrap();
        let (c, _) = write_new(&target, |tmp| fs::write(tmp, b"three").map_err(io_err(tmp))).unwrap();
        assert_eq!(a, target);
        assert_eq!(b, dir.path().join("s/sst_tile_x0_y0.1.nc"));
        assert_eq!(c, dir.path().join("s/sst_tile_x0_y0.2.nc"));
        assert_eq!(fs::read(&a).unwrap(), b"one");
        assert_eq!(fs::read(&b).unwrap(), b"two");
        // A failed write leaves nothing behind and claims no name.
        assert!(write_new(&target, |tmp| Err(StoreError::Invalid { path: tmp.to_path_buf(), message: "x".into() })).is_err());
        assert_eq!(fs::read_dir(dir.path().join("s")).unwrap().count(), 3);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x/y.nc");
        let err = write_new(&target, |tmp| {
            fs::write(tmp, b"half").unwrap();
            Err(StoreError::Invalid { path: tmp.to_path_buf(), message: "boom".into() })
        });
        assert!(err.is_err());
        assert_eq!(fs::read_dir(dir.path().join("x")).unwrap().count(), 0);
        let (p, w) = write_new(&target, |tmp| fs::write(tmp, b"data").map_err(io_err(tmp))).unwrap();
        assert_eq!(w.bytes, 4);
        assert_eq!(fs::read(&p).unwrap(), b"data");
        assert!(w.checksum.starts_with("blake3:"));
        assert_eq!(fs::read_dir(dir.path().join("x")).unwrap().count(), 1);
    }
}
