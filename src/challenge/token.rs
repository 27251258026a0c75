//! The two signed tokens: the challenge a captcha page hands out, and the pass a solved
//! captcha earns. Both are short ASCII strings (`[A-Za-z0-9_.-]`), safe in a cookie, a URL
//! argument or a form field, signed with HMAC-SHA256 and checked in constant time.
//!
//! ```text
//! pass:      v1.<expires>.<hardness>.<id>.<client>.<mac>
//! challenge: c2.<expires>.<hardness>.<age>.<delivery>.<prefix>.<rate>.<audio>.<location>
//!              .<nonce>.<client>.<answer>.<return>.<mac>
//! ```
//!
//! - `expires`: Unix time in seconds, decimal; `hardness`: `1`–`3`; `age`: how long the pass
//!   earned by solving the challenge lasts, in seconds; `delivery`: `c` (cookie) or `u` (URL
//!   argument) — all decided by the location that showed the captcha;
//! - `prefix`, `rate`, `audio`, `location`: that location's [`Budget`], by which the
//!   module's own paths count the client: its IPv6 prefix length, its page and audio rate
//!   limits (`120m` is 120 per minute, `10s` 10 per second, `off`), and its key in the rate
//!   table (16 bytes);
//! - `id`, `nonce`: 16 random bytes; `answer`: the first 16 bytes of
//!   `HMAC(secret, "captchaify-answer|" + nonce + "|" + normalized answer)` — a commitment, so
//!   the token never reveals the answer and cannot be checked offline without the secret;
//! - `client`: the first 12 bytes of `SHA-256("captchaify-client|" + address + "|" + user agent)`,
//!   where the address is the IPv4 address or the IPv6 /64 prefix (see [`ClientBinding`]);
//! - `return`: the relative return path;
//! - byte fields are unpadded base64url; `mac` is
//!   `HMAC-SHA256(secret, "captchaify-pass|" + everything before ".<mac>")` for a pass
//!   (`"captchaify-challenge|"` for a challenge), base64url.

use std::borrow::Cow;
use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher24};

use crate::policy::Hardness;
use crate::state::rate::Rate;

type HmacSha256 = Hmac<Sha256>;

/// Tokens longer than this are garbage and are not even parsed.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The secrets that sign tokens: the current one, and during a rotation the previous one,
/// which is still accepted but never used to sign.
#[derive(Clone)]
pub struct Secrets {
    /// HMAC states with the key already absorbed, cloned per use: keying HMAC costs two
    /// SHA-256 blocks, which every request would otherwise pay again.
    current_mac: HmacSha256,
    previous_mac: Option<HmacSha256>,
    /// The SipHash key for table keys, derived from the current secret.
    table: [u8; 16],
}

impl Secrets {
    pub const MIN_LEN: usize = 32;

    /// `None` if a secret is shorter than [`Secrets::MIN_LEN`] bytes.
    pub fn new(current: Vec<u8>, previous: Option<Vec<u8>>) -> Option<Secrets> {
        let long_enough = |s: &Vec<u8>| s.len() >= Self::MIN_LEN;
        if !(long_enough(&current) && previous.as_ref().map_or(true, long_enough)) {
            return None;
        }
        // HMAC accepts keys of any length: new_from_slice cannot fail for it.
        let current_mac = HmacSha256::new_from_slice(&current).ok()?;
        let previous_mac = match &previous {
            Some(previous) => Some(HmacSha256::new_from_slice(previous).ok()?),
            None => None,
        };
        let mut table = [0u8; 16];
        table.copy_from_slice(&Self::mac(&current_mac, "captchaify-table-key", b"")[..16]);
        Some(Secrets {
            current_mac,
            previous_mac,
            table,
        })
    }

    fn mac(keyed: &HmacSha256, domain: &str, message: &[u8]) -> [u8; 32] {
        let mut mac = keyed.clone();
        mac.update(domain.as_bytes());
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    fn sign(&self, domain: &str, message: &[u8]) -> [u8; 32] {
        Self::mac(&self.current_mac, domain, message)
    }

    /// Checks a tag against the current and the previous secret, in constant time.
    fn verify(&self, domain: &str, message: &[u8], tag: &[u8]) -> bool {
        let check = |keyed: &HmacSha256| {
            let mut mac = keyed.clone();
            mac.update(domain.as_bytes());
            mac.update(message);
            mac.verify_slice(tag).is_ok()
        };
        check(&self.current_mac) | self.previous_mac.as_ref().is_some_and(check)
    }

    /// A key for the shared tables, so that nobody can predict or steer where a client lands:
    /// SipHash-2-4 with 128-bit output (a pseudorandom function built for exactly this: hash
    /// tables fed by attackers) under a key derived from the secret, over the purpose and the
    /// parts, each length-prefixed so that no two different inputs read alike. The same in
    /// every worker and after a reload with the same secret; a tenth the cost of an HMAC,
    /// which matters because every rate-limited request needs one or two.
    /// The seed of a challenge's audio clip in a language: secret, so that nobody else can
    /// make the clip (and hear its digits), and the same every time, so that the clip can be
    /// made again for its download link instead of being kept anywhere. Another language
    /// gives other digits, never the same digits in another voice.
    pub fn audio_seed(&self, nonce: &[u8; 16], language: &str) -> [u8; 32] {
        Self::audio_seed_with(&self.current_mac, nonce, language)
    }

    /// The audio seed of a challenge token, with the secret that signed it (the previous one
    /// for a challenge made just before a rotation). `None` for a token not signed by us.
    pub fn audio_seed_of(
        &self,
        token: &[u8],
        nonce: &[u8; 16],
        language: &str,
    ) -> Option<[u8; 32]> {
        let (body, fields) = split_signed(token, CHALLENGE_FIELDS).ok()?;
        let tag = decode_exact::<32>(fields.last()?).ok()?;
        let signed_by = |keyed: &HmacSha256| {
            let mut mac = keyed.clone();
            mac.update(CHALLENGE_DOMAIN.as_bytes());
            mac.update(body);
            mac.verify_slice(&tag).is_ok()
        };
        [Some(&self.current_mac), self.previous_mac.as_ref()]
            .into_iter()
            .flatten()
            .find(|keyed| signed_by(keyed))
            .map(|keyed| Self::audio_seed_with(keyed, nonce, language))
    }

    fn audio_seed_with(keyed: &HmacSha256, nonce: &[u8; 16], language: &str) -> [u8; 32] {
        let message = [B64.encode(nonce).as_bytes(), b"|", language.as_bytes()].concat();
        Self::mac(keyed, AUDIO_DOMAIN, &message)
    }

    /// The token that lets the module's own crawler-hints fetch of `uri` on `host` through
    /// until `expires` (Unix seconds): `EXPIRES.TAG`, TAG an HMAC over all three.
    pub fn hints_token(&self, host: &[u8], uri: &[u8], expires: u64) -> String {
        let tag = self.sign(HINTS_DOMAIN, &hints_message(host, uri, expires));
        format!("{expires}.{}", B64.encode(tag))
    }

    /// Whether `token` lets the fetch of `uri` on `host` through at `now`.
    pub fn check_hints_token(&self, token: &[u8], host: &[u8], uri: &[u8], now: u64) -> bool {
        let Some((expires, tag)) = token
            .split(|&b| b == b'.')
            .collect::<Vec<_>>()
            .split_first()
            .and_then(|(e, rest)| {
                let expires = parse_u64(e).ok()?;
                match rest {
                    [tag] => Some((expires, decode_exact::<32>(tag).ok()?)),
                    _ => None,
                }
            })
        else {
            return false;
        };
        now <= expires && self.verify(HINTS_DOMAIN, &hints_message(host, uri, expires), &tag)
    }

    pub fn table_key(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 16] {
        let mut hasher = SipHasher24::new_with_key(&self.table);
        // SipHash is a stream: one write of the assembled input equals many small writes,
        // and costs half as much.
        let mut buffer = [0u8; 128];
        let mut len = 0;
        for part in core::iter::once(purpose.as_bytes()).chain(parts.iter().copied()) {
            let prefix = (part.len() as u32).to_le_bytes();
            match buffer.get_mut(len..len + 4 + part.len()) {
                Some(room) => {
                    room[..4].copy_from_slice(&prefix);
                    room[4..].copy_from_slice(part);
                    len += 4 + part.len();
                }
                None => {
                    hasher.write(&buffer[..len]);
                    len = 0;
                    hasher.write(&prefix);
                    hasher.write(part);
                }
            }
        }
        hasher.write(&buffer[..len]);
        hasher.finish128().as_bytes()
    }
}

impl core::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// Who a token belongs to: the client's address (IPv6 by its /64, so privacy addresses of one
/// host stay one client) and its user agent, hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientBinding([u8; 12]);

impl ClientBinding {
    pub fn new(address: IpAddr, user_agent: &[u8]) -> ClientBinding {
        let digest = Sha256::new()
            .chain_update(b"captchaify-client|")
            .chain_update(client_prefix(address).as_bytes())
            .chain_update(b"|")
            .chain_update(user_agent)
            .finalize();
        let mut binding = [0u8; 12];
        binding.copy_from_slice(&digest[..12]);
        ClientBinding(binding)
    }
}

/// The address a client is known by: IPv4 as is, IPv6 by its /64 prefix (e.g.
/// `2001:db8:1:2::/64`); IPv4-mapped IPv6 addresses count as IPv4.
pub fn client_prefix(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(bits))
            }
        },
    }
}

/// Why a token was not accepted. Callers treat every case as "no token".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    BadSignature,
    Expired,
    OtherClient,
    TooEasy,
}

/// A valid pass, as read back from a cookie or URL argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub expires: u64,
    pub hardness: Hardness,
    pub id: [u8; 16],
}

/// Dot-separated fields of a challenge token, the MAC included.
const CHALLENGE_FIELDS: usize = 14;

const PASS_DOMAIN: &str = "captchaify-pass|";
const CHALLENGE_DOMAIN: &str = "captchaify-challenge|";
const ANSWER_DOMAIN: &str = "captchaify-answer|";
const AUDIO_DOMAIN: &str = "captchaify-audio|";
const HINTS_DOMAIN: &str = "captchaify-hints|";
const PRECHECK_DOMAIN: &str = "captchaify-precheck|";

/// The name of the pre-check proof's cookie, and of its URL argument in cookie-less mode.
pub const PRECHECK_NAME: &str = "captchaify_pre";

/// The pre-check's proof, `p1.<expires>.<mac>`: the client came back to `path` within the
/// proof's life, with the cookie (or URL argument) it was given. The MAC binds the expiry,
/// the client (address and user agent, as [`ClientBinding`]) and the path.
pub fn issue_precheck(
    secrets: &Secrets,
    client: ClientBinding,
    path: &str,
    expires: u64,
) -> String {
    let tag = secrets.sign(PRECHECK_DOMAIN, &precheck_message(client, path, expires));
    format!("p1.{expires}.{}", B64.encode(tag))
}

/// Whether `token` is a genuine, unexpired pre-check proof of this client for `path`.
pub fn check_precheck(
    secrets: &Secrets,
    token: &[u8],
    client: ClientBinding,
    path: &str,
    now: u64,
) -> bool {
    let mut fields = token.splitn(3, |&b| b == b'.');
    let (Some(b"p1"), Some(expires), Some(tag), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let (Ok(expires), Ok(tag)) = (parse_u64(expires), decode_exact::<32>(tag)) else {
        return false;
    };
    now < expires
        && secrets.verify(
            PRECHECK_DOMAIN,
            &precheck_message(client, path, expires),
            &tag,
        )
}

fn precheck_message(client: ClientBinding, path: &str, expires: u64) -> Vec<u8> {
    let mut message = Vec::with_capacity(path.len() + 48);
    for part in [
        &client.0[..],
        path.as_bytes(),
        expires.to_string().as_bytes(),
    ] {
        message.extend_from_slice(&(part.len() as u32).to_le_bytes());
        message.extend_from_slice(part);
    }
    message
}

fn hints_message(host: &[u8], uri: &[u8], expires: u64) -> Vec<u8> {
    let mut message = Vec::with_capacity(host.len() + uri.len() + 32);
    for part in [host, uri, expires.to_string().as_bytes()] {
        message.extend_from_slice(&(part.len() as u32).to_le_bytes());
        message.extend_from_slice(part);
    }
    message
}

/// Issues a pass token.
pub fn issue_pass(
    secrets: &Secrets,
    client: ClientBinding,
    hardness: Hardness,
    expires: u64,
    id: [u8; 16],
) -> String {
    let body = format!(
        "v1.{expires}.{}.{}.{}",
        hardness.get(),
        B64.encode(id),
        B64.encode(client.0)
    );
    let mac = secrets.sign(PASS_DOMAIN, body.as_bytes());
    format!("{body}.{}", B64.encode(mac))
}

/// Whether `token` has the shape of a pass (`v1.` and a pass's length), so that one request
/// can bring many cookies but only one plausible candidate is ever checked.
pub fn looks_like_pass(token: &[u8]) -> bool {
    token.starts_with(b"v1.") && (PASS_MIN_LEN..=PASS_MAX_LEN).contains(&token.len())
}

/// A pass's length: `v1.` + expiry (1–20 digits) + hardness + 22 + 16 + 43 base64 characters
/// and five dots.
const PASS_MIN_LEN: usize = 3 + 1 + 1 + 22 + 16 + 43 + 4;
const PASS_MAX_LEN: usize = 3 + 20 + 1 + 22 + 16 + 43 + 4;

/// Reads a pass token; accepts it only if it is genuine, unexpired, for this client, and at
/// least as hard as `required`.
pub fn check_pass(
    secrets: &Secrets,
    token: &[u8],
    client: ClientBinding,
    required: Hardness,
    now: u64,
) -> Result<Pass, Rejection> {
    let (body, fields) = split_signed(token, 6)?;
    let [version, expires, hardness, id, binding, mac] = fields[..] else {
        return Err(Rejection::Malformed);
    };
    if version != b"v1" {
        return Err(Rejection::Malformed);
    }
    if !secrets.verify(PASS_DOMAIN, body, &decode_exact::<32>(mac)?) {
        return Err(Rejection::BadSignature);
    }
    let pass = Pass {
        expires: parse_u64(expires)?,
        hardness: parse_hardness(hardness)?,
        id: decode_exact::<16>(id)?,
    };
    if pass.expires <= now {
        return Err(Rejection::Expired);
    }
    if decode_exact::<12>(binding)? != client.0 {
        return Err(Rejection::OtherClient);
    }
    if pass.hardness < required {
        return Err(Rejection::TooEasy);
    }
    Ok(pass)
}

/// How a pass reaches the client after a solved captcha.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The `captchaify` cookie.
    Cookie,
    /// The `captchaify=` argument on the return path (`captchaify_without_cookies on`).
    UrlArgument,
}

impl Delivery {
    const fn code(self) -> &'static str {
        match self {
            Delivery::Cookie => "c",
            Delivery::UrlArgument => "u",
        }
    }

    fn parse(field: &[u8]) -> Result<Delivery, Rejection> {
        match field {
            b"c" => Ok(Delivery::Cookie),
            b"u" => Ok(Delivery::UrlArgument),
            _ => Err(Rejection::Malformed),
        }
    }
}

impl ChallengeTerms {
    /// Whether the challenge's page carries a clip (text at hardness 3 plays it inline), so
    /// that showing the page spends the client's audio budget.
    pub fn clip_on_page(&self) -> bool {
        self.kind == super::ChallengeKind::Text && self.hardness.has_audio()
    }

    /// Whether the challenge's clip may be downloaded: it has one at hardness 3, and every
    /// picture captcha offers one as its accessible alternative.
    pub fn offers_audio(&self) -> bool {
        self.kind.is_picture() || self.hardness.has_audio()
    }
}

/// What a challenge is for, besides its answer: set by the location that shows the captcha.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeTerms {
    pub kind: super::ChallengeKind,
    pub hardness: Hardness,
    /// Lifetime of the pass a solution earns, in seconds.
    pub pass_age: u64,
    pub delivery: Delivery,
    pub budget: Budget,
    /// Where to send the client once solved: a same-site relative path.
    pub return_path: String,
}

/// The limits of the location that showed a captcha. The module's own paths
/// (`/.captchaify/verify`, `/.captchaify/audio`) answer for that location wherever they fall
/// in the configuration, so they count the client by these, carried in the signed challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `captchaify_ipv6_prefix`: the bits an IPv6 client is counted by.
    pub ipv6_prefix: u8,
    /// `captchaify_rate_limit`: the client's requests to the location; `None` when off.
    pub rate: Option<Rate>,
    /// `captchaify_audio_rate_limit`: the client's audio captchas; `None` when off.
    pub audio: Option<Rate>,
    /// The location's key in the rate table.
    pub location: [u8; 16],
}

impl Default for Budget {
    /// The defaults of a location that sets nothing (for tests and forged challenges).
    fn default() -> Self {
        Budget {
            ipv6_prefix: 64,
            rate: Some(Rate::per_minute(120)),
            audio: Some(Rate::per_minute(6)),
            location: [0; 16],
        }
    }
}

fn rate_field(rate: Option<Rate>) -> String {
    match rate {
        Some(rate) if rate.period_ms == 1000 => format!("{}s", rate.count),
        Some(rate) => format!("{}m", rate.count),
        None => "off".to_owned(),
    }
}

fn parse_rate_field(field: &[u8]) -> Result<Option<Rate>, Rejection> {
    let (number, period_ms) = match field {
        b"off" => return Ok(None),
        [number @ .., b's'] => (number, 1000),
        [number @ .., b'm'] => (number, 60_000),
        _ => return Err(Rejection::Malformed),
    };
    let count = u32::try_from(parse_u64(number)?).map_err(|_| Rejection::Malformed)?;
    if count == 0 || count > Rate::MAX_COUNT {
        return Err(Rejection::Malformed);
    }
    Ok(Some(Rate { count, period_ms }))
}

/// A challenge as handed out with a captcha page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub expires: u64,
    pub terms: ChallengeTerms,
    pub nonce: [u8; 16],
    answer: [u8; 16],
}

impl Challenge {
    pub fn expired(&self, now: u64) -> bool {
        self.expires <= now
    }

    /// Whether `answer` (already normalized) is the one this challenge was made for.
    pub fn is_answer(&self, secrets: &Secrets, normalized_answer: &str) -> bool {
        // Both secrets: a challenge made just before a rotation stays solvable.
        let expected =
            |keyed: &HmacSha256| answer_commitment(keyed, &self.nonce, normalized_answer);
        let matches = |keyed: &HmacSha256| constant_time_eq(&expected(keyed), &self.answer);
        matches(&secrets.current_mac) | secrets.previous_mac.as_ref().is_some_and(matches)
    }
}

fn answer_commitment(keyed: &HmacSha256, nonce: &[u8; 16], normalized_answer: &str) -> [u8; 16] {
    let message = [
        B64.encode(nonce).as_bytes(),
        b"|",
        normalized_answer.as_bytes(),
    ]
    .concat();
    let full = Secrets::mac(keyed, ANSWER_DOMAIN, &message);
    let mut commitment = [0u8; 16];
    commitment.copy_from_slice(&full[..16]);
    commitment
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Issues a challenge token for a captcha whose normalized answer is `answer`.
pub fn issue_challenge(
    secrets: &Secrets,
    client: ClientBinding,
    terms: &ChallengeTerms,
    expires: u64,
    nonce: [u8; 16],
    answer: &str,
) -> String {
    let commitment = answer_commitment(&secrets.current_mac, &nonce, answer);
    let budget = &terms.budget;
    let body = format!(
        "c2.{expires}.{}{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}",
        terms.kind.token_code(),
        terms.hardness.get(),
        terms.pass_age,
        terms.delivery.code(),
        budget.ipv6_prefix,
        rate_field(budget.rate),
        rate_field(budget.audio),
        B64.encode(budget.location),
        B64.encode(nonce),
        B64.encode(client.0),
        B64.encode(commitment),
        B64.encode(terms.return_path.as_bytes()),
    );
    let mac = secrets.sign(CHALLENGE_DOMAIN, body.as_bytes());
    format!("{body}.{}", B64.encode(mac))
}

/// Reads a challenge token back from the form; it must be genuine and this client's. Expiry
/// ([`Challenge::expired`]) is left to the caller, so that an expired challenge can still send
/// its client on to where it was going; whether its nonce was spent is the caller's business
/// too (the shared table).
pub fn check_challenge(
    secrets: &Secrets,
    token: &[u8],
    client: ClientBinding,
) -> Result<Challenge, Rejection> {
    let (body, fields) = split_signed(token, CHALLENGE_FIELDS)?;
    let [version, expires, hardness, age, delivery, prefix, rate, audio, location, nonce, binding, answer, return_path, mac] =
        fields[..]
    else {
        return Err(Rejection::Malformed);
    };
    if version != b"c2" {
        return Err(Rejection::Malformed);
    }
    if !secrets.verify(CHALLENGE_DOMAIN, body, &decode_exact::<32>(mac)?) {
        return Err(Rejection::BadSignature);
    }
    let return_path = B64.decode(return_path).map_err(|_| Rejection::Malformed)?;
    let challenge = Challenge {
        expires: parse_u64(expires)?,
        terms: ChallengeTerms {
            kind: parse_kind(hardness)?,
            hardness: parse_hardness(
                hardness
                    .last()
                    .map(core::slice::from_ref)
                    .unwrap_or_default(),
            )?,
            pass_age: parse_u64(age)?,
            delivery: Delivery::parse(delivery)?,
            budget: Budget {
                ipv6_prefix: u8::try_from(parse_u64(prefix)?)
                    .ok()
                    .filter(|bits| (1..=128).contains(bits))
                    .ok_or(Rejection::Malformed)?,
                rate: parse_rate_field(rate)?,
                audio: parse_rate_field(audio)?,
                location: decode_exact::<16>(location)?,
            },
            // Signed by us, but checked again: the rules may have tightened since.
            return_path: String::from_utf8(return_path)
                .ok()
                .filter(|p| is_safe_return_path(p.as_bytes()))
                .ok_or(Rejection::Malformed)?,
        },
        nonce: decode_exact::<16>(nonce)?,
        answer: decode_exact::<16>(answer)?,
    };
    if decode_exact::<12>(binding)? != client.0 {
        return Err(Rejection::OtherClient);
    }
    Ok(challenge)
}

/// Splits `a.b.c.mac` into the signed body (`a.b.c`) and its `n` fields.
fn split_signed(token: &[u8], n: usize) -> Result<(&[u8], Vec<&[u8]>), Rejection> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::Malformed);
    }
    let fields: Vec<&[u8]> = token.split(|&b| b == b'.').collect();
    if fields.len() != n {
        return Err(Rejection::Malformed);
    }
    let mac_len = fields.last().map_or(0, |m| m.len());
    let body = token
        .get(..token.len() - mac_len - 1)
        .ok_or(Rejection::Malformed)?;
    Ok((body, fields))
}

fn decode_exact<const N: usize>(field: &[u8]) -> Result<[u8; N], Rejection> {
    let bytes = B64.decode(field).map_err(|_| Rejection::Malformed)?;
    bytes.try_into().map_err(|_| Rejection::Malformed)
}

/// A number as we write it: decimal digits, no sign, no leading zero. Only that form, so that
/// no token can be written two ways (a MAC over the number's value, as the pre-check's and
/// the hints token's are, would otherwise accept `+5`, `05` and `5` alike).
fn parse_u64(field: &[u8]) -> Result<u64, Rejection> {
    if field.is_empty()
        || field.len() > 20
        || !field.iter().all(u8::is_ascii_digit)
        || (field.len() > 1 && field[0] == b'0')
    {
        return Err(Rejection::Malformed);
    }
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Rejection::Malformed)
}

/// A challenge's kind: the code before the last character of its hardness field.
fn parse_kind(field: &[u8]) -> Result<super::ChallengeKind, Rejection> {
    let code = field
        .get(..field.len().saturating_sub(1))
        .unwrap_or_default();
    super::ChallengeKind::from_token_code(code).ok_or(Rejection::Malformed)
}

fn parse_hardness(field: &[u8]) -> Result<Hardness, Rejection> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Rejection::Malformed)
}

/// The longest return path kept; longer ones send the client to `/`.
pub const MAX_RETURN_PATH: usize = 2048;

/// Whether `path` may follow a solved captcha: same-site and relative only. It must start
/// with one `/` (not `//`, which browsers read as another host) and hold only the characters
/// a URI path and query may (RFC 3986: letters, digits, `-._~!$&'()*+,;=:@/?` and `%`
/// followed by two hex digits): no backslash (which browsers read as `/`), no control
/// characters (header injection), no spaces, quotes or angle brackets, nothing beyond ASCII.
pub fn is_safe_return_path(path: &[u8]) -> bool {
    path.len() <= MAX_RETURN_PATH
        && path.first() == Some(&b'/')
        && path.get(1) != Some(&b'/')
        && path.iter().enumerate().all(|(i, &b)| match b {
            b'%' => path
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)),
            b => is_uri_char(b),
        })
}

/// A character that may stand for itself in a URI path or query (RFC 3986's `pchar`, `/` and
/// `?`), apart from `%`, which starts an escape.
fn is_uri_char(b: u8) -> bool {
    const TABLE: [bool; 256] = {
        let mut table = [false; 256];
        let mut i = 0;
        while i < 256 {
            let b = i as u8;
            table[i] = b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                        | b'/'
                        | b'?'
                );
            i += 1;
        }
        table
    };
    TABLE[usize::from(b)]
}

/// The return path for a request URI as nginx saw it: every byte that may not stand for
/// itself percent-encoded (a `%` that starts no escape too), our own `captchaify=` argument
/// removed, and `/` whenever the result would not be safe.
pub fn return_path_for(unparsed_uri: &[u8]) -> Cow<'_, str> {
    // The usual request: already safe, none of our arguments, no empty one to drop. It is
    // its own return path (ASCII, so the conversion copies it as it is).
    let plain_query = match unparsed_uri.iter().position(|&b| b == b'?') {
        None => true,
        Some(q) => unparsed_uri
            .get(q + 1..)
            .is_some_and(|query| !query.split(|&b| b == b'&').any(<[u8]>::is_empty)),
    };
    if plain_query
        && is_safe_return_path(unparsed_uri)
        && !unparsed_uri
            .windows(PASS_NAME.len())
            .any(|w| w == PASS_NAME.as_bytes())
    {
        return String::from_utf8_lossy(unparsed_uri);
    }
    Cow::Owned(return_path_in_full(unparsed_uri))
}

fn return_path_in_full(unparsed_uri: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut path = String::with_capacity(unparsed_uri.len());
    for (i, &b) in unparsed_uri.iter().enumerate() {
        let escape = b == b'%'
            && unparsed_uri
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit));
        if is_uri_char(b) || escape {
            path.push(b as char);
        } else {
            path.push('%');
            path.push(HEX[usize::from(b >> 4)] as char);
            path.push(HEX[usize::from(b & 15)] as char);
        }
    }
    let path = strip_argument(&strip_pass_argument(&path), PRECHECK_NAME).into_owned();
    if is_safe_return_path(path.as_bytes()) {
        path
    } else {
        "/".to_string()
    }
}

/// The name of the cookie, and of the URL argument in cookie-less mode.
pub const PASS_NAME: &str = "captchaify";

/// Removes every `captchaify=` argument from a path's query string.
pub fn strip_pass_argument(path: &str) -> Cow<'_, str> {
    strip_argument(path, PASS_NAME)
}

/// Removes every `name=` argument from a path's query string.
pub fn strip_argument<'a>(path: &'a str, name: &str) -> Cow<'a, str> {
    let Some((base, query)) = path.split_once('?') else {
        return Cow::Borrowed(path);
    };
    // Nothing to take out (the usual case): the path as it is.
    if !query.contains(name) && !query.split('&').any(str::is_empty) {
        return Cow::Borrowed(path);
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|arg| !arg.is_empty() && arg.split('=').next() != Some(name))
        .collect();
    Cow::Owned(if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

/// Appends the pass token as a URL argument (cookie-less mode).
pub fn with_pass_argument(path: &str, token: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{PASS_NAME}={token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_return_path_is_the_full_one() {
        let uris: [&[u8]; 18] = [
            b"/",
            b"/a/b.html",
            b"/a?b=1&c=2",
            b"/a?",
            b"/a?&b",
            b"/a?b&&c",
            b"/a?b&",
            b"//evil",
            b"/a?captchaify=v1.x",
            b"/a?captchaify_pre=p1.x&b=2",
            b"/a?x=captchaify",
            b"/%41%zz",
            b"/a b",
            b"/\xc3\xa9",
            b"/a\\b",
            b"/a?b=\"<>\"",
            b"x/a",
            b"/a#frag",
        ];
        for uri in uris {
            assert_eq!(
                return_path_for(uri),
                return_path_in_full(uri),
                "{}",
                String::from_utf8_lossy(uri)
            );
        }
    }

    #[test]
    fn hints_tokens_are_bound_to_host_uri_and_time() {
        let secrets = Secrets::new(vec![7; 32], None).unwrap();
        let token = secrets.hints_token(b"example.org", b"/a?b=1", 1000);
        assert!(secrets.check_hints_token(token.as_bytes(), b"example.org", b"/a?b=1", 999));
        assert!(secrets.check_hints_token(token.as_bytes(), b"example.org", b"/a?b=1", 1000));
        assert!(!secrets.check_hints_token(token.as_bytes(), b"example.org", b"/a?b=1", 1001));
        assert!(!secrets.check_hints_token(token.as_bytes(), b"example.org", b"/a?b=2", 999));
        assert!(!secrets.check_hints_token(token.as_bytes(), b"example.net", b"/a?b=1", 999));
        let later = token.replacen("1000", "9000", 1);
        assert!(!secrets.check_hints_token(later.as_bytes(), b"example.org", b"/a?b=1", 999));
        let other = Secrets::new(vec![8; 32], None).unwrap();
        assert!(!other.check_hints_token(token.as_bytes(), b"example.org", b"/a?b=1", 999));
        for junk in ["", ".", "1000", "1000.", "x.y", "1000.AAAA.BBBB"] {
            assert!(!secrets.check_hints_token(junk.as_bytes(), b"example.org", b"/a?b=1", 0));
        }
        // Signed before a rotation, still good after it.
        let rotated = Secrets::new(vec![8; 32], Some(vec![7; 32])).unwrap();
        assert!(rotated.check_hints_token(token.as_bytes(), b"example.org", b"/a?b=1", 999));
        // One way to write a token: the expiry with a sign or a leading zero is another token
        // (found by the fuzz target `hints_token`).
        for respelt in [format!("+{token}"), format!("0{token}")] {
            assert!(!secrets.check_hints_token(respelt.as_bytes(), b"example.org", b"/a?b=1", 999));
        }
    }

    #[test]
    fn a_precheck_proof_has_one_spelling() {
        let s = secrets();
        let client = ClientBinding::new("192.0.2.1".parse().unwrap(), b"UA");
        let token = issue_precheck(&s, client, "/a", 1000);
        assert!(check_precheck(&s, token.as_bytes(), client, "/a", 999));
        for respelt in [token.replacen("p1.", "p1.0", 1), token.replacen("p1.", "p1.+", 1)] {
            assert!(!check_precheck(&s, respelt.as_bytes(), client, "/a", 999), "{respelt}");
        }
    }

    #[test]
    fn audio_seeds_are_secret_stable_and_per_language() {
        let s = secrets();
        assert_eq!(s.audio_seed(&[1; 16], "en"), s.audio_seed(&[1; 16], "en"));
        assert_ne!(s.audio_seed(&[1; 16], "en"), s.audio_seed(&[2; 16], "en"));
        assert_ne!(s.audio_seed(&[1; 16], "en"), s.audio_seed(&[1; 16], "de"));
        let other = Secrets::new(b"another secret of thirty-two bytes!!".to_vec(), None).unwrap();
        assert_ne!(
            s.audio_seed(&[1; 16], "en"),
            other.audio_seed(&[1; 16], "en")
        );
        // The download path derives the seed the page used, also across a rotation.
        let terms = ChallengeTerms {
            kind: crate::challenge::ChallengeKind::Text,
            hardness: Hardness::HARD,
            pass_age: 60,
            delivery: Delivery::Cookie,
            budget: Budget::default(),
            return_path: "/".into(),
        };
        let token = issue_challenge(&s, client(), &terms, 100, [1; 16], "A|1");
        assert_eq!(
            s.audio_seed_of(token.as_bytes(), &[1; 16], "en"),
            Some(s.audio_seed(&[1; 16], "en"))
        );
        let rotated = Secrets::new(
            b"another secret of thirty-two bytes!!".to_vec(),
            Some(b"0123456789abcdef0123456789abcdef".to_vec()),
        )
        .unwrap();
        assert_eq!(
            rotated.audio_seed_of(token.as_bytes(), &[1; 16], "en"),
            Some(s.audio_seed(&[1; 16], "en"))
        );
        assert_eq!(other.audio_seed_of(token.as_bytes(), &[1; 16], "en"), None);
        assert_eq!(s.audio_seed_of(b"c1.garbage", &[1; 16], "en"), None);
    }

    fn secrets() -> Secrets {
        Secrets::new(b"0123456789abcdef0123456789abcdef".to_vec(), None).unwrap()
    }

    fn client() -> ClientBinding {
        ClientBinding::new("203.0.113.7".parse().unwrap(), b"Mozilla/5.0 Firefox/128.0")
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_pass_round_trips_and_is_bound() {
        let s = secrets();
        let token = issue_pass(&s, client(), Hardness::NORMAL, NOW + 3600, [7; 16]);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        let pass = check_pass(&s, token.as_bytes(), client(), Hardness::NORMAL, NOW).unwrap();
        assert_eq!(
            pass,
            Pass {
                expires: NOW + 3600,
                hardness: Hardness::NORMAL,
                id: [7; 16]
            }
        );
        assert_eq!(
            check_pass(&s, token.as_bytes(), client(), Hardness::HARD, NOW),
            Err(Rejection::TooEasy)
        );
        assert!(check_pass(&s, token.as_bytes(), client(), Hardness::EASY, NOW).is_ok());
        assert_eq!(
            check_pass(&s, token.as_bytes(), client(), Hardness::EASY, NOW + 3600),
            Err(Rejection::Expired)
        );
        let other_ua = ClientBinding::new("203.0.113.7".parse().unwrap(), b"curl/8");
        assert_eq!(
            check_pass(&s, token.as_bytes(), other_ua, Hardness::EASY, NOW),
            Err(Rejection::OtherClient)
        );
        let other_ip =
            ClientBinding::new("203.0.113.8".parse().unwrap(), b"Mozilla/5.0 Firefox/128.0");
        assert_eq!(
            check_pass(&s, token.as_bytes(), other_ip, Hardness::EASY, NOW),
            Err(Rejection::OtherClient)
        );
    }

    #[test]
    fn passes_have_a_recognisable_shape() {
        let s = secrets();
        for expires in [1, NOW + 3600, u64::MAX] {
            assert!(looks_like_pass(
                issue_pass(&s, client(), Hardness::NORMAL, expires, [7; 16]).as_bytes()
            ));
        }
        let challenge = issue_challenge(
            &s,
            client(),
            &ChallengeTerms {
                kind: crate::challenge::ChallengeKind::Text,
                hardness: Hardness::HARD,
                pass_age: 60,
                delivery: Delivery::Cookie,
                budget: Budget::default(),
                return_path: "/".into(),
            },
            NOW,
            [1; 16],
            "A",
        );
        for junk in [&b""[..], b"v1.", b"v2.1.2.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                     challenge.as_bytes(), &[b'v'; 5000]] {
            assert!(!looks_like_pass(junk), "{:?}", String::from_utf8_lossy(junk));
        }
    }

    #[test]
    fn any_flipped_byte_is_rejected() {
        let s = secrets();
        let token = issue_pass(&s, client(), Hardness::NORMAL, NOW + 3600, [7; 16]).into_bytes();
        for i in 0..token.len() {
            for flip in [1u8, 0x20, 0x80] {
                let mut bad = token.clone();
                bad[i] ^= flip;
                assert!(
                    check_pass(&s, &bad, client(), Hardness::EASY, NOW).is_err(),
                    "byte {i} ^ {flip}"
                );
            }
        }
    }

    #[test]
    fn another_secret_does_not_verify_but_a_rotation_does() {
        let old = secrets();
        let token = issue_pass(&old, client(), Hardness::EASY, NOW + 60, [1; 16]);
        let new_secret = b"fedcba9876543210fedcba9876543210".to_vec();
        let new_only = Secrets::new(new_secret.clone(), None).unwrap();
        assert_eq!(
            check_pass(&new_only, token.as_bytes(), client(), Hardness::EASY, NOW),
            Err(Rejection::BadSignature)
        );
        let rotating = Secrets::new(
            new_secret,
            Some(b"0123456789abcdef0123456789abcdef".to_vec()),
        )
        .unwrap();
        assert!(check_pass(
            &rotating,
            issue_pass(&rotating, client(), Hardness::EASY, NOW + 60, [1; 16]).as_bytes(),
            client(),
            Hardness::EASY,
            NOW
        )
        .is_ok());
        assert!(check_pass(&rotating, token.as_bytes(), client(), Hardness::EASY, NOW).is_ok());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let s = secrets();
        let long = vec![b'a'; MAX_TOKEN_LEN + 1];
        for junk in [
            &b""[..],
            b".",
            b".....",
            b"v1.1.1.1.1.1",
            b"v1.....",
            b"\xff\xfe",
            &long[..],
            b"v1.99999999999999999999999.2.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA.x",
        ] {
            assert!(check_pass(&s, junk, client(), Hardness::EASY, NOW).is_err());
            assert!(check_challenge(&s, junk, client()).is_err());
        }
        assert!(Secrets::new(vec![1; 31], None).is_none());
        assert!(Secrets::new(vec![1; 32], Some(vec![2; 8])).is_none());
    }

    #[test]
    fn the_kind_is_written_before_the_hardness_and_text_keeps_the_old_format() {
        let s = secrets();
        let mut terms = ChallengeTerms {
            kind: crate::challenge::ChallengeKind::Text,
            hardness: Hardness::NORMAL,
            pass_age: 60,
            delivery: Delivery::Cookie,
            budget: Budget::default(),
            return_path: "/".into(),
        };
        let token = issue_challenge(&s, client(), &terms, 100, [1; 16], "ABC");
        // A text challenge's hardness field is the bare digit, as before kinds existed.
        assert_eq!(token.split('.').nth(2), Some("2"));
        let back = check_challenge(&s, token.as_bytes(), client()).unwrap();
        assert_eq!(back.terms, terms);
        for kind in crate::challenge::ChallengeKind::ALL {
            terms.kind = kind;
            let token = issue_challenge(&s, client(), &terms, 100, [1; 16], "ABC");
            assert_eq!(
                check_challenge(&s, token.as_bytes(), client())
                    .unwrap()
                    .terms
                    .kind,
                kind
            );
        }
        // An unknown kind code, even signed, is malformed.
        let fields: Vec<&str> = token.split('.').collect();
        let mut forged = fields[..fields.len() - 1].to_vec();
        forged[2] = "x2";
        let body = forged.join(".");
        let mac = s.sign(CHALLENGE_DOMAIN, body.as_bytes());
        let forged = format!("{body}.{}", B64.encode(mac));
        assert_eq!(
            check_challenge(&s, forged.as_bytes(), client()),
            Err(Rejection::Malformed)
        );
    }

    #[test]
    fn a_challenge_carries_a_commitment_not_the_answer() {
        let s = secrets();
        let terms = ChallengeTerms {
            kind: crate::challenge::ChallengeKind::Text,
            hardness: Hardness::HARD,
            pass_age: 3600,
            delivery: Delivery::UrlArgument,
            budget: Budget {
                ipv6_prefix: 56,
                rate: Some(Rate {
                    count: 10,
                    period_ms: 1000,
                }),
                audio: None,
                location: [5; 16],
            },
            return_path: "/login?next=1".into(),
        };
        let token = issue_challenge(&s, client(), &terms, NOW + 120, [9; 16], "K7MPXW");
        assert!(!token.contains("K7MPXW"));
        let challenge = check_challenge(&s, token.as_bytes(), client()).unwrap();
        assert_eq!((&challenge.terms, challenge.nonce), (&terms, [9; 16]));
        assert!(challenge.is_answer(&s, "K7MPXW"));
        assert!(!challenge.is_answer(&s, "K7MPXY"));
        assert!(!challenge.is_answer(&s, ""));
        assert!(!challenge.expired(NOW + 119));
        assert!(challenge.expired(NOW + 120));
        let other =
            ClientBinding::new("203.0.113.9".parse().unwrap(), b"Mozilla/5.0 Firefox/128.0");
        assert_eq!(
            check_challenge(&s, token.as_bytes(), other),
            Err(Rejection::OtherClient)
        );
        let mut tampered = token.clone().into_bytes();
        tampered[3] ^= 1;
        assert!(check_challenge(&s, &tampered, client()).is_err());
        // A pass is not a challenge, nor the reverse: the domains differ.
        assert!(check_pass(&s, token.as_bytes(), client(), Hardness::EASY, NOW).is_err());
    }

    #[test]
    fn ipv6_clients_are_bound_by_their_64_prefix() {
        let a = ClientBinding::new("2001:db8:1:2:aaaa::1".parse().unwrap(), b"UA");
        let b = ClientBinding::new("2001:db8:1:2:bbbb:cccc:dddd:eeee".parse().unwrap(), b"UA");
        let c = ClientBinding::new("2001:db8:1:3::1".parse().unwrap(), b"UA");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            client_prefix("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            client_prefix("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1"
        );
    }

    #[test]
    fn return_paths_are_same_site_and_relative() {
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "evil.example",
            "",
            "/a\r\nSet-Cookie: x=1",
            "/a b",
            "/\t/evil.example",
            "/a\"b",
            "/<script>",
            "/a>b",
            "/a`b",
            "/a{b}",
            "/a|b",
            "/a^b",
            "/a[0]",
            "/a#b",
            "/%",
            "/%4",
            "/%zz",
            "/a%2",
        ] {
            assert!(!is_safe_return_path(bad.as_bytes()), "{bad:?}");
        }
        for good in [
            "/",
            "/login",
            "/a/b?c=d&e=%2F%2Fx",
            "/%2F%2Fevil.example",
            "/%5Cevil",
            "/a-b_c.d~e",
            "/!$&'()*+,;=:@",
            "/p?q=/x?y",
        ] {
            assert!(is_safe_return_path(good.as_bytes()), "{good:?}");
        }
        assert_eq!(return_path_for(b"//evil.example/x"), "/");
        assert_eq!(return_path_for(b"/caf\xc3\xa9?q=a b"), "/caf%C3%A9?q=a%20b");
        assert_eq!(
            return_path_for(b"/a\"><script>x</script>"),
            "/a%22%3E%3Cscript%3Ex%3C/script%3E"
        );
        assert_eq!(
            return_path_for(b"/100%?x=%zz&y=%4"),
            "/100%25?x=%25zz&y=%254"
        );
        assert_eq!(
            return_path_for(b"/a%2Fb%c3%A9"),
            "/a%2Fb%c3%A9",
            "escapes are kept"
        );
        assert_eq!(
            return_path_for(b"/{a}|`b`^[c]#d"),
            "/%7Ba%7D%7C%60b%60%5E%5Bc%5D%23d"
        );
        assert_eq!(
            return_path_for(b"/a\r\nLocation: x"),
            "/a%0D%0ALocation:%20x"
        );
        assert_eq!(return_path_for(&[b'/'; 3000]), "/");
        assert_eq!(return_path_for(b"/p?captchaify=abc&x=1"), "/p?x=1");
        assert_eq!(return_path_for(b"/p?captchaify=abc"), "/p");
    }

    #[test]
    fn precheck_proofs_are_bound_to_client_path_and_time() {
        let s = secrets();
        let proof = issue_precheck(&s, client(), "/p?x=1", NOW + 300);
        assert!(proof.starts_with("p1.") && proof.len() < 70, "{proof}");
        assert!(check_precheck(
            &s,
            proof.as_bytes(),
            client(),
            "/p?x=1",
            NOW
        ));
        assert!(
            !check_precheck(&s, proof.as_bytes(), client(), "/p?x=1", NOW + 300),
            "expired"
        );
        assert!(
            !check_precheck(&s, proof.as_bytes(), client(), "/p?x=2", NOW),
            "another path"
        );
        let other =
            ClientBinding::new("203.0.113.8".parse().unwrap(), b"Mozilla/5.0 Firefox/128.0");
        assert!(
            !check_precheck(&s, proof.as_bytes(), other, "/p?x=1", NOW),
            "another client"
        );
        let forged = issue_precheck(
            &Secrets::new(vec![9; 32], None).unwrap(),
            client(),
            "/p?x=1",
            NOW + 300,
        );
        assert!(!check_precheck(
            &s,
            forged.as_bytes(),
            client(),
            "/p?x=1",
            NOW
        ));
        let later = proof.replacen(&(NOW + 300).to_string(), &(NOW + 9000).to_string(), 1);
        assert!(
            !check_precheck(&s, later.as_bytes(), client(), "/p?x=1", NOW),
            "the expiry is signed"
        );
        for junk in [
            "",
            "p1",
            "p1.",
            "p1.1.",
            "p1.x.AAAA",
            "p2.1.AAAA",
            &format!("{proof}.x"),
        ] {
            assert!(
                !check_precheck(&s, junk.as_bytes(), client(), "/p?x=1", NOW),
                "{junk:?}"
            );
        }
        assert_eq!(return_path_for(b"/p?captchaify_pre=p1.1.x&x=1"), "/p?x=1");
    }

    #[test]
    fn pass_arguments_are_appended_and_stripped() {
        assert_eq!(with_pass_argument("/p", "T"), "/p?captchaify=T");
        assert_eq!(with_pass_argument("/p?x=1", "T"), "/p?x=1&captchaify=T");
        assert_eq!(strip_pass_argument("/p?x=1&captchaify=T&y"), "/p?x=1&y");
        assert_eq!(
            strip_pass_argument("/p?captchaify_x=1"),
            "/p?captchaify_x=1"
        );
    }

    #[test]
    fn table_keys_depend_on_the_secret_and_purpose() {
        let s = secrets();
        let other = Secrets::new(vec![3; 32], None).unwrap();
        let key = |s: &Secrets, purpose, parts: &[&[u8]]| s.table_key(purpose, parts);
        assert_ne!(
            key(&s, "fail", &[b"1.2.3.4"]),
            key(&s, "rate", &[b"1.2.3.4"])
        );
        assert_ne!(
            key(&s, "fail", &[b"1.2.3.4"]),
            key(&other, "fail", &[b"1.2.3.4"])
        );
        assert_eq!(
            key(&s, "fail", &[b"1.2.3.4"]),
            key(&s, "fail", &[b"1.2.3.4"])
        );
        // Parts are length-prefixed: moving the boundary between them changes the key.
        assert_ne!(key(&s, "x", &[b"ab", b"c"]), key(&s, "x", &[b"a", b"bc"]));
        assert_ne!(key(&s, "x", &[b"abc"]), key(&s, "x", &[b"abc", b""]));
        // Long parts take the streaming path; the key is the hash of the same bytes.
        let long = [9u8; 300];
        let mut direct = SipHasher24::new_with_key(&s.table);
        for part in [&b"x"[..], &b"ab"[..], &long[..], &b"c"[..]] {
            direct.write(&(part.len() as u32).to_le_bytes());
            direct.write(part);
        }
        assert_eq!(
            key(&s, "x", &[b"ab", &long, b"c"]),
            direct.finish128().as_bytes()
        );
        let mut direct = SipHasher24::new_with_key(&s.table);
        direct.write(&[1, 0, 0, 0, b'x', 2, 0, 0, 0, b'a', b'b']);
        assert_eq!(key(&s, "x", &[b"ab"]), direct.finish128().as_bytes());
        // A previous secret does not change where things land.
        let rotated = Secrets::new(vec![7; 32], Some(vec![3; 32])).unwrap();
        assert_eq!(
            key(&rotated, "x", &[b"1"]),
            key(&Secrets::new(vec![7; 32], None).unwrap(), "x", &[b"1"])
        );
    }
}
