//! The one lock of the shared stores: a spinlock word in shared memory that serialises every
//! process, records its holder, and is taken over when that holder dies holding it.
//!
//! A lock word outlives the process that took it: nginx workers are killed (`kill -9`, the
//! OOM killer, an abort), and the zone, lock words included, survives even a reload. So the
//! word holds its holder's [`Holder`] identity (pid and start time). Waiters spin briefly,
//! then yield the CPU; one that has waited over a millisecond asks, once a millisecond,
//! whether the holder still lives, and takes the lock over from a dead one. Whoever takes a
//! lock over learns so ([`Held::taken_from`]) and must bring the store back to a consistent
//! state before using it.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::hint::spin_loop;
use std::thread::yield_now;
use std::time::{Duration, Instant};

use super::holder::{pid_of, Holder, Life};

/// The word of a free lock; otherwise it holds the holder's [`Holder::word`].
const UNLOCKED: u64 = 0;
const SPINS_BEFORE_YIELD: u32 = 100;
/// How long a waiter waits before it first asks whether the holder lives, and then how
/// often it asks again. Locked sections last microseconds; a rebuild of the largest table,
/// a few milliseconds.
const PROBE_AFTER: Duration = Duration::from_millis(1);
const PROBE_EVERY: Duration = Duration::from_millis(1);

/// A lock word, laid out in shared memory (zeroed: free).
#[repr(transparent)]
pub struct LockWord(AtomicU64);

impl LockWord {
    pub const fn new() -> LockWord {
        LockWord(AtomicU64::new(UNLOCKED))
    }

    /// Takes the lock for `holder`, waiting as long as a live holder has it. `on_unwind` is
    /// set to 1 if the lock is released by a panic unwinding (the store may be half updated).
    #[inline]
    pub fn acquire<'a>(&'a self, holder: Holder, on_unwind: Option<&'a AtomicU32>) -> Held<'a> {
        let word = holder.word();
        let taken_from =
            match self
                .0
                .compare_exchange(UNLOCKED, word, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => None,
                Err(_) => self.wait(holder),
            };
        Held {
            lock: self,
            word,
            taken_from,
            on_unwind,
        }
    }

    /// The contended path of [`LockWord::acquire`]: returns once the lock is ours, with the
    /// word of the dead holder it was taken from, if it was.
    #[cold]
    #[inline(never)]
    fn wait(&self, holder: Holder) -> Option<u64> {
        let word = holder.word();
        let mut spins = 0;
        // Set once spinning gives way to yielding: the slow path, where the clock is read.
        let mut next_probe: Option<Instant> = None;
        loop {
            // Wait on a plain load, so waiters do not fight over the cache line.
            loop {
                let current = self.0.load(Ordering::Relaxed);
                if current == UNLOCKED {
                    break;
                }
                if spins < SPINS_BEFORE_YIELD {
                    spins += 1;
                    spin_loop();
                    continue;
                }
                yield_now();
                let now = Instant::now();
                let due = *next_probe.get_or_insert(now + PROBE_AFTER);
                if now < due {
                    continue;
                }
                next_probe = Some(now + PROBE_EVERY);
                // Only the word that was judged dead is replaced: if the lock changed hands
                // meanwhile, the exchange fails and the wait goes on.
                if holder.probe(current) == Life::Dead
                    && self
                        .0
                        .compare_exchange(current, word, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    return Some(current);
                }
            }
            if self
                .0
                .compare_exchange_weak(UNLOCKED, word, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return None;
            }
        }
    }

    /// The pid of the holder, if the lock is held.
    pub fn holder_pid(&self) -> Option<u32> {
        let word = self.0.load(Ordering::Relaxed);
        (word != UNLOCKED).then(|| pid_of(word))
    }

    /// Stores a holder's word as a process would that took the lock and died: for tests and
    /// the fuzz harness.
    #[cfg(any(test, feature = "fuzz-harness"))]
    pub fn set_raw(&self, word: u64) {
        self.0.store(word, Ordering::Release);
    }
}

impl Default for LockWord {
    fn default() -> Self {
        LockWord::new()
    }
}

/// A held lock, released when dropped (also when a panic unwinds through its holder).
pub struct Held<'a> {
    lock: &'a LockWord,
    word: u64,
    /// The word of the holder that died holding the lock, when it was taken over from one.
    pub taken_from: Option<u64>,
    on_unwind: Option<&'a AtomicU32>,
}

impl Drop for Held<'_> {
    #[inline]
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(flag) = self.on_unwind {
                flag.store(1, Ordering::Relaxed);
            }
        }
        // Only if it is still ours: if it was taken over meanwhile, it is someone else's.
        let _ =
            self.lock
                .0
                .compare_exchange(self.word, UNLOCKED, Ordering::Release, Ordering::Relaxed);
    }
}

/// Who hears that this process took a lock over from a dead holder: `(store, pid)`. Set once
/// per process by the code that can log (nginx's glue); called outside the lock.
pub static TAKEOVER_REPORT: std::sync::OnceLock<fn(&str, u32)> = std::sync::OnceLock::new();

/// Tells [`TAKEOVER_REPORT`], if anyone listens.
pub fn report_takeover(store: &str, dead_pid: u32) {
    if let Some(report) = TAKEOVER_REPORT.get() {
        report(store, dead_pid);
    }
}
