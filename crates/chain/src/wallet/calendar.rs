//! UTC calendar arithmetic for keystore file names: a point in time as geth writes it, with the
//! proleptic Gregorian date of a day count and no time-zone data.

use std::time::{SystemTime, UNIX_EPOCH};

/// The time as geth writes it in keystore names: `2024-05-08T07-50-55.123456789Z`.
pub(super) fn utc_timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}-{:02}-{:02}.{:09}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_nanos()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so that leap days end each 4-, 100- and 400-year cycle.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_geth_timestamps() {
        let at = |secs: u64, nanos: u32| {
            utc_timestamp(UNIX_EPOCH + std::time::Duration::new(secs, nanos))
        };
        assert_eq!(at(0, 0), "1970-01-01T00-00-00.000000000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00-00-00.000000005Z");
        assert_eq!(at(1_778_226_655, 527_285_345), "2026-05-08T07-50-55.527285345Z");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28T23-59-59.000000000Z");
    }
}
