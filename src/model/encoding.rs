//! The stored encoding of a variable (type, CF packing, missing-value codes,
//! valid range, units) and the recoding of a later source's values into a
//! dataset's encoding.
//!
//! A dataset keeps one encoding per variable (its first source's). A later
//! source of the same variable may be encoded differently. The rule is: never
//! reinterpret a value. A source's raw values are decoded with the source's
//! encoding and re-encoded into the dataset's encoding when every value fits,
//! with the largest quantisation error stated ([`Quantisation`]); otherwise
//! the whole array is refused with one line naming the variable, both
//! encodings and the remedy ([`EncodingError`]).
//!
//! # Conventions followed
//!
//! * **Decoding** is `raw * scale_factor + add_offset` in f64 (absent
//!   `scale_factor` is 1, absent `add_offset` 0). Attribute values are taken
//!   exactly: a float32 `scale_factor` of `0.01f` is `0.009999999776482582`.
//! * **Missing cells** of an encoding are raw values
//!   - equal to `_FillValue` or to any `missing_value` (both honoured; codes
//!     are compared in the variable's stored type, as the netCDF library
//!     converts attributes),
//!   - NaN (float types),
//!   - outside `valid_min`/`valid_max`/`valid_range` (packed units; the NUG and
//!     CF say values outside the valid range are missing; `valid_min` and
//!     `valid_max` override the corresponding end of `valid_range`, as
//!     netCDF4-python does),
//!   - when the variable has **no `_FillValue` attribute**, equal to the
//!     netCDF default fill of its type (`NC_FILL_SHORT` = -32767, ...),
//!     except for the byte types `u8`/`i8`. This follows the netCDF-C
//!     documentation (Attribute Conventions, `_FillValue` and `valid_range`):
//!     the library pre-fills never-written cells with the default fill, and
//!     "the valid range should exclude the _FillValue (whether defined
//!     explicitly or by default)", except that "if the data type is byte and
//!     _FillValue is not explicitly defined, then the valid range should
//!     include all possible values". netCDF4-python masks the same way
//!     (xarray does not). The default fill is therefore read as missing, and
//!     a real value is never re-encoded onto it (such values are refused as a
//!     collision), but it is never *written* as the missing code of a dataset
//!     that declares none: a reader that ignores the NUG rule would see a real
//!     value there.
//! * **Where missing cells go**: the dataset's `_FillValue`; else its first
//!   `missing_value`; else NaN for float datasets; else nowhere — the plan is
//!   made, but applying it to data with a missing cell fails
//!   ([`EncodingError::NoFill`]).
//! * **Encoding into a packed integer type** rounds `(v - add_offset) /
//!   scale_factor` to the nearest integer, halves away from zero (`f64::round`,
//!   like the netCDF-C/NUG advice "rounding the result to the nearest integer"
//!   and xarray's encoder, which uses `np.around` then casts — the two differ
//!   only on exact halves, which decimal packings make vanishingly rare). The
//!   error is then at most `|scale_factor| / 2` (plus f64 rounding). Values are
//!   refused when the rounded code falls outside the type's range, equals one
//!   of the dataset's missing codes (a real value must never become missing),
//!   or falls outside the dataset's valid range (packed units) while it was
//!   valid in the source.
//! * **An integer dataset that is not packed** (class codes, masks) accepts
//!   only exactly integral values: error 0, never rounded.
//! * **Float datasets**: the value (or `(v - offset) / scale` when the float
//!   variable itself is packed) is cast to the stored type; the error is the
//!   float rounding (at most half an f32 ulp of the value for f32).
//! * When source and dataset have the same `scale_factor` and `add_offset`,
//!   raw values are carried over unchanged (only the type and the missing
//!   codes change), so a changed `_FillValue` never perturbs a value.
//!
//! See [`unpacked`] for the stored type of `--unpack` datasets.
//!
//! # Performance
//!
//! [`Recode::apply`] makes one pass and one allocation (the output array);
//! the loop is specialised per source type, dataset type and mode, without
//! libm calls. For 8- and 16-bit sources of at least twice as many cells as
//! the type has values (e.g. 131072 for int16), the rule is evaluated once per
//! possible raw value into a table, and the pass is a table lookup plus a
//! histogram, from which the counts, the error and the refusals are derived
//! (same results, a few times faster).

use std::fmt;

use ndarray::ArrayD;

use crate::model::{AttrValue, Attribute, Attributes, DataType, IntoTyped, TypedArray};
use crate::{with_data_type, with_typed_array};

/// The stored encoding of one variable: everything needed to turn a raw
/// stored value into a physical value and to tell missing cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoding {
    /// The stored type.
    pub dtype: DataType,
    /// `scale_factor`, exact.
    pub scale: Option<f64>,
    /// `add_offset`, exact.
    pub offset: Option<f64>,
    /// `_FillValue` (absent: see the module documentation).
    pub fill: Option<f64>,
    /// `missing_value`, all its values.
    pub missing: Vec<f64>,
    /// Lower end of the valid range, packed units.
    pub valid_min: Option<f64>,
    /// Upper end of the valid range, packed units.
    pub valid_max: Option<f64>,
    /// `units`, trimmed.
    pub units: Option<String>,
}

impl Encoding {
    /// The encoding described by a variable's attributes. Non-numeric
    /// `scale_factor`, `_FillValue`, ... are ignored; `valid_range` gives both
    /// ends, and `valid_min`/`valid_max` override its ends.
    pub fn from_attrs(dtype: DataType, attrs: &[Attribute]) -> Encoding {
        let num = |name: &str| attrs.get_attr(name).and_then(AttrValue::as_f64);
        let (mut valid_min, mut valid_max) = match attrs.get_attr("valid_range").and_then(AttrValue::to_f64_vec) {
            Some(v) if v.len() >= 2 => (Some(v[0]), Some(v[1])),
            _ => (None, None),
        };
        if let Some(x) = num("valid_min") {
            valid_min = Some(x);
        }
        if let Some(x) = num("valid_max") {
            valid_max = Some(x);
        }
        Encoding {
            dtype,
            scale: num("scale_factor"),
            offset: num("add_offset"),
            fill: num("_FillValue"),
            missing: attrs.get_attr("missing_value").and_then(AttrValue::to_f64_vec).unwrap_or_default(),
            valid_min,
            valid_max,
            units: attrs.text_attr("units").map(|u| u.trim().to_string()),
        }
    }

    /// True when `scale_factor` or `add_offset` is present.
    pub fn is_packed(&self) -> bool {
        self.scale.is_some() || self.offset.is_some()
    }

    /// `scale_factor`, 1 when absent.
    pub fn scale_or_one(&self) -> f64 {
        self.scale.unwrap_or(1.0)
    }

    /// `add_offset`, 0 when absent.
    pub fn offset_or_zero(&self) -> f64 {
        self.offset.unwrap_or(0.0)
    }

    /// The physical value of a raw value: `raw * scale + offset` in f64.
    pub fn decode(&self, raw: f64) -> f64 {
        raw * self.scale_or_one() + self.offset_or_zero()
    }

    /// The netCDF default fill of the type when it stands in for an absent
    /// `_FillValue` (never for the byte types); see the module documentation.
    pub fn implicit_fill(&self) -> Option<f64> {
        match (self.fill, self.dtype) {
            (Some(_), _) | (None, DataType::U8 | DataType::I8) => None,
            (None, t) => Some(t.default_fill()),
        }
    }

    /// The raw codes that mark a missing cell, converted to the stored type
    /// (codes the type cannot hold are dropped; NaN is not listed).
    pub fn missing_codes(&self) -> Vec<f64> {
        let mut codes: Vec<f64> = self
            .fill
            .iter()
            .chain(&self.missing)
            .copied()
            .chain(self.implicit_fill())
            .filter_map(|c| stored_value(self.dtype, c))
            .filter(|c| !c.is_nan())
            .collect();
        codes.sort_by(f64::total_cmp);
        codes.dedup();
        codes
    }

    /// True when `raw` (a value of the stored type) marks a missing cell.
    pub fn is_missing(&self, raw: f64) -> bool {
        raw.is_nan() || !self.in_valid_range(raw) || self.missing_codes().contains(&raw)
    }

    fn in_valid_range(&self, raw: f64) -> bool {
        !(raw < self.valid_min.unwrap_or(f64::NEG_INFINITY) || raw > self.valid_max.unwrap_or(f64::INFINITY))
    }

    /// The raw code missing cells are written as: `_FillValue`, else the first
    /// `missing_value`, else NaN for float types, else none.
    pub fn missing_target(&self) -> Option<f64> {
        self.fill
            .iter()
            .chain(&self.missing)
            .find_map(|&c| stored_value(self.dtype, c))
            .or(if self.dtype.is_float() { Some(f64::NAN) } else { None })
    }

    /// One line for messages: `int16, scale_factor 0.0018, add_offset 262.5,
    /// _FillValue -32767` (units are not included).
    pub fn describe(&self) -> String {
        let mut s = type_label(self.dtype).to_string();
        let mut add = |name: &str, v: String| {
            s.push_str(", ");
            s.push_str(name);
            s.push(' ');
            s.push_str(&v);
        };
        if let Some(x) = self.scale {
            add("scale_factor", fmt_num(x));
        }
        if let Some(x) = self.offset {
            add("add_offset", fmt_num(x));
        }
        if let Some(x) = self.fill {
            add("_FillValue", fmt_num(x));
        }
        match self.missing.as_slice() {
            [] => {}
            [x] => add("missing_value", fmt_num(*x)),
            xs => add("missing_value", format!("[{}]", xs.iter().map(|&x| fmt_num(x)).collect::<Vec<_>>().join(", "))),
        }
        match (self.valid_min, self.valid_max) {
            (Some(a), Some(b)) => add("valid_range", format!("[{}, {}]", fmt_num(a), fmt_num(b))),
            (Some(a), None) => add("valid_min", fmt_num(a)),
            (None, Some(b)) => add("valid_max", fmt_num(b)),
            (None, None) => {}
        }
        s
    }

    /// Same stored meaning for every raw value: same type, packing (absent
    /// scale = 1, absent offset = 0), `_FillValue`, `missing_value` set and
    /// valid range. Units are compared separately.
    fn same_storage(&self, other: &Encoding) -> bool {
        fn set(v: &[f64]) -> Vec<f64> {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v.dedup_by(|a, b| same_num(*a, *b));
            v
        }
        let (a, b) = (set(&self.missing), set(&other.missing));
        self.dtype == other.dtype
            && self.same_packing(other)
            && same_opt(self.fill, other.fill)
            && a.len() == b.len()
            && a.iter().zip(&b).all(|(x, y)| same_num(*x, *y))
            && same_opt(self.valid_min, other.valid_min)
            && same_opt(self.valid_max, other.valid_max)
    }

    fn same_packing(&self, other: &Encoding) -> bool {
        self.scale_or_one() == other.scale_or_one() && self.offset_or_zero() == other.offset_or_zero()
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn same_num(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn same_opt(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => same_num(x, y),
        _ => false,
    }
}

/// Shortest round-trip rendering; exponent form outside [1e-5, 1e16) so that
/// `9.969209968386869e36` is not printed with 37 digits.
fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 || !x.is_finite() || (1e-5..1e16).contains(&a) { format!("{x}") } else { format!("{x:e}") }
}

fn type_label(t: DataType) -> &'static str {
    match t {
        DataType::U8 => "uint8",
        DataType::I8 => "int8",
        DataType::I16 => "int16",
        DataType::U16 => "uint16",
        DataType::I32 => "int32",
        DataType::U32 => "uint32",
        DataType::F32 => "float32",
        DataType::F64 => "float64",
    }
}

fn type_range(t: DataType) -> (f64, f64) {
    with_data_type!(t, T => (<T as Raw>::MIN, <T as Raw>::MAX))
}

/// `x` as a value of type `t` (as f64), or None when `t` cannot hold it
/// exactly (integers) — floats are rounded to the type, as netCDF does.
fn stored_value(t: DataType, x: f64) -> Option<f64> {
    match t {
        DataType::F64 => Some(x),
        DataType::F32 => Some(x as f32 as f64),
        _ => {
            let (lo, hi) = type_range(t);
            (x.fract() == 0.0 && x >= lo && x <= hi).then_some(x)
        }
    }
}

/// How a source's raw values become the dataset's raw values.
// Made once per variable and file: the size of Convert does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Recode {
    /// Same stored meaning: raw values are stored as they are (also the plan
    /// of a variable's first source, whose encoding becomes the dataset's).
    Identity,
    /// Decode with `source`, send missing cells to `missing_to` (a raw code of
    /// `dataset`; None: the dataset has none and missing cells are refused),
    /// encode into `dataset`.
    Convert { var: String, source: Encoding, dataset: Encoding, missing_to: Option<f64> },
}

/// The recoding of a source variable into a dataset variable. Refuses
/// differing units (tessera does not convert units); any other difference
/// gives [`Recode::Convert`], whose [`Recode::apply`] decides per array.
pub fn plan(var: &str, dataset: &Encoding, source: &Encoding) -> Result<Recode, EncodingError> {
    let du = dataset.units.as_deref().map(str::trim);
    let su = source.units.as_deref().map(str::trim);
    if du != su {
        let show = |u: Option<&str>| u.map_or_else(|| "no units attribute".to_string(), |u| format!("{u:?}"));
        return Err(EncodingError::Units { var: var.to_string(), dataset_units: show(du), source_units: show(su) });
    }
    if dataset.same_storage(source) {
        return Ok(Recode::Identity);
    }
    Ok(Recode::Convert {
        var: var.to_string(),
        source: source.clone(),
        dataset: dataset.clone(),
        missing_to: dataset.missing_target(),
    })
}

/// The outcome of recoding: the worst error and how many cells were seen.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quantisation {
    /// `max |decode_dataset(new_raw) - decode_source(raw)|` over valid cells,
    /// in f64 and physical units. 0 for [`Recode::Identity`].
    pub max_abs_error: f64,
    /// Valid (non-missing) cells re-encoded. [`Recode::Identity`] does not
    /// look at values: it counts every cell here.
    pub values: u64,
    /// Missing cells, written as the dataset's missing code (0 for Identity).
    pub missing: u64,
}

impl Quantisation {
    /// Accumulates another array's (band's) quantisation into this one.
    pub fn merge(&mut self, other: &Quantisation) {
        self.max_abs_error = self.max_abs_error.max(other.max_abs_error);
        self.values += other.values;
        self.missing += other.missing;
    }
}

impl fmt::Display for Quantisation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} values ({} missing), max abs error {}", self.values, self.missing, fmt_num(self.max_abs_error))
    }
}

const NEW_DATASET: &str = "ingest into a new dataset";

fn unpack_remedy(var: &str) -> String {
    format!("recreate the dataset with --unpack {var} (stores decoded float values) or {NEW_DATASET}")
}

/// Why a source cannot be stored in a dataset's encoding. One line each.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EncodingError {
    #[error(
        "variable {var}: units differ: the dataset has {dataset_units}, the source has {source_units}; \
         tessera does not convert units (convert the source first or ingest into a new dataset)"
    )]
    Units { var: String, dataset_units: String, source_units: String },
    #[error(
        "variable {var}: {count} of {total} values of the source ({source_encoding}) do not fit \
         the dataset's encoding ({dataset_encoding}): {detail}; {}",
        if *.unpack_helps { unpack_remedy(.var) } else { NEW_DATASET.to_string() }
    )]
    DoesNotFit {
        var: String,
        source_encoding: String,
        dataset_encoding: String,
        count: u64,
        total: u64,
        detail: String,
        /// The dataset is packed integers: `--unpack` would store the values.
        unpack_helps: bool,
    },
    #[error(
        "variable {var}: the source ({source_encoding}) has {count} missing cells but the dataset's \
         encoding ({dataset_encoding}) has no _FillValue or missing_value to store them; \
         recreate the dataset with a _FillValue{}",
        if *.unpack_helps { format!(", or with --unpack {var}") } else { String::new() }
    )]
    NoFill { var: String, source_encoding: String, dataset_encoding: String, count: u64, unpack_helps: bool },
    #[error("variable {var}: the data is {found} but the source encoding is {expected}")]
    DataType { var: String, expected: DataType, found: DataType },
}

impl Recode {
    pub fn is_identity(&self) -> bool {
        matches!(self, Recode::Identity)
    }

    /// The data in the dataset's type and encoding, with the worst error.
    /// [`Recode::Convert`] builds a new array (standard layout, the input's
    /// shape and logical order) in one pass, or refuses the whole array.
    /// [`Recode::Identity`] returns a copy: to avoid it, skip Identity or use
    /// [`Recode::apply_owned`].
    pub fn apply(&self, data: &TypedArray) -> Result<(TypedArray, Quantisation), EncodingError> {
        match self {
            Recode::Identity => Ok((data.clone(), identity_count(data))),
            Recode::Convert { .. } => self.convert(data, true),
        }
    }

    /// [`Recode::apply`] taking the array by value: Identity hands the same
    /// array back without copying or reading it.
    pub fn apply_owned(&self, data: TypedArray) -> Result<(TypedArray, Quantisation), EncodingError> {
        match self {
            Recode::Identity => {
                let q = identity_count(&data);
                Ok((data, q))
            }
            Recode::Convert { .. } => self.convert(&data, true),
        }
    }

    /// `allow_table`: false forces the cell-by-cell loop (tests compare both).
    fn convert(&self, data: &TypedArray, allow_table: bool) -> Result<(TypedArray, Quantisation), EncodingError> {
        let Recode::Convert { var, source, dataset, missing_to } = self else {
            unreachable!("convert is only called for Convert")
        };
        if data.dtype() != source.dtype {
            return Err(EncodingError::DataType { var: var.clone(), expected: source.dtype, found: data.dtype() });
        }
        let k = Kernel::new(source, dataset, *missing_to);
        let tally = with_typed_array!(data, a => with_data_type!(dataset.dtype, D => {
            let (out, tally) = convert_array::<_, D>(a, &k, allow_table);
            (IntoTyped::typed(out), tally)
        }));
        let (out, t) = tally;
        let bad = t.failures();
        if bad > 0 {
            let mut parts = Vec::new();
            let (lo, hi) = type_range(dataset.dtype);
            let ex = |f: &Failure| format!("e.g. {} (raw {})", fmt_num(f.value), fmt_num(f.raw));
            if t.range.count > 0 {
                let what = if dataset.dtype.is_float() {
                    format!("overflow {}", type_label(dataset.dtype))
                } else if dataset.is_packed() {
                    let (a, b) = (dataset.decode(lo), dataset.decode(hi));
                    format!(
                        "encode outside the {} range {}..={} (values {}..={})",
                        type_label(dataset.dtype),
                        fmt_num(lo),
                        fmt_num(hi),
                        fmt_num(a.min(b)),
                        fmt_num(a.max(b)),
                    )
                } else {
                    format!("are outside the {} range {}..={}", type_label(dataset.dtype), fmt_num(lo), fmt_num(hi))
                };
                parts.push(format!("{} {what} ({})", t.range.count, ex(&t.range)));
            }
            if t.nonintegral.count > 0 {
                parts.push(format!(
                    "{} not integral, and the unpacked integer dataset stores exact values only ({})",
                    t.nonintegral.count,
                    ex(&t.nonintegral)
                ));
            }
            if t.collision.count > 0 {
                parts.push(format!(
                    "{} would encode to a missing code of the dataset ({}, raw code {})",
                    t.collision.count,
                    ex(&t.collision),
                    fmt_num(t.collision.code)
                ));
            }
            if t.invalid.count > 0 {
                parts.push(format!(
                    "{} would fall outside the dataset's valid range ({}, raw code {})",
                    t.invalid.count,
                    ex(&t.invalid),
                    fmt_num(t.invalid.code)
                ));
            }
            return Err(EncodingError::DoesNotFit {
                var: var.clone(),
                source_encoding: source.describe(),
                dataset_encoding: dataset.describe(),
                count: bad,
                total: t.q.values,
                detail: parts.join(", "),
                unpack_helps: dataset.is_packed() && !dataset.dtype.is_float(),
            });
        }
        if t.q.missing > 0 && missing_to.is_none() {
            return Err(EncodingError::NoFill {
                var: var.clone(),
                source_encoding: source.describe(),
                dataset_encoding: dataset.describe(),
                count: t.q.missing,
                unpack_helps: dataset.is_packed(),
            });
        }
        Ok((out, t.q))
    }
}

fn identity_count(data: &TypedArray) -> Quantisation {
    Quantisation { max_abs_error: 0.0, values: with_typed_array!(data, a => a.len()) as u64, missing: 0 }
}

/// Element types, with their ranges as f64.
trait Raw: Copy + IntoTyped + 'static {
    const FLOAT: bool;
    const MIN: f64;
    const MAX: f64;
    /// How many distinct values the type has when a lookup table over all of
    /// them is cheap (8- and 16-bit integers), else 0.
    const DISTINCT: usize;
    fn to_f64(self) -> f64;
    /// `as` cast (saturating for integers; callers check the range first).
    fn from_f64(x: f64) -> Self;
    /// The value's bits as an unsigned index (types with `DISTINCT > 0`).
    fn index(self) -> usize;
    fn from_index(i: usize) -> Self;
}

macro_rules! raw_int {
    ($($t:ty => $u:ty, $distinct:expr);*) => {$(
        impl Raw for $t {
            const FLOAT: bool = false;
            const MIN: f64 = <$t>::MIN as f64;
            const MAX: f64 = <$t>::MAX as f64;
            const DISTINCT: usize = $distinct;
            #[inline(always)]
            fn to_f64(self) -> f64 { self as f64 }
            #[inline(always)]
            fn from_f64(x: f64) -> Self { x as $t }
            #[inline(always)]
            fn index(self) -> usize { self as $u as usize }
            #[inline(always)]
            fn from_index(i: usize) -> Self { i as $u as $t }
        }
    )*};
}
raw_int!(u8 => u8, 1 << 8; i8 => u8, 1 << 8; i16 => u16, 1 << 16; u16 => u16, 1 << 16; i32 => u32, 0; u32 => u32, 0);

macro_rules! raw_float {
    ($($t:ty),*) => {$(
        impl Raw for $t {
            const FLOAT: bool = true;
            const MIN: f64 = f64::NEG_INFINITY;
            const MAX: f64 = f64::INFINITY;
            const DISTINCT: usize = 0;
            #[inline(always)]
            fn to_f64(self) -> f64 { self as f64 }
            #[inline(always)]
            fn from_f64(x: f64) -> Self { x as $t }
            fn index(self) -> usize { unreachable!("no table for floats") }
            fn from_index(_: usize) -> Self { unreachable!("no table for floats") }
        }
    )*};
}
raw_float!(f32, f64);

/// The missing-cell test of one encoding ([`Encoding::is_missing`]),
/// precomputed for loops over many cells.
pub struct MissingTest {
    /// Up to four codes, padded with NaN (never equal), tested without a loop.
    few: [f64; 4],
    /// All codes, when there are more than four.
    many: Vec<f64>,
    lo: f64,
    hi: f64,
}

impl MissingTest {
    pub fn new(e: &Encoding) -> MissingTest {
        let codes = e.missing_codes();
        let mut few = [f64::NAN; 4];
        let many = if codes.len() <= few.len() {
            few[..codes.len()].copy_from_slice(&codes);
            Vec::new()
        } else {
            codes
        };
        MissingTest {
            few,
            many,
            lo: e.valid_min.unwrap_or(f64::NEG_INFINITY),
            hi: e.valid_max.unwrap_or(f64::INFINITY),
        }
    }

    #[inline(always)]
    fn is_code(&self, r: f64) -> bool {
        let f = &self.few;
        ((f[0] == r) | (f[1] == r) | (f[2] == r) | (f[3] == r)) || (!self.many.is_empty() && self.many.contains(&r))
    }

    #[inline(always)]
    fn in_range(&self, r: f64) -> bool {
        (r >= self.lo) & (r <= self.hi)
    }

    #[inline(always)]
    pub fn is_missing(&self, r: f64) -> bool {
        // NaN fails the range test.
        !self.in_range(r) || self.is_code(r)
    }
}

/// Everything the inner loop needs, as f64.
struct Kernel {
    src: MissingTest,
    s_scale: f64,
    s_off: f64,
    /// Same scale and offset: the raw value itself is the new code.
    same_packing: bool,
    d_scale: f64,
    d_off: f64,
    /// Round to the nearest integer (packed integer dataset).
    d_round: bool,
    dst: MissingTest,
    missing_to: Option<f64>,
}

impl Kernel {
    fn new(source: &Encoding, dataset: &Encoding, missing_to: Option<f64>) -> Kernel {
        Kernel {
            src: MissingTest::new(source),
            s_scale: source.scale_or_one(),
            s_off: source.offset_or_zero(),
            same_packing: source.same_packing(dataset),
            d_scale: dataset.scale_or_one(),
            d_off: dataset.offset_or_zero(),
            d_round: dataset.is_packed() && !dataset.dtype.is_float(),
            dst: MissingTest::new(dataset),
            missing_to,
        }
    }
}

#[derive(Default)]
struct Failure {
    count: u64,
    /// An offending decoded value, its raw value and the code it became.
    value: f64,
    raw: f64,
    code: f64,
}

impl Failure {
    fn record(&mut self, n: u64, value: f64, raw: f64, code: f64) {
        if self.count == 0 {
            self.value = value;
            self.raw = raw;
            self.code = code;
        }
        self.count += n;
    }
}

#[derive(Default)]
struct Tally {
    q: Quantisation,
    range: Failure,
    nonintegral: Failure,
    collision: Failure,
    invalid: Failure,
}

impl Tally {
    /// Records `n` cells refused as the code `q` (decoded source value `v`,
    /// raw `r`), by reason.
    #[cold]
    #[inline(never)]
    fn refuse<D: Raw>(&mut self, n: u64, dst: &MissingTest, v: f64, r: f64, q: f64) {
        if !D::FLOAT && q.is_finite() && q != q.trunc() {
            self.nonintegral.record(n, v, r, q);
        } else if q.is_nan() || q < D::MIN || q > D::MAX || (D::FLOAT && q.is_infinite() && !r.is_infinite()) {
            self.range.record(n, v, r, q);
        } else if !dst.in_range(q) {
            self.invalid.record(n, v, r, q);
        } else {
            self.collision.record(n, v, r, q);
        }
    }

    fn failures(&self) -> u64 {
        self.range.count + self.nonintegral.count + self.collision.count + self.invalid.count
    }
}

/// `x.round()` (halves away from zero) without a libm call: exact for
/// |x| < 2^52, where `x - trunc(x)` is exact; larger values are integral.
#[inline(always)]
fn round_half_away(x: f64) -> f64 {
    if x.abs() < 4_503_599_627_370_496.0 {
        let t = (x as i64) as f64;
        let f = x - t;
        // Branch-free: the fractions of real data are unpredictable.
        t + (f >= 0.5) as u8 as f64 - (f <= -0.5) as u8 as f64
    } else {
        x
    }
}

/// One source cell in the dataset's encoding.
enum Cell<D> {
    Missing,
    /// The new code and its error.
    Value(D, f64),
    /// Does not fit: decoded value, raw value, the code it would become.
    Refused(f64, f64, f64),
}

/// The whole rule for one cell. `SAME`: same packing, the raw value is the
/// new code; `ROUND`: packed integer dataset.
#[inline(always)]
fn cell<S: Raw, D: Raw, const SAME: bool, const ROUND: bool>(x: S, k: &Kernel) -> Cell<D> {
    let r = x.to_f64();
    if k.src.is_missing(r) {
        return Cell::Missing;
    }
    let v = r * k.s_scale + k.s_off;
    let q = if SAME { r } else { (v - k.d_off) / k.d_scale };
    let q = if D::FLOAT {
        D::from_f64(q).to_f64()
    } else if ROUND {
        round_half_away(q)
    } else {
        q
    };
    // Integer targets that are not rounded take integral values only; the
    // raw values of an integer source with the same packing are integral.
    let check_integral = !D::FLOAT && !ROUND && (S::FLOAT || !SAME);
    let fits = if D::FLOAT {
        // NaN only from a degenerate packing; overflow to infinity.
        !q.is_nan() & !(q.is_infinite() & !r.is_infinite())
    } else {
        // `as i64` truncates, exactly within every integer type's range.
        (q >= D::MIN) & (q <= D::MAX) && (!check_integral || q == (q as i64) as f64)
    };
    if fits && k.dst.in_range(q) && !k.dst.is_code(q) {
        // An infinite v (valid float source) gives NaN, which max ignores.
        Cell::Value(D::from_f64(q), (q * k.d_scale + k.d_off - v).abs())
    } else {
        Cell::Refused(v, r, q)
    }
}

/// One pass, one allocation (the output); every cell is visited even after a
/// failure so that the message can count them.
fn convert_array<S: Raw, D: Raw>(src: &ArrayD<S>, k: &Kernel, allow_table: bool) -> (ArrayD<D>, Tally) {
    let mut t = Tally::default();
    let mut out: Vec<D> = Vec::with_capacity(src.len());
    // 8/16-bit sources with many cells: the rule once per distinct raw value.
    let table = allow_table && S::DISTINCT > 0 && src.len() >= 2 * S::DISTINCT && src.len() < u32::MAX as usize;
    // Loop-invariant choices become constants of the loop.
    macro_rules! run {
        ($cells:expr) => {
            match (table, k.same_packing, k.d_round) {
                (false, true, true) => convert_cells::<S, D, true, true>($cells, k, &mut out, &mut t),
                (false, true, false) => convert_cells::<S, D, true, false>($cells, k, &mut out, &mut t),
                (false, false, true) => convert_cells::<S, D, false, true>($cells, k, &mut out, &mut t),
                (false, false, false) => convert_cells::<S, D, false, false>($cells, k, &mut out, &mut t),
                (true, true, true) => convert_by_table::<S, D, true, true>($cells, k, &mut out, &mut t),
                (true, true, false) => convert_by_table::<S, D, true, false>($cells, k, &mut out, &mut t),
                (true, false, true) => convert_by_table::<S, D, false, true>($cells, k, &mut out, &mut t),
                (true, false, false) => convert_by_table::<S, D, false, false>($cells, k, &mut out, &mut t),
            }
        };
    }
    match src.as_slice() {
        Some(s) => run!(s.iter().copied()),
        None => run!(src.iter().copied()),
    }
    t.q.values = src.len() as u64 - t.q.missing;
    let out = ArrayD::from_shape_vec(src.raw_dim(), out).expect("one value per cell");
    (out, t)
}

#[inline(always)]
fn convert_cells<S: Raw, D: Raw, const SAME: bool, const ROUND: bool>(
    cells: impl Iterator<Item = S>,
    k: &Kernel,
    out: &mut Vec<D>,
    t: &mut Tally,
) {
    let miss = D::from_f64(k.missing_to.unwrap_or(0.0));
    let (mut max_err, mut missing) = (0.0f64, 0u64);
    out.extend(cells.map(|x| match cell::<S, D, SAME, ROUND>(x, k) {
        Cell::Value(d, e) => {
            max_err = max_err.max(e);
            d
        }
        Cell::Missing => {
            missing += 1;
            miss
        }
        Cell::Refused(v, r, q) => {
            t.refuse::<D>(1, &k.dst, v, r, q);
            D::from_f64(q)
        }
    }));
    t.q.max_abs_error = max_err;
    t.q.missing = missing;
}

/// [`convert_cells`] through a table of the new code of every raw value and
/// a histogram of the raw values met: the same rule, evaluated once per
/// distinct value; errors and counts come from the values actually met.
#[inline(always)]
fn convert_by_table<S: Raw, D: Raw, const SAME: bool, const ROUND: bool>(
    cells: impl Iterator<Item = S>,
    k: &Kernel,
    out: &mut Vec<D>,
    t: &mut Tally,
) {
    let miss = D::from_f64(k.missing_to.unwrap_or(0.0));
    let codes: Vec<D> = (0..S::DISTINCT)
        .map(|i| match cell::<S, D, SAME, ROUND>(S::from_index(i), k) {
            Cell::Value(d, _) => d,
            Cell::Missing => miss,
            Cell::Refused(.., q) => D::from_f64(q),
        })
        .collect();
    let mut seen = vec![0u32; S::DISTINCT];
    out.extend(cells.map(|x| {
        let i = x.index();
        seen[i] += 1;
        codes[i]
    }));
    let (mut max_err, mut missing) = (0.0f64, 0u64);
    for (i, &n) in seen.iter().enumerate().filter(|(_, n)| **n > 0) {
        match cell::<S, D, SAME, ROUND>(S::from_index(i), k) {
            Cell::Value(_, e) => max_err = max_err.max(e),
            Cell::Missing => missing += n as u64,
            Cell::Refused(v, r, q) => t.refuse::<D>(n as u64, &k.dst, v, r, q),
        }
    }
    t.q.max_abs_error = max_err;
    t.q.missing = missing;
}

/// The stored type and attributes of a variable unpacked by `--unpack`.
///
/// A variable without a numeric `scale_factor`/`add_offset` is returned
/// unchanged (already float, or unpacked integers such as class codes, which
/// stay exact). Otherwise the stored type is:
///
/// * float64 for float64 sources, for int32/uint32 sources (float32's 24-bit
///   significand cannot hold 32-bit codes), and for float32 sources packed
///   with a float64 attribute;
/// * for 8- and 16-bit sources whose `scale_factor` or `add_offset` is a
///   float64 attribute: float64 when the float32 spacing (ulp) at the largest
///   decodable magnitude `|add_offset| + |scale_factor| * max|raw|` exceeds
///   `|scale_factor| / 2`, i.e. when float32 would lose the packing's
///   resolution; else float32;
/// * float32 otherwise (float32 attributes: the producer's declared unpacked
///   type, as the NUG and xarray read it).
///
/// Attributes: `scale_factor`/`add_offset` dropped; `_FillValue` becomes NaN
/// of the new type (added where `missing_value` was, or at the end, when the
/// source had none: NaN marks every missing cell of an unpacked variable);
/// `missing_value` dropped; `valid_min`/`valid_max`/`valid_range` converted
/// to decoded units in the new type, ends swapped when `scale_factor < 0`
/// (`valid_min` becomes `valid_max` and vice versa); everything else kept in
/// order.
pub fn unpacked(var_attrs: &[Attribute], dtype: DataType) -> (DataType, Vec<Attribute>) {
    let numeric = |name: &str| var_attrs.get_attr(name).filter(|v| v.as_f64().is_some());
    let (scale_attr, offset_attr) = (numeric("scale_factor"), numeric("add_offset"));
    if scale_attr.is_none() && offset_attr.is_none() {
        return (dtype, var_attrs.to_vec());
    }
    let scale = scale_attr.and_then(AttrValue::as_f64).unwrap_or(1.0);
    let offset = offset_attr.and_then(AttrValue::as_f64).unwrap_or(0.0);
    let f64_attr = [scale_attr, offset_attr].iter().flatten().any(|v| matches!(v, AttrValue::F64(_)));
    let new = match dtype {
        DataType::F64 | DataType::I32 | DataType::U32 => DataType::F64,
        DataType::F32 if f64_attr => DataType::F64,
        DataType::F32 => DataType::F32,
        t if f64_attr => {
            let (lo, hi) = type_range(t);
            let largest = offset.abs() + scale.abs() * lo.abs().max(hi.abs());
            if f32_ulp(largest) > scale.abs() / 2.0 { DataType::F64 } else { DataType::F32 }
        }
        _ => DataType::F32,
    };
    let value = |x: f64| match new {
        DataType::F32 => AttrValue::F32(vec![x as f32]),
        _ => AttrValue::F64(vec![x]),
    };
    let has_fill = var_attrs.get_attr("_FillValue").is_some();
    let mut fill_placed = false;
    let mut out = Vec::with_capacity(var_attrs.len() + 1);
    for a in var_attrs {
        let decoded = a.value.to_f64_vec().map(|v| v.into_iter().map(|x| x * scale + offset).collect::<Vec<_>>());
        match (a.name.as_str(), decoded) {
            ("scale_factor" | "add_offset", Some(_)) => {}
            ("_FillValue", _) | ("missing_value", _) => {
                if !fill_placed && (a.name == "_FillValue" || !has_fill) {
                    out.push(Attribute::new("_FillValue", value(f64::NAN)));
                    fill_placed = true;
                }
            }
            ("valid_min" | "valid_max", Some(v)) if !v.is_empty() => {
                let name = match (a.name.as_str(), scale < 0.0) {
                    ("valid_min", true) => "valid_max",
                    ("valid_max", true) => "valid_min",
                    (n, false) => n,
                    _ => unreachable!(),
                };
                out.push(Attribute::new(name, value(v[0])));
            }
            ("valid_range", Some(v)) if v.len() == 2 => {
                let (lo, hi) = if scale < 0.0 { (v[1], v[0]) } else { (v[0], v[1]) };
                out.push(Attribute::new(
                    "valid_range",
                    match new {
                        DataType::F32 => AttrValue::F32(vec![lo as f32, hi as f32]),
                        _ => AttrValue::F64(vec![lo, hi]),
                    },
                ));
            }
            _ => out.push(a.clone()),
        }
    }
    if !fill_placed {
        out.push(Attribute::new("_FillValue", value(f64::NAN)));
    }
    (new, out)
}

/// The spacing of float32 values at magnitude `x` (infinite past f32::MAX).
fn f32_ulp(x: f64) -> f64 {
    let f = (x.abs() as f32).abs();
    if !f.is_finite() || f == f32::MAX {
        return f64::INFINITY;
    }
    (f32::from_bits(f.to_bits() + 1) as f64) - f as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;
    use proptest::prelude::*;

    fn i16s(v: &[i16]) -> AttrValue {
        AttrValue::I16(v.to_vec())
    }
    fn f64s(v: &[f64]) -> AttrValue {
        AttrValue::F64(v.to_vec())
    }

    fn packed(dtype: DataType, scale: f64, offset: f64, fill: Option<f64>) -> Encoding {
        Encoding {
            dtype,
            scale: Some(scale),
            offset: Some(offset),
            fill,
            missing: vec![],
            valid_min: None,
            valid_max: None,
            units: Some("K".into()),
        }
    }

    fn plain(dtype: DataType, fill: Option<f64>) -> Encoding {
        Encoding { scale: None, offset: None, ..packed(dtype, 1.0, 0.0, fill) }
    }

    fn era5_attrs(scale: f64, offset: f64) -> Vec<Attribute> {
        vec![
            Attribute::new("scale_factor", f64s(&[scale])),
            Attribute::new("add_offset", f64s(&[offset])),
            Attribute::new("_FillValue", i16s(&[-32767])),
            Attribute::new("missing_value", i16s(&[-32767])),
            Attribute::text("units", "K"),
            Attribute::text("long_name", "2 metre temperature"),
        ]
    }

    fn values(a: &TypedArray) -> Vec<f64> {
        a.to_f64_vec()
    }

    #[test]
    fn from_attrs_takes_exact_values_and_ranges() {
        let attrs = vec![
            Attribute::new("scale_factor", AttrValue::F32(vec![0.01])),
            Attribute::new("add_offset", AttrValue::F32(vec![273.15])),
            Attribute::new("_FillValue", i16s(&[-32768])),
            Attribute::new("missing_value", i16s(&[-32767, 32767])),
            Attribute::new("valid_range", i16s(&[-30000, 30000])),
            Attribute::new("valid_max", i16s(&[20000])),
            Attribute::text("units", " K "),
        ];
        let e = Encoding::from_attrs(DataType::I16, &attrs);
        assert_eq!(e.scale, Some(0.009999999776482582));
        assert_eq!(e.offset, Some(273.1499938964844));
        assert_eq!(e.fill, Some(-32768.0));
        assert_eq!(e.missing, vec![-32767.0, 32767.0]);
        assert_eq!((e.valid_min, e.valid_max), (Some(-30000.0), Some(20000.0)));
        assert_eq!(e.units.as_deref(), Some("K"));
        assert!(e.is_packed());
        assert!(e.is_missing(-32768.0) && e.is_missing(32767.0) && e.is_missing(-30001.0) && e.is_missing(20001.0));
        assert!(!e.is_missing(0.0) && !e.is_missing(-30000.0));
        assert!(!Encoding::from_attrs(DataType::F32, &[]).is_packed());
    }

    #[test]
    fn describe_is_short_and_round_trips() {
        let e = packed(DataType::I16, 0.0018, 262.5, Some(-32767.0));
        assert_eq!(e.describe(), "int16, scale_factor 0.0018, add_offset 262.5, _FillValue -32767");
        let mut f = plain(DataType::F32, Some(9.969209968386869e36));
        f.missing = vec![1e20, -1.0];
        f.valid_min = Some(0.0);
        assert_eq!(
            f.to_string(),
            "float32, _FillValue 9.969209968386869e36, missing_value [1e20, -1], valid_min 0"
        );
        assert_eq!(plain(DataType::F64, Some(f64::NAN)).describe(), "float64, _FillValue NaN");
    }

    #[test]
    fn default_fill_is_missing_without_fill_attribute_except_bytes() {
        let e = plain(DataType::I16, None);
        assert!(e.is_missing(-32767.0));
        assert!(!e.is_missing(-32768.0));
        assert!(!plain(DataType::U8, None).is_missing(255.0));
        assert!(!plain(DataType::I8, None).is_missing(-127.0));
        assert!(!plain(DataType::I16, Some(-9999.0)).is_missing(-32767.0));
        assert!(plain(DataType::F32, None).is_missing(f64::NAN));
        assert!(plain(DataType::F32, None).is_missing(DataType::F32.default_fill()));
    }

    #[test]
    fn era5_repacking_is_within_half_a_step() {
        let ds = Encoding::from_attrs(DataType::I16, &era5_attrs(0.0018, 262.5));
        let src = Encoding::from_attrs(DataType::I16, &era5_attrs(0.0017, 258.1));
        let r = plan("t2m", &ds, &src).unwrap();
        assert!(matches!(r, Recode::Convert { missing_to: Some(m), .. } if m == -32767.0));
        let raw: Vec<i16> = (-20000..=20000).step_by(7).chain([-32767, -32767, 32766, -30000]).collect();
        let data = TypedArray::from_vec(raw.clone());
        let (out, q) = r.apply(&data).unwrap();
        assert_eq!(out.dtype(), DataType::I16);
        assert_eq!(q.missing, 2);
        assert_eq!(q.values, raw.len() as u64 - 2);
        assert!(q.max_abs_error <= 0.0018 / 2.0 + 1e-9, "{q}");
        assert!(q.max_abs_error > 0.0);
        let mut worst = 0.0f64;
        for (&s, d) in raw.iter().zip(values(&out)) {
            if s == -32767 {
                assert_eq!(d, -32767.0);
                continue;
            }
            assert_ne!(d, -32767.0);
            let e = (ds.decode(d) - src.decode(s as f64)).abs();
            assert!(e <= q.max_abs_error);
            worst = worst.max(e);
        }
        assert_eq!(worst, q.max_abs_error);
        let (owned, q2) = r.apply_owned(data).unwrap();
        assert_eq!(owned, out);
        assert_eq!(q, q2);
    }

    #[test]
    fn large_int16_bands_take_the_table_path() {
        let ds = Encoding::from_attrs(DataType::I16, &era5_attrs(0.0018, 262.5));
        let src = Encoding::from_attrs(DataType::I16, &era5_attrs(0.0017, 258.1));
        let r = plan("t2m", &ds, &src).unwrap();
        // A 1440 x 100 band: more than 2 x 65536 cells.
        let raw: Vec<i16> = (0..144_000).map(|i| if i % 97 == 0 { -32767 } else { (i % 40_000 - 20_000) as i16 }).collect();
        let data = TypedArray::I16(ArrayD::from_shape_vec(IxDyn(&[100, 1440]), raw.clone()).unwrap());
        let (a, qa) = r.apply(&data).unwrap();
        let (b, qb) = r.convert(&data, false).unwrap();
        assert_eq!(a, b);
        assert_eq!(qa, qb);
        assert_eq!(qa.missing, raw.iter().filter(|&&x| x == -32767).count() as u64);
        assert!(qa.max_abs_error <= 0.0009 + 1e-9);
        // Refusals are counted the same way.
        let mut bad = raw.clone();
        bad[5] = -32106; // lands on the fill code
        bad[6] = -32106;
        let data = TypedArray::from_vec(bad);
        let (e1, e2) = (r.apply(&data).unwrap_err(), r.convert(&data, false).unwrap_err());
        assert!(matches!(e1, EncodingError::DoesNotFit { count: 2, .. }), "{e1}");
        assert_eq!(e1.to_string(), e2.to_string());
    }

    #[test]
    fn values_beyond_the_packable_range_are_refused() {
        let ds = packed(DataType::I16, 0.0018, 262.5, Some(-32767.0));
        let src = packed(DataType::I16, 0.01, 300.0, Some(-32767.0));
        let r = plan("t2m", &ds, &src).unwrap();
        let data = TypedArray::from_vec(vec![0i16, 100, 3000, 32000, -32767]);
        let err = r.apply(&data).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EncodingError::DoesNotFit { count: 2, total: 4, .. }), "{msg}");
        assert!(msg.starts_with("variable t2m: "), "{msg}");
        assert!(msg.contains(&ds.describe()) && msg.contains(&src.describe()), "{msg}");
        assert!(msg.contains("e.g. 330 (raw 3000)"), "{msg}");
        assert!(msg.contains("--unpack t2m (stores decoded float values) or ingest into a new dataset"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn another_fill_value_only_moves_missing_cells() {
        let ds = packed(DataType::I16, 0.0018, 262.5, Some(-32767.0));
        let src = packed(DataType::I16, 0.0018, 262.5, Some(-9999.0));
        let r = plan("t2m", &ds, &src).unwrap();
        assert!(!r.is_identity());
        let raw: Vec<i16> = vec![-9999, 0, 1, -1, 32767, -32768, -9998, -10000, 12345, -9999];
        let (out, q) = r.apply(&TypedArray::from_vec(raw.clone())).unwrap();
        let expect: Vec<i16> = raw.iter().map(|&x| if x == -9999 { -32767 } else { x }).collect();
        assert_eq!(out, TypedArray::from_vec(expect));
        assert_eq!(q.max_abs_error, 0.0);
        assert_eq!((q.values, q.missing), (8, 2));
        // A real -32767 in that source would become missing: refused.
        let err = r.apply(&TypedArray::from_vec(vec![-32767i16])).unwrap_err();
        assert!(err.to_string().contains("missing code"), "{err}");
    }

    #[test]
    fn a_value_landing_on_the_fill_code_is_refused() {
        let ds = packed(DataType::I16, 0.0018, 262.5, Some(-32767.0));
        let src = packed(DataType::I16, 0.0017, 258.1, Some(-32767.0));
        let r = plan("t2m", &ds, &src).unwrap();
        // 258.1 - 32106 * 0.0017 = 203.5198, which packs to -32767.
        let err = r.apply(&TypedArray::from_vec(vec![0i16, -32106])).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EncodingError::DoesNotFit { count: 1, .. }), "{msg}");
        assert!(msg.contains("would encode to a missing code of the dataset"), "{msg}");
        assert!(msg.contains("raw code -32767"), "{msg}");
        // Same with a missing_value code and with the implicit default fill.
        let mut ds2 = packed(DataType::I16, 0.0018, 262.5, Some(-32768.0));
        ds2.missing = vec![-32767.0];
        assert!(plan("t2m", &ds2, &src).unwrap().apply(&TypedArray::from_vec(vec![-32106i16])).is_err());
        let ds3 = packed(DataType::I16, 0.0018, 262.5, None);
        assert!(plan("t2m", &ds3, &src).unwrap().apply(&TypedArray::from_vec(vec![-32106i16])).is_err());
    }

    #[test]
    fn units_must_match() {
        let mut ds = packed(DataType::I16, 0.0018, 262.5, Some(-32767.0));
        let mut src = ds.clone();
        src.units = Some("degC".into());
        let msg = plan("t2m", &ds, &src).unwrap_err().to_string();
        assert_eq!(
            msg,
            "variable t2m: units differ: the dataset has \"K\", the source has \"degC\"; \
             tessera does not convert units (convert the source first or ingest into a new dataset)"
        );
        src.units = None;
        let msg = plan("t2m", &ds, &src).unwrap_err().to_string();
        assert!(msg.contains("the source has no units attribute"), "{msg}");
        src.units = Some(" K".into());
        assert!(plan("t2m", &ds, &src).unwrap().is_identity());
        ds.units = None;
        src.units = None;
        assert!(plan("t2m", &ds, &src).unwrap().is_identity());
    }

    #[test]
    fn identity_moves_without_copying() {
        let ds = Encoding::from_attrs(DataType::I16, &era5_attrs(0.0018, 262.5));
        let r = plan("t2m", &ds, &ds.clone()).unwrap();
        assert_eq!(r, Recode::Identity);
        let data = TypedArray::from_vec(vec![1i16, -32767, 5]);
        let (out, q) = r.apply(&data).unwrap();
        assert_eq!(out, data);
        assert_eq!(q, Quantisation { max_abs_error: 0.0, values: 3, missing: 0 });
        let before = buffer(&data);
        let (out, _) = r.apply_owned(data).unwrap();
        assert_eq!(buffer(&out), before);
        // Absent scale/offset equal 1/0.
        let a = plain(DataType::I16, Some(-1.0));
        let b = Encoding { scale: Some(1.0), offset: Some(0.0), ..a.clone() };
        assert!(plan("x", &a, &b).unwrap().is_identity());
        // Wrong input type.
        let c = plan("t2m", &ds, &Encoding { fill: Some(-32768.0), ..ds.clone() }).unwrap();
        let err = c.apply(&TypedArray::from_vec(vec![1.0f32])).unwrap_err();
        assert_eq!(err.to_string(), "variable t2m: the data is f32 but the source encoding is i16");
    }

    #[test]
    fn dataset_without_fill_refuses_missing_cells_only() {
        let ds = packed(DataType::I16, 0.0018, 262.5, None);
        let src = packed(DataType::I16, 0.0017, 258.1, Some(-9999.0));
        let r = plan("t2m", &ds, &src).unwrap();
        assert!(matches!(r, Recode::Convert { missing_to: None, .. }));
        let (_, q) = r.apply(&TypedArray::from_vec(vec![0i16, 1, 2])).unwrap();
        assert_eq!(q.missing, 0);
        let err = r.apply(&TypedArray::from_vec(vec![0i16, -9999, -9999])).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EncodingError::NoFill { count: 2, .. }));
        assert!(msg.contains("has no _FillValue or missing_value"), "{msg}");
        assert!(msg.ends_with("recreate the dataset with a _FillValue, or with --unpack t2m"), "{msg}");
        // A missing_value alone is enough.
        let ds2 = Encoding { missing: vec![-32768.0], ..ds.clone() };
        let (out, _) = plan("t2m", &ds2, &src).unwrap().apply(&TypedArray::from_vec(vec![-9999i16])).unwrap();
        assert_eq!(values(&out), vec![-32768.0]);
    }

    #[test]
    fn valid_range_is_respected_both_ways() {
        let mut ds = packed(DataType::I16, 0.0018, 262.5, Some(-32767.0));
        ds.valid_min = Some(-30000.0);
        ds.valid_max = Some(30000.0);
        let mut src = packed(DataType::I16, 0.0017, 258.1, Some(-32767.0));
        src.valid_max = Some(32000.0);
        let r = plan("t2m", &ds, &src).unwrap();
        // 258.1 + 0.0017 * 31000 = 310.8 -> 26888: fine; 32500 is invalid in
        // the source -> missing; 258.1 + 0.0017 * 31900 = 312.33 -> 27683.
        let (out, q) = r.apply(&TypedArray::from_vec(vec![31000i16, 32500])).unwrap();
        assert_eq!(values(&out)[1], -32767.0);
        assert_eq!((q.values, q.missing), (1, 1));
        // valid in the source, beyond the dataset's valid_max (packed units).
        let mut ds2 = ds.clone();
        ds2.valid_max = Some(20000.0);
        let err = plan("t2m", &ds2, &src).unwrap().apply(&TypedArray::from_vec(vec![31000i16])).unwrap_err();
        assert!(err.to_string().contains("outside the dataset's valid range"), "{err}");
    }

    #[test]
    fn class_codes_stay_exact() {
        let ds = plain(DataType::U8, None);
        let src = plain(DataType::I16, Some(-1.0));
        let r = plan("lsm", &ds, &src).unwrap();
        let (out, q) = r.apply(&TypedArray::from_vec(vec![0i16, 1, 2, 3, 4, 5])).unwrap();
        assert_eq!(out, TypedArray::from_vec(vec![0u8, 1, 2, 3, 4, 5]));
        assert_eq!(q.max_abs_error, 0.0);
        // 2.5 is never rounded into a class.
        let fsrc = plain(DataType::F32, Some(f64::NAN));
        let err = plan("lsm", &ds, &fsrc).unwrap().apply(&TypedArray::from_vec(vec![0.0f32, 2.5, 3.0])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("1 of 3 values") && msg.contains("not integral") && msg.contains("e.g. 2.5"), "{msg}");
        assert!(msg.ends_with("; ingest into a new dataset"), "{msg}");
        // Nor is a packed source's 2.5.
        let psrc = Encoding { scale: Some(0.5), ..plain(DataType::I16, Some(-1.0)) };
        assert!(plan("lsm", &ds, &psrc).unwrap().apply(&TypedArray::from_vec(vec![5i16])).is_err());
        assert!(plan("lsm", &ds, &psrc).unwrap().apply(&TypedArray::from_vec(vec![4i16])).is_ok());
        // Out of the u8 range.
        assert!(r.apply(&TypedArray::from_vec(vec![256i16])).is_err());
        // 255 is a valid u8 code without _FillValue (no byte default fill).
        assert!(r.apply(&TypedArray::from_vec(vec![255i16])).is_ok());
    }

    #[test]
    fn unpacked_dataset_takes_differently_packed_sources() {
        let attrs = era5_attrs(0.0018, 262.5);
        let (t, new_attrs) = unpacked(&attrs, DataType::I16);
        assert_eq!(t, DataType::F32);
        let names: Vec<&str> = new_attrs.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["_FillValue", "units", "long_name"]);
        let ds = Encoding::from_attrs(t, &new_attrs);
        assert!(ds.fill.unwrap().is_nan() && !ds.is_packed());
        let mut total = Quantisation::default();
        for (scale, offset) in [(0.0017, 258.1), (0.0021, 265.3)] {
            let src = Encoding::from_attrs(DataType::I16, &era5_attrs(scale, offset));
            let r = plan("t2m", &ds, &src).unwrap();
            let raw: Vec<i16> = (-32766..=32767).step_by(13).chain([-32767]).collect();
            let (out, q) = r.apply(&TypedArray::from_vec(raw.clone())).unwrap();
            let TypedArray::F32(a) = &out else { panic!("not f32") };
            let largest = offset + scale * 32768.0;
            assert!(q.max_abs_error <= f32_ulp(largest) / 2.0, "{q}");
            assert_eq!(q.missing, 1);
            for (&s, &d) in raw.iter().zip(a.iter()) {
                if s == -32767 {
                    assert!(d.is_nan());
                } else {
                    assert!((d as f64 - src.decode(s as f64)).abs() <= q.max_abs_error);
                }
            }
            total.merge(&q);
        }
        assert_eq!(total.missing, 2);
        // A float32 unpacked source into the same dataset: exact.
        let f = Encoding::from_attrs(DataType::F32, &[Attribute::text("units", "K")]);
        let (out, q) = plan("t2m", &ds, &f).unwrap().apply(&TypedArray::from_vec(vec![280.25f32, f32::NAN])).unwrap();
        assert_eq!(q.max_abs_error, 0.0);
        assert!(values(&out)[1].is_nan());
    }

    #[test]
    fn unpacked_type_rule() {
        let attrs = |s: AttrValue, o: AttrValue| vec![Attribute::new("scale_factor", s), Attribute::new("add_offset", o)];
        // float64 attributes but float32 keeps the resolution.
        assert_eq!(unpacked(&attrs(f64s(&[0.0018]), f64s(&[262.5])), DataType::I16).0, DataType::F32);
        // float64 attributes, fine steps on a large offset: float64.
        assert_eq!(unpacked(&attrs(f64s(&[1e-6]), f64s(&[100.0])), DataType::I16).0, DataType::F64);
        // float32 attributes: the declared unpacked type.
        let f32s = |x: f32| AttrValue::F32(vec![x]);
        assert_eq!(unpacked(&attrs(f32s(1e-6), f32s(100.0)), DataType::I16).0, DataType::F32);
        // 32-bit codes: float64.
        assert_eq!(unpacked(&attrs(f32s(0.01), f32s(0.0)), DataType::I32).0, DataType::F64);
        assert_eq!(unpacked(&attrs(f32s(0.01), f32s(0.0)), DataType::U32).0, DataType::F64);
        // Unpacked sources are unchanged, floats and class codes alike.
        let plain_attrs = vec![Attribute::new("_FillValue", AttrValue::F32(vec![1e20])), Attribute::text("units", "K")];
        assert_eq!(unpacked(&plain_attrs, DataType::F32), (DataType::F32, plain_attrs.clone()));
        assert_eq!(unpacked(&[], DataType::U8), (DataType::U8, vec![]));
    }

    #[test]
    fn unpacked_attributes_are_decoded_in_order() {
        let attrs = vec![
            Attribute::text("long_name", "x"),
            Attribute::new("scale_factor", f64s(&[-0.5])),
            Attribute::new("missing_value", i16s(&[-32768])),
            Attribute::new("valid_range", i16s(&[-100, 200])),
            Attribute::new("valid_min", i16s(&[-50])),
            Attribute::new("add_offset", f64s(&[10.0])),
            Attribute::text("units", "m"),
        ];
        let (t, out) = unpacked(&attrs, DataType::I16);
        assert_eq!(t, DataType::F32);
        let got: Vec<(&str, String)> = out.iter().map(|a| (a.name.as_str(), a.value.display())).collect();
        assert_eq!(
            got,
            [
                ("long_name", "\"x\"".to_string()),
                ("_FillValue", "NaNf".to_string()),
                ("valid_range", "-90f, 60f".to_string()),
                ("valid_max", "35f".to_string()),
                ("units", "\"m\"".to_string()),
            ]
        );
        let e = Encoding::from_attrs(t, &out);
        assert_eq!((e.valid_min, e.valid_max), (Some(-90.0), Some(35.0)));
        assert!(e.missing.is_empty());
        // No _FillValue nor missing_value: NaN is declared at the end.
        let (_, out) = unpacked(&[Attribute::new("scale_factor", f64s(&[2.0]))], DataType::I32);
        assert!(matches!(&out[..], [a] if a.name == "_FillValue" && matches!(&a.value, AttrValue::F64(v) if v[0].is_nan())));
    }

    #[test]
    fn non_standard_layouts_keep_logical_order() {
        let ds = packed(DataType::I16, 0.5, 0.0, Some(-32767.0));
        let src = packed(DataType::I32, 0.25, 0.0, Some(-1.0));
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0i32, 4, 8, -1, 16, 20]).unwrap();
        let t = TypedArray::I32(a.t().to_owned().into_dyn());
        let tv = TypedArray::I32(a.clone().reversed_axes());
        let (out, q) = plan("x", &ds, &src).unwrap().apply(&tv).unwrap();
        assert_eq!(out.shape(), &[3, 2]);
        assert_eq!(values(&out), vec![0.0, -32767.0, 2.0, 8.0, 4.0, 10.0]);
        assert_eq!(values(&out), values(&plan("x", &ds, &src).unwrap().apply(&t).unwrap().0));
        assert_eq!(q.missing, 1);
    }

    #[test]
    fn quantisations_merge() {
        let mut a = Quantisation { max_abs_error: 0.1, values: 3, missing: 1 };
        a.merge(&Quantisation { max_abs_error: 0.05, values: 2, missing: 4 });
        assert_eq!(a, Quantisation { max_abs_error: 0.1, values: 5, missing: 5 });
        let mut b = Quantisation::default();
        b.merge(&a);
        assert_eq!(b, a);
    }

    fn int_dtype() -> impl Strategy<Value = DataType> {
        prop_oneof![Just(DataType::U8), Just(DataType::I8), Just(DataType::I16), Just(DataType::U16), Just(DataType::I32)]
    }

    fn raws(t: DataType, n: usize) -> impl Strategy<Value = Vec<f64>> {
        let (lo, hi) = type_range(t);
        proptest::collection::vec((lo as i64)..=(hi as i64), 1..n).prop_map(|v| v.into_iter().map(|x| x as f64).collect())
    }

    fn typed(t: DataType, v: &[f64]) -> TypedArray {
        with_data_type!(t, T => TypedArray::from_vec(v.iter().map(|&x| x as T).collect::<Vec<T>>()))
    }

    /// Checks a Convert result against the decoded source, cell by cell.
    fn check_convert(ds: &Encoding, src: &Encoding, raw: &[f64]) -> Result<Option<Quantisation>, TestCaseError> {
        let r = plan("v", ds, src).unwrap();
        match r.apply(&typed(src.dtype, raw)) {
            Ok((out, q)) => {
                prop_assert_eq!(out.dtype(), ds.dtype);
                let m = MissingTest::new(src);
                let target = ds.missing_target();
                for (&s, d) in raw.iter().zip(values(&out)) {
                    if m.is_missing(s) {
                        prop_assert!(same_num(d, target.unwrap()));
                        prop_assert!(ds.is_missing(d));
                    } else {
                        prop_assert!(!ds.is_missing(d), "value {} became missing code {}", s, d);
                        let e = (ds.decode(d) - src.decode(s)).abs();
                        prop_assert!(e <= q.max_abs_error, "{} > {}", e, q.max_abs_error);
                    }
                }
                Ok(Some(q))
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(
                    matches!(e, EncodingError::DoesNotFit { .. } | EncodingError::NoFill { .. }),
                    "{}",
                    msg
                );
                prop_assert!(msg.starts_with("variable v: ") && !msg.contains('\n'));
                Ok(None)
            }
        }
    }

    fn buffer(a: &TypedArray) -> usize {
        with_typed_array!(a, a => a.as_ptr() as usize)
    }

    fn bits_of(a: &TypedArray) -> Vec<u64> {
        with_typed_array!(a, a => a.iter().map(|x| {
            let b = x.to_le_bytes();
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(&b);
            u64::from_le_bytes(w)
        }).collect())
    }

    fn slack(ds: &Encoding, src: &Encoding, raw: &[f64]) -> f64 {
        let biggest = raw.iter().map(|&r| src.decode(r).abs()).fold(0.0, f64::max);
        1e-12 * (1.0 + biggest + ds.offset_or_zero().abs() + ds.scale_or_one().abs() * 4.3e9)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn convert_decodes_within_the_stated_error(
            dt in int_dtype(), st in int_dtype(),
            ds_scale in prop_oneof![1e-4f64..10.0, -10.0f64..-1e-4],
            ds_off in -1000.0f64..1000.0,
            s_scale in 1e-4f64..10.0, s_off in -1000.0f64..1000.0,
            ds_fill in proptest::option::of(-3i64..3),
            s_fill in proptest::option::of(-3i64..3),
            seed in raws(DataType::I32, 200),
        ) {
            let (lo, hi) = type_range(st);
            let raw: Vec<f64> = seed.iter().map(|&x| lo + (x - i32::MIN as f64) % (hi - lo + 1.0)).collect();
            let mut ds = packed(dt, ds_scale, ds_off, ds_fill.map(|f| f as f64).and_then(|f| stored_value(dt, f)));
            ds.units = None;
            let mut src = packed(st, s_scale, s_off, s_fill.map(|f| f as f64).and_then(|f| stored_value(st, f)));
            src.units = None;
            if let Some(q) = check_convert(&ds, &src, &raw)? {
                prop_assert!(q.max_abs_error <= ds_scale.abs() / 2.0 + slack(&ds, &src, &raw), "{} {}", q, ds_scale);
            }
        }

        #[test]
        fn fitting_packings_always_convert(
            s_scale in 1e-3f64..10.0, s_off in -1e4f64..1e4,
            ratio in 0.6f64..1.0, shift in -0.1f64..0.1,
            raw in raws(DataType::I16, 300),
        ) {
            // The dataset's steps are finer or equal and its range covers
            // the source's (16-bit into 32-bit codes, so everything fits).
            let src = packed(DataType::I16, s_scale, s_off, Some(-32768.0));
            let ds = packed(DataType::I32, s_scale * ratio, s_off + shift * s_scale * 32768.0, Some(i32::MIN as f64));
            let q = check_convert(&ds, &src, &raw)?;
            prop_assert!(q.is_some(), "refused");
            let q = q.unwrap();
            prop_assert!(q.max_abs_error <= ds.scale.unwrap() / 2.0 + slack(&ds, &src, &raw));
            prop_assert_eq!(q.missing, raw.iter().filter(|&&r| r == -32768.0).count() as u64);
        }

        #[test]
        fn float_targets_round_once(
            s_scale in 1e-5f64..10.0, s_off in -1e5f64..1e5,
            st in int_dtype(), f64_target in any::<bool>(),
            seed in raws(DataType::I32, 200),
        ) {
            let (lo, hi) = type_range(st);
            let raw: Vec<f64> = seed.iter().map(|&x| lo + (x - i32::MIN as f64) % (hi - lo + 1.0)).collect();
            let src = packed(st, s_scale, s_off, Some(lo));
            let t = if f64_target { DataType::F64 } else { DataType::F32 };
            let ds = Encoding { units: Some("K".into()), ..plain(t, Some(f64::NAN)) };
            let q = check_convert(&ds, &src, &raw)?.expect("floats always fit");
            let biggest = raw.iter().map(|&r| src.decode(r).abs()).fold(0.0, f64::max);
            let bound = if f64_target { 0.0 } else { f32_ulp(biggest) / 2.0 };
            prop_assert!(q.max_abs_error <= bound, "{} > {}", q.max_abs_error, bound);
        }

        #[test]
        fn rounding_is_f64_round(x in prop_oneof![any::<f64>(), -1e6f64..1e6, (-1000i32..1000).prop_map(|i| i as f64 + 0.5)]) {
            let r = round_half_away(x);
            prop_assert!(r == x.round() || (r.is_nan() && x.is_nan()), "{} -> {} vs {}", x, r, x.round());
        }

        #[test]
        fn identity_never_changes_a_bit(
            dt in prop_oneof![int_dtype(), Just(DataType::F32), Just(DataType::F64)],
            scale in proptest::option::of(-10.0f64..10.0), offset in proptest::option::of(-1e3f64..1e3),
            fill in proptest::option::of(-5i64..5),
            bits in proptest::collection::vec(any::<u64>(), 1..100),
        ) {
            let e = Encoding {
                dtype: dt, scale, offset, fill: fill.map(|f| f as f64), missing: vec![3.0],
                valid_min: None, valid_max: None, units: Some("1".into()),
            };
            let data = with_data_type!(dt, T => TypedArray::from_vec(
                bits.iter().map(|&b| <T>::from_le_bytes(b.to_le_bytes()[..std::mem::size_of::<T>()].try_into().unwrap())).collect::<Vec<T>>()
            ));
            let r = plan("v", &e, &e.clone()).unwrap();
            prop_assert!(r.is_identity());
            let (out, q) = r.apply(&data).unwrap();
            prop_assert_eq!(q.values + q.missing, bits.len() as u64);
            prop_assert_eq!(q.max_abs_error, 0.0);
            prop_assert_eq!(bits_of(&out), bits_of(&data));
            let (expect, before) = (bits_of(&data), buffer(&data));
            let (owned, _) = r.apply_owned(data).unwrap();
            prop_assert_eq!(buffer(&owned), before);
            prop_assert_eq!(bits_of(&owned), expect);
        }
    }

    proptest! {
        // Arrays of 2 x 65536 cells: fewer cases.
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn table_and_cell_loops_agree(
            st in prop_oneof![Just(DataType::U8), Just(DataType::I8), Just(DataType::I16), Just(DataType::U16)],
            dt in prop_oneof![int_dtype(), Just(DataType::F32)],
            same in any::<bool>(),
            ds_scale in 1e-3f64..10.0, ds_off in -100.0f64..100.0,
            s_scale in 1e-3f64..10.0, s_off in -100.0f64..100.0,
            fills in (proptest::option::of(-3i64..3), proptest::option::of(-3i64..3)),
            seed in raws(DataType::I32, 300),
        ) {
            let (lo, hi) = type_range(st);
            let distinct = (hi - lo + 1.0) as usize;
            let small: Vec<f64> = seed.iter().map(|&x| lo + (x - i32::MIN as f64) % (hi - lo + 1.0)).collect();
            let raw: Vec<f64> = small.iter().copied().cycle().take(2 * distinct + 7).collect();
            let src = Encoding { units: None, ..packed(st, s_scale, s_off, fills.0.and_then(|f| stored_value(st, f as f64))) };
            let mut ds = packed(dt, ds_scale, ds_off, fills.1.and_then(|f| stored_value(dt, f as f64)));
            ds.units = None;
            if same {
                ds.scale = src.scale;
                ds.offset = src.offset;
            }
            let r = plan("v", &ds, &src).unwrap();
            prop_assume!(!r.is_identity());
            let data = typed(st, &raw);
            match (r.convert(&data, true), r.convert(&data, false)) {
                (Ok((a, qa)), Ok((b, qb))) => {
                    prop_assert_eq!(bits_of(&a), bits_of(&b));
                    prop_assert_eq!(qa.max_abs_error.to_bits(), qb.max_abs_error.to_bits());
                    prop_assert_eq!((qa.values, qa.missing), (qb.values, qb.missing));
                }
                (Err(EncodingError::DoesNotFit { count: c1, total: t1, .. }), Err(EncodingError::DoesNotFit { count: c2, total: t2, .. })) => {
                    prop_assert_eq!((c1, t1), (c2, t2));
                }
                (Err(EncodingError::NoFill { count: c1, .. }), Err(EncodingError::NoFill { count: c2, .. })) => prop_assert_eq!(c1, c2),
                (a, b) => prop_assert!(false, "paths disagree: {:?} vs {:?}", a.map(|x| x.1), b.map(|x| x.1)),
            }
        }
    }
}
