//! Streaming encoder for the NetCDF *classic* file formats (CDF-1, CDF-2, CDF-5).
//!
//! The classic formats store a self-describing header followed by the data of
//! every variable, contiguously, in definition order. Without a record
//! (unlimited) dimension — which this module does not support — the position of
//! every byte of the file is a pure function of the header. [`Layout`]
//! computes that header once; afterwards a producer can
//!
//! * announce the exact file size ([`Layout::total_len`]) before sending
//!   anything (e.g. as HTTP `Content-Length`),
//! * emit the file front to back with constant memory, one chunk of
//!   big-endian values at a time ([`encode_be`], [`Layout::padding`]), and
//! * start at any byte offset (HTTP `Range`) without producing what comes
//!   before it ([`Layout::segment_at`], [`Layout::element_offset`],
//!   [`Layout::pieces`]).
//!
//! # Example
//!
//! ```
//! # use tessera::encode::classic::*;
//! let dims = [Dim::new("lat", 2), Dim::new("lon", 3)];
//! let vars = [
//!     Var::new("lat", NcType::Float, vec![0]).with_attr("units", "degrees_north"),
//!     Var::new("t2m", NcType::Double, vec![0, 1]).with_attr("_FillValue", f64::NAN),
//! ];
//! let layout = Layout::new(&dims, &vars, &[("title".into(), "subset".into())], None)?;
//! assert_eq!(layout.version(), Version::Cdf2);
//! let content_length = layout.total_len();
//!
//! // Produce element values on demand (here: computed; in a server: read from storage).
//! let produce = |var: usize, elements: std::ops::Range<u64>| {
//!     let mut out = Vec::new();
//!     match var {
//!         0 => encode_be(&elements.map(|i| i as f32 * 10.0).collect::<Vec<_>>(), &mut out),
//!         _ => encode_be(&elements.map(|i| i as f64).collect::<Vec<_>>(), &mut out),
//!     }
//!     out
//! };
//!
//! // Full body, streamed variable by variable.
//! let mut body = Vec::new();
//! layout.write_to(&mut body, |var| produce(var, 0..layout.num_elements(var)))?;
//! assert_eq!(body.len() as u64, content_length);
//!
//! // `Range: bytes=start-` starting inside t2m[1][1]: only the needed elements are produced.
//! let start = layout.element_offset(1, layout.element_index(1, &[1, 1]).unwrap()) + 3;
//! assert_eq!(layout.segment_at(start), Some(Segment::Data { var: 1, element: 4, byte: 3 }));
//! let mut part = Vec::new();
//! layout.write_range(&mut part, start..content_length, produce)?;
//! assert_eq!(part, body[start as usize..]);
//! # Ok::<(), ClassicError>(())
//! ```
//!
//! # File layout written by this module
//!
//! Grammar (from Unidata's "NetCDF Classic Format Specification"); all
//! integers are big-endian:
//!
//! ```text
//! file      = header data
//! header    = magic numrecs dim_list gatt_list var_list
//! magic     = 'C' 'D' 'F' VERSION            VERSION = 1 | 2 | 5
//! numrecs   = NON_NEG                          always 0 here (no record dimension)
//! dim_list  = ABSENT | NC_DIMENSION nelems [dim ...]
//! gatt_list = att_list
//! att_list  = ABSENT | NC_ATTRIBUTE nelems [attr ...]
//! var_list  = ABSENT | NC_VARIABLE  nelems [var ...]
//! ABSENT    = ZERO(32-bit) ZERO(NON_NEG)
//! dim       = name dim_length(NON_NEG)
//! name      = nelems(NON_NEG) bytes padding
//! attr      = name nc_type(32-bit) nelems(NON_NEG) values padding
//! var       = name nelems(NON_NEG) [dimid(NON_NEG) ...] att_list nc_type(32-bit)
//!             vsize begin
//! ```
//!
//! * Tags are 32-bit: `NC_DIMENSION = 0x0A`, `NC_VARIABLE = 0x0B`,
//!   `NC_ATTRIBUTE = 0x0C`; so are type codes (`NC_BYTE = 1` … `NC_UINT64 = 11`).
//! * `NON_NEG` (numrecs, list counts, name lengths, dimension lengths, dimension
//!   ids, attribute element counts, `vsize`) is a non-negative 32-bit integer in
//!   CDF-1/CDF-2 and a 64-bit integer in CDF-5.
//! * `begin` (`OFFSET`) is 32-bit in CDF-1 and 64-bit in CDF-2 and CDF-5.
//!   (Note that `vsize` is *not* an offset: it stays 32-bit in CDF-2.)
//! * Names and attribute values are padded with zero bytes to a multiple of 4.
//!   Text attributes are `NC_CHAR` with `nelems` = number of bytes; an empty
//!   text attribute has `nelems = 0` and no value bytes.
//! * `vsize` = (product of dimension lengths) × (external type size), rounded
//!   up to a multiple of 4. A scalar variable (no dimensions) has one element.
//!   When that does not fit the 32-bit field (CDF-1/CDF-2), the value
//!   `2^32 - 1` is written instead, as the specification prescribes; readers
//!   recompute the size from the shape.
//! * Data: variable `i` occupies `[begin(i), begin(i) + vsize(i))`: its
//!   values in row-major order, big-endian, followed by 0–3 zero bytes of
//!   padding. The first variable begins right after the header (whose length
//!   is always a multiple of 4); each next variable begins where the previous
//!   one's padding ends. The file ends after the last variable's padding.
//!
//! # Version selection
//!
//! With `version: None`, [`Layout::new`] picks **CDF-2** (64-bit offset),
//! unless something requires **CDF-5**:
//!
//! * a variable or attribute of type `UByte`, `UShort`, `UInt`, `Int64` or
//!   `UInt64` (including [`AttrValue::U8`]),
//! * a dimension longer than `i32::MAX`, or
//! * a variable whose data exceeds `2^32 - 4` bytes (CDF-2 technically allows
//!   one such variable if it is the last one; automatic selection does not
//!   rely on that corner of the format and switches to CDF-5 instead).
//!
//! An explicit version is honoured or refused with an error
//! ([`ClassicError::RequiresCdf5`], [`ClassicError::TooLarge`]); CDF-1 and
//! CDF-2 then accept an oversized variable only in last position (written with
//! the `2^32 - 1` `vsize` sentinel), exactly like the netCDF-C library.
//!
//! # Restrictions
//!
//! * No record (unlimited) dimension, hence no zero-length dimensions (length
//!   0 *means* "unlimited" in this format): they are refused.
//! * Names must be ASCII: first character `[A-Za-z0-9_]`, then printable ASCII
//!   except `/`, no trailing space, at most 256 bytes. This is the ASCII subset
//!   of what the specification allows (non-ASCII names would need Unicode NFC
//!   normalisation). Names must be unique among dimensions, among variables,
//!   and within each attribute list.
//! * Padding bytes in the data section are zeros (the specification suggests
//!   the fill value, but readers never interpret padding).

use std::fmt;
use std::io::{self, Write};
use std::ops::Range;

/// Maximum length, in bytes, of a name (netCDF-C's `NC_MAX_NAME`).
pub const MAX_NAME_LEN: usize = 256;

/// Largest variable (unpadded bytes) a CDF-1 file can hold, except in last position.
pub const CDF1_MAX_VAR_LEN: u64 = (i32::MAX as u64) - 3;
/// Largest variable (unpadded bytes) a CDF-2 file can hold, except in last position.
pub const CDF2_MAX_VAR_LEN: u64 = (u32::MAX as u64) - 3;
/// Largest variable (unpadded bytes) a CDF-5 file can hold.
pub const CDF5_MAX_VAR_LEN: u64 = (i64::MAX as u64) - 3;

const NC_DIMENSION: u32 = 0x0A;
const NC_VARIABLE: u32 = 0x0B;
const NC_ATTRIBUTE: u32 = 0x0C;
/// `vsize` written for variables too large for the 32-bit field.
const VSIZE_SENTINEL: u32 = u32::MAX;
const ZEROS: [u8; 4] = [0; 4];

/// Errors raised while building a [`Layout`] or writing a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClassicError {
    /// A dimension, variable or attribute name is not acceptable.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        kind: &'static str,
        name: String,
        reason: &'static str,
    },
    /// Two dimensions, two variables, or two attributes of the same list share a name.
    #[error("duplicate {kind} name {name:?}")]
    DuplicateName { kind: &'static str, name: String },
    /// Zero-length (i.e. unlimited/record) dimensions are not supported.
    #[error(
        "dimension {name:?} has length 0; zero-length (unlimited) dimensions are not supported"
    )]
    ZeroLengthDimension { name: String },
    /// A variable refers to a dimension index that does not exist.
    #[error(
        "variable {var:?} uses dimension index {index}, but only {count} dimensions are defined"
    )]
    UnknownDimension {
        var: String,
        index: usize,
        count: usize,
    },
    /// The requested version cannot represent something in the file.
    #[error("{what} requires CDF-5, but {requested} was requested")]
    RequiresCdf5 { what: String, requested: Version },
    /// A size, count or offset exceeds what the chosen version can encode.
    #[error("{what} is too large for {version}")]
    TooLarge { what: String, version: Version },
    /// The data supplied for a variable does not have the expected byte length.
    #[error("variable #{var}: expected {expected} data bytes, got {actual}")]
    DataLength {
        var: usize,
        expected: u64,
        actual: u64,
    },
    /// Writing the output failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One of the three classic format versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// CDF-1, the original classic format (32-bit offsets).
    Cdf1,
    /// CDF-2, "64-bit offset" format.
    Cdf2,
    /// CDF-5, "64-bit data" format (64-bit counts, unsigned and 64-bit types).
    Cdf5,
}

impl Version {
    /// The fourth byte of the magic number (`1`, `2` or `5`).
    pub fn magic_byte(self) -> u8 {
        match self {
            Version::Cdf1 => 1,
            Version::Cdf2 => 2,
            Version::Cdf5 => 5,
        }
    }

    /// The name `ncdump -k` prints for this version.
    pub fn ncdump_kind(self) -> &'static str {
        match self {
            Version::Cdf1 => "classic",
            Version::Cdf2 => "64-bit offset",
            Version::Cdf5 => "cdf5",
        }
    }

    /// Largest unpadded variable size allowed anywhere but in last position.
    pub fn max_var_len(self) -> u64 {
        match self {
            Version::Cdf1 => CDF1_MAX_VAR_LEN,
            Version::Cdf2 => CDF2_MAX_VAR_LEN,
            Version::Cdf5 => CDF5_MAX_VAR_LEN,
        }
    }

    fn max_non_neg(self) -> u64 {
        match self {
            Version::Cdf5 => i64::MAX as u64,
            _ => i32::MAX as u64,
        }
    }

    fn max_offset(self) -> u64 {
        match self {
            Version::Cdf1 => i32::MAX as u64,
            _ => i64::MAX as u64,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Cdf1 => "CDF-1 (classic)",
            Version::Cdf2 => "CDF-2 (64-bit offset)",
            Version::Cdf5 => "CDF-5 (64-bit data)",
        })
    }
}

/// External data types of the classic formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NcType {
    /// `NC_BYTE`: 8-bit signed integer.
    Byte,
    /// `NC_CHAR`: 8-bit character.
    Char,
    /// `NC_SHORT`: 16-bit signed integer.
    Short,
    /// `NC_INT`: 32-bit signed integer.
    Int,
    /// `NC_FLOAT`: IEEE 754 binary32.
    Float,
    /// `NC_DOUBLE`: IEEE 754 binary64.
    Double,
    /// `NC_UBYTE` (CDF-5 only).
    UByte,
    /// `NC_USHORT` (CDF-5 only).
    UShort,
    /// `NC_UINT` (CDF-5 only).
    UInt,
    /// `NC_INT64` (CDF-5 only).
    Int64,
    /// `NC_UINT64` (CDF-5 only).
    UInt64,
}

impl NcType {
    /// Size in bytes of one value in the file.
    pub fn size(self) -> usize {
        match self {
            NcType::Byte | NcType::Char | NcType::UByte => 1,
            NcType::Short | NcType::UShort => 2,
            NcType::Int | NcType::Float | NcType::UInt => 4,
            NcType::Double | NcType::Int64 | NcType::UInt64 => 8,
        }
    }

    /// The `nc_type` code written in the header (`NC_BYTE = 1` … `NC_UINT64 = 11`).
    pub fn code(self) -> u32 {
        match self {
            NcType::Byte => 1,
            NcType::Char => 2,
            NcType::Short => 3,
            NcType::Int => 4,
            NcType::Float => 5,
            NcType::Double => 6,
            NcType::UByte => 7,
            NcType::UShort => 8,
            NcType::UInt => 9,
            NcType::Int64 => 10,
            NcType::UInt64 => 11,
        }
    }

    /// Whether this type only exists in CDF-5.
    pub fn requires_cdf5(self) -> bool {
        self.code() >= 7
    }

    /// The CDL type name (`byte`, `char`, `short`, …, `uint64`).
    pub fn cdl_name(self) -> &'static str {
        match self {
            NcType::Byte => "byte",
            NcType::Char => "char",
            NcType::Short => "short",
            NcType::Int => "int",
            NcType::Float => "float",
            NcType::Double => "double",
            NcType::UByte => "ubyte",
            NcType::UShort => "ushort",
            NcType::UInt => "uint",
            NcType::Int64 => "int64",
            NcType::UInt64 => "uint64",
        }
    }
}

/// Attribute values are the archive's own (`crate::model::AttrValue`);
/// this module adds how each is written (`NC_CHAR` text; `U8`, `U16`, `U32`,
/// `I64` and `U64` need CDF-5).
pub use crate::model::AttrValue;

impl AttrValue {
    /// The external type this value is written as.
    pub fn nc_type(&self) -> NcType {
        match self {
            AttrValue::Text(_) => NcType::Char,
            AttrValue::I8(_) => NcType::Byte,
            AttrValue::U8(_) => NcType::UByte,
            AttrValue::I16(_) => NcType::Short,
            AttrValue::U16(_) => NcType::UShort,
            AttrValue::I32(_) => NcType::Int,
            AttrValue::U32(_) => NcType::UInt,
            AttrValue::I64(_) => NcType::Int64,
            AttrValue::U64(_) => NcType::UInt64,
            AttrValue::F32(_) => NcType::Float,
            AttrValue::F64(_) => NcType::Double,
        }
    }

    /// Number of elements (`nelems`; bytes for text).
    pub fn len(&self) -> usize {
        match self {
            AttrValue::Text(v) => v.len(),
            AttrValue::I8(v) => v.len(),
            AttrValue::U8(v) => v.len(),
            AttrValue::I16(v) => v.len(),
            AttrValue::U16(v) => v.len(),
            AttrValue::I32(v) => v.len(),
            AttrValue::U32(v) => v.len(),
            AttrValue::I64(v) => v.len(),
            AttrValue::U64(v) => v.len(),
            AttrValue::F32(v) => v.len(),
            AttrValue::F64(v) => v.len(),
        }
    }

    /// Whether the attribute has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the big-endian values (without padding); text as its UTF-8 bytes.
    /// Also handy to encode a whole variable's data held in an `AttrValue`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            AttrValue::Text(v) => out.extend_from_slice(v.as_bytes()),
            AttrValue::I8(v) => encode_be(v, out),
            AttrValue::U8(v) => encode_be(v, out),
            AttrValue::I16(v) => encode_be(v, out),
            AttrValue::U16(v) => encode_be(v, out),
            AttrValue::I32(v) => encode_be(v, out),
            AttrValue::U32(v) => encode_be(v, out),
            AttrValue::I64(v) => encode_be(v, out),
            AttrValue::U64(v) => encode_be(v, out),
            AttrValue::F32(v) => encode_be(v, out),
            AttrValue::F64(v) => encode_be(v, out),
        }
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::Text(s.to_owned())
    }
}

impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Text(s)
    }
}

macro_rules! attr_from {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<Vec<$t>> for AttrValue {
            fn from(v: Vec<$t>) -> Self {
                AttrValue::$variant(v)
            }
        }
        impl From<$t> for AttrValue {
            fn from(v: $t) -> Self {
                AttrValue::$variant(vec![v])
            }
        }
    )*};
}

attr_from!(
    i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32,
    i64 => I64, u64 => U64, f32 => F32, f64 => F64,
);

/// A (fixed-length) dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dim {
    pub name: String,
    /// Length; must be at least 1.
    pub len: u64,
}

impl Dim {
    pub fn new(name: impl Into<String>, len: u64) -> Self {
        Dim {
            name: name.into(),
            len,
        }
    }
}

/// A variable definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Var {
    pub name: String,
    pub dtype: NcType,
    /// Indices into the dimension list, slowest-varying first. Empty = scalar.
    pub dims: Vec<usize>,
    pub attrs: Vec<(String, AttrValue)>,
}

impl Var {
    pub fn new(name: impl Into<String>, dtype: NcType, dims: Vec<usize>) -> Self {
        Var {
            name: name.into(),
            dtype,
            dims,
            attrs: Vec::new(),
        }
    }

    /// Builder-style: appends an attribute.
    pub fn with_attr(mut self, name: impl Into<String>, value: impl Into<AttrValue>) -> Self {
        self.attrs.push((name.into(), value.into()));
        self
    }
}

/// Where an absolute file offset falls; see [`Layout::segment_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Byte `offset` of the header (`header()[offset]`).
    Header { offset: u64 },
    /// Byte `byte` (big-endian order) of element `element` of variable `var`.
    Data {
        var: usize,
        element: u64,
        byte: usize,
    },
    /// Byte `byte` of the zero padding after variable `var`'s data.
    Padding { var: usize, byte: usize },
}

/// One contiguous part of a byte range; see [`Layout::pieces`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// These bytes of [`Layout::header`].
    Header(Range<usize>),
    /// Encode `elements` of variable `var` (big-endian), then drop `skip_front`
    /// bytes from the front and `skip_back` bytes from the back (both less
    /// than one element) of that encoding.
    Data {
        var: usize,
        elements: Range<u64>,
        skip_front: usize,
        skip_back: usize,
    },
    /// `len` zero bytes of padding after variable `var`.
    Padding { var: usize, len: usize },
}

impl Piece {
    /// Number of output bytes this piece stands for.
    pub fn len(&self, layout: &Layout) -> u64 {
        match self {
            Piece::Header(r) => (r.end - r.start) as u64,
            Piece::Data {
                var,
                elements,
                skip_front,
                skip_back,
            } => {
                (elements.end - elements.start) * layout.element_size(*var) as u64
                    - *skip_front as u64
                    - *skip_back as u64
            }
            Piece::Padding { len, .. } => *len as u64,
        }
    }

    /// Whether the piece stands for no bytes (never produced by [`Layout::pieces`]).
    pub fn is_empty(&self, layout: &Layout) -> bool {
        self.len(layout) == 0
    }
}

#[derive(Clone, Debug)]
struct VarLayout {
    name: String,
    dtype: NcType,
    shape: Vec<u64>,
    num_elements: u64,
    data_len: u64,
    begin: u64,
}

impl VarLayout {
    fn vsize(&self) -> u64 {
        round4(self.data_len)
    }
}

/// The complete, precomputed layout of a classic-format file: header bytes and
/// the position of every variable's data.
#[derive(Clone, Debug)]
pub struct Layout {
    version: Version,
    header: Vec<u8>,
    vars: Vec<VarLayout>,
    total_len: u64,
}

impl Layout {
    /// Validates the definitions, chooses the version (see the module docs)
    /// and computes the header and data layout.
    pub fn new(
        dims: &[Dim],
        vars: &[Var],
        global_attrs: &[(String, AttrValue)],
        version: Option<Version>,
    ) -> Result<Self, ClassicError> {
        // --- Validation independent of the version.
        check_names("dimension", dims.iter().map(|d| d.name.as_str()))?;
        check_names("variable", vars.iter().map(|v| v.name.as_str()))?;
        check_names("attribute", global_attrs.iter().map(|(n, _)| n.as_str()))?;
        for v in vars {
            check_names("attribute", v.attrs.iter().map(|(n, _)| n.as_str()))?;
        }
        if let Some(d) = dims.iter().find(|d| d.len == 0) {
            return Err(ClassicError::ZeroLengthDimension {
                name: d.name.clone(),
            });
        }

        let mut layouts = Vec::with_capacity(vars.len());
        for v in vars {
            let mut shape = Vec::with_capacity(v.dims.len());
            for &index in &v.dims {
                let dim = dims
                    .get(index)
                    .ok_or_else(|| ClassicError::UnknownDimension {
                        var: v.name.clone(),
                        index,
                        count: dims.len(),
                    })?;
                shape.push(dim.len);
            }
            let too_large = || ClassicError::TooLarge {
                what: format!("variable {:?}", v.name),
                version: Version::Cdf5,
            };
            let num_elements = shape
                .iter()
                .try_fold(1u64, |acc, &n| acc.checked_mul(n))
                .ok_or_else(too_large)?;
            let data_len = num_elements
                .checked_mul(v.dtype.size() as u64)
                .filter(|&n| n <= CDF5_MAX_VAR_LEN)
                .ok_or_else(too_large)?;
            layouts.push(VarLayout {
                name: v.name.clone(),
                dtype: v.dtype,
                shape,
                num_elements,
                data_len,
                begin: 0,
            });
        }

        // --- Version selection.
        let cdf5_reason = cdf5_reason(dims, vars, global_attrs);
        let version = match version {
            Some(requested) => {
                if let (Some(what), true) = (&cdf5_reason, requested != Version::Cdf5) {
                    return Err(ClassicError::RequiresCdf5 {
                        what: what.clone(),
                        requested,
                    });
                }
                requested
            }
            None if cdf5_reason.is_some()
                || layouts.iter().any(|l| l.data_len > CDF2_MAX_VAR_LEN) =>
            {
                Version::Cdf5
            }
            None => Version::Cdf2,
        };

        // Per-variable size limits: only the last variable may exceed them.
        let last = layouts.len().saturating_sub(1);
        for (i, l) in layouts.iter().enumerate() {
            if l.data_len > version.max_var_len() && i != last {
                return Err(ClassicError::TooLarge {
                    what: format!(
                        "variable {:?} ({} bytes, not the last variable)",
                        l.name, l.data_len
                    ),
                    version,
                });
            }
        }

        // --- Header length does not depend on the begin values: encode once
        // with placeholders, place the variables, then encode for real.
        let header_len = encode_header(version, dims, vars, global_attrs, &layouts)?.len() as u64;
        let mut pos = header_len;
        for l in &mut layouts {
            if pos > version.max_offset() {
                return Err(ClassicError::TooLarge {
                    what: format!("offset {pos} of variable {:?}", l.name),
                    version,
                });
            }
            l.begin = pos;
            pos = pos
                .checked_add(l.vsize())
                .filter(|&p| p <= i64::MAX as u64)
                .ok_or_else(|| ClassicError::TooLarge {
                    what: "total file size".to_owned(),
                    version,
                })?;
        }
        let header = encode_header(version, dims, vars, global_attrs, &layouts)?;
        debug_assert_eq!(header.len() as u64, header_len);

        Ok(Layout {
            version,
            header,
            vars: layouts,
            total_len: pos,
        })
    }

    /// The format version of the file.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The exact header bytes. Its length is a multiple of 4 and equals
    /// `begin(0)` (there is no gap between header and data).
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Total size of the file in bytes.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// Number of variables.
    pub fn num_vars(&self) -> usize {
        self.vars.len()
    }

    /// Index of the variable with this name.
    pub fn var_index(&self, name: &str) -> Option<usize> {
        self.vars.iter().position(|v| v.name == name)
    }

    /// Name of variable `var`. Panics if `var` is out of range (as do all
    /// per-variable accessors).
    pub fn var_name(&self, var: usize) -> &str {
        &self.vars[var].name
    }

    /// External type of variable `var`.
    pub fn dtype(&self, var: usize) -> NcType {
        self.vars[var].dtype
    }

    /// Bytes per element of variable `var`.
    pub fn element_size(&self, var: usize) -> usize {
        self.vars[var].dtype.size()
    }

    /// Shape (dimension lengths) of variable `var`; empty for scalars.
    pub fn shape(&self, var: usize) -> &[u64] {
        &self.vars[var].shape
    }

    /// Number of elements of variable `var` (1 for scalars).
    pub fn num_elements(&self, var: usize) -> u64 {
        self.vars[var].num_elements
    }

    /// File offset of the first byte of variable `var`'s data.
    pub fn begin(&self, var: usize) -> u64 {
        self.vars[var].begin
    }

    /// Size of variable `var`'s data without padding (elements × element size).
    pub fn data_len(&self, var: usize) -> u64 {
        self.vars[var].data_len
    }

    /// Space occupied by variable `var`: `data_len` rounded up to a multiple
    /// of 4. (The header field holds `2^32 - 1` instead when this does not
    /// fit its 32 bits in CDF-1/CDF-2.)
    pub fn vsize(&self, var: usize) -> u64 {
        self.vars[var].vsize()
    }

    /// Number of zero bytes (0–3) following variable `var`'s data.
    pub fn padding(&self, var: usize) -> usize {
        (self.vsize(var) - self.data_len(var)) as usize
    }

    /// The padding bytes following variable `var`'s data.
    pub fn padding_bytes(&self, var: usize) -> &'static [u8] {
        &ZEROS[..self.padding(var)]
    }

    /// File offset of element `element` (row-major linear index) of variable
    /// `var`. Panics if `element >= num_elements(var)`.
    pub fn element_offset(&self, var: usize, element: u64) -> u64 {
        let v = &self.vars[var];
        assert!(
            element < v.num_elements,
            "element {element} out of range for variable {:?} with {} elements",
            v.name,
            v.num_elements
        );
        v.begin + element * v.dtype.size() as u64
    }

    /// Row-major linear element index of the coordinates `coords` in variable
    /// `var`, or `None` if the coordinates do not match its shape.
    pub fn element_index(&self, var: usize, coords: &[u64]) -> Option<u64> {
        let shape = &self.vars[var].shape;
        if coords.len() != shape.len() {
            return None;
        }
        coords
            .iter()
            .zip(shape)
            .try_fold(0u64, |acc, (&c, &n)| (c < n).then(|| acc * n + c))
    }

    /// Where the absolute file offset `offset` falls, or `None` if
    /// `offset >= total_len()`.
    pub fn segment_at(&self, offset: u64) -> Option<Segment> {
        if offset >= self.total_len {
            return None;
        }
        if offset < self.header.len() as u64 {
            return Some(Segment::Header { offset });
        }
        // Last variable starting at or before `offset` (every vsize is >= 4,
        // so begins are strictly increasing).
        let var = self.vars.partition_point(|v| v.begin <= offset) - 1;
        let v = &self.vars[var];
        let rel = offset - v.begin;
        Some(if rel < v.data_len {
            let size = v.dtype.size() as u64;
            Segment::Data {
                var,
                element: rel / size,
                byte: (rel % size) as usize,
            }
        } else {
            Segment::Padding {
                var,
                byte: (rel - v.data_len) as usize,
            }
        })
    }

    /// Splits the byte range `range` of the file (clamped to `total_len()`)
    /// into what must be produced for it, in order: at most one header piece,
    /// then for each variable touched a data piece and/or a padding piece.
    pub fn pieces(&self, range: Range<u64>) -> Vec<Piece> {
        let (start, end) = (range.start, range.end.min(self.total_len));
        let mut out = Vec::new();
        if start >= end {
            return out;
        }
        let header_len = self.header.len() as u64;
        if start < header_len {
            out.push(Piece::Header(start as usize..end.min(header_len) as usize));
        }
        let first = self.vars.partition_point(|v| v.begin + v.vsize() <= start);
        for (var, v) in self.vars.iter().enumerate().skip(first) {
            if v.begin >= end {
                break;
            }
            let size = v.dtype.size() as u64;
            let data_end = v.begin + v.data_len;
            let (a, b) = (start.max(v.begin), end.min(data_end));
            if a < b {
                let (ra, rb) = (a - v.begin, b - v.begin);
                let first_el = ra / size;
                let end_el = rb.div_ceil(size);
                out.push(Piece::Data {
                    var,
                    elements: first_el..end_el,
                    skip_front: (ra - first_el * size) as usize,
                    skip_back: (end_el * size - rb) as usize,
                });
            }
            let (a, b) = (start.max(data_end), end.min(v.begin + v.vsize()));
            if a < b {
                out.push(Piece::Padding {
                    var,
                    len: (b - a) as usize,
                });
            }
        }
        out
    }

    /// Writes the whole file to `w`. `data(var)` must return the complete
    /// big-endian data of variable `var` (e.g. built with [`encode_be`]),
    /// without padding. Variables are requested in order.
    pub fn write_to<W: Write>(
        &self,
        mut w: W,
        mut data: impl FnMut(usize) -> Vec<u8>,
    ) -> Result<(), ClassicError> {
        w.write_all(&self.header)?;
        for var in 0..self.vars.len() {
            let bytes = data(var);
            self.check_len(var, self.data_len(var), bytes.len())?;
            w.write_all(&bytes)?;
            w.write_all(self.padding_bytes(var))?;
        }
        Ok(())
    }

    /// Writes only the bytes `range` of the file (clamped to `total_len()`)
    /// to `w`, returning how many were written. `data(var, elements)` must
    /// return the big-endian encoding of exactly those elements of `var`; it
    /// is only asked for what the range needs.
    pub fn write_range<W: Write>(
        &self,
        mut w: W,
        range: Range<u64>,
        mut data: impl FnMut(usize, Range<u64>) -> Vec<u8>,
    ) -> Result<u64, ClassicError> {
        let mut written = 0;
        for piece in self.pieces(range) {
            match &piece {
                Piece::Header(r) => w.write_all(&self.header[r.clone()])?,
                Piece::Data {
                    var,
                    elements,
                    skip_front,
                    skip_back,
                } => {
                    let bytes = data(*var, elements.clone());
                    let expected = (elements.end - elements.start) * self.element_size(*var) as u64;
                    self.check_len(*var, expected, bytes.len())?;
                    w.write_all(&bytes[*skip_front..bytes.len() - *skip_back])?;
                }
                Piece::Padding { len, .. } => w.write_all(&ZEROS[..*len])?,
            }
            written += piece.len(self);
        }
        Ok(written)
    }

    fn check_len(&self, var: usize, expected: u64, actual: usize) -> Result<(), ClassicError> {
        if expected == actual as u64 {
            Ok(())
        } else {
            Err(ClassicError::DataLength {
                var,
                expected,
                actual: actual as u64,
            })
        }
    }
}

/// Builds the whole file in memory (convenient for tests and small files).
/// See [`Layout::write_to`] for the contract of `data`.
pub fn write_all(
    layout: &Layout,
    data: impl FnMut(usize) -> Vec<u8>,
) -> Result<Vec<u8>, ClassicError> {
    let mut out = Vec::with_capacity(usize::try_from(layout.total_len()).unwrap_or(0));
    layout.write_to(&mut out, data)?;
    Ok(out)
}

mod sealed {
    pub trait Sealed {}
}

/// Numeric types that can be encoded as NetCDF big-endian values.
pub trait BeValue: Copy + sealed::Sealed {
    /// The NetCDF type of a variable holding these values (`u8` maps to
    /// `UByte`; `Char` data is also plain bytes).
    const NC_TYPE: NcType;
    /// Appends the big-endian representation of `self`.
    fn put_be(self, out: &mut Vec<u8>);
}

macro_rules! be_value {
    ($($t:ty => $nc:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl BeValue for $t {
            const NC_TYPE: NcType = NcType::$nc;
            #[inline]
            fn put_be(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
        }
    )*};
}

be_value!(
    i8 => Byte, u8 => UByte, i16 => Short, u16 => UShort, i32 => Int, u32 => UInt,
    i64 => Int64, u64 => UInt64, f32 => Float, f64 => Double,
);

/// Appends `values` to `out` in big-endian order (no padding).
pub fn encode_be<T: BeValue>(values: &[T], out: &mut Vec<u8>) {
    out.reserve(std::mem::size_of_val(values));
    for &v in values {
        v.put_be(out);
    }
}

/// Checks a name against the rules in the module docs.
pub fn validate_name(kind: &'static str, name: &str) -> Result<(), ClassicError> {
    let fail = |reason| {
        Err(ClassicError::InvalidName {
            kind,
            name: name.to_owned(),
            reason,
        })
    };
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return fail("empty");
    };
    if bytes.len() > MAX_NAME_LEN {
        return fail("longer than 256 bytes");
    }
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return fail("must start with an ASCII letter, digit or '_'");
    }
    if !bytes
        .iter()
        .all(|&b| (b' '..=b'~').contains(&b) && b != b'/')
    {
        return fail("only printable ASCII characters other than '/' are allowed");
    }
    if bytes.last() == Some(&b' ') {
        return fail("trailing space");
    }
    Ok(())
}

fn check_names<'a>(
    kind: &'static str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), ClassicError> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        validate_name(kind, name)?;
        if !seen.insert(name) {
            return Err(ClassicError::DuplicateName {
                kind,
                name: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// Why the definitions cannot be written as CDF-1/CDF-2 (size of variables aside).
fn cdf5_reason(dims: &[Dim], vars: &[Var], global_attrs: &[(String, AttrValue)]) -> Option<String> {
    if let Some(d) = dims.iter().find(|d| d.len > i32::MAX as u64) {
        return Some(format!("dimension {:?} of length {}", d.name, d.len));
    }
    let attr_reason = |owner: &str, attrs: &[(String, AttrValue)]| {
        attrs
            .iter()
            .find(|(_, a)| a.nc_type().requires_cdf5())
            .map(|(n, a)| format!("{owner}attribute {n:?} of type {}", a.nc_type().cdl_name()))
    };
    if let Some(r) = attr_reason("global ", global_attrs) {
        return Some(r);
    }
    for v in vars {
        if v.dtype.requires_cdf5() {
            return Some(format!(
                "variable {:?} of type {}",
                v.name,
                v.dtype.cdl_name()
            ));
        }
        if let Some(r) = attr_reason(&format!("variable {:?} ", v.name), &v.attrs) {
            return Some(r);
        }
    }
    None
}

fn round4(n: u64) -> u64 {
    n.div_ceil(4) * 4
}

/// Header serialiser for one version.
struct Enc {
    version: Version,
    out: Vec<u8>,
}

impl Enc {
    fn u32(&mut self, x: u32) {
        self.out.extend_from_slice(&x.to_be_bytes());
    }

    fn non_neg(&mut self, x: u64, what: impl FnOnce() -> String) -> Result<(), ClassicError> {
        if x > self.version.max_non_neg() {
            return Err(ClassicError::TooLarge {
                what: what(),
                version: self.version,
            });
        }
        match self.version {
            Version::Cdf5 => self.out.extend_from_slice(&x.to_be_bytes()),
            _ => self.u32(x as u32),
        }
        Ok(())
    }

    fn count(&mut self, n: usize) -> Result<(), ClassicError> {
        self.non_neg(n as u64, || format!("list of {n} elements"))
    }

    fn pad(&mut self) {
        let n = self.out.len().next_multiple_of(4) - self.out.len();
        self.out.extend_from_slice(&ZEROS[..n]);
    }

    fn name(&mut self, name: &str) -> Result<(), ClassicError> {
        self.count(name.len())?;
        self.out.extend_from_slice(name.as_bytes());
        self.pad();
        Ok(())
    }

    /// `ABSENT` or `tag nelems`.
    fn list_head(&mut self, tag: u32, n: usize) -> Result<(), ClassicError> {
        self.u32(if n == 0 { 0 } else { tag });
        self.count(n)
    }

    fn att_list(&mut self, attrs: &[(String, AttrValue)]) -> Result<(), ClassicError> {
        self.list_head(NC_ATTRIBUTE, attrs.len())?;
        for (name, value) in attrs {
            self.name(name)?;
            self.u32(value.nc_type().code());
            self.non_neg(value.len() as u64, || format!("attribute {name:?}"))?;
            value.encode(&mut self.out);
            self.pad();
        }
        Ok(())
    }
}

fn encode_header(
    version: Version,
    dims: &[Dim],
    vars: &[Var],
    global_attrs: &[(String, AttrValue)],
    layouts: &[VarLayout],
) -> Result<Vec<u8>, ClassicError> {
    let mut e = Enc {
        version,
        out: Vec::new(),
    };
    e.out
        .extend_from_slice(&[b'C', b'D', b'F', version.magic_byte()]);
    e.non_neg(0, String::new)?; // numrecs

    e.list_head(NC_DIMENSION, dims.len())?;
    for d in dims {
        e.name(&d.name)?;
        e.non_neg(d.len, || format!("dimension {:?}", d.name))?;
    }

    e.att_list(global_attrs)?;

    e.list_head(NC_VARIABLE, vars.len())?;
    for (v, l) in vars.iter().zip(layouts) {
        e.name(&v.name)?;
        e.count(v.dims.len())?;
        for &d in &v.dims {
            e.non_neg(d as u64, || "dimension id".to_owned())?;
        }
        e.att_list(&v.attrs)?;
        e.u32(v.dtype.code());
        match version {
            Version::Cdf5 => e.out.extend_from_slice(&l.vsize().to_be_bytes()),
            _ => e.u32(u32::try_from(l.vsize()).unwrap_or(VSIZE_SENTINEL)),
        }
        match version {
            Version::Cdf1 => e.u32(l.begin as u32), // range checked by the caller
            _ => e.out.extend_from_slice(&l.begin.to_be_bytes()),
        }
    }
    debug_assert_eq!(e.out.len() % 4, 0);
    Ok(e.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_files_match_the_specification() {
        // "The size of the empty CDF-1 and CDF-2 files are 32 bytes. If the
        // file is in CDF-5 format the size is 48 bytes."
        for (version, len) in [
            (Version::Cdf1, 32),
            (Version::Cdf2, 32),
            (Version::Cdf5, 48),
        ] {
            let l = Layout::new(&[], &[], &[], Some(version)).unwrap();
            let mut expected = vec![b'C', b'D', b'F', version.magic_byte()];
            expected.resize(len, 0);
            assert_eq!(l.header(), expected.as_slice());
            assert_eq!(l.total_len(), len as u64);
        }
    }

    #[test]
    fn small_cdf2_header_is_byte_exact() {
        let dims = [Dim::new("x", 3)];
        let vars = [Var::new("v", NcType::Short, vec![0]).with_attr("u", "m")];
        let gatts = [("g".to_owned(), AttrValue::I8(vec![-1]))];
        let l = Layout::new(&dims, &vars, &gatts, None).unwrap();
        assert_eq!(l.version(), Version::Cdf2);
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &b"CDF\x02"[..], &[0, 0, 0, 0],                  // magic, numrecs
            &[0, 0, 0, 0x0A], &[0, 0, 0, 1],                  // dim_list
            &[0, 0, 0, 1], b"x\0\0\0", &[0, 0, 0, 3],         // x = 3
            &[0, 0, 0, 0x0C], &[0, 0, 0, 1],                  // gatt_list
            &[0, 0, 0, 1], b"g\0\0\0", &[0, 0, 0, 1], &[0, 0, 0, 1], &[0xFF, 0, 0, 0],
            &[0, 0, 0, 0x0B], &[0, 0, 0, 1],                  // var_list
            &[0, 0, 0, 1], b"v\0\0\0", &[0, 0, 0, 1], &[0, 0, 0, 0],  // v(x)
            &[0, 0, 0, 0x0C], &[0, 0, 0, 1],
            &[0, 0, 0, 1], b"u\0\0\0", &[0, 0, 0, 2], &[0, 0, 0, 1], b"m\0\0\0",
            &[0, 0, 0, 3], &[0, 0, 0, 8],                     // short, vsize 6 -> 8
            &[0, 0, 0, 0, 0, 0, 0, 124],                      // begin = header length
        ]
        .concat();
        assert_eq!(l.header(), expected.as_slice());
        assert_eq!(l.begin(0), 124);
        assert_eq!((l.data_len(0), l.vsize(0), l.padding(0)), (6, 8, 2));
        assert_eq!(l.total_len(), 132);
    }

    #[test]
    fn oversized_last_variable_gets_the_vsize_sentinel_in_cdf2() {
        let dims = [Dim::new("n", 5_000_000_000 / 4)];
        let vars = [
            Var::new("a", NcType::Int, vec![]),
            Var::new("big", NcType::Int, vec![0]),
        ];
        let l = Layout::new(&dims, &vars, &[], Some(Version::Cdf2)).unwrap();
        let h = l.header();
        // vsize (4 bytes) then begin (8 bytes) end the header.
        assert_eq!(&h[h.len() - 12..h.len() - 8], &[0xFF; 4]);
        assert_eq!(l.vsize(1), 5_000_000_000);
        // Automatic selection prefers CDF-5 for it.
        assert_eq!(
            Layout::new(&dims, &vars, &[], None).unwrap().version(),
            Version::Cdf5
        );
    }
}
