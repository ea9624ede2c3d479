//! Resuming interrupted downloads with HTTP range requests (RFC 9110 §14).

/// What a response told us about resuming the same resource later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeHint {
    /// A strong validator for `If-Range`: a strong ETag, else Last-Modified.
    pub validator: Option<String>,
    /// The server said `Accept-Ranges: bytes`.
    pub accepts_ranges: bool,
}

impl ResumeHint {
    /// Reads the hint from a response's `ETag`, `Last-Modified` and `Accept-Ranges` values.
    pub fn from_headers(
        etag: Option<&str>,
        last_modified: Option<&str>,
        accept_ranges: Option<&str>,
    ) -> Self {
        // A weak ETag can't be used with If-Range (RFC 9110 §13.1.5); Last-Modified can.
        let strong_etag = etag
            .map(str::trim)
            .filter(|e| !e.starts_with("W/") && e.len() >= 2);
        let validator = strong_etag
            .or(last_modified.map(str::trim).filter(|v| !v.is_empty()))
            .map(str::to_string);
        let accepts_ranges = accept_ranges
            .is_some_and(|v| v.split(',').any(|u| u.trim().eq_ignore_ascii_case("bytes")));
        ResumeHint {
            validator,
            accepts_ranges,
        }
    }

    /// The `Range` and `If-Range` values to continue after `offset` bytes, if resuming is safe.
    /// Without a validator the server could splice two versions of the file together.
    pub fn resume_headers(&self, offset: u64) -> Option<(String, String)> {
        match (&self.validator, self.accepts_ranges, offset) {
            (Some(v), true, 1..) => Some((format!("bytes={offset}-"), v.clone())),
            _ => None,
        }
    }
}

/// A parsed `Content-Range: bytes FIRST-LAST/TOTAL` (TOTAL may be `*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// First byte offset.
    pub first: u64,
    /// Last byte offset (inclusive).
    pub last: u64,
    /// Full length, when the server knows it.
    pub total: Option<u64>,
}

impl ContentRange {
    /// Parses the header value; `None` for anything malformed or not in bytes.
    pub fn parse(value: &str) -> Option<ContentRange> {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (span, total) = rest.split_once('/')?;
        let (first, last) = span.split_once('-')?;
        let first: u64 = first.trim().parse().ok()?;
        let last: u64 = last.trim().parse().ok()?;
        let total = match total.trim() {
            "*" => None,
            t => Some(t.parse::<u64>().ok()?),
        };
        if last < first || total.is_some_and(|t| last >= t) {
            return None;
        }
        Some(ContentRange { first, last, total })
    }

    /// Number of bytes in the range (only the tests need it since the type left the public API).
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.last - self.first + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ETag, Last-Modified, Accept-Ranges, expected validator, expected ranges)
    type HintCase<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        bool,
    );
    /// (header value, expected (first, last, total))
    type RangeCase<'a> = (&'a str, Option<(u64, u64, Option<u64>)>);

    #[test]
    fn hint_from_headers() {
        let cases: &[HintCase] = &[
            (Some("\"abc\""), None, Some("bytes"), Some("\"abc\""), true),
            (Some("W/\"abc\""), None, Some("bytes"), None, true),
            (
                Some("W/\"abc\""),
                Some("Tue, 01 Nov 2022 00:00:00 GMT"),
                Some("bytes"),
                Some("Tue, 01 Nov 2022 00:00:00 GMT"),
                true,
            ),
            (
                Some("\"e\""),
                Some("lm"),
                Some("none"),
                Some("\"e\""),
                false,
            ),
            (None, None, Some("Bytes, other"), None, true),
            (None, None, None, None, false),
        ];
        for (etag, lm, ar, validator, ranges) in cases {
            let h = ResumeHint::from_headers(*etag, *lm, *ar);
            assert_eq!(h.validator.as_deref(), *validator, "{etag:?} {lm:?}");
            assert_eq!(h.accepts_ranges, *ranges, "{ar:?}");
        }
    }

    #[test]
    fn resume_only_with_validator_ranges_and_progress() {
        let good = ResumeHint {
            validator: Some("\"v\"".into()),
            accepts_ranges: true,
        };
        assert_eq!(
            good.resume_headers(10),
            Some(("bytes=10-".to_string(), "\"v\"".to_string()))
        );
        assert_eq!(good.resume_headers(0), None);
        let no_validator = ResumeHint {
            validator: None,
            accepts_ranges: true,
        };
        assert_eq!(no_validator.resume_headers(10), None);
        let no_ranges = ResumeHint {
            validator: Some("x".into()),
            accepts_ranges: false,
        };
        assert_eq!(no_ranges.resume_headers(10), None);
    }

    #[test]
    fn content_range_table() {
        let cases: &[RangeCase] = &[
            ("bytes 10-19/20", Some((10, 19, Some(20)))),
            ("bytes 0-0/1", Some((0, 0, Some(1)))),
            ("bytes 5-9/*", Some((5, 9, None))),
            ("bytes 10-19/15", None),
            ("bytes 19-10/20", None),
            ("bytes */20", None),
            ("items 0-1/2", None),
            ("bytes 1-2", None),
            ("bytes -1-2/3", None),
        ];
        for (value, want) in cases {
            let got = ContentRange::parse(value).map(|r| (r.first, r.last, r.total));
            assert_eq!(got, *want, "{value}");
        }
        assert_eq!(
            ContentRange::parse("bytes 10-19/20").map(|r| r.len()),
            Some(10)
        );
    }
}
