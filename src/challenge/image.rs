//! The text captcha: a PNG of distorted characters that a person reads without JavaScript,
//! and that off-the-shelf OCR does not.
//!
//! [`generate`] draws a fresh answer and its image from the caller's RNG (every random choice
//! comes from it, so a seeded RNG gives the same image again). [`normalize_answer`] turns what
//! a user typed into the form compared with [`CaptchaImage::answer`].
//!
//! Tuned for people first (issue 17): blind reads of fresh images by readers who never saw the
//! answers (`scripts/blind-reads`) decide what stays. Each image differs in *structure*, not
//! only in noise. Per image, from the RNG: the font (one of seven bundled, or a different one
//! per letter, all scaled to one capital height), the spacing model (always with a clear gap
//! between letters), the baseline model (tilt, arc, wave, S-curve, random walk, bounce), the
//! letters' size, width, rotation, shear, weight and vertical offset, the warp (one to three
//! of: vertical wave, horizontal sway, uneven stretch, smooth random field, bulge, swirl), one
//! or two thin strokes through the letters (a wave, a long curve), a soft background (faint
//! hollow decoy letters, blobs or grain), a polarity split (text and background swap tones
//! across one or two edges that run through the gaps between letters), tones and a background
//! ramp. On top of that a *budget* of at most one extra feature from: thin arcs, speckles,
//! hair lines, hatching. See `render::Style`.
//!
//! The image's width depends on the hardness only (360, 440 or 472 pixels), never on the
//! answer's length; the text sits at a random place in it.
//!
//! Everything is grey: colour would give a program an easy way to separate the letters from
//! the strokes that a person does not need. The PNG is 4-bit greyscale (16 levels).
//!
//! This runs inside nginx workers: nothing here panics, whatever the hardness or the RNG
//! output (no unwrap/expect; pixels and tables are reached through `get` or through
//! fixed-size arrays indexed by constant ranges; float-to-index casts saturate). The fonts
//! are parsed and turned into distance fields once per process, before the workers fork
//! ([`warm_up`]); after that an image costs about 0.3–0.4 ms on one core.

mod glyphs;
mod render;

use crate::policy::Hardness;
use rand::{CryptoRng, RngCore};

/// A generated captcha.
#[derive(Clone, Debug)]
pub struct CaptchaImage {
    /// The characters shown, in order, all from [`ALPHABET`] (already in normalised form).
    pub answer: String,
    /// The image, an 8-bit greyscale PNG.
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// The characters answers are made of: upper-case letters and digits with no look-alikes.
///
/// Left out, because under rotation, warp, crowding and a stroke across them they are
/// confused with another character (the partner in brackets): `0 O Q D` (each other),
/// `1 I L J` (each other), `2 Z`, `5 S`, `8 B`, `G` (6, C), `A` (4 — a rotated serif 4 was
/// seen to read as A), `V` (U, Y), `F` (E with a stroke under it). Dropped after blind reads
/// (`scripts/blind-reads`, issue 17): `W` (read as N or M), `Y` (X, K, T or 7), `7` (read as
/// 1, Z or T, and T as 7, in both pilot runs), `P` (read as R: 4 of 232 times in the first
/// full run) and `K` (read as X: 4 of 225). Lower case is never shown, so `l`/`I` and `g`/`9`
/// cannot happen; users may type either case. See also [`READ_AS`].
pub const ALPHABET: &str = "3469CEHMNRTUX";

/// Characters outside [`ALPHABET`] that people type when they misread one character of it,
/// each with the one character it stands for (the only one in the alphabet it looks like):
/// accepted as that character. In the first full blind run 4 was read as A six times, and
/// 6 as G once. Attackers gain nothing from it (a program reading our images only ever
/// answers in the alphabet), and a blind guess's odds do not change.
pub const READ_AS: [(char, char); 7] = [
    ('A', '4'),
    ('G', '6'),
    ('F', 'E'),
    ('V', 'U'),
    ('K', 'X'),
    ('P', 'R'),
    ('7', 'T'),
];

/// Longest accepted answer (after removing spaces).
const MAX_ANSWER: usize = 32;
/// Longest raw input looked at at all (bytes); anything longer is rejected unread.
const MAX_INPUT: usize = 256;

/// What a user typed → the form compared with the answer: ASCII case folded to upper case,
/// whitespace removed, [`READ_AS`] look-alikes replaced. `None` if the result contains a
/// character outside [`ALPHABET`] or is longer than 32 characters (or the raw input is longer
/// than 256 bytes). An empty or all-space input gives `Some("")`, which never equals an
/// answer.
pub fn normalize_answer(input: &str) -> Option<String> {
    if input.len() > MAX_INPUT {
        return None;
    }
    let mut out = String::with_capacity(input.len().min(MAX_ANSWER));
    for c in input.chars() {
        if c.is_whitespace() {
            continue;
        }
        let c = c.to_ascii_uppercase();
        let c = READ_AS
            .iter()
            .find(|&&(typed, _)| typed == c)
            .map_or(c, |&(_, meant)| meant);
        if !ALPHABET.contains(c) || out.len() >= MAX_ANSWER {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

/// What a hardness draws (anything outside 1..=3 counts as 2).
struct Shape {
    /// Shortest and longest answer; the length is drawn uniformly in between.
    lengths: (usize, usize),
    /// Scales the letters' rotation and jitter and the warp: longer answers are distorted
    /// less.
    strength: f32,
    /// Image width in pixels. The same for every answer of the hardness, so that the image
    /// does not give the answer's length away; the text sits at a random place in it.
    width: usize,
}

fn shape(hardness: Hardness) -> Shape {
    match hardness {
        Hardness::EASY => Shape {
            lengths: (6, 8),
            strength: 1.0,
            width: 360,
        },
        Hardness::HARD => Shape {
            lengths: (10, 12),
            strength: 0.85,
            width: 472,
        },
        _ => Shape {
            lengths: (9, 11),
            strength: 0.9,
            width: 440,
        },
    }
}

/// The shortest and longest answer at a hardness.
pub fn answer_lengths(hardness: Hardness) -> (usize, usize) {
    shape(hardness).lengths
}

/// Image width at a hardness, whatever the answer's length.
pub fn image_width(hardness: Hardness) -> u32 {
    shape(hardness).width as u32
}

/// Draws a new answer and its image.
///
/// hardness 1: 6–8 characters; 2: 9–11; 3: 10–12 (lengths chosen by the RNG). Images are
/// 100 pixels high and 360, 440 or 472 pixels wide (hardness 1, 2, 3), whatever the answer's
/// length.
pub fn generate<R: RngCore + CryptoRng>(hardness: Hardness, rng: &mut R) -> CaptchaImage {
    generate_dyn(hardness, rng)
}

fn generate_dyn(hardness: Hardness, rng: &mut dyn RngCore) -> CaptchaImage {
    let Shape {
        lengths: (lo, hi),
        strength,
        width,
    } = shape(hardness);
    let len = lo + render::below(rng, hi - lo + 1);
    let alphabet = ALPHABET.as_bytes();
    // No character twice in a row: readers miscounted runs of one letter.
    let mut indices: Vec<usize> = Vec::with_capacity(len);
    for _ in 0..len {
        let next = match indices.last() {
            Some(&last) => (last + 1 + render::below(rng, alphabet.len() - 1)) % alphabet.len(),
            None => render::below(rng, alphabet.len()),
        };
        indices.push(next);
    }
    let answer: String = indices
        .iter()
        .filter_map(|&i| alphabet.get(i))
        .map(|&b| b as char)
        .collect();
    let (grey, w, h) = render::render(&indices, strength, width, rng);
    let png = encode_png(&grey, w as u32, h as u32);
    CaptchaImage {
        answer,
        png,
        width: w as u32,
        height: h as u32,
    }
}

/// 4-bit greyscale PNG (the image has 16 grey levels, multiples of 17: exactly what 4 bits
/// hold), two pixels a byte, fast deflate, Paeth filter: half the bytes an 8-bit image gives
/// the compressor. Empty on the (impossible) encoder error rather than a panic.
fn encode_png(grey: &[u8], w: u32, h: u32) -> Vec<u8> {
    let (width, height) = (w as usize, h as usize);
    if grey.len() != width * height || width == 0 {
        return Vec::new();
    }
    let stride = width.div_ceil(2);
    let mut packed = vec![0u8; stride * height];
    for (row, out) in grey.chunks(width).zip(packed.chunks_mut(stride)) {
        for (pair, byte) in row.chunks(2).zip(out.iter_mut()) {
            let hi = pair.first().map_or(0, |&v| v / 17);
            let lo = pair.get(1).map_or(0, |&v| v / 17);
            *byte = (hi << 4) | lo;
        }
    }
    let mut out = Vec::with_capacity(grey.len() / 3);
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Four);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Paeth);
    let written = encoder.write_header().and_then(|mut writer| {
        writer.write_image_data(&packed)?;
        writer.finish()
    });
    if written.is_err() {
        out.clear();
    }
    out
}

/// Builds the glyph shapes now (10–15 ms, about 1.7 MB), so that no request pays for it:
/// call it at configuration time, before nginx forks its workers, which then share them.
pub fn warm_up() {
    let _ = glyphs::fonts();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    const ALL: [Hardness; 3] = [Hardness::EASY, Hardness::NORMAL, Hardness::HARD];

    #[test]
    fn look_alikes_stand_for_one_character_of_the_alphabet() {
        for (typed, meant) in READ_AS {
            assert!(!ALPHABET.contains(typed), "{typed} is in the alphabet");
            assert!(ALPHABET.contains(meant), "{meant} is not in the alphabet");
        }
        let mut seen = std::collections::HashSet::new();
        assert!(
            READ_AS.iter().all(|(typed, _)| seen.insert(*typed)),
            "one meaning each"
        );
    }

    #[test]
    fn no_character_twice_in_a_row() {
        let mut r = rng(5);
        for h in ALL {
            for _ in 0..200 {
                let c = generate(h, &mut r);
                let b = c.answer.as_bytes();
                assert!(b.windows(2).all(|w| w[0] != w[1]), "{}", c.answer);
            }
        }
    }

    #[test]
    fn alphabet_has_no_look_alikes_and_is_upper_case_ascii() {
        for c in "0OQD1ILJ2Z5S8BGAVFWY7".chars() {
            assert!(!ALPHABET.contains(c), "{c} is a look-alike");
        }
        assert!(ALPHABET
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        let mut seen = std::collections::HashSet::new();
        assert!(ALPHABET.chars().all(|c| seen.insert(c)), "duplicates");
    }

    #[test]
    fn all_fonts_load_with_the_whole_alphabet() {
        let fonts = glyphs::fonts();
        assert_eq!(fonts.len(), 7);
        for f in fonts {
            assert_eq!(f.glyphs.len(), ALPHABET.len());
        }
    }

    #[test]
    fn lengths_per_hardness() {
        for (hardness, lo, hi) in [
            (Hardness::EASY, 6usize, 8usize),
            (Hardness::NORMAL, 9, 11),
            (Hardness::HARD, 10, 12),
        ] {
            let mut r = rng(u64::from(hardness.get()));
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..60 {
                let c = generate(hardness, &mut r);
                let n = c.answer.chars().count();
                assert!((lo..=hi).contains(&n), "hardness {hardness}: length {n}");
                // The width does not give the length away.
                assert_eq!(
                    c.width,
                    image_width(hardness),
                    "hardness {hardness}, length {n}"
                );
                seen.insert(n);
            }
            assert_eq!(
                seen.len(),
                hi - lo + 1,
                "hardness {hardness}: lengths {seen:?}"
            );
        }
    }

    #[test]
    fn answers_only_from_alphabet() {
        let mut r = rng(7);
        for h in ALL {
            for _ in 0..40 {
                let c = generate(h, &mut r);
                assert!(
                    c.answer.chars().all(|ch| ALPHABET.contains(ch)),
                    "{}",
                    c.answer
                );
                assert_eq!(
                    normalize_answer(&c.answer).as_deref(),
                    Some(c.answer.as_str())
                );
            }
        }
    }

    #[test]
    fn normalize_answer_cases() {
        assert_eq!(normalize_answer("h3 m9x").as_deref(), Some("H3M9X"));
        assert_eq!(normalize_answer("  4 c e \t").as_deref(), Some("4CE"));
        assert_eq!(normalize_answer(" hxmr 4u ").as_deref(), Some("HXMR4U"));
        // Look-alikes outside the alphabet stand for the character they resemble.
        assert_eq!(normalize_answer("a9gfvkp7").as_deref(), Some("496EUXRT"));
        assert_eq!(normalize_answer("HA3"), normalize_answer("H43"));
        assert_eq!(normalize_answer("").as_deref(), Some(""));
        assert_eq!(normalize_answer("   ").as_deref(), Some(""));
        assert_eq!(normalize_answer("HC0E"), None); // zero is not in the alphabet
        assert_eq!(normalize_answer("HCOE"), None); // nor is O, nor a look-alike of one
        assert_eq!(normalize_answer("HW"), None); // W looks like N and M: no guess made
        assert_eq!(normalize_answer("H-C"), None);
        assert_eq!(normalize_answer("ÄCE"), None);
        assert_eq!(normalize_answer("ｷCE"), None);
        assert_eq!(normalize_answer("HXMR4U\u{0}"), None);
        let max = "H".repeat(32);
        assert_eq!(normalize_answer(&max).as_deref(), Some(max.as_str()));
        assert_eq!(normalize_answer(&"H".repeat(33)), None);
        // Spaces do not count towards the 32.
        let spaced: String = "H ".repeat(32);
        assert_eq!(normalize_answer(&spaced).as_deref(), Some(max.as_str()));
        assert_eq!(normalize_answer(&" ".repeat(300)), None);
    }

    #[test]
    fn deterministic_for_a_seed() {
        for h in ALL {
            let a = generate(h, &mut rng(42));
            let b = generate(h, &mut rng(42));
            assert_eq!(a.answer, b.answer);
            assert_eq!(a.png, b.png);
            let c = generate(h, &mut rng(43));
            assert_ne!(a.png, c.png);
        }
        // Successive images from one RNG differ.
        let mut r = rng(1);
        let a = generate(Hardness::NORMAL, &mut r);
        let b = generate(Hardness::NORMAL, &mut r);
        assert_ne!(a.png, b.png);
        assert_ne!(a.answer, b.answer);
    }

    #[test]
    fn the_four_bit_png_holds_exactly_the_drawn_pixels() {
        for seed in 0..12u64 {
            let answer: Vec<usize> = (0..7 + seed as usize % 5)
                .map(|i| (i * 5 + seed as usize) % ALPHABET.len())
                .collect();
            let (grey, w, h) = render::render(&answer, 1.0, 400, &mut rng(seed));
            assert!(
                grey.iter().all(|v| v % 17 == 0),
                "16 grey levels, multiples of 17"
            );
            let png = encode_png(&grey, w as u32, h as u32);
            let decoded = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
                .unwrap()
                .to_luma8();
            assert_eq!((decoded.width(), decoded.height()), (w as u32, h as u32));
            assert!(
                decoded.as_raw() == &grey,
                "seed {seed}: the decoded pixels differ"
            );
        }
    }

    #[test]
    fn png_decodes_with_the_stated_size() {
        let mut r = rng(9);
        for h in ALL {
            for _ in 0..10 {
                let c = generate(h, &mut r);
                let img = image::load_from_memory_with_format(&c.png, image::ImageFormat::Png)
                    .expect("decodes");
                assert_eq!((img.width(), img.height()), (c.width, c.height));
                assert_eq!(c.width, image_width(h), "hardness {h}");
                assert_eq!(c.height, 100);
                // Not blank: a real spread of tones.
                let grey = img.to_luma8();
                let (min, max) = grey
                    .pixels()
                    .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p.0[0]), hi.max(p.0[0])));
                assert!(max - min > 120, "contrast {min}..{max}");
            }
        }
    }

    #[test]
    fn many_images_without_panic() {
        let mut r = rng(11);
        for i in 0..300usize {
            let c = generate(ALL[i % ALL.len()], &mut r);
            assert!(!c.png.is_empty());
        }
    }
}
