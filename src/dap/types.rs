//! The nine DAP2 base types and how stored numeric types map onto them.
//!
//! Wire facts (dap2.md §4.2): in an array, Byte takes 1 byte per element
//! (the array is zero-padded to a multiple of 4), Int16/UInt16 take **4**
//! bytes (sign-/zero-extended), Int32/UInt32/Float32 4, Float64 8;
//! String/Url are variable (4-byte length, bytes, padding). A scalar of any
//! fixed-size type takes 4 bytes (8 for Float64).
//!
//! Storage mapping (dap2.md §3.5), chosen so that every client of the list
//! in dap2.md sees the right values with the least wire cost:
//!
//! | stored | DAP2    | extra attributes     | values on the wire                 |
//! |--------|---------|----------------------|------------------------------------|
//! | `u8`   | Byte    | `_Unsigned "true"`   | as is                              |
//! | `i8`   | Byte    | `_Unsigned "false"`  | two's-complement bit pattern       |
//! | `i16`  | Int16   | –                    | sign-extended to 4 bytes           |
//! | `u16`  | Int32   | –                    | widened (same 4 bytes as UInt16, no sign trap) |
//! | `i32`  | Int32   | –                    | as is                              |
//! | `u32`  | UInt32  | `_Unsigned "true"`   | as is                              |
//! | `f32`  | Float32 | –                    | as is                              |
//! | `f64`  | Float64 | –                    | as is                              |
//!
//! `u32` keeps the exact unsigned type (UInt32) rather than Int32/Float64 so
//! no value is ever altered. netCDF-C's DAP2 view declares UInt32 as a
//! signed `int` (§3.5 table), so values ≥ 2³¹ would read back negative;
//! the `_Unsigned "true"` attribute lets netCDF4-python/xarray undo that,
//! and is harmless for pydap, which already receives `uint32`.

use std::fmt;

/// One of the nine DAP2 base types (the only type words a DDS/DAS may use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DapType {
    /// Unsigned 8-bit integer.
    Byte,
    /// Signed 16-bit integer (4 bytes on the wire).
    Int16,
    /// Unsigned 16-bit integer (4 bytes on the wire).
    UInt16,
    /// Signed 32-bit integer.
    Int32,
    /// Unsigned 32-bit integer.
    UInt32,
    /// IEEE-754 single precision.
    Float32,
    /// IEEE-754 double precision.
    Float64,
    /// Byte string (length-prefixed on the wire).
    String,
    /// URL, encoded exactly like String.
    Url,
}

impl DapType {
    /// All nine types, in the order of the DAP2 grammar.
    pub const ALL: [DapType; 9] = [
        DapType::Byte,
        DapType::Int16,
        DapType::UInt16,
        DapType::Int32,
        DapType::UInt32,
        DapType::Float32,
        DapType::Float64,
        DapType::String,
        DapType::Url,
    ];

    /// Canonical DDS/DAS spelling (`Byte`, `Int16`, …, `Url`).
    pub fn name(self) -> &'static str {
        match self {
            DapType::Byte => "Byte",
            DapType::Int16 => "Int16",
            DapType::UInt16 => "UInt16",
            DapType::Int32 => "Int32",
            DapType::UInt32 => "UInt32",
            DapType::Float32 => "Float32",
            DapType::Float64 => "Float64",
            DapType::String => "String",
            DapType::Url => "Url",
        }
    }

    /// Bytes per element inside an array on the wire (Byte: 1, Int16: 4,
    /// Float64: 8, …); `None` for the variable-length String and Url.
    pub fn wire_size(self) -> Option<usize> {
        match self {
            DapType::Byte => Some(1),
            DapType::Int16
            | DapType::UInt16
            | DapType::Int32
            | DapType::UInt32
            | DapType::Float32 => Some(4),
            DapType::Float64 => Some(8),
            DapType::String | DapType::Url => None,
        }
    }

    /// Bytes of a scalar (rank-0) value on the wire: 4, or 8 for Float64;
    /// `None` for String/Url.
    pub fn scalar_wire_size(self) -> Option<usize> {
        match self {
            DapType::Float64 => Some(8),
            DapType::String | DapType::Url => None,
            _ => Some(4),
        }
    }

    /// True for String and Url.
    pub fn is_string(self) -> bool {
        matches!(self, DapType::String | DapType::Url)
    }

    /// How many times an array's element count is written before its data:
    /// twice for every type except String/Url (once), dap2.md §4.2.
    pub fn count_words(self) -> usize {
        if self.is_string() { 1 } else { 2 }
    }
}

impl fmt::Display for DapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

use crate::model::DataType;

/// How a stored value is represented on the DAP2 wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireRepr {
    /// The value is sent unchanged (up to the wire's sign/zero extension).
    Exact,
    /// Signed 8-bit sent as its unsigned two's-complement bit pattern
    /// (−1 → 255), flagged by `_Unsigned "false"`.
    BitPattern,
    /// Sent in a wider signed type (u16 → Int32); values unchanged.
    Widened,
}

impl DataType {
    /// The DAP2 type a variable of this stored type is served as (module table).
    pub fn dap_type(self) -> DapType {
        match self {
            DataType::U8 | DataType::I8 => DapType::Byte,
            DataType::I16 => DapType::Int16,
            DataType::U16 | DataType::I32 => DapType::Int32,
            DataType::U32 => DapType::UInt32,
            DataType::F32 => DapType::Float32,
            DataType::F64 => DapType::Float64,
        }
    }

    /// How values are changed on the way to the wire.
    pub fn wire_repr(self) -> WireRepr {
        match self {
            DataType::I8 => WireRepr::BitPattern,
            DataType::U16 => WireRepr::Widened,
            _ => WireRepr::Exact,
        }
    }

    /// String attributes the mapping adds to the variable's DAS container,
    /// as `(name, value)`; they replace any same-named source attribute.
    pub fn extra_attributes(self) -> &'static [(&'static str, &'static str)] {
        match self {
            DataType::U8 | DataType::U32 => &[("_Unsigned", "true")],
            DataType::I8 => &[("_Unsigned", "false")],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sizes() {
        let table = [
            (DapType::Byte, "Byte", Some(1), Some(4), 2),
            (DapType::Int16, "Int16", Some(4), Some(4), 2),
            (DapType::UInt16, "UInt16", Some(4), Some(4), 2),
            (DapType::Int32, "Int32", Some(4), Some(4), 2),
            (DapType::UInt32, "UInt32", Some(4), Some(4), 2),
            (DapType::Float32, "Float32", Some(4), Some(4), 2),
            (DapType::Float64, "Float64", Some(8), Some(8), 2),
            (DapType::String, "String", None, None, 1),
            (DapType::Url, "Url", None, None, 1),
        ];
        for (t, name, size, scalar, counts) in table {
            assert_eq!(t.name(), name);
            assert_eq!(t.to_string(), name);
            assert_eq!(t.wire_size(), size, "{t}");
            assert_eq!(t.scalar_wire_size(), scalar, "{t}");
            assert_eq!(t.count_words(), counts, "{t}");
        }
        assert_eq!(DapType::ALL.len(), 9);
    }

    #[test]
    fn storage_mapping() {
        use DataType::*;
        type Row = (
            DataType,
            DapType,
            WireRepr,
            &'static [(&'static str, &'static str)],
        );
        let table: [Row; 8] = [
            (U8, DapType::Byte, WireRepr::Exact, &[("_Unsigned", "true")]),
            (
                I8,
                DapType::Byte,
                WireRepr::BitPattern,
                &[("_Unsigned", "false")],
            ),
            (I16, DapType::Int16, WireRepr::Exact, &[]),
            (U16, DapType::Int32, WireRepr::Widened, &[]),
            (I32, DapType::Int32, WireRepr::Exact, &[]),
            (
                U32,
                DapType::UInt32,
                WireRepr::Exact,
                &[("_Unsigned", "true")],
            ),
            (F32, DapType::Float32, WireRepr::Exact, &[]),
            (F64, DapType::Float64, WireRepr::Exact, &[]),
        ];
        for (s, d, r, extra) in table {
            assert_eq!(s.dap_type(), d, "{s}");
            assert_eq!(s.wire_repr(), r, "{s}");
            assert_eq!(s.extra_attributes(), extra, "{s}");
        }
    }
}
