//! Small bounded text downloads (the `latest` file, `.sha256` files) with the same retry policy.

use reqwest::StatusCode;

use super::backoff::RetryPolicy;
use super::error::MediaError;
use super::transfer::error_chain;

/// Largest text file accepted.
pub const MAX_TEXT: usize = 4096;

/// Fetches `url` as UTF-8 text of at most [`MAX_TEXT`] bytes, retrying transient failures.
pub async fn fetch_text(
    client: &reqwest::Client,
    url: &str,
    retry: RetryPolicy,
    timeout: std::time::Duration,
) -> Result<String, MediaError> {
    let mut failures = 0u32;
    loop {
        let detail = match tokio::time::timeout(timeout, fetch_once(client, url)).await {
            Ok(Ok(text)) => return Ok(text),
            Ok(Err(Failure::Final(e))) => return Err(e),
            Ok(Err(Failure::Transient(why))) => why,
            Err(_) => "timeout".to_string(),
        };
        failures += 1;
        match retry.delay_after(failures) {
            Some(delay) => tokio::time::sleep(delay).await,
            None => {
                return Err(MediaError::Download {
                    url: url.into(),
                    attempts: failures,
                    detail,
                })
            }
        }
    }
}

enum Failure {
    Final(MediaError),
    Transient(String),
}

async fn fetch_once(client: &reqwest::Client, url: &str) -> Result<String, Failure> {
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| Failure::Transient(error_chain(&e)))?;
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(Failure::Transient(format!("HTTP {}", status.as_u16())));
    }
    if !status.is_success() {
        return Err(Failure::Final(MediaError::HttpStatus {
            url: url.into(),
            status: status.as_u16(),
        }));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::Transient(error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_TEXT {
            return Err(Failure::Final(MediaError::BadRemoteText {
                url: url.into(),
                detail: format!("longer than {MAX_TEXT} bytes"),
            }));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| {
        Failure::Final(MediaError::BadRemoteText {
            url: url.into(),
            detail: "not UTF-8 text".into(),
        })
    })
}
