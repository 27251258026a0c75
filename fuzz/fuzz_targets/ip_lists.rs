//! The operator's address lists (`captchaify_block_ips` files and the like).
#![no_main]

use captchaify::reputation::ranges::{parse_file_text, IpSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(nets) = parse_file_text(text, "fuzz.txt") {
        let set = IpSet::new(nets.iter().copied());
        for net in &nets {
            assert!(set.contains(net.addr()), "{net}");
        }
    }
});
