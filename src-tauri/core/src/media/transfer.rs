//! One verified, resumable HTTP transfer into a `.part` file: hashes while bytes arrive, resumes with
//! `Range` + `If-Range`, restarts from zero when the server ignores ranges, retries with back-off and
//! detects stalls with a read timeout. On success the `.part` holds exactly the expected bytes, fsynced.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, IF_RANGE, RANGE};
use reqwest::StatusCode;
use tokio::sync::{mpsc, watch};

use super::backoff::RetryPolicy;
use super::checksum::{Checksum, StreamHasher};
use super::error::{is_no_space, MediaError};
use super::progress::rate;
use super::validators::{parse_content_range, PartMeta};

/// Timeouts and retry budget of a transfer.
#[derive(Debug, Clone, Copy)]
pub struct TransferLimits {
    pub retry: RetryPolicy,
    /// No byte for this long (or no response headers) counts as a stalled transfer.
    pub read_timeout: Duration,
}

/// Where the transfer writes and what it must verify.
pub(crate) struct TransferJob<'a> {
    pub url: &'a str,
    pub checksum: &'a Checksum,
    pub part: PathBuf,
    pub meta: PathBuf,
}

/// Live state published to everyone waiting on the download.
#[derive(Debug, Clone, Default)]
pub struct TransferStatus {
    /// Bytes of the image on disk so far (including resumed bytes).
    pub received: u64,
    pub total: Option<u64>,
    /// Bytes per second over the current connection.
    pub rate: f64,
    /// Set once, when the job ends: the image's path or why it failed.
    pub outcome: Option<Result<PathBuf, MediaError>>,
}

/// What one attempt ended with.
enum AttemptEnd {
    Complete,
    Retry(String),
}

const CHANNEL_CHUNKS: usize = 64;
/// Read buffer when re-hashing a partial file.
const READ_BUFFER: usize = 1 << 20;
/// Progress is published to waiters every this many bytes.
const PUBLISH_STEP: u64 = 256 * 1024;

/// Runs the transfer to completion or a final error. `ensure_space(needed)` is asked before bytes are
/// written; it may free space and fails with [`MediaError::NoSpace`].
pub(crate) async fn run(
    client: &reqwest::Client,
    job: &TransferJob<'_>,
    limits: TransferLimits,
    status: &watch::Sender<TransferStatus>,
    ensure_space: &(dyn Fn(u64) -> Result<(), MediaError> + Send + Sync),
) -> Result<(), MediaError> {
    let (mut meta, mut hasher) = resume_state(job).await?;
    let mut failures = 0u32;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let before = hasher.len();
        let end = attempt(
            client,
            job,
            limits,
            status,
            ensure_space,
            &mut meta,
            &mut hasher,
        )
        .await?;
        match end {
            AttemptEnd::Complete => break,
            AttemptEnd::Retry(why) => {
                failures = if hasher.len() > before {
                    1
                } else {
                    failures + 1
                };
                tracing::warn!(
                    url = job.url,
                    attempt = attempts,
                    "download interrupted: {why}"
                );
                match limits.retry.delay_after(failures) {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => {
                        return Err(MediaError::Download {
                            url: job.url.into(),
                            attempts,
                            detail: why,
                        })
                    }
                }
            }
        }
    }
    let actual = hasher.finish_hex();
    if actual != job.checksum.hex() {
        return Err(MediaError::ChecksumMismatch {
            url: job.url.into(),
            expected: job.checksum.hex().into(),
            actual,
        });
    }
    let part = job.part.clone();
    tokio::task::spawn_blocking(move || File::open(&part).and_then(|f| f.sync_all()))
        .await
        .map_err(|e| MediaError::io(&job.part, e))?
        .map_err(|e| MediaError::io(&job.part, e))
}

/// Picks up a `.part` left by an earlier run (same URL, validators known) by hashing its bytes once;
/// otherwise starts empty.
async fn resume_state(
    job: &TransferJob<'_>,
) -> Result<(Option<PartMeta>, StreamHasher), MediaError> {
    let algorithm = job.checksum.algorithm();
    let meta = PartMeta::load(&job.meta).filter(|m| m.url == job.url && m.if_range().is_some());
    let len = fs::metadata(&job.part).map(|m| m.len()).unwrap_or(0);
    let usable = meta
        .as_ref()
        .is_some_and(|m| len > 0 && m.total.is_none_or(|t| len <= t));
    if !usable {
        remove_if_exists(&job.part)?;
        return Ok((None, StreamHasher::new(algorithm)));
    }
    let part = job.part.clone();
    let hasher = tokio::task::spawn_blocking(move || -> std::io::Result<StreamHasher> {
        let mut h = StreamHasher::new(algorithm);
        let mut f = File::open(&part)?;
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(h);
            }
            h.update(&buf[..n]);
        }
    })
    .await
    .map_err(|e| MediaError::io(&job.part, e))?
    .map_err(|e| MediaError::io(&job.part, e))?;
    tracing::info!(
        url = job.url,
        bytes = hasher.len(),
        "resuming partial download"
    );
    Ok((meta, hasher))
}

#[allow(clippy::too_many_arguments)]
async fn attempt(
    client: &reqwest::Client,
    job: &TransferJob<'_>,
    limits: TransferLimits,
    status: &watch::Sender<TransferStatus>,
    ensure_space: &(dyn Fn(u64) -> Result<(), MediaError> + Send + Sync),
    meta: &mut Option<PartMeta>,
    hasher: &mut StreamHasher,
) -> Result<AttemptEnd, MediaError> {
    let algorithm = job.checksum.algorithm();
    let offset = hasher.len();
    let mut request = client.get(job.url);
    let if_range = meta.as_ref().and_then(|m| m.if_range().map(str::to_string));
    if offset > 0 {
        match if_range {
            Some(v) => {
                request = request
                    .header(RANGE, format!("bytes={offset}-"))
                    .header(IF_RANGE, v)
            }
            None => {
                restart(job, hasher, algorithm)?;
                return Ok(AttemptEnd::Retry("no validator to resume with".into()));
            }
        }
    }
    let mut response = match tokio::time::timeout(limits.read_timeout, request.send()).await {
        Err(_) => return Ok(AttemptEnd::Retry("no response (timeout)".into())),
        Ok(Err(e)) => return Ok(AttemptEnd::Retry(error_chain(&e))),
        Ok(Ok(r)) => r,
    };
    let append = match response.status() {
        StatusCode::PARTIAL_CONTENT if offset > 0 => {
            let range = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_content_range);
            let known_total = meta.as_ref().and_then(|m| m.total);
            match range {
                Some(r)
                    if r.start == offset && (known_total.is_none() || r.total == known_total) =>
                {
                    true
                }
                _ => {
                    restart(job, hasher, algorithm)?;
                    return Ok(AttemptEnd::Retry("server sent an unexpected range".into()));
                }
            }
        }
        StatusCode::OK => false,
        StatusCode::RANGE_NOT_SATISFIABLE
            if offset > 0 && meta.as_ref().and_then(|m| m.total) == Some(offset) =>
        {
            return Ok(AttemptEnd::Complete);
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            restart(job, hasher, algorithm)?;
            return Ok(AttemptEnd::Retry("server refused the range".into()));
        }
        s if s.is_server_error()
            || s == StatusCode::REQUEST_TIMEOUT
            || s == StatusCode::TOO_MANY_REQUESTS =>
        {
            return Ok(AttemptEnd::Retry(format!("HTTP {}", s.as_u16())));
        }
        s => {
            return Err(MediaError::HttpStatus {
                url: job.url.into(),
                status: s.as_u16(),
            })
        }
    };
    if !append {
        // A full body: the server ignored the range or the file changed. Start over from byte 0.
        if offset > 0 {
            tracing::info!(
                url = job.url,
                "server sent the whole file; restarting from zero"
            );
        }
        *hasher = StreamHasher::new(algorithm);
        let fresh = PartMeta::from_response(job.url, response.headers());
        fresh.save(&job.meta)?;
        *meta = Some(fresh);
    }
    let body_len = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    let total = meta.as_ref().and_then(|m| m.total);
    if let Some(needed) = body_len {
        ensure_space(needed)?;
    }
    status.send_modify(|s| {
        s.received = hasher.len();
        s.total = total;
    });

    let file = open_part(&job.part, append)?;
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let writer_hasher = hasher.clone();
    let writer = tokio::task::spawn_blocking(move || write_chunks(file, writer_hasher, rx));
    let started = Instant::now();
    let mut this_run = 0u64;
    let mut base = hasher.len();
    let mut published = base;
    let end = loop {
        match tokio::time::timeout(limits.read_timeout, response.chunk()).await {
            Err(_) => break AttemptEnd::Retry("transfer stalled (read timeout)".into()),
            Ok(Err(e)) => break AttemptEnd::Retry(error_chain(&e)),
            Ok(Ok(None)) => break AttemptEnd::Complete,
            Ok(Ok(Some(chunk))) => {
                this_run += chunk.len() as u64;
                base += chunk.len() as u64;
                if tx.send(chunk).await.is_err() {
                    break AttemptEnd::Retry("writer stopped".into());
                }
                // Waking every waiter per chunk would cost more than the chunk; publish per step.
                if base - published >= PUBLISH_STEP {
                    published = base;
                    let r = rate(this_run, started.elapsed());
                    status.send_modify(|s| {
                        s.received = base;
                        s.rate = r;
                    });
                }
            }
        }
    };
    drop(tx);
    let (written, write_error) = writer.await.map_err(|e| MediaError::io(&job.part, e))?;
    *hasher = written;
    if let Some(e) = write_error {
        if is_no_space(&e) {
            let available =
                super::space::available_bytes(job.part.parent().unwrap_or_else(|| Path::new(".")))
                    .unwrap_or(0);
            return Err(MediaError::NoSpace {
                dir: job.part.parent().map(Path::to_path_buf).unwrap_or_default(),
                needed: total.unwrap_or(hasher.len()),
                available,
            });
        }
        return Err(MediaError::io(&job.part, e));
    }
    status.send_modify(|s| s.received = hasher.len());
    match end {
        AttemptEnd::Complete => match total {
            Some(t) if hasher.len() != t => Ok(AttemptEnd::Retry(format!(
                "connection closed after {} of {t} bytes",
                hasher.len()
            ))),
            _ => Ok(AttemptEnd::Complete),
        },
        retry => Ok(retry),
    }
}

/// Forgets the partial bytes: the next attempt starts from zero.
fn restart(
    job: &TransferJob<'_>,
    hasher: &mut StreamHasher,
    algorithm: super::checksum::Algorithm,
) -> Result<(), MediaError> {
    *hasher = StreamHasher::new(algorithm);
    remove_if_exists(&job.part)
}

fn open_part(path: &Path, append: bool) -> Result<File, MediaError> {
    let mut options = OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    options.open(path).map_err(|e| MediaError::io(path, e))
}

/// The writer thread: writes every chunk in arrival order, unbuffered (so a killed process loses at
/// most what was still in the channel), then hands it to a hasher thread, so writing one chunk and
/// hashing the one before run in parallel. The chunks are shared (`Bytes`), never copied. Returns the
/// hasher covering exactly the bytes in the file, and the first write error (after which the file is
/// cut back to those bytes).
fn write_chunks(
    mut file: File,
    hasher: StreamHasher,
    mut rx: mpsc::Receiver<Bytes>,
) -> (StreamHasher, Option<std::io::Error>) {
    let (to_hasher, written) = std::sync::mpsc::sync_channel::<Bytes>(CHANNEL_CHUNKS);
    std::thread::scope(|scope| {
        let hashing = scope.spawn(move || {
            let mut hasher = hasher;
            for chunk in written {
                hasher.update(&chunk);
            }
            hasher
        });
        let mut error = None;
        while let Some(chunk) = rx.blocking_recv() {
            if let Err(e) = file.write_all(&chunk) {
                error = Some(e);
                break;
            }
            if to_hasher.send(chunk).is_err() {
                break;
            }
        }
        drop(to_hasher);
        let hasher = match hashing.join() {
            Ok(h) => h,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        if error.is_some() {
            let _ = file.set_len(hasher.len());
        }
        (hasher, error)
    })
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<(), MediaError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(MediaError::io(path, e)),
    }
}

/// The error and its causes on one line (reqwest hides the useful part in the source chain).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
