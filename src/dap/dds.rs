//! DDS text (dap2.md §2.1, §2.3, §2.4).
//!
//! ```text
//! dds         = "Dataset" "{" *declaration "}" dataset-name ";" LF
//! declaration = base-type name *dim ";"
//!             / "Structure" "{" *declaration "}" name ";"
//!             / "Grid" "{" "Array:" array-decl "Maps:" 1*map-decl "}" name ";"
//! dim         = "[" name " = " uint "]"
//! ```
//!
//! Layout is libdap's, byte for byte: 4 spaces per nesting level, `Array:`
//! and `Maps:` two spaces inside the Grid (its declarations four), every
//! dimension written `[name = n]`, LF line ends, and the final
//! `} <dataset>;` followed by LF (pydap splits `.dods` on `\nData:\n`).
//! A constrained DDS shows each dimension's selected count under its
//! original name.

use std::fmt::Write as _;

use super::types::DapType;
use super::view::{Array, SentArray, SentVar, Subset, View, ViewVar};

/// The unconstrained DDS of `view`.
pub fn view_dds(view: &View) -> String {
    let mut out = String::from("Dataset {\n");
    for v in view.vars() {
        match v {
            ViewVar::Array(a) => decl(
                &mut out,
                4,
                a.dtype,
                &a.name,
                a.dims.iter().map(|d| (d.name.as_str(), d.len)),
            ),
            ViewVar::Grid(g) => {
                let array = g.array();
                let maps: Vec<_> = g
                    .maps()
                    .iter()
                    .map(|m| (m.dtype, m.name.as_str(), view_dims(m)))
                    .collect();
                grid(
                    &mut out,
                    g.name(),
                    (array.dtype, array.name.as_str(), view_dims(array)),
                    &maps,
                );
            }
        }
    }
    close(&mut out, view.name());
    out
}

/// The constrained DDS of `subset`.
pub fn subset_dds(subset: &Subset) -> String {
    let mut out = String::from("Dataset {\n");
    for v in &subset.vars {
        match v {
            SentVar::Array(a) => decl(&mut out, 4, a.dtype, &a.name, dims(a)),
            SentVar::Grid { name, array, maps } => {
                let maps: Vec<_> = maps
                    .iter()
                    .map(|m| (m.dtype, m.name.as_str(), dims(m)))
                    .collect();
                grid(
                    &mut out,
                    name,
                    (array.dtype, array.name.as_str(), dims(array)),
                    &maps,
                );
            }
            SentVar::Structure { name, members } => {
                out.push_str("    Structure {\n");
                for m in members {
                    decl(&mut out, 8, m.dtype, &m.name, dims(m));
                }
                let _ = writeln!(out, "    }} {name};");
            }
        }
    }
    close(&mut out, &subset.dataset);
    out
}

/// Exact `Content-Length` of a whole `.dods` response (DDS text,
/// `Data:\n`, XDR body); `None` if a String or Url array is sent.
pub fn dods_len(subset: &Subset) -> Option<u64> {
    dods_len_of(&subset_dds(subset), subset)
}

/// [`dods_len`] with the subset's DDS already rendered.
pub fn dods_len_of(dds: &str, subset: &Subset) -> Option<u64> {
    Some(dds.len() as u64 + 6 + subset.dods_data_len()?)
}

fn view_dims(a: &Array) -> Vec<(&str, usize)> {
    a.dims.iter().map(|d| (d.name.as_str(), d.len)).collect()
}

fn dims(a: &SentArray) -> Vec<(&str, usize)> {
    a.dims
        .iter()
        .map(|d| (d.name.as_str(), d.range.count))
        .collect()
}

type Decl<'a> = (DapType, &'a str, Vec<(&'a str, usize)>);

fn grid(out: &mut String, name: &str, array: Decl<'_>, maps: &[Decl<'_>]) {
    out.push_str("    Grid {\n      Array:\n");
    decl(out, 8, array.0, array.1, array.2);
    out.push_str("      Maps:\n");
    for (t, n, d) in maps {
        decl(out, 8, *t, n, d.iter().copied());
    }
    let _ = writeln!(out, "    }} {name};");
}

fn decl<'a>(
    out: &mut String,
    indent: usize,
    t: DapType,
    name: &str,
    dims: impl IntoIterator<Item = (&'a str, usize)>,
) {
    let _ = write!(out, "{:indent$}{t} {name}", "");
    for (d, n) in dims {
        let _ = write!(out, "[{d} = {n}]");
    }
    out.push_str(";\n");
}

fn close(out: &mut String, dataset: &str) {
    let _ = writeln!(out, "}} {dataset};");
}

#[cfg(test)]
mod tests {
    use super::super::ce::parse;
    use super::super::view::{resolve, tests::example};

    fn dds(ce: &str) -> String {
        super::subset_dds(&resolve(&example(), &parse(ce).unwrap()).unwrap())
    }

    const FULL: &str = "\
Dataset {
    Float64 time[time = 2];
    Float32 lat[lat = 3];
    Float32 lon[lon = 4];
    Grid {
      Array:
        Int16 sst[time = 2][lat = 3][lon = 4];
      Maps:
        Float64 time[time = 2];
        Float32 lat[lat = 3];
        Float32 lon[lon = 4];
    } sst;
    Grid {
      Array:
        Byte mask[lat = 3][lon = 4];
      Maps:
        Float32 lat[lat = 3];
        Float32 lon[lon = 4];
    } mask;
} example;
";

    #[test]
    fn full_dds_section_2_3() {
        assert_eq!(super::view_dds(&example()), FULL);
        assert_eq!(dds(""), FULL);
    }

    #[test]
    fn constrained_dds_section_2_4_and_4_4() {
        let cases: &[(&str, &str)] = &[
            (
                "sst.sst[0][0:1][1:2]",
                "Dataset {\n    Structure {\n        Int16 sst[time = 1][lat = 2][lon = 2];\n    } sst;\n} example;\n",
            ),
            (
                "sst[1][0:2:2][3]",
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
            ),
            (
                "sst.time",
                "Dataset {\n    Structure {\n        Float64 time[time = 2];\n    } sst;\n} example;\n",
            ),
            (
                "sst.lat",
                "Dataset {\n    Structure {\n        Float32 lat[lat = 3];\n    } sst;\n} example;\n",
            ),
            (
                "lat,sst.sst[0][0][0]",
                "Dataset {\n    Float32 lat[lat = 3];\n    Structure {\n        Int16 sst[time = 1][lat = 1][lon = 1];\n    } sst;\n} example;\n",
            ),
            (
                "time,lat,lon",
                "Dataset {\n    Float64 time[time = 2];\n    Float32 lat[lat = 3];\n    Float32 lon[lon = 4];\n} example;\n",
            ),
            (
                "mask.mask[2][0:2]",
                "Dataset {\n    Structure {\n        Byte mask[lat = 1][lon = 3];\n    } mask;\n} example;\n",
            ),
            (
                "sst.sst[0][0:1][1:2],sst.time[0],sst.lat[0:1],sst.lon[1:3]",
                "Dataset {
    Structure {
        Int16 sst[time = 1][lat = 2][lon = 2];
        Float64 time[time = 1];
        Float32 lat[lat = 2];
        Float32 lon[lon = 3];
    } sst;
} example;
",
            ),
        ];
        for (ce, want) in cases {
            assert_eq!(dds(ce), *want, "ce {ce}");
        }
        // `time,sst` and `sst,time`: time first, then the whole Grid.
        let want = format!(
            "Dataset {{\n    Float64 time[time = 2];\n{}",
            &FULL[FULL.find("    Grid").unwrap()
                ..FULL.find("    Grid {\n      Array:\n        Byte").unwrap()]
        ) + "} example;\n";
        assert_eq!(dds("time,sst"), want);
        assert_eq!(dds("sst,time"), want);
    }

    #[test]
    fn scalar_declaration() {
        use super::super::types::DapType;
        use super::super::view::{Array, View, ViewVar};
        let v = View::new(
            "d",
            vec![ViewVar::Array(Array::new(
                "crs",
                DapType::Int32,
                Vec::<(&str, usize)>::new(),
            ))],
        )
        .unwrap();
        assert_eq!(super::view_dds(&v), "Dataset {\n    Int32 crs;\n} d;\n");
    }
}
