//! The challenges that have been answered, so that each is single-use across all workers.
//!
//! # Why not a table
//!
//! A table of spent nonces that is full must either forget one (and accept its challenge a
//! second time) or refuse every answer until room frees up: an attacker who fills it, with
//! one solved or unsolved captcha per entry, locks everyone out. So this is a Bloom filter per
//! two-minute window of challenge expiry instead: it never forgets a nonce while its challenge
//! lives, it holds about ten times more in the same memory (10 bits and 10 probes per nonce
//! for one false "already used" in 1,000 at its designed load, [`SpentSet::designed_load`]),
//! and beyond that load it degrades gradually: more fresh answers are taken for replays and
//! get a fresh captcha (fail closed, never a pass), and none is ever taken for fresh twice.
//!
//! # Windows
//!
//! A nonce belongs to the window of its challenge's expiry (`expires / 120 s`), so it is
//! checked and set in exactly one of three filters, used in turn: at any time the live
//! challenges expire in the current window or the next, and the third filter, whose
//! challenges have all expired, is cleared when its window comes round again.
//!
//! # Faults
//!
//! The set is guarded by a [`LockWord`], taken over when its holder dies. Nothing needs
//! repair after such a death: a nonce half set was never judged (the answer is judged after
//! this returns), and a filter is marked [`CLEARING`] before it is cleared and given its new
//! window only after, so a clearing cut short is done again by the next holder.

use core::mem::{align_of, size_of};
use core::ptr::{addr_of, NonNull};
use core::sync::atomic::{AtomicU64, Ordering};

use super::crash_point;
use super::holder::{pid_of, Holder};
use super::lock::{report_takeover, LockWord};
use super::table::TableError;

/// How long a window is, in seconds of challenge expiry: at least a challenge's life.
pub const WINDOW_SECS: u64 = 120;

/// Probes per nonce. With 14.4 bits per nonce (the designed load) one fresh nonce in 1,000
/// finds all its bits set by others.
const PROBES: u32 = 10;
/// Bits per nonce at the designed load, times ten (for integer arithmetic).
const BITS_PER_NONCE_X10: usize = 144;

const FILTERS: usize = 3;
const MAGIC: u64 = u64::from_be_bytes(*b"cfyspent");
const LAYOUT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 256;
/// A filter's window while it is being cleared.
const CLEARING: u64 = u64::MAX;

/// What spending a challenge's nonce found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// First use: the challenge may be judged.
    Fresh,
    /// Answered before (or, rarely, taken for answered: see the module docs): stale.
    Replayed,
}

#[repr(C)]
struct Header {
    magic: u64,
    layout_version: u32,
    probes: u32,
    /// 64-bit words per filter.
    words: u64,
    region_len: u64,
    lock: LockWord,
    /// Each filter's window plus one (0: none yet; [`CLEARING`]).
    windows: [AtomicU64; FILTERS],
    /// Nonces set in each filter's window.
    spent: [AtomicU64; FILTERS],
    takeovers: AtomicU64,
}

const _: () = assert!(size_of::<Header>() <= HEADER_BYTES);

/// A handle on the spent set in a memory region (see the module docs). Cheap to copy.
#[derive(Clone, Copy)]
pub struct SpentSet {
    header: NonNull<Header>,
    words: NonNull<AtomicU64>,
    /// Words per filter.
    per_filter: usize,
}

// SAFETY: the handle is an address plus immutable geometry; everything it points to is
// atomics, written under the lock word that serialises processes (and so threads).
unsafe impl Send for SpentSet {}
// SAFETY: see `Send`.
unsafe impl Sync for SpentSet {}

impl core::fmt::Debug for SpentSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpentSet")
            .field("designed_load", &self.designed_load())
            .finish()
    }
}

impl SpentSet {
    /// Alignment the region's start address needs.
    pub fn region_align() -> usize {
        align_of::<Header>().max(align_of::<AtomicU64>())
    }

    /// The designed load of a set laid out in `len` bytes (0 if too small).
    pub fn designed_load_for(len: usize) -> usize {
        Self::words_for(len).map_or(0, |words| words * 64 * 10 / BITS_PER_NONCE_X10)
    }

    fn words_for(len: usize) -> Option<usize> {
        let words = len.checked_sub(HEADER_BYTES)? / size_of::<AtomicU64>() / FILTERS;
        (words >= 1).then_some(words)
    }

    /// Lays out an empty set in the region, whatever it held before.
    ///
    /// # Safety
    ///
    /// `region` must point to `len` bytes of readable and writable memory that stays mapped as
    /// long as any handle on the set is used, in this or any other process, and that nothing
    /// else accesses while `init` runs.
    pub unsafe fn init(region: *mut u8, len: usize) -> Result<SpentSet, TableError> {
        let per_filter = Self::words_for(len).ok_or(TableError::TooSmall {
            len,
            min: HEADER_BYTES + 8 * FILTERS,
        })?;
        let set = Self::locate(region, per_filter)?;
        // SAFETY: exclusive access per the contract; the header and words lie in the region.
        unsafe {
            set.header.as_ptr().write(Header {
                magic: MAGIC,
                layout_version: LAYOUT_VERSION,
                probes: PROBES,
                words: per_filter as u64,
                region_len: len as u64,
                lock: LockWord::new(),
                windows: Default::default(),
                spent: Default::default(),
                takeovers: AtomicU64::new(0),
            });
            for index in 0..per_filter * FILTERS {
                set.words.as_ptr().add(index).write(AtomicU64::new(0));
            }
        }
        Ok(set)
    }

    /// Attaches to a set that [`SpentSet::init`] laid out in this region.
    ///
    /// # Safety
    ///
    /// As for [`SpentSet::init`], except that other processes may use the set meanwhile.
    pub unsafe fn attach(region: *mut u8, len: usize) -> Result<SpentSet, TableError> {
        let align = Self::region_align();
        if region.is_null() || region as usize % align != 0 {
            return Err(TableError::Misaligned { align });
        }
        if len < HEADER_BYTES {
            return Err(TableError::NotATable);
        }
        // SAFETY: aligned, inside the region; these fields are written once by `init`.
        let (magic, version, probes, words, region_len) = unsafe {
            let header = region.cast::<Header>();
            (
                addr_of!((*header).magic).read(),
                addr_of!((*header).layout_version).read(),
                addr_of!((*header).probes).read(),
                addr_of!((*header).words).read(),
                addr_of!((*header).region_len).read(),
            )
        };
        if magic != MAGIC {
            return Err(TableError::NotATable);
        }
        if version != LAYOUT_VERSION {
            return Err(TableError::LayoutVersion {
                found: version,
                expected: LAYOUT_VERSION,
            });
        }
        if region_len != len as u64 {
            return Err(TableError::RegionLen {
                laid_out: region_len,
                len,
            });
        }
        let per_filter = Self::words_for(len).ok_or(TableError::Geometry)?;
        if probes != PROBES || words != per_filter as u64 {
            return Err(TableError::Geometry);
        }
        Self::locate(region, per_filter)
    }

    fn locate(region: *mut u8, per_filter: usize) -> Result<SpentSet, TableError> {
        let align = Self::region_align();
        if region as usize % align != 0 {
            return Err(TableError::Misaligned { align });
        }
        let header =
            NonNull::new(region.cast::<Header>()).ok_or(TableError::Misaligned { align })?;
        let words = NonNull::new(region.wrapping_add(HEADER_BYTES).cast::<AtomicU64>())
            .ok_or(TableError::Misaligned { align })?;
        Ok(SpentSet {
            header,
            words,
            per_filter,
        })
    }

    fn header(&self) -> &Header {
        // SAFETY: laid out by `init` in a region that the init/attach contract keeps mapped;
        // every field read after `init` is immutable or atomic.
        unsafe { self.header.as_ref() }
    }

    fn word(&self, filter: usize, index: usize) -> &AtomicU64 {
        // SAFETY: `filter < FILTERS` and `index < per_filter` at every call (positions are
        // taken modulo the filter's bits), so the word lies in the region.
        unsafe {
            &*self
                .words
                .as_ptr()
                .add(filter * self.per_filter + index % self.per_filter)
        }
    }

    /// Nonces per window the set is sized for: one false "already used" in about 1,000.
    pub fn designed_load(&self) -> usize {
        self.per_filter * 64 * 10 / BITS_PER_NONCE_X10
    }

    /// Marks the nonce of a challenge that expires at `expires_secs` (Unix seconds) as used;
    /// `Fresh` the first time.
    pub fn spend(&self, holder: Holder, nonce: &[u8; 16], expires_secs: u64) -> Spend {
        self.locked(holder, |set| {
            let Some(filter) = set.filter_for(expires_secs, true) else {
                return Spend::Replayed;
            };
            let mut fresh = false;
            for bit in positions(nonce, set.per_filter * 64) {
                let word = set.word(filter, bit / 64);
                let mask = 1u64 << (bit % 64);
                let old = word.load(Ordering::Relaxed);
                if old & mask == 0 {
                    fresh = true;
                    word.store(old | mask, Ordering::Relaxed);
                    crash_point();
                }
            }
            if fresh {
                set.header().spent[filter].fetch_add(1, Ordering::Relaxed);
                Spend::Fresh
            } else {
                Spend::Replayed
            }
        })
    }

    /// Whether the nonce of a challenge that expires at `expires_secs` was used.
    pub fn is_spent(&self, holder: Holder, nonce: &[u8; 16], expires_secs: u64) -> bool {
        self.locked(holder, |set| {
            set.filter_for(expires_secs, false).is_some_and(|filter| {
                positions(nonce, set.per_filter * 64).all(|bit| {
                    set.word(filter, bit / 64).load(Ordering::Relaxed) & 1 << (bit % 64) != 0
                })
            })
        })
    }

    /// The nonces spent in the window of `now_secs` and the next (the live ones), and the
    /// designed load of one window.
    pub fn load(&self, now_secs: u64) -> (u64, usize) {
        let window = now_secs / WINDOW_SECS;
        let header = self.header();
        let spent = (window..=window + 1)
            .map(|w| {
                let filter = (w % FILTERS as u64) as usize;
                match header.windows[filter].load(Ordering::Relaxed) == w + 1 {
                    true => header.spent[filter].load(Ordering::Relaxed),
                    false => 0,
                }
            })
            .max()
            .unwrap_or(0);
        (spent, self.designed_load())
    }

    /// The chance that a fresh nonce of a challenge expiring at `expires_secs` is taken for
    /// a used one: the share of its filter's bits set, to the power of the probes. Reads the
    /// whole filter (a few hundred kilobytes at most) without the lock: for reports, not for
    /// every request.
    pub fn false_replay_rate(&self, expires_secs: u64) -> f64 {
        let window = expires_secs / WINDOW_SECS;
        let filter = (window % FILTERS as u64) as usize;
        if self.header().windows[filter].load(Ordering::Relaxed) != window + 1 {
            return 0.0;
        }
        let ones: u64 = (0..self.per_filter)
            .map(|index| {
                u64::from(
                    self.word(filter, index)
                        .load(Ordering::Relaxed)
                        .count_ones(),
                )
            })
            .sum();
        (ones as f64 / (self.per_filter * 64) as f64).powi(PROBES as i32)
    }

    /// Times the lock was taken over from a process that died holding it.
    pub fn takeovers(&self) -> u64 {
        self.header().takeovers.load(Ordering::Relaxed)
    }

    fn locked<R>(&self, holder: Holder, f: impl FnOnce(&SpentSet) -> R) -> R {
        let header = self.header();
        let held = header.lock.acquire(holder, None);
        let taken_from = held.taken_from;
        if taken_from.is_some() {
            header.takeovers.fetch_add(1, Ordering::Relaxed);
        }
        let result = f(self);
        drop(held);
        if let Some(dead) = taken_from {
            report_takeover("spent challenges", pid_of(dead));
        }
        result
    }

    /// The filter holding the window of `expires_secs`; with `claim`, a filter whose window
    /// has passed is cleared and given this one. `None` when the filter holds a later window:
    /// the challenge expired long ago.
    fn filter_for(&self, expires_secs: u64, claim: bool) -> Option<usize> {
        let window = expires_secs / WINDOW_SECS;
        let filter = (window % FILTERS as u64) as usize;
        let slot = &self.header().windows[filter];
        let wanted = window.saturating_add(1);
        let current = slot.load(Ordering::Relaxed);
        if current == wanted {
            return Some(filter);
        }
        if current != CLEARING && current > wanted || !claim {
            return None;
        }
        slot.store(CLEARING, Ordering::Relaxed);
        crash_point();
        for index in 0..self.per_filter {
            self.word(filter, index).store(0, Ordering::Relaxed);
            crash_point();
        }
        self.header().spent[filter].store(0, Ordering::Relaxed);
        crash_point();
        slot.store(wanted, Ordering::Relaxed);
        Some(filter)
    }
}

/// The nonce's bit positions among `bits`: double hashing over its two halves (nonces come
/// from the OS-seeded ChaCha20 stream of their challenge, signed: nobody picks them).
fn positions(nonce: &[u8; 16], bits: usize) -> impl Iterator<Item = usize> {
    let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = *nonce;
    let h1 = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
    let h2 = u64::from_le_bytes([i, j, k, l, m, n, o, p]) | 1;
    let bits = bits.max(1) as u64;
    (0..u64::from(PROBES))
        .map(move |probe| (h1.wrapping_add(probe.wrapping_mul(h2)) % bits) as usize)
}

/// The spent set against a model, with holders dying with the lock and killed between two
/// writes: the unit tests' and the fuzz target `spent`'s.
#[cfg(any(test, feature = "fuzz-harness"))]
pub mod harness {
    use std::collections::HashSet;

    use super::*;
    use crate::state::harness::{killed_during, process, Input, Rng, Source, DEAD_PIDS, PID};

    /// What a run did, which a long enough run must have done.
    pub(crate) struct Run {
        pub(crate) kills: u64,
        pub(crate) recycled: u64,
    }

    /// Random spends and checks of nonces across five windows moving forward (so that filters
    /// are recycled),
    /// other processes attaching, holders dying with the lock and holders killed in the middle
    /// of a spend or of a clearing. The rules: a nonce spent (answered `Fresh`) is `Replayed`
    /// and `is_spent` for as long as its filter holds its window, whatever else happened; a
    /// nonce of a window its filter has left behind is never fresh; a filter claimed for a new
    /// window is empty, so its first nonce is fresh; the filters' windows are the model's.
    pub(crate) fn run(source: &mut impl Source) -> Run {
        // 4 kB: a designed load of about 60 per window, so that false replays happen too.
        let mut region = vec![0xA5A5_A5A5_A5A5_A5A5u64; 4096 / 8];
        let len = region.len() * 8;
        // SAFETY: the region outlives every handle, which stay in this function.
        let mut set = unsafe { SpentSet::init(region.as_mut_ptr().cast(), len) }.unwrap();
        let mut keys = Rng(source.next());
        let pool: Vec<[u8; 16]> = (0..48).map(|_| keys.key()).collect();
        // Each filter's window plus one, or CLEARING; what has been spent, by window.
        let mut windows = [0u64; FILTERS];
        let mut spent: HashSet<([u8; 16], u64)> = HashSet::new();
        let base = 1_800_000_000 / WINDOW_SECS * WINDOW_SECS;
        let mut run = Run { kills: 0, recycled: 0 };
        // Time goes on: the windows in use move forward now and then.
        let mut epoch = 0;
        while !source.exhausted() {
            if source.below(32) == 0 {
                epoch += 1;
            }
            let nonce = pool[source.below(pool.len() as u64) as usize];
            let expires =
                base + (epoch + source.below(5)) * WINDOW_SECS + source.below(WINDOW_SECS);
            let window = expires / WINDOW_SECS;
            let filter = (window % FILTERS as u64) as usize;
            // Any crash point a spend can pass: a filter's clearing passes one per word.
            let kill_after = match source.below(12) {
                0 => 1 + source.below(set.per_filter as u64 + u64::from(PROBES) + 3) as u32,
                _ => 0,
            };
            match source.below(10) {
                0..=5 => {
                    let held = windows[filter];
                    let mut got = None;
                    if killed_during(kill_after, || got = Some(set.spend(PID, &nonce, expires))) {
                        run.kills += 1;
                        set.header().lock.set_raw(process(DEAD_PIDS + 3).word());
                        // The spend may have claimed (part-cleared) the filter and set some
                        // of the nonce's bits: the filter's window is what it now says, and
                        // the nonce is not known to be spent.
                        windows[filter] = set.header().windows[filter].load(Ordering::Relaxed);
                        if windows[filter] != held {
                            spent.retain(|&(_, w)| (w % FILTERS as u64) as usize != filter);
                        }
                        continue;
                    }
                    let got = got.expect("finished");
                    if held != CLEARING && held > window + 1 {
                        assert_eq!(got, Spend::Replayed, "a nonce of a window left behind");
                    } else if held == window + 1 {
                        if spent.contains(&(nonce, window)) {
                            assert_eq!(got, Spend::Replayed, "a spent nonce taken for fresh");
                        }
                    } else {
                        assert_eq!(got, Spend::Fresh, "the first nonce of a claimed filter");
                        run.recycled += 1;
                        spent.retain(|&(_, w)| (w % FILTERS as u64) as usize != filter);
                        windows[filter] = window + 1;
                    }
                    if got == Spend::Fresh {
                        spent.insert((nonce, window));
                    }
                }
                6..=7 => {
                    let got = set.is_spent(PID, &nonce, expires);
                    if windows[filter] != window + 1 {
                        assert!(!got, "spent in a filter that holds another window");
                    } else if spent.contains(&(nonce, window)) {
                        assert!(got, "a spent nonce forgotten");
                    }
                }
                8 => set.header().lock.set_raw(process(DEAD_PIDS + 9).word()),
                _ => {
                    // SAFETY: as for `init`.
                    set = unsafe { SpentSet::attach(region.as_mut_ptr().cast(), len) }.unwrap();
                }
            }
            for (f, &w) in windows.iter().enumerate() {
                assert_eq!(set.header().windows[f].load(Ordering::Relaxed), w, "filter {f}");
            }
        }
        run
    }

    /// The fuzz target `spent`.
    pub fn fuzz(data: &[u8]) {
        run(&mut Input(data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::holder::Life;

    #[test]
    fn behaves_like_the_model() {
        for seed in 1..=20 {
            let run = harness::run(&mut crate::state::harness::Rng(seed).take(20_000));
            assert!(run.kills > 0 && run.recycled > 0, "seed {seed}");
        }
    }

    const ME: Holder = Holder::immortal(1);

    struct Region(Vec<u64>);

    impl Region {
        fn new(bytes: usize) -> Region {
            Region(vec![0xA5A5_A5A5_A5A5_A5A5; bytes / 8])
        }

        fn init(&mut self) -> SpentSet {
            let len = self.0.len() * 8;
            // SAFETY: the buffer outlives the set in every test using it.
            unsafe { SpentSet::init(self.0.as_mut_ptr().cast(), len) }.unwrap()
        }
    }

    fn nonce(n: u64) -> [u8; 16] {
        // splitmix64 twice: uniform, like the real nonces.
        let mix = |mut z: u64| {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&mix(n).to_le_bytes());
        out[8..].copy_from_slice(&mix(n ^ 0xDEAD_BEEF).to_le_bytes());
        out
    }

    const EXPIRES: u64 = 1_800_000_060;

    #[test]
    fn a_nonce_is_fresh_once() {
        let mut region = Region::new(64 * 1024);
        let set = region.init();
        assert_eq!(set.spend(ME, &nonce(1), EXPIRES), Spend::Fresh);
        assert_eq!(set.spend(ME, &nonce(1), EXPIRES), Spend::Replayed);
        assert!(set.is_spent(ME, &nonce(1), EXPIRES));
        assert!(!set.is_spent(ME, &nonce(2), EXPIRES));
        assert_eq!(set.spend(ME, &nonce(2), EXPIRES), Spend::Fresh);
    }

    /// The fault this replaces: a table that forgot an answered challenge after enough other
    /// solves, or refused every answer once full. Five times the designed load later, every
    /// nonce is still spent.
    #[test]
    fn never_forgets_and_degrades_gradually_beyond_its_load() {
        let mut region = Region::new(16 * 1024);
        let set = region.init();
        let load = set.designed_load() as u64;
        assert!(load > 800, "16 kB holds {load}");
        let mut false_replays = 0;
        for n in 0..5 * load {
            if set.spend(ME, &nonce(n), EXPIRES) == Spend::Replayed {
                false_replays += 1;
            }
            if n + 1 == load {
                // At the designed load, about one in a thousand.
                assert!(
                    false_replays <= 4,
                    "{false_replays} false replays by the designed load"
                );
            }
        }
        for n in 0..5 * load {
            assert_eq!(
                set.spend(ME, &nonce(n), EXPIRES),
                Spend::Replayed,
                "nonce {n} forgotten"
            );
        }
        let (spent, designed) = set.load(EXPIRES - 60);
        assert_eq!(designed as u64, load);
        assert_eq!(spent, 5 * load - false_replays);
        // Degraded, not refused: at five times the load, most fresh answers (about 3 in 4)
        // are taken for replays, as the estimate says; at the load, 1 in 1,000.
        let estimate = set.false_replay_rate(EXPIRES);
        let probes = 20_000;
        let measured = (0..probes)
            .filter(|n| set.is_spent(ME, &nonce(1 << 40 | n), EXPIRES))
            .count() as f64
            / probes as f64;
        assert!(
            (estimate - measured).abs() < 0.05,
            "estimate {estimate}, measured {measured}"
        );
        assert!((0.6..0.85).contains(&measured), "{measured}");
    }

    #[test]
    fn the_false_replay_rate_at_the_designed_load_is_about_one_in_a_thousand() {
        let mut region = Region::new(256 * 1024);
        let set = region.init();
        let load = set.designed_load() as u64;
        for n in 0..load {
            set.spend(ME, &nonce(n), EXPIRES);
        }
        let probes = 200_000;
        let false_replays = (0..probes)
            .filter(|n| set.is_spent(ME, &nonce(1 << 40 | n), EXPIRES))
            .count();
        let rate = false_replays as f64 / probes as f64;
        assert!(rate < 0.002, "{rate}");
        let estimate = set.false_replay_rate(EXPIRES);
        assert!((0.0005..0.0015).contains(&estimate), "{estimate}");
        assert_eq!(
            set.false_replay_rate(EXPIRES + WINDOW_SECS),
            0.0,
            "the next window is empty"
        );
    }

    #[test]
    fn windows_take_turns_and_old_ones_are_cleared() {
        let mut region = Region::new(8 * 1024);
        let set = region.init();
        let base = 1_800_000_000 / WINDOW_SECS * WINDOW_SECS;
        assert_eq!(set.spend(ME, &nonce(1), base + 10), Spend::Fresh);
        // The same nonce in the next window is another challenge's (nonces never repeat, but
        // windows keep apart).
        assert_eq!(
            set.spend(ME, &nonce(1), base + WINDOW_SECS + 10),
            Spend::Fresh
        );
        assert!(
            set.is_spent(ME, &nonce(1), base + 10),
            "the first window is kept while the second is used"
        );
        // Three windows on, the first filter is cleared and reused.
        assert_eq!(
            set.spend(ME, &nonce(2), base + 3 * WINDOW_SECS + 10),
            Spend::Fresh
        );
        assert!(!set.is_spent(ME, &nonce(1), base + 3 * WINDOW_SECS + 10));
        // A challenge of the window that filter held long ago: expired, never fresh.
        assert_eq!(set.spend(ME, &nonce(3), base + 10), Spend::Replayed);
        assert!(!set.is_spent(ME, &nonce(3), base + 10));
    }

    #[test]
    fn a_clearing_cut_short_is_done_again() {
        let mut region = Region::new(8 * 1024);
        let set = region.init();
        assert_eq!(set.spend(ME, &nonce(1), EXPIRES), Spend::Fresh);
        let filter = ((EXPIRES / WINDOW_SECS) % FILTERS as u64) as usize;
        // A holder killed in the middle of clearing this filter for a later window.
        set.header().windows[filter].store(CLEARING, Ordering::Relaxed);
        set.word(filter, 0).store(u64::MAX, Ordering::Relaxed);
        let later = EXPIRES + FILTERS as u64 * WINDOW_SECS;
        assert!(!set.is_spent(ME, &nonce(1), later));
        assert_eq!(set.spend(ME, &nonce(1), later), Spend::Fresh);
        let ones: u32 = (0..set.per_filter)
            .map(|i| set.word(filter, i).load(Ordering::Relaxed).count_ones())
            .sum();
        assert!(
            ones <= PROBES,
            "the filter was cleared: only the new nonce's {ones} bits are set"
        );
    }

    #[test]
    fn a_dead_holders_lock_is_taken_over() {
        let mut region = Region::new(8 * 1024);
        let set = region.init();
        set.header()
            .lock
            .set_raw(Holder::with_probe(4321, 0, |_| Life::Alive).word());
        let reaper = Holder::with_probe(1, 0, |word| {
            if pid_of(word) == 4321 {
                Life::Dead
            } else {
                Life::Alive
            }
        });
        assert_eq!(set.spend(reaper, &nonce(1), EXPIRES), Spend::Fresh);
        assert_eq!(set.takeovers(), 1);
        assert_eq!(set.header().lock.holder_pid(), None);
    }

    #[test]
    fn attach_checks_what_it_finds() {
        let mut region = Region::new(8 * 1024);
        let len = region.0.len() * 8;
        let set = region.init();
        set.spend(ME, &nonce(7), EXPIRES);
        // SAFETY: the region outlives both handles.
        let again = unsafe { SpentSet::attach(region.0.as_mut_ptr().cast(), len) }.unwrap();
        assert!(again.is_spent(ME, &nonce(7), EXPIRES));
        // SAFETY: as above.
        let shorter = unsafe { SpentSet::attach(region.0.as_mut_ptr().cast(), len - 8) };
        assert!(matches!(shorter, Err(TableError::RegionLen { .. })));
        region.0[0] = 0;
        // SAFETY: as above.
        let garbage = unsafe { SpentSet::attach(region.0.as_mut_ptr().cast(), len) };
        assert_eq!(garbage.unwrap_err(), TableError::NotATable);
        assert_eq!(SpentSet::designed_load_for(100), 0);
    }
}
