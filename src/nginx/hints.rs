//! Crawler hints (`captchaify_crawler_hints`): a search-engine crawler that meets the captcha
//! sees the real page's title, description and OpenGraph tags on it, so that the page is not
//! indexed as "Please solve the captcha".
//!
//! The hints come from the protected page itself. The first time a crawler meets the captcha
//! on a URL, the URL is queued in the shared zone; the fetcher in worker 0 asks this very
//! server for the page over the address and port the crawler reached (with the crawler's
//! `Host`), carrying a short-lived HMAC token in `X-Captchaify-Hints` that lets exactly that
//! request through; it reads the page's head and keeps the hints in the zone for an hour, for
//! every worker. Until then crawlers get the plain captcha page. Nothing waits.

use std::net::{IpAddr, SocketAddr};

use ngx::http::Request;

use super::{client, MainConf};
use crate::crawler::hints::{decode, Hints};
use crate::state::reputation::HintJob;

/// The header the fetcher's own requests carry.
pub(crate) const HEADER: &str = "X-Captchaify-Hints";
/// How long a fetch token is good for.
pub(crate) const TOKEN_SECS: u64 = 60;
/// How long hints are kept; a page without any is asked again after [`EMPTY_TTL_SECS`].
pub(crate) const TTL_SECS: u64 = 3600;
pub(crate) const EMPTY_TTL_SECS: u64 = 600;
/// How long a queued page waits for the fetcher before it may be queued again.
const QUEUE_SECS: u64 = 60;

/// The fetcher's `User-Agent`: only requests that claim it are looked at for a token (a
/// look at nginx's parsed `User-Agent` costs nothing; a scan of every header would).
pub(crate) const USER_AGENT: &str = concat!("captchaify-hints/", env!("CARGO_PKG_VERSION"));

/// Whether this request is the fetcher's own, with a valid token for its host and URI.
pub(crate) fn is_own_fetch(r: &Request, mcf: &MainConf) -> bool {
    if !client::user_agent(r).starts_with(b"captchaify-hints/") {
        return false;
    }
    let Some(token) = r
        .headers_in_iterator()
        .find(|(key, _)| key.as_bytes().eq_ignore_ascii_case(HEADER.as_bytes()))
        .map(|(_, value)| value.as_bytes())
    else {
        return false;
    };
    let Some(secrets) = mcf.secrets() else {
        return false;
    };
    secrets.check_hints_token(
        token,
        host(r),
        r.unparsed_uri().as_bytes(),
        client::now().secs,
    )
}

fn host(r: &Request) -> &[u8] {
    // SAFETY: `headers_in.server` is an nginx string of the live request (possibly empty).
    let server = r.as_ref().headers_in.server;
    if server.len == 0 {
        &[][..]
    } else {
        // SAFETY: as above.
        unsafe { core::slice::from_raw_parts(server.data, server.len) }
    }
}

/// The key of a page in the hints table.
pub(crate) fn key(mcf: &MainConf, host: &[u8], uri: &[u8]) -> [u8; 16] {
    mcf.feed_secrets()
        .map_or([0; 16], |s| s.table_key("hints", &[host, uri]))
}

/// The hints of the requested page, when the fetcher has them; otherwise the page is queued
/// for the fetcher (once) and `None` is returned.
pub(crate) fn for_request(r: &Request, mcf: &MainConf) -> Option<Hints> {
    let zone = mcf.zone_state()?;
    let (table, jobs) = (zone.hints.as_ref()?, zone.hint_jobs.as_ref()?);
    let (host, uri) = (host(r), r.unparsed_uri().as_bytes());
    let key = key(mcf, host, uri);
    let now = client::now();
    let holder = client::holder();
    if let Some(record) = table.with(holder, |t| t.get(&key, now.millis).copied()) {
        return decode(&record.bytes).filter(|h| !h.is_empty());
    }
    let job = HintJob::new(local_address(r)?, client::is_https(r), host, uri)?;
    jobs.with(holder, |t| {
        t.insert_if_absent(&key, now.millis, now.millis + QUEUE_SECS * 1000, job)
    });
    None
}

/// The address and port the client reached this server on.
fn local_address(r: &Request) -> Option<SocketAddr> {
    let connection = r.connection();
    // SAFETY: the connection of a live request; nginx fills in the local address of a
    // wildcard listener on demand, into the connection's pool.
    unsafe {
        if ngx::ffi::ngx_connection_local_sockaddr(connection, core::ptr::null_mut(), 0) != 0 {
            return None;
        }
        let local =
            client::socket_address((*connection).local_sockaddr, (*connection).local_socklen)?;
        // A dual-stack listener reached over IPv4 is asked over IPv4.
        let ip = match local.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(local.ip(), IpAddr::V4),
            v4 => v4,
        };
        Some(SocketAddr::new(ip, local.port()))
    }
}
