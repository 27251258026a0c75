//! What the token targets share: the secrets, a client from the input, and an attacker's
//! edit of a genuine token.
#![allow(dead_code)]

use std::net::IpAddr;

use captchaify::challenge::token::{ClientBinding, Secrets};
use libfuzzer_sys::arbitrary::{Result, Unstructured};

/// A current secret and the previous one, as during a rotation.
pub fn secrets() -> Secrets {
    Secrets::new(vec![0x5a; 32], Some(vec![0xa5; 40])).expect("32 bytes or more")
}

/// A secret the attacker may have, which signs nothing we accept.
pub fn other_secrets() -> Secrets {
    Secrets::new(vec![0x33; 32], None).expect("32 bytes")
}

/// The secret that checks tokens made of the input's bytes: it never signs anything in the
/// targets. (The targets' own comparisons show libFuzzer genuine tokens of `secrets()`, which it
/// then replays, rightly accepted; under this one nothing can be.)
pub fn unissued_secrets() -> Secrets {
    Secrets::new(vec![0x77; 48], Some(vec![0x78; 32])).expect("32 bytes or more")
}

pub fn address(u: &mut Unstructured<'_>) -> Result<IpAddr> {
    Ok(if u.arbitrary::<bool>()? {
        IpAddr::from(u.arbitrary::<[u8; 4]>()?)
    } else {
        IpAddr::from(u.arbitrary::<[u8; 16]>()?)
    })
}

pub fn client(u: &mut Unstructured<'_>) -> Result<ClientBinding> {
    let address = address(u)?;
    let user_agent: &[u8] = u.arbitrary()?;
    Ok(ClientBinding::new(address, user_agent))
}

/// The attacker's edit of a genuine token: bytes flipped, replaced, inserted, removed, or
/// the token cut. May leave it unchanged (the caller compares).
pub fn mutate(token: &[u8], u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let mut out = token.to_vec();
    for _ in 0..u.int_in_range(1..=4)? {
        let at = u.choose_index(out.len() + 1)?;
        match u.int_in_range(0..=4)? {
            0 if at < out.len() => out[at] ^= 1 << u.int_in_range(0..=7)?,
            1 if at < out.len() => out[at] = u.arbitrary()?,
            2 => out.insert(at, u.arbitrary()?),
            3 if at < out.len() => _ = out.remove(at),
            _ => out.truncate(at),
        }
    }
    Ok(out)
}
