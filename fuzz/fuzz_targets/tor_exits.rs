//! The Tor exit list, as downloaded (the bulk list or TorDNSEL's format).
#![no_main]

use captchaify::reputation::feeds::parse_tor_exits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(list) = parse_tor_exits(body) {
        // Each address comes from a line of its own.
        assert!(list.addrs.len() <= body.split(|&b| b == b'\n').count());
    }
});
