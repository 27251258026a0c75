//! Challenges a person can answer and a program cannot: the captcha image, the audio captcha, and the signed
//! tokens that carry a challenge and, once it is solved, the client's pass.

pub mod audio;
pub mod compose;
pub mod flow;
pub mod image;
pub mod pass_cache;
pub mod token;

/// What a challenge asks of the person. Only text today; the picture captchas (emoji,
/// animals) come next, each as a variant here with its drawing in [`compose`], its answer's
/// reading in [`flow`] and its code in the signed challenge ([`token`]). The hardness
/// ([`crate::policy::Hardness`]) is separate: how hard, and whether audio comes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChallengeKind {
    /// Read the distorted letters of an image (and, with audio, the spoken digits).
    #[default]
    Text,
}

impl ChallengeKind {
    pub const ALL: [ChallengeKind; 1] = [ChallengeKind::Text];

    /// How the signed challenge writes the kind, just before its hardness digit: nothing for
    /// text, so text challenges keep the format they always had; a letter for each kind to
    /// come.
    pub const fn token_code(self) -> &'static str {
        match self {
            ChallengeKind::Text => "",
        }
    }

    pub fn from_token_code(code: &[u8]) -> Option<ChallengeKind> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.token_code().as_bytes() == code)
    }
}
