//! What image a session asks for: a disk image by URL and checksum, or a µCernVM ISO by version and
//! flavour, located through a URL template under a configurable mirror (shared/spec/vm-lifecycle.md §4.1).

use url::Url;

use super::checksum::Checksum;
use super::error::MediaError;

/// The official µCernVM release area. `--image-mirror` replaces it.
pub const DEFAULT_MIRROR: &str = "https://cernvm.cern.ch/releases";

/// Where a µCernVM ISO lies below the mirror. `{version}`, `{flavor}` and `{arch}` are replaced;
/// the checksum lies at the same URL plus `.sha256`.
pub const CERNVM_TEMPLATE: &str =
    "ucernvm-images.{version}.cernvm.{arch}/ucernvm-{flavor}.{version}.cernvm.{arch}.iso";

/// The file below the mirror whose content names the latest µCernVM version.
pub const LATEST_FILE: &str = "latest";

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// The CPU architecture of a µCernVM ISO (the session's 64-bit flag chooses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    I386,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
        }
    }
}

/// The image a session needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A disk image (`diskURL` + `diskChecksum`); gunzipped after verification when the URL's file
    /// name ends in `.gz` (the checksum is of the compressed file, as in the original).
    Disk { url: String, checksum: String },
    /// A µCernVM ISO (`cernvmVersion`, `cernvmFlavor`); `latest` is resolved through the mirror.
    CernVm {
        version: String,
        flavor: String,
        arch: Arch,
    },
}

/// A validated `http`/`https` URL of bounded length.
pub fn parse_http_url(text: &str) -> Result<Url, MediaError> {
    if text.len() > MAX_URL_LEN {
        return Err(MediaError::InvalidInput(format!(
            "URL longer than {MAX_URL_LEN} characters"
        )));
    }
    let url = Url::parse(text)
        .map_err(|e| MediaError::InvalidInput(format!("URL {text:?} is not valid: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(MediaError::InvalidInput(format!(
            "URL {text:?} must be http:// or https:// with a host"
        )));
    }
    Ok(url)
}

/// True when the URL's file name (path only, no query) ends in `.gz`.
pub fn is_gzip_url(url: &Url) -> bool {
    url.path_segments()
        .and_then(|mut s| s.next_back())
        .is_some_and(|name| name.to_ascii_lowercase().ends_with(".gz"))
}

/// A µCernVM version: `latest`, or 1–32 characters of `0-9 . - a b` (the original's rule).
pub fn validate_version(version: &str) -> Result<(), MediaError> {
    if version == "latest" || is_version_text(version) {
        Ok(())
    } else {
        Err(MediaError::InvalidInput(format!(
            "cernvmVersion {version:?} must be \"latest\" or consist of 0-9 . - a b"
        )))
    }
}

/// True when `text` is a concrete version string (what `latest` must resolve to).
pub fn is_version_text(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'a' | b'b'))
}

/// A µCernVM flavour: 1–32 characters of `a-z 0-9 _ -` (it goes into a URL).
pub fn validate_flavor(flavor: &str) -> Result<(), MediaError> {
    let ok = !flavor.is_empty()
        && flavor.len() <= 32
        && flavor
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(MediaError::InvalidInput(format!(
            "cernvmFlavor {flavor:?} must consist of a-z 0-9 _ -"
        )))
    }
}

/// A validated mirror base URL (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror(String);

impl Mirror {
    pub fn parse(text: &str) -> Result<Self, MediaError> {
        let url = parse_http_url(text)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(MediaError::InvalidInput(
                "the image mirror URL may not have a query or fragment".into(),
            ));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL of the file naming the latest version.
    pub fn latest_url(&self) -> String {
        format!("{}/{LATEST_FILE}", self.0)
    }

    /// The ISO URL of a concrete version (already validated).
    pub fn iso_url(&self, version: &str, flavor: &str, arch: Arch) -> String {
        let path = CERNVM_TEMPLATE
            .replace("{version}", version)
            .replace("{flavor}", flavor)
            .replace("{arch}", arch.as_str());
        format!("{}/{path}", self.0)
    }
}

impl Default for Mirror {
    fn default() -> Self {
        Self(DEFAULT_MIRROR.to_string())
    }
}

/// Parses the body of the `latest` file: whitespace removed, then a concrete version
/// (shared/spec/vm-lifecycle.md §4.1 step 1).
pub fn parse_latest(url: &str, body: &str) -> Result<String, MediaError> {
    let version: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if is_version_text(&version) {
        Ok(version)
    } else {
        Err(MediaError::BadRemoteText {
            url: url.into(),
            detail: format!("{version:?} is not a version"),
        })
    }
}

/// Parses a `.sha256` file: its first word must be 64 hex digits (a bare hash or a `sha256sum` line).
pub fn parse_checksum_file(url: &str, body: &str) -> Result<Checksum, MediaError> {
    let first = body.split_whitespace().next().unwrap_or("");
    if first.len() != 64 {
        return Err(MediaError::BadRemoteText {
            url: url.into(),
            detail: "no 64-digit SHA-256 at the start".into(),
        });
    }
    Checksum::parse(first).map_err(|e| MediaError::BadRemoteText {
        url: url.into(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_iso_urls_under_a_mirror() {
        let m = Mirror::parse("http://127.0.0.1:8080/mirror/").unwrap();
        assert_eq!(m.latest_url(), "http://127.0.0.1:8080/mirror/latest");
        assert_eq!(
            m.iso_url("2020.07-1", "prod", Arch::X86_64),
            "http://127.0.0.1:8080/mirror/ucernvm-images.2020.07-1.cernvm.x86_64/ucernvm-prod.2020.07-1.cernvm.x86_64.iso"
        );
        assert_eq!(Mirror::default().as_str(), DEFAULT_MIRROR);
        assert!(Mirror::parse("ftp://x/").is_err());
        assert!(Mirror::parse("http://x/?a=1").is_err());
    }

    #[test]
    fn validates_versions_and_flavors() {
        assert!(validate_version("latest").is_ok());
        assert!(validate_version("2.7-1b").is_ok());
        assert!(validate_version("2.7/../x").is_err());
        assert!(validate_version("").is_err());
        assert!(validate_flavor("prod").is_ok());
        assert!(validate_flavor("devel_1").is_ok());
        assert!(validate_flavor("Prod").is_err());
        assert!(validate_flavor("a/b").is_err());
        assert!(validate_flavor(&"a".repeat(33)).is_err());
    }

    #[test]
    fn parses_latest_and_checksum_files() {
        assert_eq!(parse_latest("u", " 2020.07-1\n").unwrap(), "2020.07-1");
        assert!(parse_latest("u", "<html>").is_err());
        assert!(parse_latest("u", "").is_err());
        let h = "AB".repeat(32);
        let c = parse_checksum_file("u", &format!("{h}  ucernvm.iso\n")).unwrap();
        assert_eq!(c.hex(), h.to_lowercase());
        assert!(parse_checksum_file("u", "abc").is_err());
        assert!(parse_checksum_file("u", &"a".repeat(65)).is_err());
    }

    #[test]
    fn recognises_gzip_urls() {
        assert!(is_gzip_url(
            &parse_http_url("http://h/a/disk.img.gz?x=1").unwrap()
        ));
        assert!(!is_gzip_url(
            &parse_http_url("http://h/a/disk.gz/img").unwrap()
        ));
        assert!(parse_http_url("file:///etc/passwd").is_err());
        assert!(parse_http_url(&format!("http://h/{}", "a".repeat(3000))).is_err());
    }
}
