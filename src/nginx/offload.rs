//! Captcha pages drawn in nginx's thread pool, so that the event loop never waits for them.
//!
//! Drawing a captcha page takes about half a millisecond of CPU. Done on the event loop, a
//! flood of new clients makes every other request of the worker — a verified person's
//! included — queue behind the pages of the flood. Instead the access handler gathers what
//! the page needs ([`ChallengeOrder`]), posts it to the `default` thread pool and suspends
//! the request the way nginx's own thread I/O does (`r->main->blocked`, `r->aio`); the pool
//! thread draws the page without touching nginx; back on the event loop the page is sent and
//! the request finalized. Without a thread pool (nginx built without threads) or when the
//! pool's queue is full, the page is drawn on the spot as before.
//!
//! The pool is nginx's `default` one, which the module asks for when it is used (32 threads
//! per worker unless `thread_pool default threads=N;` says otherwise). Each worker gives it at
//! most one page per CPU at a time and keeps the rest waiting in order, and the drawing
//! threads run at a lower priority than the event loop: a flood of new clients then costs a
//! verified person almost no latency (docs/performance.md).

use core::cell::RefCell;
use core::ffi::c_void;
use core::ptr;
use std::collections::VecDeque;

use ngx::ffi::{
    ngx_conf_t, ngx_connection_t, ngx_current_msec, ngx_cycle, ngx_event_t, ngx_event_timer_rbtree,
    ngx_http_finalize_request, ngx_http_request_t, ngx_http_run_posted_requests, ngx_log_t,
    ngx_msec_t, ngx_rbtree_insert, ngx_thread_pool_add, ngx_thread_pool_t, ngx_thread_task_alloc,
    ngx_thread_task_post, ngx_thread_task_t, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_OK,
};
use ngx::http::Request;

use super::response::{write_challenge_page, ChallengeOrder};
use crate::challenge::compose::Composed;

/// The thread pool, asked for at configuration time; null when nginx has none.
pub(crate) fn add_pool(cf: *mut ngx_conf_t) -> *mut ngx_thread_pool_t {
    // SAFETY: a live configuration context; a null name means nginx's `default` pool.
    unsafe { ngx_thread_pool_add(cf, ptr::null_mut()) }
}

/// A page being drawn: the order going out, the page coming back, and whose it is.
struct Job {
    request: *mut ngx_http_request_t,
    order: Option<ChallengeOrder>,
    drawn: Option<Composed>,
    pool: *mut ngx_thread_pool_t,
}

/// Posts the order to the pool and suspends the request; `Err` gives the order back when it
/// could not be posted (the caller then draws it itself; `None` only if it was lost, which
/// cannot happen, and then the caller answers 500 rather than leave the request hanging).
pub(crate) fn post(
    pool: *mut ngx_thread_pool_t,
    r: &mut Request,
    order: ChallengeOrder,
) -> Result<(), Option<ChallengeOrder>> {
    if pool.is_null() {
        return Err(Some(order));
    }
    let raw: *mut ngx_http_request_t = r.into();
    // SAFETY: the request and its pool are live; the task (with room for no context of its
    // own) is allocated in the request pool and lives as long as the request.
    let task = unsafe { ngx_thread_task_alloc((*raw).pool, 0) };
    if task.is_null() {
        return Err(Some(order));
    }
    let job = Box::into_raw(Box::new(Job {
        request: raw,
        order: Some(order),
        drawn: None,
        pool,
    }));
    // SAFETY: `task` is a fresh, zeroed task; the job stays alive until `finished` takes it
    // back (or, if posting fails, right below).
    unsafe {
        (*task).ctx = job.cast();
        (*task).handler = Some(draw);
        (*task).event.data = job.cast();
        (*task).event.handler = Some(finished);
        if QUEUE.with(|q| q.borrow().in_flight) < drawing_limit() {
            if ngx_thread_task_post(pool, task) != NGX_OK as isize {
                // The pool's queue is full: the caller draws the page itself.
                return Err(Box::from_raw(job).order.take());
            }
            QUEUE.with(|q| q.borrow_mut().in_flight += 1);
        } else {
            QUEUE.with(|q| q.borrow_mut().waiting.push_back(task));
        }
        arm_guard();
        // Suspended like nginx's thread I/O: nothing finalizes or frees the request until
        // `finished` has run.
        let main = (*raw).main;
        (*main).set_blocked((*main).blocked() + 1);
        (*raw).set_aio(1);
    }
    Ok(())
}

/// This worker's pages being drawn and waiting to be. At most [`drawing_limit`] are in the
/// pool at once, whatever its size (nginx's `default` pool has 32 threads): more threads than
/// cores would only take CPU time from the event loop, without drawing any faster.
#[derive(Default)]
struct Queue {
    in_flight: usize,
    waiting: VecDeque<*mut ngx_thread_task_t>,
    /// A timer armed while pages are being drawn or wait: a suspended request has no timer of
    /// its own, and a worker shutting down gracefully (reload) leaves as soon as no timer is
    /// left — it would drop those requests' connections.
    guard: Option<*mut ngx_event_t>,
}

/// How often the guard timer looks whether the work is done.
const GUARD_INTERVAL_MS: ngx_msec_t = 100;

/// Arms the guard timer, unless it is armed already.
fn arm_guard() {
    let guard = QUEUE.with(|q| {
        *q.borrow_mut().guard.get_or_insert_with(|| {
            // SAFETY: the cycle's log outlives the worker's events.
            // Not cancelable: graceful shutdown waits for it.
            timer_event(guard_fired, false, unsafe { (*ngx_cycle).log })
        })
    });
    // SAFETY: the guard event is ours and only touched on the event loop.
    unsafe {
        if (*guard).timer_set() == 0 {
            add_timer(guard, GUARD_INTERVAL_MS);
        }
    }
}

/// Re-arms the guard while anything is still being drawn or waiting.
unsafe extern "C" fn guard_fired(ev: *mut ngx_event_t) {
    super::unwind::guarded(
        "the drawing guard timer",
        || (),
        move || {
            let busy = QUEUE.with(|q| {
                let q = q.borrow();
                q.in_flight > 0 || !q.waiting.is_empty()
            });
            if busy {
                // SAFETY: `ev` is the guard event, which has just fired (its timer is not set).
                unsafe { add_timer(ev, GUARD_INTERVAL_MS) };
            }
        },
    )
}

/// A stand-alone timer event that lives as long as the worker. A cancelable one does not hold
/// up a graceful shutdown.
pub(crate) fn timer_event(
    handler: unsafe extern "C" fn(*mut ngx_event_t),
    cancelable: bool,
    log: *mut ngx_log_t,
) -> *mut ngx_event_t {
    // SAFETY: an all-zero event is a valid, idle event.
    let ev: *mut ngx_event_t = Box::leak(Box::new(unsafe { core::mem::zeroed() }));
    // nginx's debug log reads a timer event's `data` as a connection (its fd): give it a
    // blank one, as nginx's own stand-alone timers do.
    // SAFETY: an all-zero connection is plain data; only its `fd` is ever read.
    let dummy: *mut ngx_connection_t =
        Box::leak(Box::new(unsafe { core::mem::zeroed::<ngx_connection_t>() }));
    // SAFETY: `ev` and `dummy` were just created.
    unsafe {
        (*dummy).fd = -1;
        (*ev).data = dummy.cast();
        (*ev).handler = Some(handler);
        (*ev).log = log;
        (*ev).set_cancelable(u32::from(cancelable) as _);
    }
    ev
}

/// `ngx_del_timer` for an event whose timer may be set.
///
/// # Safety
/// Event-loop thread; `ev` is a live event.
pub(crate) unsafe fn delete_timer(ev: *mut ngx_event_t) {
    // SAFETY: per the contract.
    unsafe {
        if (*ev).timer_set() != 0 {
            ngx::ffi::ngx_rbtree_delete(
                ptr::addr_of_mut!(ngx_event_timer_rbtree),
                &mut (*ev).timer,
            );
            (*ev).set_timer_set(0);
        }
    }
}

/// `ngx_add_timer` (a static inline function in C, so not in the bindings) for an event
/// whose timer is not set.
pub(crate) unsafe fn add_timer(ev: *mut ngx_event_t, ms: ngx_msec_t) {
    // SAFETY: event-loop thread; the timer tree and clock are nginx's globals.
    unsafe {
        (*ev).timer.key = ngx_current_msec + ms;
        ngx_rbtree_insert(ptr::addr_of_mut!(ngx_event_timer_rbtree), &mut (*ev).timer);
        (*ev).set_timer_set(1);
    }
}

std::thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

/// Pages drawn at once: one per online CPU (asked once per worker).
fn drawing_limit() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        usize::try_from(cpus).unwrap_or(1).max(1)
    })
}

/// A page is done: the next waiting one goes to the pool (or, if the pool refuses it, is
/// drawn and sent right here).
fn start_next() {
    let next = QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        q.in_flight = q.in_flight.saturating_sub(1);
        let next = q.waiting.pop_front();
        if next.is_some() {
            q.in_flight += 1;
        }
        next
    });
    let Some(task) = next else { return };
    // SAFETY: a waiting task is fully set up (see `post`) and its request is suspended.
    unsafe {
        let job = (*task).ctx.cast::<Job>();
        if ngx_thread_task_post((*job).pool, task) != NGX_OK as isize {
            draw(job.cast(), ptr::null_mut());
            finished(&mut (*task).event);
        }
    }
}

/// The niceness of pool threads while they draw: the event loop (nice 0) gets the CPU first
/// whenever it has work — a verified person's request, a cheap 429 — and the pages are drawn
/// with what is left. At 10, a thread weighs about a tenth of the event loop.
const DRAWING_NICENESS: i32 = 10;

std::thread_local! {
    static NICED: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Lowers the priority of the calling pool thread once (Linux: per thread, by its id).
fn nice_this_thread() {
    if NICED.with(|n| n.replace(true)) {
        return;
    }
    // SAFETY: plain syscalls on the calling thread; failure just leaves the priority as is.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, DRAWING_NICENESS);
    }
}

/// Runs on a pool thread: draws the page. Touches nothing of nginx.
unsafe extern "C" fn draw(data: *mut c_void, _log: *mut ngx_log_t) {
    nice_this_thread();
    // SAFETY: `data` is the job posted with this task; only this thread uses it until the
    // pool hands the task back to the event loop.
    let job = unsafe { &mut *data.cast::<Job>() };
    if let Some(order) = job.order.take() {
        // A panic must not cross into C; a job without a page answers 500 (logged by
        // `finished`, on the event loop: this thread must not touch nginx).
        job.drawn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| order.draw())).ok();
    }
}

/// Back on the event loop: sends the page and finalizes the request.
unsafe extern "C" fn finished(ev: *mut ngx_event_t) {
    // SAFETY: the event's data is the job this task carried; taking the box back frees it.
    let job = unsafe { Box::from_raw((*ev).data.cast::<Job>()) };
    let raw = job.request;
    // SAFETY: the request was kept alive by `blocked` while the page was drawn.
    unsafe {
        let main = (*raw).main;
        (*main).set_blocked((*main).blocked().saturating_sub(1));
        (*raw).set_aio(0);
        let r = Request::from_ngx_http_request(raw);
        let rc = match job.drawn {
            Some(drawn) => super::unwind::guarded(
                "sending a captcha page",
                || NGX_HTTP_INTERNAL_SERVER_ERROR as _,
                || write_challenge_page(r, drawn),
            ),
            None => {
                ngx::ngx_log_error!(
                    ngx::ffi::NGX_LOG_ALERT,
                    r.log(),
                    "captchaify: internal error while drawing a captcha (a panic, caught in the \
                     drawing thread); answered 500, the worker goes on"
                );
                NGX_HTTP_INTERNAL_SERVER_ERROR as _
            }
        };
        let connection = (*raw).connection;
        ngx_http_finalize_request(raw, rc);
        ngx_http_run_posted_requests(connection);
    }
    super::unwind::guarded("starting the next drawing", || (), start_next);
}
