//! What a picture challenge asks: a motif, a grid of tiles of which some show it, an example
//! picture, and the answer (the positions of the matching tiles).
//!
//! The grid is chosen so that a random guess rarely passes ([`Grid::guess_odds`]): the
//! number of matches varies, so the best blind guess is one particular set of the fewest
//! tiles.
//!
//! | hardness | grid | matches | best blind guess passes |
//! |---|---|---|---|
//! | 1 | 4 × 4 | 3–5 | 1 in 1,680 |
//! | 2, 3 | 4 × 5 | 4–6 | 1 in 14,535 |

use rand::seq::SliceRandom;
use rand::Rng;

use super::draw::{self, Canvas, Style};
use super::PictureSet;
use crate::policy::Hardness;

/// The shape of a grid and how many of its tiles show the motif.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub columns: usize,
    pub rows: usize,
    pub fewest: usize,
    pub most: usize,
}

impl Grid {
    pub const fn for_hardness(hardness: Hardness) -> Grid {
        match hardness.get() {
            1 => Grid {
                columns: 4,
                rows: 4,
                fewest: 3,
                most: 5,
            },
            _ => Grid {
                columns: 4,
                rows: 5,
                fewest: 4,
                most: 6,
            },
        }
    }

    pub const fn tiles(&self) -> usize {
        self.columns * self.rows
    }

    /// The chance that the best blind guess passes: every count of matches is equally
    /// likely, so a guesser picks one count and one set of that many tiles.
    pub fn guess_odds(&self) -> f64 {
        let counts = (self.most - self.fewest + 1) as f64;
        (self.fewest..=self.most)
            .map(|k| 1.0 / counts / binomial(self.tiles(), k))
            .fold(0.0, f64::max)
    }
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// A drawn picture challenge.
pub struct PictureChallenge {
    /// The motif asked for (an index into the set).
    pub motif: usize,
    pub grid: Grid,
    /// An example of the motif: a picture no matching tile is drawn from (when the motif
    /// has more than one), drawn with its own look.
    pub example: Vec<u8>,
    /// The tiles' PNGs, in grid order (position 1 first).
    pub tiles: Vec<Vec<u8>>,
    /// The positions of the matching tiles, as [`normalize_selection`] writes them.
    pub answer: String,
    /// Which picture each tile was drawn from (for the tools' reports).
    pub plan: Plan,
}

/// Which picture goes where, before anything is drawn: `(motif, picture)` pairs, indices
/// into the set.
#[derive(Debug)]
pub struct Plan {
    pub motif: usize,
    /// The example's picture (of `motif`).
    pub example: usize,
    pub tiles: Vec<(usize, usize)>,
    /// The matching positions, 0-based, ascending.
    pub matching: Vec<usize>,
}

/// Chooses the motif, how many and which tiles match, and every tile's picture: matches
/// from the motif's pictures other than the example's (unless it has only the one), decoys
/// from any motif but the motif and its look-alikes.
pub fn plan<R: Rng + ?Sized>(set: &PictureSet, grid: Grid, rng: &mut R) -> Plan {
    let motif_index = rng.gen_range(0..set.motifs.len());
    let motif = &set.motifs[motif_index];
    let decoys: Vec<usize> = (0..set.motifs.len())
        .filter(|&i| i != motif_index && !motif.look_alikes.contains(&i))
        .collect();
    let matches = rng.gen_range(grid.fewest..=grid.most);
    let mut positions: Vec<usize> = (0..grid.tiles()).collect();
    positions.shuffle(rng);
    let mut matching = positions[..matches].to_vec();
    matching.sort_unstable();
    let example = rng.gen_range(0..motif.pictures.len());
    let others: Vec<usize> = (0..motif.pictures.len())
        .filter(|&i| i != example || motif.pictures.len() == 1)
        .collect();
    let tiles = (0..grid.tiles())
        .map(|position| {
            if matching.binary_search(&position).is_ok() {
                (motif_index, others[rng.gen_range(0..others.len())])
            } else {
                let decoy = decoys[rng.gen_range(0..decoys.len())];
                (decoy, rng.gen_range(0..set.motifs[decoy].pictures.len()))
            }
        })
        .collect();
    Plan {
        motif: motif_index,
        example,
        tiles,
        matching,
    }
}

/// Draws a challenge from `set` for a grid: its plan, then every tile with its own look in
/// `style`.
pub fn generate<R: Rng + ?Sized>(
    set: &PictureSet,
    grid: Grid,
    style: &Style,
    rng: &mut R,
) -> PictureChallenge {
    let plan = plan(set, grid, rng);
    let mut canvas = Canvas::default();
    let mut draw_png = |motif: usize, picture: usize, rng: &mut R| {
        draw::draw(
            &set.motifs[motif].pictures[picture],
            style,
            rng,
            &mut canvas,
        );
        let mut png = Vec::new();
        draw::encode(&canvas, &mut png);
        png
    };
    let example = draw_png(plan.motif, plan.example, rng);
    let tiles = plan
        .tiles
        .iter()
        .map(|&(motif, picture)| draw_png(motif, picture, rng))
        .collect();
    PictureChallenge {
        motif: plan.motif,
        grid,
        example,
        tiles,
        answer: write_selection(plan.matching.iter().map(|p| p + 1)),
        plan,
    }
}

/// Ticked positions (1-based) as the answer is committed: ascending, comma-separated.
fn write_selection(positions: impl Iterator<Item = usize>) -> String {
    let mut out = String::new();
    for position in positions {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&position.to_string());
    }
    out
}

/// The tiles a form ticked (each `tile` field's value) → the committed form of the answer.
/// `None` for anything a browser would not send: a value that is not a position of the
/// grid, a position twice, or more values than tiles.
pub fn normalize_selection(values: &[Vec<u8>], tiles: usize) -> Option<String> {
    if values.len() > tiles {
        return None;
    }
    let mut ticked = vec![false; tiles];
    for value in values {
        let text = std::str::from_utf8(value).ok()?;
        if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let position: usize = text.parse().ok()?;
        let slot = ticked.get_mut(position.checked_sub(1)?)?;
        if std::mem::replace(slot, true) {
            return None;
        }
    }
    Some(write_selection(
        ticked
            .iter()
            .enumerate()
            .filter(|(_, &t)| t)
            .map(|(i, _)| i + 1),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::picture::{Motif, Picture, CANVAS};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Motif `i`'s pictures are filled with grey level `i * 20 + 10 + picture`, so a tile's
    /// source can be told from its pixels.
    fn test_set(motifs: usize, pictures: usize) -> PictureSet {
        let side = CANVAS as usize;
        PictureSet {
            motifs: (0..motifs)
                .map(|i| Motif {
                    key: format!("m{i}"),
                    names: vec![("en".into(), format!("Motif {i}"))],
                    pictures: (0..pictures)
                        .map(|p| {
                            Picture::new(
                                vec![(i * 20 + 10 + p) as u8; side * side * 4]
                                    .chunks(4)
                                    .flat_map(|c| [c[0], c[1], c[2], 255])
                                    .collect(),
                            )
                        })
                        .collect(),
                    look_alikes: if i == 0 { vec![1] } else { Vec::new() },
                })
                .collect(),
        }
    }

    #[test]
    fn the_odds_are_those_the_docs_print() {
        let one = Grid::for_hardness(Hardness::EASY);
        let two = Grid::for_hardness(Hardness::NORMAL);
        assert_eq!(Grid::for_hardness(Hardness::HARD), two);
        assert_eq!((1.0 / one.guess_odds()).round(), 1680.0);
        assert_eq!((1.0 / two.guess_odds()).round(), 14535.0);
        // The bounds: one in 1,000 at hardness 1, one in 10,000 above.
        assert!(one.guess_odds() <= 1e-3 && two.guess_odds() <= 1e-4);
    }

    #[test]
    fn a_challenge_has_its_grid_its_matches_and_fresh_tiles() {
        let set = test_set(8, 3);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for hardness in [Hardness::EASY, Hardness::NORMAL] {
            let grid = Grid::for_hardness(hardness);
            for _ in 0..20 {
                let c = generate(&set, grid, &Style::FIRM, &mut rng);
                assert_eq!(c.tiles.len(), grid.tiles());
                let positions: Vec<usize> =
                    c.answer.split(',').map(|p| p.parse().unwrap()).collect();
                assert!((grid.fewest..=grid.most).contains(&positions.len()));
                assert!(positions.windows(2).all(|w| w[0] < w[1]));
                assert!(positions.iter().all(|&p| (1..=grid.tiles()).contains(&p)));
                let mut unique: Vec<&Vec<u8>> = c.tiles.iter().chain([&c.example]).collect();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), grid.tiles() + 1, "a tile was served twice");
            }
        }
    }

    #[test]
    fn matches_show_the_motif_never_the_example_drawing_and_decoys_no_look_alike() {
        let set = test_set(8, 3);
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let mut motifs_seen = std::collections::HashSet::new();
        for _ in 0..400 {
            let grid = Grid::for_hardness(Hardness::NORMAL);
            let plan = plan(&set, grid, &mut rng);
            motifs_seen.insert(plan.motif);
            assert_eq!(plan.tiles.len(), grid.tiles());
            for (position, &(motif, picture)) in plan.tiles.iter().enumerate() {
                if plan.matching.contains(&position) {
                    assert_eq!(motif, plan.motif);
                    assert_ne!(picture, plan.example);
                } else {
                    assert_ne!(motif, plan.motif);
                    assert!(!set.motifs[plan.motif].look_alikes.contains(&motif));
                }
            }
        }
        assert_eq!(motifs_seen.len(), 8);
        // A motif with one picture still makes challenges (its example is that picture).
        let single = test_set(8, 1);
        let plan = plan(&single, Grid::for_hardness(Hardness::EASY), &mut rng);
        assert!(plan
            .matching
            .iter()
            .all(|&p| plan.tiles[p] == (plan.motif, 0)));
    }

    #[test]
    fn tiles_are_drawn_from_their_planned_picture() {
        // Grey pictures at a known level per motif; the middle of a tile is the drawing
        // (at 85–115 % brightness, plus at most an occluding disc or a speckle).
        let set = test_set(8, 1);
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let c = generate(
            &set,
            Grid::for_hardness(Hardness::EASY),
            &Style::GENTLE,
            &mut rng,
        );
        let level = |png: &[u8]| {
            let d = image::load_from_memory(png).unwrap().to_rgb8();
            let mut levels: Vec<u8> = (28..36).map(|x| d.get_pixel(x, 32).0[0]).collect();
            levels.sort_unstable();
            levels[4] as f32
        };
        let expected = (c.motif * 20 + 10) as f32;
        for p in c.answer.split(',').map(|p| p.parse::<usize>().unwrap()) {
            let got = level(&c.tiles[p - 1]);
            assert!(
                (got - expected).abs() <= expected * 0.2 + 2.0,
                "{got} vs {expected}"
            );
        }
        assert!((level(&c.example) - expected).abs() <= expected * 0.2 + 2.0);
    }

    #[test]
    fn selections_are_read_strictly() {
        let v = |values: &[&str]| {
            values
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            normalize_selection(&v(&["7", "2", "16"]), 16).as_deref(),
            Some("2,7,16")
        );
        assert_eq!(normalize_selection(&v(&[]), 16).as_deref(), Some(""));
        assert_eq!(normalize_selection(&v(&["17"]), 16), None);
        assert_eq!(normalize_selection(&v(&["0"]), 16), None);
        assert_eq!(normalize_selection(&v(&["3", "3"]), 16), None);
        assert_eq!(normalize_selection(&v(&["-1"]), 16), None);
        assert_eq!(normalize_selection(&v(&["1e1"]), 16), None);
        assert_eq!(normalize_selection(&v(&["0003"]), 16), None);
        assert_eq!(normalize_selection(&v(&[""]), 16), None);
        let all: Vec<String> = (1..=17).map(|i| i.to_string()).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        assert_eq!(normalize_selection(&v(&all), 16), None);
    }
}
