//! WMS 1.3.0 without HTTP types: requests parsed from the raw query
//! string, the capabilities document, and service exception reports.
//! The handler maps a [`Request`] to a response and a
//! [`ServiceException`] to its XML with [`ServiceException::status`].

mod capabilities;
mod exception;
mod request;

pub use capabilities::{LayerInfo, capabilities};
pub use exception::{ServiceException, code};
pub use request::{ExceptionFormat, LegendRequest, MAX_SIZE, MapRequest, Request, parse};
