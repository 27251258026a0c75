//! The pieces of a request the module reads without nginx: the `Cookie` header, the query
//! string, the one pass candidate, and the module's own paths.
#![no_main]

use captchaify::challenge::token::{looks_like_pass, PASS_NAME};
use captchaify::request::{argument_values, cookie_values, pass_candidate, OwnPath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The input is a Cookie header and a query string, split at the first NUL.
    let (header, args) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let name = PASS_NAME.as_bytes();
    let cookies: Vec<&[u8]> = cookie_values(header, name).collect();
    for value in &cookies {
        // A value lies inside the header, never spans a `;`, and is trimmed.
        assert!(!value.contains(&b';'));
        assert!(within(header, value));
        assert_eq!(value.trim_ascii(), *value);
    }
    let arguments: Vec<&[u8]> = argument_values(args, name).collect();
    for value in &arguments {
        assert!(!value.contains(&b'&'));
        assert!(within(args, value));
    }
    if let Some((token, _)) = pass_candidate(cookies.iter().copied(), arguments.iter().copied(), looks_like_pass) {
        assert!(looks_like_pass(token));
    }
    if let Some(own) = OwnPath::find(header) {
        assert_eq!(own.path().as_bytes(), header);
    }
});

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (start, end) = (outer.as_ptr() as usize, outer.as_ptr() as usize + outer.len());
    let at = inner.as_ptr() as usize;
    inner.is_empty() || (start <= at && at + inner.len() <= end)
}
