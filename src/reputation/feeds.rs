//! What the third-party reputation sources answer, read into plain values: the Tor exit list,
//! ip-api.com and StopForumSpam. No network and no nginx here: the exchanges in `fetch` make
//! the requests and hand the bodies to these functions.
//!
//! Every parser is total: any bytes give a value or a [`FeedError`], never a panic, and a body
//! over its size limit ([`TOR_MAX_BYTES`], [`JSON_MAX_BYTES`]) is refused without being
//! parsed. The fetcher should read at most limit + 1 bytes, so that an oversized body is
//! reported rather than silently cut. An error means "keep what you had": an empty or foreign answer
//! (an HTML error page served with 200, a captive portal) must never wipe a good list.
//!
//! The formats, as their publishers describe them:
//! - Tor: `https://check.torproject.org/torbulkexitlist`, one address per line; and the
//!   TorDNSEL list (`https://check.torproject.org/exit-addresses`), blocks of `ExitNode`,
//!   `Published`, `LastStatus` and one or more `ExitAddress ADDR DATE TIME` lines (torproject
//!   `tordnsel/exitlist-spec.txt`; CollecTor's archived copies add `@type` and `Downloaded`).
//! - ip-api.com: `http://ip-api.com/json/{query}?fields=…` (ip-api.com/docs/api:json);
//!   `status` is `success` or `fail`, and a `fail` carries `message`: `private range`,
//!   `reserved range` or `invalid query`. The free endpoint allows 45 requests a minute from
//!   one address; `X-Rl` says how many are left and `X-Ttl` how many seconds until the window
//!   resets, and a client must not send while `X-Rl` is 0 (ip-api.com/docs/unban). See
//!   [`Pacer`].
//! - StopForumSpam: `https://api.stopforumspam.org/api?json&ip=…`; up to 15 values per query
//!   as an array (`ip[]=…`), answered as an array of results that each echo the queried
//!   `value` (stopforumspam.com/usage). A single query answers one object.

use std::collections::VecDeque;
use std::net::IpAddr;

use serde_json::{Map, Value};
use thiserror::Error;

/// The largest Tor list accepted: far above the real ones (a few thousand addresses, tens of
/// KiB for the bulk list and some hundreds for TorDNSEL's).
pub const TOR_MAX_BYTES: usize = 16 << 20;

/// The largest JSON answer accepted. ip-api answers about 100 bytes, StopForumSpam a few
/// hundred for 15 addresses.
pub const JSON_MAX_BYTES: usize = 64 << 10;

/// How many addresses StopForumSpam answers in one query.
pub const SFS_MAX_BATCH: usize = 15;

/// The free ip-api.com endpoint's limit per source address.
pub const IPAPI_FREE_PER_MINUTE: u32 = 45;

/// How much of an untrusted text an error message repeats.
const EXCERPT_CHARS: usize = 80;

/// Why an answer was not used. The messages go to the error log as they are.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FeedError {
    #[error("empty list")]
    EmptyList,
    #[error("answer too large: over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("not a Tor exit list: line {line}: {text}")]
    NotTorList { line: usize, text: String },
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("ip-api answered \"fail\": {0}")]
    IpApiFail(String),
    #[error("unexpected ip-api answer: {0}")]
    IpApi(String),
    #[error("StopForumSpam answered an error: {0}")]
    SfsFail(String),
    #[error("unexpected StopForumSpam answer: {0}")]
    Sfs(String),
}

// ---------------------------------------------------------------------------------------------
// Tor

/// The exit addresses of a Tor list, sorted and without duplicates, and how many lines were
/// not understood (worth a warning, not a refusal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorList {
    pub addrs: Vec<IpAddr>,
    pub skipped: usize,
}

/// Reads the bulk exit list or the TorDNSEL list (either, or a mix).
///
/// Blank lines and `#` comments are ignored, CRLF and surrounding spaces are tolerated, and
/// IPv4-mapped IPv6 addresses become IPv4. A line is either an address, a TorDNSEL keyword
/// line, or garbage. Garbage lines are skipped and counted while they are a minority; when
/// they outnumber the good lines, or no address is left, the body is not a Tor list at all
/// and the error names the first garbage line. A body with no address and no garbage (empty,
/// only comments, TorDNSEL blocks without `ExitAddress`) is [`FeedError::EmptyList`].
pub fn parse_tor_exits(body: &[u8]) -> Result<TorList, FeedError> {
    if body.len() > TOR_MAX_BYTES {
        return Err(FeedError::TooLarge {
            limit: TOR_MAX_BYTES,
        });
    }
    let body = strip_bom(body);
    let mut addrs = Vec::new();
    let mut good = 0usize;
    let mut skipped = 0usize;
    let mut first_bad: Option<(usize, &[u8])> = None;
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = raw.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        match tor_line(line) {
            TorLine::Exit(addr) => {
                addrs.push(addr.to_canonical());
                good += 1;
            }
            TorLine::Keyword => good += 1,
            TorLine::Garbage => {
                skipped += 1;
                first_bad.get_or_insert((index + 1, line));
            }
        }
    }
    if let Some((line, text)) = first_bad {
        if skipped > good || addrs.is_empty() {
            return Err(FeedError::NotTorList {
                line,
                text: excerpt(text),
            });
        }
    }
    if addrs.is_empty() {
        return Err(FeedError::EmptyList);
    }
    addrs.sort_unstable();
    addrs.dedup();
    Ok(TorList { addrs, skipped })
}

enum TorLine {
    Exit(IpAddr),
    /// A TorDNSEL line that carries no address.
    Keyword,
    Garbage,
}

fn tor_line(line: &[u8]) -> TorLine {
    let Ok(text) = std::str::from_utf8(line) else {
        return TorLine::Garbage;
    };
    let mut words = text.split_ascii_whitespace();
    let Some(first) = words.next() else {
        return TorLine::Garbage;
    };
    let exit = |word: Option<&str>| {
        word.and_then(parse_addr)
            .map_or(TorLine::Garbage, TorLine::Exit)
    };
    match first {
        "ExitAddress" => exit(words.next()),
        "ExitNode" | "Published" | "LastStatus" | "@type" | "Downloaded" => TorLine::Keyword,
        _ if words.next().is_none() => exit(Some(first)),
        _ => TorLine::Garbage,
    }
}

/// An address, bare or in brackets as IPv6 is sometimes written.
fn parse_addr(word: &str) -> Option<IpAddr> {
    let word = word
        .strip_prefix('[')
        .and_then(|w| w.strip_suffix(']'))
        .unwrap_or(word);
    word.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// ip-api.com

/// The fields asked of ip-api: just what [`IpApiAnswer`] holds, plus the status.
const IPAPI_FIELDS: &str = "status,message,countryCode,as,proxy,hosting";

/// What ip-api knows of an address. All false and `None` when it knows nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpApiAnswer {
    /// A proxy, VPN or Tor exit.
    pub proxy: bool,
    /// A hosting provider or data centre.
    pub hosting: bool,
    /// ISO 3166-1 alpha-2, uppercase.
    pub country: Option<[u8; 2]>,
    pub asn: Option<u32>,
}

/// The query for one address, e.g. `http://ip-api.com/json/192.0.2.1?fields=status,…`.
/// `base` is the endpoint up to the address (`http://ip-api.com/json/`); a missing final `/`
/// is added.
pub fn ipapi_url(base: &str, addr: IpAddr) -> String {
    let slash = if base.ends_with('/') { "" } else { "/" };
    format!("{base}{slash}{}?fields={IPAPI_FIELDS}", addr.to_canonical())
}

/// Reads an ip-api answer (the body of a 200; a 429 is for [`Pacer::throttled`]).
///
/// `fail` with `private range` or `reserved range` means "nothing known" and gives the
/// default answer; any other `fail` is an error. An answer without `status` is refused (it
/// was asked for, so it is not ip-api). Missing or null fields are false or `None`; a field
/// of the wrong type is an error; a country code that is not two letters, or an `as` that
/// does not start with `AS` and a number, is `None`.
pub fn parse_ipapi(body: &[u8]) -> Result<IpApiAnswer, FeedError> {
    let answer = json_object(body)?;
    let wrong = |what: String| FeedError::IpApi(what);
    match field(&answer, "status") {
        Some(Value::String(s)) if s == "success" => {}
        Some(Value::String(s)) if s == "fail" => {
            let message = match field(&answer, "message") {
                Some(Value::String(m)) => m.trim(),
                _ => "",
            };
            return match message {
                "private range" | "reserved range" => Ok(IpApiAnswer::default()),
                "" => Err(FeedError::IpApiFail("no message".into())),
                other => Err(FeedError::IpApiFail(excerpt(other.as_bytes()))),
            };
        }
        Some(other) => return Err(wrong(format!("status {}", excerpt_json(other)))),
        None => return Err(wrong("no \"status\"".into())),
    }
    let flag = |name: &str| match field(&answer, name) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(wrong(format!("\"{name}\" is {}", excerpt_json(other)))),
    };
    let text = |name: &str| match field(&answer, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(wrong(format!("\"{name}\" is {}", excerpt_json(other)))),
    };
    Ok(IpApiAnswer {
        proxy: flag("proxy")?,
        hosting: flag("hosting")?,
        country: text("countryCode")?.and_then(country_code),
        asn: text("as")?.and_then(asn_number),
    })
}

fn country_code(code: &str) -> Option<[u8; 2]> {
    match *code.trim().as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

/// `AS3320 Deutsche Telekom AG` → 3320. AS 0 is reserved, so it means unknown.
fn asn_number(text: &str) -> Option<u32> {
    let rest = text.trim_start().strip_prefix("AS")?;
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok().filter(|&n| n != 0)
}

/// Paces the requests to a source with a per-minute limit, such as ip-api's free endpoint.
///
/// Time is passed in as milliseconds from a monotonic clock. Whatever the server says, the
/// pacer never lets more than `per_minute` requests go in any 60-second window (it keeps the
/// time of the last `per_minute` requests); the server can only slow it down further: `X-Rl`
/// and `X-Ttl` cap what is left of its current window, `X-Rl: 0` and a 429 stop all requests
/// for `X-Ttl` seconds (a minute when it is missing, an hour at most).
#[derive(Debug, Clone)]
pub struct Pacer {
    per_minute: u32,
    /// When the last `per_minute` requests went, oldest first.
    sent: VecDeque<u64>,
    /// No request before this (the server said 0 left, or 429).
    paused_until: u64,
    /// What the server says is left of its window, and when that window ends.
    server_left: Option<(u32, u64)>,
}

impl Pacer {
    const WINDOW_MS: u64 = 60_000;
    /// The longest pause a server can impose through `X-Ttl`: it resets each minute, so a
    /// larger value is a fault, not a reason to stop for days.
    const MAX_PAUSE_S: u32 = 3600;

    /// A pacer that lets `per_minute` requests go per minute; 0 lets none go.
    pub fn new(per_minute: u32) -> Pacer {
        Pacer {
            per_minute,
            sent: VecDeque::new(),
            paused_until: 0,
            server_left: None,
        }
    }

    /// How long to wait before the next request; 0 when it may go now.
    pub fn wait_ms(&self, now_ms: u64) -> u64 {
        if self.per_minute == 0 {
            return u64::MAX;
        }
        let own = if self.sent.len() >= self.per_minute as usize {
            // The oldest of the last `per_minute` requests must leave the window first.
            let oldest = self.sent.front().copied().unwrap_or(0);
            oldest
                .saturating_add(Self::WINDOW_MS)
                .saturating_sub(now_ms)
                .min(Self::WINDOW_MS)
        } else {
            0
        };
        let server = match self.server_left {
            Some((0, until)) => until.saturating_sub(now_ms),
            _ => 0,
        };
        own.max(server)
            .max(self.paused_until.saturating_sub(now_ms))
    }

    /// A request went at `now_ms`.
    pub fn sent(&mut self, now_ms: u64) {
        if self.per_minute == 0 {
            return;
        }
        self.sent.push_back(now_ms);
        while self.sent.len() > self.per_minute as usize {
            self.sent.pop_front();
        }
        self.server_left = match self.server_left {
            Some((left, until)) if now_ms < until => Some((left.saturating_sub(1), until)),
            _ => None,
        };
    }

    /// The rate-limit headers of an answer: `X-Rl` (requests left) and `X-Ttl` (seconds until
    /// the window resets), when present and numeric.
    pub fn observed(&mut self, now_ms: u64, rl: Option<u32>, ttl: Option<u32>) {
        match (rl, ttl) {
            (Some(0), ttl) => self.pause(now_ms, ttl),
            (Some(left), Some(ttl)) => {
                let until = now_ms.saturating_add(u64::from(ttl.min(Self::MAX_PAUSE_S)) * 1000);
                self.server_left = Some((left, until));
            }
            _ => {}
        }
    }

    /// The server answered 429 (too many requests), with `X-Ttl` when it gave one.
    pub fn throttled(&mut self, now_ms: u64, ttl: Option<u32>) {
        self.pause(now_ms, ttl);
    }

    fn pause(&mut self, now_ms: u64, ttl: Option<u32>) {
        let seconds = ttl.unwrap_or(60).clamp(1, Self::MAX_PAUSE_S);
        let until = now_ms.saturating_add(u64::from(seconds) * 1000);
        self.paused_until = self.paused_until.max(until);
        self.server_left = None;
    }
}

// ---------------------------------------------------------------------------------------------
// StopForumSpam

/// What StopForumSpam knows of one address.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SfsAnswer {
    pub addr: IpAddr,
    pub appears: bool,
    /// How many times it was reported (255 for addresses on their blacklists).
    pub frequency: u32,
    /// 0 to 100, when the address appears.
    pub confidence: Option<f32>,
}

/// The query for up to [`SFS_MAX_BATCH`] addresses (the rest are left out: split larger sets
/// with `chunks(SFS_MAX_BATCH)`). One address uses `ip=`, several the array form `ip[]=`
/// (brackets percent-encoded, as PHP's `http_build_query` writes them). `confidence` asks
/// for the confidence score.
pub fn sfs_url(base: &str, addrs: &[IpAddr]) -> String {
    let joiner = match base.rfind('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    let key = if addrs.len() == 1 { "ip" } else { "ip%5B%5D" };
    let mut url = format!("{base}{joiner}json&confidence");
    for addr in addrs.iter().take(SFS_MAX_BATCH) {
        url.push_str(&format!("&{key}={}", addr.to_canonical()));
    }
    url
}

/// Reads a StopForumSpam answer: `"ip"` as one object or as an array, in the order given.
/// The caller matches answers to its questions by `addr`; an address it asked about and
/// finds no answer for is simply unknown.
///
/// `success` 0 (or false) is an error carrying the server's `error`. Each result must echo
/// its address in `value` (current answers do in both forms; a result without it cannot be
/// attributed and is an error). `appears` may be a number or a boolean; a missing
/// `frequency` is 0, a missing `confidence` is `None`, and a confidence outside 0 to 100 is
/// clamped.
pub fn parse_sfs(body: &[u8]) -> Result<Vec<SfsAnswer>, FeedError> {
    let answer = json_object(body)?;
    let wrong = |what: String| FeedError::Sfs(what);
    let success = match field(&answer, "success") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(other) => return Err(wrong(format!("\"success\" is {}", excerpt_json(other)))),
        None if field(&answer, "error").is_some() => false,
        None => return Err(wrong("no \"success\"".into())),
    };
    if !success {
        let message = match field(&answer, "error") {
            Some(Value::String(m)) if !m.trim().is_empty() => excerpt(m.trim().as_bytes()),
            _ => "no message".into(),
        };
        return Err(FeedError::SfsFail(message));
    }
    let results = match field(&answer, "ip") {
        Some(Value::Object(one)) => vec![one],
        Some(Value::Array(many)) => many
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.as_object()
                    .ok_or_else(|| wrong(format!("ip result {} is {}", i + 1, excerpt_json(r))))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(wrong(format!("\"ip\" is {}", excerpt_json(other)))),
        None => return Err(wrong("no \"ip\" results".into())),
    };
    results
        .into_iter()
        .enumerate()
        .map(|(i, result)| sfs_result(i + 1, result))
        .collect()
}

fn sfs_result(number: usize, result: &Map<String, Value>) -> Result<SfsAnswer, FeedError> {
    let wrong = |what: String| FeedError::Sfs(format!("ip result {number}: {what}"));
    let addr = match field(result, "value") {
        Some(Value::String(s)) => parse_addr(s.trim()).ok_or_else(|| {
            wrong(format!(
                "\"value\" \"{}\" is not an address",
                excerpt(s.as_bytes())
            ))
        })?,
        Some(other) => return Err(wrong(format!("\"value\" is {}", excerpt_json(other)))),
        None => return Err(wrong("no \"value\"".into())),
    };
    let appears = match field(result, "appears") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(other) => return Err(wrong(format!("\"appears\" is {}", excerpt_json(other)))),
    };
    let frequency = match field(result, "frequency") {
        None => 0,
        Some(other) => count(other)
            .ok_or_else(|| wrong(format!("\"frequency\" is {}", excerpt_json(other))))?,
    };
    let confidence = match field(result, "confidence") {
        None => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok().filter(|c| c.is_finite()),
        Some(other) => return Err(wrong(format!("\"confidence\" is {}", excerpt_json(other)))),
    }
    .map(|c| c.clamp(0.0, 100.0) as f32);
    Ok(SfsAnswer {
        addr: addr.to_canonical(),
        appears,
        frequency,
        confidence,
    })
}

/// A whole number, as a number or a string of digits; beyond `u32` it saturates.
fn count(value: &Value) -> Option<u32> {
    let n = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    Some(u32::try_from(n).unwrap_or(u32::MAX))
}

// ---------------------------------------------------------------------------------------------
// Shared

/// A JSON object within [`JSON_MAX_BYTES`]. serde_json refuses nesting deeper than 128, so a
/// hostile body cannot exhaust the stack either.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, FeedError> {
    if body.len() > JSON_MAX_BYTES {
        return Err(FeedError::TooLarge {
            limit: JSON_MAX_BYTES,
        });
    }
    let body = strip_bom(body).trim_ascii();
    if body.is_empty() {
        return Err(FeedError::NotJson("empty answer".into()));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(FeedError::NotJson(format!(
            "expected an object, found {}",
            excerpt_json(&other)
        ))),
        Err(e) => Err(FeedError::NotJson(format!(
            "{e}; the answer starts \"{}\"",
            excerpt(body)
        ))),
    }
}

/// A field, with `null` read as absent.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|v| !v.is_null())
}

fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// The start of an untrusted text, safe to log: control characters escaped, at most
/// [`EXCERPT_CHARS`] characters.
fn excerpt(bytes: &[u8]) -> String {
    // No more than the characters shown can take (4 bytes each), plus one to tell a cut.
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT_CHARS * 4 + 1)]);
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON value as an error message shows it.
fn excerpt_json(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{}\"", excerpt(s.as_bytes())),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        other => excerpt(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rand::{Rng, SeedableRng};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn ips(texts: &[&str]) -> Vec<IpAddr> {
        texts.iter().map(|t| ip(t)).collect()
    }

    /// The fake server's answers (t/lib/fake_feeds.py --write-fixtures).
    mod fixture {
        macro_rules! fixture {
            ($name:ident, $file:literal) => {
                pub const $name: &[u8] =
                    include_bytes!(concat!("../../t/lib/fixtures/feeds/", $file));
            };
        }
        fixture!(TOR_BULK, "tor-bulk.txt");
        fixture!(TOR_DNSEL, "tor-exit-addresses.txt");
        fixture!(IPAPI_PROXY, "ipapi-proxy.json");
        fixture!(IPAPI_HOSTING_IPV6, "ipapi-hosting-ipv6.json");
        fixture!(IPAPI_CLEAN, "ipapi-clean.json");
        fixture!(IPAPI_PRIVATE, "ipapi-private.json");
        fixture!(IPAPI_INVALID, "ipapi-invalid.json");
        fixture!(SFS_SINGLE, "sfs-single.json");
        fixture!(SFS_MULTI, "sfs-multi.json");
        fixture!(SFS_ERROR, "sfs-error.json");
        fixture!(GARBAGE, "garbage.html");
    }

    // --- Tor ---------------------------------------------------------------------------------

    #[test]
    fn tor_bulk_list() {
        let body = b"185.220.101.7\n104.244.72.115\r\n\r\n  185.220.101.7  \n2a0b:f4c2::7\n\
                     ::ffff:171.25.193.20\n[2a0b:f4c2:2::1]\n";
        let list = parse_tor_exits(body).unwrap();
        assert_eq!(
            list.addrs,
            ips(&[
                "104.244.72.115",
                "171.25.193.20",
                "185.220.101.7",
                "2a0b:f4c2::7",
                "2a0b:f4c2:2::1"
            ])
        );
        assert_eq!(list.skipped, 0);
        // The old TorBulkExitList.py wrote a comment header.
        let old =
            b"# This is a list of all Tor exit nodes from the past 16 hours that can contact \
                    1.1.1.1 on port 80 #\n# You can update this list by visiting \
                    https://check.torproject.org/cgi-bin/TorBulkExitList.py?ip=1.1.1.1&port=80 #\n\
                    # This file was generated on Sat Jan  6 10:00:01 UTC 2018 #\n\
                    103.208.220.122\n103.234.220.195\n";
        assert_eq!(
            parse_tor_exits(old).unwrap().addrs,
            ips(&["103.208.220.122", "103.234.220.195"])
        );
        // No final newline, a byte-order mark.
        assert_eq!(
            parse_tor_exits(b"\xEF\xBB\xBF192.0.2.1\n192.0.2.2")
                .unwrap()
                .addrs,
            ips(&["192.0.2.1", "192.0.2.2"])
        );
    }

    #[test]
    fn tor_dnsel_list() {
        // The example of the TorDNSEL documentation, with the header of CollecTor's copies.
        let body = b"@type tordnsel 1.0\nDownloaded 2010-12-28 15:21:44\n\
                     ExitNode 63BA28370F543D175173E414D5450590D73E22DC\n\
                     Published 2010-12-28 07:35:55\nLastStatus 2010-12-28 08:10:11\n\
                     ExitAddress 91.102.152.236 2010-12-28 07:10:30\n\
                     ExitAddress 91.102.152.227 2010-12-28 10:35:30\n\
                     ExitNode FE39F07EBE7870DCE124AB30DF3ABD0700A43F75\r\n\
                     Published 2024-01-30 00:10:50\r\nLastStatus 2024-01-30 10:00:00\r\n\
                     ExitAddress 185.241.208.231 2024-01-30 10:21:54\r\n";
        let list = parse_tor_exits(body).unwrap();
        assert_eq!(
            list.addrs,
            ips(&["91.102.152.227", "91.102.152.236", "185.241.208.231"])
        );
        assert_eq!(list.skipped, 0);
        // Blocks without an exit address give no address.
        let no_exit = b"ExitNode 63BA28370F543D175173E414D5450590D73E22DC\n\
                        Published 2010-12-28 07:35:55\nLastStatus 2010-12-28 08:10:11\n";
        assert_eq!(parse_tor_exits(no_exit), Err(FeedError::EmptyList));
    }

    #[test]
    fn tor_fixtures_from_the_fake_server() {
        let bulk = parse_tor_exits(fixture::TOR_BULK).unwrap();
        let expected = ips(&["185.220.101.1", "185.220.101.2", "2001:db8:7::1"]);
        assert_eq!(
            bulk,
            TorList {
                addrs: expected.clone(),
                skipped: 0
            }
        );
        assert_eq!(parse_tor_exits(fixture::TOR_DNSEL).unwrap().addrs, expected);
        assert_eq!(
            parse_tor_exits(fixture::GARBAGE).unwrap_err().to_string(),
            "not a Tor exit list: line 1: <!DOCTYPE html>"
        );
    }

    #[test]
    fn tor_empty_lists_are_refused() {
        for body in [
            &b""[..],
            b"\n\n",
            b"  \r\n\t\n",
            b"# nothing yet\n",
            b"\xEF\xBB\xBF",
        ] {
            assert_eq!(parse_tor_exits(body), Err(FeedError::EmptyList), "{body:?}");
        }
        assert_eq!(FeedError::EmptyList.to_string(), "empty list");
    }

    #[test]
    fn tor_garbage_is_refused() {
        let page = b"\n\n<html>\n<head><title>503 Service Temporarily Unavailable</title></head>\n\
                     <body>\n192.0.2.1\n</body>\n</html>\n";
        assert_eq!(
            parse_tor_exits(page),
            Err(FeedError::NotTorList {
                line: 3,
                text: "<html>".into()
            })
        );
        let json = br#"{"error": "rate limited"}"#;
        assert!(matches!(
            parse_tor_exits(json),
            Err(FeedError::NotTorList { line: 1, .. })
        ));
        // Not a single address among the lines: refused, however few they are.
        assert!(matches!(
            parse_tor_exits(b"ExitNode ABC\nExitAddress nowhere 2024-01-01 00:00:00\n"),
            Err(FeedError::NotTorList { line: 2, .. })
        ));
        // Binary junk, and control characters kept out of the message.
        let junk = parse_tor_exits(b"\x00\x01\xff\xfe\x1b[31m\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            junk,
            "not a Tor exit list: line 1: \\u{0}\\u{1}\u{fffd}\u{fffd}\\u{1b}[31m"
        );
        // A long line is cut in the message.
        let long = [b'x'; 5000];
        let message = parse_tor_exits(&long).unwrap_err().to_string();
        assert!(message.len() < 150 && message.ends_with('…'), "{message}");
    }

    #[test]
    fn tor_few_bad_lines_are_skipped_and_counted() {
        let body = b"192.0.2.1\n192.0.2.300\n192.0.2.2\nhello\n192.0.2.3\n";
        assert_eq!(
            parse_tor_exits(body),
            Ok(TorList {
                addrs: ips(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
                skipped: 2
            })
        );
        // As many bad lines as good ones: still a list.
        assert_eq!(
            parse_tor_exits(b"192.0.2.1\nbad\n").map(|l| l.skipped),
            Ok(1)
        );
        // More bad than good: not a list.
        assert_eq!(
            parse_tor_exits(b"192.0.2.1\nbad\nworse\n"),
            Err(FeedError::NotTorList {
                line: 2,
                text: "bad".into()
            })
        );
        // Unicode that looks like digits is not an address.
        assert_eq!(
            parse_tor_exits("192.0.2.1\n１９２.0.2.2\n".as_bytes()).map(|l| l.skipped),
            Ok(1)
        );
    }

    #[test]
    fn tor_size_limit() {
        let mut body = b"192.0.2.1\n".repeat(TOR_MAX_BYTES / 10);
        body.resize(TOR_MAX_BYTES, b'\n');
        let list = parse_tor_exits(&body).unwrap();
        assert_eq!(list.addrs, ips(&["192.0.2.1"]));
        body.push(b'\n');
        assert_eq!(
            parse_tor_exits(&body),
            Err(FeedError::TooLarge {
                limit: TOR_MAX_BYTES
            })
        );
        // Many distinct addresses, as a real list has thousands.
        let many: String = (0..100_000u32)
            .map(|n| format!("{}\n", std::net::Ipv4Addr::from(0x0a00_0000 + n)))
            .collect();
        let list = parse_tor_exits(many.as_bytes()).unwrap();
        assert_eq!(list.addrs.len(), 100_000);
        assert!(list.addrs.windows(2).all(|w| w[0] < w[1]));
    }

    // --- ip-api ------------------------------------------------------------------------------

    #[test]
    fn ipapi_urls() {
        let fields = "?fields=status,message,countryCode,as,proxy,hosting";
        assert_eq!(
            ipapi_url("http://ip-api.com/json/", ip("24.48.0.1")),
            format!("http://ip-api.com/json/24.48.0.1{fields}")
        );
        assert_eq!(
            ipapi_url("http://127.0.0.1:8080/json", ip("2001:db8::1")),
            format!("http://127.0.0.1:8080/json/2001:db8::1{fields}")
        );
        assert_eq!(
            ipapi_url("http://ip-api.com/json/", ip("::ffff:192.0.2.1")),
            format!("http://ip-api.com/json/192.0.2.1{fields}")
        );
    }

    #[test]
    fn ipapi_answers() {
        // The example answer of ip-api's documentation (no proxy or hosting asked).
        let doc = br#"{"query":"24.48.0.1","status":"success","country":"Canada","countryCode":"CA","region":"QC","regionName":"Quebec","city":"Montreal","zip":"H1K","lat":45.6085,"lon":-73.5493,"timezone":"America/Toronto","isp":"Le Groupe Videotron Ltee","org":"Videotron Ltee","as":"AS5769 Videotron Telecom Ltee"}"#;
        assert_eq!(
            parse_ipapi(doc),
            Ok(IpApiAnswer {
                proxy: false,
                hosting: false,
                country: Some(*b"CA"),
                asn: Some(5769)
            })
        );
        let asked = br#"{"status":"success","countryCode":"DE","as":"AS3320 Deutsche Telekom AG","proxy":true,"hosting":true}"#;
        assert_eq!(
            parse_ipapi(asked),
            Ok(IpApiAnswer {
                proxy: true,
                hosting: true,
                country: Some(*b"DE"),
                asn: Some(3320)
            })
        );
        // Only the status: nothing known.
        assert_eq!(
            parse_ipapi(br#"{"status":"success"}"#),
            Ok(IpApiAnswer::default())
        );
        // Nulls, lowercase and unusable values.
        let odd =
            br#"{"status":"success","countryCode":"de","as":"","proxy":null,"hosting":false}"#;
        assert_eq!(
            parse_ipapi(odd),
            Ok(IpApiAnswer {
                country: Some(*b"DE"),
                ..IpApiAnswer::default()
            })
        );
        // Unicode in the AS name, surrounding whitespace and a byte-order mark.
        let unicode = "\u{feff} {\"status\":\"success\",\"countryCode\":\"RU\",\
                       \"as\":\"AS12389 ПАО «Ростелеком»\"}\n";
        assert_eq!(
            parse_ipapi(unicode.as_bytes()).map(|a| (a.country, a.asn)),
            Ok((Some(*b"RU"), Some(12389)))
        );
    }

    #[test]
    fn ipapi_country_and_asn_forms() {
        for (code, expected) in [
            ("US", Some(*b"US")),
            ("gb", Some(*b"GB")),
            (" NL ", Some(*b"NL")),
            ("", None),
            ("DEU", None),
            ("D", None),
            ("1A", None),
            ("ÄÖ", None),
        ] {
            assert_eq!(country_code(code), expected, "{code:?}");
        }
        for (text, expected) in [
            ("AS3320 Deutsche Telekom AG", Some(3320)),
            ("AS15169", Some(15169)),
            ("AS4294967295 max", Some(u32::MAX)),
            ("AS4294967296 too big", None),
            ("AS0 reserved", None),
            ("AS", None),
            ("3320 Deutsche Telekom AG", None),
            ("as3320", None),
            ("", None),
        ] {
            assert_eq!(asn_number(text), expected, "{text:?}");
        }
    }

    #[test]
    fn ipapi_fail_answers() {
        for message in ["private range", "reserved range"] {
            let body = format!(r#"{{"status":"fail","message":"{message}","query":"10.0.0.1"}}"#);
            assert_eq!(parse_ipapi(body.as_bytes()), Ok(IpApiAnswer::default()));
        }
        let invalid = br#"{"status":"fail","message":"invalid query","query":"example.invalid"}"#;
        assert_eq!(
            parse_ipapi(invalid).unwrap_err().to_string(),
            "ip-api answered \"fail\": invalid query"
        );
        assert_eq!(
            parse_ipapi(br#"{"status":"fail"}"#),
            Err(FeedError::IpApiFail("no message".into()))
        );
        assert_eq!(
            parse_ipapi(br#"{"status":"fail","message":"SSL unavailable for this endpoint, order a key at https://members.ip-api.com/"}"#)
                .unwrap_err()
                .to_string(),
            "ip-api answered \"fail\": SSL unavailable for this endpoint, order a key at https://members.ip-api.com/"
        );
    }

    #[test]
    fn ipapi_fixtures_from_the_fake_server() {
        assert_eq!(
            parse_ipapi(fixture::IPAPI_PROXY),
            Ok(IpApiAnswer {
                proxy: true,
                hosting: false,
                country: Some(*b"DE"),
                asn: Some(3320)
            })
        );
        assert_eq!(
            parse_ipapi(fixture::IPAPI_HOSTING_IPV6),
            Ok(IpApiAnswer {
                proxy: false,
                hosting: true,
                country: Some(*b"NL"),
                asn: Some(60781)
            })
        );
        assert_eq!(
            parse_ipapi(fixture::IPAPI_CLEAN),
            Ok(IpApiAnswer {
                country: Some(*b"US"),
                asn: Some(64500),
                ..IpApiAnswer::default()
            })
        );
        assert_eq!(
            parse_ipapi(fixture::IPAPI_PRIVATE),
            Ok(IpApiAnswer::default())
        );
        assert_eq!(
            parse_ipapi(fixture::IPAPI_INVALID),
            Err(FeedError::IpApiFail("invalid query".into()))
        );
        assert!(matches!(
            parse_ipapi(fixture::GARBAGE),
            Err(FeedError::NotJson(_))
        ));
    }

    #[test]
    fn ipapi_wrong_answers() {
        let cases: [(&[u8], &str); 10] = [
            (b"", "not JSON: empty answer"),
            (b" \r\n", "not JSON: empty answer"),
            (
                b"<html><body>429 Too Many Requests</body></html>",
                "not JSON: expected value at line 1 column 1; the answer starts \"<html><body>429 Too Many Requests</body></html>\"",
            ),
            (
                br#"{"status":"success","countryCode":"D"#,
                "not JSON: EOF while parsing a string at line 1 column 36; the answer starts \"{\"status\":\"success\",\"countryCode\":\"D\"",
            ),
            (b"[]", "not JSON: expected an object, found an array"),
            (b"\"success\"", "not JSON: expected an object, found \"success\""),
            (br#"{"countryCode":"DE"}"#, "unexpected ip-api answer: no \"status\""),
            (br#"{"status":"ok"}"#, "unexpected ip-api answer: status \"ok\""),
            (
                br#"{"status":"success","proxy":"yes"}"#,
                "unexpected ip-api answer: \"proxy\" is \"yes\"",
            ),
            (
                br#"{"status":"success","countryCode":49}"#,
                "unexpected ip-api answer: \"countryCode\" is 49",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(parse_ipapi(body).unwrap_err().to_string(), message);
        }
        assert!(matches!(
            parse_ipapi(br#"{"status":"success","hosting":1}"#),
            Err(FeedError::IpApi(_))
        ));
        // Too large, even if it would be valid.
        let mut big = br#"{"status":"success","padding":""#.to_vec();
        big.resize(JSON_MAX_BYTES, b'x');
        big.extend_from_slice(br#""}"#);
        assert_eq!(
            parse_ipapi(&big),
            Err(FeedError::TooLarge {
                limit: JSON_MAX_BYTES
            })
        );
        big.truncate(JSON_MAX_BYTES - 2);
        big.extend_from_slice(br#""}"#);
        assert_eq!(parse_ipapi(&big), Ok(IpApiAnswer::default()));
        // Deep nesting ends in an error, not a stack overflow.
        let deep = [
            b"{\"a\":".repeat(20_000),
            b"1".to_vec(),
            b"}".repeat(20_000),
        ]
        .concat();
        let deep = &deep[..deep.len().min(JSON_MAX_BYTES)];
        assert!(matches!(parse_ipapi(deep), Err(FeedError::NotJson(_))));
        let nested = [b"[".repeat(30_000), b"]".repeat(30_000)].concat();
        assert!(matches!(parse_ipapi(&nested), Err(FeedError::NotJson(_))));
    }

    // --- Pacer -------------------------------------------------------------------------------

    #[test]
    fn pacer_keeps_to_its_rate() {
        let mut pacer = Pacer::new(IPAPI_FREE_PER_MINUTE);
        for _ in 0..45 {
            assert_eq!(pacer.wait_ms(1000), 0);
            pacer.sent(1000);
        }
        assert_eq!(pacer.wait_ms(1000), 60_000);
        assert_eq!(pacer.wait_ms(31_000), 30_000);
        assert_eq!(pacer.wait_ms(61_000), 0);
        pacer.sent(61_000);
        // The 44 others of the first burst have left the window too.
        assert_eq!(pacer.wait_ms(61_000), 0);
    }

    #[test]
    fn pacer_never_exceeds_its_rate_in_any_window() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for per_minute in [1, 2, 45, 100] {
            let mut pacer = Pacer::new(per_minute);
            let mut now = 0u64;
            let mut sent = Vec::new();
            while now < 20 * 60_000 {
                match pacer.wait_ms(now) {
                    0 => {
                        pacer.sent(now);
                        sent.push(now);
                        now += rng.gen_range(0..200);
                    }
                    wait => now += wait.min(rng.gen_range(1..5000)),
                }
            }
            for (i, &start) in sent.iter().enumerate() {
                let in_window = sent[i..]
                    .iter()
                    .take_while(|&&t| t < start + 60_000)
                    .count();
                assert!(
                    in_window <= per_minute as usize,
                    "{per_minute}/min: {in_window}"
                );
            }
            // It does use its budget: about per_minute a minute.
            assert!(
                sent.len() >= 19 * per_minute as usize,
                "{per_minute}/min: {}",
                sent.len()
            );
        }
    }

    #[test]
    fn pacer_follows_the_server() {
        // X-Rl 0: nothing until X-Ttl has passed.
        let mut pacer = Pacer::new(45);
        pacer.sent(0);
        pacer.observed(100, Some(0), Some(30));
        assert_eq!(pacer.wait_ms(100), 30_000);
        assert_eq!(pacer.wait_ms(30_100), 0);
        // X-Rl 2 with X-Ttl 10: two more, then wait for the reset.
        let mut pacer = Pacer::new(45);
        pacer.sent(0);
        pacer.observed(50, Some(2), Some(10));
        for t in [100, 200] {
            assert_eq!(pacer.wait_ms(t), 0);
            pacer.sent(t);
        }
        assert_eq!(pacer.wait_ms(300), 9_750);
        assert_eq!(pacer.wait_ms(10_050), 0);
        pacer.sent(10_050);
        assert_eq!(pacer.wait_ms(10_060), 0);
        // The server cannot raise the pacer's own limit.
        let mut pacer = Pacer::new(2);
        pacer.sent(0);
        pacer.observed(0, Some(44), Some(60));
        pacer.sent(1);
        assert_eq!(pacer.wait_ms(2), 59_998);
        // Headers without a count change nothing; X-Rl 0 without X-Ttl waits a minute.
        let mut pacer = Pacer::new(45);
        pacer.observed(0, None, Some(5));
        pacer.observed(0, Some(3), None);
        assert_eq!(pacer.wait_ms(0), 0);
        pacer.observed(0, Some(0), None);
        assert_eq!(pacer.wait_ms(0), 60_000);
    }

    #[test]
    fn pacer_after_429() {
        let mut pacer = Pacer::new(45);
        pacer.throttled(1_000, Some(12));
        assert_eq!(pacer.wait_ms(1_000), 12_000);
        pacer.throttled(2_000, None);
        assert_eq!(pacer.wait_ms(2_000), 60_000);
        // An absurd X-Ttl is capped at an hour; X-Ttl 0 still waits a second.
        pacer.throttled(0, Some(u32::MAX));
        assert_eq!(pacer.wait_ms(0), 3_600_000);
        let mut pacer = Pacer::new(45);
        pacer.throttled(0, Some(0));
        assert_eq!(pacer.wait_ms(0), 1_000);
        // A later, shorter pause does not shorten an earlier one.
        let mut pacer = Pacer::new(45);
        pacer.throttled(0, Some(60));
        pacer.observed(1_000, Some(0), Some(1));
        assert_eq!(pacer.wait_ms(2_000), 58_000);
    }

    #[test]
    fn pacer_edge_cases() {
        let mut none = Pacer::new(0);
        assert_eq!(none.wait_ms(0), u64::MAX);
        none.sent(0);
        assert_eq!(none.wait_ms(u64::MAX), u64::MAX);
        // Times near the end of u64 and a clock that goes back do not panic.
        let mut pacer = Pacer::new(1);
        pacer.sent(u64::MAX - 10);
        assert!(pacer.wait_ms(u64::MAX - 10) > 0);
        assert!(pacer.wait_ms(5) <= 60_000);
        pacer.throttled(u64::MAX - 1, Some(3600));
        pacer.observed(u64::MAX, Some(5), Some(3600));
        pacer.sent(u64::MAX);
        let _ = pacer.wait_ms(0);
    }

    // --- StopForumSpam -----------------------------------------------------------------------

    #[test]
    fn sfs_urls() {
        let base = "https://api.stopforumspam.org/api";
        assert_eq!(
            sfs_url(base, &[ip("91.186.18.61")]),
            "https://api.stopforumspam.org/api?json&confidence&ip=91.186.18.61"
        );
        assert_eq!(
            sfs_url(
                base,
                &ips(&["192.0.2.1", "2001:db8::1", "::ffff:192.0.2.2"])
            ),
            "https://api.stopforumspam.org/api?json&confidence\
             &ip%5B%5D=192.0.2.1&ip%5B%5D=2001:db8::1&ip%5B%5D=192.0.2.2"
        );
        let twenty: Vec<IpAddr> = (1..=20u8).map(|n| IpAddr::from([192, 0, 2, n])).collect();
        let url = sfs_url(base, &twenty);
        assert_eq!(url.matches("&ip%5B%5D=").count(), SFS_MAX_BATCH);
        assert!(url.ends_with("=192.0.2.15"));
        assert_eq!(
            sfs_url(base, &[]),
            "https://api.stopforumspam.org/api?json&confidence"
        );
        assert_eq!(
            sfs_url("http://127.0.0.1:9/api?key=x", &[ip("192.0.2.1")]),
            "http://127.0.0.1:9/api?key=x&json&confidence&ip=192.0.2.1"
        );
        assert_eq!(
            sfs_url("http://127.0.0.1:9/api?", &[ip("192.0.2.1")]),
            "http://127.0.0.1:9/api?json&confidence&ip=192.0.2.1"
        );
    }

    #[test]
    fn sfs_single_answers() {
        let listed = br#"{"success":1,"ip":{"value":"193.201.224.246","lastseen":"2025-02-25 18:34:43","frequency":255,"appears":1,"confidence":99.95,"blacklisted":1}}"#;
        assert_eq!(
            parse_sfs(listed),
            Ok(vec![SfsAnswer {
                addr: ip("193.201.224.246"),
                appears: true,
                frequency: 255,
                confidence: Some(99.95)
            }])
        );
        let clean = br#"{"success":1,"ip":{"value":"91.186.18.61","appears":0,"frequency":0}}"#;
        assert_eq!(
            parse_sfs(clean),
            Ok(vec![SfsAnswer {
                addr: ip("91.186.18.61"),
                appears: false,
                frequency: 0,
                confidence: None
            }])
        );
        // Booleans instead of numbers, and a Tor exit flagged with `badtorexit`.
        let bools = br#"{"success":true,"ip":{"value":"2001:DB8::7","appears":true,"frequency":"3","torexit":1}}"#;
        assert_eq!(
            parse_sfs(bools),
            Ok(vec![SfsAnswer {
                addr: ip("2001:db8::7"),
                appears: true,
                frequency: 3,
                confidence: None
            }])
        );
    }

    #[test]
    fn sfs_array_answers() {
        // The array form, as a bulk query answers it (other fields' arrays are ignored).
        let bulk = br#"{"success":1,"ip":[{"value":"127.0.0.1","frequency":0,"appears":0,"country":"us","asn":14618},{"value":"77.111.247.62","lastseen":"2018-10-02 11:48:41","frequency":8,"appears":1,"confidence":0.34,"delegated":"fr","country":"us","asn":14618}],"username":[{"value":"Nicole","frequency":14,"appears":1}]}"#;
        assert_eq!(
            parse_sfs(bulk),
            Ok(vec![
                SfsAnswer {
                    addr: ip("127.0.0.1"),
                    appears: false,
                    frequency: 0,
                    confidence: None
                },
                SfsAnswer {
                    addr: ip("77.111.247.62"),
                    appears: true,
                    frequency: 8,
                    confidence: Some(0.34)
                },
            ])
        );
        assert_eq!(parse_sfs(br#"{"success":1,"ip":[]}"#), Ok(vec![]));
        // Odd numbers: clamped and saturated.
        let odd = br#"{"success":1,"ip":[{"value":"192.0.2.1","appears":1,"frequency":99999999999,"confidence":101.5},{"value":"192.0.2.2","appears":1,"frequency":1,"confidence":"-3"}]}"#;
        let answers = parse_sfs(odd).unwrap();
        assert_eq!(
            answers
                .iter()
                .map(|a| (a.frequency, a.confidence))
                .collect::<Vec<_>>(),
            vec![(u32::MAX, Some(100.0)), (1, Some(0.0))]
        );
    }

    #[test]
    fn sfs_fixtures_from_the_fake_server() {
        assert_eq!(
            parse_sfs(fixture::SFS_SINGLE),
            Ok(vec![SfsAnswer {
                addr: ip("198.51.100.7"),
                appears: true,
                frequency: 12,
                confidence: Some(35.0)
            }])
        );
        let multi = parse_sfs(fixture::SFS_MULTI).unwrap();
        assert_eq!(
            multi
                .iter()
                .map(|a| (a.addr, a.appears, a.frequency))
                .collect::<Vec<_>>(),
            vec![
                (ip("198.51.100.7"), true, 12),
                (ip("203.0.113.9"), false, 0),
                (ip("2001:db8::7"), true, 255)
            ]
        );
        assert_eq!(multi[2].confidence, Some(99.95));
        assert_eq!(
            parse_sfs(fixture::SFS_ERROR).unwrap_err().to_string(),
            "StopForumSpam answered an error: request not understood"
        );
        assert!(matches!(
            parse_sfs(fixture::GARBAGE),
            Err(FeedError::NotJson(_))
        ));
    }

    #[test]
    fn sfs_wrong_answers() {
        let cases: [(&[u8], &str); 11] = [
            (br#"{"success":0,"error":"invalid ip"}"#, "StopForumSpam answered an error: invalid ip"),
            (br#"{"success":false}"#, "StopForumSpam answered an error: no message"),
            (br#"{"error":"rate limit exceeded"}"#, "StopForumSpam answered an error: rate limit exceeded"),
            (br#"{"ip":{"value":"192.0.2.1"}}"#, "unexpected StopForumSpam answer: no \"success\""),
            (br#"{"success":"yes"}"#, "unexpected StopForumSpam answer: \"success\" is \"yes\""),
            (br#"{"success":1}"#, "unexpected StopForumSpam answer: no \"ip\" results"),
            (br#"{"success":1,"ip":"192.0.2.1"}"#, "unexpected StopForumSpam answer: \"ip\" is \"192.0.2.1\""),
            (br#"{"success":1,"ip":[{"value":"192.0.2.1"},7]}"#, "unexpected StopForumSpam answer: ip result 2 is 7"),
            (br#"{"success":1,"ip":{"appears":1,"frequency":2}}"#, "unexpected StopForumSpam answer: ip result 1: no \"value\""),
            (br#"{"success":1,"ip":{"value":"spammer@example.com","appears":1}}"#, "unexpected StopForumSpam answer: ip result 1: \"value\" \"spammer@example.com\" is not an address"),
            (br#"{"success":1,"ip":{"value":"192.0.2.1","appears":"yes"}}"#, "unexpected StopForumSpam answer: ip result 1: \"appears\" is \"yes\""),
        ];
        for (body, message) in cases {
            assert_eq!(parse_sfs(body).unwrap_err().to_string(), message);
        }
        for body in [
            &br#"{"success":1,"ip":{"value":"192.0.2.1","frequency":-1}}"#[..],
            br#"{"success":1,"ip":{"value":"192.0.2.1","frequency":1.5}}"#,
            br#"{"success":1,"ip":{"value":"192.0.2.1","confidence":[]}}"#,
            br#"{"success":1,"ip":{"value":7}}"#,
        ] {
            assert!(
                matches!(parse_sfs(body), Err(FeedError::Sfs(_))),
                "{body:?}"
            );
        }
        assert!(matches!(parse_sfs(b""), Err(FeedError::NotJson(_))));
        assert!(matches!(
            parse_sfs(br#"{"success":1,"ip":[{"value":"192.0.2.1","appears":1"#),
            Err(FeedError::NotJson(_))
        ));
        // The XML answer, when `json` was forgotten.
        let xml =
            b"<response success=\"true\">\n<type>ip</type>\n<appears>yes</appears>\n</response>";
        assert!(matches!(parse_sfs(xml), Err(FeedError::NotJson(_))));
    }

    // --- All ---------------------------------------------------------------------------------

    /// Random bytes and damaged real answers: every parser answers, none panics.
    #[test]
    fn parsers_are_total() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
        let samples: [&[u8]; 8] = [
            fixture::TOR_BULK,
            fixture::TOR_DNSEL,
            fixture::IPAPI_PROXY,
            fixture::IPAPI_PRIVATE,
            fixture::SFS_SINGLE,
            fixture::SFS_MULTI,
            fixture::SFS_ERROR,
            fixture::GARBAGE,
        ];
        for round in 0..20_000 {
            let body: Vec<u8> = if round % 2 == 0 {
                let len = rng.gen_range(0..300);
                (0..len).map(|_| rng.gen()).collect()
            } else {
                let mut body = samples[round / 2 % samples.len()].to_vec();
                for _ in 0..rng.gen_range(1..6) {
                    if body.is_empty() {
                        break;
                    }
                    let at = rng.gen_range(0..body.len());
                    match rng.gen_range(0..3) {
                        0 => body[at] = rng.gen(),
                        1 => {
                            body.remove(at);
                        }
                        _ => body.truncate(at),
                    }
                }
                body
            };
            if let Ok(list) = parse_tor_exits(&body) {
                assert!(!list.addrs.is_empty() && list.skipped <= body.len());
            }
            let _ = parse_ipapi(&body);
            if let Ok(answers) = parse_sfs(&body) {
                assert!(answers
                    .iter()
                    .all(|a| a.confidence.map_or(true, |c| (0.0..=100.0).contains(&c))));
            }
        }
    }
}
