//! Image leases follow the session's VM: while a session's VM exists its image is never evicted, after
//! `close` it is, and a session found again after a daemon restart holds its image again. Real image
//! cache, real files and a real loopback HTTP server; the daemon's in-memory hypervisor fake.

mod support;

#[path = "media/server.rs"]
#[allow(dead_code)] // this test needs only part of the media tests' server
mod server;

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use server::TestServer;
use support::*;
use webapi_core::daemon::adapters::CachedImages;
use webapi_core::daemon::Services;
use webapi_core::media::{CacheOptions, ImageCache};
use webapi_core::protocol::HVF_DEPLOYMENT_HDD;
use webapi_core::store::DataDir;

const DISK_VMCP: &str = "http://test.local:8081/disk-vmcp";

fn sha256(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

/// A session booting a disk image from the loopback server.
fn disk_doc(url: &str, checksum: &str) -> Value {
    let mut doc = vmcp_doc("disk-vm", "s3cret");
    doc["flags"] = json!(doc["flags"].as_u64().unwrap() | u64::from(HVF_DEPLOYMENT_HDD));
    doc["diskURL"] = json!(url);
    doc["diskChecksum"] = json!(checksum);
    doc
}

/// Serves one disk image; returns the server (kept alive by the caller).
async fn image_server() -> (TestServer, String, String) {
    let server = TestServer::start().await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let sum = sha256(&data);
    server.put("/disk.img", data);
    let url = server.url("/disk.img");
    (server, url, sum)
}

/// A fresh cache on the daemon's data dir (as a daemon process opens it at start).
fn open_cache(data_dir: &Path) -> ImageCache {
    ImageCache::open(&DataDir::open(data_dir).unwrap(), CacheOptions::default()).unwrap()
}

fn services_with(fakes: &Fakes, cache: &ImageCache) -> Services {
    Services {
        images: Some(Arc::new(CachedImages::new(cache.clone()))),
        ..fakes.services()
    }
}

/// Whether the cache's only image is leased; panics when the cache does not hold exactly one image.
fn in_use(cache: &ImageCache) -> bool {
    let usage = cache.usage();
    assert_eq!(usage.images.len(), 1, "{usage:?}");
    usage.images[0].in_use
}

/// Opens the disk session and starts it to running; returns the session id.
async fn start_session(c: &mut Client) -> u64 {
    c.handshake().await;
    let sid = c.open(DISK_VMCP).await;
    c.act("start", sid, json!({"parameters": {"who": "me"}}))
        .await;
    assert_eq!(c.state_changed(sid).await, 5);
    sid
}

async fn close_session(c: &mut Client, sid: u64) {
    let id = c.act("close", sid, json!({})).await;
    c.event("succeed", &id).await;
    assert_eq!(c.state_changed(sid).await, 0);
}

#[tokio::test]
async fn a_live_session_keeps_its_image_and_close_releases_it() {
    let (_server, url, sum) = image_server().await;
    let fakes = Fakes::new();
    fakes.vmcp.add(DISK_VMCP, disk_doc(&url, &sum));
    let cache = open_cache(&fakes.data_dir());
    let d = start_daemon(
        services_with(&fakes, &cache),
        test_limits(),
        &fakes.data_dir(),
    )
    .await;
    let mut c = Client::connect(d.addr).await;
    let sid = start_session(&mut c).await;

    let image = cache.dir().join(format!("sha256-{sum}.img"));
    assert!(image.is_file());
    assert!(in_use(&cache), "the running session leases its image");
    let report = cache.clear().unwrap();
    assert_eq!((report.freed_bytes, report.kept_in_use), (0, 1));
    assert!(image.is_file(), "clearing the cache keeps an image in use");

    // Stopped, the VM still exists (its disk overlay is based on the image): still leased.
    c.act("stop", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 2, "powered off");
    assert!(in_use(&cache));

    close_session(&mut c, sid).await;
    assert!(
        !in_use(&cache),
        "a closed session's image is no longer leased"
    );
    let report = cache.clear().unwrap();
    assert_eq!((report.freed_bytes, report.kept_in_use), (300_000, 0));
    assert!(!image.exists(), "the closed session's image was evicted");
}

#[tokio::test]
async fn a_recovered_session_leases_its_image_again_after_a_restart() {
    let (server, url, sum) = image_server().await;
    let fakes = Fakes::new();
    fakes.vmcp.add(DISK_VMCP, disk_doc(&url, &sum));
    let first = open_cache(&fakes.data_dir());
    let d1 = start_daemon(
        services_with(&fakes, &first),
        test_limits(),
        &fakes.data_dir(),
    )
    .await;
    let mut c = Client::connect(d1.addr).await;
    start_session(&mut c).await;
    d1.stop().await;
    drop(c);

    // A new daemon process: a new cache on the same folder knows the image but no lease yet.
    let second = open_cache(&fakes.data_dir());
    assert!(!in_use(&second));
    let d2 = start_daemon(
        services_with(&fakes, &second),
        test_limits(),
        &fakes.data_dir(),
    )
    .await;
    let mut c = Client::connect(d2.addr).await;
    c.handshake().await;
    // The actor answers only after it re-attached to its VM (and took the lease back).
    let sid = c.open(DISK_VMCP).await;
    assert!(fakes.hv.calls().contains(&"reattach".to_string()));
    assert!(in_use(&second), "the recovered session leases its image");
    let report = second.clear().unwrap();
    assert_eq!((report.freed_bytes, report.kept_in_use), (0, 1));
    assert_eq!(
        server.requests_for("/disk.img").len(),
        1,
        "no second download"
    );

    close_session(&mut c, sid).await;
    assert!(!in_use(&second));
    assert_eq!(second.clear().unwrap().freed_bytes, 300_000);
    assert!(second.usage().images.is_empty());
}
