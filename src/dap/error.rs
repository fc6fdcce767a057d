//! The DAP2 error body (dap2.md §1.5).
//!
//! ```text
//! error-body = "Error" "{" "code" "=" INTEGER ";" "message" "=" QUOTED-STRING ";" "}" ";"
//! ```
//!
//! Rendered exactly as
//!
//! ```text
//! Error {
//!     code = 400;
//!     message = "Constraint error: index 5 is outside dimension lat (size 3) of variable sst.sst";
//! };
//! ```
//!
//! The final `;` after `}` is required by netCDF-C and libdap. The message
//! is made one line (CR, LF, tab and other control characters become
//! spaces, runs collapsed), `"` becomes `'` (as TDS does; old parsers choke
//! on `\"`) and `\` becomes `\\`. Use the HTTP status as `code`; send with
//! `Content-Description: dods_error` and a 4xx/5xx status, and never after
//! a `.dods` body has started.

use std::fmt;

/// A DAP2 error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// Error code (use the HTTP status).
    pub code: u16,
    /// Human-readable message; sanitized when rendered.
    pub message: String,
}

impl ErrorBody {
    /// An error body with `code` and `message`.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
        }
    }

    /// The body text, ending `};\n`.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Error {{\n    code = {};\n    message = \"{}\";\n}};\n",
            self.code,
            sanitize_message(&self.message)
        )
    }
}

/// Makes `msg` safe inside the quoted `message` of an error body: one line,
/// no control characters, `"` → `'`, `\` → `\\`, trimmed.
pub fn sanitize_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut space = false;
    for c in msg.trim().chars() {
        if c.is_control() || c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        match c {
            '"' => out.push('\''),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_body() {
        let e = ErrorBody::new(
            400,
            "Constraint error: index 5 is outside dimension lat (size 3) of variable sst.sst",
        );
        assert_eq!(
            e.render(),
            "Error {\n    code = 400;\n    message = \"Constraint error: index 5 is outside dimension lat (size 3) of variable sst.sst\";\n};\n"
        );
    }

    #[test]
    fn sanitizing() {
        let cases = [
            ("plain", "plain"),
            ("two\nlines\r\nand\ttab", "two lines and tab"),
            ("say \"hi\"", "say 'hi'"),
            ("C:\\path", "C:\\\\path"),
            ("  padded  ", "padded"),
            ("ctl\u{1}x", "ctl x"),
            ("ünïcode ok", "ünïcode ok"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize_message(input), want, "{input:?}");
        }
        assert_eq!(
            ErrorBody::new(404, "no \"x\"\n").render(),
            "Error {\n    code = 404;\n    message = \"no 'x'\";\n};\n"
        );
    }
}
