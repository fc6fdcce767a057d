//! The web catalogue: the index at `/` (search by text, box, time and
//! variable, paged), a page per dataset at `/datasets/<name>` (metadata,
//! a map preview from the WMS, a subset builder), and the machine-readable
//! `/catalog.json` and THREDDS `/catalog.xml`.
//!
//! Pages are rendered on the server (maud) and work without JavaScript;
//! one small script, one stylesheet and the icon are compiled into the
//! binary and served from `/static`, so nothing is fetched from another
//! host (archives run on closed networks) and there is no front-end build.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | handlers and assets |
//! | `catalog.rs` | per-dataset summaries, kept per version, and the index's filters |
//! | `subset.rs` | the subset builder: form -> constraints -> links and snippets |
//! | `pages.rs` | the HTML |

mod catalog;
pub mod pages;
mod subset;

pub use catalog::{Summaries, boxes_meet};

use super::AppState;
use crate::archive::ArchiveError;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog::{Filter, Summary};
use serde_json::json;
use std::sync::Arc;

const CSS: &str = include_str!("tessera.css");
const JS: &str = include_str!("tessera.js");
const ICON: &str = include_str!("favicon.svg");

fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    r
}

pub(super) async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

pub(super) async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

pub(super) async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

/// A page-shaped error for people.
fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    html_response(status, pages::error_page(title, message).into_string())
}

fn archive_error(e: ArchiveError) -> Response {
    let e = super::DapError::from(e);
    error_page(e.status, "Unavailable", &e.message)
}

/// Every dataset's summary, by name: from memory unless the dataset's
/// version moved. One catalogue query (names and versions) per call.
async fn summaries(st: &AppState) -> Result<Vec<Arc<Summary>>, Response> {
    st.check_catalogue().map_err(|e| error_page(e.status, "Unavailable", &e.message))?;
    let datasets = st.archive.catalogue.dataset_states().await.map_err(|e| archive_error(e.into()))?;
    let mut out = Vec::with_capacity(datasets.len());
    for (name, state) in &datasets {
        let name = name.as_str();
        if let Some(s) = st.summaries.get(name, *state) {
            out.push(s);
            continue;
        }
        match summary_of(st, name).await {
            Ok(Some(s)) => {
                st.summaries.put(s.clone());
                out.push(s);
            }
            Ok(None) => {} // deleted since the listing
            Err(e) => tracing::warn!(dataset = name, error = %e, "left out of the web catalogue"),
        }
    }
    st.summaries.keep_only(&datasets.iter().map(|(n, _)| n.as_str()).collect());
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A dataset's summary read from the catalogue. Its served view is built
/// and dropped, not kept with the views requests use: a listing of
/// thousands of datasets must not hold thousands of views.
async fn summary_of(st: &AppState, name: &str) -> Result<Option<Arc<Summary>>, ArchiveError> {
    let Ok(dn) = crate::model::DatasetName::parse(name) else { return Ok(None) };
    let cat = &st.archive.catalogue;
    let Some(dataset) = cat.dataset(&dn).await? else { return Ok(None) };
    let vars = cat.variables(dataset.id).await?;
    let slices = cat.time_slices(dataset.id).await?;
    let served = crate::archive::ServedDataset::build(dataset, vars, slices)?;
    Ok(Some(Arc::new(Summary::of(&served))))
}

/// `GET /`: the index; `?partial=1` gives only the results (the script
/// asks for them while the user types).
pub(super) async fn index(State(st): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let all = match summaries(&st).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let partial = url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "partial" && v == "1");
    let (filter, error) = match Filter::from_query(&query) {
        Ok(f) => (f, None),
        Err(e) => (Filter::default(), Some(e)),
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let results = match &error {
        Some(e) => maud::html! { p.error role="alert" { (e) } },
        None => {
            let (page, matched) = catalog::search(&all, &filter);
            pages::results(&filter, &page, matched)
        }
    };
    if partial {
        return html_response(status, results.into_string());
    }
    html_response(status, pages::index(&filter, None, results, &all).into_string())
}

/// `GET /catalog.json`: the index's search for programs (same filters,
/// same pages).
pub(super) async fn catalog_json(State(st): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let filter = match Filter::from_query(&query) {
        Ok(f) => f,
        Err(e) => return json_response(StatusCode::BAD_REQUEST, json!({ "code": 400, "description": e })),
    };
    let all = match summaries(&st).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let base = super::stac::base_url(&headers);
    let (page, matched) = catalog::search(&all, &filter);
    let pages = matched.div_ceil(filter.per_page).max(1);
    let link = |p: usize| format!("{base}/catalog.json?{}", filter.query(p));
    let doc = json!({
        "numberMatched": matched,
        "page": filter.page,
        "pages": pages,
        "datasets": page.iter().map(|s| json!({
            "name": s.name,
            "title": s.title,
            "description": s.description,
            "variables": s.variables,
            "bbox": s.bbox,
            "time": s.time.as_ref().map(|(a, b)| json!({ "start": a, "end": b, "steps": s.steps })),
            "grid": { "nx": s.nx, "ny": s.ny, "crs": s.crs },
            "bytes": s.bytes,
            "tiles": s.tiles,
            "links": {
                "html": format!("{base}/datasets/{}", s.name),
                "opendap": format!("{base}/dap/{}", s.name),
                "stac": format!("{base}/stac/collections/{}", s.name),
            },
        })).collect::<Vec<_>>(),
        "links": {
            "self": link(filter.page),
            "next": (filter.page < pages).then(|| link(filter.page + 1)),
            "prev": (filter.page > 1).then(|| link(filter.page - 1)),
        },
    });
    json_response(StatusCode::OK, doc)
}

fn json_response(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `GET /catalog.xml`: a THREDDS client catalog (InvCatalog 1.0.1) of
/// every dataset, with its OPeNDAP and WMS access.
pub(super) async fn catalog_xml(State(st): State<AppState>) -> Response {
    let all = match summaries(&st).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let e = crate::markup::escape;
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <catalog xmlns=\"http://www.unidata.ucar.edu/namespaces/thredds/InvCatalog/v1.0\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" name=\"tessera\" version=\"1.0.1\">\n\
         \x20 <service name=\"all\" serviceType=\"Compound\" base=\"\">\n\
         \x20   <service name=\"odap\" serviceType=\"OPeNDAP\" base=\"/dap/\"/>\n\
         \x20   <service name=\"wms\" serviceType=\"WMS\" base=\"/wms\"/>\n\
         \x20 </service>\n",
    );
    for s in &all {
        x.push_str(&format!("  <dataset name=\"{}\" ID=\"{}\" urlPath=\"{}\">\n    <serviceName>all</serviceName>\n", e(&s.title), e(&s.name), e(&s.name)));
        x.push_str(&format!("    <dataSize units=\"bytes\">{}</dataSize>\n", s.bytes));
        let b = s.bbox;
        x.push_str(&format!(
            "    <geospatialCoverage>\n      <northsouth><start>{}</start><size>{}</size><units>degrees_north</units></northsouth>\n      <eastwest><start>{}</start><size>{}</size><units>degrees_east</units></eastwest>\n    </geospatialCoverage>\n",
            b[1],
            b[3] - b[1],
            b[0],
            if b[2] >= b[0] { b[2] - b[0] } else { b[2] - b[0] + 360.0 }
        ));
        if let Some((a, z)) = &s.time {
            x.push_str(&format!("    <timeCoverage><start>{}</start><end>{}</end></timeCoverage>\n", e(a), e(z)));
        }
        if !s.variables.is_empty() {
            x.push_str("    <variables vocabulary=\"CF-1.0\">\n");
            for v in &s.variables {
                x.push_str(&format!(
                    "      <variable name=\"{}\" vocabulary_name=\"{}\" units=\"{}\">{}</variable>\n",
                    e(&v.name),
                    e(v.standard_name.as_deref().unwrap_or("")),
                    e(v.units.as_deref().unwrap_or("")),
                    e(v.long_name.as_deref().unwrap_or(&v.name))
                ));
            }
            x.push_str("    </variables>\n");
        }
        x.push_str("  </dataset>\n");
    }
    x.push_str("</catalog>\n");
    let mut r = x.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
    r
}

/// The dataset, its summary and its WMS layers, or a page saying why not.
async fn dataset_parts(st: &AppState, name: &str) -> Result<(Arc<crate::archive::ServedDataset>, Arc<Summary>), Response> {
    st.check_catalogue().map_err(|e| error_page(e.status, "Unavailable", &e.message))?;
    let served = st.archive.dataset(name).await.map_err(|e| match e {
        ArchiveError::NotFound(m) => error_page(StatusCode::NOT_FOUND, "No such dataset", &m),
        other => archive_error(other),
    })?;
    let summary = match st.summaries.get(name, served.dataset.state()) {
        Some(s) => s,
        None => {
            let s = Arc::new(Summary::of(&served));
            st.summaries.put(s.clone());
            s
        }
    };
    Ok((served, summary))
}

/// The builder's request from the query string, or its default: the map's
/// variable (else the first data variable) everywhere at the map's time
/// step (else the last), as ERDDAP's forms start from the latest data, so
/// that the page's first links are small and work.
fn subset_request(served: &crate::archive::ServedDataset, query: &str, map: &pages::MapChoice) -> (subset::Request, Option<String>) {
    match subset::Request::from_query(query) {
        Ok(Some(r)) => (r, None),
        Ok(None) => {
            let data = served.vars.iter().filter(|v| v.def.kind == crate::model::VarKind::Data);
            let first = map.layer.clone().filter(|l| served.vars.iter().any(|v| &v.def.name == l)).or_else(|| {
                let mut d = data.clone();
                d.find(|v| v.def.has_time && !served.times.is_empty()).or_else(|| data.clone().find(|v| !v.def.has_time)).map(|v| v.def.name.clone())
            });
            let t = served.times.len().checked_sub(1).map(|last| map.time.filter(|t| *t <= last).unwrap_or(last));
            let when = t.map(|t| pages::pretty_time(&served.dataset.def.time.show(served.times[t]))).unwrap_or_default();
            (subset::Request { vars: first.into_iter().collect(), start: when.clone(), end: when, stride: 1, tstride: 1, ..Default::default() }, None)
        }
        Err(e) => (subset::Request { stride: 1, tstride: 1, ..Default::default() }, Some(e)),
    }
}

/// The builder's request from the query string (or its default) and its
/// answer.
fn build_from(st: &AppState, served: &crate::archive::ServedDataset, query: &str, map: &pages::MapChoice) -> (subset::Request, Result<subset::Built, String>) {
    let (request, error) = subset_request(served, query, map);
    let built = match error {
        Some(e) => Err(e),
        None => subset::build(served, &request, st.archive.limits.max_response_bytes),
    };
    (request, built)
}

/// `GET /datasets/{name}`: the dataset page.
pub(super) async fn dataset(State(st): State<AppState>, headers: HeaderMap, Path(name): Path<String>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let (served, summary) = match dataset_parts(&st, &name).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let layers = super::wms::layer_infos(&served).unwrap_or_default();
    let map = pages::MapChoice::from_query(&query);
    let (request, built) = build_from(&st, &served, &query, &map);
    let dap_url = format!("{}/dap/{}", super::stac::base_url(&headers), served.dataset.def.name);
    // The access links' download is the builder's default: the same
    // answer unless the form asked for another subset.
    let latest_nc = if matches!(subset::Request::from_query(&query), Ok(None)) {
        latest_download(&dap_url, &request, &built)
    } else {
        let (r, b) = build_from(&st, &served, "", &map);
        latest_download(&dap_url, &r, &b)
    };
    let page = pages::DatasetPage { served: &served, summary: &summary, layers: &layers, map, request, built, dap_url, latest_nc };
    html_response(StatusCode::OK, pages::layout(&served.dataset.def.title, pages::dataset(&page)).into_string())
}

/// The `.nc` link of the builder's default (the map's variable at its
/// step), named for the page's access links, when within the size limit.
fn latest_download(dap_url: &str, r: &subset::Request, built: &Result<subset::Built, String>) -> Option<(String, String)> {
    let b = built.as_ref().ok().filter(|b| !b.over_limit())?;
    let url = subset::links(dap_url, b).into_iter().find(|(label, _)| label.starts_with("NetCDF-3"))?.1;
    let what = match r.start.as_str() {
        "" => format!("{} ({})", r.vars.join(", "), catalog::human_bytes(b.bytes)),
        t => format!("{} at {t} ({})", r.vars.join(", "), catalog::human_bytes(b.bytes)),
    };
    Some((what, url))
}

/// `GET /datasets/{name}/subset`: the builder's answer alone (size, links,
/// snippets), for the script to show while the form is edited.
pub(super) async fn subset_fragment(State(st): State<AppState>, headers: HeaderMap, Path(name): Path<String>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let (served, _) = match dataset_parts(&st, &name).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let map = pages::MapChoice::from_query(&query);
    let (request, built) = build_from(&st, &served, &query, &map);
    let status = if built.is_ok() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let dap_url = format!("{}/dap/{}", super::stac::base_url(&headers), served.dataset.def.name);
    html_response(status, pages::subset_result(&dap_url, &name, &request, &built).into_string())
}
