//! The address ranges search engines publish for their crawlers (JSON or plain text).
#![no_main]

use captchaify::crawler::verified::parse_ranges;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(nets) = parse_ranges(body) {
        // Never "all of IPv4" (or a /7): a file saying so would verify every liar.
        for net in nets {
            match net {
                ipnet::IpNet::V4(v4) => assert!(v4.prefix_len() >= 8, "{v4}"),
                ipnet::IpNet::V6(v6) => assert!(v6.prefix_len() >= 32, "{v6}"),
            }
        }
    }
});
