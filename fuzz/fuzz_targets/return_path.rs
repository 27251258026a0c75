//! Where a solved captcha sends its client: the return path made from a request URI, and
//! the check every signed return path passes again. An open redirect or a header injection
//! would start here.
#![no_main]

use captchaify::challenge::token::{
    is_safe_return_path, return_path_for, strip_argument, strip_pass_argument, with_pass_argument,
    MAX_RETURN_PATH, PASS_NAME, PRECHECK_NAME,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|uri: &[u8]| {
    let path = return_path_for(uri);
    // Always safe: one leading `/`, no `//` or `\`, no control bytes, ASCII only.
    assert!(is_safe_return_path(path.as_bytes()), "{uri:?} -> {path:?}");
    assert!(!path.starts_with("//") && !path.contains('\\'));
    assert!(!path.bytes().any(|b| b.is_ascii_control() || !b.is_ascii()));
    // Our own arguments never survive into it.
    if let Some((_, query)) = path.split_once('?') {
        for arg in query.split('&') {
            let name = arg.split('=').next().unwrap_or_default();
            assert!(name != PASS_NAME && name != PRECHECK_NAME, "{path:?}");
            assert!(!arg.is_empty(), "{path:?}");
        }
    }
    // A safe path is its own return path.
    assert_eq!(return_path_for(path.as_bytes()), path);
    // The pass argument appended in cookie-less mode is taken off again, and nothing else.
    // (Only the stored return path is held to MAX_RETURN_PATH; the redirect that carries the
    // pass may be that much longer, and is otherwise as safe.)
    let with = with_pass_argument(&path, "v1.token");
    assert!(with.len() > MAX_RETURN_PATH || is_safe_return_path(with.as_bytes()), "{with:?}");
    assert!(with.starts_with('/') && !with.starts_with("//") && !with.contains('\\'));
    assert!(with.bytes().all(|b| b.is_ascii_graphic()), "{with:?}");
    assert_eq!(strip_pass_argument(&with), path);
    if let Ok(text) = std::str::from_utf8(uri) {
        let stripped = strip_argument(text, PRECHECK_NAME);
        assert!(stripped.len() <= text.len());
    }
});
