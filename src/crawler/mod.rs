//! Crawlers in one place: recognised by their user agent (here), verified against their
//! operator's published ranges and DNS ([`verified`]), and shown what a page is about when
//! they face the captcha ([`hints`]). The glue that runs the checks and fetches the hints is
//! `nginx/crawlers.rs` and `nginx/hints.rs`.
//!
//! Crawlers, bots and HTTP libraries are recognised by their user agent.
//! The patterns are those of the `isbot` crate (a few hundred regular expressions drawn from
//! the maintained omrilotan/isbot list, matched as one compiled regex). On top of them, a
//! request without a user agent, or with one no browser would send, counts as a crawler too.

use std::sync::LazyLock;

use crate::cache::ByteCache;

pub mod hints;
pub mod verified;

static KNOWN_BOTS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);

/// Longer user agents are not from browsers (theirs stay well under 512 bytes); they are
/// treated as bots without running the patterns over them.
pub const MAX_BROWSER_USER_AGENT: usize = 2048;

/// Compiles the pattern list now, so that the first request of each worker does not pay
/// for it (call this at configuration time, before nginx forks its workers).
pub fn warm_up() {
    LazyLock::force(&KNOWN_BOTS);
}

/// Whether a request with this `User-Agent` header (absent: `None`) comes from a crawler.
pub fn is_crawler(user_agent: Option<&[u8]>) -> bool {
    let Some(user_agent) = user_agent else {
        return true;
    };
    let trimmed = user_agent.trim_ascii();
    if trimmed.is_empty() || trimmed.len() > MAX_BROWSER_USER_AGENT {
        return true;
    }
    KNOWN_BOTS.is_bot(&String::from_utf8_lossy(trimmed))
}

/// User agents longer than this are not remembered (browsers' are 100–300 bytes).
const MAX_CACHED_USER_AGENT: usize = 320;

/// A worker's memory of the verdicts [`is_crawler`] gave: running a few hundred patterns over
/// a user agent is the dearest step of a person's request, and a site sees the same few
/// hundred browsers' user agents over and over. A hit needs the exact same bytes, so no
/// collision can change a verdict (see [`ByteCache`]).
#[derive(Debug)]
pub struct CrawlerCache {
    verdicts: ByteCache<bool, MAX_CACHED_USER_AGENT>,
}

impl CrawlerCache {
    pub fn new(slots: usize) -> CrawlerCache {
        CrawlerCache {
            verdicts: ByteCache::new(slots),
        }
    }

    /// [`is_crawler`], remembered.
    pub fn is_crawler(&mut self, user_agent: Option<&[u8]>) -> bool {
        let Some(ua) = user_agent else {
            return is_crawler(None);
        };
        if let Some(&crawler) = self.verdicts.get(ua) {
            return crawler;
        }
        let crawler = is_crawler(user_agent);
        self.verdicts.put(ua, crawler);
        crawler
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_gives_the_same_verdicts() {
        let mut cache = CrawlerCache::new(4);
        let agents: [Option<&[u8]>; 7] = [
            Some(FIREFOX.as_bytes()),
            Some(b"curl/8.5.0"),
            Some(CHROME.as_bytes()),
            None,
            Some(b""),
            Some(b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
            Some(SAFARI_IOS.as_bytes()),
        ];
        // Twice round, so the second pass hits (or meets a slot another agent took).
        for _ in 0..2 {
            for ua in agents {
                assert_eq!(
                    cache.is_crawler(ua),
                    is_crawler(ua),
                    "{:?}",
                    ua.map(String::from_utf8_lossy)
                );
            }
        }
        // One slot: every agent evicts the one before, and verdicts never leak across.
        let mut tiny = CrawlerCache::new(1);
        for ua in agents.iter().chain(agents.iter()) {
            assert_eq!(tiny.is_crawler(*ua), is_crawler(*ua));
        }
        // An agent that starts like a cached browser agent is judged on its own.
        let mut cache = CrawlerCache::new(1);
        assert!(!cache.is_crawler(Some(b"Mozilla/5.0 (X11) Firefox/128.0")));
        assert!(cache.is_crawler(Some(b"Mozilla/5.0 (X11) Firefox/128.0 Googlebot/2.1")));
        assert!(!cache.is_crawler(Some(b"Mozilla/5.0 (X11) Firefox/128.0")));
        let long = format!("{FIREFOX} {}", "x".repeat(MAX_CACHED_USER_AGENT));
        assert_eq!(
            cache.is_crawler(Some(long.as_bytes())),
            is_crawler(Some(long.as_bytes()))
        );
    }

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const SAFARI_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
        AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

    #[test]
    fn browsers_are_not_crawlers() {
        for ua in [
            FIREFOX,
            CHROME,
            SAFARI_IOS,
            "Lynx/2.9.0dev.12 libwww-FM/2.14",
            "w3m/0.5.3",
        ] {
            assert!(!is_crawler(Some(ua.as_bytes())), "{ua}");
        }
    }

    #[test]
    fn crawlers_and_libraries_are() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "curl/8.5.0",
            "python-requests/2.31.0",
            "Go-http-client/1.1",
            "Wget/1.21.3",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             HeadlessChrome/120.0.0.0 Safari/537.36",
        ] {
            assert!(is_crawler(Some(ua.as_bytes())), "{ua}");
        }
    }

    #[test]
    fn missing_empty_or_absurd_user_agents_are_crawlers() {
        assert!(is_crawler(None));
        assert!(is_crawler(Some(b"")));
        assert!(is_crawler(Some(b"   ")));
        let huge = FIREFOX.repeat(100);
        assert!(is_crawler(Some(huge.as_bytes())));
    }

    #[test]
    fn invalid_utf8_is_handled() {
        assert!(!is_crawler(Some(
            b"Mozilla/5.0 \xff\xfe (X11) Firefox/128.0"
        )));
        assert!(is_crawler(Some(b"curl/8.0 \xff\xfe")));
    }
}
