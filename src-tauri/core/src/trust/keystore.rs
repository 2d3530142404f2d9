//! The domain keystore line format (`domain=base64-SPKI`, shared/spec/protocol.md §4.6), domain
//! normalisation, and local keystore files.
//!
//! Differences from the original, on purpose: domains are compared after IDNA normalisation (so
//! case-insensitively); a file with a malformed line, an unusable key or a domain listed twice is
//! refused as a whole with the line number, instead of being half-loaded.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::error::TrustError;
use super::keys::PublicKey;

/// The largest keystore file read.
pub const MAX_KEYSTORE_BYTES: u64 = 4 * 1024 * 1024;

/// The form a domain is compared in: IDNA (UTS #46) ASCII, lower case. `None` for anything that is
/// not a host name or IP address (including the `""` and `"null"` of pages without an origin).
pub fn normalize_domain(domain: &str) -> Option<String> {
    if domain.is_empty() || domain.len() > 253 || domain.eq_ignore_ascii_case("null") {
        return None;
    }
    idna::domain_to_ascii_strict(domain)
        .ok()
        .filter(|d| !d.is_empty())
}

/// A parsed keystore text: its entries and, for signed keystores, the `@version` / `@expires` headers.
#[derive(Debug, Clone, Default)]
pub struct KeystoreText {
    /// Normalised domain → key.
    pub entries: BTreeMap<String, PublicKey>,
    pub version: Option<u64>,
    /// The `@expires` time (RFC 3339), as seconds since the Unix epoch.
    pub expires_unix: Option<i64>,
}

/// Parses keystore text. Blank lines, lines starting with `#` and lines without `=` are ignored (as
/// in the original); `@version N` and `@expires RFC3339` are headers; every other line must be
/// `domain=base64-SPKI` with a host name and an RSA (2048–8192 bit) or Ed25519 key.
pub fn parse_keystore(text: &str) -> Result<KeystoreText, String> {
    let mut out = KeystoreText::default();
    for (index, raw) in text.split('\n').enumerate() {
        let n = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('@') {
            parse_header(header, &mut out).map_err(|e| format!("line {n}: {e}"))?;
            continue;
        }
        let Some((domain, key)) = line.split_once('=') else {
            continue;
        };
        let domain = domain.trim();
        let normalized = normalize_domain(domain)
            .ok_or_else(|| format!("line {n}: {domain:?} is not a valid domain name"))?;
        let key = PublicKey::from_base64(key).map_err(|e| format!("line {n} ({domain}): {e}"))?;
        if out.entries.insert(normalized.clone(), key).is_some() {
            return Err(format!(
                "line {n}: the domain {normalized} is listed twice (one key per domain)"
            ));
        }
    }
    Ok(out)
}

fn parse_header(header: &str, out: &mut KeystoreText) -> Result<(), String> {
    let (name, value) = header
        .split_once(char::is_whitespace)
        .map(|(a, b)| (a, b.trim()))
        .unwrap_or((header, ""));
    match name {
        "version" if out.version.is_none() => {
            let v = value
                .parse::<u64>()
                .map_err(|_| format!("@version {value:?} is not a whole number"))?;
            out.version = Some(v);
        }
        "expires" if out.expires_unix.is_none() => {
            let t =
                time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| format!("@expires {value:?} is not an RFC 3339 time: {e}"))?;
            out.expires_unix = Some(t.unix_timestamp());
        }
        "version" | "expires" => return Err(format!("@{name} is given twice")),
        other => return Err(format!("unknown header @{other}")),
    }
    Ok(())
}

/// Reads a file of at most [`MAX_KEYSTORE_BYTES`] as UTF-8.
pub fn read_bounded(path: &Path) -> Result<String, TrustError> {
    let file = std::fs::File::open(path)
        .map_err(|e| TrustError::io(format!("cannot open {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_KEYSTORE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| TrustError::io(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_KEYSTORE_BYTES {
        return Err(TrustError::usage(format!(
            "{} is larger than {MAX_KEYSTORE_BYTES} bytes",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| TrustError::usage(format!("{} is not UTF-8 text", path.display())))
}

/// Loads a local keystore file (unsigned: the user chose to trust it by adding it).
pub fn load_local_file(path: &Path) -> Result<KeystoreText, TrustError> {
    let text = read_bounded(path)?;
    parse_keystore(&text)
        .map_err(|e| TrustError::usage(format!("keystore {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_KEY: &str = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=";

    #[test]
    fn normalises_case_and_idna_and_refuses_non_domains() {
        assert_eq!(
            normalize_domain("Example.ORG").as_deref(),
            Some("example.org")
        );
        assert_eq!(
            normalize_domain("bücher.de").as_deref(),
            Some("xn--bcher-kva.de")
        );
        assert_eq!(normalize_domain("127.0.0.1").as_deref(), Some("127.0.0.1"));
        for bad in ["", "null", "NULL", "[", "a b.org", "a/b", "x:1"] {
            assert_eq!(normalize_domain(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_lines_headers_comments_and_crlf() {
        let text = format!(
            "# comment\n@version 7\n@expires 2030-01-01T00:00:00Z\nno equals sign\n\nExample.org={ED_KEY}\r\nbücher.de= {ED_KEY} \n"
        );
        let ks = parse_keystore(&text).unwrap();
        assert_eq!(ks.version, Some(7));
        assert_eq!(ks.expires_unix, Some(1_893_456_000));
        assert_eq!(
            ks.entries.keys().collect::<Vec<_>>(),
            ["example.org", "xn--bcher-kva.de"]
        );
    }

    #[test]
    fn refuses_bad_lines_with_their_number() {
        let dup = format!("a.org={ED_KEY}\nA.ORG={ED_KEY}\n");
        assert!(parse_keystore(&dup).unwrap_err().contains("line 2"));
        assert!(parse_keystore("a.org=AAAA\n")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_keystore(&format!("null={ED_KEY}")).is_err());
        assert!(parse_keystore("@version x").is_err());
        assert!(parse_keystore("@expires tomorrow").is_err());
        assert!(parse_keystore("@colour blue").is_err());
        assert!(parse_keystore("@version 1\n@version 2").is_err());
    }
}
