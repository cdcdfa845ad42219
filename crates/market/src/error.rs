//! The errors of the market, and the one place where they become HTTP responses.
//!
//! Every refusal is a 4xx whose JSON body is `{"error": "<what to do>", "code": "<stable
//! code>"}`; clients match on `code`, people read `error`. A 5xx says only that the server
//! failed: its cause goes to the log, never to the client.

use std::{path::PathBuf, time::Duration};

use alloy::primitives::{Address, U256};
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use poco_api::http::ErrorBody;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong: a refused request (4xx) or a failure of the service (5xx).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body is not JSON.
    #[error("the body is not valid JSON ({0}); send one JSON object")]
    MalformedJson(String),
    /// The body is JSON but not an order of this kind (unknown, missing or mistyped field).
    #[error("the order is malformed: {0}")]
    InvalidOrder(String),
    /// A field has a value the protocol can never accept.
    #[error("{field}: {reason}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// Why, and what to do.
        reason: String,
    },
    /// A query parameter is unknown or malformed.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A path segment (order hash, deal id) is malformed.
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// The body is larger than allowed.
    #[error("the body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Nothing at that address.
    #[error("{0} not found")]
    NotFound(String),
    /// The signature is not the expected signer's.
    #[error("invalid signature: {0}")]
    InvalidSignature(String),
    /// The order is signed by someone else than the asset's current owner.
    #[error(
        "the order is signed by {signer} but {asset} is owned by {owner}: sign it with the owner's key"
    )]
    NotOwner {
        /// Who signed.
        signer: Address,
        /// The asset.
        asset: Address,
        /// Its current owner.
        owner: Address,
    },
    /// The order's asset is not in its registry.
    #[error("{kind} {asset} is not registered: register it first (poco {kind} deploy)")]
    AssetNotRegistered {
        /// `app`, `dataset` or `workerpool`.
        kind: &'static str,
        /// The asset.
        asset: Address,
    },
    /// The asset exists on-chain but the market has not followed the chain that far yet.
    #[error(
        "{asset} is registered on-chain but the market has not indexed that block yet: retry in a few seconds"
    )]
    NotIndexedYet {
        /// The asset.
        asset: Address,
    },
    /// Every unit of the order's volume is consumed (or the order is closed) on-chain.
    #[error("the order has no volume left on-chain (consumed or closed): sign a new one")]
    NoVolumeLeft,
    /// The signer's free balance covers the order at the chain's head, not yet at the depth
    /// the market acts at.
    #[error(
        "{account}'s free balance covers the order in the newest block but not yet {confirmations} blocks deep, where the market reads it: retry in a few blocks"
    )]
    BalanceNotConfirmed {
        /// The account.
        account: Address,
        /// The market's confirmation depth.
        confirmations: u64,
    },
    /// The signer's free balance does not cover what the order commits it to.
    #[error(
        "{account} has {available} nRLC free but the order needs {needed} nRLC ({what}): deposit the difference or lower the volume"
    )]
    InsufficientStake {
        /// The account.
        account: Address,
        /// What it needs.
        needed: U256,
        /// What it has.
        available: U256,
        /// What the amount covers.
        what: &'static str,
    },
    /// The wallet has too many open orders of this kind.
    #[error(
        "{owner} already has {limit} open {kind} orders, the most allowed: unpublish some first"
    )]
    OpenOrderCap {
        /// The wallet.
        owner: Address,
        /// The kind.
        kind: &'static str,
        /// The cap.
        limit: u64,
    },
    /// Too many requests.
    #[error("too many requests from {who}: retry in {} ms", retry_after.as_millis())]
    RateLimited {
        /// `ip 1.2.3.4` or `address 0x…`.
        who: String,
        /// When a request will be accepted again.
        retry_after: Duration,
    },
    /// An unpublish authorization is expired (or expires too far away).
    #[error("the authorization {0}: sign a new one")]
    AuthorizationExpired(String),
    /// An unpublish authorization was already used.
    #[error("this authorization was already used: sign a new one with another nonce")]
    AuthorizationReplayed,
    /// An unpublish authorization is not the order owner's signature.
    #[error("the authorization is not signed by the order's owner {owner}")]
    NotOrderOwner {
        /// Who may unpublish.
        owner: Address,
    },
    /// The order is not open (filled, cancelled, dead or already unpublished).
    #[error("the order is {0}, not open")]
    NotOpen(String),
    /// A browser's preflight from a page whose origin the market does not allow.
    #[error(
        "cross-origin requests from this page's origin are not allowed: the market's operator \
         lists the origins it serves (--http.cors-origin)"
    )]
    CorsOriginNotAllowed,
    /// The path exists but not with this method.
    #[error("this path does not accept this method: see /openapi.json")]
    MethodNotAllowed,
    /// A WebSocket endpoint called without the upgrade handshake.
    #[error("this endpoint speaks WebSocket: connect with a WebSocket client")]
    WebSocketRequired,
    /// Too many WebSocket clients.
    #[error("too many WebSocket clients: retry later")]
    TooManyConnections,
    /// The request took longer than the configured timeout.
    #[error("the request took longer than {} ms", .0.as_millis())]
    Timeout(Duration),

    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database schema could not be brought up to date.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The chain could not be read.
    #[error("chain: {0}")]
    Chain(#[from] poco_chain::Error),
    /// A contract call failed.
    #[error("contract call: {0}")]
    Contract(String),
    /// A file or directory could not be used.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration cannot work.
    #[error("configuration: {0}")]
    Config(String),
    /// Something that should not happen happened.
    #[error("internal: {0}")]
    Internal(String),
    /// A stored value is not what this version of the market writes.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

impl Error {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        use StatusCode as S;
        match self {
            Self::MalformedJson(_) | Self::InvalidQuery(_) | Self::InvalidPath(_) => S::BAD_REQUEST,
            Self::InvalidOrder(_)
            | Self::InvalidValue { .. }
            | Self::InvalidSignature(_)
            | Self::NotOwner { .. }
            | Self::AssetNotRegistered { .. }
            | Self::InsufficientStake { .. } => S::UNPROCESSABLE_ENTITY,
            Self::BodyTooLarge { .. } => S::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => S::NOT_FOUND,
            Self::NotIndexedYet { .. }
            | Self::BalanceNotConfirmed { .. }
            | Self::NoVolumeLeft
            | Self::OpenOrderCap { .. }
            | Self::AuthorizationReplayed
            | Self::NotOpen(_) => S::CONFLICT,
            Self::RateLimited { .. } | Self::TooManyConnections => S::TOO_MANY_REQUESTS,
            Self::AuthorizationExpired(_) => S::UNAUTHORIZED,
            Self::NotOrderOwner { .. } => S::FORBIDDEN,
            Self::WebSocketRequired => S::UPGRADE_REQUIRED,
            Self::MethodNotAllowed => S::METHOD_NOT_ALLOWED,
            Self::CorsOriginNotAllowed => S::FORBIDDEN,
            Self::Timeout(_) => S::SERVICE_UNAVAILABLE,
            Self::Chain(_) | Self::Contract(_) => S::BAD_GATEWAY,
            Self::Database(_)
            | Self::Migration(_)
            | Self::Io { .. }
            | Self::Config(_)
            | Self::Internal(_)
            | Self::Corrupt(_) => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::InvalidOrder(_) => "invalid_order",
            Self::InvalidValue { .. } => "invalid_value",
            Self::InvalidQuery(_) => "invalid_query",
            Self::InvalidPath(_) => "invalid_path",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::NotFound(_) => "not_found",
            Self::InvalidSignature(_) => "invalid_signature",
            Self::NotOwner { .. } => "signer_not_owner",
            Self::AssetNotRegistered { .. } => "asset_not_registered",
            Self::NotIndexedYet { .. } | Self::BalanceNotConfirmed { .. } => "chain_sync_pending",
            Self::NoVolumeLeft => "no_volume_left",
            Self::InsufficientStake { .. } => "insufficient_stake",
            Self::OpenOrderCap { .. } => "open_order_cap",
            Self::RateLimited { .. } => "rate_limited",
            Self::AuthorizationExpired(_) => "authorization_expired",
            Self::AuthorizationReplayed => "authorization_replayed",
            Self::NotOrderOwner { .. } => "not_order_owner",
            Self::NotOpen(_) => "order_not_open",
            Self::WebSocketRequired => "websocket_required",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::CorsOriginNotAllowed => "cors_origin_not_allowed",
            Self::TooManyConnections => "too_many_connections",
            Self::Timeout(_) => "timeout",
            Self::Chain(_) | Self::Contract(_) => "chain_unavailable",
            Self::Database(_)
            | Self::Migration(_)
            | Self::Io { .. }
            | Self::Config(_)
            | Self::Internal(_)
            | Self::Corrupt(_) => "internal",
        }
    }

    /// Whether this is the server's failure rather than the client's.
    pub fn is_server_error(&self) -> bool {
        self.status().is_server_error()
    }

    /// The JSON body sent for this error: internals of a 5xx stay out of it.
    pub fn body(&self) -> ErrorBody {
        let error = match self {
            Self::Chain(_) | Self::Contract(_) => {
                "the chain node did not answer as expected: retry later".to_owned()
            }
            Self::Timeout(_) => self.to_string(),
            _ if self.is_server_error() => {
                "internal error: the cause is in the service's log".to_owned()
            }
            _ => self.to_string(),
        };
        ErrorBody { error, code: self.code().to_owned() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidValue { field, reason: reason.into() }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(target: "poco_market::http", error = %self, code = self.code(), "request failed");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Self::RateLimited { retry_after, .. } = &self {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_cause() {
        let error = Error::Corrupt("column price has 31 bytes".into());
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = error.body();
        assert_eq!(body.code, "internal");
        assert!(!body.error.contains("price"), "{}", body.error);
    }

    #[test]
    fn client_errors_say_what_to_do() {
        let error = Error::OpenOrderCap { owner: Address::ZERO, kind: "app", limit: 50 };
        assert_eq!(error.status(), StatusCode::CONFLICT);
        assert!(error.body().error.contains("unpublish some first"));
    }
}
