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
//! clears it unless it names the decision kept (see [`apply`]); a full pull
//! (`startup=true`), made at start and every hour, rebuilds the picture: it writes every entry
//! under a new generation and then publishes that generation, so entries it did not mention
//! stop counting at once, without a sweep of the table.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::net::IpAddr;

use super::stream::{Change, Remedy, Target};
use crate::state::table::{Guard, Key, Record};

/// Until when each remedy applies to a target (Unix seconds; 0: not at all), and which
/// decision set it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionRecord {
    until: [u32; 3],
    /// The pull that wrote it: an entry older than the generation in force does not count.
    generation: u32,
    /// The low 32 bits of the Local API's id of the decision behind each remedy.
    ids: [u32; 3],
    _reserved: u32,
}

// SAFETY: plain integers: valid for every bit pattern, no pointers.
unsafe impl Record for DecisionRecord {
    const KIND: u32 = u32::from_be_bytes(*b"CSD2");
    const NAME: &'static str = "CrowdSec decisions";
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
/// when an entry is added and never cleared: a stale bit costs one lookup that finds nothing.
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

    /// The lengths in use for this address's family, longest first. Only the set bits are
    /// visited: a request pays for the lengths in use, not for all 33 or 129.
    pub fn for_address(&self, addr: IpAddr) -> impl Iterator<Item = u8> {
        let mut words = match addr {
            IpAddr::V4(_) => [self.v4.load(Ordering::Relaxed) & ((1 << 33) - 1), 0, 0],
            IpAddr::V6(_) => self.v6.each_ref().map(|w| w.load(Ordering::Relaxed)),
        };
        // /128 lives in the third word's bit 0; nothing above it counts.
        words[2] &= 1;
        let mut word = words.len();
        core::iter::from_fn(move || loop {
            let bits = words.get_mut(word.checked_sub(1)?)?;
            if *bits == 0 {
                word -= 1;
                continue;
            }
            let bit = 63 - bits.leading_zeros();
            *bits &= !(1u64 << bit);
            return Some(((word - 1) * 64) as u8 + bit as u8);
        })
    }
}

/// What the whole store is at: kept in the zone's header, atomics only.
#[repr(C)]
#[derive(Debug, Default)]
pub struct StoreStatus {
    pub lengths: PrefixLengths,
    /// The generation in force: entries written under an older one do not count.
    floor: AtomicU32,
    /// The last generation handed out to a full pull.
    generation: AtomicU32,
    /// Country (bit 0) and AS (bit 1) decisions exist.
    scopes: AtomicU32,
    _reserved: u32,
    /// When the last pull (full or not) succeeded, Unix seconds; 0: never.
    pub pulled_at: AtomicU64,
    /// Decisions counted by the last full pull.
    pub count: AtomicU64,
}

impl StoreStatus {
    /// The generation deltas write under.
    pub fn current(&self) -> u32 {
        self.floor.load(Ordering::Acquire)
    }

    /// A generation for a new full pull: above the one in force and any handed out before.
    pub fn next_generation(&self) -> u32 {
        self.generation
            .fetch_max(self.floor.load(Ordering::Acquire), Ordering::AcqRel);
        self.generation
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1)
    }

    /// Makes a full pull's entries the only ones that count.
    pub fn publish(&self, generation: u32, count: u64, now_secs: u64) {
        self.floor.fetch_max(generation, Ordering::AcqRel);
        self.count.store(count, Ordering::Relaxed);
        self.pulled_at.store(now_secs, Ordering::Relaxed);
    }

    /// Whether a full pull has ever been published in this zone.
    pub fn loaded(&self) -> bool {
        self.floor.load(Ordering::Acquire) > 0
    }

    pub fn note_target(&self, target: &Target) {
        match target {
            Target::Range(net) => self.lengths.mark(*net),
            Target::Country(_) => {
                self.scopes.fetch_or(1, Ordering::Relaxed);
            }
            Target::As(_) => {
                self.scopes.fetch_or(2, Ordering::Relaxed);
            }
        }
    }

    /// Whether country or AS decisions exist (so that a request looks its address up).
    pub fn has_geo(&self) -> (bool, bool) {
        let scopes = self.scopes.load(Ordering::Relaxed);
        (scopes & 1 != 0, scopes & 2 != 0)
    }

    /// The strongest remedy in force for an entry, if it counts.
    pub fn remedy(&self, record: Option<&DecisionRecord>, now_secs: u64) -> Option<Remedy> {
        record
            .filter(|r| r.generation >= self.current())
            .and_then(|r| r.remedy(now_secs))
    }
}

/// The strongest of several remedies.
pub fn strongest(a: Option<Remedy>, b: Option<Remedy>) -> Option<Remedy> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if slot(a) <= slot(b) { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The parts a target's key is hashed from (the caller hashes them with its secret key).
pub fn key_parts(target: &Target) -> (&'static str, ([u8; 17], usize)) {
    let mut bytes = [0u8; 17];
    let len = match target {
        Target::Range(net) => {
            bytes[0] = net.prefix_len();
            match net.network() {
                IpAddr::V4(a) => {
                    bytes[1..5].copy_from_slice(&a.octets());
                    5
                }
                IpAddr::V6(a) => {
                    bytes[1..17].copy_from_slice(&a.octets());
                    17
                }
            }
        }
        Target::Country(code) => {
            bytes[..2].copy_from_slice(code);
            2
        }
        Target::As(asn) => {
            bytes[..4].copy_from_slice(&asn.to_be_bytes());
            4
        }
    };
    let purpose = match target {
        Target::Range(_) => "cs-range",
        Target::Country(_) => "cs-country",
        Target::As(_) => "cs-as",
    };
    (purpose, (bytes, len))
}

/// The targets an address falls under, one per prefix length in use (longest first).
pub fn address_targets(addr: IpAddr, lengths: &PrefixLengths) -> impl Iterator<Item = Target> {
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    lengths
        .for_address(addr)
        .filter_map(move |n| ipnet::IpNet::new(addr, n).ok())
        .map(|net| Target::Range(net.trunc()))
}

/// Adds a decision (`add`) or removes it, at `now`, under `generation`.
///
/// An entry of another generation is started afresh. Adding keeps the decision that lasts
/// longer when two of one type cover the same target; removing clears a remedy only when the
/// removed decision is the one kept (or has no id), since the Local API repeats deletions and
/// must not take away a newer decision with an old one.
pub fn apply(
    t: &mut Guard<'_, DecisionRecord>,
    key: &Key,
    change: &Change,
    add: bool,
    now_secs: u64,
    generation: u32,
) {
    let now_ms = now_secs * 1000;
    let s = slot(change.remedy);
    let id = change.id as u32;
    t.update(key, now_ms, |current| {
        let mut record = current
            .filter(|r| r.generation == generation)
            .unwrap_or(DecisionRecord {
                generation,
                ..DecisionRecord::default()
            });
        if add {
            let until =
                u32::try_from(now_secs.saturating_add(change.secs_left)).unwrap_or(u32::MAX);
            let kept_lasts_longer = u64::from(record.until[s]) > now_secs
                && record.until[s] >= until
                && record.ids[s] != id;
            if !kept_lasts_longer {
                record.until[s] = until;
                record.ids[s] = id;
            }
        } else if change.id == 0 || record.ids[s] == id {
            record.until[s] = 0;
        }
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
        let (purpose, (bytes, len)) = key_parts(target);
        let mut k = [0u8; 16];
        for (i, b) in purpose
            .bytes()
            .chain(bytes[..len].iter().copied())
            .enumerate()
        {
            k[i % 16] = k[i % 16].wrapping_mul(31).wrapping_add(b);
        }
        k
    }

    fn change(remedy: Remedy, target: &str, secs: u64, id: u64) -> Change {
        Change {
            remedy,
            target: Target::Range(target.parse::<ipnet::IpNet>().unwrap().trunc()),
            secs_left: secs,
            id,
        }
    }

    struct Store {
        _buffer: Vec<crate::state::table::TestLine>,
        table: crate::state::table::Table<DecisionRecord>,
        status: StoreStatus,
    }

    impl Store {
        fn new() -> Store {
            let (buffer, table) = crate::state::table::test_table::<DecisionRecord>(256);
            Store {
                _buffer: buffer,
                table,
                status: StoreStatus::default(),
            }
        }

        /// A full pull: everything under a new generation, then published.
        fn full(&self, decisions: &[Change], now: u64) {
            let generation = self.status.next_generation();
            self.table
                .with(crate::state::holder::Holder::immortal(1), |t| {
                    for d in decisions {
                        self.status.note_target(&d.target);
                        apply(t, &key(&d.target), d, true, now, generation);
                    }
                });
            self.status.publish(generation, decisions.len() as u64, now);
        }

        fn delta(&self, new: &[Change], deleted: &[Change], now: u64) {
            let generation = self.status.current();
            self.table
                .with(crate::state::holder::Holder::immortal(1), |t| {
                    for d in deleted {
                        apply(t, &key(&d.target), d, false, now, generation);
                    }
                    for d in new {
                        self.status.note_target(&d.target);
                        apply(t, &key(&d.target), d, true, now, generation);
                    }
                });
        }

        fn verdict(&self, addr: &str, at: u64) -> Option<Remedy> {
            self.table
                .with(crate::state::holder::Holder::immortal(1), |t| {
                    address_targets(ip(addr), &self.status.lengths)
                        .map(|target| {
                            self.status
                                .remedy(t.get(&key(&target), at * 1000).as_deref(), at)
                        })
                        .fold(None, strongest)
                })
        }
    }

    const NOW: u64 = 1_000_000;

    #[test]
    fn ranges_stay_ranges_and_ban_beats_captcha() {
        let store = Store::new();
        let decisions = [
            change(Remedy::Captcha, "203.0.113.0/24", 3600, 1),
            change(Remedy::Ban, "203.0.113.7/32", 60, 2),
            change(Remedy::Ban, "2001:db8::/32", 3600, 3),
        ];
        store.full(&decisions, NOW);
        assert_eq!(
            store
                .status
                .lengths
                .for_address(ip("1.2.3.4"))
                .collect::<Vec<_>>(),
            [32, 24]
        );
        assert_eq!(
            store
                .status
                .lengths
                .for_address(ip("::1"))
                .collect::<Vec<_>>(),
            [32]
        );
        let lengths = PrefixLengths::default();
        for net in [
            "0.0.0.0/0",
            "1.2.3.4/32",
            "10.0.0.0/8",
            "::/0",
            "::1/128",
            "2001:db8::/64",
            "2001:db8::/63",
            "2001:db8::/65",
        ] {
            lengths.mark(net.parse().unwrap());
        }
        assert_eq!(
            lengths.for_address(ip("1.2.3.4")).collect::<Vec<_>>(),
            [32, 8, 0]
        );
        assert_eq!(
            lengths.for_address(ip("::2")).collect::<Vec<_>>(),
            [128, 65, 64, 63, 0]
        );
        assert_eq!(store.verdict("203.0.113.7", NOW), Some(Remedy::Ban));
        assert_eq!(store.verdict("203.0.113.8", NOW), Some(Remedy::Captcha));
        assert_eq!(store.verdict("203.0.113.0", NOW), Some(Remedy::Captcha));
        assert_eq!(store.verdict("203.0.113.255", NOW), Some(Remedy::Captcha));
        assert_eq!(
            store.verdict("::ffff:203.0.113.9", NOW),
            Some(Remedy::Captcha)
        );
        assert_eq!(store.verdict("203.0.114.8", NOW), None);
        assert_eq!(store.verdict("2001:db8:5::1", NOW), Some(Remedy::Ban));
        assert_eq!(store.verdict("2001:db9::1", NOW), None);
        // The ban runs out first; the range's captcha still holds.
        assert_eq!(
            store.verdict("203.0.113.7", NOW + 61),
            Some(Remedy::Captcha)
        );
        // Deleting the range's captcha frees the range at once.
        store.delta(&[], &decisions[..1], NOW + 62);
        assert_eq!(store.verdict("203.0.113.8", NOW + 62), None);
        assert_eq!(store.verdict("203.0.113.7", NOW + 62), None);
        assert_eq!(store.verdict("2001:db8::1", NOW + 3601), None);
    }

    /// The Local API repeats a deletion for a couple of seconds: a repeat must not take away
    /// a decision added since on the same target.
    #[test]
    fn repeated_deletions_spare_newer_decisions() {
        let store = Store::new();
        let old = change(Remedy::Ban, "192.0.2.1/32", 3600, 10);
        let new = change(Remedy::Ban, "192.0.2.1/32", 600, 11);
        store.full(&[old], NOW);
        store.delta(&[], &[old], NOW + 1);
        assert_eq!(store.verdict("192.0.2.1", NOW + 1), None);
        store.delta(&[new], &[old], NOW + 2);
        assert_eq!(store.verdict("192.0.2.1", NOW + 2), Some(Remedy::Ban));
        store.delta(&[], &[old], NOW + 3);
        assert_eq!(
            store.verdict("192.0.2.1", NOW + 3),
            Some(Remedy::Ban),
            "the repeat names the old decision"
        );
        store.delta(&[], &[new], NOW + 4);
        assert_eq!(store.verdict("192.0.2.1", NOW + 4), None);
        // Without ids, a deletion goes by target and type.
        store.delta(
            &[change(Remedy::Captcha, "192.0.2.2/32", 60, 0)],
            &[],
            NOW + 5,
        );
        assert_eq!(store.verdict("192.0.2.2", NOW + 5), Some(Remedy::Captcha));
        store.delta(
            &[],
            &[change(Remedy::Captcha, "192.0.2.2/32", 0, 0)],
            NOW + 6,
        );
        assert_eq!(store.verdict("192.0.2.2", NOW + 6), None);
    }

    /// Two bans on one target: the longer one is kept, whichever comes first.
    #[test]
    fn the_longer_of_two_decisions_is_kept() {
        let store = Store::new();
        store.full(
            &[
                change(Remedy::Ban, "192.0.2.3/32", 3600, 1),
                change(Remedy::Ban, "192.0.2.3/32", 60, 2),
            ],
            NOW,
        );
        assert_eq!(store.verdict("192.0.2.3", NOW + 120), Some(Remedy::Ban));
        store.delta(&[change(Remedy::Ban, "192.0.2.4/32", 60, 3)], &[], NOW);
        store.delta(&[change(Remedy::Ban, "192.0.2.4/32", 3600, 4)], &[], NOW);
        assert_eq!(store.verdict("192.0.2.4", NOW + 120), Some(Remedy::Ban));
        // The same decision again (a full pull repeats it) just refreshes its time.
        store.delta(
            &[change(Remedy::Ban, "192.0.2.4/32", 30, 4)],
            &[],
            NOW + 100,
        );
        assert_eq!(store.verdict("192.0.2.4", NOW + 131), None);
    }

    /// A full pull replaces everything: what it does not mention stops counting when it is
    /// published, not before.
    #[test]
    fn a_full_pull_replaces_the_picture() {
        let store = Store::new();
        assert!(!store.status.loaded());
        store.full(
            &[
                change(Remedy::Ban, "192.0.2.5/32", 3600, 1),
                change(Remedy::Captcha, "192.0.2.6/32", 3600, 2),
            ],
            NOW,
        );
        assert!(store.status.loaded());
        store.delta(&[change(Remedy::Ban, "192.0.2.7/32", 3600, 3)], &[], NOW);
        assert_eq!(store.verdict("192.0.2.7", NOW), Some(Remedy::Ban));
        // Pull 2 knows .6 (now a ban) and .7; .5 was deleted while the stream was down.
        let generation = store.status.next_generation();
        store
            .table
            .with(crate::state::holder::Holder::immortal(1), |t| {
                let d = change(Remedy::Ban, "192.0.2.6/32", 3600, 4);
                apply(t, &key(&d.target), &d, true, NOW + 5, generation);
            });
        // Half-written: the old picture still holds for .5, and .6 already shows the new entry.
        assert_eq!(store.verdict("192.0.2.5", NOW + 5), Some(Remedy::Ban));
        assert_eq!(store.verdict("192.0.2.6", NOW + 5), Some(Remedy::Ban));
        store
            .table
            .with(crate::state::holder::Holder::immortal(1), |t| {
                let d = change(Remedy::Ban, "192.0.2.7/32", 3600, 3);
                apply(t, &key(&d.target), &d, true, NOW + 5, generation);
            });
        store.status.publish(generation, 2, NOW + 5);
        assert_eq!(store.verdict("192.0.2.5", NOW + 5), None);
        assert_eq!(store.verdict("192.0.2.6", NOW + 5), Some(Remedy::Ban));
        assert_eq!(store.verdict("192.0.2.7", NOW + 5), Some(Remedy::Ban));
        // The captcha .6 had before pull 2 is gone with its generation.
        store.delta(&[], &[change(Remedy::Ban, "192.0.2.6/32", 0, 4)], NOW + 6);
        assert_eq!(store.verdict("192.0.2.6", NOW + 6), None);
        // An older generation published late (a worker of the previous configuration) never
        // takes the floor back.
        store.status.publish(generation - 1, 9, NOW + 7);
        assert_eq!(store.verdict("192.0.2.5", NOW + 7), None);
        assert!(store.status.next_generation() > generation);
    }

    #[test]
    fn countries_and_networks_are_noted() {
        let status = StoreStatus::default();
        assert_eq!(status.has_geo(), (false, false));
        status.note_target(&Target::As(64500));
        assert_eq!(status.has_geo(), (false, true));
        status.note_target(&Target::Country(*b"KP"));
        assert_eq!(status.has_geo(), (true, true));
        assert_ne!(
            key_parts(&Target::As(1)),
            key_parts(&Target::Country([0, 1]))
        );
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
        assert_eq!(
            strongest(Some(Remedy::Other), Some(Remedy::Ban)),
            Some(Remedy::Ban)
        );
        assert_eq!(
            strongest(None, Some(Remedy::Captcha)),
            Some(Remedy::Captcha)
        );
    }
}
