//! The spent-challenge set every worker shares (a Bloom filter per window), against a model:
//! spends and checks across moving windows, other processes attaching, holders dying with the
//! lock and holders killed between two writes of a spend or of a filter's clearing. See
//! `captchaify::state::spent::harness`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    captchaify::state::spent::harness::fuzz(data);
});
