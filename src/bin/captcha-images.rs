//! Samples, OCR material and speed figures for the text captcha.
//!
//! ```text
//! cargo run --release --no-default-features --features tools --bin captcha-images -- sheet OUT.png
//! cargo run --release --no-default-features --features tools --bin captcha-images -- dump HARDNESS N DIR
//! cargo run --release --no-default-features --features tools --bin captcha-images -- blind N READERS DIR
//! cargo run --release --no-default-features --features tools --bin captcha-images -- speed [N]
//! ```
//!
//! * `sheet OUT.png [HARDNESS]` — a dozen fresh captchas per hardness (or only the one given)
//!   on one greyscale sheet, each group labelled with its hardness, each image with its
//!   answer underneath.
//! * `dump HARDNESS N DIR` — N fresh PNGs (`DIR/00000.png` …) and `DIR/answers.txt` with one
//!   `file answer` line per image.
//! * `blind N READERS DIR` — material for blind reads by people (or stand-ins) who never see
//!   the answers: per hardness, N fresh images at the size a desktop shows them (the PNG as
//!   served) and N more at the size a 390-pixel phone shows them (scaled to the 316 CSS
//!   pixels the page leaves it, at one device pixel per CSS pixel: the smallest a phone
//!   draws it). Files get random names (`DIR/img/….png`), and are dealt in a random order
//!   into READERS lists `DIR/batch-K.txt` (`path<TAB>6 to 8`: each image with the length
//!   range the page states). The answers go to `DIR/key.tsv`, which readers must
//!   not open; `scripts/blind-reads score DIR` compares their readings with it.
//! * `normalize` — each line of standard input as the module reads a typed answer (case
//!   folded, spaces removed, look-alikes replaced), or the line upper-cased without spaces
//!   if the module would refuse it; for scoring blind reads.
//! * `speed [N]` — N images per hardness (default 2000) on one thread, seeding a ChaCha20 RNG
//!   from the OS per image as the module does; prints images per second and PNG sizes.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use captchaify::challenge::image::{answer_lengths, generate, normalize_answer, CaptchaImage};
use captchaify::policy::Hardness;

const ALL: [Hardness; 3] = [Hardness::EASY, Hardness::NORMAL, Hardness::HARD];
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const LABEL_FONT: &[u8] = include_bytes!("../challenge/fonts/DejaVuSans-Bold.ttf");

fn fresh_rng() -> Result<ChaCha20Rng, String> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| format!("getrandom: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

fn one(hardness: Hardness) -> Result<CaptchaImage, String> {
    Ok(generate(hardness, &mut fresh_rng()?))
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: captcha-images sheet OUT.png [HARDNESS]\n       captcha-images dump HARDNESS N DIR\n       captcha-images blind N READERS DIR\n       captcha-images normalize\n       captcha-images speed [N]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["sheet", out] => sheet(Path::new(out), &ALL),
        ["sheet", out, hardness] => match hardness.parse::<Hardness>() {
            Ok(h) => sheet(Path::new(out), &[h]),
            _ => return usage(),
        },
        ["dump", h, n, dir] => match (h.parse::<Hardness>(), n.parse::<usize>()) {
            (Ok(h), Ok(n)) => dump(h, n, Path::new(dir)),
            _ => return usage(),
        },
        ["blind", n, readers, dir] => match (n.parse::<usize>(), readers.parse::<usize>()) {
            (Ok(n), Ok(r)) if n > 0 && r > 0 => blind(n, r, Path::new(dir)),
            _ => return usage(),
        },
        ["normalize"] => normalize(),
        ["speed"] => speed(2000),
        ["speed", n] => match n.parse::<usize>() {
            Ok(n) if n > 0 => speed(n),
            _ => return usage(),
        },
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("captcha-images: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dump(hardness: Hardness, n: usize, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut list = String::new();
    for i in 0..n {
        let c = one(hardness)?;
        let name = format!("{i:05}.png");
        let path = dir.join(&name);
        std::fs::write(&path, &c.png).map_err(|e| format!("{}: {e}", path.display()))?;
        list.push_str(&format!("{name} {}\n", c.answer));
    }
    let path = dir.join("answers.txt");
    std::fs::write(&path, list).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "wrote {n} captchas of hardness {hardness} and answers.txt to {}",
        dir.display()
    );
    Ok(())
}

fn normalize() -> Result<(), String> {
    let mut out = String::new();
    for line in std::io::stdin().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let refused = || line.split_whitespace().collect::<String>().to_uppercase();
        out.push_str(&normalize_answer(&line).unwrap_or_else(refused));
        out.push('\n');
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| format!("stdout: {e}"))
}

/// The width the captcha page leaves the image on a 390-pixel-wide phone: the viewport less
/// the body's padding (2 × 16), the card's padding (2 × 20) and its border (2 × 1).
const PHONE_CSS_WIDTH: u32 = 390 - 32 - 40 - 2;

fn blind(n: usize, readers: usize, dir: &Path) -> Result<(), String> {
    let img_dir = dir.join("img");
    if dir.join("key.tsv").exists() {
        return Err(format!(
            "{} already holds a run; pick a new directory",
            dir.display()
        ));
    }
    std::fs::create_dir_all(&img_dir).map_err(|e| format!("{}: {e}", img_dir.display()))?;
    let mut rng = fresh_rng()?;
    let mut key = String::from("id\thardness\tsize\tshown_width\tanswer\n");
    let mut ids = Vec::new();
    for hardness in ALL {
        for size in ["desktop", "phone"] {
            for _ in 0..n {
                let c = one(hardness)?;
                let id = format!("{:08x}", rng.gen::<u32>());
                let path = img_dir.join(format!("{id}.png"));
                let shown = if size == "phone" && c.width > PHONE_CSS_WIDTH {
                    let img = image::load_from_memory_with_format(&c.png, image::ImageFormat::Png)
                        .map_err(|e| format!("decode: {e}"))?
                        .to_luma8();
                    let h = (c.height * PHONE_CSS_WIDTH + c.width / 2) / c.width;
                    let small = image::imageops::resize(
                        &img,
                        PHONE_CSS_WIDTH,
                        h,
                        image::imageops::FilterType::CatmullRom,
                    );
                    small
                        .save(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    PHONE_CSS_WIDTH
                } else {
                    std::fs::write(&path, &c.png)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    c.width
                };
                key.push_str(&format!(
                    "{id}\t{hardness}\t{size}\t{shown}\t{}\n",
                    c.answer
                ));
                ids.push((id, hardness));
            }
        }
    }
    ids.shuffle(&mut rng);
    for r in 0..readers {
        let list: String = ids
            .iter()
            .skip(r)
            .step_by(readers)
            .map(|(id, hardness)| {
                // What the page tells the reader: "Type the 6 to 8 characters you see".
                let (lo, hi) = answer_lengths(*hardness);
                format!(
                    "{}\t{lo} to {hi}\n",
                    img_dir.join(format!("{id}.png")).display()
                )
            })
            .collect();
        let path = dir.join(format!("batch-{}.txt", r + 1));
        std::fs::write(&path, list).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let path = dir.join("key.tsv");
    std::fs::write(&path, key).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "wrote {} images ({n} per hardness and size) in {readers} batches to {}",
        ids.len(),
        dir.display()
    );
    Ok(())
}

fn speed(n: usize) -> Result<(), String> {
    // The first image also parses the fonts and builds their distance fields (once per
    // process); it is timed separately.
    let start = Instant::now();
    let _ = one(Hardness::NORMAL)?;
    println!(
        "first image (includes the one-time font setup): {:.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    let mut all_images = 0usize;
    let mut all_secs = 0.0f64;
    println!("hardness  images  images/s  png bytes avg / min / max");
    for hardness in ALL {
        let (mut total, mut min, mut max) = (0usize, usize::MAX, 0usize);
        let start = Instant::now();
        for _ in 0..n {
            let c = one(hardness)?;
            total += c.png.len();
            min = min.min(c.png.len());
            max = max.max(c.png.len());
        }
        let secs = start.elapsed().as_secs_f64();
        all_images += n;
        all_secs += secs;
        println!(
            "{hardness:>8}  {n:>6}  {:>8.0}  {} / {min} / {max}",
            n as f64 / secs,
            total / n
        );
    }
    println!(
        "all       {all_images:>6}  {:>8.0}  (one thread)",
        all_images as f64 / all_secs
    );
    std::io::stdout().flush().ok();
    Ok(())
}

/// A greyscale canvas for the sheet.
struct Sheet {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Sheet {
    fn blit(&mut self, x0: usize, y0: usize, w: usize, h: usize, src: &[u8]) {
        for y in 0..h {
            for x in 0..w {
                if let (Some(&v), Some(d)) = (
                    src.get(y * w + x),
                    self.px.get_mut((y0 + y) * self.w + x0 + x),
                ) {
                    if x0 + x < self.w {
                        *d = v;
                    }
                }
            }
        }
    }

    fn text(&mut self, font: &fontdue::Font, size: f32, x0: usize, baseline: usize, s: &str) {
        let mut pen = x0 as f32;
        for ch in s.chars() {
            let (m, cov) = font.rasterize(ch, size);
            let left = (pen + m.xmin as f32).round() as isize;
            let top = baseline as isize - m.height as isize - m.ymin as isize;
            for y in 0..m.height {
                for x in 0..m.width {
                    let (px, py) = (left + x as isize, top + y as isize);
                    if px < 0 || py < 0 || px as usize >= self.w || py as usize >= self.h {
                        continue;
                    }
                    let a = cov.get(y * m.width + x).copied().unwrap_or(0) as u32;
                    if let Some(d) = self.px.get_mut(py as usize * self.w + px as usize) {
                        *d = ((*d as u32 * (255 - a) + 20 * a) / 255) as u8;
                    }
                }
            }
            pen += m.advance_width;
        }
    }
}

fn sheet(out: &Path, levels: &[Hardness]) -> Result<(), String> {
    let font = fontdue::Font::from_bytes(LABEL_FONT, fontdue::FontSettings::default())
        .map_err(|e| format!("label font: {e}"))?;
    let (cols, rows, gap, cell_w, img_h, answer_h, label_h) = (2, 6, 14, 472, 100, 22, 40);
    let cell_h = img_h + answer_h + gap;
    let w = cols * (cell_w + gap) + gap;
    let h = levels.len() * (label_h + rows * cell_h) + gap;
    let mut s = Sheet {
        w,
        h,
        px: vec![236; w * h],
    };
    for (k, &hardness) in levels.iter().enumerate() {
        let top = k * (label_h + rows * cell_h);
        let (lo, hi) = answer_lengths(hardness);
        s.text(
            &font,
            22.0,
            gap,
            top + label_h - 10,
            &format!("hardness {hardness}  ({lo}\u{2013}{hi} characters)"),
        );
        for i in 0..cols * rows {
            let c = one(hardness)?;
            let img = image::load_from_memory_with_format(&c.png, image::ImageFormat::Png)
                .map_err(|e| format!("decode: {e}"))?
                .to_luma8();
            let (iw, ih) = (img.width() as usize, img.height() as usize);
            let x0 = gap + (i % cols) * (cell_w + gap);
            let y0 = top + label_h + (i / cols) * cell_h;
            s.blit(x0, y0, iw, ih, img.as_raw());
            s.text(&font, 15.0, x0 + 2, y0 + ih + 17, &c.answer);
        }
    }
    image::save_buffer_with_format(
        out,
        &s.px,
        w as u32,
        h as u32,
        image::ExtendedColorType::L8,
        image::ImageFormat::Png,
    )
    .map_err(|e| format!("{}: {e}", out.display()))?;
    println!("wrote {} ({w}x{h})", out.display());
    Ok(())
}
