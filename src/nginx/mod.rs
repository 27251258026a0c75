//! The nginx glue: module definition, directives, handlers, responses, zone and variables.
//!
//! Everything here converts nginx structures into plain values, calls the core
//! (`policy`, `pages`, `conf`), and turns the answer back into nginx actions.

mod audio;
mod background;
mod client;
mod conf;
mod crawlers;
mod crowdsec;
mod directives;
mod forwarded;
mod handler;
mod hints;
mod language;
mod metrics;
mod offload;
mod precheck;
mod request_state;
mod response;
mod setting;
mod unwind;
mod variables;
mod verify;
mod zone;

use core::ffi::c_void;
use core::ptr::{self, addr_of, addr_of_mut};

use ngx::core::Status;
use ngx::ffi::{
    ngx_array_push, ngx_conf_t, ngx_cycle_t, ngx_http_conf_ctx_t, ngx_http_handler_pt,
    ngx_http_module, ngx_http_module_t, ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
    ngx_http_phases_NGX_HTTP_PREACCESS_PHASE, ngx_int_t, ngx_module_t, NGX_HTTP_MODULE,
    NGX_PROCESS_SINGLE, NGX_PROCESS_WORKER,
};
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};

pub(crate) use conf::{LocConf, MainConf};

pub(crate) struct Module;

impl HttpModule for Module {
    fn module() -> &'static ngx_module_t {
        // SAFETY: the module table is a static that nginx only writes while loading the
        // configuration (ctx_index and index), before any request is handled.
        unsafe { &*addr_of!(ngx_http_captchaify_module) }
    }

    unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        unwind::guarded(
            "the module's preconfiguration",
            || Status::NGX_ERROR.into(),
            move || variables::register(cf).into(),
        )
    }

    unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        unwind::guarded(
            "the module's postconfiguration",
            || Status::NGX_ERROR.into(),
            move || {
                // SAFETY: nginx calls postconfiguration with a valid configuration context.
                let cf = unsafe { &mut *cf };
                let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(cf) else {
                    return Status::NGX_ERROR.into();
                };
                // Main requests are decided in the access phase, after `realip` has rewritten the
                // client address. nginx skips the access phase for subrequests, so they are checked
                // in preaccess instead; the handler there ignores main requests.
                let phases = [
                    (
                        ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
                        handler::access_handler as _,
                    ),
                    (
                        ngx_http_phases_NGX_HTTP_PREACCESS_PHASE,
                        handler::subrequest_handler as _,
                    ),
                ];
                for (phase, handler) in phases {
                    // SAFETY: the phase array holds `ngx_http_handler_pt` elements; push returns room
                    // for one or null.
                    let slot = unsafe { ngx_array_push(&mut cmcf.phases[phase as usize].handlers) }
                        as *mut ngx_http_handler_pt;
                    if slot.is_null() {
                        return Status::NGX_ERROR.into();
                    }
                    // SAFETY: `slot` points at a fresh element of the handlers array.
                    unsafe { *slot = Some(handler) };
                }
                // A test build hands every client the answer: loaded anywhere but by the
                // project's own test scripts (which say so in the environment), it says so.
                #[cfg(feature = "test-answers")]
                if std::env::var_os("CAPTCHAIFY_TEST_MODULE").is_none() {
                    ngx::ngx_conf_log_error!(
                        ngx::ffi::NGX_LOG_ALERT,
                        cf,
                        "captchaify: this is the TEST build of the module (feature test-answers): \
                         its captcha pages tell every client the answer; load the release build"
                    );
                }
                // Captcha pages are drawn in nginx's thread pool, when the module is used at all.
                if let Some(mcf) = Module::main_conf_mut(&*cf).filter(|m| m.used) {
                    mcf.thread_pool = offload::add_pool(cf);
                    if conf::finish(cf, mcf).is_err() {
                        return Status::NGX_ERROR.into();
                    }
                }
                Status::NGX_OK.into()
            },
        )
    }
}

unsafe impl HttpModuleMainConf for Module {
    type MainConf = MainConf;
}

unsafe impl HttpModuleLocationConf for Module {
    type LocationConf = LocConf;
}

/// Merges a level of the configuration with the one around it (see [`conf::merge`]).
unsafe extern "C" fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    prev: *mut c_void,
    conf: *mut c_void,
) -> *mut core::ffi::c_char {
    unwind::guarded(
        "merging a location's configuration",
        || ngx::core::NGX_CONF_ERROR,
        move || {
            // SAFETY: nginx passes two location configurations of this module, created by
            // create_loc_conf.
            let (prev, conf) = unsafe { (&*prev.cast::<LocConf>(), &mut *conf.cast::<LocConf>()) };
            conf::merge(cf, prev, conf);
            if let Some(place) = conf.serves_metrics.as_deref() {
                if !metrics::still_serves(cf) {
                    ngx::ngx_conf_log_error!(
                        ngx::ffi::NGX_LOG_EMERG,
                        cf,
                        "\"captchaify_metrics\" directive in {}: another content handler in \
                         its location replaced it",
                        place
                    );
                    return ngx::core::NGX_CONF_ERROR;
                }
            }
            ngx::core::NGX_CONF_OK
        },
    )
}

/// `init_process`: a worker (or the single process) starts. Every process that may take a
/// table's lock over from a dead worker says so in the log; worker 0 (or the single process)
/// starts the background jobs when the module is used. Threads start here, after the fork,
/// never in the master.
unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    unwind::guarded(
        "the worker's start",
        || Status::NGX_OK.into(),
        move || {
            let _ = crate::state::lock::TAKEOVER_REPORT.set(zone::report_takeover);
            // SAFETY: nginx's process globals, read on the main thread.
            let (process, worker) = unsafe { (ngx::ffi::ngx_process, ngx::ffi::ngx_worker) };
            let single = process == NGX_PROCESS_SINGLE as ngx::ffi::ngx_uint_t;
            if !(single || (process == NGX_PROCESS_WORKER as ngx::ffi::ngx_uint_t && worker == 0)) {
                return Status::NGX_OK.into();
            }
            // SAFETY: the cycle is live; its http configuration, if any, holds our main conf.
            let Some(mcf) = (unsafe { main_conf(cycle) }) else {
                return Status::NGX_OK.into();
            };
            if mcf.used {
                // SAFETY: the cycle's log lives as long as the process.
                background::start(mcf, unsafe { (*cycle).log });
            }
            Status::NGX_OK.into()
        },
    )
}

/// `exit_process`: the background jobs' threads are told to stop.
unsafe extern "C" fn exit_process(_cycle: *mut ngx_cycle_t) {
    unwind::guarded("the worker's exit", || (), background::stop)
}

/// Our main configuration in a cycle.
///
/// # Safety
/// `cycle` must be a live cycle.
unsafe fn main_conf<'a>(cycle: *mut ngx_cycle_t) -> Option<&'a MainConf> {
    // SAFETY: ngx_http_cycle_get_module_main_conf, spelled out.
    unsafe {
        let ctx = (*(*cycle).conf_ctx.add(ngx_http_module.index)).cast::<ngx_http_conf_ctx_t>();
        let ctx = ctx.as_ref()?;
        let module = &*ptr::addr_of!(ngx_http_captchaify_module);
        (*ctx.main_conf.add(module.ctx_index))
            .cast::<MainConf>()
            .as_ref()
    }
}

static NGX_HTTP_CAPTCHAIFY_MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(Module::preconfiguration),
    postconfiguration: Some(Module::postconfiguration),
    create_main_conf: Some(Module::create_main_conf),
    init_main_conf: Some(conf::init_main_conf),
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(Module::create_loc_conf),
    merge_loc_conf: Some(merge_loc_conf),
};

ngx::ngx_modules!(ngx_http_captchaify_module);

#[used]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_captchaify_module: ngx_module_t = ngx_module_t {
    ctx: addr_of!(NGX_HTTP_CAPTCHAIFY_MODULE_CTX) as *mut c_void,
    commands: addr_of_mut!(directives::COMMANDS) as *mut _,
    type_: NGX_HTTP_MODULE as _,
    init_process: Some(init_process),
    exit_process: Some(exit_process),
    ..ngx_module_t::default()
};
