//! The embedded digit recordings (`voices/LANG.bin`, made by `scripts/record-voices`): decoded
//! from µ-law once, and analysed once for the pitch marks the PSOLA resynthesis needs.

use std::sync::LazyLock;

/// Sample rate of the recordings and of every clip.
pub const RATE: u32 = 8000;

/// Spacing of the analysis marks in unvoiced stretches (10 ms).
const UNVOICED: u16 = 80;

/// One language's data file and its tag. The order is the order of `voice_languages()`.
const FILES: [(&str, &[u8]); 12] = [
    ("en", include_bytes!("voices/en.bin")),
    ("de", include_bytes!("voices/de.bin")),
    ("fr", include_bytes!("voices/fr.bin")),
    ("es", include_bytes!("voices/es.bin")),
    ("it", include_bytes!("voices/it.bin")),
    ("pt", include_bytes!("voices/pt.bin")),
    ("nl", include_bytes!("voices/nl.bin")),
    ("pl", include_bytes!("voices/pl.bin")),
    ("ru", include_bytes!("voices/ru.bin")),
    ("tr", include_bytes!("voices/tr.bin")),
    ("ar", include_bytes!("voices/ar.bin")),
    ("zh", include_bytes!("voices/zh.bin")),
];

/// The tags of the languages with voices.
pub const TAGS: [&str; 12] = {
    let mut tags = [""; 12];
    let mut i = 0;
    while i < FILES.len() {
        tags[i] = FILES[i].0;
        i += 1;
    }
    tags
};

/// A pitch mark: the centre of one analysis grain.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    /// Sample index of the mark (a glottal pulse peak when voiced).
    pub pos: u32,
    /// Local pitch period in samples (`UNVOICED` in unvoiced stretches).
    pub period: u16,
    pub voiced: bool,
}

/// Zeros kept on either side of every recording, so that resampling near its ends needs no
/// bounds tests (more than the longest grain reaches past a mark: 1.5 periods plus 2).
pub const PAD: usize = 256;

/// One spoken digit.
pub struct Recording {
    /// The samples with `PAD` zeros on either side.
    pub padded: Vec<f32>,
    pub marks: Vec<Mark>,
    /// The voice's typical pitch period in samples (median over the voiced frames).
    pub period: f32,
}

/// One language: its voices, each with the ten digits.
pub struct Language {
    pub tag: &'static str,
    pub voices: Vec<String>,
    /// `recordings[voice * 10 + digit]`.
    pub recordings: Vec<Recording>,
}

impl Recording {
    /// The samples as recorded.
    pub fn samples(&self) -> &[f32] {
        &self.padded[PAD..self.padded.len() - PAD]
    }
}

impl Language {
    pub fn recording(&self, voice: usize, digit: u8) -> &Recording {
        &self.recordings[voice * 10 + usize::from(digit)]
    }
}

/// Every language, decoded and analysed on first use.
pub static LANGUAGES: LazyLock<Vec<Language>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(tag, data)| parse(tag, data).unwrap_or_else(|e| panic!("voices/{tag}.bin: {e}")))
        .collect()
});

/// The language with this tag (`pt-BR` and `pt_br` find `pt`), or English.
pub fn language(tag: &str) -> &'static Language {
    let primary = tag.split(['-', '_']).next().unwrap_or("");
    let langs = &*LANGUAGES;
    langs
        .iter()
        .find(|l| l.tag.eq_ignore_ascii_case(primary))
        .unwrap_or(&langs[0])
}

fn parse(tag: &'static str, data: &[u8]) -> Result<Language, String> {
    let newline = data
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header = std::str::from_utf8(&data[..newline]).map_err(|_| "header is not UTF-8")?;
    let fields: Vec<&str> = header.split(' ').collect();
    match fields.as_slice() {
        ["CAPTCHAIFY-VOICES", "1", t, rate, ..] if *t == tag && *rate == "8000" => {}
        _ => return Err(format!("bad header {header:?}")),
    }
    let voices: Vec<String> = fields[4..].iter().map(|s| s.to_string()).collect();
    if voices.is_empty() {
        return Err("no voices".into());
    }
    let table = ulaw_table();
    let mut rest = &data[newline + 1..];
    let mut recordings = Vec::with_capacity(voices.len() * 10);
    for _ in 0..voices.len() * 10 {
        if rest.len() < 2 {
            return Err("truncated".into());
        }
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let body = rest.get(2..2 + n).ok_or("truncated")?;
        rest = &rest[2 + n..];
        let mut padded = vec![0f32; n + 2 * PAD];
        for (v, &b) in padded[PAD..PAD + n].iter_mut().zip(body) {
            *v = table[usize::from(b)];
        }
        let (marks, period) = pitch_marks(&padded[PAD..PAD + n]);
        recordings.push(Recording {
            padded,
            marks,
            period,
        });
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes left over", rest.len()));
    }
    Ok(Language {
        tag,
        voices,
        recordings,
    })
}

/// G.711 µ-law to linear, scaled to ±1.
fn ulaw_table() -> [f32; 256] {
    let mut table = [0f32; 256];
    for (i, v) in table.iter_mut().enumerate() {
        let u = !(i as u8);
        let exponent = (u >> 4) & 7;
        let mantissa = i32::from(u & 0x0f);
        let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
        let s = if u & 0x80 != 0 { -magnitude } else { magnitude };
        *v = s as f32 / 32768.0;
    }
    table
}

/// A dot product the compiler can vectorise (eight independent sums).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(p, q)| p * q)
        .sum();
    for (p, q) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += p[i] * q[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

const HOP: usize = 80; // 10 ms frames
const WIN: usize = 256;
const MIN_WIN: usize = 120;
const MIN_LAG: usize = 18; // 444 Hz
const MAX_LAG: usize = 160; // 50 Hz

/// The period (in lo..=hi) of the frame at `start` by normalised autocorrelation, with its
/// score; None when the frame is too close to the end or silent.
fn frame_period(x: &[f32], start: usize, lo: usize, hi: usize, floor: f32) -> Option<(usize, f32)> {
    let len = x.len();
    if start + hi + MIN_WIN > len {
        return None;
    }
    let win = WIN.min(len - start - hi);
    let a = &x[start..start + win];
    let e0 = dot(a, a);
    if e0 < floor * win as f32 {
        return None;
    }
    let first = &x[start + lo..start + lo + win];
    let mut e1 = dot(first, first);
    let mut r = [0f32; MAX_LAG + 2];
    let mut best = 0f32;
    for lag in lo..=hi {
        let b = &x[start + lag..start + lag + win];
        r[lag] = dot(a, b) / (e0 * e1).sqrt().max(1e-9);
        best = best.max(r[lag]);
        if lag < hi {
            let (out, inn) = (x[start + lag], x[start + lag + win]);
            e1 = (e1 + inn * inn - out * out).max(0.0);
        }
    }
    // The shortest lag that is a local maximum close to the best one (avoids octave errors).
    for lag in lo..=hi {
        let left = if lag > lo {
            r[lag - 1]
        } else {
            f32::NEG_INFINITY
        };
        let right = if lag < hi {
            r[lag + 1]
        } else {
            f32::NEG_INFINITY
        };
        if r[lag] >= 0.88 * best && r[lag] >= left && r[lag] >= right {
            return Some((lag, r[lag]));
        }
    }
    None
}

/// Pitch marks for TD-PSOLA, and the recording's median pitch period. A normalised
/// autocorrelation per 10 ms frame decides voicing and period: a first coarse pass over the
/// whole pitch range finds the voice's typical period, the second looks near it only. Voiced
/// marks sit on the waveform peak of each period, unvoiced ones every 10 ms.
fn pitch_marks(x: &[f32]) -> (Vec<Mark>, f32) {
    let len = x.len();
    let frames = len / HOP + 1;
    let start_of = |f: usize| (f * HOP).saturating_sub(WIN / 2);
    // Mean power floor: 1/100 of the loudest frame's.
    let mut loudest = 0f32;
    for f in 0..frames {
        let s = start_of(f).min(len);
        let w = &x[s..(s + WIN).min(len)];
        loudest = loudest.max(dot(w, w) / WIN as f32);
    }
    let floor = loudest * 0.01;

    let mut confident: Vec<usize> = (0..frames)
        .step_by(2)
        .filter_map(|f| frame_period(x, start_of(f), MIN_LAG, MAX_LAG, floor))
        .filter(|&(_, score)| score > 0.7)
        .map(|(lag, _)| lag)
        .collect();
    confident.sort_unstable();
    let typical = confident.get(confident.len() / 2).copied().unwrap_or(80);
    let lo = (typical * 3 / 5).max(MIN_LAG);
    let hi = (typical * 17 / 10).min(MAX_LAG);

    let mut period = vec![0u16; frames];
    for (f, p) in period.iter_mut().enumerate() {
        if let Some((lag, score)) = frame_period(x, start_of(f), lo, hi, floor) {
            if score >= 0.35 {
                *p = lag as u16;
            }
        }
    }
    // Median of three over voiced neighbours smooths single-frame errors.
    let raw = period.clone();
    for f in 1..frames.saturating_sub(1) {
        let (a, b, c) = (raw[f - 1], raw[f], raw[f + 1]);
        if a > 0 && b > 0 && c > 0 {
            period[f] = a.max(b).min(a.min(b).max(c));
        }
    }

    let mut marks = Vec::with_capacity(len / 40 + 2);
    let mut pos = 0usize;
    let mut last_voiced = false;
    loop {
        let frame = (pos / HOP).min(frames - 1);
        let t = usize::from(period[frame]);
        if t > 0 {
            let (lo, hi) = if last_voiced {
                (pos + t - t / 4, pos + t + t / 4)
            } else {
                (pos, pos + t)
            };
            if lo >= len {
                break;
            }
            let hi = hi.min(len);
            let mut best = lo;
            for i in lo..hi {
                if x[i] > x[best] {
                    best = i;
                }
            }
            marks.push(Mark {
                pos: best as u32,
                period: t as u16,
                voiced: true,
            });
            pos = best.max(pos + 1);
            last_voiced = true;
        } else {
            pos = if marks.is_empty() {
                0
            } else {
                pos + usize::from(UNVOICED)
            };
            if pos >= len {
                break;
            }
            marks.push(Mark {
                pos: pos as u32,
                period: UNVOICED,
                voiced: false,
            });
            last_voiced = false;
        }
    }
    (marks, typical as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_round_trip_extremes() {
        let t = ulaw_table();
        assert!((t[0x00] + 0.98).abs() < 0.01, "{}", t[0x00]);
        assert!((t[0x80] - 0.98).abs() < 0.01, "{}", t[0x80]);
        assert_eq!(t[0xff], 0.0);
    }

    #[test]
    fn marks_follow_a_pulse_train() {
        // 125 Hz pulses with a decaying resonance: period 64 samples.
        let x: Vec<f32> = (0..4000)
            .map(|n| {
                let k = (n % 64) as f32;
                (-k / 12.0).exp() * (k * 0.7).cos()
            })
            .collect();
        let (marks, typical) = pitch_marks(&x);
        assert_eq!(typical, 64.0);
        let voiced: Vec<&Mark> = marks.iter().filter(|m| m.voiced).collect();
        assert!(voiced.len() > 50, "{} voiced marks", voiced.len());
        for m in &voiced {
            assert!((62..=66).contains(&m.period), "period {}", m.period);
        }
        for w in voiced.windows(2) {
            let d = w[1].pos - w[0].pos;
            assert!((60..=68).contains(&d), "spacing {d}");
        }
    }
}
