//! Rate limits: a GCRA bucket per client (and per pass token), and the load of each location,
//! which drives under-attack mode.
//!
//! # The algorithm
//!
//! GCRA, the generic cell rate algorithm: the leaky bucket written as a single timestamp.
//! A rate of `n` requests per period gives an emission interval `T = period / n` and a
//! tolerance `τ = (n − 1)·T`. Each bucket stores its *theoretical arrival time* `tat`. A
//! request at `now` is admitted when `max(tat, now) − now ≤ τ`, and then moves `tat` to
//! `max(tat, now) + T`; otherwise it is refused, and may come back after
//! `max(tat, now) − now − τ`.
//!
//! So `120r/m` admits a burst of up to 120 requests from a client that has been quiet for a
//! minute, and then one request every 500 ms: the 121st request of a burst is refused and may
//! be retried 500 ms later. There are no windows, so nothing resets at a boundary: over any
//! stretch of time `L` a client gets at most `n + L/T` requests, and in the long run exactly
//! the configured rate. A bucket is 8 bytes and expires when it has drained (`tat ≤ now`).

use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;

use thiserror::Error;

use super::table::{Guard, Key, Record};

/// Requests per period, as written in the configuration (`120r/m`, `10r/s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    /// 1000 for `r/s`, 60 000 for `r/m`.
    pub period_ms: u32,
}

impl Rate {
    /// The largest count accepted per period.
    pub const MAX_COUNT: u32 = 1_000_000;

    pub const fn per_minute(count: u32) -> Rate {
        Rate {
            count,
            period_ms: 60_000,
        }
    }

    /// Microseconds between two requests at the sustained rate (at least 1).
    pub fn interval_us(self) -> u64 {
        (u64::from(self.period_ms) * 1000 / u64::from(self.count.max(1))).max(1)
    }

    /// How far ahead of `now` a bucket's arrival time may be for a request to pass: room for a
    /// burst of `count` requests.
    pub fn tolerance_us(self) -> u64 {
        self.interval_us() * u64::from(self.count.max(1) - 1)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.period_ms == 1000 { "s" } else { "m" };
        write!(f, "{}r/{}", self.count, unit)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid rate \"{0}\", expected N r/s or N r/m (e.g. 120r/m) with N from 1 to 1000000")]
pub struct InvalidRate(pub String);

impl FromStr for Rate {
    type Err = InvalidRate;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidRate(s.to_string());
        let (number, period_ms) = if let Some(n) = s.strip_suffix("r/s") {
            (n, 1000)
        } else if let Some(n) = s.strip_suffix("r/m") {
            (n, 60_000)
        } else {
            return Err(bad());
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let count: u32 = number.parse().map_err(|_| bad())?;
        if count == 0 || count > Rate::MAX_COUNT {
            return Err(bad());
        }
        Ok(Rate { count, period_ms })
    }
}

/// One client's (or one pass token's) bucket: its theoretical arrival time, in microseconds
/// on the same clock as the table's `now` (milliseconds × 1000).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct RateBucket {
    pub tat_us: u64,
}

// SAFETY: a plain integer: valid for every bit pattern, no pointers.
unsafe impl Record for RateBucket {
    const KIND: u32 = u32::from_be_bytes(*b"RAT1");
    const NAME: &'static str = "rate buckets";
}

/// The answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Over the limit; the request may be retried after this many microseconds.
    Refused {
        retry_after_us: u64,
    },
}

impl Admission {
    /// `Retry-After` in whole seconds, rounded up (at least 1).
    pub fn retry_after_secs(self) -> Option<u64> {
        match self {
            Admission::Admitted => None,
            Admission::Refused { retry_after_us } => {
                Some(retry_after_us.div_ceil(1_000_000).max(1))
            }
        }
    }
}

/// One step of GCRA on a bare arrival time: the new arrival time if admitted.
fn gcra(tat_us: u64, now_us: u64, rate: Rate) -> Result<u64, u64> {
    let start = tat_us.max(now_us);
    let ahead = start - now_us;
    let tolerance = rate.tolerance_us();
    if ahead > tolerance {
        Err(ahead - tolerance)
    } else {
        Ok(start.saturating_add(rate.interval_us()))
    }
}

/// GCRA for `count` arrivals at once: the new arrival time after those admitted (the first
/// `k` that fit), and whether any was not. For one arrival it is [`gcra`].
fn gcra_many(tat_us: u64, now_us: u64, rate: Rate, count: u64) -> (u64, bool) {
    let start = tat_us.max(now_us);
    let ahead = start - now_us;
    let (tolerance, interval) = (rate.tolerance_us(), rate.interval_us());
    let fits = if ahead > tolerance {
        0
    } else {
        (tolerance - ahead) / interval + 1
    };
    let admitted = fits.min(count);
    let tat_us = if admitted == 0 {
        tat_us
    } else {
        start.saturating_add(admitted.saturating_mul(interval))
    };
    (tat_us, admitted < count)
}

/// A worker's own count of one location's requests (kept in the location's configuration, so
/// in each worker's memory): added to the shared load in batches instead of one locked update
/// per request. A batch goes at the location's first request in the worker, every
/// [`LocalLoad::FLUSH_MS`], and every 1/64 of the limit's burst (every request for limits
/// under 128 a period), so the shared count lags by at most that per worker; between batches
/// the worker answers from the state the last batch found.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalLoad {
    pending: u32,
    flushed_ms: u64,
    known: bool,
    under_attack: bool,
}

impl LocalLoad {
    pub const FLUSH_MS: u64 = 20;

    /// Counts one request: `Some(n)` when the `n` requests counted since the last batch are to
    /// be added to the shared load now (then call [`LocalLoad::flushed`]), `None` when the
    /// last batch's state stands ([`LocalLoad::under_attack`]).
    pub fn count(&mut self, now_ms: u64, limit: Rate) -> Option<u32> {
        self.pending = self.pending.saturating_add(1);
        let batch = (limit.count / 64).max(1);
        let due = !self.known
            || self.pending >= batch
            || now_ms.saturating_sub(self.flushed_ms) >= Self::FLUSH_MS;
        if !due {
            return None;
        }
        let count = self.pending;
        self.pending = 0;
        self.flushed_ms = now_ms;
        Some(count)
    }

    /// The shared load's state after a batch.
    pub fn flushed(&mut self, under_attack: bool) {
        self.known = true;
        self.under_attack = under_attack;
    }

    pub fn under_attack(&self) -> bool {
        self.under_attack
    }
}

/// Counts a request against the bucket `key` at `now_ms`. A refused request leaves the bucket
/// as it was, so refusals do not push the client's recovery further out.
pub fn admit(table: &mut Guard<'_, RateBucket>, key: &Key, now_ms: u64, rate: Rate) -> Admission {
    let now_us = now_ms.saturating_mul(1000);
    table.update(key, now_ms, |bucket| {
        match gcra(bucket.map_or(0, |b| b.tat_us), now_us, rate) {
            // The bucket is empty again at its arrival time: that is when it may go.
            Ok(tat_us) => (
                Some((RateBucket { tat_us }, tat_us.div_ceil(1000))),
                Admission::Admitted,
            ),
            Err(retry_after_us) => (None, Admission::Refused { retry_after_us }),
        }
    })
}

/// A location's load: the bucket of all its clients together and its under-attack state.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LocationLoad {
    pub tat_us: u64,
    /// When the location last went over its limit (ms); 0 for never.
    pub last_over_ms: u64,
    /// When the current attack began (ms); 0 when the location is not under attack.
    pub attack_since_ms: u64,
}

// SAFETY: plain integers: valid for every bit pattern, no pointers.
unsafe impl Record for LocationLoad {
    const KIND: u32 = u32::from_be_bytes(*b"LOD1");
    const NAME: &'static str = "locations";
}

/// What one request saw of its location's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    pub under_attack: bool,
    pub change: Option<LoadChange>,
}

/// A change of mode, to be logged by whoever saw it (exactly one request sees each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadChange {
    Entered,
    Left { lasted_ms: u64 },
}

/// Counts a request to a location with the all-clients limit `limit`. The location enters
/// under-attack mode when a request finds it over the limit, and leaves it with the first
/// request after it has stayed under the limit for `cooldown_ms`.
pub fn observe_load(
    table: &mut Guard<'_, LocationLoad>,
    key: &Key,
    now_ms: u64,
    limit: Rate,
    cooldown_ms: u64,
) -> LoadReport {
    observe_loads(table, key, now_ms, limit, cooldown_ms, 1)
}

/// Counts `count` requests to a location at once (a worker's batch, see [`LocalLoad`]): as
/// many as the bucket admits are added, and the location is over its limit if any is not.
pub fn observe_loads(
    table: &mut Guard<'_, LocationLoad>,
    key: &Key,
    now_ms: u64,
    limit: Rate,
    cooldown_ms: u64,
    count: u32,
) -> LoadReport {
    // Kept a while past anything that could still matter: a drained bucket and a finished
    // cool-down.
    let keep_until = now_ms
        .saturating_add(cooldown_ms)
        .saturating_add(u64::from(limit.period_ms))
        .saturating_add(60_000);
    table.update(key, now_ms, |seen| {
        let mut load = seen.unwrap_or_default();
        let report = load_step(&mut load, now_ms, limit, cooldown_ms, count);
        (Some((load, keep_until)), report)
    })
}

/// One request's effect on a location's load (see [`observe_load`]).
fn load_step(
    load: &mut LocationLoad,
    now_ms: u64,
    limit: Rate,
    cooldown_ms: u64,
    count: u32,
) -> LoadReport {
    let now_us = now_ms.saturating_mul(1000);
    let (tat_us, over) = gcra_many(load.tat_us, now_us, limit, u64::from(count.max(1)));
    load.tat_us = tat_us;
    if over {
        load.last_over_ms = now_ms;
    }
    let mut change = None;
    if load.attack_since_ms != 0 && !over && now_ms.saturating_sub(load.last_over_ms) >= cooldown_ms
    {
        change = Some(LoadChange::Left {
            lasted_ms: now_ms.saturating_sub(load.attack_since_ms),
        });
        load.attack_since_ms = 0;
    } else if load.attack_since_ms == 0 && over {
        change = Some(LoadChange::Entered);
        load.attack_since_ms = now_ms.max(1);
    }
    let under_attack = load.attack_since_ms != 0;
    LoadReport {
        under_attack,
        change,
    }
}

/// The bytes that identify a client for rate limiting: an IPv4 address, or an IPv6 address cut
/// to its first `ipv6_prefix` bits (so a host that rotates through its /64 stays one client).
/// IPv4-mapped IPv6 addresses count as IPv4.
pub fn client_identity(address: IpAddr, ipv6_prefix: u8) -> ([u8; 17], usize) {
    let mut out = [0u8; 17];
    match address {
        IpAddr::V4(v4) => {
            out[..4].copy_from_slice(&v4.octets());
            (out, 4)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => {
                out[..4].copy_from_slice(&v4.octets());
                (out, 4)
            }
            None => {
                let prefix = ipv6_prefix.clamp(1, 128);
                let mask = u128::MAX << (128 - u32::from(prefix));
                out[..16].copy_from_slice(&(u128::from(v6) & mask).to_be_bytes());
                out[16] = prefix;
                (out, 17)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::table::Table;

    fn with_table<V: Record, R>(f: impl FnOnce(&mut Guard<'_, V>) -> R) -> R {
        let len = Table::<V>::region_len_for(64).unwrap();
        let mut words = vec![0u64; len.div_ceil(8) + Table::<V>::region_align()].into_boxed_slice();
        let base = words.as_mut_ptr() as *mut u8;
        let offset = base.align_offset(Table::<V>::region_align());
        // SAFETY: the boxed slice outlives the table and is used by nobody else.
        let table = unsafe { Table::<V>::init(base.add(offset), len) }.unwrap();
        table.with(crate::state::holder::Holder::immortal(1), f)
    }

    #[test]
    fn rates_parse_and_print() {
        assert_eq!(
            "120r/m".parse(),
            Ok(Rate {
                count: 120,
                period_ms: 60_000
            })
        );
        assert_eq!(
            "2r/s".parse(),
            Ok(Rate {
                count: 2,
                period_ms: 1000
            })
        );
        assert_eq!("1000000r/s".parse::<Rate>().map(|r| r.count), Ok(1_000_000));
        for bad in [
            "",
            "r/m",
            "0r/m",
            "-1r/s",
            "1.5r/s",
            "12r/h",
            "12 r/m",
            "1000001r/s",
            "99999999999r/m",
            "+5r/s",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
        assert_eq!(Rate::per_minute(120).to_string(), "120r/m");
        assert_eq!(Rate::per_minute(120).interval_us(), 500_000);
    }

    #[test]
    fn the_121st_request_of_a_burst_at_120_per_minute_is_refused_then_one_per_half_second() {
        let rate = Rate::per_minute(120);
        with_table::<RateBucket, _>(|t| {
            let client = [1; 16];
            let start = 1_000_000;
            for i in 0..120 {
                assert_eq!(
                    admit(t, &client, start, rate),
                    Admission::Admitted,
                    "request {}",
                    i + 1
                );
            }
            let refused = admit(t, &client, start, rate);
            assert_eq!(
                refused,
                Admission::Refused {
                    retry_after_us: 500_000
                }
            );
            assert_eq!(refused.retry_after_secs(), Some(1));
            // Refusals do not delay recovery.
            assert!(matches!(
                admit(t, &client, start + 499, rate),
                Admission::Refused {
                    retry_after_us: 1000
                }
            ));
            assert_eq!(admit(t, &client, start + 500, rate), Admission::Admitted);
            assert!(matches!(
                admit(t, &client, start + 500, rate),
                Admission::Refused { .. }
            ));
            // Another client is not affected.
            assert_eq!(admit(t, &[2; 16], start, rate), Admission::Admitted);
            // After a quiet minute the whole burst is back.
            let later = start + 500 + 60_000;
            for _ in 0..120 {
                assert_eq!(admit(t, &client, later, rate), Admission::Admitted);
            }
            assert!(matches!(
                admit(t, &client, later, rate),
                Admission::Refused { .. }
            ));
        });
    }

    #[test]
    fn a_steady_client_at_the_rate_is_never_refused_and_twice_the_rate_gets_half() {
        let rate = Rate {
            count: 10,
            period_ms: 1000,
        };
        with_table::<RateBucket, _>(|t| {
            for i in 0..1000u64 {
                assert_eq!(
                    admit(t, &[1; 16], 5000 + i * 100, rate),
                    Admission::Admitted
                );
            }
            let admitted = (0..2000u64)
                .filter(|i| admit(t, &[2; 16], 5000 + i * 50, rate) == Admission::Admitted)
                .count();
            // A burst of 10, then one in two.
            assert!((1000..=1010).contains(&admitted), "{admitted}");
        });
    }

    #[test]
    fn no_double_burst_at_any_boundary() {
        // Whatever the phase, 60 s never hold more than the burst plus the sustained rate.
        let rate = Rate::per_minute(120);
        with_table::<RateBucket, _>(|t| {
            let mut times = Vec::new();
            for ms in (0..180_000u64).step_by(10) {
                if admit(t, &[3; 16], 1_000_000 + ms, rate) == Admission::Admitted {
                    times.push(ms);
                }
            }
            for (i, &start) in times.iter().enumerate() {
                let within = times[i..]
                    .iter()
                    .take_while(|&&x| x < start + 60_000)
                    .count();
                assert!(within <= 240, "{within} in the minute from {start}");
            }
        });
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(
            Admission::Refused { retry_after_us: 1 }.retry_after_secs(),
            Some(1)
        );
        assert_eq!(
            Admission::Refused {
                retry_after_us: 1_000_000
            }
            .retry_after_secs(),
            Some(1)
        );
        assert_eq!(
            Admission::Refused {
                retry_after_us: 1_000_001
            }
            .retry_after_secs(),
            Some(2)
        );
        assert_eq!(Admission::Admitted.retry_after_secs(), None);
        // 1r/m: the second request waits a minute.
        with_table::<RateBucket, _>(|t| {
            let rate = Rate::per_minute(1);
            assert_eq!(admit(t, &[1; 16], 10_000, rate), Admission::Admitted);
            assert_eq!(
                admit(t, &[1; 16], 10_000, rate).retry_after_secs(),
                Some(60)
            );
            assert_eq!(
                admit(t, &[1; 16], 40_000, rate).retry_after_secs(),
                Some(30)
            );
        });
    }

    #[test]
    fn under_attack_is_entered_over_the_limit_and_left_after_the_cooldown() {
        let limit = Rate {
            count: 10,
            period_ms: 1000,
        };
        with_table::<LocationLoad, _>(|t| {
            let loc = [7; 16];
            let mut now = 1_000_000;
            for _ in 0..10 {
                assert_eq!(
                    observe_load(t, &loc, now, limit, 5000),
                    LoadReport {
                        under_attack: false,
                        change: None
                    }
                );
            }
            assert_eq!(
                observe_load(t, &loc, now, limit, 5000),
                LoadReport {
                    under_attack: true,
                    change: Some(LoadChange::Entered)
                }
            );
            // The flood goes on for 3 s: still under attack, no new change.
            for _ in 0..300 {
                now += 10;
                assert_eq!(observe_load(t, &loc, now, limit, 5000).change, None);
            }
            // It ends with a burst that is certainly over the limit.
            for _ in 0..20 {
                assert!(observe_load(t, &loc, now, limit, 5000).under_attack);
            }
            let last_over = now;
            // Then a trickle under the limit: the mode holds for the cool-down.
            now += 1000;
            assert!(observe_load(t, &loc, now, limit, 5000).under_attack);
            now = last_over + 4999;
            assert!(observe_load(t, &loc, now, limit, 5000).under_attack);
            now = last_over + 5000;
            let left = observe_load(t, &loc, now, limit, 5000);
            assert_eq!(left.under_attack, false);
            assert!(
                matches!(left.change, Some(LoadChange::Left { lasted_ms }) if lasted_ms >= 8000)
            );
            assert_eq!(observe_load(t, &loc, now + 1, limit, 5000).change, None);
        });
    }

    #[test]
    fn a_batch_counts_as_its_requests_one_by_one() {
        let limit = Rate {
            count: 50,
            period_ms: 1000,
        };
        // Against one-by-one counting, at the same instants: the same arrival time and the
        // same verdict, for batches that fit, that straddle the limit and that start over it.
        for (start_tat, count) in [
            (0u64, 1u64),
            (0, 30),
            (0, 50),
            (0, 51),
            (0, 80),
            (1_900_000, 20),
            (2_100_000, 3),
        ] {
            let now_us = 1_000_000;
            let (tat, over) = gcra_many(start_tat, now_us, limit, count);
            let (mut one_tat, mut one_over) = (start_tat, false);
            for _ in 0..count {
                match gcra(one_tat, now_us, limit) {
                    Ok(t) => one_tat = t,
                    Err(_) => one_over = true,
                }
            }
            assert_eq!(
                (tat, over),
                (one_tat, one_over),
                "tat {start_tat}, {count} at once"
            );
        }
    }

    #[test]
    fn a_worker_adds_its_load_in_batches_and_a_small_limit_at_once() {
        let big = Rate {
            count: 1_000_000,
            period_ms: 1000,
        };
        let mut local = LocalLoad::default();
        // The first request goes at once: the state is not known yet.
        assert_eq!(local.count(1_000, big), Some(1));
        local.flushed(false);
        // Then batches: every 1/64 of the burst, or every FLUSH_MS, whichever first.
        let mut batches = Vec::new();
        for i in 0..40_000u64 {
            if let Some(n) = local.count(1_000 + i / 1000, big) {
                batches.push(n);
                local.flushed(false);
            }
        }
        // 15,625 requests make a batch (at 15 and 31 ms), before 20 ms pass since the last.
        assert_eq!(batches, vec![15_625, 15_625]);
        assert_eq!(local.pending, 40_000 - 31_250);
        // 20 ms apart at most: a pause flushes what is pending with the next request.
        let pending = local.pending;
        assert_eq!(
            local.count(1_000 + 40 + LocalLoad::FLUSH_MS, big),
            Some(pending + 1)
        );
        // A limit under 128 a period counts every request in the shared load.
        let small = Rate {
            count: 120,
            period_ms: 60_000,
        };
        let mut local = LocalLoad::default();
        for t in 0..10 {
            assert_eq!(local.count(t, small), Some(1));
            local.flushed(t > 5);
            assert_eq!(local.under_attack(), t > 5);
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_identity(a, 64), client_identity(b, 64));
        assert_ne!(client_identity(a, 64), client_identity(c, 64));
        assert_eq!(client_identity(a, 48), client_identity(c, 48));
        assert_ne!(client_identity(a, 128), client_identity(b, 128));
        assert_ne!(
            client_identity(a, 48),
            client_identity(a, 64),
            "the prefix is part of the identity"
        );
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_identity(v4, 64), client_identity(mapped, 64));
        assert_eq!(client_identity(v4, 64).1, 4);
    }

    #[test]
    fn a_bucket_costs_eight_bytes_and_its_entry_sixty_or_less() {
        assert_eq!(core::mem::size_of::<RateBucket>(), 8);
        assert!(
            Table::<RateBucket>::bytes_per_entry() <= 60,
            "{}",
            Table::<RateBucket>::bytes_per_entry()
        );
    }
}
