//! Stored data types and arrays of them.

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The numeric types a variable can be stored as. Kept exactly as the source
/// had it: packing (`scale_factor`/`add_offset`) is metadata, never applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl DataType {
    pub const ALL: [DataType; 8] = [
        DataType::U8,
        DataType::I8,
        DataType::I16,
        DataType::U16,
        DataType::I32,
        DataType::U32,
        DataType::F32,
        DataType::F64,
    ];

    /// Short name as stored in the catalogue (`u8`, `f32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DataType::U8 => "u8",
            DataType::I8 => "i8",
            DataType::I16 => "i16",
            DataType::U16 => "u16",
            DataType::I32 => "i32",
            DataType::U32 => "u32",
            DataType::F32 => "f32",
            DataType::F64 => "f64",
        }
    }

    /// The netCDF CDL spelling (`ubyte`, `short`, `float`, ...).
    pub fn cdl_name(self) -> &'static str {
        match self {
            DataType::U8 => "ubyte",
            DataType::I8 => "byte",
            DataType::I16 => "short",
            DataType::U16 => "ushort",
            DataType::I32 => "int",
            DataType::U32 => "uint",
            DataType::F32 => "float",
            DataType::F64 => "double",
        }
    }

    pub fn parse(s: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            DataType::U8 | DataType::I8 => 1,
            DataType::I16 | DataType::U16 => 2,
            DataType::I32 | DataType::U32 | DataType::F32 => 4,
            DataType::F64 => 8,
        }
    }

    /// The type a variable of this type has in a NetCDF-3 (classic) file,
    /// and whether it travels there as its signed twin with
    /// `_Unsigned = "true"` (NetCDF-3 has no unsigned types).
    pub fn classic_twin(self) -> (DataType, bool) {
        match self {
            DataType::U8 => (DataType::I8, true),
            DataType::U16 => (DataType::I16, true),
            DataType::U32 => (DataType::I32, true),
            other => (other, false),
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DataType::F32 | DataType::F64)
    }

    /// The netCDF default fill value of the type (`NC_FILL_*`), as f64.
    pub fn default_fill(self) -> f64 {
        match self {
            DataType::U8 => 255.0,
            DataType::I8 => -127.0,
            DataType::I16 => -32767.0,
            DataType::U16 => 65535.0,
            DataType::I32 => -2147483647.0,
            DataType::U32 => 4294967295.0,
            DataType::F32 => 9.969_209_968_386_869e36_f32 as f64,
            DataType::F64 => 9.969_209_968_386_869e36,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An n-dimensional array of one of the stored types.
#[derive(Clone, Debug, PartialEq)]
pub enum TypedArray {
    U8(ArrayD<u8>),
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
    U16(ArrayD<u16>),
    I32(ArrayD<i32>),
    U32(ArrayD<u32>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
}

/// Runs `$body` with `$a` bound to the inner `ArrayD<T>` of a [`TypedArray`].
#[macro_export]
macro_rules! with_typed_array {
    ($arr:expr, $a:ident => $body:expr) => {
        match $arr {
            $crate::model::TypedArray::U8($a) => $body,
            $crate::model::TypedArray::I8($a) => $body,
            $crate::model::TypedArray::I16($a) => $body,
            $crate::model::TypedArray::U16($a) => $body,
            $crate::model::TypedArray::I32($a) => $body,
            $crate::model::TypedArray::U32($a) => $body,
            $crate::model::TypedArray::F32($a) => $body,
            $crate::model::TypedArray::F64($a) => $body,
        }
    };
}

/// Expands `$body` once per stored type with `$t` aliased to the Rust type.
#[macro_export]
macro_rules! with_data_type {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::model::DataType::U8 => { type $t = u8; $body }
            $crate::model::DataType::I8 => { type $t = i8; $body }
            $crate::model::DataType::I16 => { type $t = i16; $body }
            $crate::model::DataType::U16 => { type $t = u16; $body }
            $crate::model::DataType::I32 => { type $t = i32; $body }
            $crate::model::DataType::U32 => { type $t = u32; $body }
            $crate::model::DataType::F32 => { type $t = f32; $body }
            $crate::model::DataType::F64 => { type $t = f64; $body }
        }
    };
}

impl TypedArray {
    pub fn dtype(&self) -> DataType {
        match self {
            TypedArray::U8(_) => DataType::U8,
            TypedArray::I8(_) => DataType::I8,
            TypedArray::I16(_) => DataType::I16,
            TypedArray::U16(_) => DataType::U16,
            TypedArray::I32(_) => DataType::I32,
            TypedArray::U32(_) => DataType::U32,
            TypedArray::F32(_) => DataType::F32,
            TypedArray::F64(_) => DataType::F64,
        }
    }

    pub fn shape(&self) -> &[usize] {
        with_typed_array!(self, a => a.shape())
    }

    /// True when every value equals `fill` (NaN matches NaN).
    pub fn all_equal(&self, fill: f64) -> bool {
        if fill.is_nan() {
            return match self {
                TypedArray::F32(a) => a.iter().all(|v| v.is_nan()),
                TypedArray::F64(a) => a.iter().all(|v| v.is_nan()),
                _ => false,
            };
        }
        with_typed_array!(self, a => a.iter().all(|&v| v as f64 == fill))
    }

    /// The same values without their `n` leading dimensions, which must have
    /// length 1 (`[time = 1, level, y, x]` -> `[level, y, x]`).
    ///
    /// # Panics
    /// If a dropped dimension is longer than 1 (a caller's bug).
    pub fn drop_leading(self, n: usize) -> TypedArray {
        if n == 0 {
            return self;
        }
        assert!(self.shape()[..n].iter().all(|&d| d == 1), "dropping dimensions of {:?} longer than 1", self.shape());
        with_typed_array!(self, a => {
            let shape = a.shape()[n..].to_vec();
            IntoTyped::typed(a.into_shape_with_order(ndarray::IxDyn(&shape)).expect("same element count"))
        })
    }

    /// Values as f64, in logical (row-major) order. For tests and small arrays.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        with_typed_array!(self, a => a.iter().map(|&v| v as f64).collect())
    }
}

impl TypedArray {
    /// A one-dimensional array of values.
    pub fn from_vec<T: IntoTyped>(v: Vec<T>) -> TypedArray {
        let n = v.len();
        T::typed(ArrayD::from_shape_vec(ndarray::IxDyn(&[n]), v).expect("1-D shape"))
    }
}

/// Element types a [`TypedArray`] can hold.
pub trait IntoTyped: Sized + Copy {
    fn typed(a: ArrayD<Self>) -> TypedArray;
}
macro_rules! into_typed {
    ($($t:ty => $v:ident),*) => {$(
        impl IntoTyped for $t { fn typed(a: ArrayD<$t>) -> TypedArray { TypedArray::$v(a) } }
    )*};
}
into_typed!(u8 => U8, i8 => I8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, f32 => F32, f64 => F64);

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn names_round_trip() {
        for t in DataType::ALL {
            assert_eq!(DataType::parse(t.name()), Some(t));
        }
        assert_eq!(DataType::parse("i64"), None);
    }

    #[test]
    fn all_equal_handles_nan_and_values() {
        let a = TypedArray::F32(ArrayD::from_elem(IxDyn(&[2, 2]), f32::NAN));
        assert!(a.all_equal(f64::NAN));
        assert!(!a.all_equal(0.0));
        let b = TypedArray::I16(ArrayD::from_elem(IxDyn(&[3]), -32768));
        assert!(b.all_equal(-32768.0));
        let mut c = ArrayD::from_elem(IxDyn(&[3]), 255u8);
        c[[1]] = 0;
        assert!(!TypedArray::U8(c).all_equal(255.0));
    }
}
