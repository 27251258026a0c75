//! `$captchaify_*` variables for `log_format`, `add_header`, `map` and friends.

use ngx::core::Status;
use ngx::ffi::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_http_variable_value_t, ngx_int_t,
    ngx_str_t, NGX_HTTP_VAR_NOCACHEABLE,
};
use ngx::http::Request;
use ngx::ngx_string;

use super::request_state::{self, RequestState};

type Getter = fn(&RequestState) -> Option<&'static str>;

/// The decision: PASS, BLOCK, CHALLENGE, or BLOCK_DRY_RUN / CHALLENGE_DRY_RUN.
fn status(state: &RequestState) -> Option<&'static str> {
    state.outcome.map(|o| o.status())
}

/// The action of the location that decided: let, block, fight or captcha.
fn action(state: &RequestState) -> Option<&'static str> {
    state.action.map(|a| a.as_str())
}

const VARIABLES: [(ngx_str_t, Getter); 2] = [
    (ngx_string!("captchaify_status"), status),
    (ngx_string!("captchaify_action"), action),
];

pub(crate) fn register(cf: *mut ngx_conf_t) -> Status {
    for (index, (name, _)) in VARIABLES.iter().enumerate() {
        let mut name = *name;
        // SAFETY: preconfiguration runs with a valid `cf`; nginx copies the name.
        let var = unsafe { ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_NOCACHEABLE as _) };
        // SAFETY: a non-null result is a variable slot owned by the configuration.
        let Some(var) = (unsafe { var.as_mut() }) else {
            return Status::NGX_ERROR;
        };
        var.get_handler = Some(get_variable);
        var.data = index;
    }
    Status::NGX_OK
}

unsafe extern "C" fn get_variable(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    data: usize,
) -> ngx_int_t {
    // SAFETY: nginx calls variable getters with a live request and value slot.
    let (r, v) = unsafe { (Request::from_ngx_http_request(r), &mut *v) };
    let value = VARIABLES
        .get(data)
        .and_then(|(_, getter)| request_state::find(r).and_then(|state| getter(state)));
    match value {
        Some(text) => {
            // The values are static strings: nginx only reads them.
            v.data = text.as_ptr().cast_mut();
            v.set_len(text.len() as _);
            v.set_valid(1);
            v.set_no_cacheable(0);
            v.set_not_found(0);
        }
        None => v.set_not_found(1),
    }
    Status::NGX_OK.into()
}
