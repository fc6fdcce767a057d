//! The HTTP surface (axum): DAP2 at `/dap/<dataset><suffix>`, WMS at
//! `/wms`, a STAC API at `/stac`, plus `/version`, `/help` and a dataset
//! index at `/`.
//!
//! Routing strips the last recognised suffix from the final path segment;
//! the query string is the constraint expression, passed through raw (DAP2
//! has no key=value parameters, and `+` is not a space). Every error that
//! can carry a status is decided before the first byte; a `.dods` body is
//! produced on a blocking thread into a bounded channel, so memory is
//! bounded by a band, not by the response, and a client that goes away
//! stops the producer.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | state, router, index, the server and its shutdown |
//! | `dap.rs` | the DAP2 handler: one request, resolve -> plan -> encoder |
//! | `body.rs` | bodies produced while sent: data slots, slow clients, time limits |
//! | `error.rs` | the one table from error to status and DAP2 error body |
//! | `range.rs` | `Range: bytes=` |
//! | `ops.rs` | health, readiness, metrics, request ids and the access log |
//! | `html.rs` | the HTML pages |
//! | `wms.rs` | WMS 1.3.0 maps and legends, and PNGs of DAP constraints |
//! | `stac.rs` | the STAC API 1.0: landing page, collections, items, search |
//! | `web/` | the web catalogue: index, dataset pages, subset builder, `/catalog.json` and `.xml` |

mod body;
mod dap;
pub mod error;
pub mod html;
pub mod ops;
pub mod range;
mod stac;
mod web;
mod wms;

use crate::archive::{Archive, ArchiveError};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
pub use dap::{Suffix, split_suffix};
pub use error::DapError;
use std::sync::Arc;

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
    /// The web catalogue's dataset summaries, per dataset version.
    summaries: Arc<web::Summaries>,
    /// Documents about every dataset (WMS capabilities, STAC collections),
    /// kept with the catalogue state and address they were made for.
    listings: Arc<Listings>,
}

/// A document about every dataset, by kind, with the key it was made for:
/// the catalogue's state (every dataset's name, id and version) and the
/// address the client used. Made again only when the key moves, so a
/// catalogue of thousands of datasets does not rebuild thousands of views
/// for each request (the archive keeps a bounded number of them).
#[derive(Default)]
pub(crate) struct Listings {
    kept: std::sync::Mutex<std::collections::HashMap<&'static str, (u64, Arc<String>)>>,
}

impl Listings {
    /// The key of a listing: the catalogue's state and the address.
    pub(crate) async fn key(&self, st: &AppState, address: &str) -> Result<u64, crate::catalogue::CatalogueError> {
        use std::hash::{Hash, Hasher};
        let states = st.archive.catalogue.dataset_states().await?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        address.hash(&mut h);
        for (name, v) in &states {
            (name, v.id, v.version).hash(&mut h);
        }
        Ok(h.finish())
    }

    pub(crate) fn get(&self, kind: &'static str, key: u64) -> Option<Arc<String>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).get(kind).filter(|(k, _)| *k == key).map(|(_, d)| d.clone())
    }

    pub(crate) fn put(&self, kind: &'static str, key: u64, doc: String) {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).insert(kind, (key, Arc::new(doc)));
    }
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
            summaries: Arc::default(),
            listings: Arc::default(),
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
        .route("/", get(web::index))
        .route("/catalog.json", get(web::catalog_json))
        .route("/catalog.xml", get(web::catalog_xml))
        .route("/datasets/{name}", get(web::dataset))
        .route("/datasets/{name}/subset", get(web::subset_fragment))
        .route("/static/tessera.css", get(web::css))
        .route("/static/tessera.js", get(web::js))
        .route("/favicon.svg", get(web::icon))
        .route("/favicon.ico", get(web::icon))
        .route("/dap", get(index))
        .route("/dap/", get(index))
        .route("/dap/{*path}", get(dap::dap))
        .route("/version", get(ops::version))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics_page))
        .route("/help", get(help))
        .route("/wms", get(wms::wms))
        .route("/stac", get(stac::landing))
        .route("/stac/", get(stac::landing))
        .route("/stac/conformance", get(stac::conformance))
        .route("/stac/collections", get(stac::collections))
        .route("/stac/collections/{dataset}", get(stac::collection))
        .route("/stac/collections/{dataset}/items", get(stac::items))
        .route("/stac/collections/{dataset}/items/{item_id}", get(stac::item))
        .route("/stac/search", get(stac::search_get).post(stac::search_post))
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

fn attachment(r: &mut Response, filename: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
}

