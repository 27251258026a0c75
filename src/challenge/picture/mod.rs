//! The picture captchas (`captchaify_captcha_type emoji | animals`): a grid of tiles, and the
//! visitor ticks every tile that shows one motif ("Select every picture that shows: Cat").
//!
//! - [`PictureSet`]: the pictures, loaded once (the shipped sets are compiled in; an operator's
//!   `captchaify_picture_dir` is read at configuration time) and decoded to pixels then;
//! - [`grid`]: what a challenge asks (motif, tiles, the answer) for a hardness;
//! - [`draw`]: how every tile is made new (crop, scale, rotation, mirror, colour, clutter,
//!   occlusion, speckles) and encoded.
//!
//! The folder layout a set is read from is documented in `pictures/README.md`.

pub mod draw;
pub mod grid;
mod tile_png;

use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The side of the square canvas a picture is kept in, in pixels: a shipped picture is drawn
/// at this size, an operator's is scaled to fit it when the set is loaded.
pub const CANVAS: u32 = 96;

/// Fewest motifs a set needs: a grid's decoys come from motifs other than the one asked for
/// and its look-alikes.
pub const FEWEST_MOTIFS: usize = 6;

/// A picture, decoded once: premultiplied RGBA, `CANVAS` × `CANVAS`, the drawing centred on a
/// transparent background.
#[derive(Clone)]
pub struct Picture {
    pub rgba: Vec<u8>,
    /// Where the drawing is: the smallest box (x0, y0, x1, y1), ends excluded, that holds
    /// every pixel with any opacity; tiles sample only there.
    pub bounds: (u32, u32, u32, u32),
    /// Its file name, for the tools' reports.
    pub name: String,
}

impl Picture {
    /// `rgba`: premultiplied, `CANVAS` × `CANVAS`.
    pub fn new(rgba: Vec<u8>) -> Picture {
        let side = CANVAS as usize;
        let (mut x0, mut y0, mut x1, mut y1) = (CANVAS, CANVAS, 0, 0);
        for (i, pixel) in rgba.chunks_exact(4).enumerate().take(side * side) {
            if pixel[3] > 0 {
                let (x, y) = ((i % side) as u32, (i / side) as u32);
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
        Picture {
            rgba,
            bounds: (x0.min(x1), y0.min(y1), x1, y1),
            name: String::new(),
        }
    }
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Picture")
    }
}

/// One thing a visitor may be asked to find, in several pictures.
#[derive(Debug, Clone)]
pub struct Motif {
    /// The folder name, e.g. `umbrella`.
    pub key: String,
    /// Its name in each language, as `(tag, name)`: what the prompt shows.
    pub names: Vec<(String, String)>,
    pub pictures: Vec<Picture>,
    /// Motifs that look too much alike to be decoys for this one (indices into the set).
    pub look_alikes: Vec<usize>,
}

impl Motif {
    /// The motif's name in `tag`'s language, else in English, else its key.
    pub fn name(&self, tag: &str) -> &str {
        let find = |tag: &str| {
            self.names
                .iter()
                .find(|(t, _)| t.eq_ignore_ascii_case(tag))
                .map(|(_, name)| name.as_str())
        };
        let primary = tag.split('-').next().unwrap_or(tag);
        find(tag)
            .or_else(|| find(primary))
            .or_else(|| find("en"))
            .unwrap_or(&self.key)
    }
}

/// A set of motifs: the shipped emoji or animals, or an operator's folder.
#[derive(Debug)]
pub struct PictureSet {
    pub motifs: Vec<Motif>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetError {
    #[error("picture folder \"{0}\" is not a readable directory")]
    NotADirectory(String),
    #[error("cannot read \"{path}\": {error}")]
    Read { path: String, error: String },
    #[error("\"{path}\" is not a PNG picture this module can read: {error}")]
    BadPicture { path: String, error: String },
    #[error("\"{path}\" line {line}: {error}")]
    BadLine {
        path: String,
        line: usize,
        error: String,
    },
    #[error("motif \"{0}\" has no pictures (each motif folder needs at least one PNG)")]
    NoPictures(String),
    #[error("the set has {0} motifs with pictures; it needs at least {FEWEST_MOTIFS}")]
    TooFewMotifs(usize),
    #[error("motif \"{0}\" has no other motif it may be shown beside (too many look-alikes)")]
    NoDecoys(String),
}

/// What a set is made of before decoding: per motif folder, its `names.txt` and its PNG files
/// (name and bytes); and the set's `confusable.txt`. The same for a folder on disk and for
/// the sets compiled in.
pub struct SetSource<'a> {
    pub label: String,
    pub motifs: Vec<MotifSource<'a>>,
    pub confusable: Option<std::borrow::Cow<'a, [u8]>>,
}

pub struct MotifSource<'a> {
    pub key: String,
    pub names: Option<std::borrow::Cow<'a, [u8]>>,
    pub pictures: Vec<(String, std::borrow::Cow<'a, [u8]>)>,
}

impl PictureSet {
    /// The shipped emoji set (`pictures/emoji`), decoded on first use.
    pub fn emoji() -> &'static Arc<PictureSet> {
        static SET: OnceLock<Arc<PictureSet>> = OnceLock::new();
        SET.get_or_init(|| Arc::new(builtin("emoji")))
    }

    /// The shipped animal set (`pictures/animals`), decoded on first use.
    pub fn animals() -> &'static Arc<PictureSet> {
        static SET: OnceLock<Arc<PictureSet>> = OnceLock::new();
        SET.get_or_init(|| Arc::new(builtin("animals")))
    }

    /// Reads an operator's set: one folder per motif holding PNG pictures and a `names.txt`,
    /// and optionally a `confusable.txt` beside the folders (see `pictures/README.md`).
    pub fn load_dir(dir: &Path) -> Result<PictureSet, SetError> {
        let shown = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|_| SetError::NotADirectory(shown.clone()))?;
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| SetError::Read {
                path: path.display().to_string(),
                error: e.to_string(),
            })
        };
        let mut folders: Vec<_> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        folders.sort();
        let mut motifs = Vec::new();
        for folder in folders {
            let Some(key) = folder.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if key.starts_with('.') {
                continue;
            }
            let mut files: Vec<_> = std::fs::read_dir(&folder)
                .map_err(|e| SetError::Read {
                    path: folder.display().to_string(),
                    error: e.to_string(),
                })?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
                })
                .collect();
            files.sort();
            let mut pictures = Vec::new();
            for file in files {
                pictures.push((file.display().to_string(), read(&file)?.into()));
            }
            let names_path = folder.join("names.txt");
            let names = names_path.exists().then(|| read(&names_path)).transpose()?;
            motifs.push(MotifSource {
                key: key.to_owned(),
                names: names.map(Into::into),
                pictures,
            });
        }
        let confusable_path = dir.join("confusable.txt");
        let confusable = confusable_path
            .exists()
            .then(|| read(&confusable_path))
            .transpose()?;
        PictureSet::from_source(SetSource {
            label: shown,
            motifs,
            confusable: confusable.map(Into::into),
        })
    }

    /// Decodes and checks a set.
    pub fn from_source(source: SetSource<'_>) -> Result<PictureSet, SetError> {
        let mut motifs = Vec::with_capacity(source.motifs.len());
        for motif in &source.motifs {
            let names_label = format!("{}/{}/names.txt", source.label, motif.key);
            let names = match &motif.names {
                Some(bytes) => parse_names(bytes, &names_label)?,
                None => Vec::new(),
            };
            let mut pictures = Vec::with_capacity(motif.pictures.len());
            for (name, bytes) in &motif.pictures {
                let mut picture = decode(bytes).map_err(|error| SetError::BadPicture {
                    path: name.clone(),
                    error,
                })?;
                picture.name = name.rsplit('/').next().unwrap_or(name).to_owned();
                pictures.push(picture);
            }
            if pictures.is_empty() {
                return Err(SetError::NoPictures(motif.key.clone()));
            }
            motifs.push(Motif {
                key: motif.key.clone(),
                names,
                pictures,
                look_alikes: Vec::new(),
            });
        }
        if motifs.len() < FEWEST_MOTIFS {
            return Err(SetError::TooFewMotifs(motifs.len()));
        }
        if let Some(bytes) = &source.confusable {
            let label = format!("{}/confusable.txt", source.label);
            for (line, group) in lines(bytes, &label)? {
                let members: Vec<usize> = group
                    .split_whitespace()
                    .map(|key| {
                        motifs
                            .iter()
                            .position(|m| m.key == key)
                            .ok_or_else(|| SetError::BadLine {
                                path: label.clone(),
                                line,
                                error: format!("no motif folder \"{key}\""),
                            })
                    })
                    .collect::<Result<_, _>>()?;
                for &a in &members {
                    for &b in &members {
                        if a != b && !motifs[a].look_alikes.contains(&b) {
                            motifs[a].look_alikes.push(b);
                        }
                    }
                }
            }
        }
        // Every motif needs enough others to fill a grid's decoys from.
        for motif in &motifs {
            if motifs.len() - 1 - motif.look_alikes.len() < FEWEST_MOTIFS - 1 {
                return Err(SetError::NoDecoys(motif.key.clone()));
            }
        }
        Ok(PictureSet { motifs })
    }
}

/// The non-empty, non-comment lines of a UTF-8 text file, numbered from 1.
fn lines<'a>(bytes: &'a [u8], label: &str) -> Result<Vec<(usize, &'a str)>, SetError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SetError::BadLine {
        path: label.to_owned(),
        line: 0,
        error: "not UTF-8".to_owned(),
    })?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .collect())
}

/// `names.txt`: `<language tag> <name>` per line.
fn parse_names(bytes: &[u8], label: &str) -> Result<Vec<(String, String)>, SetError> {
    let mut names = Vec::new();
    for (line, text) in lines(bytes, label)? {
        let (tag, name) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let name = name.trim();
        if name.is_empty() || tag.is_empty() || name.len() > 100 {
            return Err(SetError::BadLine {
                path: label.to_owned(),
                line,
                error: "expected a language tag, a space and a name of at most 100 bytes"
                    .to_owned(),
            });
        }
        names.push((tag.to_owned(), name.to_owned()));
    }
    Ok(names)
}

/// Decodes a PNG to the canvas: scaled to fit `CANVAS` (keeping its aspect), centred, with
/// its colours premultiplied by their opacity.
fn decode(bytes: &[u8]) -> Result<Picture, String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes));
    reader.set_format(image::ImageFormat::Png);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(4096);
    limits.max_image_height = Some(4096);
    limits.max_alloc = Some(128 << 20);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| e.to_string())?.to_rgba8();
    let (w, h) = decoded.dimensions();
    if w == 0 || h == 0 {
        return Err("empty picture".to_owned());
    }
    let scale = CANVAS as f32 / w.max(h) as f32;
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).clamp(1, CANVAS),
        ((h as f32 * scale).round() as u32).clamp(1, CANVAS),
    );
    let fitted = if (sw, sh) == (w, h) {
        decoded
    } else {
        image::imageops::resize(&decoded, sw, sh, image::imageops::FilterType::Triangle)
    };
    let side = CANVAS as usize;
    let mut rgba = vec![0u8; side * side * 4];
    let (ox, oy) = ((side - sw as usize) / 2, (side - sh as usize) / 2);
    for (x, y, pixel) in fitted.enumerate_pixels() {
        let [r, g, b, a] = pixel.0;
        let at = ((oy + y as usize) * side + ox + x as usize) * 4;
        let premultiply = |c: u8| ((c as u32 * a as u32 + 127) / 255) as u8;
        rgba[at..at + 4].copy_from_slice(&[premultiply(r), premultiply(g), premultiply(b), a]);
    }
    Ok(Picture::new(rgba))
}

/// The compiled-in set `name`: its files are listed by `build.rs` from `pictures/NAME`.
fn builtin(name: &str) -> PictureSet {
    let files: &[(&str, &str, &[u8])] = match name {
        "emoji" => builtin_files::EMOJI,
        _ => builtin_files::ANIMALS,
    };
    let mut motifs: Vec<MotifSource<'static>> = Vec::new();
    let mut confusable = None;
    for &(motif, file, bytes) in files {
        if motif.is_empty() {
            if file == "confusable.txt" {
                confusable = Some(bytes.into());
            }
            continue;
        }
        if motifs.last().is_none_or(|m| m.key != motif) {
            motifs.push(MotifSource {
                key: motif.to_owned(),
                names: None,
                pictures: Vec::new(),
            });
        }
        let Some(current) = motifs.last_mut() else {
            continue;
        };
        if file == "names.txt" {
            current.names = Some(bytes.into());
        } else {
            current
                .pictures
                .push((format!("pictures/{name}/{motif}/{file}"), bytes.into()));
        }
    }
    // The shipped sets are checked by unit tests; a broken one is a build defect.
    PictureSet::from_source(SetSource {
        label: format!("pictures/{name}"),
        motifs,
        confusable,
    })
    .unwrap_or_else(|e| panic!("the shipped picture set {name} does not load: {e}"))
}

mod builtin_files {
    include!(concat!(env!("OUT_DIR"), "/pictures.rs"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, colour: [u8; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba(colour));
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    fn source(motifs: usize, confusable: Option<&str>) -> SetSource<'static> {
        SetSource {
            label: "test".to_owned(),
            motifs: (0..motifs)
                .map(|i| MotifSource {
                    key: format!("m{i}"),
                    names: Some(format!("en Thing {i}\nde Ding {i}\n").into_bytes().into()),
                    pictures: vec![("a.png".to_owned(), png(40, 20, [200, 0, 0, 128]).into())],
                })
                .collect(),
            confusable: confusable.map(|c| c.as_bytes().to_vec().into()),
        }
    }

    #[test]
    fn the_shipped_sets_load_with_names_in_every_language() {
        for set in [PictureSet::emoji(), PictureSet::animals()] {
            assert!(set.motifs.len() >= 30, "{} motifs", set.motifs.len());
            for motif in &set.motifs {
                for tag in [
                    "ar", "de", "en", "es", "fr", "it", "nl", "pl", "pt", "ru", "tr", "zh",
                ] {
                    assert!(
                        motif.names.iter().any(|(t, _)| t == tag),
                        "{} lacks a name in {tag}",
                        motif.key
                    );
                }
                assert!(motif.pictures.len() >= 2, "{}", motif.key);
            }
        }
        assert!(PictureSet::animals()
            .motifs
            .iter()
            .all(|m| m.pictures.len() >= 3));
    }

    #[test]
    fn pictures_are_fitted_centred_and_premultiplied() {
        let set = PictureSet::from_source(source(6, None)).unwrap();
        let rgba = &set.motifs[0].pictures[0].rgba;
        assert_eq!(rgba.len(), (CANVAS * CANVAS * 4) as usize);
        // 40×20 → 96×48, centred: rows 24..72 hold it.
        let at = |x: usize, y: usize| &rgba[(y * 96 + x) * 4..(y * 96 + x) * 4 + 4];
        assert_eq!(at(48, 10), &[0, 0, 0, 0]);
        assert_eq!(at(48, 48), &[100, 0, 0, 128]);
    }

    #[test]
    fn names_fall_back_to_english_then_the_key() {
        let set = PictureSet::from_source(source(6, None)).unwrap();
        let motif = &set.motifs[2];
        assert_eq!(motif.name("de"), "Ding 2");
        assert_eq!(motif.name("de-AT"), "Ding 2");
        assert_eq!(motif.name("fr"), "Thing 2");
        let mut bare = motif.clone();
        bare.names.clear();
        assert_eq!(bare.name("fr"), "m2");
    }

    #[test]
    fn look_alikes_are_read_and_checked() {
        let set = PictureSet::from_source(source(8, Some("# cats\nm0 m1 m2\n"))).unwrap();
        assert_eq!(set.motifs[0].look_alikes, vec![1, 2]);
        assert_eq!(set.motifs[2].look_alikes, vec![0, 1]);
        assert!(set.motifs[3].look_alikes.is_empty());
        assert!(matches!(
            PictureSet::from_source(source(8, Some("m0 nope\n"))),
            Err(SetError::BadLine { line: 1, .. })
        ));
        // m0 would have only m4..m7 (4 motifs) left to be shown beside.
        assert_eq!(
            PictureSet::from_source(source(8, Some("m0 m1 m2 m3\n"))).unwrap_err(),
            SetError::NoDecoys("m0".to_owned())
        );
    }

    #[test]
    fn broken_sets_are_refused_with_what_is_wrong() {
        assert_eq!(
            PictureSet::from_source(source(5, None)).unwrap_err(),
            SetError::TooFewMotifs(5)
        );
        let mut bad = source(6, None);
        bad.motifs[1].pictures[0].1 = b"not a png".to_vec().into();
        assert!(matches!(
            PictureSet::from_source(bad),
            Err(SetError::BadPicture { .. })
        ));
        let mut empty = source(6, None);
        empty.motifs[3].pictures.clear();
        assert_eq!(
            PictureSet::from_source(empty).unwrap_err(),
            SetError::NoPictures("m3".to_owned())
        );
        let mut names = source(6, None);
        names.motifs[0].names = Some(b"en\n".to_vec().into());
        assert!(matches!(
            PictureSet::from_source(names),
            Err(SetError::BadLine { line: 1, .. })
        ));
        assert!(matches!(
            PictureSet::load_dir(Path::new("/nonexistent/pictures")),
            Err(SetError::NotADirectory(_))
        ));
    }

    #[test]
    fn a_folder_loads_like_the_compiled_sets() {
        let dir = std::env::temp_dir().join(format!("captchaify-pictures-{}", std::process::id()));
        for i in 0..7 {
            let motif = dir.join(format!("m{i}"));
            std::fs::create_dir_all(&motif).unwrap();
            std::fs::write(motif.join("one.png"), png(96, 96, [0, 0, 255, 255])).unwrap();
            std::fs::write(motif.join("two.PNG"), png(10, 30, [0, 255, 0, 255])).unwrap();
            std::fs::write(motif.join("notes.md"), "ignored").unwrap();
            std::fs::write(motif.join("names.txt"), format!("en Motif {i}\n")).unwrap();
        }
        std::fs::write(dir.join("confusable.txt"), "m4 m5\n").unwrap();
        let set = PictureSet::load_dir(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        let set = set.unwrap();
        assert_eq!(set.motifs.len(), 7);
        assert_eq!(set.motifs[1].key, "m1");
        assert_eq!(set.motifs[1].pictures.len(), 2);
        assert_eq!(set.motifs[1].name("en"), "Motif 1");
        assert_eq!(set.motifs[4].look_alikes, vec![5]);
    }
}
