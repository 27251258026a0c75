//! The warning for a server behind a proxy that `realip` was not told about (see
//! [`crate::state::forwarded`]): looked at only when a request carries `X-Forwarded-For`,
//! once per worker at most.

use std::cell::RefCell;
use std::net::IpAddr;

use ngx::ffi::NGX_LOG_WARN;
use ngx::http::Request;
use ngx::ngx_log_error;

use crate::state::forwarded::ForwardedSketch;

thread_local! {
    /// The worker's sketch (nginx runs a worker's handlers on one thread).
    static SKETCH: RefCell<ForwardedSketch> = const { RefCell::new(ForwardedSketch::new()) };
}

/// Notes the request's first `X-Forwarded-For` header against the client's address (nginx's,
/// after `realip`), and warns the first time one address has forwarded many visitors.
pub(crate) fn notice(r: &Request, address: IpAddr) {
    let Some(value) = forwarded_for(r) else {
        return;
    };
    let warn = SKETCH.with(|sketch| {
        sketch
            .try_borrow_mut()
            .is_ok_and(|mut sketch| !sketch.warned() && sketch.observe(address, value))
    });
    if warn {
        ngx_log_error!(
            NGX_LOG_WARN,
            r.log(),
            "captchaify: {} sent requests with {} or more different X-Forwarded-For headers: \
             if it is a proxy or load balancer you run, tell nginx with \"set_real_ip_from \
             {};\" and \"real_ip_header X-Forwarded-For;\" (the realip module), or all its \
             visitors share one rate limit and one failure count, and a few wrong answers \
             block them all; if it is not yours, do not: any client can send this header, and \
             an address trusted with it can claim to be any client (warned once per worker)",
            address,
            ForwardedSketch::DISTINCT,
            address
        );
    }
}

/// The first `X-Forwarded-For` header's value: nginx 1.23 and later link the headers.
#[cfg(ngx_cookie_list)]
fn forwarded_for(r: &Request) -> Option<&[u8]> {
    // SAFETY: null, or the first of the live request's `X-Forwarded-For` headers, an element
    // of its header list in the request's pool.
    let header = unsafe { r.as_ref().headers_in.x_forwarded_for.as_ref() }?;
    Some(header.value.as_bytes())
}

/// The first `X-Forwarded-For` header's value: nginx 1.22 keeps pointers to them in an array.
#[cfg(not(ngx_cookie_list))]
fn forwarded_for(r: &Request) -> Option<&[u8]> {
    let array = &r.as_ref().headers_in.x_forwarded_for;
    if array.nelts == 0 {
        return None;
    }
    // SAFETY: nginx's array of the live request's `X-Forwarded-For` headers: `nelts` (> 0)
    // pointers to elements of its header list, in the request's pool.
    let first = unsafe { *array.elts.cast::<*mut ngx::ffi::ngx_table_elt_t>() };
    // SAFETY: as above.
    let header = unsafe { first.as_ref() }?;
    Some(header.value.as_bytes())
}
