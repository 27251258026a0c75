//! StopForumSpam's JSON answer for a batch of addresses.
#![no_main]

use captchaify::reputation::feeds::parse_sfs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(answers) = parse_sfs(body) {
        for answer in answers {
            if let Some(confidence) = answer.confidence {
                assert!((0.0..=100.0).contains(&confidence), "{confidence}");
            }
        }
    }
});
