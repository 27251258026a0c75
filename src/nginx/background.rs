//! Background work: one set of threads per nginx instance, in worker 0 (or the single
//! process), for the reputation feeds (`reputation`) and for CrowdSec (`crowdsec`).
//!
//! Shape (ARCHITECTURE.md, "Background work"), the same for every job:
//!
//! * the process lifecycle (`init_process` and `exit_process` in `nginx/mod.rs`) starts the
//!   jobs ([`start`]) after the fork, never in the master, and stops them ([`stop`]) when the
//!   worker leaves;
//! * each job runs OS threads ([`spawn`]) with every signal blocked, as nginx's own thread
//!   pool does; they make blocking `ureq` exchanges (`crate::reputation::fetch`,
//!   `crate::crowdsec::client`) and never touch nginx;
//! * results go into a mailbox ([`Control`]) that a cancelable nginx timer on the event loop
//!   empties every [`TICK_MS`] ([`run_tick`]); only the event loop writes the shared zones,
//!   where every worker reads them; the same tick hands the threads the work that requests
//!   queued in the zones;
//! * on shutdown or reload the timer stops re-arming and the threads are told to stop; a
//!   thread in the middle of an exchange ends within its timeout. Work not handed out yet goes
//!   back to the zone, where the next generation of workers finds it.
//!
//! Failures keep the last good data, back off, and are logged once per streak ([`Streak`]),
//! not per attempt or per request.

mod crowdsec;
mod reputation;

use core::cell::RefCell;
use core::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ngx::ffi::{ngx_event_t, ngx_log_t, NGX_LOG_INFO, NGX_LOG_WARN};
use ngx::ngx_log_error;

use super::{client, offload, MainConf};
use crate::state::table::{Key, Record, Table};

/// How often the event loop looks at the mailboxes and the zones' queues.
const TICK_MS: usize = 250;

/// Starts the background jobs (in worker 0, or the single process: see `nginx/mod.rs`).
pub(crate) fn start(mcf: &MainConf, log: *mut ngx_log_t) {
    reputation::start(mcf, log);
    crowdsec::start(mcf, log);
}

/// Tells the jobs' threads to stop (they end within their timeout).
pub(crate) fn stop() {
    reputation::stop();
    crowdsec::stop();
}

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a job's threads and the event loop share, whatever the work: the stop flag, the
/// mailbox of reports, and a sleep that a stop cuts short.
struct Control<R> {
    stop: AtomicBool,
    mailbox: Mutex<Vec<R>>,
    wake: Condvar,
    wake_lock: Mutex<()>,
}

impl<R> Default for Control<R> {
    fn default() -> Self {
        Control {
            stop: AtomicBool::new(false),
            mailbox: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
        }
    }
}

impl<R> Control<R> {
    fn post(&self, report: R) {
        if let Ok(mut mailbox) = self.mailbox.lock() {
            mailbox.push(report);
        }
    }

    /// The reports posted since the last call (event loop).
    fn take(&self) -> Vec<R> {
        self.mailbox
            .lock()
            .map(|mut m| core::mem::take(&mut *m))
            .unwrap_or_default()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps up to `d`, waking early when told to stop.
    fn sleep(&self, d: Duration) {
        let Ok(guard) = self.wake_lock.lock() else {
            return;
        };
        if !self.stopped() {
            let _ = self.wake.wait_timeout(guard, d);
        }
    }

    /// Tells the threads to stop (those waiting on their own queues must be woken too).
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_all();
    }
}

/// A failure streak of one source or service: logged at `warn` when it starts, at `info`
/// while it lasts, at `notice` when it ends; never per request.
#[derive(Default)]
struct Streak {
    failing: bool,
    failures: u64,
}

impl Streak {
    /// Counts a failure; the level to log it at.
    fn failed(&mut self) -> ngx::ffi::ngx_uint_t {
        self.failures += 1;
        let level = if self.failing {
            NGX_LOG_INFO
        } else {
            NGX_LOG_WARN
        };
        self.failing = true;
        level as _
    }

    /// Ends the streak, if any: how many failures it had (to log the recovery).
    fn succeeded(&mut self) -> Option<u64> {
        let ended = self.failing.then_some(self.failures);
        *self = Streak::default();
        ended
    }
}

/// Whether the worker is leaving (reload, shutdown): the background work stops.
fn leaving() -> bool {
    // SAFETY: nginx's process globals, read on the main thread.
    unsafe { ngx::ffi::ngx_exiting != 0 || ngx::ffi::ngx_terminate != 0 || ngx::ffi::ngx_quit != 0 }
}

/// Starts a thread with every signal blocked (signals are the event loop's business).
fn spawn<S: Send + Sync + 'static>(
    shared: &Arc<S>,
    log: *mut ngx_log_t,
    what: &str,
    work: impl FnOnce(Arc<S>) + Send + 'static,
) {
    let shared = Arc::clone(shared);
    // SAFETY: plain signal-mask calls on the calling thread; the mask is restored below.
    let previous = unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut previous: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous);
        previous
    };
    let started = std::thread::Builder::new()
        .name(format!("captchaify-{what}"))
        .stack_size(256 * 1024)
        .spawn(move || {
            // A panic ends the thread, never the worker.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(shared)));
        });
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &previous, ptr::null_mut()) };
    if let Err(error) = started {
        ngx_log_error!(
            NGX_LOG_WARN,
            log,
            "captchaify: {}: cannot start the fetcher thread: {}",
            what,
            error
        );
    }
}

/// Arms a job's first tick: a fresh timer event on the event loop.
fn first_tick(
    handler: unsafe extern "C" fn(*mut ngx_event_t),
    log: *mut ngx_log_t,
) -> *mut ngx_event_t {
    let timer = offload::timer_event(handler, true, log);
    // SAFETY: a fresh event, on the event loop.
    unsafe { offload::add_timer(timer, TICK_MS as _) };
    timer
}

/// Takes up to `most` of the entries that requests queued in a zone table for a job, oldest
/// first; `None`, without taking the table's lock, when nothing is queued.
fn take_queued<V: Record>(table: &Table<V>, most: usize) -> Option<Vec<(Key, V)>> {
    if table.stats().len == 0 {
        return None;
    }
    let now_ms = unix_now() * 1000;
    Some(table.with(client::holder(), |t| {
        core::iter::from_fn(|| t.pop_least_recent(now_ms))
            .take(most)
            .collect()
    }))
}

/// What a job's tick does: stops when the worker leaves; otherwise arms its timer again
/// first, so that a fault in `work` cannot stop the ticks, and runs `work` with the
/// configuration and the log, a panic caught.
fn run_tick<R: 'static>(
    what: &'static str,
    running: &'static std::thread::LocalKey<RefCell<Option<R>>>,
    stop: fn(),
    parts: fn(&R) -> (*const MainConf, *mut ngx_event_t),
    work: impl FnOnce(&mut R, &MainConf, *mut ngx_log_t),
) {
    super::unwind::guarded(
        what,
        || (),
        || {
            if leaving() {
                stop();
                return;
            }
            running.with(|r| {
                let mut r = r.borrow_mut();
                let Some(running) = r.as_mut() else { return };
                let (mcf, timer) = parts(running);
                // SAFETY: the timer has just fired, so it is not set; the configuration lives as
                // long as this worker's cycle, and the timer event carries the cycle's log.
                let (mcf, log) = unsafe {
                    offload::add_timer(timer, TICK_MS as _);
                    (&*mcf, (*timer).log)
                };
                work(running, mcf, log);
            });
        },
    );
}
