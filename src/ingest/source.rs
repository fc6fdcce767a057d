//! Reading and validating a source NetCDF file (NetCDF-3 or NetCDF-4, CF).
//!
//! A source holds data variables with dimensions `(time?, level?, y, x)`,
//! where y and x are the source's own names (`lat`/`lon`, `y`/`x`, ...), each
//! with a 1-D coordinate variable. Axes are recognised, in this order, by
//! `axis`, `standard_name`, `units` (`degrees_east`, `... since ...`),
//! `positive`, and finally by name. The horizontal axes must be regular (see
//! [`crate::model::grid::REGULAR_TOLERANCE`]); latitude may run either way
//! and is kept as it is.

use crate::model::{
    AttrValue, Attribute, Attributes, Axis, CfTime, Crs, DataType, Grid, GridMapping, TimeAxis, Timestamp,
    VariableDef, is_safe_name,
};
use crate::store::tile::{from_nc, nc_type};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Why a source cannot be ingested, in one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct SourceError {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    X,
    Y,
    Z,
    T,
}

fn kind_of(name: &str, attrs: &[Attribute]) -> Option<Kind> {
    if let Some(a) = attrs.text_attr("axis") {
        match a.trim().to_ascii_uppercase().as_str() {
            "X" => return Some(Kind::X),
            "Y" => return Some(Kind::Y),
            "Z" => return Some(Kind::Z),
            "T" => return Some(Kind::T),
            _ => {}
        }
    }
    if let Some(s) = attrs.text_attr("standard_name") {
        match s.trim() {
            "longitude" | "projection_x_coordinate" | "grid_longitude" => return Some(Kind::X),
            "latitude" | "projection_y_coordinate" | "grid_latitude" => return Some(Kind::Y),
            "time" => return Some(Kind::T),
            "air_pressure" | "height" | "depth" | "altitude" | "model_level_number" => return Some(Kind::Z),
            _ => {}
        }
    }
    if let Some(u) = attrs.text_attr("units") {
        let u = u.trim();
        if matches!(u, "degrees_east" | "degree_east" | "degrees_E" | "degree_E" | "degreesE" | "degreeE") {
            return Some(Kind::X);
        }
        if matches!(u, "degrees_north" | "degree_north" | "degrees_N" | "degree_N" | "degreesN" | "degreeN") {
            return Some(Kind::Y);
        }
        if u.to_ascii_lowercase().contains(" since ") {
            return Some(Kind::T);
        }
    }
    if attrs.get_attr("positive").is_some() {
        return Some(Kind::Z);
    }
    match name.to_ascii_lowercase().as_str() {
        "x" | "lon" | "long" | "longitude" => Some(Kind::X),
        "y" | "lat" | "latitude" => Some(Kind::Y),
        "time" | "t" => Some(Kind::T),
        "z" | "lev" | "level" | "levels" | "depth" | "height" | "plev" | "pressure" | "altitude" => Some(Kind::Z),
        _ => None,
    }
}

/// A data variable of the source and how its dimensions map to the archive's.
#[derive(Clone, Debug)]
pub struct SourceVar {
    pub def: VariableDef,
    /// Whether the variable has the source's time dimension (it may still
    /// be timed by `--time` when the source has none).
    pub has_time_dim: bool,
}

/// A validated source.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub grid: Grid,
    /// The source's own time axis, if it has one.
    pub time_axis: Option<TimeAxis>,
    /// The times of the source's time dimension (empty without one).
    pub times: Vec<Timestamp>,
    pub vars: Vec<SourceVar>,
    pub global_attrs: Vec<Attribute>,
}

fn attrs_of(v: &netcdf::Variable<'_>, path: &Path) -> Result<Vec<Attribute>, SourceError> {
    v.attributes()
        .map(|a| {
            let name = a.name().to_string();
            a.value().map(|val| Attribute::new(name.clone(), from_nc(val))).map_err(|e| SourceError {
                path: path.to_path_buf(),
                reason: format!("attribute {name} of {} cannot be read: {e}", v.name()),
            })
        })
        .collect()
}

/// Opens and validates a source. `only` restricts the data variables
/// (empty: every variable on the grid).
pub fn analyse(path: &Path, only: &[String]) -> Result<Source, SourceError> {
    crate::store::tile::quiet_hdf5();
    let fail = |reason: String| SourceError { path: path.to_path_buf(), reason };
    let file = netcdf::open(path).map_err(|e| fail(format!("not a readable NetCDF file ({e})")))?;

    let global_attrs: Vec<Attribute> = file
        .attributes()
        .map(|a| {
            let name = a.name().to_string();
            a.value().map(|v| Attribute::new(name.clone(), from_nc(v))).map_err(|e| fail(format!("global attribute {name}: {e}")))
        })
        .collect::<Result<_, _>>()?;

    // Coordinate variables: 1-D, named like their dimension.
    let is_coord = |v: &netcdf::Variable<'_>| v.dimensions().len() == 1 && v.dimensions()[0].name() == v.name();
    let mut referenced: HashSet<String> = HashSet::new();
    for v in file.variables() {
        let attrs = attrs_of(&v, path)?;
        for key in ["grid_mapping", "bounds", "coordinates", "ancillary_variables", "cell_measures"] {
            if let Some(t) = attrs.text_attr(key) {
                for word in t.split_whitespace() {
                    referenced.insert(word.trim_end_matches(':').to_string());
                }
            }
        }
    }

    let mut candidates: Vec<netcdf::Variable<'_>> = file
        .variables()
        .filter(|v| !is_coord(v) && v.dimensions().len() >= 2 && !referenced.contains(&v.name()))
        .collect();
    for name in only {
        if !candidates.iter().any(|v| &v.name() == name) {
            let known: Vec<String> = candidates.iter().map(|v| v.name()).collect();
            return Err(fail(format!("no data variable {name} (variables on a grid: {})", known.join(", "))));
        }
    }
    if !only.is_empty() {
        candidates.retain(|v| only.contains(&v.name()));
    }
    if candidates.is_empty() {
        return Err(fail("no data variable with (y, x) dimensions".into()));
    }

    // The horizontal dimensions: the last two of the first candidate.
    let dims_of = |v: &netcdf::Variable<'_>| v.dimensions().iter().map(|d| d.name()).collect::<Vec<_>>();
    let first = dims_of(&candidates[0]);
    let (ydim, xdim) = (first[first.len() - 2].clone(), first[first.len() - 1].clone());
    let read_axis = |dim: &str| -> Result<Axis, SourceError> {
        let v = file.variable(dim).filter(|v| is_coord(v)).ok_or_else(|| {
            fail(format!("no recognisable x/y coordinates: dimension {dim} has no coordinate variable"))
        })?;
        let dtype = nc_type(v.vartype()).ok_or_else(|| fail(format!("coordinate {dim} has an unsupported type")))?;
        let values: Vec<f64> = v.get_values::<f64, _>(..).map_err(|e| fail(format!("coordinate {dim}: {e}")))?;
        Ok(Axis { name: dim.to_string(), dtype, values, attrs: attrs_of(&v, path)? })
    };
    let x = read_axis(&xdim)?;
    let y = read_axis(&ydim)?;
    if kind_of(&x.name, &x.attrs) != Some(Kind::X) || kind_of(&y.name, &y.attrs) != Some(Kind::Y) {
        return Err(fail(format!(
            "no recognisable x/y coordinates: the last two dimensions ({ydim}, {xdim}) are not marked as y and x \
             (axis, standard_name or units degrees_north/degrees_east)"
        )));
    }
    for a in [&x, &y] {
        if !is_safe_name(&a.name) {
            return Err(fail(format!("coordinate name {:?} is not [A-Za-z_][A-Za-z0-9_]*", a.name)));
        }
        a.regular().map_err(|e| fail(e.to_string()))?;
        if a.values.iter().any(|v| !v.is_finite()) {
            return Err(fail(format!("coordinate {} has non-finite values", a.name)));
        }
    }

    // Leading dimensions: time and level.
    let mut tdim: Option<String> = None;
    let mut zdim: Option<String> = None;
    let mut vars = Vec::new();
    for v in &candidates {
        let name = v.name();
        let dims = dims_of(v);
        let n = dims.len();
        if dims[n - 2] != ydim || dims[n - 1] != xdim {
            if only.is_empty() {
                tracing::warn!(file = %path.display(), variable = %name, "skipped: not on the ({ydim}, {xdim}) grid");
                continue;
            }
            return Err(fail(format!("variable {name} has dimensions ({}), not (..., {ydim}, {xdim})", dims.join(", "))));
        }
        if n > 4 {
            return Err(fail(format!("variable {name} has {n} dimensions; at most (time, level, y, x) are supported")));
        }
        let mut has_t = false;
        let mut has_z = false;
        for (i, d) in dims[..n - 2].iter().enumerate() {
            let coord_attrs = match file.variable(d).filter(|c| is_coord(c)) {
                Some(c) => attrs_of(&c, path)?,
                None => Vec::new(),
            };
            match kind_of(d, &coord_attrs) {
                Some(Kind::T) if i == 0 => {
                    if tdim.get_or_insert_with(|| d.clone()) != d {
                        return Err(fail(format!("two time dimensions ({} and {d})", tdim.as_deref().unwrap_or(""))));
                    }
                    has_t = true;
                }
                Some(Kind::Z) if !has_z => {
                    if zdim.get_or_insert_with(|| d.clone()) != d {
                        return Err(fail(format!("two vertical dimensions ({} and {d})", zdim.as_deref().unwrap_or(""))));
                    }
                    has_z = true;
                }
                _ => {
                    return Err(fail(format!(
                        "variable {name}: dimension {d} is neither a time nor a vertical axis; dimensions must be (time?, level?, {ydim}, {xdim})"
                    )));
                }
            }
        }
        let dtype = nc_type(v.vartype()).ok_or_else(|| {
            fail(format!("variable {name} has unsupported type {:?} (u8, i8, i16, u16, i32, u32, f32 and f64 are supported)", v.vartype()))
        })?;
        if !is_safe_name(&name) {
            return Err(fail(format!("variable name {name:?} is not [A-Za-z_][A-Za-z0-9_]*")));
        }
        let attrs = attrs_of(v, path)?;
        vars.push(SourceVar {
            def: VariableDef { name, dtype, has_time: has_t, has_level: has_z, attrs },
            has_time_dim: has_t,
        });
    }
    if vars.is_empty() {
        return Err(fail("no data variable with (y, x) dimensions".into()));
    }

    let level = match &zdim {
        Some(z) => {
            let a = match file.variable(z).filter(|c| is_coord(c)) {
                Some(_) => read_axis(z)?,
                None => {
                    let n = file.dimension_len(z).unwrap_or(0);
                    Axis { name: z.clone(), dtype: DataType::I32, values: (0..n).map(|i| i as f64).collect(), attrs: vec![Attribute::text("axis", "Z")] }
                }
            };
            if !is_safe_name(&a.name) {
                return Err(fail(format!("vertical axis name {:?} is not [A-Za-z_][A-Za-z0-9_]*", a.name)));
            }
            Some(a)
        }
        None => None,
    };

    let (time_axis, times) = match &tdim {
        None => (None, Vec::new()),
        Some(t) => {
            let c = file
                .variable(t)
                .filter(|c| is_coord(c))
                .ok_or_else(|| fail(format!("time dimension {t} has no coordinate variable with CF units")))?;
            let attrs = attrs_of(&c, path)?;
            let units = attrs.text_attr("units").ok_or_else(|| fail(format!("time coordinate {t} has no units")))?.to_string();
            let calendar = attrs.text_attr("calendar").map(str::to_string);
            let cf = CfTime::parse(&units, calendar.as_deref()).map_err(|e| fail(format!("time coordinate {t}: {e}")))?;
            let values: Vec<f64> = c.get_values::<f64, _>(..).map_err(|e| fail(format!("time coordinate {t}: {e}")))?;
            let times = values
                .iter()
                .map(|&v| cf.to_timestamp(v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(format!("time coordinate {t}: {e}")))?;
            let mut sorted = times.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.len() != times.len() {
                return Err(fail(format!("time coordinate {t} has repeated values")));
            }
            if !is_safe_name(t) {
                return Err(fail(format!("time dimension name {t:?} is not [A-Za-z_][A-Za-z0-9_]*")));
            }
            let axis = TimeAxis { name: t.clone(), units, calendar: calendar.unwrap_or_else(|| "standard".into()), attrs };
            (Some(axis), times)
        }
    };

    let crs = crs_of(&file, &vars, path)?;
    Ok(Source { path: path.to_path_buf(), grid: Grid { x, y, level, crs }, time_axis, times, vars, global_attrs })
}

/// The CRS: a CF `grid_mapping` variable (with `crs_wkt`/`spatial_ref` and
/// any EPSG code in its attributes), else geographic.
fn crs_of(file: &netcdf::File, vars: &[SourceVar], path: &Path) -> Result<Crs, SourceError> {
    let Some(gm_name) = vars.iter().find_map(|v| v.def.attrs.text_attr("grid_mapping").map(|s| s.trim().to_string())) else {
        return Ok(Crs::default());
    };
    let Some(gm) = file.variable(&gm_name) else {
        return Err(SourceError { path: path.to_path_buf(), reason: format!("grid_mapping variable {gm_name} is missing") });
    };
    let attrs = attrs_of(&gm, path)?;
    let wkt = attrs.text_attr("crs_wkt").or_else(|| attrs.text_attr("spatial_ref")).map(str::to_string);
    let epsg = ["epsg_code", "EPSG", "epsg"].iter().find_map(|k| match attrs.get_attr(k) {
        Some(AttrValue::Text(s)) => s.trim().trim_start_matches("EPSG:").trim_start_matches("epsg:").parse().ok(),
        Some(v) => v.as_f64().map(|f| f as i32),
        None => None,
    });
    let epsg = epsg.or_else(|| wkt.as_deref().and_then(epsg_from_wkt));
    Ok(Crs { epsg, wkt, grid_mapping: Some(GridMapping { name: gm_name, attrs }) })
}

/// The top-level `ID["EPSG",n]` or `AUTHORITY["EPSG","n"]` of a WKT string.
fn epsg_from_wkt(wkt: &str) -> Option<i32> {
    for (pat, quote) in [("ID[\"EPSG\",", false), ("AUTHORITY[\"EPSG\",\"", true)] {
        if let Some(pos) = wkt.rfind(pat) {
            let rest = &wkt[pos + pat.len()..];
            let end = rest.find(if quote { '"' } else { ']' })?;
            return rest[..end].trim().parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_recognised() {
        let t = |n: &str, a: Vec<Attribute>| kind_of(n, &a);
        assert_eq!(t("lon", vec![]), Some(Kind::X));
        assert_eq!(t("foo", vec![Attribute::text("units", "degrees_north")]), Some(Kind::Y));
        assert_eq!(t("foo", vec![Attribute::text("units", "days since 2000-01-01")]), Some(Kind::T));
        assert_eq!(t("foo", vec![Attribute::text("positive", "down")]), Some(Kind::Z));
        assert_eq!(t("foo", vec![Attribute::text("standard_name", "projection_x_coordinate")]), Some(Kind::X));
        assert_eq!(t("band", vec![]), None);
    }

    #[test]
    fn epsg_codes_from_wkt() {
        assert_eq!(epsg_from_wkt(r#"PROJCS["x",AUTHORITY["EPSG","32633"]]"#), Some(32633));
        assert_eq!(epsg_from_wkt(r#"PROJCRS["x",ID["EPSG",3857]]"#), Some(3857));
        assert_eq!(epsg_from_wkt("LOCAL_CS[]"), None);
    }
}
