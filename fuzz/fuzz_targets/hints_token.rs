//! The token that lets the module's own crawler-hints fetch through (`EXPIRES.TAG`), bound to
//! the host and the URI.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8]) -> Result<()> {
    let secrets = common::secrets();
    let mut u = Unstructured::new(data);
    let host: &[u8] = u.arbitrary()?;
    let uri: &[u8] = u.arbitrary()?;
    let now: u64 = u.int_in_range(0..=4_000_000_000)?;
    if u.arbitrary::<bool>()? {
        let token = u.bytes(u.len())?;
        assert!(!common::unissued_secrets().check_hints_token(token, host, uri, now));
        return Ok(());
    }
    let expires: u64 = u.arbitrary()?;
    let token = secrets.hints_token(host, uri, expires);
    assert_eq!(secrets.check_hints_token(token.as_bytes(), host, uri, now), now <= expires);
    let other_uri: &[u8] = u.arbitrary()?;
    if other_uri != uri {
        assert!(!secrets.check_hints_token(token.as_bytes(), host, other_uri, 0));
    }
    let other_host: &[u8] = u.arbitrary()?;
    if other_host != host {
        assert!(!secrets.check_hints_token(token.as_bytes(), other_host, uri, 0));
    }
    assert!(!common::other_secrets().check_hints_token(token.as_bytes(), host, uri, 0));
    let edited = common::mutate(token.as_bytes(), &mut u)?;
    if edited != token.as_bytes() {
        assert!(
            !secrets.check_hints_token(&edited, host, uri, 0),
            "{token} edited into {:?} was accepted",
            String::from_utf8_lossy(&edited)
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
