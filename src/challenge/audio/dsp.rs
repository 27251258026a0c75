//! Signal processing for the audio captcha, all f32 at 8 kHz: TD-PSOLA resynthesis with
//! independent pitch, formant and (non-linear) tempo changes; RBJ biquads, sweeping notches
//! and a band split in one pass; single-sideband frequency shifting; sparse echoes.

use std::f32::consts::PI;

use super::bank::{Recording, PAD, RATE};

const SAMPLE_RATE: f32 = RATE as f32;
use rand::Rng;

/// Catmull-Rom interpolation at `i + t` (0 <= t < 1) of `x`; `i - 1 ..= i + 2` must exist.
#[inline(always)]
fn cubic(x: &[f32], i: usize, t: f32) -> f32 {
    let p = &x[i - 1..i + 3];
    let (p0, p1, p2, p3) = (p[0], p[1], p[2], p[3]);
    let a = -0.5 * p0 + 1.5 * p1 - 1.5 * p2 + 0.5 * p3;
    let b = p0 - 2.5 * p1 + 2.0 * p2 - 0.5 * p3;
    let c = 0.5 * (p2 - p0);
    ((a * t + b) * t + c) * t + p1
}

/// Knots of the tempo warp.
pub const WARP_KNOTS: usize = 8;

/// A smooth random contour over a digit: a glide from `from` to `to` times a wobble of
/// relative `depth`, `cycles` over the digit, starting at `phase` (in cycles).
#[derive(Clone, Copy, Debug)]
pub struct Contour {
    pub from: f32,
    pub to: f32,
    pub depth: f32,
    pub cycles: f32,
    pub phase: f32,
}

impl Contour {
    /// The value at `rel` in [0, 1] of the digit.
    #[inline]
    fn at(&self, rel: f32) -> f32 {
        let glide = self.from + (self.to - self.from) * rel;
        glide * (1.0 + self.depth * (2.0 * PI * (self.cycles * rel + self.phase)).sin())
    }
}

/// How one recording is resynthesised.
#[derive(Clone, Copy, Debug)]
pub struct Reshape {
    /// Spectral envelope scale (> 1 raises the formants), independent of the pitch.
    pub formant: Contour,
    /// Pitch factor (> 1 raises the pitch).
    pub pitch: Contour,
    /// Input samples consumed per output sample at evenly spaced points of the input: a
    /// non-linear tempo warp (1 = unchanged, 0.8 = 25% slower there).
    pub rate: [f32; WARP_KNOTS],
}

/// Shortest and longest output pitch period (444 Hz … 70 Hz).
const MIN_PERIOD: f32 = 18.0;
const MAX_PERIOD: f32 = 115.0;

/// TD-PSOLA: grains two periods long taken at the recording's pitch marks, each resampled by
/// the formant factor of the moment, laid at the new pitch period along the warped time axis.
/// Unvoiced grains are taken from a jittered position, so stretched noise does not turn
/// periodic. `out` is cleared and receives the digit.
///
/// `CUBIC` picks Catmull-Rom interpolation of the source, else linear (cheaper, duller: for
/// babble).
pub fn psola<const CUBIC: bool, R: Rng>(
    rec: &Recording,
    shape: &Reshape,
    rng: &mut R,
    out: &mut Vec<f32>,
) {
    let x = &rec.padded;
    let marks = &rec.marks;
    out.clear();
    if marks.is_empty() {
        return;
    }
    let n_in = (x.len() - 2 * PAD) as f32;
    let slowest = shape
        .rate
        .iter()
        .copied()
        .fold(f32::INFINITY, f32::min)
        .max(0.2);
    out.resize((n_in / slowest) as usize + 400, 0.0);
    let mut t_in = 0f32;
    let mut t_out = f32::from(marks[0].period) / shape.formant.at(0.0);
    let mut mi = 0usize;
    let mut end = 0usize;
    loop {
        while mi + 1 < marks.len() && marks[mi + 1].pos as f32 <= t_in {
            mi += 1;
        }
        let mut m = marks[mi];
        if let Some(next) = marks.get(mi + 1) {
            if next.pos as f32 - t_in < t_in - m.pos as f32 {
                m = *next;
            }
        }
        let rel = (t_in / n_in).clamp(0.0, 1.0);
        let period = f32::from(m.period);
        let formant = shape.formant.at(rel);
        // A grain spans two source periods squeezed by the formant factor, but at most three
        // output periods when the pitch goes up a lot (more overlap only costs time).
        let full = period / formant;
        let (step, h) = if m.voiced {
            let step = (period / shape.pitch.at(rel)).clamp(MIN_PERIOD, MAX_PERIOD);
            (step, full.min(1.5 * step))
        } else {
            (full, full)
        };
        let mut centre = m.pos as f32;
        if !m.voiced {
            centre += (rng.gen::<f32>() - 0.5) * period;
        }
        let k0 = (t_out - h).ceil().max(0.0) as usize;
        let k1 = (t_out + h).floor() as usize;
        if k1 + 1 >= out.len() {
            out.resize(k1 + 400, 0.0);
        }
        // The raised-cosine window 0.5 + 0.5 cos(pi u), u from -1 to 1 over the grain, as a
        // rotating phasor; and the source position (one output sample is `formant` source
        // samples). Both stepped per output sample.
        let inv_h = 1.0 / h;
        let u0 = (k0 as f32 - t_out) * inv_h;
        let (mut c, mut s) = ((PI * u0).cos(), (PI * u0).sin());
        let (dc, ds) = ((PI * inv_h).cos(), (PI * inv_h).sin());
        let mut src = centre + PAD as f32 + u0 * h * formant;
        for o in &mut out[k0..=k1] {
            let i = src as usize; // src > 1 thanks to the padding, so this is floor()
            let t = src - i as f32;
            let v = if CUBIC {
                cubic(x, i, t)
            } else {
                x[i] + t * (x[i + 1] - x[i])
            };
            *o += (0.5 + 0.5 * c) * v;
            (c, s) = (c * dc - s * ds, s * dc + c * ds);
            src += formant;
        }
        end = end.max(k1 + 1);

        let pos = rel * (WARP_KNOTS - 1) as f32;
        let i = (pos as usize).min(WARP_KNOTS - 2);
        let frac = pos - i as f32;
        let rate = shape.rate[i] + (shape.rate[i + 1] - shape.rate[i]) * frac;
        t_out += step;
        t_in += step * rate;
        if t_in >= n_in {
            break;
        }
    }
    out.truncate(end);
}

/// A biquad filter (RBJ audio EQ cookbook), transposed direct form II.
#[derive(Clone, Copy, Debug)]
pub struct Biquad {
    b0: f32,
    b1: f32,
    b2: f32,
    a1: f32,
    a2: f32,
}

impl Biquad {
    fn normalised(b0: f32, b1: f32, b2: f32, a0: f32, a1: f32, a2: f32) -> Biquad {
        Biquad {
            b0: b0 / a0,
            b1: b1 / a0,
            b2: b2 / a0,
            a1: a1 / a0,
            a2: a2 / a0,
        }
    }

    /// Peaking EQ at `freq` Hz with `gain_db` and quality `q`.
    pub fn peaking(rate: f32, freq: f32, gain_db: f32, q: f32) -> Biquad {
        let a = 10f32.powf(gain_db / 40.0);
        let w = 2.0 * PI * freq / rate;
        let alpha = w.sin() / (2.0 * q);
        let c = w.cos();
        Biquad::normalised(
            1.0 + alpha * a,
            -2.0 * c,
            1.0 - alpha * a,
            1.0 + alpha / a,
            -2.0 * c,
            1.0 - alpha / a,
        )
    }

    /// Low shelf (`high == false`) or high shelf at `freq` Hz, slope 1.
    pub fn shelf(rate: f32, freq: f32, gain_db: f32, high: bool) -> Biquad {
        let a = 10f32.powf(gain_db / 40.0);
        let w = 2.0 * PI * freq / rate;
        let c = w.cos();
        let alpha = w.sin() / 2.0 * 2f32.sqrt();
        let sa = 2.0 * a.sqrt() * alpha;
        let s = if high { -1.0 } else { 1.0 };
        // The high shelf is the low shelf with c negated in the odd terms (RBJ).
        Biquad::normalised(
            a * ((a + 1.0) - s * (a - 1.0) * c + sa),
            s * 2.0 * a * ((a - 1.0) - s * (a + 1.0) * c),
            a * ((a + 1.0) - s * (a - 1.0) * c - sa),
            (a + 1.0) + s * (a - 1.0) * c + sa,
            -s * 2.0 * ((a - 1.0) + s * (a + 1.0) * c),
            (a + 1.0) + s * (a - 1.0) * c - sa,
        )
    }

    /// Second-order low-pass (Butterworth Q).
    pub fn low_pass(rate: f32, freq: f32) -> Biquad {
        let w = 2.0 * PI * freq / rate;
        let alpha = w.sin() / (2.0 * std::f32::consts::FRAC_1_SQRT_2);
        let c = w.cos();
        Biquad::normalised(
            (1.0 - c) / 2.0,
            1.0 - c,
            (1.0 - c) / 2.0,
            1.0 + alpha,
            -2.0 * c,
            1.0 - alpha,
        )
    }

    /// Second-order high-pass (Butterworth Q).
    pub fn high_pass(rate: f32, freq: f32) -> Biquad {
        let w = 2.0 * PI * freq / rate;
        let alpha = w.sin() / (2.0 * std::f32::consts::FRAC_1_SQRT_2);
        let c = w.cos();
        Biquad::normalised(
            (1.0 + c) / 2.0,
            -(1.0 + c),
            (1.0 + c) / 2.0,
            1.0 + alpha,
            -2.0 * c,
            1.0 - alpha,
        )
    }

    /// Passes everything unchanged.
    #[cfg(test)]
    pub const IDENTITY: Biquad = Biquad {
        b0: 1.0,
        b1: 0.0,
        b2: 0.0,
        a1: 0.0,
        a2: 0.0,
    };

    /// One sample through the filter (transposed direct form II); `z` is its state.
    #[inline(always)]
    pub fn step(&self, i: f32, z: &mut [f32; 2]) -> f32 {
        let o = self.b0 * i + z[0];
        z[0] = self.b1 * i - self.a1 * o + z[1];
        z[1] = self.b2 * i - self.a2 * o;
        o
    }

    /// Filters `x` in place.
    #[cfg(test)]
    pub fn run(&self, x: &mut [f32]) {
        let mut z = [0f32; 2];
        for v in x.iter_mut() {
            *v = self.step(*v, &mut z);
        }
    }
}

/// A peaking filter that glides from one setting to another over a stretch of sound.
#[derive(Clone, Copy, Debug)]
pub struct Sweep {
    pub from_freq: f32,
    pub to_freq: f32,
    pub from_gain_db: f32,
    pub to_gain_db: f32,
    pub q: f32,
}

/// Samples between coefficient updates of a sweep.
const SWEEP_BLOCK: usize = 32;

/// Knots of the loudness contour.
pub const GAIN_KNOTS: usize = 6;

/// Everything done to a resynthesised digit in one pass over it.
#[derive(Clone, Copy, Debug)]
pub struct Colour {
    /// Three sweeping peaks (deep cuts: moving notches).
    pub sweeps: [Sweep; 3],
    /// A fixed filter after them (a shelf).
    pub fixed: Biquad,
    /// Linear gain at evenly spaced knots over the digit.
    pub gain: [f32; GAIN_KNOTS],
    /// Tremolo: phase step per sample (radians) and depth (0 = none).
    pub tremolo_step: f32,
    pub tremolo_depth: f32,
    /// Band split (Linkwitz-Riley: each Butterworth filter applied twice, so the bands add up
    /// to an allpass): the low-pass, the high-pass, the delay in samples of one band against
    /// the other, and which band is late. A delay of 0 skips the split.
    pub low_pass: Biquad,
    pub high_pass: Biquad,
    pub delay: usize,
    pub delay_high: bool,
}

/// Filters `x` in place by one biquad and scales it by a loudness contour (linear gain at
/// evenly spaced knots): the light treatment of babble.
pub fn tint(filter: &Biquad, gain: &[f32; GAIN_KNOTS], x: &mut [f32]) {
    let mut z = [0f32; 2];
    let blocks = x.len().div_ceil(SWEEP_BLOCK).max(1);
    let knot_span = blocks as f32 / (GAIN_KNOTS - 1) as f32;
    for (b, block) in x.chunks_mut(SWEEP_BLOCK).enumerate() {
        let kp = b as f32 / knot_span;
        let k = (kp as usize).min(GAIN_KNOTS - 2);
        let g = gain[k] + (gain[k + 1] - gain[k]) * (kp - k as f32).min(1.0);
        for v in block.iter_mut() {
            *v = filter.step(*v, &mut z) * g;
        }
    }
}

/// Applies `c` to `x` in place; `high` is scratch space for the split.
pub fn colour(c: &Colour, x: &mut Vec<f32>, high: &mut Vec<f32>) {
    let n = x.len();
    let (f3, lp, hp) = (&c.fixed, &c.low_pass, &c.high_pass);
    let split = c.delay > 0;
    high.clear();
    high.resize(if split { n } else { 0 }, 0.0);
    // Filter states: sweeps 0 and 1, the fixed filter, the split (two low, two high), sweep 2.
    let mut z = [[0f32; 2]; 8];
    let blocks = n.div_ceil(SWEEP_BLOCK).max(1);
    let ratio = c.sweeps.map(|s| (s.to_freq / s.from_freq).ln());
    let at = |k: usize, t: f32| {
        let s = &c.sweeps[k];
        Biquad::peaking(
            SAMPLE_RATE,
            s.from_freq * (ratio[k] * t).exp(),
            s.from_gain_db + (s.to_gain_db - s.from_gain_db) * t,
            s.q,
        )
    };
    let (dc, ds) = (c.tremolo_step.cos(), c.tremolo_step.sin());
    let (mut tc, mut ts) = (1f32, 0f32);
    let half_depth = 0.5 * c.tremolo_depth;
    let knot_span = blocks as f32 / (GAIN_KNOTS - 1) as f32;
    for (b, block) in x.chunks_mut(SWEEP_BLOCK).enumerate() {
        let t = b as f32 / blocks as f32;
        let (f, g, e) = (at(0, t), at(1, t), at(2, t));
        // The loudness contour, linear between knots, stepped per block.
        let kp = b as f32 / knot_span;
        let k = (kp as usize).min(GAIN_KNOTS - 2);
        let gain = c.gain[k] + (c.gain[k + 1] - c.gain[k]) * (kp - k as f32).min(1.0);
        let start = b * SWEEP_BLOCK;
        for (j, v) in block.iter_mut().enumerate() {
            let y = f3.step(
                e.step(g.step(f.step(*v, &mut z[0]), &mut z[1]), &mut z[7]),
                &mut z[2],
            );
            let y = y * gain * (1.0 - half_depth * (1.0 + tc));
            (tc, ts) = (tc * dc - ts * ds, ts * dc + tc * ds);
            if split {
                let l2 = lp.step(lp.step(y, &mut z[3]), &mut z[4]);
                let h2 = hp.step(hp.step(y, &mut z[5]), &mut z[6]);
                high[start + j] = h2;
                *v = l2;
            } else {
                *v = y;
            }
        }
    }
    if split {
        // x holds the low band, `high` the high one.
        let d = c.delay;
        x.resize(n + d, 0.0);
        if c.delay_high {
            for (o, h) in x[d..].iter_mut().zip(high.iter()) {
                *o += h;
            }
        } else {
            x.copy_within(0..n, d);
            x[..d].fill(0.0);
            for (o, h) in x.iter_mut().zip(high.iter()) {
                *o += h;
            }
        }
    }
}

/// Allpass coefficients of the two paths of a 90° phase splitter (Olli Niemitalo's design:
/// the paths differ by 90° ± 0.7° from 0.001 to 0.499 of the sample rate).
const HILBERT: [[f32; 4]; 2] = [
    [0.692_387_8, 0.936_065_4, 0.988_229_5, 0.998_748_8],
    [0.402_192_1, 0.856_171_1, 0.972_291, 0.995_288_5],
];

/// Shifts every frequency in `x` up by a number of hertz (single-sideband modulation),
/// gliding from `from_hz` to `to_hz` over the stretch. Unlike a pitch or formant change this
/// moves every component by the same number of hertz, so the harmonics no longer sit on
/// multiples of one pitch and the spectrum warps unevenly on any logarithmic scale.
pub fn frequency_shift(x: &mut [f32], from_hz: f32, to_hz: f32) {
    let a2 = HILBERT.map(|path| path.map(|a| a * a));
    // Per path and section: x[n-1], x[n-2], y[n-1], y[n-2].
    let mut st = [[[0f32; 4]; 4]; 2];
    let mut delayed = 0f32;
    let blocks = x.len().div_ceil(SWEEP_BLOCK).max(1) as f32;
    let (mut c, mut s) = (1f32, 0f32);
    for (b, block) in x.chunks_mut(SWEEP_BLOCK).enumerate() {
        let hz = from_hz + (to_hz - from_hz) * (b as f32 / blocks);
        let step = 2.0 * PI * hz / SAMPLE_RATE;
        let (dc, ds) = (step.cos(), step.sin());
        for v in block.iter_mut() {
            let mut outs = [0f32; 2];
            for (p, out) in outs.iter_mut().enumerate() {
                let mut u = *v;
                for (q, z) in st[p].iter_mut().enumerate() {
                    let y = a2[p][q] * (u + z[3]) - z[1];
                    *z = [u, z[0], y, z[2]];
                    u = y;
                }
                *out = u;
            }
            let in_phase = delayed;
            delayed = outs[0];
            *v = in_phase * c + outs[1] * s;
            (c, s) = (c * dc - s * ds, s * dc + c * ds);
        }
        // Keep the rotation on the unit circle.
        let r = (c * c + s * s).sqrt();
        (c, s) = (c / r, s / r);
    }
}

/// Adds `x` into `out` at `at` once per tap (delay in samples, gain): the direct sound and a
/// sparse echo pattern in one pass per tap. Samples past the end of `out` are dropped.
pub fn mix_taps(out: &mut [f32], at: usize, x: &[f32], taps: &[(usize, f32)]) {
    for &(delay, gain) in taps {
        let start = at + delay;
        if start >= out.len() {
            continue;
        }
        let n = x.len().min(out.len() - start);
        for (o, &v) in out[start..start + n].iter_mut().zip(&x[..n]) {
            *o += gain * v;
        }
    }
}

/// Root mean square of `x` (0 for an empty slice).
pub fn rms(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * PI * freq * i as f32 / 8000.0).sin())
            .collect()
    }

    #[test]
    fn peaking_gain_at_centre() {
        let mut x = sine(1000.0, 8000);
        Biquad::peaking(8000.0, 1000.0, 12.0, 1.0).run(&mut x);
        let gain = rms(&x[4000..]) / (0.5f32).sqrt();
        assert!((gain - 3.98).abs() < 0.1, "gain {gain}");
    }

    #[test]
    fn shelves_boost_their_side() {
        for (high, f_in, f_out) in [(false, 150.0, 3000.0), (true, 3000.0, 150.0)] {
            let q = Biquad::shelf(8000.0, 800.0, 10.0, high);
            let mut a = sine(f_in, 8000);
            let mut b = sine(f_out, 8000);
            q.run(&mut a);
            q.run(&mut b);
            let (ga, gb) = (
                rms(&a[4000..]) / std::f32::consts::FRAC_1_SQRT_2,
                rms(&b[4000..]) / std::f32::consts::FRAC_1_SQRT_2,
            );
            assert!(ga > 2.7 && ga < 3.3, "boosted side {ga} (high {high})");
            assert!(gb > 0.9 && gb < 1.15, "flat side {gb} (high {high})");
        }
    }

    #[test]
    fn sweep_moves_the_peak() {
        // A peak sweeping from 400 Hz to 3000 Hz: a 400 Hz tone is boosted early, not late.
        let sweep = Sweep {
            from_freq: 400.0,
            to_freq: 3000.0,
            from_gain_db: 12.0,
            to_gain_db: 12.0,
            q: 2.0,
        };
        let mut x = sine(400.0, 16000);
        let mut c = plain_colour();
        c.sweeps[0] = sweep;
        colour(&c, &mut x, &mut Vec::new());
        let (early, late) = (
            rms(&x[200..800]) / std::f32::consts::FRAC_1_SQRT_2,
            rms(&x[13600..15200]) / std::f32::consts::FRAC_1_SQRT_2,
        );
        assert!(early > 2.5, "early gain {early}");
        assert!(late < 1.3, "late gain {late}");
    }

    /// Amplitude of the `freq` component of `x` (a single-bin DFT).
    fn tone(x: &[f32], freq: f32) -> f32 {
        let (mut re, mut im) = (0f32, 0f32);
        for (i, v) in x.iter().enumerate() {
            let w = 2.0 * PI * freq * i as f32 / 8000.0;
            re += v * w.cos();
            im += v * w.sin();
        }
        2.0 * (re * re + im * im).sqrt() / x.len() as f32
    }

    #[test]
    fn frequency_shift_moves_a_tone_up() {
        for (freq, shift) in [(1000.0, 100.0), (300.0, 60.0), (2500.0, 150.0)] {
            let mut x = sine(freq, 8000);
            frequency_shift(&mut x, shift, shift);
            let tail = &x[800..];
            let up = tone(tail, freq + shift);
            let down = tone(tail, freq - shift);
            let stay = tone(tail, freq);
            assert!(
                up > 0.9 && up < 1.1,
                "{freq} Hz + {shift}: up {up} down {down} stay {stay}"
            );
            assert!(
                down < 0.05 && stay < 0.05,
                "{freq} Hz + {shift}: down {down} stay {stay}"
            );
        }
    }

    #[test]
    fn cubic_hits_the_samples() {
        let x = [0.0, 1.0, -2.0, 3.0, 0.5, 0.0];
        for i in 1..4 {
            assert!((cubic(&x, i, 0.0) - x[i]).abs() < 1e-6);
        }
        assert!(
            (cubic(&x, 1, 0.5) + 0.75).abs() < 1e-6,
            "{}",
            cubic(&x, 1, 0.5)
        );
    }

    fn plain_colour() -> Colour {
        let flat = Sweep {
            from_freq: 1000.0,
            to_freq: 1000.0,
            from_gain_db: 0.0,
            to_gain_db: 0.0,
            q: 1.0,
        };
        Colour {
            sweeps: [flat, flat, flat],
            fixed: Biquad::IDENTITY,
            gain: [1.0; GAIN_KNOTS],
            tremolo_step: 0.0,
            tremolo_depth: 0.0,
            low_pass: Biquad::low_pass(8000.0, 1200.0),
            high_pass: Biquad::high_pass(8000.0, 1200.0),
            delay: 0,
            delay_high: false,
        }
    }

    #[test]
    fn colour_filters_in_series() {
        let fs = [
            Biquad::peaking(8000.0, 700.0, 6.0, 1.0),
            Biquad::peaking(8000.0, 2000.0, -9.0, 3.0),
            Biquad::shelf(8000.0, 2000.0, -5.0, true),
        ];
        let mut c = plain_colour();
        c.sweeps[0] = Sweep {
            from_freq: 700.0,
            to_freq: 700.0,
            from_gain_db: 6.0,
            to_gain_db: 6.0,
            q: 1.0,
        };
        c.sweeps[1] = Sweep {
            from_freq: 2000.0,
            to_freq: 2000.0,
            from_gain_db: -9.0,
            to_gain_db: -9.0,
            q: 3.0,
        };
        c.fixed = fs[2];
        let mut a: Vec<f32> = (0..500)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let mut b = a.clone();
        colour(&c, &mut a, &mut Vec::new());
        for f in &fs {
            f.run(&mut b);
        }
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5);
        }
    }

    #[test]
    fn colour_split_delays_one_band() {
        // A low and a high tone; the high band 100 samples late.
        let x: Vec<f32> = (0..4000)
            .map(|i| {
                let t = i as f32 / 8000.0;
                (2.0 * PI * 300.0 * t).sin() + (2.0 * PI * 3000.0 * t).sin()
            })
            .collect();
        let mut c = plain_colour();
        c.delay = 100;
        c.delay_high = true;
        let mut y = x.clone();
        colour(&c, &mut y, &mut Vec::new());
        assert_eq!(y.len(), 4100);
        // Before the delay only the low tone sounds, after it both (as loud as the input).
        let early = rms(&y[20..100]);
        let late = rms(&y[2000..3000]);
        assert!(early > 0.5 && early < 0.9, "early {early}");
        assert!((late - rms(&x[2000..3000])).abs() < 0.15, "late {late}");
    }

    #[test]
    fn colour_gain_contour() {
        let mut c = plain_colour();
        c.gain = [1.0, 1.0, 1.0, 1.0, 0.5, 0.25];
        let mut x = vec![1.0f32; 5000];
        colour(&c, &mut x, &mut Vec::new());
        assert!((x[100] - 1.0).abs() < 1e-4);
        assert!((x[4990] - 0.25).abs() < 0.03, "{}", x[4990]);
    }
}
