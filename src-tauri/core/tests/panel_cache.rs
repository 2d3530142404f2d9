//! The control panel's image cache view (`daemon::panel::cache_info` / `clear_cache`) over the real image
//! cache and its daemon adapter, with images from a real loopback HTTP server: an image a session's VM
//! was created from is "in use" and survives "clear cache"; an image no session uses is removed.

#[path = "media/server.rs"]
#[allow(dead_code)] // shared with tests/media.rs, which uses all of it
mod server;
mod support;

use std::sync::Arc;

use serde_json::json;
use server::TestServer;
use support::*;
use webapi_core::daemon::adapters::CachedImages;
use webapi_core::daemon::panel;
use webapi_core::media::{CacheOptions, ImageCache};
use webapi_core::session::{ImageRequest, ImageSource};
use webapi_core::store::DataDir;

fn sha256(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

#[tokio::test]
async fn clear_cache_keeps_the_images_sessions_use() {
    let server = TestServer::start().await;
    let used = vec![7u8; 300_000];
    let unused = vec![9u8; 200_000];
    server.put("/used.img", used.clone());
    server.put("/unused.img", unused.clone());

    let fakes = Fakes::new();
    let mut doc = vmcp_doc("disk-vm", "s3cret");
    doc["flags"] = json!(2 | 1); // HVF_DEPLOYMENT_HDD | HVF_SYSTEM_64BIT
    doc["diskURL"] = json!(server.url("/used.img"));
    doc["diskChecksum"] = json!(sha256(&used));
    fakes.vmcp.add("http://test.local/disk", doc);
    let data = DataDir::open(&fakes.data_dir()).unwrap();
    let images = Arc::new(CachedImages::new(
        ImageCache::open(&data, CacheOptions::default()).unwrap(),
    ));
    let mut services = fakes.services();
    services.images = Some(images.clone());
    let d = start_daemon(services, test_limits(), &fakes.data_dir()).await;

    // A session boots from one image; the other is fetched (and leased) but used by nobody.
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open("http://test.local/disk").await;
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    images
        .fetch(
            &ImageRequest::Disk {
                url: server.url("/unused.img"),
                sha256: sha256(&unused),
            },
            Arc::new(|_, _| {}),
        )
        .await
        .unwrap();

    let info = panel::cache_info(&d.state, &images).await;
    assert_eq!(info.bytes, (used.len() + unused.len()) as u64);
    assert_eq!(info.limit_bytes, webapi_core::media::DEFAULT_CACHE_LIMIT);
    assert_eq!(info.images.len(), 2);
    let by_url = |url: &str| {
        info.images
            .iter()
            .find(|i| i.url == url)
            .unwrap_or_else(|| panic!("{url} not listed: {:?}", info.images))
            .clone()
    };
    let (u, n) = (
        by_url(&server.url("/used.img")),
        by_url(&server.url("/unused.img")),
    );
    assert!(u.in_use && !n.in_use, "{u:?} {n:?}");
    assert_eq!(n.bytes, unused.len() as u64);
    let json = serde_json::to_value(&info).unwrap();
    assert!(json["limitBytes"].is_u64() && json["images"][0]["inUse"].is_boolean());

    let cleared = panel::clear_cache(&d.state, &images).await.unwrap();
    assert_eq!(cleared.freed_bytes, unused.len() as u64);
    let after = panel::cache_info(&d.state, &images).await;
    assert_eq!(after.images.len(), 1);
    assert!(after.images[0].in_use);
    assert_eq!(after.bytes, used.len() as u64);
    let rows = panel::session_rows(&d.state).await;
    assert_eq!(rows[0].image, server.url("/used.img"));
}
