//! The web console: one HTML page, one stylesheet, an SVG logo and plain ES modules, all
//! compiled into the binary (no build step, no CDN). Served publicly: the page holds no
//! data; everything it shows comes from the authenticated API. A strict Content Security
//! Policy allows only this origin's scripts, styles and connections.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use qubix_protocol::api::ErrorCode;

use crate::error::api_error;

/// The policy for the console page: nothing from elsewhere, no inline script, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../console/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `/assets/`.
static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("logo.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/table.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/dialog.js", JS),
    asset!("js/pages/login.js", JS),
    asset!("js/pages/dashboard.js", JS),
    asset!("js/pages/marketplace.js", JS),
    asset!("js/pages/launch.js", JS),
    asset!("js/pages/instances.js", JS),
    asset!("js/pages/instance.js", JS),
    asset!("js/pages/billing.js", JS),
    asset!("js/pages/provider.js", JS),
    asset!("js/pages/network.js", JS),
];

const INDEX_HTML: &[u8] = include_bytes!("../console/index.html");

/// The console's routes: `/` and `/assets/…`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
}

async fn index() -> Response {
    let mut response = serve(INDEX_HTML, "text/html; charset=utf-8");
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.path == path) {
        Some(asset) => serve(asset.body, asset.content_type),
        None => api_error(
            ErrorCode::NotFound,
            format!("the console has no file {path:?}"),
        )
        .into_response(),
    }
}

fn serve(body: &'static [u8], content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidate every time: a new binary must never run with an old script.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The paths of every embedded file, for tests.
#[cfg(test)]
fn asset_paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_import_names_an_embedded_file() {
        let paths: Vec<&str> = asset_paths().collect();
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(asset.body).unwrap();
            let dir = asset.path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let target = line.split(['\'', '"']).nth(1).unwrap();
                let resolved = resolve(dir, target);
                assert!(
                    paths.contains(&resolved.as_str()),
                    "{} imports {target} ({resolved}), not embedded",
                    asset.path
                );
            }
        }
    }

    fn resolve(dir: &str, target: &str) -> String {
        let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
        for piece in target.split('/') {
            match piece {
                "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        parts.join("/")
    }
}
