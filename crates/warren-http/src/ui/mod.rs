//! The web management UI's static files, embedded in the binary and served on the API's
//! listener outside `/api`: `/` is `index.html`, `/ui/<version>/<file>` the assets.
//!
//! The UI is plain HTML/CSS/JS (ES modules, no build step) under `ui/assets/`, compiled in
//! with `include_bytes!` (a dozen files: no embedding crate is worth its dependencies). It
//! talks only to the public `/api` endpoints with HTTP basic auth, like any other client.
//!
//! # Caching
//! `<version>` is a hash of every asset, computed at compile time ([`ASSET_VERSION`]): an
//! asset URL names its content, so assets are cached for a year (`immutable`), while
//! `index.html`, which carries the version into the asset URLs, is `no-cache`. A request
//! for another version (a page from before an upgrade) gets 404.
//!
//! # Security headers
//! Every UI response carries a Content-Security-Policy allowing scripts, styles and
//! fetches from the same origin only (no inline scripts or styles in the HTML), plus
//! `nosniff`, `no-referrer` and a refusal to be framed.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::ApiState;

/// The Content-Security-Policy of every UI response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `Cache-Control` of the versioned assets.
pub const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of `index.html`.
pub const INDEX_CACHE: &str = "no-cache";

/// One embedded file: its path under `/ui/<version>/`, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!("assets/", $path)),
        }
    };
}

/// Every asset but `index.html`.
const ASSETS: &[Asset] = &[
    asset!("app.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("session.js", JS),
    asset!("views/chart.js", JS),
    asset!("views/poll.js", JS),
    asset!("views/overview.js", JS),
    asset!("views/queues.js", JS),
    asset!("views/queue.js", JS),
    asset!("views/exchanges.js", JS),
    asset!("views/exchange.js", JS),
    asset!("views/paged.js", JS),
    asset!("views/connections.js", JS),
    asset!("views/connection.js", JS),
    asset!("views/channels.js", JS),
    asset!("views/forms.js", JS),
    asset!("views/users.js", JS),
    asset!("views/vhosts.js", JS),
    asset!("views/policies.js", JS),
    asset!("views/definitions.js", JS),
    asset!("views/topology.js", JS),
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", CSS),
    asset!("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
];

const INDEX_TEMPLATE: &str = include_str!("assets/index.html");

/// FNV-1a over `bytes`, continuing from `hash`; `const` so the version is fixed at build.
const fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

const fn assets_hash() -> u64 {
    let mut hash = fnv1a(0xcbf2_9ce4_8422_2325, INDEX_TEMPLATE.as_bytes());
    let mut i = 0;
    while i < ASSETS.len() {
        hash = fnv1a(hash, ASSETS[i].path.as_bytes());
        hash = fnv1a(hash, ASSETS[i].bytes);
        i += 1;
    }
    hash
}

/// The hash of all assets (and of `index.html`) that versions the asset URLs.
pub const ASSET_VERSION: u64 = assets_hash();

/// `index.html` with the asset version filled in.
static INDEX: LazyLock<String> =
    LazyLock::new(|| INDEX_TEMPLATE.replace("{{VERSION}}", &format!("{ASSET_VERSION:016x}")));

/// The UI's routes: `/` and `/ui/<version>/<file>`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{version}/{*path}", get(asset))
}

async fn index() -> Response {
    respond(
        StatusCode::OK,
        "text/html; charset=utf-8",
        INDEX_CACHE,
        INDEX.as_bytes(),
    )
}

async fn asset(Path((version, path)): Path<(String, String)>) -> Response {
    let current = format!("{ASSET_VERSION:016x}");
    let found = ASSETS.iter().find(|a| a.path == path);
    match found {
        Some(a) if version == current => {
            respond(StatusCode::OK, a.content_type, ASSET_CACHE, a.bytes)
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            INDEX_CACHE,
            b"Not found\n",
        ),
    }
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    body: &'static [u8],
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_assets_by_the_current_version() {
        let v = format!("/ui/{ASSET_VERSION:016x}/app.js");
        assert!(INDEX.contains(&v), "{}", *INDEX);
        assert!(!INDEX.contains("{{VERSION}}"));
    }

    #[test]
    fn index_has_no_inline_script_or_style() {
        assert!(!INDEX.contains("<script>"));
        assert!(!INDEX.contains("<style"));
        assert!(!INDEX.contains(" style="));
        assert!(!INDEX.contains(" onclick="));
    }

    #[test]
    fn every_asset_path_is_unique() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(
                ASSETS[i + 1..].iter().all(|b| b.path != a.path),
                "{}",
                a.path
            );
        }
    }
}
