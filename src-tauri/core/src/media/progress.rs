//! Progress events of a download (`started` / `progress [msg, fraction]` / `completed`, as in
//! shared/spec/protocol.md §2.7) and the human-readable messages with bytes and rate.

use std::time::Duration;

/// One progress event, ready to forward to the page, the tray and the control panel.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The fetch began (message).
    Started(String),
    /// An update (message, fraction 0.0–1.0).
    Progress(String, f64),
    /// The image is ready (message). A `Progress(msg, 1.0)` comes first.
    Completed(String),
}

/// Bytes in a short human form: `512 B`, `1.5 KiB`, `20.0 MiB`, `1.00 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.2} GiB", b / (KIB * KIB * KIB))
    }
}

/// Transfer rate in bytes per second; 0 when no time has passed.
pub fn rate(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0.0
    } else {
        bytes as f64 / secs
    }
}

/// The message and fraction of a download update. Without a known total the fraction stays 0
/// (never NaN, unlike the original, shared/spec/vm-lifecycle.md §10.1 item 32).
pub fn download_update(label: &str, received: u64, total: Option<u64>, rate: f64) -> (String, f64) {
    let speed = human_bytes(rate.max(0.0) as u64);
    match total {
        Some(total) if total > 0 => {
            let fraction = (received as f64 / total as f64).clamp(0.0, 1.0);
            (
                format!(
                    "{label}: {} of {} ({speed}/s)",
                    human_bytes(received),
                    human_bytes(total)
                ),
                fraction,
            )
        }
        _ => (
            format!("{label}: {} ({speed}/s)", human_bytes(received)),
            0.0,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes_rate_and_fraction() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(20 * 1024 * 1024), "20.0 MiB");
        assert_eq!(human_bytes(1 << 30), "1.00 GiB");
        let (msg, f) = download_update("Downloading", 5 << 20, Some(20 << 20), 2.0 * 1048576.0);
        assert_eq!(msg, "Downloading: 5.0 MiB of 20.0 MiB (2.0 MiB/s)");
        assert_eq!(f, 0.25);
        let (msg, f) = download_update("Downloading", 10, None, 0.0);
        assert_eq!((msg.as_str(), f), ("Downloading: 10 B (0 B/s)", 0.0));
        assert_eq!(download_update("x", 0, Some(0), 0.0).1, 0.0);
        assert_eq!(rate(100, Duration::ZERO), 0.0);
        assert_eq!(rate(100, Duration::from_secs(2)), 50.0);
    }
}
