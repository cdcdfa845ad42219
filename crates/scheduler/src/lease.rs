//! Which of a pool's scheduler processes acts: with a PostgreSQL database, several processes
//! may run one pool; the holder of the pool's lease ([`crate::store::Store::acquire_lease`]) is
//! the active one, the others wait as standbys and take the lease once it expires. On SQLite
//! one process runs the pool and is always active.
//!
//! The active instance acts (sends a transaction, hands out a task or an upload ticket, answers
//! workers) only while its lease is valid on its own monotonic clock, with a margin
//! ([`LeaseConfig`]); its writes are fenced by the lease's token, so that once another instance
//! took over, nothing it writes sticks. When it finds the lease gone it stops acting at once,
//! and its process stops (a supervisor starts it again, as a standby).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use alloy::primitives::Address;
use tracing::{info, warn};

use crate::{
    Error, Result,
    config::LeaseConfig,
    store::{Fence, Store},
};

/// This instance's standing in its pool.
#[derive(Debug)]
pub(crate) struct Lease {
    /// `None`: the only instance (SQLite), always active once ready.
    shared: Option<Shared>,
    /// Whether the instance caught up with the chain and serves.
    ready: AtomicBool,
}

#[derive(Debug)]
struct Shared {
    workerpool: Address,
    fence: Arc<Fence>,
    /// The URL workers reach this instance at ('' when unknown).
    url: String,
    config: LeaseConfig,
    /// Until when this instance may act, on its monotonic clock; `None` while it holds no
    /// lease.
    valid_until: Mutex<Option<Instant>>,
    /// The active instance's URL, as last read while waiting.
    active: Mutex<Option<String>>,
}

impl Lease {
    /// The only instance of its pool.
    pub(crate) fn single() -> Self {
        Self { shared: None, ready: AtomicBool::new(false) }
    }

    /// One of several instances of `workerpool`, reached at `url`, identified by `holder`.
    pub(crate) fn shared(
        workerpool: Address,
        holder: String,
        url: String,
        config: LeaseConfig,
    ) -> Self {
        Self {
            shared: Some(Shared {
                workerpool,
                fence: Fence::new(workerpool, holder),
                url,
                config,
                valid_until: Mutex::default(),
                active: Mutex::default(),
            }),
            ready: AtomicBool::new(false),
        }
    }

    /// The fence of the store's writes, when the instance shares its pool.
    pub(crate) fn fence(&self) -> Option<Arc<Fence>> {
        self.shared.as_ref().map(|shared| shared.fence.clone())
    }

    /// The instance caught up with the chain: it serves while it holds the lease.
    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Whether the lease is held, on this instance's monotonic clock (a single instance always
    /// holds it).
    pub(crate) fn is_held(&self) -> bool {
        match &self.shared {
            None => true,
            Some(shared) => {
                shared.valid_until.lock().expect("lock").is_some_and(|until| Instant::now() < until)
            }
        }
    }

    /// Whether this instance may act now: it caught up and holds a valid lease.
    pub(crate) fn is_active(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && self.is_held()
    }

    /// `Ok` when this instance may act now, else [`Error::Standby`] naming the active one.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_active() {
            return Ok(());
        }
        Err(Error::Standby { active: self.active_url() })
    }

    /// The active instance's URL, as last known.
    pub(crate) fn active_url(&self) -> Option<String> {
        let shared = self.shared.as_ref()?;
        if self.is_held() {
            return Some(shared.url.clone()).filter(|url| !url.is_empty());
        }
        shared.active.lock().expect("lock").clone()
    }

    /// `active`, `starting` (holding the lease, catching up) or `standby`.
    pub(crate) fn role(&self) -> &'static str {
        match (self.is_held(), self.ready.load(Ordering::SeqCst)) {
            (true, true) => "active",
            (true, false) => "starting",
            (false, _) => "standby",
        }
    }

    /// The fencing token held (0 for none, or a single instance).
    pub(crate) fn token(&self) -> i64 {
        self.shared.as_ref().map_or(0, |shared| shared.fence.token())
    }

    /// Stops acting at once (the database is not told).
    pub(crate) fn drop_lease(&self) {
        if let Some(shared) = &self.shared {
            *shared.valid_until.lock().expect("lock") = None;
        }
    }
}

/// Waits until this instance holds the pool's lease (at once for a single instance),
/// checking every [`LeaseConfig::poll`] while another holds it.
pub(crate) async fn acquire(lease: &Lease, store: &Store) -> Result<()> {
    let Some(shared) = &lease.shared else { return Ok(()) };
    let mut told: Option<String> = None;
    let waiting_since = Instant::now();
    loop {
        let sent = Instant::now();
        let holder = shared.fence.holder();
        match store.acquire_lease(shared.workerpool, holder, &shared.url, shared.config.ttl).await {
            Ok(Some(token)) => {
                shared.fence.set_token(token);
                *shared.valid_until.lock().expect("lock") =
                    Some(sent + shared.config.ttl - shared.config.margin);
                info!(
                    token,
                    waited_ms = waiting_since.elapsed().as_millis() as u64,
                    "lease acquired: this instance is now the pool's active scheduler"
                );
                return Ok(());
            }
            Ok(None) => match store.lease(shared.workerpool).await {
                Ok(Some(record)) => {
                    let url = Some(record.url.clone()).filter(|url| !url.is_empty());
                    if told.as_ref() != Some(&record.holder) {
                        info!(
                            active = url.as_deref().unwrap_or("(its URL unknown)"),
                            token = record.token,
                            "standby: another instance of the pool's scheduler is active"
                        );
                        told = Some(record.holder.clone());
                    }
                    *shared.active.lock().expect("lock") = url;
                }
                Ok(None) => {}
                Err(error) => warn!(%error, "could not read the pool's lease; retrying"),
            },
            Err(error) => warn!(%error, "could not take the pool's lease; retrying"),
        }
        tokio::time::sleep(shared.config.poll).await;
    }
}

/// Renews the lease while this instance holds it; returns (with [`Error::LeaseLost`]) when it
/// is lost, having stopped this instance's acting first. Never returns for a single instance.
pub(crate) async fn hold(lease: Arc<Lease>, store: Store) -> Result<()> {
    let Some(shared) = &lease.shared else { return std::future::pending().await };
    let holder = shared.fence.holder();
    loop {
        tokio::time::sleep(shared.config.renew_every).await;
        let sent = Instant::now();
        let token = shared.fence.token();
        match store.renew_lease(shared.workerpool, holder, token, shared.config.ttl).await {
            Ok(true) => {
                // Nobody took the lease since it was acquired (its token is unchanged): acting
                // on is safe, even after a pause that outlived the lease.
                *shared.valid_until.lock().expect("lock") =
                    Some(sent + shared.config.ttl - shared.config.margin);
            }
            Ok(false) => {
                lease.drop_lease();
                let why = match store.lease(shared.workerpool).await {
                    Ok(Some(record)) => format!(
                        "instance {} at {} took it with token {}",
                        record.holder,
                        if record.url.is_empty() { "an unknown URL" } else { &record.url },
                        record.token
                    ),
                    _ => "another instance took it".to_owned(),
                };
                warn!(token, %why, "the pool's lease is lost: this instance stops acting");
                return Err(Error::LeaseLost(why));
            }
            Err(error) if !lease.is_held() => {
                lease.drop_lease();
                warn!(token, %error, "the pool's lease ran out before it could be renewed");
                return Err(Error::LeaseLost(format!("it could not be renewed in time: {error}")));
            }
            Err(error) => warn!(%error, "could not renew the pool's lease; retrying"),
        }
    }
}

/// Gives the lease up (on a clean stop), so that a standby takes over at once.
pub(crate) async fn release(lease: &Lease, store: &Store) {
    let Some(shared) = &lease.shared else { return };
    let token = shared.fence.token();
    lease.drop_lease();
    if token == 0 {
        return;
    }
    match store.release_lease(shared.workerpool, shared.fence.holder(), token).await {
        Ok(true) => info!(token, "lease released: a standby may take over at once"),
        Ok(false) => info!(token, "the lease was taken over already: nothing to release"),
        Err(error) => warn!(%error, "could not release the pool's lease: it expires by itself"),
    }
}
