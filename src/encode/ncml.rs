//! NcML: an XML description of a dataset (dimensions, variables,
//! attributes) whose `location` is the dataset's DAP URL, so that NcML-aware
//! tools (ToolsUI, netCDF-Java) open the live view and can customise it
//! without an export. Types follow the DAP2 view that `location` serves.

use crate::archive::ServedDataset;
use crate::dap::types::DapType;
use crate::dap::view::ViewVar;
use crate::model::{AttrValue, Attribute};

/// XML text: markup escaped, line breaks and tabs as character references,
/// other control characters dropped.
fn xml(s: &str) -> String {
    let clean: String = s.chars().filter(|&c| c >= ' ' || matches!(c, '\n' | '\r' | '\t')).collect();
    crate::markup::escape(&clean).replace('\n', "&#10;").replace('\r', "&#13;").replace('\t', "&#9;")
}

fn ncml_type(t: DapType) -> &'static str {
    match t {
        DapType::Byte => "byte",
        DapType::Int16 => "short",
        DapType::UInt16 => "ushort",
        DapType::Int32 => "int",
        DapType::UInt32 => "uint",
        DapType::Float32 => "float",
        DapType::Float64 => "double",
        DapType::String | DapType::Url => "String",
    }
}

fn attribute(a: &Attribute, indent: &str, out: &mut String) {
    fn join<T: ToString>(v: &[T]) -> String {
        v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ")
    }
    let (ty, value) = match &a.value {
        AttrValue::Text(s) => (None, s.clone()),
        AttrValue::U8(v) => (Some("ubyte"), join(v)),
        AttrValue::I8(v) => (Some("byte"), join(v)),
        AttrValue::I16(v) => (Some("short"), join(v)),
        AttrValue::U16(v) => (Some("ushort"), join(v)),
        AttrValue::I32(v) => (Some("int"), join(v)),
        AttrValue::U32(v) => (Some("uint"), join(v)),
        AttrValue::I64(v) => (Some("long"), join(v)),
        AttrValue::U64(v) => (Some("ulong"), join(v)),
        AttrValue::F32(v) => (Some("float"), join(v)),
        AttrValue::F64(v) => (Some("double"), join(v)),
    };
    out.push_str(&format!("{indent}<attribute name=\"{}\"", xml(&a.name)));
    if let Some(t) = ty {
        out.push_str(&format!(" type=\"{t}\""));
    }
    out.push_str(&format!(" value=\"{}\"/>\n", xml(&value)));
}

/// The NcML document for a dataset served at `location`.
pub fn render(dv: &ServedDataset, location: &str) -> String {
    let def = &dv.dataset.def;
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    o.push_str(&format!(
        "<netcdf xmlns=\"http://www.unidata.ucar.edu/namespaces/netcdf/ncml-2.2\" location=\"{}\">\n",
        xml(location)
    ));
    // Dimensions: every coordinate array's, in view order.
    let mut seen: Vec<String> = Vec::new();
    for v in dv.structure.vars() {
        let dims = match v {
            ViewVar::Array(a) => &a.dims,
            ViewVar::Grid(g) => &g.array().dims,
        };
        for d in dims {
            if !seen.contains(&d.name) {
                o.push_str(&format!("  <dimension name=\"{}\" length=\"{}\"/>\n", xml(&d.name), d.len));
                seen.push(d.name.clone());
            }
        }
    }
    for a in &def.attrs {
        attribute(a, "  ", &mut o);
    }
    for v in dv.structure.vars() {
        let (name, dtype, dims) = match v {
            ViewVar::Array(a) => (a.name.as_str(), a.dtype, &a.dims),
            ViewVar::Grid(g) => (g.name(), g.array().dtype, &g.array().dims),
        };
        let shape = dims.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(" ");
        o.push_str(&format!("  <variable name=\"{}\" shape=\"{}\" type=\"{}\">\n", xml(name), xml(&shape), ncml_type(dtype)));
        for a in dv.attributes_of(name) {
            attribute(&a, "    ", &mut o);
        }
        o.push_str("  </variable>\n");
    }
    o.push_str("</netcdf>\n");
    o
}
