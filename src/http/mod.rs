//! The HTTP surface (axum): DAP2 at `/dap/<dataset><suffix>`, plus
//! `/version`, `/help` and a dataset index at `/`.
//!
//! Routing strips the last recognised suffix from the final path segment;
//! the query string is the constraint expression, passed through raw (DAP2
//! has no key=value parameters, and `+` is not a space). Every error that
//! can carry a status is decided before the first byte; a `.dods` body is
//! produced on a blocking thread into a bounded channel, so memory is
//! bounded by a band, not by the response, and a client that goes away
//! stops the producer.

pub mod error;
pub mod html;
pub mod ops;
pub mod range;

use crate::archive::{Archive, ArchiveError};
use crate::encode::{Encoder, Stop};
use crate::encode::nc::NcExport;
use crate::encode::nc4::Nc4;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use headers::{ContentRange, ETag, HeaderMapExt, IfModifiedSince, IfNoneMatch, IfRange, LastModified};
pub use error::DapError;
use std::ops::Range;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub archive: Arc<Archive>,
    pub limits: crate::config::ServerLimits,
    /// Slots for data responses (.dods, .ascii, .nc, .nc4).
    heavy: Arc<tokio::sync::Semaphore>,
    /// Data responses in flight per client address.
    pub(crate) per_client: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    /// Requests waiting for a slot.
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    /// The catalogue's schema is up to date; until then (a server started
    /// before its database) requests get 503. Holds why not, if not.
    pub catalogue_ready: Arc<std::sync::RwLock<Result<(), String>>>,
}

impl AppState {
    pub fn new(archive: Arc<Archive>, limits: crate::config::ServerLimits) -> Self {
        let heavy = Arc::new(tokio::sync::Semaphore::new(limits.max_heavy_requests.max(1)));
        AppState {
            archive,
            limits,
            heavy,
            per_client: Arc::default(),
            waiting: Arc::default(),
            catalogue_ready: Arc::new(std::sync::RwLock::new(Ok(()))),
        }
    }

    /// 503 until the catalogue's migrations are applied.
    pub fn check_catalogue(&self) -> Result<(), DapError> {
        match &*self.catalogue_ready.read().unwrap_or_else(|p| p.into_inner()) {
            Ok(()) => Ok(()),
            Err(why) => Err(DapError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the catalogue is not ready: {why}; retry shortly"))),
        }
    }

    /// A slot for a data response: at once if one is free, after a short
    /// wait in a bounded queue otherwise, else 503 with Retry-After.
    async fn heavy_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, DapError> {
        use std::sync::atomic::Ordering;
        if let Ok(p) = self.heavy.clone().try_acquire_owned() {
            return Ok(p);
        }
        let busy = || {
            metrics::counter!("tessera_requests_rejected_total", "reason" => "busy").increment(1);
            DapError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the server is busy ({} data responses in progress, {} may wait); retry shortly",
                    self.limits.max_heavy_requests, self.limits.queue
                ),
            )
        };
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.limits.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy());
        }
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), self.heavy.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match r {
            Ok(Ok(p)) => Ok(p),
            _ => Err(busy()),
        }
    }
}

/// The router; tests drive it with `tower::ServiceExt::oneshot` or a socket.
pub fn router(state: AppState) -> Router {
    use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
    // gzip for text (DDS, DAS, ASCII, HTML, JSON, XML) when the client asks;
    // never for binary data (see README: gzip runs at a few MB/s on float
    // data, uncompressed responses at over 1 GB/s on loopback).
    let compress = tower_http::compression::CompressionLayer::new().gzip(true).no_br().no_deflate().no_zstd().compress_when(
        SizeAbove::new(512)
            .and(NotForContentType::new("application/octet-stream"))
            .and(NotForContentType::new("application/x-netcdf"))
            .and(NotForContentType::new("application/x-netcdf4")),
    );
    let cors = if state.limits.cors_origins.is_empty() {
        None
    } else {
        use tower_http::cors::{AllowOrigin, CorsLayer};
        let origins = &state.limits.cors_origins;
        let allow = if origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
        };
        Some(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([Method::GET, Method::HEAD])
                .expose_headers([
                    header::CONTENT_LENGTH,
                    header::CONTENT_RANGE,
                    header::ETAG,
                    header::CONTENT_DISPOSITION,
                    header::LAST_MODIFIED,
                ]),
        )
    };
    let r = Router::new()
        .route("/", get(index))
        .route("/dap", get(index))
        .route("/dap/", get(index))
        .route("/dap/{*path}", get(dap))
        .route("/version", get(ops::version))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics_page))
        .route("/help", get(help))
        .fallback(|| async { DapError::not_found("no such resource; see /help") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), ops::middleware))
        .layer(compress)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state);
    match cors {
        Some(c) => r.layer(c),
        None => r,
    }
}


/// The headers DAP clients look at (dap2.md §1.3).
pub fn dap_headers(h: &mut HeaderMap, description: &'static str) {
    h.insert("content-description", HeaderValue::from_static(description));
    h.insert("xdods-server", HeaderValue::from_static("dods/3.2"));
    h.insert(
        "xopendap-server",
        HeaderValue::from_str(&format!("tessera/{}", crate::VERSION)).unwrap_or(HeaderValue::from_static("tessera")),
    );
    h.insert("xdap", HeaderValue::from_static("2.0"));
}

fn text(description: &'static str, content_type: &'static str, body: String) -> Response {
    let mut r = body.into_response();
    dap_headers(r.headers_mut(), description);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn index(State(st): State<AppState>) -> Result<Response, DapError> {
    st.check_catalogue()?;
    let datasets = st.archive.catalogue.datasets().await.map_err(ArchiveError::from)?;
    Ok(text("dods_html", "text/html; charset=utf-8", html::index(&datasets)))
}

fn version_body() -> String {
    format!("{{\"tessera\": \"{}\", \"dap\": \"2.0\"}}\n", crate::VERSION)
}

async fn help() -> Response {
    text("dods_help", "text/plain; charset=utf-8", html::HELP.to_string())
}

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
}

impl Suffix {
    const ALL: [(&'static str, Suffix); 12] = [
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

async fn dap(State(st): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
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
        // A bare dataset URL: show the form to people.
        st.archive.dataset(name).await?;
        return Ok(Redirect::to(&format!("/dap/{name}.html")).into_response());
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
    let heavy = matches!(suffix, Suffix::Dods | Suffix::Ascii | Suffix::Nc | Suffix::Nc4) && method != Method::HEAD;
    // Small data responses (a point, a short series) cost next to nothing:
    // they never queue behind large ones for a data slot.
    // A data request is resolved once, before it waits for a slot: a bad
    // constraint never queues.
    let subset = match suffix {
        Suffix::Dods | Suffix::Ascii => Some(served.resolve(query)?),
        _ => None,
    };
    let dods_len = subset.as_ref().and_then(crate::dap::dds::dods_len);
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
            let plan = st.archive.plan(served.clone(), subset, Some(len)).await?;
            let enc = crate::encode::dods::Dods::new(plan)
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

/// A data slot held by a producer only while it produces: it lets go of
/// it whenever its client is slower than it, and takes it back (waiting
/// its turn) to produce more.
struct Slot {
    sem: Arc<tokio::sync::Semaphore>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Slot {
    fn release(&mut self) {
        self.permit = None;
    }
    fn take(&mut self, rt: &tokio::runtime::Handle) {
        if self.permit.is_none() {
            self.permit = rt.block_on(self.sem.clone().acquire_owned()).ok();
        }
    }
}

/// A sink for producers: forwards chunks; stops when the client is gone,
/// has taken nothing for `idle` (a stalled transfer), or the request's
/// time limit has passed (the body is then cut short).
fn sink_for(
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    limit: std::time::Duration,
    idle: std::time::Duration,
    mut slot: Slot,
    rt: tokio::runtime::Handle,
) -> impl FnMut(Vec<u8>) -> bool {
    use tokio::sync::mpsc::error::{SendTimeoutError, TrySendError};
    let deadline = std::time::Instant::now() + limit;
    move |chunk: Vec<u8>| {
        if std::time::Instant::now() > deadline {
            metrics::counter!("tessera_requests_rejected_total", "reason" => "timeout").increment(1);
            let _ = tx.try_send(Err(std::io::Error::other(format!("request time limit of {} s reached", limit.as_secs()))));
            return false;
        }
        let n = chunk.len() as u64;
        // Handed over in small pieces: a slow client then takes one every
        // so often, and `idle` measures a client that takes nothing, not
        // one that is merely slow.
        let all = Bytes::from(chunk);
        let mut at = 0;
        while at < all.len() {
            let piece = all.slice(at..(at + PIECE).min(all.len()));
            at += piece.len();
            let sent = match tx.try_send(Ok(piece)) {
                Ok(()) => true,
                Err(TrySendError::Closed(_)) => false,
                Err(TrySendError::Full(item)) => {
                    // The client is slower than we are: wait for it without
                    // holding a data slot.
                    slot.release();
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    match rt.block_on(tx.send_timeout(item, idle.min(left))) {
                        Ok(()) => {
                            slot.take(&rt);
                            true
                        }
                        Err(SendTimeoutError::Timeout(_)) if left < idle => {
                            metrics::counter!("tessera_requests_rejected_total", "reason" => "timeout").increment(1);
                            false
                        }
                        Err(SendTimeoutError::Timeout(_)) => {
                            metrics::counter!("tessera_requests_rejected_total", "reason" => "write_idle").increment(1);
                            tracing::warn!(idle_secs = idle.as_secs(), "the client took nothing for too long; transfer ended");
                            false
                        }
                        Err(SendTimeoutError::Closed(_)) => false,
                    }
                }
            };
            if !sent {
                return false;
            }
        }
        metrics::counter!("tessera_body_bytes_total").increment(n);
        true
    }
}

/// Data responses up to this size (XDR bytes) take no data slot.
const SMALL_RESPONSE: u64 = 256 << 10;

/// Bytes handed to the HTTP layer at a time (see [`sink_for`]).
const PIECE: usize = 64 << 10;

/// Sends an encoder's output (all of it, or the byte range `span` of an
/// encoder that can produce ranges): the headers come from the encoder,
/// the body is produced on a blocking thread while it is sent. A failure
/// after the first byte aborts the connection (the body ends in an error,
/// so the client sees a short transfer) and is logged; nothing is appended.
fn send(
    st: &AppState,
    method: &Method,
    enc: Box<dyn Encoder>,
    status: StatusCode,
    span: Option<Range<u64>>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Response {
    let len = match &span {
        Some(r) => Some(r.end - r.start),
        None => enc.len(),
    };
    let (content_type, description, filename, ranges) = (enc.content_type(), enc.description(), enc.filename(), enc.ranges());
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let label = filename.clone().unwrap_or_else(|| description.to_string());
        let span = span.unwrap_or(0..len.unwrap_or(u64::MAX));
        producer_body(st, permit, label, move |tiles, sink| enc.produce(tiles, span, sink))
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    dap_headers(h, description);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if ranges {
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if let Some(f) = filename {
        attachment(&mut r, &f);
    }
    r
}

/// Runs a blocking producer into a bounded channel and returns the body
/// that drains it. The producer holds a data slot only while it produces
/// (see [`Slot`]). A failure after the first byte ends the body in an
/// error, so the client sees a short transfer rather than a complete-looking
/// one.
fn producer_body(
    st: &AppState,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    label: String,
    produce: impl FnOnce(&dyn crate::store::port::TileStore, &mut dyn FnMut(Vec<u8>) -> bool) -> Result<(), Stop> + Send + 'static,
) -> Body {
    // Up to 1 MiB in flight between producer and connection.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let reader = st.archive.tiles.clone();
    let (limit, idle) = (st.limits.request_timeout, st.limits.write_idle_timeout);
    let slot = Slot { sem: st.heavy.clone(), permit };
    let rt = tokio::runtime::Handle::current();
    let complete = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = complete.clone();
    crate::blocking::spawn("produce response", move || {
        let mut sink = sink_for(tx.clone(), limit, idle, slot, rt);
        match produce(reader.as_ref(), &mut sink) {
            Ok(()) => done.store(true, std::sync::atomic::Ordering::Release),
            Err(Stop::Closed) => tracing::info!(response = %label, "client went away; response stopped"),
            Err(Stop::Failed(e)) => {
                tracing::error!(response = %label, error = %e, "response aborted after the first byte");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    Body::from_stream(EndsLoudly { inner: ReceiverStream::new(rx), complete, reported: false })
}

/// A producer's stream that ends in an error unless the producer finished:
/// a response stopped for any reason (time limit, stalled client, a fault)
/// is cut, never ended as if it were whole (chunked responses would
/// otherwise end with a proper last chunk).
struct EndsLoudly {
    inner: ReceiverStream<Result<Bytes, std::io::Error>>,
    complete: Arc<std::sync::atomic::AtomicBool>,
    reported: bool,
}

impl tokio_stream::Stream for EndsLoudly {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(None) if !self.complete.load(std::sync::atomic::Ordering::Acquire) && !self.reported => {
                self.reported = true;
                Poll::Ready(Some(Err(std::io::Error::other("the response was stopped before its end"))))
            }
            other => other,
        }
    }
}

/// The address a request came from (its TCP peer), for the per-client cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub std::net::IpAddr);

/// Resolves when the process is asked to stop (ctrl-c or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: no new connections, finishing requests in flight");
}

/// Serves `router` on a bound listener until `shutdown` resolves, then
/// stops accepting, lets requests in flight finish for up to
/// `limits.shutdown_grace`, and returns.
///
/// hyper directly (rather than `axum::serve`) for the header-read timeout:
/// a client that sends its request headers slowly, or keeps an idle
/// connection open, is cut off after `limits.header_read_timeout` instead of
/// holding a connection forever.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: &crate::config::ServerLimits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = tower::ServiceBuilder::new().layer(axum::Extension(ClientAddr(peer.ip()))).service(router.clone());
                let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all requests finished"),
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(grace_secs = limits.shutdown_grace.as_secs(), "requests still running after the grace period; exiting");
        }
    }
    Ok(())
}

/// A strong validator: the output is a pure function of the dataset's
/// catalogue state (id, version), the response kind and the constraint.
fn etag(served: &crate::archive::ServedDataset, kind: &str, query: &str) -> ETag {
    let h = blake3::hash(format!("{}:{}:{kind}:{query}", served.dataset.id, served.dataset.version).as_bytes());
    format!("\"{}\"", &h.to_hex()[..24]).parse().expect("a quoted hex string is an entity tag")
}

fn attachment(r: &mut Response, filename: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
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
