//! CrowdSec decisions as kept in shared memory: one entry per target, ranges kept as ranges.
//!
//! A target is an address range (a single address is a /32 or /128), a country or an AS
//! number. Its entry holds, per remedy, until when it applies, so a `ban` and a `captcha` on
//! the same target expire independently and `ban` beats `captcha` while both hold. Ranges are
//! never expanded: an entry is keyed by the range's prefix length and masked network, and an
//! address is looked up once per prefix length that has entries ([`PrefixLengths`]), longest
//! first — a handful of lookups in practice (/32, /24, /16…), whatever the number of ranges.
//!
//! What the Local API does that this must live with (measured with Debian's CrowdSec 1.4.6,
//! see `t/lib/crowdsec/README.md`): the stream's `deleted` list repeats a deletion for a while
//! (everything that ended since the last pull minus 2 s) and a `startup=true` pull lists every
//! expired decision still in its database, so applying a deletion must be idempotent (it is:
//! it clears the remedy's time). One target can hold several decisions of one type (two bans
//! of different lengths); the entry keeps one time per remedy, the latest, and a deletion
//! clears it — until the next full pull brings back a ban that is still in force. The wiring
//! must therefore re-pull with `startup=true` now and then (to do, with the glue).

use core::sync::atomic::{AtomicU64, Ordering};
use std::net::IpAddr;

use super::stream::{Change, Remedy, Target};
use crate::state::table::{Guard, Key, Record};

/// Until when each remedy applies to a target (Unix seconds; 0: not at all).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionRecord {
    until: [u32; 3],
    _reserved: u32,
}

// SAFETY: plain integers: valid for every bit pattern, no pointers.
unsafe impl Record for DecisionRecord {
    const KIND: u32 = u32::from_be_bytes(*b"CSD1");
}

fn slot(remedy: Remedy) -> usize {
    match remedy {
        Remedy::Ban => 0,
        Remedy::Captcha => 1,
        Remedy::Other => 2,
    }
}

impl DecisionRecord {
    /// The strongest remedy in force at `now`: ban, then captcha, then any other.
    pub fn remedy(&self, now_secs: u64) -> Option<Remedy> {
        [Remedy::Ban, Remedy::Captcha, Remedy::Other]
            .into_iter()
            .find(|&r| u64::from(self.until[slot(r)]) > now_secs)
    }

    fn expires_ms(&self) -> u64 {
        u64::from(self.until.iter().copied().max().unwrap_or(0)) * 1000
    }
}

/// The prefix lengths that have range entries, per family (bit n: a /n entry exists). Set
/// when an entry is added and never cleared until the store is rebuilt: a stale bit costs
/// one lookup that finds nothing.
#[repr(C)]
#[derive(Debug, Default)]
pub struct PrefixLengths {
    v4: AtomicU64,
    v6: [AtomicU64; 3],
}

impl PrefixLengths {
    pub fn mark(&self, net: ipnet::IpNet) {
        let n = u32::from(net.prefix_len());
        match net {
            ipnet::IpNet::V4(_) => {
                self.v4.fetch_or(1 << n, Ordering::Relaxed);
            }
            ipnet::IpNet::V6(_) => {
                if let Some(word) = self.v6.get((n / 64) as usize) {
                    word.fetch_or(1 << (n % 64), Ordering::Relaxed);
                }
            }
        }
    }

    /// The lengths in use for this address's family, longest first.
    pub fn for_address(&self, addr: IpAddr) -> Vec<u8> {
        match addr {
            IpAddr::V4(_) => {
                let bits = self.v4.load(Ordering::Relaxed);
                (0..=32u8).rev().filter(|n| bits & (1 << n) != 0).collect()
            }
            IpAddr::V6(_) => {
                let words: Vec<u64> = self.v6.iter().map(|w| w.load(Ordering::Relaxed)).collect();
                (0..=128u8)
                    .rev()
                    .filter(|&n| words.get(usize::from(n / 64)).is_some_and(|w| w & (1 << (n % 64)) != 0))
                    .collect()
            }
        }
    }
}

/// The parts a target's key is hashed from (the caller hashes them with its secret key).
pub fn key_parts(target: &Target) -> (&'static str, Vec<u8>) {
    match target {
        Target::Range(net) => {
            let mut bytes = vec![net.prefix_len()];
            match net.network() {
                IpAddr::V4(a) => bytes.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => bytes.extend_from_slice(&a.octets()),
            }
            ("cs-range", bytes)
        }
        Target::Country(code) => ("cs-country", code.to_vec()),
        Target::As(asn) => ("cs-as", asn.to_be_bytes().to_vec()),
    }
}

/// The targets an address falls under, one per prefix length in use (longest first).
pub fn address_targets(addr: IpAddr, lengths: &PrefixLengths) -> Vec<Target> {
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    lengths
        .for_address(addr)
        .into_iter()
        .filter_map(|n| ipnet::IpNet::new(addr, n).ok())
        .map(|net| Target::Range(net.trunc()))
        .collect()
}

/// Adds a decision (`add`) or removes it, at `now`.
pub fn apply(t: &mut Guard<'_, DecisionRecord>, key: &Key, change: &Change, add: bool, now_secs: u64) {
    let now_ms = now_secs * 1000;
    t.update(key, now_ms, |current| {
        let mut record = current.unwrap_or_default();
        let until = if add {
            u32::try_from(now_secs.saturating_add(change.secs_left)).unwrap_or(u32::MAX)
        } else {
            0
        };
        record.until[slot(change.remedy)] = until;
        match record.remedy(now_secs) {
            Some(_) => (Some((record, record.expires_ms())), ()),
            // Nothing left in force: let the entry expire now.
            None => (Some((record, now_ms)), ()),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn key(target: &Target) -> Key {
        let (purpose, bytes) = key_parts(target);
        let mut k = [0u8; 16];
        for (i, b) in purpose.bytes().chain(bytes).enumerate() {
            k[i % 16] = k[i % 16].wrapping_mul(31).wrapping_add(b);
        }
        k
    }

    fn change(remedy: Remedy, target: &str, secs: u64) -> Change {
        Change { remedy, target: Target::Range(target.parse::<ipnet::IpNet>().unwrap().trunc()), secs_left: secs }
    }

    #[test]
    fn ranges_stay_ranges_and_ban_beats_captcha() {
        let (_buffer, table) = crate::state::table::test_table::<DecisionRecord>(256);
        let lengths = PrefixLengths::default();
        let now = 1_000_000;
        let decisions = [
            change(Remedy::Captcha, "203.0.113.0/24", 3600),
            change(Remedy::Ban, "203.0.113.7/32", 60),
            change(Remedy::Ban, "2001:db8::/32", 3600),
        ];
        table.with(1, |t| {
            for d in &decisions {
                let Target::Range(net) = d.target else { unreachable!() };
                lengths.mark(net);
                apply(t, &key(&d.target), d, true, now);
            }
        });
        let verdict = |addr: &str, at: u64| {
            table.with(1, |t| {
                address_targets(ip(addr), &lengths)
                    .iter()
                    .filter_map(|target| t.get(&key(target), at * 1000).and_then(|r| r.remedy(at)))
                    .min_by_key(|r| slot(*r))
            })
        };
        assert_eq!(lengths.for_address(ip("1.2.3.4")), [32, 24]);
        assert_eq!(verdict("203.0.113.7", now), Some(Remedy::Ban));
        assert_eq!(verdict("203.0.113.8", now), Some(Remedy::Captcha));
        assert_eq!(verdict("::ffff:203.0.113.9", now), Some(Remedy::Captcha));
        assert_eq!(verdict("203.0.114.8", now), None);
        assert_eq!(verdict("2001:db8:5::1", now), Some(Remedy::Ban));
        // The ban runs out first; the range's captcha still holds.
        assert_eq!(verdict("203.0.113.7", now + 61), Some(Remedy::Captcha));
        assert_eq!(verdict("203.0.113.7", now + 3601), None);
        // Deleting the range's captcha frees the range at once.
        table.with(1, |t| apply(t, &key(&decisions[0].target), &decisions[0], false, now + 10));
        assert_eq!(verdict("203.0.113.8", now + 10), None);
    }

    #[test]
    fn records_pick_the_strongest_remedy() {
        let mut r = DecisionRecord::default();
        assert_eq!(r.remedy(0), None);
        r.until[slot(Remedy::Other)] = 100;
        assert_eq!(r.remedy(50), Some(Remedy::Other));
        r.until[slot(Remedy::Captcha)] = 80;
        assert_eq!(r.remedy(50), Some(Remedy::Captcha));
        r.until[slot(Remedy::Ban)] = 60;
        assert_eq!(r.remedy(50), Some(Remedy::Ban));
        assert_eq!(r.remedy(70), Some(Remedy::Captcha));
        assert_eq!(r.remedy(90), Some(Remedy::Other));
        assert_eq!(r.remedy(100), None);
    }
}
