//! The download of a captcha's clip (a hardness-3 page's, or a picture captcha's alternative): `GET /.captchaify/audio?challenge=TOKEN&lang=TAG`.
//! The clip is made again from its secret seed (the same bytes the page plays inline), for
//! the client the challenge was made for, while the challenge is open and unanswered; each
//! download counts against the client's audio budget. Text browsers need it: they cannot
//! save a `data:` URI as a file.

use ngx::ffi::ngx_int_t;
use ngx::http::Request;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{client, handler, language, response, LocConf, MainConf};
use crate::challenge::audio;
use crate::challenge::token::{check_challenge, ClientBinding};
use crate::pages::Page;

pub(crate) fn serve(r: &mut Request, mcf: &MainConf, lcf: &LocConf) -> ngx_int_t {
    if !client::is_get_or_head(r) {
        return response::write_not_allowed(r, "GET, HEAD");
    }
    let (Some(secrets), Some(zone)) = (mcf.secrets(), mcf.zone_state()) else {
        return response::write_status(r, 500);
    };
    let Some(spent) = zone.spent.as_ref() else {
        return response::write_status(r, 500);
    };
    let first = |name: &[u8]| client::argument(r, name);
    let token = first(b"challenge").unwrap_or_default();
    let address = client::address(r);
    let binding = ClientBinding::new(address, client::user_agent(r));
    // Someone else's, forged or garbage: nothing to give.
    let Ok(challenge) = check_challenge(secrets, &token, binding) else {
        return response::write_status(r, 403);
    };
    let languages = lcf.loc.pages().languages();
    let Some(index) = first(b"lang").and_then(|tag| languages.find(&tag)) else {
        return response::write_status(r, 404);
    };
    if !challenge.terms.offers_audio() {
        return response::write_status(r, 404);
    }
    let now = client::now();
    let answered = spent.is_spent(client::holder(), &challenge.nonce, challenge.expires);
    if challenge.expired(now.secs) || answered {
        return response::write_status(r, 410);
    }
    let tag = &languages.get(index).tag;
    // The budget of the location whose captcha this is, wherever this path falls.
    let budget = &challenge.terms.budget;
    if let Some(retry_after) = handler::audio_budget_spent(r, mcf, budget, true, address) {
        let language = language::choose(r, lcf, &challenge.terms.return_path);
        return response::write_rate_limited(
            r,
            lcf,
            &challenge.terms.return_path,
            retry_after,
            &language,
        );
    }
    let Some(seed) = secrets.audio_seed_of(&token, &challenge.nonce, tag) else {
        return response::write_status(r, 403);
    };
    let clip = audio::generate(tag, &mut ChaCha20Rng::from_seed(seed));
    let headers = [
        ("Content-Security-Policy", "default-src 'none'; sandbox"),
        (
            "Content-Disposition",
            "attachment; filename=\"captcha.wav\"",
        ),
    ];
    response::write_response(
        r,
        200,
        "audio/wav",
        &Page::FIXED_HEADERS,
        &[&headers],
        &clip.wav,
    )
}
