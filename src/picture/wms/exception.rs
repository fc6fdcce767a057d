//! WMS 1.3.0 service exceptions: the XML report a client reads when a
//! request cannot be answered.

use crate::markup::escape;
use std::fmt;

/// The exception codes WMS 1.3.0 defines (section 6.11 and Annex E) that
/// this server uses.
pub mod code {
    pub const INVALID_FORMAT: &str = "InvalidFormat";
    pub const INVALID_CRS: &str = "InvalidCRS";
    pub const LAYER_NOT_DEFINED: &str = "LayerNotDefined";
    pub const STYLE_NOT_DEFINED: &str = "StyleNotDefined";
    pub const MISSING_DIMENSION_VALUE: &str = "MissingDimensionValue";
    pub const INVALID_DIMENSION_VALUE: &str = "InvalidDimensionValue";
    pub const OPERATION_NOT_SUPPORTED: &str = "OperationNotSupported";
}

/// A WMS service exception: a code from [`code`] (`None` for errors the
/// standard gives no code, such as a malformed BBOX) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceException {
    pub code: Option<&'static str>,
    pub message: String,
    /// The HTTP status: 400 (the request's fault) unless made by
    /// [`ServiceException::failed`].
    status: u16,
}

impl ServiceException {
    /// An exception with a WMS code.
    pub fn new(code: &'static str, message: impl Into<String>) -> ServiceException {
        ServiceException {
            code: Some(code),
            message: message.into(),
            status: 400,
        }
    }

    /// An exception the standard has no code for.
    pub fn generic(message: impl Into<String>) -> ServiceException {
        ServiceException {
            code: None,
            message: message.into(),
            status: 400,
        }
    }

    /// The server's fault, not the request's (a busy server, a damaged
    /// tile): sent with that 5xx status, so that clients may retry and
    /// operators see it.
    pub fn failed(status: u16, message: impl Into<String>) -> ServiceException {
        ServiceException {
            code: None,
            message: message.into(),
            status,
        }
    }

    /// The `ServiceExceptionReport` document (`text/xml`).
    pub fn xml(&self) -> String {
        let code = self
            .code
            .map(|c| format!(" code=\"{}\"", escape(c)))
            .unwrap_or_default();
        format!(
            concat!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                "<ServiceExceptionReport version=\"1.3.0\" xmlns=\"http://www.opengis.net/ogc\"",
                " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"",
                " xsi:schemaLocation=\"http://www.opengis.net/ogc",
                " http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd\">\n",
                "  <ServiceException{}>{}</ServiceException>\n",
                "</ServiceExceptionReport>\n"
            ),
            code,
            escape(&self.message)
        )
    }

    /// The HTTP status to send the report with: 400 for every bad
    /// request, the server's own status for its faults. WMS 1.3.0 leaves
    /// the status open and clients (OWSLib, QGIS, OpenLayers) read the
    /// report whatever it is; 400 tells caches and logs that the request
    /// was at fault. An unknown layer is a bad parameter like the others:
    /// a 404 would make some clients drop the report unread.
    pub fn status(&self) -> u16 {
        self.status
    }
}

impl fmt::Display for ServiceException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ServiceException {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_carries_the_code_and_escaped_message() {
        let e = ServiceException::new(code::LAYER_NOT_DEFINED, "no layer <sst> & \"friends\"");
        let xml = e.xml();
        assert!(xml.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ServiceExceptionReport version=\"1.3.0\""
        ));
        assert!(xml.contains("xmlns=\"http://www.opengis.net/ogc\""));
        assert!(xml.contains(
            "<ServiceException code=\"LayerNotDefined\">no layer &lt;sst&gt; &amp; &quot;friends&quot;</ServiceException>"
        ));
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.to_string(),
            "LayerNotDefined: no layer <sst> & \"friends\""
        );
    }

    #[test]
    fn a_generic_exception_has_no_code_attribute() {
        let xml = ServiceException::generic("bad BBOX").xml();
        assert!(xml.contains("<ServiceException>bad BBOX</ServiceException>"));
    }
}
