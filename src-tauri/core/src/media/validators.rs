//! What makes a partial download resumable: the server's validators (ETag, Last-Modified) and total
//! length, saved next to the `.part` file so a restarted daemon can resume with `If-Range`.

use std::path::Path;

use reqwest::header::{HeaderMap, CONTENT_LENGTH, ETAG, LAST_MODIFIED};
use serde::{Deserialize, Serialize};

use super::error::MediaError;

/// Validator metadata of a `.part` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The full length of the file, when the server said it.
    pub total: Option<u64>,
}

impl PartMeta {
    /// Reads the validators of a full (`200`) response.
    pub fn from_response(url: &str, headers: &HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .filter(|s| !s.is_empty() && s.len() <= 256)
                .map(str::to_string)
        };
        Self {
            url: url.into(),
            etag: text(ETAG),
            last_modified: text(LAST_MODIFIED),
            total: text(CONTENT_LENGTH).and_then(|s| s.parse().ok()),
        }
    }

    /// The `If-Range` value: a strong ETag, else Last-Modified; `None` when resuming is unsafe.
    pub fn if_range(&self) -> Option<&str> {
        match &self.etag {
            Some(tag) if !tag.starts_with("W/") => Some(tag),
            _ => self.last_modified.as_deref(),
        }
    }

    pub fn load(path: &Path) -> Option<Self> {
        crate::store::read_json(path).ok().flatten()
    }

    pub fn save(&self, path: &Path) -> Result<(), MediaError> {
        crate::store::write_json_atomic(path, self).map_err(|e| MediaError::io(path, e))
    }
}

/// A parsed `Content-Range: bytes start-end/total` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end: u64,
    pub total: Option<u64>,
}

/// Parses `bytes start-end/total` (total may be `*`); `None` when malformed.
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if end < start || total.is_some_and(|t| end >= t) {
        return None;
    }
    Some(ContentRange { start, end, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_ranges() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some(ContentRange {
                start: 100,
                end: 199,
                total: Some(200)
            })
        );
        assert_eq!(parse_content_range("bytes 0-0/*").unwrap().total, None);
        assert_eq!(parse_content_range("bytes 5-4/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes x-1/2"), None);
    }

    #[test]
    fn prefers_strong_etag_for_if_range() {
        let mut m = PartMeta {
            url: "u".into(),
            etag: Some("\"abc\"".into()),
            last_modified: Some("Mon, 23 Nov 2026 10:00:00 GMT".into()),
            total: Some(1),
        };
        assert_eq!(m.if_range(), Some("\"abc\""));
        m.etag = Some("W/\"abc\"".into());
        assert_eq!(m.if_range(), m.last_modified.as_deref());
        m.last_modified = None;
        assert_eq!(m.if_range(), None);
    }
}
