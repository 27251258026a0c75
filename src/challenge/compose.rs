//! Composing a captcha page: the image (and, where the hardness asks for it, the spoken
//! digits), the signed challenge that commits to their answer, and the rendered page. Pure
//! work that touches nothing of nginx: the glue gathers an [`Order`] on the event loop and
//! posts it to nginx's thread pool (`nginx/offload.rs`), where [`Order::compose`] runs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::flow::full_answer;
use super::token::{issue_challenge, ChallengeTerms, ClientBinding, Secrets};
use super::{audio, image, ChallengeKind};
use crate::crawler::hints::Hints;
use crate::pages::{
    AudioView, CaptchaView, Message, Page, PageContext, PageKind, PageSet, AUDIO_PATH,
};

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
}

/// A composed captcha page and the answer it was made for (for the test builds' answer
/// header; never sent otherwise). `page` is `None` when the templates lack a captcha page.
pub struct Composed {
    pub page: Option<Page>,
    pub answer: String,
}

impl Order {
    /// Draws the image (and the clip at a hardness with audio), signs the challenge and
    /// renders the page. The same order and configuration give the same challenge.
    pub fn compose(&self, secrets: &Secrets, pages: &PageSet) -> Composed {
        let mut rng = ChaCha20Rng::from_seed(self.seed);
        let terms = &self.terms;
        let captcha = match terms.kind {
            ChallengeKind::Text => image::generate(terms.hardness, &mut rng),
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
                path: &self.shown_path,
                message: self.message,
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
                retry_after: 0,
                language: self.language,
                language_href: &self.chooser_href,
                chooser: None,
                hints: self.hints.as_ref(),
            },
        );
        Composed { page, answer }
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
}
