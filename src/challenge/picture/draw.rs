//! Drawing a tile: a shipped picture made new for one challenge, so that no served tile is
//! the picture itself, nor any tile served before.
//!
//! Every tile draws its own:
//! - background: a gradient between a light and a dark colour in a random direction, two or
//!   three big discs of random colour, and 4–7 random lines, rings and discs over it: where a
//!   tile is light or dark changes from tile to tile, which is what a perceptual hash reads
//!   first (scripts/picture-check);
//! - placement: scale (the drawing fills 62–100 % of the tile), rotation (±20°), mirror
//!   (half the tiles), an offset of up to 18 % of the tile, so that edges are cropped now and
//!   then;
//! - colour: a hue turn of up to ±20° and a brightness of 90–110 % (blind readers took a
//!   ±35° apple for an orange);
//! - outline: a line around the drawing, as around a sticker: dark on light, light on dark;
//! - occlusion: in half the tiles a small disc or bar over the drawing;
//! - speckles: 30–60 pixels of random colour.
//!
//! Blind solves set these bounds: with rotations of ±25°, occlusion in 7 tiles of 10 and
//! hue turns of ±35°, readers took decoys for the motif and missed pale drawings.
//!
//! One pass over the tile's pixels with fixed-point arithmetic (bilinear sampling of the
//! premultiplied picture, the colour matrix, compositing), then a fast PNG: a 64-pixel tile
//! costs tens of microseconds (`scripts/bench`, `captcha-pictures --bench`).

use rand::Rng;

use super::{Picture, CANVAS};

/// The side of a served tile, in pixels.
pub const TILE: usize = 64;

/// A drawn tile, RGB, `TILE` × `TILE`, and where the picture covers it.
pub struct Canvas {
    pub rgb: Vec<u8>,
    /// The picture's opacity at each pixel (0 where only the background shows).
    cover: Vec<u8>,
}

impl Default for Canvas {
    fn default() -> Self {
        Canvas {
            rgb: vec![0; TILE * TILE * 3],
            cover: vec![0; TILE * TILE],
        }
    }
}

/// How far a kind's tiles stray from a plain picture: a trade between people and perceptual
/// hashes, measured both ways for each kind (docs/security.md, "The picture captchas").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// The share of the tile the drawing fills, least and most.
    pub fill: (f32, f32),
    /// How far the drawing's centre may move from the tile's, as a share of the tile.
    pub offset: f32,
    /// How many big light discs lie under the drawing, fewest and most.
    pub discs: (u32, u32),
}

impl Style {
    /// The animals: drawings of many artists, some pale or thin, that people missed when
    /// they were smaller, further off centre or over busier backgrounds (blind rounds 6–8).
    pub const GENTLE: Style = Style {
        fill: (0.70, 1.0),
        offset: 0.12,
        discs: (0, 0),
    };
    /// The emoji: bold, flat drawings that people still read at 62 % of the tile, moved
    /// further and over big discs, which take most of a perceptual hash's grip.
    pub const FIRM: Style = Style {
        fill: (0.62, 1.0),
        offset: 0.18,
        discs: (2, 3),
    };

    pub const fn of(kind: crate::challenge::ChallengeKind) -> Style {
        match kind {
            crate::challenge::ChallengeKind::Animals => Style::GENTLE,
            _ => Style::FIRM,
        }
    }
}

/// How a tile is made from its picture; drawn at random by [`Look::random`].
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub background: ([u8; 3], [u8; 3]),
    /// The gradient's direction, as a unit vector in 1/256ths.
    pub gradient: (i32, i32),
    /// How many tile pixels one canvas pixel covers.
    pub scale: f32,
    /// Radians.
    pub rotation: f32,
    pub mirror: bool,
    /// The drawing's centre, relative to the tile's, in pixels.
    pub offset: (f32, f32),
    /// Degrees.
    pub hue: f32,
    pub brightness: f32,
}

impl Look {
    pub fn random<R: Rng + ?Sized>(style: &Style, rng: &mut R) -> Look {
        let light = |rng: &mut R| -> [u8; 3] {
            [
                rng.gen_range(150..=250),
                rng.gen_range(150..=250),
                rng.gen_range(150..=250),
            ]
        };
        let angle: f32 = rng.gen_range(0.0..std::f32::consts::TAU);
        let fill: f32 = rng.gen_range(style.fill.0..=style.fill.1);
        let span = TILE as f32 * style.offset;
        Look {
            background: (light(rng), light(rng)),
            gradient: ((angle.cos() * 256.0) as i32, (angle.sin() * 256.0) as i32),
            scale: fill * TILE as f32 / CANVAS as f32,
            rotation: rng.gen_range(-20f32..=20.0).to_radians(),
            mirror: rng.gen(),
            offset: (rng.gen_range(-span..=span), rng.gen_range(-span..=span)),
            hue: rng.gen_range(-20f32..=20.0),
            brightness: rng.gen_range(0.9f32..=1.1),
        }
    }
}

/// Draws `picture` onto `canvas` with a random look in `style`, clutter, occlusion and
/// speckles.
pub fn draw<R: Rng + ?Sized>(picture: &Picture, style: &Style, rng: &mut R, canvas: &mut Canvas) {
    let look = Look::random(style, rng);
    background(&look, &mut canvas.rgb);
    // Big soft shapes: the tile's light and dark areas move from tile to tile, which is what
    // a perceptual hash reads first.
    for _ in 0..rng.gen_range(style.discs.0..=style.discs.1) {
        let t = TILE as f32;
        let centre = (rng.gen_range(0.0..t), rng.gen_range(0.0..t));
        let colour = [
            rng.gen_range(120..=250),
            rng.gen_range(120..=250),
            rng.gen_range(120..=250),
        ];
        disc(
            &mut canvas.rgb,
            centre,
            rng.gen_range(12.0..28.0),
            0.0,
            colour,
            220,
        );
    }
    for _ in 0..rng.gen_range(4..=7) {
        clutter(rng, &mut canvas.rgb, 90);
    }
    canvas.cover.fill(0);
    place(picture, &look, &mut canvas.rgb, &mut canvas.cover);
    outline(canvas);
    if rng.gen() {
        occlude(rng, &mut canvas.rgb);
    }
    speckle(rng, &mut canvas.rgb);
}

fn background(look: &Look, rgb: &mut [u8]) {
    let (from, to) = look.background;
    let (gx, gy) = look.gradient;
    // t = the pixel's projection on the direction, mapped to 0..=256 across the tile, in
    // 1/256ths: it steps by a constant along a row.
    let half = TILE as i32 / 2;
    let reach = ((gx.abs() + gy.abs()) * half).max(1);
    let span: [i32; 3] = std::array::from_fn(|c| to[c] as i32 - from[c] as i32);
    for y in 0..TILE {
        let mut projection = (-half * gx + (y as i32 - half) * gy + reach) * 128 * 256 / reach;
        let step = gx * 128 * 256 / reach;
        for pixel in rgb[y * TILE * 3..(y + 1) * TILE * 3].chunks_exact_mut(3) {
            let t = (projection >> 8).clamp(0, 256);
            for c in 0..3 {
                pixel[c] = (from[c] as i32 + ((span[c] * t) >> 8)) as u8;
            }
            projection += step;
        }
    }
}

fn random_colour<R: Rng + ?Sized>(rng: &mut R) -> [u8; 3] {
    [rng.gen(), rng.gen(), rng.gen()]
}

/// Blends `colour` into the pixel at `at` with opacity `alpha`/256.
#[inline]
fn blend(rgb: &mut [u8], at: usize, colour: [u8; 3], alpha: u32) {
    for c in 0..3 {
        let old = rgb[at + c] as u32;
        rgb[at + c] = ((old * (256 - alpha) + colour[c] as u32 * alpha) >> 8) as u8;
    }
}

/// A random line, ring or disc, at opacity `alpha`/256.
fn clutter<R: Rng + ?Sized>(rng: &mut R, rgb: &mut [u8], alpha: u32) {
    let colour = random_colour(rng);
    let t = TILE as f32;
    match rng.gen_range(0..3) {
        0 => {
            let (x0, y0, x1, y1) = (
                rng.gen_range(0.0..t),
                rng.gen_range(0.0..t),
                rng.gen_range(0.0..t),
                rng.gen_range(0.0..t),
            );
            let width = rng.gen_range(1..=2) as f32;
            line(rgb, (x0, y0), (x1, y1), width, colour, alpha);
        }
        shape => {
            let (cx, cy) = (rng.gen_range(0.0..t), rng.gen_range(0.0..t));
            let radius = rng.gen_range(4.0..t / 4.0);
            let inner = if shape == 1 { radius - 2.0 } else { 0.0 };
            disc(rgb, (cx, cy), radius, inner, colour, alpha);
        }
    }
}

fn line(rgb: &mut [u8], from: (f32, f32), to: (f32, f32), width: f32, colour: [u8; 3], alpha: u32) {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let length2 = (dx * dx + dy * dy).max(1e-3);
    let half = width / 2.0 + 0.5;
    let (x_lo, x_hi) = (from.0.min(to.0) - half, from.0.max(to.0) + half);
    let (y_lo, y_hi) = (from.1.min(to.1) - half, from.1.max(to.1) + half);
    // Per row, only the columns near where the line crosses it (all of the box's row for a
    // line that is nearly flat, whose box is then a few rows high).
    let steep = dy.abs() > 0.25;
    let (per_row, reach) = if steep {
        // The capsule around the line: its width across a row, and an end cap beyond it.
        (dx / dy, half * length2.sqrt() / dy.abs() + half + 1.0)
    } else {
        (0.0, f32::INFINITY)
    };
    for y in (y_lo.max(0.0) as usize)..(y_hi.min(TILE as f32 - 1.0) as usize + 1) {
        let (mut lo, mut hi) = (x_lo, x_hi);
        if steep {
            let crossing = from.0 + (y as f32 + 0.5 - from.1) * per_row;
            lo = lo.max(crossing - reach);
            hi = hi.min(crossing + reach);
        }
        if hi < 0.0 || lo >= TILE as f32 {
            continue;
        }
        for x in (lo.max(0.0) as usize)..(hi.min(TILE as f32 - 1.0) as usize + 1) {
            let (px, py) = (x as f32 + 0.5 - from.0, y as f32 + 0.5 - from.1);
            let along = ((px * dx + py * dy) / length2).clamp(0.0, 1.0);
            let (ex, ey) = (px - along * dx, py - along * dy);
            if ex * ex + ey * ey <= half * half {
                blend(rgb, (y * TILE + x) * 3, colour, alpha);
            }
        }
    }
}

fn disc(rgb: &mut [u8], centre: (f32, f32), radius: f32, inner: f32, colour: [u8; 3], alpha: u32) {
    let (r2, i2) = (radius * radius, inner.max(0.0) * inner.max(0.0));
    let lo = |c: f32| (c - radius).max(0.0) as usize;
    let hi = |c: f32| ((c + radius).min(TILE as f32 - 1.0)).max(0.0) as usize + 1;
    for y in lo(centre.1)..hi(centre.1) {
        for x in lo(centre.0)..hi(centre.0) {
            let (dx, dy) = (x as f32 + 0.5 - centre.0, y as f32 + 0.5 - centre.1);
            let d2 = dx * dx + dy * dy;
            if d2 <= r2 && d2 >= i2 {
                blend(rgb, (y * TILE + x) * 3, colour, alpha);
            }
        }
    }
}

/// The hue turn and brightness as one integer matrix (in 1/1024ths), the usual
/// luminance-keeping rotation about the grey axis.
fn colour_matrix(hue_degrees: f32, brightness: f32) -> [[i32; 3]; 3] {
    let (sin, cos) = hue_degrees.to_radians().sin_cos();
    let m = [
        [
            0.213 + cos * 0.787 - sin * 0.213,
            0.715 - cos * 0.715 - sin * 0.715,
            0.072 - cos * 0.072 + sin * 0.928,
        ],
        [
            0.213 - cos * 0.213 + sin * 0.143,
            0.715 + cos * 0.285 + sin * 0.140,
            0.072 - cos * 0.072 - sin * 0.283,
        ],
        [
            0.213 - cos * 0.213 - sin * 0.787,
            0.715 - cos * 0.715 + sin * 0.715,
            0.072 + cos * 0.928 + sin * 0.072,
        ],
    ];
    m.map(|row| row.map(|v| (v * brightness * 1024.0).round() as i32))
}

/// Samples the picture through the look's inverse transform (bilinear, 16.16 fixed point),
/// turns its colours and lays it over the background.
fn place(picture: &Picture, look: &Look, rgb: &mut [u8], cover: &mut [u8]) {
    const ONE: f32 = 65536.0;
    let side = CANVAS as i32;
    let (sin, cos) = look.rotation.sin_cos();
    let k = look.scale;
    let mirror = if look.mirror { -1.0 } else { 1.0 };
    // Canvas coordinates of a tile pixel: rotate back, scale back, mirror, re-centre.
    let centre = (
        TILE as f32 / 2.0 + look.offset.0,
        TILE as f32 / 2.0 + look.offset.1,
    );
    let half_canvas = CANVAS as f32 / 2.0;
    let du_dx = mirror * cos / k;
    let dv_dx = -sin / k;
    let du_dy = mirror * sin / k;
    let dv_dy = cos / k;
    let matrix = colour_matrix(look.hue, look.brightness);
    let src = &picture.rgba;
    let row = (side * 4) as usize;
    // The drawing's box, widened by the pixel bilinear sampling reaches into.
    let (bx0, by0, bx1, by1) = picture.bounds;
    let (lo_u, lo_v) = (bx0 as f32 - 1.0, by0 as f32 - 1.0);
    let (hi_u, hi_v) = (bx1 as f32, by1 as f32);
    for y in 0..TILE {
        let py = y as f32 + 0.5 - centre.1;
        let px = 0.5 - centre.0;
        // -0.5: bilinear sampling puts pixel centres at integer + 0.5.
        let u0 = du_dx * px + du_dy * py + half_canvas - 0.5;
        let v0 = dv_dx * px + dv_dy * py + half_canvas - 0.5;
        // The tile columns whose sample falls in the drawing's box: u0 + x·du_dx in
        // [lo_u, hi_u) and the same for v.
        let (mut first, mut last) = (0f32, TILE as f32);
        for (start, step, lo, hi) in [(u0, du_dx, lo_u, hi_u), (v0, dv_dx, lo_v, hi_v)] {
            if step.abs() < 1e-6 {
                if start < lo || start >= hi {
                    last = 0.0;
                }
            } else {
                let (a, b) = ((lo - start) / step, (hi - start) / step);
                first = first.max(a.min(b).floor());
                last = last.min(a.max(b).ceil() + 1.0);
            }
        }
        if last <= first {
            continue;
        }
        let (first, last) = (first.max(0.0) as usize, (last as usize).min(TILE));
        let mut u = ((u0 + first as f32 * du_dx) * ONE) as i32;
        let mut v = ((v0 + first as f32 * dv_dx) * ONE) as i32;
        let (step_u, step_v) = ((du_dx * ONE) as i32, (dv_dx * ONE) as i32);
        for x in first..last {
            let (ui, vi) = (u >> 16, v >> 16);
            if ui >= 0 && vi >= 0 && ui < side - 1 && vi < side - 1 {
                let at = ((vi * side + ui) * 4) as usize;
                let (top, bottom) = (&src[at..at + 8], &src[at + row..at + row + 8]);
                let (fu, fv) = (((u >> 8) & 255) as u32, ((v >> 8) & 255) as u32);
                let w00 = (256 - fu) * (256 - fv);
                let w10 = fu * (256 - fv);
                let w01 = (256 - fu) * fv;
                let w11 = fu * fv;
                let tap = |c: usize| {
                    (top[c] as u32 * w00
                        + top[4 + c] as u32 * w10
                        + bottom[c] as u32 * w01
                        + bottom[4 + c] as u32 * w11)
                        >> 16
                };
                let alpha = tap(3).min(255);
                cover[y * TILE + x] = alpha as u8;
                if alpha > 0 {
                    let colour = [tap(0) as i32, tap(1) as i32, tap(2) as i32];
                    let out = &mut rgb[(y * TILE + x) * 3..(y * TILE + x) * 3 + 3];
                    // ·257 >> 16 is ÷255 to within one level.
                    let keep = (255 - alpha) * 257;
                    for (c, weights) in matrix.iter().enumerate() {
                        let turned = (weights[0] * colour[0]
                            + weights[1] * colour[1]
                            + weights[2] * colour[2])
                            >> 10;
                        let turned = turned.clamp(0, alpha as i32) as u32;
                        out[c] = (turned + ((out[c] as u32 * keep) >> 16)).min(255) as u8;
                    }
                }
            }
            u += step_u;
            v += step_v;
        }
    }
}

/// A dark line around the drawing, one pixel outside its edge, as around a sticker: pale
/// drawings (a white mouse, a grey whale) stay distinct from a light background. Blind
/// readers missed such tiles without it.
fn outline(canvas: &mut Canvas) {
    // Dark ink on a light background, light ink on a dark one.
    const DARK: [u8; 3] = [30, 30, 36];
    const LIGHT: [u8; 3] = [240, 240, 232];
    let solid = |i: usize| canvas.cover[i] >= 128;
    for y in 1..TILE - 1 {
        for x in 1..TILE - 1 {
            let i = y * TILE + x;
            if canvas.cover[i] >= 64 {
                continue;
            }
            if solid(i - 1) || solid(i + 1) || solid(i - TILE) || solid(i + TILE) {
                let p = &canvas.rgb[i * 3..i * 3 + 3];
                let luma = (p[0] as u32 * 77 + p[1] as u32 * 150 + p[2] as u32 * 29) >> 8;
                let ink = if luma > 110 { DARK } else { LIGHT };
                blend(&mut canvas.rgb, i * 3, ink, 220);
            }
        }
    }
}

/// A small opaque disc or bar somewhere over the middle of the tile, where the drawing is.
fn occlude<R: Rng + ?Sized>(rng: &mut R, rgb: &mut [u8]) {
    let colour = random_colour(rng);
    let t = TILE as f32;
    let centre = (
        rng.gen_range(t * 0.25..t * 0.75),
        rng.gen_range(t * 0.25..t * 0.75),
    );
    if rng.gen() {
        disc(rgb, centre, rng.gen_range(3.0..5.5), 0.0, colour, 256);
    } else {
        let angle: f32 = rng.gen_range(0.0..std::f32::consts::PI);
        let length = rng.gen_range(8.0..14.0) / 2.0;
        let (dx, dy) = (angle.cos() * length, angle.sin() * length);
        let width = rng.gen_range(2.0..3.0);
        line(
            rgb,
            (centre.0 - dx, centre.1 - dy),
            (centre.0 + dx, centre.1 + dy),
            width,
            colour,
            256,
        );
    }
}

fn speckle<R: Rng + ?Sized>(rng: &mut R, rgb: &mut [u8]) {
    for _ in 0..rng.gen_range(30..=60) {
        let at = rng.gen_range(0..TILE * TILE) * 3;
        rgb[at..at + 3].copy_from_slice(&random_colour(rng));
    }
}

/// Levels per channel of the tiles' fixed palette (6 × 7 × 6 = 252 colours): an indexed PNG
/// is a third of the pixels to compress, and flat areas compress far better than in RGB.
const LEVELS: [u32; 3] = [6, 7, 6];

/// The palette's colour for each index: red major, blue minor.
fn palette() -> &'static [u8] {
    static PALETTE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PALETTE.get_or_init(|| {
        let level = |i: u32, n: u32| (i * 255 / (n - 1)) as u8;
        let mut out = Vec::with_capacity(252 * 3);
        for r in 0..LEVELS[0] {
            for g in 0..LEVELS[1] {
                for b in 0..LEVELS[2] {
                    out.extend([
                        level(r, LEVELS[0]),
                        level(g, LEVELS[1]),
                        level(b, LEVELS[2]),
                    ]);
                }
            }
        }
        out
    })
}

/// The nearest palette level of a channel value, per channel (rounded, no dithering: a
/// dither's noise would not compress).
#[inline]
fn quantize(value: u8, levels: u32) -> u32 {
    (value as u32 * (levels - 1) + 127) / 255
}

/// The tile as a PNG with the fixed palette ([`super::tile_png`]).
pub fn encode(canvas: &Canvas, out: &mut Vec<u8>) {
    out.clear();
    let mut indices = [0u8; TILE * TILE];
    for (index, pixel) in indices.iter_mut().zip(canvas.rgb.chunks_exact(3)) {
        let r = quantize(pixel[0], LEVELS[0]);
        let g = quantize(pixel[1], LEVELS[1]);
        let b = quantize(pixel[2], LEVELS[2]);
        *index = ((r * LEVELS[1] + g) * LEVELS[2] + b) as u8;
    }
    super::tile_png::write_indexed(out, TILE as u32, TILE as u32, palette(), &indices);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// A picture: an opaque dark square in the middle of the canvas.
    fn square() -> Picture {
        let side = CANVAS as usize;
        let mut rgba = vec![0u8; side * side * 4];
        for y in 24..72 {
            for x in 24..72 {
                rgba[(y * side + x) * 4..(y * side + x) * 4 + 4]
                    .copy_from_slice(&[20, 20, 20, 255]);
            }
        }
        Picture::new(rgba)
    }

    #[test]
    fn the_picture_lands_near_the_middle_at_its_scale() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for _ in 0..50 {
            let mut canvas = Canvas::default();
            draw(&square(), &Style::FIRM, &mut rng, &mut canvas);
            // The 48-pixel square of the 96-pixel canvas at 62–100 % of a 64-pixel tile:
            // 20 to 32 pixels a side, whatever its rotation.
            let covered: Vec<usize> = (0..TILE * TILE)
                .filter(|&i| canvas.cover[i] >= 128)
                .collect();
            assert!(
                (300..1200).contains(&covered.len()),
                "{} pixels",
                covered.len()
            );
            // Its centre is at most 18 % of the tile (11.5 px) from the tile's, per axis.
            let mean = |f: fn(usize) -> usize| {
                covered.iter().map(|&i| f(i) as f32).sum::<f32>() / covered.len() as f32
            };
            let (cx, cy) = (mean(|i| i % TILE), mean(|i| i / TILE));
            assert!(
                (cx - 31.5).abs() < 13.0 && (cy - 31.5).abs() < 13.0,
                "{cx}, {cy}"
            );
            // There the tile shows the square (dark grey), bar the occluder (a disc of radius
            // 5.5 at most: 95 pixels) and a few of the 60 speckles at most.
            let dark = covered
                .iter()
                .filter(|&&i| canvas.rgb[i * 3..i * 3 + 3].iter().all(|&c| c < 40))
                .count();
            assert!(dark + 130 >= covered.len(), "{dark} of {}", covered.len());
        }
    }

    #[test]
    fn no_two_tiles_of_one_picture_are_alike() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let picture = square();
        let mut seen = std::collections::HashSet::new();
        let mut png = Vec::new();
        for _ in 0..200 {
            let mut canvas = Canvas::default();
            draw(&picture, &Style::GENTLE, &mut rng, &mut canvas);
            encode(&canvas, &mut png);
            assert!(png.starts_with(b"\x89PNG"));
            assert!(seen.insert(png.clone()));
        }
    }

    #[test]
    fn the_colour_matrix_keeps_grey_and_turns_colour() {
        let identity = colour_matrix(0.0, 1.0);
        assert_eq!(identity, [[1024, 0, 0], [0, 1024, 0], [0, 0, 1024]]);
        let turned = colour_matrix(30.0, 1.0);
        // Grey stays grey: each row sums to 1.
        for row in turned {
            assert!((row.iter().sum::<i32>() - 1024).abs() <= 2, "{row:?}");
        }
        assert_ne!(turned, identity);
    }

    /// The row-limited line draws exactly what the plain distance test draws.
    #[test]
    fn lines_cover_what_is_within_their_width() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for _ in 0..300 {
            let t = TILE as f32;
            let (from, to) = (
                (rng.gen_range(-8.0..t + 8.0), rng.gen_range(-8.0..t + 8.0)),
                (rng.gen_range(-8.0..t + 8.0), rng.gen_range(-8.0..t + 8.0)),
            );
            let width = rng.gen_range(1.0..4.0);
            let mut drawn = vec![0u8; TILE * TILE * 3];
            line(&mut drawn, from, to, width, [255, 255, 255], 256);
            let (dx, dy) = (to.0 - from.0, to.1 - from.1);
            let length2 = (dx * dx + dy * dy).max(1e-3);
            let half = width / 2.0 + 0.5;
            for y in 0..TILE {
                for x in 0..TILE {
                    let (px, py) = (x as f32 + 0.5 - from.0, y as f32 + 0.5 - from.1);
                    let along = ((px * dx + py * dy) / length2).clamp(0.0, 1.0);
                    let (ex, ey) = (px - along * dx, py - along * dy);
                    let inside = ex * ex + ey * ey <= half * half;
                    assert_eq!(
                        drawn[(y * TILE + x) * 3] == 255,
                        inside,
                        "{from:?} {to:?} {x},{y}"
                    );
                }
            }
        }
    }
}
