//! Pictures: WMS 1.3.0 at `/wms` (one layer per dataset and data
//! variable, `<dataset>/<variable>`), and a PNG of any DAP constraint
//! (`/dap/<dataset>.png?<ce>`).
//!
//! A map is drawn in four steps. [`crate::picture::sample::pixel_cells`]
//! finds the grid cell under each pixel centre (reprojecting between the
//! map's CRS and the grid's); the cells are read as one strided DAP
//! selection, at the largest power-of-two stride that still gives every
//! pixel its own cell, which the archive answers from the overview level of
//! that stride (exactly its cells); each pixel takes its nearest read cell,
//! unpacked, missing cells transparent; the values are coloured and
//! encoded as PNG.

use super::{AppState, DapError};
use crate::archive::{ArchiveError, ServedDataset};
use crate::catalogue::Variable;
use crate::model::{Encoding, MissingTest, TypedArray};
use crate::picture::colour::{self, ColourMap};
use crate::picture::image;
use crate::picture::proj::Projection;
use crate::picture::sample::{self, GridAxis};
use crate::picture::wms::{self, LayerInfo, LegendRequest, MapRequest, Request, ServiceException};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Cells read for one picture at most (a 4096 x 4096 float32 slice is
/// 16 M): a map of more is drawn from a coarser stride.
const MAX_CELLS: usize = 1 << 24;

pub(super) async fn wms(State(st): State<AppState>, headers: axum::http::HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let result = match wms::parse(&query) {
        Ok(Request::Capabilities) => capabilities(&st, &headers).await,
        Ok(Request::Map(m)) => map(&st, &m).await,
        Ok(Request::Legend(l)) => legend(&st, &l).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(exception)
}

/// A service exception as WMS clients expect it: an XML report.
fn exception(e: ServiceException) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = (status, e.xml()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
    r
}

/// A server that cannot answer now (busy, catalogue not ready): 503.
fn unavailable(e: DapError) -> ServiceException {
    ServiceException::failed(e.status.as_u16(), e.message)
}

/// Archive errors in WMS terms: an unknown dataset is an undefined layer;
/// the rest keep their words.
fn archive_exception(e: ArchiveError) -> ServiceException {
    match e {
        ArchiveError::NotFound(m) => ServiceException::new("LayerNotDefined", m),
        other => {
            let d = DapError::from(other);
            if d.status.is_server_error() { ServiceException::failed(d.status.as_u16(), d.message) } else { ServiceException::generic(d.message) }
        }
    }
}

fn png(bytes: Vec<u8>) -> Response {
    let mut r = bytes.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    r
}

/// A layer: the dataset's served view and one of its data variables.
struct Layer {
    served: Arc<ServedDataset>,
    var: Variable,
}

async fn layer(st: &AppState, name: &str) -> Result<Layer, ServiceException> {
    let undefined = || ServiceException::new("LayerNotDefined", format!("no layer {name:?}; layers are named <dataset>/<variable>"));
    let (dataset, var) = name.split_once('/').ok_or_else(undefined)?;
    let served = st.archive.dataset(dataset).await.map_err(|e| match e {
        ArchiveError::NotFound(_) => undefined(),
        other => archive_exception(other),
    })?;
    let var = served.data_variable(var).filter(|v| v.def.kind == crate::model::VarKind::Data).cloned().ok_or_else(undefined)?;
    Ok(Layer { served, var })
}

/// The projection a dataset's grid is in: its EPSG code, else its CF grid
/// mapping; a grid with neither is geographic.
pub(crate) fn grid_projection(served: &ServedDataset) -> Result<Projection, ServiceException> {
    let crs = &served.dataset.def.grid.crs;
    let p = if crs.is_geographic() {
        Projection::from_code("EPSG:4326")
    } else if let Some(code) = crs.epsg {
        Projection::from_code(&format!("EPSG:{code}"))
    } else if let Some(gm) = &crs.grid_mapping {
        Projection::from_cf(&gm.attrs)
    } else {
        return Err(ServiceException::generic("the dataset's grid has no projection tessera can draw"));
    };
    p.map_err(|e| ServiceException::generic(format!("the dataset's projection: {e}")))
}

/// The grid's axes: regular ones by their first value and step, others
/// (Gaussian latitudes, stretched axes) by every cell centre.
fn grid_axes(served: &ServedDataset) -> Result<(GridAxis, GridAxis), ServiceException> {
    let g = &served.dataset.def.grid;
    let axis = |a: &crate::model::Axis| match a.regular() {
        Ok((first, step)) => Ok(GridAxis::regular(first, step, a.len())),
        Err(_) => GridAxis::irregular(&a.values).ok_or_else(|| ServiceException::generic(format!("axis {} has a single cell: no map", a.name))),
    };
    Ok((axis(&g.x)?, axis(&g.y)?))
}

/// The style's colour map: viridis by default.
fn style(name: Option<&str>) -> Result<&'static ColourMap, ServiceException> {
    match name.filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("default")) {
        None => Ok(colour::default_map()),
        Some(s) => colour::by_name(s).ok_or_else(|| {
            let known: Vec<&str> = colour::all().iter().map(|m| m.name).collect();
            ServiceException::new("StyleNotDefined", format!("no style {s:?}; the styles are {}", known.join(", ")))
        }),
    }
}

/// How a variable's stored values become physical ones.
struct Values {
    enc: Encoding,
    missing: MissingTest,
}

impl Values {
    fn new(var: &Variable) -> Values {
        let enc = Encoding::from_attrs(var.def.dtype, &var.def.attrs);
        let missing = MissingTest::new(&enc);
        Values { enc, missing }
    }

    /// The physical value of a stored one; NaN for a missing cell (fill,
    /// missing value, outside the valid range).
    fn physical(&self, raw: f64) -> f64 {
        if self.missing.is_missing(raw) { f64::NAN } else { self.enc.decode(raw) }
    }

    /// The colour scale's ends when the request gives none: `valid_range`
    /// (of stored values), else `actual_range` (physical).
    fn declared_range(&self, var: &Variable) -> Option<(f64, f64)> {
        let e = &self.enc;
        if let (Some(lo), Some(hi)) = (e.valid_min, e.valid_max) {
            return Some((e.decode(lo), e.decode(hi)));
        }
        use crate::model::Attributes;
        let r = var.def.attrs.get_attr("actual_range").and_then(crate::model::AttrValue::to_f64_vec)?;
        (r.len() >= 2 && r[0] < r[1]).then(|| (r[0], r[1]))
    }
}

/// Reads one 2-D slab of a tiled variable: `dims` are its DAP index
/// selections (`[t][z]...[y][x]`, each `start:stride:stop`).
async fn read_slab(st: &AppState, served: &Arc<ServedDataset>, var: &str, dims: &[(usize, usize, usize)]) -> Result<TypedArray, ServiceException> {
    let ce: String = std::iter::once(var.to_string()).chain(dims.iter().map(|(a, s, b)| format!("[{a}:{s}:{b}]"))).collect();
    let subset = served.resolve(&ce).map_err(archive_exception)?;
    let bytes = subset.dods_data_len();
    let plan = st.archive.plan(served.clone(), subset, bytes).await.map_err(archive_exception)?;
    let tiles = st.archive.tiles.clone();
    let var = var.to_string();
    crate::blocking::run("read picture", move || {
        let a = plan.subset.arrays().into_iter().find(|a| a.name == var).cloned();
        let a = a.ok_or_else(|| ArchiveError::Internal(format!("{var} not in its own selection")))?;
        plan.data_array(tiles.as_ref(), &a)
    })
    .await
    .map_err(|e| ServiceException::failed(500, e.to_string()))?
    .map_err(archive_exception)
}

/// Every value of a typed 2-D array as f64, row-major.
fn as_f64(a: &TypedArray) -> Vec<f64> {
    crate::with_typed_array!(a, x => x.iter().map(|&v| f64::from(v)).collect())
}

/// The index of the slab a map shows along time (the `TIME` value, or the
/// last slice) and along the vertical axis (the `ELEVATION` value, or the
/// first level).
fn slab_indices(l: &Layer, m: &MapRequest) -> Result<Vec<usize>, ServiceException> {
    let def = &l.served.dataset.def;
    let mut out = Vec::new();
    if l.var.def.has_time {
        let n = l.served.times.len();
        if n == 0 {
            return Err(ServiceException::new("MissingDimensionValue", "the layer has no time slices yet"));
        }
        let k = match m.time.as_deref().filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("current")) {
            None => n - 1,
            Some(t) => {
                let cal = def.time.key_calendar().map_err(|e| ServiceException::generic(e.to_string()))?;
                let want = cal.parse_user_time(t).map_err(|_| ServiceException::new("InvalidDimensionValue", format!("TIME={t} is not an ISO 8601 time")))?;
                l.served.times.iter().position(|x| *x == want).ok_or_else(|| {
                    ServiceException::new("InvalidDimensionValue", format!("TIME={t}: the layer has no slice at that time (GetCapabilities lists them)"))
                })?
            }
        };
        out.push(k);
    }
    if l.var.def.has_level {
        let levels = def.grid.level.as_ref().map(|a| a.values.as_slice()).unwrap_or_default();
        let z = match m.elevation.as_deref().filter(|e| !e.is_empty()) {
            None => 0,
            Some(e) => {
                let v: f64 = e.parse().map_err(|_| ServiceException::new("InvalidDimensionValue", format!("ELEVATION={e} is not a number")))?;
                levels.iter().position(|&x| (x - v).abs() <= 1e-9 * x.abs().max(1.0)).ok_or_else(|| {
                    ServiceException::new("InvalidDimensionValue", format!("ELEVATION={e}: the layer has no such level"))
                })?
            }
        };
        out.push(z);
    }
    Ok(out)
}

async fn map(st: &AppState, m: &MapRequest) -> Result<Response, ServiceException> {
    st.check_catalogue().map_err(unavailable)?;
    // A map reads tiles and takes memory by the pixel: it holds a data
    // slot, as large DAP responses do.
    let _slot = st.heavy_slot().await.map_err(unavailable)?;
    let l = layer(st, &m.layer).await?;
    let cmap = style(m.style.as_deref())?;
    let target = Projection::from_code(&m.crs).map_err(|e| ServiceException::new("InvalidCRS", e.to_string()))?;
    let source = grid_projection(&l.served)?;
    let (xa, ya) = grid_axes(&l.served)?;
    let slab = slab_indices(&l, m)?;
    let (w, h) = (m.width as usize, m.height as usize);
    let bbox = m.bbox;
    // Where the pixels fall, the box of cells they need and the stride
    // that gives every pixel its own cell (the overview of that stride
    // answers it): CPU work, off the async runtime.
    let axes = (xa.clone(), ya.clone());
    let (cells, needed) = crate::blocking::run("map cells", move || {
        let (xa, ya) = axes;
        let cells = match sample::axis_cells(&target, bbox, w, h, &source, &xa, &ya) {
            Some(axes) => Cells::Axes(axes),
            None => Cells::Pixels(sample::pixel_cells(&target, bbox, w, h, &source, &xa, &ya)),
        };
        let needed = cells.cell_box(&xa, &ya).map(|b| {
            let stride = read_stride(cells.decimation(w, h), &b);
            (b.aligned(stride), stride)
        });
        (cells, needed)
    })
    .await
    .map_err(|e| ServiceException::failed(500, e.to_string()))?;
    let block = match needed {
        Some((b, stride)) => {
            let mut dims: Vec<(usize, usize, usize)> = slab.iter().map(|&i| (i, 1, i)).collect();
            dims.extend([(b.r0, stride, b.r1), (b.c0, stride, b.c1)]);
            Some((read_slab(st, &l.served, &l.var.def.name, &dims).await?, b, stride))
        }
        None => None,
    };
    let values = Values::new(&l.var);
    let range = m.colour_range.or_else(|| values.declared_range(&l.var));
    let (transparent, bgcolor) = (m.transparent, m.bgcolor);
    let bytes = crate::blocking::run("draw map", move || {
        let picture = match &block {
            Some((a, b, stride)) => cells.sample(a, b, *stride, &values, &xa, &ya),
            None => vec![f64::NAN; w * h],
        };
        let (lo, hi) = range.or_else(|| image::range_of(&picture)).unwrap_or((0.0, 1.0));
        let indices = image::render_indexed(&picture, lo, hi);
        image::encode_png_indexed(&indices, cmap, (!transparent).then_some(bgcolor), w as u32, h as u32)
    })
    .await
    .map_err(|e| ServiceException::failed(500, e.to_string()))?
    .map_err(|e| ServiceException::failed(500, e.to_string()))?;
    metrics::counter!("tessera_maps_total").increment(1);
    Ok(png(bytes))
}

/// Where a map's pixels fall in the grid: per pixel column and per pixel
/// row when the two are independent (longitude-latitude and Mercator
/// maps of such grids), else per pixel.
enum Cells {
    Axes(sample::AxisCells),
    Pixels(Vec<Option<(f64, f64)>>),
}

impl Cells {
    /// The inclusive box of the cells nearest the pixel centres.
    fn cell_box(&self, x: &GridAxis, y: &GridAxis) -> Option<CellBox> {
        let span = |v: &mut dyn Iterator<Item = usize>| v.fold(None, |acc: Option<(usize, usize)>, i| Some(acc.map_or((i, i), |(a, b)| (a.min(i), b.max(i)))));
        match self {
            Cells::Axes(a) => {
                let (c0, c1) = span(&mut a.cols.iter().flatten().map(|&c| x.nearest(c)))?;
                let (r0, r1) = span(&mut a.rows.iter().flatten().map(|&r| y.nearest(r)))?;
                Some(CellBox { c0, c1, r0, r1 })
            }
            Cells::Pixels(p) => {
                let (c0, c1) = span(&mut p.iter().flatten().map(|&(c, _)| x.nearest(c)))?;
                let (r0, r1) = span(&mut p.iter().flatten().map(|&(_, r)| y.nearest(r)))?;
                Some(CellBox { c0, c1, r0, r1 })
            }
        }
    }

    /// How many cells a pixel spans (see [`sample::decimation`]).
    fn decimation(&self, w: usize, h: usize) -> f64 {
        match self {
            Cells::Axes(a) => sample::axis_decimation(a),
            Cells::Pixels(p) => sample::decimation(p, w, h),
        }
    }

    /// Each pixel's value: the read cell nearest its fractional cell
    /// (`block` holds the box's cells at `stride`), unpacked; NaN outside
    /// the grid and for missing cells.
    fn sample(&self, block: &TypedArray, b: &CellBox, stride: usize, values: &Values, x: &GridAxis, y: &GridAxis) -> Vec<f64> {
        let cols = (b.c1 - b.c0) / stride + 1;
        let rows = (b.r1 - b.r0) / stride + 1;
        let inv = 1.0 / stride as f64;
        // The pixel's cell on the grid, then the nearest on the read
        // lattice (non-negative: adding 0.5 and truncating rounds).
        let col = |c: f64| ((((x.nearest(c).max(b.c0) - b.c0) as f64) * inv + 0.5) as usize).min(cols - 1);
        let row = |r: f64| ((((y.nearest(r).max(b.r0) - b.r0) as f64) * inv + 0.5) as usize).min(rows - 1);
        crate::with_typed_array!(block, a => {
            let Some(raw) = a.as_slice() else { return vec![f64::NAN; self.len()] };
            let at = |r: usize, c: usize| values.physical(f64::from(raw[r * cols + c]));
            match self {
                Cells::Axes(ax) => {
                    let cs: Vec<Option<usize>> = ax.cols.iter().map(|c| c.map(col)).collect();
                    let mut out = Vec::with_capacity(cs.len() * ax.rows.len());
                    for r in &ax.rows {
                        match r.map(row) {
                            Some(r) => out.extend(cs.iter().map(|c| c.map_or(f64::NAN, |c| at(r, c)))),
                            None => out.extend(std::iter::repeat_n(f64::NAN, cs.len())),
                        }
                    }
                    out
                }
                Cells::Pixels(p) => p.iter().map(|c| c.map_or(f64::NAN, |(cx, cy)| at(row(cy), col(cx)))).collect(),
            }
        })
    }

    fn len(&self) -> usize {
        match self {
            Cells::Axes(a) => a.cols.len() * a.rows.len(),
            Cells::Pixels(p) => p.len(),
        }
    }
}

/// The grid cells a map needs: an inclusive box.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CellBox {
    c0: usize,
    c1: usize,
    r0: usize,
    r1: usize,
}

impl CellBox {
    /// The box starting on a multiple of `stride`, so that a level of that
    /// stride holds its cells.
    fn aligned(self, stride: usize) -> CellBox {
        CellBox { c0: self.c0 / stride * stride, r0: self.r0 / stride * stride, ..self }
    }
}

/// The stride to read a map's cells at: the largest power of two no
/// larger than the cells a pixel spans (every pixel keeps a cell of its
/// own), and large enough that the read stays under [`MAX_CELLS`].
fn read_stride(decimation: f64, b: &CellBox) -> usize {
    let mut s = 1usize;
    while (s * 2) as f64 <= decimation {
        s *= 2;
    }
    let (w, h) = (b.c1 - b.c0 + 1, b.r1 - b.r0 + 1);
    while w.div_ceil(s) * h.div_ceil(s) > MAX_CELLS {
        s *= 2;
    }
    s
}

async fn legend(st: &AppState, lr: &LegendRequest) -> Result<Response, ServiceException> {
    let l = layer(st, &lr.layer).await?;
    let cmap = style(lr.style.as_deref())?;
    let values = Values::new(&l.var);
    let (lo, hi) = lr.colour_range.or_else(|| values.declared_range(&l.var)).unwrap_or((0.0, 1.0));
    let units = values.enc.units.clone().unwrap_or_default();
    let bytes = image::legend_png(cmap, lo, hi, &units, lr.width, lr.height).map_err(|e| ServiceException::failed(500, e.to_string()))?;
    Ok(png(bytes))
}

async fn capabilities(st: &AppState, headers: &axum::http::HeaderMap) -> Result<Response, ServiceException> {
    st.check_catalogue().map_err(unavailable)?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let url = format!("http://{host}/wms");
    let key = st.listings.key(st, &url).await.map_err(|e| ServiceException::failed(503, e.to_string()))?;
    if let Some(doc) = st.listings.get("wms", key) {
        return Ok(xml(doc.as_str().to_string()));
    }
    let datasets = st.archive.catalogue.datasets().await.map_err(|e| ServiceException::failed(503, e.to_string()))?;
    let mut layers = Vec::new();
    // A document that left a dataset out for a passing fault is not kept.
    let mut whole = true;
    for d in datasets {
        let served = match st.archive.dataset(d.def.name.as_str()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(dataset = %d.def.name, error = %e, "left out of the WMS capabilities");
                whole = false;
                continue;
            }
        };
        match layer_infos(&served) {
            Ok(mut l) => layers.append(&mut l),
            Err(e) => tracing::info!(dataset = %d.def.name, why = %e.message, "no WMS layers"),
        }
    }
    let doc = wms::capabilities(&url, "tessera", &layers);
    if whole {
        st.listings.put("wms", key, doc.clone());
    }
    Ok(xml(doc))
}

fn xml(doc: String) -> Response {
    let mut r = doc.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
    r
}

/// The layers of one dataset: its data variables on its grid.
pub(super) fn layer_infos(served: &ServedDataset) -> Result<Vec<LayerInfo>, ServiceException> {
    let def = &served.dataset.def;
    let source = grid_projection(served)?;
    let (xa, ya) = grid_axes(served)?;
    let ((x0, x1), (y0, y1)) = (xa.edges(), ya.edges());
    let geographic = if source.is_geographic() {
        let (w, e) = if x1 - x0 >= 359.0 { (-180.0, 180.0) } else { (x0, x1) };
        [w.max(-180.0), y0.max(-90.0), e.min(180.0), y1.min(90.0)]
    } else {
        geographic_bbox(&source, [x0, y0, x1, y1])
    };
    let own = match def.grid.crs.epsg {
        Some(code) if !def.grid.crs.is_geographic() => Some(format!("EPSG:{code}")),
        _ => None,
    };
    let times: Vec<String> = served.times.iter().map(|t| def.time.show(*t)).collect();
    let mut out = Vec::new();
    for v in served.vars.iter().filter(|v| v.def.kind == crate::model::VarKind::Data) {
        let text = |n: &str| {
            use crate::model::Attributes;
            v.def.attrs.text_attr(n).map(str::to_string)
        };
        let elevations = match (&def.grid.level, v.def.has_level) {
            (Some(l), true) => {
                use crate::model::Attributes;
                Some((l.values.clone(), l.attrs.text_attr("units").unwrap_or("").to_string()))
            }
            _ => None,
        };
        out.push(LayerInfo {
            name: format!("{}/{}", def.name, v.def.name),
            title: format!("{}: {}", def.title, text("long_name").unwrap_or_else(|| v.def.name.clone())),
            abstract_: text("standard_name").unwrap_or_default(),
            own_crs: own.clone(),
            native_bbox: own.as_ref().map(|_| [x0, y0, x1, y1]),
            geographic_bbox: geographic,
            times: if v.def.has_time { times.clone() } else { Vec::new() },
            default_time: None,
            elevations,
            units: text("units").unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The longitude-latitude box of a projected box: its edges sampled and
/// transformed, and the poles added when the box holds them.
fn geographic_bbox(source: &Projection, [x0, y0, x1, y1]: [f64; 4]) -> [f64; 4] {
    let Ok(geo) = Projection::from_code("EPSG:4326") else { return [-180.0, -90.0, 180.0, 90.0] };
    const N: usize = 64;
    let mut pts: Vec<(f64, f64)> = (0..=N)
        .flat_map(|i| {
            let f = i as f64 / N as f64;
            let (x, y) = (x0 + f * (x1 - x0), y0 + f * (y1 - y0));
            [(x, y0), (x, y1), (x0, y), (x1, y)]
        })
        .collect();
    crate::picture::proj::transform(source, &geo, &mut pts);
    let mut b = [180.0f64, 90.0f64, -180.0f64, -90.0f64];
    for (lon, lat) in pts.into_iter().filter(|p| p.0.is_finite() && p.1.is_finite()) {
        b = [b[0].min(lon), b[1].min(lat), b[2].max(lon), b[3].max(lat)];
    }
    for pole in [90.0, -90.0] {
        let mut p = [(0.0, pole)];
        crate::picture::proj::transform(&geo, source, &mut p);
        let (x, y) = p[0];
        if x >= x0 && x <= x1 && y >= y0 && y <= y1 {
            b = [-180.0, b[1].min(pole), 180.0, b[3].max(pole)];
        }
    }
    if b[0] > b[2] { [-180.0, -90.0, 180.0, 90.0] } else { b }
}

/// `/dap/<dataset>.png?<ce>`: one 2-D selection of a data variable (its
/// other dimensions selecting one index each) as a picture, north up,
/// missing cells transparent, coloured with viridis over the variable's
/// declared range or else the selection's own.
pub(super) async fn constraint_png(st: &AppState, served: Arc<ServedDataset>, query: &str) -> Result<Response, DapError> {
    let bad = |m: String| DapError::new(StatusCode::BAD_REQUEST, m);
    let subset = served.resolve(query)?;
    let arrays: Vec<_> = subset.arrays().into_iter().filter(|a| served.data_variable(&a.name).is_some()).cloned().collect();
    let [a] = arrays.as_slice() else {
        return Err(bad(format!("a picture shows one data variable; this constraint selects {}", arrays.len())));
    };
    let n = a.dims.len();
    if n < 2 || a.dims[..n - 2].iter().any(|d| d.range.count != 1) {
        return Err(bad(format!("a picture is 2-D: select one index of every dimension of {} but the last two", a.name)));
    }
    let (rows, cols) = (a.dims[n - 2].range.count, a.dims[n - 1].range.count);
    if rows * cols > MAX_CELLS {
        return Err(DapError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("a picture holds at most {MAX_CELLS} cells; this one would hold {}", rows * cols)));
    }
    let var = served.data_variable(&a.name).cloned().ok_or_else(|| bad("no data variable".into()))?;
    let dims: Vec<(usize, usize, usize)> = a.dims.iter().map(|d| (d.range.start, d.range.stride, d.range.last())).collect();
    let block = read_slab(st, &served, &a.name, &dims).await.map_err(|e| DapError::new(StatusCode::INTERNAL_SERVER_ERROR, e.message))?;
    let values = Values::new(&var);
    let mut picture: Vec<f64> = as_f64(&block).into_iter().map(|v| values.physical(v)).collect();
    // North up: a grid whose y grows with its index (south first) is
    // drawn bottom row first.
    let y = &served.dataset.def.grid.y.values;
    if y.len() > 1 && y[y.len() - 1] > y[0] {
        picture = picture.chunks(cols).rev().flatten().copied().collect();
    }
    let (lo, hi) = values.declared_range(&var).or_else(|| image::range_of(&picture)).unwrap_or((0.0, 1.0));
    let indices = image::render_indexed(&picture, lo, hi);
    let bytes = image::encode_png_indexed(&indices, colour::default_map(), None, cols as u32, rows as u32)
        .map_err(|e| DapError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(png(bytes))
}

#[cfg(test)]
mod tests {
    use super::read_stride;

    #[test]
    fn strides_give_every_pixel_a_cell_and_bound_the_read() {
        let cells = super::CellBox { c0: 0, c1: 4095, r0: 0, r1: 4095 };
        assert_eq!(read_stride(1.0, &cells), 1, "a cell a pixel (16 M cells fit)");
        assert_eq!(read_stride(3.9, &cells), 2);
        assert_eq!(read_stride(4.0, &cells), 4);
        assert_eq!(read_stride(0.2, &cells), 1, "zoomed in past the cells");
        let wide = super::CellBox { c0: 0, c1: 86_399, r0: 0, r1: 43_199 };
        let s = read_stride(1.0, &wide);
        assert!(86_400usize.div_ceil(s) * 43_200usize.div_ceil(s) <= super::MAX_CELLS && s == 16, "{s}");
    }

    #[test]
    fn values_are_unpacked_and_missing_cells_are_nan() {
        use crate::model::{AttrValue, Attribute, DataType, VarKind, VariableDef};
        let var = crate::catalogue::Variable {
            id: 1,
            dataset_id: 1,
            def: VariableDef {
                name: "t2m".into(),
                dtype: DataType::I16,
                has_time: true,
                has_level: false,
                attrs: vec![
                    Attribute { name: "scale_factor".into(), value: AttrValue::F64(vec![0.5]) },
                    Attribute { name: "add_offset".into(), value: AttrValue::F64(vec![270.0]) },
                    Attribute { name: "_FillValue".into(), value: AttrValue::I16(vec![-32767]) },
                    Attribute { name: "valid_range".into(), value: AttrValue::I16(vec![-100, 100]) },
                ],
                kind: VarKind::Data,
            },
        };
        let v = super::Values::new(&var);
        assert_eq!(v.physical(10.0), 275.0);
        assert!(v.physical(-32767.0).is_nan() && v.physical(101.0).is_nan());
        assert_eq!(v.declared_range(&var), Some((220.0, 320.0)));
    }
}
