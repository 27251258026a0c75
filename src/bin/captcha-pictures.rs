//! Samples, blind-solve material and speed figures for the picture captchas.
//!
//! ```text
//! cargo run --release --no-default-features --features tools --bin captcha-pictures -- speed [N] [SET]
//! cargo run --release --no-default-features --features tools --bin captcha-pictures -- sheet OUT.png [SET]
//! cargo run --release --no-default-features --features tools --bin captcha-pictures -- dump N DIR HARDNESS [SET]
//! cargo run --release --no-default-features --features tools --bin captcha-pictures -- blind N DIR [SET]
//! ```
//!
//! `SET` is `emoji`, `animals` (the shipped sets, the default is both) or a folder in the
//! layout of `pictures/README.md`.
//!
//! * `speed [N] [SET]` — N complete picture pages per hardness (default 2000) on one thread,
//!   seeded from the OS per page as the module does, rendered with the built-in templates;
//!   prints pages per second and page sizes. Also the tiles of a 3 × 3 grid alone (9 tiles
//!   and the example), the issue's reference shape.
//! * `sheet OUT.png [SET]` — a few fresh grids per hardness on one sheet, each with its
//!   prompt's motif and its example, matching tiles framed: for the README.
//! * `dump N DIR HARDNESS [SET]` — N fresh challenges of the hardness for attack
//!   experiments: `DIR/NNNNN/example.png`, `DIR/NNNNN/01.png` … (the tiles in grid order)
//!   and `DIR/index.tsv` with one `NNNNN<TAB>set<TAB>motif key<TAB>columns<TAB>rows<TAB>answer`
//!   line per challenge (an attacker who owns the code knows all but the answer).
//! * `blind N DIR [SET]` — material for blind solves: N fresh challenges (alternating
//!   hardness 1 and 2) as `DIR/NNN.png`, each a sheet of the example and the numbered tiles
//!   as a 320-pixel phone shows them, with `DIR/NNN.txt` holding the prompt in English; the
//!   answers go to `DIR/key.tsv` (with the picture each tile was drawn from), which solvers
//!   must not open.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use captchaify::challenge::compose::Order;
use captchaify::challenge::picture::draw::{Style, TILE};
use captchaify::challenge::picture::grid::{self, Grid};
use captchaify::challenge::picture::PictureSet;
use captchaify::challenge::token::{Budget, ChallengeTerms, ClientBinding, Delivery, Secrets};
use captchaify::challenge::ChallengeKind;
use captchaify::pages::PageSet;
use captchaify::policy::Hardness;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn fresh_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).expect("the OS gives random bytes");
    seed
}

/// The sets named on the command line, with the kind whose pages they are drawn for.
fn sets(name: Option<&str>) -> Result<Vec<(String, ChallengeKind, Arc<PictureSet>)>, String> {
    Ok(match name {
        None => vec![
            (
                "emoji".into(),
                ChallengeKind::Emoji,
                PictureSet::emoji().clone(),
            ),
            (
                "animals".into(),
                ChallengeKind::Animals,
                PictureSet::animals().clone(),
            ),
        ],
        Some("emoji") => vec![(
            "emoji".into(),
            ChallengeKind::Emoji,
            PictureSet::emoji().clone(),
        )],
        Some("animals") => vec![(
            "animals".into(),
            ChallengeKind::Animals,
            PictureSet::animals().clone(),
        )],
        Some(dir) => vec![(
            dir.into(),
            ChallengeKind::Emoji,
            Arc::new(PictureSet::load_dir(Path::new(dir)).map_err(|e| e.to_string())?),
        )],
    })
}

fn order(kind: ChallengeKind, hardness: Hardness, set: &Arc<PictureSet>) -> Order {
    Order {
        terms: ChallengeTerms {
            kind,
            hardness,
            pass_age: 3600,
            delivery: Delivery::Cookie,
            budget: Budget::default(),
            return_path: "/".into(),
        },
        binding: ClientBinding::new("192.0.2.1".parse().unwrap(), b"Mozilla/5.0"),
        expires: 4_000_000_000,
        seed: fresh_seed(),
        shown_path: "/".into(),
        message: None,
        language: 0,
        chooser_href: "/.captchaify/language?return=%2F".into(),
        form_action: "/.captchaify/verify".into(),
        hints: None,
        pictures: Some(set.clone()),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn speed(n: usize, set_name: Option<&str>) -> Result<(), String> {
    let secrets = Secrets::new(fresh_seed().to_vec(), None).ok_or("no secret")?;
    let pages = PageSet::builtin();
    for (name, kind, set) in sets(set_name)? {
        // Warm-up: the first page renders the templates' stamps and touches every picture.
        for _ in 0..20 {
            let _ = order(kind, Hardness::NORMAL, &set).compose(&secrets, pages);
        }
        for hardness in [Hardness::EASY, Hardness::NORMAL, Hardness::HARD] {
            let mut sizes = Vec::with_capacity(n);
            let start = Instant::now();
            for _ in 0..n {
                let composed = order(kind, hardness, &set).compose(&secrets, pages);
                sizes.push(composed.page.map_or(0, |p| p.body.len()) as f64);
            }
            let seconds = start.elapsed().as_secs_f64();
            let grid = Grid::for_hardness(hardness);
            let max = sizes.iter().copied().fold(0.0, f64::max);
            println!(
                "{name} hardness {hardness} ({}x{}): {:.0} pages/s, page median {:.1} kB, max {:.1} kB",
                grid.columns,
                grid.rows,
                n as f64 / seconds,
                median(&mut sizes) / 1000.0,
                max / 1000.0
            );
        }
        // The tiles of a 3 × 3 grid and its example, drawn and encoded.
        let three = Grid {
            columns: 3,
            rows: 3,
            fewest: 2,
            most: 4,
        };
        let mut rng = ChaCha20Rng::from_seed(fresh_seed());
        let mut bytes = Vec::with_capacity(n);
        let start = Instant::now();
        for _ in 0..n {
            let drawn = grid::generate(&set, three, &Style::of(kind), &mut rng);
            bytes.push(
                (drawn.example.len() + drawn.tiles.iter().map(Vec::len).sum::<usize>()) as f64,
            );
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "{name} 3x3 tiles alone: {:.0} grids/s ({:.0} µs a tile), {:.1} kB of PNG a grid (median)",
            n as f64 / seconds,
            seconds * 1e6 / (n * 10) as f64,
            median(&mut bytes) / 1000.0
        );
    }
    Ok(())
}

/// A sheet: rows of grids, each grid = example + tiles, laid out as RGB.
struct Sheet {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Sheet {
    fn new(width: usize, height: usize) -> Sheet {
        Sheet {
            width,
            height,
            rgb: vec![255; width * height * 3],
        }
    }

    fn paste_png(&mut self, png: &[u8], x: usize, y: usize) {
        let Ok(img) = image::load_from_memory(png) else {
            return;
        };
        let img = img.to_rgb8();
        for (px, py, pixel) in img.enumerate_pixels() {
            let (sx, sy) = (x + px as usize, y + py as usize);
            if sx < self.width && sy < self.height {
                let at = (sy * self.width + sx) * 3;
                self.rgb[at..at + 3].copy_from_slice(&pixel.0);
            }
        }
    }

    fn frame(&mut self, x: usize, y: usize, size: usize, colour: [u8; 3]) {
        for i in 0..size + 4 {
            for (fx, fy) in [
                (x + i, y),
                (x + i, y + 1),
                (x + i, y + size + 2),
                (x + i, y + size + 3),
                (x, y + i),
                (x + 1, y + i),
                (x + size + 2, y + i),
                (x + size + 3, y + i),
            ] {
                if fx < self.width && fy < self.height {
                    let at = (fy * self.width + fx) * 3;
                    self.rgb[at..at + 3].copy_from_slice(&colour);
                }
            }
        }
    }

    fn save(&self, path: &Path) -> Result<(), String> {
        image::save_buffer(
            path,
            &self.rgb,
            self.width as u32,
            self.height as u32,
            image::ColorType::Rgb8,
        )
        .map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Lays out a challenge at (x, y): the example on the left, the grid to its right, matching
/// tiles framed in green when `show_answer`. Returns the width used.
fn lay_out(
    sheet: &mut Sheet,
    drawn: &grid::PictureChallenge,
    x: usize,
    y: usize,
    show_answer: bool,
) -> usize {
    let step = TILE + 8;
    sheet.paste_png(&drawn.example, x + 2, y + 2);
    let matching: Vec<usize> = drawn
        .answer
        .split(',')
        .filter_map(|p| p.parse().ok())
        .collect();
    let left = x + step + 16;
    for (i, png) in drawn.tiles.iter().enumerate() {
        let (col, row) = (i % drawn.grid.columns, i / drawn.grid.columns);
        let (tx, ty) = (left + col * step, y + row * step);
        sheet.paste_png(png, tx + 2, ty + 2);
        if show_answer && matching.contains(&(i + 1)) {
            sheet.frame(tx, ty, TILE, [0, 160, 60]);
        }
    }
    step + 16 + drawn.grid.columns * step
}

fn sheet(out: &Path, set_name: Option<&str>) -> Result<(), String> {
    let sets = sets(set_name)?;
    let step = TILE + 8;
    let per_set = 2;
    let grids = [Hardness::EASY, Hardness::NORMAL];
    let cell_w = step + 16 + 4 * step + 24;
    let cell_h = 5 * step + 24;
    let mut sheet = Sheet::new(cell_w * per_set * grids.len(), cell_h * sets.len());
    let mut rng = ChaCha20Rng::from_seed(fresh_seed());
    for (row, (name, kind, set)) in sets.iter().enumerate() {
        let mut x = 0;
        for hardness in grids {
            for _ in 0..per_set {
                let drawn = grid::generate(
                    set,
                    Grid::for_hardness(hardness),
                    &Style::of(*kind),
                    &mut rng,
                );
                println!(
                    "{name} hardness {hardness}: \"{}\", tiles {}",
                    set.motifs[drawn.motif].name("en"),
                    drawn.answer
                );
                lay_out(&mut sheet, &drawn, x, row * cell_h, true);
                x += cell_w;
            }
        }
    }
    sheet.save(out)
}

fn dump(n: usize, dir: &Path, hardness: Hardness, set_name: Option<&str>) -> Result<(), String> {
    let sets = sets(set_name)?;
    let mut rng = ChaCha20Rng::from_seed(fresh_seed());
    let mut index = String::new();
    let grid_shape = Grid::for_hardness(hardness);
    for i in 0..n {
        let (name, kind, set) = &sets[i % sets.len()];
        let drawn = grid::generate(set, grid_shape, &Style::of(*kind), &mut rng);
        let folder = dir.join(format!("{i:05}"));
        std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
        let write = |file: &str, bytes: &[u8]| {
            std::fs::write(folder.join(file), bytes).map_err(|e| format!("{file}: {e}"))
        };
        write("example.png", &drawn.example)?;
        for (t, png) in drawn.tiles.iter().enumerate() {
            write(&format!("{:02}.png", t + 1), png)?;
        }
        index.push_str(&format!(
            "{i:05}\t{name}\t{}\t{}\t{}\t{}\n",
            set.motifs[drawn.motif].key, grid_shape.columns, grid_shape.rows, drawn.answer
        ));
    }
    std::fs::write(dir.join("index.tsv"), index).map_err(|e| e.to_string())?;
    println!("{n} challenges of hardness {hardness} in {}", dir.display());
    Ok(())
}

fn blind(n: usize, dir: &Path, set_name: Option<&str>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let sets = sets(set_name)?;
    let mut rng = ChaCha20Rng::from_seed(fresh_seed());
    let mut key = String::new();
    for i in 0..n {
        let (name, kind, set) = &sets[i % sets.len()];
        let hardness = if (i / sets.len()) % 2 == 0 {
            Hardness::EASY
        } else {
            Hardness::NORMAL
        };
        let grid_shape = Grid::for_hardness(hardness);
        let drawn = grid::generate(set, grid_shape, &Style::of(*kind), &mut rng);
        // As a 320-pixel phone shows them: 4 tiles of 72 CSS pixels a row; the tiles are
        // served at 64 and drawn at this size (one device pixel per CSS pixel).
        let step = TILE + 8;
        let mut sheet = Sheet::new(
            step + 16 + grid_shape.columns * step,
            grid_shape.rows * step,
        );
        lay_out(&mut sheet, &drawn, 0, 0, false);
        let stem = format!("{i:03}");
        sheet.save(&dir.join(format!("{stem}.png")))?;
        let prompt = format!(
            "Select every picture that shows: {}\nThe picture on the left is one example (the others are drawn differently). The tiles are numbered 1 to {} left to right, top to bottom ({} per row). Answer with the numbers of every matching tile.\n",
            set.motifs[drawn.motif].name("en"),
            grid_shape.tiles(),
            grid_shape.columns
        );
        std::fs::write(dir.join(format!("{stem}.txt")), prompt).map_err(|e| e.to_string())?;
        let sources: Vec<String> = drawn
            .plan
            .tiles
            .iter()
            .map(|&(m, p)| format!("{}/{}", set.motifs[m].key, set.motifs[m].pictures[p].name))
            .collect();
        key.push_str(&format!(
            "{stem}\t{name}\t{hardness}\t{}\t{}\t{}\n",
            set.motifs[drawn.motif].key,
            drawn.answer,
            sources.join(" ")
        ));
    }
    std::fs::write(dir.join("key.tsv"), key).map_err(|e| e.to_string())?;
    println!(
        "{n} challenges in {}; the answers are in key.tsv",
        dir.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let result = match arg(0) {
        Some("speed") => speed(arg(1).and_then(|n| n.parse().ok()).unwrap_or(2000), arg(2)),
        Some("sheet") if args.len() >= 2 => sheet(Path::new(&args[1]), arg(2)),
        Some("dump") if args.len() >= 4 => match (args[1].parse(), args[3].parse()) {
            (Ok(n), Ok(hardness)) => dump(n, Path::new(&args[2]), hardness, arg(4)),
            _ => Err("N must be a number and HARDNESS 1, 2 or 3".into()),
        },
        Some("blind") if args.len() >= 3 => match args[1].parse() {
            Ok(n) => blind(n, Path::new(&args[2]), arg(3)),
            Err(_) => Err("N must be a number".into()),
        },
        _ => {
            eprintln!(
                "usage: captcha-pictures speed [N] [SET]\n       captcha-pictures sheet OUT.png [SET]\n       captcha-pictures dump N DIR HARDNESS [SET]\n       captcha-pictures blind N DIR [SET]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("captcha-pictures: {e}");
            ExitCode::FAILURE
        }
    }
}
