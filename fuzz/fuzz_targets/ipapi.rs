//! ip-api.com's JSON answer for one address.
#![no_main]

use captchaify::reputation::feeds::parse_ipapi;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(answer) = parse_ipapi(body) {
        if let Some(country) = answer.country {
            assert!(country.iter().all(u8::is_ascii_uppercase), "{country:?}");
        }
    }
});
