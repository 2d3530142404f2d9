//! The website a request comes from, parsed from its `Origin` header with a URL parser (never sliced as
//! a string); its host is the "domain" used for trust, its serialisation the key of consent decisions.

use url::{Host, Url};

/// The website a request comes from, parsed from its `Origin` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerOrigin {
    /// No Origin header: a non-browser client.
    Absent,
    /// `Origin: null` (file:// pages, sandboxed iframes) or a value that is not a URL with a host.
    Opaque(String),
    /// A web origin.
    Web {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
}

impl CallerOrigin {
    /// Parses an `Origin` header value.
    pub fn parse(header: Option<&str>) -> Self {
        let Some(raw) = header else {
            return Self::Absent;
        };
        let Ok(url) = Url::parse(raw.trim()) else {
            return Self::Opaque(raw.to_string());
        };
        let host = match url.host() {
            Some(Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => format!("[{ip}]"),
            None => return Self::Opaque(raw.to_string()),
        };
        Self::Web {
            scheme: url.scheme().to_string(),
            host,
            port: url.port(),
        }
    }

    /// The "domain" for trust decisions and display: the origin's host (empty when absent).
    pub fn domain(&self) -> &str {
        match self {
            Self::Absent => "",
            Self::Opaque(_) => "null",
            Self::Web { host, .. } => host,
        }
    }

    /// The origin serialised as `scheme://host[:port]` (the unit consent decisions are keyed by).
    pub fn serialized(&self) -> String {
        match self {
            Self::Absent => String::new(),
            Self::Opaque(_) => "null".into(),
            Self::Web {
                scheme,
                host,
                port: Some(p),
            } => format!("{scheme}://{host}:{p}"),
            Self::Web {
                scheme,
                host,
                port: None,
            } => format!("{scheme}://{host}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_domains_match_the_original_where_it_was_right() {
        assert_eq!(
            CallerOrigin::parse(Some("http://test.local:5000")).domain(),
            "test.local"
        );
        assert_eq!(
            CallerOrigin::parse(Some("https://example.com")).domain(),
            "example.com"
        );
        assert_eq!(
            CallerOrigin::parse(Some("http://127.0.0.1:8080")).domain(),
            "127.0.0.1"
        );
        assert_eq!(CallerOrigin::parse(Some("null")).domain(), "null");
        assert_eq!(CallerOrigin::parse(None).domain(), "");
    }

    #[test]
    fn origin_parsing_fixes_the_originals_slicing_bugs() {
        // The original cut at the first ':' and returned "[" for IPv6 origins.
        assert_eq!(
            CallerOrigin::parse(Some("http://[::1]:8000")).domain(),
            "[::1]"
        );
        assert_eq!(
            CallerOrigin::parse(Some("https://Example.COM")).domain(),
            "example.com"
        );
        let o = CallerOrigin::parse(Some("https://a.example:8443"));
        assert_eq!(o.serialized(), "https://a.example:8443");
        assert_eq!(
            CallerOrigin::parse(Some("https://a.example:443")).serialized(),
            "https://a.example"
        );
    }
}
