//! The web console: static files compiled into the binary (no build step, no CDN). They hold
//! no data — the console signs in with a token and reads and writes through the API, with
//! the token's role — so they are served without one, like `/healthz`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const APP_CSS: &str = include_str!("../console/app.css");
const ICON: &str = include_str!("../console/icon.svg");

fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub async fn root() -> Redirect {
    Redirect::to("/console/")
}

pub async fn index() -> Response {
    file(INDEX, "text/html; charset=utf-8")
}

pub async fn app_js() -> Response {
    file(APP_JS, "text/javascript; charset=utf-8")
}

pub async fn app_css() -> Response {
    file(APP_CSS, "text/css; charset=utf-8")
}

pub async fn icon() -> Response {
    file(ICON, "image/svg+xml")
}
