//! `Accept-Language` and the language chooser's value, against the twelve built-in catalogs.
#![no_main]

use std::sync::OnceLock;

use captchaify::pages::i18n::{negotiate, Languages};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static LANGUAGES: OnceLock<Languages> = OnceLock::new();
    let languages = LANGUAGES.get_or_init(|| {
        Languages::builtin(captchaify::pages::PLACEHOLDERS).expect("the built-in catalogs")
    });
    let (explicit, header) = match data.iter().position(|&b| b == 0) {
        Some(at) => (Some(&data[..at]), &data[at + 1..]),
        None => (None, data),
    };
    let count = languages.all().len();
    let chosen = languages.choose(explicit, Some(header), 0);
    assert!(chosen < count);
    let tags: Vec<&str> = languages.all().iter().map(|l| l.tag.as_str()).collect();
    let picked = negotiate(Some(header), &tags, "en");
    assert!(picked == "en" || tags.contains(&picked));
});
