//! The result store's side of the wire: its request and answer types, the signatures it checks
//! ([`auth`]), the archive format of results ([`archive`]) and its typed client
//! ([`ResultStoreClient`]), used by workers (upload), schedulers (a signed `HEAD` before they
//! finalize), the SDK (download) and app owners (publishing an app's code, which the store
//! then serves to anyone at `/code/<sha256>`).
//!
//! Refusals come back as [`Error::Refused`] with the store's stable code
//! ([`crate::http::ErrorBody`] on the wire).

pub mod archive;
pub mod auth;
mod client;
mod error;
mod wire;

pub use archive::{ArchiveLimits, ArchiveSummary, UploadLimits};
pub use auth::UploadTicket;
pub use client::{
    DEFAULT_MAX_DOWNLOAD_BYTES, DownloadedResult, REQUEST_TIMEOUT, ResultStoreClient,
};
pub use error::{Error, Result};
pub use wire::{Challenge, CodeReceipt, ResultInfo, ResultOutcome, TaskRef, UploadReceipt};
