//! The request path: resolve -> plan -> read -> mosaic -> encode.
//!
//! ```text
//! name -> ServedDataset (catalogue, cached per dataset version)
//!      -> dap::view::Subset (pure: constraint resolved against the view)
//!      -> Plan (one catalogue range query per data array; files checked)
//!      -> bands of output rows: tile windows read through TileStore,
//!         placed with `mosaic` ([`Plan::data_bands`])
//!      -> an encoder per format (the `encode` module) turns bands into bytes
//! ```
//!
//! Everything that can fail with a status (unknown dataset, bad constraint,
//! response too large, a catalogued tile missing from the pool) fails before
//! the first byte; after that, production can only cut the body short
//! ([`Stop`]).

use crate::catalogue::{Catalogue, CatalogueError, Dataset, TileQuery, TimeSel, TimeSlice, Variable};
use crate::dap::ce::CeError;
use crate::dap::das::{Das, VarAttrs};
use crate::dap::view::{self, Array, BoundRole, CoordLookup, SentArray, Subset, ValueQuery, View, ViewVar};
use crate::model::{AuxVar, Attribute, Axis, DataType, DatasetName, Timestamp, TypedArray};
use crate::mosaic;
use crate::store::Pool;
use crate::store::port::{Depth, TileError, TileKey, TileRef, TileStore};
use crate::with_data_type;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Bytes of stored values per band.
const BAND_BYTES: usize = 4 << 20;

/// Why a request cannot be answered, by kind: `http::error` maps each kind
/// to one status and the CLI prints it on one line. Kinds stay typed up to
/// that edge (a constraint error keeps its [`CeErrorKind`] and caret, a tile
/// error its [`TileError`]), so the edge decides, not this module.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    NotFound(String),
    /// The constraint expression is wrong (or asks for more than DAP2 can
    /// send): its kind decides 400 or 413.
    #[error("Constraint error: {0}")]
    Constraint(#[from] CeError),
    #[error("response of {size} bytes exceeds the limit of {limit} bytes; request a smaller subset (fewer variables, a shorter range or a stride)")]
    TooLarge { size: u64, limit: u64 },
    /// Too large for the format or the protocol, whatever the server's
    /// limit (more than 2^31 - 1 elements in a DAP2 array, say): the
    /// message says which.
    #[error("{0}")]
    TooLargeFor(String),
    #[error("{0}")]
    Unavailable(String),
    /// A catalogued tile the store could not give: missing, corrupt, or
    /// unreachable for now (the [`TileError`] says which).
    #[error("dataset {dataset}: tile {path}: {error}")]
    Tile { dataset: String, path: String, error: TileError },
    #[error("{0}")]
    Internal(String),
}

impl From<CatalogueError> for ArchiveError {
    fn from(e: CatalogueError) -> Self {
        match e {
            CatalogueError::Unavailable(m) => ArchiveError::Unavailable(format!("catalogue unavailable: {m}")),
            other => ArchiveError::Internal(other.to_string()),
        }
    }
}

/// What a DAP name stands for.
#[derive(Clone, Debug, PartialEq)]
enum Role {
    Time,
    Level,
    Y,
    X,
    GridMapping,
    /// A tiled variable (data, or an auxiliary coordinate on the grid).
    Data(usize),
    /// A static auxiliary variable of the definition.
    Aux(usize),
    /// An auxiliary variable that follows the time slices.
    SliceAux(usize),
}

/// A dataset as DAP sees it, built once per dataset version.
pub struct ServedDataset {
    pub dataset: Dataset,
    pub vars: Vec<Variable>,
    /// Slice keys, ascending.
    pub times: Vec<Timestamp>,
    /// The time coordinate, exactly as stored, in the dataset's units.
    pub time_values: Vec<f64>,
    pub slices: Vec<TimeSlice>,
    /// The DAP2 structure (Arrays and Grids) the dataset is served as.
    pub structure: View,
    pub dds: String,
    pub das: String,
    roles: HashMap<String, Role>,
}

fn das_attrs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs.to_vec()
}

/// A coordinate's attributes, with `axis` added when the source had none:
/// GrADS and Ferret find their X/Y/Z/T axes by it.
fn axis_attrs(attrs: &[Attribute], axis: &str) -> Vec<Attribute> {
    let mut out = das_attrs(attrs);
    if !attrs.iter().any(|a| a.name == "axis") {
        out.push(Attribute::text("axis", axis));
    }
    out
}

impl ServedDataset {
    /// Builds the DAP view: coordinate arrays first (time, level, y, x),
    /// the grid mapping, then one Grid per variable.
    pub fn build(dataset: Dataset, vars: Vec<Variable>, slices: Vec<TimeSlice>) -> Result<ServedDataset, ArchiveError> {
        let (dataset, vars, notes) = unserved_references_removed(dataset, vars, !slices.is_empty());
        for n in notes {
            tracing::warn!(dataset = %dataset.def.name, "{n}");
        }
        let def = &dataset.def;
        let cf = def.time.cf().map_err(|e| ArchiveError::Internal(format!("dataset {}: {e}", def.name)))?;
        let times: Vec<Timestamp> = slices.iter().map(|s| s.t).collect();
        // Archives made before exact values were kept derive them.
        let time_values: Vec<f64> = slices.iter().map(|s| s.value.unwrap_or_else(|| cf.to_value(s.t))).collect();
        let has_time = !times.is_empty() && vars.iter().any(|v| v.def.has_time);
        let level = def.grid.level.as_ref().filter(|_| vars.iter().any(|v| v.def.has_level));
        let axis_array = |a: &Axis| Array::new(a.name.clone(), a.dtype.dap_type(), [(a.name.clone(), a.len())]);
        let time_array = Array::new(def.time.name.clone(), def.time.dtype.dap_type(), [(def.time.name.clone(), times.len())]);

        let mut out: Vec<ViewVar> = Vec::new();
        let mut roles = HashMap::new();
        let mut das = Das::default();
        if has_time {
            out.push(ViewVar::Array(time_array.clone()));
            roles.insert(def.time.name.clone(), Role::Time);
            das.vars.push(VarAttrs { name: def.time.name.clone(), storage: Some(def.time.dtype), attrs: axis_attrs(&def.time.attrs, "T") });
            // No DODS_EXTRA Unlimited_Dimension: the archive's time axis is
            // not a record dimension, and netCDF-C would show the container
            // as a global attribute.

        }
        if let Some(l) = level {
            out.push(ViewVar::Array(axis_array(l)));
            roles.insert(l.name.clone(), Role::Level);
            das.vars.push(VarAttrs { name: l.name.clone(), storage: Some(l.dtype), attrs: axis_attrs(&l.attrs, "Z") });
        }
        for (a, role, axis) in [(&def.grid.y, Role::Y, "Y"), (&def.grid.x, Role::X, "X")] {
            out.push(ViewVar::Array(axis_array(a)));
            roles.insert(a.name.clone(), role);
            das.vars.push(VarAttrs { name: a.name.clone(), storage: Some(a.dtype), attrs: axis_attrs(&a.attrs, axis) });
        }
        if let Some(gm) = &def.grid.crs.grid_mapping {
            out.push(ViewVar::Array(Array::new(gm.name.clone(), gm.dtype.dap_type(), Vec::<(String, usize)>::new())));
            roles.insert(gm.name.clone(), Role::GridMapping);
            das.vars.push(VarAttrs { name: gm.name.clone(), storage: Some(gm.dtype), attrs: das_attrs(&gm.attrs) });
        }
        for (i, a) in def.aux.iter().enumerate() {
            let dims: Vec<(String, usize)> = a.dims.iter().map(|d| (d.name.clone(), d.len)).collect();
            out.push(ViewVar::Array(Array::new(a.name.clone(), a.dtype.dap_type(), dims)));
            roles.insert(a.name.clone(), Role::Aux(i));
            das.vars.push(VarAttrs { name: a.name.clone(), storage: Some(a.dtype), attrs: das_attrs(&a.attrs) });
        }
        if has_time {
            for (i, a) in def.slice_aux.iter().enumerate() {
                let mut dims: Vec<(String, usize)> = vec![(def.time.name.clone(), times.len())];
                dims.extend(a.dims.iter().map(|d| (d.name.clone(), d.len)));
                out.push(ViewVar::Array(Array::new(a.name.clone(), a.dtype.dap_type(), dims)));
                roles.insert(a.name.clone(), Role::SliceAux(i));
                das.vars.push(VarAttrs { name: a.name.clone(), storage: Some(a.dtype), attrs: das_attrs(&a.attrs) });
            }
        }
        for (i, v) in vars.iter().enumerate() {
            if v.def.has_time && !has_time {
                continue;
            }
            let mut dims: Vec<(String, usize)> = Vec::new();
            let mut maps = Vec::new();
            if v.def.has_time {
                dims.push((def.time.name.clone(), times.len()));
                maps.push(time_array.clone());
            }
            if v.def.has_level {
                if let Some(l) = level {
                    dims.push((l.name.clone(), l.len()));
                    maps.push(axis_array(l));
                }
            }
            for a in [&def.grid.y, &def.grid.x] {
                dims.push((a.name.clone(), a.len()));
                maps.push(axis_array(a));
            }
            let array = Array::new(v.def.name.clone(), v.def.dtype.dap_type(), dims);
            let grid = view::DapGrid::new(array, maps).map_err(|e| ArchiveError::Internal(e.to_string()))?;
            out.push(ViewVar::Grid(grid));
            roles.insert(v.def.name.clone(), Role::Data(i));
            das.vars.push(VarAttrs { name: v.def.name.clone(), storage: Some(v.def.dtype), attrs: das_attrs(&v.def.attrs) });
        }
        das.global = das_attrs(&def.attrs);
        let structure = View::new(def.name.as_str(), out).map_err(|e| ArchiveError::Internal(e.to_string()))?;
        let (das_text, notes) = das.render_with_notes();
        for n in notes {
            tracing::debug!(dataset = %def.name, "DAS: {n}");
        }
        Ok(ServedDataset { dds: crate::dap::dds::view_dds(&structure), das: das_text, structure, dataset, vars, times, time_values, slices, roles })
    }

    fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// The stored variable behind a DAP name, if it is a data variable.
    pub fn data_variable(&self, name: &str) -> Option<&Variable> {
        match self.role(name) {
            Some(Role::Data(i)) => self.vars.get(*i),
            _ => None,
        }
    }

    /// True for the grid-mapping scalar.
    pub fn is_grid_mapping(&self, name: &str) -> bool {
        self.role(name) == Some(&Role::GridMapping)
    }

    /// Every attribute of a DAP variable, as stored (unsigned types and all).
    pub fn attributes_of(&self, name: &str) -> Vec<Attribute> {
        let def = &self.dataset.def;
        match self.role(name) {
            Some(Role::Time) => def.time.attrs.clone(),
            Some(Role::Level) => def.grid.level.as_ref().map(|l| l.attrs.clone()).unwrap_or_default(),
            Some(Role::Y) => def.grid.y.attrs.clone(),
            Some(Role::X) => def.grid.x.attrs.clone(),
            Some(Role::GridMapping) => def.grid.crs.grid_mapping.as_ref().map(|g| g.attrs.clone()).unwrap_or_default(),
            Some(Role::Data(i)) => self.vars[*i].def.attrs.clone(),
            Some(Role::Aux(i)) => def.aux[*i].attrs.clone(),
            Some(Role::SliceAux(i)) => def.slice_aux[*i].attrs.clone(),
            None => Vec::new(),
        }
    }

    /// The auxiliary variable behind a DAP name, if it is one, and whether
    /// it follows the time slices.
    pub fn aux_variable(&self, name: &str) -> Option<(&AuxVar, bool)> {
        let def = &self.dataset.def;
        match self.role(name)? {
            Role::Aux(i) => def.aux.get(*i).map(|a| (a, false)),
            Role::SliceAux(i) => def.slice_aux.get(*i).map(|a| (a, true)),
            _ => None,
        }
    }

    /// The values of an auxiliary variable over the selected ranges (one
    /// per dimension, time first for per-slice ones), in its stored type.
    pub fn aux_values(&self, name: &str, ranges: &[view::Range]) -> Option<TypedArray> {
        let (a, per_slice) = self.aux_variable(name)?;
        let mut shape: Vec<usize> = a.dims.iter().map(|d| d.len).collect();
        let owned;
        let values: &[f64] = if per_slice {
            // Assemble [time, ...] from the slices; a slice without values
            // (ingested before the variable existed) reads as the fill.
            let per: usize = shape.iter().product();
            let fill = a.attrs.iter().find(|x| x.name == "_FillValue").and_then(|x| x.value.as_f64()).unwrap_or(f64::NAN);
            let mut v = Vec::with_capacity(per * self.slices.len());
            for s in &self.slices {
                match s.aux.get(&a.name).filter(|x| x.len() == per) {
                    Some(x) => v.extend_from_slice(x),
                    None => v.extend(std::iter::repeat_n(fill, per)),
                }
            }
            shape.insert(0, self.slices.len());
            owned = v;
            &owned
        } else {
            &a.values
        };
        let picked = select(values, &shape, ranges)?;
        Some(with_data_type!(a.dtype, T => TypedArray::from_vec(picked.iter().map(|&x| x as T).collect::<Vec<T>>())))
    }

    /// The grid mapping scalar's value, in its stored type.
    pub fn grid_mapping_value(&self) -> Option<TypedArray> {
        let gm = self.dataset.def.grid.crs.grid_mapping.as_ref()?;
        Some(with_data_type!(gm.dtype, T => TypedArray::from_vec(vec![gm.value as T])))
    }

    /// Constraint items that bring along what the variables of `subset`
    /// refer to (CF `coordinates`, `bounds`, `climatology`, `cell_measures`,
    /// `grid_mapping`), over the same ranges, so that a downloaded file is
    /// self-describing: a `tas` subset carries its `time_bnds`, `lat_bnds`
    /// and `height`. Empty when nothing is missing.
    pub fn referenced_items(&self, subset: &Subset) -> Vec<String> {
        use crate::model::Attributes;
        let arrays = subset.arrays();
        let present: std::collections::HashSet<&str> = arrays.iter().map(|a| a.name.as_str()).collect();
        let mut ranges: HashMap<&str, view::Range> = HashMap::new();
        for a in &arrays {
            for d in &a.dims {
                ranges.entry(d.name.as_str()).or_insert(d.range);
            }
        }
        let mut wanted: Vec<String> = Vec::new();
        let mut add = |attrs: &[Attribute]| {
            for key in ["coordinates", "bounds", "climatology", "cell_measures", "grid_mapping"] {
                if let Some(t) = attrs.text_attr(key) {
                    for w in t.split_whitespace().filter(|w| !w.ends_with(':')) {
                        if !wanted.iter().any(|x| x == w) {
                            wanted.push(w.to_string());
                        }
                    }
                }
            }
        };
        for a in &arrays {
            add(&self.attributes_of(&a.name));
            for d in &a.dims {
                add(&self.attributes_of(&d.name));
            }
        }
        let mut items = Vec::new();
        for name in wanted {
            if present.contains(name.as_str()) || self.role(&name).is_none() {
                continue;
            }
            let Some(var) = self.structure.vars().iter().find(|v| v.name() == name) else { continue };
            let dims = match var {
                ViewVar::Array(a) => &a.dims,
                ViewVar::Grid(g) => &g.array().dims,
            };
            let mut item = name.clone();
            for d in dims {
                let r = ranges.get(d.name.as_str()).copied().unwrap_or_else(|| view::Range::whole(d.len));
                item.push_str(&format!("[{}:{}:{}]", r.start, r.stride, r.last()));
            }
            items.push(item);
        }
        items
    }

    /// The stored type of a coordinate axis.
    pub fn axis_dtype(&self, name: &str) -> Option<DataType> {
        let def = &self.dataset.def;
        match self.role(name)? {
            Role::Time => Some(def.time.dtype),
            Role::Level => def.grid.level.as_ref().map(|l| l.dtype),
            Role::Y => Some(def.grid.y.dtype),
            Role::X => Some(def.grid.x.dtype),
            _ => None,
        }
    }

    /// The selected values of a coordinate axis, in its stored type.
    pub fn axis_values(&self, name: &str, r: view::Range) -> Option<TypedArray> {
        let (values, _) = self.coordinate(name)?;
        let dtype = self.axis_dtype(name)?;
        Some(with_data_type!(dtype, T => TypedArray::from_vec(r.indices().map(|i| values[i] as T).collect::<Vec<T>>())))
    }

    /// Resolves a raw (still percent-encoded) constraint expression.
    pub fn resolve(&self, raw_query: &str) -> Result<Subset, ArchiveError> {
        let ce = crate::dap::ce::parse(raw_query)?;
        Ok(view::resolve_with(&self.structure, &ce, &Lookup(self))?)
    }

    /// The values of a coordinate, as f64, in order.
    fn coordinate(&self, dim: &str) -> Option<(Vec<f64>, bool)> {
        let def = &self.dataset.def;
        match self.role(dim)? {
            Role::Time => Some((self.time_values.clone(), true)),
            Role::Level => def.grid.level.as_ref().map(|l| (l.values.clone(), false)),
            Role::Y => Some((def.grid.y.values.clone(), false)),
            Role::X => Some((def.grid.x.values.clone(), false)),
            _ => None,
        }
    }
}

/// The names a dataset serves over DAP2 (see [`ServedDataset::build`]).
fn served_names(def: &crate::model::DatasetDef, vars: &[Variable], has_slices: bool) -> std::collections::BTreeSet<String> {
    let has_time = has_slices && vars.iter().any(|v| v.def.has_time);
    let mut served = std::collections::BTreeSet::new();
    if has_time {
        served.insert(def.time.name.clone());
        served.extend(def.slice_aux.iter().map(|a| a.name.clone()));
    }
    if let Some(l) = def.grid.level.as_ref().filter(|_| vars.iter().any(|v| v.def.has_level)) {
        served.insert(l.name.clone());
    }
    served.insert(def.grid.x.name.clone());
    served.insert(def.grid.y.name.clone());
    served.extend(def.grid.crs.grid_mapping.iter().map(|g| g.name.clone()));
    served.extend(def.aux.iter().map(|a| a.name.clone()));
    served.extend(vars.iter().filter(|v| has_time || !v.def.has_time).map(|v| v.def.name.clone()));
    served
}

/// What `datasets show` says about references to variables a dataset
/// does not serve (see `unserved_references_removed`).
pub fn unserved_reference_notes(dataset: &Dataset, vars: &[Variable], has_slices: bool) -> Vec<String> {
    unserved_references_removed(dataset.clone(), vars.to_vec(), has_slices).2
}

/// No attribute names a variable the dataset does not serve. Datasets
/// made by earlier versions of tessera dropped their sources' bounds and
/// auxiliary coordinates but kept the attributes naming them: those
/// references are removed here, and the notes say how to bring the
/// variables back (`ingest --replace` of the sources).
fn unserved_references_removed(mut dataset: Dataset, mut vars: Vec<Variable>, has_slices: bool) -> (Dataset, Vec<Variable>, Vec<String>) {
    use crate::model::Attributes;
    let served = served_names(&dataset.def, &vars, has_slices);
    let def = &mut dataset.def;
    let external: std::collections::BTreeSet<String> =
        def.attrs.text_attr("external_variables").map(|t| t.split_whitespace().map(str::to_string).collect()).unwrap_or_default();
    let mut dropped: Vec<String> = Vec::new();
    let mut prune = |attrs: &mut Vec<Attribute>| {
        for d in crate::model::prune_references(attrs, &served, &external) {
            if !dropped.contains(&d) {
                dropped.push(d);
            }
        }
    };
    for v in &mut vars {
        prune(&mut v.def.attrs);
    }
    for a in def.aux.iter_mut().chain(def.slice_aux.iter_mut()) {
        prune(&mut a.attrs);
    }
    for a in [Some(&mut def.grid.x), Some(&mut def.grid.y), def.grid.level.as_mut()].into_iter().flatten() {
        prune(&mut a.attrs);
    }
    prune(&mut def.time.attrs);
    let notes = if dropped.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "its attributes name variables it does not serve ({}): made by an earlier tessera, which did not keep bounds and \
             auxiliary coordinates; `tessera ingest --dataset {} --replace SOURCES...` adds them",
            dropped.join(", "),
            def.name
        )]
    };
    (dataset, vars, notes)
}

/// Values at the cartesian product of `ranges` of a row-major array of
/// `shape` (a scalar has no ranges); `None` if they do not fit.
fn select(values: &[f64], shape: &[usize], ranges: &[view::Range]) -> Option<Vec<f64>> {
    if shape.len() != ranges.len() || values.len() != shape.iter().product::<usize>() {
        return None;
    }
    let mut out = vec![0usize];
    for (k, r) in ranges.iter().enumerate() {
        if r.count > 0 && r.last() >= shape[k] {
            return None;
        }
        out = out.iter().flat_map(|&base| r.indices().map(move |i| base * shape[k] + i)).collect();
    }
    Some(out.into_iter().map(|i| values[i]).collect())
}

/// Coordinate-value hyperslabs (`[(40.0):(30.0)]`, `[(2010-01-15)]`,
/// `[(2001-02-30)]` in a 360_day dataset): bounds in the axis's own order
/// select the cells inside them, inclusive; a single value selects the
/// nearest cell. Axes are monotonic, whatever their spacing (Gaussian,
/// stretched), so every lookup is a binary search.
struct Lookup<'a>(&'a ServedDataset);

impl CoordLookup for Lookup<'_> {
    fn index_of(&self, q: &ValueQuery<'_>) -> Result<usize, String> {
        let dv = self.0;
        let name = &q.dim.name;
        let (values, is_time) = dv.coordinate(name).ok_or_else(|| format!("dimension {name} has no coordinate values"))?;
        let text = q.value.text.trim();
        if values.is_empty() {
            return Err(format!("axis {name} is empty"));
        }
        if is_time {
            let def = &dv.dataset.def;
            let cal = def.time.key_calendar().map_err(|e| e.to_string())?;
            let t = cal.parse_user_time(text).map_err(|e| e.to_string())?;
            let keys: Vec<f64> = dv.times.iter().map(|t| t.0 as f64).collect();
            let show = |i: usize| def.time.show(dv.times[i]);
            return search(&keys, t.0 as f64, 0.0, q.role).map_err(|e| match e {
                Miss::Outside => format!("{text} is outside the axis {name}, which runs from {} to {}", show(0), show(keys.len() - 1)),
                Miss::Before => format!("no {name} value from {text} on"),
                Miss::After => format!("no {name} value up to {text}"),
            });
        }
        let v: f64 = text.parse().map_err(|_| format!("{text:?} is not a number (the axis {name} is numeric)"))?;
        // A small tolerance so that a value printed from a float32
        // coordinate still selects that coordinate.
        let min_width = values.windows(2).map(|w| (w[1] - w[0]).abs()).fold(f64::INFINITY, f64::min);
        let eps = if min_width.is_finite() { min_width * 1e-3 } else { 0.0 };
        search(&values, v, eps, q.role).map_err(|e| match e {
            Miss::Outside => format!("{text} is outside the axis {name}, which runs from {} to {}", values[0], values[values.len() - 1]),
            Miss::Before => format!("no {name} value from {text} on"),
            Miss::After => format!("no {name} value up to {text}"),
        })
    }
}

enum Miss {
    Outside,
    Before,
    After,
}

/// The index a coordinate value selects on a strictly monotonic axis:
/// the nearest cell for a single value (within half a cell beyond either
/// end), the first cell at or after a start bound, the last at or before a
/// stop bound (both in the axis's own direction, `eps` allowed).
fn search(values: &[f64], v: f64, eps: f64, role: BoundRole) -> Result<usize, Miss> {
    let n = values.len();
    let ascending = n < 2 || values[n - 1] > values[0];
    // Position in ascending terms: number of values "before" v.
    let before = |x: f64| if ascending { x < v } else { x > v };
    let p = values.partition_point(|&x| before(x));
    let half = |i: usize, j: usize| (values[i] - values[j]).abs() / 2.0;
    let (first, last) = (values[0], values[n - 1]);
    let (lo, hi) = if ascending { (first, last) } else { (last, first) };
    let (pad_lo, pad_hi) = if n < 2 {
        (eps, eps)
    } else if ascending {
        (half(0, 1), half(n - 1, n - 2))
    } else {
        (half(n - 1, n - 2), half(0, 1))
    };
    if !(v >= lo - pad_lo - eps && v <= hi + pad_hi + eps) {
        return Err(Miss::Outside);
    }
    match role {
        BoundRole::Single => {
            let cands = [p.checked_sub(1), (p < n).then_some(p)];
            cands
                .into_iter()
                .flatten()
                .min_by(|&a, &b| (values[a] - v).abs().total_cmp(&(values[b] - v).abs()))
                .ok_or(Miss::Outside)
        }
        BoundRole::Start => {
            // The first value not before v - eps.
            let within = |x: f64| if ascending { x >= v - eps } else { x <= v + eps };
            let i = values.partition_point(|&x| !within(x));
            if i < n { Ok(i) } else { Err(Miss::Before) }
        }
        BoundRole::Stop => {
            let within = |x: f64| if ascending { x <= v + eps } else { x >= v - eps };
            let i = values.partition_point(|&x| within(x));
            if i > 0 { Ok(i - 1) } else { Err(Miss::After) }
        }
    }
}

/// Limits of the request path.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_response_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_response_bytes: 4 << 30 }
    }
}

/// The archive as the HTTP layer sees it.
pub struct Archive {
    pub catalogue: Arc<dyn Catalogue>,
    pub pool: Pool,
    /// The tiles, by key (the pool, or its in-memory twin).
    pub tiles: Arc<dyn TileStore>,
    pub limits: Limits,
    views: Mutex<HashMap<String, Arc<ServedDataset>>>,
}

/// Tiles of one data array: (time, tx, ty) -> file.
type TileMap = HashMap<(Option<i64>, u32, u32), TileRef>;

/// Tiles verified before the first byte of a response: all of them up to
/// this many; a larger request verifies the rest as it reads them (a
/// failure then cuts the response short, loudly).
const VERIFY_AHEAD_TILES: usize = 256;

/// A resolved request, ready to produce.
pub struct Plan {
    pub dataset: Arc<ServedDataset>,
    pub subset: Subset,
    tiles: HashMap<String, TileMap>,
}

impl Archive {
    pub fn new(catalogue: Arc<dyn Catalogue>, pool: Pool, tiles: Arc<dyn TileStore>, limits: Limits) -> Self {
        Archive { catalogue, pool, tiles, limits, views: Mutex::new(HashMap::new()) }
    }

    /// The current view of a dataset: one indexed catalogue query, plus a
    /// rebuild when the dataset's version changed.
    pub async fn dataset(&self, name: &str) -> Result<Arc<ServedDataset>, ArchiveError> {
        let not_found = || ArchiveError::NotFound(format!("no dataset {name:?} on this server"));
        let dn = DatasetName::parse(name).map_err(|_| not_found())?;
        let t = std::time::Instant::now();
        let found = self.catalogue.dataset(&dn).await;
        metrics::histogram!("tessera_catalogue_query_seconds", "op" => "dataset").record(t.elapsed().as_secs_f64());
        let Some(dataset) = found? else {
            self.views.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
            return Err(not_found());
        };
        if let Some(v) = self.views.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            if v.dataset.id == dataset.id && v.dataset.version == dataset.version {
                return Ok(v.clone());
            }
        }
        let vars = self.catalogue.variables(dataset.id).await?;
        let slices = self.catalogue.time_slices(dataset.id).await?;
        let v = Arc::new(ServedDataset::build(dataset, vars, slices)?);
        self.views.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), v.clone());
        Ok(v)
    }

    /// Looks up the tiles every data array needs (one range query each),
    /// checks the response size and that every tile file exists.
    pub async fn plan(&self, served: Arc<ServedDataset>, subset: Subset, data_bytes: Option<u64>) -> Result<Plan, ArchiveError> {
        if let Some(size) = data_bytes {
            if size > self.limits.max_response_bytes {
                return Err(ArchiveError::TooLarge { size, limit: self.limits.max_response_bytes });
            }
        }
        let def = &served.dataset.def;
        let mut tiles = HashMap::new();
        for a in subset.arrays() {
            let Some(Role::Data(i)) = served.role(&a.name) else { continue };
            let var = &served.vars[*i];
            let n = a.dims.len();
            let (yr, xr) = (a.dims[n - 2].range, a.dims[n - 1].range);
            let (th, tw) = (def.tile.h, def.tile.w);
            let time = if var.def.has_time {
                let tr = a.dims[0].range;
                TimeSel::Between(served.times[tr.start], served.times[tr.last()])
            } else {
                TimeSel::Static
            };
            let q = TileQuery {
                dataset_id: served.dataset.id,
                variable_id: var.id,
                time,
                tx: (xr.start / tw) as u32..(xr.last() / tw + 1) as u32,
                ty: (yr.start / th) as u32..(yr.last() / th + 1) as u32,
            };
            let mut map = TileMap::new();
            let started = std::time::Instant::now();
            let found = self.catalogue.tiles(&q).await;
            metrics::histogram!("tessera_catalogue_query_seconds", "op" => "tiles").record(started.elapsed().as_secs_f64());
            for t in found? {
                let tile = TileRef {
                    key: TileKey { dataset: def.name.to_string(), variable: var.def.name.clone(), time: t.time.map(|t| t.0), tx: t.tx, ty: t.ty },
                    rel: t.path,
                    bytes: t.bytes,
                    checksum: t.checksum,
                    time_text: t.time.map_or_else(|| "static".to_string(), |x| def.time.show(x)),
                };
                map.insert((tile.key.time, t.tx, t.ty), tile);
            }
            tiles.insert(a.path.clone(), map);
        }
        // Every planned tile must be what its catalogue row says before the
        // status line goes out: present with its size, and (up to
        // VERIFY_AHEAD_TILES of them) checksum and identity verified.
        let mut all: Vec<TileRef> = tiles.values().flat_map(|m| m.values().cloned()).collect();
        // In reading order, so that the tiles verified ahead are the first
        // ones the response needs.
        all.sort_by(|a, b| (a.key.time, a.key.ty, a.key.tx, &a.key.variable).cmp(&(b.key.time, b.key.ty, b.key.tx, &b.key.variable)));
        let store = self.tiles.clone();
        let name = def.name.to_string();
        crate::blocking::run("verify tiles", move || {
            let sizes = all.iter().map(|t| (t, Depth::Size));
            let full = all.iter().take(VERIFY_AHEAD_TILES).map(|t| (t, Depth::Full));
            for (t, depth) in sizes.chain(full) {
                if let Err(e) = store.check(t, depth) {
                    metrics::counter!("tessera_tile_errors_total").increment(1);
                    tracing::error!(dataset = %name, tile = %t.rel, error = %e, "catalogued tile failed its check");
                    return Err(tile_error(&name, t, e));
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| ArchiveError::Internal(e.to_string()))??;
        Ok(Plan { dataset: served, subset, tiles })
    }
}

impl Plan {
    /// The values of a coordinate array (or the grid mapping scalar) for
    /// its selected range, in the coordinate's stored type.
    pub(crate) fn coordinate_values(&self, a: &SentArray) -> Result<TypedArray, ArchiveError> {
        let dv = &self.dataset;
        let def = &dv.dataset.def;
        let pick = |values: &[f64], dtype: DataType| -> TypedArray {
            let r = a.dims[0].range;
            with_data_type!(dtype, T => TypedArray::from_vec(r.indices().map(|i| values[i] as T).collect::<Vec<T>>()))
        };
        match dv.role(&a.name) {
            Some(Role::Time) => Ok(pick(&dv.time_values, def.time.dtype)),
            Some(Role::Level) => {
                let l = def.grid.level.as_ref().ok_or_else(|| ArchiveError::Internal("no level axis".into()))?;
                Ok(pick(&l.values, l.dtype))
            }
            Some(Role::Y) => Ok(pick(&def.grid.y.values, def.grid.y.dtype)),
            Some(Role::X) => Ok(pick(&def.grid.x.values, def.grid.x.dtype)),
            Some(Role::GridMapping) => {
                let gm = def.grid.crs.grid_mapping.as_ref().ok_or_else(|| ArchiveError::Internal("no grid mapping".into()))?;
                Ok(with_data_type!(gm.dtype, T => TypedArray::from_vec(vec![gm.value as T])))
            }
            Some(Role::Aux(_) | Role::SliceAux(_)) => dv
                .aux_values(&a.name, &a.ranges())
                .ok_or_else(|| ArchiveError::Internal(format!("{}: selection outside the auxiliary variable", a.name))),
            _ => Err(ArchiveError::Internal(format!("{} is not a coordinate", a.name))),
        }
    }

    /// Calls `f` with consecutive bands of a data array, in output order:
    /// `(first_row, band)` where rows are innermost-dimension rows.
    /// Bands before the one holding `first_row` are skipped without reading;
    /// `f` returns `Ok(false)` to stop early.
    pub(crate) fn data_bands(
        &self,
        reader: &dyn TileStore,
        a: &SentArray,
        first_row: usize,
        f: &mut dyn FnMut(usize, &TypedArray) -> Result<bool, Stop>,
    ) -> Result<(), Stop> {
        let dv = &self.dataset;
        let def = &dv.dataset.def;
        let Some(Role::Data(i)) = dv.role(&a.name) else {
            return Err(ArchiveError::Internal(format!("{} is not a data variable", a.name)).into());
        };
        let var = &dv.vars[*i].def;
        let tiles = self.tiles.get(&a.path).ok_or_else(|| ArchiveError::Internal(format!("no plan for {}", a.path)))?;
        let n = a.dims.len();
        let slab = |r: view::Range| crate::model::Hyperslab { start: r.start, stride: r.stride, count: r.count };
        let sel = crate::plan::Selection {
            time: var.has_time.then(|| slab(a.dims[0].range)),
            level: var.has_level.then(|| slab(a.dims[usize::from(var.has_time)].range)),
            y: slab(a.dims[n - 2].range),
            x: slab(a.dims[n - 1].range),
        };
        let fill = var.fill_value();
        let mut buffer: Option<TypedArray> = None;
        for b in crate::plan::bands(&sel, (def.grid.ny(), def.grid.nx()), def.tile, var.dtype.size(), BAND_BYTES) {
            if b.first_row + b.rows <= first_row {
                continue;
            }
            // Reuse the band's memory; only the last band of a tile row has
            // another shape.
            if buffer.as_ref().is_none_or(|x: &TypedArray| x.shape() != [b.rows, b.cols]) {
                buffer = Some(mosaic::fill_band(var.dtype, b.rows, b.cols, fill));
            } else if let Some(x) = buffer.as_mut() {
                mosaic::refill(x, fill);
            }
            let band = buffer.as_mut().expect("set above");
            let key_t = b.time.map(|k| dv.times[k].0);
            for r in &b.reads {
                let Some(tile) = tiles.get(&(key_t, r.tile.tx as u32, r.tile.ty as u32)) else { continue };
                let block = reader
                    .read(tile, var, b.level.map(|z| z..z + 1), r.rows.src.clone(), r.cols.src.clone())
                    .map_err(|e| tile_error(def.name.as_str(), tile, e))?;
                mosaic::place(band, &squeeze_level(block), &r.rows, &r.cols, b.slab_row);
            }
            if !f(b.first_row, band)? {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// A tile that failed, named by its dataset and pool-relative path.
fn tile_error(dataset: &str, tile: &TileRef, error: TileError) -> ArchiveError {
    ArchiveError::Tile { dataset: dataset.to_string(), path: tile.rel.clone(), error }
}

/// `[1, rows, cols]` -> `[rows, cols]`.
fn squeeze_level(a: TypedArray) -> TypedArray {
    let n = a.shape().len();
    a.drop_leading(n.saturating_sub(2))
}


/// Why production of a response stopped early.
#[derive(Debug)]
pub enum Stop {
    /// The client went away.
    Closed,
    Failed(ArchiveError),
}

impl From<ArchiveError> for Stop {
    fn from(e: ArchiveError) -> Self {
        Stop::Failed(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinate_search_on_irregular_axes() {
        // Gaussian-like latitudes, north to south.
        let lat = [88.57, 86.72, 84.86, 60.0, 10.0, -3.0];
        assert_eq!(search(&lat, 86.72, 0.0, BoundRole::Single).ok(), Some(1));
        assert_eq!(search(&lat, 70.0, 0.0, BoundRole::Single).ok(), Some(3));
        assert_eq!(search(&lat, 34.0, 0.0, BoundRole::Single).ok(), Some(4), "nearest, not first");
        assert_eq!(search(&lat, 36.0, 0.0, BoundRole::Single).ok(), Some(3));
        assert_eq!(search(&lat, 85.0, 0.0, BoundRole::Start).ok(), Some(2), "first at or after, southwards");
        assert_eq!(search(&lat, 85.0, 0.0, BoundRole::Stop).ok(), Some(1));
        assert_eq!(search(&lat, 10.0, 0.0, BoundRole::Stop).ok(), Some(4));
        assert!(matches!(search(&lat, 95.0, 0.0, BoundRole::Single), Err(Miss::Outside)));
        assert!(matches!(search(&lat, -10.0, 0.0, BoundRole::Single), Err(Miss::Outside)));
        assert_eq!(search(&lat, -9.0, 0.0, BoundRole::Single).ok(), Some(5), "within half the end cell");
        // Stretched, ascending; a bound between two cells.
        let z = [0.0, 1.0, 3.0, 7.0, 15.0];
        assert_eq!(search(&z, 2.0, 0.0, BoundRole::Start).ok(), Some(2));
        assert_eq!(search(&z, 2.0, 0.0, BoundRole::Stop).ok(), Some(1));
        assert!(matches!(search(&z, 15.5, 0.0, BoundRole::Start), Err(Miss::Before)));
        // A value printed from a float32 coordinate still selects it.
        let lon = [0.1f32 as f64, 0.2f32 as f64, 0.3f32 as f64];
        assert_eq!(search(&lon, 0.2, 1e-4, BoundRole::Start).ok(), Some(1));
        assert_eq!(search(&lon, 0.2, 1e-4, BoundRole::Stop).ok(), Some(1));
        // Exact float64 cell centres select themselves.
        let c: Vec<f64> = (0..600).map(|i| -180.0 + (i as f64 + 0.5) / 120.0).collect();
        for (i, &v) in c.iter().enumerate() {
            assert_eq!(search(&c, v, 0.0, BoundRole::Single).ok(), Some(i));
        }
    }

    #[test]
    fn selections_of_auxiliary_arrays() {
        // lat_bnds(lat = 3, bnds = 2)
        let v = [0.0, 1.0, 1.0, 2.0, 2.0, 3.0];
        let r = |start, stride, stop, len| view::Range::new(start, stride, stop, len).unwrap();
        assert_eq!(select(&v, &[3, 2], &[r(1, 1, 2, 3), r(0, 1, 1, 2)]).unwrap(), [1.0, 2.0, 2.0, 3.0]);
        assert_eq!(select(&v, &[3, 2], &[r(0, 2, 2, 3), r(1, 1, 1, 2)]).unwrap(), [1.0, 3.0]);
        assert_eq!(select(&[2.0], &[], &[]).unwrap(), [2.0], "a scalar");
        assert!(select(&v, &[3, 2], &[r(0, 1, 2, 3)]).is_none(), "a range per dimension");
    }
}
