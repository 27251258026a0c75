//! No panic crosses into nginx.
//!
//! The release profile unwinds (`panic = "unwind"` in `Cargo.toml`), and every function that
//! nginx calls into runs its body through [`guarded`]: a panic there, a bug of ours or of a
//! crate we use, is caught at the boundary, logged at `alert`, and answered like any other
//! internal error (a 500 for a request, an error for a directive), and the worker lives on. A
//! table whose lock was held while the panic unwound is rebuilt by its next holder
//! (`state::table`). Code on other threads catches its own: the drawing threads in
//! `offload`, the reputation and CrowdSec jobs' loops in `background`. Without this,
//! a panic aborts the worker, perhaps while it holds a table's lock; the other workers would
//! then take the lock over (see `state::table`), but every connection of the worker is lost.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::NGX_LOG_ALERT;
use ngx::ngx_log_error;

/// Runs `body`; if it panics, logs where and why and returns `fallback()` instead.
pub(crate) fn guarded<R>(
    what: &'static str,
    fallback: impl FnOnce() -> R,
    body: impl FnOnce() -> R,
) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            // SAFETY: nginx keeps ngx_cycle pointing at a live cycle with a log in every
            // process; guarded code runs on nginx's own thread.
            let log = unsafe { (*ngx::ffi::ngx_cycle).log };
            ngx_log_error!(
                NGX_LOG_ALERT,
                log,
                "captchaify: internal error in {} (a panic, caught: {}); the worker goes on",
                what,
                message
            );
            fallback()
        }
    }
}

/// The test builds' way to make a fault happen where the fault tests need one: the
/// `X-Captchaify-Test-Fault` request header (`panic-handler`, `panic-draw`, `abort-draw`,
/// `abort-locked`).
/// Release builds have no such thing (scripts/test checks that the header's name is absent).
#[cfg(feature = "test-answers")]
pub(crate) fn test_fault(r: &ngx::http::Request) -> Option<TestFault> {
    let value = r
        .headers_in_iterator()
        .find(|(key, _)| {
            key.as_bytes()
                .eq_ignore_ascii_case(b"x-captchaify-test-fault")
        })?
        .1;
    match value.as_bytes() {
        b"panic-handler" => Some(TestFault::PanicHandler),
        b"panic-draw" => Some(TestFault::PanicDraw),
        b"abort-draw" => Some(TestFault::AbortDraw),
        b"abort-locked" => Some(TestFault::AbortLocked),
        _ => None,
    }
}

#[cfg(feature = "test-answers")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestFault {
    /// A panic in the access handler, on the event loop.
    PanicHandler,
    /// A panic while the captcha is drawn, in a thread of nginx's pool.
    PanicDraw,
    /// The process aborts while the captcha is drawn (as an out-of-memory abort would).
    AbortDraw,
    /// The process aborts while it holds the rate table's lock (as a `kill -9` at the wrong
    /// moment would).
    AbortLocked,
}
