//! VMCP fetch through [`Verifier::fetch_verified`]: query parameters, TLS, limits, bad servers.

use std::sync::{Arc, Mutex};

use webapi_core::store::DataDir;
use webapi_core::trust::salt::host_id;
use webapi_core::trust::{TrustConfig, TrustErrorKind, TrustSettings, Verifier};

use crate::server::{query_param, serve, test_pki, Reply};
use crate::{signing_handler, site_key, test_policy, verifier_trusting};

#[tokio::test]
async fn verifies_a_vmcp_and_sends_salt_and_host_id() {
    let dir = tempfile::tempdir().unwrap();
    let key = site_key();
    let server = serve(None, signing_handler(key.clone())).await;
    let verifier = verifier_trusting(
        dir.path(),
        "example.org",
        &key.public_key().unwrap(),
        test_policy(),
    );

    let map = verifier
        .fetch_verified(&server.url("/vmcp?site=1#top"), "Example.ORG")
        .await
        .unwrap();
    assert_eq!(map["name"], "testvm");
    assert_eq!(map["memory"], 256);
    assert!(map.contains_key("signature"));
    verifier
        .fetch_verified(&server.url("/vmcp"), "example.org")
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests[0].starts_with("/vmcp?site=1&cvm_salt="),
        "{}",
        requests[0]
    );
    assert!(
        requests[1].starts_with("/vmcp?cvm_salt="),
        "{}",
        requests[1]
    );
    let salt0 = query_param(&requests[0], "cvm_salt").unwrap();
    let salt1 = query_param(&requests[1], "cvm_salt").unwrap();
    assert_eq!(salt0.len(), 64);
    assert_ne!(salt0, salt1, "every request gets a fresh salt");
    let local: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("data/trust/local-id.json")).unwrap(),
    )
    .unwrap();
    let local_id = local["local_id"].as_str().unwrap();
    assert_eq!(
        query_param(&requests[0], "cvm_hostid").unwrap(),
        host_id(local_id, "Example.ORG")
    );
    assert_eq!(
        query_param(&requests[1], "cvm_hostid").unwrap(),
        host_id(local_id, "example.org")
    );
}

#[tokio::test]
async fn untrusted_domains_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let key = site_key();
    let server = serve(None, signing_handler(key.clone())).await;
    let verifier = verifier_trusting(
        dir.path(),
        "example.org",
        &key.public_key().unwrap(),
        test_policy(),
    );
    for domain in ["other.org", "www.example.org", "", "null", "["] {
        let err = verifier
            .fetch_verified(&server.url("/vmcp"), domain)
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind(), err.code()),
            (TrustErrorKind::NotTrusted, -13),
            "{domain:?}"
        );
        assert!(!verifier.is_trusted(domain));
    }
    assert!(verifier.is_trusted("EXAMPLE.org"));
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_vmcp_signed_by_another_key_or_replayed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = site_key();
    let verifier = verifier_trusting(
        dir.path(),
        "example.org",
        &key.public_key().unwrap(),
        test_policy(),
    );

    let impostor = serve(None, signing_handler(site_key())).await;
    let err = verifier
        .fetch_verified(&impostor.url("/vmcp"), "example.org")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (TrustErrorKind::BadSignature, -12)
    );

    // A server (or a man in the middle) that replays the first signed answer to later requests.
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    let sign = signing_handler(key.clone());
    let replayer = serve(None, move |target| {
        let mut first = first.lock().unwrap();
        match first.as_ref() {
            Some(body) => Reply::json(body.clone()),
            None => {
                let Reply::Status(_, body) = sign(target) else {
                    unreachable!()
                };
                *first = Some(String::from_utf8(body.clone()).unwrap());
                Reply::Status(200, body)
            }
        }
    })
    .await;
    verifier
        .fetch_verified(&replayer.url("/vmcp"), "example.org")
        .await
        .unwrap();
    let err = verifier
        .fetch_verified(&replayer.url("/vmcp"), "example.org")
        .await
        .unwrap_err();
    assert_eq!(err.code(), -12, "a stale-salt replay must fail: {err}");
}

#[tokio::test]
async fn https_with_an_unknown_ca_is_refused_unless_the_ca_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let key = site_key();
    let pki = test_pki();
    let server = serve(Some(pki.acceptor.clone()), signing_handler(key.clone())).await;
    let public = key.public_key().unwrap();

    let strict = verifier_trusting(&dir.path().join("a"), "example.org", &public, test_policy());
    let err = strict
        .fetch_verified(&server.url("/vmcp"), "example.org")
        .await
        .unwrap_err();
    assert_eq!((err.kind(), err.code()), (TrustErrorKind::Fetch, -6));
    assert!(
        err.detail().to_lowercase().contains("certificate"),
        "{}",
        err.detail()
    );

    let mut policy = test_policy();
    policy.extra_ca_pem.push(pki.ca_pem.into_bytes());
    let with_ca = verifier_trusting(&dir.path().join("b"), "example.org", &public, policy);
    let map = with_ca
        .fetch_verified(&server.url("/vmcp"), "example.org")
        .await
        .unwrap();
    assert_eq!(map["name"], "testvm");
}

async fn fetch_error(reply: fn(&str) -> Reply) -> webapi_core::trust::TrustError {
    let dir = tempfile::tempdir().unwrap();
    let key = site_key();
    let server = serve(None, reply).await;
    let verifier = verifier_trusting(
        dir.path(),
        "example.org",
        &key.public_key().unwrap(),
        test_policy(),
    );
    verifier
        .fetch_verified(&server.url("/vmcp"), "example.org")
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let err = fetch_error(|_| Reply::Hang).await;
    assert_eq!(err.code(), -6);
    assert!(err.detail().contains("timed out"), "{}", err.detail());
}

#[tokio::test]
async fn huge_bodies_are_cut_off() {
    let err = fetch_error(|_| Reply::Endless).await;
    assert_eq!(err.code(), -6);
    assert!(
        err.detail().contains("larger than the limit"),
        "{}",
        err.detail()
    );
    let err = fetch_error(|_| Reply::HugeDeclared).await;
    assert_eq!(err.code(), -6);
    assert!(
        err.detail().contains("more than the limit"),
        "{}",
        err.detail()
    );
}

#[tokio::test]
async fn non_json_and_non_object_bodies_are_parse_errors() {
    let err = fetch_error(|_| Reply::json("<html>hello</html>")).await;
    assert_eq!((err.kind(), err.code()), (TrustErrorKind::Parse, -5));
    let err = fetch_error(|_| Reply::json("[1,2,3]")).await;
    assert_eq!(err.code(), -5);
    let err = fetch_error(|_| Reply::json(r#"{"secret":"x","signature":"y"}"#)).await;
    assert_eq!((err.kind(), err.code()), (TrustErrorKind::MissingName, -99));
    let err = fetch_error(|_| Reply::Status(404, b"not found".to_vec())).await;
    assert_eq!(err.code(), -6);
    assert!(err.detail().contains("404"), "{}", err.detail());
}

#[tokio::test]
async fn redirects_are_followed_a_bounded_number_of_times() {
    let dir = tempfile::tempdir().unwrap();
    let key = site_key();
    let sign = signing_handler(key.clone());
    let server = serve(None, move |target| {
        if target.starts_with("/loop") {
            Reply::Redirect("/loop".into())
        } else if target.starts_with("/moved") {
            let rest = target.trim_start_matches("/moved");
            Reply::Redirect(format!("/vmcp{rest}"))
        } else if target.starts_with("/to-remote-http") {
            Reply::Redirect("http://example.invalid/vmcp".into())
        } else {
            sign(target)
        }
    })
    .await;
    let verifier = verifier_trusting(
        dir.path(),
        "example.org",
        &key.public_key().unwrap(),
        test_policy(),
    );
    verifier
        .fetch_verified(&server.url("/moved"), "example.org")
        .await
        .unwrap();
    let err = verifier
        .fetch_verified(&server.url("/loop"), "example.org")
        .await
        .unwrap_err();
    assert_eq!(err.code(), -6);
    assert!(err.detail().contains("redirects"), "{}", err.detail());
    let loops = server
        .requests()
        .iter()
        .filter(|t| t.starts_with("/loop"))
        .count();
    assert_eq!(loops, 6, "the first request and 5 redirects");
    let err = verifier
        .fetch_verified(&server.url("/to-remote-http"), "example.org")
        .await
        .unwrap_err();
    assert!(err.detail().contains("plain http"), "{}", err.detail());
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_without_contacting_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = site_key();
    let verifier = verifier_trusting(
        dir.path(),
        "example.org",
        &key.public_key().unwrap(),
        test_policy(),
    );
    let err = verifier
        .fetch_verified("http://example.invalid/vmcp", "example.org")
        .await
        .unwrap_err();
    assert_eq!(err.code(), -6);
    assert!(err.detail().contains("plain http"), "{}", err.detail());
    let err = verifier
        .fetch_verified("not a url", "example.org")
        .await
        .unwrap_err();
    assert_eq!(err.code(), -6);
}

#[tokio::test]
async fn keystores_from_the_settings_and_bad_keystore_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::open(&dir.path().join("data")).unwrap();
    let verifier = Verifier::new(TrustConfig::default(), &data).unwrap();
    assert!(!verifier.is_trusted("example.org"));

    let key = site_key();
    let file = dir.path().join("panel.lst");
    std::fs::write(
        &file,
        format!("example.org={}\n", key.public_key().unwrap().to_base64()),
    )
    .unwrap();
    TrustSettings {
        keystores: vec![file],
        ..Default::default()
    }
    .save(&data.settings_file())
    .unwrap();
    verifier.reload_local().unwrap();
    assert!(verifier.is_trusted("example.org"));
    let listed = verifier.trusted_domains();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].source.ends_with("panel.lst"));

    let bad = dir.path().join("bad.lst");
    std::fs::write(&bad, "example.org=AAAA\n").unwrap();
    let config = TrustConfig {
        keystore_files: vec![bad],
        ..TrustConfig::default()
    };
    let err = Verifier::new(config, &data).unwrap_err();
    assert_eq!(err.code(), -99);
    assert!(err.detail().contains("line 1"), "{}", err.detail());
}
