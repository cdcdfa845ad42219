//! Slots held per client: open connections, WebSocket streams.

use std::{
    collections::HashMap,
    fmt,
    net::IpAddr,
    sync::{Arc, Mutex},
};

/// Counts what each client holds open, up to a share per client and a total.
#[derive(Debug)]
pub struct ClientSlots {
    per_client: usize,
    total: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    by_client: HashMap<IpAddr, usize>,
    total: usize,
}

/// Why a slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRefusal {
    /// The client already holds its share.
    Client {
        /// Its share.
        limit: usize,
    },
    /// Every slot is taken.
    Total {
        /// The number of slots.
        limit: usize,
    },
}

impl fmt::Display for SlotRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client { limit } => write!(f, "this client already holds its {limit} slots"),
            Self::Total { limit } => write!(f, "all {limit} slots are taken"),
        }
    }
}

/// A slot; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<ClientSlots>,
    client: IpAddr,
}

impl ClientSlots {
    /// Slots for `total` holders at most, `per_client` of them for one client.
    pub fn new(per_client: usize, total: usize) -> Arc<Self> {
        Arc::new(Self { per_client, total, held: Mutex::new(Held::default()) })
    }

    /// Takes a slot for `client` (as grouped by [`crate::client_of`]).
    pub fn acquire(self: &Arc<Self>, client: IpAddr) -> Result<Slot, SlotRefusal> {
        let mut held = self.held.lock().expect("not poisoned");
        if held.total >= self.total {
            return Err(SlotRefusal::Total { limit: self.total });
        }
        let count = held.by_client.entry(client).or_default();
        if *count >= self.per_client {
            return Err(SlotRefusal::Client { limit: self.per_client });
        }
        *count += 1;
        held.total += 1;
        Ok(Slot { slots: self.clone(), client })
    }

    /// Slots held by `client`.
    pub fn held_by(&self, client: IpAddr) -> usize {
        self.held.lock().expect("not poisoned").by_client.get(&client).copied().unwrap_or(0)
    }

    /// Slots held by all clients.
    pub fn held(&self) -> usize {
        self.held.lock().expect("not poisoned").total
    }
}

impl Slot {
    /// The client holding it.
    pub fn client(&self) -> IpAddr {
        self.client
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        held.total = held.total.saturating_sub(1);
        if let Some(count) = held.by_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                held.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_its_share_and_no_more() {
        let slots = ClientSlots::new(2, 10);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = slots.acquire(a).unwrap();
        let _second = slots.acquire(a).unwrap();
        assert_eq!(slots.acquire(a).unwrap_err(), SlotRefusal::Client { limit: 2 });
        assert!(slots.acquire(b).is_ok(), "another client still gets one");
        drop(first);
        assert_eq!(slots.held_by(a), 1);
        assert!(slots.acquire(a).is_ok(), "a slot given back can be taken again");
    }

    #[test]
    fn the_total_caps_all_clients() {
        let slots = ClientSlots::new(5, 3);
        let held: Vec<Slot> =
            (1..=3u8).map(|i| slots.acquire(IpAddr::from([10, 0, 0, i])).unwrap()).collect();
        assert_eq!(
            slots.acquire("10.0.0.9".parse().unwrap()).unwrap_err(),
            SlotRefusal::Total { limit: 3 }
        );
        drop(held);
        assert_eq!(slots.held(), 0);
        assert_eq!(slots.held_by("10.0.0.1".parse().unwrap()), 0, "emptied clients are forgotten");
    }
}
