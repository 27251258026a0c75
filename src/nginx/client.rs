//! The one place that reads who the client is, and the one time source.
//!
//! The address is the connection's, as nginx has it after `realip` — never a header parsed
//! here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ngx::ffi::{
    ngx_cached_time, ngx_pid, sockaddr, sockaddr_in, sockaddr_in6, socklen_t, AF_INET, AF_INET6,
};
use ngx::http::Request;

use crate::request;
use crate::state::holder::Holder;

/// The client's address. Connections that are not IP (a Unix socket) count as `0.0.0.0`.
pub(crate) fn address(r: &Request) -> IpAddr {
    // SAFETY: a request's connection and its sockaddr stay valid for the request's lifetime.
    let connection = unsafe { &*r.connection() };
    // SAFETY: as above; nginx sets `socklen` with `sockaddr`.
    unsafe { socket_address(connection.sockaddr, connection.socklen) }
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip())
}

/// The connection's number: nginx counts connections across all workers and never reuses one.
pub(crate) fn connection_number(r: &Request) -> ngx::ffi::ngx_atomic_uint_t {
    // SAFETY: a request's connection stays valid for the request's lifetime.
    unsafe { (*r.connection()).number }
}

/// The IP address and port in a C socket address (nginx's connections, the resolver's
/// answers); `None` for a null pointer, a short length or another family.
///
/// # Safety
/// `sa` is null or points at `len` readable bytes of a socket address.
pub(crate) unsafe fn socket_address(sa: *const sockaddr, len: socklen_t) -> Option<SocketAddr> {
    // SAFETY: per the contract; the family field tells which variant it is, and the length
    // is checked against it.
    unsafe {
        let family = u32::from(sa.as_ref()?.sa_family);
        let len = len as usize;
        if family == AF_INET && len >= core::mem::size_of::<sockaddr_in>() {
            let sin = &*sa.cast::<sockaddr_in>();
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        } else if family == AF_INET6 && len >= core::mem::size_of::<sockaddr_in6>() {
            let sin6 = &*sa.cast::<sockaddr_in6>();
            let ip = Ipv6Addr::from(sin6.sin6_addr.__in6_u.__u6_addr8);
            Some(SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be(sin6.sin6_port),
            ))
        } else {
            None
        }
    }
}

/// The `User-Agent` header, empty when absent.
pub(crate) fn user_agent(r: &Request) -> &[u8] {
    r.user_agent().map_or(&[][..], |ua| ua.as_bytes())
}

/// Every value of cookie `name`, across all `Cookie` headers (which nginx keeps apart as it
/// reads them, so no other header is looked at).
pub(crate) fn cookies<'a>(r: &'a Request, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    cookie_headers(r).flat_map(move |header| request::cookie_values(header.value.as_bytes(), name))
}

/// The request's `Cookie` headers: nginx 1.23 and later link them.
#[cfg(ngx_cookie_list)]
fn cookie_headers(r: &Request) -> impl Iterator<Item = &ngx::ffi::ngx_table_elt_t> {
    // SAFETY: nginx's list of a live request's `Cookie` headers: null, or elements of its
    // header list linked by `next` (the last one's null), all in the request's pool.
    let first = unsafe { r.as_ref().headers_in.cookie.as_ref() };
    // SAFETY: as above.
    core::iter::successors(first, |header| unsafe { header.next.as_ref() })
}

/// The request's `Cookie` headers: nginx 1.22 keeps pointers to them in an array.
#[cfg(not(ngx_cookie_list))]
fn cookie_headers(r: &Request) -> impl Iterator<Item = &ngx::ffi::ngx_table_elt_t> {
    let array = &r.as_ref().headers_in.cookies;
    let headers: &[*mut ngx::ffi::ngx_table_elt_t] = match array.nelts {
        0 => &[],
        // SAFETY: nginx's array of a live request's `Cookie` headers: `nelts` pointers to
        // elements of its header list, all in the request's pool.
        n => unsafe { core::slice::from_raw_parts(array.elts.cast(), n) },
    };
    // SAFETY: as above.
    headers
        .iter()
        .filter_map(|&header| unsafe { header.as_ref() })
}

/// The query string (without `?`), empty when there is none.
pub(crate) fn query(r: &Request) -> &[u8] {
    let args = r.as_ref().args;
    // SAFETY: `args` is an nginx string of the live request (possibly empty).
    if args.len == 0 {
        &[][..]
    } else {
        unsafe { core::slice::from_raw_parts(args.data, args.len) }
    }
}

/// Every value of URL argument `name`.
pub(crate) fn arguments<'a>(r: &'a Request, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    request::argument_values(query(r), name)
}

/// The first value of URL argument `name`, percent-decoded.
pub(crate) fn argument(r: &Request, name: &[u8]) -> Option<Vec<u8>> {
    arguments(r, name)
        .next()
        .map(crate::challenge::flow::percent_decode)
}

/// Whether the request is a GET or a HEAD (the module's own read-only paths allow no other).
pub(crate) fn is_get_or_head(r: &Request) -> bool {
    let raw: *const ngx::ffi::ngx_http_request_t = r.into();
    // SAFETY: `raw` is the live request.
    let method = unsafe { (*raw).method };
    method == ngx::ffi::NGX_HTTP_GET as usize || method == ngx::ffi::NGX_HTTP_HEAD as usize
}

/// Whether the client reached us over TLS.
pub(crate) fn is_https(r: &Request) -> bool {
    // SAFETY: the connection of a live request is valid.
    unsafe { !(*r.connection()).ssl.is_null() }
}

/// Whether the module's cookies get `Secure` (`captchaify_secure_cookies`): by default when
/// the client reached nginx over TLS; behind a proxy that terminates TLS, as the operator says.
pub(crate) fn secure_cookies(r: &Request, lcf: &super::LocConf) -> bool {
    lcf.loc.secure_cookies.is_secure(r)
}

/// nginx's cached clock, the module's only time source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    /// Unix time in seconds (tokens).
    pub secs: u64,
    /// Unix time in milliseconds (shared tables).
    pub millis: u64,
}

pub(crate) fn now() -> Now {
    // SAFETY: nginx keeps ngx_cached_time pointing at a valid, current time slot in every
    // process; it is updated by the event loop of this same thread.
    let (secs, msec) = unsafe { ((*ngx_cached_time).sec, (*ngx_cached_time).msec) };
    let secs = u64::try_from(secs).unwrap_or(0);
    Now {
        secs,
        millis: secs.saturating_mul(1000).saturating_add(msec as u64),
    }
}

/// This process, as the holder of a shared table's lock: its pid and start time, so that a
/// waiter can tell when it died holding the lock (see `state::holder`).
pub(crate) fn holder() -> Holder {
    // SAFETY: nginx sets ngx_pid once per process, before any request is handled.
    Holder::process(u32::try_from(unsafe { ngx_pid }).unwrap_or(0))
}
