//! Samples, attack material and speed figures for the audio captcha.
//!
//! ```text
//! cargo run --release --no-default-features --features tools --bin captcha-audio -- COMMAND …
//! ```
//!
//! * `dump LANG N DIR [--babble LEAST-MOST|off] [--noise LEAST-MOST|off]` — N fresh clips
//!   (`DIR/00000.wav` …) and `DIR/answers.txt` with one `file digits` line per clip. The
//!   options put the babble or the noise at another level (dB below the speech) or leave it
//!   out, for measuring how loud the background must be; without them, the served mix.
//! * `plain LANG N DIR` — the same layout, but each clip only pastes the shipped recordings
//!   (a random voice per digit, fixed 0.25 s gaps, nothing transformed): the reference an
//!   attack should solve.
//! * `clean LANG N DIR` — the same layout, the spoken digits transformed as served but with
//!   no babble and no noise: shows what the transforms alone leave of the speech.
//! * `digits LANG N DIR` — N single digits (`DIR/00000.wav` …, answers as for `dump`), each
//!   transformed as in a clip but alone, with no babble or noise: the classification half of
//!   an attack that first cuts a clip into digits.
//! * `voices DIR` — every shipped recording as `DIR/LANG/VOICE-DIGIT.wav` (16-bit, 8 kHz).
//! * `speed [N]` — N clips (default 2000) on one thread, seeding a ChaCha20 RNG from the OS
//!   per clip as the module does; prints clips per second, WAV sizes and durations.
//! * `sample LANG OUT.wav` — one fresh clip; prints its digits.
//! * `levels LANG N [OPTIONS]` — for N fresh clips (the options as for `dump`), how loud the
//!   spoken digits are against the babble and the noise (a stand-in for listening), and one
//!   clip's loudness over time as text.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use captchaify::challenge::audio::{self, AudioClip, Mix};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn fresh_rng() -> Result<ChaCha20Rng, String> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| format!("getrandom: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: captcha-audio dump LANG N DIR [OPTIONS]\n       captcha-audio plain LANG N DIR\n       \
         captcha-audio clean LANG N DIR\n       captcha-audio digits LANG N DIR\n       \
         captcha-audio voices DIR\n       \
         captcha-audio speed [N]\n       captcha-audio sample LANG OUT.wav\n       \
         captcha-audio levels LANG N [OPTIONS]\n\
         OPTIONS of dump and levels: --babble LEAST-MOST|off, --noise LEAST-MOST|off\n\
         (dB below the speech; default: the served mix, babble 12-18, noise 16-22)"
    );
    ExitCode::from(2)
}

#[derive(Clone, Copy)]
enum Kind {
    Mixed(Mix),
    Plain,
}

fn make(kind: Kind, lang: &str) -> Result<AudioClip, String> {
    let mut rng = fresh_rng()?;
    Ok(match kind {
        Kind::Mixed(mix) => audio::generate_mix(lang, mix, &mut rng),
        Kind::Plain => audio::plain(lang, &mut rng),
    })
}

/// `--babble LEAST-MOST|off` and `--noise LEAST-MOST|off` (dB below the speech) over the
/// served mix: for measuring how loud the background needs to be.
fn mix_options(options: &[&str]) -> Result<Mix, String> {
    let mut mix = Mix::FULL;
    let mut rest = options;
    while let [name, value, tail @ ..] = rest {
        let range = if *value == "off" {
            None
        } else {
            let parsed = value.split_once('-').and_then(|(a, b)| {
                let (a, b) = (a.parse::<f32>().ok()?, b.parse::<f32>().ok()?);
                (a.is_finite() && b.is_finite() && 0.0 <= a && a <= b).then_some((a, b))
            });
            Some(parsed.ok_or_else(|| {
                format!(
                    "{name} {value}: expected LEAST-MOST dB below the speech (e.g. 12-18) or off"
                )
            })?)
        };
        match *name {
            "--babble" => mix.babble = range,
            "--noise" => mix.noise = range,
            _ => return Err(format!("unknown option {name}")),
        }
        rest = tail;
    }
    match rest {
        [] => Ok(mix),
        [odd, ..] => Err(format!("{odd}: an option needs a value")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["dump", lang, n, dir, options @ ..] => match (n.parse::<usize>(), mix_options(options)) {
            (Ok(n), Ok(mix)) => dump(Kind::Mixed(mix), lang, n, Path::new(dir)),
            (_, Err(e)) => {
                eprintln!("captcha-audio: {e}");
                return usage();
            }
            _ => return usage(),
        },
        [cmd @ ("plain" | "clean"), lang, n, dir] => match n.parse::<usize>() {
            Ok(n) => {
                let kind = match *cmd {
                    "plain" => Kind::Plain,
                    _ => Kind::Mixed(Mix::QUIET),
                };
                dump(kind, lang, n, Path::new(dir))
            }
            _ => return usage(),
        },
        ["digits", lang, n, dir] => match n.parse::<usize>() {
            Ok(n) => singles(lang, n, Path::new(dir)),
            _ => return usage(),
        },
        ["voices", dir] => voices(Path::new(dir)),
        ["speed"] => speed(2000),
        ["speed", n] => match n.parse::<usize>() {
            Ok(n) if n > 0 => speed(n),
            _ => return usage(),
        },
        ["sample", lang, out] => sample(lang, Path::new(out)),
        ["levels", lang, n, options @ ..] => match (n.parse::<usize>(), mix_options(options)) {
            (Ok(n), Ok(mix)) if n > 0 => levels(lang, n, mix),
            (_, Err(e)) => {
                eprintln!("captcha-audio: {e}");
                return usage();
            }
            _ => return usage(),
        },
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("captcha-audio: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn dump(kind: Kind, lang: &str, n: usize, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut list = String::new();
    for i in 0..n {
        let clip = make(kind, lang)?;
        let name = format!("{i:05}.wav");
        write(&dir.join(&name), &clip.wav)?;
        list.push_str(&format!("{name} {}\n", clip.digits));
    }
    write(&dir.join("answers.txt"), list.as_bytes())?;
    println!(
        "wrote {n} clips ({lang}) and answers.txt to {}",
        dir.display()
    );
    Ok(())
}

fn singles(lang: &str, n: usize, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut list = String::new();
    for i in 0..n {
        let mut rng = fresh_rng()?;
        let digit = (i % 10) as u8;
        let samples = audio::single_digit(lang, digit, &mut rng);
        let name = format!("{i:05}.wav");
        write(&dir.join(&name), &audio::wav_8bit(&samples, 0.97))?;
        list.push_str(&format!("{name} {digit}\n"));
    }
    write(&dir.join("answers.txt"), list.as_bytes())?;
    println!(
        "wrote {n} single digits ({lang}) and answers.txt to {}",
        dir.display()
    );
    Ok(())
}

fn voices(dir: &Path) -> Result<(), String> {
    let mut count = 0;
    for &lang in audio::voice_languages() {
        let sub = dir.join(lang);
        std::fs::create_dir_all(&sub).map_err(|e| format!("{}: {e}", sub.display()))?;
        for (v, name) in audio::voice_names(lang).iter().enumerate() {
            for digit in 0..10u8 {
                let wav = audio::wav_16bit(audio::recording(lang, v, digit));
                write(&sub.join(format!("{name}-{digit}.wav")), &wav)?;
                count += 1;
            }
        }
    }
    println!(
        "wrote {count} recordings ({} Hz) to {}",
        audio::SAMPLE_RATE,
        dir.display()
    );
    Ok(())
}

fn speed(n: usize) -> Result<(), String> {
    let start = Instant::now();
    audio::warm_up();
    println!(
        "warm-up (decode and analyse every voice, once per process): {:.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    let (mut total, mut max, mut secs_total) = (0usize, 0usize, 0f64);
    let start = Instant::now();
    for _ in 0..n {
        let clip = make(Kind::Mixed(Mix::FULL), "en")?;
        total += clip.wav.len();
        max = max.max(clip.wav.len());
        secs_total += (clip.wav.len() - 44) as f64 / f64::from(audio::SAMPLE_RATE);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} clips on one thread: {:.0} clips/s ({:.2} ms each)",
        n as f64 / secs,
        secs * 1000.0 / n as f64
    );
    println!(
        "WAV bytes mean {} max {}; duration mean {:.2} s",
        total / n,
        max,
        secs_total / n as f64
    );
    Ok(())
}

fn sample(lang: &str, out: &Path) -> Result<(), String> {
    let clip = make(Kind::Mixed(Mix::FULL), lang)?;
    write(out, &clip.wav)?;
    println!("{}", clip.digits);
    Ok(())
}

/// Power per 50 ms frame.
fn frame_power(x: &[f32]) -> Vec<f32> {
    x.chunks(400)
        .map(|c| c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32)
        .collect()
}

fn decibels(p: f32) -> f32 {
    10.0 * p.max(1e-12).log10()
}

fn levels(lang: &str, n: usize, mix: Mix) -> Result<(), String> {
    let (mut sbr, mut snr, mut worse, mut frames) = (0f64, 0f64, 0usize, 0usize);
    for i in 0..n {
        let (digits, [speech, babble, noise]) = audio::stems(lang, mix, &mut fresh_rng()?);
        let (ps, pb, pn) = (
            frame_power(&speech),
            frame_power(&babble),
            frame_power(&noise),
        );
        let loudest = ps.iter().copied().fold(0f32, f32::max);
        // Frames where a digit is being spoken: within 20 dB of the loudest.
        let active: Vec<usize> = (0..ps.len()).filter(|&k| ps[k] > loudest * 0.01).collect();
        let mean =
            |p: &[f32]| active.iter().map(|&k| p[k]).sum::<f32>() / active.len().max(1) as f32;
        sbr += f64::from(decibels(mean(&ps)) - decibels(mean(&pb)));
        snr += f64::from(decibels(mean(&ps)) - decibels(mean(&pn)));
        worse += active.iter().filter(|&&k| pb[k] + pn[k] > ps[k]).count();
        frames += active.len();
        if i == 0 {
            println!("clip 0: {digits}; 50 ms frames, dB (S speech, B babble, N noise), # = louder than the rest");
            for k in 0..ps.len() {
                let (s, b, nn) = (decibels(ps[k]), decibels(pb[k]), decibels(pn[k]));
                let bar = |d: f32| ((d + 60.0).max(0.0) / 2.0) as usize;
                let mark = if ps[k] > pb[k] + pn[k] { '#' } else { ' ' };
                println!(
                    "{:5.2}s S{s:6.1} B{b:6.1} N{nn:6.1} {mark} |{:<30}|{:<30}|",
                    k as f32 * 0.05,
                    "=".repeat(bar(s).min(30)),
                    "-".repeat(bar(b).min(30))
                );
            }
        }
    }
    println!(
        "{n} clips ({lang}): while a digit is spoken, speech is {:.1} dB above the babble and {:.1} dB above the noise; \
         babble+noise louder than the speech in {:.1}% of those 50 ms frames",
        sbr / n as f64,
        snr / n as f64,
        100.0 * worse as f64 / frames.max(1) as f64
    );
    Ok(())
}
