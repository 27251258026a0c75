//! CrowdSec's decision stream (`/v1/decisions/stream`), and the Go durations in it.
#![no_main]

use captchaify::crowdsec::stream::{go_duration_secs, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let _ = parse(body);
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = go_duration_secs(text);
    }
});
