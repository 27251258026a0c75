//! The bundled fonts, turned once per process into signed-distance fields of the alphabet.
//!
//! A distance field (instead of a plain coverage bitmap) lets the renderer scale, rotate, shear,
//! embolden, thin or hollow out each glyph with one bilinear sample per output pixel, and it is
//! built only once: the request path never touches the font parser or the rasteriser.

use std::sync::OnceLock;

use super::ALPHABET;

/// Size (pixels per em) at which the glyphs are rasterised for the distance fields.
pub(super) const REF_PX: f32 = 64.0;
/// Border (reference pixels) around each glyph's ink inside its field.
const PAD: usize = 8;

/// The bundled fonts: ASCII subsets of DejaVu (Bitstream Vera licence) and Liberation (SIL OFL
/// 1.1, renamed "Captchaify" as the OFL asks of modified versions); see
/// `src/challenge/fonts/README.md`.
const FONT_FILES: [(&str, &[u8]); 7] = [
    (
        "DejaVu Sans Bold",
        include_bytes!("../fonts/DejaVuSans-Bold.ttf"),
    ),
    (
        "DejaVu Sans Condensed Bold",
        include_bytes!("../fonts/DejaVuSansCondensed-Bold.ttf"),
    ),
    (
        "DejaVu Serif Bold",
        include_bytes!("../fonts/DejaVuSerif-Bold.ttf"),
    ),
    (
        "DejaVu Sans Mono Bold",
        include_bytes!("../fonts/DejaVuSansMono-Bold.ttf"),
    ),
    (
        "Captchaify Sans Bold",
        include_bytes!("../fonts/CaptchaifySans-Bold.ttf"),
    ),
    (
        "Captchaify Serif Bold",
        include_bytes!("../fonts/CaptchaifySerif-Bold.ttf"),
    ),
    (
        "Captchaify Mono Bold",
        include_bytes!("../fonts/CaptchaifyMono-Bold.ttf"),
    ),
];

/// One glyph as a signed-distance field: negative inside the ink, positive outside.
pub(super) struct Glyph {
    /// Field width and height (reference pixels, including the padding).
    pub w: usize,
    pub h: usize,
    sdf: Vec<f32>,
    /// The ink box and the baseline, in field coordinates (reference pixels).
    pub ink_left: f32,
    pub ink_right: f32,
    pub ink_top: f32,
    pub ink_bottom: f32,
    pub baseline: f32,
}

impl Glyph {
    /// Eight samples at once; positions outside the field read as far outside.
    #[inline(always)]
    pub fn sample8(&self, u: &[f32; 8], v: &[f32; 8]) -> [f32; 8] {
        // Clamp into the field: its border lies PAD pixels from the ink, so a clamped position
        // reads "outside". The casts are in range after the clamp.
        let umax = self.w as f32 - 1.001;
        let vmax = self.h as f32 - 1.001;
        let mut ix = [0u32; 8];
        let mut fx = [0.0f32; 8];
        let mut fy = [0.0f32; 8];
        let w = self.w as u32;
        for j in 0..8 {
            let uu = super::render::fmin(super::render::fmax(u[j], 0.0), umax);
            let vv = super::render::fmin(super::render::fmax(v[j], 0.0), vmax);
            // floor without a float-to-int conversion (see render::floor_small).
            let xi = (uu - 0.5 + 12_582_912.0)
                .to_bits()
                .wrapping_sub(0x4B40_0000);
            let yi = (vv - 0.5 + 12_582_912.0)
                .to_bits()
                .wrapping_sub(0x4B40_0000);
            fx[j] = uu - xi as f32;
            fy[j] = vv - yi as f32;
            ix[j] = yi.wrapping_mul(w).wrapping_add(xi);
        }
        let mut q = [[0.0f32; 4]; 8];
        for j in 0..8 {
            let i = ix[j] as usize;
            if let (Some(&[a, b]), Some(&[c, d])) = (
                self.sdf
                    .get(i..i + 2)
                    .and_then(|s| <&[f32; 2]>::try_from(s).ok()),
                self.sdf
                    .get(i + self.w..i + self.w + 2)
                    .and_then(|s| <&[f32; 2]>::try_from(s).ok()),
            ) {
                q[j] = [a, b, c, d];
            } else {
                q[j] = [PAD as f32; 4];
            }
        }
        let mut out = [0.0f32; 8];
        for j in 0..8 {
            let [a, b, c, d] = q[j];
            let top = a + (b - a) * fx[j];
            let bottom = c + (d - c) * fx[j];
            out[j] = top + (bottom - top) * fy[j];
        }
        out
    }
}

/// One font: a glyph per `ALPHABET` character, in `ALPHABET` order.
pub(super) struct FontGlyphs {
    #[allow(dead_code)]
    pub name: &'static str,
    pub glyphs: Vec<Glyph>,
    /// Height of a capital (the `H`) in reference pixels.
    pub cap_height: f32,
}

static CACHE: OnceLock<Vec<FontGlyphs>> = OnceLock::new();

/// The parsed fonts (built on first use). A font that fails to parse or lacks a character of
/// the alphabet is left out, so every entry has the full alphabet.
pub(super) fn fonts() -> &'static [FontGlyphs] {
    CACHE.get_or_init(build).as_slice()
}

fn build() -> Vec<FontGlyphs> {
    let mut out = Vec::new();
    for (name, bytes) in FONT_FILES {
        let settings = fontdue::FontSettings {
            scale: REF_PX,
            ..fontdue::FontSettings::default()
        };
        let Ok(font) = fontdue::Font::from_bytes(bytes, settings) else {
            continue;
        };
        let mut glyphs = Vec::new();
        for ch in ALPHABET.chars() {
            if !font.has_glyph(ch) {
                break;
            }
            let (m, cov) = font.rasterize(ch, REF_PX);
            if m.width == 0 || m.height == 0 || cov.len() != m.width * m.height {
                break;
            }
            glyphs.push(field(&cov, m.width, m.height, m.ymin as f32));
        }
        if glyphs.len() != ALPHABET.len() {
            continue;
        }
        let (hm, _) = font.rasterize('H', REF_PX);
        let cap_height = if hm.height > 0 {
            hm.height as f32
        } else {
            REF_PX * 0.72
        };
        out.push(FontGlyphs {
            name,
            glyphs,
            cap_height,
        });
    }
    out
}

/// Builds the distance field of a coverage bitmap (`cw` × `ch`, rows top to bottom) whose
/// bottom edge lies `ymin` pixels above the baseline (fontdue's convention).
fn field(cov: &[u8], cw: usize, ch: usize, ymin: f32) -> Glyph {
    let w = cw + 2 * PAD;
    let h = ch + 2 * PAD;
    let n = w * h;
    // Padded coverage.
    let mut pc = vec![0u8; n];
    for (dst, src) in pc.chunks_mut(w).skip(PAD).zip(cov.chunks(cw.max(1))) {
        for (d, s) in dst.iter_mut().skip(PAD).zip(src) {
            *d = *s;
        }
    }
    let inside: Vec<bool> = pc.iter().map(|&c| c >= 128).collect();
    let at = |i: usize| inside.get(i).copied().unwrap_or(false);

    // Seeds: pixels with a 4-neighbour on the other side of the outline.
    const FAR: i32 = i32::MAX;
    let mut dist = vec![FAR; n];
    let mut near = vec![(0i32, 0i32); n];
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let i = y * w + x;
            let here = at(i);
            if at(i - 1) != here || at(i + 1) != here || at(i - w) != here || at(i + w) != here {
                if let (Some(d), Some(p)) = (dist.get_mut(i), near.get_mut(i)) {
                    *d = 0;
                    *p = (x as i32, y as i32);
                }
            }
        }
    }
    // Dead reckoning: two raster passes propagating the nearest seed (squared distances).
    // The outermost ring is left out so every neighbour index is in range.
    let pass = |dist: &mut Vec<i32>,
                near: &mut Vec<(i32, i32)>,
                offsets: &[isize; 4],
                y: usize,
                x: usize| {
        let i = y * w + x;
        let mut best_d = dist.get(i).copied().unwrap_or(FAR);
        let mut best = near.get(i).copied().unwrap_or((0, 0));
        for &o in offsets {
            let j = (i as isize + o) as usize;
            if dist.get(j).copied().unwrap_or(FAR) == FAR {
                continue;
            }
            let Some(&cand) = near.get(j) else { continue };
            let dx = x as i32 - cand.0;
            let dy = y as i32 - cand.1;
            let d = dx * dx + dy * dy;
            if d < best_d {
                best_d = d;
                best = cand;
            }
        }
        if let (Some(d), Some(p)) = (dist.get_mut(i), near.get_mut(i)) {
            *d = best_d;
            *p = best;
        }
    };
    let wi = w as isize;
    let forward = [-wi - 1, -wi, -wi + 1, -1];
    let backward = [1, wi - 1, wi, wi + 1];
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            pass(&mut dist, &mut near, &forward, y, x);
        }
    }
    for y in (1..h.saturating_sub(1)).rev() {
        for x in (1..w.saturating_sub(1)).rev() {
            pass(&mut dist, &mut near, &backward, y, x);
        }
    }
    let sdf: Vec<f32> = pc
        .iter()
        .zip(&dist)
        .map(|(&c, &d2)| {
            let d = if d2 == FAR {
                PAD as f32
            } else {
                (d2 as f32).sqrt()
            };
            let s = if c > 0 && c < 255 {
                0.5 - c as f32 / 255.0
            } else if c >= 128 {
                -(d + 0.5)
            } else {
                d + 0.5
            };
            s.clamp(-(PAD as f32), PAD as f32)
        })
        .collect();
    Glyph {
        w,
        h,
        sdf,
        ink_left: PAD as f32,
        ink_right: (PAD + cw) as f32,
        ink_top: PAD as f32,
        ink_bottom: (PAD + ch) as f32,
        baseline: PAD as f32 + ch as f32 + ymin,
    }
}
