//! XDR encoding of `.dods` data (dap2.md §4).
//!
//! A `.dods` body is the constrained DDS, exactly `Data:\n`, then each sent
//! array in DDS order (Grid: array then maps; Structure: members). Wire
//! facts, all big-endian, every item a multiple of 4 bytes:
//!
//! ```text
//! array (non-String) = count:u32 count:u32 elements [pad]
//! array (String/Url) = count:u32 *( len:u32 bytes pad )
//! scalar             = element (no count)
//!
//! Byte      1 byte per element in arrays, array zero-padded to 4; a scalar
//!           Byte is a 4-byte word with the value in the LAST byte
//! Int16     4 bytes, sign-extended     UInt16  4 bytes, zero-extended
//! Int32     4 bytes                    UInt32  4 bytes
//! Float32   4 bytes IEEE-754           Float64 8 bytes IEEE-754
//! String    len:u32, bytes, zero pad to 4
//! ```
//!
//! Streaming: [`ArrayEncoder::begin`] writes the header, then
//! [`ArrayEncoder::encode`] is called once per band with consecutive chunks
//! of row-major data, and [`ArrayEncoder::finish`] writes the Byte padding
//! and checks that exactly the declared number of elements was written.
//! Each call appends to a caller-owned `Vec<u8>` (typically one buffer per
//! band, sent and reused). [`array_len`] gives the exact size up front.
//!
//! Source element types (see [`super::types`] for the mapping): `u8` → Byte,
//! `i8` → Byte (two's-complement bit pattern), `i16` → Int16, `u16` → Int32
//! (widened) or UInt16, `i32` → Int32, `u32` → UInt32, `f32` → Float32,
//! `f64` → Float64. Any other pairing is an [`XdrError::TypeMismatch`].

use super::types::DapType;
use crate::model::DataType;

/// Encoding errors (all are programming errors of the caller, never the
/// user's: the server must not start a body it cannot finish).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XdrError {
    /// Stored element type cannot be sent as this DAP type.
    #[error("cannot encode {storage} data as DAP2 {dtype}")]
    TypeMismatch {
        /// Source type.
        storage: &'static str,
        /// Declared DAP type.
        dtype: DapType,
    },
    /// More elements than declared.
    #[error("array declared with {declared} elements was given {given}")]
    TooMany {
        /// Declared count.
        declared: u32,
        /// Elements given so far.
        given: u64,
    },
    /// `finish` before all elements were written.
    #[error("array declared with {declared} elements finished after {given}")]
    TooFew {
        /// Declared count.
        declared: u32,
        /// Elements given.
        given: u64,
    },
    /// A string longer than 2³²−1 bytes.
    #[error("string of {0} bytes is too long for XDR")]
    StringTooLong(usize),
}

/// Zero bytes needed to pad `n` bytes to a multiple of 4.
pub fn padding(n: u64) -> usize {
    ((4 - n % 4) % 4) as usize
}

/// Exact XDR bytes of a non-scalar array of `n` elements of `dtype`
/// (counts, data, padding); `None` for String/Url.
pub fn array_len(dtype: DapType, n: u32) -> Option<u64> {
    let size = dtype.wire_size()? as u64;
    let data = u64::from(n) * size;
    Some(4 * dtype.count_words() as u64 + data + padding(data) as u64)
}

/// A stored element type that can be XDR-encoded.
pub trait Element: Copy + sealed::Sealed {
    /// The stored type this is.
    const STORAGE: DataType;
    /// Appends `src` as array elements of `dtype` (no header, no padding).
    fn encode(dtype: DapType, src: &[Self], out: &mut Vec<u8>) -> Result<(), XdrError>;
    /// Appends one scalar of `dtype` (4 or 8 bytes).
    fn encode_scalar(dtype: DapType, v: Self, out: &mut Vec<u8>) -> Result<(), XdrError> {
        if dtype == DapType::Byte {
            let mut tmp = Vec::with_capacity(1);
            Self::encode(dtype, &[v], &mut tmp)?;
            out.extend_from_slice(&[0, 0, 0, tmp[0]]);
            Ok(())
        } else {
            Self::encode(dtype, &[v], out)
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for i8 {}
    impl Sealed for i16 {}
    impl Sealed for u16 {}
    impl Sealed for i32 {}
    impl Sealed for u32 {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

fn mismatch<T: Element>(dtype: DapType) -> XdrError {
    XdrError::TypeMismatch {
        storage: T::STORAGE.name(),
        dtype,
    }
}

/// Appends `W`-byte words converted by `f`; resizes once, then fills in
/// place (compiles to a tight byte-swapping loop).
#[inline]
fn put_words<T: Copy, const W: usize>(out: &mut Vec<u8>, src: &[T], f: impl Fn(T) -> [u8; W]) {
    let start = out.len();
    out.resize(start + src.len() * W, 0);
    for (dst, &v) in out[start..].chunks_exact_mut(W).zip(src) {
        dst.copy_from_slice(&f(v));
    }
}

impl Element for u8 {
    const STORAGE: DataType = DataType::U8;
    fn encode(dtype: DapType, src: &[u8], out: &mut Vec<u8>) -> Result<(), XdrError> {
        match dtype {
            DapType::Byte => out.extend_from_slice(src),
            _ => return Err(mismatch::<u8>(dtype)),
        }
        Ok(())
    }
}

impl Element for i8 {
    const STORAGE: DataType = DataType::I8;
    fn encode(dtype: DapType, src: &[i8], out: &mut Vec<u8>) -> Result<(), XdrError> {
        match dtype {
            DapType::Byte => put_words(out, src, |v| v.to_be_bytes()),
            _ => return Err(mismatch::<i8>(dtype)),
        }
        Ok(())
    }
}

impl Element for i16 {
    const STORAGE: DataType = DataType::I16;
    fn encode(dtype: DapType, src: &[i16], out: &mut Vec<u8>) -> Result<(), XdrError> {
        match dtype {
            DapType::Int16 => put_words(out, src, |v| i32::from(v).to_be_bytes()),
            _ => return Err(mismatch::<i16>(dtype)),
        }
        Ok(())
    }
}

impl Element for u16 {
    const STORAGE: DataType = DataType::U16;
    fn encode(dtype: DapType, src: &[u16], out: &mut Vec<u8>) -> Result<(), XdrError> {
        match dtype {
            // Zero-extended: identical bytes for UInt16 and widened Int32.
            DapType::Int32 | DapType::UInt16 => put_words(out, src, |v| u32::from(v).to_be_bytes()),
            _ => return Err(mismatch::<u16>(dtype)),
        }
        Ok(())
    }
}

impl Element for i32 {
    const STORAGE: DataType = DataType::I32;
    fn encode(dtype: DapType, src: &[i32], out: &mut Vec<u8>) -> Result<(), XdrError> {
        match dtype {
            DapType::Int32 => put_words(out, src, i32::to_be_bytes),
            _ => return Err(mismatch::<i32>(dtype)),
        }
        Ok(())
    }
}

impl Element for u32 {
    const STORAGE: DataType = DataType::U32;
    fn encode(dtype: DapType, src: &[u32], out: &mut Vec<u8>) -> Result<(), XdrError> {
        match dtype {
            DapType::UInt32 => put_words(out, src, u32::to_be_bytes),
            _ => return Err(mismatch::<u32>(dtype)),
        }
        Ok(())
    }
}

impl Element for f32 {
    const STORAGE: DataType = DataType::F32;
    fn encode(dtype: DapType, src: &[f32], out: &mut Vec<u8>) -> Result<(), XdrError> {
        match dtype {
            DapType::Float32 => put_words(out, src, f32::to_be_bytes),
            _ => return Err(mismatch::<f32>(dtype)),
        }
        Ok(())
    }
}

impl Element for f64 {
    const STORAGE: DataType = DataType::F64;
    fn encode(dtype: DapType, src: &[f64], out: &mut Vec<u8>) -> Result<(), XdrError> {
        match dtype {
            DapType::Float64 => put_words(out, src, f64::to_be_bytes),
            _ => return Err(mismatch::<f64>(dtype)),
        }
        Ok(())
    }
}

/// Appends one scalar value (no count), e.g. Int16 −2 → `ff ff ff fe`,
/// Byte 200 → `00 00 00 c8`.
pub fn encode_scalar<T: Element>(dtype: DapType, v: T, out: &mut Vec<u8>) -> Result<(), XdrError> {
    T::encode_scalar(dtype, v, out)
}

/// Appends one String/Url value: length, bytes, zero padding.
pub fn encode_string(s: &[u8], out: &mut Vec<u8>) -> Result<(), XdrError> {
    let n = u32::try_from(s.len()).map_err(|_| XdrError::StringTooLong(s.len()))?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(s);
    out.resize(out.len() + padding(s.len() as u64), 0);
    Ok(())
}

/// Streams one array: header, chunks of elements, padding.
#[derive(Debug)]
#[must_use = "call finish() to write the padding and check the count"]
pub struct ArrayEncoder {
    dtype: DapType,
    declared: u32,
    given: u64,
}

impl ArrayEncoder {
    /// Writes the array header (the count twice, or once for String/Url)
    /// and returns the encoder for its `n` elements.
    pub fn begin(dtype: DapType, n: u32, out: &mut Vec<u8>) -> ArrayEncoder {
        for _ in 0..dtype.count_words() {
            out.extend_from_slice(&n.to_be_bytes());
        }
        ArrayEncoder {
            dtype,
            declared: n,
            given: 0,
        }
    }

    /// Elements still expected.
    pub fn remaining(&self) -> u64 {
        u64::from(self.declared) - self.given
    }

    /// The element total after `n` more, if within the declared count.
    fn after(&self, n: usize) -> Result<u64, XdrError> {
        let given = self.given + n as u64;
        if given > u64::from(self.declared) {
            return Err(XdrError::TooMany {
                declared: self.declared,
                given,
            });
        }
        Ok(given)
    }

    /// Appends the next chunk of elements (row-major order).
    pub fn encode<T: Element>(&mut self, chunk: &[T], out: &mut Vec<u8>) -> Result<(), XdrError> {
        if self.dtype.is_string() {
            return Err(mismatch::<T>(self.dtype));
        }
        let given = self.after(chunk.len())?;
        T::encode(self.dtype, chunk, out)?;
        self.given = given;
        Ok(())
    }

    /// Appends the next chunk of String/Url elements.
    pub fn encode_strings<S: AsRef<[u8]>>(
        &mut self,
        chunk: &[S],
        out: &mut Vec<u8>,
    ) -> Result<(), XdrError> {
        if !self.dtype.is_string() {
            return Err(XdrError::TypeMismatch {
                storage: "string",
                dtype: self.dtype,
            });
        }
        let given = self.after(chunk.len())?;
        chunk
            .iter()
            .try_for_each(|s| encode_string(s.as_ref(), out))?;
        self.given = given;
        Ok(())
    }

    /// Writes the Byte padding (0–3 zero bytes) and checks the count.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), XdrError> {
        if self.given != u64::from(self.declared) {
            return Err(XdrError::TooFew {
                declared: self.declared,
                given: self.given,
            });
        }
        if self.dtype == DapType::Byte {
            out.resize(out.len() + padding(self.given), 0);
        }
        Ok(())
    }
}

/// Encodes a whole array in one go (header, data, padding).
pub fn encode_array<T: Element>(
    dtype: DapType,
    data: &[T],
    out: &mut Vec<u8>,
) -> Result<(), XdrError> {
    let n = u32::try_from(data.len()).map_err(|_| XdrError::TooMany {
        declared: u32::MAX,
        given: data.len() as u64,
    })?;
    let mut enc = ArrayEncoder::begin(dtype, n, out);
    enc.encode(data, out)?;
    enc.finish(out)
}

#[cfg(test)]
mod tests {
    use super::super::ce::parse;
    use super::super::types::DapType;
    use super::super::view::{Array, Range, SentArray, View, ViewVar, resolve, tests::example};
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// Picks the elements of a row-major `src` of `shape` selected by `ranges`.
    fn gather<T: Copy>(src: &[T], shape: &[usize], ranges: &[Range]) -> Vec<T> {
        let mut out = vec![];
        let mut idx = vec![0usize; ranges.len()];
        if ranges.is_empty() {
            return src.to_vec();
        }
        loop {
            let mut off = 0;
            for (d, r) in ranges.iter().enumerate() {
                off = off * shape[d] + r.start + idx[d] * r.stride;
            }
            out.push(src[off]);
            let mut d = ranges.len();
            loop {
                if d == 0 {
                    return out;
                }
                d -= 1;
                idx[d] += 1;
                if idx[d] < ranges[d].count {
                    break;
                }
                idx[d] = 0;
            }
        }
    }

    /// The §4.4 data, served through a fake archive.
    fn encode_sent(a: &SentArray, out: &mut Vec<u8>) {
        let time = [0.0f64, 31.0];
        let lat = [-10.0f32, 0.0, 10.0];
        let lon = [0.0f32, 90.0, 180.0, 270.0];
        let mut sst: Vec<i16> = (0..24).map(|i| 1500 + 10 * i as i16).collect();
        sst[0] = -32768;
        let mask: [u8; 12] = [0, 1, 1, 0, 1, 1, 0, 0, 200, 7, 9, 1];
        let r = a.ranges();
        let mut enc = ArrayEncoder::begin(a.dtype, a.element_count(), out);
        match a.name.as_str() {
            "time" => enc.encode(&gather(&time, &[2], &r), out),
            "lat" => enc.encode(&gather(&lat, &[3], &r), out),
            "lon" => enc.encode(&gather(&lon, &[4], &r), out),
            "sst" => enc.encode(&gather(&sst, &[2, 3, 4], &r), out),
            "mask" => enc.encode(&gather(&mask, &[3, 4], &r), out),
            other => panic!("{other}"),
        }
        .unwrap();
        enc.finish(out).unwrap();
    }

    fn dods(ce: &str) -> Vec<u8> {
        let s = resolve(&example(), &parse(ce).unwrap()).unwrap();
        let mut out = super::super::dds::subset_dds(&s).into_bytes();
        out.extend_from_slice(b"Data:\n");
        for a in s.arrays() {
            encode_sent(a, &mut out);
        }
        assert_eq!(
            Some(out.len() as u64),
            super::super::dds::dods_len(&s),
            "Content-Length for {ce}"
        );
        out
    }

    fn expect(dds: &str, xdr: &str) -> Vec<u8> {
        let mut v = dds.as_bytes().to_vec();
        v.extend_from_slice(b"Data:\n");
        v.extend(hex(xdr));
        v
    }

    #[test]
    fn example_a_prefetch() {
        let got = dods("time,lat,lon");
        let want = expect(
            "Dataset {\n    Float64 time[time = 2];\n    Float32 lat[lat = 3];\n    Float32 lon[lon = 4];\n} example;\n",
            "00 00 00 02 00 00 00 02
             00 00 00 00 00 00 00 00
             40 3f 00 00 00 00 00 00
             00 00 00 03 00 00 00 03
             c1 20 00 00 00 00 00 00 41 20 00 00
             00 00 00 04 00 00 00 04
             00 00 00 00 42 b4 00 00 43 34 00 00 43 87 00 00",
        );
        assert_eq!(got, want);
        assert_eq!(got.len(), 175);
    }

    #[test]
    fn example_b_structure_slab() {
        // Sent percent-encoded by netCDF-C.
        let s = resolve(
            &example(),
            &parse("sst.sst%5b0%5d%5b0:1%5d%5b1:2%5d").unwrap(),
        )
        .unwrap();
        assert_eq!(
            s,
            resolve(&example(), &parse("sst.sst[0][0:1][1:2]").unwrap()).unwrap()
        );
        let want = expect(
            "Dataset {\n    Structure {\n        Int16 sst[time = 1][lat = 2][lon = 2];\n    } sst;\n} example;\n",
            "00 00 00 04 00 00 00 04 00 00 05 e6 00 00 05 f0 00 00 06 0e 00 00 06 18",
        );
        assert_eq!(dods("sst.sst[0][0:1][1:2]"), want);
    }

    #[test]
    fn example_c_grid_slab() {
        let want = expect(
            "Dataset {
    Grid {
      Array:
        Int16 sst[time = 1][lat = 2][lon = 1];
      Maps:
        Float64 time[time = 1];
        Float32 lat[lat = 2];
        Float32 lon[lon = 1];
    } sst;
} example;
",
            "00 00 00 02 00 00 00 02  00 00 06 72 00 00 06 c2
             00 00 00 01 00 00 00 01  40 3f 00 00 00 00 00 00
             00 00 00 02 00 00 00 02  c1 20 00 00 41 20 00 00
             00 00 00 01 00 00 00 01  43 87 00 00",
        );
        let got = dods("sst[1][0:2:2][3]");
        assert_eq!(got, want);
        let s = resolve(&example(), &parse("sst[1][0:2:2][3]").unwrap()).unwrap();
        assert_eq!(s.dods_data_len(), Some(60));
    }

    #[test]
    fn example_d_byte_padding() {
        let want = expect(
            "Dataset {\n    Structure {\n        Byte mask[lat = 1][lon = 3];\n    } mask;\n} example;\n",
            "00 00 00 03 00 00 00 03  c8 07 09 00",
        );
        assert_eq!(dods("mask.mask[2][0:2]"), want);
        // The Grid-name form sends the padded array then each map.
        let got = dods("mask[2][0:2]");
        assert!(got.ends_with(&hex("00 00 00 03 00 00 00 03 c8 07 09 00
             00 00 00 01 00 00 00 01 41 20 00 00
             00 00 00 03 00 00 00 03 00 00 00 00 42 b4 00 00 43 34 00 00")));
    }

    #[test]
    fn example_e_strings() {
        let v = View::new(
            "example",
            vec![ViewVar::Array(Array::new(
                "strv",
                DapType::String,
                [("strv", 2)],
            ))],
        )
        .unwrap();
        let s = resolve(&v, &parse("").unwrap()).unwrap();
        assert_eq!(s.dods_data_len(), None);
        let mut out = super::super::dds::subset_dds(&s).into_bytes();
        out.extend_from_slice(b"Data:\n");
        let mut enc = ArrayEncoder::begin(DapType::String, 2, &mut out);
        enc.encode_strings(&["a"], &mut out).unwrap();
        enc.encode_strings(&["bcd"], &mut out).unwrap();
        enc.finish(&mut out).unwrap();
        assert_eq!(
            out,
            expect(
                "Dataset {\n    String strv[strv = 2];\n} example;\n",
                "00 00 00 02  00 00 00 01 61 00 00 00  00 00 00 03 62 63 64 00"
            )
        );
    }

    #[test]
    fn element_encodings() {
        let enc = |f: &dyn Fn(&mut Vec<u8>) -> Result<(), XdrError>| {
            let mut v = vec![];
            f(&mut v).unwrap();
            v
        };
        assert_eq!(
            enc(&|o| encode_scalar(DapType::Int16, -2i16, o)),
            hex("ff ff ff fe")
        );
        assert_eq!(
            enc(&|o| encode_scalar(DapType::Int16, -32768i16, o)),
            hex("ff ff 80 00")
        );
        assert_eq!(
            enc(&|o| encode_scalar(DapType::Int16, -4975i16, o)),
            hex("ff ff ec 91")
        );
        assert_eq!(
            enc(&|o| encode_scalar(DapType::UInt16, 40000u16, o)),
            hex("00 00 9c 40")
        );
        assert_eq!(
            enc(&|o| encode_scalar(DapType::Int32, 40000u16, o)),
            hex("00 00 9c 40")
        );
        assert_eq!(
            enc(&|o| encode_scalar(DapType::UInt32, 3_000_000_000u32, o)),
            hex("b2 d0 5e 00")
        );
        assert_eq!(
            enc(&|o| encode_scalar(DapType::Float32, 1.5f32, o)),
            hex("3f c0 00 00")
        );
        assert_eq!(
            enc(&|o| encode_scalar(DapType::Float64, 1.5f64, o)),
            hex("3f f8 00 00 00 00 00 00")
        );
        assert_eq!(
            enc(&|o| encode_scalar(DapType::Byte, 200u8, o)),
            hex("00 00 00 c8")
        );
        assert_eq!(
            enc(&|o| encode_scalar(DapType::Byte, -127i8, o)),
            hex("00 00 00 81")
        );
        assert_eq!(
            enc(&|o| encode_string(b"hello", o)),
            hex("00 00 00 05 68 65 6c 6c 6f 00 00 00")
        );
        assert_eq!(
            enc(&|o| encode_array(DapType::Byte, &[-1i8, -128, 0, 127, 5], o)),
            hex("00 00 00 05 00 00 00 05 ff 80 00 7f 05 00 00 00")
        );
        assert_eq!(
            enc(&|o| encode_array(DapType::Int32, &[-1i32, 2], o)),
            hex("00 00 00 02 00 00 00 02 ff ff ff ff 00 00 00 02")
        );
        // Byte arrays of 4 and 8 elements get no padding.
        assert_eq!(
            enc(&|o| encode_array(DapType::Byte, &[1u8; 4], o)).len(),
            12
        );
        assert_eq!(
            enc(&|o| encode_array(DapType::Byte, &[1u8; 8], o)).len(),
            16
        );
    }

    #[test]
    fn lengths_match_encoding() {
        for n in 0..9u32 {
            let mut v = vec![];
            encode_array(DapType::Byte, &vec![7u8; n as usize], &mut v).unwrap();
            assert_eq!(Some(v.len() as u64), array_len(DapType::Byte, n));
            let mut v = vec![];
            encode_array(DapType::Float64, &vec![7f64; n as usize], &mut v).unwrap();
            assert_eq!(Some(v.len() as u64), array_len(DapType::Float64, n));
            let mut v = vec![];
            encode_array(DapType::Int16, &vec![7i16; n as usize], &mut v).unwrap();
            assert_eq!(Some(v.len() as u64), array_len(DapType::Int16, n));
        }
        assert_eq!(array_len(DapType::String, 3), None);
        assert_eq!(
            array_len(DapType::Float32, u32::MAX),
            Some(8 + 4 * u64::from(u32::MAX))
        );
    }

    #[test]
    fn streaming_in_bands_equals_one_shot() {
        let data: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5 - 7.0).collect();
        let mut whole = vec![];
        encode_array(DapType::Float32, &data, &mut whole).unwrap();
        let mut banded = vec![];
        let mut enc = ArrayEncoder::begin(DapType::Float32, 1000, &mut banded);
        for band in data.chunks(137) {
            let mut buf = vec![];
            enc.encode(band, &mut buf).unwrap();
            banded.extend(buf);
        }
        assert_eq!(enc.remaining(), 0);
        enc.finish(&mut banded).unwrap();
        assert_eq!(banded, whole);
        // Byte bands with odd sizes: padding only at the end.
        let bytes: Vec<u8> = (0..=254).collect();
        let mut whole = vec![];
        encode_array(DapType::Byte, &bytes, &mut whole).unwrap();
        let mut banded = vec![];
        let mut enc = ArrayEncoder::begin(DapType::Byte, 255, &mut banded);
        for band in bytes.chunks(7) {
            enc.encode(band, &mut banded).unwrap();
        }
        enc.finish(&mut banded).unwrap();
        assert_eq!(banded, whole);
        assert_eq!(whole.len(), 8 + 256);
    }

    /// The chunked hot path against a naive per-element encoder.
    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn naive<T: Copy, const W: usize>(n: usize, v: &[T], f: impl Fn(T) -> [u8; W]) -> Vec<u8> {
            let mut out = Vec::new();
            for _ in 0..2 {
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            for &x in v {
                out.extend_from_slice(&f(x));
            }
            while out.len() % 4 != 0 {
                out.push(0);
            }
            out
        }

        // 2_000 cases per type.
        proptest! {
            #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]
            #[test]
            fn i16_matches(v in prop::collection::vec(any::<i16>(), 0..300)) {
                let mut out = vec![];
                encode_array(DapType::Int16, &v, &mut out).unwrap();
                prop_assert_eq!(out, naive(v.len(), &v, |x| i32::from(x).to_be_bytes()));
            }
            #[test]
            fn u16_matches(v in prop::collection::vec(any::<u16>(), 0..300)) {
                let mut out = vec![];
                encode_array(DapType::Int32, &v, &mut out).unwrap();
                prop_assert_eq!(out, naive(v.len(), &v, |x| u32::from(x).to_be_bytes()));
            }
            #[test]
            fn i8_matches(v in prop::collection::vec(any::<i8>(), 0..300)) {
                let mut out = vec![];
                encode_array(DapType::Byte, &v, &mut out).unwrap();
                prop_assert_eq!(out, naive(v.len(), &v, |x| [x as u8]));
            }
            #[test]
            fn f64_matches(v in prop::collection::vec(any::<f64>(), 0..300)) {
                let mut out = vec![];
                encode_array(DapType::Float64, &v, &mut out).unwrap();
                prop_assert_eq!(out, naive(v.len(), &v, |x: f64| x.to_bits().to_be_bytes()));
            }
        }
    }

    #[test]
    fn misuse_is_reported() {
        let mut out = vec![];
        let mut enc = ArrayEncoder::begin(DapType::Int16, 2, &mut out);
        assert_eq!(
            enc.encode(&[1.0f32], &mut out).unwrap_err().to_string(),
            "cannot encode f32 data as DAP2 Int16"
        );
        enc.encode(&[1i16], &mut out).unwrap();
        assert_eq!(
            enc.encode(&[1i16, 2], &mut out),
            Err(XdrError::TooMany {
                declared: 2,
                given: 3
            })
        );
        assert_eq!(
            enc.finish(&mut out),
            Err(XdrError::TooFew {
                declared: 2,
                given: 1
            })
        );
        let mut enc = ArrayEncoder::begin(DapType::String, 1, &mut out);
        assert!(enc.encode(&[1u8], &mut out).is_err());
        let mut enc = ArrayEncoder::begin(DapType::Byte, 1, &mut out);
        assert!(enc.encode_strings(&["x"], &mut out).is_err());
        assert!(encode_scalar(DapType::Int32, 1u32, &mut out).is_err());
    }
}
