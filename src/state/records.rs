//! The records kept in the shared tables, and the rules that read and write them.
//!
//! A block for wrong answers must survive any pressure for room, or an attacker who fills the
//! zone would give the client its guesses back: it is pinned ([`Record::pinned`]), the table
//! never evicts it while it lives. (Spent challenges, which must not be forgotten either, have
//! a store of their own: `state::spent`.) The other records only count, and may be forgotten.

use super::table::{Guard, Key, Record};

/// Wrong answers of one client, or of one network, within its failure window (which starts
/// at the first one). Pinned once it blocks.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Failures {
    pub count: u32,
    /// Non-zero once `count` reached the limit: the entry is a block.
    blocked: u32,
}

// SAFETY: plain integers: valid for every bit pattern, no pointers.
unsafe impl Record for Failures {
    const KIND: u32 = u32::from_be_bytes(*b"FAI2");
    const NAME: &'static str = "failures";

    fn pinned(&self) -> bool {
        self.blocked != 0
    }
}

/// The failure table's keys for a client: its own (an IPv4 address, or its IPv6 prefix of
/// `captchaify_ipv6_prefix` bits) and, for IPv6, its network's (the /48 around it), so that
/// a host holding a whole /48 cannot multiply its guesses by its 65,536 /64s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureKeys {
    pub client: Key,
    pub network: Option<Key>,
}

/// `captchaify_max_failures`: how many wrong answers a client may give within a window before
/// it is blocked for the rest of that window, and how many its network may give in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    pub max: u32,
    pub window_ms: u64,
    /// Wrong answers of all the clients of one IPv6 /48 together; `None` for no such budget.
    pub network_max: Option<u32>,
}

impl Default for FailureLimit {
    fn default() -> Self {
        FailureLimit {
            max: 3,
            window_ms: 2 * 3600 * 1000,
            network_max: Some(3 * Self::NETWORK_FACTOR),
        }
    }
}

/// Where a client stands with its wrong answers, as its next page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureStanding {
    /// The client, or its network, has used up its attempts.
    pub blocked: bool,
    /// Not blocked, with wrong answers on record, and the next one blocks.
    pub last_try: bool,
}

/// What counting a wrong answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The client's wrong answers within its window, this one included (0 if not kept).
    pub count: u32,
    /// The client (or its network) has now used up its attempts.
    pub blocked: bool,
    /// Not blocked yet, but the next wrong answer blocks (the client's, or its network's,
    /// last attempt): the page says so.
    pub last_try: bool,
    /// Whether the table had room to remember the answer (it had, unless it was full of
    /// blocks).
    pub kept: bool,
}

impl FailureLimit {
    /// The network budget, when not set: ten times the client's.
    pub const NETWORK_FACTOR: u32 = 10;

    /// Whether the client, or its network, has used up its attempts.
    pub fn is_blocked(
        &self,
        table: &mut Guard<'_, Failures>,
        keys: &FailureKeys,
        now: u64,
    ) -> bool {
        self.standing(table, keys, now).blocked
    }

    /// Where the client stands: blocked, or on its last try (its captcha page warns it).
    pub fn standing(
        &self,
        table: &mut Guard<'_, Failures>,
        keys: &FailureKeys,
        now: u64,
    ) -> FailureStanding {
        let mut count = |key: &Key| table.get(key, now).map_or(0, |f| f.count);
        let client = count(&keys.client);
        let network = keys
            .network
            .filter(|_| self.network_max.is_some())
            .map(|key| count(&key));
        self.standing_of(client, network)
    }

    /// The standing of a client with `count` wrong answers in its window, and `network_count`
    /// in its network's (`None` for a client counted without a network: IPv4, or the network
    /// budget off). The last try is announced only to a client with wrong answers on record
    /// (with a budget of one, every first try would be the last).
    fn standing_of(&self, count: u32, network_count: Option<u32>) -> FailureStanding {
        let network_reaches =
            |n: Option<u32>| n.zip(self.network_max).is_some_and(|(n, max)| n >= max);
        let blocked = count >= self.max || network_reaches(network_count);
        let next_blocks = count.saturating_add(1) >= self.max
            || network_reaches(network_count.map(|n| n.saturating_add(1)));
        FailureStanding {
            blocked,
            last_try: !blocked && (count > 0 || network_count.unwrap_or(0) > 0) && next_blocks,
        }
    }

    /// Counts a wrong answer against the client and its network. The window starts at the
    /// first failure and is not extended by later ones. A count that reaches its limit pins
    /// its entry: the block outlives any pressure for room.
    pub fn record(
        &self,
        table: &mut Guard<'_, Failures>,
        keys: &FailureKeys,
        now: u64,
    ) -> Recorded {
        let (count, client_kept) = self.count(table, &keys.client, self.max, now);
        let (network_count, network_kept) = match keys.network.zip(self.network_max) {
            Some((key, max)) => {
                let (count, kept) = self.count(table, &key, max, now);
                (Some(count), kept)
            }
            None => (None, true),
        };
        let standing = self.standing_of(count, network_count);
        Recorded {
            count,
            blocked: standing.blocked,
            last_try: standing.last_try,
            kept: client_kept && network_kept,
        }
    }

    fn count(&self, table: &mut Guard<'_, Failures>, key: &Key, max: u32, now: u64) -> (u32, bool) {
        let expires = now.saturating_add(self.window_ms);
        match table.try_get_or_insert_with(key, now, expires, Failures::default) {
            Some((failures, _)) => {
                failures.count = failures.count.saturating_add(1);
                if failures.count >= max {
                    failures.blocked = 1;
                }
                (failures.count, true)
            }
            None => (0, false),
        }
    }
}

/// A mark that something happened to a key, kept until it expires and forgotten first under
/// pressure (e.g. "this client was reported to CrowdSec lately").
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Mark {
    _marker: u32,
}

// SAFETY: a plain integer: valid for every bit pattern, no pointers.
unsafe impl Record for Mark {
    const KIND: u32 = u32::from_be_bytes(*b"MRK1");
    const NAME: &'static str = "marks";
}

/// Events of one key within a window that starts at the first; forgotten first under
/// pressure.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EventCount {
    pub count: u32,
    _reserved: u32,
}

// SAFETY: plain integers: valid for every bit pattern, no pointers.
unsafe impl Record for EventCount {
    const KIND: u32 = u32::from_be_bytes(*b"EVC1");
    const NAME: &'static str = "event counts";
}

/// Counts an event of `key` within a window of `window_ms` that starts at its first event;
/// returns the count within the window.
pub fn count_event(table: &mut Guard<'_, EventCount>, key: &Key, now: u64, window_ms: u64) -> u32 {
    let expires = now.saturating_add(window_ms);
    let (events, _) = table.get_or_insert_with(key, now, expires, EventCount::default);
    events.count = events.count.saturating_add(1);
    events.count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::holder::Holder;
    use crate::state::table::{test_table, Placed, Table};

    const ME: Holder = Holder::immortal(1);

    fn keys(client: u8) -> FailureKeys {
        FailureKeys {
            client: [client; 16],
            network: None,
        }
    }

    #[test]
    fn the_third_failure_blocks_for_the_rest_of_the_window() {
        let limit = FailureLimit {
            max: 3,
            window_ms: 1000,
            network_max: None,
        };
        let (_buffer, table) = test_table::<Failures>(64);
        table.with(ME, |t| {
            let client = keys(1);
            let first = limit.record(t, &client, 0);
            assert_eq!(
                first,
                Recorded {
                    count: 1,
                    blocked: false,
                    last_try: false,
                    kept: true
                }
            );
            let second = limit.record(t, &client, 500);
            assert!(!second.blocked);
            assert!(
                second.last_try,
                "the next wrong answer blocks: the page warns"
            );
            assert!(!limit.is_blocked(t, &client, 600));
            let third = limit.record(t, &client, 900);
            assert!(third.blocked && !third.last_try);
            assert!(limit.is_blocked(t, &client, 999));
            assert!(!limit.is_blocked(t, &keys(2), 999), "another client");
            assert!(
                !limit.is_blocked(t, &client, 1000),
                "the window ends 1 s after the first failure"
            );
            assert!(
                !limit.record(t, &client, 1000).blocked,
                "a new window starts"
            );
        });
    }

    /// A client counted without a network (IPv4) is not warned by a network budget of one,
    /// which it has no network to reach.
    #[test]
    fn a_client_without_a_network_is_not_warned_by_the_network_budget() {
        let limit = FailureLimit {
            max: 3,
            window_ms: 1000,
            network_max: Some(1),
        };
        let (_buffer, table) = test_table::<Failures>(64);
        table.with(ME, |t| {
            let ipv4 = FailureKeys {
                client: [7; 16],
                network: None,
            };
            let first = limit.record(t, &ipv4, 0);
            assert!(!first.blocked && !first.last_try, "{first:?}");
            assert!(!limit.standing(t, &ipv4, 1).last_try);
            assert!(limit.record(t, &ipv4, 2).last_try, "its own second of three");
        });
    }

    /// The captcha page a client gets by reloading warns it as the one after a wrong answer.
    #[test]
    fn the_standing_tells_the_last_try() {
        let limit = FailureLimit {
            max: 3,
            window_ms: 1000,
            network_max: Some(5),
        };
        let (_buffer, table) = test_table::<Failures>(64);
        table.with(ME, |t| {
            let network = Some([99; 16]);
            let host = |n: u8| FailureKeys {
                client: [n; 16],
                network,
            };
            let fresh = FailureStanding::default();
            assert_eq!(limit.standing(t, &host(1), 0), fresh);
            limit.record(t, &host(1), 0);
            assert_eq!(limit.standing(t, &host(1), 1), fresh);
            limit.record(t, &host(1), 2);
            let last = FailureStanding {
                blocked: false,
                last_try: true,
            };
            assert_eq!(limit.standing(t, &host(1), 3), last);
            // The network's last but one: a host with no failures of its own is warned too.
            limit.record(t, &host(2), 4);
            limit.record(t, &host(3), 5);
            assert_eq!(limit.standing(t, &host(4), 6), last);
            limit.record(t, &host(1), 7);
            assert!(limit.standing(t, &host(1), 8).blocked);
            assert!(
                limit.standing(t, &host(4), 8).blocked,
                "the network's fifth"
            );
            assert_eq!(
                limit.standing(t, &host(1), 1000),
                fresh,
                "the window is over"
            );
        });
        // A budget of one: no failure on record, no warning; the first wrong answer blocks.
        let one = FailureLimit {
            max: 1,
            window_ms: 1000,
            network_max: None,
        };
        let (_buffer, table) = test_table::<Failures>(64);
        table.with(ME, |t| {
            assert_eq!(one.standing(t, &keys(1), 0), FailureStanding::default());
        });
    }

    #[test]
    fn a_network_has_a_budget_of_its_own() {
        let limit = FailureLimit {
            max: 3,
            window_ms: 10_000,
            network_max: Some(5),
        };
        let (_buffer, table) = test_table::<Failures>(64);
        table.with(ME, |t| {
            let network = Some([99; 16]);
            let host = |n: u8| FailureKeys {
                client: [n; 16],
                network,
            };
            for n in 1..=4 {
                let recorded = limit.record(t, &host(n), 0);
                assert!(!recorded.blocked, "wrong answer {n} of the network");
                // Each host's first answer, but the network's fourth is its last but one.
                assert_eq!(recorded.last_try, n == 4, "wrong answer {n} of the network");
            }
            assert!(!limit.is_blocked(t, &host(9), 0));
            let fifth = limit.record(t, &host(5), 0);
            assert_eq!(
                fifth,
                Recorded {
                    count: 1,
                    blocked: true,
                    last_try: false,
                    kept: true
                },
                "the network's fifth"
            );
            assert!(
                limit.is_blocked(t, &host(9), 0),
                "a fresh host of a blocked network"
            );
            assert!(!limit.is_blocked(
                t,
                &FailureKeys {
                    client: [9; 16],
                    network: Some([98; 16])
                },
                0
            ));
            assert!(
                !limit.is_blocked(t, &host(9), 10_000),
                "until the window ends"
            );
        });
    }

    /// The fault this guards against: a blocked client unblocked by a flood of wrong answers
    /// from elsewhere that pushed its entry out of a small table.
    #[test]
    fn blocks_outlive_any_flood_of_other_failures() {
        let limit = FailureLimit {
            max: 3,
            window_ms: 3_600_000,
            network_max: None,
        };
        let (_buffer, table) = test_table::<Failures>(64);
        table.with(ME, |t| {
            let blocked = keys(0);
            for at in 0..3 {
                limit.record(t, &blocked, at);
            }
            assert!(limit.is_blocked(t, &blocked, 3));
            let mut refused = 0;
            for n in 1..=10_000u32 {
                let mut other = [0u8; 16];
                other[..4].copy_from_slice(&n.to_le_bytes());
                other[15] = 1;
                let recorded = limit.record(
                    t,
                    &FailureKeys {
                        client: other,
                        network: None,
                    },
                    10 + u64::from(n),
                );
                refused += u32::from(!recorded.kept);
            }
            assert!(
                limit.is_blocked(t, &blocked, 20_000),
                "still blocked after 10,000 other failures"
            );
            assert_eq!(refused, 0, "partial counts make room for each other");
        });
    }

    #[test]
    fn a_table_full_of_blocks_refuses_new_failures_and_keeps_the_blocks() {
        let limit = FailureLimit {
            max: 1,
            window_ms: 3_600_000,
            network_max: None,
        };
        let (_buffer, table) = test_table::<Failures>(16);
        table.with(ME, |t| {
            for n in 0..16 {
                assert!(limit.record(t, &keys(n), 0).blocked);
            }
            let refused = limit.record(t, &keys(200), 1);
            assert_eq!(
                refused,
                Recorded {
                    count: 0,
                    blocked: false,
                    last_try: false,
                    kept: false
                }
            );
            for n in 0..16 {
                assert!(limit.is_blocked(t, &keys(n), 2), "block {n} kept");
            }
            // Once blocks expire their room is taken again.
            assert!(limit.record(t, &keys(200), 3_600_000).kept);
        });
        assert_eq!(table.stats().refusals, 1);
    }

    #[test]
    fn marks_and_event_counts_make_room_for_new_ones() {
        let (_marks_buffer, marks) = test_table::<Mark>(16);
        marks.with(ME, |t| {
            for n in 0..100u8 {
                assert_eq!(
                    t.insert_if_absent(&[n; 16], 0, 1000, Mark::default()),
                    Placed::Inserted
                );
            }
        });
        let (_buffer, counts): (_, Table<EventCount>) = test_table(16);
        counts.with(ME, |t| {
            assert_eq!(count_event(t, &[1; 16], 0, 1000), 1);
            assert_eq!(count_event(t, &[1; 16], 999, 1000), 2);
            assert_eq!(count_event(t, &[1; 16], 1000, 1000), 1, "a new window");
            for n in 2..100u8 {
                assert_eq!(count_event(t, &[n; 16], 1000, 1000), 1);
            }
        });
    }
}
