//! The shared table every worker reads, against a model of it: every operation, other
//! processes attaching, holders dying with the lock, holders killed between two writes of an
//! operation (and of the repair), and regions scribbled over. See
//! `captchaify::state::table::harness`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    captchaify::state::table::harness::fuzz(data);
});
