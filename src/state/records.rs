//! The records kept in the shared tables, and the rules that read and write them.

use super::table::{Guard, Key, Record};

/// A challenge nonce that has been answered: kept until the challenge expires, so that each
/// challenge is single-use across all workers.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SpentNonce {
    _marker: u32,
}

// SAFETY: a plain integer: valid for every bit pattern, no pointers.
unsafe impl Record for SpentNonce {
    const KIND: u32 = u32::from_be_bytes(*b"NON1");
}

/// Wrong answers of one client within its failure window (which starts at the first one).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Failures {
    pub count: u32,
    _reserved: u32,
}

// SAFETY: plain integers: valid for every bit pattern, no pointers.
unsafe impl Record for Failures {
    const KIND: u32 = u32::from_be_bytes(*b"FAI1");
}

/// `captchaify_max_failures`: how many wrong answers a client may give within a window before
/// it is blocked for the rest of that window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    pub max: u32,
    pub window_ms: u64,
}

impl Default for FailureLimit {
    fn default() -> Self {
        FailureLimit { max: 3, window_ms: 2 * 3600 * 1000 }
    }
}

impl FailureLimit {
    /// Whether the client has used up its attempts.
    pub fn is_blocked(&self, table: &mut Guard<'_, Failures>, client: &Key, now: u64) -> bool {
        table.get(client, now).is_some_and(|f| f.count >= self.max)
    }

    /// Counts a wrong answer; returns whether the client is now blocked. The window starts at
    /// the first failure and is not extended by later ones.
    pub fn record(&self, table: &mut Guard<'_, Failures>, client: &Key, now: u64) -> bool {
        self.record_count(table, client, now) >= self.max
    }

    /// Counts a wrong answer (or any other event under this limit); returns the count within
    /// the window.
    pub fn record_count(&self, table: &mut Guard<'_, Failures>, client: &Key, now: u64) -> u32 {
        let expires = now.saturating_add(self.window_ms);
        let (failures, _) = table.get_or_insert_with(client, now, expires, Failures::default);
        failures.count = failures.count.saturating_add(1);
        failures.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::table::Table;

    fn with_table<V: Record, R>(f: impl FnOnce(&Table<V>) -> R) -> R {
        let len = Table::<V>::region_len_for(64).unwrap();
        let words = vec![0u64; len.div_ceil(8) + Table::<V>::region_align()];
        let mut words = words.into_boxed_slice();
        let base = words.as_mut_ptr() as *mut u8;
        let offset = base.align_offset(Table::<V>::region_align());
        // SAFETY: the boxed slice outlives the table and is used by nobody else.
        let table = unsafe { Table::<V>::init(base.add(offset), len) }.unwrap();
        f(&table)
    }

    #[test]
    fn the_third_failure_blocks_for_the_rest_of_the_window() {
        let limit = FailureLimit { max: 3, window_ms: 1000 };
        with_table::<Failures, _>(|table| {
            table.with(std::process::id(), |t| {
                let client = [1; 16];
                assert!(!limit.record(t, &client, 0));
                assert!(!limit.record(t, &client, 500));
                assert!(!limit.is_blocked(t, &client, 600));
                assert!(limit.record(t, &client, 900));
                assert!(limit.is_blocked(t, &client, 999));
                assert!(!limit.is_blocked(t, &[2; 16], 999), "another client");
                assert!(!limit.is_blocked(t, &client, 1000), "the window ends 1 s after the first failure");
                assert!(!limit.record(t, &client, 1000), "a new window starts");
            })
        });
    }

    #[test]
    fn spent_nonces_are_single_use_until_they_expire() {
        with_table::<SpentNonce, _>(|table| {
            table.with(std::process::id(), |t| {
                assert!(t.insert_if_absent(&[9; 16], 0, 120_000, SpentNonce::default()));
                assert!(!t.insert_if_absent(&[9; 16], 1, 120_000, SpentNonce::default()));
                assert!(t.insert_if_absent(&[9; 16], 120_000, 240_000, SpentNonce::default()));
            })
        });
    }
}
