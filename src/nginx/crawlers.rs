//! Verified search-engine crawlers: a client whose user agent claims Googlebot (Bingbot,
//! Applebot, YandexBot) is checked against the operator's published ranges
//! (`captchaify_crawler_ranges`), else by forward-confirmed reverse DNS with the location's
//! `resolver`: the address's PTR name must lie in the crawler operator's domain and resolve
//! back to the address.
//!
//! The check never holds up a request: the first request of an address is judged by its user
//! agent (the verdict is `Unknown`), the lookups run on the event loop with nginx's resolver,
//! and the verdict lands in the shared zone for every worker and the next requests. One
//! worker starts a check per address (`read_and_mark`); a check that gets no answer (time-out,
//! server failure) is tried again after a while.

use core::ptr;
use std::net::{IpAddr, SocketAddr};

use ngx::ffi::{
    ngx_resolve_addr, ngx_resolve_addr_done, ngx_resolve_name, ngx_resolve_name_done,
    ngx_resolve_start, ngx_resolver_ctx_t, ngx_resolver_t, ngx_str_t, NGX_LOG_INFO,
};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule, Request};
use ngx::ngx_log_error;

use super::{client, MainConf};
use crate::crawler::verified::{
    after_forward, by_published_ranges, read_and_mark, record_verification, Crawler, DnsAnswer,
    Step, Verification,
};

/// How long a verdict from DNS is kept.
const VERDICT_TTL_SECS: u64 = 86400;
/// How long an unanswered check waits before the address is checked again.
const RETRY_SECS: u64 = crate::crawler::verified::RETRY_SECS;

/// `NGX_NO_RESOLVER`: `ngx_resolve_start` when no `resolver` is configured.
const NO_RESOLVER: *mut ngx_resolver_ctx_t = usize::MAX as *mut ngx_resolver_ctx_t;
/// `NGX_RESOLVE_NXDOMAIN` and `NGX_RESOLVE_NOTIMP`-like "no such record" states.
const RESOLVE_FORMERR: isize = 1;
const RESOLVE_NXDOMAIN: isize = 3;

/// A check in progress; owned by the resolver context's `data` until its last handler.
struct Check {
    mcf: *const MainConf,
    addr: IpAddr,
    crawler: Crawler,
    key: [u8; 16],
    resolver: *mut ngx_resolver_t,
    timeout: ngx::ffi::ngx_msec_t,
    /// The socket address the PTR query is about (the resolver reads it while it works).
    sockaddr: socket2_storage::Storage,
}

/// What the module knows about the client's crawler claim, starting a DNS check when one is
/// due. `None` when the user agent claims no known crawler.
pub(crate) fn check(r: &Request, mcf: &MainConf, addr: IpAddr) -> Option<Verification> {
    let crawler = Crawler::claimed(client::user_agent(r))?;
    let clcf = NgxHttpCoreModule::location_conf(r)?;
    let resolver = clcf.resolver;
    // SAFETY: the core location configuration's resolver is null or a live resolver.
    let has_resolver = unsafe { resolver.as_ref() }.is_some_and(|r| r.connections.nelts > 0);
    let ranges = mcf
        .crawler_ranges
        .iter()
        .find(|(c, _)| *c == crawler)
        .map(|(_, set)| &**set);
    if let Some(verdict) = by_published_ranges(ranges, addr, has_resolver) {
        return Some(verdict);
    }
    let table = mcf.zone_state()?.crawlers.as_ref()?;
    let key = mcf.feed_key("crawler", addr);
    let now = client::now().secs;
    let (verdict, start) = table.with(client::holder(), |t| read_and_mark(t, &key, crawler, now));
    if start {
        let check = Box::new(Check {
            mcf,
            addr,
            crawler,
            key,
            resolver,
            timeout: clcf.resolver_timeout,
            sockaddr: socket2_storage::Storage::new(SocketAddr::new(addr, 0)),
        });
        if let Err(check) = start_reverse(check) {
            ngx_log_error!(
                NGX_LOG_INFO,
                r.log(),
                "captchaify: cannot check the {} crawler claim of {}: the resolver refused",
                crawler.name(),
                addr
            );
            finish(&check, Verification::Unknown);
        }
    }
    Some(verdict)
}

/// Starts the PTR query; gives the check back when the resolver refuses it.
fn start_reverse(check: Box<Check>) -> Result<(), Box<Check>> {
    // SAFETY: a live resolver; the context it returns is ours until `ngx_resolve_addr_done`.
    unsafe {
        let ctx = ngx_resolve_start(check.resolver, ptr::null_mut());
        if ctx.is_null() || ctx == NO_RESOLVER {
            return Err(check);
        }
        let check = Box::into_raw(check);
        (*ctx).addr.sockaddr = (*check).sockaddr.as_ptr();
        (*ctx).addr.socklen = (*check).sockaddr.len();
        (*ctx).handler = Some(reverse_done);
        (*ctx).data = check.cast();
        (*ctx).timeout = (*check).timeout;
        if ngx_resolve_addr(ctx) != 0 {
            // The resolver freed the context and will not call the handler.
            return Err(Box::from_raw(check));
        }
    }
    Ok(())
}

/// The PTR answer: a name in the operator's domain is resolved forward, anything else ends
/// the check.
unsafe extern "C" fn reverse_done(ctx: *mut ngx_resolver_ctx_t) {
    super::unwind::guarded(
        "a crawler's reverse lookup",
        || (),
        move || {
            // SAFETY: the context we started, whose data is our check.
            let (check, state, name) = unsafe {
                let check = Box::from_raw((*ctx).data.cast::<Check>());
                let name = String::from_utf8_lossy((*ctx).name.as_bytes()).into_owned();
                (check, (*ctx).state, name)
            };
            // SAFETY: done with the context (its name was copied above).
            unsafe { ngx_resolve_addr_done(ctx) };
            let names = [name];
            let answer = match state {
                0 => DnsAnswer::Found(&names[..]),
                RESOLVE_NXDOMAIN | RESOLVE_FORMERR => DnsAnswer::NotFound,
                _ => DnsAnswer::Failed,
            };
            match check.crawler.after_reverse(answer) {
                Step::Done(verdict) => finish(&check, verdict),
                Step::Forward(host) => {
                    let host = host.to_string();
                    if let Err(check) = start_forward(check, &host) {
                        finish(&check, Verification::Unknown);
                    }
                }
            }
        },
    )
}

fn start_forward(check: Box<Check>, host: &str) -> Result<(), Box<Check>> {
    // SAFETY: as in start_reverse; the name is copied into the context's own pool-less
    // memory by the resolver (ngx_resolve_name copies `ctx->name` into its node).
    unsafe {
        let ctx = ngx_resolve_start(check.resolver, ptr::null_mut());
        if ctx.is_null() || ctx == NO_RESOLVER {
            return Err(check);
        }
        let check = Box::into_raw(check);
        // The name must stay valid while the query is made: leak it into the check's
        // lifetime by storing it in a box the handler frees.
        let name = Box::leak(host.as_bytes().to_vec().into_boxed_slice());
        (*ctx).name = ngx_str_t {
            len: name.len(),
            data: name.as_mut_ptr(),
        };
        (*ctx).handler = Some(forward_done);
        (*ctx).data = check.cast();
        (*ctx).timeout = (*check).timeout;
        if ngx_resolve_name(ctx) != 0 {
            drop(Box::from_raw(ptr::slice_from_raw_parts_mut(
                name.as_mut_ptr(),
                name.len(),
            )));
            return Err(Box::from_raw(check));
        }
    }
    Ok(())
}

/// The A/AAAA answer: the name must lead back to the address.
unsafe extern "C" fn forward_done(ctx: *mut ngx_resolver_ctx_t) {
    super::unwind::guarded(
        "a crawler's forward lookup",
        || (),
        move || {
            // SAFETY: the context we started, whose data is our check; its addresses are valid until
            // ngx_resolve_name_done.
            let (check, verdict) = unsafe {
                let check = Box::from_raw((*ctx).data.cast::<Check>());
                let mut found = Vec::new();
                for i in 0..(*ctx).naddrs {
                    let a = &*(*ctx).addrs.add(i);
                    if let Some(addr) = client::socket_address(a.sockaddr, a.socklen) {
                        found.push(addr.ip());
                    }
                }
                let answer = match (*ctx).state {
                    0 => DnsAnswer::Found(&found[..]),
                    RESOLVE_NXDOMAIN | RESOLVE_FORMERR => DnsAnswer::NotFound,
                    _ => DnsAnswer::Failed,
                };
                let verdict = after_forward(check.addr, answer);
                let name = (*ctx).name;
                ngx_resolve_name_done(ctx);
                // The name we leaked in start_forward.
                drop(Box::from_raw(ptr::slice_from_raw_parts_mut(
                    name.data, name.len,
                )));
                (check, verdict)
            };
            finish(&check, verdict);
        },
    )
}

/// Records the verdict for every worker; an unanswered check is retried later.
fn finish(check: &Check, verdict: Verification) {
    // SAFETY: the configuration outlives the checks its worker started.
    let mcf = unsafe { &*check.mcf };
    let Some(table) = mcf.zone_state().and_then(|z| z.crawlers.as_ref()) else {
        return;
    };
    let now = client::now().secs;
    let ttl = match verdict {
        Verification::Unknown => RETRY_SECS,
        _ => VERDICT_TTL_SECS,
    };
    table.with(client::holder(), |t| {
        record_verification(t, &check.key, check.crawler, verdict, now, ttl)
    });
}

/// A socket address in C layout, for the resolver.
mod socket2_storage {
    use std::net::SocketAddr;

    pub struct Storage {
        storage: libc::sockaddr_storage,
        len: libc::socklen_t,
    }

    impl Storage {
        pub fn new(addr: SocketAddr) -> Storage {
            // SAFETY: all-zero is a valid sockaddr_storage.
            let mut storage: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
            let len = match addr {
                SocketAddr::V4(a) => {
                    // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
                    let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
                    sin.sin_family = libc::AF_INET as _;
                    sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                    core::mem::size_of::<libc::sockaddr_in>()
                }
                SocketAddr::V6(a) => {
                    // SAFETY: as above, for sockaddr_in6.
                    let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
                    sin6.sin6_family = libc::AF_INET6 as _;
                    sin6.sin6_addr.s6_addr = a.ip().octets();
                    core::mem::size_of::<libc::sockaddr_in6>()
                }
            };
            Storage {
                storage,
                len: len as _,
            }
        }

        pub fn as_ptr(&mut self) -> *mut ngx::ffi::sockaddr {
            (&mut self.storage as *mut libc::sockaddr_storage).cast()
        }

        pub fn len(&self) -> ngx::ffi::socklen_t {
            self.len as _
        }
    }
}
