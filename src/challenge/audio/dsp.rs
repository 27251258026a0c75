//! Signal processing for the audio captcha, all f32 at 8 kHz: TD-PSOLA resynthesis with
//! independent pitch, formant and (non-linear) tempo changes, RBJ biquads, sparse echoes.

use std::f32::consts::PI;
use std::sync::LazyLock;

use super::bank::{Recording, PAD};
use rand::Rng;

/// Raised-cosine window over u in [-1, 1], tabulated.
const HANN_SIZE: usize = 1024;
static HANN: LazyLock<[f32; HANN_SIZE + 1]> = LazyLock::new(|| {
    let mut t = [0f32; HANN_SIZE + 1];
    for (i, v) in t.iter_mut().enumerate() {
        let u = i as f32 / HANN_SIZE as f32 * 2.0 - 1.0;
        *v = 0.5 + 0.5 * (PI * u).cos();
    }
    t
});

/// Builds the window table (part of the voices' warm-up).
pub fn warm_up() {
    LazyLock::force(&HANN);
}

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

/// How one recording is resynthesised.
#[derive(Clone, Copy, Debug)]
pub struct Reshape {
    /// Spectral envelope scale (> 1 raises the formants), independent of the pitch.
    pub formant: f32,
    /// Pitch factor at the start and the end of the digit (a glide between them).
    pub pitch_from: f32,
    pub pitch_to: f32,
    /// Pitch wobble: relative depth, cycles over the digit, phase in cycles.
    pub wobble_depth: f32,
    pub wobble_cycles: f32,
    pub wobble_phase: f32,
    /// Input samples consumed per output sample at five evenly spaced points of the input:
    /// a non-linear tempo warp (1 = unchanged, 0.8 = 25% slower there).
    pub rate: [f32; 5],
}

/// Shortest and longest output pitch period (444 Hz … 70 Hz).
const MIN_PERIOD: f32 = 18.0;
const MAX_PERIOD: f32 = 115.0;

/// TD-PSOLA: grains two periods long taken at the recording's pitch marks, each resampled by
/// the formant factor, laid at the new pitch period along the warped time axis. Unvoiced
/// grains are taken from a jittered position, so stretched noise does not turn periodic.
/// `out` is cleared and receives the digit.
pub fn psola<R: Rng>(rec: &Recording, shape: &Reshape, rng: &mut R, out: &mut Vec<f32>) {
    let x = &rec.padded;
    let marks = &rec.marks;
    let hann = &*HANN;
    out.clear();
    if marks.is_empty() {
        return;
    }
    let n_in = (x.len() - 2 * PAD) as f32;
    let slowest = shape.rate.iter().copied().fold(f32::INFINITY, f32::min).max(0.2);
    out.resize((n_in / slowest) as usize + 400, 0.0);
    let inv_formant = 1.0 / shape.formant;
    let mut t_in = 0f32;
    let mut t_out = f32::from(marks[0].period) * inv_formant;
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
        let period = f32::from(m.period);
        let h = period * inv_formant;
        let mut centre = m.pos as f32;
        if !m.voiced {
            centre += (rng.gen::<f32>() - 0.5) * period;
        }
        let k0 = (t_out - h).ceil().max(0.0) as usize;
        let k1 = (t_out + h).floor() as usize;
        if k1 + 1 >= out.len() {
            out.resize(k1 + 400, 0.0);
        }
        let inv_h = 1.0 / h;
        let scale = 0.5 * HANN_SIZE as f32;
        // Window position u in [-1, 1] and source position, both stepped per output sample.
        let mut u = (k0 as f32 - t_out) * inv_h;
        let mut src = centre + PAD as f32 + u * period;
        let src_step = period * inv_h;
        for o in &mut out[k0..=k1] {
            let w = hann[((u + 1.0) * scale + 0.5) as usize];
            let i = src as usize; // src > 1 thanks to the padding, so this is floor()
            *o += w * cubic(x, i, src - i as f32);
            u += inv_h;
            src += src_step;
        }
        end = end.max(k1 + 1);

        let rel = (t_in / n_in).clamp(0.0, 1.0);
        let step = if m.voiced {
            let glide = shape.pitch_from + (shape.pitch_to - shape.pitch_from) * rel;
            let wobble = 1.0
                + shape.wobble_depth
                    * (2.0 * PI * (shape.wobble_cycles * rel + shape.wobble_phase)).sin();
            (period / (glide * wobble)).clamp(MIN_PERIOD, MAX_PERIOD)
        } else {
            h
        };
        let pos = rel * 4.0;
        let i = (pos as usize).min(3);
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
        Biquad { b0: b0 / a0, b1: b1 / a0, b2: b2 / a0, a1: a1 / a0, a2: a2 / a0 }
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

    /// Band-pass (constant 0 dB peak gain) around `freq` Hz.
    pub fn band_pass(rate: f32, freq: f32, q: f32) -> Biquad {
        let w = 2.0 * PI * freq / rate;
        let alpha = w.sin() / (2.0 * q);
        Biquad::normalised(alpha, 0.0, -alpha, 1.0 + alpha, -2.0 * w.cos(), 1.0 - alpha)
    }

    /// Passes everything unchanged.
    pub const IDENTITY: Biquad = Biquad { b0: 1.0, b1: 0.0, b2: 0.0, a1: 0.0, a2: 0.0 };

    /// Filters `x` in place.
    #[cfg(test)]
    pub fn run(&self, x: &mut [f32]) {
        let (mut z1, mut z2) = (0f32, 0f32);
        for v in x.iter_mut() {
            let i = *v;
            let o = self.b0 * i + z1;
            z1 = self.b1 * i - self.a1 * o + z2;
            z2 = self.b2 * i - self.a2 * o;
            *v = o;
        }
    }
}

/// Filters `x` in place by three biquads in series, in one pass (their recursions overlap).
pub fn cascade(filters: &[Biquad; 3], x: &mut [f32]) {
    let [f, g, h] = filters;
    let mut z = [0f32; 6];
    for v in x.iter_mut() {
        let i = *v;
        let o = f.b0 * i + z[0];
        z[0] = f.b1 * i - f.a1 * o + z[1];
        z[1] = f.b2 * i - f.a2 * o;
        let p = g.b0 * o + z[2];
        z[2] = g.b1 * o - g.a1 * p + z[3];
        z[3] = g.b2 * o - g.a2 * p;
        let q = h.b0 * p + z[4];
        z[4] = h.b1 * p - h.a1 * q + z[5];
        z[5] = h.b2 * p - h.a2 * q;
        *v = q;
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
        (0..n).map(|i| (2.0 * PI * freq * i as f32 / 8000.0).sin()).collect()
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
            let (ga, gb) = (rms(&a[4000..]) / 0.7071, rms(&b[4000..]) / 0.7071);
            assert!(ga > 2.7 && ga < 3.3, "boosted side {ga} (high {high})");
            assert!(gb > 0.9 && gb < 1.15, "flat side {gb} (high {high})");
        }
    }

    #[test]
    fn cubic_hits_the_samples() {
        let x = [0.0, 1.0, -2.0, 3.0, 0.5, 0.0];
        for i in 1..4 {
            assert!((cubic(&x, i, 0.0) - x[i]).abs() < 1e-6);
        }
        assert!((cubic(&x, 1, 0.5) + 0.75).abs() < 1e-6, "{}", cubic(&x, 1, 0.5));
    }

    #[test]
    fn cascade_is_three_filters_in_series() {
        let fs = [
            Biquad::peaking(8000.0, 700.0, 6.0, 1.0),
            Biquad::shelf(8000.0, 2000.0, -5.0, true),
            Biquad::band_pass(8000.0, 1000.0, 0.5),
        ];
        let mut a: Vec<f32> = (0..500).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let mut b = a.clone();
        cascade(&fs, &mut a);
        for f in &fs {
            f.run(&mut b);
        }
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5);
        }
    }
}
