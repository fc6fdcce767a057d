//! Reading and validating a source NetCDF file (NetCDF-3 or NetCDF-4, CF).
//!
//! A source holds data variables with dimensions `(time?, level?, y, x)`,
//! where y and x are the source's own names (`lat`/`lon`, `y`/`x`, ...), each
//! with a 1-D coordinate variable. Axes are recognised, in this order, by
//! `axis`, `standard_name`, `units` (`degrees_east`, `... since ...`),
//! `positive`, and finally by name. Horizontal axes may have any spacing
//! (regular, Gaussian, stretched) but must be strictly monotonic; their
//! values are kept bit for bit.
//!
//! What the data variables refer to comes along (CF §5, §7):
//!
//! | referred to by | shape | kept as |
//! |---|---|---|
//! | `coordinates`, `cell_measures` | `(time?, level?, y, x)` | tiles of a [`VarKind::Coordinate`] variable (2-D `lat(y, x)`) |
//! | `bounds`, `climatology`, `coordinates` | `(time, ...)` | values per time slice (`time_bnds`) |
//! | `bounds`, `coordinates`, `cell_measures` | anything else, small | values in the definition (`lat_bnds`, scalar `height`) |
//! | `grid_mapping` | scalar | the grid mapping of the CRS |
//!
//! `ancillary_variables` name data variables, which are taken as such. A
//! name that points at nothing the dataset will serve is removed from the
//! attribute that names it (with a warning): no attribute ever names a
//! variable the dataset does not serve. The one exception is CF's own:
//! `cell_measures` may name a variable listed in the global
//! `external_variables`.

use crate::model::{
    AttrValue, Attribute, Attributes, prune_references, AuxDim, AuxVar, Axis, CfTime, Crs, DataType, Grid, GridMapping, TimeAxis,
    TimeKeys, VarKind, VariableDef, is_safe_name,
};
use crate::store::tile::{from_nc, nc_type};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// Why a source cannot be ingested, in one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct SourceError {
    pub path: PathBuf,
    pub reason: String,
}

/// Largest auxiliary variable kept in the catalogue (values): bounds of a
/// 1-D axis or of a small 2-D grid. Larger ones on the grid are tiled.
pub const MAX_AUX_VALUES: usize = 4 << 20;

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

/// A tiled variable of the source (data, or an auxiliary coordinate on the
/// grid) and how its dimensions map to the archive's.
#[derive(Clone, Debug)]
pub struct SourceVar {
    pub def: VariableDef,
    /// Whether the variable has the source's time dimension (it may still
    /// be timed by `--time` when the source has none).
    pub has_time_dim: bool,
}

/// An auxiliary variable that follows the time slices (`time_bnds`).
#[derive(Clone, Debug)]
pub struct SliceAux {
    /// The variable without its time dimension; `values` is empty.
    pub var: AuxVar,
    /// Values for each time of the source, in source order.
    pub values: Vec<Vec<f64>>,
    /// True when the values are times in the time coordinate's units
    /// (bounds or climatology of the time axis): they are converted with it.
    pub in_time_units: bool,
}

/// A validated source.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub grid: Grid,
    /// The source's own time axis, if it has one.
    pub time_axis: Option<TimeAxis>,
    /// The values of the source's time coordinate, in its own units (empty
    /// without one).
    pub time_values: Vec<f64>,
    /// Tiled variables: data first, then auxiliary coordinates.
    pub vars: Vec<SourceVar>,
    /// Small static auxiliary variables (bounds, scalar coordinates).
    pub aux: Vec<AuxVar>,
    /// Auxiliary variables per time slice.
    pub slice_aux: Vec<SliceAux>,
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

/// The variable names an attribute refers to: `coordinates`,
/// `ancillary_variables`, `bounds`, `climatology`, `grid_mapping` (simple
/// form) are lists of names; `cell_measures` is `measure: name` pairs.
fn referenced_names(key: &str, text: &str) -> Vec<String> {
    let words = text.split_whitespace();
    match key {
        "cell_measures" => words.filter(|w| !w.ends_with(':')).map(str::to_string).collect(),
        "grid_mapping" => words.filter(|w| !w.ends_with(':')).map(|w| w.to_string()).collect(),
        _ => words.map(str::to_string).collect(),
    }
}

/// Keys whose targets are auxiliary (not data) variables.
const AUX_KEYS: [&str; 5] = ["coordinates", "bounds", "climatology", "cell_measures", "grid_mapping"];

/// Reads every value of a variable as f64 (exact for every stored type).
fn read_all(v: &netcdf::Variable<'_>, fail: &dyn Fn(String) -> SourceError) -> Result<Vec<f64>, SourceError> {
    if v.dimensions().is_empty() {
        return v.get_value::<f64, _>(..).map(|x| vec![x]).map_err(|e| fail(format!("{}: {e}", v.name())));
    }
    v.get_values::<f64, _>(..).map_err(|e| fail(format!("{}: {e}", v.name())))
}

fn is_coord(v: &netcdf::Variable<'_>) -> bool {
    v.dimensions().len() == 1 && v.dimensions()[0].name() == v.name()
}

/// Which of (time, level) the leading dimensions of a variable on the grid
/// are, recording the source's time and vertical dimensions; or why the
/// variable does not fit `(time?, level?, y, x)`.
fn leading(
    file: &netcdf::File,
    path: &Path,
    name: &str,
    dims: &[String],
    tdim: &mut Option<String>,
    zdim: &mut Option<String>,
) -> Result<(bool, bool), SourceError> {
    let fail = |reason: String| SourceError { path: path.to_path_buf(), reason };
    let n = dims.len();
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
                let (y, x) = (&dims[n - 2], &dims[n - 1]);
                return Err(fail(format!(
                    "variable {name}: dimension {d} is neither a time nor a vertical axis; dimensions must be (time?, level?, {y}, {x})"
                )));
            }
        }
    }
    Ok((has_t, has_z))
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
    let external: BTreeSet<String> =
        global_attrs.text_attr("external_variables").map(|t| t.split_whitespace().map(str::to_string).collect()).unwrap_or_default();

    let mut aux_targets: HashSet<String> = HashSet::new();
    for v in file.variables() {
        let attrs = attrs_of(&v, path)?;
        for key in AUX_KEYS {
            if let Some(t) = attrs.text_attr(key) {
                aux_targets.extend(referenced_names(key, t));
            }
        }
    }

    let mut candidates: Vec<netcdf::Variable<'_>> = file
        .variables()
        .filter(|v| !is_coord(v) && v.dimensions().len() >= 2 && !aux_targets.contains(&v.name()))
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
        a.check_monotonic().map_err(|e| fail(e.to_string()))?;
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
        let (has_t, has_z) = leading(&file, path, &name, &dims, &mut tdim, &mut zdim)?;
        let dtype = nc_type(v.vartype()).ok_or_else(|| {
            fail(format!("variable {name} has unsupported type {:?} (u8, i8, i16, u16, i32, u32, f32 and f64 are supported)", v.vartype()))
        })?;
        if !is_safe_name(&name) {
            return Err(fail(format!("variable name {name:?} is not [A-Za-z_][A-Za-z0-9_]*")));
        }
        let attrs = attrs_of(v, path)?;
        vars.push(SourceVar {
            def: VariableDef { name, dtype, has_time: has_t, has_level: has_z, attrs, kind: VarKind::Data },
            has_time_dim: has_t,
        });
    }
    if vars.is_empty() {
        return Err(fail("no data variable with (y, x) dimensions".into()));
    }

    // What the chosen data variables and the axes refer to, transitively
    // (a 2-D lat names its lat_bnds).
    let axis_names: Vec<String> = [Some(xdim.clone()), Some(ydim.clone()), zdim.clone(), tdim.clone()].into_iter().flatten().collect();
    let mut wanted: Vec<String> = Vec::new();
    let push_refs = |attrs: &[Attribute], wanted: &mut Vec<String>| {
        for key in ["coordinates", "bounds", "climatology", "cell_measures"] {
            if let Some(t) = attrs.text_attr(key) {
                for n in referenced_names(key, t) {
                    if !wanted.contains(&n) {
                        wanted.push(n);
                    }
                }
            }
        }
    };
    for v in &vars {
        push_refs(&v.def.attrs, &mut wanted);
    }
    for a in &axis_names {
        if let Some(c) = file.variable(a).filter(|c| is_coord(c)) {
            push_refs(&attrs_of(&c, path)?, &mut wanted);
        }
    }
    let time_bounds: Vec<String> = match tdim.as_deref().and_then(|t| file.variable(t)) {
        Some(c) => {
            let attrs = attrs_of(&c, path)?;
            ["bounds", "climatology"].iter().filter_map(|k| attrs.text_attr(k).map(|s| s.trim().to_string())).collect()
        }
        None => Vec::new(),
    };
    let mut aux: Vec<AuxVar> = Vec::new();
    let mut slice_aux: Vec<SliceAux> = Vec::new();
    let mut i = 0;
    while i < wanted.len() {
        let name = wanted[i].clone();
        i += 1;
        if axis_names.contains(&name) || vars.iter().any(|v| v.def.name == name) {
            continue;
        }
        let Some(v) = file.variable(&name) else { continue };
        let why_not = |reason: String| tracing::warn!(file = %path.display(), variable = %name, "auxiliary variable not kept: {reason}");
        let Some(dtype) = nc_type(v.vartype()) else {
            why_not(format!("type {:?} is not one tessera stores", v.vartype()));
            continue;
        };
        if !is_safe_name(&name) {
            why_not("its name is not [A-Za-z_][A-Za-z0-9_]*".into());
            continue;
        }
        let attrs = attrs_of(&v, path)?;
        let dims = dims_of(&v);
        let n = dims.len();
        if n >= 2 && dims[n - 2] == ydim && dims[n - 1] == xdim {
            let (has_t, has_z) = leading(&file, path, &name, &dims, &mut tdim, &mut zdim)?;
            push_refs(&attrs, &mut wanted);
            vars.push(SourceVar {
                def: VariableDef { name, dtype, has_time: has_t, has_level: has_z, attrs, kind: VarKind::Coordinate },
                has_time_dim: has_t,
            });
            continue;
        }
        let mut aux_dims = Vec::new();
        for d in &dims {
            let len = file.dimension_len(d).unwrap_or(0);
            if !is_safe_name(d) || len == 0 {
                aux_dims.clear();
                break;
            }
            aux_dims.push(AuxDim { name: d.clone(), len });
        }
        if aux_dims.len() != dims.len() {
            why_not("a dimension is unnamed, empty or unlimited and empty".into());
            continue;
        }
        let values = read_all(&v, &fail)?;
        push_refs(&attrs, &mut wanted);
        if dims.iter().skip(1).any(|d| Some(d) == tdim.as_ref()) {
            why_not("its time dimension is not the first".into());
            continue;
        }
        if tdim.as_ref().is_some_and(|t| dims.first() == Some(t)) {
            let per: usize = aux_dims[1..].iter().map(|d| d.len).product();
            let nt = aux_dims[0].len;
            let values: Vec<Vec<f64>> = (0..nt).map(|k| values[k * per..(k + 1) * per].to_vec()).collect();
            slice_aux.push(SliceAux {
                in_time_units: time_bounds.contains(&name),
                var: AuxVar { name, dtype, dims: aux_dims[1..].to_vec(), attrs, values: Vec::new() },
                values,
            });
        } else {
            if values.len() > MAX_AUX_VALUES {
                why_not(format!("{} values is more than the {MAX_AUX_VALUES} kept beside a dataset", values.len()));
                continue;
            }
            aux.push(AuxVar { name, dtype, dims: aux_dims, attrs, values });
        }
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

    let (mut time_axis, time_values) = match &tdim {
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
            for &v in &values {
                cf.to_timestamp(v).map_err(|e| fail(format!("time coordinate {t}: {e}")))?;
            }
            let mut sorted: Vec<f64> = values.clone();
            sorted.sort_by(f64::total_cmp);
            sorted.dedup();
            if sorted.len() != values.len() {
                return Err(fail(format!("time coordinate {t} has repeated values")));
            }
            if !is_safe_name(t) {
                return Err(fail(format!("time dimension name {t:?} is not [A-Za-z_][A-Za-z0-9_]*")));
            }
            // int64 times (seconds since 1970 in recent ERA5 files) travel
            // as doubles: DAP2 and NetCDF-3 have no 64-bit integers.
            let dtype = nc_type(c.vartype()).unwrap_or(DataType::F64);
            let axis = TimeAxis {
                name: t.clone(),
                units,
                calendar: cf.calendar().name().to_string(),
                attrs,
                dtype,
                keys: TimeKeys::Calendar,
            };
            (Some(axis), values)
        }
    };

    let crs = crs_of(&file, &vars, path)?;

    // Prune references to anything the dataset will not serve.
    let mut served: BTreeSet<String> = axis_names.iter().cloned().collect();
    served.extend(vars.iter().map(|v| v.def.name.clone()));
    served.extend(aux.iter().map(|a| a.name.clone()));
    served.extend(slice_aux.iter().map(|a| a.var.name.clone()));
    if let Some(gm) = &crs.grid_mapping {
        served.insert(gm.name.clone());
    }
    let mut x = x;
    let mut y = y;
    let mut level = level;
    let note = |what: &str, dropped: Vec<String>| {
        for d in dropped {
            tracing::warn!(file = %path.display(), variable = %what, "reference removed, the dataset does not serve it: {d}");
        }
    };
    for v in &mut vars {
        note(&v.def.name.clone(), prune_references(&mut v.def.attrs, &served, &external));
    }
    for a in aux.iter_mut().chain(slice_aux.iter_mut().map(|s| &mut s.var)) {
        note(&a.name.clone(), prune_references(&mut a.attrs, &served, &external));
    }
    for a in [Some(&mut x), Some(&mut y), level.as_mut()].into_iter().flatten() {
        note(&a.name.clone(), prune_references(&mut a.attrs, &served, &external));
    }
    if let Some(t) = time_axis.as_mut() {
        note(&t.name.clone(), prune_references(&mut t.attrs, &served, &external));
    }
    Ok(Source { path: path.to_path_buf(), grid: Grid { x, y, level, crs }, time_axis, time_values, vars, aux, slice_aux, global_attrs })
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
    // The value of a grid mapping variable means nothing in CF; keep a
    // numeric scalar's type and value, else an int 0.
    let (dtype, value) = match nc_type(gm.vartype()) {
        Some(t) if gm.dimensions().is_empty() => (t, gm.get_value::<f64, _>(..).unwrap_or(0.0)),
        _ => (DataType::I32, 0.0),
    };
    let wkt = attrs.text_attr("crs_wkt").or_else(|| attrs.text_attr("spatial_ref")).map(str::to_string);
    let epsg = ["epsg_code", "EPSG", "epsg"].iter().find_map(|k| match attrs.get_attr(k) {
        Some(AttrValue::Text(s)) => s.trim().trim_start_matches("EPSG:").trim_start_matches("epsg:").parse().ok(),
        Some(v) => v.as_f64().map(|f| f as i32),
        None => None,
    });
    let epsg = epsg.or_else(|| wkt.as_deref().and_then(epsg_from_wkt));
    Ok(Crs { epsg, wkt, grid_mapping: Some(GridMapping { name: gm_name, attrs, dtype, value }) })
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
