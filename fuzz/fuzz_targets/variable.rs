//! A rule's value read from an nginx variable, which may come from a client's header: the
//! action, the hardness and the captcha type, and the log's view of a bad value.
#![no_main]

use captchaify::challenge::ChallengeKind;
use captchaify::policy::variable::{read, shown, warning, PerRequest, SHOWN_BYTES};
use captchaify::policy::{Action, Hardness};
use libfuzzer_sys::fuzz_target;

fn check<T: PerRequest + PartialEq + core::fmt::Debug>(value: &[u8]) {
    match read::<T>(value) {
        // A valid value is exactly a name the directive takes.
        Ok(setting) => assert_eq!(setting.name().as_bytes(), value),
        Err(used) => {
            assert_eq!(used, T::STRICTEST);
            let line = warning(value, used, 3);
            assert!(!line.bytes().any(|b| b.is_ascii_control()), "{line:?}");
        }
    }
}

fuzz_target!(|value: &[u8]| {
    check::<Action>(value);
    check::<Hardness>(value);
    check::<ChallengeKind>(value);
    // What the log shows: printable ASCII only, no quote or backslash unescaped, bounded.
    let text = shown(value);
    assert!(text.bytes().all(|b| (0x20..0x7f).contains(&b)), "{text:?}");
    assert!(text.len() <= SHOWN_BYTES * 4 + 3);
});
