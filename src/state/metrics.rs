//! The counters behind `captchaify_metrics`, kept in the main zone: every worker adds to the
//! same ones, and they outlive reloads as the zone does.
//!
//! Plain atomics only, all valid when zeroed, so a worker killed at any moment leaves nothing
//! half-done but, at worst, one location slot that stays unnamed ([`Metrics::location`]).
//! Adding is one relaxed `fetch_add`; reading is a [`Snapshot`] taken without a lock.
//!
//! Labels are bounded: locations by the configuration (at most [`LOCATION_SLOTS`] names, the
//! rest counted together as `(other)`), kinds and hardness by the code.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// How many distinct location names are counted apart.
pub const LOCATION_SLOTS: usize = 64;
const NAME_WORDS: usize = 12;
/// Longest location name kept (longer ones are cut at a character boundary).
pub const NAME_BYTES: usize = NAME_WORDS * 8;
/// The label of the requests of locations beyond [`LOCATION_SLOTS`].
pub const OTHER_LOCATIONS: &str = "(other)";

/// What became of a request the module decided, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestVerdict {
    Passed,
    Challenged,
    Blocked,
    RateLimited,
    /// A refusal that dry run logged instead of carrying out.
    DryRun,
}

impl RequestVerdict {
    pub const ALL: [RequestVerdict; 5] = [
        RequestVerdict::Passed,
        RequestVerdict::Challenged,
        RequestVerdict::Blocked,
        RequestVerdict::RateLimited,
        RequestVerdict::DryRun,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            RequestVerdict::Passed => "passed",
            RequestVerdict::Challenged => "challenged",
            RequestVerdict::Blocked => "blocked",
            RequestVerdict::RateLimited => "rate_limited",
            RequestVerdict::DryRun => "dry_run",
        }
    }
}

/// What happened to a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeEvent {
    /// A captcha page was sent.
    Issued,
    /// Answered right.
    Solved,
    /// Answered wrong (counts towards the client's failures).
    Failed,
    /// Answered after it expired.
    Expired,
}

impl ChallengeEvent {
    pub const ALL: [ChallengeEvent; 4] = [
        ChallengeEvent::Issued,
        ChallengeEvent::Solved,
        ChallengeEvent::Failed,
        ChallengeEvent::Expired,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            ChallengeEvent::Issued => "issued",
            ChallengeEvent::Solved => "solved",
            ChallengeEvent::Failed => "failed",
            ChallengeEvent::Expired => "expired",
        }
    }
}

/// Challenge kinds counted apart: text, emoji, animals (in [`crate::challenge::ChallengeKind`]
/// order).
pub const KINDS: usize = 3;
/// Hardness 1 to 3.
pub const HARDNESSES: usize = 3;

/// Upper bounds of the solve-time buckets, in seconds. A challenge can be answered for two
/// minutes, so the last one holds every solve.
pub const SOLVE_BUCKETS: [u64; 10] = [2, 5, 10, 15, 20, 30, 45, 60, 90, 120];

/// The pre-check's two counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrecheckEvent {
    /// The pre-check page was sent.
    Sent,
    /// A client came back with the pre-check's cookie and went on to the captcha.
    Passed,
}

/// The per-address reputation sources (ip-api, StopForumSpam), in
/// [`crate::reputation::Source`] order after Tor.
pub const LOOKUP_SOURCES: usize = 2;

#[repr(C)]
struct LocationSlot {
    /// [`FREE`], [`NAMING`] or [`NAMED`].
    state: AtomicU32,
    len: AtomicU32,
    name: [AtomicU64; NAME_WORDS],
    verdicts: [AtomicU64; 5],
}

const FREE: u32 = 0;
const NAMING: u32 = 1;
const NAMED: u32 = 2;

#[repr(C)]
struct Histogram {
    /// Solves per bucket (not cumulative; the last is above every bound).
    buckets: [AtomicU64; SOLVE_BUCKETS.len() + 1],
    sum: AtomicU64,
}

#[repr(C)]
struct LookupCounters {
    answers: AtomicU64,
    /// When the source last answered, Unix seconds.
    answered_at: AtomicU64,
}

/// Where a location's requests are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationIndex(u16);

/// The counters, laid out in the main zone's header.
#[repr(C)]
pub struct Metrics {
    locations: [LocationSlot; LOCATION_SLOTS],
    other: [AtomicU64; 5],
    challenges: [[[AtomicU64; 4]; HARDNESSES]; KINDS],
    solve_time: [Histogram; KINDS],
    precheck: [AtomicU64; 2],
    crowdsec_alerts: AtomicU64,
    lookups: [LookupCounters; LOOKUP_SOURCES],
}

fn zeros<const N: usize>() -> [AtomicU64; N] {
    core::array::from_fn(|_| AtomicU64::new(0))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            locations: core::array::from_fn(|_| LocationSlot {
                state: AtomicU32::new(FREE),
                len: AtomicU32::new(0),
                name: zeros(),
                verdicts: zeros(),
            }),
            other: zeros(),
            challenges: core::array::from_fn(|_| core::array::from_fn(|_| zeros())),
            solve_time: core::array::from_fn(|_| Histogram {
                buckets: zeros(),
                sum: AtomicU64::new(0),
            }),
            precheck: zeros(),
            crowdsec_alerts: AtomicU64::new(0),
            lookups: core::array::from_fn(|_| LookupCounters {
                answers: AtomicU64::new(0),
                answered_at: AtomicU64::new(0),
            }),
        }
    }
}

/// `name` cut to [`NAME_BYTES`] at a character boundary, packed into words.
fn pack(name: &str) -> ([u64; NAME_WORDS], u32) {
    let mut end = name.len().min(NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut bytes = [0u8; NAME_BYTES];
    bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
    let words = core::array::from_fn(|i| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_le_bytes(word)
    });
    (words, end as u32)
}

impl LocationSlot {
    fn holds(&self, words: &[u64; NAME_WORDS], len: u32) -> bool {
        self.len.load(Ordering::Relaxed) == len
            && self
                .name
                .iter()
                .zip(words)
                .all(|(cell, word)| cell.load(Ordering::Relaxed) == *word)
    }

    fn name(&self) -> String {
        let mut bytes = Vec::with_capacity(NAME_BYTES);
        for cell in &self.name {
            bytes.extend_from_slice(&cell.load(Ordering::Relaxed).to_le_bytes());
        }
        bytes.truncate((self.len.load(Ordering::Relaxed) as usize).min(NAME_BYTES));
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Metrics {
    /// Where the requests of the location called `name` are counted: its slot, found or
    /// taken, or the shared `(other)` counters once every slot is taken.
    ///
    /// Lock-free: a slot is taken by one compare-and-swap, named, then published. Two workers
    /// naming the same new location at once may take two slots; [`Metrics::snapshot`] adds
    /// slots of one name together. A worker killed while naming leaves one slot unnamed and
    /// unused, never a wrong count.
    pub fn location(&self, name: &str) -> Option<LocationIndex> {
        let (words, len) = pack(name);
        for (index, slot) in self.locations.iter().enumerate() {
            let mut state = slot.state.load(Ordering::Acquire);
            if state == FREE {
                match slot
                    .state
                    .compare_exchange(FREE, NAMING, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        for (cell, word) in slot.name.iter().zip(&words) {
                            cell.store(*word, Ordering::Relaxed);
                        }
                        slot.len.store(len, Ordering::Relaxed);
                        slot.state.store(NAMED, Ordering::Release);
                        return Some(LocationIndex(index as u16));
                    }
                    Err(now) => state = now,
                }
            }
            if state == NAMED && slot.holds(&words, len) {
                return Some(LocationIndex(index as u16));
            }
        }
        None
    }

    /// Counts one request of a location (`None`: the `(other)` counters).
    pub fn count_request(&self, location: Option<LocationIndex>, verdict: RequestVerdict) {
        let counters = match location.and_then(|l| self.locations.get(l.0 as usize)) {
            Some(slot) => &slot.verdicts,
            None => &self.other,
        };
        counters[verdict as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an event of a challenge of kind `kind` (its index) and hardness `hardness` (1–3).
    pub fn count_challenge(&self, kind: usize, hardness: u8, event: ChallengeEvent) {
        let cell = self
            .challenges
            .get(kind)
            .and_then(|by_hardness| by_hardness.get(usize::from(hardness).wrapping_sub(1)))
            .map(|events| &events[event as usize]);
        if let Some(cell) = cell {
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records how long a solved challenge of kind `kind` took, from its page to its answer.
    pub fn observe_solve(&self, kind: usize, seconds: u64) {
        let Some(histogram) = self.solve_time.get(kind) else {
            return;
        };
        let bucket = SOLVE_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(SOLVE_BUCKETS.len());
        histogram.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        histogram.sum.fetch_add(seconds, Ordering::Relaxed);
    }

    pub fn count_precheck(&self, event: PrecheckEvent) {
        self.precheck[event as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts alerts the Local API accepted.
    pub fn count_crowdsec_alerts(&self, alerts: u64) {
        self.crowdsec_alerts.fetch_add(alerts, Ordering::Relaxed);
    }

    /// Records answers of a per-address source (0: ip-api, 1: StopForumSpam) received at
    /// `now` (Unix seconds).
    pub fn count_lookup_answers(&self, source: usize, answers: u64, now: u64) {
        if let Some(counters) = self.lookups.get(source) {
            counters.answers.fetch_add(answers, Ordering::Relaxed);
            counters.answered_at.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// Every counter, read without a lock (each value is exact; together they may be a few
    /// requests apart).
    pub fn snapshot(&self) -> Snapshot {
        let read = |cells: &[AtomicU64]| -> Vec<u64> {
            cells.iter().map(|c| c.load(Ordering::Relaxed)).collect()
        };
        let mut locations: Vec<(String, [u64; 5])> = Vec::new();
        for slot in &self.locations {
            if slot.state.load(Ordering::Acquire) != NAMED {
                continue;
            }
            let name = slot.name();
            let counts: [u64; 5] = core::array::from_fn(|i| slot.verdicts[i].load(Ordering::Relaxed));
            match locations.iter_mut().find(|(n, _)| *n == name) {
                Some((_, sum)) => sum.iter_mut().zip(counts).for_each(|(s, c)| *s += c),
                None => locations.push((name, counts)),
            }
        }
        let other: [u64; 5] = core::array::from_fn(|i| self.other[i].load(Ordering::Relaxed));
        if other.iter().any(|&c| c > 0) {
            locations.push((OTHER_LOCATIONS.to_string(), other));
        }
        locations.sort_by(|a, b| a.0.cmp(&b.0));
        Snapshot {
            locations,
            challenges: core::array::from_fn(|k| {
                core::array::from_fn(|h| {
                    core::array::from_fn(|e| self.challenges[k][h][e].load(Ordering::Relaxed))
                })
            }),
            solve_time: core::array::from_fn(|k| {
                let histogram = &self.solve_time[k];
                SolveTimes {
                    buckets: read(&histogram.buckets),
                    sum: histogram.sum.load(Ordering::Relaxed),
                }
            }),
            precheck_sent: self.precheck[PrecheckEvent::Sent as usize].load(Ordering::Relaxed),
            precheck_passed: self.precheck[PrecheckEvent::Passed as usize]
                .load(Ordering::Relaxed),
            crowdsec_alerts: self.crowdsec_alerts.load(Ordering::Relaxed),
            lookups: core::array::from_fn(|s| {
                (
                    self.lookups[s].answers.load(Ordering::Relaxed),
                    self.lookups[s].answered_at.load(Ordering::Relaxed),
                )
            }),
        }
    }
}

/// The solve times of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SolveTimes {
    /// Per bucket of [`SOLVE_BUCKETS`], then above them all; not cumulative.
    pub buckets: Vec<u64>,
    /// Seconds, all solves together.
    pub sum: u64,
}

/// The counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Per location name, sorted: requests by [`RequestVerdict`] (in `ALL` order).
    pub locations: Vec<(String, [u64; 5])>,
    /// By kind, hardness − 1 and [`ChallengeEvent`].
    pub challenges: [[[u64; 4]; HARDNESSES]; KINDS],
    pub solve_time: [SolveTimes; KINDS],
    pub precheck_sent: u64,
    pub precheck_passed: u64,
    pub crowdsec_alerts: u64,
    /// Per-address sources: answers received, and when the last came (Unix seconds).
    pub lookups: [(u64, u64); LOOKUP_SOURCES],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_found_again_and_counted_apart() {
        let metrics = Metrics::default();
        let login = metrics.location("example.com /login").unwrap();
        let root = metrics.location("example.com /").unwrap();
        assert_ne!(login, root);
        assert_eq!(metrics.location("example.com /login"), Some(login));
        metrics.count_request(Some(login), RequestVerdict::Challenged);
        metrics.count_request(Some(login), RequestVerdict::Challenged);
        metrics.count_request(Some(root), RequestVerdict::Passed);
        let snapshot = metrics.snapshot();
        assert_eq!(
            snapshot.locations,
            vec![
                ("example.com /".to_string(), [1, 0, 0, 0, 0]),
                ("example.com /login".to_string(), [0, 2, 0, 0, 0]),
            ]
        );
    }

    #[test]
    fn beyond_the_slots_requests_count_as_other() {
        let metrics = Metrics::default();
        for i in 0..LOCATION_SLOTS {
            assert!(metrics.location(&format!("/l{i}")).is_some());
        }
        let beyond = metrics.location("/one-too-many");
        assert_eq!(beyond, None);
        metrics.count_request(beyond, RequestVerdict::Blocked);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.locations.len(), LOCATION_SLOTS + 1);
        assert!(snapshot
            .locations
            .contains(&(OTHER_LOCATIONS.to_string(), [0, 0, 1, 0, 0])));
        // A name already counted keeps its slot.
        assert!(metrics.location("/l7").is_some());
    }

    #[test]
    fn long_names_are_cut_at_a_character_boundary() {
        let metrics = Metrics::default();
        let long = "é".repeat(NAME_BYTES); // two bytes each
        let index = metrics.location(&long).unwrap();
        metrics.count_request(Some(index), RequestVerdict::DryRun);
        let (name, counts) = &metrics.snapshot().locations[0];
        assert_eq!(name.len(), NAME_BYTES);
        assert!(long.starts_with(name.as_str()));
        assert_eq!(counts[RequestVerdict::DryRun as usize], 1);
    }

    #[test]
    fn slots_of_one_name_are_added_together() {
        let metrics = Metrics::default();
        // Two workers naming the same location at once: both slots hold it.
        let (words, len) = pack("/same");
        for slot in &metrics.locations[..2] {
            for (cell, word) in slot.name.iter().zip(&words) {
                cell.store(*word, Ordering::Relaxed);
            }
            slot.len.store(len, Ordering::Relaxed);
            slot.state.store(NAMED, Ordering::Release);
        }
        metrics.count_request(Some(LocationIndex(0)), RequestVerdict::Passed);
        metrics.count_request(Some(LocationIndex(1)), RequestVerdict::Passed);
        // A slot left half-named by a killed worker is skipped.
        metrics.locations[2].state.store(NAMING, Ordering::Release);
        assert_eq!(
            metrics.snapshot().locations,
            vec![("/same".to_string(), [2, 0, 0, 0, 0])]
        );
        assert_eq!(metrics.location("/next"), Some(LocationIndex(3)));
    }

    #[test]
    fn challenges_and_solve_times() {
        let metrics = Metrics::default();
        metrics.count_challenge(0, 2, ChallengeEvent::Issued);
        metrics.count_challenge(0, 2, ChallengeEvent::Solved);
        metrics.count_challenge(2, 3, ChallengeEvent::Expired);
        metrics.count_challenge(2, 4, ChallengeEvent::Expired); // no such hardness: ignored
        metrics.count_challenge(3, 1, ChallengeEvent::Issued); // no such kind: ignored
        metrics.observe_solve(0, 7);
        metrics.observe_solve(0, 2);
        metrics.observe_solve(0, 500);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.challenges[0][1], [1, 1, 0, 0]);
        assert_eq!(snapshot.challenges[2][2], [0, 0, 0, 1]);
        let total: u64 = snapshot.challenges.iter().flatten().flatten().sum();
        assert_eq!(total, 3);
        let text = &snapshot.solve_time[0];
        assert_eq!(text.buckets[0], 1); // 2 s: le 2
        assert_eq!(text.buckets[2], 1); // 7 s: le 10
        assert_eq!(text.buckets[SOLVE_BUCKETS.len()], 1); // above every bound
        assert_eq!(text.sum, 509);
    }

    #[test]
    fn zeroed_memory_is_an_empty_set_of_counters() {
        // The zone's header is laid out in fresh shared memory: all-zero bytes must be valid.
        let zeroed: Metrics = unsafe { core::mem::zeroed() };
        assert_eq!(zeroed.snapshot(), Metrics::default().snapshot());
    }
}
