//! The shared-memory zone: declared at configuration time, laid out once, reused on reload.
//!
//! The zone starts with a [`ZoneHeader`]: plain data only (no process pointers), so that it
//! means the same in every worker and in the next generation of workers after a reload.

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr::{self, addr_of_mut};

use ngx::core::Status;
use ngx::ffi::{
    ngx_conf_t, ngx_int_t, ngx_shared_memory_add, ngx_shm_zone_t, ngx_slab_alloc, ngx_slab_pool_t,
    ngx_str_t, NGX_LOG_NOTICE,
};
use ngx::ngx_log_error;

use super::directives::reject;
use super::ngx_http_captchaify_module;
use crate::conf::ZoneSpec;

const MAGIC: u64 = u64::from_be_bytes(*b"cptchfy\0");
const LAYOUT_VERSION: u32 = 1;

/// The first thing in the zone. Written once by the first configuration that creates the
/// zone, read by every worker since.
#[repr(C)]
pub(crate) struct ZoneHeader {
    magic: u64,
    layout_version: u32,
    _reserved: u32,
    /// Signs tokens when no `captchaify_secret_file` is configured; created once per zone,
    /// so it survives reloads.
    pub secret: [u8; 32],
}

/// Per-configuration handle on the zone, kept in the configuration pool.
struct ZoneCtx {
    header: *mut ZoneHeader,
}

/// Declares the zone. Returns `None` after logging why it cannot be declared.
pub(crate) fn add(cf: *mut ngx_conf_t, spec: &ZoneSpec) -> Option<*mut ngx_shm_zone_t> {
    // SAFETY: `cf` is the live configuration context; strings and the context struct are
    // allocated in its pool, which lives as long as the configuration that uses the zone.
    unsafe {
        let pool = (*cf).pool;
        let mut name = ngx_str_t::from_bytes(pool, spec.name.as_bytes())?;
        let shm_zone = ngx_shared_memory_add(
            cf,
            &mut name,
            spec.size,
            addr_of_mut!(ngx_http_captchaify_module).cast(),
        );
        if shm_zone.is_null() {
            return None;
        }
        if !(*shm_zone).data.is_null() {
            reject(cf, "captchaify_zone", format_args!("zone \"{}\" is already declared", spec.name));
            return None;
        }
        let ctx = ngx::core::Pool::from_ngx_pool(pool).allocate(ZoneCtx { header: ptr::null_mut() });
        if ctx.is_null() {
            return None;
        }
        (*shm_zone).init = Some(init_zone);
        (*shm_zone).data = ctx.cast();
        Some(shm_zone)
    }
}

/// Zone init callback: reuse the previous configuration's layout on reload, otherwise lay
/// out a fresh header. Also runs for `nginx -t`.
unsafe extern "C" fn init_zone(shm_zone: *mut ngx_shm_zone_t, previous: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx calls this with the zone declared in `add`, whose data is our ZoneCtx,
    // and `previous` is null or the ZoneCtx of the configuration being replaced.
    unsafe {
        let zone = &mut *shm_zone;
        let ctx = &mut *zone.data.cast::<ZoneCtx>();
        let shpool = zone.shm.addr.cast::<ngx_slab_pool_t>();
        if let Some(previous) = previous.cast::<ZoneCtx>().as_ref() {
            ctx.header = previous.header;
            return Status::NGX_OK.into();
        }
        if zone.shm.exists != 0 {
            ctx.header = (*shpool).data.cast();
            return Status::NGX_OK.into();
        }
        let header = ngx_slab_alloc(shpool, size_of::<ZoneHeader>()).cast::<ZoneHeader>();
        if header.is_null() {
            return Status::NGX_ERROR.into();
        }
        let mut secret = [0u8; 32];
        if getrandom::getrandom(&mut secret).is_err() {
            return Status::NGX_ERROR.into();
        }
        header.write(ZoneHeader { magic: MAGIC, layout_version: LAYOUT_VERSION, _reserved: 0, secret });
        (*shpool).data = header.cast();
        ctx.header = header;
        ngx_log_error!(
            NGX_LOG_NOTICE,
            zone.shm.log,
            "captchaify: zone \"{}\" of {} bytes initialised",
            String::from_utf8_lossy(zone.shm.name.as_bytes()),
            zone.shm.size
        );
        Status::NGX_OK.into()
    }
}

/// The header of a zone whose init has run.
///
/// Only the token code (the captcha issue) reads it so far.
/// # Safety
/// `shm_zone` must be a zone declared by [`add`] in the running configuration.
#[allow(dead_code)]
pub(crate) unsafe fn header<'a>(shm_zone: *mut ngx_shm_zone_t) -> Option<&'a ZoneHeader> {
    // SAFETY: the caller guarantees a zone of ours; its header lives as long as the zone.
    unsafe {
        let ctx = (*shm_zone).data.cast::<ZoneCtx>().as_ref()?;
        let header = ctx.header.as_ref()?;
        (header.magic == MAGIC && header.layout_version == LAYOUT_VERSION).then_some(header)
    }
}
