//! The Local API's answers to the machine that reports alerts: the login, the ids of the
//! alerts it took, and the RFC 3339 times in them.
#![no_main]

use captchaify::crowdsec::alerts::{parse_alert_ids, parse_login, parse_rfc3339, rfc3339};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let _ = parse_login(body);
    let _ = parse_alert_ids(body);
    if let Ok(text) = std::str::from_utf8(body) {
        if let Some(secs) = parse_rfc3339(text) {
            // What we read, we write back readably.
            assert!(parse_rfc3339(&rfc3339(secs)).is_some(), "{text:?} -> {secs}");
        }
    }
    if body.len() >= 8 {
        let secs = u64::from_le_bytes(body[..8].try_into().unwrap()) % 300_000_000_000;
        let text = rfc3339(secs);
        if let Some(back) = parse_rfc3339(&text) {
            assert_eq!(rfc3339(back), text);
        }
    }
});
