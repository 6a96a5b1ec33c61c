//! The web UI's static files over real HTTP on the API's listener: `/` serves
//! `index.html` (no-cache), `/ui/<version>/...` the assets (content types, long-lived
//! cache), every response with the same-origin-only Content-Security-Policy; `/api` is
//! untouched.

#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use warren_integration::{TestBroker, TestConfig};

fn start() -> TestBroker {
    TestBroker::start_with(TestConfig {
        http: Some(warren_http::HttpConfig::default()),
        ..TestConfig::default()
    })
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// The `/ui/<version>/...` URLs that `index.html` loads.
fn asset_urls(index: &str) -> Vec<String> {
    index
        .split(['"', '\''])
        .filter(|s| s.starts_with("/ui/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn index_is_html_not_cached_with_a_same_origin_csp() {
    let broker = start();
    let r = reqwest::get(format!("{}/", broker.http_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&r, "cache-control"), "no-cache");
    let csp = header(&r, "content-security-policy").to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("style-src 'self';"), "{csp}");
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    assert_eq!(header(&r, "x-frame-options"), "DENY");
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"login-form\""), "{body}");
    assert!(!body.contains("<script>"), "inline script in {body}");
    assert!(!body.contains("{{VERSION}}"), "{body}");
}

#[tokio::test]
async fn assets_are_served_with_their_types_and_cached_for_a_year() {
    let broker = start();
    let base = broker.http_url();
    let index = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let urls = asset_urls(&index);
    assert!(urls.len() >= 4, "{urls:?}");
    let version = urls[0].split('/').nth(2).unwrap().to_owned();
    assert_eq!(version.len(), 16, "{version}");
    for url in &urls {
        assert_eq!(url.split('/').nth(2), Some(version.as_str()), "{url}");
        let r = reqwest::get(format!("{base}{url}")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let expected = if url.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(header(&r, "content-type"), expected, "{url}");
        assert_eq!(
            header(&r, "cache-control"),
            "public, max-age=31536000, immutable",
            "{url}"
        );
        assert!(header(&r, "content-security-policy").contains("script-src 'self'"));
        assert!(!r.bytes().await.unwrap().is_empty(), "{url}");
    }
    // Modules the entry point imports, the vendored licence.
    for path in ["api.js", "views/queues.js", "vendor/uPlot.LICENSE"] {
        let r = reqwest::get(format!("{base}/ui/{version}/{path}"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn unknown_assets_and_old_versions_are_404_and_not_cached() {
    let broker = start();
    let base = broker.http_url();
    let index = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let version = asset_urls(&index)[0].split('/').nth(2).unwrap().to_owned();
    for path in [
        format!("/ui/{version}/nope.js"),
        format!("/ui/{version}/..%2FCargo.toml"),
        "/ui/0000000000000000/app.js".to_owned(),
    ] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&r, "cache-control"), "no-cache", "{path}");
    }
}

#[tokio::test]
async fn the_api_still_answers_beside_the_ui() {
    let broker = start();
    let base = broker.http_url();
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{base}/api/whoami"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header(&r, "content-type").starts_with("application/json"));
    let r = client
        .get(format!("{base}/api/no-such-thing"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The UI asks for credentials only through its form: `/` itself needs none.
    let r = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
