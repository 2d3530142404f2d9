//! The demo page's files (ui/demo and the readable client library), compiled into the binary so the
//! command works from anywhere.

/// A static file of the demo site: its URL path, content type and body.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// Every static file, by URL path. `/` serves `index.html`; the page loads `../sdk/cvmwebapi.js`,
/// which resolves to `/sdk/cvmwebapi.js` from the site's root.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../../../ui/demo/index.html"),
    },
    Asset {
        path: "/demo.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../ui/demo/demo.js"),
    },
    Asset {
        path: "/demo.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../../../ui/demo/demo.css"),
    },
    Asset {
        path: "/sdk/cvmwebapi.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../ui/sdk/cvmwebapi.js"),
    },
];

/// The asset for a request path (`/` means `/index.html`).
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_page_and_it_loads_what_is_served() {
        let index = find("/").expect("index");
        assert!(index.body.contains("CernVM WebAPI demo"));
        for needed in ["../sdk/cvmwebapi.js", "demo.js", "demo.css"] {
            assert!(index.body.contains(needed), "index.html loads {needed}");
        }
        assert!(find("/sdk/cvmwebapi.js")
            .unwrap()
            .body
            .contains("startCVMWebAPI"));
        assert!(find("/../Cargo.toml").is_none());
        assert!(find("/demo.js/").is_none());
    }
}
