//! Challenges a person can answer and a program cannot: the captcha image, the audio captcha, and the signed
//! tokens that carry a challenge and, once it is solved, the client's pass.

pub mod audio;
pub mod compose;
pub mod flow;
pub mod image;
pub mod pass_cache;
pub mod picture;
pub mod token;

/// What a challenge asks of the person: its drawing is in [`compose`], its answer's reading
/// in [`flow`], its code in the signed challenge ([`token`]). The hardness
/// ([`crate::policy::Hardness`]) is separate: how hard, and whether audio comes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChallengeKind {
    /// Read the distorted letters of an image (and, with audio, the spoken digits).
    #[default]
    Text,
    /// Tick every tile of a grid that shows one object, drawn as emoji ([`picture`]).
    Emoji,
    /// Tick every tile of a grid that shows one animal ([`picture`]).
    Animals,
}

impl ChallengeKind {
    pub const ALL: [ChallengeKind; 3] = [
        ChallengeKind::Text,
        ChallengeKind::Emoji,
        ChallengeKind::Animals,
    ];

    /// The name `captchaify_captcha_type` takes.
    pub const fn name(self) -> &'static str {
        match self {
            ChallengeKind::Text => "text",
            ChallengeKind::Emoji => "emoji",
            ChallengeKind::Animals => "animals",
        }
    }

    pub fn parse(name: &str) -> Option<ChallengeKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// A grid of pictures rather than text.
    pub const fn is_picture(self) -> bool {
        !matches!(self, ChallengeKind::Text)
    }

    /// How the signed challenge writes the kind, just before its hardness digit: nothing for
    /// text, so text challenges keep the format they always had; a letter for the others.
    pub const fn token_code(self) -> &'static str {
        match self {
            ChallengeKind::Text => "",
            ChallengeKind::Emoji => "e",
            ChallengeKind::Animals => "a",
        }
    }

    pub fn from_token_code(code: &[u8]) -> Option<ChallengeKind> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.token_code().as_bytes() == code)
    }
}
