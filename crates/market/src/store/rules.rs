//! The rules of the book, apart from any SQL: when a publication is refused, what remains of
//! an order once the chain consumed part of it, and when a balance stops covering an order.
//!
//! The SQL backends read what these rules need ([`Mirror`], an order row, a balance) inside
//! their write transaction, ask the rules, and write what the rules decided.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, U256};
use poco_primitives::OrderKind;

use crate::{
    error::{Error, Result},
    model::{OrderEventType, OrderRecord, Status, kind_code, kind_name},
    store::{Publication, Published},
};

/// The refusal when an asset's mirrored owner is not the signer, or the asset is unknown.
pub(super) fn owner_refusal(publication: &Publication, mirrored: Option<Address>) -> Option<Error> {
    let expected = publication.owner_of?;
    let asset = publication.record.order.asset();
    match mirrored {
        None => Some(Error::AssetNotRegistered {
            kind: kind_name(publication.record.order.kind()),
            asset,
        }),
        Some(owner) if owner != expected => {
            Some(Error::NotOwner { signer: expected, asset, owner })
        }
        Some(_) => None,
    }
}

/// The refusal when a free balance does not cover an order's `per_task × remaining`.
pub(super) fn coverage_refusal(
    kind: OrderKind,
    account: Address,
    per_task: U256,
    remaining: U256,
    balance: U256,
) -> Option<Error> {
    let needed = per_task.saturating_mul(remaining);
    (balance < needed).then(|| Error::InsufficientStake {
        account,
        needed,
        available: balance,
        what: match kind {
            OrderKind::Workerpool => "the scheduler stake, 30% of the price, for each task left",
            _ => "the sum of the maximum prices for each task left",
        },
    })
}

/// The status and event after an order's consumed volume becomes `consumed` (or it is
/// closed); `None` when nothing changes.
pub(super) fn after_consumption(
    record: &OrderRecord,
    consumed: U256,
    closed: bool,
) -> Option<(Status, U256, OrderEventType)> {
    let remaining =
        if closed { U256::ZERO } else { record.order.volume().saturating_sub(consumed) };
    let status = match record.status {
        Status::Open if closed => Status::Cancelled,
        Status::Open if remaining.is_zero() => Status::Filled,
        other => other,
    };
    if status == record.status && remaining == record.remaining {
        return None;
    }
    let event = if status == record.status {
        OrderEventType::Updated
    } else {
        OrderEventType::for_status(status)
    };
    Some((status, remaining, event))
}

/// What the mirror says of an order once a rollback brought it back to the state of an earlier
/// block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RolledBack {
    /// Whether the chain's change that gave the order its current status was undone.
    pub(super) undone: bool,
    /// The order's consumed volume and closing, if the chain ever touched it.
    pub(super) consumed: Option<(U256, bool)>,
    /// The mirrored owner of the order's asset (apps, datasets, workerpools; `None`: not
    /// registered).
    pub(super) owner: Option<Address>,
    /// The cached free balance of the account that covers it (workerpool and request orders).
    pub(super) balance: Option<U256>,
}

/// An order's status, remaining volume and reason after a rollback; `None` when nothing
/// changes. A status the chain gave the order at a replaced block is undone (the order was
/// open before), an unpublished order stays so, and an order open again is checked as the
/// chain at the common block would check it: closed, consumed in full, asset owned by its
/// signer, stake covered.
pub(super) fn after_rollback(
    record: &OrderRecord,
    mirror: RolledBack,
) -> Option<(Status, U256, Option<String>)> {
    if record.status == Status::Unpublished {
        return None;
    }
    let closed = mirror.consumed.is_some_and(|(_, closed)| closed);
    let remaining = match mirror.consumed {
        Some((_, true)) => U256::ZERO,
        Some((consumed, false)) => record.order.volume().saturating_sub(consumed),
        None => record.order.volume(),
    };
    let (mut status, mut reason) =
        if mirror.undone { (Status::Open, None) } else { (record.status, record.reason.clone()) };
    if status == Status::Open {
        let kind = record.order.kind();
        let needed = record.order.coverage_per_task();
        if closed {
            status = Status::Cancelled;
            reason = Some("closed on-chain by its owner".into());
        } else if remaining.is_zero() {
            status = Status::Filled;
        } else if kind != OrderKind::Request && mirror.owner != Some(record.owner) {
            status = Status::Dead;
            let asset = record.order.asset();
            reason = Some(match mirror.owner {
                None => format!(
                    "after a chain reorganisation, the {} {asset} is not registered",
                    kind_name(kind)
                ),
                Some(owner) => format!(
                    "after a chain reorganisation, the {} {asset} belongs to {owner}: its orders \
                     signed by {} are void",
                    kind_name(kind),
                    record.owner
                ),
            });
        } else if let (Some(per_task), Some(balance)) = (needed, mirror.balance)
            && let Some(refusal) =
                coverage_refusal(kind, record.owner, per_task, remaining, balance)
        {
            status = Status::Dead;
            reason = Some(format!("no longer covered: {refusal}"));
        }
    }
    if status == Status::Open {
        reason = None;
    }
    let unchanged =
        status == record.status && remaining == record.remaining && reason == record.reason;
    (!unchanged).then_some((status, remaining, reason))
}

/// What a publication batch knows of the mirror and the book.
#[derive(Debug, Default)]
pub(super) struct Mirror {
    /// Orders already stored (and those accepted earlier in the batch).
    pub(super) existing: HashMap<B256, OrderRecord>,
    /// Asset owners by (asset, kind code).
    pub(super) owners: HashMap<(Address, i64), Address>,
    /// Consumed volume and closed flag by order hash.
    pub(super) consumed: HashMap<B256, (U256, bool)>,
    /// Cached free balances.
    pub(super) balances: HashMap<Address, U256>,
}

/// Decides one publication against the mirror, given the signer's `open_orders` of its kind:
/// the outcome, whose record is the one to write. An accepted order joins
/// [`Mirror::existing`], so that the rest of the batch sees it.
pub(super) fn decide(
    mirror: &mut Mirror,
    publication: &Publication,
    open_orders: u64,
    now: i64,
) -> Result<Published> {
    let mut record = publication.record.clone();
    let existing = mirror.existing.get(&record.hash);
    if let Some(existing) = existing
        && !existing.status.can_reopen()
    {
        return Ok(Published::Existing(existing.clone()));
    }
    let reopen = existing.is_some();
    let kind = record.order.kind();
    if publication.owner_of.is_some() {
        let owner = mirror.owners.get(&(record.order.asset(), i64::from(kind_code(kind)))).copied();
        if let Some(refusal) = owner_refusal(publication, owner) {
            return Err(refusal);
        }
    }
    let remaining = match mirror.consumed.get(&record.hash) {
        Some((_, true)) => U256::ZERO,
        Some((consumed, false)) => record.order.volume().saturating_sub(*consumed),
        None => record.order.volume(),
    };
    if remaining.is_zero() {
        return Err(Error::NoVolumeLeft);
    }
    if open_orders >= publication.cap {
        return Err(Error::OpenOrderCap {
            owner: record.owner,
            kind: kind_name(kind),
            limit: publication.cap,
        });
    }
    if let Some((account, per_task)) = publication.coverage {
        let balance = mirror.balances.get(&account).copied().unwrap_or_default();
        if let Some(refusal) = coverage_refusal(kind, account, per_task, remaining, balance) {
            return Err(refusal);
        }
    }
    record.status = Status::Open;
    record.remaining = remaining;
    record.published_at = now;
    record.updated_at = now;
    record.reason = None;
    mirror.existing.insert(record.hash, record.clone());
    Ok(if reopen { Published::Reopened(record) } else { Published::Created(record) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AnySigned, SignatureKind};
    use poco_primitives::{AppOrder, Signed};

    fn record(volume: u64, remaining: u64, status: Status) -> OrderRecord {
        OrderRecord {
            hash: Default::default(),
            order: AnySigned::App(Signed::presigned(AppOrder {
                volume: U256::from(volume),
                ..Default::default()
            })),
            status,
            remaining: U256::from(remaining),
            owner: Address::ZERO,
            signature: SignatureKind::Presigned,
            published_at: 0,
            updated_at: 0,
            reason: None,
        }
    }

    #[test]
    fn consumption_updates_fills_and_cancels() {
        let open = record(10, 10, Status::Open);
        assert_eq!(
            after_consumption(&open, U256::from(3), false),
            Some((Status::Open, U256::from(7), OrderEventType::Updated))
        );
        assert_eq!(
            after_consumption(&open, U256::from(10), false),
            Some((Status::Filled, U256::ZERO, OrderEventType::Filled))
        );
        assert_eq!(
            after_consumption(&open, U256::from(3), true),
            Some((Status::Cancelled, U256::ZERO, OrderEventType::Cancelled))
        );
        assert_eq!(after_consumption(&record(10, 7, Status::Open), U256::from(3), false), None);
        let dead = record(10, 10, Status::Dead);
        assert_eq!(
            after_consumption(&dead, U256::from(4), false),
            Some((Status::Dead, U256::from(6), OrderEventType::Updated))
        );
    }

    fn rolled_back(undone: bool, consumed: Option<(u64, bool)>) -> RolledBack {
        RolledBack {
            undone,
            consumed: consumed.map(|(amount, closed)| (U256::from(amount), closed)),
            owner: Some(Address::ZERO),
            balance: None,
        }
    }

    #[test]
    fn a_rollback_reopens_what_replaced_blocks_filled_cancelled_or_killed() {
        let filled = record(10, 0, Status::Filled);
        assert_eq!(
            after_rollback(&filled, rolled_back(true, Some((4, false)))),
            Some((Status::Open, U256::from(6), None)),
            "a match undone gives the order its volume back"
        );
        assert_eq!(
            after_rollback(&filled, rolled_back(true, None)),
            Some((Status::Open, U256::from(10), None)),
            "never consumed at the common block"
        );
        let mut cancelled = record(10, 0, Status::Cancelled);
        cancelled.reason = Some("closed on-chain by its owner".into());
        assert_eq!(
            after_rollback(&cancelled, rolled_back(true, Some((2, false)))),
            Some((Status::Open, U256::from(8), None))
        );
        assert_eq!(
            after_rollback(&cancelled, rolled_back(false, Some((2, true)))),
            None,
            "closed before the fork: it stays cancelled"
        );
        let mut dead = record(10, 10, Status::Dead);
        dead.reason = Some("no longer covered".into());
        assert_eq!(
            after_rollback(&dead, rolled_back(true, None)),
            Some((Status::Open, U256::from(10), None))
        );
        assert_eq!(
            after_rollback(&dead, rolled_back(false, Some((3, false)))),
            Some((Status::Dead, U256::from(7), dead.reason.clone())),
            "dead before the fork: only its volume follows the chain"
        );
        let unpublished = record(10, 10, Status::Unpublished);
        assert_eq!(after_rollback(&unpublished, rolled_back(true, Some((3, false)))), None);
    }

    #[test]
    fn an_order_open_again_is_checked_as_at_the_common_block() {
        let filled = record(10, 0, Status::Filled);
        let still_filled = rolled_back(true, Some((10, false)));
        assert_eq!(
            after_rollback(&filled, still_filled),
            None,
            "filled before the fork: nothing changes"
        );
        let mut foreign = rolled_back(true, Some((4, false)));
        foreign.owner = Some(Address::repeat_byte(9));
        let (status, remaining, reason) = after_rollback(&filled, foreign).unwrap();
        assert_eq!((status, remaining), (Status::Dead, U256::from(6)));
        assert!(reason.unwrap().contains("belongs to"));
        let mut unknown = rolled_back(true, None);
        unknown.owner = None;
        let (status, _, reason) = after_rollback(&filled, unknown).unwrap();
        assert_eq!(status, Status::Dead);
        assert!(reason.unwrap().contains("not registered"));
        let open = record(10, 10, Status::Open);
        assert_eq!(
            after_rollback(&open, rolled_back(false, Some((10, true)))),
            Some((Status::Cancelled, U256::ZERO, Some("closed on-chain by its owner".into())))
        );
    }

    #[test]
    fn coverage_is_per_task_times_remaining() {
        let account = Address::repeat_byte(1);
        assert!(
            coverage_refusal(
                OrderKind::Request,
                account,
                U256::from(5),
                U256::from(3),
                U256::from(15)
            )
            .is_none()
        );
        let refusal = coverage_refusal(
            OrderKind::Workerpool,
            account,
            U256::from(5),
            U256::from(3),
            U256::from(14),
        )
        .unwrap();
        assert_eq!(refusal.code(), "insufficient_stake");
        assert!(refusal.to_string().contains("needs 15"), "{refusal}");
    }
}
