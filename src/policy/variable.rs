//! Settings given as nginx variables (`captchaify_action $act`, `captchaify_hardness $h`,
//! `captchaify_captcha_type $kind`): what a value read at request time becomes.
//!
//! A static value is checked when nginx reads the configuration and a bad one fails
//! `nginx -t`. A variable's value only exists per request, and may come from the client (a
//! header, an argument), so a bad one cannot fail anything: it is replaced by the strictest
//! valid value, never by `let`, and the operator is told in the error log, at most once in
//! [`WarnLimit::INTERVAL_SECS`] per directive and worker, since a client can send a bad value on
//! every request.

use core::fmt::Write;

use crate::challenge::ChallengeKind;

use super::{Action, Hardness};

/// A setting whose value may come from a variable.
pub trait PerRequest: Copy {
    /// The directive that sets it, for the log.
    const DIRECTIVE: &'static str;
    /// What it takes, for the log.
    const EXPECTED: &'static str;
    /// What an invalid or empty value becomes.
    const STRICTEST: Self;

    /// The value as the directive takes it (exactly: case and spaces count, as in the
    /// configuration).
    fn parse(value: &[u8]) -> Option<Self>;

    /// Its name as the directive takes it.
    fn name(self) -> &'static str;
}

/// `block`, and with it the captcha for every client without a pass
/// ([`super::LocationPolicy::challenge_unverified`], set where a bad value was read): the
/// suspicious ones get the block page, as under `block`, and everyone else the captcha, as
/// under `fight`, so that neither gets in unchecked. Never `let`.
impl PerRequest for Action {
    const DIRECTIVE: &'static str = "captchaify_action";
    const EXPECTED: &'static str = "let, block, fight or captcha";
    const STRICTEST: Action = Action::Block;

    fn parse(value: &[u8]) -> Option<Action> {
        core::str::from_utf8(value).ok()?.parse().ok()
    }

    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// `3`: the hardest grid or text, and the spoken digits asked as well.
impl PerRequest for Hardness {
    const DIRECTIVE: &'static str = "captchaify_hardness";
    const EXPECTED: &'static str = "1, 2 or 3";
    const STRICTEST: Hardness = Hardness::HARD;

    fn parse(value: &[u8]) -> Option<Hardness> {
        core::str::from_utf8(value).ok()?.parse().ok()
    }

    fn name(self) -> &'static str {
        match self.get() {
            1 => "1",
            2 => "2",
            _ => "3",
        }
    }
}

/// `text`: the kind measured hardest for machines (docs/security.md: Tesseract solves at most
/// 0.3% of the text images, a perceptual-hash attacker 12–42% of the picture grids), and the
/// default kind, whose page (`captcha.html`) every site already shows.
impl PerRequest for ChallengeKind {
    const DIRECTIVE: &'static str = "captchaify_captcha_type";
    const EXPECTED: &'static str = "text, emoji or animals";
    const STRICTEST: ChallengeKind = ChallengeKind::Text;

    fn parse(value: &[u8]) -> Option<ChallengeKind> {
        ChallengeKind::parse(core::str::from_utf8(value).ok()?)
    }

    fn name(self) -> &'static str {
        ChallengeKind::name(self)
    }
}

/// A variable's value read as the setting: `Ok` when valid, `Err` with the value used instead
/// (the strictest) when invalid or empty.
pub fn read<T: PerRequest>(value: &[u8]) -> Result<T, T> {
    T::parse(value).ok_or(T::STRICTEST)
}

/// How much of a bad value the log shows: enough to recognise it, not a header's worth.
pub const SHOWN_BYTES: usize = 64;

/// A value as the log shows it: printable ASCII as is (but `"` and `\`), everything else as
/// `\xNN`, cut after [`SHOWN_BYTES`] bytes with `...`. It can come from a client, so nothing
/// in it may forge a log line or hide what follows.
pub fn shown(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len().min(SHOWN_BYTES) + 3);
    for &byte in value.iter().take(SHOWN_BYTES) {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    if value.len() > SHOWN_BYTES {
        out.push_str("...");
    }
    out
}

/// The warning about a bad value, as the error log gets it (after `captchaify: `).
pub fn warning<T: PerRequest>(value: &[u8], used: T, unlogged: u64) -> String {
    let mut line = match value.is_empty() {
        true => format!(
            "\"{}\" is empty from its variable, expected {}; using \"{}\"",
            T::DIRECTIVE,
            T::EXPECTED,
            used.name()
        ),
        false => format!(
            "\"{}\" is \"{}\" from its variable, expected {}; using \"{}\"",
            T::DIRECTIVE,
            shown(value),
            T::EXPECTED,
            used.name()
        ),
    };
    if unlogged > 0 {
        let _ = write!(
            line,
            " ({unlogged} more bad values since the last warning, not logged)"
        );
    }
    line
}

/// Lets one warning through per [`WarnLimit::INTERVAL_SECS`], counting the others, so a client
/// that sends a bad value on every request costs a log line every few seconds at most.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarnLimit {
    /// The second from which the next warning may be logged; 0 before the first.
    next: u64,
    /// Bad values held back since the last warning logged.
    held_back: u64,
}

impl WarnLimit {
    pub const INTERVAL_SECS: u64 = 10;

    pub const fn new() -> WarnLimit {
        WarnLimit {
            next: 0,
            held_back: 0,
        }
    }

    /// Whether to log a bad value seen at `now` (seconds): `Some(held back since the last
    /// one logged)`, or `None` (then counted).
    pub fn admit(&mut self, now: u64) -> Option<u64> {
        if now < self.next {
            self.held_back = self.held_back.saturating_add(1);
            return None;
        }
        self.next = now.saturating_add(Self::INTERVAL_SECS);
        Some(core::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values_read_as_the_directive_takes_them() {
        assert_eq!(read::<Action>(b"let"), Ok(Action::Let));
        assert_eq!(read::<Action>(b"block"), Ok(Action::Block));
        assert_eq!(read::<Action>(b"fight"), Ok(Action::Fight));
        assert_eq!(read::<Action>(b"captcha"), Ok(Action::Captcha));
        assert_eq!(read::<Hardness>(b"1"), Ok(Hardness::EASY));
        assert_eq!(read::<Hardness>(b"2"), Ok(Hardness::NORMAL));
        assert_eq!(read::<Hardness>(b"3"), Ok(Hardness::HARD));
        assert_eq!(read::<ChallengeKind>(b"text"), Ok(ChallengeKind::Text));
        assert_eq!(read::<ChallengeKind>(b"emoji"), Ok(ChallengeKind::Emoji));
        assert_eq!(
            read::<ChallengeKind>(b"animals"),
            Ok(ChallengeKind::Animals)
        );
        for kind in ChallengeKind::ALL {
            assert_eq!(read::<ChallengeKind>(kind.name().as_bytes()), Ok(kind));
        }
        for hardness in [Hardness::EASY, Hardness::NORMAL, Hardness::HARD] {
            assert_eq!(
                read::<Hardness>(PerRequest::name(hardness).as_bytes()),
                Ok(hardness)
            );
        }
    }

    #[test]
    fn invalid_or_empty_values_become_the_strictest_never_let() {
        for bad in [
            &b""[..],
            b"Let",
            b"LET",
            b" let",
            b"let ",
            b"allow",
            b"let\0",
            b"\xff",
            b"blockx",
        ] {
            assert_eq!(read::<Action>(bad), Err(Action::Block), "{bad:?}");
        }
        for bad in [
            &b""[..],
            b"0",
            b"4",
            b"02",
            b"2 ",
            b"hard",
            b"-1",
            b"\xc3\xa9",
        ] {
            assert_eq!(read::<Hardness>(bad), Err(Hardness::HARD), "{bad:?}");
        }
        for bad in [&b""[..], b"Emoji", b"picture", b"animal", b"text\n"] {
            assert_eq!(
                read::<ChallengeKind>(bad),
                Err(ChallengeKind::Text),
                "{bad:?}"
            );
        }
        assert_ne!(Action::STRICTEST, Action::Let);
    }

    #[test]
    fn a_shown_value_is_escaped_and_cut() {
        assert_eq!(shown(b"maybe"), "maybe");
        assert_eq!(shown(b"a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(shown(b"x\ny\r\0\x7f\xff"), "x\\x0ay\\x0d\\x00\\x7f\\xff");
        assert_eq!(shown("é".as_bytes()), "\\xc3\\xa9");
        let long = [b'a'; 200];
        let cut = shown(&long);
        assert_eq!(cut, format!("{}...", "a".repeat(SHOWN_BYTES)));
        assert_eq!(shown(&long[..SHOWN_BYTES]), "a".repeat(SHOWN_BYTES));
        // The worst case stays bounded: every byte escaped.
        assert_eq!(shown(&[0u8; 1000]).len(), SHOWN_BYTES * 4 + 3);
    }

    #[test]
    fn the_warning_names_the_directive_the_value_and_what_was_used() {
        let line = warning(b"maybe\n", Action::Block, 0);
        assert_eq!(
            line,
            "\"captchaify_action\" is \"maybe\\x0a\" from its variable, expected let, block, \
             fight or captcha; using \"block\""
        );
        assert_eq!(
            warning(b"", Hardness::HARD, 4),
            "\"captchaify_hardness\" is empty from its variable, expected 1, 2 or 3; using \"3\" \
             (4 more bad values since the last warning, not logged)"
        );
        assert!(warning(b"gif", ChallengeKind::Text, 0)
            .contains("\"captchaify_captcha_type\" is \"gif\" from its variable, expected text, emoji or animals; using \"text\""));
    }

    #[test]
    fn warnings_are_held_back_within_the_interval_and_counted() {
        let mut limit = WarnLimit::default();
        assert_eq!(limit.admit(1000), Some(0));
        assert_eq!(limit.admit(1000), None);
        assert_eq!(limit.admit(1005), None);
        assert_eq!(limit.admit(1000 + WarnLimit::INTERVAL_SECS - 1), None);
        assert_eq!(limit.admit(1000 + WarnLimit::INTERVAL_SECS), Some(3));
        assert_eq!(limit.admit(1000 + WarnLimit::INTERVAL_SECS), None);
        assert_eq!(limit.admit(5000), Some(1));
        assert_eq!(limit.admit(99_999), Some(0));
        // A clock at zero (never in nginx) still lets the first one through.
        assert_eq!(WarnLimit::default().admit(0), Some(0));
    }
}
