//! Who holds a shared table's lock, and whether that holder still lives.
//!
//! A lock word in shared memory outlives the process that took it: nginx workers are killed
//! (`kill -9`, the OOM killer, an abort), and the zone, lock word included, survives even a
//! reload. A waiter that finds the lock held for long asks whether its holder still lives and,
//! if not, takes the lock over (see `table::Table::with`). For that the word names the holder
//! beyond its pid, which the kernel hands out again in time: it also carries the low 32 bits
//! of the process's start time (clock ticks since boot, field 22 of `/proc/PID/stat`). A pid
//! in use by a younger process, a zombie, or no process at all is not the holder any more.

use std::io::Read;

/// A holder's identity as stored in a lock word: the pid in the low 32 bits, the start time
/// in the high 32. Never 0 (a free lock): pids are never 0.
#[derive(Clone, Copy)]
pub struct Holder {
    word: u64,
    probe: fn(u64) -> Life,
}

impl core::fmt::Debug for Holder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Holder(pid {}, started {})",
            pid_of(self.word),
            started_of(self.word)
        )
    }
}

/// What a probe says of the holder named by a lock word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    Alive,
    Dead,
}

impl Holder {
    /// The calling process, probed through `/proc`. `pid` is the caller's own pid (nginx's
    /// `ngx_pid`), passed in so that no system call is made per lock; the start time is read
    /// once per pid and cached. Call it only from the process `pid` names.
    #[inline]
    pub fn process(pid: u32) -> Holder {
        use core::sync::atomic::{AtomicU64, Ordering};
        // The last (pid, word) pair: a forked child has another pid, so it never reuses its
        // parent's start time.
        static CACHED: AtomicU64 = AtomicU64::new(0);
        let cached = CACHED.load(Ordering::Relaxed);
        let word = if cached != 0 && pid_of(cached) == pid {
            cached
        } else {
            let started = read_stat(pid)
                .and_then(|stat| parse_stat(&stat))
                .map_or(0, |s| s.started);
            let word = compose(pid, started);
            CACHED.store(word, Ordering::Relaxed);
            word
        };
        Holder {
            word,
            probe: probe_process,
        }
    }

    /// A holder that finds every other holder alive: for tests where threads play processes.
    pub const fn immortal(id: u32) -> Holder {
        Holder::with_probe(id, 0, always_alive)
    }

    /// A holder with any identity and probe, for tests of the takeover.
    pub const fn with_probe(pid: u32, started: u32, probe: fn(u64) -> Life) -> Holder {
        let pid = if pid == 0 { 1 } else { pid };
        Holder {
            word: compose(pid, started),
            probe,
        }
    }

    /// The word written into the lock while this holder has it.
    #[inline]
    pub fn word(self) -> u64 {
        self.word
    }

    pub fn pid(self) -> u32 {
        pid_of(self.word)
    }

    /// Whether the holder named by `word` (someone else's) still lives, by this holder's probe.
    pub fn probe(self, word: u64) -> Life {
        (self.probe)(word)
    }
}

const fn compose(pid: u32, started: u32) -> u64 {
    (started as u64) << 32 | pid as u64
}

fn always_alive(_word: u64) -> Life {
    Life::Alive
}

/// The pid a lock word names.
pub fn pid_of(word: u64) -> u32 {
    word as u32
}

fn started_of(word: u64) -> u32 {
    (word >> 32) as u32
}

/// The state letter and start time from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: u8,
    /// Low 32 bits of the start time in clock ticks since boot.
    pub started: u32,
}

/// Parses `/proc/PID/stat`: `pid (comm) state ppid … starttime …`, where `comm` may itself
/// hold spaces and parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(stat: &[u8]) -> Option<Stat> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = stat.get(close + 1..)?;
    let mut fields = rest.split(|&b| b == b' ').filter(|f| !f.is_empty());
    // Field 3 is the state; starttime is field 22, the 20th after the state.
    let state = *fields.next()?.first()?;
    let started = fields.nth(18)?;
    let started: u64 = std::str::from_utf8(started).ok()?.parse().ok()?;
    Some(Stat {
        state,
        started: started as u32,
    })
}

fn read_stat(pid: u32) -> Option<Vec<u8>> {
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buffer = Vec::with_capacity(512);
    file.by_ref().take(4096).read_to_end(&mut buffer).ok()?;
    Some(buffer)
}

/// Whether the process a lock word names lives: dead when it is gone, a zombie, or another
/// (younger) process now has its pid.
fn probe_process(word: u64) -> Life {
    let pid = pid_of(word);
    match read_stat(pid).as_deref().map(parse_stat) {
        Some(Some(stat)) => {
            let recorded = started_of(word);
            let reused = recorded != 0 && stat.started != recorded;
            if reused || matches!(stat.state, b'Z' | b'X' | b'x') {
                Life::Dead
            } else {
                Life::Alive
            }
        }
        // No readable /proc entry: ask the kernel directly (without /proc, pid reuse cannot
        // be told apart, which only delays a takeover).
        _ => {
            let Ok(pid) = libc::pid_t::try_from(pid) else {
                return Life::Dead;
            };
            // SAFETY: signal 0 only checks that the process exists; nothing is sent.
            let exists = unsafe { libc::kill(pid, 0) } == 0
                || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
            if exists {
                Life::Alive
            } else {
                Life::Dead
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = b"4242 (nginx: worker (x) y) S 4241 4241 4241 0 -1 4194624 196 0 0 0 3 1 0 0 20 0 1 0 \
                     987654321 12345 67 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: b'S',
                started: 987_654_321
            })
        );
        let wrapped = b"1 (init) R 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4294967297 0 0\n";
        assert_eq!(
            parse_stat(wrapped),
            Some(Stat {
                state: b'R',
                started: 1
            }),
            "low 32 bits"
        );
        for junk in [
            &b""[..],
            b"12 (x",
            b"12 (x) S 1 2",
            b"12 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 nope",
        ] {
            assert_eq!(
                parse_stat(junk),
                None,
                "{:?}",
                String::from_utf8_lossy(junk)
            );
        }
    }

    #[test]
    fn this_process_is_alive_and_knows_its_start() {
        let me = Holder::process(std::process::id());
        assert_eq!(me.pid(), std::process::id());
        assert_ne!(started_of(me.word()), 0, "the start time was read");
        assert_eq!(me.probe(me.word()), Life::Alive);
        // The same pid with another start time is a process that reused the pid.
        let impostor = compose(me.pid(), started_of(me.word()).wrapping_add(1));
        assert_eq!(me.probe(impostor), Life::Dead);
    }

    #[test]
    fn gone_and_zombie_processes_are_dead() {
        let me = Holder::process(std::process::id());
        // A child that exits at once and is not reaped yet: a zombie.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut seen_zombie = false;
        while std::time::Instant::now() < deadline {
            if read_stat(pid)
                .as_deref()
                .and_then(parse_stat)
                .is_some_and(|s| s.state == b'Z')
            {
                seen_zombie = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(seen_zombie, "the child became a zombie");
        assert_eq!(
            me.probe(compose(pid, 0)),
            Life::Dead,
            "a zombie holds nothing"
        );
        child.wait().unwrap();
        assert_eq!(me.probe(compose(pid, 0)), Life::Dead, "a reaped process");
    }
}
