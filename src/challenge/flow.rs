//! Judging an answered captcha form: what the client gets next. Pure logic; the glue reads
//! the request body, keeps the shared tables and sends the result.

use super::image::normalize_answer;
use super::picture::grid::{normalize_selection, Grid};
use super::token::{issue_pass, Challenge, ChallengeTerms, ClientBinding, Delivery, Secrets};
use crate::state::spent::Spend;

/// The longest form body accepted (a challenge token with the longest return path fits in
/// about 4 kB).
pub const MAX_FORM_BYTES: usize = 8192;

/// The fields of the captcha form.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Form {
    pub challenge: Vec<u8>,
    pub answer: Vec<u8>,
    /// The digits heard in the audio captcha (hardness 3, or a picture captcha's audio
    /// alternative).
    pub digits: Vec<u8>,
    /// A picture captcha's ticked tiles (every `tile` field, in order; at most
    /// [`MAX_TILE_FIELDS`], and one more marks a form that sent too many).
    pub tiles: Vec<Vec<u8>>,
    /// The language of the page (`lang`), whose clip a picture captcha's audio alternative
    /// was heard in.
    pub language: Vec<u8>,
}

/// More `tile` fields than any grid has tiles: the form is not one of ours.
pub const MAX_TILE_FIELDS: usize = 32;

impl Form {
    /// Parses an `application/x-www-form-urlencoded` body; unknown fields are ignored, the
    /// first occurrence of a field wins.
    pub fn parse(body: &[u8]) -> Form {
        let mut form = Form::default();
        let (mut seen_challenge, mut seen_answer, mut seen_digits) = (false, false, false);
        let mut seen_language = false;
        for pair in body.split(|&b| b == b'&') {
            let mut parts = pair.splitn(2, |&b| b == b'=');
            let name = parts.next().unwrap_or_default();
            let value = parts.next().unwrap_or_default();
            match name {
                b"challenge" if !seen_challenge => {
                    form.challenge = percent_decode(value);
                    seen_challenge = true;
                }
                b"answer" if !seen_answer => {
                    form.answer = percent_decode(value);
                    seen_answer = true;
                }
                b"digits" if !seen_digits => {
                    form.digits = percent_decode(value);
                    seen_digits = true;
                }
                b"lang" if !seen_language => {
                    form.language = percent_decode(value);
                    seen_language = true;
                }
                b"tile" if form.tiles.len() <= MAX_TILE_FIELDS => {
                    form.tiles.push(percent_decode(value));
                }
                _ => {}
            }
        }
        form
    }
}

/// Decodes `application/x-www-form-urlencoded` (`+` is a space; a bad `%` escape is kept).
pub fn percent_decode(value: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                value.get(i + 1).copied().and_then(hex),
                value.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// What a user typed for the audio captcha → plain ASCII digits. Spaces, hyphens, dots and
/// commas between digits are dropped; Arabic-Indic, Persian and full-width digits count as
/// the digits they are. `None` for anything else, or for more than 32 digits (or an input
/// over 256 bytes).
pub fn normalize_digits(input: &str) -> Option<String> {
    if input.len() > 256 {
        return None;
    }
    let mut out = String::new();
    for c in input.chars() {
        let digit = match c {
            '0'..='9' => c as u32 - '0' as u32,
            '\u{0660}'..='\u{0669}' => c as u32 - 0x0660,
            '\u{06F0}'..='\u{06F9}' => c as u32 - 0x06F0,
            '\u{FF10}'..='\u{FF19}' => c as u32 - 0xFF10,
            c if c.is_whitespace() || matches!(c, '-' | '.' | ',' | '\u{2010}'..='\u{2015}') => {
                continue
            }
            _ => return None,
        };
        if out.len() >= 32 {
            return None;
        }
        out.push(char::from(b'0' + digit as u8));
    }
    Some(out)
}

/// The answer a challenge commits to: the text, and at hardness 3 the digits after it, so
/// that only both right together solve it.
pub fn full_answer(text: &str, digits: Option<&str>) -> String {
    match digits {
        Some(digits) => format!("{text}|{digits}"),
        None => text.to_owned(),
    }
}

/// What a submitted form earns.
#[derive(Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Right answer: the pass to hand out and where to send the client.
    Solved {
        pass: String,
        delivery: Delivery,
        pass_age: u64,
        return_path: String,
    },
    /// Wrong answer to a genuine, fresh challenge: counts as a failure.
    Wrong { terms: ChallengeTerms },
    /// Expired or already used: no failure is counted (a double click must not cost an
    /// attempt), a fresh captcha is shown.
    Stale { terms: ChallengeTerms },
}

/// Judges a form answering `challenge` (genuine and this client's: see
/// [`super::token::check_challenge`]). `spend` records the challenge's nonce until the given
/// expiry (Unix seconds); it is called only for unexpired challenges, before the answer is
/// looked at, so every challenge is single-use whatever the answer.
pub fn judge(
    secrets: &Secrets,
    challenge: Challenge,
    form: &Form,
    client: ClientBinding,
    now: u64,
    spend: impl FnOnce(&[u8; 16], u64) -> Spend,
    new_pass_id: [u8; 16],
) -> Judgement {
    if challenge.expired(now) {
        return Judgement::Stale {
            terms: challenge.terms,
        };
    }
    if spend(&challenge.nonce, challenge.expires) == Spend::Replayed {
        return Judgement::Stale {
            terms: challenge.terms,
        };
    }
    let kind = challenge.terms.kind;
    let hardness = challenge.terms.hardness;
    // A picture captcha below hardness 3 may be answered by its audio alternative instead:
    // the digits of the clip its page links to, made again from the challenge's secret seed.
    if kind.is_picture() && !hardness.has_audio() && !form.digits.is_empty() {
        let heard = std::str::from_utf8(&form.digits)
            .ok()
            .and_then(normalize_digits);
        let spoken = std::str::from_utf8(&form.language)
            .ok()
            .filter(|tag| !tag.is_empty() && tag.len() <= 35)
            .and_then(|tag| secrets.audio_seed_of(&form.challenge, &challenge.nonce, tag))
            .map(super::audio::digits_of);
        return match heard.zip(spoken) {
            Some((heard, spoken)) if heard == spoken => {
                solved(secrets, challenge, client, now, new_pass_id)
            }
            _ => Judgement::Wrong {
                terms: challenge.terms,
            },
        };
    }
    let shown = match kind {
        super::ChallengeKind::Text => std::str::from_utf8(&form.answer)
            .ok()
            .and_then(normalize_answer),
        super::ChallengeKind::Emoji | super::ChallengeKind::Animals => {
            normalize_selection(&form.tiles, Grid::for_hardness(hardness).tiles())
        }
    };
    // At hardness 3 the challenge also asked for the digits of its audio clip.
    let answer = if hardness.has_audio() {
        let digits = std::str::from_utf8(&form.digits)
            .ok()
            .and_then(normalize_digits);
        shown
            .zip(digits)
            .map(|(shown, digits)| full_answer(&shown, Some(&digits)))
    } else {
        shown
    };
    match answer {
        Some(answer) if challenge.is_answer(secrets, &answer) => {
            solved(secrets, challenge, client, now, new_pass_id)
        }
        _ => Judgement::Wrong {
            terms: challenge.terms,
        },
    }
}

fn solved(
    secrets: &Secrets,
    challenge: Challenge,
    client: ClientBinding,
    now: u64,
    new_pass_id: [u8; 16],
) -> Judgement {
    let terms = challenge.terms;
    let expires = now.saturating_add(terms.pass_age);
    Judgement::Solved {
        pass: issue_pass(secrets, client, terms.hardness, expires, new_pass_id),
        delivery: terms.delivery,
        pass_age: terms.pass_age,
        return_path: terms.return_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::token::{check_challenge, check_pass, issue_challenge, Budget};
    use crate::policy::Hardness;

    /// The glue's order: the challenge is read and checked, then judged; `None` when it is
    /// not a genuine challenge of this client's.
    fn judge_form(
        s: &Secrets,
        form: &Form,
        client: ClientBinding,
        now: u64,
        spend: impl FnOnce(&[u8; 16], u64) -> Spend,
        id: [u8; 16],
    ) -> Option<Judgement> {
        let challenge = check_challenge(s, &form.challenge, client).ok()?;
        Some(judge(s, challenge, form, client, now, spend, id))
    }

    const NOW: u64 = 1_800_000_000;

    fn secrets() -> Secrets {
        Secrets::new(vec![42; 32], None).unwrap()
    }

    fn client() -> ClientBinding {
        ClientBinding::new("192.0.2.10".parse().unwrap(), b"Mozilla/5.0")
    }

    fn terms() -> ChallengeTerms {
        ChallengeTerms {
            kind: crate::challenge::ChallengeKind::Text,
            hardness: Hardness::NORMAL,
            pass_age: 3600,
            delivery: Delivery::Cookie,
            budget: Budget::default(),
            return_path: "/account".into(),
        }
    }

    fn form(token: &str, answer: &str) -> Form {
        Form {
            challenge: token.as_bytes().to_vec(),
            answer: answer.as_bytes().to_vec(),
            ..Form::default()
        }
    }

    fn picture_form(token: &str, tiles: &[&str], digits: &str, language: &str) -> Form {
        Form {
            challenge: token.as_bytes().to_vec(),
            tiles: tiles.iter().map(|t| t.as_bytes().to_vec()).collect(),
            digits: digits.as_bytes().to_vec(),
            language: language.as_bytes().to_vec(),
            ..Form::default()
        }
    }

    #[test]
    fn a_form_reads_every_ticked_tile_and_stops_counting_past_any_grid() {
        let f = Form::parse(b"challenge=x&tile=3&tile=12&lang=de&tile=1&lang=fr");
        assert_eq!(f.tiles, vec![b"3".to_vec(), b"12".to_vec(), b"1".to_vec()]);
        assert_eq!(f.language, b"de");
        let many = "tile=1&".repeat(100);
        let f = Form::parse(many.as_bytes());
        assert_eq!(f.tiles.len(), MAX_TILE_FIELDS + 1);
        assert_eq!(normalize_selection(&f.tiles, 20), None);
    }

    #[test]
    fn a_picture_captcha_takes_exactly_its_tiles() {
        let s = secrets();
        for kind in [
            crate::challenge::ChallengeKind::Emoji,
            crate::challenge::ChallengeKind::Animals,
        ] {
            let pictures = ChallengeTerms {
                kind,
                hardness: Hardness::EASY,
                ..terms()
            };
            let token = issue_challenge(&s, client(), &pictures, NOW + 120, [1; 16], "2,7,11");
            let attempt = |tiles: &[&str]| {
                judge_form(
                    &s,
                    &picture_form(&token, tiles, "", "en"),
                    client(),
                    NOW,
                    |_, _| Spend::Fresh,
                    [2; 16],
                )
            };
            let wrong = Some(Judgement::Wrong {
                terms: pictures.clone(),
            });
            assert!(matches!(
                attempt(&["7", "2", "11"]),
                Some(Judgement::Solved { .. })
            ));
            assert_eq!(attempt(&["2", "7"]), wrong, "partial");
            assert_eq!(attempt(&["2", "7", "11", "12"]), wrong, "extra");
            assert_eq!(attempt(&["2", "7", "13"]), wrong, "wrong");
            assert_eq!(attempt(&[]), wrong, "none");
            assert_eq!(attempt(&["2", "7", "11", "99"]), wrong, "a tampered index");
            assert_eq!(attempt(&["2", "7", "7", "11"]), wrong, "a tile twice");
            // The text field is not read for pictures.
            let mut f = picture_form(&token, &[], "", "en");
            f.answer = b"2,7,11".to_vec();
            assert_eq!(
                judge_form(&s, &f, client(), NOW, |_, _| Spend::Fresh, [2; 16]),
                wrong
            );
        }
    }

    #[test]
    fn a_picture_captcha_may_be_answered_by_its_clip_instead() {
        let s = secrets();
        let pictures = ChallengeTerms {
            kind: crate::challenge::ChallengeKind::Animals,
            hardness: Hardness::NORMAL,
            ..terms()
        };
        let nonce = [5; 16];
        let token = issue_challenge(&s, client(), &pictures, NOW + 120, nonce, "1,2,3,4");
        let spoken = crate::challenge::audio::digits_of(s.audio_seed(&nonce, "de"));
        let attempt = |digits: &str, language: &str| {
            judge_form(
                &s,
                &picture_form(&token, &[], digits, language),
                client(),
                NOW,
                |_, _| Spend::Fresh,
                [2; 16],
            )
        };
        let wrong = Some(Judgement::Wrong {
            terms: pictures.clone(),
        });
        assert!(matches!(
            attempt(&spoken, "de"),
            Some(Judgement::Solved { .. })
        ));
        // The digits of the clip in another language are other digits.
        assert_eq!(attempt(&spoken, "fr"), wrong);
        assert_eq!(attempt(&spoken, ""), wrong);
        let mut off = spoken.clone().into_bytes();
        off[0] = if off[0] == b'9' { b'0' } else { off[0] + 1 };
        assert_eq!(attempt(std::str::from_utf8(&off).unwrap(), "de"), wrong);
        // A token of someone else's secret yields no seed.
        let forged = issue_challenge(
            &Secrets::new(vec![7; 32], None).unwrap(),
            client(),
            &pictures,
            NOW + 120,
            nonce,
            "1,2,3,4",
        );
        let challenge = check_challenge(&s, token.as_bytes(), client()).unwrap();
        let mut f = picture_form(&forged, &[], &spoken, "de");
        f.challenge = forged.into_bytes();
        assert_eq!(
            Some(judge(
                &s,
                challenge,
                &f,
                client(),
                NOW,
                |_, _| Spend::Fresh,
                [2; 16]
            )),
            wrong
        );
    }

    #[test]
    fn a_hard_picture_captcha_needs_the_tiles_and_the_digits() {
        let s = secrets();
        let hard = ChallengeTerms {
            kind: crate::challenge::ChallengeKind::Emoji,
            hardness: Hardness::HARD,
            ..terms()
        };
        let nonce = [6; 16];
        let spoken = crate::challenge::audio::digits_of(s.audio_seed(&nonce, "en"));
        let answer = full_answer("3,9,14,20", Some(&spoken));
        let token = issue_challenge(&s, client(), &hard, NOW + 120, nonce, &answer);
        let attempt = |tiles: &[&str], digits: &str| {
            judge_form(
                &s,
                &picture_form(&token, tiles, digits, "en"),
                client(),
                NOW,
                |_, _| Spend::Fresh,
                [2; 16],
            )
        };
        let wrong = Some(Judgement::Wrong {
            terms: hard.clone(),
        });
        let tiles = ["3", "9", "14", "20"];
        assert!(matches!(
            attempt(&tiles, &spoken),
            Some(Judgement::Solved { .. })
        ));
        assert_eq!(attempt(&tiles, ""), wrong, "tiles alone");
        assert_eq!(
            attempt(&[], &spoken),
            wrong,
            "the clip alone is no alternative at 3"
        );
        assert_eq!(attempt(&tiles[..3], &spoken), wrong, "partial tiles");
    }

    #[test]
    fn digits_are_normalized_in_any_script() {
        assert_eq!(
            normalize_digits(" 40-917 352.861 ").as_deref(),
            Some("40917352861")
        );
        assert_eq!(normalize_digits("٤٠٩١").as_deref(), Some("4091"));
        assert_eq!(normalize_digits("۴۰").as_deref(), Some("40"));
        assert_eq!(normalize_digits("４０").as_deref(), Some("40"));
        assert_eq!(normalize_digits("").as_deref(), Some(""));
        assert_eq!(normalize_digits("12a"), None);
        assert_eq!(normalize_digits(&"1".repeat(33)), None);
        assert_eq!(normalize_digits(&" ".repeat(300)), None);
    }

    #[test]
    fn hardness_3_needs_both_the_text_and_the_digits() {
        let s = secrets();
        let hard = ChallengeTerms {
            kind: crate::challenge::ChallengeKind::Text,
            hardness: Hardness::HARD,
            ..terms()
        };
        let answer = full_answer("HXMR4UCE3R", Some("40917352861"));
        let token = issue_challenge(&s, client(), &hard, NOW + 120, [1; 16], &answer);
        let attempt = |text: &str, digits: &str| {
            let f = Form {
                challenge: token.as_bytes().to_vec(),
                answer: text.as_bytes().to_vec(),
                digits: digits.as_bytes().to_vec(),
                ..Form::default()
            };
            judge_form(&s, &f, client(), NOW, |_, _| Spend::Fresh, [2; 16])
        };
        let wrong = Some(Judgement::Wrong {
            terms: hard.clone(),
        });
        assert_eq!(
            attempt("HXMR4UCE3R", "40917352860"),
            wrong,
            "text right, digits wrong"
        );
        assert_eq!(
            attempt("HXMR4UCE3X", "40917352861"),
            wrong,
            "digits right, text wrong"
        );
        assert_eq!(attempt("HXMR4UCE3R", ""), wrong, "no digits");
        assert_eq!(attempt("", "40917352861"), wrong, "no text");
        assert_eq!(
            attempt("HXMR4UCE3R|40917352861", ""),
            wrong,
            "both in the text field"
        );
        assert!(matches!(
            attempt("hxmr4uce3r", "4091 7352 861"),
            Some(Judgement::Solved { .. })
        ));
    }

    #[test]
    fn forms_are_url_decoded() {
        let f = Form::parse(b"answer=k7m+p%58w&challenge=c1.a%2Eb&answer=ignored&x=%zz");
        assert_eq!(
            f,
            Form {
                challenge: b"c1.a.b".to_vec(),
                answer: b"k7m pXw".to_vec(),
                ..Form::default()
            }
        );
        assert_eq!(Form::parse(b""), Form::default());
        assert_eq!(Form::parse(b"answer=%").answer, b"%".to_vec());
        assert_eq!(Form::parse(b"answer=%4").answer, b"%4".to_vec());
        assert_eq!(
            Form::parse(b"digits=12+34&digits=5").digits,
            b"12 34".to_vec()
        );
    }

    #[test]
    fn the_right_answer_earns_a_pass_for_the_challenges_terms() {
        let s = secrets();
        let token = issue_challenge(&s, client(), &terms(), NOW + 120, [1; 16], "HXMR4U");
        let mut spent = Vec::new();
        let judgement = judge_form(
            &s,
            &form(&token, " hxmr 4u "),
            client(),
            NOW,
            |n, exp| {
                spent.push((*n, exp));
                Spend::Fresh
            },
            [2; 16],
        );
        let Some(Judgement::Solved {
            pass,
            delivery,
            pass_age,
            return_path,
        }) = judgement
        else {
            panic!("not solved: {judgement:?}");
        };
        assert_eq!(
            (delivery, pass_age, return_path.as_str()),
            (Delivery::Cookie, 3600, "/account")
        );
        assert_eq!(spent, vec![([1; 16], NOW + 120)]);
        let checked = check_pass(&s, pass.as_bytes(), client(), Hardness::NORMAL, NOW).unwrap();
        assert_eq!((checked.expires, checked.id), (NOW + 3600, [2; 16]));
    }

    #[test]
    fn a_wrong_answer_spends_the_challenge_and_counts() {
        let s = secrets();
        let token = issue_challenge(&s, client(), &terms(), NOW + 120, [1; 16], "HXMR4U");
        let mut spent = 0;
        for answer in ["HXMR4", "HXMR4UU", "", "HXMR4U\u{0}", "ÄÖÜ"] {
            let j = judge_form(
                &s,
                &form(&token, answer),
                client(),
                NOW,
                |_, _| {
                    spent += 1;
                    Spend::Fresh
                },
                [0; 16],
            );
            assert_eq!(j, Some(Judgement::Wrong { terms: terms() }), "{answer:?}");
        }
        assert_eq!(spent, 5);
    }

    #[test]
    fn replayed_expired_foreign_and_forged_challenges_are_stale() {
        let s = secrets();
        let token = issue_challenge(&s, client(), &terms(), NOW + 120, [1; 16], "HXMR4U");
        let stale = Some(Judgement::Stale { terms: terms() });
        assert_eq!(
            judge_form(
                &s,
                &form(&token, "HXMR4U"),
                client(),
                NOW,
                |_, _| Spend::Replayed,
                [0; 16]
            ),
            stale
        );
        let never =
            |_: &[u8; 16], _: u64| -> Spend { panic!("an expired challenge must not be spent") };
        assert_eq!(
            judge_form(
                &s,
                &form(&token, "HXMR4U"),
                client(),
                NOW + 120,
                never,
                [0; 16]
            ),
            stale
        );
        let other = ClientBinding::new("192.0.2.11".parse().unwrap(), b"Mozilla/5.0");
        let none = None;
        assert_eq!(
            judge_form(
                &s,
                &form(&token, "HXMR4U"),
                other,
                NOW,
                |_, _| Spend::Fresh,
                [0; 16]
            ),
            none
        );
        let forged = issue_challenge(
            &Secrets::new(vec![7; 32], None).unwrap(),
            client(),
            &terms(),
            NOW + 120,
            [1; 16],
            "A",
        );
        assert_eq!(
            judge_form(
                &s,
                &form(&forged, "A"),
                client(),
                NOW,
                |_, _| Spend::Fresh,
                [0; 16]
            ),
            none
        );
        assert_eq!(
            judge_form(
                &s,
                &Form::default(),
                client(),
                NOW,
                |_, _| Spend::Fresh,
                [0; 16]
            ),
            none
        );
    }
}
