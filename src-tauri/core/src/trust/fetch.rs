//! Fetching a VMCP (and the signed keystore) over HTTP(S): the request URL with `cvm_salt` and
//! `cvm_hostid` (§4.2), certificate verification always on, connect and total timeouts, a body cap
//! enforced while streaming, a bounded number of redirects, and no plain http except to loopback.

use std::net::IpAddr;
use std::time::Duration;

use url::Url;

use super::error::{TrustError, TrustErrorKind};

/// The longest VMCP URL a page may hand us.
pub const MAX_URL_LEN: usize = 4096;

/// Limits and options of the fetcher.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    pub connect_timeout: Duration,
    /// Covers the whole exchange: connect, redirects, headers and body.
    pub total_timeout: Duration,
    /// The largest body accepted, checked against `Content-Length` and while streaming.
    pub max_body_bytes: usize,
    pub max_redirects: usize,
    /// Allow plain `http://` to non-loopback hosts (off: only `https://`, or `http://` to
    /// 127.0.0.0/8, `::1` and `localhost`, for development).
    pub allow_plain_http: bool,
    /// Extra trusted CA certificates (PEM), added to the built-in web PKI roots.
    pub extra_ca_pem: Vec<Vec<u8>>,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(60),
            max_body_bytes: 1024 * 1024,
            max_redirects: 5,
            allow_plain_http: false,
            extra_ca_pem: Vec::new(),
        }
    }
}

/// Builds the URL the daemon fetches: `vmcp` plus `cvm_salt=<salt>&cvm_hostid=<hostid>`, joined with
/// `&` when the URL already has a query and `?` otherwise. A `#fragment` is dropped (it is never sent
/// to a server; the original appended the parameters after it by mistake).
pub fn vmcp_request_url(vmcp: &str, salt: &str, host_id: &str) -> Result<Url, TrustError> {
    let fetch_error = |d: String| TrustError::new(TrustErrorKind::Fetch, d);
    if vmcp.len() > MAX_URL_LEN {
        return Err(fetch_error(format!(
            "the VMCP URL is longer than {MAX_URL_LEN} characters"
        )));
    }
    let mut url =
        Url::parse(vmcp).map_err(|e| fetch_error(format!("{vmcp:?} is not a valid URL: {e}")))?;
    url.set_fragment(None);
    let params = format!("cvm_salt={salt}&cvm_hostid={host_id}");
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&{params}"),
        _ => params,
    };
    url.set_query(Some(&query));
    Ok(url)
}

/// Is `url` one we may contact? `https`, or `http` to loopback (or anywhere with `allow_plain_http`).
pub fn check_scheme(url: &Url, allow_plain_http: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_plain_http || is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "{url} uses plain http; only https is accepted (plain http only to this computer)"
        )),
        other => Err(format!("{url}: the scheme {other:?} is not http(s)")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// An HTTP client with the policy's limits. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: FetchPolicy,
}

impl Fetcher {
    pub fn new(policy: FetchPolicy) -> Result<Self, TrustError> {
        let max_redirects = policy.max_redirects;
        let allow_plain_http = policy.allow_plain_http;
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(format!("more than {max_redirects} redirects"));
            }
            let from_https = attempt.previous().iter().any(|u| u.scheme() == "https");
            if from_https && attempt.url().scheme() != "https" {
                let msg = format!("refusing a redirect from https to {}", attempt.url());
                return attempt.error(msg);
            }
            match check_scheme(attempt.url(), allow_plain_http) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        });
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(false)
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.total_timeout)
            .redirect(redirect)
            .user_agent(concat!("cernvm-webapi/", env!("CARGO_PKG_VERSION")));
        for pem in &policy.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| TrustError::usage(format!("bad CA certificate (PEM): {e}")))?;
            if certs.is_empty() {
                return Err(TrustError::usage("a CA file holds no PEM certificate"));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| TrustError::io(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self { client, policy })
    }

    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// GETs `url` and returns the body. Every failure is a -6 with what went wrong.
    pub async fn get(&self, url: &Url) -> Result<Vec<u8>, TrustError> {
        let fetch_error = |d: String| TrustError::new(TrustErrorKind::Fetch, d);
        check_scheme(url, self.policy.allow_plain_http).map_err(fetch_error)?;
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| fetch_error(format!("GET {}: {}", redacted(url), error_chain(&e))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fetch_error(format!(
                "GET {} answered HTTP {status}",
                redacted(url)
            )));
        }
        let cap = self.policy.max_body_bytes;
        if let Some(len) = response.content_length() {
            if len > cap as u64 {
                return Err(fetch_error(format!(
                    "GET {}: the body has {len} bytes, more than the limit of {cap}",
                    redacted(url)
                )));
            }
        }
        let mut body = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                fetch_error(format!(
                    "GET {}: reading the body: {}",
                    redacted(url),
                    error_chain(&e)
                ))
            })?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > cap {
                return Err(fetch_error(format!(
                    "GET {}: the body is larger than the limit of {cap} bytes",
                    redacted(url)
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The URL without its query (the salt and host id need not go to the log).
fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// An error and all its causes, joined with ": " (reqwest's own message hides the cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &str = "S";
    const HID: &str = "H";

    #[test]
    fn appends_with_question_mark_or_ampersand() {
        let u = |s: &str| vmcp_request_url(s, SALT, HID).unwrap().to_string();
        assert_eq!(
            u("https://a.org/vmcp"),
            "https://a.org/vmcp?cvm_salt=S&cvm_hostid=H"
        );
        assert_eq!(
            u("https://a.org/vmcp?x=1"),
            "https://a.org/vmcp?x=1&cvm_salt=S&cvm_hostid=H"
        );
        assert_eq!(
            u("https://a.org/vmcp?"),
            "https://a.org/vmcp?cvm_salt=S&cvm_hostid=H"
        );
        assert_eq!(
            u("https://a.org/vmcp?x=1#frag"),
            "https://a.org/vmcp?x=1&cvm_salt=S&cvm_hostid=H"
        );
        assert_eq!(
            u("https://a.org/v#f?g"),
            "https://a.org/v?cvm_salt=S&cvm_hostid=H"
        );
    }

    #[test]
    fn refuses_bad_urls_and_plain_http_to_remote_hosts() {
        assert_eq!(
            vmcp_request_url("not a url", SALT, HID).unwrap_err().code(),
            -6
        );
        let long = format!("https://a.org/{}", "x".repeat(MAX_URL_LEN));
        assert!(vmcp_request_url(&long, SALT, HID).is_err());
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(check_scheme(&url("https://a.org/"), false).is_ok());
        assert!(check_scheme(&url("http://127.0.0.1:5000/"), false).is_ok());
        assert!(check_scheme(&url("http://[::1]/"), false).is_ok());
        assert!(check_scheme(&url("http://localhost/"), false).is_ok());
        assert!(check_scheme(&url("http://a.org/"), false).is_err());
        assert!(check_scheme(&url("http://a.org/"), true).is_ok());
        assert!(check_scheme(&url("file:///etc/passwd"), true).is_err());
    }
}
