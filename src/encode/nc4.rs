//! `.nc4`: NetCDF-4. HDF5 cannot be written as a stream, so [`Nc4::write`]
//! writes the whole file through libnetcdf into a temporary file first;
//! the encoder then sends that file like any other body. The file lives as
//! long as the encoder: dropping it (transfer done, failed, or the client
//! gone) removes the file.

use super::nc::NcExport;
use super::{CHUNK, Encoder, Stop};
use crate::archive::ArchiveError;
use crate::store::port::TileStore;
use crate::store::{free_bytes, human_bytes, plain_io_error};
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

/// A NetCDF-4 file written for one response.
pub struct Nc4 {
    file: tempfile::NamedTempFile,
    len: u64,
    filename: String,
}

impl Nc4 {
    /// The download's file name, without writing anything (for `HEAD`).
    pub fn filename(export: &NcExport) -> String {
        format!("{}4", export.filename)
    }

    /// Writes the file into the temporary directory. Blocking: run it
    /// through [`crate::blocking`]. libnetcdf must never meet a full disk
    /// (its error says only "HDF error", and the file it could not close
    /// stays open), so a directory without room for the data uncompressed
    /// is refused first, as unavailable for now.
    pub fn write(export: &NcExport, tiles: &dyn TileStore) -> Result<Nc4, ArchiveError> {
        let dir = std::env::temp_dir();
        let need = export.layout.total_len() + (64 << 10);
        if let Some(free) = free_bytes(&dir).filter(|&f| f < need) {
            metrics::counter!("tessera_requests_rejected_total", "reason" => "no_temp_space").increment(1);
            tracing::error!(need, free, "no room in the temporary directory for a NetCDF-4 download");
            return Err(ArchiveError::Unavailable(format!(
                "the server has no room to build this NetCDF-4 file (about {} needed, {} free); retry later, ask for less, or ask for .nc, which needs none",
                human_bytes(need),
                human_bytes(free)
            )));
        }
        let file = tempfile::Builder::new()
            .prefix("tessera-")
            .suffix(".nc4")
            .tempfile_in(&dir)
            .map_err(|e| ArchiveError::Internal(format!("cannot create a temporary file: {}", plain_io_error(&e))))?;
        export.write_nc4(tiles, file.path())?;
        let len = file.as_file().metadata().map_err(|e| ArchiveError::Internal(plain_io_error(&e)))?.len();
        Ok(Nc4 { file, len, filename: Nc4::filename(export) })
    }
}

impl Encoder for Nc4 {
    fn content_type(&self) -> &'static str {
        "application/x-netcdf4"
    }
    fn description(&self) -> &'static str {
        "dods_netcdf4"
    }
    fn len(&self) -> Option<u64> {
        Some(self.len)
    }
    fn filename(&self) -> Option<String> {
        Some(self.filename.clone())
    }
    /// The body is the temporary file written before.
    fn reads_only_tiles(&self) -> bool {
        false
    }

    fn produce(&self, _tiles: &dyn TileStore, range: Range<u64>, sink: &mut dyn FnMut(Vec<u8>) -> bool) -> Result<(), Stop> {
        let failed = |e: std::io::Error| Stop::Failed(ArchiveError::Internal(format!("reading the NetCDF-4 file: {}", plain_io_error(&e))));
        let mut f = self.file.reopen().map_err(failed)?;
        f.seek(SeekFrom::Start(range.start)).map_err(failed)?;
        let mut left = range.end.min(self.len).saturating_sub(range.start);
        while left > 0 {
            let mut buf = vec![0u8; CHUNK.min(left as usize)];
            let n = f.read(&mut buf).map_err(failed)?;
            if n == 0 {
                return Err(Stop::Failed(ArchiveError::Internal("the NetCDF-4 file ended early".into())));
            }
            buf.truncate(n);
            left -= n as u64;
            if !sink(buf) {
                return Err(Stop::Closed);
            }
        }
        Ok(())
    }
}
