//! DAP2 constraint expressions (CEs): percent-decoding and parsing.
//!
//! The whole query string of a `.dds`/`.dods`/`.ascii` request is one CE.
//! [`parse`] takes it raw (still percent-encoded) and decodes it once,
//! hex case-insensitively, keeping `%20` encoded and leaving `+` alone
//! (dap2.md §5.5); each identifier is then decoded once more (libdap's
//! `www2id`), so netCDF-C's `%2520` becomes a space in a name. Raw
//! `[ ] { } < > " |` are accepted as they are.
//!
//! Grammar (dap2.md §5.1, with libdap's `*` and a coordinate-value form):
//!
//! ```text
//! ce         = [ projection ] *( "&" selection )      ; "" = whole dataset
//! projection = proj-item *( "," proj-item )
//! proj-item  = var-path / call
//! var-path   = component *( "." component )           ; grid.member
//! component  = name *slab
//! slab       = "[" start "]"                           ; one index
//!            / "[" start ":" stop "]"                  ; stride 1
//!            / "[" start ":" stride ":" stop "]"       ; stop inclusive
//!            / "[" "*" "]"                             ; whole dimension
//! start      = uint / "(" value ")"
//! stride     = uint                                    ; ≥ 1, checked later
//! stop       = uint / "*" / "(" value ")"              ; "*" = last index
//! value      = 1*( any byte except ")" "]" )           ; e.g. (2010-01-15), (-12.5)
//! selection  = rvalue relop rvalue
//!            / rvalue relop "{" rvalue *( "," rvalue ) "}"
//!            / call
//! relop      = "=" / "!=" / "<" / "<=" / ">" / ">=" / "=~"
//! call       = name "(" [ rvalue *( "," rvalue ) ] ")"
//! rvalue     = number / quoted-string / var-path / call
//! name       = 1*( ALPHA / DIGIT / "_" / "-" / "+" / "%" / "\" / "/" / "#" )
//! uint       = 1*DIGIT                                 ; must fit in u64
//! ```
//!
//! ASCII spaces and tabs between tokens are ignored. Selections and
//! function calls are parsed (so syntax errors are reported precisely) but
//! the resolver in [`super::view`] refuses them for gridded data.
//! Coordinate values are kept as raw text ([`BoundValue`]); mapping them to
//! indices is the caller's business ([`super::view::CoordLookup`]).
//!
//! Errors ([`CeError`]) carry a 0-based byte offset into the *decoded*
//! expression; messages print it as a 1-based `column`, say what was
//! expected and how to fix it, and are always one line. Parsing never
//! panics, whatever the input (property-tested).

use std::fmt;

/// A byte range in the decoded expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte (0-based).
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A parsed constraint expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// The percent-decoded expression that spans refer to.
    pub expr: String,
    /// Projection items in CE order; empty means "everything".
    pub projections: Vec<ProjItem>,
    /// Selection clauses (the `&…` parts), in CE order.
    pub selections: Vec<Selection>,
}

/// One comma-separated projection item.
#[derive(Debug, Clone, PartialEq)]
pub enum ProjItem {
    /// A variable path such as `sst.sst[0][0:1][1:2]`.
    Path(VarPath),
    /// A server function call such as `geogrid(sst, 62, 206, 56, 210)`.
    Call(FunctionCall),
}

/// A dotted variable path, each component with its own slabs.
#[derive(Debug, Clone, PartialEq)]
pub struct VarPath {
    /// The components (`sst`, `sst`), at least one.
    pub components: Vec<Component>,
    /// Where the path is in the expression.
    pub span: Span,
}

/// One path component: a name and zero or more hyperslabs.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// The name, percent-decoded once more (`%20` → space).
    pub name: String,
    /// Hyperslabs in order, one per dimension (or fewer).
    pub slabs: Vec<Slab>,
    /// Where the component is in the expression.
    pub span: Span,
}

/// One `[...]` hyperslab, unresolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Slab {
    /// First index (`[*]` is stored as start 0, stop [`Bound::Last`]).
    pub start: Bound,
    /// Stride, if written (`[a:s:b]`); `None` means 1.
    pub stride: Option<u64>,
    /// Last index (inclusive); `None` for a single index `[i]`.
    pub stop: Option<Bound>,
    /// Where the slab is in the expression, brackets included.
    pub span: Span,
}

/// A start or stop of a hyperslab.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    /// A plain index.
    Index(u64),
    /// libdap's `*`: the last index of the dimension (stop only).
    Last,
    /// A coordinate value in parentheses, resolved by the caller.
    Value(BoundValue),
}

/// The text of a parenthesised coordinate value, e.g. `2010-01-15` from
/// `(2010-01-15)`; surrounding spaces trimmed, percent-decoded once more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundValue {
    /// The value text, never empty.
    pub text: String,
    /// Where the value is (parentheses included).
    pub span: Span,
}

/// A function call (projection item, selection or argument).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCall {
    /// Function name.
    pub name: String,
    /// Arguments in order.
    pub args: Vec<RValue>,
    /// Where the call is in the expression.
    pub span: Span,
}

/// An operand of a selection or a function argument.
#[derive(Debug, Clone, PartialEq)]
pub enum RValue {
    /// A variable path.
    Path(VarPath),
    /// A numeric literal, as written.
    Number(String),
    /// A double-quoted string, unescaped.
    Str(String),
    /// A nested function call.
    Call(FunctionCall),
}

/// A relational operator of a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=~` (regular-expression match)
    Match,
}

impl RelOp {
    /// The operator as written in a CE.
    pub fn as_str(self) -> &'static str {
        match self {
            RelOp::Eq => "=",
            RelOp::Ne => "!=",
            RelOp::Lt => "<",
            RelOp::Le => "<=",
            RelOp::Gt => ">",
            RelOp::Ge => ">=",
            RelOp::Match => "=~",
        }
    }
}

/// One `&…` selection clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// What the clause says.
    pub kind: SelectionKind,
    /// Where the clause is, from its `&` to its end.
    pub span: Span,
}

/// The forms of a selection clause.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectionKind {
    /// `lhs op rhs` or `lhs op {r1, r2, …}` (then `rhs` has several items).
    Compare {
        /// Left operand.
        lhs: RValue,
        /// Operator.
        op: RelOp,
        /// Right operand(s).
        rhs: Vec<RValue>,
    },
    /// A boolean function call.
    Call(FunctionCall),
}

/// What kind of mistake a [`CeError`] reports; the HTTP layer maps kinds to
/// statuses (all are client errors; [`CeErrorKind::TooLarge`] may deserve 413).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeErrorKind {
    /// Malformed expression.
    Syntax,
    /// A variable or member that does not exist.
    UnknownVariable,
    /// Index out of range, stop before start, stride 0, wrong slab count.
    BadIndex,
    /// A coordinate value the caller could not map to an index.
    BadValue,
    /// Valid DAP2 this server does not support (selections, functions).
    Unsupported,
    /// An array with 2³¹ or more elements, which DAP2 cannot send.
    TooLarge,
}

/// A constraint-expression error: what went wrong, where, and how to fix it.
///
/// `Display` gives one line, e.g. ``expected ']' to close the hyperslab of
/// `sst` at column 12; hyperslabs are [start:stride:stop]``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct CeError {
    kind: CeErrorKind,
    what: String,
    hint: Option<String>,
    offset: Option<usize>,
    expr: String,
}

impl CeError {
    /// Builds an error; `what` says what is wrong, `hint` how to fix it,
    /// `offset` is a byte offset into `expr` (the decoded expression).
    /// Line breaks in `what`/`hint` are replaced by spaces.
    pub fn new(
        kind: CeErrorKind,
        expr: &str,
        offset: Option<usize>,
        what: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        let one_line = |s: String| s.replace(['\n', '\r'], " ");
        CeError {
            kind,
            what: one_line(what.into()),
            hint: hint.map(one_line),
            offset: offset.map(|o| o.min(expr.len())),
            expr: expr.to_owned(),
        }
    }

    /// The kind of error.
    pub fn kind(&self) -> CeErrorKind {
        self.kind
    }

    /// 0-based byte offset into [`CeError::expr`], if the error has a place.
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }

    /// 1-based column as printed in the message.
    pub fn column(&self) -> Option<usize> {
        self.offset.map(|o| o + 1)
    }

    /// The decoded expression the offset refers to.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The expression with a `^` under the error column (two lines, for a
    /// CLI or an HTML `<pre>`; escape it before putting it in HTML).
    pub fn caret(&self) -> Option<String> {
        self.offset.map(|o| render_caret(&self.expr, o))
    }

    fn render(&self) -> String {
        let mut s = self.what.clone();
        if let Some(c) = self.column() {
            s.push_str(&format!(" at column {c}"));
        }
        if let Some(h) = &self.hint {
            s.push_str("; ");
            s.push_str(h);
        }
        s
    }
}

/// Renders `expr` on one line and a `^` under byte `offset` on the next.
/// Control characters in `expr` are shown as `?` so the caret lines up.
pub fn render_caret(expr: &str, offset: usize) -> String {
    let mut o = offset.min(expr.len());
    while !expr.is_char_boundary(o) {
        o -= 1;
    }
    let shown: String = expr
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let pad = expr[..o].chars().count();
    format!("{shown}\n{}^", " ".repeat(pad))
}

/// Quotes user text for a message: backticks, control characters escaped,
/// long text shortened, so messages stay one line and readable.
pub(super) fn quote(s: &str) -> String {
    const MAX: usize = 40;
    let mut out = String::from("`");
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.push_str(&c.escape_default().to_string());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}

/// Percent-decodes a raw query once (dap2.md §5.5): `%HH` with either hex
/// case becomes the byte, except `%20`, which stays encoded; `+` is kept;
/// a `%` not followed by two hex digits is kept literally. Bytes that do
/// not form UTF-8 become U+FFFD.
pub fn percent_decode(raw: &str) -> String {
    decode_bytes(raw, true)
}

fn decode_bytes(raw: &str, keep_space: bool) -> String {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            let v = h * 16 + l;
            if !(keep_space && v == b' ') {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses a raw (percent-encoded) query string into a [`Constraint`].
pub fn parse(raw_query: &str) -> Result<Constraint, CeError> {
    parse_decoded(&percent_decode(raw_query))
}

/// Parses an already percent-decoded expression.
pub fn parse_decoded(expr: &str) -> Result<Constraint, CeError> {
    let mut p = Parser {
        s: expr,
        b: expr.as_bytes(),
        pos: 0,
        depth: 0,
    };
    p.ce()
}

const SLAB_HINT: &str = "hyperslabs are [start:stride:stop]";
const MAX_DEPTH: usize = 16;

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    depth: usize,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'%' | b'\\' | b'/')
}

fn is_name_char(c: u8) -> bool {
    is_name_start(c) || c == b'#'
}

impl<'a> Parser<'a> {
    fn err(&self, kind: CeErrorKind, at: usize, what: String, hint: Option<&str>) -> CeError {
        CeError::new(kind, self.s, Some(at), what, hint.map(str::to_owned))
    }

    fn syntax(&self, at: usize, what: String, hint: &str) -> CeError {
        self.err(CeErrorKind::Syntax, at, what, Some(hint))
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// A description of what is at `pos`, for "found …" messages.
    fn found(&self) -> String {
        match self.s.get(self.pos..).and_then(|r| r.chars().next()) {
            None => "the end of the expression".to_owned(),
            Some(c) => quote(&c.to_string()),
        }
    }

    fn ce(&mut self) -> Result<Constraint, CeError> {
        let mut projections = Vec::new();
        let mut selections = Vec::new();
        self.skip_ws();
        if self.peek().is_some() && self.peek() != Some(b'&') {
            loop {
                projections.push(self.proj_item()?);
                if !self.eat(b',') {
                    break;
                }
            }
        }
        loop {
            self.skip_ws();
            match self.peek() {
                None => break,
                Some(b'&') => {
                    let amp = self.pos;
                    self.pos += 1;
                    selections.push(self.selection(amp)?);
                }
                Some(_) => {
                    return Err(self.syntax(
                        self.pos,
                        format!("unexpected {}", self.found()),
                        "separate projections with ',' and start selections with '&'",
                    ));
                }
            }
        }
        Ok(Constraint {
            expr: self.s.to_owned(),
            projections,
            selections,
        })
    }

    fn proj_item(&mut self) -> Result<ProjItem, CeError> {
        self.skip_ws();
        let start = self.pos;
        if !self.peek().is_some_and(is_name_start) {
            let at_end = matches!(self.peek(), None | Some(b'&'));
            if at_end && self.b[..start].trim_ascii_end().ends_with(b",") {
                return Err(self.syntax(
                    start,
                    "expected a variable name after ','".to_owned(),
                    "remove the trailing comma",
                ));
            }
            return Err(self.syntax(
                start,
                format!("expected a variable name, found {}", self.found()),
                "project variables as name, grid.member or name[start:stride:stop]",
            ));
        }
        let name = self.name();
        self.skip_ws();
        if self.peek() == Some(b'(') {
            return Ok(ProjItem::Call(self.call_after_name(start, name)?));
        }
        Ok(ProjItem::Path(self.path_after_name(start, name)?))
    }

    /// Reads a name (caller checked the first byte) and decodes it.
    fn name(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        decode_bytes(&self.s[start..self.pos], false)
    }

    fn path_after_name(&mut self, start: usize, first: String) -> Result<VarPath, CeError> {
        let mut components = Vec::new();
        let mut comp_start = start;
        let mut name = first;
        loop {
            let mut slabs = Vec::new();
            loop {
                self.skip_ws();
                if self.peek() != Some(b'[') {
                    break;
                }
                slabs.push(self.slab(&name)?);
            }
            components.push(Component {
                name,
                slabs,
                span: Span {
                    start: comp_start,
                    end: self.pos,
                },
            });
            self.skip_ws();
            if self.peek() != Some(b'.') {
                break;
            }
            self.pos += 1;
            self.skip_ws();
            comp_start = self.pos;
            if !self.peek().is_some_and(is_name_start) {
                return Err(self.syntax(
                    self.pos,
                    format!("expected a member name after '.', found {}", self.found()),
                    "grid members are written grid.member, e.g. sst.sst or sst.lat",
                ));
            }
            name = self.name();
        }
        Ok(VarPath {
            components,
            span: Span {
                start,
                end: self.pos,
            },
        })
    }

    fn slab(&mut self, var: &str) -> Result<Slab, CeError> {
        let open = self.pos;
        self.pos += 1; // '['
        let first = self.bound(var, Part::Start)?;
        let mut stride = None;
        let mut stop = None;
        if first == Bound::Last {
            // `[*]`: the whole dimension.
            if !self.eat(b']') {
                return Err(self.syntax(
                    self.pos,
                    format!("expected ']' after '[*' in the hyperslab of {}", quote(var)),
                    "'*' alone selects the whole dimension; as a stop write [start:*]",
                ));
            }
            return Ok(Slab {
                start: Bound::Index(0),
                stride: None,
                stop: Some(Bound::Last),
                span: Span {
                    start: open,
                    end: self.pos,
                },
            });
        }
        if self.eat(b':') {
            let second_at = {
                self.skip_ws();
                self.pos
            };
            let second = self.bound(var, Part::Stop)?;
            if self.eat(b':') {
                match second {
                    Bound::Index(s) => stride = Some(s),
                    _ => {
                        return Err(self.syntax(
                            second_at,
                            format!(
                                "the stride of the hyperslab of {} must be a plain integer",
                                quote(var)
                            ),
                            SLAB_HINT,
                        ));
                    }
                }
                stop = Some(self.bound(var, Part::Stop)?);
            } else {
                stop = Some(second);
            }
        }
        if !self.eat(b']') {
            return Err(self.syntax(
                self.pos,
                format!(
                    "expected ']' to close the hyperslab of {}, found {}",
                    quote(var),
                    self.found()
                ),
                SLAB_HINT,
            ));
        }
        Ok(Slab {
            start: first,
            stride,
            stop,
            span: Span {
                start: open,
                end: self.pos,
            },
        })
    }

    fn bound(&mut self, var: &str, part: Part) -> Result<Bound, CeError> {
        self.skip_ws();
        let at = self.pos;
        match self.peek() {
            Some(b'0'..=b'9') => {
                let n = self.uint()?;
                if self.peek() == Some(b'.') {
                    return Err(self.syntax(
                        at,
                        format!("index of the hyperslab of {} is not an integer", quote(var)),
                        "indices are whole numbers; write coordinate values in parentheses, e.g. [(1.5)]",
                    ));
                }
                Ok(Bound::Index(n))
            }
            Some(b'*') => {
                self.pos += 1;
                Ok(Bound::Last)
            }
            Some(b'(') => self.value(var).map(Bound::Value),
            Some(b'-') => Err(self.syntax(
                at,
                format!("negative index in the hyperslab of {}", quote(var)),
                "indices count from 0; write coordinate values in parentheses, e.g. [(-12.5)]",
            )),
            _ => {
                let what = match part {
                    Part::Start => format!(
                        "expected an index, '*' or '(value)' after '[' in the hyperslab of {}, found {}",
                        quote(var),
                        self.found()
                    ),
                    Part::Stop => format!(
                        "expected an index, '*' or '(value)' after ':' in the hyperslab of {}, found {}",
                        quote(var),
                        self.found()
                    ),
                };
                Err(self.syntax(at, what, SLAB_HINT))
            }
        }
    }

    fn uint(&mut self) -> Result<u64, CeError> {
        let start = self.pos;
        let mut n: Option<u64> = Some(0);
        while let Some(c @ b'0'..=b'9') = self.peek() {
            n = n
                .and_then(|n| n.checked_mul(10))
                .and_then(|n| n.checked_add(u64::from(c - b'0')));
            self.pos += 1;
        }
        n.ok_or_else(|| {
            self.err(
                CeErrorKind::BadIndex,
                start,
                format!("number {} is too large", quote(&self.s[start..self.pos])),
                Some("indices must be below 2^64 and inside the dimension"),
            )
        })
    }

    fn value(&mut self, var: &str) -> Result<BoundValue, CeError> {
        let open = self.pos;
        self.pos += 1; // '('
        let body_start = self.pos;
        while let Some(c) = self.peek() {
            if c == b')' || c == b']' || c == b'(' || c == b'[' {
                break;
            }
            self.pos += 1;
        }
        if self.peek() != Some(b')') {
            return Err(self.syntax(
                self.pos,
                format!(
                    "expected ')' to close the coordinate value opened at column {} in the hyperslab of {}, found {}",
                    open + 1,
                    quote(var),
                    self.found()
                ),
                "coordinate values are written in parentheses, e.g. [(2010-01-15):(2010-02-15)]",
            ));
        }
        let text = decode_bytes(
            self.s[body_start..self.pos].trim_matches([' ', '\t']),
            false,
        );
        self.pos += 1; // ')'
        if text.is_empty() {
            return Err(self.syntax(
                open,
                format!("empty coordinate value in the hyperslab of {}", quote(var)),
                "write a value inside the parentheses, e.g. [(40.0)]",
            ));
        }
        Ok(BoundValue {
            text,
            span: Span {
                start: open,
                end: self.pos,
            },
        })
    }

    fn call_after_name(&mut self, start: usize, name: String) -> Result<FunctionCall, CeError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.syntax(
                self.pos,
                "function calls nested too deeply".to_owned(),
                "simplify the expression",
            ));
        }
        self.pos += 1; // '('
        let mut args = Vec::new();
        if !self.eat(b')') {
            loop {
                args.push(self.rvalue()?);
                if self.eat(b',') {
                    continue;
                }
                if self.eat(b')') {
                    break;
                }
                return Err(self.syntax(
                    self.pos,
                    format!(
                        "expected ',' or ')' in the arguments of {}, found {}",
                        quote(&name),
                        self.found()
                    ),
                    "function calls are written name(arg, arg, …)",
                ));
            }
        }
        self.depth -= 1;
        Ok(FunctionCall {
            name,
            args,
            span: Span {
                start,
                end: self.pos,
            },
        })
    }

    fn rvalue(&mut self) -> Result<RValue, CeError> {
        self.skip_ws();
        let start = self.pos;
        let next = self.b.get(self.pos + 1).copied();
        match self.peek() {
            Some(b'"') => self.quoted().map(RValue::Str),
            Some(b'0'..=b'9') => Ok(RValue::Number(self.number())),
            Some(b'-' | b'+' | b'.') if next.is_some_and(|c| c.is_ascii_digit() || c == b'.') => {
                Ok(RValue::Number(self.number()))
            }
            Some(c) if is_name_start(c) => {
                let name = self.name();
                self.skip_ws();
                if self.peek() == Some(b'(') {
                    Ok(RValue::Call(self.call_after_name(start, name)?))
                } else {
                    Ok(RValue::Path(self.path_after_name(start, name)?))
                }
            }
            _ => Err(self.syntax(
                start,
                format!(
                    "expected a variable, number or quoted string, found {}",
                    self.found()
                ),
                "selections are written like lat>0 or name=\"text\"",
            )),
        }
    }

    fn number(&mut self) -> String {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        while let Some(c) = self.peek() {
            let exp_sign =
                matches!(c, b'-' | b'+') && matches!(self.b.get(self.pos - 1), Some(b'e' | b'E'));
            if c.is_ascii_digit() || c == b'.' || c == b'e' || c == b'E' || exp_sign {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.s[start..self.pos].to_owned()
    }

    fn quoted(&mut self) -> Result<String, CeError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.s[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e)) => out.push(e),
                    None => break,
                },
                c => out.push(c),
            }
        }
        self.pos = self.s.len();
        Err(self.syntax(
            open,
            "unterminated quoted string".to_owned(),
            "close the string with '\"'",
        ))
    }

    fn selection(&mut self, amp: usize) -> Result<Selection, CeError> {
        self.skip_ws();
        if matches!(self.peek(), None | Some(b'&')) {
            return Err(self.syntax(
                self.pos,
                "expected a selection after '&'".to_owned(),
                "remove the trailing '&'",
            ));
        }
        let lhs = self.rvalue()?;
        self.skip_ws();
        if matches!(self.peek(), None | Some(b'&'))
            && let RValue::Call(call) = lhs
        {
            return Ok(Selection {
                kind: SelectionKind::Call(call),
                span: Span {
                    start: amp,
                    end: self.pos,
                },
            });
        }
        let op = self.relop()?;
        self.skip_ws();
        let rhs = if self.peek() == Some(b'{') {
            self.pos += 1;
            let mut items = vec![self.rvalue()?];
            loop {
                if self.eat(b',') {
                    items.push(self.rvalue()?);
                } else if self.eat(b'}') {
                    break;
                } else {
                    return Err(self.syntax(
                        self.pos,
                        format!(
                            "expected ',' or '}}' in a value list, found {}",
                            self.found()
                        ),
                        "value lists are written {v1, v2}",
                    ));
                }
            }
            items
        } else {
            vec![self.rvalue()?]
        };
        Ok(Selection {
            kind: SelectionKind::Compare { lhs, op, rhs },
            span: Span {
                start: amp,
                end: self.pos,
            },
        })
    }

    fn relop(&mut self) -> Result<RelOp, CeError> {
        let two = self.b.get(self.pos..self.pos + 2);
        let (op, len) = match (self.peek(), two) {
            (_, Some(b"!=")) => (RelOp::Ne, 2),
            (_, Some(b"<=")) => (RelOp::Le, 2),
            (_, Some(b">=")) => (RelOp::Ge, 2),
            (_, Some(b"=~")) => (RelOp::Match, 2),
            (Some(b'='), _) => (RelOp::Eq, 1),
            (Some(b'<'), _) => (RelOp::Lt, 1),
            (Some(b'>'), _) => (RelOp::Gt, 1),
            _ => {
                return Err(self.syntax(
                    self.pos,
                    format!("expected a relational operator, found {}", self.found()),
                    "selections compare with =, !=, <, <=, >, >= or =~",
                ));
            }
        };
        self.pos += len;
        Ok(op)
    }
}

#[derive(Clone, Copy)]
enum Part {
    Start,
    Stop,
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Index(i) => write!(f, "{i}"),
            Bound::Last => f.write_str("*"),
            Bound::Value(v) => write!(f, "({})", v.text),
        }
    }
}

impl fmt::Display for Slab {
    /// Canonical form: `[i]`, `[a:b]` or `[a:s:b]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.stride, &self.stop) {
            (_, None) => write!(f, "[{}]", self.start),
            (None, Some(stop)) => write!(f, "[{}:{}]", self.start, stop),
            (Some(s), Some(stop)) => write!(f, "[{}:{}:{}]", self.start, s, stop),
        }
    }
}

impl fmt::Display for VarPath {
    /// Canonical form, e.g. `sst.sst[0][0:1][1:2]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.components.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(&c.name)?;
            for s in &c.slabs {
                write!(f, "{s}")?;
            }
        }
        Ok(())
    }
}

impl VarPath {
    /// The component names joined with `.` (`sst.sst`), without slabs.
    pub fn dotted_name(&self) -> String {
        let names: Vec<&str> = self.components.iter().map(|c| c.name.as_str()).collect();
        names.join(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(ce: &Constraint, i: usize) -> &VarPath {
        match &ce.projections[i] {
            ProjItem::Path(p) => p,
            other => panic!("not a path: {other:?}"),
        }
    }

    #[test]
    fn decoding() {
        let cases = [
            ("sst.sst%5b0%5d%5b0:1%5d%5b1:2%5d", "sst.sst[0][0:1][1:2]"),
            ("sst.sst%5B0%5D", "sst.sst[0]"),
            ("a%2cb", "a,b"),
            ("a%3a", "a:"),
            ("l%61t", "lat"),
            ("a+b", "a+b"),
            ("sea%20ice", "sea%20ice"),
            ("x%", "x%"),
            ("x%4", "x%4"),
            ("x%zz", "x%zz"),
            ("%26lat%3E0", "&lat>0"),
            ("[]{}<>\"|", "[]{}<>\"|"),
            ("%ff", "\u{fffd}"),
        ];
        for (raw, want) in cases {
            assert_eq!(percent_decode(raw), want, "{raw}");
        }
    }

    #[test]
    fn projections() {
        let cases = [
            ("", ""),
            ("sst", "sst"),
            ("time,lat,lon", "time,lat,lon"),
            ("sst.sst[0][0:1][1:2]", "sst.sst[0][0:1][1:2]"),
            ("sst[1][0:2:2][3]", "sst[1][0:2:2][3]"),
            ("lat[*]", "lat[0:*]"),
            ("lat[1:*]", "lat[1:*]"),
            ("lat[0:2:*]", "lat[0:2:*]"),
            (" sst . sst [ 0 : 1 ] ", "sst.sst[0:1]"),
            (
                "sst[(2010-01-15):(2010-02-15T12:00:00Z)][(-12.5)][( 40.0 )]",
                "sst[(2010-01-15):(2010-02-15T12:00:00Z)][(-12.5)][(40.0)]",
            ),
            ("sst[(2010-01-15):2:*]", "sst[(2010-01-15):2:*]"),
            ("sea%2520ice", "sea ice"),
            ("t[(2010-01-15%2012:00)]", "t[(2010-01-15 12:00)]"),
        ];
        for (input, want) in cases {
            let ce = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let got: Vec<String> = ce
                .projections
                .iter()
                .map(|p| match p {
                    ProjItem::Path(p) => p.to_string(),
                    ProjItem::Call(c) => c.name.clone(),
                })
                .collect();
            assert_eq!(got.join(","), want, "{input}");
            assert!(ce.selections.is_empty());
        }
    }

    #[test]
    fn slab_structure() {
        let ce = parse("sst.sst[0][0:1][1:3:7]").unwrap();
        let p = path(&ce, 0);
        assert_eq!(p.dotted_name(), "sst.sst");
        assert_eq!(p.span, Span { start: 0, end: 22 });
        let slabs = &p.components[1].slabs;
        assert_eq!(
            slabs[0],
            Slab {
                start: Bound::Index(0),
                stride: None,
                stop: None,
                span: Span { start: 7, end: 10 }
            }
        );
        assert_eq!(slabs[1].stop, Some(Bound::Index(1)));
        assert_eq!(slabs[2].stride, Some(3));
        assert_eq!(slabs[2].stop, Some(Bound::Index(7)));
        let ce = parse("t[(2010-01-15)]").unwrap();
        let s = &path(&ce, 0).components[0].slabs[0];
        assert_eq!(
            s.start,
            Bound::Value(BoundValue {
                text: "2010-01-15".into(),
                span: Span { start: 2, end: 14 }
            })
        );
        assert_eq!(s.stop, None);
    }

    #[test]
    fn selections_and_calls_parse() {
        let ce = parse("sst&lat>0&time>=-1.5e+3&name=~\"a\\\"b\"&lat={1,2}&bounds(sst)").unwrap();
        assert_eq!(ce.selections.len(), 5);
        match &ce.selections[0].kind {
            SelectionKind::Compare { op, rhs, .. } => {
                assert_eq!(*op, RelOp::Gt);
                assert_eq!(rhs, &vec![RValue::Number("0".into())]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ce.selections[0].span, Span { start: 3, end: 9 });
        match &ce.selections[1].kind {
            SelectionKind::Compare { op, rhs, .. } => {
                assert_eq!(*op, RelOp::Ge);
                assert_eq!(rhs, &vec![RValue::Number("-1.5e+3".into())]);
            }
            other => panic!("{other:?}"),
        }
        match &ce.selections[2].kind {
            SelectionKind::Compare { op, rhs, .. } => {
                assert_eq!(*op, RelOp::Match);
                assert_eq!(rhs, &vec![RValue::Str("a\"b".into())]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&ce.selections[3].kind, SelectionKind::Compare { rhs, .. } if rhs.len() == 2)
        );
        assert!(matches!(&ce.selections[4].kind, SelectionKind::Call(c) if c.name == "bounds"));

        let ce = parse("geogrid(sst,62,206,56,210),lat&lat<10").unwrap();
        assert!(
            matches!(&ce.projections[0], ProjItem::Call(c) if c.name == "geogrid" && c.args.len() == 5)
        );
        assert!(matches!(&ce.projections[1], ProjItem::Path(_)));
        let ce = parse("&lat>0").unwrap();
        assert!(ce.projections.is_empty());
        assert_eq!(ce.selections.len(), 1);
    }

    /// Snapshot table of syntax error messages, with the caret rendering.
    #[test]
    fn syntax_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "sst.sst[0][0:1][1:2",
                "expected ']' to close the hyperslab of `sst`, found the end of the expression at column 20; hyperslabs are [start:stride:stop]",
            ),
            (
                "sst[0;1]",
                "expected ']' to close the hyperslab of `sst`, found `;` at column 6; hyperslabs are [start:stride:stop]",
            ),
            (
                "sst[]",
                "expected an index, '*' or '(value)' after '[' in the hyperslab of `sst`, found `]` at column 5; hyperslabs are [start:stride:stop]",
            ),
            (
                "lat[0:]",
                "expected an index, '*' or '(value)' after ':' in the hyperslab of `lat`, found `]` at column 7; hyperslabs are [start:stride:stop]",
            ),
            (
                "lat[-1]",
                "negative index in the hyperslab of `lat` at column 5; indices count from 0; write coordinate values in parentheses, e.g. [(-12.5)]",
            ),
            (
                "lat[1.5]",
                "index of the hyperslab of `lat` is not an integer at column 5; indices are whole numbers; write coordinate values in parentheses, e.g. [(1.5)]",
            ),
            (
                "lat[0:*:3]",
                "the stride of the hyperslab of `lat` must be a plain integer at column 7; hyperslabs are [start:stride:stop]",
            ),
            (
                "lat[*:3]",
                "expected ']' after '[*' in the hyperslab of `lat` at column 6; '*' alone selects the whole dimension; as a stop write [start:*]",
            ),
            (
                "lat[(10.0]",
                "expected ')' to close the coordinate value opened at column 5 in the hyperslab of `lat`, found `]` at column 10; coordinate values are written in parentheses, e.g. [(2010-01-15):(2010-02-15)]",
            ),
            (
                "lat[( )]",
                "empty coordinate value in the hyperslab of `lat` at column 5; write a value inside the parentheses, e.g. [(40.0)]",
            ),
            (
                "lat,",
                "expected a variable name after ',' at column 5; remove the trailing comma",
            ),
            (
                "lat,,lon",
                "expected a variable name, found `,` at column 5; project variables as name, grid.member or name[start:stride:stop]",
            ),
            (
                "sst.",
                "expected a member name after '.', found the end of the expression at column 5; grid members are written grid.member, e.g. sst.sst or sst.lat",
            ),
            (
                "lat)",
                "unexpected `)` at column 4; separate projections with ',' and start selections with '&'",
            ),
            (
                "lat&",
                "expected a selection after '&' at column 5; remove the trailing '&'",
            ),
            (
                "lat&lat",
                "expected a relational operator, found the end of the expression at column 8; selections compare with =, !=, <, <=, >, >= or =~",
            ),
            (
                "lat&lat>\"x",
                "unterminated quoted string at column 9; close the string with '\"'",
            ),
            (
                "lat[99999999999999999999999]",
                "number `99999999999999999999999` is too large at column 5; indices must be below 2^64 and inside the dimension",
            ),
            (
                "f(a b)",
                "expected ',' or ')' in the arguments of `f`, found `b` at column 5; function calls are written name(arg, arg, …)",
            ),
            (
                "lat%0a",
                "unexpected `\\n` at column 4; separate projections with ',' and start selections with '&'",
            ),
        ];
        for (input, want) in cases {
            let err = parse(input).expect_err(input);
            assert_eq!(err.to_string(), *want, "input {input}");
            assert!(!err.to_string().contains('\n'));
            assert_eq!(
                err.kind(),
                if input.starts_with("lat[9999") {
                    CeErrorKind::BadIndex
                } else {
                    CeErrorKind::Syntax
                }
            );
        }
    }

    #[test]
    fn caret_rendering() {
        let err = parse("sst.sst[0][0:1][1:2").unwrap_err();
        assert_eq!(
            err.caret().unwrap(),
            "sst.sst[0][0:1][1:2\n                   ^"
        );
        let err = parse("é[0;1]").unwrap_err();
        assert_eq!(err.offset(), Some(0));
        assert_eq!(render_caret("ééx", 4), "ééx\n  ^");
        assert_eq!(render_caret("a\nb", 2), "a?b\n  ^");
        assert_eq!(render_caret("ab", 99), "ab\n  ^");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "f(".repeat(10_000);
        assert!(parse(&deep).is_err());
        let deep = "f(".repeat(5) + "1" + &")".repeat(5);
        assert!(parse(&deep).is_ok());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        // 20_000 cases for each of the two properties below (40_000 inputs).
        proptest! {
            #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

            #[test]
            fn never_panics_on_any_string(s in ".*") {
                let _ = parse(&s);
            }

            #[test]
            fn never_panics_on_ce_alphabet(s in "[\\[\\]:,.&()*0-9a-z=<>!%{}\"+ -]{0,40}") {
                match parse(&s) {
                    Ok(ce) if !s.contains('%') => {
                        // Canonical text of each path parses again to the same path
                        // (without '%', names and values are never re-decoded).
                        for p in &ce.projections {
                            if let ProjItem::Path(p) = p {
                                let again = parse_decoded(&p.to_string());
                                prop_assert!(again.is_ok(), "{} from {}", p, s);
                                let again = match &again.unwrap().projections[0] {
                                    ProjItem::Path(q) => q.to_string(),
                                    ProjItem::Call(_) => String::new(),
                                };
                                prop_assert_eq!(again, p.to_string());
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let msg = e.to_string();
                        prop_assert!(!msg.contains('\n'));
                        prop_assert!(e.offset().unwrap_or(0) <= e.expr().len());
                        let _ = e.caret();
                    }
                }
            }
        }
    }
}
