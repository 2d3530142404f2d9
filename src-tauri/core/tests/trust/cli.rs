//! The operator tools through the real `cvmwebapi` binary, and the Python example server of
//! docs/examples/vmcp_server.py, checked by the daemon's [`Verifier`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use webapi_core::trust::PublicKey;

use crate::server::{query_param, serve, Reply};
use crate::{test_policy, verifier_trusting, DOC};

const BIN: &str = env!("CARGO_BIN_EXE_cvmwebapi");
const SALT: &str = "TestSalt0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ-xy";

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// keygen → vmcp sign → vmcp verify, then the daemon's verifier accepts the same document served
/// over loopback HTTP for the request's salt.
fn round_trip(algorithm: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("site");
    let mut args = vec!["keygen", "--out", p(&prefix)];
    args.extend_from_slice(algorithm);
    let printed = ok(&run(&args, None));
    let key_file = dir.path().join("site.key");
    let pub_file = dir.path().join("site.pub");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the private key is readable only by its owner"
        );
    }
    let pub_text = std::fs::read_to_string(&pub_file).unwrap();
    assert_eq!(pub_text.lines().count(), 1);
    assert_eq!(printed.trim(), pub_text.trim());
    let public = PublicKey::from_base64(&pub_text).unwrap();

    // Refuses to overwrite.
    assert_eq!(run(&args, None).status.code(), Some(2));

    let signed = ok(&run(
        &["vmcp", "sign", "--key", p(&key_file), "--salt", SALT],
        Some(DOC),
    ));
    let doc_file = dir.path().join("signed.json");
    std::fs::write(&doc_file, &signed).unwrap();
    ok(&run(
        &[
            "vmcp",
            "verify",
            "--pub",
            p(&pub_file),
            "--salt",
            SALT,
            p(&doc_file),
        ],
        None,
    ));
    let other_salt = SALT.replace('T', "t");
    let bad = run(
        &[
            "vmcp",
            "verify",
            "--pub",
            p(&pub_file),
            "--salt",
            &other_salt,
            p(&doc_file),
        ],
        None,
    );
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let tampered = signed.replace("testvm", "evilvm");
    let bad = run(
        &["vmcp", "verify", "--pub", p(&pub_file), "--salt", SALT],
        Some(&tampered),
    );
    assert_eq!(bad.status.code(), Some(1));

    // Unsupported values are refused (exit 2) unless dropped.
    let with_bool = r#"{"name":"a","secret":"b","headful":true}"#;
    let refused = run(
        &["vmcp", "sign", "--key", p(&key_file), "--salt", SALT],
        Some(with_bool),
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("headful"));

    // The daemon side: a site signing each request with the CLI.
    let key_path = key_file.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = serve(None, move |target| {
            let salt = query_param(target, "cvm_salt").unwrap();
            let out = run(
                &["vmcp", "sign", "--key", p(&key_path), "--salt", &salt],
                Some(DOC),
            );
            Reply::json(ok(&out))
        })
        .await;
        let verifier = verifier_trusting(dir.path(), "example.org", &public, test_policy_long());
        let map = verifier
            .fetch_verified(&server.url("/vmcp"), "example.org")
            .await
            .unwrap();
        assert_eq!(map["name"], "testvm");
    });
}

fn test_policy_long() -> webapi_core::trust::FetchPolicy {
    let mut policy = test_policy();
    policy.total_timeout = Duration::from_secs(30);
    policy
}

#[test]
fn ed25519_keygen_sign_verify_through_the_cli() {
    round_trip(&["--algorithm", "ed25519"]);
}

#[test]
fn rsa_keygen_sign_verify_through_the_cli() {
    round_trip(&["--algorithm", "rsa", "--bits", "2048"]);
}

#[test]
fn keystore_sign_and_verify_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    ok(&run(
        &["keygen", "--algorithm", "ed25519", "--out", p(&root)],
        None,
    ));
    let other = dir.path().join("other");
    ok(&run(
        &["keygen", "--algorithm", "ed25519", "--out", p(&other)],
        None,
    ));
    let site_pub = std::fs::read_to_string(dir.path().join("other.pub")).unwrap();
    let lines = format!("# our sites\nexample.org={site_pub}");
    let out = dir.path().join("domainkeys.lst");
    let root_key = dir.path().join("root.key");
    let root_pub = dir.path().join("root.pub");
    let other_pub = dir.path().join("other.pub");
    let sign = |expires: &str| {
        run(
            &[
                "keystore",
                "sign",
                "--key",
                p(&root_key),
                "--version",
                "3",
                "--expires",
                expires,
                "--out",
                p(&out),
            ],
            Some(&lines),
        )
    };
    ok(&sign("2999-01-01T00:00:00Z"));
    let report = ok(&run(
        &["keystore", "verify", "--root", p(&root_pub), p(&out)],
        None,
    ));
    assert!(
        report.contains("version 3") && report.contains("1 domains"),
        "{report}"
    );

    // Wrong root, tampered file, expired file: exit 1.
    let bad = run(
        &["keystore", "verify", "--root", p(&other_pub), p(&out)],
        None,
    );
    assert_eq!(bad.status.code(), Some(1));
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::write(&out, text.replace("@version 3", "@version 4")).unwrap();
    let bad = run(
        &["keystore", "verify", "--root", p(&root_pub), p(&out)],
        None,
    );
    assert_eq!(bad.status.code(), Some(1));
    ok(&sign("2001-01-01T00:00:00Z"));
    let bad = run(
        &["keystore", "verify", "--root", p(&root_pub), p(&out)],
        None,
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expired"));

    // Bad input lines are usage errors.
    let bad = run(
        &[
            "keystore",
            "sign",
            "--key",
            p(&root_key),
            "--version",
            "1",
            "--expires",
            "2999-01-01T00:00:00Z",
            "--out",
            p(&out),
        ],
        Some("example.org=AAAA\n"),
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn serve_refuses_a_bad_keystore_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.lst");
    std::fs::write(&bad, "example.org=not-a-key\n").unwrap();
    let data = dir.path().join("data");
    let out = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            p(&data),
            "--keystore",
            p(&bad),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.lst"));
}

/// docs/examples/vmcp_server.py (standard library only, signing through `cvmwebapi vmcp sign`)
/// serves a VMCP the daemon accepts.
#[test]
fn python_example_server_is_accepted() {
    let Some(python) = find_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("site");
    ok(&run(
        &["keygen", "--algorithm", "ed25519", "--out", p(&prefix)],
        None,
    ));
    let public =
        PublicKey::from_base64(&std::fs::read_to_string(dir.path().join("site.pub")).unwrap())
            .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/vmcp_server.py");
    let mut child = Command::new(python)
        .arg(&script)
        .args([
            "--port",
            "0",
            "--key",
            p(&dir.path().join("site.key")),
            "--cvmwebapi",
            BIN,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // The script prints "listening on http://127.0.0.1:PORT/vmcp" first.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_default()
        .to_string();
    let result = std::panic::catch_unwind(|| {
        assert!(url.starts_with("http://127.0.0.1:"), "{line:?}");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let verifier =
                verifier_trusting(dir.path(), "example.org", &public, test_policy_long());
            let map = verifier.fetch_verified(&url, "example.org").await.unwrap();
            assert_eq!(map["name"], "example-vm");
            let map = verifier
                .fetch_verified(&format!("{url}?user=7"), "example.org")
                .await
                .unwrap();
            assert!(map.contains_key("signature"));
        });
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn find_python() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("python3"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is required when CI=true (scripts/install-deps.sh installs it)"
        );
        eprintln!("skipping: python3 not found");
    }
    found
}
