//! The archive store on top of `object_store`.
//!
//! Layout, per task: `results/<taskid>/archive-<sha256>.tar` (the archive as uploaded) and
//! `results/<taskid>/result.json` ([`StoredResult`], written last with a create-only put).
//! The metadata object is the commit point: a result exists once it exists, and a create-only
//! put lets exactly one upload win, even between several store instances sharing a bucket.
//! An archive without metadata (a crash between the two puts, or the losing side of a race) is
//! never served.
//!
//! Apps' code, published by their owners, is kept by content: `code/<sha256>`, written once
//! (create-only) after its hash was checked, and never changed.

use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, path::Path as StorePath,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the store knows about a stored result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredResult {
    /// The task.
    pub task_id: B256,
    /// Its deal.
    pub deal_id: B256,
    /// Its index in the deal's request order.
    pub task_index: U256,
    /// The result digest of the archive (the task's on-chain consensus).
    pub digest: B256,
    /// The SHA-256 of the archive's bytes.
    pub archive_sha256: B256,
    /// The archive's size in bytes.
    pub size: u64,
    /// How many files it holds.
    pub files: usize,
    /// The worker that uploaded it.
    pub worker: Address,
    /// The deal's beneficiary, who may download it.
    pub beneficiary: Address,
    /// Whether anyone may download it.
    pub public: bool,
    /// When it was stored (unix seconds).
    pub uploaded_at: u64,
    /// Why the task failed, when its result holds a failure record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<poco_primitives::result::FailureRecord>,
}

/// The archives and their metadata.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveStore {
    store: Arc<dyn ObjectStore>,
}

fn metadata_key(task_id: B256) -> StorePath {
    StorePath::from(format!("results/{task_id}/result.json"))
}

fn code_key(checksum: B256) -> StorePath {
    StorePath::from(format!("code/{checksum}"))
}

fn archive_key(task_id: B256, archive_sha256: B256) -> StorePath {
    StorePath::from(format!("results/{task_id}/archive-{archive_sha256}.tar"))
}

impl ArchiveStore {
    pub(crate) fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// The metadata of `task_id`'s result, if stored.
    pub(crate) async fn metadata(&self, task_id: B256) -> Result<Option<StoredResult>> {
        let bytes = match self.store.get(&metadata_key(task_id)).await {
            Ok(result) => result.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let stored: StoredResult = serde_json::from_slice(&bytes)
            .map_err(|e| Error::CorruptMetadata { task_id, reason: e.to_string() })?;
        if stored.task_id != task_id {
            return Err(Error::CorruptMetadata { task_id, reason: "another task's record".into() });
        }
        Ok(Some(stored))
    }

    /// Stores `archive` and then its metadata, unless a result is already there.
    pub(crate) async fn put(&self, archive: Bytes, stored: &StoredResult) -> Result<()> {
        let task_id = stored.task_id;
        self.store
            .put(&archive_key(task_id, stored.archive_sha256), PutPayload::from_bytes(archive))
            .await?;
        let json = serde_json::to_vec_pretty(stored).expect("metadata serializes");
        let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.store.put_opts(&metadata_key(task_id), json.into(), options).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(Error::AlreadyUploaded { task_id })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The archive of a stored result, as a stream of chunks.
    pub(crate) async fn archive(
        &self,
        stored: &StoredResult,
    ) -> Result<BoxStream<'static, object_store::Result<Bytes>>> {
        let result = self.store.get(&archive_key(stored.task_id, stored.archive_sha256)).await?;
        Ok(result.into_stream())
    }

    /// The size of the code stored under `checksum`, if any.
    pub(crate) async fn code_size(&self, checksum: B256) -> Result<Option<u64>> {
        match self.store.head(&code_key(checksum)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Stores `code` under `checksum` (the caller checked that it is its SHA-256); `false`
    /// when it was already there (the same bytes, by construction).
    pub(crate) async fn put_code(&self, checksum: B256, code: Bytes) -> Result<bool> {
        let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.store.put_opts(&code_key(checksum), code.into(), options).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// The code stored under `checksum`: its size and its bytes as a stream of chunks.
    pub(crate) async fn code(
        &self,
        checksum: B256,
    ) -> Result<Option<(u64, BoxStream<'static, object_store::Result<Bytes>>)>> {
        match self.store.get(&code_key(checksum)).await {
            Ok(result) => Ok(Some((result.meta.size, result.into_stream()))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}
