//! The pre-check proof (`p1.…`), bound to the client and the path it was given for.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use captchaify::challenge::token::{check_precheck, issue_precheck};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8]) -> Result<()> {
    let secrets = common::secrets();
    let mut u = Unstructured::new(data);
    let client = common::client(&mut u)?;
    let path: &str = u.arbitrary()?;
    let now: u64 = u.int_in_range(0..=4_000_000_000)?;
    if u.arbitrary::<bool>()? {
        let token = u.bytes(u.len())?;
        assert!(!check_precheck(&common::unissued_secrets(), token, client, path, now));
        return Ok(());
    }
    let expires: u64 = u.arbitrary()?;
    let token = issue_precheck(&secrets, client, path, expires);
    assert_eq!(check_precheck(&secrets, token.as_bytes(), client, path, now), now < expires);
    let other_path: &str = u.arbitrary()?;
    if other_path != path {
        assert!(!check_precheck(&secrets, token.as_bytes(), client, other_path, 0));
    }
    let thief = common::client(&mut u)?;
    if thief != client {
        assert!(!check_precheck(&secrets, token.as_bytes(), thief, path, 0));
    }
    assert!(!check_precheck(&common::other_secrets(), token.as_bytes(), client, path, 0));
    let edited = common::mutate(token.as_bytes(), &mut u)?;
    if edited != token.as_bytes() {
        assert!(
            !check_precheck(&secrets, &edited, client, path, 0),
            "{token} edited into {:?} was accepted",
            String::from_utf8_lossy(&edited)
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
