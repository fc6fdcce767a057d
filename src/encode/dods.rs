//! `.dods`: the constrained DDS, `Data:\n`, then every array in XDR (see
//! [`crate::dap::xdr`]), data arrays band by band.

use super::{CHUNK, Encoder, Out, Stop};
use crate::archive::{ArchiveError, Plan};
use crate::dap::xdr;
use crate::model::TypedArray;
use crate::mosaic::{self, BandSlice};
use crate::store::port::TileStore;
use std::ops::Range;

/// A planned `.dods` response.
pub struct Dods {
    pub plan: Plan,
    /// The subset's DDS, which opens the response.
    dds: String,
    len: u64,
}

impl Dods {
    /// `None` when the length cannot be known (String arrays, never in a
    /// served dataset). `dds`: the subset's DDS
    /// ([`crate::dap::dds::subset_dds`]), rendered once by the caller.
    pub fn new(plan: Plan, dds: String) -> Option<Dods> {
        let len = crate::dap::dds::dods_len_of(&dds, &plan.subset)?;
        Some(Dods { plan, dds, len })
    }
}

impl Encoder for Dods {
    fn content_type(&self) -> &'static str {
        "application/octet-stream"
    }
    fn description(&self) -> &'static str {
        "dods_data"
    }
    fn len(&self) -> Option<u64> {
        Some(self.len)
    }
    fn produce(&self, tiles: &dyn TileStore, _range: Range<u64>, sink: &mut dyn FnMut(Vec<u8>) -> bool) -> Result<(), Stop> {
        let mut out = Out::new(sink);
        produce_dods(&self.plan, &self.dds, tiles, &mut out)?;
        out.flush()
    }
}

fn xdr_err(e: xdr::XdrError) -> Stop {
    Stop::Failed(ArchiveError::Internal(format!("encoding: {e}")))
}

fn encode_band(enc: &mut xdr::ArrayEncoder, band: &TypedArray, out: &mut Vec<u8>) -> Result<(), Stop> {
    mosaic::with_band_slice(band, |s| match s {
        BandSlice::U8(v) => enc.encode(v, out),
        BandSlice::I8(v) => enc.encode(v, out),
        BandSlice::I16(v) => enc.encode(v, out),
        BandSlice::U16(v) => enc.encode(v, out),
        BandSlice::I32(v) => enc.encode(v, out),
        BandSlice::U32(v) => enc.encode(v, out),
        BandSlice::F32(v) => enc.encode(v, out),
        BandSlice::F64(v) => enc.encode(v, out),
    })
    .map_err(xdr_err)
}

fn produce_dods(plan: &Plan, dds: &str, reader: &dyn TileStore, out: &mut Out<'_>) -> Result<(), Stop> {
    out.buf.extend_from_slice(dds.as_bytes());
    out.buf.extend_from_slice(b"Data:\n");
    for a in plan.subset.arrays() {
        if plan.dataset.data_variable(&a.name).is_some() {
            let mut enc = xdr::ArrayEncoder::begin(a.dtype, a.element_count(), &mut out.buf);
            plan.data_bands(reader, a, 0, &mut |_, band| {
                // Encode in pieces of about CHUNK bytes so that the buffer
                // and the chunks in flight stay small.
                let per = (CHUNK / a.dtype.wire_size().unwrap_or(4).max(1)).max(1);
                mosaic::with_band_slice(band, |s| -> Result<(), Stop> {
                    match s {
                        BandSlice::U8(v) => v.chunks(per).try_for_each(|c| { enc.encode(c, &mut out.buf).map_err(xdr_err)?; out.maybe_flush() }),
                        BandSlice::I8(v) => v.chunks(per).try_for_each(|c| { enc.encode(c, &mut out.buf).map_err(xdr_err)?; out.maybe_flush() }),
                        BandSlice::I16(v) => v.chunks(per).try_for_each(|c| { enc.encode(c, &mut out.buf).map_err(xdr_err)?; out.maybe_flush() }),
                        BandSlice::U16(v) => v.chunks(per).try_for_each(|c| { enc.encode(c, &mut out.buf).map_err(xdr_err)?; out.maybe_flush() }),
                        BandSlice::I32(v) => v.chunks(per).try_for_each(|c| { enc.encode(c, &mut out.buf).map_err(xdr_err)?; out.maybe_flush() }),
                        BandSlice::U32(v) => v.chunks(per).try_for_each(|c| { enc.encode(c, &mut out.buf).map_err(xdr_err)?; out.maybe_flush() }),
                        BandSlice::F32(v) => v.chunks(per).try_for_each(|c| { enc.encode(c, &mut out.buf).map_err(xdr_err)?; out.maybe_flush() }),
                        BandSlice::F64(v) => v.chunks(per).try_for_each(|c| { enc.encode(c, &mut out.buf).map_err(xdr_err)?; out.maybe_flush() }),
                    }
                })?;
                Ok(true)
            })?;
            enc.finish(&mut out.buf).map_err(xdr_err)?;
        } else {
            let values = plan.coordinate_values(a)?;
            if a.is_scalar() {
                mosaic::with_band_slice(&values, |s| match s {
                    BandSlice::U8(v) => xdr::encode_scalar(a.dtype, v[0], &mut out.buf),
                    BandSlice::I8(v) => xdr::encode_scalar(a.dtype, v[0], &mut out.buf),
                    BandSlice::I16(v) => xdr::encode_scalar(a.dtype, v[0], &mut out.buf),
                    BandSlice::U16(v) => xdr::encode_scalar(a.dtype, v[0], &mut out.buf),
                    BandSlice::I32(v) => xdr::encode_scalar(a.dtype, v[0], &mut out.buf),
                    BandSlice::U32(v) => xdr::encode_scalar(a.dtype, v[0], &mut out.buf),
                    BandSlice::F32(v) => xdr::encode_scalar(a.dtype, v[0], &mut out.buf),
                    BandSlice::F64(v) => xdr::encode_scalar(a.dtype, v[0], &mut out.buf),
                })
                .map_err(xdr_err)?;
            } else {
                let mut enc = xdr::ArrayEncoder::begin(a.dtype, a.element_count(), &mut out.buf);
                encode_band(&mut enc, &values, &mut out.buf)?;
                enc.finish(&mut out.buf).map_err(xdr_err)?;
            }
        }
        out.maybe_flush()?;
    }
    Ok(())
}

