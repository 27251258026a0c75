//! The challenge a captcha page hands out (`c2.…`, fourteen fields): any bytes as the form's
//! `challenge`, and genuine challenges of every shape, read back, answered and edited.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use captchaify::challenge::token::{
    check_challenge, is_safe_return_path, issue_challenge, Budget, ChallengeTerms, Delivery,
};
use captchaify::challenge::ChallengeKind;
use captchaify::policy::Hardness;
use captchaify::state::rate::Rate;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn rate(u: &mut Unstructured<'_>) -> Result<Option<Rate>> {
    if u.arbitrary::<bool>()? {
        return Ok(None);
    }
    Ok(Some(Rate {
        count: u.int_in_range(1..=Rate::MAX_COUNT)?,
        period_ms: *u.choose(&[1000, 60_000])?,
    }))
}

fn run(data: &[u8]) -> Result<()> {
    let secrets = common::secrets();
    let mut u = Unstructured::new(data);
    let client = common::client(&mut u)?;
    if u.arbitrary::<bool>()? {
        let token = u.bytes(u.len())?;
        let unissued = common::unissued_secrets();
        assert!(check_challenge(&unissued, token, client).is_err());
        assert!(unissued.audio_seed_of(token, &[0; 16], "en").is_none());
        return Ok(());
    }
    let terms = ChallengeTerms {
        kind: *u.choose(&ChallengeKind::ALL)?,
        hardness: *u.choose(&[Hardness::EASY, Hardness::NORMAL, Hardness::HARD])?,
        pass_age: u.arbitrary()?,
        delivery: *u.choose(&[Delivery::Cookie, Delivery::UrlArgument])?,
        budget: Budget {
            ipv6_prefix: u.int_in_range(1..=128)?,
            rate: rate(&mut u)?,
            audio: rate(&mut u)?,
            location: u.arbitrary()?,
        },
        return_path: u.arbitrary::<String>()?,
    };
    let expires: u64 = u.arbitrary()?;
    let nonce: [u8; 16] = u.arbitrary()?;
    let answer: &str = u.arbitrary()?;
    let token = issue_challenge(&secrets, client, &terms, expires, nonce, answer);
    // Token characters only: safe in a form field, a cookie and a URL.
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{token}");
    match check_challenge(&secrets, token.as_bytes(), client) {
        Ok(challenge) => {
            assert!(is_safe_return_path(terms.return_path.as_bytes()));
            assert_eq!(challenge.terms, terms);
            assert_eq!((challenge.expires, challenge.nonce), (expires, nonce));
            assert!(challenge.is_answer(&secrets, answer));
            let guess: &str = u.arbitrary()?;
            if guess != answer {
                assert!(!challenge.is_answer(&secrets, guess));
            }
            assert!(!challenge.is_answer(&common::other_secrets(), answer));
            assert_eq!(
                secrets.audio_seed_of(token.as_bytes(), &nonce, "en"),
                Some(secrets.audio_seed(&nonce, "en"))
            );
        }
        // Signed by us, but a return path that is not safe is refused all the same.
        Err(_) => assert!(!is_safe_return_path(terms.return_path.as_bytes()), "{token}"),
    }
    let thief = common::client(&mut u)?;
    if thief != client {
        assert!(check_challenge(&secrets, token.as_bytes(), thief).is_err());
    }
    assert!(check_challenge(&common::other_secrets(), token.as_bytes(), client).is_err());
    assert!(common::other_secrets().audio_seed_of(token.as_bytes(), &nonce, "en").is_none());
    let edited = common::mutate(token.as_bytes(), &mut u)?;
    if edited != token.as_bytes() {
        assert!(
            check_challenge(&secrets, &edited, client).is_err(),
            "{token} edited into {:?} was accepted",
            String::from_utf8_lossy(&edited)
        );
        assert!(secrets.audio_seed_of(&edited, &nonce, "en").is_none());
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
