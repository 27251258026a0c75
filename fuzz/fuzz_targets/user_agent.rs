//! The `User-Agent` header: the crawler test on every request, and which search engine a
//! client claims to be.
#![no_main]

use captchaify::crawler::verified::Crawler;
use captchaify::crawler::{is_crawler, CrawlerCache};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|ua: &[u8]| {
    let direct = is_crawler(Some(ua));
    // The workers' cache answers as the detector does, also on a second look.
    let mut cache = CrawlerCache::new(8);
    assert_eq!(cache.is_crawler(Some(ua)), direct);
    assert_eq!(cache.is_crawler(Some(ua)), direct);
    if let Some(crawler) = Crawler::claimed(ua) {
        let _ = crawler.host_allowed(&String::from_utf8_lossy(ua));
    }
});
