//! Publication and unpublication: the book's writes on behalf of order owners.
//!
//! A publication batch reads what the rules need in a few statements ([`Mirror`]), lets
//! [`decide`] rule on each order in turn, then writes the accepted ones in a few statements.

use std::collections::{HashMap, HashSet};

use alloy::primitives::{Address, B256, U256};

use super::{Backend, Columns, WriteTx, keyed, order_from_row};
use crate::model::StorageCode as _;
use crate::{
    error::{Error, Result},
    model::{MarketEvent, OrderEventType, OrderRecord, Status, kind_code, sort_key, tag_words},
    store::{
        ORDER_COLUMNS, Param, Publication, Published, Sql, address_bytes, clamp_i64, hash_bytes,
        rules::{Mirror, decide},
        to_address, to_hash, to_word, word_bytes,
    },
};

/// How many orders one `INSERT` writes.
const INSERT_CHUNK: usize = 400;

/// The columns of a new order row, in [`insert_params`] order.
const INSERT_COLUMNS: &str = "hash, kind, status, owner, asset, app, dataset, workerpool, \
    requester, price, volume, remaining, category, trust, tag0, tag1, tag2, tag3, sign_kind, \
    published_at, updated_at, body";

/// The values of a new order row.
fn insert_params(record: &OrderRecord) -> Vec<Param> {
    let order = &record.order;
    let roles = order.roles();
    let tag = tag_words(order.tag());
    vec![
        Param::Bytes(hash_bytes(record.hash)),
        Param::Int(kind_code(order.kind()).into()),
        Param::Int(record.status.code().into()),
        Param::Bytes(address_bytes(record.owner)),
        Param::Bytes(address_bytes(order.asset())),
        Param::Bytes(address_bytes(roles.app)),
        Param::Bytes(address_bytes(roles.dataset)),
        Param::Bytes(address_bytes(roles.workerpool)),
        Param::Bytes(address_bytes(roles.requester)),
        Param::Bytes(sort_key(order).to_vec()),
        Param::Bytes(word_bytes(order.volume())),
        Param::Bytes(word_bytes(record.remaining)),
        Param::Int(clamp_i64(order.category())),
        Param::Int(clamp_i64(order.trust())),
        Param::Int(tag[0]),
        Param::Int(tag[1]),
        Param::Int(tag[2]),
        Param::Int(tag[3]),
        Param::Int(record.signature.code().into()),
        Param::Int(record.published_at),
        Param::Int(record.updated_at),
        Param::Text(record.order.to_value().to_string()),
    ]
}

impl<B: Backend> WriteTx<B> {
    /// Checks publications against the mirror and writes those accepted, in a few statements
    /// for the whole batch; the inner results are the business outcomes.
    pub(super) async fn publish(
        &mut self,
        batch: Vec<Publication>,
    ) -> Result<Vec<Result<Published>>> {
        let mut mirror = self.mirror(&batch).await?;
        let mut open_orders: HashMap<(Address, i64), u64> = HashMap::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut inserts = Vec::new();
        let mut reopens = Vec::new();
        for publication in batch {
            let record = &publication.record;
            let key = (record.owner, i64::from(kind_code(record.order.kind())));
            if publication.cap != u64::MAX && !open_orders.contains_key(&key) {
                let open = self.count_open_orders(key.0, key.1, publication.cap).await?;
                open_orders.insert(key, open);
            }
            let open = open_orders.get(&key).copied().unwrap_or_default();
            let outcome = decide(&mut mirror, &publication, open, self.now);
            match &outcome {
                Ok(Published::Created(record)) => inserts.push(record.clone()),
                Ok(Published::Reopened(record)) => reopens.push(record.clone()),
                Ok(Published::Existing(_)) | Err(_) => {}
            }
            if let Ok(Published::Created(record) | Published::Reopened(record)) = &outcome {
                *open_orders.entry(key).or_default() += 1;
                self.emit(MarketEvent::order(OrderEventType::Published, record.view()));
            }
            outcomes.push(outcome);
        }
        for chunk in inserts.chunks(INSERT_CHUNK) {
            self.insert_orders(chunk).await?;
        }
        for record in &reopens {
            self.reopen_order(record).await?;
        }
        Ok(outcomes)
    }

    /// What [`decide`] needs to know of the orders, assets, consumed volumes and balances that
    /// `batch` concerns.
    async fn mirror(&mut self, batch: &[Publication]) -> Result<Mirror> {
        let hashes: HashSet<B256> = batch.iter().map(|p| p.record.hash).collect();
        let assets: HashSet<Address> =
            batch.iter().filter(|p| p.owner_of.is_some()).map(|p| p.record.order.asset()).collect();
        let accounts: HashSet<Address> =
            batch.iter().filter_map(|p| p.coverage.map(|c| c.0)).collect();
        let mut mirror = Mirror::default();
        let select = format!("SELECT {ORDER_COLUMNS} FROM orders");
        for sql in keyed(&select, "hash", hashes.iter().copied().map(Param::from)) {
            for row in self.fetch(&sql).await? {
                let record = order_from_row(&row)?;
                mirror.existing.insert(record.hash, record);
            }
        }
        let select = "SELECT asset, kind, owner FROM assets";
        for sql in keyed(select, "asset", assets.into_iter().map(Param::from)) {
            for row in self.fetch(&sql).await? {
                let asset = to_address(&row.bytes("asset")?)?;
                mirror.owners.insert((asset, row.int("kind")?), to_address(&row.bytes("owner")?)?);
            }
        }
        let select = "SELECT hash, amount, closed FROM consumed";
        for sql in keyed(select, "hash", hashes.into_iter().map(Param::from)) {
            for row in self.fetch(&sql).await? {
                let consumed = (to_word(&row.bytes("amount")?)?, row.int("closed")? != 0);
                mirror.consumed.insert(to_hash(&row.bytes("hash")?)?, consumed);
            }
        }
        let select = "SELECT address, balance FROM accounts";
        for sql in keyed(select, "address", accounts.into_iter().map(Param::from)) {
            for row in self.fetch(&sql).await? {
                let balance = to_word(&row.bytes("balance")?)?;
                mirror.balances.insert(to_address(&row.bytes("address")?)?, balance);
            }
        }
        Ok(mirror)
    }

    /// The open orders of `kind` (a code) that `owner` signed, counted up to `cap`.
    async fn count_open_orders(&mut self, owner: Address, kind: i64, cap: u64) -> Result<u64> {
        let sql = Sql::new(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM orders \
             WHERE owner = $1 AND kind = $2 AND status = 0 LIMIT $3) capped",
        )
        .arg(owner)
        .arg(kind)
        .arg(clamp_i64(U256::from(cap)));
        let row = self.fetch_one(&sql).await?;
        Ok(super::unsigned(row.int("n")?))
    }

    /// Inserts new orders, in one statement.
    async fn insert_orders(&mut self, records: &[OrderRecord]) -> Result<()> {
        let mut sql = Sql::default();
        let mut rows = Vec::with_capacity(records.len());
        for record in records {
            let placeholders: Vec<String> =
                insert_params(record).into_iter().map(|p| sql.bind(p)).collect();
            rows.push(format!("({})", placeholders.join(", ")));
        }
        sql.text = format!("INSERT INTO orders ({INSERT_COLUMNS}) VALUES {}", rows.join(", "));
        self.execute(&sql).await?;
        Ok(())
    }

    /// Puts a dead or unpublished order back in the book, as `record` has it now.
    async fn reopen_order(&mut self, record: &OrderRecord) -> Result<()> {
        let sql = Sql::new(
            "UPDATE orders SET status = 0, owner = $2, remaining = $3, sign_kind = $4, \
             published_at = $5, updated_at = $5, reason = NULL, body = $6, chain_block = NULL \
             WHERE hash = $1",
        )
        .arg(record.hash)
        .arg(record.owner)
        .arg(record.remaining)
        .arg(i64::from(record.signature.code()))
        .arg(self.now)
        .arg(record.order.to_value().to_string());
        self.execute(&sql).await?;
        Ok(())
    }

    /// Takes an open order out of the book, recording the authorization so that it cannot be
    /// replayed, and forgets the authorizations expired.
    pub(super) async fn unpublish(
        &mut self,
        hash: B256,
        authorization: B256,
        expiry: u64,
    ) -> Result<OrderRecord> {
        let used =
            Sql::new("SELECT expiry FROM used_authorizations WHERE digest = $1").arg(authorization);
        if self.fetch_optional(&used).await?.is_some() {
            return Err(Error::AuthorizationReplayed);
        }
        let Some(mut record) = self.order(hash).await? else {
            return Err(Error::NotFound(format!("order {hash}")));
        };
        if record.status != Status::Open {
            return Err(Error::NotOpen(record.status.name().to_owned()));
        }
        record.status = Status::Unpublished;
        record.updated_at = self.now;
        record.reason = None;
        self.update_order(&record).await?;
        let sql = Sql::new("INSERT INTO used_authorizations (digest, expiry) VALUES ($1, $2)")
            .arg(authorization)
            .arg(clamp_i64(U256::from(expiry)));
        self.execute(&sql).await?;
        let sql =
            Sql::new("DELETE FROM used_authorizations WHERE expiry < $1").arg(self.now / 1000);
        self.execute(&sql).await?;
        self.emit(MarketEvent::order(OrderEventType::Unpublished, record.view()));
        Ok(record)
    }
}
