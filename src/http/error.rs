//! Errors to HTTP responses: one table.
//!
//! Policy: client mistakes are 4xx (pydap retries 5xx, so a deterministic
//! error must never be 500); the message says what was wrong and how to fix
//! it, and is all the client sees. Server faults are 5xx; their message names
//! the dataset and tile but never a filesystem path outside the pool or a
//! credential; details go to the log. The body is always a DAP2 error object
//! (`Error { code = N; message = "..."; };`) with `Content-Description:
//! dods_error`, which netCDF-C, libdap and pydap all understand.

use super::dap_headers;
use crate::archive::ArchiveError;
use crate::dap::ce::CeErrorKind;
use crate::dap::error::ErrorBody;
use crate::store::port::TileError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A DAP2 error response.
#[derive(Debug)]
pub struct DapError {
    pub status: StatusCode,
    pub message: String,
}

impl DapError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        DapError { status, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        DapError::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<ArchiveError> for DapError {
    fn from(e: ArchiveError) -> Self {
        let status = match &e {
            ArchiveError::NotFound(_) => StatusCode::NOT_FOUND,
            ArchiveError::Constraint(ce) => match ce.kind() {
                CeErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                CeErrorKind::Syntax
                | CeErrorKind::UnknownVariable
                | CeErrorKind::BadIndex
                | CeErrorKind::BadValue
                | CeErrorKind::Unsupported => StatusCode::BAD_REQUEST,
            },
            ArchiveError::TooLarge { .. } | ArchiveError::TooLargeFor(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ArchiveError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            // A store that cannot be reached now may recover: 503, retry.
            // A missing or damaged tile will not: 500 naming it.
            ArchiveError::Tile { error: TileError::Unavailable(_), .. } => StatusCode::SERVICE_UNAVAILABLE,
            ArchiveError::Tile { error: TileError::Missing | TileError::Corrupt(_), .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ArchiveError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        DapError::new(status, e.to_string())
    }
}

/// A message with every absolute filesystem path (`/tmp/x.nc4`,
/// `/srv/pool/...`) replaced by `<path>`: a last line of defence for server
/// faults, whose messages come from libraries that name files.
pub fn without_paths(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find('/') {
        let before_ok = rest[..i].chars().last().is_none_or(|c| c.is_whitespace() || "\"'(=:[`".contains(c));
        let tail = &rest[i..];
        let end = tail.find(|c: char| c.is_whitespace() || "\"')`,;]".contains(c)).unwrap_or(tail.len());
        // A path ends before trailing punctuation ("... /tmp/x.nc4: No space").
        let end = tail[..end].trim_end_matches([':', '.']).len().max(1);
        let token = &tail[..end];
        let looks_like_path = before_ok && token.len() > 1 && token[1..].contains('/') && !token.starts_with("//");
        out.push_str(&rest[..i]);
        out.push_str(if looks_like_path { "<path>" } else { token });
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl IntoResponse for DapError {
    fn into_response(self) -> Response {
        let message = if self.status.is_server_error() { without_paths(&self.message) } else { self.message };
        let body = ErrorBody::new(self.status.as_u16(), message).render();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        dap_headers(h, "dods_error");
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::{DapError, without_paths};
    use crate::archive::ArchiveError;
    use crate::dap::ce::{CeError, CeErrorKind};
    use crate::store::port::TileError;
    use axum::http::StatusCode;

    #[test]
    fn error_kinds_decide_the_status() {
        let ce = |kind| ArchiveError::Constraint(CeError::new(kind, "sst[0:9]", Some(4), "what", None));
        let cases = [
            (ce(CeErrorKind::Syntax), StatusCode::BAD_REQUEST),
            (ce(CeErrorKind::UnknownVariable), StatusCode::BAD_REQUEST),
            (ce(CeErrorKind::BadIndex), StatusCode::BAD_REQUEST),
            (ce(CeErrorKind::BadValue), StatusCode::BAD_REQUEST),
            (ce(CeErrorKind::Unsupported), StatusCode::BAD_REQUEST),
            (ce(CeErrorKind::TooLarge), StatusCode::PAYLOAD_TOO_LARGE),
            (ArchiveError::Tile { dataset: "d".into(), path: "p".into(), error: TileError::Unavailable("EIO".into()) }, StatusCode::SERVICE_UNAVAILABLE),
            (ArchiveError::Tile { dataset: "d".into(), path: "p".into(), error: TileError::Missing }, StatusCode::INTERNAL_SERVER_ERROR),
            (ArchiveError::Tile { dataset: "d".into(), path: "p".into(), error: TileError::Corrupt("x".into()) }, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (e, status) in cases {
            let text = e.to_string();
            assert_eq!(DapError::from(e).status, status, "{text}");
        }
        let m = ce(CeErrorKind::BadIndex).to_string();
        assert!(m.starts_with("Constraint error: what at column 5"), "{m}");
    }

    #[test]
    fn server_fault_messages_name_no_path() {
        assert_eq!(
            without_paths("writing /tmp/tessera-abc.nc4: No space left on device (os error 28)"),
            "writing <path>: No space left on device (os error 28)"
        );
        assert_eq!(without_paths("open \"/srv/pool/ds/x.nc\" failed"), "open \"<path>\" failed");
        assert_eq!(
            without_paths("dataset ds: tile ds/2010-01-01T12-00-00.000/sst_tile_x1_y0.nc: the file is missing"),
            "dataset ds: tile ds/2010-01-01T12-00-00.000/sst_tile_x1_y0.nc: the file is missing",
            "pool-relative tile paths stay"
        );
        assert_eq!(without_paths("units m s**-2 and N/A"), "units m s**-2 and N/A");
        assert_eq!(without_paths("see https://example.org/a/b"), "see https://example.org/a/b");
    }
}
