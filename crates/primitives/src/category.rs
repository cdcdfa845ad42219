//! Categories: the time budget of a deal.
//!
//! A category fixes the time reference `T` (`workClockTimeRef`, in seconds). Every deadline of
//! a deal counts from the deal's start (its match) in multiples of `T`: contributions close at
//! `start + 7T`, the reveal window lasts `2T` from consensus, and a task must be finalized
//! before `start + 10T` (see [`crate::deal::Deal`]). The contracts create the five default
//! categories below at deployment; the owner may append others, never edit or delete them.

use serde::{Deserialize, Serialize};

/// Contributions close at `start + CONTRIBUTION_DEADLINE_RATIO × T`.
pub const CONTRIBUTION_DEADLINE_RATIO: u64 = 7;
/// Reveals close at `consensus time + REVEAL_DEADLINE_RATIO × T`.
pub const REVEAL_DEADLINE_RATIO: u64 = 2;
/// Finalization closes at `start + FINAL_DEADLINE_RATIO × T`.
pub const FINAL_DEADLINE_RATIO: u64 = 10;
/// The largest time reference the contracts accept (`InvalidTimeRef` above it), in seconds.
pub const MAX_TIMEREF: u64 = u32::MAX as u64;

/// A category as registered on-chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Index in the on-chain category list, as used by orders.
    pub id: u64,
    /// Short name, such as `XS`.
    pub name: String,
    /// The time reference `T`, in seconds (positive, at most [`MAX_TIMEREF`]).
    pub timeref: u64,
}

/// The categories every deployment starts with: `(name, T in seconds)`, ids 0 to 4.
pub const DEFAULT_CATEGORIES: [(&str, u64); 5] =
    [("XS", 300), ("S", 1_200), ("M", 3_600), ("L", 10_800), ("XL", 36_000)];

impl Category {
    /// The five default categories, with their ids.
    pub fn defaults() -> Vec<Self> {
        DEFAULT_CATEGORIES
            .iter()
            .zip(0..)
            .map(|(&(name, timeref), id)| Self { id, name: name.to_owned(), timeref })
            .collect()
    }

    /// How long after the match contributions are accepted: `7T` seconds.
    pub const fn contribution_window(&self) -> u64 {
        CONTRIBUTION_DEADLINE_RATIO * self.timeref
    }

    /// How long winners have to reveal once consensus is reached: `2T` seconds.
    pub const fn reveal_window(&self) -> u64 {
        REVEAL_DEADLINE_RATIO * self.timeref
    }

    /// How long after the match a task may be finalized: `10T` seconds.
    pub const fn final_window(&self) -> u64 {
        FINAL_DEADLINE_RATIO * self.timeref
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let categories = Category::defaults();
        let summary: Vec<_> =
            categories.iter().map(|c| (c.id, c.name.as_str(), c.timeref)).collect();
        assert_eq!(
            summary,
            [(0, "XS", 300), (1, "S", 1200), (2, "M", 3600), (3, "L", 10800), (4, "XL", 36000)]
        );
        let xs = &categories[0];
        assert_eq!(xs.contribution_window(), 35 * 60);
        assert_eq!(xs.reveal_window(), 10 * 60);
        assert_eq!(xs.final_window(), 50 * 60);
        assert_eq!(categories[4].final_window(), 100 * 3600);
    }
}
