//! The audio captcha (hardness 3): 9–14 spoken digits. STUB — being replaced by the real
//! generator; the API below is the contract the rest of the module uses.

use rand::{CryptoRng, Rng, RngCore};

/// Fewest and most digits in a clip.
pub const SHORTEST: usize = 9;
pub const LONGEST: usize = 14;

/// A fresh clip and its answer.
pub struct AudioClip {
    /// A complete WAV file.
    pub wav: Vec<u8>,
    /// The digits spoken, e.g. "40917352861".
    pub digits: String,
}

/// The languages that have their own digit voices (lowercase tags as in `templates/i18n/`).
pub fn voice_languages() -> &'static [&'static str] {
    &["en"]
}

/// Makes a fresh clip spoken in `language` (English when that language has no voices).
pub fn generate<R: RngCore + CryptoRng>(language: &str, rng: &mut R) -> AudioClip {
    let _ = language;
    let count = rng.gen_range(SHORTEST..=LONGEST);
    let digits: String = (0..count).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
    let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 8, sample_format: hound::SampleFormat::Int };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut writer = hound::WavWriter::new(&mut cursor, spec).expect("wav header");
        for _ in 0..8000 {
            writer.write_sample(0i8).expect("in memory");
        }
        writer.finalize().expect("in memory");
    }
    AudioClip { wav: cursor.into_inner(), digits }
}

/// Loads the voices before the first request needs them.
pub fn warm_up() {}
