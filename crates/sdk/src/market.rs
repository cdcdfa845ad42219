//! The market as the SDK talks to it: the client of [`poco_api::market`], its failures in the
//! SDK's terms.

pub use poco_api::market::{MarketClient, kind_name};

use crate::Error;

impl From<poco_api::market::Error> for Error {
    fn from(error: poco_api::market::Error) -> Self {
        use poco_api::market::Error as Api;
        match error {
            Api::Unreachable { url, cause } => Self::MarketDown { url, cause },
            Api::Refused { code, message, .. } => Self::MarketRefused { code, message },
            Api::UnexpectedAnswer(reason) => {
                Self::Config(format!("unexpected answer from the market: {reason}"))
            }
            other => Self::Config(other.to_string()),
        }
    }
}
