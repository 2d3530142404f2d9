//! The context ISO the VirtualBox backend builds, read back by an independent ISO 9660 reader
//! (`isoinfo` from Debian's genisoimage, installed by scripts/install-deps.sh).

use std::process::Command;

use webapi_core::hypervisor::virtualbox::context::{build_context_iso, context_sh};

fn isoinfo_available() -> bool {
    Command::new("isoinfo").arg("-version").output().is_ok()
}

#[test]
fn isoinfo_reads_the_volume_and_the_file() {
    if !isoinfo_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "isoinfo (genisoimage) is missing in CI; see scripts/install-deps.sh"
        );
        eprintln!("skipping: isoinfo not installed");
        return;
    }
    // More than one sector of data, with non-ASCII text.
    let user_data = format!("#!/bin/sh\n# é ü ✓\n{}", "echo line\n".repeat(700));
    let img = build_context_iso(&user_data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("context.iso");
    std::fs::write(&iso, &img).unwrap();

    let d = Command::new("isoinfo")
        .arg("-d")
        .arg("-i")
        .arg(&iso)
        .output()
        .unwrap();
    let d = String::from_utf8_lossy(&d.stdout);
    assert!(d.contains("Volume id: CONTEXT_INFO"), "{d}");
    assert!(
        d.contains(&format!("Volume size is: {}", img.len() / 2048)),
        "{d}"
    );

    let l = Command::new("isoinfo")
        .arg("-l")
        .arg("-i")
        .arg(&iso)
        .output()
        .unwrap();
    let l = String::from_utf8_lossy(&l.stdout);
    assert!(l.contains("CONTEXT.SH;1"), "{l}");
    assert!(l.contains("2000"), "the fixed file date, 2000-01-01: {l}");

    let x = Command::new("isoinfo")
        .arg("-i")
        .arg(&iso)
        .arg("-x")
        .arg("/CONTEXT.SH;1")
        .output()
        .unwrap();
    assert!(x.status.success());
    assert_eq!(String::from_utf8(x.stdout).unwrap(), context_sh(&user_data));
}
