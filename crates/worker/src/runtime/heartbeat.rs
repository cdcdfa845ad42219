//! How a worker's heartbeats follow what its scheduler asks, within bounds: a scheduler is a
//! stranger.

use std::time::Duration;

/// The most often a worker sends heartbeats, whatever its scheduler asks.
const SHORTEST_HEARTBEAT: Duration = Duration::from_millis(100);
/// The least often a worker sends heartbeats, whatever its scheduler asks.
const LONGEST_HEARTBEAT: Duration = Duration::from_secs(300);

/// How often to send heartbeats to a scheduler that asked for one every `asked_secs` seconds
/// ([`PoolInfo::heartbeat_interval_secs`]), kept within [`SHORTEST_HEARTBEAT`] and
/// [`LONGEST_HEARTBEAT`]: a negative or too short period gives the shortest, a too long or
/// infinite one the longest, and a value that is not a number the longest (the least load on
/// a scheduler that says nothing meaningful).
pub(crate) fn heartbeat_period(asked_secs: f64) -> Duration {
    match Duration::try_from_secs_f64(asked_secs) {
        Ok(period) => period.clamp(SHORTEST_HEARTBEAT, LONGEST_HEARTBEAT),
        Err(_) if asked_secs < 0.0 => SHORTEST_HEARTBEAT,
        Err(_) => LONGEST_HEARTBEAT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_period_a_scheduler_asks_is_bounded() {
        let ms = Duration::from_millis;
        assert_eq!(heartbeat_period(0.2), ms(200));
        assert_eq!(heartbeat_period(2.0), ms(2_000));
        assert_eq!(heartbeat_period(0.0), SHORTEST_HEARTBEAT);
        assert_eq!(heartbeat_period(-0.0), SHORTEST_HEARTBEAT);
        assert_eq!(heartbeat_period(0.001), SHORTEST_HEARTBEAT);
        assert_eq!(heartbeat_period(-5.0), SHORTEST_HEARTBEAT);
        assert_eq!(heartbeat_period(f64::NEG_INFINITY), SHORTEST_HEARTBEAT);
        assert_eq!(heartbeat_period(86_400.0), LONGEST_HEARTBEAT);
        assert_eq!(heartbeat_period(1e300), LONGEST_HEARTBEAT);
        assert_eq!(heartbeat_period(f64::INFINITY), LONGEST_HEARTBEAT);
        assert_eq!(heartbeat_period(f64::NAN), LONGEST_HEARTBEAT);
        // A scheduler that still answered in milliseconds gets a heartbeat every 5 minutes,
        // not one every 2000 s.
        assert_eq!(heartbeat_period(2_000.0), LONGEST_HEARTBEAT);
    }
}
