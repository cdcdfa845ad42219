//! Token-bucket rate limits, per client (IPv4 address, IPv6 /64) and per order owner.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Buckets beyond which full ones are forgotten.
const MAX_BUCKETS: usize = 100_000;

/// A token bucket per key: `burst` tokens, refilled at `rate` per second; a request takes one.
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        Self { rate, burst, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `key`, or says how long until one is available.
    pub(crate) fn check(&self, key: &K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// Says whether `key` has a token, without taking it.
    pub(crate) fn peek(&self, key: &K) -> Result<(), Duration> {
        self.peek_at(key, Instant::now())
    }

    fn peek_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.burst.is_infinite() || self.rate.is_infinite() {
            return Ok(());
        }
        let buckets = self.buckets.lock().expect("not poisoned");
        let Some(bucket) = buckets.get(key) else { return Ok(()) };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        let tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        if tokens >= 1.0 {
            Ok(())
        } else if self.rate <= 0.0 {
            Err(Duration::from_secs(3_600))
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }

    fn check_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.burst.is_infinite() || self.rate.is_infinite() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("not poisoned");
        if buckets.len() >= MAX_BUCKETS {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: self.burst, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else if self.rate <= 0.0 {
            Err(Duration::from_secs(3_600))
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(2.0, 3.0);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(&1, start).is_ok());
        }
        let wait = limiter.check_at(&1, start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert!(limiter.check_at(&2, start).is_ok(), "keys are independent");
        assert!(limiter.check_at(&1, start + Duration::from_millis(500)).is_ok());
        assert!(limiter.check_at(&1, start + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn peeking_takes_no_token() {
        let limiter = RateLimiter::new(1.0, 2.0);
        let start = Instant::now();
        for _ in 0..10 {
            assert!(limiter.peek_at(&1, start).is_ok());
        }
        assert!(limiter.check_at(&1, start).is_ok());
        assert!(limiter.check_at(&1, start).is_ok());
        assert!(limiter.peek_at(&1, start).is_err(), "an empty bucket is seen empty");
        assert!(limiter.peek_at(&1, start + Duration::from_secs(1)).is_ok(), "and refills");
    }

    #[test]
    fn infinite_rates_never_limit() {
        let limiter = RateLimiter::new(f64::INFINITY, f64::INFINITY);
        for _ in 0..10_000 {
            assert!(limiter.check(&1).is_ok());
        }
    }
}
