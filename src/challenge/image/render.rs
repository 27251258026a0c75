//! Drawing one captcha: layout, glyphs, warp, strokes, clutter, tones.
//!
//! Every choice comes from the caller's RNG, and most of them are *structural*: the font, the
//! baseline curve, the spacing model, the warp kind, the glyph style, which strokes and which
//! clutter are drawn and how, the polarity. Nothing here can panic: loops run over clipped
//! ranges, pixels and tables are reached through `get` (or are fixed-size arrays indexed by
//! constant ranges), float-to-index `as` casts saturate, and no range given to the RNG is
//! empty.
//!
//! Speed (about 0.4–0.5 ms an image on one core) comes from: glyphs as precomputed distance
//! fields, a warp made of separable table terms, the glyph loop working on 8 pixels at a time
//! (vectorised arithmetic, scalar field reads, chunks clear of the ink skipped), branch-free
//! stroke and tone loops, no float-to-int conversion in the hot loops, and canvases reused
//! from one image to the next.

use std::cell::Cell;

use rand::{Rng, RngCore};

use super::glyphs::{self, FontGlyphs, Glyph, REF_PX};

/// Image height in pixels.
pub(super) const HEIGHT: usize = 100;

// ---------------------------------------------------------------------------------------------
// Random helpers that never panic (no empty ranges).

#[inline]
fn unit(rng: &mut dyn RngCore) -> f32 {
    rng.gen::<f32>()
}
#[inline]
fn uf(rng: &mut dyn RngCore, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * unit(rng)
}
#[inline]
fn pm(rng: &mut dyn RngCore, a: f32) -> f32 {
    uf(rng, -a, a)
}
#[inline]
fn chance(rng: &mut dyn RngCore, p: f32) -> bool {
    unit(rng) < p
}
/// Uniform in `0..n` (0 when `n` is 0).
#[inline]
pub(super) fn below(rng: &mut dyn RngCore, n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        rng.gen_range(0..n)
    }
}
/// Uniform in `lo..=hi` (lo when the range is empty).
#[inline]
fn between(rng: &mut dyn RngCore, lo: usize, hi: usize) -> usize {
    if hi <= lo {
        lo
    } else {
        rng.gen_range(lo..=hi)
    }
}
/// Index chosen with the given weights.
fn weighted(rng: &mut dyn RngCore, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    if total == 0 {
        return 0;
    }
    let mut r = rng.gen_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if r < w {
            return i;
        }
        r -= w;
    }
    0
}

// ---------------------------------------------------------------------------------------------
// Canvas

/// A single-channel float image.
pub(super) struct Canvas {
    pub w: usize,
    pub h: usize,
    pub px: Vec<f32>,
}

impl Canvas {
    /// A cleared canvas in a buffer kept from an earlier image.
    fn reuse(mut px: Vec<f32>, w: usize, h: usize) -> Canvas {
        px.clear();
        px.resize(w * h, 0.0);
        Canvas { w, h, px }
    }

    /// The pixel box covering [x0, x1] × [y0, y1] (float, inclusive), clipped to the canvas;
    /// empty ranges when it misses.
    #[inline]
    fn clip(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> (usize, usize, usize, usize) {
        let cx = |v: f32| (v.max(0.0) as usize).min(self.w);
        let cy = |v: f32| (v.max(0.0) as usize).min(self.h);
        (
            cx(x0.floor()),
            cy(y0.floor()),
            cx(x1.ceil() + 1.0),
            cy(y1.ceil() + 1.0),
        )
    }

    #[inline]
    fn row_mut(&mut self, y: usize, x0: usize, x1: usize) -> &mut [f32] {
        let start = y * self.w;
        self.px.get_mut(start + x0..start + x1).unwrap_or(&mut [])
    }
}

// ---------------------------------------------------------------------------------------------
// Warp: where each output pixel takes its text from.
//
// Every warp kind is written as a sum of separable terms, so that the per-pixel cost is a few
// table reads: with a row vector r = rows[y] and a column vector c = cols[x],
//   dx = r0 + c0 + r2·c2 + r3·c3,   dy = r1 + c1 + r4·c4 + r5·c5.
// Waves are single-axis terms; a smooth random field is a product of sines; a bulge or a swirl
// uses a separable Gaussian falloff exp(-(x-cx)²/s²)·exp(-(y-cy)²/s²).

struct Warp {
    rows: Vec<[f32; 6]>,
    cols: Vec<[f32; 6]>,
    /// Bounds on |dx| and |dy|.
    max_x: f32,
    max_y: f32,
    /// `cols` transposed (one table per term), padded with `LANES` zeros so that every chunk
    /// of `LANES` columns starting inside the image is a full slice.
    colt: [Vec<f32>; 6],
}

/// Pixels processed together in the glyph loop.
const LANES: usize = 8;

/// floor(x) for 0 <= x < 2^22 without a float-to-int conversion (those are slow and block
/// vectorisation): adding 1.5·2^23 rounds to an integer that lands in the low mantissa bits.
/// At exact integers it may return x − 1, which the callers tolerate (fraction 1.0).
#[inline(always)]
fn floor_small(x: f32) -> u32 {
    (x - 0.5 + 12_582_912.0).to_bits().wrapping_sub(0x4B40_0000)
}

/// `min` and `max` without `f32::min`'s care for NaN (none arises here: every value is
/// finite), which keeps the loops vectorised; for numbers they are the same.
#[inline(always)]
pub(super) fn fmin(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

#[inline(always)]
pub(super) fn fmax(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// Writes a table entry (out-of-range slots are ignored).
#[inline]
fn set(e: &mut [f32; 6], slot: usize, v: f32) {
    if let Some(x) = e.get_mut(slot) {
        *x = v;
    }
}

impl Warp {
    #[inline]
    fn row(&self, y: usize) -> [f32; 6] {
        self.rows.get(y).copied().unwrap_or([0.0; 6])
    }

    /// The output box whose pixels can land in the layout box `b` (x0, y0, x1, y1): the
    /// ranges of the table terms over the box widened by the global bounds, subtracted.
    fn output_box(&self, b: (f32, f32, f32, f32)) -> (f32, f32, f32, f32) {
        let span = |lo: f32, hi: f32, m: f32, len: usize| {
            let a = ((lo - m - 1.0).max(0.0) as usize).min(len);
            let z = ((hi + m + 2.0).max(0.0) as usize).min(len);
            (a, z.max(a))
        };
        let range = |v: &[[f32; 6]]| {
            let mut lo = [f32::MAX; 6];
            let mut hi = [f32::MIN; 6];
            for e in v {
                for ((l, h), x) in lo.iter_mut().zip(hi.iter_mut()).zip(e) {
                    *l = l.min(*x);
                    *h = h.max(*x);
                }
            }
            if v.is_empty() {
                ([0.0; 6], [0.0; 6])
            } else {
                (lo, hi)
            }
        };
        let (xa, xz) = span(b.0, b.2, self.max_x, self.cols.len());
        let (ya, yz) = span(b.1, b.3, self.max_y, self.rows.len());
        let (clo, chi) = range(self.cols.get(xa..xz).unwrap_or(&[]));
        let (rlo, rhi) = range(self.rows.get(ya..yz).unwrap_or(&[]));
        // Interval of r[i]·c[i].
        let prod = |i: usize| {
            let (a, b, c, d) = (
                rlo[i] * clo[i],
                rlo[i] * chi[i],
                rhi[i] * clo[i],
                rhi[i] * chi[i],
            );
            (a.min(b).min(c).min(d), a.max(b).max(c).max(d))
        };
        let (p2, p3, p4, p5) = (prod(2), prod(3), prod(4), prod(5));
        let dx_lo = (rlo[0] + clo[0] + p2.0 + p3.0).max(-self.max_x);
        let dx_hi = (rhi[0] + chi[0] + p2.1 + p3.1).min(self.max_x);
        let dy_lo = (rlo[1] + clo[1] + p4.0 + p5.0).max(-self.max_y);
        let dy_hi = (rhi[1] + chi[1] + p4.1 + p5.1).min(self.max_y);
        (b.0 - dx_hi, b.1 - dy_hi, b.2 - dx_lo, b.3 - dy_lo)
    }

    fn random(rng: &mut dyn RngCore, w: usize, h: usize, strength: f32) -> Warp {
        let mut rows = vec![[0.0f32; 6]; h];
        let mut cols = vec![[0.0f32; 6]; w];
        let tau = std::f32::consts::TAU;
        // Product slots: dx uses 2 and 3, dy uses 4 and 5.
        let mut next_dx = 2usize;
        let mut next_dy = 4usize;
        let count = between(rng, 1, 3);
        let mut used = [false; 6];
        for _ in 0..count {
            let kind = weighted(rng, &[5, 4, 3, 3, 2, 2]);
            if let Some(u) = used.get_mut(kind) {
                if *u {
                    continue;
                }
                *u = true;
            }
            match kind {
                0 => {
                    // Vertical wave: the line bobs up and down along x.
                    let (a, k, ph) = (
                        uf(rng, 2.5, 6.0) * strength,
                        tau / uf(rng, 90.0, 260.0),
                        pm(rng, tau),
                    );
                    for (x, c) in cols.iter_mut().enumerate() {
                        c[1] += a * (x as f32 * k + ph).sin();
                    }
                }
                1 => {
                    // Horizontal wave: columns sway along y.
                    let (a, k, ph) = (
                        uf(rng, 1.5, 4.0) * strength,
                        tau / uf(rng, 50.0, 140.0),
                        pm(rng, tau),
                    );
                    for (y, r) in rows.iter_mut().enumerate() {
                        r[0] += a * (y as f32 * k + ph).sin();
                    }
                }
                2 => {
                    // Uneven horizontal stretch (some letters wide, some squeezed) and a
                    // vertical squash varying with height.
                    let (a, k, ph) = (
                        uf(rng, 2.0, 4.5) * strength,
                        tau / uf(rng, 100.0, 240.0),
                        pm(rng, tau),
                    );
                    for (x, c) in cols.iter_mut().enumerate() {
                        c[0] += a * (x as f32 * k + ph).sin();
                    }
                    let (b, k, ph) = (
                        uf(rng, 1.0, 3.0) * strength,
                        tau / uf(rng, 60.0, 160.0),
                        pm(rng, tau),
                    );
                    for (y, r) in rows.iter_mut().enumerate() {
                        r[1] += b * (y as f32 * k + ph).sin();
                    }
                }
                3 => {
                    // Smooth random field: products of sines on both axes.
                    if next_dx > 3 || next_dy > 5 {
                        continue;
                    }
                    for slot in [next_dx, next_dy] {
                        let a = uf(rng, 2.0, 4.5) * strength;
                        let (kx, px) = (tau / uf(rng, 60.0, 200.0), pm(rng, tau));
                        let (ky, py) = (tau / uf(rng, 50.0, 150.0), pm(rng, tau));
                        for (x, c) in cols.iter_mut().enumerate() {
                            set(c, slot, a * (x as f32 * kx + px).sin());
                        }
                        for (y, r) in rows.iter_mut().enumerate() {
                            set(r, slot, (y as f32 * ky + py).sin());
                        }
                    }
                    next_dx += 1;
                    next_dy += 1;
                }
                _ => {
                    // Bulge/pinch (kind 4) or swirl (kind 5) with a Gaussian falloff.
                    let s = uf(rng, 35.0, 80.0);
                    let cx = uf(rng, 0.15, 0.85) * w as f32;
                    let cy = uf(rng, 0.3, 0.7) * h as f32;
                    let inv = 1.0 / (s * s);
                    let ex = |v: f32, c: f32| (-(v - c) * (v - c) * inv).exp();
                    if next_dx > 3 || next_dy > 5 {
                        continue;
                    }
                    let (sx, sy) = (next_dx, next_dy);
                    if kind == 4 {
                        let k = pm(rng, 0.3) * strength;
                        // dx = -k (x-cx) gx gy,  dy = -k (y-cy) gx gy
                        for (x, c) in cols.iter_mut().enumerate() {
                            let xf = x as f32;
                            set(c, sx, -k * (xf - cx) * ex(xf, cx));
                            set(c, sy, ex(xf, cx));
                        }
                        for (y, r) in rows.iter_mut().enumerate() {
                            let yf = y as f32;
                            set(r, sx, ex(yf, cy));
                            set(r, sy, -k * (yf - cy) * ex(yf, cy));
                        }
                    } else {
                        let a = pm(rng, 0.3) * strength;
                        // Small rotation by a·g: dx = -a g (y-cy), dy = a g (x-cx)
                        for (x, c) in cols.iter_mut().enumerate() {
                            let xf = x as f32;
                            set(c, sx, ex(xf, cx));
                            set(c, sy, a * (xf - cx) * ex(xf, cx));
                        }
                        for (y, r) in rows.iter_mut().enumerate() {
                            let yf = y as f32;
                            set(r, sx, -a * (yf - cy) * ex(yf, cy));
                            set(r, sy, ex(yf, cy));
                        }
                    }
                    next_dx += 1;
                    next_dy += 1;
                }
            }
        }
        // Bounds from the tables (products bounded by the product of the maxima).
        let mx = |v: &Vec<[f32; 6]>, i: usize| {
            v.iter()
                .map(|e| e.get(i).map_or(0.0, |x| x.abs()))
                .fold(0.0f32, f32::max)
        };
        let max_x =
            mx(&rows, 0) + mx(&cols, 0) + mx(&rows, 2) * mx(&cols, 2) + mx(&rows, 3) * mx(&cols, 3);
        let max_y =
            mx(&rows, 1) + mx(&cols, 1) + mx(&rows, 4) * mx(&cols, 4) + mx(&rows, 5) * mx(&cols, 5);
        let colt = std::array::from_fn(|i| {
            let mut t: Vec<f32> = cols
                .iter()
                .map(|c| c.get(i).copied().unwrap_or(0.0))
                .collect();
            t.resize(cols.len() + LANES, 0.0);
            t
        });
        Warp {
            rows,
            cols,
            max_x,
            max_y,
            colt,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Glyphs

#[derive(Clone, Copy)]
enum Fill {
    /// Solid; the offset (output pixels) thins (positive) or emboldens (negative) the glyph.
    Solid(f32),
    /// Hollow: an outline of the given half-width just inside the glyph edge.
    Outline(f32),
}

/// A glyph placed on the canvas: output (layout) = `pos + m · (field − pivot)`.
struct Placed<'a> {
    g: &'a Glyph,
    /// Inverse of the 2×2 linear part (row-major).
    inv: [f32; 4],
    pos: (f32, f32),
    pivot: (f32, f32),
    /// Output pixels per reference pixel (for the distances).
    scale: f32,
    fill: Fill,
    /// Layout-space bounds of the ink (plus a margin).
    bounds: (f32, f32, f32, f32),
}

impl<'a> Placed<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        g: &'a Glyph,
        pos: (f32, f32),
        pivot: (f32, f32),
        sx: f32,
        sy: f32,
        rot: f32,
        shear: f32,
        fill: Fill,
    ) -> Placed<'a> {
        // m = R(rot) · Shear(shear) · diag(sx, sy)
        let (s, c) = rot.sin_cos();
        let m = [c * sx, (c * shear - s) * sy, s * sx, (s * shear + c) * sy];
        let det = m[0] * m[3] - m[1] * m[2];
        let det = if det.abs() < 1e-6 { 1e-6 } else { det };
        let inv = [m[3] / det, -m[1] / det, -m[2] / det, m[0] / det];
        let margin = 2.5;
        let corners = [
            (g.ink_left - margin, g.ink_top - margin),
            (g.ink_right + margin, g.ink_top - margin),
            (g.ink_left - margin, g.ink_bottom + margin),
            (g.ink_right + margin, g.ink_bottom + margin),
        ];
        let mut b = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for (u, v) in corners {
            let (du, dv) = (u - pivot.0, v - pivot.1);
            let x = pos.0 + m[0] * du + m[1] * dv;
            let y = pos.1 + m[2] * du + m[3] * dv;
            b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
        }
        Placed {
            g,
            inv,
            pos,
            pivot,
            scale: (sx * sy).abs().sqrt(),
            fill,
            bounds: b,
        }
    }

    /// Draws the glyph onto `dst` through the warp, at the given tone (1 = full contrast).
    /// On a CPU with AVX2 the same loop is compiled for it: eight lanes in one register
    /// instead of two, the same arithmetic (no fused multiply-add), so the same pixels.
    fn draw(&self, dst: &mut Canvas, warp: &Warp, gain: f32) {
        #[cfg(target_arch = "x86_64")]
        if use_avx2() {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { self.draw_avx2(dst, warp, gain) };
            return;
        }
        self.draw_with(dst, warp, |p, a| *p = fmax(*p, a * gain));
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn draw_avx2(&self, dst: &mut Canvas, warp: &Warp, gain: f32) {
        self.draw_with(dst, warp, |p, a| *p = fmax(*p, a * gain));
    }

    /// The per-pixel loop, `LANES` pixels at a time so that the arithmetic vectorises (only
    /// the field reads are scalar).
    #[inline(always)]
    fn draw_with(&self, dst: &mut Canvas, warp: &Warp, put: impl Fn(&mut f32, f32)) {
        const L: usize = LANES;
        let b = warp.output_box(self.bounds);
        let (x0, y0, x1, y1) = dst.clip(b.0, b.1, b.2, b.3);
        let [i0, i1, i2, i3] = self.inv;
        let scale = self.scale;
        let (solid, o, hw) = match self.fill {
            Fill::Solid(o) => (true, o, 0.0),
            Fill::Outline(hw) => (false, 0.0, hw),
        };
        let chunk = |t: &Vec<f32>, x: usize| -> [f32; L] {
            t.get(x..x + L)
                .and_then(|s| <[f32; L]>::try_from(s).ok())
                .unwrap_or([0.0; L])
        };
        let [t0, t1, t2, t3, t4, t5] = &warp.colt;
        // The ink box in field coordinates, widened by what emboldening or anti-aliasing can
        // reach (3 reference pixels).
        let (ul, uh) = (self.g.ink_left - 3.0, self.g.ink_right + 3.0);
        let (vl, vh) = (self.g.ink_top - 3.0, self.g.ink_bottom + 3.0);
        for y in y0..y1 {
            let r = warp.row(y);
            let dv0 = y as f32 - self.pos.1;
            let row = dst.row_mut(y, x0, x1);
            for (ci, outs) in row.chunks_mut(L).enumerate() {
                let x = x0 + ci * L;
                let (c0, c1, c2, c3, c4, c5) = (
                    chunk(t0, x),
                    chunk(t1, x),
                    chunk(t2, x),
                    chunk(t3, x),
                    chunk(t4, x),
                    chunk(t5, x),
                );
                let mut u = [0.0f32; L];
                let mut v = [0.0f32; L];
                let du0 = x as f32 - self.pos.0;
                for j in 0..L {
                    let dx = r[0] + c0[j] + r[2] * c2[j] + r[3] * c3[j];
                    let dy = r[1] + c1[j] + r[4] * c4[j] + r[5] * c5[j];
                    let du = du0 + j as f32 + dx;
                    let dv = dv0 + dy;
                    u[j] = self.pivot.0 + i0 * du + i1 * dv;
                    v[j] = self.pivot.1 + i2 * du + i3 * dv;
                }
                // Skip the field reads when all eight land clear of the ink box.
                let mut inside = f32::MIN;
                for j in 0..L {
                    let m = fmin(fmin(u[j] - ul, uh - u[j]), fmin(v[j] - vl, vh - v[j]));
                    inside = fmax(inside, m);
                }
                if inside <= 0.0 {
                    continue;
                }
                let d = self.g.sample8(&u, &v);
                for (out, &dd) in outs.iter_mut().zip(&d) {
                    let dd = dd * scale;
                    let a = if solid {
                        0.5 - (dd + o)
                    } else {
                        hw + 0.5 - (dd + hw).abs()
                    };
                    // Coverage 0 leaves every mix unchanged, so no branch is needed.
                    put(out, fmin(fmax(a, 0.0), 1.0));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strokes: capsules along polylines.

/// Draws a polyline of (x, y, radius) points as joined capsules.
fn polyline(dst: &mut Canvas, pts: &[(f32, f32, f32)], gain: f32) {
    for pair in pts.windows(2) {
        let (Some(&(ax, ay, ar)), Some(&(bx, by, br))) = (pair.first(), pair.get(1)) else {
            continue;
        };
        capsule(dst, ax, ay, bx, by, (ar + br) * 0.5, gain);
    }
}

fn capsule(dst: &mut Canvas, ax: f32, ay: f32, bx: f32, by: f32, r: f32, gain: f32) {
    let r = r.max(0.3);
    let pad = r + 1.0;
    let (x0, y0, x1, y1) = dst.clip(
        ax.min(bx) - pad,
        ay.min(by) - pad,
        ax.max(bx) + pad,
        ay.max(by) + pad,
    );
    let (ex, ey) = (bx - ax, by - ay);
    let len2 = ex * ex + ey * ey;
    let inv = if len2 > 1e-6 { 1.0 / len2 } else { 0.0 };
    let lim = r + 0.5;
    let px0 = x0 as f32 - ax;
    for y in y0..y1 {
        let py = y as f32 - ay;
        let row = dst.row_mut(y, x0, x1);
        // Branch-free so that it vectorises: coverage = clamp(r + 0.5 − distance, 0, 1).
        for (k, out) in row.iter_mut().enumerate() {
            let px = px0 + (k as i32) as f32;
            let t = fmin(fmax((px * ex + py * ey) * inv, 0.0), 1.0);
            let (qx, qy) = (px - t * ex, py - t * ey);
            let a = fmin(fmax(lim - (qx * qx + qy * qy).sqrt(), 0.0), 1.0) * gain;
            *out = fmax(*out, a);
        }
    }
}

fn cubic(p: [(f32, f32); 4], t: f32) -> (f32, f32) {
    let u = 1.0 - t;
    let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
    (
        a * p[0].0 + b * p[1].0 + c * p[2].0 + d * p[3].0,
        a * p[0].1 + b * p[1].1 + c * p[2].1 + d * p[3].1,
    )
}

/// Thickness profile along a stroke: constant, tapering, or swelling.
fn radius_at(kind: usize, r: f32, t: f32, phase: f32) -> f32 {
    match kind {
        0 => r,
        1 => r * (0.45 + 1.1 * (t * std::f32::consts::PI).sin()),
        _ => r * (1.0 + 0.45 * (t * 9.0 + phase).sin()),
    }
}

// ---------------------------------------------------------------------------------------------
// The whole image

/// Everything `render` needs to know about the text band, for strokes and clutter.
struct Band {
    left: f32,
    right: f32,
    /// Centre line of the text at a given x (layout space).
    centre: Vec<f32>,
    cap: f32,
    /// Where one letter gives way to the next, left to right (layout space).
    gaps: Vec<f32>,
}

impl Band {
    fn mid(&self, x: f32) -> f32 {
        let i = (x.max(0.0) as usize).min(self.centre.len().saturating_sub(1));
        self.centre.get(i).copied().unwrap_or(HEIGHT as f32 * 0.5)
    }
}

/// The per-image choice of the features that make reading harder. Every image gets the
/// basics (font, layout, per-letter transforms, warp, one or two thin strokes through the
/// letters, a soft background, and a polarity split: on one side of an edge through a gap
/// between letters, text and background swap tones), then a *budget* of at most one extra
/// feature from a menu (thin arcs, speckles, hair, hatching; for answers of 11 or more
/// characters, half the time none). A budget rather than independent coin flips: a person
/// copes with any one of them on top of the basics, not with all of them at once.
///
/// Tried and dropped: hollow letters and letters in a lighter tone (people lost lighter
/// letters on the light side of the split); cuts through the letters, a tone ramp that brought
/// text and background tones close at the ends, margin dashes, two heavy strokes (blind
/// readers misread letters they crossed: C as E, T as Y, 7 as Z; issue 17).
struct Style {
    /// Stroke kinds: 0 wave, 1 long curve, 2 arcs.
    strokes: Vec<usize>,
    /// Clutter kinds: 0 speckles, 1 hair, 2 decoys, 3 hatching, 4 blobs, 5 grain.
    clutter: Vec<usize>,
}

impl Style {
    fn random(rng: &mut dyn RngCore, letters: usize) -> Style {
        const EXTRA_STROKE: usize = 0;
        const SPECKLES: usize = 1;
        const HAIR: usize = 2;
        const HATCHING: usize = 3;
        let weights = [3u32, 2, 2, 2];
        // Longer answers are harder to type already and give OCR less to hold on to per
        // letter: they get fewer extras.
        let extra = (letters <= 10 || chance(rng, 0.5)).then(|| weighted(rng, &weights));
        let is = |f: usize| extra == Some(f);
        // A wave or a long curve, or both in either order.
        let mut strokes = match below(rng, 4) {
            0 => vec![0],
            1 => vec![1],
            2 => vec![0, 1],
            _ => vec![1, 0],
        };
        if is(EXTRA_STROKE) {
            strokes.push(2);
        }
        // One soft background kind always.
        let soft = [2, 4, 5];
        let mut clutter = vec![soft.get(below(rng, soft.len())).copied().unwrap_or(5)];
        if is(SPECKLES) {
            clutter.push(0);
        }
        if is(HAIR) {
            clutter.push(1);
        }
        if is(HATCHING) {
            clutter.push(3);
        }
        Style { strokes, clutter }
    }
}

/// Renders the answer (indices into `ALPHABET`) and returns the 8-bit grey pixels, width and
/// height. `strength` scales the letter rotation, jitter and the warp (0.85–1: longer
/// answers are distorted less).
pub(super) fn render(
    answer: &[usize],
    strength: f32,
    width: usize,
    rng: &mut dyn RngCore,
) -> (Vec<u8>, usize, usize) {
    // On a CPU with AVX2, the same code compiled for it (what LLVM inlines into it: the
    // clutter, the strokes, the finish), with the same arithmetic: the same image.
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { render_avx2(answer, strength, width, rng) };
    }
    render_portable(answer, strength, width, rng)
}

/// Whether to take the AVX2 versions (the CPU has it; a test may ask for the portable code).
#[cfg(target_arch = "x86_64")]
fn use_avx2() -> bool {
    #[cfg(test)]
    if PORTABLE.with(std::cell::Cell::get) {
        return false;
    }
    std::is_x86_feature_detected!("avx2")
}

#[cfg(test)]
thread_local! {
    static PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn render_avx2(
    answer: &[usize],
    strength: f32,
    width: usize,
    rng: &mut dyn RngCore,
) -> (Vec<u8>, usize, usize) {
    render_portable(answer, strength, width, rng)
}

#[inline(always)]
fn render_portable(
    answer: &[usize],
    strength: f32,
    width: usize,
    rng: &mut dyn RngCore,
) -> (Vec<u8>, usize, usize) {
    let fonts = glyphs::fonts();
    let n = answer.len().max(1);
    let w = width.clamp(64, 1024);
    let h = HEIGHT;
    // The two canvases are reused from one image to the next on this thread: allocating
    // and freeing ~400 KB per image made the allocator hand the memory back to the kernel
    // and fault it in again every time.
    let (ink_px, tone_px) = SCRATCH.try_with(Cell::take).unwrap_or_default();
    let mut ink = Canvas::reuse(ink_px, w, h);
    let mut tone = Canvas::reuse(tone_px, w, h);

    let style = Style::random(rng, n);
    let warp = Warp::random(rng, w, h, strength * 1.25);
    let band = draw_text(&mut ink, fonts, answer, &warp, strength, rng);
    draw_strokes(&mut ink, &band, &style, rng);
    draw_polarity_split(&mut ink, &band, rng);
    draw_clutter(&mut ink, &mut tone, fonts, &band, &warp, &style, rng);
    let grey = finish(&ink, &tone, rng);
    let _ = SCRATCH.try_with(|c| c.set((ink.px, tone.px)));
    (grey, w, h)
}

thread_local! {
    /// Canvases kept between images (see `render`).
    static SCRATCH: Cell<(Vec<f32>, Vec<f32>)> = const { Cell::new((Vec::new(), Vec::new())) };
}

fn draw_text(
    ink: &mut Canvas,
    fonts: &[FontGlyphs],
    answer: &[usize],
    warp: &Warp,
    strength: f32,
    rng: &mut dyn RngCore,
) -> Band {
    let (w, h) = (ink.w as f32, ink.h as f32);
    let n = answer.len().max(1);
    let main_font = below(rng, fonts.len());
    let mixed_fonts = chance(rng, 0.4);

    // Per-image style.
    let rot_max = uf(rng, 0.10, 0.20) * strength;
    let shear_base = pm(rng, 0.15);
    let shear_jitter = uf(rng, 0.04, 0.14);
    let size_jitter = uf(rng, 0.06, 0.14);
    let aspect_base = uf(rng, 0.88, 1.1);
    let weight_base = uf(rng, -0.9, 0.15);
    // Per-glyph vertical jitter: breaks the text line that OCR looks for.
    let dy_max = uf(rng, 3.0, 6.0) * strength;
    // Spacing model: overlap in em (positive = glyphs overlap, 0 = ink boxes touch).
    let spacing = weighted(rng, &[3, 3, 2, 2]);
    let base_overlap = uf(rng, -0.03, 0.03);
    // Every model's overlap less a clear gap: letters that touch or overlap were the most
    // common cause of people's misreadings (W/N/M, X/K).
    let gap = uf(rng, 0.12, 0.17);

    struct Pending {
        font: usize,
        glyph: usize,
        s: f32,
        aspect: f32,
        rot: f32,
        shear: f32,
        dy: f32,
        fill: Fill,
        /// The width the glyph takes on the line, in reference pixels at scale 1: `squeezed`
        /// scales with the horizontal condensing, `leaning` (what rotation and shear add)
        /// does not.
        squeezed: f32,
        leaning: f32,
        overlap: f32,
    }
    let mut items = Vec::with_capacity(n);
    let (mut squeezed, mut leaning) = (0.0f32, 0.0f32);
    // Every font's capitals are scaled to the tallest font's: with mixed fonts, letters of
    // a font with short capitals looked like small letters to readers.
    let cap_ref = fonts.iter().map(|f| f.cap_height).fold(0.0f32, f32::max);
    for (i, &ch) in answer.iter().enumerate() {
        let font = if mixed_fonts {
            below(rng, fonts.len())
        } else {
            main_font
        };
        let Some(f) = fonts.get(font) else { continue };
        let Some(g) = f.glyphs.get(ch) else { continue };
        let to_tallest = if f.cap_height > 0.0 {
            cap_ref / f.cap_height
        } else {
            1.0
        };
        let s = (1.0 + pm(rng, size_jitter)) * to_tallest;
        let aspect = aspect_base * (1.0 + pm(rng, 0.06));
        // Never (nearly) upright: a magnitude from the upper part of the range, either sign.
        let rot = uf(rng, 0.3, 1.0) * rot_max * if chance(rng, 0.5) { 1.0 } else { -1.0 };
        let shear = shear_base + pm(rng, shear_jitter);
        // Up or down by at least a third of the jitter range, so no three letters sit on a line.
        let dy = uf(rng, 0.3, 1.0) * dy_max * if chance(rng, 0.5) { 1.0 } else { -1.0 };
        let fill = Fill::Solid(weight_base + pm(rng, 0.3));
        // Overlap of the ink boxes in em: around zero, so letters touch or nearly.
        let overlap = match spacing {
            0 => base_overlap,
            1 => uf(rng, -0.04, 0.04),
            2 => {
                if i % 2 == 0 {
                    base_overlap + 0.03
                } else {
                    base_overlap - 0.03
                }
            }
            _ => -0.04 + 0.07 * (i as f32 * 1.3 + base_overlap * 90.0).sin().abs(),
        } - gap;
        // Width taken on the line: the horizontal extent of the transformed ink box,
        // |m00|·w + |m01|·h (see `Placed::new`), with 90% of the part rotation and shear add
        // (a glyph's ink seldom fills its box's corners).
        let squeezed_i = (g.ink_right - g.ink_left) * s * aspect * rot.cos().abs();
        let leaning_i =
            0.9 * (g.ink_bottom - g.ink_top) * s * (rot.cos() * shear - rot.sin()).abs();
        squeezed += squeezed_i;
        leaning += leaning_i;
        if i + 1 < answer.len() {
            squeezed -= overlap * REF_PX;
        }
        items.push(Pending {
            font,
            glyph: ch,
            s,
            aspect,
            rot,
            shear,
            dy,
            fill,
            squeezed: squeezed_i,
            leaning: leaning_i,
            overlap,
        });
    }
    let cap_ref = if cap_ref > 0.0 {
        cap_ref
    } else {
        REF_PX * 0.72
    };

    // Scale: capitals 31–38 pixels tall depending on the room per character. Room is kept at
    // the ends for the warp, so no letter leaves the image (rotation and shear are in the
    // letters' widths).
    let margin = uf(rng, 16.0, 22.0) + warp.max_x.min(12.0);
    let avail = w - 2.0 * margin;
    let pitch = avail / n as f32;
    // (Up to 46 pixels once: Tesseract read the big letters of short answers noticeably
    // better, people read 39 as easily.)
    let cap_px = (pitch * uf(rng, 0.9, 1.05)).clamp(31.0, 38.0);
    let mut g_scale = cap_px / cap_ref;
    // The line is g_scale·(condense·squeezed + leaning) wide. Condense a line that is too
    // long, widen one that is short (wider letters read better), keeping the gaps.
    let squeezed = squeezed.max(1.0);
    let fit = (avail / g_scale - leaning) / squeezed;
    let condense = fit.clamp(0.75, 1.2);
    if fit < 0.75 {
        // Still too wide when condensed: make the letters smaller too.
        g_scale = avail / (0.75 * squeezed + leaning).max(1.0);
    }
    let used = g_scale * (condense * squeezed + leaning);
    let start = margin + unit(rng) * (avail - used).max(0.0);

    // Baseline (centre line) model.
    let mid = h * 0.5 + pm(rng, 6.0);
    let curve = weighted(rng, &[3, 3, 3, 2, 2, 2]);
    let (c1, c2, c3) = (unit(rng), unit(rng), unit(rng));
    let tau = std::f32::consts::TAU;
    let mut walk = pm(rng, 6.0);
    let steps: Vec<f32> = (0..n).map(|_| pm(rng, 9.0)).collect();
    let zig = uf(rng, 4.0, 8.0);
    let centre_at = |x: f32| -> f32 {
        let t = (x - w * 0.5) / (w * 0.5);
        match curve {
            0 => mid + (c1 - 0.5) * 0.24 * (x - w * 0.5),
            1 => mid + (c1 - 0.5) * 48.0 * (t * t - 0.4),
            2 => mid + (6.0 + 7.0 * c1) * (tau * x / (110.0 + 200.0 * c2) + tau * c3).sin(),
            3 => mid + (c1 - 0.5) * 30.0 * t * t * t + (c2 - 0.5) * 12.0 * t,
            5 => mid + (c1 - 0.5) * 0.1 * (x - w * 0.5),
            _ => mid,
        }
    };

    let mut x = start;
    let mut centre = vec![mid; ink.w];
    let mut gaps = Vec::with_capacity(n);
    for (i, it) in items.iter().enumerate() {
        let Some(g) = fonts.get(it.font).and_then(|f| f.glyphs.get(it.glyph)) else {
            continue;
        };
        let cap = fonts.get(it.font).map_or(cap_ref, |f| f.cap_height);
        let sx = g_scale * condense * it.s * it.aspect;
        let sy = g_scale * it.s;
        let half = g_scale * (condense * it.squeezed + it.leaning) * 0.5;
        let cx = x + half;
        let mut cy = centre_at(cx) + it.dy;
        if curve == 4 {
            // Random walk / steps.
            walk = (walk + steps.get(i).copied().unwrap_or(0.0)).clamp(-14.0, 14.0);
            cy += walk;
        } else if curve == 5 {
            // Bouncing: alternately up and down.
            cy += if i % 2 == 0 { zig } else { -zig };
        }
        // Keep the letter inside the image whatever the curve, jitter and warp did.
        let half_h = cap * sy * 0.6 + warp.max_y.min(8.0) + 3.0;
        let cy = cy.min(h - half_h).max(half_h);
        let pivot = ((g.ink_left + g.ink_right) * 0.5, g.baseline - cap * 0.5);
        let placed = Placed::new(g, (cx, cy), pivot, sx, sy, it.rot, it.shear, it.fill);
        placed.draw(ink, warp, 1.0);
        // Record the centre line under this glyph for the strokes.
        let (a, b) = ((x.max(0.0)) as usize, ((x + 2.0 * half).max(0.0)) as usize);
        for c in centre.iter_mut().take(b.min(ink.w)).skip(a) {
            *c = cy;
        }
        let overlap_px = it.overlap * REF_PX * g_scale * condense;
        if i + 1 < items.len() {
            gaps.push(x + 2.0 * half - overlap_px * 0.5);
        }
        x += 2.0 * half - overlap_px;
    }
    // Extend the centre line to the edges.
    let first = (start.max(0.0) as usize).min(ink.w.saturating_sub(1));
    let last = (x.max(0.0) as usize).min(ink.w.saturating_sub(1));
    let left_v = centre.get(first).copied().unwrap_or(mid);
    let right_v = centre.get(last).copied().unwrap_or(mid);
    for (i, c) in centre.iter_mut().enumerate() {
        if i < first {
            *c = left_v;
        } else if i > last {
            *c = right_v;
        }
    }
    Band {
        left: start,
        right: x,
        centre,
        cap: cap_ref * g_scale,
        gaps,
    }
}

fn draw_strokes(ink: &mut Canvas, band: &Band, style: &Style, rng: &mut dyn RngCore) {
    let w = ink.w as f32;
    // (Dashes in the margins on the text line were tried: OCR took them for letters, but so
    // did people, who read a curved one as a C.)
    let tau = std::f32::consts::TAU;
    // The wave and the curve cross the letters at an angle and run on past them, 1.4–1.9 px
    // wide, far thinner than the letters' stems, so a person sees them as lines and not as
    // parts of letters. (At 3–4 px they survived a 3×3 opening, but blind readers read the
    // letters they crossed as others: C as E, T as Y, P as R.) Tried and dropped: strokes a
    // shade lighter than the letters (Tesseract then did better), strokes along the middle of
    // the line (people could no longer tell E from F or H from P).
    for &kind in &style.strokes {
        let profile = below(rng, 3);
        let phase = pm(rng, 3.0);
        match kind {
            0 => {
                // A wave crossing the letters up and down.
                let r = uf(rng, 0.7, 0.95);
                let amp = uf(rng, 0.25, 0.45) * band.cap;
                let period = uf(rng, 70.0, 160.0);
                let off = pm(rng, 0.15) * band.cap;
                let ph = pm(rng, 3.2);
                let x0 = band.left - uf(rng, 5.0, 30.0);
                let x1 = band.right + uf(rng, 5.0, 30.0);
                let steps = ((x1 - x0) / 4.0).clamp(4.0, 150.0) as usize;
                let pts: Vec<(f32, f32, f32)> = (0..=steps)
                    .map(|i| {
                        let t = i as f32 / steps as f32;
                        let x = x0 + (x1 - x0) * t;
                        let y = band.mid(x) + off + amp * (tau * x / period + ph).sin();
                        (x, y, radius_at(profile, r, t, phase))
                    })
                    .collect();
                polyline(ink, &pts, 1.0);
            }
            1 => {
                // A long curve from above the letters on one side to below them on the other.
                let r = uf(rng, 0.7, 0.95);
                let x0 = uf(rng, -10.0, band.left.max(0.0) + 20.0);
                let x3 = uf(rng, band.right.min(w) - 20.0, w + 10.0);
                let sign = if chance(rng, 0.5) { 1.0 } else { -1.0 };
                let (xa, xb) = (x0 + (x3 - x0) * 0.33, x0 + (x3 - x0) * 0.66);
                let p = [
                    (x0, band.mid(x0) - sign * uf(rng, 0.5, 0.9) * band.cap),
                    (xa, band.mid(xa) + pm(rng, 0.7) * band.cap),
                    (xb, band.mid(xb) + pm(rng, 0.7) * band.cap),
                    (x3, band.mid(x3) + sign * uf(rng, 0.5, 0.9) * band.cap),
                ];
                let steps = ((x3 - x0) / 6.0).clamp(8.0, 120.0) as usize;
                let pts: Vec<(f32, f32, f32)> = (0..=steps)
                    .map(|i| {
                        let t = i as f32 / steps as f32;
                        let (x, y) = cubic(p, t);
                        (x, y, radius_at(profile, r, t, phase))
                    })
                    .collect();
                polyline(ink, &pts, 1.0);
            }
            2 => {
                // Thin arcs scattered over the letters.
                for _ in 0..between(rng, 2, 4) {
                    let cx = uf(rng, band.left, band.right);
                    let cy = band.mid(cx) + pm(rng, band.cap * 0.6);
                    let rad = uf(rng, 10.0, 24.0);
                    let a0 = pm(rng, 3.2);
                    let span = uf(rng, 1.2, 2.8);
                    let r = uf(rng, 0.75, 1.1);
                    let pts: Vec<(f32, f32, f32)> = (0..=12)
                        .map(|i| {
                            let t = i as f32 / 12.0;
                            let a = a0 + span * t;
                            (
                                cx + rad * a.cos(),
                                cy + rad * a.sin(),
                                radius_at(profile, r, t, phase),
                            )
                        })
                        .collect();
                    polyline(ink, &pts, 1.0);
                }
            }
            _ => {}
        }
    }
}

/// The polarity split, drawn on the ink after the strokes.
fn draw_polarity_split(ink: &mut Canvas, band: &Band, rng: &mut dyn RngCore) {
    let (w, h) = (ink.w as f32, ink.h as f32);
    // The polarity split: text and background swap tones across one or two
    // near-vertical edges, so the image is in two or three regions of opposite
    // polarity. The edges run through the gaps between letters, at least two
    // letters apart, the first among the first half of the letters: each
    // letter is wholly on one side. (Edges at random places, slanted and
    // curved, cut letters in two: about as hard for OCR, much harder for
    // people, who then misread split letters, e.g. T as F. Inverted discs and
    // narrow bands were worse still.)
    let ng = band.gaps.len();
    let mut edges: Vec<(f32, f32)> = Vec::with_capacity(3);
    if ng > 0 {
        let want = 1 + usize::from(chance(rng, 0.6));
        let mut g = below(rng, (ng / 2).max(1));
        for _ in 0..want {
            let Some(&gx) = band.gaps.get(g) else { break };
            edges.push((gx, pm(rng, 0.05)));
            g += between(rng, 2, 4);
        }
    } else {
        edges.push((w * 0.5, 0.0));
    }
    let amp = uf(rng, 0.0, 0.8);
    let ph = pm(rng, 3.2);
    // Fuzzy XOR (d + s − 2ds) with each edge's coverage s: 1 right of the edge,
    // 0 left of it, a fraction in the pixel it crosses. XOR is associative, so
    // the edges are applied one after the other.
    for y in 0..ink.h {
        let yf = y as f32;
        let wob = amp * (yf / 25.0 + ph).sin();
        let row = ink.row_mut(y, 0, ink.w);
        for &(ex, slope) in &edges {
            // Pixel x is covered by clamp(x − e, 0, 1): not at all up to e, wholly
            // from e + 1 on, in part in the one pixel between.
            let e = ex + slope * (yf - h * 0.5) + wob - 0.5;
            let part = e.floor().max(-2.0) + 1.0;
            let cut = ((part + 1.0).max(0.0) as usize).min(row.len());
            if let Some(d) = (part >= 0.0).then(|| row.get_mut(part as usize)).flatten() {
                let s = part - e;
                *d = *d + s - 2.0 * *d * s;
            }
            for d in row.iter_mut().skip(cut) {
                *d = 1.0 - *d;
            }
        }
    }
}

fn draw_clutter(
    ink: &mut Canvas,
    tone: &mut Canvas,
    fonts: &[FontGlyphs],
    band: &Band,
    warp: &Warp,
    style: &Style,
    rng: &mut dyn RngCore,
) {
    let (w, h) = (ink.w as f32, ink.h as f32);
    for &kind in &style.clutter {
        match kind {
            0 => {
                // Speckles in the text colour.
                let count = between(rng, 25, 80);
                let rmax = uf(rng, 1.0, 2.0);
                for _ in 0..count {
                    let (x, y) = (uf(rng, 0.0, w), uf(rng, 0.0, h));
                    let r = uf(rng, 0.5, rmax);
                    capsule(ink, x, y, x + pm(rng, 1.5), y + pm(rng, 1.5), r, 1.0);
                }
            }
            1 => {
                // Hair: short thin lines in the text colour.
                let count = between(rng, 4, 10);
                for _ in 0..count {
                    let (x, y) = (uf(rng, 0.0, w), uf(rng, 0.0, h));
                    let a = pm(rng, 3.2);
                    let l = uf(rng, 6.0, 26.0);
                    let r = uf(rng, 0.35, 0.6);
                    capsule(ink, x, y, x + l * a.cos(), y + l * a.sin(), r, 1.0);
                }
            }
            2 => {
                // Faint, large, hollow decoy glyphs behind the text: clearly background
                // (much bigger and fainter than any letter), but letter-shaped to a program.
                let count = between(rng, 1, 2);
                for _ in 0..count {
                    let f = fonts.get(below(rng, fonts.len()));
                    let Some(f) = f else { continue };
                    let Some(g) = f.glyphs.get(below(rng, f.glyphs.len())) else {
                        continue;
                    };
                    let s = uf(rng, 1.6, 2.1) * band.cap / f.cap_height.max(1.0);
                    let pivot = (
                        (g.ink_left + g.ink_right) * 0.5,
                        (g.ink_top + g.ink_bottom) * 0.5,
                    );
                    let p = Placed::new(
                        g,
                        (uf(rng, 0.0, w), uf(rng, 0.0, h)),
                        pivot,
                        s,
                        s,
                        pm(rng, 0.5),
                        pm(rng, 0.3),
                        Fill::Outline(uf(rng, 0.9, 1.4)),
                    );
                    p.draw(tone, warp, uf(rng, 0.16, 0.24));
                }
            }
            3 => {
                // Hatching: parallel faint lines at an angle.
                let a = pm(rng, 3.2);
                let (ca, sa) = (a.cos(), a.sin());
                let period = uf(rng, 5.0, 11.0);
                let inv = 1.0 / period;
                let level = uf(rng, 0.08, 0.13);
                let thick = uf(rng, 0.15, 0.3);
                for y in 0..tone.h {
                    let yf = y as f32;
                    let row = tone.row_mut(y, 0, tone.w);
                    for (x, t) in row.iter_mut().enumerate() {
                        let p = (x as f32 * ca + yf * sa) * inv + 1000.0;
                        let f = p - floor_small(p) as f32;
                        if f < thick {
                            *t = t.max(level);
                        }
                    }
                }
            }
            4 => {
                // Faint blobs.
                for _ in 0..between(rng, 3, 8) {
                    let (x, y) = (uf(rng, 0.0, w), uf(rng, 0.0, h));
                    let r = uf(rng, 6.0, 20.0);
                    capsule(
                        tone,
                        x,
                        y,
                        x + pm(rng, 20.0),
                        y + pm(rng, 10.0),
                        r,
                        uf(rng, 0.15, 0.3),
                    );
                }
            }
            _ => {
                // Grain: sparse single pixels of mid tone.
                let count = between(rng, 300, 900);
                let level = uf(rng, 0.25, 0.45);
                for _ in 0..count {
                    let i = below(rng, tone.px.len());
                    if let Some(t) = tone.px.get_mut(i) {
                        *t = t.max(level);
                    }
                }
            }
        }
    }
}

/// Turns the ink and tone layers into grey pixels: background gradient, polarity, contrast,
/// and a coarse quantisation that keeps the PNG small.
fn finish(ink: &Canvas, tone: &Canvas, rng: &mut dyn RngCore) -> Vec<u8> {
    let (w, h) = (ink.w as f32, ink.h as f32);
    let dark_text = chance(rng, 0.7);
    let (fg, bg) = if dark_text {
        (uf(rng, 10.0, 60.0), uf(rng, 205.0, 250.0))
    } else {
        (uf(rng, 215.0, 250.0), uf(rng, 10.0, 55.0))
    };
    // A ramp r (0..1) across the image in a random direction: the background moves towards
    // the text tone by kb·(1 − r), at most a fifth of the way. (A ramp that also moved the
    // text towards the background, so that one global threshold separates them badly, was
    // dropped: blind readers lost letters where the two tones came close.)
    let ga = pm(rng, 3.2);
    let (gx, gy) = (ga.cos() * 2.0 / w.max(1.0), ga.sin() * 2.0 / h.max(1.0));
    let kb = uf(rng, 0.0, 0.2);
    // v = fg' − (fg' − bg')·(1 − tone)·(1 − ink), quantised to 16 grey levels (smaller PNGs;
    // the edges keep some anti-aliasing).
    let mut out = vec![0u8; ink.px.len()];
    let wd = ink.w.max(1);
    let rows = out
        .chunks_mut(wd)
        .zip(ink.px.chunks(wd))
        .zip(tone.px.chunks(wd));
    let k = 15.0 / 255.0;
    let c = bg - fg;
    let pixel = |a: f32, t: f32, r: f32| -> u8 {
        let r = fmin(fmax(r, 0.0), 1.0);
        let b = bg - c * kb * (1.0 - r);
        let v = fg + (b - fg) * (1.0 - t) * (1.0 - a);
        (floor_small(fmax(v * k, 0.0) + 0.5).min(15) * 17) as u8
    };
    for (y, ((o_row, a_row), t_row)) in rows.enumerate() {
        let row_r = 0.5 + 0.5 * (y as f32 - h * 0.5) * gy - 0.25 * w * gx;
        let half_gx = 0.5 * gx;
        for (x, ((o, &a), &t)) in o_row.iter_mut().zip(a_row).zip(t_row).enumerate() {
            *o = pixel(a, t, row_r + half_gx * (x as i32) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// The AVX2 versions draw exactly what the portable code draws (where the CPU has AVX2;
    /// elsewhere both runs take the portable code).
    #[test]
    fn avx2_and_portable_draw_the_same_pixels() {
        for seed in 0..24u64 {
            let strength = [0.6, 1.0, 1.3][seed as usize % 3];
            let answer: Vec<usize> = (0..6 + seed as usize % 6)
                .map(|i| (i * 7 + seed as usize) % crate::challenge::image::ALPHABET.len())
                .collect();
            let width = [360, 440, 472][seed as usize % 3];
            let fast = render(
                &answer,
                strength,
                width,
                &mut ChaCha20Rng::seed_from_u64(seed),
            );
            PORTABLE.with(|p| p.set(true));
            let portable = render(
                &answer,
                strength,
                width,
                &mut ChaCha20Rng::seed_from_u64(seed),
            );
            PORTABLE.with(|p| p.set(false));
            assert!(fast == portable, "seed {seed}: the images differ");
        }
    }
}
