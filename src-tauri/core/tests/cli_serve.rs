//! The `cvmwebapi serve` contract: listens where told, answers `/info`, refuses bad options clearly,
//! refuses to start a second listener, and stops cleanly on SIGTERM.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cvmwebapi");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_serve(port: u16, data_dir: &Path) -> Child {
    Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cvmwebapi serve")
}

/// GETs `/info` with the given Host and Origin headers; `None` while nothing listens.
fn get_info(port: u16, host: &str, origin: Option<&str>) -> Option<(u16, String)> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut req = client
        .get(format!("http://127.0.0.1:{port}/info"))
        .header("Host", host);
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    let resp = req.send().ok()?;
    Some((resp.status().as_u16(), resp.text().unwrap_or_default()))
}

fn wait_for_info(port: u16) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = get_info(
            port,
            &format!("127.0.0.1:{port}"),
            Some("http://test.local:5000"),
        ) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not answer /info within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(mut child: Child) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -TERM failed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("daemon did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_answers_info_on_a_custom_port_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = spawn_serve(port, dir.path());
    let (status, body) = wait_for_info(port);
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["status"], "ok");
    assert_eq!(info["domain"], "test.local");
    assert_eq!(info["version"], webapi_core::PROTOCOL_VERSION);
    assert!(
        dir.path().join("logs").is_dir(),
        "the log file goes into the data dir"
    );

    // DNS rebinding: a foreign Host header is refused before anything else.
    let (status, _) = get_info(port, &format!("evil.example:{port}"), None).unwrap();
    assert_eq!(status, 403);

    let status = terminate(child);
    assert!(status.success(), "clean exit on SIGTERM, got {status}");
}

#[test]
fn a_second_instance_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let first = spawn_serve(port, dir.path());
    wait_for_info(port);
    let second = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("already listens"), "stderr: {stderr}");
    terminate(first);
}

#[test]
fn bad_listen_addresses_are_refused() {
    for (listen, expected) in [
        ("nonsense", "not a valid ADDR:PORT"),
        ("0.0.0.0:5624", "--allow-remote"),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--listen", listen, "--data-dir", "unused"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{listen}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{listen}: {stderr}");
    }
}

#[test]
fn an_uncreatable_data_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
        ])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot create data dir"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn version_flag_prints_the_version() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(webapi_core::VERSION));
}
