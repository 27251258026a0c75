//! The background fetcher: one per nginx instance, in worker 0 (or the single process).
//!
//! Shape (ARCHITECTURE.md, "Background work"):
//!
//! * one OS thread per enabled source runs blocking `ureq` requests (or reads a file), with
//!   every signal blocked, as nginx's own thread pool does; it never touches nginx;
//! * results go into a mailbox (a mutex-guarded vector) that a cancelable nginx timer on the
//!   event loop empties every [`TICK_MS`]; only the event loop writes the shared zone, where
//!   every worker reads it;
//! * the same tick takes the addresses that requests queued in the zone (first sight of an
//!   address at a location listening to ip-api or StopForumSpam) and hands them to the
//!   threads;
//! * on shutdown or reload the timer stops re-arming and the threads are told to stop; a
//!   thread in the middle of a request ends within its timeout. A new generation of workers
//!   finds the lists and answers the old one left in the zone, and only fetches what is due.
//!
//! Failures keep the last good data, back off (30 s doubling up to the refresh interval) and
//! are logged once per streak, not per attempt or per request.

use core::cell::RefCell;
use core::ptr;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ngx::core::Status;
use ngx::ffi::{
    ngx_cycle_t, ngx_event_t, ngx_http_conf_ctx_t, ngx_http_module, ngx_int_t, ngx_log_t,
    NGX_LOG_INFO, NGX_LOG_NOTICE, NGX_LOG_WARN, NGX_PROCESS_SINGLE, NGX_PROCESS_WORKER,
};
use ngx::ngx_log_error;

use super::{offload, MainConf};
use crate::reputation::feeds;
use crate::crawler::hints;
use crate::reputation::{FeedName, FeedOrigin, FeedSpec};
use crate::state::reputation::{
    record_answer, Answer, FeedStatus, HintJob, HintsRecord, Pending, Source,
};

/// How often the event loop looks at the mailbox and the queue.
const TICK_MS: usize = 250;
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

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a thread found out.
enum Report {
    List {
        name: FeedName,
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

/// What the background threads and the event loop share, whatever the work: the stop flag,
/// the mailbox of reports, and a sleep that a stop cuts short.
pub(super) struct Control<R> {
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
    pub fn post(&self, report: R) {
        if let Ok(mut mailbox) = self.mailbox.lock() {
            mailbox.push(report);
        }
    }

    /// The reports posted since the last call (event loop).
    pub fn take(&self) -> Vec<R> {
        self.mailbox
            .lock()
            .map(|mut m| core::mem::take(&mut *m))
            .unwrap_or_default()
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps up to `d`, waking early when told to stop.
    pub fn sleep(&self, d: Duration) {
        let Ok(guard) = self.wake_lock.lock() else {
            return;
        };
        if !self.stopped() {
            let _ = self.wake.wait_timeout(guard, d);
        }
    }

    /// Tells the threads to stop (those waiting on their own queues must be woken too).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_all();
    }
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
    fn queue(&self, source: Source) -> &Queue {
        match source {
            Source::IpApi => &self.ipapi,
            Source::StopForumSpam => &self.sfs,
        }
    }

    fn shut_down(&self) {
        self.control.stop();
        self.ipapi.ready.notify_all();
        self.sfs.ready.notify_all();
        self.pages.ready.notify_all();
    }
}

/// A failure streak of one source or service: logged at `warn` when it starts, at `info`
/// while it lasts, at `notice` when it ends; never per request.
#[derive(Default)]
pub(super) struct Streak {
    failing: bool,
    failures: u64,
}

impl Streak {
    /// Counts a failure; the level to log it at.
    pub fn failed(&mut self) -> ngx::ffi::ngx_uint_t {
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
    pub fn succeeded(&mut self) -> Option<u64> {
        let ended = self.failing.then_some(self.failures);
        *self = Streak::default();
        ended
    }
}

/// Whether the worker is leaving (reload, shutdown): the background work stops.
pub(super) fn leaving() -> bool {
    // SAFETY: nginx's process globals, read on the main thread.
    unsafe { ngx::ffi::ngx_exiting != 0 || ngx::ffi::ngx_terminate != 0 || ngx::ffi::ngx_quit != 0 }
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

/// `init_process`: starts the fetcher in worker 0 (or the single process) when a source is
/// in use. Threads start here, after the fork, never in the master.
pub(crate) unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    super::unwind::guarded(
        "the worker's start",
        || Status::NGX_OK.into(),
        move || {
            // Every process that may take a table's lock over from a dead worker says so in the log.
            let _ = crate::state::lock::TAKEOVER_REPORT.set(super::zone::report_takeover);
            // SAFETY: nginx's process globals, read on the main thread.
            let (process, worker) = unsafe { (ngx::ffi::ngx_process, ngx::ffi::ngx_worker) };
            let single = process == NGX_PROCESS_SINGLE as ngx::ffi::ngx_uint_t;
            if !(single || (process == NGX_PROCESS_WORKER as ngx::ffi::ngx_uint_t && worker == 0)) {
                return Status::NGX_OK.into();
            }
            // SAFETY: the cycle is live; its http configuration, if any, holds our main conf.
            let Some(mcf) = (unsafe { main_conf(cycle) }) else {
                return Status::NGX_OK.into();
            };
            if !mcf.used {
                return Status::NGX_OK.into();
            }
            // SAFETY: the cycle's log lives as long as the process.
            let log = unsafe { (*cycle).log };
            start(mcf, log);
            super::crowdsec::start(mcf, log);
            Status::NGX_OK.into()
        },
    )
}

/// `exit_process`: tells the threads to stop (they end within their timeout).
pub(crate) unsafe extern "C" fn exit_process(_cycle: *mut ngx_cycle_t) {
    super::unwind::guarded(
        "the worker's exit",
        || (),
        move || {
            stop();
            super::crowdsec::stop();
        },
    )
}

fn stop() {
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
    for source in Source::ALL {
        let Ok(mut jobs) = shared.queue(source).jobs.lock() else {
            continue;
        };
        let left: Vec<IpAddr> = jobs.drain(..).collect();
        pending.with(super::client::holder(), |t| {
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

/// Our main configuration in a cycle.
///
/// # Safety
/// `cycle` must be a live cycle.
unsafe fn main_conf<'a>(cycle: *mut ngx_cycle_t) -> Option<&'a MainConf> {
    // SAFETY: ngx_http_cycle_get_module_main_conf, spelled out.
    unsafe {
        let ctx = (*(*cycle).conf_ctx.add(ngx_http_module.index)).cast::<ngx_http_conf_ctx_t>();
        let ctx = ctx.as_ref()?;
        let module = &*ptr::addr_of!(super::ngx_http_captchaify_module);
        (*ctx.main_conf.add(module.ctx_index))
            .cast::<MainConf>()
            .as_ref()
    }
}

fn start(mcf: &MainConf, log: *mut ngx_log_t) {
    let shared = Arc::new(Shared::default());
    let spec = |name: FeedName| mcf.feed(name);
    let in_use = |name: FeedName| mcf.sources_in_use & name.bit() != 0;
    let zone = mcf.zone_state();
    if in_use(FeedName::Tor) {
        let tor = spec(FeedName::Tor);
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
    for (name, source) in [
        (FeedName::IpApi, Source::IpApi),
        (FeedName::StopForumSpam, Source::StopForumSpam),
    ] {
        if in_use(name) {
            let spec = spec(name);
            // The requests a previous generation made in the last minute still count.
            let history = zone
                .and_then(|z| z.sends(source))
                .map(|sends| sends.recent(unix_now_ms(), 60_000))
                .unwrap_or_default();
            spawn(&shared, log, name.as_str(), move |shared| {
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
    let timer = offload::timer_event(tick, true, log);
    RUNNING.with(|r| {
        *r.borrow_mut() = Some(Running {
            shared,
            mcf,
            timer,
            streaks: Default::default(),
        });
    });
    // SAFETY: a fresh event, on the event loop.
    unsafe { offload::add_timer(timer, TICK_MS as _) };
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

/// Starts a thread with every signal blocked (signals are the event loop's business).
pub(super) fn spawn<S: Send + Sync + 'static>(
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

/// The module's own user agent for the services it asks.
pub(super) const USER_AGENT: &str = concat!("captchaify/", env!("CARGO_PKG_VERSION"));

pub(super) fn agent(timeout_secs: u64, user_agent: &str) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(timeout_secs)))
        .http_status_as_error(false)
        .user_agent(user_agent)
        .build()
        .into()
}

/// A GET: the status, the `X-Rl`/`X-Ttl` headers and at most `limit` bytes of body.
fn get(
    agent: &ureq::Agent,
    url: &str,
    limit: u64,
) -> Result<(u16, Option<u32>, Option<u32>, Vec<u8>), String> {
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let (rl, ttl) = (header("X-Rl"), header("X-Ttl"));
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok((status, rl, ttl, body))
}

/// The bulk-list thread: fetches at start (unless a fresh list is loaded) and then every
/// refresh interval; after a failure, sooner, backing off.
fn list_thread(shared: Arc<Shared>, spec: FeedSpec, first_in: u64) {
    let agent = agent(spec.timeout_secs, USER_AGENT);
    shared.sleep(Duration::from_secs(first_in));
    let mut backoff = FIRST_BACKOFF_SECS;
    while !shared.stopped() {
        let started = Instant::now();
        let body = match &spec.origin {
            FeedOrigin::Url(url) => match get(&agent, url, feeds::TOR_MAX_BYTES as u64) {
                Ok((200, _, _, body)) => Ok(body),
                Ok((status, _, _, _)) => Err(format!("HTTP status {status}")),
                Err(error) => Err(error),
            },
            FeedOrigin::File(path) => std::fs::read(path).map_err(|e| e.to_string()),
        };
        let outcome = body.and_then(|body| {
            feeds::parse_tor_exits(&body)
                .map(|list| (list.addrs, list.skipped))
                .map_err(|e| e.to_string())
        });
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
    let agent = agent(spec.timeout_secs, USER_AGENT);
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
    let queue = shared.queue(source);
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
            let take = match source {
                Source::IpApi => 1,
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
        let url = match source {
            Source::IpApi => feeds::ipapi_url(base, batch[0]),
            Source::StopForumSpam => feeds::sfs_url(base, &batch),
        };
        let answers: Result<Vec<(IpAddr, bool, Option<([u8; 2], u32)>)>, String> =
            match get(&agent, &url, feeds::JSON_MAX_BYTES as u64) {
                Ok((429, _, ttl, _)) => {
                    // Over the service's rate: the addresses wait for the window, they did not fail.
                    pacer.throttled(now_ms(), ttl);
                    if let Ok(mut jobs) = queue.jobs.lock() {
                        for addr in batch.iter().rev() {
                            jobs.push_front(*addr);
                        }
                    }
                    shared.post(Report::Note(format!(
                        "{}: the service asks us to slow down (HTTP 429); waiting {} s",
                        source.name(),
                        ttl.unwrap_or(60)
                    )));
                    continue;
                }
                Ok((200, rl, ttl, body)) => {
                    pacer.observed(now_ms(), rl, ttl);
                    match source {
                        Source::IpApi => feeds::parse_ipapi(&body)
                            .map(|a| {
                                let geo = a.country.map(|c| (c, a.asn.unwrap_or(0)));
                                vec![(batch[0], a.proxy || a.hosting, geo)]
                            })
                            .map_err(|e| e.to_string()),
                        Source::StopForumSpam => feeds::parse_sfs(&body)
                            .map(|answers| {
                                answers
                                    .into_iter()
                                    .map(|a| (a.addr, a.appears, None))
                                    .collect()
                            })
                            .map_err(|e| e.to_string()),
                    }
                }
                Ok((status, _, _, _)) => Err(format!("HTTP status {status}")),
                Err(error) => Err(error),
            };
        match answers {
            Ok(answers) => {
                backoff = 0;
                failing = None;
                for addr in &batch {
                    // An address the answer does not mention is unknown to the source: clean.
                    let found = answers.iter().find(|(a, _, _)| same_address(*a, *addr));
                    let (suspicious, geo) = found.map_or((false, None), |(_, s, g)| (*s, *g));
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
    let tls = ureq::tls::TlsConfig::builder()
        .disable_verification(true)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(super::hints::USER_AGENT)
        .tls_config(tls)
        .build()
        .into();
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
        let outcome = fetch_hints(&agent, &secrets, &job);
        shared.post(Report::Hints { key, page, outcome });
    }
}

fn fetch_hints(
    agent: &ureq::Agent,
    secrets: &crate::challenge::token::Secrets,
    job: &HintJob,
) -> Result<Option<hints::Hints>, String> {
    use std::io::Read;
    let uri = core::str::from_utf8(job.uri()).map_err(|_| "the URI is not UTF-8".to_string())?;
    let host = core::str::from_utf8(job.host()).map_err(|_| "the host is not UTF-8".to_string())?;
    let scheme = if job.tls() { "https" } else { "http" };
    let url = format!("{scheme}://{}{uri}", job.server());
    let token = secrets.hints_token(job.host(), job.uri(), unix_now() + super::hints::TOKEN_SECS);
    let mut request = agent.get(&url).header(super::hints::HEADER, &token);
    if !host.is_empty() {
        request = request.header("Host", host);
    }
    let mut response = request.call().map_err(|e| e.to_string())?;
    if response.status().as_u16() != 200 {
        return Err(format!("HTTP status {}", response.status().as_u16()));
    }
    let mut head = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(hints::MAX_SCAN as u64)
        .read_to_end(&mut head)
        .map_err(|e| e.to_string())?;
    Ok(hints::extract(&head))
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

/// What a background tick does (the fetcher's, CrowdSec's): stops when the worker leaves;
/// otherwise arms its timer again first, so that a fault in `work` cannot stop the ticks, and
/// runs `work` with the configuration and the log, a panic caught.
pub(crate) fn run_tick<R: 'static>(
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

/// Writes a report into the zone and logs what an operator should know.
fn apply(running: &mut Running, mcf: &MainConf, log: *mut ngx_log_t, report: Report) {
    let Some(zone) = mcf.zone_state() else { return };
    let now = unix_now();
    let holder = super::client::holder();
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
                            name.as_str(),
                            origin,
                            failures
                        );
                    }
                    ngx_log_error!(
                        NGX_LOG_NOTICE,
                        log,
                        "captchaify: {}: {} exit addresses loaded from {} in {} ms{}; next refresh in {} s",
                        name.as_str(),
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
                            name.as_str(),
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
                        name.as_str(),
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
                Ok(Some(found)) if !found.is_empty() => (found.clone(), super::hints::TTL_SECS),
                _ => (hints::Hints::default(), super::hints::EMPTY_TTL_SECS),
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
            let spec = mcf.feed(match source {
                Source::IpApi => FeedName::IpApi,
                Source::StopForumSpam => FeedName::StopForumSpam,
            });
            let streak = &mut running.streaks[match source {
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
    if jobs.stats().len == 0 {
        return;
    }
    let now_ms = unix_now() * 1000;
    let popped: Vec<_> = jobs.with(super::client::holder(), |t| {
        core::iter::from_fn(|| t.pop_least_recent(now_ms))
            .take(64)
            .collect()
    });
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
    if pending.stats().len == 0 {
        return;
    }
    let now_ms = unix_now() * 1000;
    let popped: Vec<_> = pending.with(super::client::holder(), |t| {
        core::iter::from_fn(|| t.pop_least_recent(now_ms))
            .take(BATCH)
            .collect()
    });
    for source in Source::ALL {
        let queue = shared.queue(source);
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
