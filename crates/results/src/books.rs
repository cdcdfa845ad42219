//! Short-lived, bounded in-memory records: the signed requests already seen (to refuse
//! replays) and the download challenges issued. Time is passed in (unix seconds), so the
//! rules are tested without a clock.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use alloy::primitives::B256;

use crate::error::{Error, Result};

/// Signed requests seen recently, each remembered until its timestamp is too old to be
/// accepted anyway.
#[derive(Debug)]
pub(crate) struct ReplayGuard {
    seen: Mutex<HashMap<B256, u64>>,
    capacity: usize,
}

impl ReplayGuard {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { seen: Mutex::default(), capacity }
    }

    /// Records the request `id` (its signing hash), remembered until `forget_at`; refuses it if
    /// it was already seen.
    pub(crate) fn record(&self, id: B256, forget_at: u64, now: u64) -> Result<()> {
        let mut seen = self.seen.lock().expect("replay guard lock");
        if seen.get(&id).is_some_and(|until| *until >= now) {
            return Err(Error::ReplayedRequest);
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= self.capacity {
                return Err(Error::Busy { what: "too many recent requests" });
            }
        }
        seen.insert(id, forget_at);
        Ok(())
    }
}

/// A download challenge: the task it is for and when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Challenge {
    task_id: B256,
    expires_at: u64,
}

/// Download challenges issued and not used yet.
#[derive(Debug)]
pub(crate) struct ChallengeBook {
    pending: Mutex<HashMap<B256, Challenge>>,
    capacity: usize,
    ttl: u64,
}

impl ChallengeBook {
    pub(crate) fn new(capacity: usize, ttl: u64) -> Self {
        Self { pending: Mutex::default(), capacity, ttl }
    }

    /// Issues `nonce` for `task_id`; returns its expiry.
    pub(crate) fn issue(&self, task_id: B256, nonce: B256, now: u64) -> Result<u64> {
        let mut pending = self.pending.lock().expect("challenge book lock");
        if pending.len() >= self.capacity {
            pending.retain(|_, challenge| challenge.expires_at > now);
            if pending.len() >= self.capacity {
                return Err(Error::Busy { what: "too many pending download challenges" });
            }
        }
        let expires_at = now + self.ttl;
        pending.insert(nonce, Challenge { task_id, expires_at });
        Ok(expires_at)
    }

    /// Uses `nonce` for `task_id`: it is gone afterwards, whatever the outcome.
    pub(crate) fn redeem(&self, task_id: B256, nonce: B256, now: u64) -> Result<()> {
        let challenge = self.pending.lock().expect("challenge book lock").remove(&nonce);
        match challenge {
            Some(challenge) if challenge.task_id != task_id => Err(Error::UnknownChallenge),
            Some(challenge) if challenge.expires_at <= now => {
                Err(Error::ExpiredChallenge { expired_at: challenge.expires_at })
            }
            Some(_) => Ok(()),
            None => Err(Error::UnknownChallenge),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.lock().expect("challenge book lock").len()
    }
}

/// Tasks whose upload is being processed right now.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    tasks: Mutex<HashSet<B256>>,
}

impl InFlight {
    /// Claims `task_id` until the guard is dropped.
    pub(crate) fn claim(&self, task_id: B256) -> Result<InFlightGuard<'_>> {
        if !self.tasks.lock().expect("in-flight lock").insert(task_id) {
            return Err(Error::UploadInProgress { task_id });
        }
        Ok(InFlightGuard { owner: self, task_id })
    }
}

/// Releases a task claimed with [`InFlight::claim`].
#[derive(Debug)]
pub(crate) struct InFlightGuard<'a> {
    owner: &'a InFlight,
    task_id: B256,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.owner.tasks.lock().expect("in-flight lock").remove(&self.task_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_are_refused_until_forgotten() {
        let guard = ReplayGuard::new(2);
        let (a, b, c) = (B256::repeat_byte(1), B256::repeat_byte(2), B256::repeat_byte(3));
        guard.record(a, 100, 10).unwrap();
        assert!(matches!(guard.record(a, 100, 50), Err(Error::ReplayedRequest)));
        guard.record(b, 20, 10).unwrap();
        // Full: nothing expired yet.
        assert!(matches!(guard.record(c, 100, 15), Err(Error::Busy { .. })));
        // b is forgotten after its time; a is still remembered.
        guard.record(c, 100, 21).unwrap();
        assert!(matches!(guard.record(a, 100, 22), Err(Error::ReplayedRequest)));
    }

    #[test]
    fn challenges_are_single_use_bound_to_their_task_and_expire() {
        let book = ChallengeBook::new(2, 60);
        let (task, other) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let (n1, n2, n3) = (B256::repeat_byte(11), B256::repeat_byte(12), B256::repeat_byte(13));
        assert_eq!(book.issue(task, n1, 1_000).unwrap(), 1_060);
        book.redeem(task, n1, 1_010).unwrap();
        assert!(matches!(book.redeem(task, n1, 1_011), Err(Error::UnknownChallenge)));

        book.issue(task, n2, 1_000).unwrap();
        assert!(matches!(book.redeem(other, n2, 1_001), Err(Error::UnknownChallenge)));
        assert!(matches!(book.redeem(task, n2, 1_002), Err(Error::UnknownChallenge)), "used up");

        book.issue(task, n3, 1_000).unwrap();
        assert!(matches!(
            book.redeem(task, n3, 1_060),
            Err(Error::ExpiredChallenge { expired_at: 1_060 })
        ));
        assert_eq!(book.len(), 0);
    }

    #[test]
    fn challenge_book_is_bounded() {
        let book = ChallengeBook::new(1, 60);
        book.issue(B256::ZERO, B256::repeat_byte(1), 0).unwrap();
        assert!(matches!(
            book.issue(B256::ZERO, B256::repeat_byte(2), 10),
            Err(Error::Busy { .. })
        ));
        book.issue(B256::ZERO, B256::repeat_byte(2), 60).unwrap(); // the first expired
    }

    #[test]
    fn in_flight_claims_are_exclusive_and_released() {
        let in_flight = InFlight::default();
        let guard = in_flight.claim(B256::ZERO).unwrap();
        assert!(matches!(in_flight.claim(B256::ZERO), Err(Error::UploadInProgress { .. })));
        drop(guard);
        in_flight.claim(B256::ZERO).unwrap();
    }
}
