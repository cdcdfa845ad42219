//! Short-lived, bounded in-memory records: the signed requests already seen (to refuse
//! replays) and the download challenges used (issuing one records nothing). Time is passed in (unix seconds), so the
//! rules are tested without a clock.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use alloy::primitives::B256;
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::error::{Error, Result};

/// Signed requests seen recently, each remembered until its timestamp is too old to be
/// accepted anyway. Only authenticated requests are recorded (the signer is entitled to what
/// it asks: the chosen uploader, the beneficiary, the deal's scheduler), so strangers cannot
/// fill it.
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
                warn!(
                    capacity = self.capacity,
                    "too many authenticated requests remembered: refusing until some expire"
                );
                return Err(Error::Busy { what: "too many recent requests" });
            }
        }
        seen.insert(id, forget_at);
        Ok(())
    }
}

/// Bytes of a challenge nonce holding its expiry (unix seconds, big endian).
const EXPIRY_BYTES: usize = 8;
/// Bytes of a challenge nonce holding its random salt.
const SALT_BYTES: usize = 8;
/// Bytes of a challenge nonce holding its MAC (the first bytes of the HMAC-SHA256).
const MAC_BYTES: usize = 32 - EXPIRY_BYTES - SALT_BYTES;
/// The domain tag of the challenge MAC's message.
const CHALLENGE_MAC_TAG: &[u8] = b"poco-download-challenge";

/// The secret key download challenges are minted with (32 bytes). Its `Debug` hides it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChallengeKey(pub [u8; 32]);

impl ChallengeKey {
    /// A key from the operating system's random source.
    pub fn random() -> Self {
        Self(random())
    }
}

impl std::fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeKey(<hidden>)")
    }
}

/// Download challenges that cost nothing to issue: a nonce is
/// `expiry (8 bytes) ‖ salt (8 random bytes) ‖ MAC (16 bytes)`, the MAC being the first 16
/// bytes of `HMAC-SHA256(key, "poco-download-challenge" ‖ taskid ‖ expiry ‖ salt)`. Issuing
/// one stores nothing, so strangers asking for challenges fill no book; the nonce itself
/// proves the store issued it, for that task, and until when.
///
/// A nonce is remembered as used only once it was redeemed with a valid signature of the
/// task's beneficiary (or the nonce of a public result's request): that record is bounded by
/// `max_used`, and only those who may read a result can add to it.
pub(crate) struct Challenges {
    key: ChallengeKey,
    ttl: u64,
    used: Mutex<HashMap<B256, u64>>,
    max_used: usize,
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenges")
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .field("used", &self.used_count())
            .field("max_used", &self.max_used)
            .finish()
    }
}

impl Challenges {
    pub(crate) fn new(key: ChallengeKey, ttl: u64, max_used: usize) -> Self {
        Self { key, ttl, used: Mutex::default(), max_used }
    }

    /// A new nonce for `task_id`, and when it expires. Nothing is stored.
    pub(crate) fn issue(&self, task_id: B256, now: u64) -> (B256, u64) {
        let expires_at = now.saturating_add(self.ttl);
        let salt: [u8; SALT_BYTES] = random();
        (self.nonce(task_id, expires_at, salt), expires_at)
    }

    fn nonce(&self, task_id: B256, expires_at: u64, salt: [u8; SALT_BYTES]) -> B256 {
        let expiry = expires_at.to_be_bytes();
        let mut message = Vec::with_capacity(CHALLENGE_MAC_TAG.len() + 32 + 16);
        message.extend_from_slice(CHALLENGE_MAC_TAG);
        message.extend_from_slice(task_id.as_slice());
        message.extend_from_slice(&expiry);
        message.extend_from_slice(&salt);
        let mac = hmac_sha256(&self.key.0, &message);
        let mut nonce = [0u8; 32];
        nonce[..EXPIRY_BYTES].copy_from_slice(&expiry);
        nonce[EXPIRY_BYTES..EXPIRY_BYTES + SALT_BYTES].copy_from_slice(&salt);
        nonce[EXPIRY_BYTES + SALT_BYTES..].copy_from_slice(&mac[..MAC_BYTES]);
        B256::from(nonce)
    }

    /// Checks that this store issued `nonce` for `task_id` and that it has not expired (it
    /// may still have been used: see [`Self::use_once`]). Stores nothing.
    pub(crate) fn verify(&self, task_id: B256, nonce: B256, now: u64) -> Result<()> {
        let mut expiry = [0u8; EXPIRY_BYTES];
        expiry.copy_from_slice(&nonce[..EXPIRY_BYTES]);
        let mut salt = [0u8; SALT_BYTES];
        salt.copy_from_slice(&nonce[EXPIRY_BYTES..EXPIRY_BYTES + SALT_BYTES]);
        let expires_at = u64::from_be_bytes(expiry);
        let expected = self.nonce(task_id, expires_at, salt);
        // Compared without an early exit, so that timing tells nothing about the MAC.
        let differences = expected.iter().zip(nonce.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differences != 0 {
            return Err(Error::UnknownChallenge);
        }
        if expires_at <= now {
            return Err(Error::ExpiredChallenge { expired_at: expires_at });
        }
        Ok(())
    }

    /// Records a verified `nonce` as used, once its redeemer was authenticated: refuses a nonce
    /// already used.
    pub(crate) fn use_once(&self, nonce: B256, now: u64) -> Result<()> {
        let expires_at = u64::from_be_bytes(nonce[..EXPIRY_BYTES].try_into().expect("8 bytes"));
        let mut used = self.used.lock().expect("used challenges lock");
        if used.contains_key(&nonce) {
            return Err(Error::UnknownChallenge);
        }
        if used.len() >= self.max_used {
            used.retain(|_, until| *until > now);
            if used.len() >= self.max_used {
                warn!(
                    max_used = self.max_used,
                    "too many download challenges used recently: refusing downloads until some \
                     expire"
                );
                return Err(Error::Busy { what: "too many download challenges used recently" });
            }
        }
        used.insert(nonce, expires_at);
        Ok(())
    }

    /// How many used nonces are remembered.
    pub(crate) fn used_count(&self) -> usize {
        self.used.lock().expect("used challenges lock").len()
    }
}

/// HMAC-SHA256 (RFC 2104) with a 32-byte key.
fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut inner_pad = [0x36u8; 64];
    let mut outer_pad = [0x5cu8; 64];
    for (i, byte) in key.iter().enumerate() {
        inner_pad[i] ^= byte;
        outer_pad[i] ^= byte;
    }
    let inner = Sha256::new().chain_update(inner_pad).chain_update(message).finalize();
    Sha256::new().chain_update(outer_pad).chain_update(inner).finalize().into()
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

/// Random bytes from the operating system.
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes
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

    fn challenges() -> Challenges {
        Challenges::new(ChallengeKey([7; 32]), 60, 3)
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2: the key "Jefe", zero-padded (as HMAC pads every short key).
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac_sha256(&key, b"what do ya want for nothing?");
        assert_eq!(
            B256::from(mac).to_string(),
            "0x5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn issuing_a_challenge_stores_nothing() {
        let book = challenges();
        let task = B256::repeat_byte(1);
        let mut nonces = HashSet::new();
        for _ in 0..1_000 {
            let (nonce, expires_at) = book.issue(task, 1_000);
            assert_eq!(expires_at, 1_060);
            book.verify(task, nonce, 1_010).unwrap();
            nonces.insert(nonce);
        }
        assert_eq!(nonces.len(), 1_000, "every nonce is new");
        assert_eq!(book.used_count(), 0);
    }

    #[test]
    fn a_forged_challenge_is_refused() {
        let book = challenges();
        let task = B256::repeat_byte(1);
        let (nonce, _) = book.issue(task, 1_000);
        // Any flipped bit: in the expiry (a longer life), the salt, or the MAC.
        for byte in [7, 12, 31] {
            let mut forged = nonce;
            forged.0[byte] ^= 1;
            assert!(matches!(book.verify(task, forged, 1_001), Err(Error::UnknownChallenge)));
        }
        // A nonce made up, or minted by another store's key.
        assert!(matches!(
            book.verify(task, B256::repeat_byte(9), 1_001),
            Err(Error::UnknownChallenge)
        ));
        let other_store = Challenges::new(ChallengeKey([8; 32]), 60, 3);
        let (theirs, _) = other_store.issue(task, 1_000);
        assert!(matches!(book.verify(task, theirs, 1_001), Err(Error::UnknownChallenge)));
        // The same key (several instances sharing one) accepts it.
        let (ours, _) = Challenges::new(ChallengeKey([7; 32]), 60, 3).issue(task, 1_000);
        book.verify(task, ours, 1_001).unwrap();
    }

    #[test]
    fn a_challenge_for_another_task_is_refused() {
        let book = challenges();
        let (nonce, _) = book.issue(B256::repeat_byte(1), 1_000);
        assert!(matches!(
            book.verify(B256::repeat_byte(2), nonce, 1_001),
            Err(Error::UnknownChallenge)
        ));
    }

    #[test]
    fn an_expired_challenge_is_refused() {
        let book = challenges();
        let task = B256::repeat_byte(1);
        let (nonce, expires_at) = book.issue(task, 1_000);
        book.verify(task, nonce, expires_at - 1).unwrap();
        assert!(matches!(
            book.verify(task, nonce, expires_at),
            Err(Error::ExpiredChallenge { expired_at: 1_060 })
        ));
    }

    #[test]
    fn a_challenge_is_used_once_and_the_record_is_bounded() {
        let book = challenges();
        let task = B256::repeat_byte(1);
        let (nonce, _) = book.issue(task, 1_000);
        book.verify(task, nonce, 1_001).unwrap();
        book.use_once(nonce, 1_001).unwrap();
        assert!(matches!(book.use_once(nonce, 1_002), Err(Error::UnknownChallenge)), "reused");
        for _ in 0..2 {
            book.use_once(book.issue(task, 1_000).0, 1_001).unwrap();
        }
        // Full (3 used, none expired): a fourth waits until some expire.
        let (fourth, _) = book.issue(task, 1_050);
        assert!(matches!(book.use_once(fourth, 1_002), Err(Error::Busy { .. })));
        book.use_once(fourth, 1_060).unwrap();
        assert_eq!(book.used_count(), 1, "the expired ones were forgotten");
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
