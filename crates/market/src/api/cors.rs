//! Cross-origin requests: which web pages, by origin, may call the API from a browser.
//!
//! Off by default: no page of another origin can read an answer. An operator lists the origins
//! of the pages it serves the API to (an explorer on another host), or `*` for any page. The
//! market never asks browsers for credentials (no `Access-Control-Allow-Credentials`, no
//! cookies): an allowed page reads what anyone may read, and a write still needs an order signed
//! by its owner. A preflight from an origin not listed is refused with a readable error, so
//! that whoever misconfigured a page sees why.

use axum::{
    extract::{Request, State},
    http::{
        HeaderMap, HeaderValue, Method, StatusCode,
        header::{
            ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
            ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD,
            ORIGIN, VARY,
        },
    },
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::ApiState;
use crate::Error;

/// How long a browser may keep a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The origins whose pages may call the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins {
    any: bool,
    origins: Vec<String>,
}

impl CorsOrigins {
    /// The origins listed: each `*` (any page) or exactly `scheme://host[:port]`, the way a
    /// browser writes its `Origin` header (`https://explorer.example.org`, no path, no
    /// trailing slash). An empty list allows none: cross-origin requests stay off.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        let mut allowed = Self::default();
        for origin in list.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            if origin == "*" {
                allowed.any = true;
                continue;
            }
            let parsed = url::Url::parse(origin)
                .map_err(|e| format!("CORS origin {origin:?} is not a URL ({e})"))?;
            let serialized = parsed.origin().ascii_serialization();
            if !matches!(parsed.scheme(), "http" | "https") || serialized != origin {
                return Err(format!(
                    "CORS origin {origin:?} is not an origin: write it as a browser sends it, \
                     scheme://host[:port] without a path ({serialized:?}?), or * for any page"
                ));
            }
            allowed.origins.push(serialized);
        }
        Ok(allowed)
    }

    /// Whether cross-origin requests are allowed at all.
    pub fn is_enabled(&self) -> bool {
        self.any || !self.origins.is_empty()
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    fn allow(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let origin = origin.to_str().ok()?;
        self.origins.iter().any(|o| o == origin).then(|| HeaderValue::from_str(origin).ok())?
    }
}

/// Answers preflights and marks the answers pages of the allowed origins may read. Runs
/// inside the guard: preflights are rate-limited like any request.
pub(super) async fn cors(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let cors = &state.cors;
    if !cors.is_enabled() {
        return next.run(request).await;
    }
    let allowed = request.headers().get(ORIGIN).and_then(|origin| cors.allow(origin));
    let preflight = request.method() == Method::OPTIONS
        && request.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let Some(allowed) = allowed else {
            return Error::CorsOriginNotAllowed.into_response();
        };
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
        vary_on_origin(headers);
        return response;
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Some(allowed) = allowed {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    }
    // The answer depends on the Origin header: caches must keep one per origin.
    vary_on_origin(headers);
    response
}

fn vary_on_origin(headers: &mut HeaderMap) {
    headers.append(VARY, HeaderValue::from_static("origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<CorsOrigins, String> {
        CorsOrigins::parse(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn origins_are_written_as_browsers_send_them() {
        let allowed = parse(&["https://explorer.example.org", "http://127.0.0.1:3000"]).unwrap();
        let value = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(
            allowed.allow(&value("https://explorer.example.org")),
            Some(value("https://explorer.example.org"))
        );
        assert_eq!(
            allowed.allow(&value("http://127.0.0.1:3000")),
            Some(value("http://127.0.0.1:3000"))
        );
        for other in [
            "https://explorer.example.org.evil.com",
            "http://explorer.example.org",
            "https://EXPLORER.example.org:443",
            "null",
            "",
        ] {
            assert_eq!(allowed.allow(&HeaderValue::from_str(other).unwrap()), None, "{other}");
        }
        for bad in [
            "https://explorer.example.org/",
            "https://explorer.example.org/path",
            "explorer.example.org",
            "file:///tmp",
            "https://explorer.example.org:443",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad} accepted");
        }
        assert!(!parse(&[]).unwrap().is_enabled());
        let any = parse(&["*"]).unwrap();
        assert_eq!(any.allow(&value("https://anyone.example")), Some(value("*")));
    }
}
