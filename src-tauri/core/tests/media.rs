//! Image downloads against real loopback HTTP servers: verification, resume after drops and stalls,
//! servers without range support, shared downloads, disk full, a killed daemon, the cache rules.

#[path = "media/server.rs"]
mod server;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use server::{Behaviour, TestServer, CHUNK};
use webapi_core::media::{
    Arch, CacheOptions, ImageCache, ImageSource, MediaError, Mirror, Progress, RetryPolicy,
};
use webapi_core::store::DataDir;

/// Allowance for response headers in the server's byte count.
const HEADERS: u64 = 512;

/// Deterministic, incompressible-looking test bytes.
fn image_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

fn options() -> CacheOptions {
    CacheOptions {
        retry: RetryPolicy {
            max_failures: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        read_timeout: Duration::from_secs(5),
        progress_interval: Duration::from_millis(20),
        ..CacheOptions::default()
    }
}

fn disk(url: String, checksum: String) -> ImageSource {
    ImageSource::Disk { url, checksum }
}

/// Collects progress events.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Progress>>>);

impl Events {
    fn sink(&self) -> impl Fn(Progress) + Send + Sync + 'static {
        let events = self.0.clone();
        move |p| events.lock().unwrap().push(p)
    }
    fn all(&self) -> Vec<Progress> {
        self.0.lock().unwrap().clone()
    }
}

/// File names in the images folder other than the index.
fn cache_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "index.json")
        .collect();
    names.sort();
    names
}

fn open(root: &Path, options: CacheOptions) -> ImageCache {
    ImageCache::open(&DataDir::open(root).unwrap(), options).unwrap()
}

#[tokio::test]
async fn correct_image_is_verified_cached_and_reported() {
    let server = TestServer::start().await;
    let data = image_bytes(3 << 20, 1);
    server.put("/disk.img", data.clone());
    let root = tempfile::tempdir().unwrap();
    let cache = open(root.path(), options());
    let events = Events::default();
    // Upper-case checksum: any case is accepted.
    let source = disk(server.url("/disk.img"), sha256(&data).to_uppercase());
    let lease = cache.fetch(source.clone(), events.sink()).await.unwrap();
    assert_eq!(std::fs::read(lease.path()).unwrap(), data);
    assert_eq!(lease.key(), format!("sha256-{}", sha256(&data)));
    let first = server.sent();
    assert!(first >= data.len() as u64 && first <= data.len() as u64 + HEADERS);

    let ev = events.all();
    assert!(matches!(ev.first(), Some(Progress::Started(_))), "{ev:?}");
    assert!(matches!(ev.last(), Some(Progress::Completed(_))), "{ev:?}");
    let fractions: Vec<f64> = ev
        .iter()
        .filter_map(|p| match p {
            Progress::Progress(_, f) => Some(*f),
            _ => None,
        })
        .collect();
    assert_eq!(fractions.last(), Some(&1.0));
    assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "{fractions:?}");
    assert!(
        ev.iter().any(
            |p| matches!(p, Progress::Progress(m, _) if m.contains("MiB") && m.contains("/s"))
        ),
        "progress carries bytes and rate: {ev:?}"
    );

    // The second request is served from the cache: no byte more on the wire.
    let again = cache.fetch(source, |_| {}).await.unwrap();
    assert_eq!(again.path(), lease.path());
    assert_eq!(server.sent(), first);
    let usage = cache.usage();
    assert_eq!(usage.used_bytes, data.len() as u64);
    assert!(usage.images[0].in_use);
    assert_eq!(
        cache_files(cache.dir()),
        vec![format!("{}.img", lease.key())]
    );
}

#[tokio::test]
async fn sha512_checksums_are_accepted() {
    let server = TestServer::start().await;
    let data = image_bytes(200_000, 2);
    server.put("/d.img", data.clone());
    let root = tempfile::tempdir().unwrap();
    let cache = open(root.path(), options());
    let sum = hex::encode(ring::digest::digest(&ring::digest::SHA512, &data));
    let lease = cache
        .fetch(disk(server.url("/d.img"), sum), |_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(lease.path()).unwrap(), data);
    assert!(lease.key().starts_with("sha512-"));
}

#[tokio::test]
async fn wrong_bytes_fail_with_a_clear_error_and_leave_nothing() {
    let server = TestServer::start().await;
    let data = image_bytes(1 << 20, 3);
    server.put("/disk.img", data.clone());
    let root = tempfile::tempdir().unwrap();
    let cache = open(root.path(), options());
    let wrong = sha256(b"some other image");
    let err = cache
        .fetch(disk(server.url("/disk.img"), wrong.clone()), |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), -12, "{err}");
    assert!(
        matches!(&err, MediaError::ChecksumMismatch { expected, actual, .. }
        if *expected == wrong && *actual == sha256(&data))
    );
    assert!(err.detail().contains("deleted"), "{}", err.detail());
    assert!(
        cache_files(cache.dir()).is_empty(),
        "{:?}",
        cache_files(cache.dir())
    );
    assert_eq!(cache.usage().used_bytes, 0);
}

#[tokio::test]
async fn bad_parameters_are_refused_before_any_request() {
    let server = TestServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let cache = open(root.path(), options());
    for (url, sum) in [
        (server.url("/x"), "abc".to_string()),
        ("file:///etc/passwd".to_string(), "a".repeat(64)),
    ] {
        let err = cache.fetch(disk(url, sum), |_| {}).await.unwrap_err();
        assert_eq!(err.code(), -99, "{err}");
    }
    let err = cache
        .fetch(
            ImageSource::CernVm {
                version: "latest".into(),
                flavor: "../x".into(),
                arch: Arch::X86_64,
            },
            |_| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), -99, "{err}");
    assert!(server.log().is_empty());
}

#[tokio::test]
async fn drops_at_10_50_and_99_percent_are_resumed_without_refetching() {
    let server = TestServer::start().await;
    let size = 4 << 20;
    let data = image_bytes(size, 4);
    server.put("/disk.img", data.clone());
    let s = size as u64;
    server.set(Behaviour {
        drop_at: vec![s / 10, s / 2, s * 99 / 100],
        ..Behaviour::default()
    });
    let root = tempfile::tempdir().unwrap();
    let cache = open(root.path(), options());
    let lease = cache
        .fetch(disk(server.url("/disk.img"), sha256(&data)), |_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(lease.path()).unwrap(), data);
    let log = server.requests_for("/disk.img");
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(log[0].range, None);
    for l in &log[1..] {
        assert_eq!(l.status, 206, "{log:?}");
        assert!(
            l.if_range.is_some(),
            "resumes are validated with If-Range: {log:?}"
        );
    }
    assert!(
        server.sent() <= s + 3 * (CHUNK as u64 + HEADERS),
        "sent {} for {s} bytes",
        server.sent()
    );
}

#[tokio::test]
async fn a_server_ignoring_range_restarts_from_zero() {
    let server = TestServer::start().await;
    let size = 2 << 20;
    let data = image_bytes(size, 5);
    server.put("/disk.img", data.clone());
    server.set(Behaviour {
        ranges: false,
        drop_at: vec![size as u64 / 2],
        ..Behaviour::default()
    });
    let root = tempfile::tempdir().unwrap();
    let cache = open(root.path(), options());
    let lease = cache
        .fetch(disk(server.url("/disk.img"), sha256(&data)), |_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(lease.path()).unwrap(), data);
    let log = server.requests_for("/disk.img");
    assert_eq!(log.len(), 2);
    assert!(log[1].range.is_some(), "the client asked to resume");
    assert_eq!(log[1].status, 200, "and got the whole file");
}

#[tokio::test]
async fn a_stalled_transfer_times_out_and_resumes() {
    let server = TestServer::start().await;
    let size = 1 << 20;
    let data = image_bytes(size, 6);
    server.put("/disk.img", data.clone());
    server.set(Behaviour {
        stall_at: vec![size as u64 / 2],
        ..Behaviour::default()
    });
    let root = tempfile::tempdir().unwrap();
    let cache = open(
        root.path(),
        CacheOptions {
            read_timeout: Duration::from_secs(1),
            ..options()
        },
    );
    let lease = cache
        .fetch(disk(server.url("/disk.img"), sha256(&data)), |_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(lease.path()).unwrap(), data);
    let log = server.requests_for("/disk.img");
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].range.as_deref(), Some("bytes=524288-"));
}

#[tokio::test]
async fn a_server_that_never_finishes_fails_after_bounded_retries() {
    let server = TestServer::start().await;
    let data = image_bytes(1 << 20, 7);
    server.put("/disk.img", data.clone());
    server.set(Behaviour {
        always_stall_at: Some(100_000),
        ..Behaviour::default()
    });
    let root = tempfile::tempdir().unwrap();
    let cache = open(
        root.path(),
        CacheOptions {
            read_timeout: Duration::from_millis(500),
            ..options()
        },
    );
    let err = cache
        .fetch(disk(server.url("/disk.img"), sha256(&data)), |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), -6, "{err}");
    assert!(err.detail().contains("stalled"), "{}", err.detail());
    assert_eq!(
        server.requests_for("/disk.img").len(),
        4,
        "max_failures bounds the attempts"
    );
    // The partial bytes stay for a later resume.
    let key = format!("sha256-{}", sha256(&data));
    assert_eq!(
        cache_files(cache.dir()),
        vec![format!("{key}.part"), format!("{key}.part.json")]
    );
}

#[tokio::test]
async fn http_errors_are_reported_with_the_status() {
    let server = TestServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let cache = open(root.path(), options());
    let err = cache
        .fetch(disk(server.url("/missing.img"), "a".repeat(64)), |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), -6);
    assert!(err.detail().contains("404"), "{}", err.detail());
    assert_eq!(server.log().len(), 1, "a 404 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_download() {
    let server = TestServer::start().await;
    let data = image_bytes(1 << 20, 8);
    server.put("/disk.img", data.clone());
    server.set(Behaviour {
        chunk_delay: Some(Duration::from_millis(10)),
        ..Behaviour::default()
    });
    let root = tempfile::tempdir().unwrap();
    let cache = open(root.path(), options());
    let source = disk(server.url("/disk.img"), sha256(&data));
    let (e1, e2) = (Events::default(), Events::default());
    let (a, b) = tokio::join!(
        cache.fetch(source.clone(), e1.sink()),
        cache.fetch(source.clone(), e2.sink())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.path(), b.path());
    assert_eq!(server.requests_for("/disk.img").len(), 1);
    assert!(server.sent() <= data.len() as u64 + HEADERS);
    for e in [e1, e2] {
        assert!(matches!(e.all().last(), Some(Progress::Completed(_))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_real_download_is_reported_to_the_event_feed_once() {
    use webapi_core::events::{EventFeed, EventKind};
    use webapi_core::media::FEED_PROGRESS_INTERVAL;
    let server = TestServer::start().await;
    // 4 MiB in 64 chunks 20 ms apart: over a second, so progress is reported a few times.
    let data = image_bytes(4 << 20, 12);
    server.put("/disk.img", data.clone());
    server.set(Behaviour {
        chunk_delay: Some(Duration::from_millis(20)),
        ..Behaviour::default()
    });
    let root = tempfile::tempdir().unwrap();
    let feed = EventFeed::new();
    let mut live = feed.subscribe();
    let cache = open(root.path(), options()).with_events(feed.clone());
    let url = server.url("/disk.img");
    let source = disk(url.clone(), sha256(&data));
    // Two sessions wait for the same image: one download, one report.
    let (a, b) = tokio::join!(
        cache.fetch(source.clone(), |_| {}),
        cache.fetch(source.clone(), |_| {})
    );
    a.unwrap();
    b.unwrap();
    let len = data.len() as u64;
    let kept: Vec<EventKind> = feed.recent().into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kept,
        vec![
            EventKind::ImageStarted {
                image: url.clone(),
                total: Some(len)
            },
            EventKind::ImageDownloaded {
                image: url.clone(),
                bytes: len
            },
        ]
    );
    // Progress reaches live listeners only, throttled (the cache's own interval here is 20 ms).
    let progress: Vec<_> = std::iter::from_fn(|| live.try_recv().ok())
        .filter(|e| matches!(e.kind, EventKind::ImageProgress { .. }))
        .collect();
    assert!(
        !progress.is_empty(),
        "a download of over a second reports progress"
    );
    let mut last_bytes = 0;
    for e in &progress {
        let EventKind::ImageProgress {
            image,
            bytes,
            total,
            bytes_per_second,
        } = &e.kind
        else {
            unreachable!()
        };
        assert_eq!((image, *total), (&url, Some(len)));
        assert!(*bytes >= last_bytes && *bytes <= len, "{progress:?}");
        assert!(*bytes_per_second > 0, "{progress:?}");
        last_bytes = *bytes;
    }
    let floor = FEED_PROGRESS_INTERVAL.as_millis() as u64 - 10; // wall-clock ms vs monotonic
    assert!(
        progress
            .windows(2)
            .all(|w| w[1].at_ms - w[0].at_ms >= floor),
        "at most one progress event per {FEED_PROGRESS_INTERVAL:?}: {progress:?}"
    );

    // Served from the cache: nothing to report.
    cache.fetch(source, |_| {}).await.unwrap();
    assert_eq!(feed.recent().len(), 2);

    // A download that fails verification: started, then failed with the reason.
    server.set(Behaviour::default());
    server.put("/other.img", image_bytes(100_000, 13));
    let other = server.url("/other.img");
    cache
        .fetch(disk(other.clone(), sha256(b"not it")), |_| {})
        .await
        .unwrap_err();
    let kept: Vec<EventKind> = feed.recent().into_iter().map(|e| e.kind).collect();
    assert!(
        matches!(&kept[2..], [
            EventKind::ImageStarted { image: s, total: Some(100_000) },
            EventKind::ImageFailed { image: f, message },
        ] if *s == other && *f == other && message.contains("checksum")),
        "{kept:#?}"
    );
}

#[tokio::test]
async fn gzip_images_are_verified_then_decompressed() {
    use std::io::Write;
    let server = TestServer::start().await;
    let raw = image_bytes(500_000, 9);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&raw).unwrap();
    let gz = enc.finish().unwrap();
    server.put("/disk.img.gz", gz.clone());
    let root = tempfile::tempdir().unwrap();
    let cache = open(root.path(), options());
    let lease = cache
        .fetch(disk(server.url("/disk.img.gz"), sha256(&gz)), |_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(lease.path()).unwrap(), raw);
    assert_eq!(
        cache_files(cache.dir()),
        vec![format!("{}.gunzipped.img", lease.key())]
    );

    // A verified file that is not gzip: clear error, nothing left.
    server.put("/bad.img.gz", b"not gzip".to_vec());
    let err = cache
        .fetch(disk(server.url("/bad.img.gz"), sha256(b"not gzip")), |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), -6, "{err}");
    assert_eq!(cache_files(cache.dir()).len(), 1);
}

#[tokio::test]
async fn cernvm_latest_is_resolved_through_the_mirror_and_cached() {
    let server = TestServer::start().await;
    let iso = image_bytes(300_000, 10);
    let dir = "/mirror/ucernvm-images.2020.07-1.cernvm.x86_64";
    let iso_path = format!("{dir}/ucernvm-prod.2020.07-1.cernvm.x86_64.iso");
    server.put("/mirror/latest", "2020.07-1\n");
    server.put(&iso_path, iso.clone());
    server.put(
        &format!("{iso_path}.sha256"),
        format!(
            "{}  ucernvm-prod.2020.07-1.cernvm.x86_64.iso\n",
            sha256(&iso)
        ),
    );
    let root = tempfile::tempdir().unwrap();
    let cache = open(
        root.path(),
        CacheOptions {
            mirror: Mirror::parse(&server.url("/mirror/")).unwrap(),
            ..options()
        },
    );
    let source = |version: &str| ImageSource::CernVm {
        version: version.into(),
        flavor: "prod".into(),
        arch: Arch::X86_64,
    };
    let lease = cache.fetch(source("latest"), |_| {}).await.unwrap();
    assert_eq!(lease.resolved_version(), Some("2020.07-1"));
    assert_eq!(std::fs::read(lease.path()).unwrap(), iso);
    let requests = server.log().len();
    assert_eq!(requests, 3, "latest, checksum, ISO");

    // The recorded concrete version is served from the cache without the network.
    let again = cache.fetch(source("2020.07-1"), |_| {}).await.unwrap();
    assert_eq!(again.path(), lease.path());
    assert_eq!(server.log().len(), requests);

    // A malformed `latest` is refused clearly.
    server.put("/mirror/latest", "<html>oops</html>");
    let err = cache.fetch(source("latest"), |_| {}).await.unwrap_err();
    assert_eq!(err.code(), -12, "{err}");
}

#[tokio::test]
async fn least_recently_used_unleased_images_are_evicted_above_the_limit() {
    let server = TestServer::start().await;
    let images: Vec<Vec<u8>> = (0..3).map(|i| image_bytes(100_000, 20 + i)).collect();
    for (i, d) in images.iter().enumerate() {
        server.put(&format!("/{i}.img"), d.clone());
    }
    let root = tempfile::tempdir().unwrap();
    let cache = open(
        root.path(),
        CacheOptions {
            max_bytes: 250_000,
            ..options()
        },
    );
    let src = |i: usize| disk(server.url(&format!("/{i}.img")), sha256(&images[i]));
    let held = cache.fetch(src(0), |_| {}).await.unwrap();
    drop(cache.fetch(src(1), |_| {}).await.unwrap());
    let third = cache.fetch(src(2), |_| {}).await.unwrap();
    // Image 1 is the least recently used image nobody holds; image 0 is leased and stays.
    let keys: Vec<String> = cache.usage().images.into_iter().map(|i| i.key).collect();
    assert!(keys.contains(&held.key().to_string()) && keys.contains(&third.key().to_string()));
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(held.path().exists());

    // Clearing keeps what is in use.
    drop(third);
    let report = cache.clear().unwrap();
    assert_eq!(report.freed_bytes, 100_000);
    assert_eq!(report.kept_in_use, 1);
    assert_eq!(
        cache_files(cache.dir()),
        vec![format!("{}.img", held.key())]
    );
}

/// Runs a privileged command directly (as root) or through `sudo -n` (CI runners).
fn privileged(args: &[&std::ffi::OsStr]) -> bool {
    let direct = std::process::Command::new(args[0])
        .args(&args[1..])
        .status();
    if direct.is_ok_and(|s| s.success()) {
        return true;
    }
    std::process::Command::new("sudo")
        .arg("-n")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Mounts a small tmpfs (as root, or with passwordless sudo); `None` when that is impossible here,
/// which fails the test under CI and skips it elsewhere.
fn small_tmpfs(size: &str) -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let options = format!("size={size},mode=1777");
    let ok = privileged(&[
        "mount".as_ref(),
        "-t".as_ref(),
        "tmpfs".as_ref(),
        "-o".as_ref(),
        options.as_ref(),
        "tmpfs".as_ref(),
        dir.path().as_os_str(),
    ]);
    if ok {
        Some(dir)
    } else if std::env::var_os("CI").is_some() {
        panic!("cannot mount a tmpfs (needs root or passwordless sudo); CI must be able to");
    } else {
        eprintln!("skipping: cannot mount a tmpfs here");
        None
    }
}

fn unmount(dir: &Path) {
    privileged(&["umount".as_ref(), dir.as_os_str()]);
}

#[tokio::test]
async fn a_full_disk_gives_a_clear_error_and_a_clean_cache() {
    let Some(mnt) = small_tmpfs("1m") else { return };
    let server = TestServer::start().await;
    let data = image_bytes(3 << 20, 30);
    server.put("/big.img", data.clone());
    let result = async {
        let cache = open(mnt.path(), options());
        let source = disk(server.url("/big.img"), sha256(&data));
        // Known length: refused before writing.
        let before = cache.fetch(source.clone(), |_| {}).await.unwrap_err();
        let files_after_precheck = cache_files(cache.dir());
        // Unknown length (chunked): the disk fills up while writing.
        server.set(Behaviour {
            no_length: true,
            ..Behaviour::default()
        });
        let during = cache.fetch(source, |_| {}).await.unwrap_err();
        (
            before,
            files_after_precheck,
            during,
            cache_files(cache.dir()),
        )
    }
    .await;
    unmount(mnt.path());
    let (before, files1, during, files2) = result;
    for err in [&before, &during] {
        assert_eq!(err.code(), -6, "{err}");
        assert!(matches!(err, MediaError::NoSpace { .. }), "{err}");
        assert!(err.detail().contains("not enough free disk space"), "{err}");
    }
    assert!(files1.is_empty(), "{files1:?}");
    assert!(files2.is_empty(), "{files2:?}");
}

#[tokio::test]
async fn dropping_the_cache_mid_download_then_reopening_resumes() {
    let server = TestServer::start().await;
    let size = 2 << 20;
    let data = image_bytes(size, 40);
    server.put("/disk.img", data.clone());
    server.set(Behaviour {
        chunk_delay: Some(Duration::from_millis(20)),
        ..Behaviour::default()
    });
    let root = tempfile::tempdir().unwrap();
    let source = disk(server.url("/disk.img"), sha256(&data));
    let cache = open(root.path(), options());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn({
        let (cache, source) = (cache.clone(), source.clone());
        async move {
            let _ = cache
                .fetch(source, move |p| {
                    if let Progress::Progress(_, f) = p {
                        let _ = tx.send(f);
                    }
                })
                .await;
        }
    });
    while let Some(f) = rx.recv().await {
        if f >= 0.4 {
            break;
        }
    }
    task.abort();
    let _ = task.await;
    drop(cache);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let key = format!("sha256-{}", sha256(&data));
    let part = root.path().join("images").join(format!("{key}.part"));
    let part_len = std::fs::metadata(&part).unwrap().len();
    assert!(
        part_len >= size as u64 * 4 / 10 && part_len < size as u64,
        "{part_len}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        std::fs::metadata(&part).unwrap().len(),
        part_len,
        "the download stopped"
    );

    let cache = open(root.path(), options());
    let lease = cache.fetch(source, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(lease.path()).unwrap(), data);
    let log = server.requests_for("/disk.img");
    assert_eq!(
        log.last().unwrap().range,
        Some(format!("bytes={part_len}-"))
    );
    assert!(
        // A kill also loses what was in flight in the socket: allow two chunks.
        server.sent() <= size as u64 + 2 * CHUNK as u64 + 2 * HEADERS,
        "{}",
        server.sent()
    );
}

/// Run only as the child of `a_killed_daemon_resumes`: fetches until killed.
#[tokio::test]
#[ignore = "helper process for a_killed_daemon_resumes"]
async fn child_fetch_until_killed() {
    let (Ok(root), Ok(url), Ok(sum)) = (
        std::env::var("MEDIA_CHILD_ROOT"),
        std::env::var("MEDIA_CHILD_URL"),
        std::env::var("MEDIA_CHILD_SUM"),
    ) else {
        return;
    };
    let cache = open(Path::new(&root), options());
    let _ = cache.fetch(disk(url, sum), |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_resumes() {
    let server = TestServer::start().await;
    let size = 2 << 20;
    let data = image_bytes(size, 50);
    server.put("/disk.img", data.clone());
    server.set(Behaviour {
        chunk_delay: Some(Duration::from_millis(30)),
        ..Behaviour::default()
    });
    let root = tempfile::tempdir().unwrap();
    let key = format!("sha256-{}", sha256(&data));
    let part = root.path().join("images").join(format!("{key}.part"));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_fetch_until_killed",
            "--nocapture",
        ])
        .env("MEDIA_CHILD_ROOT", root.path())
        .env("MEDIA_CHILD_URL", server.url("/disk.img"))
        .env("MEDIA_CHILD_SUM", sha256(&data))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let len = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if len >= size as u64 / 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child never got a third of the image"
        );
        assert!(child.try_wait().unwrap().is_none(), "the child ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no cleanup
    child.wait().unwrap();
    let part_len = std::fs::metadata(&part).unwrap().len();
    assert!(part_len < size as u64);

    let cache = open(root.path(), options());
    let lease = cache
        .fetch(disk(server.url("/disk.img"), sha256(&data)), |_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(lease.path()).unwrap(), data);
    let log = server.requests_for("/disk.img");
    assert_eq!(log.len(), 2, "{log:?}");
    let resumed_from: u64 = log[1].range.as_deref().unwrap()["bytes=".len()..]
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(
        resumed_from >= part_len,
        "resumed from {resumed_from}, part had {part_len}"
    );
    assert!(
        // A kill also loses what was in flight in the socket: allow two chunks.
        server.sent() <= size as u64 + 2 * CHUNK as u64 + 2 * HEADERS,
        "sent {} for {size}",
        server.sent()
    );
}

/// CPU seconds (user + system) of this process and of its waited-for children, from /proc.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // After the command name: field 3 is index 0, so utime (14) is 11, stime 12, cutime 13, cstime 14.
    let tick = |i: usize| fields[i].parse::<f64>().unwrap() / 100.0;
    (tick(11) + tick(12), tick(13) + tick(14))
}

/// Throughput and CPU of a 1 GiB image download against `curl -o /dev/null` from the same loopback
/// server. Not part of the test run: see docs/benchmarks.md "## Image downloads".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release -p webapi-core --test media -- --ignored bench_ --nocapture"]
async fn bench_one_gib_download_against_curl() {
    let size: usize = std::env::var("MEDIA_BENCH_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1 << 30);
    let block = image_bytes(1 << 20, 99);
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        let n = (size - data.len()).min(block.len());
        data.extend_from_slice(&block[..n]);
    }
    let sum = sha256(&data);
    let server = TestServer::start().await;
    server.put("/big.img", data);
    // MEDIA_BENCH_RATE_MIB paces the server (MiB/s), e.g. 119 for a 1 Gbit/s link.
    let chunk = 256 * 1024;
    let chunk_delay = std::env::var("MEDIA_BENCH_RATE_MIB")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(|rate| Duration::from_secs_f64(chunk as f64 / (rate * 1048576.0)));
    server.set(Behaviour {
        chunk,
        chunk_delay,
        ..Behaviour::default()
    });
    if let Some(delay) = chunk_delay {
        println!("server paced: one 256 KiB chunk every {delay:?}");
    }
    let url = server.url("/big.img");
    // MEDIA_BENCH_DIR puts the data dir elsewhere, e.g. on a tmpfs to leave the disk out.
    let parent = std::env::var_os("MEDIA_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let root = tempfile::tempdir_in(&parent).unwrap();
    let cache = open(root.path(), options());
    println!("data dir under {}", parent.display());
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let mut best_receive = f64::MAX;
    let mut receive_cpu = f64::MAX;
    let gib = size as f64 / (1u64 << 30) as f64;
    let mut best_curl = f64::MAX;
    let mut best_ours = f64::MAX;
    let mut best_curl_file = f64::MAX;
    let (mut curl_cpu, mut server_cpu_during_curl, mut ours_cpu) = (f64::MAX, f64::MAX, f64::MAX);
    for round in 0..3 {
        let (self0, child0) = cpu_seconds();
        let t = std::time::Instant::now();
        let curl_url = url.clone();
        let status = tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args(["-sS", "-o", "/dev/null", &curl_url])
                .status()
        })
        .await
        .unwrap()
        .expect("curl must be installed for this benchmark");
        assert!(status.success());
        let curl_secs = t.elapsed().as_secs_f64();
        let (self1, child1) = cpu_seconds();
        best_curl = best_curl.min(curl_secs);
        curl_cpu = curl_cpu.min(child1 - child0);
        server_cpu_during_curl = server_cpu_during_curl.min(self1 - self0);

        // A fair baseline for a downloader that keeps the file: curl into the same folder + fsync.
        let target = cache.dir().join("curl-baseline");
        let t = std::time::Instant::now();
        let (curl_url, file) = (url.clone(), target.clone());
        tokio::task::spawn_blocking(move || {
            let ok = std::process::Command::new("curl")
                .args(["-sS", "-o"])
                .arg(&file)
                .arg(&curl_url)
                .status()
                .unwrap()
                .success();
            assert!(ok);
            std::fs::File::open(&file).unwrap().sync_all().unwrap();
        })
        .await
        .unwrap();
        best_curl_file = best_curl_file.min(t.elapsed().as_secs_f64());
        std::fs::remove_file(&target).unwrap();

        // What reqwest alone costs: receive the body and drop every chunk (no hash, no file).
        let (r0, _) = cpu_seconds();
        let t = std::time::Instant::now();
        let mut response = client.get(&url).send().await.unwrap();
        let (mut received, mut chunks) = (0usize, 0usize);
        while let Some(chunk) = response.chunk().await.unwrap() {
            received += chunk.len();
            chunks += 1;
        }
        assert_eq!(received, size);
        eprintln!(
            "reqwest chunks: {chunks}, {} KiB on average",
            size / chunks.max(1) / 1024
        );
        best_receive = best_receive.min(t.elapsed().as_secs_f64());
        let (r1, _) = cpu_seconds();
        receive_cpu = receive_cpu.min(r1 - r0);
        let (self1, child_before_ours) = cpu_seconds();

        let t = std::time::Instant::now();
        let lease = cache
            .fetch(disk(url.clone(), sum.clone()), |_| {})
            .await
            .unwrap();
        let ours_secs = t.elapsed().as_secs_f64();
        let (self2, child_after_ours) = cpu_seconds();
        assert_eq!(child_before_ours, child_after_ours);
        best_ours = best_ours.min(ours_secs);
        ours_cpu = ours_cpu.min(self2 - self1);
        drop(lease);
        cache.clear().unwrap();
        eprintln!(
            "round {round}: curl {:.0} MiB/s, ours {:.0} MiB/s, load {}",
            size as f64 / curl_secs / 1048576.0,
            size as f64 / ours_secs / 1048576.0,
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
    }
    let mib = |secs: f64| size as f64 / secs / 1048576.0;
    // Where the time goes: hashing alone, and writing + fsync of the same bytes in the cache folder.
    let data = image_bytes(1 << 20, 99).repeat(size >> 20);
    let t = std::time::Instant::now();
    let _ = sha256(&data);
    let hash_secs = t.elapsed().as_secs_f64();
    let probe = cache.dir().join("write-probe");
    let t = std::time::Instant::now();
    std::fs::write(&probe, &data).unwrap();
    let write_secs = t.elapsed().as_secs_f64();
    std::fs::File::open(&probe).unwrap().sync_all().unwrap();
    let fsync_secs = t.elapsed().as_secs_f64() - write_secs;
    std::fs::remove_file(&probe).unwrap();
    println!(
        "components: sha256 {:.0} MiB/s, write {:.0} MiB/s, fsync {:.2} s",
        mib(hash_secs),
        mib(write_secs),
        fsync_secs
    );
    // No download that verifies SHA-256 as the bytes arrive can be faster than SHA-256 alone on one core.
    println!("| size | curl -o /dev/null | curl -o file + fsync | reqwest receive only | media fetch (verified, fsynced) | ratio vs /dev/null | ratio vs file + fsync | reqwest only vs /dev/null | SHA-256 alone in memory | bound: SHA-256 alone vs /dev/null |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {gib:.2} GiB | {:.0} MiB/s | {:.0} MiB/s | {:.0} MiB/s | {:.0} MiB/s | {:.2} | {:.2} | {:.2} | {:.0} MiB/s | {:.2} |",
        mib(best_curl),
        mib(best_curl_file),
        mib(best_receive),
        mib(best_ours),
        best_curl / best_ours,
        best_curl_file / best_ours,
        best_curl / best_receive,
        mib(hash_secs),
        best_curl / hash_secs
    );
    println!();
    println!("| CPU per GiB | seconds |");
    println!("|---|---|");
    println!("| curl client | {:.2} |", curl_cpu / gib);
    println!(
        "| loopback server while serving curl | {:.2} |",
        server_cpu_during_curl / gib
    );
    println!(
        "| reqwest receive only + server (same process) | {:.2} |",
        receive_cpu / gib
    );
    println!(
        "| media fetch + server (same process) | {:.2} |",
        ours_cpu / gib
    );
    println!(
        "| media fetch alone (difference) | {:.2} |",
        (ours_cpu - server_cpu_during_curl).max(0.0) / gib
    );
}
