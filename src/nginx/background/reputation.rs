//! The reputation jobs: one thread per source in use (the Tor list, ip-api,
//! StopForumSpam) and one for crawler hints, on the scaffold of `nginx::background`.
//!
//! * the Tor list is fetched at start (unless a previous generation of workers left a fresh
//!   one in the zone) and every refresh interval;
//! * the tick takes the addresses that requests queued in the zone (first sight of an address
//!   at a location listening to ip-api or StopForumSpam) and the pages whose crawler hints are
//!   wanted, and hands them to the threads, which ask within each source's rate;
//! * on shutdown or reload the addresses not asked about yet go back to the zone.
//!
//! Failures keep the last good data, back off (30 s doubling up to the refresh interval) and
//! are logged once per streak, not per attempt or per request.

use core::cell::RefCell;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ngx::ffi::{ngx_event_t, ngx_log_t, NGX_LOG_INFO, NGX_LOG_NOTICE, NGX_LOG_WARN};
use ngx::ngx_log_error;

use super::{first_tick, run_tick, spawn, take_queued, unix_now, unix_now_ms, Control, Streak};
use crate::crawler::hints;
use crate::nginx::{client, hints as page_hints, offload, MainConf};
use crate::reputation::feeds;
use crate::reputation::fetch::{self, Lookup, USER_AGENT};
use crate::reputation::{FeedOrigin, FeedSpec, Source};
use crate::state::reputation::{record_answer, Answer, FeedStatus, HintJob, HintsRecord, Pending};

/// Addresses handed to the threads per tick at most, and waiting in a thread's queue at most
/// (beyond that they stay queued in the zone, or are asked again later).
const BATCH: usize = 256;
const THREAD_QUEUE: usize = 4096;
/// How long a failed lookup waits before the address is asked again.
const RETRY_FAILED_SECS: u64 = 300;
/// The first wait after a failure; doubles up to the source's refresh interval.
const FIRST_BACKOFF_SECS: u64 = 30;
/// Tor list entries written per hold of the table's lock.
const WRITE_CHUNK: usize = 512;

/// What a thread found out.
enum Report {
    List {
        name: Source,
        origin: String,
        outcome: Result<(Vec<IpAddr>, usize), String>,
        took_ms: u128,
        next_in_secs: u64,
    },
    Answer {
        source: Source,
        addr: IpAddr,
        outcome: Result<(bool, Option<([u8; 2], u32)>), String>,
    },
    /// Something to log at `info`.
    Note(String),
    /// A per-address source was asked at this time (Unix ms).
    Sent { source: Source, at: u64 },
    /// A page's crawler hints (`None`: the page has none, or could not be read).
    Hints {
        key: [u8; 16],
        page: String,
        outcome: Result<Option<hints::Hints>, String>,
    },
}

/// Pages waiting for their crawler hints.
#[derive(Default)]
struct PageQueue {
    jobs: Mutex<VecDeque<([u8; 16], HintJob)>>,
    ready: Condvar,
}

/// A per-address source's queue.
#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<IpAddr>>,
    ready: Condvar,
}

#[derive(Default)]
struct Shared {
    control: Control<Report>,
    ipapi: Queue,
    sfs: Queue,
    pages: PageQueue,
}

impl core::ops::Deref for Shared {
    type Target = Control<Report>;

    fn deref(&self) -> &Control<Report> {
        &self.control
    }
}

impl Shared {
    /// A per-address source's queue (the Tor list has none).
    fn queue(&self, source: Source) -> Option<&Queue> {
        match source {
            Source::Tor => None,
            Source::IpApi => Some(&self.ipapi),
            Source::StopForumSpam => Some(&self.sfs),
        }
    }

    fn shut_down(&self) {
        self.control.stop();
        self.ipapi.ready.notify_all();
        self.sfs.ready.notify_all();
        self.pages.ready.notify_all();
    }
}

/// The event loop's side, in worker 0.
struct Running {
    shared: Arc<Shared>,
    mcf: *const MainConf,
    timer: *mut ngx_event_t,
    streaks: [Streak; 4],
}

std::thread_local! {
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// Stops the threads; addresses not asked about yet go back to the zone.
pub(super) fn stop() {
    RUNNING.with(|r| {
        if let Some(running) = r.borrow_mut().take() {
            running.shared.shut_down();
            // SAFETY: the timer event is ours, on the event loop.
            unsafe { offload::delete_timer(running.timer) };
            // SAFETY: the configuration outlives the worker's fetcher.
            requeue(&running.shared, unsafe { &*running.mcf });
        }
    });
}

/// Puts the addresses the threads had not asked about yet back in the zone's queue, for the
/// next generation's fetcher (a reload must not leave them unasked until they time out).
fn requeue(shared: &Shared, mcf: &MainConf) {
    let Some(pending) = mcf.zone_state().and_then(|z| z.pending.as_ref()) else {
        return;
    };
    let now_ms = unix_now_ms();
    let expires = now_ms + crate::state::reputation::ASK_TIMEOUT_SECS * 1000;
    for source in Source::PER_ADDRESS {
        let Some(Ok(mut jobs)) = shared.queue(source).map(|q| q.jobs.lock()) else {
            continue;
        };
        let left: Vec<IpAddr> = jobs.drain(..).collect();
        pending.with(client::holder(), |t| {
            for addr in left {
                let key = mcf.feed_key("lookup", addr);
                t.update(&key, now_ms, |queued| {
                    let bits = queued.map_or(0, |q| q.sources) | source.bit();
                    (Some((Pending::new(addr, bits), expires)), ())
                });
            }
        });
    }
}

/// Starts the threads of the sources in use, and of crawler hints.
pub(super) fn start(mcf: &MainConf, log: *mut ngx_log_t) {
    let shared = Arc::new(Shared::default());
    let spec = |name: Source| mcf.feed(name);
    let in_use = |source: Source| mcf.sources_in_use.has(source);
    let zone = mcf.zone_state();
    if in_use(Source::Tor) {
        let tor = spec(Source::Tor);
        // A list a previous generation of workers fetched is kept until it is due.
        let first_in = zone
            .and_then(|z| z.tor())
            .map_or(0, |status| due_in(status, tor.refresh_secs));
        if first_in > 0 {
            ngx_log_error!(
                NGX_LOG_NOTICE,
                log,
                "captchaify: tor: keeping the {} exit addresses already loaded; next refresh in {} s",
                zone.and_then(|z| z.tor()).map_or(0, |s| s.count.load(Ordering::Relaxed)),
                first_in
            );
        }
        spawn(&shared, log, "tor", move |shared| {
            list_thread(shared, tor, first_in)
        });
    }
    for source in Source::PER_ADDRESS {
        if in_use(source) {
            let spec = spec(source);
            // The requests a previous generation made in the last minute still count.
            let history = zone
                .and_then(|z| z.sends(source))
                .map(|sends| sends.recent(unix_now_ms(), 60_000))
                .unwrap_or_default();
            spawn(&shared, log, source.name(), move |shared| {
                lookup_thread(shared, spec, source, history)
            });
        }
    }
    // Crawler hints: idle until a crawler meets the captcha somewhere.
    if let Some(secrets) = mcf.secrets().cloned() {
        spawn(&shared, log, "hints", move |shared| {
            hints_thread(shared, secrets)
        });
    }
    let timer = first_tick(tick, log);
    RUNNING.with(|r| {
        *r.borrow_mut() = Some(Running {
            shared,
            mcf,
            timer,
            streaks: Default::default(),
        });
    });
}

/// Seconds until a loaded list is due again (0 when none is loaded or it is due).
fn due_in(status: &FeedStatus, refresh_secs: u64) -> u64 {
    if status.generation.load(Ordering::Acquire) == 0 {
        return 0;
    }
    let fetched = status.fetched_at.load(Ordering::Relaxed);
    (fetched + refresh_secs)
        .saturating_sub(unix_now())
        .min(refresh_secs)
}

/// The bulk-list thread: fetches at start (unless a fresh list is loaded) and then every
/// refresh interval; after a failure, sooner, backing off.
fn list_thread(shared: Arc<Shared>, spec: FeedSpec, first_in: u64) {
    let agent = fetch::agent(spec.timeout_secs, USER_AGENT);
    shared.sleep(Duration::from_secs(first_in));
    let mut backoff = FIRST_BACKOFF_SECS;
    while !shared.stopped() {
        let started = Instant::now();
        let outcome = fetch::tor_exits(&agent, &spec.origin)
            .map(|list| (list.addrs, list.skipped))
            .map_err(|e| e.to_string());
        let next_in_secs = if outcome.is_ok() {
            backoff = FIRST_BACKOFF_SECS;
            spec.refresh_secs
        } else {
            let wait = backoff.min(spec.refresh_secs);
            backoff = (backoff * 2).min(spec.refresh_secs.max(FIRST_BACKOFF_SECS));
            wait
        };
        shared.post(Report::List {
            name: spec.name,
            origin: spec.origin.to_string(),
            outcome,
            took_ms: started.elapsed().as_millis(),
            next_in_secs,
        });
        shared.sleep(Duration::from_secs(next_in_secs));
    }
}

/// A per-address source's thread: asks about queued addresses within the source's rate,
/// backing off while it fails.
fn lookup_thread(shared: Arc<Shared>, spec: FeedSpec, source: Source, history: Vec<u64>) {
    let agent = fetch::agent(spec.timeout_secs, USER_AGENT);
    let FeedOrigin::Url(base) = &spec.origin else {
        return;
    };
    let mut pacer = feeds::Pacer::new(spec.per_minute);
    // Counted a second late: the service timed them when they arrived, a little after we
    // did, and a request a hair too early is refused (429).
    for at in history {
        pacer.sent(at + 1000);
    }
    let now_ms = unix_now_ms;
    let mut backoff = 0u64;
    let mut failing: Option<String> = None;
    let mut retry_at_ms = 0u64;
    let Some(queue) = shared.queue(source) else {
        return;
    };
    while !shared.stopped() {
        // While the source is failing, addresses are not held back: they are answered
        // "failed" at once (and asked again later) until the backoff is over. Otherwise the
        // thread first waits for the rate to allow a request, holding no address meanwhile
        // (an address taken from the queue and not asked would be lost on a reload).
        let failing_now = failing.clone().filter(|_| now_ms() < retry_at_ms);
        if failing_now.is_none() {
            let wait = pacer.wait_ms(now_ms());
            if wait > 0 {
                shared.sleep(Duration::from_millis(wait.min(1000)));
                continue;
            }
        }
        let batch: Vec<IpAddr> = {
            let Ok(mut jobs) = queue.jobs.lock() else {
                return;
            };
            if jobs.is_empty() {
                jobs = match queue.ready.wait_timeout(jobs, Duration::from_secs(1)) {
                    Ok((jobs, _)) => jobs,
                    Err(_) => return,
                };
            }
            // (The Tor list has no queue: its thread never gets here.)
            let take = match source {
                Source::Tor | Source::IpApi => 1,
                Source::StopForumSpam => feeds::SFS_MAX_BATCH,
            };
            let n = take.min(jobs.len());
            jobs.drain(..n).collect()
        };
        if batch.is_empty() {
            continue;
        }
        if let Some(error) = failing_now {
            for addr in batch {
                shared.post(Report::Answer {
                    source,
                    addr,
                    outcome: Err(error.clone()),
                });
            }
            continue;
        }
        let at = now_ms();
        pacer.sent(at);
        shared.post(Report::Sent { source, at });
        let lookup = match source {
            Source::Tor => return,
            Source::IpApi => fetch::ip_api(&agent, base, batch[0]),
            Source::StopForumSpam => fetch::stop_forum_spam(&agent, base, &batch),
        };
        let answers = match lookup {
            Ok(Lookup::Throttled { reset_secs }) => {
                // Over the service's rate: the addresses wait for the window, they did not fail.
                pacer.throttled(now_ms(), reset_secs);
                if let Ok(mut jobs) = queue.jobs.lock() {
                    for addr in batch.iter().rev() {
                        jobs.push_front(*addr);
                    }
                }
                shared.post(Report::Note(format!(
                    "{}: the service asks us to slow down (HTTP 429); waiting {} s",
                    source.name(),
                    reset_secs.unwrap_or(60)
                )));
                continue;
            }
            Ok(Lookup::Answered {
                answers,
                left,
                reset_secs,
            }) => {
                pacer.observed(now_ms(), left, reset_secs);
                answers.map_err(|e| e.to_string())
            }
            Err(error) => Err(error.to_string()),
        };
        match answers {
            Ok(answers) => {
                backoff = 0;
                failing = None;
                for addr in &batch {
                    // An address the answer does not mention is unknown to the source: clean.
                    let found = answers.iter().find(|a| same_address(a.addr, *addr));
                    let (suspicious, geo) = found.map_or((false, None), |a| (a.suspicious, a.geo));
                    shared.post(Report::Answer {
                        source,
                        addr: *addr,
                        outcome: Ok((suspicious, geo)),
                    });
                }
            }
            Err(error) => {
                backoff = if backoff == 0 {
                    5
                } else {
                    (backoff * 2).min(300)
                };
                retry_at_ms = now_ms() + backoff * 1000;
                failing = Some(error.clone());
                for addr in batch {
                    shared.post(Report::Answer {
                        source,
                        addr,
                        outcome: Err(error.clone()),
                    });
                }
            }
        }
    }
}

/// The crawler-hints thread: asks this server for each queued page (see `nginx::hints`).
fn hints_thread(shared: Arc<Shared>, secrets: crate::challenge::token::Secrets) {
    let agent = fetch::pages_agent(page_hints::USER_AGENT);
    while !shared.stopped() {
        let job = {
            let Ok(mut jobs) = shared.pages.jobs.lock() else {
                return;
            };
            if jobs.is_empty() {
                jobs = match shared
                    .pages
                    .ready
                    .wait_timeout(jobs, Duration::from_secs(1))
                {
                    Ok((jobs, _)) => jobs,
                    Err(_) => return,
                };
            }
            jobs.pop_front()
        };
        let Some((key, job)) = job else { continue };
        let host = String::from_utf8_lossy(job.host()).into_owned();
        let page = format!("{}{}", host, String::from_utf8_lossy(job.uri()));
        let token = secrets.hints_token(job.host(), job.uri(), unix_now() + page_hints::TOKEN_SECS);
        let outcome = fetch::page_hints(&agent, &job, (page_hints::HEADER, token.as_str()))
            .map_err(|e| e.to_string());
        shared.post(Report::Hints { key, page, outcome });
    }
}

fn same_address(a: IpAddr, b: IpAddr) -> bool {
    crate::state::reputation::address_bytes(a) == crate::state::reputation::address_bytes(b)
}

/// The event loop's tick: applies what the threads found, hands them new addresses.
unsafe extern "C" fn tick(_ev: *mut ngx_event_t) {
    run_tick(
        "the reputation fetcher's tick",
        &RUNNING,
        stop,
        |r| (r.mcf, r.timer),
        |running, mcf, log| {
            for report in running.shared.take() {
                apply(running, mcf, log, report);
            }
            hand_out(&running.shared, mcf);
        },
    );
}

/// Writes a report into the zone and logs what an operator should know.
fn apply(running: &mut Running, mcf: &MainConf, log: *mut ngx_log_t, report: Report) {
    let Some(zone) = mcf.zone_state() else { return };
    let now = unix_now();
    let holder = client::holder();
    match report {
        Report::List {
            name,
            origin,
            outcome,
            took_ms,
            next_in_secs,
        } => {
            let (Some(status), Some(table)) = (zone.tor(), zone.listed.as_ref()) else {
                return;
            };
            let streak = &mut running.streaks[0];
            match outcome {
                Ok((addrs, skipped)) => {
                    let generation = status.next_generation();
                    let capacity = table.capacity();
                    let kept = addrs.len().min(capacity);
                    for chunk in addrs[..kept].chunks(WRITE_CHUNK) {
                        table.with(holder, |t| {
                            for addr in chunk {
                                let key = mcf.feed_key("tor", *addr);
                                t.insert(&key, now * 1000, u64::MAX, FeedStatus::entry(generation));
                            }
                        });
                    }
                    status.publish(generation, kept as u32, now);
                    if let Some(failures) = streak.succeeded() {
                        ngx_log_error!(
                            NGX_LOG_NOTICE,
                            log,
                            "captchaify: {}: {} answers again after {} failures",
                            name.name(),
                            origin,
                            failures
                        );
                    }
                    ngx_log_error!(
                        NGX_LOG_NOTICE,
                        log,
                        "captchaify: {}: {} exit addresses loaded from {} in {} ms{}; next refresh in {} s",
                        name.name(),
                        kept,
                        origin,
                        took_ms,
                        if skipped > 0 { format!(" ({skipped} lines skipped)") } else { String::new() },
                        next_in_secs
                    );
                    if kept < addrs.len() {
                        ngx_log_error!(
                            NGX_LOG_WARN,
                            log,
                            "captchaify: {}: the zone holds only {} listed addresses, {} were dropped; give captchaify_zone more memory",
                            name.name(),
                            capacity,
                            addrs.len() - kept
                        );
                    }
                }
                Err(error) => {
                    let count = status.count.load(Ordering::Relaxed);
                    let kept = match status.generation.load(Ordering::Acquire) {
                        0 => "no list loaded yet".to_string(),
                        _ => format!(
                            "keeping the {} addresses fetched {} s ago",
                            count,
                            now.saturating_sub(status.fetched_at.load(Ordering::Relaxed))
                        ),
                    };
                    ngx_log_error!(
                        streak.failed(),
                        log,
                        "captchaify: {}: cannot load {}: {}; {}; next try in {} s",
                        name.name(),
                        origin,
                        error,
                        kept,
                        next_in_secs
                    );
                }
            }
        }
        Report::Note(text) => {
            ngx_log_error!(NGX_LOG_INFO, log, "captchaify: {}", text);
        }
        Report::Sent { source, at } => {
            if let Some(sends) = zone.sends(source) {
                sends.record(at);
            }
        }
        Report::Hints { key, page, outcome } => {
            let Some(table) = zone.hints.as_ref() else {
                return;
            };
            let (found, ttl) = match &outcome {
                Ok(Some(found)) if !found.is_empty() => (found.clone(), page_hints::TTL_SECS),
                _ => (hints::Hints::default(), page_hints::EMPTY_TTL_SECS),
            };
            match &outcome {
                Ok(Some(found)) => {
                    ngx_log_error!(
                        NGX_LOG_INFO,
                        log,
                        "captchaify: crawler hints for {}: title \"{}\", {} meta tags",
                        page,
                        found.title,
                        found.meta.len() + usize::from(!found.description.is_empty())
                    );
                }
                Ok(None) => {
                    ngx_log_error!(
                        NGX_LOG_INFO,
                        log,
                        "captchaify: crawler hints for {}: the page has none",
                        page
                    );
                }
                Err(error) => {
                    ngx_log_error!(
                        NGX_LOG_WARN,
                        log,
                        "captchaify: crawler hints for {}: cannot read the page: {}",
                        page,
                        error
                    );
                }
            }
            let record = HintsRecord {
                bytes: hints::encode(&found),
            };
            table.with(holder, |t| {
                t.insert(&key, now * 1000, (now + ttl) * 1000, record)
            });
        }
        Report::Answer {
            source,
            addr,
            outcome,
        } => {
            let Some(table) = zone.lookups.as_ref() else {
                return;
            };
            let key = mcf.feed_key("lookup", addr);
            let spec = mcf.feed(source);
            let streak = &mut running.streaks[match source {
                Source::Tor => 0,
                Source::IpApi => 1,
                Source::StopForumSpam => 2,
            }];
            match outcome {
                Ok((suspicious, geo)) => {
                    if let Some(failures) = streak.succeeded() {
                        ngx_log_error!(
                            NGX_LOG_NOTICE,
                            log,
                            "captchaify: {}: answering again after {} failed lookups",
                            source.name(),
                            failures
                        );
                    }
                    if let Some(metrics) = zone.metrics() {
                        let index = usize::from(source == Source::StopForumSpam);
                        metrics.count_lookup_answers(index, 1, now);
                    }
                    let answer = if suspicious {
                        Answer::Suspicious
                    } else {
                        Answer::Clean
                    };
                    table.with(holder, |t| {
                        record_answer(t, &key, now, source, answer, now + spec.ttl_secs, geo)
                    });
                }
                Err(error) => {
                    // Logged when the streak starts only: a failing source fails every address.
                    if streak.failed() == NGX_LOG_WARN as ngx::ffi::ngx_uint_t {
                        ngx_log_error!(
                            NGX_LOG_WARN,
                            log,
                            "captchaify: {}: lookups fail: {}; answers already known are kept, new addresses \
                             are treated per captchaify_lookup_pending until it answers",
                            source.name(),
                            error
                        );
                    }
                    table.with(holder, |t| {
                        record_answer(
                            t,
                            &key,
                            now,
                            source,
                            Answer::Failed,
                            now + RETRY_FAILED_SECS,
                            None,
                        )
                    });
                }
            }
        }
    }
}

/// Moves queued addresses and pages from the zone to the threads' queues.
fn hand_out(shared: &Shared, mcf: &MainConf) {
    hand_out_pages(shared, mcf);
    hand_out_addresses(shared, mcf);
}

fn hand_out_pages(shared: &Shared, mcf: &MainConf) {
    let Some(jobs) = mcf.zone_state().and_then(|z| z.hint_jobs.as_ref()) else {
        return;
    };
    let Some(popped) = take_queued(jobs, 64) else {
        return;
    };
    if let Ok(mut queue) = shared.pages.jobs.lock() {
        for job in popped {
            if queue.len() < 256 {
                queue.push_back(job);
            }
        }
        shared.pages.ready.notify_one();
    }
}

fn hand_out_addresses(shared: &Shared, mcf: &MainConf) {
    let Some(pending) = mcf.zone_state().and_then(|z| z.pending.as_ref()) else {
        return;
    };
    let Some(popped) = take_queued(pending, BATCH) else {
        return;
    };
    for source in Source::PER_ADDRESS {
        let Some(queue) = shared.queue(source) else {
            continue;
        };
        let Ok(mut jobs) = queue.jobs.lock() else {
            continue;
        };
        let before = jobs.len();
        for (_, entry) in &popped {
            if entry.asks(source) && jobs.len() < THREAD_QUEUE {
                jobs.push_back(entry.address());
            }
        }
        if jobs.len() > before {
            queue.ready.notify_one();
        }
    }
}
