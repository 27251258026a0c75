//! Verified good crawlers: a client whose user agent claims to be a search engine's crawler is
//! checked against the operator's own word, by forward-confirmed reverse DNS or by the address
//! ranges the operator publishes. A claim that holds passes (`captchaify_verified_crawlers
//! on`); a claim that fails is a fake, and suspicious.
//!
//! Everything here is pure. The nginx glue resolves asynchronously with nginx's resolver and
//! drives the check step by step:
//!
//! 1. [`Crawler::claimed`] reads the claim from the user agent;
//! 2. [`by_published_ranges`] answers at once when the operator's ranges are configured;
//! 3. otherwise the address's PTR names go to [`Crawler::after_reverse`], which names the
//!    host to resolve forward (or already has the answer);
//! 4. that host's A/AAAA addresses go to [`after_forward`];
//! 5. the verdict is kept in the shared zone as a [`CrawlerCheck`] for a while, and
//!    [`treatment`] says what it means for the request.
//!
//! Sources: Google, "Verify requests from Google crawlers and fetchers"
//! (developers.google.com/crawling/docs/crawlers-fetchers/verifying-googlebot, and its older
//! home under /search/docs/crawling-indexing/) for the host names and the JSON range files;
//! Google's lists of common and special-case crawlers for the user agents; Bing, "Verifying
//! Bingbot" and "Which crawlers does Bing use" (bing.com/webmasters/help) and
//! bing.com/toolbox/bingbot.json; Apple, "About Applebot" (support.apple.com);
//! Yandex, "How to check that a robot belongs to Yandex" (yandex.com/support/webmaster).

use core::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use thiserror::Error;

use crate::reputation::ranges::{parse_entry, IpSet};
use crate::state::table::{Guard, Key, Record};

/// A crawler operator whose crawlers can be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Crawler {
    Google = 1,
    Bing = 2,
    Apple = 3,
    Yandex = 4,
}

/// User-agent tokens (lowercase) that claim each operator, as their documentation lists them.
/// A token counts only as a whole word: `NotGooglebot` claims nothing.
const CLAIMS: [(&str, Crawler); 23] = [
    // Google's common crawlers (Googlebot-Image, -Video and -News start with "googlebot";
    // GoogleOther-Image and -Video with "googleother").
    ("googlebot", Crawler::Google),
    ("storebot-google", Crawler::Google),
    ("google-inspectiontool", Crawler::Google),
    ("googleother", Crawler::Google),
    ("google-cloudvertexbot", Crawler::Google),
    // Google's special-case crawlers (AdsBot-Google-Mobile starts with "adsbot-google").
    ("adsbot-google", Crawler::Google),
    ("mediapartners-google", Crawler::Google),
    ("apis-google", Crawler::Google),
    ("google-safety", Crawler::Google),
    // Google's own user-triggered fetchers (they resolve to google.com).
    ("feedfetcher-google", Crawler::Google),
    ("google-site-verification", Crawler::Google),
    ("google-read-aloud", Crawler::Google),
    ("googleproducer", Crawler::Google),
    // Bing (msnbot and BingPreview are the older names, still seen).
    ("bingbot", Crawler::Bing),
    ("adidxbot", Crawler::Bing),
    ("bingpreview", Crawler::Bing),
    ("microsoftpreview", Crawler::Bing),
    ("msnbot", Crawler::Bing),
    ("applebot", Crawler::Apple),
    // Every Yandex robot links its page; YandexBot is the main one. Not a bare "yandex":
    // Yandex's own apps and browser carry it too, and they are people.
    ("yandexbot", Crawler::Yandex),
    ("yandeximages", Crawler::Yandex),
    ("yandexmobilebot", Crawler::Yandex),
    ("yandex.com/bots", Crawler::Yandex),
];

/// User agents are only searched this far (a longer one is a bot by length alone).
const MAX_CLAIM_SCAN: usize = crate::crawler::MAX_BROWSER_USER_AGENT;

impl Crawler {
    pub const ALL: [Crawler; 4] = [
        Crawler::Google,
        Crawler::Bing,
        Crawler::Apple,
        Crawler::Yandex,
    ];

    /// The crawler a user agent claims to be, if any (case-insensitive, whole tokens).
    pub fn claimed(user_agent: &[u8]) -> Option<Crawler> {
        let ua = &user_agent[..user_agent.len().min(MAX_CLAIM_SCAN)];
        let word = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
        for start in 0..ua.len() {
            if word(ua.get(start)) && start > 0 && word(ua.get(start - 1)) {
                continue;
            }
            for &(token, crawler) in &CLAIMS {
                let end = start + token.len();
                let matches = ua
                    .get(start..end)
                    .is_some_and(|w| w.eq_ignore_ascii_case(token.as_bytes()));
                if matches && !word(ua.get(end)) {
                    return Some(crawler);
                }
            }
        }
        None
    }

    /// The operator's name in configuration and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Crawler::Google => "google",
            Crawler::Bing => "bing",
            Crawler::Apple => "apple",
            Crawler::Yandex => "yandex",
        }
    }

    pub fn parse(name: &str) -> Option<Crawler> {
        Crawler::ALL.into_iter().find(|c| c.name() == name)
    }

    fn from_u8(value: u8) -> Option<Crawler> {
        Crawler::ALL.into_iter().find(|c| *c as u8 == value)
    }

    /// The domains the operator's crawler hosts are named under.
    ///
    /// Google also lists `googleusercontent.com`, for fetches its users trigger from Google
    /// Cloud and Apps Script. It is left out on purpose: every Google Cloud VM has a
    /// forward-confirmed name there (`*.bc.googleusercontent.com`), so anybody with a VM
    /// would pass for Googlebot. Google's crawlers are `*.googlebot.com` and `*.google.com`.
    pub const fn domains(self) -> &'static [&'static str] {
        match self {
            Crawler::Google => &["googlebot.com", "google.com"],
            Crawler::Bing => &["search.msn.com"],
            Crawler::Apple => &["applebot.apple.com"],
            Crawler::Yandex => &["yandex.ru", "yandex.net", "yandex.com"],
        }
    }

    /// Whether a reverse-DNS name is one of the operator's crawler hosts: a well-formed host
    /// name strictly under one of [`Crawler::domains`], on a label boundary
    /// (`evilgooglebot.com` is not under `googlebot.com`), in any case, with or without the
    /// final dot.
    pub fn host_allowed(self, hostname: &str) -> bool {
        let host = hostname.strip_suffix('.').unwrap_or(hostname);
        let well_formed = host.len() <= 253
            && host.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        well_formed
            && self.domains().iter().any(|domain| {
                // ASCII only from here on, so byte offsets are character boundaries.
                host.len() > domain.len() + 1
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                    && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
            })
    }

    /// The reverse-DNS names that may prove the claim, in the order given.
    pub fn allowed_names(self, ptr_names: &[String]) -> impl Iterator<Item = &str> {
        ptr_names
            .iter()
            .map(String::as_str)
            .filter(move |name| self.host_allowed(name))
    }

    /// The first reverse-DNS name worth resolving forward.
    pub fn pick_name(self, ptr_names: &[String]) -> Option<&str> {
        self.allowed_names(ptr_names).next()
    }

    /// Forward-confirmed reverse DNS in one go: the first of the address's PTR names that is
    /// one of the operator's hosts and resolves (by `forward`) back to the address.
    pub fn forward_confirmed(
        self,
        addr: IpAddr,
        ptr_names: &[String],
        forward: impl Fn(&str) -> Vec<IpAddr>,
    ) -> Option<String> {
        self.allowed_names(ptr_names)
            .find(|name| confirms(addr, &forward(name)))
            .map(str::to_string)
    }

    /// The step after the PTR query. nginx's resolver gives one name; with several, the first
    /// of the operator's is asked (see [`Crawler::forward_confirmed`] for trying them all).
    pub fn after_reverse(self, answer: DnsAnswer<&[String]>) -> Step<'_> {
        match answer {
            DnsAnswer::Found(names) => match self.pick_name(names) {
                Some(name) => Step::Forward(name),
                None => Step::Done(Verification::Fake),
            },
            // The operators name every crawler address: none at all is a fake.
            DnsAnswer::NotFound => Step::Done(Verification::Fake),
            DnsAnswer::Failed => Step::Done(Verification::Unknown),
        }
    }
}

impl fmt::Display for Crawler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a forward lookup gave back the client's address. IPv4-mapped IPv6 addresses (a
/// dual-stack listener's view of an IPv4 client) compare as the IPv4 address they carry.
pub fn confirms(addr: IpAddr, forward: &[IpAddr]) -> bool {
    let addr = addr.to_canonical();
    forward.iter().any(|a| a.to_canonical() == addr)
}

/// What one DNS query answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsAnswer<T> {
    /// The records found (possibly none).
    Found(T),
    /// The name does not exist, or has no records of the type asked (NXDOMAIN, NODATA).
    NotFound,
    /// No answer: time-out, server failure, refusal. It may work next time.
    Failed,
}

/// Where a check stands after the PTR query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Resolve this host's A and AAAA records and hand them to [`after_forward`].
    Forward(&'a str),
    Done(Verification),
}

/// The verdict after the forward query of the host the PTR record named.
pub fn after_forward(addr: IpAddr, answer: DnsAnswer<&[IpAddr]>) -> Verification {
    match answer {
        DnsAnswer::Found(addrs) if confirms(addr, addrs) => Verification::Verified,
        // A PTR record anybody can write for their own addresses; the operator's zone does
        // not name this address back.
        DnsAnswer::Found(_) | DnsAnswer::NotFound => Verification::Fake,
        DnsAnswer::Failed => Verification::Unknown,
    }
}

/// The first and cheapest word: the operator's published ranges (`None` when the location
/// has none for this crawler). An address inside is verified. Outside, DNS decides when a
/// resolver is configured; without one the ranges are the only word and the claim is a fake.
/// With neither, nothing can be said.
pub fn by_published_ranges(
    ranges: Option<&IpSet>,
    addr: IpAddr,
    resolver: bool,
) -> Option<Verification> {
    match ranges {
        Some(set) if set.contains(addr) => Some(Verification::Verified),
        _ if resolver => None,
        Some(_) => Some(Verification::Fake),
        None => Some(Verification::Unknown),
    }
}

/// What checking a crawler's claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The operator confirms the address.
    Verified,
    /// The operator's DNS or ranges deny the address: somebody borrowed the user agent.
    Fake,
    /// Not known (yet): the check is pending, DNS failed, or there is no way to check.
    Unknown,
}

impl Verification {
    pub const fn as_str(self) -> &'static str {
        match self {
            Verification::Verified => "verified",
            Verification::Fake => "fake",
            Verification::Unknown => "unknown",
        }
    }
}

/// What a crawler's claim means for its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Passes as an allow-listed address does: everything but its rate limit. The crawler
    /// sees the real page, which is what a site wants indexed.
    Pass,
    /// Suspicious wherever suspicion counts, with or without `captchaify_block_crawler`: a
    /// client lying about who it is has earned no benefit of the doubt.
    Suspicious,
    /// Only the crawler user-agent rule (`captchaify_block_crawler`) applies, as for any
    /// crawler that is not checked.
    UserAgentRule,
}

/// Decides what a claim means. With `captchaify_verified_crawlers off` nothing is checked
/// and every crawler is just a crawler user agent. With it on, a verified crawler passes and
/// a fake is suspicious; a claim not verified yet (the DNS answer is pending, or DNS failed)
/// is treated like an unverified crawler, so that a slow or broken resolver neither lets a
/// fake through nor turns a real crawler away for good.
pub fn treatment(verification: Verification, verified_crawlers: bool) -> Treatment {
    match verification {
        _ if !verified_crawlers => Treatment::UserAgentRule,
        Verification::Verified => Treatment::Pass,
        Verification::Fake => Treatment::Suspicious,
        Verification::Unknown => Treatment::UserAgentRule,
    }
}

/// Why a file of published ranges is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RangesError {
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("no \"prefixes\" list, expected {{\"prefixes\": [{{\"ipv4Prefix\": \"...\"}}, ...]}}")]
    NoPrefixes,
    #[error("prefixes[{index}]: {problem}")]
    Prefix { index: usize, problem: String },
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: String },
    #[error("no range in the file")]
    Empty,
}

/// The broadest ranges accepted: a file saying "all of IPv4" is broken or hostile, and would
/// verify every liar.
const MIN_PREFIX_V4: u8 = 8;
const MIN_PREFIX_V6: u8 = 32;

/// Published ranges in either form: JSON when the body starts with `{`, plain text otherwise.
pub fn parse_ranges(body: &[u8]) -> Result<Vec<IpNet>, RangesError> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => parse_ranges_json(body),
        _ => parse_ranges_text(body),
    }
}

/// The operators' JSON: `{"creationTime": "...", "prefixes": [{"ipv4Prefix":
/// "66.249.64.0/27"}, {"ipv6Prefix": "2001:4860:4801:10::/64"}]}`, as in Google's
/// `googlebot.json` (now `common-crawlers.json`), `special-crawlers.json` and
/// `user-triggered-fetchers*.json`, Bing's `bingbot.json` and Apple's `applebot.json`. Other
/// keys are ignored. Bing's file has carried zero-width spaces inside prefixes; they are
/// dropped.
///
/// Google's `user-triggered-fetchers.json` holds Google Cloud addresses that act for
/// Google's customers; it verifies no crawler and should not be configured for one.
pub fn parse_ranges_json(body: &[u8]) -> Result<Vec<IpNet>, RangesError> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(|e| RangesError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let prefixes = doc
        .get("prefixes")
        .and_then(serde_json::Value::as_array)
        .ok_or(RangesError::NoPrefixes)?;
    let mut nets = Vec::with_capacity(prefixes.len());
    for (index, entry) in prefixes.iter().enumerate() {
        let bad = |problem: String| RangesError::Prefix { index, problem };
        let entry = entry
            .as_object()
            .ok_or_else(|| bad("not an object".into()))?;
        let mut found = false;
        for (key, v6) in [("ipv4Prefix", false), ("ipv6Prefix", true)] {
            let Some(value) = entry.get(key) else {
                continue;
            };
            let text = value
                .as_str()
                .ok_or_else(|| bad(format!("{key} is not a string")))?;
            let net = parse_range(text).map_err(bad)?;
            if matches!(net, IpNet::V6(_)) != v6 {
                return Err(bad(format!("{key} holds \"{}\"", clean(text))));
            }
            nets.push(net);
            found = true;
        }
        if !found {
            return Err(bad("neither ipv4Prefix nor ipv6Prefix".into()));
        }
    }
    if nets.is_empty() {
        return Err(RangesError::Empty);
    }
    Ok(nets)
}

/// Plain text for operators who convert the files: ranges (or single addresses) separated by
/// white space, one per line by custom; `#` starts a comment.
pub fn parse_ranges_text(body: &[u8]) -> Result<Vec<IpNet>, RangesError> {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut nets = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        for entry in line.split_whitespace() {
            let net = parse_range(entry).map_err(|problem| RangesError::Line {
                line: index + 1,
                problem,
            })?;
            nets.push(net);
        }
    }
    if nets.is_empty() {
        return Err(RangesError::Empty);
    }
    Ok(nets)
}

/// One range, zero-width characters dropped, host bits ignored, not too broad.
fn parse_range(text: &str) -> Result<IpNet, String> {
    let text = clean(text);
    let net = parse_entry(&text).map_err(|_| format!("invalid range \"{text}\""))?;
    let too_broad = match net {
        IpNet::V4(n) => n.prefix_len() < MIN_PREFIX_V4,
        IpNet::V6(n) => match n.network().to_ipv4_mapped() {
            Some(_) if n.prefix_len() >= 96 => n.prefix_len() - 96 < MIN_PREFIX_V4,
            _ => n.prefix_len() < MIN_PREFIX_V6,
        },
    };
    if too_broad {
        return Err(format!(
            "range \"{text}\" is too broad (at most /{MIN_PREFIX_V4} for IPv4, /{MIN_PREFIX_V6} for IPv6)"
        ));
    }
    Ok(net)
}

/// The text without white space and zero-width characters, cut for error messages.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            !c.is_whitespace() && !matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
        })
        .take(80)
        .collect()
}

/// How long a check may run before another worker may start it again.
pub const PENDING_SECS: u64 = 30;
/// How long a failed check (DNS time-out or failure) waits before it is tried again.
pub const RETRY_SECS: u64 = 300;

/// One address's checked claim, in the shared zone (keyed, like the other per-address
/// tables, by a keyed hash of the address). Times are Unix seconds.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrawlerCheck {
    state: u8,
    /// The [`Crawler`] claimed (its `repr(u8)` value), so that a verdict about one claim is
    /// never read as a verdict about another.
    crawler: u8,
    _reserved: [u8; 2],
    checked_at: u32,
    until: u32,
}

// SAFETY: plain integers: valid for every bit pattern (unknown values read as no verdict),
// no pointers.
unsafe impl Record for CrawlerCheck {
    const KIND: u32 = u32::from_be_bytes(*b"VCR1");
    const NAME: &'static str = "crawler verdicts";
}

const NONE: u8 = 0;
const PENDING: u8 = 1;
const VERIFIED: u8 = 2;
const FAKE: u8 = 3;
const FAILED: u8 = 4;

fn secs(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

impl CrawlerCheck {
    /// A check just started: other workers wait for it instead of starting their own.
    pub fn pending(crawler: Crawler, now_secs: u64) -> CrawlerCheck {
        CrawlerCheck {
            state: PENDING,
            crawler: crawler as u8,
            _reserved: [0; 2],
            checked_at: secs(now_secs),
            until: secs(now_secs.saturating_add(PENDING_SECS)),
        }
    }

    /// A finished check. A verdict holds for `ttl_secs`; an unknown one is tried again after
    /// [`RETRY_SECS`] (or `ttl_secs`, if shorter).
    pub fn finished(
        crawler: Crawler,
        verification: Verification,
        now_secs: u64,
        ttl_secs: u64,
    ) -> CrawlerCheck {
        let (state, ttl) = match verification {
            Verification::Verified => (VERIFIED, ttl_secs),
            Verification::Fake => (FAKE, ttl_secs),
            Verification::Unknown => (FAILED, RETRY_SECS.min(ttl_secs)),
        };
        CrawlerCheck {
            state,
            crawler: crawler as u8,
            _reserved: [0; 2],
            checked_at: secs(now_secs),
            until: secs(now_secs.saturating_add(ttl)),
        }
    }

    fn live_for(&self, crawler: Crawler, now_secs: u64) -> bool {
        self.state != NONE && self.crawler == crawler as u8 && now_secs < u64::from(self.until)
    }

    /// What is known about a claim to be `crawler` as of `now_secs`.
    pub fn verification(&self, crawler: Crawler, now_secs: u64) -> Verification {
        if !self.live_for(crawler, now_secs) {
            return Verification::Unknown;
        }
        match self.state {
            VERIFIED => Verification::Verified,
            FAKE => Verification::Fake,
            _ => Verification::Unknown,
        }
    }

    /// Whether a claim to be `crawler` should be checked now: nothing live is known about it
    /// and no check is under way.
    pub fn wants_check(&self, crawler: Crawler, now_secs: u64) -> bool {
        !self.live_for(crawler, now_secs)
    }

    /// The crawler the entry is about, if it holds a valid one.
    pub fn crawler(&self) -> Option<Crawler> {
        Crawler::from_u8(self.crawler)
    }

    /// When the check started or finished.
    pub fn checked_at(&self) -> u64 {
        u64::from(self.checked_at)
    }

    /// When the entry may be forgotten.
    pub fn expires_ms(&self) -> u64 {
        u64::from(self.until) * 1000
    }
}

/// Reads what is known about `key`'s claim to be `crawler` and, when a check is wanted, marks
/// one as under way. Returns the verification and whether the caller is to start the check.
pub fn read_and_mark(
    t: &mut Guard<'_, CrawlerCheck>,
    key: &Key,
    crawler: Crawler,
    now_secs: u64,
) -> (Verification, bool) {
    t.update(key, now_secs * 1000, |current| {
        let current = current.unwrap_or_default();
        if current.wants_check(crawler, now_secs) {
            let pending = CrawlerCheck::pending(crawler, now_secs);
            (
                Some((pending, pending.expires_ms())),
                (Verification::Unknown, true),
            )
        } else {
            (None, (current.verification(crawler, now_secs), false))
        }
    })
}

/// Records the end of a check.
pub fn record_verification(
    t: &mut Guard<'_, CrawlerCheck>,
    key: &Key,
    crawler: Crawler,
    verification: Verification,
    now_secs: u64,
    ttl_secs: u64,
) {
    let entry = CrawlerCheck::finished(crawler, verification, now_secs, ttl_secs);
    t.insert(key, now_secs * 1000, entry.expires_ms(), entry);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::table::Table;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// User agents as the operators document them (Chrome versions filled in).
    const GOOGLE_AGENTS: [&str; 14] = [
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/131.0.6778.204 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; \
         +http://www.google.com/bot.html) Chrome/131.0.6778.204 Safari/537.36",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
        "Googlebot-Image/1.0",
        "Googlebot-Video/1.0",
        "Mozilla/5.0 (X11; Linux x86_64; Storebot-Google/1.0) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/79.0.3945.88 Safari/537.36",
        "Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)",
        "GoogleOther",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/131.0.6778.204 Mobile Safari/537.36 (compatible; AdsBot-Google-Mobile; \
         +http://www.google.com/mobile/adsbot.html)",
        "AdsBot-Google (+http://www.google.com/adsbot.html)",
        "Mediapartners-Google",
        "APIs-Google (+https://developers.google.com/webmasters/APIs-Google.html)",
        "FeedFetcher-Google; (+http://www.google.com/feedfetcher.html)",
    ];

    const BING_AGENTS: [&str; 7] = [
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; \
         +http://www.bing.com/bingbot.htm) Chrome/131.0.2903.86 Safari/537.36 Edg/131.0.2903.86",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/131.0.2903.86 Mobile Safari/537.36 Edg/131.0.2903.86 (compatible; bingbot/2.0; \
         +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; adidxbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) BingPreview/1.0b",
        "msnbot/2.0b (+http://search.msn.com/msnbot.htm)",
        "msnbot-media/1.1 (+http://search.msn.com/msnbot.htm)",
    ];

    #[test]
    fn operators_user_agents_are_claims() {
        for ua in GOOGLE_AGENTS {
            assert_eq!(
                Crawler::claimed(ua.as_bytes()),
                Some(Crawler::Google),
                "{ua}"
            );
        }
        for ua in BING_AGENTS {
            assert_eq!(Crawler::claimed(ua.as_bytes()), Some(Crawler::Bing), "{ua}");
        }
        let apple = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                     Version/17.4 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)";
        assert_eq!(Crawler::claimed(apple.as_bytes()), Some(Crawler::Apple));
        for ua in [
            "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            "Mozilla/5.0 (compatible; YandexImages/3.0; +http://yandex.com/bots)",
            "Mozilla/5.0 (compatible; YandexMetrika/2.0; +http://yandex.com/bots yabs01)",
        ] {
            assert_eq!(
                Crawler::claimed(ua.as_bytes()),
                Some(Crawler::Yandex),
                "{ua}"
            );
        }
        assert_eq!(Crawler::claimed(b"GOOGLEBOT"), Some(Crawler::Google));
        assert_eq!(
            Crawler::claimed(b"x BingBot/2.0 \xff\xfe"),
            Some(Crawler::Bing)
        );
    }

    #[test]
    fn browsers_and_lookalikes_claim_nothing() {
        for ua in [
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
             Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 YaBrowser/24.1.0.0 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 \
             Mobile Safari/537.36 YandexSearch/23.112",
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 \
             Mobile Safari/537.36 GSA/15.0 (Google app)",
            "curl/8.5.0",
            "NotGooglebot/1.0",
            "Googlebotty",
            "my-bingbot2",
            "Google-Extended",
            "Applebot2",
            "yandex",
            "",
        ] {
            assert_eq!(Crawler::claimed(ua.as_bytes()), None, "{ua}");
        }
        // Past the scan limit nothing is read.
        let long = format!("{} Googlebot/2.1", "x".repeat(MAX_CLAIM_SCAN));
        assert_eq!(Crawler::claimed(long.as_bytes()), None);
    }

    #[test]
    fn names_round_trip() {
        for c in Crawler::ALL {
            assert_eq!(Crawler::parse(c.name()), Some(c));
            assert_eq!(Crawler::from_u8(c as u8), Some(c));
            assert_eq!(c.to_string(), c.name());
        }
        assert_eq!(Crawler::parse("Google"), None);
        assert_eq!(Crawler::from_u8(0), None);
    }

    #[test]
    fn hosts_must_sit_under_the_operators_domains() {
        let g = Crawler::Google;
        for host in [
            "crawl-66-249-66-1.googlebot.com",
            "crawl-66-249-66-1.googlebot.com.",
            "CRAWL-66-249-66-1.GoogleBot.COM",
            "geo-crawl-35-247-243-240.geo.googlebot.com",
            "rate-limited-proxy-66-249-90-77.google.com",
            "google-proxy-66-249-81-1.google.com",
        ] {
            assert!(g.host_allowed(host), "{host}");
        }
        for host in [
            "evilgooglebot.com",
            "crawl-66-249-66-1.evilgooglebot.com",
            "googlebot.com",
            "googlebot.com.",
            ".googlebot.com",
            "crawl.googlebot.com.evil.net",
            "crawl.googlebot.com.evil",
            "crawl..googlebot.com",
            "crawl.googlebot.com..",
            "crawl googlebot.com",
            "crawl.googlebot.cöm",
            "crawl\0.googlebot.com",
            "1.2.0.35.bc.googleusercontent.com",
            "x.gae.googleusercontent.com",
            "msnbot-157-55-39-1.search.msn.com",
            "",
            ".",
        ] {
            assert!(!g.host_allowed(host), "{host}");
        }
        let long_label = format!("{}.googlebot.com", "a".repeat(64));
        assert!(!g.host_allowed(&long_label));
        let long_name = format!("{}googlebot.com", "a.".repeat(125));
        assert!(!g.host_allowed(&long_name));

        let b = Crawler::Bing;
        assert!(b.host_allowed("msnbot-157-55-39-1.search.msn.com"));
        assert!(b.host_allowed("msnbot-40-77-167-0.search.msn.com."));
        assert!(!b.host_allowed("x.msn.com"));
        assert!(!b.host_allowed("x.research.msn.com"));
        assert!(!b.host_allowed("crawl-66-249-66-1.googlebot.com"));
        assert!(Crawler::Apple.host_allowed("17-58-101-179.applebot.apple.com"));
        assert!(!Crawler::Apple.host_allowed("www.apple.com"));
        let y = Crawler::Yandex;
        for host in [
            "spider-5-255-253-1.yandex.com",
            "x.yandex.ru",
            "x.yandex.net.",
        ] {
            assert!(y.host_allowed(host), "{host}");
        }
        assert!(!y.host_allowed("x.yandex.com.tr"));
        assert!(!y.host_allowed("x.yandexcloud.net"));
    }

    #[test]
    fn forward_confirmed_reverse_dns() {
        let g = Crawler::Google;
        let addr = ip("66.249.66.1");
        let good = names(&["crawl-66-249-66-1.googlebot.com."]);
        let dns = |name: &str| match name {
            "crawl-66-249-66-1.googlebot.com." | "crawl-66-249-66-1.googlebot.com" => vec![addr],
            "crawl-66-249-66-2.googlebot.com" => vec![ip("66.249.66.2")],
            _ => vec![],
        };
        assert_eq!(g.forward_confirmed(addr, &good, dns), Some(good[0].clone()));
        // The same name claimed from another address: the forward lookup does not name it.
        assert_eq!(g.forward_confirmed(ip("203.0.113.9"), &good, dns), None);
        // In the domain, but resolving to another address.
        let other = names(&["crawl-66-249-66-2.googlebot.com"]);
        assert_eq!(g.forward_confirmed(addr, &other, dns), None);
        // Outside the domain: not even asked.
        let outside = names(&[
            "crawl-66-249-66-1.googlebot.com.evil.example",
            "evilgooglebot.com",
        ]);
        let never = |name: &str| -> Vec<IpAddr> { panic!("asked about {name}") };
        assert_eq!(g.forward_confirmed(addr, &outside, never), None);
        assert_eq!(g.forward_confirmed(addr, &[], never), None);
        // Several names: the one that confirms counts, wherever it is.
        let several = names(&[
            "host.evil.example",
            "crawl-66-249-66-2.googlebot.com",
            "crawl-66-249-66-1.googlebot.com",
        ]);
        assert_eq!(
            g.forward_confirmed(addr, &several, dns).as_deref(),
            Some("crawl-66-249-66-1.googlebot.com")
        );
        assert_eq!(
            g.pick_name(&several),
            Some("crawl-66-249-66-2.googlebot.com")
        );
        // A dual-stack listener sees the IPv4 client as IPv4-mapped IPv6.
        assert_eq!(
            g.forward_confirmed(ip("::ffff:66.249.66.1"), &good, dns),
            Some(good[0].clone())
        );
        // IPv6 crawlers.
        let v6 = ip("2001:4860:4801:10::1");
        let v6_names = names(&["crawl-2001-4860-4801-10--1.googlebot.com"]);
        assert!(g
            .forward_confirmed(v6, &v6_names, |_| vec![ip("66.249.66.1"), v6])
            .is_some());
        assert!(Crawler::Bing
            .forward_confirmed(v6, &v6_names, |_| vec![v6])
            .is_none());
    }

    #[test]
    fn the_check_step_by_step() {
        let g = Crawler::Google;
        let addr = ip("66.249.66.1");
        let good = names(&["crawl-66-249-66-1.googlebot.com"]);
        assert_eq!(
            g.after_reverse(DnsAnswer::Found(&good)),
            Step::Forward("crawl-66-249-66-1.googlebot.com")
        );
        let evil = names(&["crawl-66-249-66-1.googlebot.com.evil.example"]);
        assert_eq!(
            g.after_reverse(DnsAnswer::Found(&evil)),
            Step::Done(Verification::Fake)
        );
        assert_eq!(
            g.after_reverse(DnsAnswer::Found(&[])),
            Step::Done(Verification::Fake)
        );
        assert_eq!(
            g.after_reverse(DnsAnswer::NotFound),
            Step::Done(Verification::Fake)
        );
        assert_eq!(
            g.after_reverse(DnsAnswer::Failed),
            Step::Done(Verification::Unknown)
        );

        let forward = |addrs: &[IpAddr]| after_forward(addr, DnsAnswer::Found(addrs));
        assert_eq!(forward(&[addr]), Verification::Verified);
        assert_eq!(forward(&[ip("66.249.66.2"), addr]), Verification::Verified);
        assert_eq!(forward(&[ip("66.249.66.2")]), Verification::Fake);
        assert_eq!(forward(&[]), Verification::Fake);
        assert_eq!(after_forward(addr, DnsAnswer::NotFound), Verification::Fake);
        assert_eq!(
            after_forward(addr, DnsAnswer::Failed),
            Verification::Unknown
        );
        assert!(confirms(ip("::ffff:66.249.66.1"), &[addr]));
        assert!(confirms(addr, &[ip("::ffff:66.249.66.1")]));
        assert!(
            !confirms(ip("::66.249.66.1"), &[addr]),
            "IPv4-compatible is not IPv4-mapped"
        );
    }

    #[test]
    fn published_ranges_come_first() {
        let set = IpSet::new(parse_ranges(b"66.249.64.0/27\n").unwrap());
        let (inside, outside) = (ip("66.249.64.9"), ip("203.0.113.9"));
        assert_eq!(
            by_published_ranges(Some(&set), inside, true),
            Some(Verification::Verified)
        );
        assert_eq!(
            by_published_ranges(Some(&set), inside, false),
            Some(Verification::Verified)
        );
        assert_eq!(by_published_ranges(Some(&set), outside, true), None);
        assert_eq!(
            by_published_ranges(Some(&set), outside, false),
            Some(Verification::Fake)
        );
        assert_eq!(by_published_ranges(None, inside, true), None);
        assert_eq!(
            by_published_ranges(None, inside, false),
            Some(Verification::Unknown)
        );
    }

    #[test]
    fn what_a_claim_means() {
        use Treatment::*;
        for v in [
            Verification::Verified,
            Verification::Fake,
            Verification::Unknown,
        ] {
            assert_eq!(treatment(v, false), UserAgentRule, "{}", v.as_str());
        }
        assert_eq!(treatment(Verification::Verified, true), Pass);
        assert_eq!(treatment(Verification::Fake, true), Suspicious);
        assert_eq!(treatment(Verification::Unknown, true), UserAgentRule);
    }

    /// Shaped like googlebot.json (the real file lists about 300 prefixes).
    const GOOGLEBOT_JSON: &str = r#"{
  "creationTime": "2025-01-15T14:46:04.000000",
  "prefixes": [
    {
      "ipv6Prefix": "2001:4860:4801:10::/64"
    },
    {
      "ipv6Prefix": "2001:4860:4801:12::/64"
    },
    {
      "ipv4Prefix": "66.249.64.0/27"
    },
    {
      "ipv4Prefix": "66.249.66.0/27"
    },
    {
      "ipv4Prefix": "192.178.5.0/27"
    }
  ]
}"#;

    #[test]
    fn googles_json() {
        let nets = parse_ranges_json(GOOGLEBOT_JSON.as_bytes()).unwrap();
        assert_eq!(nets.len(), 5);
        let set = IpSet::new(nets);
        for inside in [
            "66.249.64.0",
            "66.249.64.31",
            "66.249.66.1",
            "2001:4860:4801:10::1",
            "2001:4860:4801:12:ffff::9",
            "::ffff:66.249.66.1",
        ] {
            assert!(set.contains(ip(inside)), "{inside}");
        }
        for outside in [
            "66.249.64.32",
            "66.249.65.1",
            "2001:4860:4801:11::1",
            "8.8.8.8",
        ] {
            assert!(!set.contains(ip(outside)), "{outside}");
        }
        assert_eq!(
            parse_ranges(GOOGLEBOT_JSON.as_bytes()),
            parse_ranges_json(GOOGLEBOT_JSON.as_bytes())
        );
    }

    #[test]
    fn bings_json_with_its_zero_width_spaces() {
        let body = "\u{feff}{\"creationTime\":\"2024-01-03T10:00:00.121331\",\"prefixes\":[\
                    {\"ipv4Prefix\":\"157.55.39.0/24\"},{\"ipv4Prefix\":\"207.46.13.0/24\u{200b}\"},\
                    {\"ipv4Prefix\":\"\u{200b}40.77.167.0/24\"},{\"ipv4Prefix\":\" 13.66.139.0/24 \"}]}";
        let set = IpSet::new(parse_ranges(body.as_bytes()).unwrap());
        for inside in ["157.55.39.7", "207.46.13.200", "40.77.167.1", "13.66.139.0"] {
            assert!(set.contains(ip(inside)), "{inside}");
        }
        assert!(!set.contains(ip("157.55.40.1")));
    }

    #[test]
    fn json_errors_say_where() {
        let err = |body: &str| parse_ranges(body.as_bytes()).unwrap_err();
        match err("{\n  \"prefixes\": [\n    {\"ipv4Prefix\": \"66.249.64.0/27\"},\n") {
            RangesError::Json { line, .. } => assert_eq!(line, 4),
            other => panic!("{other:?}"),
        }
        match err("{\"prefixes\": [} ") {
            RangesError::Json { line, column, .. } => assert_eq!((line, column), (1, 15)),
            other => panic!("{other:?}"),
        }
        assert_eq!(err("{\"creationTime\": \"x\"}"), RangesError::NoPrefixes);
        assert_eq!(
            err("{\"prefixes\": {\"ipv4Prefix\": \"66.249.64.0/27\"}}"),
            RangesError::NoPrefixes
        );
        assert_eq!(err("{\"prefixes\": []}"), RangesError::Empty);
        let at = |body: &str| match err(body) {
            RangesError::Prefix { index, problem } => (index, problem),
            other => panic!("{other:?}"),
        };
        let good = "{\"ipv4Prefix\": \"66.249.64.0/27\"}";
        assert_eq!(
            at(&format!(
                "{{\"prefixes\": [{good}, {good}, {{\"ipv4Prefix\": \"66.249.64.0/33\"}}]}}"
            )),
            (2, "invalid range \"66.249.64.0/33\"".into())
        );
        assert_eq!(
            at("{\"prefixes\": [{\"ipv4Prefix\": \"2001:db8::/32\"}]}").1,
            "ipv4Prefix holds \"2001:db8::/32\""
        );
        assert_eq!(
            at("{\"prefixes\": [{\"ipv6Prefix\": \"66.249.64.0/27\"}]}").1,
            "ipv6Prefix holds \"66.249.64.0/27\""
        );
        assert_eq!(
            at("{\"prefixes\": [{\"service\": \"x\"}]}").1,
            "neither ipv4Prefix nor ipv6Prefix"
        );
        assert_eq!(
            at("{\"prefixes\": [{\"ipv4Prefix\": 5}]}").1,
            "ipv4Prefix is not a string"
        );
        assert_eq!(
            at("{\"prefixes\": [\"66.249.64.0/27\"]}").1,
            "not an object"
        );
        assert!(at("{\"prefixes\": [{\"ipv4Prefix\": \"0.0.0.0/0\"}]}")
            .1
            .contains("too broad"));
        assert!(at("{\"prefixes\": [{\"ipv4Prefix\": \"10.0.0.0/7\"}]}")
            .1
            .contains("too broad"));
        assert!(at("{\"prefixes\": [{\"ipv6Prefix\": \"2000::/3\"}]}")
            .1
            .contains("too broad"));
        assert!(
            at("{\"prefixes\": [{\"ipv6Prefix\": \"::ffff:0.0.0.0/96\"}]}")
                .1
                .contains("too broad")
        );
        // The broadest accepted.
        let broadest =
            br#"{"prefixes": [{"ipv4Prefix": "17.0.0.0/8"}, {"ipv6Prefix": "2a01:b740::/32"}]}"#;
        assert!(parse_ranges(broadest).is_ok());
        // Extra keys are the operator's business.
        let extra =
            br#"{"syncToken": "1", "prefixes": [{"ipv4Prefix": "66.249.64.0/27", "scope": "x"}]}"#;
        assert!(parse_ranges(extra).is_ok());
    }

    #[test]
    fn plain_text_ranges() {
        let text = "# Googlebot, converted from googlebot.json\r\n66.249.64.0/27\r\n\
                    2001:4860:4801:10::/64   # IPv6\n\n  192.0.2.7\n66.249.66.0/27 66.249.68.0/27\n";
        let nets = parse_ranges(text.as_bytes()).unwrap();
        assert_eq!(nets.len(), 5);
        assert!(IpSet::new(nets).contains(ip("192.0.2.7")));
        assert_eq!(
            parse_ranges(b"66.249.64.0/27\n\n# fine so far\nnot-a-range\n"),
            Err(RangesError::Line {
                line: 4,
                problem: "invalid range \"not-a-range\"".into()
            })
        );
        assert_eq!(parse_ranges(b"# nothing\n\n"), Err(RangesError::Empty));
        assert_eq!(parse_ranges(b""), Err(RangesError::Empty));
        assert!(matches!(
            parse_ranges(b"0.0.0.0/1"),
            Err(RangesError::Line { line: 1, .. })
        ));
        assert!(matches!(
            parse_ranges(b"<html>Not Found</html>"),
            Err(RangesError::Line { line: 1, .. })
        ));
        assert!(matches!(
            parse_ranges(b"\xff\xfe\x00garbage"),
            Err(RangesError::Line { .. })
        ));
        assert_eq!(
            RangesError::Line {
                line: 3,
                problem: "invalid range \"x\"".into()
            }
            .to_string(),
            "line 3: invalid range \"x\""
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..2000 {
            let len = round % 200;
            let mut body = Vec::with_capacity(len + 1);
            if round % 2 == 0 {
                body.push(b'{');
            }
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                const ALPHABET: &[u8] = b"{}[]\":,0123456789./ipv4Prefix6 \n#x\xff";
                body.push(ALPHABET[(state % ALPHABET.len() as u64) as usize]);
            }
            let _ = parse_ranges(&body);
            let _ = Crawler::claimed(&body);
        }
    }

    fn table(capacity: usize) -> (Vec<crate::state::table::TestLine>, Table<CrawlerCheck>) {
        crate::state::table::test_table(capacity)
    }

    #[test]
    fn one_check_per_address_at_a_time_and_verdicts_kept() {
        let (_buf, t) = table(64);
        let key = [3; 16];
        let g = Crawler::Google;
        t.with(crate::state::holder::Holder::immortal(1), |t| {
            assert_eq!(
                read_and_mark(t, &key, g, 1000),
                (Verification::Unknown, true)
            );
            // Under way: nobody else starts one until it times out.
            assert_eq!(
                read_and_mark(t, &key, g, 1001),
                (Verification::Unknown, false)
            );
            assert_eq!(
                read_and_mark(t, &key, g, 1000 + PENDING_SECS),
                (Verification::Unknown, true)
            );
            record_verification(t, &key, g, Verification::Verified, 1040, 86400);
            assert_eq!(
                read_and_mark(t, &key, g, 1041),
                (Verification::Verified, false)
            );
            assert_eq!(
                read_and_mark(t, &key, g, 1040 + 86399),
                (Verification::Verified, false)
            );
            // Another claim from the same address is its own question.
            assert_eq!(
                read_and_mark(t, &key, Crawler::Bing, 1042),
                (Verification::Unknown, true)
            );
            record_verification(t, &key, Crawler::Bing, Verification::Fake, 1043, 86400);
            assert_eq!(
                read_and_mark(t, &key, Crawler::Bing, 1044),
                (Verification::Fake, false)
            );
            // Verdicts run out.
            assert_eq!(
                read_and_mark(t, &key, Crawler::Bing, 1043 + 86400),
                (Verification::Unknown, true)
            );
            // A failed check is tried again after a while.
            record_verification(t, &key, g, Verification::Unknown, 2000, 86400);
            assert_eq!(
                read_and_mark(t, &key, g, 2001),
                (Verification::Unknown, false)
            );
            assert_eq!(
                read_and_mark(t, &key, g, 2000 + RETRY_SECS),
                (Verification::Unknown, true)
            );
        });
        let done = CrawlerCheck::finished(g, Verification::Verified, 5, 10);
        assert_eq!(
            (done.crawler(), done.checked_at(), done.expires_ms()),
            (Some(g), 5, 15_000)
        );
        assert_eq!(
            CrawlerCheck::finished(g, Verification::Unknown, 5, 10).expires_ms(),
            15_000
        );
        let far = CrawlerCheck::finished(g, Verification::Fake, u64::MAX - 1, u64::MAX);
        assert_eq!(far.expires_ms(), u64::from(u32::MAX) * 1000);
    }

    #[test]
    fn every_bit_pattern_reads_as_something() {
        assert_eq!(core::mem::size_of::<CrawlerCheck>(), 12);
        let empty = CrawlerCheck::default();
        assert_eq!(
            empty.verification(Crawler::Google, 0),
            Verification::Unknown
        );
        assert!(empty.wants_check(Crawler::Google, 0));
        assert_eq!(empty.crawler(), None);
        for state in 0..=255u8 {
            for crawler in [0, 1, 2, 4, 5, 255] {
                let entry = CrawlerCheck {
                    state,
                    crawler,
                    _reserved: [0xff; 2],
                    checked_at: u32::MAX,
                    until: u32::MAX,
                };
                for c in Crawler::ALL {
                    let v = entry.verification(c, 0);
                    let expected = match (state, crawler == c as u8) {
                        (VERIFIED, true) => Verification::Verified,
                        (FAKE, true) => Verification::Fake,
                        _ => Verification::Unknown,
                    };
                    assert_eq!(v, expected, "state {state} crawler {crawler} as {c}");
                }
            }
        }
    }
}
