//! Operations: liveness, readiness, version, metrics, and the middleware
//! that gives every request an id, an access-log line and its metrics.
//!
//! The id and the log line are this module's, not tower-http's
//! `request-id`/`trace` layers: a client's `x-request-id` goes into logs, so
//! it is kept only when short and plain, and `SetRequestId` keeps any id a
//! client sends; the access line gives the bytes actually sent and whether
//! the client left early, which only the body wrapper here sees.

use super::{AppState, DapError};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long readiness waits for the catalogue and the pool.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, format!("{body}\n")).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Liveness: the process answers.
pub async fn healthz() -> Response {
    json(StatusCode::OK, serde_json::json!({"status": "ok"}))
}

/// Readiness: the catalogue answers within a short timeout and the pool is
/// readable; otherwise 503 naming what failed.
pub async fn readyz(State(st): State<AppState>) -> Response {
    let cat = st.archive.catalogue.clone();
    let catalogue = match tokio::time::timeout(READY_TIMEOUT, cat.ping()).await {
        Ok(Ok(())) => match st.check_catalogue() {
            Ok(()) => "ok".to_string(),
            Err(e) => e.message,
        },
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", READY_TIMEOUT.as_secs()),
    };
    let root = st.archive.pool.root().to_path_buf();
    let pool = match tokio::time::timeout(READY_TIMEOUT, crate::blocking::run("readiness", move || std::fs::read_dir(&root).map(|_| ()))).await {
        Ok(Ok(Ok(()))) => "ok".to_string(),
        Ok(Ok(Err(e))) => format!("pool not readable: {e}"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("pool did not answer within {} s", READY_TIMEOUT.as_secs()),
    };
    let ready = catalogue == "ok" && pool == "ok";
    metrics::gauge!("tessera_ready").set(if ready { 1.0 } else { 0.0 });
    json(
        if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE },
        serde_json::json!({"status": if ready { "ready" } else { "not ready" }, "catalogue": catalogue, "pool": pool}),
    )
}

/// Version, build commit, catalogue backend and schema version.
pub async fn version(State(st): State<AppState>) -> Response {
    let cat = &st.archive.catalogue;
    let schema = tokio::time::timeout(READY_TIMEOUT, cat.schema_version()).await.ok().and_then(Result::ok);
    let mut r = json(
        StatusCode::OK,
        serde_json::json!({
            "tessera": crate::VERSION,
            "git_commit": crate::GIT_COMMIT,
            "catalogue": cat.backend(),
            "schema_version": schema,
            "dap": "2.0",
        }),
    );
    super::dap_headers(r.headers_mut(), "dods_version");
    r
}

/// Prometheus text exposition. The archive's contents (what ingests have
/// added, whichever process ran them) are read from the catalogue at scrape
/// time: one query.
pub async fn metrics_page(State(st): State<AppState>) -> Response {
    if let Ok(Ok(all)) = tokio::time::timeout(READY_TIMEOUT, st.archive.catalogue.datasets()).await {
        metrics::gauge!("tessera_datasets").set(all.len() as f64);
        metrics::gauge!("tessera_tiles_stored").set(all.iter().map(|d| d.stats.tile_count as f64).sum::<f64>());
        metrics::gauge!("tessera_bytes_stored").set(all.iter().map(|d| d.stats.bytes as f64).sum::<f64>());
        metrics::gauge!("tessera_time_slices").set(all.iter().map(|d| d.stats.slice_count as f64).sum::<f64>());
    }
    let mut r = crate::telemetry::metrics().render().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}

/// The kind of route a path is, for metric labels (bounded cardinality).
pub fn route_kind(path: &str) -> &'static str {
    if let Some(rest) = path.strip_prefix("/dap/") {
        let (_, suffix) = super::split_suffix(rest);
        return match suffix {
            Some(super::Suffix::Dds) => "dds",
            Some(super::Suffix::Das) => "das",
            Some(super::Suffix::Dods) => "dods",
            Some(super::Suffix::Ascii) => "ascii",
            Some(super::Suffix::Html) => "html",
            Some(super::Suffix::Info) => "info",
            Some(super::Suffix::Ver) => "ver",
            Some(super::Suffix::Help) => "help",
            Some(super::Suffix::Nc) => "nc",
            Some(super::Suffix::Nc4) => "nc4",
            Some(super::Suffix::Ncml) => "ncml",
            Some(super::Suffix::Png) => "png",
            None => "dataset",
        };
    }
    match path {
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        "/wms" => "wms",
        "/version" => "version",
        "/help" => "help",
        "/" | "/dap" | "/dap/" => "index",
        p if p == "/stac" || p.starts_with("/stac/") => "stac",
        _ => "other",
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A request id: the client's `x-request-id` if it is short and plain,
/// else a new one (process start time and a counter).
fn request_id(req: &Request) -> String {
    if let Some(v) = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()) {
        if !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return v.to_string();
        }
    }
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    format!("{start:x}-{:06x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// Request id, URL limit, time limit, metrics and the access log.
pub async fn middleware(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let kind = route_kind(&path);
    let url_len = path.len() + query.len();
    // Data responses in flight per client address: one client cannot take
    // every slot and thread. The count is given back when the body ends.
    let heavy = matches!(kind, "dods" | "ascii" | "nc" | "nc4") && method != axum::http::Method::HEAD;
    let client = req.extensions().get::<super::ClientAddr>().map(|c| c.0).filter(|_| heavy && st.limits.max_per_client > 0);
    let mut over_cap = false;
    if let Some(ip) = client {
        let mut m = st.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= st.limits.max_per_client {
            over_cap = true;
        } else {
            *n += 1;
        }
    }
    let client_guard = client.filter(|_| !over_cap).map(|ip| ClientGuard { ip, map: st.per_client.clone() });
    metrics::gauge!("tessera_http_in_flight").increment(1.0);
    let mut resp = if over_cap {
        metrics::counter!("tessera_requests_rejected_total", "reason" => "per_client").increment(1);
        DapError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("this client already has {} data responses in progress; retry when one has finished", st.limits.max_per_client),
        )
        .into_response()
    } else if url_len > st.limits.max_url_bytes {
        metrics::counter!("tessera_requests_rejected_total", "reason" => "url_too_long").increment(1);
        DapError::new(StatusCode::URI_TOO_LONG, format!("the request URL is {url_len} bytes long; the limit is {} bytes", st.limits.max_url_bytes)).into_response()
    } else {
        match tokio::time::timeout(st.limits.request_timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => {
                metrics::counter!("tessera_requests_rejected_total", "reason" => "timeout").increment(1);
                DapError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the request took longer than {} s", st.limits.request_timeout.as_secs())).into_response()
            }
        }
    };
    metrics::gauge!("tessera_http_in_flight").decrement(1.0);
    let status = resp.status().as_u16();
    let bytes = resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let dataset = path.strip_prefix("/dap/").map(|p| super::split_suffix(p).0).unwrap_or("").to_string();
    // The constraint is logged decoded and cut short; URLs carry no credentials.
    let ce: String = crate::dap::ce::percent_decode(&query).chars().take(512).collect();
    let done = Finish { id: id.clone(), method, kind, dataset, ce, status, declared: bytes, started };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    // The access line and the request's metrics are written when its body
    // ends: a body cut short after the status line is counted and logged
    // as aborted, not as the 200 its head said.
    resp.map(|body| axum::body::Body::new(Tracked { inner: body, sent: 0, done: Some(done), _client: client_guard }))
}

/// Gives a client's data-response count back when dropped.
struct ClientGuard {
    ip: std::net::IpAddr,
    map: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// What the access line says of a request, once its body has ended.
struct Finish {
    id: String,
    method: axum::http::Method,
    kind: &'static str,
    dataset: String,
    ce: String,
    status: u16,
    declared: Option<u64>,
    started: Instant,
}

/// How a response body ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Complete,
    /// The server failed after the first byte.
    Aborted,
    /// The client went away first.
    Closed,
}

impl Finish {
    fn log(self, outcome: Outcome, sent: u64) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let kind = self.kind;
        let status = match outcome {
            Outcome::Aborted => "aborted".to_string(),
            _ => self.status.to_string(),
        };
        metrics::counter!("tessera_http_requests_total", "route" => kind, "status" => status).increment(1);
        metrics::histogram!("tessera_http_request_duration_seconds", "route" => kind).record(elapsed);
        if self.method != axum::http::Method::HEAD {
            metrics::counter!("tessera_http_response_bytes_total", "route" => kind).increment(sent);
        }
        let (id, method, dataset, ce) = (&self.id, &self.method, self.dataset.as_str(), &self.ce);
        let bytes = if self.method == axum::http::Method::HEAD { self.declared.unwrap_or(0) } else { sent };
        match outcome {
            Outcome::Aborted => {
                metrics::counter!("tessera_responses_aborted_total", "route" => kind).increment(1);
                tracing::warn!(target: "tessera::access", request_id = %id, method = %method, route = kind, dataset, constraint = %ce, status = "aborted", bytes, seconds = elapsed, "request aborted after the first byte")
            }
            Outcome::Closed => tracing::info!(target: "tessera::access", request_id = %id, method = %method, route = kind, dataset, constraint = %ce, status = self.status, outcome = "client closed", bytes, seconds = elapsed, "request"),
            Outcome::Complete => tracing::info!(target: "tessera::access", request_id = %id, method = %method, route = kind, dataset, constraint = %ce, status = self.status, bytes, seconds = elapsed, "request"),
        }
    }
}

/// A response body that counts what it sends and reports how it ended.
struct Tracked {
    inner: axum::body::Body,
    sent: u64,
    done: Option<Finish>,
    _client: Option<ClientGuard>,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    self.sent += d.len() as u64;
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(f) = self.done.take() {
                    f.log(Outcome::Aborted, self.sent);
                }
            }
            Poll::Ready(None) => {
                if let Some(f) = self.done.take() {
                    // A body that ends short of its Content-Length was cut.
                    let short = f.method != axum::http::Method::HEAD && f.declared.is_some_and(|d| self.sent < d);
                    f.log(if short { Outcome::Aborted } else { Outcome::Complete }, self.sent);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(f) = self.done.take() {
            // An empty body may never be polled; anything else dropped
            // before its end was left by its client.
            let outcome = if http_body::Body::is_end_stream(&self.inner) { Outcome::Complete } else { Outcome::Closed };
            f.log(outcome, self.sent);
        }
    }
}

