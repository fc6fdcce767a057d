//! Encoders: a planned response turned into the bytes of one format,
//! produced into a sink band by band (memory bounded by a band, not by the
//! response). One trait, [`Encoder`], for the formats produced while they
//! are sent:
//!
//! | suffix | encoder | length known up front | byte ranges |
//! |---|---|---|---|
//! | `.dods` | [`dods::Dods`] | yes | no |
//! | `.ascii` | [`ascii::Ascii`] | no | no |
//! | `.nc` | [`nc::NcExport`] (NetCDF classic, [`classic`]) | yes | yes |
//! | `.nc4` | [`nc4::Nc4`] (NetCDF-4, written to a temporary file first) | yes, once written | no |
//!
//! The HTTP layer builds an encoder from a plan and sends it; headers
//! (media type, DAP2 description, length, file name) come from the
//! encoder. HDF5 cannot be written as a stream, so [`nc4::Nc4::write`]
//! writes the file through libnetcdf before the encoder exists; it is then
//! sent like any body. [`ncml`] renders the NcML of a dataset (metadata
//! only).

pub mod ascii;
pub mod classic;
pub mod dods;
pub mod nc;
pub mod nc4;
pub mod ncml;

pub use crate::archive::Stop;
use crate::store::port::TileStore;
use std::ops::Range;

/// Bytes handed to the sink at a time.
pub(crate) const CHUNK: usize = 1 << 20;

/// A response body in one format.
pub trait Encoder: Send + Sync + 'static {
    /// `Content-Type`.
    fn content_type(&self) -> &'static str;
    /// DAP2's `Content-Description` (`dods_data`, `dods_ascii`, ...).
    fn description(&self) -> &'static str;
    /// The exact length, when known before producing (`Content-Length`).
    fn len(&self) -> Option<u64>;
    /// Whether any byte range can be produced alone (HTTP `Range`).
    fn ranges(&self) -> bool {
        false
    }
    /// A file name for downloads (`Content-Disposition`).
    fn filename(&self) -> Option<String> {
        None
    }
    /// Whether [`Encoder::produce`] reads nothing but tiles (through the
    /// store it is given): a small response can then be produced from
    /// memory on the async runtime.
    fn reads_only_tiles(&self) -> bool {
        true
    }
    /// Produces bytes `range` of the body into `sink` (`0..u64::MAX` for
    /// all of it; a range only where [`Encoder::ranges`]). Blocking: run
    /// it through [`crate::blocking`].
    fn produce(&self, tiles: &dyn TileStore, range: Range<u64>, sink: &mut dyn FnMut(Vec<u8>) -> bool) -> Result<(), Stop>;
}

/// Buffers output and hands it to the sink in chunks; `false` from the sink
/// (the client went away) stops production.
pub struct Out<'a> {
    pub buf: Vec<u8>,
    sink: &'a mut dyn FnMut(Vec<u8>) -> bool,
}

impl<'a> Out<'a> {
    pub fn new(sink: &'a mut dyn FnMut(Vec<u8>) -> bool) -> Self {
        Out { buf: Vec::with_capacity(CHUNK + CHUNK / 4), sink }
    }
    pub fn maybe_flush(&mut self) -> Result<(), Stop> {
        if self.buf.len() >= CHUNK { self.flush() } else { Ok(()) }
    }
    pub fn flush(&mut self) -> Result<(), Stop> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + CHUNK / 4));
        if (self.sink)(chunk) { Ok(()) } else { Err(Stop::Closed) }
    }
}
