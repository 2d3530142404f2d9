//! Origins: the serialized form blocks are keyed by, and the parts a dialog shows (scheme, host,
//! port, and the registrable domain from the Public Suffix List, which is what a user should read).

use serde::Serialize;

/// The ASCII serialization (`scheme://host[:port]`, default port omitted, host lower-cased and
/// punycoded) of an `Origin` header value, or `None` when it is not a tuple origin (`null`,
/// `file://`, garbage).
pub fn serialize_origin(header: &str) -> Option<String> {
    let url = url::Url::parse(header.trim()).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// An origin taken apart for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginView {
    /// The serialized origin as given.
    pub serialized: String,
    pub scheme: String,
    pub host: String,
    /// The effective port (the scheme's default when none is written).
    pub port: Option<u16>,
    /// Whether `port` is the scheme's default.
    pub default_port: bool,
    /// The part of `host` before the registrable domain (e.g. `www.` of `www.example.co.uk`).
    pub subdomain: String,
    /// The registrable domain (e.g. `example.co.uk`); the whole host for IP addresses and hosts
    /// the Public Suffix List knows no registrable part of (e.g. `localhost`).
    pub registrable: String,
    /// `http` (not `https`) and not a loopback host: the page could have been tampered with on the way.
    pub insecure: bool,
}

impl OriginView {
    /// Parses a serialized origin; anything unparseable is shown whole, as the host.
    pub fn parse(serialized: &str) -> Self {
        let Some(url) = url::Url::parse(serialized)
            .ok()
            .filter(|u| u.host_str().is_some())
        else {
            return Self {
                serialized: serialized.to_string(),
                scheme: String::new(),
                host: serialized.to_string(),
                port: None,
                default_port: true,
                subdomain: String::new(),
                registrable: serialized.to_string(),
                insecure: true,
            };
        };
        let host = url.host_str().unwrap_or_default().to_string();
        let is_domain = matches!(url.host(), Some(url::Host::Domain(_)));
        let registrable = if is_domain {
            psl::domain_str(&host)
                .map(str::to_string)
                .unwrap_or_else(|| host.clone())
        } else {
            host.clone()
        };
        let subdomain = host
            .strip_suffix(registrable.as_str())
            .unwrap_or_default()
            .to_string();
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
            None => false,
        };
        Self {
            serialized: serialized.to_string(),
            scheme: url.scheme().to_string(),
            port: url.port_or_known_default(),
            default_port: url.port().is_none(),
            insecure: url.scheme() != "https" && !loopback,
            host,
            subdomain,
            registrable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_like_browsers() {
        assert_eq!(
            serialize_origin("https://Example.COM").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(
            serialize_origin("http://test.local:80").as_deref(),
            Some("http://test.local")
        );
        assert_eq!(
            serialize_origin("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            serialize_origin("http://[::1]:8000").as_deref(),
            Some("http://[::1]:8000")
        );
        assert_eq!(serialize_origin("null"), None);
        assert_eq!(serialize_origin("file:///tmp/x.html"), None);
        assert_eq!(serialize_origin(""), None);
    }

    #[test]
    fn registrable_domain_uses_the_public_suffix_list() {
        let v = OriginView::parse("https://lhcathome.cern.ch");
        assert_eq!(v.registrable, "cern.ch");
        assert_eq!(v.subdomain, "lhcathome.");
        assert_eq!(v.port, Some(443));
        assert!(v.default_port);
        assert!(!v.insecure);

        let v = OriginView::parse("http://www.example.co.uk:8080");
        assert_eq!(v.registrable, "example.co.uk");
        assert_eq!(v.subdomain, "www.");
        assert_eq!(v.port, Some(8080));
        assert!(!v.default_port);
        assert!(v.insecure);
    }

    #[test]
    fn ip_and_single_label_hosts_are_shown_whole() {
        let v = OriginView::parse("http://127.0.0.1:5000");
        assert_eq!(
            (v.registrable.as_str(), v.subdomain.as_str()),
            ("127.0.0.1", "")
        );
        assert!(!v.insecure, "loopback http is not flagged");
        let v = OriginView::parse("http://localhost:3000");
        assert_eq!(v.registrable, "localhost");
        let v = OriginView::parse("http://[::1]:8000");
        assert_eq!(v.host, "[::1]");
        assert_eq!(v.registrable, "[::1]");
    }

    #[test]
    fn garbage_is_shown_whole_and_flagged() {
        let v = OriginView::parse("null");
        assert_eq!(v.host, "null");
        assert!(v.insecure);
    }
}
