//! HTTP `Range: bytes=...` for resumable downloads (RFC 9110 §14).
//!
//! One range is served (`206`); several ranges, or anything unparsable, are
//! treated as no range at all (`200` with the whole body), which RFC 9110
//! allows. A range that starts past the end is unsatisfiable (`416`).
//!
//! Written here rather than taken from `headers::Range`, whose
//! `satisfiable_ranges` (0.4) neither clamps an end past the body nor tells
//! an unsatisfiable range from a bad one, and drops a suffix longer than the
//! body where RFC 9110 serves it whole; the conditional headers around it
//! (`If-Range`, `ETag`, `Content-Range`) do come from `headers`.

/// A resolved byte range, `start..=end` within a body of known length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What a `Range` header asks of a body of `total` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: send everything.
    Whole,
    /// One satisfiable range.
    Partial(ByteRange),
    /// A range that starts at or past the end.
    Unsatisfiable,
}

pub fn parse(header: Option<&str>, total: u64) -> RangeRequest {
    let Some(h) = header else { return RangeRequest::Whole };
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return RangeRequest::Whole };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeRequest::Whole };
    let (a, b) = (a.trim(), b.trim());
    if total == 0 {
        return RangeRequest::Unsatisfiable;
    }
    let range = if a.is_empty() {
        // Suffix: the last b bytes.
        let Ok(n) = b.parse::<u64>() else { return RangeRequest::Whole };
        if n == 0 {
            return RangeRequest::Unsatisfiable;
        }
        ByteRange { start: total.saturating_sub(n), end: total - 1 }
    } else {
        let Ok(start) = a.parse::<u64>() else { return RangeRequest::Whole };
        let end = if b.is_empty() {
            total - 1
        } else {
            let Ok(end) = b.parse::<u64>() else { return RangeRequest::Whole };
            if end < start {
                return RangeRequest::Whole;
            }
            end.min(total - 1)
        };
        if start >= total {
            return RangeRequest::Unsatisfiable;
        }
        ByteRange { start, end }
    };
    RangeRequest::Partial(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let p = |h: &str| parse(Some(h), 1000);
        assert_eq!(parse(None, 1000), RangeRequest::Whole);
        assert_eq!(p("bytes=0-99"), RangeRequest::Partial(ByteRange { start: 0, end: 99 }));
        assert_eq!(p("bytes=500-"), RangeRequest::Partial(ByteRange { start: 500, end: 999 }));
        assert_eq!(p("bytes=-10"), RangeRequest::Partial(ByteRange { start: 990, end: 999 }));
        assert_eq!(p("bytes=990-5000"), RangeRequest::Partial(ByteRange { start: 990, end: 999 }));
        assert_eq!(p("bytes=1000-"), RangeRequest::Unsatisfiable);
        assert_eq!(p("bytes=0-1,5-6"), RangeRequest::Whole);
        assert_eq!(p("bytes=9-3"), RangeRequest::Whole);
        assert_eq!(p("items=0-3"), RangeRequest::Whole);
        assert_eq!(p("bytes=x-3"), RangeRequest::Whole);
        assert_eq!(p("bytes=-0"), RangeRequest::Unsatisfiable);
        assert_eq!(p("bytes=-5000"), RangeRequest::Partial(ByteRange { start: 0, end: 999 }));
    }
}
