//! Pure DAP2 (OPeNDAP) protocol code for tessera: constraint expressions,
//! the dataset view and constraint resolution, DDS/DAS text, XDR encoding,
//! the `.ascii` format and DAP2 error bodies.
//!
//! Nothing here performs I/O, names an HTTP, async or storage type, or
//! allocates per element beyond the output buffers. Modules refer to each
//! other through `super::`.
//!
//! Request flow: [`ce::parse`] the raw query → [`view::resolve`] it against
//! a [`view::View`] (all 400-class errors happen here, before any byte is
//! sent) → send [`dds::subset_dds`] + `Data:\n` and stream each
//! [`view::SentArray`] with an [`xdr::ArrayEncoder`]; `Content-Length` is
//! known up front from [`dds::dods_len`].

pub mod ascii;
pub mod ce;
pub mod das;
pub mod dds;
pub mod error;
pub mod types;
pub mod view;
pub mod xdr;
