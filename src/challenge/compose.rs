//! Composing a captcha page: the image (and, where the hardness asks for it, the spoken
//! digits), the signed challenge that commits to their answer, and the rendered page. Pure
//! work that touches nothing of nginx: the glue gathers an [`Order`] on the event loop and
//! posts it to nginx's thread pool (`nginx/offload.rs`), where [`Order::compose`] runs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::flow::full_answer;
use super::picture::draw::Style;
use super::picture::grid::{self, Grid};
use super::picture::PictureSet;
use super::token::{issue_challenge, ChallengeTerms, ClientBinding, Secrets};
use super::{audio, image, ChallengeKind};
use crate::crawler::hints::Hints;
use crate::pages::{
    AudioView, CaptchaView, Message, Page, PageContext, PageKind, PageSet, PictureView, AUDIO_PATH,
};
use std::sync::Arc;

/// Everything a captcha page needs but the configuration it is drawn with.
pub struct Order {
    pub terms: ChallengeTerms,
    /// The client the challenge is made for.
    pub binding: ClientBinding,
    /// When the challenge stops being answerable (Unix seconds).
    pub expires: u64,
    /// Seeds the ChaCha20 stream every random choice of the challenge comes from; the
    /// caller draws it from the OS.
    pub seed: [u8; 32],
    /// What the page says was asked for.
    pub shown_path: String,
    pub message: Option<Message>,
    /// The page's language, an index into the page set's languages.
    pub language: usize,
    /// The link to the language chooser.
    pub chooser_href: String,
    /// Where the form posts its answer.
    pub form_action: String,
    /// The real page's title and tags, shown to a crawler.
    pub hints: Option<Hints>,
    /// The operator's picture set for a picture kind (`captchaify_picture_dir`); `None` for
    /// the shipped one.
    pub pictures: Option<Arc<PictureSet>>,
}

/// A composed captcha page and the answer it was made for (for the test builds' answer
/// header; never sent otherwise). `page` is `None` when the templates lack a captcha page.
pub struct Composed {
    pub page: Option<Page>,
    pub answer: String,
    /// The digits of a picture captcha's clip below hardness 3, which answer it instead of
    /// the tiles (for the test builds' header too; they are never sent otherwise).
    pub alternative: Option<String>,
}

impl Order {
    /// Draws the image (and the clip at a hardness with audio), signs the challenge and
    /// renders the page. The same order and configuration give the same challenge.
    pub fn compose(&self, secrets: &Secrets, pages: &PageSet) -> Composed {
        let mut rng = ChaCha20Rng::from_seed(self.seed);
        let terms = &self.terms;
        let captcha = match terms.kind {
            ChallengeKind::Text => image::generate(terms.hardness, &mut rng),
            ChallengeKind::Emoji | ChallengeKind::Animals => {
                return self.compose_pictures(secrets, pages, &mut rng)
            }
        };
        let nonce: [u8; 16] = rng.gen();
        // The spoken digits are in the page's language where there are voices, from a seed
        // the download path can derive again (see `Secrets::audio_seed`).
        let language = pages.languages().get(self.language);
        let clip = terms.hardness.has_audio().then(|| {
            let seed = secrets.audio_seed(&nonce, &language.tag);
            audio::generate(&language.tag, &mut ChaCha20Rng::from_seed(seed))
        });
        let answer = full_answer(&captcha.answer, clip.as_ref().map(|c| c.digits.as_str()));
        let token = issue_challenge(secrets, self.binding, terms, self.expires, nonce, &answer);
        let audio_href = format!("{AUDIO_PATH}?challenge={token}&lang={}", language.tag);
        let (shortest, longest) = image::answer_lengths(terms.hardness);
        let answer_length = format!("{shortest}\u{2013}{longest}");
        let audio_length = format!("{}\u{2013}{}", audio::SHORTEST, audio::LONGEST);
        let page = pages.render(
            PageKind::Captcha,
            &PageContext {
                captcha: Some(CaptchaView {
                    png: &captcha.png,
                    width: captcha.width,
                    height: captcha.height,
                    answer_length: &answer_length,
                    challenge: &token,
                    form_action: &self.form_action,
                    audio: clip.as_ref().map(|c| AudioView {
                        wav: &c.wav,
                        length: &audio_length,
                        href: &audio_href,
                    }),
                }),
                ..self.page_context()
            },
        );
        Composed {
            page,
            answer,
            alternative: None,
        }
    }

    /// What every captcha page of this order shows besides its puzzle.
    fn page_context(&self) -> PageContext<'_> {
        PageContext {
            path: &self.shown_path,
            message: self.message,
            language: self.language,
            language_href: &self.chooser_href,
            hints: self.hints.as_ref(),
            ..PageContext::default()
        }
    }

    /// A picture captcha: the grid of the hardness from the location's set (the shipped one
    /// of the kind unless the operator gave one), the example, and the clip's link: the
    /// accessible alternative below hardness 3, a second part of the answer at 3. The clip
    /// is made only when downloaded; its digits are known from its seed.
    fn compose_pictures(
        &self,
        secrets: &Secrets,
        pages: &PageSet,
        rng: &mut ChaCha20Rng,
    ) -> Composed {
        let terms = &self.terms;
        let set = match (&self.pictures, terms.kind) {
            (Some(set), _) => set,
            (None, ChallengeKind::Animals) => PictureSet::animals(),
            (None, _) => PictureSet::emoji(),
        };
        let grid = Grid::for_hardness(terms.hardness);
        let drawn = grid::generate(set, grid, &Style::of(terms.kind), rng);
        let nonce: [u8; 16] = rng.gen();
        let language = pages.languages().get(self.language);
        let spoken = audio::digits_of(secrets.audio_seed(&nonce, &language.tag));
        let (digits, alternative) = if terms.hardness.has_audio() {
            (Some(spoken), None)
        } else {
            (None, Some(spoken))
        };
        let answer = full_answer(&drawn.answer, digits.as_deref());
        let token = issue_challenge(secrets, self.binding, terms, self.expires, nonce, &answer);
        let audio_href = format!("{AUDIO_PATH}?challenge={token}&lang={}", language.tag);
        let audio_length = format!("{}\u{2013}{}", audio::SHORTEST, audio::LONGEST);
        let page = pages.render(
            PageKind::Picture,
            &PageContext {
                pictures: Some(PictureView {
                    motif: set.motifs[drawn.motif].name(&language.tag),
                    example: &drawn.example,
                    tiles: &drawn.tiles,
                    columns: grid.columns,
                    challenge: &token,
                    form_action: &self.form_action,
                    audio_href: &audio_href,
                    audio_length: &audio_length,
                    audio_required: digits.is_some(),
                }),
                ..self.page_context()
            },
        );
        Composed {
            page,
            answer,
            alternative,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::image::normalize_answer;
    use crate::challenge::token::{check_challenge, Budget, Delivery};
    use crate::policy::Hardness;

    const NOW: u64 = 1_800_000_000;

    fn secrets() -> Secrets {
        Secrets::new(vec![42; 32], None).unwrap()
    }

    fn client() -> ClientBinding {
        ClientBinding::new("192.0.2.10".parse().unwrap(), b"Mozilla/5.0")
    }

    fn order(hardness: Hardness, seed: u8) -> Order {
        Order {
            terms: ChallengeTerms {
                kind: ChallengeKind::Text,
                hardness,
                pass_age: 3600,
                delivery: Delivery::Cookie,
                budget: Budget::default(),
                return_path: "/account".into(),
            },
            binding: client(),
            expires: NOW + 120,
            seed: [seed; 32],
            shown_path: "/account?<b>".into(),
            message: None,
            language: 0,
            chooser_href: "/.captchaify/language?return=%2Faccount".into(),
            form_action: "/.captchaify/verify".into(),
            hints: None,
            pictures: None,
        }
    }

    /// The challenge token in a page's form.
    fn token(body: &str) -> &str {
        let start = body
            .find(r#"name="challenge" value=""#)
            .expect("the page has a challenge field")
            + r#"name="challenge" value=""#.len();
        let len = body[start..].find('"').unwrap();
        &body[start..start + len]
    }

    #[test]
    fn the_page_carries_a_challenge_for_its_client_and_answer() {
        let (secrets, pages) = (secrets(), PageSet::builtin());
        for hardness in [Hardness::EASY, Hardness::NORMAL, Hardness::HARD] {
            let composed = order(hardness, 1).compose(&secrets, pages);
            let page = composed.page.expect("the built-in set has a captcha page");
            assert_eq!(page.status, PageKind::Captcha.status());
            let challenge = check_challenge(&secrets, token(&page.body).as_bytes(), client())
                .expect("the page's challenge is genuine and this client's");
            assert_eq!(challenge.terms.hardness, hardness);
            assert_eq!(challenge.expires, NOW + 120);
            assert!(challenge.is_answer(&secrets, &composed.answer));
            // The text part alone is not the answer where the clip's digits are asked too.
            let text = composed.answer.split('|').next().unwrap();
            assert_eq!(challenge.is_answer(&secrets, text), !hardness.has_audio());
            assert_eq!(normalize_answer(text).as_deref(), Some(text));
            // Only a hardness with audio has the clip, inline and as a download.
            assert_eq!(page.body.contains("<audio"), hardness.has_audio());
            assert_eq!(page.body.contains(AUDIO_PATH), hardness.has_audio());
            // The page is escaped and posts to the form action.
            assert!(page.body.contains("/account?&lt;b&gt;"));
            assert!(!page.body.contains("/account?<b>"));
            assert!(page.body.contains(r#"action="/.captchaify/verify""#));
            // Another client cannot use it.
            let other = ClientBinding::new("192.0.2.11".parse().unwrap(), b"Mozilla/5.0");
            assert!(check_challenge(&secrets, token(&page.body).as_bytes(), other).is_err());
        }
    }

    #[test]
    fn the_seed_decides_everything() {
        let (secrets, pages) = (secrets(), PageSet::builtin());
        let a = order(Hardness::HARD, 1).compose(&secrets, pages);
        let again = order(Hardness::HARD, 1).compose(&secrets, pages);
        let other = order(Hardness::HARD, 2).compose(&secrets, pages);
        let body = |c: Composed| c.page.unwrap().body;
        assert_eq!(a.answer, again.answer);
        assert_ne!(a.answer, other.answer);
        let (a, again, other) = (body(a), body(again), body(other));
        // The same challenge token (the page's CSP nonce is fresh on every render).
        assert_eq!(token(&a), token(&again));
        assert_ne!(token(&a), token(&other));
    }

    /// A small set of plain pictures: motif `i` is a disc of its own colour.
    fn picture_set() -> Arc<PictureSet> {
        use crate::challenge::picture::{Motif, Picture, CANVAS};
        let side = CANVAS as usize;
        let disc = |colour: [u8; 3]| {
            let mut rgba = vec![0u8; side * side * 4];
            for y in 0..side {
                for x in 0..side {
                    let (dx, dy) = (x as i32 - 48, y as i32 - 48);
                    if dx * dx + dy * dy < 40 * 40 {
                        rgba[(y * side + x) * 4..(y * side + x) * 4 + 4]
                            .copy_from_slice(&[colour[0], colour[1], colour[2], 255]);
                    }
                }
            }
            Picture::new(rgba)
        };
        Arc::new(PictureSet {
            motifs: (0..8u8)
                .map(|i| Motif {
                    key: format!("m{i}"),
                    names: vec![
                        ("en".into(), format!("Thing <{i}>")),
                        ("de".into(), format!("Ding {i}")),
                    ],
                    pictures: vec![disc([i * 30, 255 - i * 30, 100]), disc([i * 30, 0, 200])],
                    look_alikes: Vec::new(),
                })
                .collect(),
        })
    }

    fn picture_order(kind: ChallengeKind, hardness: Hardness, seed: u8) -> Order {
        let mut order = order(hardness, seed);
        order.terms.kind = kind;
        order.pictures = Some(picture_set());
        order
    }

    #[test]
    fn a_picture_page_holds_its_grid_and_its_challenge() {
        let (secrets, pages) = (secrets(), PageSet::builtin());
        for hardness in [Hardness::EASY, Hardness::NORMAL, Hardness::HARD] {
            let composed =
                picture_order(ChallengeKind::Animals, hardness, 3).compose(&secrets, pages);
            let page = composed.page.expect("the built-in set has a picture page");
            assert_eq!(page.status, PageKind::Picture.status());
            let body = &page.body;
            let challenge = check_challenge(&secrets, token(body).as_bytes(), client()).unwrap();
            assert_eq!(challenge.terms.kind, ChallengeKind::Animals);
            assert!(challenge.is_answer(&secrets, &composed.answer));
            let grid = Grid::for_hardness(hardness);
            assert_eq!(
                body.matches(r#"type="checkbox" name="tile""#).count(),
                grid.tiles()
            );
            assert!(body.contains(&format!(r#"name="tile" value="{}""#, grid.tiles())));
            assert!(body.contains(r#"alt="Picture 7""#));
            // The prompt names the motif, escaped; the answer is not in the page.
            assert!(body.contains("Select every picture that shows: <strong>Thing &lt;"));
            assert!(!body.contains("X-Captchaify"));
            // The clip is always linked (the alternative, or at 3 a part of the answer), never
            // inline; its digits are asked as required only at 3.
            assert!(body.contains(AUDIO_PATH));
            assert!(!body.contains("data:audio"));
            assert_eq!(
                body.contains(" required maxlength=\"40\""),
                hardness.has_audio()
            );
            assert_eq!(body.contains("<details"), !hardness.has_audio());
            assert_eq!(composed.answer.contains('|'), hardness.has_audio());
            assert!(body.contains(r#"<input type="hidden" name="lang" value="en">"#));
            // Below 3, the clip's digits alone answer it, as the form posts them.
            assert_eq!(composed.alternative.is_some(), !hardness.has_audio());
            if let Some(digits) = &composed.alternative {
                let form = crate::challenge::flow::Form::parse(
                    format!("challenge={}&digits={digits}&lang=en", token(body)).as_bytes(),
                );
                let judged = crate::challenge::flow::judge(
                    &secrets,
                    challenge,
                    &form,
                    client(),
                    NOW,
                    |_, _| crate::state::spent::Spend::Fresh,
                    [0; 16],
                );
                assert!(matches!(
                    judged,
                    crate::challenge::flow::Judgement::Solved { .. }
                ));
            }
        }
    }

    #[test]
    fn a_picture_page_speaks_the_motif_in_the_page_language() {
        let (secrets, pages) = (secrets(), PageSet::builtin());
        let Some(german) = pages.languages().find(b"de") else {
            panic!("German is built in");
        };
        let mut order = picture_order(ChallengeKind::Emoji, Hardness::EASY, 4);
        order.language = german;
        let body = order.compose(&secrets, pages).page.unwrap().body;
        assert!(body.contains("<strong>Ding "), "{}", &body[..2000]);
    }

    #[test]
    fn picture_pages_are_fresh_and_small() {
        let (secrets, pages) = (secrets(), PageSet::builtin());
        let a = picture_order(ChallengeKind::Emoji, Hardness::NORMAL, 5).compose(&secrets, pages);
        let b = picture_order(ChallengeKind::Emoji, Hardness::NORMAL, 6).compose(&secrets, pages);
        let (a, b) = (a.page.unwrap().body, b.page.unwrap().body);
        let images = |body: &str| -> Vec<String> {
            body.split("data:image/png;base64,")
                .skip(1)
                .map(|s| s[..s.find('"').unwrap()].to_owned())
                .collect()
        };
        let (ia, ib) = (images(&a), images(&b));
        assert_eq!(ia.len(), 21, "the example and 20 tiles");
        let mut all: Vec<&String> = ia.iter().chain(&ib).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 42, "no picture served twice");
        // Plain discs compress far better than real pictures; the real bound is measured on
        // the shipped sets (scripts/bench); this guards the page's markup.
        assert!(a.len() < 80_000, "{} bytes", a.len());
    }
}
