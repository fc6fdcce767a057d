//! A read-only STAC API 1.0 at `/stac`, built from the live catalogue on
//! every request (nothing to keep in step with ingests).
//!
//! Each dataset is a Collection (its WGS84 box, its time span and the
//! datacube extension describing its axes and variables); each time slice
//! is an Item whose assets are the OPeNDAP endpoint and a `.nc` download
//! of that slice. `/stac/search` filters items by collection, id, box and
//! time. Paging is by an offset carried in a `token` parameter, which is
//! stable as long as the catalogue does not change between pages.
//!
//! Errors are STAC's JSON `{"code", "description"}`, never a DAP2 body:
//! STAC clients parse them.

use super::AppState;
use super::DapError;
use crate::archive::{ArchiveError, ServedDataset};
use crate::model::{Attributes, Timestamp, VarKind};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

const STAC_VERSION: &str = "1.0.0";
const DATACUBE: &str = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json";
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 1000;
/// Time values listed in `cube:dimensions` up to this many slices; past
/// it the extent alone says enough and keeps the document small.
const MAX_TIME_VALUES: usize = 1000;
const GEOJSON: &str = "application/geo+json";
const JSON: &str = "application/json";
/// What the DAP2 endpoint is, for clients that pick assets by media type.
const OPENDAP_TYPE: &str = "application/vnd.opendap.dap2";

const CONFORMS_TO: &[&str] = &[
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
];

/// A STAC API error: JSON, as STAC clients expect.
#[derive(Debug)]
pub(super) struct StacError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl StacError {
    fn bad(description: impl Into<String>) -> Self {
        StacError { status: StatusCode::BAD_REQUEST, code: "InvalidParameterValue", description: description.into() }
    }
    fn not_found(description: impl Into<String>) -> Self {
        StacError { status: StatusCode::NOT_FOUND, code: "NotFound", description: description.into() }
    }
}

/// The archive's errors keep their status (404, 503, 500) and words.
impl From<DapError> for StacError {
    fn from(e: DapError) -> Self {
        let code = match e.status {
            StatusCode::NOT_FOUND => "NotFound",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
            s if s.is_client_error() => "InvalidParameterValue",
            _ => "ServerError",
        };
        StacError { status: e.status, code, description: e.message }
    }
}

impl From<ArchiveError> for StacError {
    fn from(e: ArchiveError) -> Self {
        DapError::from(e).into()
    }
}

impl IntoResponse for StacError {
    fn into_response(self) -> Response {
        let body = json!({ "code": self.code, "description": self.description });
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
        r
    }
}

fn document(content_type: &'static str, v: &Value) -> Response {
    text_document(content_type, v.to_string())
}

fn text_document(content_type: &'static str, body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The server's own address as the client reached it, like the WMS
/// capabilities: links must work from where the client stands.
pub(super) fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

fn link(rel: &str, href: String, media: &str) -> Value {
    json!({ "rel": rel, "href": href, "type": media })
}

/// `GET /stac`: the landing page, linking everything else.
pub(super) async fn landing(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, StacError> {
    st.check_catalogue()?;
    let base = base_url(&headers);
    let stac = format!("{base}/stac");
    let datasets = st.archive.catalogue.datasets().await.map_err(ArchiveError::from)?;
    let mut links = vec![
        link("self", stac.clone(), JSON),
        link("root", stac.clone(), JSON),
        link("conformance", format!("{stac}/conformance"), JSON),
        link("data", format!("{stac}/collections"), JSON),
        json!({ "rel": "search", "href": format!("{stac}/search"), "type": GEOJSON, "method": "GET" }),
        json!({ "rel": "search", "href": format!("{stac}/search"), "type": GEOJSON, "method": "POST" }),
        link("service-doc", format!("{base}/help"), "text/plain"),
    ];
    links.extend(datasets.iter().map(|d| link("child", format!("{stac}/collections/{}", d.def.name), JSON)));
    let doc = json!({
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": "tessera",
        "title": "tessera",
        "description": "The datasets of this tessera archive: one collection per dataset, one item per time slice.",
        "conformsTo": CONFORMS_TO,
        "links": links,
    });
    Ok(document(JSON, &doc))
}

/// `GET /stac/conformance`.
pub(super) async fn conformance() -> Response {
    document(JSON, &json!({ "conformsTo": CONFORMS_TO }))
}

/// Every dataset the archive can serve now; one that cannot be opened is
/// left out (and logged) rather than failing the whole listing.
async fn served_datasets(st: &AppState) -> Result<Vec<Arc<ServedDataset>>, StacError> {
    Ok(served_datasets_whole(st).await?.0)
}

/// [`served_datasets`], and whether none was left out.
async fn served_datasets_whole(st: &AppState) -> Result<(Vec<Arc<ServedDataset>>, bool), StacError> {
    st.check_catalogue()?;
    let datasets = st.archive.catalogue.datasets().await.map_err(ArchiveError::from)?;
    let mut out = Vec::with_capacity(datasets.len());
    let mut whole = true;
    for d in datasets {
        match st.archive.dataset(d.def.name.as_str()).await {
            Ok(s) => out.push(s),
            Err(e) => {
                tracing::warn!(dataset = %d.def.name, error = %e, "left out of the STAC collections");
                whole = false;
            }
        }
    }
    Ok((out, whole))
}

/// One dataset by its collection id; an unknown one is 404.
async fn served(st: &AppState, name: &str) -> Result<Arc<ServedDataset>, StacError> {
    st.check_catalogue()?;
    st.archive.dataset(name).await.map_err(|e| match e {
        ArchiveError::NotFound(_) => StacError::not_found(format!("no collection {name:?}; /stac/collections lists them")),
        other => other.into(),
    })
}

/// `GET /stac/collections`.
pub(super) async fn collections(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, StacError> {
    let base = base_url(&headers);
    st.check_catalogue()?;
    // Made again only when a dataset changed (see `super::Listings`).
    let key = st.listings.key(&st, &base).await.map_err(ArchiveError::from)?;
    if let Some(doc) = st.listings.get("stac", key) {
        return Ok(text_document(JSON, doc.as_str().to_string()));
    }
    let (all, whole) = served_datasets_whole(&st).await?;
    let stac = format!("{base}/stac");
    let doc = json!({
        "collections": all.iter().map(|s| collection_doc(&base, s)).collect::<Vec<_>>(),
        "links": [
            link("self", format!("{stac}/collections"), JSON),
            link("root", stac.clone(), JSON),
            link("parent", stac, JSON),
        ],
    })
    .to_string();
    if whole {
        st.listings.put("stac", key, doc.clone());
    }
    Ok(text_document(JSON, doc))
}

/// `GET /stac/collections/{dataset}`.
pub(super) async fn collection(State(st): State<AppState>, headers: HeaderMap, Path(name): Path<String>) -> Result<Response, StacError> {
    let s = served(&st, &name).await?;
    Ok(document(JSON, &collection_doc(&base_url(&headers), &s)))
}

/// The longitude-latitude box of a dataset, `[west, south, east, north]`:
/// the box the WMS capabilities give its layers (cell edges; a grid
/// spanning 360 degrees as -180..180; projected grids transformed), or
/// the whole world for a grid with no drawable projection or no data
/// variable.
pub(super) fn wgs84_bbox(s: &ServedDataset) -> [f64; 4] {
    match super::wms::layer_infos(s) {
        Ok(layers) => layers.first().map(|l| l.geographic_bbox).unwrap_or([-180.0, -90.0, 180.0, 90.0]),
        Err(_) => [-180.0, -90.0, 180.0, 90.0],
    }
}

/// RFC 3339 UTC of a slice key; None for a key chrono cannot show.
fn rfc3339(t: Timestamp) -> Option<String> {
    let dt = t.to_datetime()?;
    let precision = if t.0 % 1000 == 0 { chrono::SecondsFormat::Secs } else { chrono::SecondsFormat::Millis };
    Some(dt.to_rfc3339_opts(precision, true))
}

/// An item id: the dataset and the slice's UTC instant, URL-safe and
/// stable for as long as the slice exists.
fn item_id(dataset: &str, t: Timestamp) -> String {
    match t.to_datetime() {
        Some(dt) if t.0 % 1000 == 0 => format!("{dataset}-{}", dt.format("%Y%m%dT%H%M%S")),
        Some(dt) => format!("{dataset}-{}", dt.format("%Y%m%dT%H%M%S%3f")),
        None => format!("{dataset}-t{}", t.0),
    }
}

/// The dataset's license as STAC wants it: an SPDX identifier, else
/// "other" (free text would not validate).
fn license(s: &ServedDataset) -> String {
    let spdx = |l: &&str| !l.is_empty() && l.len() <= 64 && l.chars().all(|c| c.is_ascii_alphanumeric() || "-.+".contains(c));
    s.dataset.def.attrs.text_attr("license").map(str::trim).filter(spdx).unwrap_or("other").to_string()
}

/// The data variables, time-dependent ones or static ones.
fn data_vars(s: &ServedDataset, with_time: bool) -> impl Iterator<Item = &crate::catalogue::Variable> {
    s.vars.iter().filter(move |v| v.def.kind == VarKind::Data && v.def.has_time == with_time)
}

/// `var1,var2` for a DAP constraint, brackets percent-encoded as the
/// DAP endpoints expect them in a URL.
fn url_constraint(parts: &[String]) -> String {
    parts.join(",").replace('[', "%5B").replace(']', "%5D")
}

fn collection_doc(base: &str, s: &ServedDataset) -> Value {
    let def = &s.dataset.def;
    let name = def.name.as_str();
    let stac = format!("{base}/stac");
    let own = format!("{stac}/collections/{name}");
    let attrs = &def.attrs;
    let description = attrs.text_attr("summary").or_else(|| attrs.text_attr("comment")).unwrap_or(&def.title);
    let interval = match (s.times.first().and_then(|t| rfc3339(*t)), s.times.last().and_then(|t| rfc3339(*t))) {
        (Some(a), Some(b)) => json!([[a, b]]),
        _ => json!([[null, null]]),
    };
    let mut assets = serde_json::Map::new();
    let statics: Vec<String> = data_vars(s, false).map(|v| v.def.name.clone()).collect();
    if !statics.is_empty() {
        assets.insert(
            "opendap".into(),
            json!({ "href": format!("{base}/dap/{name}"), "type": OPENDAP_TYPE, "roles": ["data"], "title": "OPeNDAP (DAP2) endpoint",
                "description": format!("the whole dataset; its time-invariant variables are {}", statics.join(", ")) }),
        );
        assets.insert(
            "netcdf".into(),
            json!({ "href": format!("{base}/dap/{name}.nc?{}", url_constraint(&statics)), "type": "application/x-netcdf", "roles": ["data"],
                "title": "time-invariant variables (NetCDF)" }),
        );
    }
    json!({
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [DATACUBE],
        "id": name,
        "title": def.title,
        "description": description,
        "license": license(s),
        "extent": {
            "spatial": { "bbox": [wgs84_bbox(s)] },
            "temporal": { "interval": interval },
        },
        "cube:dimensions": cube_dimensions(s),
        "cube:variables": cube_variables(s),
        "summaries": {},
        "assets": assets,
        "links": [
            link("self", own.clone(), JSON),
            link("root", stac.clone(), JSON),
            link("parent", stac, JSON),
            link("items", format!("{own}/items"), GEOJSON),
            link("alternate", format!("{base}/datasets/{name}"), "text/html"),
        ],
    })
}

/// The datacube extension's dimensions, keyed by the axes' own names
/// (the names `cube:variables` and the DAP structure use).
fn cube_dimensions(s: &ServedDataset) -> Value {
    let def = &s.dataset.def;
    let crs = &def.grid.crs;
    let reference = if crs.is_geographic() {
        json!(4326)
    } else if let Some(code) = crs.epsg {
        json!(code)
    } else if let Some(wkt) = &crs.wkt {
        json!(wkt)
    } else {
        Value::Null
    };
    let spatial = |a: &crate::model::Axis, axis: &str| {
        let lo = a.values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = a.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut d = json!({ "type": "spatial", "axis": axis, "extent": [finite(lo), finite(hi)] });
        if let (true, Ok((_, step))) = (a.len() > 1, a.regular()) {
            d["step"] = json!(step);
        }
        if !reference.is_null() {
            d["reference_system"] = reference.clone();
        }
        d
    };
    let mut dims = serde_json::Map::new();
    dims.insert(def.grid.x.name.clone(), spatial(&def.grid.x, "x"));
    dims.insert(def.grid.y.name.clone(), spatial(&def.grid.y, "y"));
    if let Some(z) = &def.grid.level {
        let mut d = spatial(z, "z");
        d["values"] = json!(z.values);
        if let Some(u) = z.attrs.text_attr("units") {
            d["unit"] = json!(u);
        }
        if let Some(obj) = d.as_object_mut() {
            obj.remove("reference_system");
        }
        dims.insert(z.name.clone(), d);
    }
    if data_vars(s, true).next().is_some() || !s.times.is_empty() {
        let first = s.times.first().and_then(|t| rfc3339(*t));
        let last = s.times.last().and_then(|t| rfc3339(*t));
        let mut d = json!({ "type": "temporal", "extent": [first, last] });
        if s.times.len() < MAX_TIME_VALUES {
            d["values"] = json!(s.times.iter().filter_map(|t| rfc3339(*t)).collect::<Vec<_>>());
        }
        dims.insert(def.time.name.clone(), d);
    }
    Value::Object(dims)
}

/// JSON has no NaN or infinity: an empty axis has no extent.
fn finite(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// The datacube extension's variables: each data variable, its
/// dimensions in DAP order, its unit and long name.
fn cube_variables(s: &ServedDataset) -> Value {
    let def = &s.dataset.def;
    let mut vars = serde_json::Map::new();
    for v in s.vars.iter().filter(|v| v.def.kind == VarKind::Data) {
        let mut dims = Vec::new();
        if v.def.has_time {
            dims.push(def.time.name.clone());
        }
        if let (true, Some(z)) = (v.def.has_level, &def.grid.level) {
            dims.push(z.name.clone());
        }
        dims.extend([def.grid.y.name.clone(), def.grid.x.name.clone()]);
        let mut d = json!({ "type": "data", "dimensions": dims });
        if let Some(u) = v.def.attrs.text_attr("units") {
            d["unit"] = json!(u);
        }
        if let Some(l) = v.def.attrs.text_attr("long_name") {
            d["description"] = json!(l);
        }
        vars.insert(v.def.name.clone(), d);
    }
    Value::Object(vars)
}

/// One item: slice `k` of a dataset.
fn item_doc(base: &str, s: &ServedDataset, k: usize, bbox: [f64; 4]) -> Value {
    let def = &s.dataset.def;
    let name = def.name.as_str();
    let t = s.times[k];
    let stac = format!("{base}/stac");
    let own = format!("{stac}/collections/{name}");
    let id = item_id(name, t);
    let selection: Vec<String> = data_vars(s, true).map(|v| format!("{}[{k}]", v.def.name)).collect();
    let [w, so, e, n] = bbox;
    let mut assets = serde_json::Map::new();
    assets.insert(
        "opendap".into(),
        json!({ "href": format!("{base}/dap/{name}"), "type": OPENDAP_TYPE, "roles": ["data"], "title": "OPeNDAP (DAP2) endpoint",
            "description": format!("the whole dataset; the constraint {} selects this slice (time index {k})", selection.join(",")) }),
    );
    if !selection.is_empty() {
        assets.insert(
            "netcdf".into(),
            json!({ "href": format!("{base}/dap/{name}.nc?{}", url_constraint(&selection)), "type": "application/x-netcdf", "roles": ["data"],
                "title": "this time slice (NetCDF)" }),
        );
    }
    json!({
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": id,
        "collection": name,
        "geometry": { "type": "Polygon", "coordinates": [[[w, so], [e, so], [e, n], [w, n], [w, so]]] },
        "bbox": bbox,
        "properties": {
            "datetime": rfc3339(t),
            "cf:time": def.time.show(t),
            "cf:calendar": def.time.calendar,
        },
        "assets": assets,
        "links": [
            link("self", format!("{own}/items/{id}"), GEOJSON),
            link("parent", own.clone(), JSON),
            link("collection", own, JSON),
            link("root", stac, JSON),
        ],
    })
}

/// `GET /stac/collections/{dataset}/items/{item_id}`.
pub(super) async fn item(State(st): State<AppState>, headers: HeaderMap, Path((name, id)): Path<(String, String)>) -> Result<Response, StacError> {
    let s = served(&st, &name).await?;
    let k = s.times.iter().position(|t| item_id(&name, *t) == id).ok_or_else(|| StacError::not_found(format!("no item {id:?} in collection {name:?}")))?;
    Ok(document(GEOJSON, &item_doc(&base_url(&headers), &s, k, wgs84_bbox(&s))))
}

/// A search: every filter is optional.
#[derive(Debug, Default, Clone)]
struct Search {
    bbox: Option<[f64; 4]>,
    /// Inclusive bounds in Unix milliseconds; None is open.
    datetime: Option<(Option<i64>, Option<i64>)>,
    collections: Option<Vec<String>>,
    ids: Option<Vec<String>>,
    limit: usize,
    /// Items skipped: the paging token.
    offset: usize,
}

/// A box of 4 numbers (or 6, with heights, which are ignored): finite,
/// south below north, latitudes within the poles. West may exceed east:
/// a box across the antimeridian.
fn parse_bbox(v: &[f64]) -> Result<[f64; 4], StacError> {
    let b = match v {
        [w, s, e, n] => [*w, *s, *e, *n],
        [w, s, _, e, n, _] => [*w, *s, *e, *n],
        _ => return Err(StacError::bad(format!("bbox has {} numbers; give 4: west,south,east,north", v.len()))),
    };
    if b.iter().any(|x| !x.is_finite()) || b[1] > b[3] || b[1] < -90.0 || b[3] > 90.0 {
        return Err(StacError::bad(format!("bbox {b:?} is not west,south,east,north in degrees with south <= north")));
    }
    Ok(b)
}

fn parse_bbox_text(s: &str) -> Result<[f64; 4], StacError> {
    let nums: Result<Vec<f64>, _> = s.split(',').map(|p| p.trim().parse::<f64>()).collect();
    parse_bbox(&nums.map_err(|_| StacError::bad(format!("bbox {s:?} is not a list of numbers")))?)
}

/// An RFC 3339 instant, or an interval `a/b` with `..` (or nothing) for
/// an open end.
fn parse_datetime(s: &str) -> Result<(Option<i64>, Option<i64>), StacError> {
    let bad = || StacError::bad(format!("datetime {s:?} is not an RFC 3339 instant (2010-01-02T12:00:00Z) or interval (a/b, '..' for an open end)"));
    let instant = |p: &str| chrono::DateTime::parse_from_rfc3339(p.trim()).map(|d| d.timestamp_millis()).map_err(|_| bad());
    let end = |p: &str| if p.trim().is_empty() || p.trim() == ".." { Ok(None) } else { instant(p).map(Some) };
    match s.split_once('/') {
        None => instant(s).map(|t| (Some(t), Some(t))),
        Some((a, b)) => {
            let (a, b) = (end(a)?, end(b)?);
            match (a, b) {
                (None, None) => Err(bad()),
                (Some(x), Some(y)) if x > y => Err(StacError::bad(format!("datetime {s:?} ends before it starts"))),
                r => Ok(r),
            }
        }
    }
}

fn parse_limit(n: i64) -> Result<usize, StacError> {
    if n < 1 {
        return Err(StacError::bad(format!("limit {n} is not a positive number")));
    }
    Ok((n as usize).min(MAX_LIMIT))
}

fn parse_token(s: &str) -> Result<usize, StacError> {
    s.parse().map_err(|_| StacError::bad(format!("token {s:?} is not one this server gave")))
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect()
}

impl Search {
    /// From a query string (`GET`); unknown parameters are ignored, as
    /// OGC API Features allows.
    fn from_query(query: &str) -> Result<Search, StacError> {
        let mut q = Search { limit: DEFAULT_LIMIT, ..Search::default() };
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "bbox" => q.bbox = Some(parse_bbox_text(&v)?),
                "datetime" => q.datetime = Some(parse_datetime(&v)?),
                "collections" => q.collections = Some(list(&v)),
                "ids" => q.ids = Some(list(&v)),
                "limit" => q.limit = parse_limit(v.trim().parse().map_err(|_| StacError::bad(format!("limit {v:?} is not a number")))?)?,
                "token" => q.offset = parse_token(&v)?,
                _ => {}
            }
        }
        Ok(q)
    }

    /// From a `POST` body (JSON); unknown members are ignored.
    fn from_json(body: &[u8]) -> Result<Search, StacError> {
        let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body).map_err(|e| StacError::bad(format!("the search body is not JSON: {e}")))?
        };
        let obj = v.as_object().ok_or_else(|| StacError::bad("the search body is not a JSON object"))?;
        let strings = |key: &str| -> Result<Option<Vec<String>>, StacError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(list(s))),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string).ok_or_else(|| StacError::bad(format!("{key} holds a non-string"))))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(StacError::bad(format!("{key} is not a list of strings"))),
            }
        };
        let mut q = Search { limit: DEFAULT_LIMIT, collections: strings("collections")?, ids: strings("ids")?, ..Search::default() };
        match obj.get("bbox") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                let nums: Option<Vec<f64>> = a.iter().map(Value::as_f64).collect();
                q.bbox = Some(parse_bbox(&nums.ok_or_else(|| StacError::bad("bbox holds a non-number"))?)?);
            }
            Some(Value::String(s)) => q.bbox = Some(parse_bbox_text(s)?),
            Some(_) => return Err(StacError::bad("bbox is not a list of 4 numbers")),
        }
        match obj.get("datetime") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => q.datetime = Some(parse_datetime(s)?),
            Some(_) => return Err(StacError::bad("datetime is not a string")),
        }
        match obj.get("limit") {
            None | Some(Value::Null) => {}
            Some(n) => q.limit = parse_limit(n.as_i64().ok_or_else(|| StacError::bad("limit is not an integer"))?)?,
        }
        match obj.get("token") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => q.offset = parse_token(s)?,
            Some(n) => q.offset = n.as_u64().map(|n| n as usize).ok_or_else(|| StacError::bad("token is not one this server gave"))?,
        }
        Ok(q)
    }

    /// Whether a collection's box meets the search box (a search box
    /// across the antimeridian is two boxes).
    fn meets(&self, b: [f64; 4]) -> bool {
        self.bbox.is_none_or(|q| super::web::boxes_meet(q, b))
    }

    fn in_time(&self, t: Timestamp) -> bool {
        match self.datetime {
            None => true,
            Some((a, b)) => a.is_none_or(|a| t.0 >= a) && b.is_none_or(|b| t.0 <= b),
        }
    }
}

/// Every item a search matches, in collection then time order, as
/// (dataset, its box, slice index): cheap to hold, documents are made
/// only for the page returned.
async fn matches(st: &AppState, q: &Search) -> Result<Vec<(Arc<ServedDataset>, [f64; 4], usize)>, StacError> {
    let datasets = match &q.collections {
        // A collection searched for by name that does not exist matches nothing.
        Some(names) => {
            let mut out = Vec::new();
            for n in names {
                match st.archive.dataset(n).await {
                    Ok(s) => out.push(s),
                    Err(ArchiveError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            out
        }
        None => served_datasets(st).await?,
    };
    let mut out = Vec::new();
    for s in datasets {
        let bbox = wgs84_bbox(&s);
        if !q.meets(bbox) {
            continue;
        }
        let name = s.dataset.def.name.as_str().to_string();
        for (k, t) in s.times.iter().enumerate() {
            if q.in_time(*t) && q.ids.as_ref().is_none_or(|ids| ids.contains(&item_id(&name, *t))) {
                out.push((s.clone(), bbox, k));
            }
        }
    }
    Ok(out)
}

/// One page of a search as a FeatureCollection; `next` makes the link to
/// the following page from its offset.
async fn page(st: &AppState, base: &str, q: &Search, own: Value, next: impl Fn(usize) -> Value) -> Result<Response, StacError> {
    let all = matches(st, q).await?;
    let end = q.offset.saturating_add(q.limit).min(all.len());
    let features: Vec<Value> = all.get(q.offset..end).unwrap_or_default().iter().map(|(s, b, k)| item_doc(base, s, *k, *b)).collect();
    let mut links = vec![own, link("root", format!("{base}/stac"), JSON)];
    if end < all.len() {
        links.push(next(end));
    }
    let doc = json!({
        "type": "FeatureCollection",
        "features": features,
        "links": links,
        "numberReturned": features.len(),
        "numberMatched": all.len(),
    });
    Ok(document(GEOJSON, &doc))
}

/// A query string with `token` set to `offset` (other parameters kept).
fn with_token(query: &str, offset: usize) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "token") {
        out.append_pair(&k, &v);
    }
    out.append_pair("token", &offset.to_string());
    out.finish()
}

/// `GET /stac/collections/{dataset}/items`: a search within one
/// collection (bbox, datetime, limit and token apply).
pub(super) async fn items(State(st): State<AppState>, headers: HeaderMap, Path(name): Path<String>, RawQuery(query): RawQuery) -> Result<Response, StacError> {
    let query = query.unwrap_or_default();
    let mut q = Search::from_query(&query)?;
    served(&st, &name).await?;
    q.collections = Some(vec![name.clone()]);
    let base = base_url(&headers);
    let url = format!("{base}/stac/collections/{name}/items");
    let own = link("self", if query.is_empty() { url.clone() } else { format!("{url}?{query}") }, GEOJSON);
    page(&st, &base, &q, own, |off| link("next", format!("{url}?{}", with_token(&query, off)), GEOJSON)).await
}

/// `GET /stac/search`.
pub(super) async fn search_get(State(st): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Result<Response, StacError> {
    let query = query.unwrap_or_default();
    let q = Search::from_query(&query)?;
    let base = base_url(&headers);
    let url = format!("{base}/stac/search");
    let own = link("self", if query.is_empty() { url.clone() } else { format!("{url}?{query}") }, GEOJSON);
    page(&st, &base, &q, own, |off| link("next", format!("{url}?{}", with_token(&query, off)), GEOJSON)).await
}

/// `POST /stac/search`: the next page is a POST of the same body with
/// a token, as STAC API describes.
pub(super) async fn search_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, StacError> {
    let q = Search::from_json(&body)?;
    let base = base_url(&headers);
    let url = format!("{base}/stac/search");
    let own = json!({ "rel": "self", "href": url, "type": GEOJSON, "method": "POST" });
    let sent: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({}));
    page(&st, &base, &q, own, |off| {
        let mut next = sent.clone();
        if let Some(o) = next.as_object_mut() {
            o.insert("token".into(), json!(off.to_string()));
        }
        json!({ "rel": "next", "href": url, "type": GEOJSON, "method": "POST", "body": next, "merge": false })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_instants_or_intervals() {
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        assert_eq!(parse_datetime("2010-01-02T12:00:00Z").unwrap(), (Some(t("2010-01-02T12:00:00Z")), Some(t("2010-01-02T12:00:00Z"))));
        assert_eq!(parse_datetime("../2010-01-02T00:00:00Z").unwrap(), (None, Some(t("2010-01-02T00:00:00Z"))));
        assert_eq!(parse_datetime("2010-01-02T00:00:00+01:00/").unwrap(), (Some(t("2010-01-01T23:00:00Z")), None));
        for bad in ["yesterday", "../..", "2010-01-03T00:00:00Z/2010-01-02T00:00:00Z", "2010-01-02"] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn boxes_meet_across_the_antimeridian() {
        assert!(parse_bbox_text("1,2,3").is_err() && parse_bbox_text("0,10,1,5").is_err() && parse_bbox_text("a,b,c,d").is_err());
        let q = Search { bbox: Some(parse_bbox_text("170,-10,-170,10").unwrap()), ..Search::default() };
        assert!(q.meets([100.0, 0.0, 180.0, 60.0]) && q.meets([-180.0, -5.0, -175.0, 5.0]) && !q.meets([0.0, 0.0, 10.0, 10.0]));
    }

    #[test]
    fn item_ids_are_url_safe() {
        assert_eq!(item_id("acc", Timestamp(1_262_347_200_000)), "acc-20100101T120000");
        assert_eq!(item_id("acc", Timestamp(1_262_347_200_500)), "acc-20100101T120000500");
    }

    #[test]
    fn next_tokens_keep_the_other_parameters() {
        assert_eq!(with_token("limit=1&token=3&bbox=1%2C2%2C3%2C4", 4), "limit=1&bbox=1%2C2%2C3%2C4&token=4");
    }
}
