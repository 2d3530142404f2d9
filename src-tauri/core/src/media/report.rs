//! What one real download tells the daemon's event feed: `ImageStarted` once the server answered (with
//! the size when it said it), throttled `ImageProgress` (a few per second), then `ImageDownloaded` or
//! `ImageFailed`. One report per download, however many sessions wait for it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::error::MediaError;
use super::throttle::Throttle;
use super::transfer::TransferStatus;
use crate::events::{EventFeed, EventKind};

/// Progress events go to the feed at most this often.
pub const FEED_PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Reports one download (named by its URL) to the feed.
pub(crate) struct DownloadReport {
    feed: EventFeed,
    image: String,
    started: bool,
    throttle: Throttle,
}

impl DownloadReport {
    pub(crate) fn new(feed: EventFeed, image: &str) -> Self {
        Self {
            feed,
            image: image.to_string(),
            started: false,
            throttle: Throttle::new(FEED_PROGRESS_INTERVAL),
        }
    }

    /// Follows the download's status until its sender goes away (the caller races it with the download).
    pub(crate) async fn follow(&mut self, mut rx: watch::Receiver<TransferStatus>) {
        loop {
            let status = rx.borrow_and_update().clone();
            self.on_status(&status, Instant::now());
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    fn on_status(&mut self, status: &TransferStatus, now: Instant) {
        if !self.started {
            // The transfer publishes once the response headers arrived (total known, or first bytes).
            if status.total.is_none() && status.received == 0 {
                return;
            }
            self.start(status.total);
            return;
        }
        if status.received > 0 && self.throttle.admit(now, false) {
            self.feed.publish(EventKind::ImageProgress {
                image: self.image.clone(),
                bytes: status.received,
                total: status.total,
                bytes_per_second: status.rate.max(0.0) as u64,
            });
        }
    }

    fn start(&mut self, total: Option<u64>) {
        self.started = true;
        // The first progress event waits a full interval after the start.
        self.throttle.admit(Instant::now(), true);
        self.feed.publish(EventKind::ImageStarted {
            image: self.image.clone(),
            total,
        });
    }

    /// Publishes the end of the download (and its start, when it failed before the server answered).
    pub(crate) fn finish(
        &mut self,
        status: &TransferStatus,
        outcome: &Result<PathBuf, MediaError>,
    ) {
        if !self.started {
            self.start(status.total);
        }
        self.feed.publish(match outcome {
            Ok(_) => EventKind::ImageDownloaded {
                image: self.image.clone(),
                bytes: status.received,
            },
            Err(e) => EventKind::ImageFailed {
                image: self.image.clone(),
                message: e.to_string(),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(received: u64, total: Option<u64>) -> TransferStatus {
        TransferStatus {
            received,
            total,
            rate: 1000.0,
            outcome: None,
        }
    }

    type Events = tokio::sync::broadcast::Receiver<crate::events::DaemonEvent>;

    fn kinds(rx: &mut Events) -> Vec<EventKind> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| e.kind)
            .collect()
    }

    #[test]
    fn starts_when_the_server_answers_then_throttles_progress() {
        let feed = EventFeed::new();
        let mut rx = feed.subscribe();
        let mut report = DownloadReport::new(feed.clone(), "http://h/i.iso");
        let t0 = Instant::now();
        report.on_status(&status(0, None), t0);
        assert!(kinds(&mut rx).is_empty(), "no answer from the server yet");
        report.on_status(&status(0, Some(1000)), t0);
        let ms = Duration::from_millis;
        let later = Instant::now();
        for i in 1..=100u64 {
            // 100 updates within one interval after the start: none passes.
            report.on_status(&status(i, Some(1000)), later + ms(i));
        }
        report.on_status(&status(500, Some(1000)), later + ms(300));
        report.on_status(&status(501, Some(1000)), later + ms(301));
        report.finish(&status(1000, Some(1000)), &Ok(PathBuf::from("/x")));
        assert_eq!(
            kinds(&mut rx),
            vec![
                EventKind::ImageStarted {
                    image: "http://h/i.iso".into(),
                    total: Some(1000)
                },
                EventKind::ImageProgress {
                    image: "http://h/i.iso".into(),
                    bytes: 500,
                    total: Some(1000),
                    bytes_per_second: 1000
                },
                EventKind::ImageDownloaded {
                    image: "http://h/i.iso".into(),
                    bytes: 1000
                },
            ]
        );
    }

    #[test]
    fn a_failure_before_any_answer_still_reports_start_then_failure() {
        let feed = EventFeed::new();
        let mut report = DownloadReport::new(feed.clone(), "http://h/i.iso");
        report.finish(&status(0, None), &Err(MediaError::Shutdown));
        let kinds: Vec<_> = feed.recent().into_iter().map(|e| e.kind).collect();
        assert!(
            matches!(
                kinds.as_slice(),
                [
                    EventKind::ImageStarted { total: None, .. },
                    EventKind::ImageFailed { .. }
                ]
            ),
            "{kinds:?}"
        );
    }
}
