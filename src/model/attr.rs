//! NetCDF attributes, kept with their exact type so that nothing is lost
//! between a source file, the catalogue, a tile and a response.
//!
//! Stored in the catalogue as JSON: `{"name": "scale_factor", "type": "f32",
//! "values": [0.01]}`. JSON has no NaN or infinity, so non-finite floats are
//! written as the strings `"NaN"`, `"Inf"` and `"-Inf"`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeSet;

/// The value of one attribute: text, or a vector of one numeric type.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Text(String),
    U8(Vec<u8>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl AttrValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::Text(_) => "text",
            AttrValue::U8(_) => "u8",
            AttrValue::I8(_) => "i8",
            AttrValue::I16(_) => "i16",
            AttrValue::U16(_) => "u16",
            AttrValue::I32(_) => "i32",
            AttrValue::U32(_) => "u32",
            AttrValue::I64(_) => "i64",
            AttrValue::U64(_) => "u64",
            AttrValue::F32(_) => "f32",
            AttrValue::F64(_) => "f64",
        }
    }

    /// The first value as f64 (numeric attributes only).
    pub fn as_f64(&self) -> Option<f64> {
        self.to_f64_vec().and_then(|v| v.first().copied())
    }

    /// All values as f64 (numeric attributes only).
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        fn f<T: Copy + Into<f64>>(v: &[T]) -> Vec<f64> {
            v.iter().map(|&x| x.into()).collect()
        }
        Some(match self {
            AttrValue::Text(_) => return None,
            AttrValue::U8(v) => f(v),
            AttrValue::I8(v) => f(v),
            AttrValue::I16(v) => f(v),
            AttrValue::U16(v) => f(v),
            AttrValue::I32(v) => f(v),
            AttrValue::U32(v) => f(v),
            AttrValue::I64(v) => v.iter().map(|&x| x as f64).collect(),
            AttrValue::U64(v) => v.iter().map(|&x| x as f64).collect(),
            AttrValue::F32(v) => f(v),
            AttrValue::F64(v) => v.clone(),
        })
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            AttrValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// CDL-like rendering for people (`0.01f`, `"degC"`, `-32768s`).
    pub fn display(&self) -> String {
        fn join<T: ToString>(v: &[T], suffix: &str) -> String {
            v.iter().map(|x| format!("{}{suffix}", x.to_string())).collect::<Vec<_>>().join(", ")
        }
        match self {
            AttrValue::Text(s) => format!("{s:?}"),
            AttrValue::U8(v) => join(v, "ub"),
            AttrValue::I8(v) => join(v, "b"),
            AttrValue::I16(v) => join(v, "s"),
            AttrValue::U16(v) => join(v, "us"),
            AttrValue::I32(v) => join(v, ""),
            AttrValue::U32(v) => join(v, "u"),
            AttrValue::I64(v) => join(v, "ll"),
            AttrValue::U64(v) => join(v, "ull"),
            AttrValue::F32(v) => join(v, "f"),
            AttrValue::F64(v) => join(v, ""),
        }
    }
}

impl AttrValue {
    /// The value as NetCDF-3 (classic) can hold it: unsigned integers as
    /// their signed twins' bit patterns (read back with `_Unsigned`),
    /// 64-bit integers as doubles.
    pub fn classic(&self) -> AttrValue {
        match self {
            AttrValue::U8(x) => AttrValue::I8(x.iter().map(|&v| v as i8).collect()),
            AttrValue::U16(x) => AttrValue::I16(x.iter().map(|&v| v as i16).collect()),
            AttrValue::U32(x) => AttrValue::I32(x.iter().map(|&v| v as i32).collect()),
            AttrValue::I64(x) => AttrValue::F64(x.iter().map(|&v| v as f64).collect()),
            AttrValue::U64(x) => AttrValue::F64(x.iter().map(|&v| v as f64).collect()),
            other => other.clone(),
        }
    }
}

/// Attributes that libnetcdf and HDF5 manage themselves (virtual, or
/// describing the storage): never copied into a file, never served.
pub fn is_library_managed(name: &str) -> bool {
    name.starts_with("_Netcdf4")
        || name.starts_with("_Quantize")
        || matches!(
            name,
            "_NCProperties"
                | "_IsNetcdf4"
                | "_SuperblockVersion"
                | "_Format"
                | "_ChunkSizes"
                | "_Storage"
                | "_DeflateLevel"
                | "_Shuffle"
                | "_Endianness"
                | "_NoFill"
                | "_Fletcher32"
                | "_Filter"
                | "_Codecs"
        )
}

/// A named attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub value: AttrValue,
}

impl Attribute {
    pub fn new(name: impl Into<String>, value: AttrValue) -> Self {
        Attribute { name: name.into(), value }
    }
    pub fn text(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute::new(name, AttrValue::Text(value.into()))
    }
}

/// Attribute lists in file order, with lookups by name.
pub trait Attributes {
    fn get_attr(&self, name: &str) -> Option<&AttrValue>;
    fn text_attr(&self, name: &str) -> Option<&str> {
        self.get_attr(name).and_then(AttrValue::as_text)
    }
    fn num_attr(&self, name: &str) -> Option<f64> {
        self.get_attr(name).and_then(AttrValue::as_f64)
    }
}

impl Attributes for [Attribute] {
    fn get_attr(&self, name: &str) -> Option<&AttrValue> {
        self.iter().find(|a| a.name == name).map(|a| &a.value)
    }
}

impl Attributes for Vec<Attribute> {
    fn get_attr(&self, name: &str) -> Option<&AttrValue> {
        self.as_slice().get_attr(name)
    }
}

fn float_to_json(x: f64) -> Value {
    if x.is_nan() {
        Value::from("NaN")
    } else if x == f64::INFINITY {
        Value::from("Inf")
    } else if x == f64::NEG_INFINITY {
        Value::from("-Inf")
    } else {
        Value::from(x)
    }
}

fn float_from_json(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Removes from CF reference attributes (`coordinates`,
/// `ancillary_variables`, `bounds`, `climatology`, `cell_measures`) every
/// name that is not in `served`; `cell_measures` may also name a variable
/// of `external` (the global `external_variables`, as CF allows). Returns
/// what was removed, as `key: name`, for the log.
pub fn prune_references(attrs: &mut Vec<Attribute>, served: &BTreeSet<String>, external: &BTreeSet<String>) -> Vec<String> {
    let mut dropped = Vec::new();
    let mut keep = Vec::with_capacity(attrs.len());
    for a in attrs.drain(..) {
        let Some(text) = a.value.as_text() else {
            keep.push(a);
            continue;
        };
        let key = a.name.as_str();
        let new_text = match key {
            "coordinates" | "ancillary_variables" => {
                let (ok, bad): (Vec<&str>, Vec<&str>) = text.split_whitespace().partition(|w| served.contains(*w));
                dropped.extend(bad.iter().map(|w| format!("{key}: {w}")));
                Some(ok.join(" "))
            }
            "bounds" | "climatology" => {
                let name = text.trim();
                if served.contains(name) {
                    Some(name.to_string())
                } else {
                    dropped.push(format!("{key}: {name}"));
                    None
                }
            }
            "cell_measures" => {
                let words: Vec<&str> = text.split_whitespace().collect();
                let mut out = Vec::new();
                for pair in words.chunks(2) {
                    match pair {
                        [measure, name] if served.contains(*name) || external.contains(*name) => {
                            out.push(format!("{measure} {name}"))
                        }
                        [_, name] => dropped.push(format!("{key}: {name}")),
                        _ => {}
                    }
                }
                Some(out.join(" "))
            }
            _ => {
                keep.push(a);
                continue;
            }
        };
        match new_text {
            Some(t) if !t.is_empty() => keep.push(Attribute::text(key, t)),
            _ => {}
        }
    }
    *attrs = keep;
    dropped
}

/// Serde for `Vec<f64>` that keeps non-finite values (as the strings
/// `"NaN"`, `"Inf"`, `"-Inf"`), which plain JSON numbers cannot carry.
pub(crate) mod float_vec {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        Value::Array(v.iter().map(|&x| super::float_to_json(x)).collect()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let values = Vec::<Value>::deserialize(d)?;
        values
            .iter()
            .map(|v| super::float_from_json(v).ok_or_else(|| D::Error::custom(format!("{v} is not a number"))))
            .collect()
    }
}

impl Serialize for Attribute {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let values: Value = match &self.value {
            AttrValue::Text(t) => Value::from(t.as_str()),
            AttrValue::U8(v) => Value::from(v.clone()),
            AttrValue::I8(v) => Value::from(v.clone()),
            AttrValue::I16(v) => Value::from(v.clone()),
            AttrValue::U16(v) => Value::from(v.clone()),
            AttrValue::I32(v) => Value::from(v.clone()),
            AttrValue::U32(v) => Value::from(v.clone()),
            AttrValue::I64(v) => Value::from(v.clone()),
            AttrValue::U64(v) => Value::from(v.clone()),
            // f32 -> f64 is exact, and f64 -> f32 brings the same value back.
            AttrValue::F32(v) => Value::Array(v.iter().map(|&x| float_to_json(x as f64)).collect()),
            AttrValue::F64(v) => Value::Array(v.iter().map(|&x| float_to_json(x)).collect()),
        };
        serde_json::json!({"name": self.name, "type": self.value.type_name(), "values": values})
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Attribute {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            name: String,
            #[serde(rename = "type")]
            ty: String,
            values: Value,
        }
        let raw = Raw::deserialize(d)?;
        fn ints<T: TryFrom<i128>>(v: &Value) -> Option<Vec<T>> {
            v.as_array()?
                .iter()
                .map(|x| {
                    let n = x.as_i64().map(i128::from).or_else(|| x.as_u64().map(i128::from))?;
                    T::try_from(n).ok()
                })
                .collect()
        }
        fn floats(v: &Value) -> Option<Vec<f64>> {
            v.as_array()?.iter().map(float_from_json).collect()
        }
        let v = &raw.values;
        let value = match raw.ty.as_str() {
            "text" => v.as_str().map(|s| AttrValue::Text(s.to_string())),
            "u8" => ints(v).map(AttrValue::U8),
            "i8" => ints(v).map(AttrValue::I8),
            "i16" => ints(v).map(AttrValue::I16),
            "u16" => ints(v).map(AttrValue::U16),
            "i32" => ints(v).map(AttrValue::I32),
            "u32" => ints(v).map(AttrValue::U32),
            "i64" => ints(v).map(AttrValue::I64),
            "u64" => ints(v).map(AttrValue::U64),
            "f32" => floats(v).map(|f| AttrValue::F32(f.into_iter().map(|x| x as f32).collect())),
            "f64" => floats(v).map(AttrValue::F64),
            other => return Err(D::Error::custom(format!("unknown attribute type {other:?}"))),
        };
        let value = value.ok_or_else(|| {
            D::Error::custom(format!("attribute {:?}: values do not fit type {}", raw.name, raw.ty))
        })?;
        Ok(Attribute { name: raw.name, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_types_and_non_finite_values() {
        let attrs = vec![
            Attribute::text("units", "degC \"quoted\""),
            Attribute::new("scale_factor", AttrValue::F32(vec![0.01])),
            Attribute::new("_FillValue", AttrValue::F32(vec![f32::NAN])),
            Attribute::new("valid_range", AttrValue::F64(vec![f64::NEG_INFINITY, f64::INFINITY])),
            Attribute::new("flags", AttrValue::U8(vec![0, 1, 255])),
            Attribute::new("big", AttrValue::U64(vec![u64::MAX])),
            Attribute::new("neg", AttrValue::I64(vec![i64::MIN])),
            Attribute::new("s", AttrValue::I16(vec![-32768])),
        ];
        let json = serde_json::to_string(&attrs).unwrap();
        let back: Vec<Attribute> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), attrs.len());
        for (a, b) in attrs.iter().zip(&back) {
            assert_eq!(a.name, b.name);
            match (&a.value, &b.value) {
                (AttrValue::F32(x), AttrValue::F32(y)) => {
                    assert_eq!(x.len(), y.len());
                    for (p, q) in x.iter().zip(y) {
                        assert!(p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()));
                    }
                }
                (x, y) => assert_eq!(x, y),
            }
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let bad = r#"{"name":"x","type":"u8","values":[256]}"#;
        assert!(serde_json::from_str::<Attribute>(bad).is_err());
    }
}
