//! What every client of a poco service shares: how its HTTP client is set up, and how a
//! service's refusal reads on the wire.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a request to a poco service may take, from connecting to the last byte of the
/// answer, unless its client says otherwise.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting to a poco service may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client every poco client uses: `timeout` for a whole request, [`CONNECT_TIMEOUT`]
/// to connect, and a `User-Agent` naming poco and its version.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .user_agent(concat!("poco/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client without custom TLS settings always builds")
}

/// The JSON body of every refusal a poco service answers: `{"error": "<message>", "code":
/// "<code>"}`, where the code is stable and machine-readable and the message is for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong, for a person.
    pub error: String,
    /// A stable, machine-readable code.
    pub code: String,
}

/// A service's refusal as a client reads it: the HTTP status and the [`ErrorBody`], or, for an
/// answer that is not one (a proxy's page, a foreign server), `unknown` and the start of the
/// text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The service's stable error code (`unknown` when the body had none).
    pub code: String,
    /// The service's message.
    pub message: String,
}

impl Refusal {
    /// The longest part of a body that is not an [`ErrorBody`] kept as the message.
    const MAX_FOREIGN_MESSAGE: usize = 200;

    /// The refusal a response of `status` with `body` says.
    pub fn read(status: reqwest::StatusCode, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(body) => Self { status: status.as_u16(), code: body.code, message: body.error },
            Err(_) => {
                let text: String =
                    String::from_utf8_lossy(body).chars().take(Self::MAX_FOREIGN_MESSAGE).collect();
                let message = if text.trim().is_empty() {
                    status.canonical_reason().unwrap_or_default().to_owned()
                } else {
                    text
                };
                Self { status: status.as_u16(), code: "unknown".to_owned(), message }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn a_poco_refusal_keeps_its_code_and_message() {
        let body = br#"{"error":"no such order","code":"unknown_order"}"#;
        let refusal = Refusal::read(StatusCode::NOT_FOUND, body);
        assert_eq!(refusal.status, 404);
        assert_eq!(refusal.code, "unknown_order");
        assert_eq!(refusal.message, "no such order");
    }

    #[test]
    fn a_foreign_answer_is_unknown_and_bounded() {
        let page = "<html>".repeat(100);
        let refusal = Refusal::read(StatusCode::BAD_GATEWAY, page.as_bytes());
        assert_eq!(refusal.code, "unknown");
        assert_eq!(refusal.message.chars().count(), 200);
        let empty = Refusal::read(StatusCode::SERVICE_UNAVAILABLE, b"");
        assert_eq!(empty.message, "Service Unavailable");
    }
}
