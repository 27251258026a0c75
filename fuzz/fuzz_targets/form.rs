//! The captcha form's body (`application/x-www-form-urlencoded`) and the answers in it: the
//! typed digits and the ticked tiles.
#![no_main]

use captchaify::challenge::flow::{normalize_digits, percent_decode, Form, MAX_TILE_FIELDS};
use captchaify::challenge::picture::grid::normalize_selection;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let form = Form::parse(data);
    // Decoding never grows a value, and one tile field too many is all that is kept.
    for field in [&form.challenge, &form.answer, &form.digits, &form.language] {
        assert!(field.len() <= data.len());
    }
    assert!(form.tiles.len() <= MAX_TILE_FIELDS + 1);
    assert!(percent_decode(data).len() <= data.len());
    if let Ok(text) = std::str::from_utf8(&form.digits) {
        if let Some(digits) = normalize_digits(text) {
            assert!(digits.len() <= 32 && digits.bytes().all(|b| b.is_ascii_digit()));
        }
    }
    for tiles in [9, 16, 20] {
        if let Some(selection) = normalize_selection(&form.tiles, tiles) {
            assert!(form.tiles.len() <= tiles);
            assert!(selection.is_ascii());
        }
    }
});
