//! The DAP2 handler: `/dap/<dataset><suffix>?<constraint>`.
//!
//! One request reads top to bottom: the dataset's served view
//! ([`crate::archive::Archive::dataset`]), conditional headers, the
//! constraint resolved once, a data slot unless the response is small, then
//! per suffix a text response or resolve -> plan -> encoder -> [`send`].
//! Every error that carries a status is decided here, before the first byte.

use super::body::send;
use super::{AppState, DapError, attachment, dap_headers, html, range, text, version_body};
use crate::archive::ArchiveError;
use crate::encode::nc::NcExport;
use crate::encode::nc4::Nc4;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use headers::{ContentRange, ETag, HeaderMapExt, IfModifiedSince, IfNoneMatch, IfRange, LastModified};
use std::sync::Arc;

/// The DAP2 responses a dataset URL takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suffix {
    Dds,
    Das,
    Dods,
    Ascii,
    Html,
    Info,
    Ver,
    Help,
    Nc,
    Nc4,
    Ncml,
    Png,
}

impl Suffix {
    const ALL: [(&'static str, Suffix); 13] = [
        ("nc", Suffix::Nc),
        ("nc4", Suffix::Nc4),
        ("ncml", Suffix::Ncml),
        ("dds", Suffix::Dds),
        ("das", Suffix::Das),
        ("dods", Suffix::Dods),
        ("ascii", Suffix::Ascii),
        ("asc", Suffix::Ascii),
        ("html", Suffix::Html),
        ("info", Suffix::Info),
        ("ver", Suffix::Ver),
        ("help", Suffix::Help),
        ("png", Suffix::Png),
    ];
}

/// Splits `name.suffix`; `None` as the suffix when none is recognised.
pub fn split_suffix(path: &str) -> (&str, Option<Suffix>) {
    if let Some((name, ext)) = path.rsplit_once('.') {
        if let Some((_, s)) = Suffix::ALL.iter().find(|(e, _)| *e == ext) {
            return (name, Some(*s));
        }
    }
    (path, None)
}

/// Percent-decodes a path (the `percent-encoding` crate, which the URL
/// parser itself uses); `None` for non-UTF-8. A `%` not followed by two
/// hex digits stays a `%`, which no dataset name contains.
fn decode_path(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw).decode_utf8().ok().map(|s| s.into_owned())
}

pub(super) async fn dap(State(st): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    // The raw path, decoded here: a malformed one is a DAP2 404, not a
    // framework error page.
    let raw = uri.path().strip_prefix("/dap/").unwrap_or("");
    let Some(path) = decode_path(raw) else {
        return DapError::not_found("no such dataset: the path is not valid percent-encoded UTF-8").into_response();
    };
    match dap_inner(&st, &method, &headers, &path, query.as_deref().unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn dap_inner(st: &AppState, method: &Method, headers: &HeaderMap, path: &str, query: &str) -> Result<Response, DapError> {
    st.check_catalogue()?;
    if path.contains('/') {
        return Err(DapError::not_found(format!("no dataset {path:?}: dataset names have no '/'")));
    }
    let (name, suffix) = split_suffix(path);
    let Some(suffix) = suffix else {
        // A bare dataset URL (a person pasting the OPeNDAP URL into a
        // browser): the dataset's page; `.html` keeps the DAP2 form.
        st.archive.dataset(name).await?;
        return Ok(Redirect::to(&format!("/datasets/{name}")).into_response());
    };
    let served = st.archive.dataset(name).await?;
    // Conditional requests (RFC 9110 §13): every response is a function of
    // the dataset's catalogue version and the constraint. The `headers`
    // crate parses the validators, and HTTP dates in all three of their
    // forms.
    let updated = std::time::SystemTime::from(served.dataset.updated_at);
    let last_modified = LastModified::from(updated);
    let tag = etag(&served, &format!("{suffix:?}"), query);
    // (`typed_get` of a list header that is absent gives an empty list.)
    let if_none_match = headers.contains_key(header::IF_NONE_MATCH).then(|| headers.typed_get::<IfNoneMatch>()).flatten();
    let not_modified = match if_none_match {
        Some(inm) => !inm.precondition_passes(&tag),
        None => headers.typed_get::<IfModifiedSince>().is_some_and(|since| !since.is_modified(updated)),
    };
    if not_modified && suffix != Suffix::Nc4 {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r.headers_mut().typed_insert(tag);
        r.headers_mut().typed_insert(last_modified);
        return Ok(r);
    }
    let heavy = matches!(suffix, Suffix::Dods | Suffix::Ascii | Suffix::Nc | Suffix::Nc4 | Suffix::Png) && method != Method::HEAD;
    // Small data responses (a point, a short series) cost next to nothing:
    // they never queue behind large ones for a data slot.
    // A data request is resolved once, before it waits for a slot: a bad
    // constraint never queues.
    let subset = match suffix {
        Suffix::Dods | Suffix::Ascii => Some(served.resolve(query)?),
        _ => None,
    };
    // The DDS a .dods response opens with, rendered once.
    let dds = match (suffix, &subset) {
        (Suffix::Dods, Some(s)) => Some(crate::dap::dds::subset_dds(s)),
        _ => None,
    };
    let dods_len = match (&subset, &dds) {
        (Some(s), Some(d)) => crate::dap::dds::dods_len_of(d, s),
        (Some(s), None) => crate::dap::dds::dods_len(s),
        _ => None,
    };
    let small_request = dods_len.is_some_and(|b| b <= SMALL_RESPONSE);
    let permit = if heavy && !small_request { Some(st.heavy_slot().await?) } else { None };
    let mut resp = match suffix {
        Suffix::Dds => {
            let dds = if query.is_empty() { served.dds.clone() } else { crate::dap::dds::subset_dds(&served.resolve(query)?) };
            text("dods_dds", "text/plain; charset=utf-8", dds)
        }
        // The DAS is not constrained in DAP2; the query is ignored.
        Suffix::Das => text("dods_das", "text/plain; charset=utf-8", served.das.clone()),
        Suffix::Ver => text("dods_version", "application/json", version_body()),
        Suffix::Help => text("dods_help", "text/plain; charset=utf-8", html::HELP.to_string()),
        Suffix::Html => text("dods_html", "text/html; charset=utf-8", html::form(&served)),
        Suffix::Info => text("dods_info", "text/html; charset=utf-8", html::info(&served)),
        Suffix::Dods => {
            let subset = subset.ok_or_else(|| DapError::new(StatusCode::INTERNAL_SERVER_ERROR, "no subset"))?;
            let len = dods_len.ok_or_else(|| DapError::new(StatusCode::INTERNAL_SERVER_ERROR, "response length unknown"))?;
            let dds = dds.ok_or_else(|| DapError::new(StatusCode::INTERNAL_SERVER_ERROR, "no DDS"))?;
            let plan = st.archive.plan(served.clone(), subset, Some(len)).await?;
            let enc = crate::encode::dods::Dods::new(plan, dds)
                .ok_or_else(|| DapError::new(StatusCode::INTERNAL_SERVER_ERROR, "response length unknown"))?;
            send(st, method, Box::new(enc), StatusCode::OK, None, permit)
        }
        Suffix::Ncml => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
            let location = format!("http://{host}/dap/{}", served.dataset.def.name);
            let mut r = text("dods_ncml", "application/xml", crate::encode::ncml::render(&served, &location));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
            r
        }
        Suffix::Nc => netcdf_classic(st, method, headers, served.clone(), query, permit, tag.clone()).await?,
        Suffix::Nc4 => netcdf4(st, method, served.clone(), query, permit).await?,
        Suffix::Png => super::wms::constraint_png(st, served.clone(), query).await?,
        Suffix::Ascii => {
            let subset = subset.ok_or_else(|| DapError::new(StatusCode::INTERNAL_SERVER_ERROR, "no subset"))?;
            // ASCII is a few times larger than XDR; the limit applies to XDR.
            let len = subset.dods_data_len();
            let plan = st.archive.plan(served.clone(), subset, len).await?;
            send(st, method, Box::new(crate::encode::ascii::Ascii { plan }), StatusCode::OK, None, permit)
        }
    };
    resp.headers_mut().typed_insert(last_modified);
    if suffix != Suffix::Nc4 {
        resp.headers_mut().typed_insert(tag);
    }
    Ok(resp)
}

/// Data responses up to this size (XDR bytes) take no data slot.
const SMALL_RESPONSE: u64 = 256 << 10;

/// A strong validator: the output is a pure function of the dataset's
/// catalogue state (id, version), the response kind and the constraint.
fn etag(served: &crate::archive::ServedDataset, kind: &str, query: &str) -> ETag {
    let h = blake3::hash(format!("{}:{}:{kind}:{query}", served.dataset.id, served.dataset.version).as_bytes());
    format!("\"{}\"", &h.to_hex()[..24]).parse().expect("a quoted hex string is an entity tag")
}

async fn plan_export(st: &AppState, served: Arc<crate::archive::ServedDataset>, query: &str) -> Result<NcExport, DapError> {
    let mut subset = served.resolve(query)?;
    // A downloaded file carries what its variables refer to (bounds,
    // auxiliary coordinates), so that it describes itself.
    let extra = served.referenced_items(&subset);
    if !extra.is_empty() {
        subset = served.resolve(&format!("{query},{}", extra.join(",")))?;
    }
    let plan = st.archive.plan(served, subset, None).await?;
    let ce = crate::dap::ce::percent_decode(query);
    let export = NcExport::new(plan, &ce)?;
    let size = export.layout.total_len();
    if size > st.archive.limits.max_response_bytes {
        return Err(ArchiveError::TooLarge { size, limit: st.archive.limits.max_response_bytes }.into());
    }
    Ok(export)
}

/// `.nc`: a NetCDF classic file produced while it is sent; honours
/// `Range` (one range) and `If-Range`.
async fn netcdf_classic(
    st: &AppState,
    method: &Method,
    headers: &HeaderMap,
    served: Arc<crate::archive::ServedDataset>,
    query: &str,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    tag: ETag,
) -> Result<Response, DapError> {
    use range::RangeRequest;
    let export = plan_export(st, served, query).await?;
    let total = export.layout.total_len();
    // If-Range with another validator (the dataset changed) sends it all;
    // only the entity tag counts: a date has a one-second granularity, so
    // two versions within one second would mix.
    let if_range_ok = headers.typed_get::<IfRange>().is_none_or(|ir| !ir.is_modified(Some(&tag), None));
    let requested = if if_range_ok {
        range::parse(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), total)
    } else {
        RangeRequest::Whole
    };
    let (status, span) = match requested {
        RangeRequest::Whole => (StatusCode::OK, 0..total),
        RangeRequest::Partial(r) => (StatusCode::PARTIAL_CONTENT, r.start..r.end + 1),
        RangeRequest::Unsatisfiable => {
            let mut r = DapError::new(StatusCode::RANGE_NOT_SATISFIABLE, format!("the file is {total} bytes long")).into_response();
            r.headers_mut().typed_insert(ContentRange::unsatisfied_bytes(total));
            return Ok(r);
        }
    };
    let content_range = ContentRange::bytes(span.clone(), total);
    let mut r = send(st, method, Box::new(export), status, Some(span), permit);
    let h = r.headers_mut();
    h.typed_insert(tag);
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(cr) = content_range {
            h.typed_insert(cr);
        }
    }
    Ok(r)
}

/// `.nc4`: NetCDF-4 written through libnetcdf to a temporary file, then
/// streamed; the file is removed on every path (done, error, disconnect).
async fn netcdf4(
    st: &AppState,
    method: &Method,
    served: Arc<crate::archive::ServedDataset>,
    query: &str,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<Response, DapError> {
    let export = plan_export(st, served, query).await?;
    if method == Method::HEAD {
        // Its length is known only once the file is written: HEAD does not
        // write it.
        let mut r = Response::new(Body::empty());
        dap_headers(r.headers_mut(), "dods_netcdf4");
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-netcdf4"));
        attachment(&mut r, &Nc4::filename(&export));
        return Ok(r);
    }
    let tiles = st.archive.tiles.clone();
    let enc = crate::blocking::run("write nc4", move || Nc4::write(&export, tiles.as_ref()))
        .await
        .map_err(|e| DapError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(send(st, method, Box::new(enc), StatusCode::OK, None, permit))
}
