//! DAS text (dap2.md §3).
//!
//! ```text
//! das        = "Attributes" "{" LF *container "}" LF
//! container  = name " {" LF *attribute "}" LF           ; one per variable,
//!                                                       ; then NC_GLOBAL, DODS_EXTRA
//! attribute  = attr-type " " name " " value *( ", " value ) ";" LF
//! attr-type  = "Byte" / "Int16" / "UInt16" / "Int32" / "UInt32"
//!            / "Float32" / "Float64" / "String" / "Url"
//! ```
//!
//! Containers are indented 4 spaces, attributes 8, closed by a bare `}`.
//! The DAS is flat: one container per top-level variable (a Grid's
//! container holds its array's attributes; maps get theirs from the
//! same-named coordinate containers), `NC_GLOBAL`, and `DODS_EXTRA` with
//! `Unlimited_Dimension` when one is named.
//!
//! Value rules, so that netCDF-C, libdap and pydap all accept the DAS:
//!
//! * only the nine DAP2 type words are written;
//! * `_FillValue`, `missing_value`, `valid_min`, `valid_max`,
//!   `valid_range`, `flag_values`, `flag_masks` are converted to exactly
//!   the variable's DAP type (via its stored type: an i8 variable's fill
//!   −127 is written `Byte _FillValue 129;`, a u16 variable's is Int32);
//!   values that do not fit are dropped and reported as notes;
//! * other numeric attributes: i8 → Byte bit patterns on an i8 variable,
//!   Int16 elsewhere; u8 → Byte; i16 → Int16; u16 → Int32; i32 → Int32;
//!   u32 → UInt32; i64/u64 → Int32 when every value fits, else Float64
//!   (exact up to 2⁵³, rounded beyond); f32 → Float32; f64 → Float64;
//! * the mapping's extra attributes (`_Unsigned`, see [`super::types`])
//!   come last and replace same-named source attributes;
//! * floats: shortest round-trip digits in a `%g`-like layout (`0.01`,
//!   `1e+20`, `-9.969209968386869e+36`), `NaN`, `Inf`, `-Inf`;
//! * strings: double-quoted, `"` → `\"`, `\` → `\\`, control characters as
//!   three-digit octal (`\012`), UTF-8 passed through;
//! * attributes without values are omitted (an empty string is `""`), as
//!   are netCDF-4 reserved/virtual attributes ([`crate::model::is_library_managed`]) and repeated
//!   names (the first wins);
//! * names outside `[A-Za-z0-9_-]` get each other byte escaped `%hh`.

use std::fmt::Write as _;

use super::types::DapType;
use crate::model::DataType;

/// Attributes that must have exactly the variable's type.
pub const TYPED_LIKE_VARIABLE: &[&str] = &[
    "_FillValue",
    "missing_value",
    "valid_min",
    "valid_max",
    "valid_range",
    "flag_values",
    "flag_masks",
];

/// Attribute values and attributes are the model's own: the DAS shows
/// what the catalogue stores, converted only at rendering.
use crate::model::{AttrValue, Attribute};

/// The attributes of one top-level variable.
#[derive(Debug, Clone, PartialEq)]
pub struct VarAttrs {
    /// Container name (the variable's DDS name).
    pub name: String,
    /// The variable's stored type; `None` for String variables (no
    /// coercion, no extra attributes).
    pub storage: Option<DataType>,
    /// Source attributes in order.
    pub attrs: Vec<Attribute>,
}

/// Everything the DAS shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Das {
    /// One container per top-level variable, in DDS order.
    pub vars: Vec<VarAttrs>,
    /// Global attributes (`NC_GLOBAL`).
    pub global: Vec<Attribute>,
    /// The unlimited dimension, if any (`DODS_EXTRA`); name at most one,
    /// and only if it is the first dimension of every variable using it.
    pub unlimited_dim: Option<String>,
}

impl Das {
    /// The DAS text.
    pub fn render(&self) -> String {
        self.render_with_notes().0
    }

    /// The DAS text plus one note per attribute that was dropped or
    /// changed for a reason worth logging (reserved names are silent).
    pub fn render_with_notes(&self) -> (String, Vec<String>) {
        let mut out = String::from("Attributes {\n");
        let mut notes = Vec::new();
        for v in &self.vars {
            container(&mut out, &mut notes, &v.name, v.storage, &v.attrs);
        }
        container(&mut out, &mut notes, "NC_GLOBAL", None, &self.global);
        if let Some(dim) = &self.unlimited_dim {
            let _ = writeln!(
                out,
                "    DODS_EXTRA {{\n        String Unlimited_Dimension {};\n    }}",
                quote(dim)
            );
        }
        out.push_str("}\n");
        (out, notes)
    }
}

fn container(
    out: &mut String,
    notes: &mut Vec<String>,
    name: &str,
    storage: Option<DataType>,
    attrs: &[Attribute],
) {
    let _ = writeln!(out, "    {} {{", escape_name(name));
    let extra = storage.map_or(&[][..], DataType::extra_attributes);
    let mut seen: Vec<&str> = Vec::new();
    for a in attrs {
        if crate::model::is_library_managed(&a.name) || extra.iter().any(|(n, _)| *n == a.name) {
            continue;
        }
        if a.name.is_empty() {
            notes.push(format!("{name}: attribute with an empty name dropped"));
            continue;
        }
        if seen.contains(&a.name.as_str()) {
            notes.push(format!("{name}:{}: repeated attribute dropped", a.name));
            continue;
        }
        seen.push(&a.name);
        match wire_value(a, storage) {
            Ok(Some(w)) => {
                let _ = writeln!(
                    out,
                    "        {} {} {};",
                    w.dtype(),
                    escape_name(&a.name),
                    w.values()
                );
            }
            Ok(None) => {}
            Err(why) => notes.push(format!("{name}:{}: dropped, {why}", a.name)),
        }
    }
    for (n, v) in extra {
        let _ = writeln!(out, "        String {n} {};", quote(v));
    }
    out.push_str("    }\n");
}

/// Attribute values as written.
enum Wire {
    Byte(Vec<u8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    UInt32(Vec<u32>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    Str(String),
}

impl Wire {
    fn dtype(&self) -> DapType {
        match self {
            Wire::Byte(_) => DapType::Byte,
            Wire::Int16(_) => DapType::Int16,
            Wire::Int32(_) => DapType::Int32,
            Wire::UInt32(_) => DapType::UInt32,
            Wire::Float32(_) => DapType::Float32,
            Wire::Float64(_) => DapType::Float64,
            Wire::Str(_) => DapType::String,
        }
    }

    fn values(&self) -> String {
        fn join<T>(v: &[T], f: impl Fn(&T) -> String) -> String {
            v.iter().map(f).collect::<Vec<_>>().join(", ")
        }
        match self {
            Wire::Byte(v) => join(v, u8::to_string),
            Wire::Int16(v) => join(v, i16::to_string),
            Wire::Int32(v) => join(v, i32::to_string),
            Wire::UInt32(v) => join(v, u32::to_string),
            Wire::Float32(v) => join(v, |x| format_f32(*x)),
            Wire::Float64(v) => join(v, |x| format_f64(*x)),
            Wire::Str(s) => quote(s),
        }
    }
}

/// A numeric source value, wide enough for every source type.
#[derive(Clone, Copy)]
enum Num {
    I(i128),
    F(f64),
}

fn nums(v: &AttrValue) -> Vec<Num> {
    fn i<T: Copy + Into<i128>>(v: &[T]) -> Vec<Num> {
        v.iter().map(|&x| Num::I(x.into())).collect()
    }
    match v {
        AttrValue::Text(_) => vec![],
        AttrValue::I8(v) => i(v),
        AttrValue::U8(v) => i(v),
        AttrValue::I16(v) => i(v),
        AttrValue::U16(v) => i(v),
        AttrValue::I32(v) => i(v),
        AttrValue::U32(v) => i(v),
        AttrValue::I64(v) => i(v),
        AttrValue::U64(v) => i(v),
        AttrValue::F32(v) => v.iter().map(|&x| Num::F(f64::from(x))).collect(),
        AttrValue::F64(v) => v.iter().map(|&x| Num::F(x)).collect(),
    }
}

fn is_empty(v: &AttrValue) -> bool {
    match v {
        AttrValue::Text(_) => false,
        other => nums(other).is_empty(),
    }
}

/// Converts to an integer in `lo..=hi` exactly, or says why not.
fn int_in(n: Num, lo: i128, hi: i128) -> Result<i128, String> {
    let v = match n {
        Num::I(v) => v,
        Num::F(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30 => f as i128,
        Num::F(f) => return Err(format!("{} is not an integer", format_f64(f))),
    };
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside {lo}..={hi}"))
    }
}

fn as_f64(n: Num) -> f64 {
    match n {
        Num::I(v) => v as f64,
        Num::F(f) => f,
    }
}

/// The wire form of `a` on a variable stored as `storage`; `Ok(None)` for
/// an attribute without values.
fn wire_value(a: &Attribute, storage: Option<DataType>) -> Result<Option<Wire>, String> {
    if is_empty(&a.value) {
        return Ok(None);
    }
    if let AttrValue::Text(s) = &a.value {
        if let (Some(st), true) = (storage, TYPED_LIKE_VARIABLE.contains(&a.name.as_str())) {
            return Err(format!(
                "text value for an attribute that must be {}",
                st.dap_type()
            ));
        }
        return Ok(Some(Wire::Str(s.clone())));
    }
    if let (Some(st), true) = (storage, TYPED_LIKE_VARIABLE.contains(&a.name.as_str())) {
        return coerce(&nums(&a.value), st).map(Some);
    }
    let all_fit_i32 = |v: &[Num]| {
        v.iter()
            .all(|n| matches!(n, Num::I(x) if i32::try_from(*x).is_ok()))
    };
    let w = match &a.value {
        AttrValue::Text(_) => unreachable!("handled above"),
        AttrValue::I8(v) if storage == Some(DataType::I8) => {
            Wire::Byte(v.iter().map(|&x| x as u8).collect())
        }
        AttrValue::I8(v) => Wire::Int16(v.iter().map(|&x| i16::from(x)).collect()),
        AttrValue::U8(v) => Wire::Byte(v.clone()),
        AttrValue::I16(v) => Wire::Int16(v.clone()),
        AttrValue::U16(v) => Wire::Int32(v.iter().map(|&x| i32::from(x)).collect()),
        AttrValue::I32(v) => Wire::Int32(v.clone()),
        AttrValue::U32(v) => Wire::UInt32(v.clone()),
        v @ (AttrValue::I64(_) | AttrValue::U64(_)) => {
            let n = nums(v);
            if all_fit_i32(&n) {
                Wire::Int32(n.iter().map(|&x| as_f64(x) as i32).collect())
            } else {
                Wire::Float64(n.iter().map(|&x| as_f64(x)).collect())
            }
        }
        AttrValue::F32(v) => Wire::Float32(v.clone()),
        AttrValue::F64(v) => Wire::Float64(v.clone()),
    };
    Ok(Some(w))
}

/// Converts values to the variable's stored type, then to its wire form.
fn coerce(v: &[Num], st: DataType) -> Result<Wire, String> {
    let ints = |lo: i64, hi: i64| {
        v.iter()
            .map(|&n| int_in(n, lo.into(), hi.into()))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match st {
        DataType::U8 => Wire::Byte(ints(0, 255)?.into_iter().map(|x| x as u8).collect()),
        DataType::I8 => Wire::Byte(
            ints(-128, 127)?
                .into_iter()
                .map(|x| x as i8 as u8)
                .collect(),
        ),
        DataType::I16 => Wire::Int16(
            ints(i16::MIN.into(), i16::MAX.into())?
                .into_iter()
                .map(|x| x as i16)
                .collect(),
        ),
        DataType::U16 => Wire::Int32(
            ints(0, u16::MAX.into())?
                .into_iter()
                .map(|x| x as i32)
                .collect(),
        ),
        DataType::I32 => Wire::Int32(
            ints(i32::MIN.into(), i32::MAX.into())?
                .into_iter()
                .map(|x| x as i32)
                .collect(),
        ),
        DataType::U32 => Wire::UInt32(
            ints(0, u32::MAX.into())?
                .into_iter()
                .map(|x| x as u32)
                .collect(),
        ),
        DataType::F32 => Wire::Float32(
            v.iter()
                .map(|&n| {
                    let f = as_f64(n);
                    let g = f as f32;
                    if f.is_finite() && !g.is_finite() {
                        Err(format!("{} overflows Float32", format_f64(f)))
                    } else {
                        Ok(g)
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
        DataType::F64 => Wire::Float64(v.iter().map(|&n| as_f64(n)).collect()),
    })
}

/// A double-quoted DAS string: `"` → `\"`, `\` → `\\`, control
/// characters as `\ooo` octal; everything else (UTF-8 included) as is.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Escapes every byte outside `[A-Za-z0-9_-]` as `%hh` (lowercase).
pub fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02x}");
        }
    }
    out
}

/// Formats an f64 like C's `%.17g` but with the shortest digits that
/// round-trip: `0.01`, `31`, `1e+20`, `-9.969209968386869e+36`, `NaN`,
/// `Inf`, `-Inf`.
pub fn format_f64(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Inf".into() } else { "-Inf".into() };
    }
    layout(&format!("{v:e}"), 17)
}

/// Formats an f32 like [`format_f64`] with f32's shortest digits and a
/// `%.9g`-like switch to exponent form (`1.00000002e+20` stays `1e+20`).
pub fn format_f32(v: f32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Inf".into() } else { "-Inf".into() };
    }
    layout(&format!("{v:e}"), 9)
}

/// Lays out Rust's shortest `{:e}` text (`-1.2345e-7`) in `%g` style:
/// exponent form when the exponent is < −4 or ≥ `precision`.
fn layout(sci: &str, precision: i32) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if exp < -4 || exp >= precision {
        let e_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{e_sign}{:02}", exp.unsigned_abs());
    }
    let n = digits.len() as i32;
    if exp < 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else if exp + 1 >= n {
        format!("{sign}{digits}{}", "0".repeat((exp + 1 - n) as usize))
    } else {
        let (int, frac) = digits.split_at((exp + 1) as usize);
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section_3_4() -> Das {
        let s = |n: &str, v: &str| Attribute::text(n, v);
        Das {
            vars: vec![
                VarAttrs {
                    name: "time".into(),
                    storage: Some(DataType::F64),
                    attrs: vec![
                        s("units", "days since 2000-01-01 00:00:00"),
                        s("calendar", "standard"),
                        s("standard_name", "time"),
                        s("long_name", "time"),
                        s("axis", "T"),
                        Attribute::new("_ChunkSizes", AttrValue::U32(vec![512])),
                    ],
                },
                VarAttrs {
                    name: "lat".into(),
                    storage: Some(DataType::F32),
                    attrs: vec![
                        s("units", "degrees_north"),
                        s("standard_name", "latitude"),
                        s("axis", "Y"),
                    ],
                },
                VarAttrs {
                    name: "lon".into(),
                    storage: Some(DataType::F32),
                    attrs: vec![
                        s("units", "degrees_east"),
                        s("standard_name", "longitude"),
                        s("axis", "X"),
                    ],
                },
                VarAttrs {
                    name: "sst".into(),
                    storage: Some(DataType::I16),
                    attrs: vec![
                        s("long_name", "Sea surface temperature"),
                        s("standard_name", "sea_surface_temperature"),
                        s("units", "degC"),
                        // Given as f64/i32 in the source: coerced to Int16.
                        Attribute::new("_FillValue", AttrValue::F64(vec![-32768.0])),
                        Attribute::new("missing_value", AttrValue::I32(vec![-32768])),
                        Attribute::new("scale_factor", AttrValue::F32(vec![0.01])),
                        Attribute::new("add_offset", AttrValue::F32(vec![0.0])),
                        Attribute::new("_Storage", AttrValue::Text("chunked".into())),
                        Attribute::new("_DeflateLevel", AttrValue::I32(vec![4])),
                    ],
                },
                VarAttrs {
                    name: "mask".into(),
                    storage: Some(DataType::U8),
                    attrs: vec![
                        s("long_name", "Surface class"),
                        Attribute::new("_FillValue", AttrValue::U8(vec![255])),
                    ],
                },
            ],
            global: vec![
                s("Conventions", "CF-1.8"),
                s("title", "Tiny example"),
                s("_NCProperties", "version=2"),
            ],
            unlimited_dim: Some("time".into()),
        }
    }

    #[test]
    fn section_3_4_block() {
        let want = r#"Attributes {
    time {
        String units "days since 2000-01-01 00:00:00";
        String calendar "standard";
        String standard_name "time";
        String long_name "time";
        String axis "T";
    }
    lat {
        String units "degrees_north";
        String standard_name "latitude";
        String axis "Y";
    }
    lon {
        String units "degrees_east";
        String standard_name "longitude";
        String axis "X";
    }
    sst {
        String long_name "Sea surface temperature";
        String standard_name "sea_surface_temperature";
        String units "degC";
        Int16 _FillValue -32768;
        Int16 missing_value -32768;
        Float32 scale_factor 0.01;
        Float32 add_offset 0;
    }
    mask {
        String long_name "Surface class";
        Byte _FillValue 255;
        String _Unsigned "true";
    }
    NC_GLOBAL {
        String Conventions "CF-1.8";
        String title "Tiny example";
    }
    DODS_EXTRA {
        String Unlimited_Dimension "time";
    }
}
"#;
        let (text, notes) = section_3_4().render_with_notes();
        assert_eq!(text, want);
        assert!(notes.is_empty(), "{notes:?}");
    }

    fn one(storage: Option<DataType>, attrs: Vec<Attribute>) -> (String, Vec<String>) {
        let das = Das {
            vars: vec![VarAttrs {
                name: "v".into(),
                storage,
                attrs,
            }],
            ..Das::default()
        };
        let (text, notes) = das.render_with_notes();
        let body = text
            .strip_prefix("Attributes {\n    v {\n")
            .and_then(|t| t.strip_suffix("    }\n    NC_GLOBAL {\n    }\n}\n"))
            .unwrap_or_else(|| panic!("{text}"))
            .to_owned();
        (body, notes)
    }

    #[test]
    fn typed_attributes_follow_the_variable() {
        use AttrValue::*;
        use DataType as S;
        let cases: Vec<(S, Attribute, &str)> = vec![
            (
                S::I8,
                Attribute::new("_FillValue", I8(vec![-127])),
                "Byte _FillValue 129;",
            ),
            (
                S::I8,
                Attribute::new("_FillValue", I16(vec![-127])),
                "Byte _FillValue 129;",
            ),
            (
                S::I8,
                Attribute::new("valid_range", I8(vec![-100, 100])),
                "Byte valid_range 156, 100;",
            ),
            (
                S::I8,
                Attribute::new("flag_values", I8(vec![-1, 0])),
                "Byte flag_values 255, 0;",
            ),
            (
                S::U8,
                Attribute::new("_FillValue", I32(vec![255])),
                "Byte _FillValue 255;",
            ),
            (
                S::U16,
                Attribute::new("_FillValue", U16(vec![65535])),
                "Int32 _FillValue 65535;",
            ),
            (
                S::U16,
                Attribute::new("valid_max", F64(vec![60000.0])),
                "Int32 valid_max 60000;",
            ),
            (
                S::I16,
                Attribute::new("missing_value", F32(vec![-999.0])),
                "Int16 missing_value -999;",
            ),
            (
                S::U32,
                Attribute::new("_FillValue", I64(vec![4294967295])),
                "UInt32 _FillValue 4294967295;",
            ),
            (
                S::I32,
                Attribute::new("_FillValue", U8(vec![0])),
                "Int32 _FillValue 0;",
            ),
            (
                S::F32,
                Attribute::new("_FillValue", F64(vec![1e20])),
                "Float32 _FillValue 1e+20;",
            ),
            (
                S::F32,
                Attribute::new("_FillValue", F64(vec![f64::NAN])),
                "Float32 _FillValue NaN;",
            ),
            (
                S::F32,
                Attribute::new("valid_min", I16(vec![-2])),
                "Float32 valid_min -2;",
            ),
            (
                S::F64,
                Attribute::new("_FillValue", F32(vec![-9.96921e36])),
                "Float64 _FillValue -9.969209968386869e+36;",
            ),
            (
                S::F64,
                Attribute::new("_FillValue", F64(vec![-9.969209968386869e36])),
                "Float64 _FillValue -9.969209968386869e+36;",
            ),
        ];
        for (st, attr, want) in cases {
            let (body, notes) = one(Some(st), vec![attr.clone()]);
            let extra: String = st
                .extra_attributes()
                .iter()
                .map(|(n, v)| format!("        String {n} \"{v}\";\n"))
                .collect();
            assert_eq!(body, format!("        {want}\n{extra}"), "{st} {attr:?}");
            assert!(notes.is_empty());
        }
    }

    #[test]
    fn unrepresentable_typed_values_are_dropped_with_a_note() {
        use AttrValue::*;
        let cases = [
            (
                DataType::U8,
                F64(vec![-1.0]),
                "v:_FillValue: dropped, -1 is outside 0..=255",
            ),
            (
                DataType::I16,
                F64(vec![1.5]),
                "v:_FillValue: dropped, 1.5 is not an integer",
            ),
            (
                DataType::I16,
                F32(vec![f32::NAN]),
                "v:_FillValue: dropped, NaN is not an integer",
            ),
            (
                DataType::F32,
                F64(vec![1e300]),
                "v:_FillValue: dropped, 1e+300 overflows Float32",
            ),
            (
                DataType::I32,
                Text("x".into()),
                "v:_FillValue: dropped, text value for an attribute that must be Int32",
            ),
        ];
        for (st, value, note) in cases {
            let (body, notes) = one(Some(st), vec![Attribute::new("_FillValue", value)]);
            assert!(!body.contains("_FillValue"), "{body}");
            assert_eq!(notes, [note]);
        }
    }

    #[test]
    fn untyped_attributes_use_the_nine_types() {
        use AttrValue::*;
        let cases: Vec<(Option<DataType>, AttrValue, &str)> = vec![
            (Some(DataType::I8), I8(vec![-1, 2]), "Byte a 255, 2;"),
            (Some(DataType::F32), I8(vec![-1, 2]), "Int16 a -1, 2;"),
            (None, I8(vec![-1]), "Int16 a -1;"),
            (None, U8(vec![1, 250]), "Byte a 1, 250;"),
            (None, I16(vec![-5]), "Int16 a -5;"),
            (None, U16(vec![65535]), "Int32 a 65535;"),
            (None, I32(vec![i32::MIN]), "Int32 a -2147483648;"),
            (None, U32(vec![u32::MAX]), "UInt32 a 4294967295;"),
            (None, I64(vec![-3, 2147483647]), "Int32 a -3, 2147483647;"),
            (None, I64(vec![2147483648]), "Float64 a 2147483648;"),
            (
                None,
                U64(vec![u64::MAX]),
                "Float64 a 1.8446744073709552e+19;",
            ),
            (
                None,
                F32(vec![0.009_999_999_8_f64 as f32, 123_456_792.0, 1e-5]),
                "Float32 a 0.01, 123456790, 1e-05;",
            ),
            (
                None,
                F64(vec![
                    0.1 + 0.2,
                    1e16,
                    1e17,
                    -0.0,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ]),
                "Float64 a 0.30000000000000004, 10000000000000000, 1e+17, -0, Inf, -Inf;",
            ),
            (None, Text(String::new()), "String a \"\";"),
            (
                None,
                Text("say \"hi\" C:\\x\nline2\ttab\u{7f} ü #".into()),
                "String a \"say \\\"hi\\\" C:\\\\x\\012line2\\011tab\\177 ü #\";",
            ),
        ];
        for (st, value, want) in cases {
            let (body, _) = one(st, vec![Attribute::new("a", value.clone())]);
            let extra: String = st
                .map(|s| {
                    s.extra_attributes()
                        .iter()
                        .map(|(n, v)| format!("        String {n} \"{v}\";\n"))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(body, format!("        {want}\n{extra}"), "{value:?}");
        }
    }

    #[test]
    fn omissions_names_and_duplicates() {
        use AttrValue::*;
        let (body, notes) = one(
            Some(DataType::U8),
            vec![
                Attribute::new("empty", F32(vec![])),
                Attribute::new("_Unsigned", Text("false".into())),
                Attribute::new("sea ice.frac", F32(vec![1.0])),
                Attribute::new("x", I16(vec![1])),
                Attribute::new("x", I16(vec![2])),
                Attribute::new("_Filter", Text("307,1".into())),
                Attribute::new("_NoFill", Text("true".into())),
                Attribute::new("_Codecs", Text("[]".into())),
                Attribute::new("_Endianness", Text("little".into())),
                Attribute::new("_Shuffle", Text("true".into())),
                Attribute::new("_Netcdf4Dimid", I32(vec![0])),
                Attribute::new("_Netcdf4Coordinates", I32(vec![0])),
            ],
        );
        assert_eq!(
            body,
            "        Float32 sea%20ice%2efrac 1;\n        Int16 x 1;\n        String _Unsigned \"true\";\n"
        );
        assert_eq!(notes, ["v:x: repeated attribute dropped"]);
        let das = Das {
            vars: vec![VarAttrs {
                name: "lon".into(),
                storage: None,
                attrs: vec![],
            }],
            ..Das::default()
        };
        assert_eq!(
            das.render(),
            "Attributes {\n    lon {\n    }\n    NC_GLOBAL {\n    }\n}\n"
        );
    }

    #[test]
    fn float_formatting() {
        let f64s = [
            (0.0, "0"),
            (1.0, "1"),
            (31.0, "31"),
            (-10.0, "-10"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-300, "1.5e-300"),
            (123.456, "123.456"),
            (1e20, "1e+20"),
            (12345678901234567.0, "12345678901234568"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in f64s {
            assert_eq!(format_f64(v), want);
            if v.is_finite() {
                assert_eq!(format_f64(v).parse::<f64>().unwrap(), v);
            }
        }
        let f32s = [
            (0.01f32, "0.01"),
            (-999.0, "-999"),
            (10.0, "10"),
            (123456792.0, "123456790"),
            (1234567936.0, "1.234568e+09"),
            (1e20, "1e+20"),
            (f32::MAX, "3.4028235e+38"),
            (1e-45, "1e-45"),
            (f32::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in f32s {
            assert_eq!(format_f32(v), want);
            if v.is_finite() {
                assert_eq!(format_f32(v).parse::<f32>().unwrap(), v);
            }
        }
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        // 10_000 cases each: formatting round-trips and never needs more
        // than the shortest digits.
        proptest! {
            #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]
            #[test]
            fn f64_round_trips(v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
                prop_assert_eq!(format_f64(v).parse::<f64>().unwrap(), v);
            }
            #[test]
            fn f32_round_trips(v in any::<f32>().prop_filter("finite", |v| v.is_finite())) {
                prop_assert_eq!(format_f32(v).parse::<f32>().unwrap(), v);
            }
            #[test]
            fn quoted_strings_have_no_raw_controls_or_bare_quotes(s in ".*") {
                let q = quote(&s);
                prop_assert!(!q.chars().any(|c| (c as u32) < 0x20));
                let inner = &q[1..q.len() - 1];
                let mut esc = false;
                for c in inner.chars() {
                    if esc { esc = false; continue; }
                    if c == '\\' { esc = true; continue; }
                    prop_assert!(c != '"');
                }
            }
        }
    }
}
