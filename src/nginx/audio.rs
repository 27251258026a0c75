//! The download of a hardness-3 page's clip: `GET /.captchaify/audio?challenge=TOKEN&lang=TAG`.
//! The clip is made again from its secret seed (the same bytes the page plays inline), for
//! the client the challenge was made for, while the challenge is open and unanswered; each
//! download counts against the client's audio budget. Text browsers need it: they cannot
//! save a `data:` URI as a file.

use ngx::ffi::{
    ngx_int_t, NGX_HTTP_FORBIDDEN, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_ALLOWED,
    NGX_HTTP_NOT_FOUND,
};
use ngx::http::Request;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{client, handler, language, response, LocConf, MainConf};
use crate::challenge::audio;
use crate::challenge::token::{check_challenge, ClientBinding};
use crate::pages::Page;

/// 410: the challenge expired or was answered; its clip is gone with it.
const GONE: ngx_int_t = 410;

pub(crate) fn serve(r: &mut Request, mcf: &MainConf, lcf: &LocConf) -> ngx_int_t {
    if !client::is_get_or_head(r) {
        return NGX_HTTP_NOT_ALLOWED as _;
    }
    let (Some(secrets), Some(zone)) = (mcf.secrets(), mcf.zone_state()) else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as _;
    };
    let Some(spent) = zone.spent.as_ref() else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as _;
    };
    let first = |name: &[u8]| client::argument(r, name);
    let token = first(b"challenge").unwrap_or_default();
    let binding = ClientBinding::new(client::address(r), client::user_agent(r));
    // Someone else's, forged or garbage: nothing to give.
    let Ok(challenge) = check_challenge(secrets, &token, binding) else {
        return NGX_HTTP_FORBIDDEN as _;
    };
    let languages = lcf.pages().languages();
    let Some(index) = first(b"lang").and_then(|tag| languages.find(&tag)) else {
        return NGX_HTTP_NOT_FOUND as _;
    };
    if challenge.terms.hardness.get() < 3 {
        return NGX_HTTP_NOT_FOUND as _;
    }
    let now = client::now();
    let answered = spent.with(client::pid(), |t| t.get(&challenge.nonce, now.millis).is_some());
    if challenge.expired(now.secs) || answered {
        return GONE;
    }
    let tag = &languages.get(index).tag;
    if let Some(retry_after) = handler::audio_budget_spent(r, mcf, lcf, challenge.terms.hardness) {
        let language = language::choose(r, lcf, &challenge.terms.return_path);
        return response::write_rate_limited(r, lcf, &challenge.terms.return_path, retry_after, &language);
    }
    let Some(seed) = secrets.audio_seed_of(&token, &challenge.nonce, tag) else {
        return NGX_HTTP_FORBIDDEN as _;
    };
    let clip = audio::generate(tag, &mut ChaCha20Rng::from_seed(seed));
    let headers: Vec<(&str, &str)> = Page::FIXED_HEADERS
        .iter()
        .copied()
        .chain([
            ("Content-Security-Policy", "default-src 'none'; sandbox"),
            ("Content-Disposition", "attachment; filename=\"captcha.wav\""),
        ])
        .collect();
    response::write_response(r, 200, "audio/wav", &headers, &clip.wav)
}
