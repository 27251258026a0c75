//! The CrowdSec jobs, on the scaffold of `nginx::background`: the decision stream and the
//! machine that reports alerts.
//!
//! * the stream thread pulls `GET /v1/decisions/stream` with the bouncer key: `startup=true`
//!   at start, after a failure and every hour, plain deltas every `interval` in between; it
//!   parses the answer and posts it to the mailbox;
//! * the tick applies what is in the mailbox to the decisions zone, at most
//!   [`CHANGES_PER_TICK`] changes a tick so that a startup pull of 100,000 decisions never
//!   holds the worker for long, and hands the machine thread the signals that requests queued
//!   in the zone;
//! * the machine thread logs in (`POST /v1/watchers/login`), then posts the signals as alerts
//!   (`POST /v1/alerts`) in batches; CrowdSec's profiles turn them into decisions that every
//!   bouncer of the fleet pulls, this one included. Signals not reported when the worker
//!   leaves go back to the zone.

use core::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ngx::ffi::{ngx_event_t, ngx_log_t, NGX_LOG_INFO, NGX_LOG_NOTICE, NGX_LOG_WARN};
use ngx::ngx_log_error;

use super::{first_tick, run_tick, spawn, take_queued, unix_now, Control, Streak};
use crate::crowdsec::alerts::Signal;
use crate::crowdsec::client::{Bouncer, MachineSession};
use crate::crowdsec::store;
use crate::crowdsec::stream::{Change, Delta};
use crate::nginx::crowdsec::{put_signal, CrowdsecConf};
use crate::nginx::{client, offload, MainConf};
use crate::state::table::Key;

/// Changes written per tick at most (about 3 ms of work).
const CHANGES_PER_TICK: usize = 20_000;
/// Changes written per hold of the table's lock.
const WRITE_CHUNK: usize = 512;
/// A full pull every hour rebuilds the picture (see `crowdsec::store`).
const RESYNC_SECS: u64 = 3600;
/// The longest wait between tries while the Local API fails.
const MAX_BACKOFF_SECS: u64 = 30;
/// Alerts per `POST /v1/alerts`, and signals waiting in the machine thread at most.
const ALERTS_PER_POST: usize = 100;
const MACHINE_QUEUE: usize = 10_000;

/// What a thread found out.
enum Report {
    Pull {
        full: bool,
        outcome: Result<(Delta, usize), String>,
        took_ms: u128,
        next_in_secs: u64,
    },
    Alerts {
        outcome: Result<Vec<Signal>, String>,
        next_in_secs: u64,
    },
}

#[derive(Default)]
struct Shared {
    control: Control<Report>,
    /// Signals for the machine thread.
    signals: Mutex<VecDeque<Signal>>,
    ready: Condvar,
}

impl core::ops::Deref for Shared {
    type Target = Control<Report>;

    fn deref(&self) -> &Control<Report> {
        &self.control
    }
}

/// A pull being written into the zone, a tick at a time.
struct Work {
    full: bool,
    /// The generation a full pull writes under, set when its first change is written.
    generation: Option<u32>,
    delta: Delta,
    /// Changes written so far (deletions first, then new decisions).
    done: usize,
    bytes: usize,
    took_ms: u128,
    applying: Option<Instant>,
}

struct Running {
    shared: Arc<Shared>,
    mcf: *const MainConf,
    timer: *mut ngx_event_t,
    work: VecDeque<Work>,
    pulls: Streak,
    posts: Streak,
    evictions: u64,
}

std::thread_local! {
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// Starts the stream (and the machine) in worker 0, when a Local API is configured.
pub(super) fn start(mcf: &MainConf, log: *mut ngx_log_t) {
    let Some(cs) = mcf.crowdsec.as_ref() else {
        return;
    };
    let shared = Arc::new(Shared::default());
    let (bouncer, interval_secs) = (cs.bouncer(mcf.geo.is_some()), cs.lapi.interval_secs);
    spawn(&shared, log, "crowdsec", move |shared| {
        stream_thread(shared, bouncer, interval_secs)
    });
    if let Some(machine) = mcf.crowdsec_machine.as_ref() {
        let session = machine.session(&cs.lapi);
        spawn(&shared, log, "crowdsec-machine", move |shared| {
            machine_thread(shared, session)
        });
    }
    let timer = first_tick(tick, log);
    let evictions = cs
        .zone()
        .and_then(|z| z.decisions.as_ref())
        .map_or(0, |t| t.stats().evictions);
    RUNNING.with(|r| {
        *r.borrow_mut() = Some(Running {
            shared,
            mcf,
            timer,
            work: VecDeque::new(),
            pulls: Streak::default(),
            posts: Streak::default(),
            evictions,
        });
    });
}

/// Stops the threads; signals not reported yet go back to the zone for the next generation.
pub(super) fn stop() {
    RUNNING.with(|r| {
        let Some(running) = r.borrow_mut().take() else {
            return;
        };
        running.shared.control.stop();
        running.shared.ready.notify_all();
        // SAFETY: the timer event is ours, on the event loop.
        unsafe { offload::delete_timer(running.timer) };
        let left: Vec<Signal> = running
            .shared
            .signals
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default();
        // SAFETY: the configuration outlives the worker's threads.
        let mcf = unsafe { &*running.mcf };
        for signal in left {
            put_signal(mcf, &signal, false);
        }
    });
}

/// The stream thread: a full pull at start, after failures and every hour; deltas between.
fn stream_thread(shared: Arc<Shared>, bouncer: Bouncer, interval_secs: u64) {
    let mut full_due = true;
    let mut last_full = Instant::now();
    let mut backoff = 0;
    while !shared.stopped() {
        let full = full_due || last_full.elapsed() >= Duration::from_secs(RESYNC_SECS);
        let started = Instant::now();
        let outcome = bouncer.pull(full).map_err(|e| e.to_string());
        if shared.stopped() {
            return;
        }
        let next_in_secs = match outcome {
            Ok(_) => interval_secs,
            Err(_) => {
                backoff = if backoff == 0 {
                    interval_secs
                } else {
                    (backoff * 2).min(MAX_BACKOFF_SECS.max(interval_secs))
                };
                backoff
            }
        };
        if outcome.is_ok() {
            backoff = 0;
            full_due = false;
            if full {
                last_full = started;
            }
        } else {
            // What happened while the stream was down is only sure to come with a full pull.
            full_due = true;
        }
        shared.post(Report::Pull {
            full,
            outcome,
            took_ms: started.elapsed().as_millis(),
            next_in_secs,
        });
        shared.sleep(Duration::from_secs(next_in_secs));
    }
}

/// The machine thread: reports queued signals as alerts, logging in when it must.
fn machine_thread(shared: Arc<Shared>, mut session: MachineSession) {
    let mut backoff = 0;
    while !shared.stopped() {
        {
            let Ok(queue) = shared.signals.lock() else {
                return;
            };
            if queue.is_empty() {
                let _ = shared.ready.wait_timeout(queue, Duration::from_secs(1));
                continue;
            }
        }
        // A moment for the signals of the same burst to join the batch.
        shared.sleep(Duration::from_millis(200));
        let batch: Vec<Signal> = match shared.signals.lock() {
            Ok(mut queue) => {
                let n = queue.len().min(ALERTS_PER_POST);
                queue.drain(..n).collect()
            }
            Err(_) => return,
        };
        match session.report(&batch, unix_now()) {
            Ok(()) => {
                backoff = 0;
                shared.post(Report::Alerts {
                    outcome: Ok(batch),
                    next_in_secs: 0,
                });
            }
            Err(error) => {
                backoff = if backoff == 0 {
                    5
                } else {
                    (backoff * 2).min(300)
                };
                if let Ok(mut queue) = shared.signals.lock() {
                    for signal in batch.into_iter().rev() {
                        queue.push_front(signal);
                    }
                }
                shared.post(Report::Alerts {
                    outcome: Err(error.to_string()),
                    next_in_secs: backoff,
                });
                shared.sleep(Duration::from_secs(backoff));
            }
        }
    }
}

/// The event loop's tick: applies pulls, logs, hands signals to the machine thread.
unsafe extern "C" fn tick(_ev: *mut ngx_event_t) {
    run_tick(
        "CrowdSec's tick",
        &RUNNING,
        stop,
        |r| (r.mcf, r.timer),
        |running, mcf, log| {
            for report in running.shared.take() {
                receive(running, mcf, log, report);
            }
            if let Some(cs) = mcf.crowdsec.as_ref() {
                write_some(running, cs, log);
                hand_out(running, cs);
            }
        },
    );
}

fn receive(running: &mut Running, mcf: &MainConf, log: *mut ngx_log_t, report: Report) {
    let Some(cs) = mcf.crowdsec.as_ref() else {
        return;
    };
    let url = &cs.lapi.url;
    match report {
        Report::Pull {
            full,
            outcome,
            took_ms,
            next_in_secs,
        } => match outcome {
            Ok((delta, bytes)) => {
                if let Some(failures) = running.pulls.succeeded() {
                    ngx_log_error!(
                        NGX_LOG_NOTICE,
                        log,
                        "captchaify: crowdsec: {} answers again after {} failed pulls",
                        url,
                        failures
                    );
                }
                if let Some(zone) = cs.zone() {
                    zone.status().pulled_at.store(unix_now(), Ordering::Relaxed);
                }
                if delta.skipped > 0 {
                    ngx_log_error!(NGX_LOG_INFO, log, "captchaify: crowdsec: {} decisions skipped (scope or value not understood)", delta.skipped);
                }
                running.work.push_back(Work {
                    full,
                    generation: None,
                    delta,
                    done: 0,
                    bytes,
                    took_ms,
                    applying: None,
                });
            }
            Err(error) => {
                let level = running.pulls.failed();
                let kept = cs
                    .zone()
                    .map(|z| z.status())
                    .filter(|s| s.loaded())
                    .map_or_else(
                        || "no decisions loaded yet".to_string(),
                        |s| {
                            format!(
                                "the decisions in force stay in force (last pull {} s ago)",
                                unix_now().saturating_sub(s.pulled_at.load(Ordering::Relaxed))
                            )
                        },
                    );
                ngx_log_error!(
                    level,
                    log,
                    "captchaify: crowdsec: cannot pull decisions from {} ({} ms): {}; {}; next try in {} s",
                    url,
                    took_ms,
                    error,
                    kept,
                    next_in_secs
                );
            }
        },
        Report::Alerts {
            outcome,
            next_in_secs,
        } => {
            match outcome {
                Ok(signals) => {
                    if let Some(failures) = running.posts.succeeded() {
                        ngx_log_error!(
                            NGX_LOG_NOTICE,
                            log,
                            "captchaify: crowdsec: alerts go through again after {} failures",
                            failures
                        );
                    }
                    if let Some(metrics) = crate::nginx::metrics::of(mcf) {
                        metrics.count_crowdsec_alerts(signals.len() as u64);
                    }
                    let list: Vec<String> = signals
                        .iter()
                        .take(5)
                        .map(|s| format!("{} {}", s.scenario.name(), s.addr))
                        .collect();
                    ngx_log_error!(
                        NGX_LOG_INFO,
                        log,
                        "captchaify: crowdsec: reported {} alerts ({}{})",
                        signals.len(),
                        list.join(", "),
                        if signals.len() > 5 { ", …" } else { "" }
                    );
                }
                Err(error) => {
                    ngx_log_error!(running.posts.failed(), log, "captchaify: crowdsec: cannot report alerts to {}: {}; kept, next try in {} s", url, error, next_in_secs);
                }
            }
        }
    }
}

/// Writes up to [`CHANGES_PER_TICK`] changes of the pulls waiting, in order.
fn write_some(running: &mut Running, cs: &CrowdsecConf, log: *mut ngx_log_t) {
    let (Some(zone), Some(keys)) = (cs.zone(), cs.keys()) else {
        return;
    };
    let Some(table) = zone.decisions.as_ref() else {
        return;
    };
    let status = zone.status();
    let mut budget = CHANGES_PER_TICK;
    while budget > 0 {
        let Some(work) = running.work.front_mut() else {
            return;
        };
        work.applying.get_or_insert_with(Instant::now);
        let generation = match work.full {
            true => *work
                .generation
                .get_or_insert_with(|| status.next_generation()),
            false => status.current(),
        };
        // A full pull lists every live decision in `new`; its `deleted` are long gone.
        let deleted: &[Change] = if work.full { &[] } else { &work.delta.deleted };
        let total = deleted.len() + work.delta.new.len();
        let now = unix_now();
        while work.done < total && budget > 0 {
            let end = (work.done + WRITE_CHUNK.min(budget)).min(total);
            let changes: Vec<(Key, Change, bool)> = (work.done..end)
                .map(|i| match deleted.get(i) {
                    Some(change) => (cs.target_key(keys, &change.target), *change, false),
                    None => {
                        let change = work.delta.new[i - deleted.len()];
                        status.note_target(&change.target);
                        (cs.target_key(keys, &change.target), change, true)
                    }
                })
                .collect();
            table.with(client::holder(), |t| {
                for (key, change, add) in &changes {
                    store::apply(t, key, change, *add, now, generation);
                }
            });
            budget -= end - work.done;
            work.done = end;
        }
        if work.done < total {
            return;
        }
        let Some(work) = running.work.pop_front() else {
            return;
        };
        let applied_ms = work.applying.map_or(0, |t| t.elapsed().as_millis());
        if work.full {
            status.publish(generation, work.delta.new.len() as u64, now);
            ngx_log_error!(
                NGX_LOG_NOTICE,
                log,
                "captchaify: crowdsec: {} decisions in force from {} (full pull: {} bytes in {} ms, written in {} ms)",
                work.delta.new.len(),
                cs.lapi.url,
                work.bytes,
                work.took_ms,
                applied_ms
            );
        } else if total > 0 {
            ngx_log_error!(
                NGX_LOG_INFO,
                log,
                "captchaify: crowdsec: {} new and {} deleted decisions",
                work.delta.new.len(),
                work.delta.deleted.len()
            );
        }
        let evictions = table.stats().evictions;
        if evictions > running.evictions {
            ngx_log_error!(
                NGX_LOG_WARN,
                log,
                "captchaify: crowdsec: the decisions zone is full ({} decisions): {} dropped to make room; raise zone_size",
                table.capacity(),
                evictions - running.evictions
            );
            running.evictions = evictions;
        }
    }
}

/// Moves queued signals from the zone to the machine thread.
fn hand_out(running: &Running, cs: &CrowdsecConf) {
    let Some(signals) = cs.zone().and_then(|z| z.signals.as_ref()) else {
        return;
    };
    let Some(popped) = take_queued(signals, ALERTS_PER_POST) else {
        return;
    };
    if let Ok(mut queue) = running.shared.signals.lock() {
        for (_, job) in popped {
            if queue.len() < MACHINE_QUEUE {
                queue.push_back(job.signal());
            }
        }
        running.shared.ready.notify_one();
    }
}
