//! The explorer: a web page of the market, its deals, tasks and accounts, built from this
//! API. Its files (`explorer/` of the repository, built into `crates/market/explorer`) are in
//! the binary: one file serves it, and nothing is fetched from elsewhere at run time.
//!
//! The page runs no script but its own (a content security policy says so to the browser), is
//! never framed by another site, and reads only this market (and its WebSocket).

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

/// The page.
const INDEX: &str = include_str!("../../explorer/index.html");
/// Its script.
const SCRIPT: &str = include_str!("../../explorer/app.js");
/// Its style sheet.
const STYLE: &str = include_str!("../../explorer/app.css");

/// What the page may load and run: its own files, and requests to this market.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' \
                      data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
                      frame-ancestors 'none'";

/// The explorer's files, by path: what the router serves.
pub(super) const FILES: [(&str, &str, &str); 3] = [
    ("/", INDEX, "text/html; charset=utf-8"),
    ("/explorer/app.js", SCRIPT, "text/javascript; charset=utf-8"),
    ("/explorer/app.css", STYLE, "text/css; charset=utf-8"),
];

/// One of the explorer's files, with its type and the page's security headers. Browsers ask
/// again each time (`no-cache`): a new market version serves its own files at once.
pub(super) fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
