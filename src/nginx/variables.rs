//! `$captchaify_*` variables for `log_format`, `add_header`, `map` and friends.

use ngx::core::Status;
use ngx::ffi::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_http_variable_value_t, ngx_int_t,
    ngx_str_t, NGX_HTTP_VAR_NOCACHEABLE,
};
use ngx::http::Request;
use ngx::ngx_string;

use super::request_state::{self, RequestState};
use super::Module;
use ngx::http::HttpModuleMainConf;

/// A variable's value, borrowed from the request's state (which lives in the request pool)
/// or static.
type Getter = for<'a> fn(&Request, &'a mut RequestState) -> Option<&'a [u8]>;

/// The decision: PASS, BLOCK, CHALLENGE, or BLOCK_DRY_RUN / CHALLENGE_DRY_RUN.
fn status<'a>(_r: &Request, state: &'a mut RequestState) -> Option<&'a [u8]> {
    state.outcome.map(|o| o.status().as_bytes())
}

/// The action of the location that decided: let, block, fight or captcha.
fn action<'a>(_r: &Request, state: &'a mut RequestState) -> Option<&'a [u8]> {
    state.action.map(|a| a.as_str().as_bytes())
}

/// The client's country (ISO code), from `captchaify_geoip_db` or ip-api; not found when
/// unknown.
fn country<'a>(r: &Request, state: &'a mut RequestState) -> Option<&'a [u8]> {
    let mcf = Module::main_conf(r).filter(|m| m.used)?;
    state
        .geo(mcf)
        .country
        .as_ref()
        .map(|c| c.as_str().as_bytes())
}

/// The client's AS number, in decimal.
fn asn<'a>(r: &Request, state: &'a mut RequestState) -> Option<&'a [u8]> {
    let mcf = Module::main_conf(r).filter(|m| m.used)?;
    state.geo(mcf).asn_text()
}

/// Whether the variable needs the request state created (the others only read a decision).
const VARIABLES: [(ngx_str_t, Getter, bool); 4] = [
    (ngx_string!("captchaify_status"), status, false),
    (ngx_string!("captchaify_action"), action, false),
    (ngx_string!("captchaify_country"), country, true),
    (ngx_string!("captchaify_asn"), asn, true),
];

pub(crate) fn register(cf: *mut ngx_conf_t) -> Status {
    for (index, (name, _, _)) in VARIABLES.iter().enumerate() {
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
    let value = super::unwind::guarded(
        "a variable",
        || None,
        || {
            VARIABLES.get(data).and_then(|(_, getter, create)| {
                let state = match create {
                    true => request_state::find_or_create(r),
                    false => request_state::find(r),
                };
                state.and_then(|state| getter(r, state))
            })
        },
    );
    match value {
        Some(text) => {
            // Static strings or bytes in the request's state: both outlive the request, and
            // nginx only reads them.
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
