//! What the reputation feeds said, as kept in the shared zone, and the rules that read and
//! write it. Free of nginx: the request path reads, the fetcher's event-loop side writes.
//!
//! Three tables, keyed by a keyed hash of the client address (IPv4 as IPv4-mapped IPv6):
//!
//! * **listed** (bulk lists, the Tor exits): one [`Listed`] per address, tagged with the
//!   generation of the list it came from. A refresh inserts the new list under the next
//!   generation, then publishes that generation; addresses of older generations are invisible
//!   at once and their slots are reused. A failed refresh publishes nothing: the last good
//!   list stays in force.
//! * **lookups** (per-address sources, ip-api and StopForumSpam): one [`Lookup`] per address
//!   holding each source's answer and until when it holds.
//! * **pending**: addresses waiting to be asked, a queue (entries are only inserted and
//!   popped, so the table's recency order is their arrival order).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::net::{IpAddr, Ipv6Addr};

use super::table::{Guard, Key, Record};
use crate::reputation::Source;

/// An address in a bulk list of the given generation.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listed {
    pub generation: u32,
    _reserved: u32,
}

// SAFETY: plain integers: valid for every bit pattern, no pointers.
unsafe impl Record for Listed {
    const KIND: u32 = u32::from_be_bytes(*b"LST1");
    const NAME: &'static str = "listed addresses";
}

/// One source's answer about an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Answer {
    /// Never asked, or the answer ran out.
    Unknown = 0,
    /// Queued for the fetcher; no answer yet.
    Asked = 1,
    Clean = 2,
    Suspicious = 3,
    /// The source could not answer; asked again after a while.
    Failed = 4,
}

impl Answer {
    fn from_u8(value: u8) -> Answer {
        match value {
            1 => Answer::Asked,
            2 => Answer::Clean,
            3 => Answer::Suspicious,
            4 => Answer::Failed,
            _ => Answer::Unknown,
        }
    }
}

/// What the per-address sources said about one address. Times are Unix seconds.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lookup {
    answers: [u8; 2],
    /// ISO country code from ip-api (two ASCII capitals), zero when unknown.
    pub country: [u8; 2],
    /// AS number from ip-api, zero when unknown.
    pub asn: u32,
    until: [u32; 2],
}

// SAFETY: plain integers: valid for every bit pattern, no pointers.
unsafe impl Record for Lookup {
    const KIND: u32 = u32::from_be_bytes(*b"LKP1");
    const NAME: &'static str = "lookups";
}

impl Lookup {
    /// Where a per-address source's answer is kept; `None` for the Tor list, which is not
    /// asked per address.
    fn index(source: Source) -> Option<usize> {
        match source {
            Source::Tor => None,
            Source::IpApi => Some(0),
            Source::StopForumSpam => Some(1),
        }
    }

    /// The source's answer as of `now_secs` (an answer past its time is unknown).
    pub fn answer(&self, source: Source, now_secs: u64) -> Answer {
        let Some(i) = Self::index(source) else {
            return Answer::Unknown;
        };
        if u64::from(self.until[i]) <= now_secs {
            return Answer::Unknown;
        }
        Answer::from_u8(self.answers[i])
    }

    pub fn set(&mut self, source: Source, answer: Answer, until_secs: u64) {
        let Some(i) = Self::index(source) else {
            return;
        };
        self.answers[i] = answer as u8;
        self.until[i] = u32::try_from(until_secs).unwrap_or(u32::MAX);
    }

    /// When the entry may be forgotten: when its last answer runs out.
    pub fn expires_ms(&self) -> u64 {
        u64::from(self.until[0].max(self.until[1])) * 1000
    }
}

/// An address waiting for the fetcher, and which sources to ask.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    /// The address, IPv4 as IPv4-mapped IPv6.
    pub addr: [u8; 16],
    pub sources: u8,
    _reserved: [u8; 7],
}

// SAFETY: plain bytes: valid for every bit pattern, no pointers.
unsafe impl Record for Pending {
    const KIND: u32 = u32::from_be_bytes(*b"PND1");
    const NAME: &'static str = "pending lookups";
}

impl Pending {
    pub fn new(addr: IpAddr, sources: u8) -> Pending {
        Pending {
            addr: address_bytes(addr),
            sources,
            _reserved: [0; 7],
        }
    }

    pub fn address(&self) -> IpAddr {
        address_from_bytes(self.addr)
    }

    pub fn asks(&self, source: Source) -> bool {
        self.sources & source.bit() != 0
    }
}

/// The address as the tables key it: IPv4 as IPv4-mapped IPv6.
pub fn address_bytes(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The address [`address_bytes`] made.
pub fn address_from_bytes(bytes: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

/// How long an address stays queued (and its answer `Asked`) before it is queued again.
pub const ASK_TIMEOUT_SECS: u64 = 600;

/// Reads what the per-address sources said about `key` and queues the sources in `wanted`
/// (bits of [`Source::bit`]) that have no live answer. Returns the entry as it now stands and
/// the bits to queue (zero when nothing is to be asked).
pub fn read_and_mark(
    t: &mut Guard<'_, Lookup>,
    key: &Key,
    now_secs: u64,
    wanted: u8,
) -> (Lookup, u8) {
    let now_ms = now_secs * 1000;
    t.update(key, now_ms, |current| {
        let mut entry = current.unwrap_or_default();
        let mut ask = 0;
        for source in Source::PER_ADDRESS {
            if wanted & source.bit() != 0 && entry.answer(source, now_secs) == Answer::Unknown {
                entry.set(source, Answer::Asked, now_secs + ASK_TIMEOUT_SECS);
                ask |= source.bit();
            }
        }
        let store = (ask != 0).then(|| (entry, entry.expires_ms()));
        (store, (entry, ask))
    })
}

/// Records a source's answer about `key`, keeping the other source's.
pub fn record_answer(
    t: &mut Guard<'_, Lookup>,
    key: &Key,
    now_secs: u64,
    source: Source,
    answer: Answer,
    until_secs: u64,
    geo: Option<([u8; 2], u32)>,
) {
    t.update(key, now_secs * 1000, |current| {
        let mut entry = current.unwrap_or_default();
        entry.set(source, answer, until_secs);
        if let Some((country, asn)) = geo {
            entry.country = country;
            entry.asn = asn;
        }
        (Some((entry, entry.expires_ms())), ())
    });
}

/// The state of one bulk feed, in the zone header: plain atomics, written by the fetcher's
/// event loop, read by every request.
#[repr(C)]
#[derive(Debug, Default)]
pub struct FeedStatus {
    /// The generation in force; zero while no list was ever loaded.
    pub generation: AtomicU32,
    /// Addresses in the list in force.
    pub count: AtomicU32,
    /// When the list in force was fetched (Unix seconds).
    pub fetched_at: AtomicU64,
}

impl FeedStatus {
    /// Whether `entry` belongs to the list in force.
    pub fn lists(&self, entry: Option<&Listed>) -> bool {
        let current = self.generation.load(Ordering::Acquire);
        current != 0 && entry.is_some_and(|e| e.generation == current)
    }

    /// The generation a new list is written under, before it is published.
    pub fn next_generation(&self) -> u32 {
        match self.generation.load(Ordering::Acquire).wrapping_add(1) {
            0 => 1,
            next => next,
        }
    }

    pub fn publish(&self, generation: u32, count: u32, fetched_at: u64) {
        self.count.store(count, Ordering::Relaxed);
        self.fetched_at.store(fetched_at, Ordering::Relaxed);
        self.generation.store(generation, Ordering::Release);
    }

    pub fn entry(generation: u32) -> Listed {
        Listed {
            generation,
            _reserved: 0,
        }
    }
}

/// When a per-address source was last asked (Unix milliseconds), kept in the zone header so
/// that a new generation of workers after a reload goes on within the source's rate instead
/// of starting a fresh window (ip-api bans clients that keep going over it).
#[repr(C)]
pub struct SendLog {
    next: AtomicU32,
    _reserved: u32,
    at: [AtomicU64; SendLog::LEN],
}

impl Default for SendLog {
    fn default() -> Self {
        SendLog {
            next: AtomicU32::new(0),
            _reserved: 0,
            at: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl SendLog {
    /// More than any source's requests per minute that the module uses by default.
    pub const LEN: usize = 64;

    pub fn record(&self, at_ms: u64) {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) as usize % Self::LEN;
        if let Some(cell) = self.at.get(slot) {
            cell.store(at_ms, Ordering::Relaxed);
        }
    }

    /// The sends within `window_ms` before `now_ms`, oldest first.
    pub fn recent(&self, now_ms: u64, window_ms: u64) -> Vec<u64> {
        let mut times: Vec<u64> = self
            .at
            .iter()
            .map(|cell| cell.load(Ordering::Relaxed))
            .filter(|&at| at != 0 && at <= now_ms && now_ms - at < window_ms)
            .collect();
        times.sort_unstable();
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_logs_keep_the_last_minute() {
        let log = SendLog::default();
        assert!(log.recent(100_000, 60_000).is_empty());
        for at in [10_000, 50_000, 70_000, 99_000] {
            log.record(at);
        }
        assert_eq!(log.recent(100_000, 60_000), [50_000, 70_000, 99_000]);
        // A full ring keeps the newest LEN.
        for i in 0..200u64 {
            log.record(200_000 + i);
        }
        let recent = log.recent(300_000, 200_000);
        assert_eq!(recent.len(), SendLog::LEN);
        assert_eq!(recent.first(), Some(&(200_000 + 200 - SendLog::LEN as u64)));
        // Times in the future (a clock step back) are not counted.
        assert!(log.recent(1000, 60_000).is_empty());
    }

    use crate::state::table::test_table as table;

    #[test]
    fn first_sight_queues_each_wanted_source_once() {
        let (_buf, t) = table::<Lookup>(64);
        let key = [7; 16];
        let both = Source::IpApi.bit() | Source::StopForumSpam.bit();
        t.with(crate::state::holder::Holder::immortal(1), |g| {
            let (entry, ask) = read_and_mark(g, &key, 1000, both);
            assert_eq!(ask, both);
            assert_eq!(entry.answer(Source::IpApi, 1000), Answer::Asked);
            // Asked already: not queued again until the ask times out.
            assert_eq!(read_and_mark(g, &key, 1001, both).1, 0);
            assert_eq!(
                read_and_mark(g, &key, 1000 + ASK_TIMEOUT_SECS, both).1,
                both
            );
        });
    }

    #[test]
    fn answers_hold_until_their_time_and_keep_each_other() {
        let (_buf, t) = table::<Lookup>(64);
        let key = [9; 16];
        t.with(crate::state::holder::Holder::immortal(1), |g| {
            read_and_mark(g, &key, 0, Source::IpApi.bit());
            record_answer(
                g,
                &key,
                5,
                Source::IpApi,
                Answer::Suspicious,
                100,
                Some((*b"DE", 3320)),
            );
            record_answer(g, &key, 6, Source::StopForumSpam, Answer::Clean, 50, None);
            let (entry, ask) = read_and_mark(
                g,
                &key,
                10,
                Source::IpApi.bit() | Source::StopForumSpam.bit(),
            );
            assert_eq!(ask, 0);
            assert_eq!(entry.answer(Source::IpApi, 10), Answer::Suspicious);
            assert_eq!(entry.answer(Source::StopForumSpam, 10), Answer::Clean);
            assert_eq!((&entry.country, entry.asn), (b"DE", 3320));
            // StopForumSpam's answer runs out first and is asked again; ip-api's holds.
            let (entry, ask) = read_and_mark(
                g,
                &key,
                60,
                Source::IpApi.bit() | Source::StopForumSpam.bit(),
            );
            assert_eq!(ask, Source::StopForumSpam.bit());
            assert_eq!(entry.answer(Source::IpApi, 60), Answer::Suspicious);
            // A source not wanted here is not asked.
            assert_eq!(read_and_mark(g, &key, 200, 0).1, 0);
        });
    }

    #[test]
    fn generations_replace_lists_at_once() {
        let status = FeedStatus::default();
        let (_buf, t) = table::<Listed>(64);
        let now = 1;
        assert!(!status.lists(None));
        let g1 = status.next_generation();
        t.with(crate::state::holder::Holder::immortal(1), |g| {
            g.insert(&[1; 16], now, u64::MAX, FeedStatus::entry(g1))
        });
        // Not in force before it is published.
        assert!(
            !t.with(crate::state::holder::Holder::immortal(1), |g| status
                .lists(g.get(&[1; 16], now).as_deref()))
        );
        status.publish(g1, 1, 100);
        assert!(t.with(crate::state::holder::Holder::immortal(1), |g| status
            .lists(g.get(&[1; 16], now).as_deref())));
        let g2 = status.next_generation();
        t.with(crate::state::holder::Holder::immortal(1), |g| {
            g.insert(&[2; 16], now, u64::MAX, FeedStatus::entry(g2))
        });
        status.publish(g2, 1, 200);
        assert!(
            !t.with(crate::state::holder::Holder::immortal(1), |g| status
                .lists(g.get(&[1; 16], now).as_deref()))
        );
        assert!(t.with(crate::state::holder::Holder::immortal(1), |g| status
            .lists(g.get(&[2; 16], now).as_deref())));
        assert_eq!(status.fetched_at.load(Ordering::Relaxed), 200);
    }

    #[test]
    fn pending_addresses_round_trip() {
        for addr in ["192.0.2.7", "2001:db8::1", "::ffff:10.0.0.1"] {
            let ip: IpAddr = addr.parse().unwrap();
            let p = Pending::new(ip, Source::IpApi.bit() | Source::StopForumSpam.bit());
            let back = p.address();
            let expected = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            };
            assert_eq!(back, expected);
            assert!(p.asks(Source::IpApi) && p.asks(Source::StopForumSpam));
        }
    }
}

/// A page's crawler hints (see `crawler::hints`), encoded.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HintsRecord {
    pub bytes: [u8; crate::crawler::hints::HINTS_BYTES],
}

// SAFETY: plain bytes: valid for every bit pattern (decoding checks them), no pointers.
unsafe impl Record for HintsRecord {
    const KIND: u32 = u32::from_be_bytes(*b"HNT1");
    const NAME: &'static str = "crawler hints";
}

/// The longest host and URI a hints fetch is made for.
pub const HINT_HOST_MAX: usize = 255;
pub const HINT_URI_MAX: usize = 1024;

/// A page to fetch crawler hints from: this server's own address (as the client reached it),
/// the `Host` and the URI.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HintJob {
    addr: [u8; 16],
    port: u16,
    host_len: u16,
    uri_len: u16,
    tls: u8,
    _reserved: u8,
    host: [u8; HINT_HOST_MAX + 1],
    uri: [u8; HINT_URI_MAX],
}

// SAFETY: plain bytes and integers: valid for every bit pattern (lengths are clamped when
// read), no pointers.
unsafe impl Record for HintJob {
    const KIND: u32 = u32::from_be_bytes(*b"HJB1");
    const NAME: &'static str = "crawler hint fetches";
}

impl HintJob {
    /// `None` when the host or URI is too long to keep, or when there is no host: a request
    /// without `Host` (HTTP/1.0 or 0.9) cannot be asked again as it was. The fetch's token is
    /// bound to the host, and a fetch without one would reach nginx under the server's
    /// address instead, so its token would never match (a doomed fetch and a warning).
    pub fn new(
        server: std::net::SocketAddr,
        tls: bool,
        host: &[u8],
        uri: &[u8],
    ) -> Option<HintJob> {
        if host.is_empty() || host.len() > HINT_HOST_MAX || uri.len() > HINT_URI_MAX {
            return None;
        }
        let mut job = HintJob {
            addr: address_bytes(server.ip()),
            port: server.port(),
            host_len: host.len() as u16,
            uri_len: uri.len() as u16,
            tls: u8::from(tls),
            _reserved: 0,
            host: [0; HINT_HOST_MAX + 1],
            uri: [0; HINT_URI_MAX],
        };
        job.host[..host.len()].copy_from_slice(host);
        job.uri[..uri.len()].copy_from_slice(uri);
        Some(job)
    }

    pub fn server(&self) -> std::net::SocketAddr {
        let v6 = Ipv6Addr::from(self.addr);
        let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
        std::net::SocketAddr::new(ip, self.port)
    }

    pub fn tls(&self) -> bool {
        self.tls != 0
    }

    pub fn host(&self) -> &[u8] {
        &self.host[..usize::from(self.host_len).min(HINT_HOST_MAX)]
    }

    pub fn uri(&self) -> &[u8] {
        &self.uri[..usize::from(self.uri_len).min(HINT_URI_MAX)]
    }
}

#[cfg(test)]
mod hint_tests {
    use super::*;

    #[test]
    fn hint_jobs_round_trip_and_refuse_what_does_not_fit() {
        let server: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let job = HintJob::new(server, false, b"example.org", b"/blog/post?id=7").unwrap();
        assert_eq!(
            (job.server(), job.tls(), job.host(), job.uri()),
            (server, false, &b"example.org"[..], &b"/blog/post?id=7"[..])
        );
        let v6: std::net::SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        assert_eq!(HintJob::new(v6, true, b"h", b"/").unwrap().server(), v6);
        assert!(HintJob::new(server, false, &[b'a'; 256], b"/").is_none());
        assert!(HintJob::new(server, false, b"h", &[b'/'; 1025]).is_none());
        // No Host, no job: the fetch could not be asked under the host its token names.
        assert!(HintJob::new(server, false, b"", b"/").is_none());
        // Lengths scribbled over are clamped, never read past the arrays.
        let mut broken = job;
        broken.host_len = u16::MAX;
        broken.uri_len = u16::MAX;
        assert_eq!(
            (broken.host().len(), broken.uri().len()),
            (HINT_HOST_MAX, HINT_URI_MAX)
        );
    }
}
