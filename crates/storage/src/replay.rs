//! The record that makes a signed request count once: each service that takes signed requests
//! (the scheduler, the SMS) keeps, in a `request_nonces` table of its schema, the signing hash of
//! every request it accepted, per signer, until the request could no longer be fresh
//! (the scheme of `poco_primitives::request`: a request is fresh for a bounded time, and its
//! hash covers a random nonce). The table's columns: the signer's column (its name is the service's),
//! `hash` and `expires` (unix seconds), with `(signer, hash)` unique.

use sqlx::{Any, Executor};

/// Records (through `executor`: a pool, a connection or a transaction) the request `hash` of
/// `signer` as accepted until `fresh_until` (unix seconds);
/// `false` if it already was: the request is a replay. `signer_column` names the table's signer
/// column.
pub async fn accept_once<'c>(
    executor: impl Executor<'c, Database = Any>,
    signer_column: &'static str,
    signer: &str,
    hash: &str,
    fresh_until: u64,
) -> Result<bool, sqlx::Error> {
    let insert = format!(
        "INSERT INTO request_nonces ({signer_column}, hash, expires) VALUES ($1, $2, $3) \
         ON CONFLICT ({signer_column}, hash) DO NOTHING"
    );
    // Only the column's name is spliced in, and it is a constant of the calling service.
    let inserted = sqlx::query(sqlx::AssertSqlSafe(insert))
        .bind(signer)
        .bind(hash)
        .bind(i64::try_from(fresh_until).unwrap_or(i64::MAX))
        .execute(executor)
        .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Forgets the requests that are stale since before `now_secs` (unix seconds): they would be
/// refused as stale anyway.
pub async fn forget_stale<'c>(
    executor: impl Executor<'c, Database = Any>,
    now_secs: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM request_nonces WHERE expires < $1")
        .bind(i64::try_from(now_secs).unwrap_or(i64::MAX))
        .execute(executor)
        .await?;
    Ok(())
}
