//! The one state engine: a fixed-capacity, evicting hash table laid out in a plain memory
//! region that every nginx worker maps.
//!
//! # Why it looks like this
//!
//! nginx workers are separate processes. Whatever they must agree on (spent challenge
//! nonces, failure counters, rate-limit buckets) lives in a shared memory zone, which each
//! process maps at its own address and which survives `nginx -s reload` into the next
//! generation of workers. So the table:
//!
//! * stores only plain data and `u32` slot indexes, never pointers: it means the same at
//!   any address, in any process, and in a unit test over an ordinary buffer;
//! * is sized once, from the region, when it is laid out, and never allocates afterwards;
//! * never refuses an insert: when every slot is taken it evicts the least recently used
//!   entry (an expired one if it finds one near the end of the recency list), because a
//!   legitimate request must never fail just because the zone is full. Evictions of live
//!   entries are counted so the caller can warn once that the zone is too small;
//! * knows no clock: every call carries `now`, every entry an `expires_at` (both in
//!   milliseconds, any epoch, as long as the caller is consistent). Expired entries are
//!   invisible and their slots are reused;
//! * is generic over a fixed-size [`Record`], tagged with a [`Record::KIND`] stored in the
//!   header, so that attaching a region laid out for another record type or by another
//!   layout version fails with a [`TableError`] instead of reinterpreting memory.
//!
//! # Keys
//!
//! Keys are 16 bytes, and the engine uses their first eight bytes directly as the hash.
//! Callers must therefore pass keyed hashes (SipHash-2-4 of the client identity under a key
//! derived from the zone's secret): uniformly distributed, and impossible for an
//! attacker to steer into one bucket. With raw client data as keys, an attacker could make
//! every lookup walk one long chain.
//!
//! # Memory layout
//!
//! ```text
//! offset 0      header (HEADER_BYTES = 128): identity (magic, layout version, record kind,
//!               size and alignment, capacity, offsets, region length), shared counters
//!               (lock word, rebuild flag, len, evictions), list heads (free, LRU)
//! offset 128    buckets: capacity × u32, the first slot of each hash chain (or NIL)
//! aligned       slots: capacity × Slot<V> = key [16] · expires_at u64 · LRU prev/next u32 ·
//!               chain next u32 · state u32 · value V
//! ```
//!
//! There are as many buckets as slots (load factor at most 1); a bucket is picked from the
//! key with a multiply-shift, so the count need not be a power of two. The cost per entry is
//! `size_of::<Slot<V>>() + 4` bytes: 60 for a 16-byte record, 76 for 32 bytes and 108 for
//! 64 bytes; 1 MiB holds 13 795 entries of a 32-byte record.
//!
//! # Pinned entries
//!
//! Some entries must not be forgotten to make room: a client blocked for its wrong answers
//! (forgetting it would give the client its guesses back). Their records say so
//! ([`Record::pinned`]). An insert never evicts a live pinned entry: when the
//! entries it looks at near the least recently used end are all pinned and live, it refuses
//! ([`Placed::Full`], counted in [`Stats::refusals`]) and the caller fails closed. The
//! infallible inserts ([`Guard::insert`], [`Guard::get_or_insert_with`], [`Guard::update`])
//! are for records that are never pinned.
//!
//! # Locking
//!
//! One [`LockWord`] in the header serialises every process: it names its holder ([`Holder`]:
//! pid and start time), and a waiter takes it over from a holder that died holding it (a
//! worker killed by `kill -9`, the OOM killer or an abort; see `state::lock`). The new holder
//! rebuilds the lists before anything else (see "Repair"), so what the dead holder left half
//! done is undone or completed. The only way in is [`Table::with`], which runs a closure on a
//! [`Guard`] and releases the lock when the closure returns (or unwinds, in which case the
//! next holder rebuilds too): references into the table cannot escape the closure.
//!
//! # Repair
//!
//! Every operation checks the indexes it follows and bounds every walk by the capacity, so
//! even a region scribbled over (a worker killed in the middle of an operation, a bug
//! elsewhere) can neither panic the engine nor make it loop forever: it notices, and
//! rebuilds the lists from the slots, keeping every entry it can still read. A rebuild keeps
//! every slot marked occupied; an operation writes a slot's key, expiry and value before it
//! marks it occupied, and unmarks a slot before it reuses it, so an entry whose insert
//! finished is never lost, and one whose insert was cut short is either whole or absent.
//! What a holder killed in the middle may lose is only the operation it was doing: the
//! insert that had not finished, or the eviction or removal under way.

use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::{self, addr_of, addr_of_mut, NonNull};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use thiserror::Error;

use super::holder::pid_of;
pub use super::holder::Holder;
use super::crash_point;
use super::lock::{report_takeover, LockWord};

/// A table key: a keyed hash of whatever identifies the entry (see the module docs).
pub type Key = [u8; 16];

/// A fixed-size value stored in a [`Table`].
///
/// # Safety
///
/// The table keeps records in memory shared with other processes and possibly left behind
/// by a process that died, so implement this only for plain data:
///
/// * every bit pattern is a valid value (integers, arrays of integers, `#[repr(C)]` structs
///   of those; not `bool`, `char`, enums, `NonZero*` or references);
/// * no pointers, handles or anything else that means something in one process only
///   (so no `Box`, `Vec`, `String`, `&T`);
/// * the same layout in every process that attaches the table.
pub unsafe trait Record: Copy + Send + Sync + 'static {
    /// Tags the record type in the table header. Use a distinct value per record type, and
    /// change it whenever the record's fields or their meaning change, so that a table laid
    /// out by an older module is refused on attach rather than misread.
    const KIND: u32;

    /// What the table holds, in words for logs ("spent challenges").
    const NAME: &'static str;

    /// Whether this entry must outlive any pressure for room: a live pinned entry is never
    /// evicted (see the module docs). Must be cheap and must not panic.
    fn pinned(&self) -> bool {
        false
    }
}

/// What a fallible insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// The entry was added.
    Inserted,
    /// A live entry for the key was there already; nothing changed but its recency.
    Present,
    /// No room: every entry that could have made room is pinned and live. Nothing changed.
    Full,
}

/// Why a region cannot hold, or does not hold, a table of the requested record type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TableError {
    #[error("the region address is null or not aligned to {align} bytes")]
    Misaligned { align: usize },
    #[error("a region of {len} bytes is too small for a table: at least {min} bytes are needed")]
    TooSmall { len: usize, min: usize },
    #[error("the region does not hold a table")]
    NotATable,
    #[error("the table was laid out with layout version {found}, this build uses {expected}")]
    LayoutVersion { found: u32, expected: u32 },
    #[error("the table holds records of kind {found:#x}, expected {expected:#x}")]
    RecordKind { found: u32, expected: u32 },
    #[error(
        "the table holds records of {found_size} bytes aligned to {found_align}, \
         expected {expected_size} bytes aligned to {expected_align}"
    )]
    RecordLayout {
        found_size: u64,
        found_align: u64,
        expected_size: u64,
        expected_align: u64,
    },
    #[error("the table was laid out in a region of {laid_out} bytes, not {len}")]
    RegionLen { laid_out: u64, len: usize },
    #[error("the table header is inconsistent with its region")]
    Geometry,
}

/// A snapshot of a table's counters, read without taking the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Number of slots.
    pub capacity: usize,
    /// Occupied slots, including expired entries whose slot has not been reused yet.
    pub len: usize,
    /// Live (unexpired) entries evicted to make room since the table was laid out. Anything
    /// above zero means the zone is too small for the traffic.
    pub evictions: u64,
    /// Inserts refused because the entries that could have made room were pinned and live.
    pub refusals: u64,
    /// Times the lock was taken over from a holder that had died holding it.
    pub takeovers: u64,
    /// The pid of the last such holder.
    pub dead_holder: Option<u32>,
    /// Pid of the process holding the lock, if it is held.
    pub lock_holder: Option<u32>,
}

/// Fewest slots a table may have: below that the region is too small to be useful.
pub const MIN_CAPACITY: usize = 8;

/// Bumped whenever the header or slot layout changes.
pub const LAYOUT_VERSION: u32 = 2;

const MAGIC: u64 = u64::from_be_bytes(*b"cfytable");

/// Bytes reserved for the header; buckets start here. Room to grow without moving them.
const HEADER_BYTES: usize = 128;

/// "No slot": ends chains and lists. Never a valid index, since capacity stays below it.
const NIL: u32 = u32::MAX;
const MAX_CAPACITY: usize = NIL as usize - 1;

/// How many entries, from the least recently used end, an insert into a full table looks at
/// for an expired entry to reuse before it evicts the least recently used one.
const EXPIRED_SCAN: usize = 4;
/// How many pinned live entries an insert into a full table moves out of the way (to the most
/// recently used end) while it looks for one it may evict, before it gives up.
const PINNED_SCAN: usize = 16;

/// Slot states. Anything but `OCCUPIED` reads as free, so garbage is never taken for an
/// entry; `ADOPTED` only exists in the middle of a rebuild.
const FREE: u32 = 0;
const OCCUPIED: u32 = u32::from_be_bytes(*b"OCCU");
const ADOPTED: u32 = u32::from_be_bytes(*b"ADOP");

// Slot indexes are u32 and converted with `as usize`.
const _: () = assert!(size_of::<usize>() >= size_of::<u32>());
const _: () = assert!(size_of::<Header>() <= HEADER_BYTES);

/// What the table is: written once by [`Table::init`], checked by [`Table::attach`].
#[repr(C)]
#[derive(Clone, Copy)]
struct Identity {
    magic: u64,
    layout_version: u32,
    record_kind: u32,
    record_size: u64,
    record_align: u64,
    capacity: u64,
    buckets_offset: u64,
    slots_offset: u64,
    region_len: u64,
}

/// Fields every process reads and writes concurrently: atomics only.
#[repr(C)]
struct Counters {
    lock: LockWord,
    /// Non-zero when the next lock holder must rebuild the lists first.
    needs_rebuild: AtomicU32,
    /// Occupied slots. Written under the lock, read by [`Table::stats`] without it.
    len: AtomicU32,
    evictions: AtomicU64,
    refusals: AtomicU64,
    takeovers: AtomicU64,
    /// The pid of the last holder the lock was taken over from.
    dead_holder: AtomicU32,
    _reserved: u32,
}

/// List heads, only touched under the lock.
#[repr(C)]
struct Links {
    free_head: u32,
    /// Most recently used entry.
    lru_head: u32,
    /// Least recently used entry: the next to be evicted.
    lru_tail: u32,
    _reserved: u32,
}

#[repr(C)]
struct Header {
    identity: Identity,
    counters: Counters,
    links: Links,
}

/// One entry. Free slots are chained through `chain_next` in the free list.
#[repr(C)]
struct Slot<V> {
    key: Key,
    expires_at: u64,
    lru_prev: u32,
    lru_next: u32,
    chain_next: u32,
    state: u32,
    value: V,
}

/// Where the parts of a table go in a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    capacity: usize,
    buckets_offset: usize,
    slots_offset: usize,
    /// Bytes used from the start of the region.
    end: usize,
}

impl Geometry {
    fn for_capacity<V>(capacity: usize) -> Option<Self> {
        if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return None;
        }
        let buckets_offset = HEADER_BYTES;
        let buckets_end = capacity
            .checked_mul(size_of::<u32>())?
            .checked_add(buckets_offset)?;
        let slots_offset = align_up(buckets_end, align_of::<Slot<V>>())?;
        let end = capacity
            .checked_mul(size_of::<Slot<V>>())?
            .checked_add(slots_offset)?;
        Some(Self {
            capacity,
            buckets_offset,
            slots_offset,
            end,
        })
    }

    /// The largest table that fits in `len` bytes.
    fn for_len<V>(len: usize) -> Option<Self> {
        let per_entry = size_of::<Slot<V>>() + size_of::<u32>();
        let upper_bound = (len.checked_sub(HEADER_BYTES)? / per_entry).min(MAX_CAPACITY);
        // The padding before the slots is smaller than one slot, so it costs at most one.
        let geometry = Self::for_capacity::<V>(upper_bound)
            .filter(|g| g.end <= len)
            .or_else(|| Self::for_capacity::<V>(upper_bound.checked_sub(1)?))?;
        (geometry.end <= len).then_some(geometry)
    }
}

fn align_up(offset: usize, align: usize) -> Option<usize> {
    // `align` comes from `align_of`, a power of two.
    let mask = align.checked_sub(1)?;
    Some(offset.checked_add(mask)? & !mask)
}

/// The bucket of `key` among `buckets`: a multiply-shift of its first eight bytes, which
/// callers guarantee are uniformly distributed (see the module docs).
fn bucket_of(key: &Key, buckets: usize) -> usize {
    let [a, b, c, d, e, f, g, h, ..] = *key;
    let hash = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
    // The product shifted right by 64 is below `buckets`, so it fits a usize.
    ((u128::from(hash) * buckets as u128) >> 64) as usize
}

/// A handle on a table in a memory region. Cheap to copy; every copy, in any process,
/// designates the same table.
pub struct Table<V: Record> {
    header: NonNull<Header>,
    buckets: NonNull<u32>,
    slots: NonNull<Slot<V>>,
    capacity: usize,
    _record: PhantomData<V>,
}

impl<V: Record> Clone for Table<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V: Record> Copy for Table<V> {}

impl<V: Record> core::fmt::Debug for Table<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Table")
            .field("stats", &self.stats())
            .finish()
    }
}

// SAFETY: a `Table` is an address plus immutable geometry. The slots, buckets and list heads
// it points to are only accessed through a `Guard`, which exists only while the lock word is
// held (`with`), and that lock already serialises separate processes, so it serialises
// threads as well. Outside the lock only atomics (`Counters`) and the identity, which is
// immutable after `init`, are read. Records are `Send + Sync` plain data. Moving or sharing a
// handle between threads is therefore no different from sharing the region between processes.
unsafe impl<V: Record> Send for Table<V> {}
// SAFETY: see `Send` just above.
unsafe impl<V: Record> Sync for Table<V> {}

impl<V: Record> Table<V> {
    /// Bytes of region used per entry: the slot plus its bucket.
    pub fn bytes_per_entry() -> usize {
        size_of::<Slot<V>>() + size_of::<u32>()
    }

    /// Entries a region of `region_len` bytes holds: what [`Table::init`] would lay out, or 0
    /// if it would refuse the region as too small.
    pub fn capacity_for(region_len: usize) -> usize {
        Geometry::for_len::<V>(region_len).map_or(0, |g| g.capacity)
    }

    /// Smallest region that holds `capacity` entries, or `None` if `capacity` is below
    /// [`MIN_CAPACITY`] or beyond what a table can index.
    pub fn region_len_for(capacity: usize) -> Option<usize> {
        Geometry::for_capacity::<V>(capacity).map(|g| g.end)
    }

    /// Alignment the region's start address needs.
    pub fn region_align() -> usize {
        align_of::<Header>().max(align_of::<Slot<V>>())
    }

    /// Lays out an empty table in the region, whatever it held before.
    ///
    /// # Safety
    ///
    /// `region` must point to `len` bytes of initialised (any content, e.g. zeroed or
    /// previously used) readable and writable memory that stays mapped as long as any handle
    /// on the table is used, in this or any other process. Nothing else may access the region
    /// while `init` runs: no other handle on it may be in use.
    pub unsafe fn init(region: *mut u8, len: usize) -> Result<Self, TableError> {
        let geometry = Geometry::for_len::<V>(len).ok_or_else(|| TableError::TooSmall {
            len,
            min: Self::region_len_for(MIN_CAPACITY).unwrap_or(usize::MAX),
        })?;
        let table = Self::locate(region, geometry)?;
        let header = table.header.as_ptr();
        // SAFETY: `locate` checked that the region is non-null, aligned and large enough for
        // the header, and the caller guarantees exclusive access: writing whole sub-structs
        // (with `ptr::write`, never reading the old contents) is sound.
        unsafe {
            ptr::write(
                addr_of_mut!((*header).identity),
                Identity {
                    magic: MAGIC,
                    layout_version: LAYOUT_VERSION,
                    record_kind: V::KIND,
                    record_size: size_of::<V>() as u64,
                    record_align: align_of::<V>() as u64,
                    capacity: geometry.capacity as u64,
                    buckets_offset: geometry.buckets_offset as u64,
                    slots_offset: geometry.slots_offset as u64,
                    region_len: len as u64,
                },
            );
            ptr::write(
                addr_of_mut!((*header).counters),
                Counters {
                    lock: LockWord::new(),
                    needs_rebuild: AtomicU32::new(0),
                    len: AtomicU32::new(0),
                    evictions: AtomicU64::new(0),
                    refusals: AtomicU64::new(0),
                    takeovers: AtomicU64::new(0),
                    dead_holder: AtomicU32::new(0),
                    _reserved: 0,
                },
            );
            ptr::write(
                addr_of_mut!((*header).links),
                Links {
                    free_head: NIL,
                    lru_head: NIL,
                    lru_tail: NIL,
                    _reserved: 0,
                },
            );
        }
        // SAFETY: exclusive access, guaranteed by the caller, stands in for the lock.
        unsafe { table.guard_unchecked() }.reset();
        Ok(table)
    }

    /// Attaches to a table that [`Table::init`] laid out in this region, in this process or
    /// another, for the same record type and region length.
    ///
    /// # Safety
    ///
    /// `region` must point to `len` bytes of initialised readable and writable memory that
    /// stays mapped as long as the returned handle is used. The table may be in use by other
    /// processes, but no `init` may be running on the region concurrently.
    pub unsafe fn attach(region: *mut u8, len: usize) -> Result<Self, TableError> {
        let align = Self::region_align();
        if region.is_null() || region as usize % align != 0 {
            return Err(TableError::Misaligned { align });
        }
        if len < HEADER_BYTES {
            return Err(TableError::NotATable);
        }
        // SAFETY: the region is non-null, aligned for `Header` and holds at least
        // HEADER_BYTES, and `Identity` is plain integers, valid for any content. It is
        // immutable once laid out, so reading it races with nothing.
        let identity = unsafe { ptr::read(addr_of!((*region.cast::<Header>()).identity)) };
        if identity.magic != MAGIC {
            return Err(TableError::NotATable);
        }
        if identity.layout_version != LAYOUT_VERSION {
            return Err(TableError::LayoutVersion {
                found: identity.layout_version,
                expected: LAYOUT_VERSION,
            });
        }
        if identity.record_kind != V::KIND {
            return Err(TableError::RecordKind {
                found: identity.record_kind,
                expected: V::KIND,
            });
        }
        let (expected_size, expected_align) = (size_of::<V>() as u64, align_of::<V>() as u64);
        if (identity.record_size, identity.record_align) != (expected_size, expected_align) {
            return Err(TableError::RecordLayout {
                found_size: identity.record_size,
                found_align: identity.record_align,
                expected_size,
                expected_align,
            });
        }
        if identity.region_len != len as u64 {
            return Err(TableError::RegionLen {
                laid_out: identity.region_len,
                len,
            });
        }
        let geometry = Geometry::for_len::<V>(len).ok_or(TableError::Geometry)?;
        let recorded = (
            identity.capacity,
            identity.buckets_offset,
            identity.slots_offset,
        );
        let computed = (
            geometry.capacity as u64,
            geometry.buckets_offset as u64,
            geometry.slots_offset as u64,
        );
        if recorded != computed {
            return Err(TableError::Geometry);
        }
        Self::locate(region, geometry)
    }

    /// Checks the region against `geometry` and derives this process's pointers.
    fn locate(region: *mut u8, geometry: Geometry) -> Result<Self, TableError> {
        let align = Self::region_align();
        let header = NonNull::new(region).ok_or(TableError::Misaligned { align })?;
        if region as usize % align != 0 {
            return Err(TableError::Misaligned { align });
        }
        // `wrapping_add` keeps this function safe; the offsets are within the region, which
        // the callers' contracts guarantee spans `geometry.end` bytes.
        let buckets = NonNull::new(region.wrapping_add(geometry.buckets_offset).cast::<u32>());
        let slots = NonNull::new(region.wrapping_add(geometry.slots_offset).cast::<Slot<V>>());
        match (buckets, slots) {
            (Some(buckets), Some(slots)) => Ok(Self {
                header: header.cast(),
                buckets,
                slots,
                capacity: geometry.capacity,
                _record: PhantomData,
            }),
            _ => Err(TableError::Misaligned { align }),
        }
    }

    /// Runs `f` with the table locked on behalf of `holder` (in nginx, the worker process:
    /// [`Holder::process`]), who is recorded in the lock word so that a waiter can take the
    /// lock over if the holder dies holding it.
    ///
    /// Keep `f` short: every worker waits while it runs. No allocation, no I/O, and never call
    /// `with` on the same table from inside `f`: that deadlocks. A panic in `f` releases the
    /// lock and has the next holder rebuild the lists.
    #[inline]
    pub fn with<R>(&self, holder: Holder, f: impl FnOnce(&mut Guard<'_, V>) -> R) -> R {
        let counters = self.counters();
        let held = counters.lock.acquire(holder, Some(&counters.needs_rebuild));
        let taken_from = held.taken_from;
        // SAFETY: we hold the lock, so nothing else accesses the slots, buckets or links
        // until `held` is dropped, which happens after the last use of `guard`.
        let mut guard = unsafe { self.guard_unchecked() };
        if let Some(dead) = taken_from {
            counters.dead_holder.store(pid_of(dead), Ordering::Relaxed);
            counters.takeovers.fetch_add(1, Ordering::Relaxed);
            counters.needs_rebuild.store(1, Ordering::Relaxed);
        }
        if counters.needs_rebuild.load(Ordering::Relaxed) != 0 {
            guard.rebuild();
            // Cleared only once the rebuild is done: a holder killed in the middle of it
            // leaves the flag for the next one.
            counters.needs_rebuild.store(0, Ordering::Relaxed);
        }
        let result = f(&mut guard);
        drop(held);
        if let Some(dead) = taken_from {
            report_takeover(V::NAME, pid_of(dead));
        }
        result
    }

    /// Capacity, occupancy, evictions and lock holder, read without taking the lock.
    pub fn stats(&self) -> Stats {
        let counters = self.counters();
        Stats {
            capacity: self.capacity,
            len: counters.len.load(Ordering::Relaxed) as usize,
            evictions: counters.evictions.load(Ordering::Relaxed),
            refusals: counters.refusals.load(Ordering::Relaxed),
            takeovers: counters.takeovers.load(Ordering::Relaxed),
            dead_holder: Some(counters.dead_holder.load(Ordering::Relaxed)).filter(|&pid| pid != 0),
            lock_holder: counters.lock.holder_pid(),
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn counters(&self) -> &Counters {
        // SAFETY: the header lives in the region, which the init/attach contract keeps mapped
        // while `self` is used. `Counters` is only atomics and no `&mut` to it exists after
        // `init`, so a shared reference is sound alongside every other process.
        unsafe { &*addr_of!((*self.header.as_ptr()).counters) }
    }

    /// A guard without taking the lock.
    ///
    /// # Safety
    ///
    /// The caller must have exclusive access to the links, buckets and slots (hold the lock,
    /// or be `init`) for as long as the guard lives.
    unsafe fn guard_unchecked(&self) -> Guard<'_, V> {
        // SAFETY: the pointers and capacity come from a geometry that fits the region (checked
        // by init/attach), the region is initialised memory and `Slot<V>` is plain data valid
        // for any content (`Record` contract), and the caller guarantees nothing else accesses
        // these parts meanwhile, so the mutable references do not alias.
        unsafe {
            Guard {
                links: &mut *addr_of_mut!((*self.header.as_ptr()).links),
                buckets: core::slice::from_raw_parts_mut(self.buckets.as_ptr(), self.capacity),
                slots: core::slice::from_raw_parts_mut(self.slots.as_ptr(), self.capacity),
                counters: self.counters(),
                spare: None,
                _invariant: PhantomData,
            }
        }
    }
}

/// Access to a locked table, handed to the closure of [`Table::with`].
///
/// Lookups take `now` and treat entries with `expires_at <= now` as absent; meeting one frees
/// its slot. Every operation that finds a live entry marks it most recently used.
pub struct Guard<'g, V: Record> {
    links: &'g mut Links,
    buckets: &'g mut [u32],
    slots: &'g mut [Slot<V>],
    counters: &'g Counters,
    /// Where a value goes if its slot cannot be reached, which only a corrupted region could
    /// cause: it lets the operations that return `&mut V` stay total without panicking.
    spare: Option<V>,
    /// Invariant in `'g`, so guards of two nested `with` calls cannot be swapped.
    _invariant: PhantomData<fn(&'g ()) -> &'g ()>,
}

/// A list or index was found inconsistent: the lists need a rebuild.
#[derive(Debug)]
struct Corrupt;

/// Where `key` is, or would go.
#[derive(Clone, Copy)]
struct Lookup {
    bucket: usize,
    hit: Option<Hit>,
}

#[derive(Clone, Copy)]
struct Hit {
    index: u32,
    /// The previous slot in the chain, or NIL if `index` heads its bucket.
    chain_prev: u32,
}

impl<V: Record> Guard<'_, V> {
    /// The value of the live entry for `key`, marking it recently used.
    pub fn get(&mut self, key: &Key, now: u64) -> Option<&mut V> {
        let lookup = self.find(key);
        let hit = lookup.hit?;
        if !self.is_live(hit.index, now) {
            self.release(lookup.bucket, hit);
            return None;
        }
        self.touch(hit.index);
        self.slot_mut(hit.index).map(|slot| &mut slot.value)
    }

    /// The value of the live entry for `key`, or a new entry holding `init()` that expires at
    /// `expires_at`; `true` when it was inserted. Never fails: a full table evicts. For records
    /// that are never pinned; with pinned ones use [`Guard::try_get_or_insert_with`] (here,
    /// a table full of pinned entries hands back a value that is not kept).
    /// The expiry of an existing entry is left alone (see [`Guard::set_expiry`]).
    pub fn get_or_insert_with(
        &mut self,
        key: &Key,
        now: u64,
        expires_at: u64,
        init: impl FnOnce() -> V,
    ) -> (&mut V, bool) {
        let lookup = self.find(key);
        if let Some(index) = self.live_hit(lookup, now) {
            return (self.value_or_spare(index, init), false);
        }
        // Run the caller's code before changing anything, so that a panic in it cannot leave
        // an operation half done.
        let value = init();
        match self.place(lookup, key, now, expires_at, value) {
            Some(index) => (self.value_or_spare(index, || value), true),
            None => (self.spare.insert(value), true),
        }
    }

    /// [`Guard::get_or_insert_with`] that never evicts a live pinned entry: `None` when there
    /// is no room without doing so (and nothing changed).
    pub fn try_get_or_insert_with(
        &mut self,
        key: &Key,
        now: u64,
        expires_at: u64,
        init: impl FnOnce() -> V,
    ) -> Option<(&mut V, bool)> {
        let lookup = self.find(key);
        if let Some(index) = self.live_hit(lookup, now) {
            return Some((self.value_or_spare(index, init), false));
        }
        let value = init();
        let index = self.place(lookup, key, now, expires_at, value)?;
        Some((self.value_or_spare(index, || value), true))
    }

    /// Inserts `value` unless a live entry for `key` exists. This is the spent-nonce check:
    /// the first use of a nonce inserts it, a replay finds it present; a table with no room
    /// left but pinned live entries refuses.
    pub fn insert_if_absent(&mut self, key: &Key, now: u64, expires_at: u64, value: V) -> Placed {
        let lookup = self.find(key);
        if self.live_hit(lookup, now).is_some() {
            return Placed::Present;
        }
        match self.place(lookup, key, now, expires_at, value) {
            Some(_) => Placed::Inserted,
            None => Placed::Full,
        }
    }

    /// Inserts or replaces the entry for `key`; returns the value it replaced, if live. For
    /// records that are never pinned: a table full of pinned entries keeps nothing new.
    pub fn insert(&mut self, key: &Key, now: u64, expires_at: u64, value: V) -> Option<V> {
        let lookup = self.find(key);
        if let Some(index) = self.live_hit(lookup, now) {
            let slot = self.slot_mut(index)?;
            slot.expires_at = expires_at;
            return Some(core::mem::replace(&mut slot.value, value));
        }
        self.place(lookup, key, now, expires_at, value);
        None
    }

    /// The live entry `lookup` found, marked recently used.
    fn live_hit(&mut self, lookup: Lookup, now: u64) -> Option<u32> {
        let hit = lookup.hit.filter(|hit| self.is_live(hit.index, now))?;
        self.touch(hit.index);
        Some(hit.index)
    }

    /// Moves the expiry of the live entry for `key`; `false` if there is none. An
    /// `expires_at` not after `now` makes the entry expire at once.
    pub fn set_expiry(&mut self, key: &Key, now: u64, expires_at: u64) -> bool {
        let lookup = self.find(key);
        let Some(hit) = lookup.hit else { return false };
        if !self.is_live(hit.index, now) {
            self.release(lookup.bucket, hit);
            return false;
        }
        self.touch(hit.index);
        match self.slot_mut(hit.index) {
            Some(slot) => {
                slot.expires_at = expires_at;
                true
            }
            None => false,
        }
    }

    /// A read-modify-write in one lookup: `f` sees the live entry's value (or `None`) and may
    /// return a value and expiry to store, inserting the entry if it was absent (a full table
    /// evicts). A live entry is marked recently used either way. Returns `f`'s other output.
    pub fn update<R>(
        &mut self,
        key: &Key,
        now: u64,
        f: impl FnOnce(Option<V>) -> (Option<(V, u64)>, R),
    ) -> R {
        let lookup = self.find(key);
        let live = lookup.hit.filter(|hit| self.is_live(hit.index, now));
        let current = live
            .and_then(|hit| self.slot(hit.index))
            .map(|slot| slot.value);
        // Run the caller's code before changing anything (see get_or_insert_with).
        let (store, out) = f(current);
        match (live, store) {
            (_, Some((value, expires_at))) => {
                // A table full of pinned entries keeps nothing new (see `insert`).
                let _ = self.place(lookup, key, now, expires_at, value);
            }
            (Some(hit), None) => self.touch(hit.index),
            (None, None) => {
                if let Some(expired) = lookup.hit {
                    self.release(lookup.bucket, expired);
                }
            }
        }
        out
    }

    /// Removes the entry for `key`; returns its value if it was live.
    pub fn remove(&mut self, key: &Key, now: u64) -> Option<V> {
        let lookup = self.find(key);
        let hit = lookup.hit?;
        let slot = self.slot(hit.index)?;
        let live = (now < slot.expires_at).then_some(slot.value);
        self.release(lookup.bucket, hit);
        live
    }

    /// Removes and returns the least recently used live entry (expired ones met on the way
    /// are freed): with entries only inserted, never looked up, the table is a queue.
    pub fn pop_least_recent(&mut self, now: u64) -> Option<(Key, V)> {
        for _ in 0..self.slots.len() {
            let slot = self.slot(self.links.lru_tail)?;
            if slot.state != OCCUPIED {
                self.flag_corrupt();
                return None;
            }
            let (key, live) = (slot.key, now < slot.expires_at);
            let removed = self.remove(&key, now);
            if live {
                return removed.map(|value| (key, value));
            }
        }
        None
    }

    /// Occupied slots, including expired entries whose slot has not been reused yet.
    pub fn len(&self) -> usize {
        self.counters.len.load(Ordering::Relaxed) as usize
    }

    /// Whether no slot is occupied.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    // ----- Lookup -------------------------------------------------------------------------

    fn slot(&self, index: u32) -> Option<&Slot<V>> {
        self.slots.get(index as usize)
    }

    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot<V>> {
        self.slots.get_mut(index as usize)
    }

    fn is_live(&self, index: u32, now: u64) -> bool {
        self.slot(index).is_some_and(|slot| now < slot.expires_at)
    }

    fn value_or_spare(&mut self, index: u32, fallback: impl FnOnce() -> V) -> &mut V {
        let Self { slots, spare, .. } = self;
        match slots.get_mut(index as usize) {
            Some(slot) => &mut slot.value,
            None => spare.insert(fallback()),
        }
    }

    /// Where `key` is, walking its chain; `Err` if the chain is broken.
    fn locate(&self, key: &Key) -> Result<Lookup, Corrupt> {
        let bucket = bucket_of(key, self.buckets.len());
        let mut chain_prev = NIL;
        let mut cursor = *self.buckets.get(bucket).ok_or(Corrupt)?;
        // A sound chain has at most `capacity` slots; more means a cycle.
        for _ in 0..self.slots.len() {
            if cursor == NIL {
                return Ok(Lookup { bucket, hit: None });
            }
            let slot = self.slot(cursor).ok_or(Corrupt)?;
            if slot.state != OCCUPIED {
                return Err(Corrupt);
            }
            if slot.key == *key {
                return Ok(Lookup {
                    bucket,
                    hit: Some(Hit {
                        index: cursor,
                        chain_prev,
                    }),
                });
            }
            chain_prev = cursor;
            cursor = slot.chain_next;
        }
        if cursor == NIL {
            Ok(Lookup { bucket, hit: None })
        } else {
            Err(Corrupt)
        }
    }

    /// [`Guard::locate`], repairing the table if needed: always an answer the table agrees
    /// with afterwards.
    fn find(&mut self, key: &Key) -> Lookup {
        if let Ok(lookup) = self.locate(key) {
            return lookup;
        }
        self.rebuild();
        if let Ok(lookup) = self.locate(key) {
            return lookup;
        }
        // A rebuild always yields sound chains; clearing is the last resort regardless.
        self.reset();
        Lookup {
            bucket: bucket_of(key, self.buckets.len()),
            hit: None,
        }
    }

    // ----- Insertion and removal ----------------------------------------------------------

    /// Stores a new entry where `lookup` says `key` goes: over the expired entry for `key` if
    /// there is one, otherwise in a free or reclaimed slot. Returns its slot, or `None` (and
    /// counts a refusal) when making room would evict a live pinned entry.
    fn place(
        &mut self,
        lookup: Lookup,
        key: &Key,
        now: u64,
        expires_at: u64,
        value: V,
    ) -> Option<u32> {
        if let Some(hit) = lookup.hit {
            if let Some(slot) = self.slot_mut(hit.index) {
                slot.expires_at = expires_at;
                crash_point();
                slot.value = value;
            }
            crash_point();
            self.touch(hit.index);
            return Some(hit.index);
        }
        let Some(index) = self.take_slot(now) else {
            self.counters.refusals.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        crash_point();
        // Read the chain head only now: taking the slot may have evicted from this chain.
        let chain_next = self.buckets.get(lookup.bucket).copied().unwrap_or(NIL);
        if let Some(slot) = self.slot_mut(index) {
            slot.key = *key;
            crash_point();
            slot.expires_at = expires_at;
            slot.value = value;
            slot.lru_prev = NIL;
            slot.lru_next = NIL;
            slot.chain_next = chain_next;
            // The entry is whole before it is marked occupied: a holder killed in between
            // leaves a free slot, never an occupied one with half a key (see "Repair").
            crash_point();
            core::sync::atomic::compiler_fence(Ordering::Release);
            slot.state = OCCUPIED;
        }
        crash_point();
        if let Some(head) = self.buckets.get_mut(lookup.bucket) {
            *head = index;
        }
        crash_point();
        if self.lru_push_front(index).is_err() {
            self.flag_corrupt();
        }
        self.counters.len.fetch_add(1, Ordering::Relaxed);
        Some(index)
    }

    /// A slot for a new entry, unlinked from everything: a free one, else an expired one near
    /// the least recently used end, else the least recently used one that is not pinned;
    /// `None` when every candidate is pinned and live.
    fn take_slot(&mut self, now: u64) -> Option<u32> {
        if let Ok(index) = self.try_take_slot(now) {
            return index;
        }
        self.rebuild();
        if let Ok(index) = self.try_take_slot(now) {
            return index;
        }
        self.reset();
        // After a reset every slot is free, and a table has at least MIN_CAPACITY slots.
        Some(self.try_take_slot(now).ok().flatten().unwrap_or(0))
    }

    fn try_take_slot(&mut self, now: u64) -> Result<Option<u32>, Corrupt> {
        if let Some(index) = self.pop_free()? {
            return Ok(Some(index));
        }
        let Some(victim) = self.pick_victim(now)? else {
            return Ok(None);
        };
        let (key, live) = {
            let slot = self.slot(victim).ok_or(Corrupt)?;
            (slot.key, now < slot.expires_at)
        };
        let lookup = self.locate(&key)?;
        let hit = lookup
            .hit
            .filter(|hit| hit.index == victim)
            .ok_or(Corrupt)?;
        self.chain_unlink(lookup.bucket, hit)?;
        crash_point();
        self.lru_unlink(victim)?;
        crash_point();
        self.slot_mut(victim).ok_or(Corrupt)?.state = FREE;
        crash_point();
        self.counters.len.fetch_sub(1, Ordering::Relaxed);
        if live {
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Some(victim))
    }

    /// The entry to make room from in a full table: an expired one near the least recently
    /// used end, else the least recently used one that is not pinned. Pinned live entries met
    /// at the end are moved to the other end (a second chance) so that the next search starts
    /// further on; `None` when none was found within [`PINNED_SCAN`] of them.
    fn pick_victim(&mut self, now: u64) -> Result<Option<u32>, Corrupt> {
        let mut cursor = self.links.lru_tail;
        let mut unpinned = None;
        for _ in 0..EXPIRED_SCAN {
            let Some(slot) = self.slot(cursor) else { break };
            if slot.state != OCCUPIED {
                return Err(Corrupt);
            }
            if now >= slot.expires_at {
                return Ok(Some(cursor));
            }
            if unpinned.is_none() && !slot.value.pinned() {
                unpinned = Some(cursor);
            }
            cursor = slot.lru_prev;
        }
        if unpinned.is_some() {
            return Ok(unpinned);
        }
        for _ in 0..PINNED_SCAN {
            let tail = self.links.lru_tail;
            let slot = self.slot(tail).ok_or(Corrupt)?;
            if slot.state != OCCUPIED {
                return Err(Corrupt);
            }
            if now >= slot.expires_at || !slot.value.pinned() {
                return Ok(Some(tail));
            }
            if self.links.lru_head == tail {
                break;
            }
            self.lru_unlink(tail)?;
            self.lru_push_front(tail)?;
        }
        Ok(None)
    }

    /// Removes the entry `lookup` found and frees its slot.
    fn release(&mut self, bucket: usize, hit: Hit) {
        let unlinked = self
            .chain_unlink(bucket, hit)
            .and_then(|()| self.lru_unlink(hit.index));
        if unlinked.is_err() {
            self.flag_corrupt();
            return;
        }
        crash_point();
        self.free_push(hit.index);
        self.counters.len.fetch_sub(1, Ordering::Relaxed);
    }

    fn chain_unlink(&mut self, bucket: usize, hit: Hit) -> Result<(), Corrupt> {
        let next = self.slot(hit.index).ok_or(Corrupt)?.chain_next;
        let link = if hit.chain_prev == NIL {
            self.buckets.get_mut(bucket).ok_or(Corrupt)?
        } else {
            &mut self.slot_mut(hit.chain_prev).ok_or(Corrupt)?.chain_next
        };
        if *link != hit.index {
            return Err(Corrupt);
        }
        crash_point();
        *link = next;
        Ok(())
    }

    fn free_push(&mut self, index: u32) {
        let next = self.links.free_head;
        if let Some(slot) = self.slot_mut(index) {
            slot.state = FREE;
            crash_point();
            slot.chain_next = next;
            self.links.free_head = index;
        }
    }

    fn pop_free(&mut self) -> Result<Option<u32>, Corrupt> {
        let head = self.links.free_head;
        if head == NIL {
            return Ok(None);
        }
        let slot = self.slot(head).ok_or(Corrupt)?;
        if slot.state == OCCUPIED {
            return Err(Corrupt);
        }
        let next = slot.chain_next;
        self.links.free_head = next;
        Ok(Some(head))
    }

    // ----- Recency list -------------------------------------------------------------------

    /// Marks `index` most recently used.
    fn touch(&mut self, index: u32) {
        if self.links.lru_head == index {
            return;
        }
        if self
            .lru_unlink(index)
            .and_then(|()| self.lru_push_front(index))
            .is_err()
        {
            self.flag_corrupt();
        }
    }

    fn lru_unlink(&mut self, index: u32) -> Result<(), Corrupt> {
        let slot = self.slot(index).ok_or(Corrupt)?;
        let (prev, next) = (slot.lru_prev, slot.lru_next);
        if prev == NIL {
            if self.links.lru_head != index {
                return Err(Corrupt);
            }
            self.links.lru_head = next;
        } else {
            self.slot_mut(prev).ok_or(Corrupt)?.lru_next = next;
        }
        crash_point();
        if next == NIL {
            if self.links.lru_tail != index {
                return Err(Corrupt);
            }
            self.links.lru_tail = prev;
        } else {
            self.slot_mut(next).ok_or(Corrupt)?.lru_prev = prev;
        }
        Ok(())
    }

    fn lru_push_front(&mut self, index: u32) -> Result<(), Corrupt> {
        let old_head = self.links.lru_head;
        let slot = self.slot_mut(index).ok_or(Corrupt)?;
        slot.lru_prev = NIL;
        slot.lru_next = old_head;
        crash_point();
        if old_head == NIL {
            self.links.lru_tail = index;
        } else {
            self.slot_mut(old_head).ok_or(Corrupt)?.lru_prev = index;
        }
        self.links.lru_head = index;
        Ok(())
    }

    // ----- Repair -------------------------------------------------------------------------

    /// Has the next holder of the lock rebuild the lists.
    fn flag_corrupt(&self) {
        self.counters.needs_rebuild.store(1, Ordering::Relaxed);
    }

    /// Rebuilds chains, recency list, free list and length from the slots alone, keeping
    /// every occupied slot (one per key) and, as far as the old recency list can still be
    /// followed, its order. Total and bounded, whatever the region holds: O(capacity).
    fn rebuild(&mut self) {
        // A rebuild cut short (its holder killed in the middle) leaves slots marked adopted:
        // to this one they are occupied slots like any other. Taken as adopted by this
        // rebuild, they would be counted but linked nowhere: entries present and never found.
        for slot in self.slots.iter_mut() {
            if slot.state == ADOPTED {
                slot.state = OCCUPIED;
            }
        }
        self.buckets.fill(NIL);
        let mut cursor = self.links.lru_head;
        self.links.lru_head = NIL;
        self.links.lru_tail = NIL;
        // First the old recency list, in order, while it makes sense. Adopted slots change
        // state, so a cycle ends the walk.
        for _ in 0..self.slots.len() {
            let Some(slot) = self.slot(cursor) else { break };
            if slot.state != OCCUPIED {
                break;
            }
            let next = slot.lru_next;
            self.adopt(cursor);
            crash_point();
            cursor = next;
        }
        // Then every slot: occupied ones the walk missed go at the least recently used end,
        // the rest become free.
        self.links.free_head = NIL;
        let mut len: u32 = 0;
        // The capacity fits a u32 (at most MAX_CAPACITY), so every index does.
        for index in (0..self.slots.len() as u32).rev() {
            let state = self.slot(index).map_or(FREE, |slot| slot.state);
            let occupied = match state {
                ADOPTED => true,
                OCCUPIED => self.adopt(index),
                _ => false,
            };
            crash_point();
            if occupied {
                if let Some(slot) = self.slot_mut(index) {
                    slot.state = OCCUPIED;
                }
                len = len.saturating_add(1);
            } else {
                self.free_push(index);
            }
        }
        self.counters.len.store(len, Ordering::Relaxed);
    }

    /// Links slot `index` into its chain and at the least recently used end, marking it
    /// `ADOPTED`; or, if its key is already linked, marks it free. Returns whether adopted.
    fn adopt(&mut self, index: u32) -> bool {
        let Some(key) = self.slot(index).map(|slot| slot.key) else {
            return false;
        };
        let bucket = bucket_of(&key, self.buckets.len());
        let chain_head = self.buckets.get(bucket).copied().unwrap_or(NIL);
        let mut cursor = chain_head;
        for _ in 0..self.slots.len() {
            let Some(other) = self.slot(cursor) else {
                break;
            };
            if other.key == key {
                if let Some(slot) = self.slot_mut(index) {
                    slot.state = FREE;
                }
                return false;
            }
            cursor = other.chain_next;
        }
        let tail = self.links.lru_tail;
        let Some(slot) = self.slot_mut(index) else {
            return false;
        };
        slot.state = ADOPTED;
        slot.chain_next = chain_head;
        slot.lru_prev = tail;
        slot.lru_next = NIL;
        if let Some(head) = self.buckets.get_mut(bucket) {
            *head = index;
        }
        match self.slot_mut(tail) {
            Some(previous) => previous.lru_next = index,
            None => self.links.lru_head = index,
        }
        self.links.lru_tail = index;
        true
    }

    /// Empties the table.
    fn reset(&mut self) {
        self.buckets.fill(NIL);
        self.links.lru_head = NIL;
        self.links.lru_tail = NIL;
        self.links.free_head = NIL;
        // The capacity fits a u32 (at most MAX_CAPACITY), so every index does.
        for index in (0..self.slots.len() as u32).rev() {
            self.free_push(index);
        }
        self.counters.len.store(0, Ordering::Relaxed);
    }
}

#[cfg(any(test, feature = "fuzz-harness"))]
pub mod harness;

/// A table over an ordinary buffer, for unit tests of the records kept in tables. The
/// buffer is returned with the table and must outlive it.
#[cfg(test)]
pub fn test_table<V: Record>(capacity: usize) -> (Vec<TestLine>, Table<V>) {
    let len = Table::<V>::region_len_for(capacity).expect("a capacity the table can hold");
    let mut lines = vec![TestLine([0; 64]); len.div_ceil(64)];
    // SAFETY: the buffer is returned with the table; callers keep it while they use it.
    let table =
        unsafe { Table::<V>::init(lines.as_mut_ptr().cast(), len) }.expect("a fresh region");
    (lines, table)
}

/// An aligned 64-byte piece of [`test_table`]'s buffer.
#[cfg(test)]
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct TestLine([u8; 64]);

#[cfg(test)]
mod tests {
    use super::harness::*;
    use super::*;
    use std::collections::HashMap;
    use std::hint::spin_loop;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    // ----- Records and regions --------------------------------------------------------------

    /// Same kind tag as `Hits` but another size: a record whose layout changed without a new
    /// KIND, which attach must still refuse.
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct HitsV2 {
        count: u64,
        first_at: u64,
    }
    // SAFETY: integers only.
    unsafe impl Record for HitsV2 {
        const KIND: u32 = Hits::KIND;
        const NAME: &'static str = "test hits v2";
    }

    #[derive(Clone, Copy)]
    #[repr(C)]
    struct Bytes<const N: usize>([u64; N]);
    // SAFETY: integers only.
    unsafe impl<const N: usize> Record for Bytes<N> {
        const KIND: u32 = 0xB17E_0000 + N as u32;
        const NAME: &'static str = "test bytes";
    }
    type Rec16 = Bytes<2>;
    type Rec32 = Bytes<4>;
    type Rec64 = Bytes<8>;

    /// A spent-nonce set needs no value at all.
    #[derive(Clone, Copy)]
    struct Spent;
    // SAFETY: zero-sized.
    unsafe impl Record for Spent {
        const KIND: u32 = u32::from_be_bytes(*b"spnt");
        const NAME: &'static str = "test spent";
    }

    const _: fn() = || {
        fn shared<T: Send + Sync>() {}
        shared::<Table<Hits>>();
    };

    /// Loop counts: full size natively, a sample under Miri, which is thousands of times slower.
    fn scaled(n: u64) -> u64 {
        if cfg!(miri) {
            (n / 500).max(2)
        } else {
            n
        }
    }
    // ----- Sizes ----------------------------------------------------------------------------

    #[test]
    fn pop_least_recent_serves_a_queue_in_order() {
        let mut region = Region::for_capacity::<Hits>(64);
        let table = region.init::<Hits>();
        table.with(process(1), |t| {
            assert!(t.pop_least_recent(0).is_none());
            for i in 0..10u8 {
                // Entry 3 expires at 50; the others live on.
                let expires = if i == 3 { 50 } else { 1000 };
                t.insert(&[i; 16], 0, expires, Hits { count: 0 });
            }
            assert_eq!(t.pop_least_recent(10).map(|(k, _)| k[0]), Some(0));
            assert_eq!(t.pop_least_recent(10).map(|(k, _)| k[0]), Some(1));
            // A lookup makes 2 the most recent: it is served last.
            assert!(t.get(&[2; 16], 10).is_some());
            // The expired entry is skipped and freed.
            let order: Vec<u8> =
                core::iter::from_fn(|| t.pop_least_recent(100).map(|(k, _)| k[0])).collect();
            assert_eq!(order, [4, 5, 6, 7, 8, 9, 2]);
            assert!(t.is_empty());
        });
    }

    #[test]
    fn bytes_per_entry_meets_the_budget() {
        assert_eq!(Table::<Rec16>::bytes_per_entry(), 60);
        assert_eq!(Table::<Rec32>::bytes_per_entry(), 76);
        assert_eq!(Table::<Rec64>::bytes_per_entry(), 108);
        assert!(Table::<Rec32>::bytes_per_entry() <= 128);
        assert_eq!(Table::<Spent>::bytes_per_entry(), 44);
        // The figure quoted in the module docs.
        assert_eq!(Table::<Rec32>::capacity_for(1 << 20), 13_795);
    }

    #[test]
    fn capacity_for_and_region_len_for_agree() {
        fn agree<V: Record>() {
            assert_eq!(Table::<V>::region_len_for(MIN_CAPACITY - 1), None);
            let min_len = Table::<V>::region_len_for(MIN_CAPACITY).unwrap();
            assert_eq!(Table::<V>::capacity_for(min_len - 1), 0);
            for capacity in MIN_CAPACITY..scaled(3000) as usize + MIN_CAPACITY {
                let len = Table::<V>::region_len_for(capacity).unwrap();
                assert_eq!(Table::<V>::capacity_for(len), capacity);
                let next_len = Table::<V>::region_len_for(capacity + 1).unwrap();
                assert_eq!(Table::<V>::capacity_for(next_len - 1), capacity);
                if capacity > MIN_CAPACITY {
                    assert_eq!(Table::<V>::capacity_for(len - 1), capacity - 1);
                }
                assert!(len <= HEADER_BYTES + 8 + capacity * Table::<V>::bytes_per_entry());
            }
            assert_eq!(Table::<V>::capacity_for(0), 0);
            assert!(Table::<V>::capacity_for(usize::MAX) <= MAX_CAPACITY);
            assert_eq!(Table::<V>::region_len_for(usize::MAX), None);
        }
        agree::<Hits>();
        agree::<Rec16>();
        agree::<Rec64>();
        agree::<Spent>();
        agree::<[u8; 5]>();
    }

    // SAFETY: bytes, valid for any bits.
    unsafe impl Record for [u8; 5] {
        const KIND: u32 = 5;
        const NAME: &'static str = "test five";
    }

    #[test]
    fn init_refuses_small_or_misaligned_regions() {
        let min = Table::<Hits>::region_len_for(MIN_CAPACITY).unwrap();
        let mut region = Region::new(min + 64);
        // SAFETY: every call below stays within `region`.
        unsafe {
            assert_eq!(
                Table::<Hits>::init(region.ptr(), min - 1).unwrap_err(),
                TableError::TooSmall { len: min - 1, min }
            );
            assert_eq!(
                Table::<Hits>::init(region.ptr().add(4), min).unwrap_err(),
                TableError::Misaligned { align: 8 }
            );
            assert_eq!(
                Table::<Hits>::init(ptr::null_mut(), min).unwrap_err(),
                TableError::Misaligned { align: 8 }
            );
            assert_eq!(
                Table::<Hits>::init(region.ptr(), min).unwrap().capacity(),
                MIN_CAPACITY
            );
        }
    }

    // ----- Operations -----------------------------------------------------------------------

    #[test]
    fn insert_get_remove() {
        let mut region = Region::for_capacity::<Hits>(100);
        let table = region.init::<Hits>();
        let (a, b) = (key(1), key(2));
        table.with(PID, |t| {
            assert!(t.is_empty());
            assert_eq!(t.get(&a, 0), None);
            assert_eq!(
                t.insert_if_absent(&a, 0, NEVER, Hits { count: 1 }),
                Placed::Inserted
            );
            assert_eq!(
                t.insert_if_absent(&a, 0, NEVER, Hits { count: 9 }),
                Placed::Present
            );
            assert_eq!(t.get(&a, 0), Some(&mut Hits { count: 1 }));

            let (hits, inserted) = t.get_or_insert_with(&b, 0, NEVER, || Hits { count: 0 });
            assert!(inserted);
            hits.count += 5;
            let (hits, inserted) = t.get_or_insert_with(&b, 0, NEVER, || unreachable!());
            assert!(!inserted);
            assert_eq!(hits.count, 5);

            assert_eq!(
                t.insert(&b, 0, NEVER, Hits { count: 7 }),
                Some(Hits { count: 5 })
            );
            assert_eq!(t.get(&b, 0), Some(&mut Hits { count: 7 }));
            assert_eq!(t.len(), 2);

            assert_eq!(t.remove(&a, 0), Some(Hits { count: 1 }));
            assert_eq!(t.remove(&a, 0), None);
            assert_eq!(t.get(&a, 0), None);
            assert_eq!(t.len(), 1);
            t.check().unwrap();
        });
        assert_eq!(
            table.stats(),
            Stats {
                capacity: 100,
                len: 1,
                evictions: 0,
                refusals: 0,
                takeovers: 0,
                dead_holder: None,
                lock_holder: None
            }
        );
    }

    #[test]
    fn expired_entries_are_invisible() {
        let mut region = Region::for_capacity::<Hits>(16);
        let table = region.init::<Hits>();
        let (a, b, c) = (key(1), key(2), key(3));
        table.with(PID, |t| {
            t.insert(&a, 1000, 2000, Hits { count: 1 });
            assert!(t.get(&a, 1999).is_some());
            assert!(t.get(&a, 2000).is_none(), "expires_at is exclusive");
            assert_eq!(t.len(), 0, "meeting an expired entry frees its slot");

            t.insert(&b, 1000, 2000, Hits { count: 1 });
            assert!(t.set_expiry(&b, 1500, 3000));
            assert!(t.get(&b, 2500).is_some());
            assert!(!t.set_expiry(&b, 3000, 9000), "too late: already expired");

            t.insert(&c, 1000, 2000, Hits { count: 1 });
            let (hits, inserted) = t.get_or_insert_with(&c, 2000, 5000, || Hits { count: 42 });
            assert!(inserted, "an expired entry is replaced");
            assert_eq!(hits.count, 42);
            assert!(t.set_expiry(&c, 2000, 2000), "expiring now is allowed");
            assert_eq!(
                t.insert_if_absent(&c, 2000, 5000, Hits { count: 0 }),
                Placed::Inserted
            );
            assert_eq!(
                t.remove(&c, 6000),
                None,
                "removing an expired entry reports nothing"
            );
            t.check().unwrap();
        });
    }

    #[test]
    fn full_table_evicts_least_recently_used() {
        let capacity = 32;
        let mut region = Region::for_capacity::<Hits>(capacity);
        let table = region.init::<Hits>();
        let keys: Vec<Key> = (0..capacity as u64 * 2).map(key).collect();
        table.with(PID, |t| {
            for k in &keys[..capacity] {
                assert_eq!(
                    t.insert_if_absent(k, 0, NEVER, Hits { count: 0 }),
                    Placed::Inserted
                );
            }
            // Use the even keys again: the odd ones are now the least recently used.
            for k in keys[..capacity].iter().step_by(2) {
                assert!(t.get(k, 1).is_some());
            }
            let odd: Vec<Key> = keys[..capacity]
                .iter()
                .skip(1)
                .step_by(2)
                .copied()
                .collect();
            let even: Vec<Key> = keys[..capacity].iter().step_by(2).copied().collect();
            assert_eq!(t.keys_by_recency(), [odd.clone(), even].concat());
            // Each new key evicts the oldest odd key, in order.
            for (n, k) in keys[capacity..capacity + capacity / 2].iter().enumerate() {
                assert_eq!(
                    t.insert_if_absent(k, 2, NEVER, Hits { count: 0 }),
                    Placed::Inserted
                );
                assert_eq!(t.keys_by_recency()[..odd.len() - n - 1], odd[n + 1..]);
            }
            for k in &odd {
                assert!(t.get(k, 3).is_none(), "untouched entries went");
            }
            for k in keys[..capacity].iter().step_by(2) {
                assert!(t.get(k, 3).is_some(), "used entries survive");
            }
            assert_eq!(t.len(), capacity);
            t.check().unwrap();
        });
        assert_eq!(table.stats().evictions, capacity as u64 / 2);
    }

    #[test]
    fn expired_entries_go_before_live_ones() {
        let capacity = 16;
        let mut region = Region::for_capacity::<Hits>(capacity);
        let table = region.init::<Hits>();
        table.with(PID, |t| {
            // The second least recently used entry expires at 10; the rest never.
            for n in 0..capacity as u64 {
                t.insert(
                    &key(n),
                    0,
                    if n == 1 { 10 } else { NEVER },
                    Hits { count: n },
                );
            }
            t.insert(&key(100), 20, NEVER, Hits { count: 100 });
            assert!(t.get(&key(0), 20).is_some(), "the live LRU entry is kept");
            assert_eq!(t.len(), capacity);
        });
        assert_eq!(table.stats().evictions, 0);
    }

    #[test]
    fn inserts_never_fail_when_full() {
        let capacity = 50;
        let mut region = Region::for_capacity::<Hits>(capacity);
        let table = region.init::<Hits>();
        table.with(PID, |t| {
            for n in 0..capacity as u64 * 10 {
                let (hits, inserted) =
                    t.get_or_insert_with(&key(n), n, NEVER, || Hits { count: n });
                assert!(inserted);
                assert_eq!(hits.count, n);
                assert_eq!(
                    t.insert_if_absent(&key(n + 1_000_000), n, NEVER, Hits { count: 0 }),
                    Placed::Inserted
                );
                assert_eq!(t.get(&key(n), n), Some(&mut Hits { count: n }));
            }
            assert_eq!(t.len(), capacity);
            t.check().unwrap();
        });
        assert_eq!(
            table.stats().evictions,
            capacity as u64 * 20 - capacity as u64
        );
    }

    #[test]
    fn zero_sized_records_make_a_set() {
        let mut region = Region::for_capacity::<Spent>(64);
        let spent = region.init::<Spent>();
        spent.with(PID, |t| {
            assert_eq!(
                t.insert_if_absent(&key(7), 0, 60_000, Spent),
                Placed::Inserted
            );
            assert_eq!(
                t.insert_if_absent(&key(7), 59_999, 60_000, Spent),
                Placed::Present,
                "replay refused"
            );
            assert_eq!(
                t.insert_if_absent(&key(7), 60_000, 120_000, Spent),
                Placed::Inserted
            );
        });
    }

    // ----- Sharing the region ---------------------------------------------------------------

    #[test]
    fn attached_handles_share_the_table() {
        let mut region = Region::for_capacity::<Hits>(100);
        let first = region.init::<Hits>();
        let second = region.attach::<Hits>().unwrap();
        first.with(PID, |t| t.insert(&key(1), 0, NEVER, Hits { count: 11 }));
        second.with(PID, |t| {
            assert_eq!(t.get(&key(1), 0), Some(&mut Hits { count: 11 }));
            t.insert(&key(2), 0, NEVER, Hits { count: 22 });
        });
        first.with(PID, |t| {
            assert_eq!(t.get(&key(2), 0), Some(&mut Hits { count: 22 }))
        });
        assert_eq!(first.stats(), second.stats());
        // A region copied elsewhere (another mapping address) still attaches and reads the same.
        let mut moved = Region::new(region.len);
        moved.bytes().copy_from_slice(region.bytes());
        let third = moved.attach::<Hits>().unwrap();
        third.with(PID, |t| {
            assert_eq!(t.get(&key(1), 0), Some(&mut Hits { count: 11 }))
        });
    }

    #[test]
    fn attach_refuses_what_it_does_not_understand() {
        let len = Table::<Hits>::region_len_for(100).unwrap();
        let mut region = Region::new(len);
        assert_eq!(region.attach::<Hits>().unwrap_err(), TableError::NotATable);
        region.bytes().fill(0);
        assert_eq!(region.attach::<Hits>().unwrap_err(), TableError::NotATable);
        let mut rng = Rng(5);
        region
            .bytes()
            .iter_mut()
            .for_each(|b| *b = rng.next() as u8);
        assert_eq!(region.attach::<Hits>().unwrap_err(), TableError::NotATable);

        region.init::<Hits>();
        assert_eq!(
            region.attach::<Rec16>().unwrap_err(),
            TableError::RecordKind {
                found: Hits::KIND,
                expected: Rec16::KIND
            }
        );
        assert!(matches!(
            region.attach::<HitsV2>().unwrap_err(),
            TableError::RecordLayout {
                found_size: 8,
                expected_size: 16,
                ..
            }
        ));
        // SAFETY: a shorter length within the region.
        let shorter = unsafe { Table::<Hits>::attach(region.ptr(), len - 100) };
        assert_eq!(
            shorter.unwrap_err(),
            TableError::RegionLen {
                laid_out: len as u64,
                len: len - 100
            }
        );
        // SAFETY: a misaligned pointer into the region.
        let misaligned = unsafe { Table::<Hits>::attach(region.ptr().add(1), len - 1) };
        assert_eq!(misaligned.unwrap_err(), TableError::Misaligned { align: 8 });

        let version = region.bytes()[8..12].to_vec();
        region.bytes()[8..12].copy_from_slice(&(LAYOUT_VERSION + 1).to_ne_bytes());
        assert_eq!(
            region.attach::<Hits>().unwrap_err(),
            TableError::LayoutVersion {
                found: LAYOUT_VERSION + 1,
                expected: LAYOUT_VERSION
            }
        );
        region.bytes()[8..12].copy_from_slice(&version);
        let capacity_field = 32..40;
        region.bytes()[capacity_field.clone()].copy_from_slice(&1_000_000u64.to_ne_bytes());
        assert_eq!(region.attach::<Hits>().unwrap_err(), TableError::Geometry);
        region.bytes()[capacity_field].copy_from_slice(&100u64.to_ne_bytes());
        assert!(region.attach::<Hits>().is_ok());
    }

    // ----- Recovery -------------------------------------------------------------------------

    #[test]
    fn lock_taken_back_from_a_dead_worker() {
        let mut region = Region::for_capacity::<Hits>(64);
        let table = region.init::<Hits>();
        let keys: Vec<Key> = (0..40).map(key).collect();
        table.with(PID, |t| {
            for (n, k) in keys.iter().enumerate() {
                t.insert(k, 0, NEVER, Hits { count: n as u64 });
            }
        });
        let order = table.with(PID, |t| t.keys_by_recency());

        die_holding_lock(&table, 4242);
        assert_eq!(table.stats().lock_holder, Some(4242));
        assert_eq!(table.stats().takeovers, 0);

        table.with(PID, |t| {
            t.check().unwrap();
            assert_eq!(
                t.keys_by_recency(),
                order,
                "a rebuild keeps the recency order"
            );
            for (n, k) in keys.iter().enumerate() {
                assert_eq!(t.get(k, 0), Some(&mut Hits { count: n as u64 }));
            }
        });
        let stats = table.stats();
        assert_eq!(
            (stats.takeovers, stats.dead_holder, stats.lock_holder),
            (1, Some(4242), None)
        );
    }

    #[test]
    fn a_live_holder_keeps_the_lock_however_slow() {
        let (region, len) = Region::for_capacity::<Hits>(16).leak();
        // SAFETY: the leaked region lives for the rest of the test binary.
        let table = unsafe { Table::<Hits>::init(region, len) }.unwrap();
        die_holding_lock(&table, 77);
        let (done, finished) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            table.with(PID, |t| t.insert(&key(1), 0, NEVER, Hits { count: 1 }));
            done.send(()).unwrap();
        });
        assert!(
            finished.recv_timeout(Duration::from_millis(100)).is_err(),
            "a waiter must not take the lock from a live holder"
        );
        table.counters().lock.set_raw(0);
        finished
            .recv_timeout(Duration::from_secs(5))
            .expect("the waiter got the lock once freed");
        waiter.join().unwrap();
        assert_eq!(table.stats().takeovers, 0);
    }

    /// A real process takes the lock, starts an insert, and is killed with SIGKILL in the
    /// middle of it; this process then gets the lock within milliseconds, finds the table
    /// consistent, and still has every entry whose insert finished.
    #[test]
    #[cfg(not(miri))]
    fn a_killed_process_leaves_no_wedged_lock() {
        let capacity = 256;
        let len = Table::<Hits>::region_len_for(capacity).unwrap();
        // SAFETY: an anonymous shared mapping of `len` bytes, unmapped at the end.
        let region = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(region, libc::MAP_FAILED);
        let region = region.cast::<u8>();
        // SAFETY: a fresh mapping used by nobody else yet.
        let table = unsafe { Table::<Hits>::init(region, len) }.unwrap();
        let me = Holder::process(std::process::id());
        table.with(me, |t| {
            for n in 0..100 {
                t.insert(&key(n), 0, NEVER, Hits { count: n });
            }
        });
        // SAFETY: the child only touches the shared mapping and calls async-signal-safe
        // functions (no allocation: the holder word is computed before the fork).
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            // SAFETY: getpid is async-signal-safe.
            let pid = unsafe { libc::getpid() } as u32;
            // Taken directly, as a process does that dies before it would release it.
            let held = table
                .counters()
                .lock
                .acquire(Holder::with_probe(pid, 0, dead_from_4000), None);
            core::mem::forget(held);
            // Half an insert: a slot taken off the free list and written, never linked.
            // SAFETY: we hold the lock.
            let guard = unsafe { table.guard_unchecked() };
            let index = guard.links.free_head as usize;
            guard.links.free_head = guard.slots[index].chain_next;
            guard.slots[index].key = key(1000);
            guard.slots[index].state = OCCUPIED;
            loop {
                // SAFETY: pause only waits for a signal.
                unsafe { libc::pause() };
            }
        }
        while table.stats().lock_holder != Some(child as u32) {
            std::thread::yield_now();
        }
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(child, libc::SIGKILL);
            libc::waitpid(child, ptr::null_mut(), 0);
        }
        let started = Instant::now();
        table.with(me, |t| {
            t.check().unwrap();
            for n in 0..100 {
                assert_eq!(t.get(&key(n), 0), Some(&mut Hits { count: n }));
            }
        });
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(500),
            "took the lock over in {waited:?}"
        );
        assert_eq!(table.stats().takeovers, 1);
        // SAFETY: the mapping is ours and no handle is used any more.
        unsafe { libc::munmap(region.cast(), len) };
    }

    /// A holder killed in the middle of a rebuild, at every point where it can be: the next
    /// holder's rebuild keeps every entry, findable.
    #[test]
    fn a_rebuild_cut_short_loses_nothing() {
        let capacity = 16;
        for kill_at in 1..=64 {
            let mut region = Region::for_capacity::<Hits>(capacity);
            let table = region.init::<Hits>();
            let keys: Vec<Key> = (0..12).map(key).collect();
            table.with(PID, |t| {
                for (n, k) in keys.iter().enumerate() {
                    t.insert(k, 0, NEVER, Hits { count: n as u64 });
                }
            });
            die_holding_lock(&table, DEAD_PIDS + 1);
            // The next holder starts the repair and is killed in it.
            killed_during(kill_at, || table.with(PID, |_| ()));
            die_holding_lock(&table, DEAD_PIDS + 2);
            table.with(PID, |t| {
                t.check().map_err(|e| format!("killed at {kill_at}: {e}")).unwrap();
                for (n, k) in keys.iter().enumerate() {
                    assert_eq!(t.get(k, 0).map(|h| h.count), Some(n as u64), "killed at {kill_at}");
                }
            });
        }
    }

    #[test]
    fn a_panicking_closure_releases_the_lock() {
        let mut region = Region::for_capacity::<Hits>(16);
        let table = region.init::<Hits>();
        let outcome = std::panic::catch_unwind(|| {
            table.with(PID, |t| {
                t.get_or_insert_with(&key(1), 0, NEVER, || panic!("init failed"));
            })
        });
        assert!(outcome.is_err());
        assert_eq!(table.stats().lock_holder, None);
        table.with(PID, |t| {
            assert_eq!(t.get(&key(1), 0), None, "nothing half inserted");
            t.check().unwrap();
        });
    }

    /// Scribbles over the lists (not the keys) in every way, then uses the table: it must
    /// neither panic nor hang, must end consistent, and must keep every entry it can read.
    #[test]
    fn scribbled_links_are_repaired() {
        let capacity = 64;
        let mut rng = Rng(99);
        for round in 0..scaled(300) {
            let mut region = Region::for_capacity::<Hits>(capacity);
            let table = region.init::<Hits>();
            let keys: Vec<Key> = (0..48).map(|n| key(n + round * 1000)).collect();
            table.with(PID, |t| {
                for (n, k) in keys.iter().enumerate() {
                    t.insert(k, 0, NEVER, Hits { count: n as u64 });
                }
                scribble_links(t, &mut rng);
            });
            // Whatever the operations below notice, a rebuild follows at the latest on the
            // next lock; the final forced one covers damage nobody stepped on.
            for n in 0..scaled(200) {
                table.with(PID, |t| {
                    let k = &keys[rng.below(keys.len() as u64) as usize];
                    match rng.below(4) {
                        0 => _ = t.get(k, 0),
                        1 => _ = t.get_or_insert_with(k, 0, NEVER, || Hits { count: n }),
                        2 => _ = t.insert(&key(rng.next()), 0, NEVER, Hits { count: n }),
                        _ => _ = t.remove(&key(rng.next()), 0),
                    }
                });
            }
            die_holding_lock(&table, DEAD_PIDS + 1);
            table.with(PID, |t| {
                t.check()
                    .map_err(|e| format!("round {round}: {e}"))
                    .unwrap();
                assert!(t.len() <= capacity);
            });
        }
    }

    #[test]
    fn scribbled_region_never_panics() {
        let capacity = 64;
        let mut rng = Rng(7);
        for _ in 0..scaled(200) {
            let mut region = Region::for_capacity::<Hits>(capacity);
            region.init::<Hits>();
            // Everything after the identity: counters, lists, buckets, slots.
            for byte in &mut region.bytes()[size_of::<Identity>()..] {
                if rng.below(3) == 0 {
                    *byte = rng.next() as u8;
                }
            }
            let table = region.attach::<Hits>().unwrap();
            table.counters().lock.set_raw(0);
            for n in 0..scaled(100) {
                table.with(PID, |t| {
                    let k = key(rng.below(80));
                    t.get_or_insert_with(&k, n, n + rng.below(50), || Hits { count: 0 });
                    t.get(&key(rng.below(80)), n);
                    t.remove(&key(rng.below(80)), n);
                });
            }
            die_holding_lock(&table, DEAD_PIDS + 1);
            check(&table);
        }
    }

    #[test]
    fn behaves_like_the_model() {
        for (capacity, ops, seed) in [(MIN_CAPACITY, 100_000, 1), (13, 100_000, 2), (64, 200_000, 3)] {
            let run = model_run(capacity, scaled(ops), &mut Rng(seed));
            assert!(run.evictions > 0 || cfg!(miri), "the run should have filled the table");
            assert!(run.kills > 0, "the run should have killed holders in the middle");
        }
    }

    // ----- Concurrency ----------------------------------------------------------------------

    /// A leaked region, handed to threads.
    #[derive(Clone, Copy)]
    struct SharedRegion {
        ptr: *mut u8,
        len: usize,
    }

    // SAFETY: the region is leaked, so valid everywhere for ever, and only accessed through
    // tables, which synchronise themselves.
    unsafe impl Send for SharedRegion {}

    impl SharedRegion {
        fn attach(self) -> Table<Hits> {
            // SAFETY: see `Send` above.
            unsafe { Table::attach(self.ptr, self.len) }.unwrap()
        }
    }

    /// Threads stand in for workers: each attaches its own handle and locks under its own pid.
    fn spawn_workers(
        threads: u32,
        region: Region,
        work: impl Fn(u32, Table<Hits>) + Send + Copy + 'static,
    ) -> mpsc::Receiver<u32> {
        let (ptr, len) = region.leak();
        let region = SharedRegion { ptr, len };
        let (done, finished) = mpsc::channel();
        for worker in 0..threads {
            let done = done.clone();
            std::thread::spawn(move || {
                work(worker, region.attach());
                done.send(worker).unwrap();
            });
        }
        finished
    }

    fn wait_for(finished: mpsc::Receiver<u32>, threads: u32) {
        for _ in 0..threads {
            finished
                .recv_timeout(Duration::from_secs(60))
                .expect("a worker is stuck: deadlock?");
        }
    }

    #[test]
    fn concurrent_increments_add_up() {
        const THREADS: u32 = 4;
        let rounds = scaled(50_000);
        const KEYS: u64 = 4;
        let mut region = Region::for_capacity::<Hits>(64);
        let table = region.init::<Hits>();
        let finished = spawn_workers(THREADS, region, move |worker, table| {
            let pid = 1000 + worker;
            for round in 0..rounds {
                table.with(process(pid), |t| {
                    let hits = t
                        .get_or_insert_with(&key(round % KEYS), 0, NEVER, || Hits { count: 0 })
                        .0;
                    // A read-modify-write with a window wide enough that, without the lock,
                    // updates would get lost.
                    let count = std::hint::black_box(hits.count);
                    for _ in 0..20 {
                        spin_loop();
                    }
                    hits.count = count + 1;
                });
            }
        });
        wait_for(finished, THREADS);
        let total: u64 = table.with(PID, |t| {
            (0..KEYS).map(|n| t.get(&key(n), 0).unwrap().count).sum()
        });
        assert_eq!(total, u64::from(THREADS) * rounds);
        check(&table);
    }

    #[test]
    fn heavy_contention_does_not_deadlock() {
        const THREADS: u32 = 4;
        let mut region = Region::for_capacity::<Hits>(256);
        let table = region.init::<Hits>();
        let finished = spawn_workers(THREADS, region, |worker, table| {
            let mut rng = Rng(u64::from(worker));
            let deadline = Instant::now() + Duration::from_millis(scaled(500));
            let mut now = 0;
            while Instant::now() < deadline {
                now += 1;
                // Mostly tiny sections, sometimes a long one, on a table kept full.
                let batch = if rng.below(50) == 0 { 200 } else { 1 };
                table.with(PID, |t| {
                    for _ in 0..batch {
                        let k = key(rng.below(1000));
                        t.get_or_insert_with(&k, now, now + rng.below(100), || Hits {
                            count: 0,
                        })
                        .0
                        .count += 1;
                        if rng.below(4) == 0 {
                            t.remove(&key(rng.below(1000)), now);
                        }
                    }
                });
            }
        });
        wait_for(finished, THREADS);
        check(&table);
        assert_eq!(table.stats().lock_holder, None);
    }

    // ----- Speed ----------------------------------------------------------------------------

    /// `cargo test --release --no-default-features table::tests::speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn speed() {
        const CAPACITY: usize = 100_000;
        const OPS: u64 = 2_000_000;
        let mut region = Region::for_capacity::<Rec32>(CAPACITY);
        let table = region.init::<Rec32>();
        let pid = std::process::id();
        let mut rng = Rng(1);
        let keys: Vec<Key> = (0..CAPACITY).map(|_| rng.key()).collect();
        for k in &keys {
            table.with(process(pid), |t| t.insert(k, 0, NEVER, Bytes([0; 4])));
        }
        let measure = |name: &str, op: &mut dyn FnMut(u64)| {
            let started = Instant::now();
            for n in 0..OPS {
                op(n);
            }
            let ns = started.elapsed().as_nanos() as f64 / OPS as f64;
            println!("{name:<48} {ns:7.1} ns/op");
        };
        let picks: Vec<usize> = (0..OPS)
            .map(|_| rng.below(CAPACITY as u64) as usize)
            .collect();
        measure("get_or_insert_with, hit", &mut |n| {
            table.with(process(pid), |t| {
                t.get_or_insert_with(&keys[picks[n as usize]], 1, NEVER, || Bytes([0; 4]))
                    .0
                     .0[0] += 1;
            })
        });
        measure("get_or_insert_with, hit, pid from getpid()", &mut |n| {
            table.with(process(std::process::id()), |t| {
                t.get_or_insert_with(&keys[picks[n as usize]], 1, NEVER, || Bytes([0; 4]))
                    .0
                     .0[0] += 1;
            })
        });
        measure("get_or_insert_with, miss, evicting", &mut |n| {
            let k = key(n + (1 << 40));
            table.with(process(pid), |t| {
                t.get_or_insert_with(&k, 1, NEVER, || Bytes([0; 4])).0 .0[0] += 1;
            })
        });
        measure("insert_if_absent, miss, reusing expired", &mut |n| {
            let k = key(n + (2 << 40));
            table.with(process(pid), |t| {
                t.insert_if_absent(&k, 2 + n, 3 + n, Bytes([0; 4]))
            });
        });
        let mut model: HashMap<Key, u64> = HashMap::with_capacity(CAPACITY);
        measure("(std HashMap entry, for scale)", &mut |n| {
            *model.entry(keys[picks[n as usize]]).or_default() += 1;
        });
        println!("stats: {:?}", table.stats());
    }
}
