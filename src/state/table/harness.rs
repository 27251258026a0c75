//! What the table's tests and its fuzz target share: regions over ordinary memory, a model
//! of the table to check it against, simulated dead holders, and holders killed in the
//! middle of an operation ([`killed_during`]). Built for `cargo test` and with the
//! `fuzz-harness` feature (the fuzz target `table`), never into the module.

// Some of it serves only the unit tests.
#![cfg_attr(not(test), allow(dead_code))]

use core::mem::size_of;

use super::*;
pub(super) use crate::state::harness::*;

/// A counter, the shape of the failure counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(super) struct Hits {
    pub(super) count: u64,
}
// SAFETY: a u64, valid for any bits.
unsafe impl Record for Hits {
    const KIND: u32 = u32::from_be_bytes(*b"hits");
    const NAME: &'static str = "test hits";
}


#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Line([u8; 64]);

/// An aligned buffer standing in for a shared memory zone, filled with junk because
/// zones need not be zeroed.
pub(super) struct Region {
    pub(super) lines: Vec<Line>,
    pub(super) len: usize,
}

impl Region {
    pub(super) fn new(len: usize) -> Self {
        Self {
            lines: vec![Line([0xA5; 64]); len.div_ceil(64)],
            len,
        }
    }

    pub(super) fn for_capacity<V: Record>(capacity: usize) -> Self {
        Self::new(Table::<V>::region_len_for(capacity).unwrap())
    }

    pub(super) fn ptr(&mut self) -> *mut u8 {
        self.lines.as_mut_ptr().cast()
    }

    pub(super) fn bytes(&mut self) -> &mut [u8] {
        let len = self.len;
        // SAFETY: `lines` holds at least `len` bytes.
        unsafe { core::slice::from_raw_parts_mut(self.ptr(), len) }
    }

    pub(super) fn init<V: Record>(&mut self) -> Table<V> {
        // SAFETY: the region outlives the table in every test using this.
        unsafe { Table::init(self.ptr(), self.len) }.unwrap()
    }

    pub(super) fn attach<V: Record>(&mut self) -> Result<Table<V>, TableError> {
        // SAFETY: as for `init`.
        unsafe { Table::attach(self.ptr(), self.len) }
    }

    /// For threads: a region that lives for the rest of the test binary.
    pub(super) fn leak(self) -> (*mut u8, usize) {
        let len = self.len;
        (self.lines.leak().as_mut_ptr().cast(), len)
    }
}

pub(super) fn key(n: u64) -> Key {
    Rng(n).key()
}

pub(super) const NEVER: u64 = u64::MAX;


// ----- Invariant check ------------------------------------------------------------------

impl<V: Record> Guard<'_, V> {
    /// Every structural invariant, or a description of the first one broken.
    pub(super) fn check(&self) -> Result<(), String> {
        let capacity = self.slots.len();
        let mut seen = vec![false; capacity];
        let mut visit = |index: u32, list: &str| -> Result<(), String> {
            let seen = seen
                .get_mut(index as usize)
                .ok_or(format!("{list}: bad index"))?;
            if std::mem::replace(seen, true) {
                return Err(format!("{list}: slot {index} reached twice"));
            }
            Ok(())
        };
        let (mut linked, mut prev, mut cursor) = (0, NIL, self.links.lru_head);
        while cursor != NIL {
            visit(cursor, "lru")?;
            let slot = self.slot(cursor).unwrap();
            if slot.state != OCCUPIED || slot.lru_prev != prev {
                return Err(format!("lru: slot {cursor} has a bad state or back link"));
            }
            let found = self.locate(&slot.key).map_err(|_| "chain broken")?;
            if found.hit.map(|hit| hit.index) != Some(cursor) {
                return Err(format!("slot {cursor} not found by its key"));
            }
            (linked, prev, cursor) = (linked + 1, cursor, slot.lru_next);
        }
        if self.links.lru_tail != prev {
            return Err("lru: wrong tail".into());
        }
        let (mut free, mut cursor) = (0, self.links.free_head);
        while cursor != NIL {
            visit(cursor, "free")?;
            let slot = self.slot(cursor).unwrap();
            if slot.state == OCCUPIED {
                return Err(format!("free: slot {cursor} is occupied"));
            }
            (free, cursor) = (free + 1, slot.chain_next);
        }
        if linked + free != capacity {
            return Err(format!("{linked} linked + {free} free != {capacity}"));
        }
        if self.len() != linked {
            return Err(format!("len {} but {linked} linked", self.len()));
        }
        let mut chained = 0;
        for (bucket, &head) in self.buckets.iter().enumerate() {
            let mut cursor = head;
            while cursor != NIL {
                let slot = self.slot(cursor).ok_or("chain: bad index")?;
                if slot.state != OCCUPIED || bucket_of(&slot.key, capacity) != bucket {
                    return Err(format!("chain: slot {cursor} does not belong"));
                }
                chained += 1;
                if chained > linked {
                    return Err("chains hold more slots than the lru list".into());
                }
                cursor = slot.chain_next;
            }
        }
        if chained != linked {
            return Err(format!("{chained} chained but {linked} linked"));
        }
        Ok(())
    }

    /// Keys from least to most recently used.
    pub(super) fn keys_by_recency(&self) -> Vec<Key> {
        let mut keys = Vec::new();
        let mut cursor = self.links.lru_tail;
        while let Some(slot) = self.slot(cursor) {
            keys.push(slot.key);
            cursor = slot.lru_prev;
        }
        keys
    }
}

pub(super) fn check<V: Record>(table: &Table<V>) {
    table.with(PID, |t| t.check()).unwrap();
}

/// What a worker killed while holding the lock leaves behind (a pid from
/// [`DEAD_PIDS`] on, or a live one to stand for a holder that is only slow).
pub(super) fn die_holding_lock<V: Record>(table: &Table<V>, pid: u32) {
    table.counters().lock.set_raw(process(pid).word());
}


// ----- Against a model ------------------------------------------------------------------
impl<V: Record> Guard<'_, V> {
    /// Every occupied slot's key, value and expiry, least recently used first.
    pub(super) fn entries_by_recency(&self) -> Vec<(Key, V, u64)> {
        let mut entries = Vec::new();
        let mut cursor = self.links.lru_tail;
        while let Some(slot) = self.slot(cursor) {
            entries.push((slot.key, slot.value, slot.expires_at));
            cursor = slot.lru_prev;
        }
        entries
    }
}


/// The specification: a recency-ordered list of entries.
pub(super) struct Model {
    capacity: usize,
    /// Least recently used first.
    entries: Vec<(Key, u64, u64)>,
    evictions: u64,
}

impl Model {
    /// The live entry's position; an expired one is dropped, as the table frees it.
    pub(super) fn live(&mut self, key: &Key, now: u64) -> Option<usize> {
        let at = self.entries.iter().position(|e| e.0 == *key)?;
        if now < self.entries[at].2 {
            Some(at)
        } else {
            self.entries.remove(at);
            None
        }
    }

    pub(super) fn touch(&mut self, at: usize) -> &mut (Key, u64, u64) {
        let entry = self.entries.remove(at);
        self.entries.push(entry);
        self.entries.last_mut().unwrap()
    }

    pub(super) fn place(&mut self, key: &Key, now: u64, expires_at: u64, value: u64) {
        if self.entries.len() == self.capacity {
            let victim = self
                .entries
                .iter()
                .take(EXPIRED_SCAN)
                .position(|e| now >= e.2);
            let victim = victim.unwrap_or(0);
            if now < self.entries[victim].2 {
                self.evictions += 1;
            }
            self.entries.remove(victim);
        }
        self.entries.push((*key, value, expires_at));
    }
}

/// After a holder was killed in the middle of an operation on `op_key`: the next holder
/// takes the lock over and repairs the table, which must then hold exactly what the model
/// held, except for the entry under operation (absent, or present in any mix of its old and
/// new expiry and value: an overwrite is two writes) and, for an operation that inserts, the
/// one entry it was evicting. The model then takes
/// the table's contents and order, and the run goes on.
fn reconcile(model: &mut Model, table: &Table<Hits>, op_key: &Key, inserting: bool, op: u64) {
    die_holding_lock(table, DEAD_PIDS + 5);
    let entries = table.with(PID, |t| {
        t.check()
            .map_err(|e| format!("after a holder killed in op {op}: {e}"))
            .unwrap();
        t.entries_by_recency()
    });
    let mut lost = 0;
    for entry in model.entries.iter().filter(|e| e.0 != *op_key) {
        match entries.iter().find(|e| e.0 == entry.0) {
            Some(kept) => assert_eq!(
                (kept.1.count, kept.2),
                (entry.1, entry.2),
                "op {op}: an entry the killed holder did not work on changed"
            ),
            None => lost += 1,
        }
    }
    assert!(
        lost <= usize::from(inserting),
        "op {op}: a killed holder lost {lost} entries besides the one it worked on"
    );
    for entry in &entries {
        assert!(
            entry.0 == *op_key || model.entries.iter().any(|e| e.0 == entry.0),
            "op {op}: an entry from nowhere after a holder was killed"
        );
    }
    model.entries = entries.iter().map(|e| (e.0, e.1.count, e.2)).collect();
    model.evictions = table.stats().evictions;
}

/// Runs `ops` random operations (or until `source` runs out) on a table of `capacity`
/// slots and on the model, comparing every answer, the length and the evictions, and now
/// and then the whole recency order and the invariants. Now and then another process
/// attaches, a holder dies holding the lock, or a holder is killed in the middle of an
/// operation.
pub(super) fn model_run(capacity: usize, ops: u64, source: &mut impl Source) -> ModelRun {
    let mut region = Region::for_capacity::<Hits>(capacity);
    let mut table = region.init::<Hits>();
    let mut model = Model {
        capacity,
        entries: Vec::new(),
        evictions: 0,
    };
    // Three keys per slot, some sharing a bucket prefix so chains form.
    let mut keys = Rng(source.next());
    let pool: Vec<Key> = (0..capacity * 3)
        .map(|n| {
            let mut k = keys.key();
            if n % 4 == 0 {
                k[..8].copy_from_slice(&[0x42; 8]);
            }
            k
        })
        .collect();
    let (mut now, mut kills) = (0, 0);
    for op in 0..ops {
        if source.exhausted() {
            break;
        }
        now += source.below(3);
        let k = pool[source.below(pool.len() as u64) as usize];
        // Lifetimes long enough that the live entries overflow the table now and then.
        let expires_at = now + source.below(capacity as u64 * 6);
        let value = source.next();
        // One operation in sixteen has its holder killed at one of its crash points, those of
        // a repair (a few per slot) included.
        let kill_after = match source.below(16) {
            0 => 1 + source.below(capacity as u64 * 3) as u32,
            _ => 0,
        };
        // The table's side of an operation, `None` when its holder was killed.
        macro_rules! attempt {
            ($inserting:expr, $op:expr) => {{
                let mut out = None;
                if killed_during(kill_after, || out = Some($op)) {
                    kills += 1;
                    reconcile(&mut model, &table, &k, $inserting, op);
                    continue;
                }
                out.expect("finished")
            }};
        }
        match source.below(100) {
            0..=29 => {
                let got = attempt!(
                    false,
                    table.with(PID, |t| {
                        t.get(&k, now).map(|v| {
                            v.count = v.count.wrapping_add(1);
                            v.count
                        })
                    })
                );
                let want = model.live(&k, now).map(|at| {
                    let entry = model.touch(at);
                    entry.1 = entry.1.wrapping_add(1);
                    entry.1
                });
                assert_eq!(got, want, "get, op {op}");
            }
            30..=54 => {
                let got = attempt!(
                    true,
                    table.with(PID, |t| {
                        let (v, inserted) =
                            t.get_or_insert_with(&k, now, expires_at, || Hits { count: value });
                        // Counts are any u64 the input gives (overflow checks are on).
                        v.count = v.count.wrapping_add(1);
                        (v.count, inserted)
                    })
                );
                let want = match model.live(&k, now) {
                    Some(at) => {
                        let entry = model.touch(at);
                        entry.1 = entry.1.wrapping_add(1);
                        (entry.1, false)
                    }
                    None => {
                        model.place(&k, now, expires_at, value.wrapping_add(1));
                        (value.wrapping_add(1), true)
                    }
                };
                assert_eq!(got, want, "get_or_insert_with, op {op}");
            }
            55..=69 => {
                let got = attempt!(
                    true,
                    table.with(PID, |t| {
                        t.insert_if_absent(&k, now, expires_at, Hits { count: value })
                            == Placed::Inserted
                    })
                );
                let want = match model.live(&k, now) {
                    Some(at) => {
                        model.touch(at);
                        false
                    }
                    None => {
                        model.place(&k, now, expires_at, value);
                        true
                    }
                };
                assert_eq!(got, want, "insert_if_absent, op {op}");
            }
            70..=79 => {
                let got = attempt!(
                    true,
                    table.with(PID, |t| t.insert(&k, now, expires_at, Hits { count: value }))
                );
                let want = match model.live(&k, now) {
                    Some(at) => {
                        let entry = model.touch(at);
                        entry.2 = expires_at;
                        Some(std::mem::replace(&mut entry.1, value))
                    }
                    None => {
                        model.place(&k, now, expires_at, value);
                        None
                    }
                };
                assert_eq!(got.map(|h| h.count), want, "insert, op {op}");
            }
            85..=89 => {
                // Stores when the value seen (or the fresh one) is even: inserts (and may
                // evict) only a fresh even one. (A killed attempt reconciles and moves on, so
                // `live` still holds when the model's answer is worked out below.)
                let live = model.live(&k, now);
                let got = attempt!(
                    live.is_none() && value % 2 == 0,
                    table.with(PID, |t| {
                        t.update(&k, now, |seen| {
                            let next = seen.map_or(value, |h| h.count.wrapping_add(1));
                            let store =
                                (next % 2 == 0).then_some((Hits { count: next }, expires_at));
                            (store, seen.map(|h| h.count))
                        })
                    })
                );
                let want = match live {
                    Some(at) => {
                        let entry = model.touch(at);
                        let seen = entry.1;
                        if seen.wrapping_add(1) % 2 == 0 {
                            entry.1 = seen.wrapping_add(1);
                            entry.2 = expires_at;
                        }
                        Some(seen)
                    }
                    None => {
                        if value % 2 == 0 {
                            model.place(&k, now, expires_at, value);
                        }
                        None
                    }
                };
                assert_eq!(got, want, "update, op {op}");
            }
            80..=84 => {
                let got = attempt!(false, table.with(PID, |t| t.set_expiry(&k, now, expires_at)));
                let want = model
                    .live(&k, now)
                    .map(|at| model.touch(at).2 = expires_at)
                    .is_some();
                assert_eq!(got, want, "set_expiry, op {op}");
            }
            90..=97 => {
                let got = attempt!(false, table.with(PID, |t| t.remove(&k, now)));
                let at = model.entries.iter().position(|e| e.0 == k);
                let want = at
                    .map(|at| model.entries.remove(at))
                    .filter(|e| now < e.2)
                    .map(|e| e.1);
                assert_eq!(got.map(|h| h.count), want, "remove, op {op}");
            }
            98 => {
                // Another process attaches and carries on.
                table = region.attach::<Hits>().unwrap();
            }
            _ => {
                // A worker dies holding the lock; the next one rebuilds.
                die_holding_lock(&table, DEAD_PIDS + 77);
            }
        }
        let stats = table.stats();
        assert_eq!(stats.len, model.entries.len(), "len, op {op}");
        assert_eq!(stats.evictions, model.evictions, "evictions, op {op}");
        if op % 500 == 0 || source.exhausted() {
            table.with(PID, |t| {
                t.check().unwrap();
                let order: Vec<Key> = model.entries.iter().map(|e| e.0).collect();
                assert_eq!(t.keys_by_recency(), order, "recency order, op {op}");
            });
        }
    }
    check(&table);
    ModelRun {
        evictions: model.evictions,
        kills,
    }
}

/// What a [`model_run`] did, which a long enough run must have done.
pub(super) struct ModelRun {
    pub(super) evictions: u64,
    /// Holders killed in the middle of an operation.
    pub(super) kills: u64,
}

/// Writes junk into one to six of the table's links: a slot's neighbours or chain, a bucket,
/// the heads and tail of its lists. The junk is a null link, an index just past the end, any
/// 32 bits, or a valid index that points at the wrong slot.
pub(super) fn scribble_links<V: Record>(t: &mut Guard<'_, V>, source: &mut impl Source) {
    let capacity = t.slots.len() as u64;
    for _ in 0..1 + source.below(6) {
        let junk = match source.below(4) {
            0 => NIL,
            1 => source.below(capacity + 2) as u32,
            2 => source.next() as u32,
            _ => source.below(capacity) as u32,
        };
        let slot = &mut t.slots[source.below(capacity) as usize];
        match source.below(7) {
            0 => slot.lru_prev = junk,
            1 => slot.lru_next = junk,
            2 => slot.chain_next = junk,
            3 => t.buckets[source.below(capacity) as usize] = junk,
            4 => t.links.lru_head = junk,
            5 => t.links.lru_tail = junk,
            _ => t.links.free_head = junk,
        }
    }
}

/// Lists scribbled over, or the whole region after the identity, then operations: the table
/// must neither panic nor hang, and must be consistent once the next holder has repaired it.
pub(super) fn scribble_run(capacity: usize, source: &mut impl Source) {
    let mut region = Region::for_capacity::<Hits>(capacity);
    let table = region.init::<Hits>();
    let mut keys = Rng(source.next());
    let pool: Vec<Key> = (0..capacity * 2).map(|_| keys.key()).collect();
    table.with(PID, |t| {
        for (n, k) in pool.iter().take(capacity * 3 / 4).enumerate() {
            t.insert(k, 0, NEVER, Hits { count: n as u64 });
        }
    });
    if source.below(2) == 0 {
        table.with(PID, |t| scribble_links(t, source));
    } else {
        let bytes = &mut region.bytes()[size_of::<Identity>()..];
        for _ in 0..1 + source.below(64) {
            let at = source.below(bytes.len() as u64) as usize;
            bytes[at] = source.below(256) as u8;
        }
        table.counters().lock.set_raw(0);
    }
    let mut now = 0;
    while !source.exhausted() {
        now += source.below(3);
        let k = pool[source.below(pool.len() as u64) as usize];
        table.with(PID, |t| match source.below(5) {
            0 => _ = t.get(&k, now),
            1 => _ = t.get_or_insert_with(&k, now, now + 50, || Hits { count: now }),
            2 => _ = t.insert(&k, now, now + source.below(50), Hits { count: now }),
            3 => _ = t.pop_least_recent(now),
            _ => _ = t.remove(&k, now),
        });
    }
    die_holding_lock(&table, DEAD_PIDS + 1);
    check(&table);
    assert!(table.with(PID, |t| t.len()) <= capacity);
}

/// The fuzz target `table`: the fuzzer's bytes choose a capacity and then either a model run
/// (with holders killed in the middle) or a scribbled region.
pub fn fuzz(data: &[u8]) {
    let mut input = Input(data);
    let capacity = MIN_CAPACITY + input.below(57) as usize;
    if input.below(4) == 0 {
        scribble_run(capacity, &mut input);
    } else {
        model_run(capacity, u64::MAX, &mut input);
    }
}
