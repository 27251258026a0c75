//! Builds the picture sets of `pictures/` (the `emoji` and `animals` captchas) from SVG
//! drawings, and contact sheets to look at them.
//!
//! ```text
//! cargo run --release --no-default-features --features picture-set --bin captcha-picture-set -- \
//!     build --selection pictures/selection.tsv --names pictures/names.tsv SOURCES... --out pictures
//! ... -- sheet --selection FILE SOURCES... --out PREFIX [--set SET]
//!
//! SOURCES: --noto DIR --noto-v1 DIR --fluent-flat DIR     (extracted @iconify-json packages)
//!          --openclipart DIR --openclipart-version VERSION  (DIR = .../share/openclipart/svg)
//! ```
//!
//! * `build` writes, under `--out`, one folder per set and motif of the selection with its
//!   pictures (`<source>-<name>.png`) and its `names.txt`, and `SOURCES.tsv` listing where each
//!   picture came from. It first removes the PNGs and `names.txt` of every motif folder of the
//!   sets it writes (and the folders left empty), so a picture dropped from the selection goes;
//!   a set's hand-written `confusable.txt` stays, and is checked to name only motifs it has.
//! * `sheet` draws the selection on contact sheets, `PREFIX-1.png`, `PREFIX-2.png`, ..., one
//!   row per motif with its name, each picture on a checkerboard that shows its transparency.
//!
//! The selection is a TSV file, `set<TAB>motif<TAB>source<TAB>icon` (`#` starts a comment):
//! the source is `noto`, `noto-v1`, `fluent-flat` (an icon name of the package's
//! `icons.json`) or `openclipart` (a file's path under the openclipart folder). The names
//! file has the header `set motif ar de en es fr it nl pl pt ru tr zh` and one row per motif.
//!
//! Each picture is the drawing's visible part (cropped to where it is not transparent), scaled
//! so its longer side is 92 pixels and centred on a transparent 96x96 canvas: an RGBA PNG.
//! The output is deterministic: the same drawings give byte-identical files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use resvg::tiny_skia::{Pixmap, Transform};
use resvg::usvg;

/// The canvas of every picture, and the longer side of the drawing on it.
const CANVAS: u32 = 96;
const DRAWING: f32 = 92.0;
/// The size (longer side) at which a drawing is rendered to find its visible part, and the
/// alpha below which a pixel counts as empty there (faint shadows and anti-aliasing).
const PROBE: f32 = 1536.0;
const PROBE_ALPHA: u8 = 24;

/// The languages of `names.txt`, in the order the names file gives them.
const LANGUAGES: [&str; 12] = [
    "ar", "de", "en", "es", "fr", "it", "nl", "pl", "pt", "ru", "tr", "zh",
];

const LABEL_FONT: &[u8] = include_bytes!("../challenge/fonts/DejaVuSans-Bold.ttf");

/// Where drawings come from: the selection's name for it, the package it is, its licence.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Source {
    Noto,
    NotoV1,
    FluentFlat,
    OpenClipart,
}

impl Source {
    const ALL: [Source; 4] = [
        Source::Noto,
        Source::NotoV1,
        Source::FluentFlat,
        Source::OpenClipart,
    ];

    /// The name in the selection, the `--` option and the start of a picture's file name.
    fn key(self) -> &'static str {
        match self {
            Source::Noto => "noto",
            Source::NotoV1 => "noto-v1",
            Source::FluentFlat => "fluent-flat",
            Source::OpenClipart => "openclipart",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Source::Noto => "@iconify-json/noto",
            Source::NotoV1 => "@iconify-json/noto-v1",
            Source::FluentFlat => "@iconify-json/fluent-emoji-flat",
            Source::OpenClipart => "openclipart-svg",
        }
    }

    fn licence(self) -> &'static str {
        match self {
            Source::Noto | Source::NotoV1 => "Apache-2.0",
            Source::FluentFlat => "MIT",
            Source::OpenClipart => "public-domain",
        }
    }

    fn from_key(key: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// An `@iconify-json` package: its icons' bodies and the set's default box.
struct IconSet {
    version: String,
    icons: serde_json::Map<String, serde_json::Value>,
    default_box: [f64; 4],
}

impl IconSet {
    fn load(dir: &Path) -> Result<IconSet, String> {
        let read = |name: &str| -> Result<serde_json::Value, String> {
            let path = dir.join(name);
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
        };
        let package = read("package.json")?;
        let json = read("icons.json")?;
        let version = package["version"]
            .as_str()
            .ok_or("package.json: no version")?
            .to_owned();
        let num = |v: &serde_json::Value, default: f64| v.as_f64().unwrap_or(default);
        let default_box = [
            num(&json["left"], 0.0),
            num(&json["top"], 0.0),
            num(&json["width"], 16.0),
            num(&json["height"], 16.0),
        ];
        let icons = json["icons"]
            .as_object()
            .ok_or("icons.json: no icons")?
            .clone();
        Ok(IconSet {
            version,
            icons,
            default_box,
        })
    }

    /// The icon as a standalone SVG document.
    fn svg(&self, name: &str) -> Result<String, String> {
        let icon = self
            .icons
            .get(name)
            .ok_or_else(|| format!("no icon {name:?}"))?;
        let body = icon["body"]
            .as_str()
            .ok_or_else(|| format!("icon {name:?} has no body"))?;
        let [l, t, w, h] = self.default_box;
        let num = |key: &str, default: f64| icon[key].as_f64().unwrap_or(default);
        let (l, t, w, h) = (
            num("left", l),
            num("top", t),
            num("width", w),
            num("height", h),
        );
        Ok(format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="{l} {t} {w} {h}">{body}</svg>"#
        ))
    }
}

/// The source folders and versions the command line gave.
#[derive(Default)]
struct Sources {
    iconify: BTreeMap<Source, IconSet>,
    openclipart: Option<(PathBuf, String)>,
}

impl Sources {
    fn version(&self, source: Source) -> Result<&str, String> {
        match source {
            Source::OpenClipart => self.openclipart.as_ref().map(|(_, v)| v.as_str()),
            _ => self.iconify.get(&source).map(|set| set.version.as_str()),
        }
        .ok_or_else(|| {
            format!(
                "the selection uses {} but --{} was not given",
                source.key(),
                source.key()
            )
        })
    }

    fn svg(&self, source: Source, name: &str) -> Result<Vec<u8>, String> {
        match source {
            Source::OpenClipart => {
                let (dir, _) = self
                    .openclipart
                    .as_ref()
                    .ok_or("--openclipart was not given")?;
                let path = dir.join(name);
                fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
            }
            _ => {
                let set = self
                    .iconify
                    .get(&source)
                    .ok_or_else(|| format!("--{} was not given", source.key()))?;
                Ok(set.svg(name)?.into_bytes())
            }
        }
    }
}

/// One line of the selection.
struct Pick {
    set: String,
    motif: String,
    source: Source,
    name: String,
}

impl Pick {
    /// The picture's file name: the source, then the icon's name or the drawing's file stem,
    /// lower-cased with every run of other characters than `[a-z0-9]` made one `-`.
    fn file_name(&self) -> String {
        let stem = self.name.rsplit('/').next().unwrap_or(&self.name);
        let stem = stem.strip_suffix(".svg").unwrap_or(stem);
        let mut slug = String::new();
        for c in stem.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        format!("{}-{}.png", self.source.key(), slug.trim_end_matches('-'))
    }
}

fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The lines of a TSV file that are not blank or comments, with their line numbers.
fn tsv_rows(path: &Path) -> Result<Vec<(usize, Vec<String>)>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|(i, line)| (i + 1, line.split('\t').map(str::to_owned).collect()))
        .collect())
}

fn read_selection(path: &Path) -> Result<Vec<Pick>, String> {
    let mut picks = Vec::new();
    let mut files = BTreeSet::new();
    for (line, cols) in tsv_rows(path)? {
        let at = || format!("{}:{line}", path.display());
        let [set, motif, source, name] = <[String; 4]>::try_from(cols)
            .map_err(|_| format!("{}: want set<TAB>motif<TAB>source<TAB>icon", at()))?;
        if !is_key(&set) || !is_key(&motif) {
            return Err(format!("{}: set and motif must be [a-z0-9-]", at()));
        }
        let source = Source::from_key(&source)
            .ok_or_else(|| format!("{}: unknown source {source:?}", at()))?;
        let pick = Pick {
            set,
            motif,
            source,
            name,
        };
        if !files.insert((pick.set.clone(), pick.motif.clone(), pick.file_name())) {
            return Err(format!(
                "{}: {} twice in {}/{}",
                at(),
                pick.file_name(),
                pick.set,
                pick.motif
            ));
        }
        picks.push(pick);
    }
    Ok(picks)
}

/// `names.txt` of each (set, motif).
fn read_names(path: &Path) -> Result<BTreeMap<(String, String), String>, String> {
    let rows = tsv_rows(path)?;
    let header: Vec<&str> = ["set", "motif"].into_iter().chain(LANGUAGES).collect();
    match rows.first() {
        Some((_, cols)) if *cols == header => {}
        _ => {
            return Err(format!(
                "{}: the first line must be `{}`",
                path.display(),
                header.join("\t")
            ))
        }
    }
    let mut names = BTreeMap::new();
    for (line, cols) in rows.into_iter().skip(1) {
        let at = format!("{}:{line}", path.display());
        if cols.len() != header.len() {
            return Err(format!("{at}: want {} columns", header.len()));
        }
        let mut text = String::new();
        for (lang, name) in LANGUAGES.iter().zip(&cols[2..]) {
            if name.is_empty() || name.trim() != name || name.contains('\n') {
                return Err(format!(
                    "{at}: the {lang} name is empty or has spaces around it"
                ));
            }
            text.push_str(&format!("{lang} {name}\n"));
        }
        if names
            .insert((cols[0].clone(), cols[1].clone()), text)
            .is_some()
        {
            return Err(format!("{at}: {}/{} twice", cols[0], cols[1]));
        }
    }
    Ok(names)
}

/// Renders a drawing: its visible part fit and centred on the canvas (see the top).
fn render(svg: &[u8]) -> Result<Pixmap, String> {
    let tree = usvg::Tree::from_data(svg, &usvg::Options::default()).map_err(|e| e.to_string())?;
    let size = tree.size();
    let scale = PROBE / size.width().max(size.height());
    let (w, h) = (
        (size.width() * scale).ceil() as u32,
        (size.height() * scale).ceil() as u32,
    );
    let mut probe = Pixmap::new(w, h).ok_or("empty drawing")?;
    resvg::render(
        &tree,
        Transform::from_scale(scale, scale),
        &mut probe.as_mut(),
    );
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (i, px) in probe.pixels().iter().enumerate() {
        if px.alpha() >= PROBE_ALPHA {
            let (x, y) = (i as u32 % w, i as u32 / w);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
        }
    }
    if x0 >= x1 {
        return Err("nothing visible".into());
    }
    // The visible box in the drawing's units, then onto the canvas.
    let (bx, by) = (x0 as f32 / scale, y0 as f32 / scale);
    let (bw, bh) = ((x1 - x0) as f32 / scale, (y1 - y0) as f32 / scale);
    let fit = DRAWING / bw.max(bh);
    let (dx, dy) = (
        (CANVAS as f32 - bw * fit) / 2.0,
        (CANVAS as f32 - bh * fit) / 2.0,
    );
    let mut canvas = Pixmap::new(CANVAS, CANVAS).ok_or("canvas")?;
    let transform = Transform::from_row(fit, 0.0, 0.0, fit, dx - bx * fit, dy - by * fit);
    resvg::render(&tree, transform, &mut canvas.as_mut());
    Ok(canvas)
}

/// Straight (not premultiplied) RGBA bytes of a pixmap.
fn rgba(pixmap: &Pixmap) -> Vec<u8> {
    pixmap
        .pixels()
        .iter()
        .flat_map(|px| {
            let c = px.demultiply();
            [c.red(), c.green(), c.blue(), c.alpha()]
        })
        .collect()
}

fn encode_png(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgba).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Removes the generated files of a set's motif folders, and the folders left empty.
fn clear_set(dir: &Path) -> Result<(), String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let motif = entry.map_err(|e| e.to_string())?.path();
        if !motif.is_dir() {
            continue;
        }
        for file in fs::read_dir(&motif).map_err(|e| format!("{}: {e}", motif.display()))? {
            let file = file.map_err(|e| e.to_string())?.path();
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".png") || name == "names.txt" {
                fs::remove_file(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            }
        }
        let _ = fs::remove_dir(&motif); // only if empty
    }
    Ok(())
}

/// Checks that a set's `confusable.txt` names only motifs the set has.
fn check_confusable(set_dir: &Path, motifs: &BTreeSet<&str>) -> Result<(), String> {
    let path = set_dir.join("confusable.txt");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(());
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for motif in line.split_whitespace() {
            if !motifs.contains(motif) {
                return Err(format!(
                    "{}:{}: no motif {motif:?} in this set",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    Ok(())
}

fn build(
    picks: &[Pick],
    names: &BTreeMap<(String, String), String>,
    sources: &Sources,
    out: &Path,
) -> Result<(), String> {
    let mut motifs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for pick in picks {
        motifs.entry(&pick.set).or_default().insert(&pick.motif);
    }
    for (set, set_motifs) in &motifs {
        for motif in set_motifs {
            if !names.contains_key(&(set.to_string(), motif.to_string())) {
                return Err(format!("no names for {set}/{motif}"));
            }
        }
    }
    for key in names.keys() {
        if !motifs
            .get(key.0.as_str())
            .is_some_and(|m| m.contains(key.1.as_str()))
        {
            return Err(format!(
                "names for {}/{}, which the selection does not have",
                key.0, key.1
            ));
        }
    }
    for set in motifs.keys() {
        clear_set(&out.join(set))?;
    }
    let mut listing = BTreeMap::new();
    for pick in picks {
        let dir = out.join(&pick.set).join(&pick.motif);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let what = format!("{} {}", pick.source.key(), pick.name);
        let canvas =
            render(&sources.svg(pick.source, &pick.name)?).map_err(|e| format!("{what}: {e}"))?;
        write(
            &dir.join(pick.file_name()),
            &encode_png(CANVAS, CANVAS, &rgba(&canvas))?,
        )?;
        let path = format!("{}/{}/{}", pick.set, pick.motif, pick.file_name());
        let package = format!(
            "{}@{}",
            pick.source.package(),
            sources.version(pick.source)?
        );
        listing.insert(
            path.clone(),
            format!(
                "{path}\t{package}\t{}\t{}\n",
                pick.name,
                pick.source.licence()
            ),
        );
    }
    for ((set, motif), text) in names {
        write(
            &out.join(set).join(motif).join("names.txt"),
            text.as_bytes(),
        )?;
    }
    for (set, set_motifs) in &motifs {
        check_confusable(&out.join(set), set_motifs)?;
        eprintln!(
            "{set}: {} motifs, {} pictures",
            set_motifs.len(),
            picks.iter().filter(|p| p.set == *set).count()
        );
    }
    let mut tsv = String::from("# path\tpackage@version\toriginal\tlicence\n");
    tsv.extend(listing.into_values());
    write(&out.join("SOURCES.tsv"), tsv.as_bytes())
}

/// Contact sheets: a row per motif (wrapped after `COLUMNS` pictures), `ROWS` rows a sheet.
fn sheet(picks: &[Pick], sources: &Sources, prefix: &str) -> Result<(), String> {
    const COLUMNS: usize = 8;
    const ROWS: usize = 10;
    const LABEL_W: usize = 190;
    const GAP: usize = 6;
    let font = fontdue::Font::from_bytes(LABEL_FONT, fontdue::FontSettings::default())?;
    // Rows: (label, pictures), a motif with more than COLUMNS pictures taking several.
    let mut rows: Vec<(String, Vec<&Pick>)> = Vec::new();
    for pick in picks {
        let label = format!("{}/{}", pick.set, pick.motif);
        match rows.last_mut() {
            Some((l, row)) if *l == label && row.len() < COLUMNS => row.push(pick),
            _ => rows.push((label, vec![pick])),
        }
    }
    let cell = CANVAS as usize + GAP;
    let (width, height) = (LABEL_W + COLUMNS * cell, ROWS * cell);
    for (page, chunk) in rows.chunks(ROWS).enumerate() {
        let mut img = vec![255u8; width * height * 4];
        for (r, (label, row)) in chunk.iter().enumerate() {
            let y0 = r * cell;
            draw_text(&mut img, width, &font, 5, y0 + 20, label);
            for (c, pick) in row.iter().enumerate() {
                let x0 = LABEL_W + c * cell;
                // A sheet is for looking: a drawing that does not render shows as a red tile.
                let px = match render(&sources.svg(pick.source, &pick.name)?) {
                    Ok(canvas) => rgba(&canvas),
                    Err(e) => {
                        eprintln!("{} {}: {e}", pick.source.key(), pick.name);
                        [255, 0, 0, 96].repeat((CANVAS * CANVAS) as usize)
                    }
                };
                for y in 0..CANVAS as usize {
                    for x in 0..CANVAS as usize {
                        let back = if (x / 8 + y / 8) % 2 == 0 {
                            255.0
                        } else {
                            215.0
                        };
                        let s = &px[(y * CANVAS as usize + x) * 4..][..4];
                        let a = s[3] as f32 / 255.0;
                        let d = &mut img[((y0 + y) * width + x0 + x) * 4..][..4];
                        for k in 0..3 {
                            d[k] = (s[k] as f32 * a + back * (1.0 - a)).round() as u8;
                        }
                    }
                }
                // The file names under the motif's, as many as the row has room for.
                let baseline = y0 + 36 + 14 * c;
                if baseline + 14 <= y0 + cell {
                    let name = pick.file_name();
                    let name = if baseline + 28 > y0 + cell && c + 1 < row.len() {
                        format!("... {} in this row", row.len())
                    } else {
                        name.chars().take(26).collect()
                    };
                    draw_text(&mut img, width, &font, 5, baseline, &name);
                }
            }
        }
        let path = format!("{prefix}-{}.png", page + 1);
        write(
            Path::new(&path),
            &encode_png(width as u32, height as u32, &img)?,
        )?;
        eprintln!("{path}");
    }
    Ok(())
}

fn draw_text(
    img: &mut [u8],
    width: usize,
    font: &fontdue::Font,
    x0: usize,
    baseline: usize,
    s: &str,
) {
    let size = 11.0;
    let mut pen = x0 as f32;
    for ch in s.chars() {
        let (m, cov) = font.rasterize(ch, size);
        let top = baseline as i32 - m.height as i32 - m.ymin;
        for y in 0..m.height {
            for x in 0..m.width {
                let (px, py) = (pen as i32 + m.xmin + x as i32, top + y as i32);
                if px < 0
                    || py < 0
                    || px as usize >= width
                    || (py as usize + 1) * width * 4 > img.len()
                {
                    continue;
                }
                let i = (py as usize * width + px as usize) * 4;
                let v = 255 - cov[y * m.width + x];
                for k in 0..3 {
                    img[i + k] = img[i + k].min(v);
                }
            }
        }
        pen += m.advance_width;
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let command = args.first().map(String::as_str).ok_or("no command")?;
    let mut opts: BTreeMap<&str, &str> = BTreeMap::new();
    for pair in args[1..].chunks(2) {
        let [key, value] = pair else {
            return Err(format!("{} wants a value", pair[0]));
        };
        let key = key
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected {key:?}"))?;
        opts.insert(key, value);
    }
    let mut take = |key: &str| opts.remove(key);
    let selection = take("selection").ok_or("--selection is required")?;
    let out = take("out").ok_or("--out is required")?;
    let mut sources = Sources::default();
    for source in Source::ALL {
        let Some(dir) = take(source.key()) else {
            continue;
        };
        if source == Source::OpenClipart {
            let version =
                take("openclipart-version").ok_or("--openclipart wants --openclipart-version")?;
            sources.openclipart = Some((PathBuf::from(dir), version.to_owned()));
        } else {
            let set =
                IconSet::load(Path::new(dir)).map_err(|e| format!("--{}: {e}", source.key()))?;
            sources.iconify.insert(source, set);
        }
    }
    let mut picks = read_selection(Path::new(selection))?;
    for pick in &picks {
        sources.version(pick.source)?;
    }
    match command {
        "build" => {
            let names = read_names(Path::new(take("names").ok_or("--names is required")?))?;
            if let Some(key) = opts.keys().next() {
                return Err(format!("unknown option --{key}"));
            }
            build(&picks, &names, &sources, Path::new(out))
        }
        "sheet" => {
            if let Some(set) = take("set") {
                picks.retain(|p| p.set == set);
            }
            if let Some(key) = opts.keys().next() {
                return Err(format!("unknown option --{key}"));
            }
            sheet(&picks, &sources, out)
        }
        _ => Err(format!("unknown command {command:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("captcha-picture-set: {e}");
            eprintln!(
                "usage: captcha-picture-set build --selection FILE --names FILE SOURCES --out DIR\n       captcha-picture-set sheet --selection FILE SOURCES --out PREFIX [--set SET]\n       SOURCES: --noto DIR --noto-v1 DIR --fluent-flat DIR --openclipart DIR --openclipart-version V"
            );
            ExitCode::FAILURE
        }
    }
}
