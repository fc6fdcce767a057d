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
use crate::dap::error::ErrorBody;
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
            ArchiveError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ArchiveError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ArchiveError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ArchiveError::Tile { .. } | ArchiveError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        DapError::new(status, e.to_string())
    }
}

impl IntoResponse for DapError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.status.as_u16(), self.message).render();
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
