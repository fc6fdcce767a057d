//! What a dataset looks like to DAP2, and constraint resolution.
//!
//! A [`View`] lists the dataset's variables in declaration order:
//! top-level coordinate (and other plain) arrays first, then Grids whose
//! maps repeat those coordinates (dap2.md §0 rules 1–2, §2.3). It is built
//! with [`View::new`], which checks everything the DDS grammar and the
//! clients require, so the rest of the code trusts it:
//!
//! * names match `[A-Za-z_][A-Za-z0-9_]*` (§2.2) and top-level names are unique;
//! * dimension lengths are in `1..=2³¹−1` (no zero-length dims, §4.3);
//! * a Grid's array has the Grid's name and rank ≥ 1; map *i* is 1-D, named
//!   like array dimension *i*, with that dimension's name and length.
//!
//! [`resolve`] applies a parsed [`Constraint`] to a view and yields the
//! [`Subset`] that is sent, following libdap (dap2.md §2.4, §5.2, §5.3):
//!
//! * no projection ⇒ every variable, whole;
//! * `grid[...]…` ⇒ a Grid: slab *i* applies to array dimension *i* and map *i*;
//! * `grid.member[...]` ⇒ a Structure holding the projected members in Grid
//!   order, unless the array and every map are projected with matching
//!   ranges, which gives a Grid again;
//! * a bare name that is not top-level but is a Grid map (or array) means
//!   the first such member in declaration order (libdap's leaf search);
//! * fewer slabs than dimensions: the rest are whole; more is an error;
//! * the same array projected twice must have identical ranges;
//! * output is in dataset declaration order, whatever the CE order;
//! * selections (`&…`) and function calls are refused (400-class);
//! * each sent array must have fewer than 2³¹ elements (libdap's limit).
//!
//! Coordinate-value bounds (`[(2010-01-15):(2010-02-01)]`) are mapped to
//! indices by a caller-supplied [`CoordLookup`] ([`resolve_with`]).

use std::fmt;

use super::ce::{
    self, Bound, BoundValue, CeError, CeErrorKind, Constraint, ProjItem, Slab, VarPath,
};
use super::types::DapType;

/// Largest dimension length and array element count DAP2 can carry.
pub const MAX_ELEMENTS: u64 = i32::MAX as u64;

/// A named dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dim {
    /// Dimension name (the coordinate variable's name if there is one).
    pub name: String,
    /// Length, ≥ 1.
    pub len: usize,
}

/// An array (rank ≥ 0; rank 0 is a scalar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Array {
    /// Variable name.
    pub name: String,
    /// DAP2 element type.
    pub dtype: DapType,
    /// Dimensions, slowest-varying first.
    pub dims: Vec<Dim>,
}

impl Array {
    /// Builds an array from `(dimension name, length)` pairs.
    pub fn new<N: Into<String>>(
        name: impl Into<String>,
        dtype: DapType,
        dims: impl IntoIterator<Item = (N, usize)>,
    ) -> Array {
        Array {
            name: name.into(),
            dtype,
            dims: dims
                .into_iter()
                .map(|(n, len)| Dim {
                    name: n.into(),
                    len,
                })
                .collect(),
        }
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }
}

/// A DAP2 Grid: an array plus one 1-D map per dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DapGrid {
    array: Array,
    maps: Vec<Array>,
}

impl DapGrid {
    /// Builds a Grid named like `array`; checks the Grid rules (module docs).
    pub fn new(array: Array, maps: Vec<Array>) -> Result<DapGrid, ViewError> {
        let g = &array.name;
        let bad = |reason: String| {
            Err(ViewError::BadGrid {
                grid: g.clone(),
                reason,
            })
        };
        if array.dims.is_empty() {
            return bad("the array is a scalar".into());
        }
        if maps.len() != array.dims.len() {
            return bad(format!(
                "{} maps for {} dimensions",
                maps.len(),
                array.dims.len()
            ));
        }
        for (i, (map, dim)) in maps.iter().zip(&array.dims).enumerate() {
            if map.dims.len() != 1 {
                return bad(format!("map {i} `{}` is not 1-D", map.name));
            }
            if map.name != dim.name || map.dims[0] != *dim {
                return bad(format!(
                    "map {i} `{}[{} = {}]` does not match array dimension `{} = {}`",
                    map.name, map.dims[0].name, map.dims[0].len, dim.name, dim.len
                ));
            }
            if map.name == array.name {
                return bad(format!("map {i} has the array's name"));
            }
            if map.dtype.is_string() {
                return bad(format!("map {i} `{}` is not numeric", map.name));
            }
        }
        Ok(DapGrid { array, maps })
    }

    /// The Grid's name (= its array's name).
    pub fn name(&self) -> &str {
        &self.array.name
    }

    /// The gridded array.
    pub fn array(&self) -> &Array {
        &self.array
    }

    /// The maps, one per array dimension.
    pub fn maps(&self) -> &[Array] {
        &self.maps
    }

    /// Member `i`: 0 is the array, `1..=rank` the maps.
    fn member(&self, i: usize) -> &Array {
        if i == 0 {
            &self.array
        } else {
            &self.maps[i - 1]
        }
    }
}

/// A top-level variable of a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewVar {
    /// A plain array (coordinates, or data without coordinates).
    Array(Array),
    /// A Grid.
    Grid(DapGrid),
}

impl ViewVar {
    /// The top-level name.
    pub fn name(&self) -> &str {
        match self {
            ViewVar::Array(a) => &a.name,
            ViewVar::Grid(g) => g.name(),
        }
    }
}

/// A dataset as DAP2 sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    name: String,
    vars: Vec<ViewVar>,
}

/// Why a [`View`] or [`DapGrid`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// A name outside `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("name `{0}` is not of the form [A-Za-z_][A-Za-z0-9_]*")]
    BadName(String),
    /// Two top-level variables with one name.
    #[error("two variables are named `{0}`")]
    Duplicate(String),
    /// A dimension of length 0 or above 2³¹−1.
    #[error("dimension `{dim}` of `{var}` has length {len}; DAP2 needs 1..=2147483647")]
    BadLength {
        /// Variable.
        var: String,
        /// Dimension.
        dim: String,
        /// Offending length.
        len: usize,
    },
    /// A Grid that breaks the Grid rules.
    #[error("grid `{grid}` is malformed: {reason}")]
    BadGrid {
        /// Grid name.
        grid: String,
        /// What is wrong.
        reason: String,
    },
}

fn check_name(name: &str) -> Result<(), ViewError> {
    if crate::model::is_safe_name(name) { Ok(()) } else { Err(ViewError::BadName(name.to_owned())) }
}

fn check_array(a: &Array) -> Result<(), ViewError> {
    check_name(&a.name)?;
    for d in &a.dims {
        check_name(&d.name)?;
        if d.len == 0 || d.len as u64 > MAX_ELEMENTS {
            return Err(ViewError::BadLength {
                var: a.name.clone(),
                dim: d.name.clone(),
                len: d.len,
            });
        }
    }
    Ok(())
}

impl View {
    /// Builds a view; checks names, lengths and Grids (module docs).
    pub fn new(name: impl Into<String>, vars: Vec<ViewVar>) -> Result<View, ViewError> {
        let name = name.into();
        check_name(&name)?;
        let mut seen = std::collections::HashSet::new();
        for v in &vars {
            if !seen.insert(v.name()) {
                return Err(ViewError::Duplicate(v.name().to_owned()));
            }
            match v {
                ViewVar::Array(a) => check_array(a)?,
                ViewVar::Grid(g) => {
                    check_array(&g.array)?;
                    g.maps.iter().try_for_each(check_array)?;
                }
            }
        }
        Ok(View { name, vars })
    }

    /// The dataset name, used after the closing brace of every DDS.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The variables in declaration order.
    pub fn vars(&self) -> &[ViewVar] {
        &self.vars
    }

    fn top(&self, name: &str) -> Option<usize> {
        self.vars.iter().position(|v| v.name() == name)
    }
}

/// A resolved index range of one dimension: `start`, `start + stride`, …,
/// `count` indices in all (count ≥ 1, all inside the dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Range {
    /// First index.
    pub start: usize,
    /// Step, ≥ 1.
    pub stride: usize,
    /// Number of indices, ≥ 1.
    pub count: usize,
}

impl Range {
    /// The whole dimension of length `len`.
    pub fn whole(len: usize) -> Range {
        Range {
            start: 0,
            stride: 1,
            count: len,
        }
    }

    /// Resolves `[start:stride:stop]` (stop inclusive) against a dimension
    /// of length `len`; `None` unless `start ≤ stop < len` and `stride ≥ 1`.
    pub fn new(start: usize, stride: usize, stop: usize, len: usize) -> Option<Range> {
        (stride >= 1 && start <= stop && stop < len).then(|| Range {
            start,
            stride,
            count: (stop - start) / stride + 1,
        })
    }

    /// The last index included.
    pub fn last(&self) -> usize {
        self.start + (self.count - 1) * self.stride
    }

    /// The indices, in order.
    pub fn indices(&self) -> impl Iterator<Item = usize> + use<> {
        let Range {
            start,
            stride,
            count,
        } = *self;
        (0..count).map(move |k| start + k * stride)
    }
}

impl fmt::Display for Range {
    /// The range as a CE slab, `[i]`, `[a:b]` or `[a:s:b]` (netCDF-C style).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.count, self.stride) {
            (1, _) => write!(f, "[{}]", self.start),
            (_, 1) => write!(f, "[{}:{}]", self.start, self.last()),
            _ => write!(f, "[{}:{}:{}]", self.start, self.stride, self.last()),
        }
    }
}

/// One dimension of a sent array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDim {
    /// Dimension name (unchanged by the constraint).
    pub name: String,
    /// The dimension's full length in the dataset.
    pub len: usize,
    /// The selected indices; `range.count` is the length shown in the DDS.
    pub range: Range,
}

/// An array as sent: a top-level array, a Grid's array or one of its maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentArray {
    /// `name` for top-level arrays, `grid.member` for Grid members.
    pub path: String,
    /// The array's own name.
    pub name: String,
    /// Element type.
    pub dtype: DapType,
    /// Dimensions with their selections (empty for a scalar).
    pub dims: Vec<SentDim>,
    count: u32,
}

impl SentArray {
    fn new(path: String, array: &Array, ranges: &[Range]) -> SentArray {
        let dims: Vec<SentDim> = array
            .dims
            .iter()
            .zip(ranges)
            .map(|(d, r)| SentDim {
                name: d.name.clone(),
                len: d.len,
                range: *r,
            })
            .collect();
        // `Resolver::ranges` refused anything above MAX_ELEMENTS.
        let count = u32::try_from(ranges.iter().map(|r| r.count as u64).product::<u64>())
            .unwrap_or(u32::MAX);
        SentArray {
            path,
            name: array.name.clone(),
            dtype: array.dtype,
            dims,
            count,
        }
    }

    /// Number of elements sent (< 2³¹; 1 for a scalar).
    pub fn element_count(&self) -> u32 {
        self.count
    }

    /// True for rank-0 variables (no count words on the wire).
    pub fn is_scalar(&self) -> bool {
        self.dims.is_empty()
    }

    /// Constrained shape (the lengths shown in the DDS).
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().map(|d| d.range.count).collect()
    }

    /// The selected ranges, one per dimension.
    pub fn ranges(&self) -> Vec<Range> {
        self.dims.iter().map(|d| d.range).collect()
    }

    /// Exact XDR bytes of this array in a `.dods` body; `None` for
    /// String/Url (length depends on the data).
    pub fn xdr_len(&self) -> Option<u64> {
        if self.is_scalar() {
            self.dtype.scalar_wire_size().map(|n| n as u64)
        } else {
            super::xdr::array_len(self.dtype, self.count)
        }
    }
}

/// A top-level variable as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentVar {
    /// A plain array.
    Array(SentArray),
    /// A whole Grid: array then maps, each sliced.
    Grid {
        /// Grid name.
        name: String,
        /// The array.
        array: SentArray,
        /// The maps, in order.
        maps: Vec<SentArray>,
    },
    /// Some Grid members, wrapped as `Structure { … } name;`.
    Structure {
        /// Grid name.
        name: String,
        /// Projected members in Grid order (array first, then maps).
        members: Vec<SentArray>,
    },
}

impl SentVar {
    /// The top-level name.
    pub fn name(&self) -> &str {
        match self {
            SentVar::Array(a) => &a.name,
            SentVar::Grid { name, .. } | SentVar::Structure { name, .. } => name,
        }
    }

    /// The arrays in wire order.
    pub fn arrays(&self) -> Vec<&SentArray> {
        match self {
            SentVar::Array(a) => vec![a],
            SentVar::Grid { array, maps, .. } => std::iter::once(array).chain(maps).collect(),
            SentVar::Structure { members, .. } => members.iter().collect(),
        }
    }
}

/// What a constrained request sends, in dataset declaration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subset {
    /// Dataset name.
    pub dataset: String,
    /// Top-level variables sent.
    pub vars: Vec<SentVar>,
}

impl Subset {
    /// Every sent array in wire order (the order to encode data in).
    pub fn arrays(&self) -> Vec<&SentArray> {
        self.vars.iter().flat_map(SentVar::arrays).collect()
    }

    /// Exact length of the XDR body after `Data:\n`; `None` if a String or
    /// Url array is sent.
    pub fn dods_data_len(&self) -> Option<u64> {
        self.arrays().iter().map(|a| a.xdr_len()).sum()
    }
}

/// Which end of a slab a coordinate value stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundRole {
    /// `[(v):…]`: the first index to include.
    Start,
    /// `[…:(v)]`: the last index to include.
    Stop,
    /// `[(v)]`: a single index.
    Single,
}

/// A coordinate value to map to an index.
#[derive(Debug, Clone, Copy)]
pub struct ValueQuery<'a> {
    /// The projected variable (`sst`, `sst.sst`, `sst.lat`, `lat`).
    pub var: &'a str,
    /// Which dimension of it (0-based).
    pub dim_index: usize,
    /// That dimension (its name normally names the coordinate variable).
    pub dim: &'a Dim,
    /// Start, stop or single index.
    pub role: BoundRole,
    /// The value as written.
    pub value: &'a BoundValue,
}

/// Maps coordinate values to indices; implemented by the archive (which
/// knows coordinate values). A plain closure works too.
pub trait CoordLookup {
    /// The index for `q`, or a one-line reason (shown to the user).
    fn index_of(&self, q: &ValueQuery<'_>) -> Result<usize, String>;
}

impl<F> CoordLookup for F
where
    F: Fn(&ValueQuery<'_>) -> Result<usize, String>,
{
    fn index_of(&self, q: &ValueQuery<'_>) -> Result<usize, String> {
        self(q)
    }
}

/// A [`CoordLookup`] that refuses every coordinate value.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCoordLookup;

impl CoordLookup for NoCoordLookup {
    fn index_of(&self, _: &ValueQuery<'_>) -> Result<usize, String> {
        Err("coordinate-value hyperslabs are not supported here; use indices".to_owned())
    }
}

/// Resolves `ce` against `view` with index-only slabs.
pub fn resolve(view: &View, ce: &Constraint) -> Result<Subset, CeError> {
    resolve_with(view, ce, &NoCoordLookup)
}

/// Everything in `view`, whole (the empty CE).
pub fn whole(view: &View) -> Result<Subset, CeError> {
    let ce = Constraint {
        expr: String::new(),
        projections: Vec::new(),
        selections: Vec::new(),
    };
    resolve(view, &ce)
}

/// Resolves `ce` against `view`, mapping coordinate values with `lookup`.
pub fn resolve_with(
    view: &View,
    ce: &Constraint,
    lookup: &dyn CoordLookup,
) -> Result<Subset, CeError> {
    Resolver { view, ce, lookup }.run()
}

/// Requested ranges of one array and where in the CE they came from.
#[derive(Clone)]
struct Req {
    ranges: Vec<Range>,
    at: usize,
}

struct Resolver<'a> {
    view: &'a View,
    ce: &'a Constraint,
    lookup: &'a dyn CoordLookup,
}

/// Per top-level variable: the requested members (one slot for an array,
/// 1 + rank for a Grid: array then maps).
type Picks = Vec<Option<Vec<Option<Req>>>>;

impl Resolver<'_> {
    fn err(&self, kind: CeErrorKind, at: usize, what: String, hint: Option<String>) -> CeError {
        CeError::new(kind, &self.ce.expr, Some(at), what, hint)
    }

    fn run(&self) -> Result<Subset, CeError> {
        if let Some(sel) = self.ce.selections.first() {
            return Err(self.err(
                CeErrorKind::Unsupported,
                sel.span.start,
                "selections are not supported on gridded data".into(),
                Some("remove the '&…' part and subset with hyperslabs [start:stride:stop]".into()),
            ));
        }
        let mut picks: Picks = vec![None; self.view.vars.len()];
        if self.ce.projections.is_empty() {
            for (i, v) in self.view.vars.iter().enumerate() {
                let whole = |m: &Array| {
                    Some(Req {
                        ranges: m.dims.iter().map(|d| Range::whole(d.len)).collect(),
                        at: 0,
                    })
                };
                picks[i] = Some(match v {
                    ViewVar::Array(a) => vec![whole(a)],
                    ViewVar::Grid(g) => (0..=g.maps.len()).map(|k| whole(g.member(k))).collect(),
                });
            }
        }
        for item in &self.ce.projections {
            match item {
                ProjItem::Call(call) => {
                    return Err(self.err(
                        CeErrorKind::Unsupported,
                        call.span.start,
                        format!(
                            "function {} is not supported by this server",
                            ce::quote(&call.name)
                        ),
                        Some(
                            "request variables by name with hyperslabs [start:stride:stop]".into(),
                        ),
                    ));
                }
                ProjItem::Path(p) => self.project(p, &mut picks)?,
            }
        }
        let mut vars = Vec::new();
        for (v, pick) in self.view.vars.iter().zip(picks) {
            let Some(slots) = pick else { continue };
            match v {
                ViewVar::Array(a) => {
                    let req = slots[0].as_ref().expect("array slot is set");
                    vars.push(SentVar::Array(SentArray::new(
                        a.name.clone(),
                        a,
                        &req.ranges,
                    )));
                }
                ViewVar::Grid(g) => vars.push(grid_result(g, &slots)),
            }
        }
        Ok(Subset {
            dataset: self.view.name.clone(),
            vars,
        })
    }

    fn project(&self, p: &VarPath, picks: &mut Picks) -> Result<(), CeError> {
        let first = &p.components[0];
        if p.components.len() > 2 {
            return Err(self.err(
                CeErrorKind::UnknownVariable,
                p.components[2].span.start,
                format!(
                    "no variable {} in this dataset",
                    ce::quote(&p.dotted_name())
                ),
                Some("paths have at most two parts, grid.member".into()),
            ));
        }
        if p.components.len() == 1 {
            if let Some(i) = self.view.top(&first.name) {
                match &self.view.vars[i] {
                    ViewVar::Array(a) => {
                        let req = self.ranges(a, &a.name, &first.slabs, p.span.start)?;
                        return self.put(picks, i, 1, 0, req, &a.name);
                    }
                    ViewVar::Grid(g) => {
                        let req = self.ranges(&g.array, g.name(), &first.slabs, p.span.start)?;
                        let path = format!("{}.{}", g.name(), g.name());
                        self.put(picks, i, 1 + g.maps.len(), 0, req.clone(), &path)?;
                        for (k, map) in g.maps.iter().enumerate() {
                            let r = Req {
                                ranges: vec![req.ranges[k]],
                                at: req.at,
                            };
                            self.put(
                                picks,
                                i,
                                1 + g.maps.len(),
                                k + 1,
                                r,
                                &format!("{}.{}", g.name(), map.name),
                            )?;
                        }
                        return Ok(());
                    }
                }
            }
            // libdap's shorthand: the first Grid member with this name.
            for (i, v) in self.view.vars.iter().enumerate() {
                if let ViewVar::Grid(g) = v
                    && let Some(k) = (0..=g.maps.len()).find(|&k| g.member(k).name == first.name)
                {
                    return self.member(picks, i, g, k, &first.slabs, p.span.start);
                }
            }
            return Err(self.unknown(&first.name, p.span.start));
        }
        let member = &p.components[1];
        let Some(i) = self.view.top(&first.name) else {
            return Err(self.unknown(&p.dotted_name(), p.span.start));
        };
        let g = match &self.view.vars[i] {
            ViewVar::Grid(g) => g,
            ViewVar::Array(a) => {
                return Err(self.err(
                    CeErrorKind::UnknownVariable,
                    member.span.start,
                    format!(
                        "{} is an array, not a Grid, and has no member {}",
                        ce::quote(&a.name),
                        ce::quote(&member.name)
                    ),
                    Some(format!("project it as {}[start:stride:stop]", a.name)),
                ));
            }
        };
        if let Some(s) = first.slabs.first() {
            return Err(self.err(
                CeErrorKind::Syntax,
                s.span.start,
                format!(
                    "hyperslab on the Grid {} in a member path",
                    ce::quote(g.name())
                ),
                Some(format!(
                    "put the hyperslab on the member, e.g. {}.{}[0]",
                    g.name(),
                    member.name
                )),
            ));
        }
        let Some(k) = (0..=g.maps.len()).find(|&k| g.member(k).name == member.name) else {
            let names: Vec<&str> = (0..=g.maps.len())
                .map(|k| g.member(k).name.as_str())
                .collect();
            return Err(self.err(
                CeErrorKind::UnknownVariable,
                member.span.start,
                format!(
                    "Grid {} has no member {}",
                    ce::quote(g.name()),
                    ce::quote(&member.name)
                ),
                Some(format!("its members are {}", names.join(", "))),
            ));
        };
        self.member(picks, i, g, k, &member.slabs, p.span.start)
    }

    fn member(
        &self,
        picks: &mut Picks,
        i: usize,
        g: &DapGrid,
        k: usize,
        slabs: &[Slab],
        at: usize,
    ) -> Result<(), CeError> {
        let m = g.member(k);
        let path = format!("{}.{}", g.name(), m.name);
        let req = self.ranges(m, &path, slabs, at)?;
        self.put(picks, i, 1 + g.maps.len(), k, req, &path)
    }

    fn put(
        &self,
        picks: &mut Picks,
        i: usize,
        slots: usize,
        k: usize,
        req: Req,
        path: &str,
    ) -> Result<(), CeError> {
        let entry = picks[i].get_or_insert_with(|| vec![None; slots]);
        match &entry[k] {
            Some(old) if old.ranges != req.ranges => Err(self.err(
                CeErrorKind::BadIndex,
                req.at,
                format!(
                    "{} is projected twice with different hyperslabs ({} at column {}, {} here)",
                    ce::quote(path),
                    show_ranges(&old.ranges),
                    old.at + 1,
                    show_ranges(&req.ranges),
                ),
                Some("project each variable once".into()),
            )),
            Some(_) => Ok(()),
            None => {
                entry[k] = Some(req);
                Ok(())
            }
        }
    }

    fn unknown(&self, name: &str, at: usize) -> CeError {
        let mut all: Vec<String> = Vec::new();
        for v in &self.view.vars {
            all.push(v.name().to_owned());
            if let ViewVar::Grid(g) = v {
                for k in 0..=g.maps.len() {
                    all.push(format!("{}.{}", g.name(), g.member(k).name));
                }
            }
        }
        let near: Vec<&str> = all
            .iter()
            .filter(|c| edit_distance(c, name) <= (name.chars().count() / 3).max(1))
            .map(String::as_str)
            .take(3)
            .collect();
        let hint = if !near.is_empty() {
            Some(format!("did you mean {}?", near.join(" or ")))
        } else if self.view.vars.len() <= 12 {
            let top: Vec<&str> = self.view.vars.iter().map(ViewVar::name).collect();
            Some(format!("variables are {}", top.join(", ")))
        } else {
            None
        };
        self.err(
            CeErrorKind::UnknownVariable,
            at,
            format!("no variable {} in this dataset", ce::quote(name)),
            hint,
        )
    }

    /// Resolves the slabs given for array `a` (shown as `path`).
    fn ranges(&self, a: &Array, path: &str, slabs: &[Slab], at: usize) -> Result<Req, CeError> {
        if slabs.len() > a.dims.len() {
            let extra = &slabs[a.dims.len()];
            let what = if a.dims.is_empty() {
                format!("{path} is a scalar and takes no hyperslab")
            } else {
                format!(
                    "{path} has {} dimensions but {} hyperslabs were given",
                    a.dims.len(),
                    slabs.len()
                )
            };
            return Err(self.err(
                CeErrorKind::BadIndex,
                extra.span.start,
                what,
                Some("give at most one [start:stride:stop] per dimension".into()),
            ));
        }
        let mut ranges = Vec::with_capacity(a.dims.len());
        for (d, dim) in a.dims.iter().enumerate() {
            ranges.push(match slabs.get(d) {
                None => Range::whole(dim.len),
                Some(s) => self.range(path, d, dim, s)?,
            });
        }
        let total = ranges
            .iter()
            .try_fold(1u64, |acc, r| acc.checked_mul(r.count as u64));
        if total.is_none_or(|n| n > MAX_ELEMENTS) {
            let n = total.map_or_else(|| "too many".to_owned(), |n| n.to_string());
            return Err(self.err(
                CeErrorKind::TooLarge,
                at,
                format!("{path} would send {n} elements; DAP2 arrays hold at most {MAX_ELEMENTS}"),
                Some("request a smaller hyperslab".into()),
            ));
        }
        Ok(Req { ranges, at })
    }

    fn range(&self, path: &str, d: usize, dim: &Dim, s: &Slab) -> Result<Range, CeError> {
        let len = dim.len;
        let single = s.stop.is_none();
        let start_role = if single {
            BoundRole::Single
        } else {
            BoundRole::Start
        };
        let start = self.index(path, d, dim, &s.start, start_role)?;
        let stop = match &s.stop {
            None => start,
            Some(b) => self.index(path, d, dim, b, BoundRole::Stop)?,
        };
        let bad = |what: String, hint: String| {
            self.err(CeErrorKind::BadIndex, s.span.start, what, Some(hint))
        };
        let dim_desc = format!("dimension {} (size {len}) of variable {path}", dim.name);
        let valid = format!("indices of {} run from 0 to {}", dim.name, len - 1);
        if s.stride == Some(0) {
            return Err(bad(
                format!("stride 0 in the hyperslab {s} of {dim_desc}"),
                "the stride (middle number of [start:stride:stop]) must be at least 1".into(),
            ));
        }
        if start >= len {
            return Err(bad(format!("index {start} is outside {dim_desc}"), valid));
        }
        if stop >= len {
            return Err(bad(
                format!("stop index {stop} is outside {dim_desc}"),
                format!("{valid}; '*' means the last index"),
            ));
        }
        if stop < start {
            return Err(bad(
                format!("hyperslab {s} of {dim_desc} stops at {stop}, before its start {start}"),
                "hyperslabs are [start:stride:stop] with start <= stop".into(),
            ));
        }
        // Checked above: stride ≥ 1, start ≤ stop < len.
        let stride = usize::try_from(s.stride.unwrap_or(1)).unwrap_or(usize::MAX);
        Ok(Range::new(start, stride, stop, len).expect("validated range"))
    }

    /// The index of one bound; out-of-range values are reported by the caller.
    fn index(
        &self,
        path: &str,
        d: usize,
        dim: &Dim,
        b: &Bound,
        role: BoundRole,
    ) -> Result<usize, CeError> {
        match b {
            // Saturate: anything ≥ usize::MAX is out of range anyway.
            Bound::Index(i) => Ok(usize::try_from(*i).unwrap_or(usize::MAX)),
            Bound::Last => Ok(dim.len - 1),
            Bound::Value(v) => {
                let q = ValueQuery {
                    var: path,
                    dim_index: d,
                    dim,
                    role,
                    value: v,
                };
                self.lookup.index_of(&q).map_err(|reason| {
                    self.err(
                        CeErrorKind::BadValue,
                        v.span.start,
                        format!(
                            "cannot use coordinate value {} for dimension {} of variable {path}: {}",
                            ce::quote(&format!("({})", v.text)),
                            dim.name,
                            reason.replace(['\n', '\r'], " ")
                        ),
                        None,
                    )
                })
            }
        }
    }
}

fn show_ranges(r: &[Range]) -> String {
    r.iter().map(Range::to_string).collect()
}

/// The Grid result of a partially or fully projected Grid (libdap's
/// `projection_yields_grid`).
fn grid_result(g: &DapGrid, slots: &[Option<Req>]) -> SentVar {
    let name = g.name().to_owned();
    let member = |k: usize, req: &Req| {
        let m = g.member(k);
        SentArray::new(format!("{name}.{}", m.name), m, &req.ranges)
    };
    if let Some(arr) = &slots[0]
        && slots[1..]
            .iter()
            .enumerate()
            .all(|(k, s)| s.as_ref().is_some_and(|m| m.ranges[0] == arr.ranges[k]))
    {
        let maps = slots[1..]
            .iter()
            .enumerate()
            .map(|(k, s)| member(k + 1, s.as_ref().expect("checked")))
            .collect();
        return SentVar::Grid {
            array: member(0, arr),
            maps,
            name,
        };
    }
    let members = slots
        .iter()
        .enumerate()
        .filter_map(|(k, s)| s.as_ref().map(|r| member(k, r)))
        .collect();
    SentVar::Structure { name, members }
}

/// Levenshtein distance over chars (strsim, well kept and used by clap
/// for the same purpose).
fn edit_distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::ce::parse;
    use super::*;

    /// The dataset of dap2.md §2.3.
    pub(crate) fn example() -> View {
        let time = Array::new("time", DapType::Float64, [("time", 2)]);
        let lat = Array::new("lat", DapType::Float32, [("lat", 3)]);
        let lon = Array::new("lon", DapType::Float32, [("lon", 4)]);
        let sst = Array::new("sst", DapType::Int16, [("time", 2), ("lat", 3), ("lon", 4)]);
        let mask = Array::new("mask", DapType::Byte, [("lat", 3), ("lon", 4)]);
        View::new(
            "example",
            vec![
                ViewVar::Array(time.clone()),
                ViewVar::Array(lat.clone()),
                ViewVar::Array(lon.clone()),
                ViewVar::Grid(DapGrid::new(sst, vec![time, lat.clone(), lon.clone()]).unwrap()),
                ViewVar::Grid(DapGrid::new(mask, vec![lat, lon]).unwrap()),
            ],
        )
        .unwrap()
    }

    fn res(ce: &str) -> Result<Subset, CeError> {
        resolve(&example(), &parse(ce).unwrap())
    }

    /// A compact description: `name:kind(path shape,…)`.
    fn summary(s: &Subset) -> String {
        let arr = |a: &SentArray| {
            let r: Vec<String> = a.ranges().iter().map(Range::to_string).collect();
            format!("{}{}", a.path, r.concat())
        };
        let parts: Vec<String> = s
            .vars
            .iter()
            .map(|v| match v {
                SentVar::Array(a) => arr(a),
                SentVar::Grid { array, maps, .. } => {
                    let m: Vec<String> = maps.iter().map(arr).collect();
                    format!("Grid({} | {})", arr(array), m.join(" "))
                }
                SentVar::Structure { members, .. } => {
                    let m: Vec<String> = members.iter().map(arr).collect();
                    format!("Structure({})", m.join(" "))
                }
            })
            .collect();
        parts.join(", ")
    }

    #[test]
    fn resolution_table() {
        let cases = [
            (
                "",
                "time[0:1], lat[0:2], lon[0:3], Grid(sst.sst[0:1][0:2][0:3] | sst.time[0:1] sst.lat[0:2] sst.lon[0:3]), Grid(mask.mask[0:2][0:3] | mask.lat[0:2] mask.lon[0:3])",
            ),
            ("time,lat,lon", "time[0:1], lat[0:2], lon[0:3]"),
            ("lon,lat", "lat[0:2], lon[0:3]"),
            ("sst.sst[0][0:1][1:2]", "Structure(sst.sst[0][0:1][1:2])"),
            (
                "sst[1][0:2:2][3]",
                "Grid(sst.sst[1][0:2:2][3] | sst.time[1] sst.lat[0:2:2] sst.lon[3])",
            ),
            ("sst.time", "Structure(sst.time[0:1])"),
            // pydap always sends three-part slabs; netCDF-C whole reads have none.
            (
                "sst.sst[0:1:0][0:1:1][1:1:2]",
                "Structure(sst.sst[0][0:1][1:2])",
            ),
            ("sst.sst", "Structure(sst.sst[0:1][0:2][0:3])"),
            ("sst.lat", "Structure(sst.lat[0:2])"),
            (
                "time,sst",
                "time[0:1], Grid(sst.sst[0:1][0:2][0:3] | sst.time[0:1] sst.lat[0:2] sst.lon[0:3])",
            ),
            (
                "sst,time",
                "time[0:1], Grid(sst.sst[0:1][0:2][0:3] | sst.time[0:1] sst.lat[0:2] sst.lon[0:3])",
            ),
            (
                "lat,sst.sst[0][0][0]",
                "lat[0:2], Structure(sst.sst[0][0][0])",
            ),
            (
                "sst.lon[1:2],sst.lat[0:1],sst.time[0],sst.sst[0][0:1][1:2]",
                "Grid(sst.sst[0][0:1][1:2] | sst.time[0] sst.lat[0:1] sst.lon[1:2])",
            ),
            (
                "sst.sst[0][0:1][1:2],sst.time[0],sst.lat[0:1],sst.lon[1:3]",
                "Structure(sst.sst[0][0:1][1:2] sst.time[0] sst.lat[0:1] sst.lon[1:3])",
            ),
            (
                "sst.sst[0],sst.time[0]",
                "Structure(sst.sst[0][0:2][0:3] sst.time[0])",
            ),
            ("mask.mask[2][0:2]", "Structure(mask.mask[2][0:2])"),
            (
                "mask[2][0:2]",
                "Grid(mask.mask[2][0:2] | mask.lat[2] mask.lon[0:2])",
            ),
            // Padding, '*', strides that do not land on stop, duplicates.
            (
                "sst[1]",
                "Grid(sst.sst[1][0:2][0:3] | sst.time[1] sst.lat[0:2] sst.lon[0:3])",
            ),
            ("lon[1:*]", "lon[1:3]"),
            ("lon[*]", "lon[0:3]"),
            ("lon[0:2:*]", "lon[0:2:2]"),
            ("lon[0:3:3]", "lon[0:3:3]"),
            ("lon[1:5:3]", "lon[1]"),
            ("lat,lat", "lat[0:2]"),
            ("lat[0:1],lat[0:1:1]", "lat[0:1]"),
            (
                "sst,sst.lat",
                "Grid(sst.sst[0:1][0:2][0:3] | sst.time[0:1] sst.lat[0:2] sst.lon[0:3])",
            ),
            (
                "sst[0],sst.sst[0]",
                "Grid(sst.sst[0][0:2][0:3] | sst.time[0] sst.lat[0:2] sst.lon[0:3])",
            ),
            (
                "sst.sst,sst.time,sst.lat,sst.lon",
                "Grid(sst.sst[0:1][0:2][0:3] | sst.time[0:1] sst.lat[0:2] sst.lon[0:3])",
            ),
        ];
        for (ce, want) in cases {
            let s = res(ce).unwrap_or_else(|e| panic!("{ce}: {e}"));
            assert_eq!(summary(&s), want, "ce {ce}");
        }
    }

    #[test]
    fn shorthand_member_names() {
        // Without top-level coordinates, `lat` means the first Grid map named lat.
        let sst = Array::new("sst", DapType::Int16, [("lat", 3)]);
        let mask = Array::new("mask", DapType::Byte, [("lat", 3)]);
        let lat = Array::new("lat", DapType::Float32, [("lat", 3)]);
        let v = View::new(
            "x",
            vec![
                ViewVar::Grid(DapGrid::new(sst, vec![lat.clone()]).unwrap()),
                ViewVar::Grid(DapGrid::new(mask, vec![lat]).unwrap()),
            ],
        )
        .unwrap();
        let s = resolve(&v, &parse("lat[1:2]").unwrap()).unwrap();
        assert_eq!(summary(&s), "Structure(sst.lat[1:2])");
    }

    /// Snapshot table of resolution errors.
    #[test]
    fn resolution_errors() {
        use CeErrorKind::*;
        let cases: &[(&str, CeErrorKind, &str)] = &[
            (
                "sst.sst[0][5]",
                BadIndex,
                "index 5 is outside dimension lat (size 3) of variable sst.sst at column 11; indices of lat run from 0 to 2",
            ),
            (
                "lat[0:3]",
                BadIndex,
                "stop index 3 is outside dimension lat (size 3) of variable lat at column 4; indices of lat run from 0 to 2; '*' means the last index",
            ),
            (
                "lat[2:1]",
                BadIndex,
                "hyperslab [2:1] of dimension lat (size 3) of variable lat stops at 1, before its start 2 at column 4; hyperslabs are [start:stride:stop] with start <= stop",
            ),
            (
                "lat[0:0:2]",
                BadIndex,
                "stride 0 in the hyperslab [0:0:2] of dimension lat (size 3) of variable lat at column 4; the stride (middle number of [start:stride:stop]) must be at least 1",
            ),
            (
                "lat[18446744073709551615]",
                BadIndex,
                "index 18446744073709551615 is outside dimension lat (size 3) of variable lat at column 4; indices of lat run from 0 to 2",
            ),
            (
                "sst[0][0][0][0]",
                BadIndex,
                "sst has 3 dimensions but 4 hyperslabs were given at column 13; give at most one [start:stride:stop] per dimension",
            ),
            (
                "sstt",
                UnknownVariable,
                "no variable `sstt` in this dataset at column 1; did you mean sst?",
            ),
            (
                "foo",
                UnknownVariable,
                "no variable `foo` in this dataset at column 1; variables are time, lat, lon, sst, mask",
            ),
            (
                "sst.foo",
                UnknownVariable,
                "Grid `sst` has no member `foo` at column 5; its members are sst, time, lat, lon",
            ),
            (
                "sst.sst.sst",
                UnknownVariable,
                "no variable `sst.sst.sst` in this dataset at column 9; paths have at most two parts, grid.member",
            ),
            (
                "lat.x",
                UnknownVariable,
                "`lat` is an array, not a Grid, and has no member `x` at column 5; project it as lat[start:stride:stop]",
            ),
            (
                "foo.lat",
                UnknownVariable,
                "no variable `foo.lat` in this dataset at column 1; variables are time, lat, lon, sst, mask",
            ),
            (
                "sst[0].sst",
                Syntax,
                "hyperslab on the Grid `sst` in a member path at column 4; put the hyperslab on the member, e.g. sst.sst[0]",
            ),
            (
                "lat[0],lat[1]",
                BadIndex,
                "`lat` is projected twice with different hyperslabs ([0] at column 1, [1] here) at column 8; project each variable once",
            ),
            (
                "sst[0],sst.lat[1]",
                BadIndex,
                "`sst.lat` is projected twice with different hyperslabs ([0:2] at column 1, [1] here) at column 8; project each variable once",
            ),
            (
                "sst&lat>0",
                Unsupported,
                "selections are not supported on gridded data at column 4; remove the '&…' part and subset with hyperslabs [start:stride:stop]",
            ),
            (
                "&lat>0",
                Unsupported,
                "selections are not supported on gridded data at column 1; remove the '&…' part and subset with hyperslabs [start:stride:stop]",
            ),
            (
                "geogrid(sst,62,206,56,210)",
                Unsupported,
                "function `geogrid` is not supported by this server at column 1; request variables by name with hyperslabs [start:stride:stop]",
            ),
            (
                "lat[(10.0)]",
                BadValue,
                "cannot use coordinate value `(10.0)` for dimension lat of variable lat: coordinate-value hyperslabs are not supported here; use indices at column 5",
            ),
        ];
        for (ce, kind, want) in cases {
            let e = res(ce).expect_err(ce);
            assert_eq!(e.to_string(), *want, "ce {ce}");
            assert_eq!(e.kind(), *kind, "ce {ce}");
        }
    }

    #[test]
    fn too_large_and_scalars() {
        let big = Array::new("big", DapType::Byte, [("y", 65536), ("x", 65536)]);
        let crs = Array::new("crs", DapType::Int32, Vec::<(String, usize)>::new());
        let v = View::new("d", vec![ViewVar::Array(big), ViewVar::Array(crs)]).unwrap();
        let e = resolve(&v, &parse("big").unwrap()).unwrap_err();
        assert_eq!(e.kind(), CeErrorKind::TooLarge);
        assert_eq!(
            e.to_string(),
            "big would send 4294967296 elements; DAP2 arrays hold at most 2147483647 at column 1; request a smaller hyperslab"
        );
        let s = resolve(&v, &parse("big[0:32766][0:65535]").unwrap()).unwrap();
        assert_eq!(s.arrays()[0].element_count(), 2_147_418_112);
        let s = resolve(&v, &parse("big[0:32767][0:65534]").unwrap()).unwrap();
        assert_eq!(s.arrays()[0].element_count(), 2_147_450_880);
        let e = resolve(&v, &parse("big[0:32767][0:65535]").unwrap()).unwrap_err();
        assert_eq!(e.kind(), CeErrorKind::TooLarge);
        let s = resolve(&v, &parse("crs").unwrap()).unwrap();
        assert!(s.arrays()[0].is_scalar());
        assert_eq!(s.arrays()[0].element_count(), 1);
        assert_eq!(s.dods_data_len(), Some(4));
        let e = resolve(&v, &parse("crs[0]").unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "crs is a scalar and takes no hyperslab at column 4; give at most one [start:stride:stop] per dimension"
        );
    }

    #[test]
    fn coordinate_values_go_through_the_hook() {
        let v = example();
        // A fake archive: lat = [-10, 0, 10]; start → first ≥ value,
        // stop → last ≤ value, single → exact match.
        let lookup = |q: &ValueQuery<'_>| -> Result<usize, String> {
            if q.dim.name != "lat" {
                return Err(format!("no coordinates for {}", q.dim.name));
            }
            let x: f64 = q
                .value
                .text
                .parse()
                .map_err(|_| format!("`{}` is not a number", q.value.text))?;
            let lat = [-10.0, 0.0, 10.0];
            let found = match q.role {
                BoundRole::Start => lat.iter().position(|&c| c >= x),
                BoundRole::Stop => lat.iter().rposition(|&c| c <= x),
                BoundRole::Single => lat.iter().position(|&c| c == x),
            };
            found.ok_or_else(|| format!("{x} is outside -10..10"))
        };
        let seen = std::cell::RefCell::new(Vec::new());
        let recording = |q: &ValueQuery<'_>| {
            seen.borrow_mut().push(format!(
                "{} {} {:?} {}",
                q.var, q.dim_index, q.role, q.value.text
            ));
            lookup(q)
        };
        let s = resolve_with(
            &v,
            &parse("sst.sst[0][(-5):(10)][1],lat[(0)]").unwrap(),
            &recording,
        )
        .unwrap();
        assert_eq!(summary(&s), "lat[1], Structure(sst.sst[0][1:2][1])");
        assert_eq!(
            *seen.borrow(),
            ["sst.sst 1 Start -5", "sst.sst 1 Stop 10", "lat 0 Single 0"]
        );
        let s = resolve_with(&v, &parse("lat[(-10):2:(10)]").unwrap(), &lookup).unwrap();
        assert_eq!(summary(&s), "lat[0:2:2]");
        let e = resolve_with(&v, &parse("lat[(20)]").unwrap(), &lookup).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot use coordinate value `(20)` for dimension lat of variable lat: 20 is outside -10..10 at column 5"
        );
        assert_eq!(e.kind(), CeErrorKind::BadValue);
        let e = resolve_with(&v, &parse("sst[(2010-01-15)]").unwrap(), &lookup).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot use coordinate value `(2010-01-15)` for dimension time of variable sst: no coordinates for time at column 5"
        );
        // A lookup answering out of range is caught like an index.
        let wild = |_: &ValueQuery<'_>| Ok(7);
        let e = resolve_with(&v, &parse("lat[(1)]").unwrap(), &wild).unwrap_err();
        assert_eq!(e.kind(), CeErrorKind::BadIndex);
    }

    #[test]
    fn view_validation() {
        let a =
            |n: &str, dims: &[(&str, usize)]| Array::new(n, DapType::Float32, dims.iter().copied());
        assert_eq!(
            View::new("bad name", vec![]).unwrap_err().to_string(),
            "name `bad name` is not of the form [A-Za-z_][A-Za-z0-9_]*"
        );
        assert!(matches!(
            View::new("d", vec![ViewVar::Array(a("1x", &[("x", 1)]))]),
            Err(ViewError::BadName(_))
        ));
        assert!(matches!(
            View::new(
                "d",
                vec![
                    ViewVar::Array(a("x", &[("x", 1)])),
                    ViewVar::Array(a("x", &[("x", 1)]))
                ]
            ),
            Err(ViewError::Duplicate(_))
        ));
        assert!(matches!(
            View::new("d", vec![ViewVar::Array(a("x", &[("x", 0)]))]),
            Err(ViewError::BadLength { .. })
        ));
        assert!(matches!(
            DapGrid::new(a("g", &[("x", 2)]), vec![]),
            Err(ViewError::BadGrid { .. })
        ));
        assert!(matches!(
            DapGrid::new(a("g", &[("x", 2)]), vec![a("y", &[("x", 2)])]),
            Err(ViewError::BadGrid { .. })
        ));
        assert!(matches!(
            DapGrid::new(a("g", &[("x", 2)]), vec![a("x", &[("x", 3)])]),
            Err(ViewError::BadGrid { .. })
        ));
        assert!(matches!(
            DapGrid::new(a("g", &[]), vec![]),
            Err(ViewError::BadGrid { .. })
        ));
        assert!(DapGrid::new(a("g", &[("x", 2)]), vec![a("x", &[("x", 2)])]).is_ok());
    }

    #[test]
    fn range_arithmetic() {
        assert_eq!(
            Range::new(0, 2, 2, 3),
            Some(Range {
                start: 0,
                stride: 2,
                count: 2
            })
        );
        assert_eq!(
            Range::new(1, 5, 3, 4),
            Some(Range {
                start: 1,
                stride: 5,
                count: 1
            })
        );
        assert_eq!(Range::new(0, 1, 3, 3), None);
        assert_eq!(Range::new(2, 1, 1, 3), None);
        assert_eq!(Range::new(0, 0, 1, 3), None);
        let r = Range::new(3, 4, 17, 20).unwrap();
        assert_eq!(r.indices().collect::<Vec<_>>(), [3, 7, 11, 15]);
        assert_eq!(r.last(), 15);
        assert_eq!(r.to_string(), "[3:4:15]");
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("sst", "sst"), 0);
        assert_eq!(edit_distance("sstt", "sst"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        // 5_000 cases: random slabs against the §2.3 view either resolve to
        // ranges inside every dimension or fail with a one-line message.
        proptest! {
            #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]
            #[test]
            fn resolved_ranges_are_in_bounds(
                name in prop::sample::select(vec!["sst", "sst.sst", "sst.lat", "mask", "mask.mask", "lat", "time", "x"]),
                slabs in prop::collection::vec((0u64..6, 0u64..4, 0u64..6, any::<bool>()), 0..5),
            ) {
                let mut ce = name.to_string();
                for (a, s, b, three) in slabs {
                    ce.push_str(&if three { format!("[{a}:{s}:{b}]") } else { format!("[{a}:{b}]") });
                }
                match resolve(&example(), &parse(&ce).unwrap()) {
                    Ok(sub) => for arr in sub.arrays() {
                        let n: u64 = arr.dims.iter().map(|d| {
                            assert!(d.range.last() < d.len);
                            d.range.count as u64
                        }).product();
                        prop_assert_eq!(n, u64::from(arr.element_count()));
                    },
                    Err(e) => prop_assert!(!e.to_string().contains('\n')),
                }
            }
        }
    }
}
