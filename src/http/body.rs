//! Response bodies produced while they are sent. A small response whose
//! data is in memory is produced at once on the async runtime; any other
//! runs its encoder on a
//! blocking thread into a bounded channel (memory bounded by a band, not by
//! the response), hands the connection 64 KiB pieces, lets go of its data
//! slot while its client is slower than it, and stops when the client goes
//! away, stalls, or the request's time limit passes.

use super::{AppState, attachment, dap_headers};
use crate::encode::{Encoder, Stop};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use std::ops::Range;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;

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

/// Bytes handed to the HTTP layer at a time (see [`sink_for`]).
const PIECE: usize = 64 << 10;

/// Sends an encoder's output (all of it, or the byte range `span` of an
/// encoder that can produce ranges): the headers come from the encoder,
/// the body is produced on a blocking thread while it is sent. A failure
/// after the first byte aborts the connection (the body ends in an error,
/// so the client sees a short transfer) and is logged; nothing is appended.
pub(super) fn send(
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
    } else if let Some(bytes) = len.filter(|&n| n <= FAST_BYTES).and_then(|_| from_memory(st, enc.as_ref(), span.clone().unwrap_or(0..u64::MAX))) {
        Body::from(bytes)
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

/// Responses of at most this many bytes are first produced from memory.
const FAST_BYTES: u64 = 64 << 10;

/// A small response produced on the async runtime when everything it
/// needs is in memory (tiles verified, their chunks decoded and cached):
/// no blocking thread, no channel. `None` when it needs a file: it is then
/// produced on a blocking thread like any other.
fn from_memory(st: &AppState, enc: &dyn Encoder, span: Range<u64>) -> Option<Vec<u8>> {
    if !enc.reads_only_tiles() {
        return None;
    }
    let store = crate::store::port::FromMemory::new(st.archive.tiles.clone());
    let mut out = Vec::new();
    let done = enc.produce(&store, span, &mut |chunk| {
        out.extend_from_slice(&chunk);
        true
    });
    let hit = done.is_ok() && !store.missed();
    metrics::counter!("tessera_responses_from_memory_total", "result" => if hit { "hit" } else { "miss" }).increment(1);
    if hit {
        metrics::counter!("tessera_body_bytes_total").increment(out.len() as u64);
    }
    hit.then_some(out)
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
