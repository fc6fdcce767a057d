//! A dataset as DAP sees it: its names and their roles, its DAP2
//! structure, DDS and DAS, built once per catalogue version, and the
//! auxiliary values it serves from the catalogue.

use super::ArchiveError;
use super::lookup::Lookup;
use crate::catalogue::{Dataset, TileQuery, TimeSlice, Variable};
use crate::store::port::TileRef;
use crate::dap::das::{Das, VarAttrs};
use crate::dap::view::{self, Array, Subset, View, ViewVar};
use crate::model::{AuxVar, Attribute, Axis, DataType, Timestamp, TypedArray};
use crate::with_data_type;
use std::collections::HashMap;
use std::sync::Arc;

/// What a DAP name stands for.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Role {
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
    /// The overview levels every slice has (none when the dataset keeps
    /// none).
    pub overview_levels: Vec<u32>,
    /// Tile lookups already answered for this version of the dataset.
    pub(super) tile_index: TileIndex,
}

/// The tiles one lookup found, ready for reading.
pub(super) type Tiles = Arc<Vec<Arc<TileRef>>>;

/// Tile lookups of one dataset version, kept in memory: tiles change only
/// with the dataset's version, and a new version is a new
/// [`ServedDataset`], so nothing here is ever stale. Bounded by the tile
/// rows held ([`TileIndex::MAX_ROWS`]); when full, it starts afresh.
#[derive(Default)]
pub(super) struct TileIndex {
    found: std::sync::Mutex<(HashMap<TileQuery, Tiles>, usize)>,
}

impl TileIndex {
    /// About 200 bytes each: 20 MB per served dataset at most.
    const MAX_ROWS: usize = 100_000;

    pub(super) fn get(&self, q: &TileQuery) -> Option<Tiles> {
        self.found.lock().unwrap_or_else(|p| p.into_inner()).0.get(q).cloned()
    }

    pub(super) fn keep(&self, q: TileQuery, rows: Tiles) {
        let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        if rows.len() > Self::MAX_ROWS {
            return;
        }
        if found.1 + rows.len() > Self::MAX_ROWS {
            *found = (HashMap::new(), 0);
        }
        found.1 += rows.len();
        found.0.insert(q, rows);
    }
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
        Ok(ServedDataset {
            overview_levels: dataset.def.overview_levels(),
            dds: crate::dap::dds::view_dds(&structure),
            das: das_text,
            structure,
            dataset,
            vars,
            times,
            time_values,
            slices,
            roles,
            tile_index: TileIndex::default(),
        })
    }

    pub(super) fn role(&self, name: &str) -> Option<&Role> {
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
    pub(super) fn coordinate(&self, dim: &str) -> Option<(Vec<f64>, bool)> {
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


#[cfg(test)]
mod tests {
    use super::*;

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
