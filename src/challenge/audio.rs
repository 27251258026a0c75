//! The audio captcha (hardness 3): 9–14 spoken digits.
//!
//! The digits come from recordings made with espeak-ng (`voices/`: 12 languages, 5 voices
//! each, made by `scripts/record-voices`), but no clip ever contains a recording as shipped:
//! pasting a fixed set of recordings (as the Python `captcha` package does) lets a matched
//! filter that slides those recordings over the clip read it back. Every digit of every clip
//! is made afresh:
//!
//! * resynthesised by TD-PSOLA ([`dsp::psola`]) from a random voice, with its formants
//!   (10–25% up or down, gliding between two such settings), its pitch (85–260 Hz, never
//!   within 7% of the voice's own, gliding and wobbling) and its tempo (a random non-linear
//!   warp over eight knots) changed independently of each other;
//! * coloured ([`colouring`]): three deep, narrow notches sweeping across the spectrum, a
//!   shelf, a loudness contour, sometimes a tremolo, and the spectrum split in two with one
//!   half 20–45 ms late;
//! * shifted in frequency by tens of hertz (single-sideband, gliding; it makes the harmonics
//!   inharmonic and warps the spectrum unevenly on any log-frequency scale);
//! * placed in its own small reverberant room (random echoes) at its own level.
//!
//! The digits follow each other after uneven gaps, over a bed of babble — 3–4 other digits
//! per spoken one, resynthesised the same way but only lightly coloured, 12–18 dB quieter —
//! and coloured noise 16–22 dB below the speech. A listener follows the loud voice; template
//! matching and a digits-only recogniser both read these clips at about chance level (see
//! `scripts/asr-check`).
//!
//! All randomness comes from the caller's RNG: the same seed gives the same clip.

mod bank;
mod dsp;

use dsp::{Biquad, Contour, Reshape};
use rand::{CryptoRng, Rng, RngCore, SeedableRng};

/// Fewest and most digits in a clip.
pub const SHORTEST: usize = 9;
pub const LONGEST: usize = 14;

/// Sample rate of every clip (and of the recordings).
pub const SAMPLE_RATE: u32 = bank::RATE;

/// A fresh clip and its answer.
pub struct AudioClip {
    /// A complete WAV file.
    pub wav: Vec<u8>,
    /// The digits spoken, e.g. "40917352861".
    pub digits: String,
}

/// The languages that have their own digit voices (lowercase tags as in `templates/i18n/`).
pub fn voice_languages() -> &'static [&'static str] {
    &bank::TAGS
}

/// Makes a fresh clip spoken in `language` (English when that language has no voices).
pub fn generate<R: RngCore + CryptoRng>(language: &str, rng: &mut R) -> AudioClip {
    generate_mix(language, Mix::FULL, rng)
}

/// The digits of the clip [`generate`] makes from `seed`, without making it: they are the
/// first thing drawn from the seed's stream.
pub fn digits_of(seed: [u8; 32]) -> String {
    random_digits(&mut rand_chacha::ChaCha20Rng::from_seed(seed))
}

/// Loads the voices before the first request needs them.
pub fn warm_up() {
    let _ = bank::language("en");
}

/// What goes into a clip besides the spoken digits, and how far below the speech it lies:
/// each present part's level is drawn per clip (the babble per babble digit) from its range
/// of dB below the speech. Only [`Mix::FULL`] is served; the others exist to measure what
/// each part does (`captcha-audio clean`, `captcha-audio dump --babble …`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mix {
    pub babble: Option<(f32, f32)>,
    pub noise: Option<(f32, f32)>,
}

impl Mix {
    pub const FULL: Mix = Mix {
        // 12–18 dB, 2 dB quieter than the first 10–16: as quiet as the babble can be while a
        // digits-only recogniser stays near chance with room to spare (`scripts/asr-check`,
        // pocketsphinx per digit: 30–31% at 10–16, 33.2% at 13–19, 34.0% at 16–22; chance
        // about 28%, the gate 35%; see docs/captcha-people.md, "The audio clips").
        babble: Some((12.0, 18.0)),
        noise: Some((16.0, 22.0)),
    };

    /// The spoken digits alone.
    pub const QUIET: Mix = Mix {
        babble: None,
        noise: None,
    };
}

/// The voice names of a language (after the English fallback), e.g. `["m1", "m3", …]`.
pub fn voice_names(language: &str) -> &'static [String] {
    &bank::language(language).voices
}

/// A shipped recording as it is embedded (after the English fallback for the language).
pub fn recording(language: &str, voice: usize, digit: u8) -> &'static [f32] {
    bank::language(language).recording(voice, digit).samples()
}

/// The reference an attack should beat easily: the shipped recordings of 9–14 random
/// digits (a random voice each) pasted with fixed 0.25 s gaps, nothing transformed.
pub fn plain<R: RngCore + CryptoRng>(language: &str, rng: &mut R) -> AudioClip {
    let lang = bank::language(language);
    let digits = random_digits(rng);
    let gap = SAMPLE_RATE as usize / 4;
    let mut out = vec![0f32; gap];
    for d in digits.bytes() {
        let voice = rng.gen_range(0..lang.voices.len());
        out.extend_from_slice(lang.recording(voice, d - b'0').samples());
        out.resize(out.len() + gap, 0.0);
    }
    AudioClip {
        wav: wav_8bit(&out, 0.95),
        digits,
    }
}

fn random_digits<R: Rng>(rng: &mut R) -> String {
    let count = rng.gen_range(SHORTEST..=LONGEST);
    (0..count)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// Level of the spoken digits (RMS over each digit) before the final scaling.
const SPEECH_RMS: f32 = 0.1;

/// Uniform in [lo, hi).
fn uniform<R: Rng>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.gen::<f32>()
}

/// Log-uniform in [lo, hi).
fn log_uniform<R: Rng>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    (lo.ln() + (hi.ln() - lo.ln()) * rng.gen::<f32>()).exp()
}

/// A factor whose natural log is between `min` and `max` in size, up or down at random.
fn away_from_one<R: Rng>(rng: &mut R, min: f32, max: f32) -> f32 {
    let size = uniform(rng, min, max);
    if rng.gen::<bool>() {
        size.exp()
    } else {
        (-size).exp()
    }
}

fn db(x: f32) -> f32 {
    10f32.powf(x / 20.0)
}

/// How a digit is resynthesised; the spoken digits and the babble draw from the same ranges.
fn reshape<R: Rng>(rng: &mut R, rec: &bank::Recording) -> Reshape {
    // The formants glide between two settings, each 10–25% up or down, and wobble a little.
    let formant = Contour {
        from: away_from_one(rng, 0.1, 0.25),
        to: away_from_one(rng, 0.1, 0.25),
        depth: uniform(rng, 0.0, 0.06),
        cycles: uniform(rng, 1.0, 5.0),
        phase: rng.gen(),
    };
    // A new pitch anywhere from a low man's to a child's, independent of the voice's own, but
    // never within 7% of it; gliding up or down by up to 30%, with a wobble.
    let factor = rec.period * log_uniform(rng, 85.0, 260.0) / SAMPLE_RATE as f32;
    let pitch = if factor.ln().abs() < 0.07 {
        factor * away_from_one(rng, 0.07, 0.12)
    } else {
        factor
    };
    let glide = uniform(rng, -0.3, 0.3);
    let pitch = Contour {
        from: pitch * (1.0 - glide / 2.0),
        to: pitch * (1.0 + glide / 2.0),
        depth: uniform(rng, 0.0, 0.08),
        cycles: uniform(rng, 0.5, 4.0),
        phase: rng.gen(),
    };
    // Tempo: an overall rate and a random local rate at every knot.
    let tempo = log_uniform(rng, 1.0, 1.3);
    let mut rate = [0f32; dsp::WARP_KNOTS];
    for r in &mut rate {
        *r = tempo * log_uniform(rng, 0.7, 1.45);
    }
    Reshape {
        formant,
        pitch,
        rate,
    }
}

/// A random shelf that leans towards brightness (a high boost or a low cut) more often than
/// not: the second and third formants carry much of what the ear needs.
fn shelf<R: Rng>(rng: &mut R) -> Biquad {
    let fs = SAMPLE_RATE as f32;
    if rng.gen::<bool>() {
        Biquad::shelf(
            fs,
            log_uniform(rng, 1200.0, 2800.0),
            uniform(rng, -3.0, 9.0),
            true,
        )
    } else {
        Biquad::shelf(
            fs,
            log_uniform(rng, 250.0, 700.0),
            uniform(rng, -9.0, 3.0),
            false,
        )
    }
}

/// A random smooth loudness contour over a digit: ±8 dB at each knot.
fn contour<R: Rng>(rng: &mut R) -> [f32; dsp::GAIN_KNOTS] {
    let mut gain = [0f32; dsp::GAIN_KNOTS];
    for g in &mut gain {
        *g = db(uniform(rng, -8.0, 8.0));
    }
    gain
}

/// What happens to a resynthesised spoken digit's sound, drawn at random:
/// * three deep, narrow notches that sweep across the spectrum during the digit. A moving
///   notch is barely audible (the ear fills in a missing narrow band; a phaser does the same
///   to music), but it digs a moving trench through a log spectrogram that no fixed template
///   or per-digit normalisation accounts for;
/// * a shelf (see [`shelf`]);
/// * a smooth loudness contour (see [`contour`]), and in 3 of 10 digits a tremolo;
/// * the spectrum cut at 0.9–1.6 kHz with one half 20–45 ms late (the ear hardly minds; no
///   template lines up with both halves at once).
fn colouring<R: Rng>(rng: &mut R) -> dsp::Colour {
    let fs = SAMPLE_RATE as f32;
    // Each notch travels at least 1.2 octaves (up or down) within 250–3400 Hz.
    let notch = |rng: &mut R| {
        let (lo, hi) = (250f32.ln(), 3400f32.ln());
        let travel = uniform(rng, 1.2, 3.0) * std::f32::consts::LN_2;
        let start = uniform(rng, lo, hi - travel);
        let (from, to) = if rng.gen::<bool>() {
            (start, start + travel)
        } else {
            (start + travel, start)
        };
        dsp::Sweep {
            from_freq: from.exp(),
            to_freq: to.exp(),
            from_gain_db: uniform(rng, -30.0, -20.0),
            to_gain_db: uniform(rng, -30.0, -20.0),
            q: uniform(rng, 3.0, 5.0),
        }
    };
    let sweeps = [notch(rng), notch(rng), notch(rng)];
    let fixed = shelf(rng);
    let gain = contour(rng);
    let (tremolo_step, tremolo_depth) = if rng.gen_range(0..10) < 3 {
        (
            2.0 * std::f32::consts::PI * uniform(rng, 3.0, 9.0) / fs,
            uniform(rng, 0.2, 0.5),
        )
    } else {
        (0.0, 0.0)
    };
    let cross = log_uniform(rng, 900.0, 1600.0);
    dsp::Colour {
        sweeps,
        fixed,
        gain,
        tremolo_step,
        tremolo_depth,
        low_pass: Biquad::low_pass(fs, cross),
        high_pass: Biquad::high_pass(fs, cross),
        delay: (uniform(rng, 0.02, 0.045) * fs) as usize,
        delay_high: rng.gen::<bool>(),
    }
}

/// The longest echo delay (300 ms).
const ECHO_SPAN: usize = SAMPLE_RATE as usize * 3 / 10;

/// The direct sound and a random echo pattern: a different room per digit. A spoken digit
/// gets 12–20 echoes over up to 300 ms (a reverberant room: recognisers mind reverberation
/// far more than listeners do), babble 4–8 over up to 150 ms.
fn room<R: Rng>(rng: &mut R, gain: f32, spoken: bool, taps: &mut Vec<(usize, f32)>) {
    taps.clear();
    taps.push((0, gain));
    let (count, span) = if spoken {
        (rng.gen_range(12..=20), ECHO_SPAN)
    } else {
        (rng.gen_range(4..=8), ECHO_SPAN / 2)
    };
    let decay = uniform(rng, 0.05, 0.11) * SAMPLE_RATE as f32; // 1/e time in samples
    let wet = uniform(rng, 0.3, 0.6);
    for _ in 0..count {
        let delay = rng.gen_range(16..span);
        let sign = if rng.gen::<bool>() { 1.0 } else { -1.0 };
        taps.push((
            delay,
            sign * gain * wet * (-(delay as f32) / decay).exp() * uniform(rng, 0.5, 1.0),
        ));
    }
}

/// Scratch buffers reused across the digits of a clip.
#[derive(Default)]
struct Scratch {
    digit: Vec<f32>,
    band: Vec<f32>,
    taps: Vec<(usize, f32)>,
}

/// One transformed digit into `scratch.digit`, with its RMS. `spoken`: a digit of the answer,
/// which gets the whole treatment; babble gets the same resynthesis (cheaper interpolation)
/// and only a shelf and a loudness contour.
fn transformed<R: Rng>(
    lang: &bank::Language,
    digit: u8,
    spoken: bool,
    rng: &mut R,
    scratch: &mut Scratch,
) -> f32 {
    let voice = rng.gen_range(0..lang.voices.len());
    let rec = lang.recording(voice, digit);
    let shape = reshape(rng, rec);
    if !spoken {
        // Babble: resynthesised the same way, but only a shelf and a loudness contour after.
        dsp::psola::<false, R>(rec, &shape, rng, &mut scratch.digit);
        let (shelf, gain) = (shelf(rng), contour(rng));
        dsp::tint(&shelf, &gain, &mut scratch.digit);
        return dsp::rms(&scratch.digit);
    }
    dsp::psola::<true, R>(rec, &shape, rng, &mut scratch.digit);
    let colour = colouring(rng);
    dsp::colour(&colour, &mut scratch.digit, &mut scratch.band);
    // Every frequency moves by 40–150 Hz up or 30–80 Hz down (gliding between two such).
    let shift = |rng: &mut R| {
        if rng.gen::<bool>() {
            uniform(rng, 40.0, 150.0)
        } else {
            -uniform(rng, 30.0, 80.0)
        }
    };
    let (from, to) = (shift(rng), shift(rng));
    dsp::frequency_shift(&mut scratch.digit, from, to);
    dsp::rms(&scratch.digit)
}

/// One spoken digit transformed as in a clip (voice, resynthesis, equaliser, room), alone:
/// what an attacker who has cut a clip into digits must classify.
pub fn single_digit<R: RngCore + CryptoRng>(language: &str, digit: u8, rng: &mut R) -> Vec<f32> {
    let mut s = Scratch::default();
    let level = transformed(bank::language(language), digit % 10, true, rng, &mut s);
    room(rng, SPEECH_RMS / level.max(1e-6), true, &mut s.taps);
    let mut out = vec![0f32; s.digit.len() + ECHO_SPAN];
    dsp::mix_taps(&mut out, 0, &s.digit, &s.taps);
    out
}

/// A clip with the parts of `mix`.
pub fn generate_mix<R: RngCore + CryptoRng>(language: &str, mix: Mix, rng: &mut R) -> AudioClip {
    let mut out = [Vec::new()];
    let digits = compose(bank::language(language), mix, rng, &mut out, [0, 0, 0]);
    AudioClip {
        wav: wav_8bit(&out[0], 0.97),
        digits,
    }
}

/// The three parts of the clip `generate_mix` makes from the same RNG state — the spoken digits,
/// the babble, the noise — apart, before the final scaling (their sum, scaled, is the clip).
pub fn stems<R: RngCore + CryptoRng>(
    language: &str,
    mix: Mix,
    rng: &mut R,
) -> (String, [Vec<f32>; 3]) {
    let mut out = [Vec::new(), Vec::new(), Vec::new()];
    let digits = compose(bank::language(language), mix, rng, &mut out, [0, 1, 2]);
    (digits, out)
}

/// Makes a clip's digits and mixes its speech, babble and noise into `out[to[0]]`,
/// `out[to[1]]` and `out[to[2]]` (all the same buffer for a served clip). Returns the digits.
fn compose<R: RngCore + CryptoRng>(
    lang: &bank::Language,
    mix: Mix,
    rng: &mut R,
    out: &mut [Vec<f32>],
    to: [usize; 3],
) -> String {
    let digits = random_digits(rng);
    let fs = SAMPLE_RATE as usize;

    // The spoken digits, each transformed, placed after an uneven gap.
    let mut s = Scratch::default();
    let speech = &mut out[to[0]];
    speech.reserve(fs * 10);
    let mut at = (uniform(rng, 0.2, 0.45) * fs as f32) as usize;
    for d in digits.bytes() {
        let level = transformed(lang, d - b'0', true, rng, &mut s);
        let gain = SPEECH_RMS * db(uniform(rng, -3.0, 3.0)) / level.max(1e-6);
        room(rng, gain, true, &mut s.taps);
        let need = at + s.digit.len() + ECHO_SPAN;
        if speech.len() < need {
            speech.resize(need, 0.0);
        }
        dsp::mix_taps(speech, at, &s.digit, &s.taps);
        at += s.digit.len() + (uniform(rng, 0.12, 0.42) * fs as f32) as usize;
    }
    let total = at.max(speech.len()) + fs / 5;
    for buffer in out.iter_mut() {
        buffer.resize(total, 0.0);
    }

    // Babble: 3–4 other digits per spoken digit, anywhere, each at its own level below the
    // speech (12–18 dB in the served mix).
    if let Some((least, most)) = mix.babble {
        let babble = &mut out[to[1]];
        let count = digits.len() * 3 + rng.gen_range(0..=digits.len());
        for _ in 0..count {
            let level = transformed(lang, rng.gen_range(0..10), false, rng, &mut s);
            let gain = SPEECH_RMS * db(-uniform(rng, least, most)) / level.max(1e-6);
            if rng.gen::<bool>() {
                room(rng, gain, false, &mut s.taps);
            } else {
                s.taps.clear();
                s.taps.push((0, gain));
            }
            let start = rng.gen_range(0..total.saturating_sub(s.digit.len() / 2).max(1));
            dsp::mix_taps(babble, start, &s.digit, &s.taps);
        }
    }

    // Coloured noise with a slowly changing level below the speech (16–22 dB when served).
    if let Some((least, most)) = mix.noise {
        let level = SPEECH_RMS * db(-uniform(rng, least, most));
        let lowpass = uniform(rng, 0.0, 0.85);
        let swing = uniform(rng, 0.0, 0.5);
        let step = 2.0 * std::f32::consts::PI * uniform(rng, 0.1, 0.6) / fs as f32;
        let phase = uniform(rng, 0.0, 2.0 * std::f32::consts::PI);
        // Uniform white noise has RMS 1/sqrt(3); the one-pole low-pass scales it by
        // sqrt((1 - a) / (1 + a)).
        let norm = level * 3f32.sqrt() / ((1.0 - lowpass) / (1.0 + lowpass)).sqrt();
        let mut state = 0f32;
        let (mut c, mut s) = (phase.cos(), phase.sin());
        let (dc, ds) = (step.cos(), step.sin());
        let mut bytes = [0u8; 4096];
        for chunk in out[to[2]].chunks_mut(bytes.len() / 2) {
            rng.fill_bytes(&mut bytes);
            for (v, pair) in chunk.iter_mut().zip(bytes.chunks_exact(2)) {
                let white = f32::from(i16::from_le_bytes([pair[0], pair[1]])) * (1.0 / 32768.0);
                state = lowpass * state + (1.0 - lowpass) * white;
                *v += norm * (1.0 + swing * s) * state;
                (c, s) = (c * dc - s * ds, s * dc + c * ds);
            }
        }
    }
    digits
}

/// A mono 8-bit WAV of `samples`, scaled so that the loudest sample sits at `peak`.
pub fn wav_8bit(samples: &[f32], peak: f32) -> Vec<u8> {
    let loudest = samples.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let scale = peak * 127.0 / loudest;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 8,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(samples.len() + 64));
    // Writing into memory cannot fail; should it all the same, the clip is empty, not a panic.
    let written = hound::WavWriter::new(&mut cursor, spec).and_then(|mut writer| {
        for &v in samples {
            // Rounded: the offset keeps the value positive, where `as` truncates.
            let q = ((v * scale + 128.5) as i32 - 128).clamp(-128, 127) as i8;
            writer.write_sample(q)?;
        }
        writer.finalize()
    });
    match written {
        Ok(()) => cursor.into_inner(),
        Err(_) => Vec::new(),
    }
}

/// A mono 16-bit WAV of `samples` as they are (±1 full scale).
pub fn wav_16bit(samples: &[f32]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(2 * samples.len() + 64));
    let written = hound::WavWriter::new(&mut cursor, spec).and_then(|mut writer| {
        for &v in samples {
            writer.write_sample((v * 32767.0).round().clamp(-32768.0, 32767.0) as i16)?;
        }
        writer.finalize()
    });
    match written {
        Ok(()) => cursor.into_inner(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digits_are_known_from_the_seed_without_making_the_clip() {
        for seed in [[1u8; 32], [7; 32], [200; 32]] {
            let clip = generate("en", &mut rand_chacha::ChaCha20Rng::from_seed(seed));
            assert_eq!(digits_of(seed), clip.digits);
            assert!((SHORTEST..=LONGEST).contains(&clip.digits.len()));
        }
    }
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn read(wav: &[u8]) -> (hound::WavSpec, Vec<i8>) {
        let reader = hound::WavReader::new(std::io::Cursor::new(wav)).expect("a WAV file");
        let spec = reader.spec();
        let samples = reader
            .into_samples::<i8>()
            .map(|s| s.expect("a sample"))
            .collect();
        (spec, samples)
    }

    #[test]
    fn audio_clip_is_a_valid_wav_with_9_to_14_digits() {
        for seed in 0..20u64 {
            let clip = generate("en", &mut ChaCha20Rng::seed_from_u64(seed));
            assert!(
                (SHORTEST..=LONGEST).contains(&clip.digits.len()),
                "{}",
                clip.digits
            );
            assert!(
                clip.digits.bytes().all(|b| b.is_ascii_digit()),
                "{}",
                clip.digits
            );
            assert_eq!(&clip.wav[..4], b"RIFF");
            assert_eq!(&clip.wav[8..16], b"WAVEfmt ");
            let (spec, samples) = read(&clip.wav);
            assert_eq!(spec.channels, 1);
            assert_eq!(spec.sample_rate, 8000);
            assert_eq!(spec.bits_per_sample, 8);
            assert_eq!(spec.sample_format, hound::SampleFormat::Int);
            assert_eq!(samples.len() + 44, clip.wav.len());
            // Loud somewhere (scaled to the peak), and not clipped all over.
            assert!(samples.iter().any(|&s| s.unsigned_abs() >= 120));
            let clipped = samples.iter().filter(|&&s| s.unsigned_abs() >= 127).count();
            assert!(clipped < 20, "{clipped} clipped samples");
        }
    }

    #[test]
    fn audio_duration_is_sane() {
        for seed in 0..20u64 {
            let clip = generate("en", &mut ChaCha20Rng::seed_from_u64(seed));
            let (_, samples) = read(&clip.wav);
            let secs = samples.len() as f32 / 8000.0;
            let per_digit = secs / clip.digits.len() as f32;
            assert!(
                (0.45..1.3).contains(&per_digit),
                "{secs} s for {} digits",
                clip.digits.len()
            );
            assert!(clip.wav.len() < 120_000, "{} bytes", clip.wav.len());
        }
    }

    #[test]
    fn audio_every_language_has_every_digit_in_four_voices() {
        let langs = voice_languages();
        assert!(langs.len() >= 12);
        for want in [
            "en", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "tr", "ar", "zh",
        ] {
            assert!(langs.contains(&want), "{want} missing");
        }
        for &tag in langs {
            let lang = bank::language(tag);
            assert_eq!(lang.tag, tag, "{tag} falls back");
            assert!(
                lang.voices.len() >= 4,
                "{tag}: {} voices",
                lang.voices.len()
            );
            for v in 0..lang.voices.len() {
                for d in 0..10u8 {
                    let rec = lang.recording(v, d);
                    let secs = rec.samples().len() as f32 / 8000.0;
                    assert!(
                        (0.15..1.5).contains(&secs),
                        "{tag} {} {d}: {secs} s",
                        lang.voices[v]
                    );
                    let rms = dsp::rms(rec.samples());
                    assert!(rms > 0.03, "{tag} {} {d}: rms {rms}", lang.voices[v]);
                    let voiced: u32 = rec
                        .marks
                        .iter()
                        .filter(|m| m.voiced)
                        .map(|m| u32::from(m.period))
                        .sum();
                    assert!(
                        voiced >= 320,
                        "{tag} {} {d}: {voiced} voiced samples",
                        lang.voices[v]
                    );
                }
            }
        }
    }

    #[test]
    fn audio_recordings_of_one_digit_differ_between_voices() {
        let a = recording("en", 0, 7);
        let b = recording("en", 1, 7);
        assert_ne!(a, b);
        assert_ne!(recording("en", 0, 7), recording("de", 0, 7));
    }

    #[test]
    fn audio_different_seeds_differ() {
        let a = generate("en", &mut ChaCha20Rng::seed_from_u64(1));
        let b = generate("en", &mut ChaCha20Rng::seed_from_u64(2));
        assert_ne!(a.wav, b.wav);
        assert_ne!(a.digits, b.digits);
    }

    #[test]
    fn audio_same_seed_same_clip() {
        for lang in ["en", "zh"] {
            let a = generate(lang, &mut ChaCha20Rng::seed_from_u64(7));
            let b = generate(lang, &mut ChaCha20Rng::seed_from_u64(7));
            assert_eq!(a.digits, b.digits);
            assert!(a.wav == b.wav, "{lang}: same seed, different WAV");
        }
    }

    #[test]
    fn audio_unknown_language_is_english() {
        for tag in ["xx", "", "klingon"] {
            let a = generate(tag, &mut ChaCha20Rng::seed_from_u64(3));
            let b = generate("en", &mut ChaCha20Rng::seed_from_u64(3));
            assert!(a.wav == b.wav, "{tag:?} is not spoken in English");
        }
        assert_eq!(bank::language("pt-BR").tag, "pt");
        assert_eq!(bank::language("ZH_hans").tag, "zh");
        let de = generate("de", &mut ChaCha20Rng::seed_from_u64(3));
        let en = generate("en", &mut ChaCha20Rng::seed_from_u64(3));
        assert!(de.wav != en.wav, "German is spoken in English");
    }

    /// The best normalised correlation, at any lag in the clip, of a 20 ms stretch of any
    /// English recording (three stretches from each).
    fn best_match(wav: &[u8]) -> f32 {
        let (_, samples) = read(wav);
        let x: Vec<f32> = samples.iter().map(|&s| f32::from(s)).collect();
        let window = 160;
        let mut best = 0f32;
        for rec in &bank::language("en").recordings {
            for part in 1..=3 {
                let start = rec.samples().len() * part / 4 - window / 2;
                let b = &rec.samples()[start..start + window];
                let eb: f32 = b.iter().map(|v| v * v).sum();
                for lag in 0..x.len() - window {
                    let a = &x[lag..lag + window];
                    let c: f32 = a.iter().zip(b).map(|(p, q)| p * q).sum();
                    if c <= 0.0 {
                        continue;
                    }
                    let ea: f32 = a.iter().map(|v| v * v).sum();
                    best = best.max(c / (ea * eb).sqrt().max(1e-9));
                }
            }
        }
        best
    }

    #[test]
    fn audio_no_shipped_recording_survives() {
        // Every spoken digit is resynthesised: no 20 ms stretch of a recording is found in a
        // clip, even without babble and noise; in a pasted clip every one is.
        let clip = generate_mix("en", Mix::QUIET, &mut ChaCha20Rng::seed_from_u64(5));
        let best = best_match(&clip.wav);
        assert!(
            best < 0.98,
            "a stretch of a recording survives (correlation {best})"
        );
        let pasted = plain("en", &mut ChaCha20Rng::seed_from_u64(5));
        let best = best_match(&pasted.wav);
        assert!(
            best > 0.99,
            "the check misses a pasted recording (correlation {best})"
        );
    }

    #[test]
    fn audio_stems_add_up_to_the_clip() {
        let clip = generate("fr", &mut ChaCha20Rng::seed_from_u64(11));
        let (digits, [speech, babble, noise]) =
            stems("fr", Mix::FULL, &mut ChaCha20Rng::seed_from_u64(11));
        assert_eq!(digits, clip.digits);
        let sum: Vec<f32> = speech
            .iter()
            .zip(&babble)
            .zip(&noise)
            .map(|((a, b), c)| a + b + c)
            .collect();
        let again = wav_8bit(&sum, 0.97);
        let differ = clip.wav.iter().zip(&again).filter(|(a, b)| a != b).count();
        assert_eq!(clip.wav.len(), again.len());
        assert!(differ < clip.wav.len() / 100, "{differ} bytes differ");
        // The speech dominates: babble at least 8 dB and noise at least 12 dB below it.
        let (s, b, n) = (dsp::rms(&speech), dsp::rms(&babble), dsp::rms(&noise));
        assert!(s > 0.0 && b > 0.0 && n > 0.0);
        assert!(20.0 * (s / b).log10() > 8.0, "speech {s} babble {b}");
        assert!(20.0 * (s / n).log10() > 12.0, "speech {s} noise {n}");
    }

    #[test]
    fn audio_plain_pastes_the_recordings() {
        let clip = plain("en", &mut ChaCha20Rng::seed_from_u64(9));
        let (spec, samples) = read(&clip.wav);
        assert_eq!(spec.sample_rate, 8000);
        assert!((SHORTEST..=LONGEST).contains(&clip.digits.len()));
        assert!(samples.len() > clip.digits.len() * 2000);
    }
}
