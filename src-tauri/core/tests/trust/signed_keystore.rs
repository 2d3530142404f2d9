//! The signed keystore through [`Verifier`]: fetched over https (test CA), verified with an injected
//! root key, cached, refused when tampered, expired or rolled back, also after a restart.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use webapi_core::store::DataDir;
use webapi_core::trust::tools::sign_keystore;
use webapi_core::trust::{Clock, TrustConfig, TrustErrorKind, Verifier};

use crate::server::{serve, test_pki, Reply};
use crate::{site_key, test_policy};

/// Published keystore text and signature, changed by the test.
type Published = Arc<Mutex<(String, String)>>;

struct Setup {
    verifier: Verifier,
    clock: Arc<AtomicI64>,
}

fn clock_at(seconds: Arc<AtomicI64>) -> Clock {
    Arc::new(move || UNIX_EPOCH + Duration::from_secs(seconds.load(Ordering::SeqCst) as u64))
}

fn make_verifier(
    data: &DataDir,
    url: &str,
    root: webapi_core::trust::PublicKey,
    ca: &str,
    start: i64,
) -> Setup {
    let mut fetch = test_policy();
    fetch.extra_ca_pem.push(ca.as_bytes().to_vec());
    let config = TrustConfig {
        keystore_url: Some(url.parse().unwrap()),
        root_keys: vec![root],
        refresh_interval: Duration::ZERO,
        fetch,
        ..TrustConfig::default()
    };
    let clock = Arc::new(AtomicI64::new(start));
    let verifier = Verifier::with_clock(config, data, clock_at(clock.clone())).unwrap();
    Setup { verifier, clock }
}

#[tokio::test]
async fn signed_keystore_is_verified_cached_and_protected_against_rollback_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::open(&dir.path().join("data")).unwrap();
    let root = site_key();
    let site = site_key();
    let entries = format!("Example.org={}\n", site.public_key().unwrap().to_base64());
    let publish =
        |version: u64, expires: &str| sign_keystore(&entries, &root, version, expires).unwrap();

    let published: Published = Arc::new(Mutex::new(publish(2, "2031-01-01T00:00:00Z")));
    let served = published.clone();
    let pki = test_pki();
    let server = serve(Some(pki.acceptor.clone()), move |target| {
        let (text, sig) = served.lock().unwrap().clone();
        match target {
            "/keys/domainkeys.lst" => Reply::Status(200, text.into_bytes()),
            "/keys/domainkeys.lst.sig" => Reply::Status(200, sig.into_bytes()),
            _ => Reply::Status(404, Vec::new()),
        }
    })
    .await;
    let url = server.url("/keys/domainkeys.lst");
    let now = 1_900_000_000; // 2030-03-17
    let s = make_verifier(&data, &url, root.public_key().unwrap(), &pki.ca_pem, now);

    // Before the first download, a configured but unavailable keystore is "not initialised".
    let err = s.verifier.lookup("example.org").unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (TrustErrorKind::KeystoreInvalid, -12)
    );
    s.verifier.refresh_if_due().await;
    let (_, source) = s.verifier.lookup("example.org").unwrap();
    assert_eq!(source, "signed keystore v2");
    assert!(!s.verifier.is_trusted("other.org"));
    assert_eq!(s.verifier.lookup("other.org").unwrap_err().code(), -13);

    // Rollback to an older, validly signed version: refused, v2 stays in use.
    *published.lock().unwrap() = publish(1, "2031-01-01T00:00:00Z");
    s.clock.fetch_add(120, Ordering::SeqCst);
    s.verifier.refresh_if_due().await;
    assert_eq!(
        s.verifier.lookup("example.org").unwrap().1,
        "signed keystore v2"
    );

    // A tampered file: refused.
    let (text, sig) = publish(3, "2031-01-01T00:00:00Z");
    *published.lock().unwrap() = (text.replace("example.org", "evil.org"), sig);
    s.clock.fetch_add(120, Ordering::SeqCst);
    s.verifier.refresh_if_due().await;
    assert!(!s.verifier.is_trusted("evil.org"));
    assert_eq!(
        s.verifier.lookup("example.org").unwrap().1,
        "signed keystore v2"
    );

    // A restart with the server gone uses the cached copy (re-verified), and still refuses v1.
    let offline = make_verifier(
        &data,
        "https://127.0.0.1:9/none.lst",
        root.public_key().unwrap(),
        &pki.ca_pem,
        now,
    );
    assert_eq!(
        offline.verifier.lookup("example.org").unwrap().1,
        "signed keystore v2"
    );
    *published.lock().unwrap() = publish(1, "2031-01-01T00:00:00Z");
    let restarted = make_verifier(
        &data,
        &url,
        root.public_key().unwrap(),
        &pki.ca_pem,
        now + 1000,
    );
    restarted.verifier.refresh_if_due().await;
    assert_eq!(
        restarted.verifier.lookup("example.org").unwrap().1,
        "signed keystore v2"
    );

    // A newer version is taken.
    *published.lock().unwrap() = publish(4, "2031-01-01T00:00:00Z");
    restarted.clock.fetch_add(120, Ordering::SeqCst);
    restarted.verifier.refresh_if_due().await;
    assert_eq!(
        restarted.verifier.lookup("example.org").unwrap().1,
        "signed keystore v4"
    );

    // Expiry: once the clock passes @expires, the keystore (cached or not) is no longer used, and
    // a server that keeps serving the expired file cannot revive it.
    restarted.clock.store(1_924_992_000 + 1, Ordering::SeqCst); // 2031-01-01T00:00:01Z
    restarted.verifier.refresh_if_due().await;
    let err = restarted.verifier.lookup("example.org").unwrap_err();
    assert_eq!(err.code(), -12);
    assert!(err.detail().contains("expired"), "{}", err.detail());
    assert!(!restarted.verifier.is_trusted("example.org"));
}

#[tokio::test]
async fn a_keystore_signed_by_an_unknown_root_is_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::open(&dir.path().join("data")).unwrap();
    let site = site_key();
    let entries = format!("example.org={}\n", site.public_key().unwrap().to_base64());
    let published = sign_keystore(&entries, &site_key(), 1, "2031-01-01T00:00:00Z").unwrap();
    let pki = test_pki();
    let server = serve(Some(pki.acceptor.clone()), move |target| match target {
        "/k.lst" => Reply::Status(200, published.0.clone().into_bytes()),
        "/k.lst.sig" => Reply::Status(200, published.1.clone().into_bytes()),
        _ => Reply::Status(404, Vec::new()),
    })
    .await;
    let s = make_verifier(
        &data,
        &server.url("/k.lst"),
        site_key().public_key().unwrap(),
        &pki.ca_pem,
        1_900_000_000,
    );
    s.verifier.refresh_if_due().await;
    let err = s.verifier.lookup("example.org").unwrap_err();
    assert_eq!(err.code(), -12);
    assert!(err.detail().contains("trust-root"), "{}", err.detail());
    assert!(
        !dir.path().join("data/trust/keystore.lst").exists(),
        "a refused keystore is not cached"
    );
}
