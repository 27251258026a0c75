//! The pass (`v1.…`): any bytes as a cookie or URL argument, and a genuine pass edited by an
//! attacker. Only the genuine, unedited pass of the right client is ever accepted.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use captchaify::challenge::token::{check_pass, issue_pass, looks_like_pass};
use captchaify::policy::Hardness;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const HARDNESS: [Hardness; 3] = [Hardness::EASY, Hardness::NORMAL, Hardness::HARD];

fn run(data: &[u8]) -> Result<()> {
    let secrets = common::secrets();
    let mut u = Unstructured::new(data);
    let client = common::client(&mut u)?;
    let now: u64 = u.int_in_range(0..=4_000_000_000)?;
    if u.arbitrary::<bool>()? {
        // Anything a client sends: never accepted (nobody outside has the secret).
        let token = u.bytes(u.len())?;
        for required in HARDNESS {
            assert!(check_pass(&common::unissued_secrets(), token, client, required, now).is_err());
        }
        return Ok(());
    }
    let hardness = *u.choose(&HARDNESS)?;
    let expires: u64 = u.arbitrary()?;
    let id: [u8; 16] = u.arbitrary()?;
    let token = issue_pass(&secrets, client, hardness, expires, id);
    assert!(looks_like_pass(token.as_bytes()), "{token}");
    let required = *u.choose(&HARDNESS)?;
    let verdict = check_pass(&secrets, token.as_bytes(), client, required, now);
    assert_eq!(verdict.is_ok(), expires > now && hardness >= required, "{token}");
    if let Ok(pass) = verdict {
        assert_eq!((pass.expires, pass.hardness, pass.id), (expires, hardness, id));
    }
    // Another client, or another secret, never gets in with it.
    let thief = common::client(&mut u)?;
    if thief != client {
        assert!(check_pass(&secrets, token.as_bytes(), thief, Hardness::EASY, now).is_err());
    }
    assert!(check_pass(&common::other_secrets(), token.as_bytes(), client, Hardness::EASY, now).is_err());
    // Edited: refused unless the edit changed nothing.
    let edited = common::mutate(token.as_bytes(), &mut u)?;
    if edited != token.as_bytes() {
        assert!(
            check_pass(&secrets, &edited, client, Hardness::EASY, 0).is_err(),
            "{token} edited into {:?} was accepted",
            String::from_utf8_lossy(&edited)
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
