//! What the state's unit tests and fuzz targets share: where their choices come from,
//! processes that have died, and holders killed between two writes ([`killed_during`] and
//! the crash points of the code, [`super::crash_point`]). Built for `cargo test` and with the
//! `fuzz-harness` feature, never into the module.

// Some of it serves only the unit tests.
#![cfg_attr(not(test), allow(dead_code))]

use core::cell::Cell;
use std::panic::AssertUnwindSafe;

use super::holder::{pid_of, Holder, Life};
use super::table::Key;

/// Where the harness's choices come from: a seeded generator in the unit tests, the fuzzer's
/// input in the fuzz target.
pub(crate) trait Source {
    fn next(&mut self) -> u64;

    /// Whether the choices have run out (never, for a generator).
    fn exhausted(&self) -> bool {
        false
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn key(&mut self) -> Key {
        let mut key = [0; 16];
        key[..8].copy_from_slice(&self.next().to_le_bytes());
        key[8..].copy_from_slice(&self.next().to_le_bytes());
        key
    }
}

/// splitmix64.
pub(crate) struct Rng(pub(crate) u64);

impl Source for Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Rng {
    /// This generator, running out after `choices` choices.
    pub(crate) fn take(self, choices: u64) -> Limited<Rng> {
        Limited {
            inner: self,
            left: choices,
        }
    }
}

/// A source that runs out after so many choices.
pub(crate) struct Limited<S> {
    inner: S,
    left: u64,
}

impl<S: Source> Source for Limited<S> {
    fn next(&mut self) -> u64 {
        self.left = self.left.saturating_sub(1);
        self.inner.next()
    }

    fn exhausted(&self) -> bool {
        self.left == 0
    }
}

/// The fuzzer's input, eight bytes a choice; zeroes once it has run out.
pub(crate) struct Input<'a>(pub(crate) &'a [u8]);

impl Source for Input<'_> {
    fn next(&mut self) -> u64 {
        let take = self.0.len().min(8);
        let mut word = [0; 8];
        word[..take].copy_from_slice(&self.0[..take]);
        self.0 = &self.0[take..];
        u64::from_le_bytes(word)
    }

    fn exhausted(&self) -> bool {
        self.0.is_empty()
    }

    /// One byte for a small choice, so that the fuzzer's edits map onto choices.
    fn below(&mut self, n: u64) -> u64 {
        if n <= 256 {
            let Some((&byte, rest)) = self.0.split_first() else {
                return 0;
            };
            self.0 = rest;
            u64::from(byte) % n
        } else {
            self.next() % n
        }
    }
}

/// Pids from here on play processes that have died: every test holder finds them dead.
pub(crate) const DEAD_PIDS: u32 = 4000;

pub(crate) fn dead_from_4000(word: u64) -> Life {
    if pid_of(word) >= DEAD_PIDS {
        Life::Dead
    } else {
        Life::Alive
    }
}

/// A test process: finds pids from [`DEAD_PIDS`] on dead, all others alive.
pub(crate) const fn process(pid: u32) -> Holder {
    Holder::with_probe(pid, 0, dead_from_4000)
}

/// The holder tests lock as, unless they play several processes.
pub(crate) const PID: Holder = process(12);

// ----- Holders killed in the middle -----------------------------------------------------

/// What a holder stopped at a crash point unwinds with.
pub(crate) struct Killed;

thread_local! {
    /// Crash points left to pass before the holder is stopped; 0 is never.
    static COUNTDOWN: Cell<u32> = const { Cell::new(0) };
}

/// Every crash point of the table's code comes here (see `crash_point`).
pub(crate) fn at_crash_point() {
    COUNTDOWN.with(|countdown| match countdown.get() {
        0 => {}
        1 => {
            countdown.set(0);
            std::panic::panic_any(Killed)
        }
        n => countdown.set(n - 1),
    });
}

/// Runs `op`, stopping its holder at the `after`th crash point it passes (never, for 0), as
/// `kill -9` would between two of its writes: whether it was stopped. The table is left as
/// the writes so far made it; the caller then plays the holder's death
/// ([`die_holding_lock`]). Other panics go on.
pub(crate) fn killed_during(after: u32, op: impl FnOnce()) -> bool {
    quiet_kills();
    COUNTDOWN.with(|countdown| countdown.set(after));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(op));
    COUNTDOWN.with(|countdown| countdown.set(0));
    match outcome {
        Ok(()) => false,
        Err(payload) if payload.is::<Killed>() => true,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// A stopped holder is no failure: the panic hook (the test runner's, or libFuzzer's, which
/// aborts) is not told of it.
fn quiet_kills() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Killed>() {
                previous(info);
            }
        }));
    });
}

