//! Judging an answered captcha form: what the client gets next. Pure logic; the glue reads
//! the request body, keeps the shared tables and sends the result.

use super::image::normalize_answer;
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
    /// The digits heard in the audio captcha (hardness 3).
    pub digits: Vec<u8>,
}

impl Form {
    /// Parses an `application/x-www-form-urlencoded` body; unknown fields are ignored, the
    /// first occurrence of a field wins.
    pub fn parse(body: &[u8]) -> Form {
        let mut form = Form::default();
        let (mut seen_challenge, mut seen_answer, mut seen_digits) = (false, false, false);
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
    let text = match challenge.terms.kind {
        super::ChallengeKind::Text => std::str::from_utf8(&form.answer)
            .ok()
            .and_then(normalize_answer),
    };
    // At hardness 3 the challenge also asked for the digits of its audio clip.
    let answer = if challenge.terms.hardness.has_audio() {
        let digits = std::str::from_utf8(&form.digits)
            .ok()
            .and_then(normalize_digits);
        text.zip(digits)
            .map(|(text, digits)| full_answer(&text, Some(&digits)))
    } else {
        text
    };
    match answer {
        Some(answer) if challenge.is_answer(secrets, &answer) => {
            let terms = challenge.terms;
            let expires = now.saturating_add(terms.pass_age);
            Judgement::Solved {
                pass: issue_pass(secrets, client, terms.hardness, expires, new_pass_id),
                delivery: terms.delivery,
                pass_age: terms.pass_age,
                return_path: terms.return_path,
            }
        }
        _ => Judgement::Wrong {
            terms: challenge.terms,
        },
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
            digits: vec![],
        }
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
                digits: vec![]
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
