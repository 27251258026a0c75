//! Sending one of our pages from a phase handler, without ever falling open.

use core::ptr;

use ngx::core::Status;
use ngx::ffi::{
    ngx_chain_t, ngx_create_temp_buf, ngx_http_discard_request_body, ngx_http_finalize_request,
    ngx_http_output_filter, ngx_http_send_header, ngx_int_t, ngx_str_t, NGX_HTTP_INTERNAL_SERVER_ERROR,
};
use ngx::http::Request;

use crate::pages::Page;

/// Answers the request with `page` and finalizes it. The phase handler must return the
/// result, which is always `NGX_DONE`: returning `NGX_OK` from the access phase would mean
/// "allowed", and nginx would serve the protected content after our page.
pub(crate) fn send_page(r: &mut Request, page: &Page) -> ngx_int_t {
    let rc = write_page(r, page);
    let raw: *mut ngx::ffi::ngx_http_request_t = r.into();
    // SAFETY: `raw` is the live request; finalizing with the send result is what content
    // handlers do, and NGX_DONE below tells the phase engine the request is taken care of.
    unsafe { ngx_http_finalize_request(raw, rc) };
    Status::NGX_DONE.into()
}

fn write_page(r: &mut Request, page: &Page) -> ngx_int_t {
    let raw: *mut ngx::ffi::ngx_http_request_t = r.into();
    // SAFETY: all pointers below come from the live request and its pool.
    unsafe {
        // A POST's body must be read and dropped, or keepalive breaks on the next request.
        let rc = ngx_http_discard_request_body(raw);
        if rc != Status::NGX_OK.into() {
            return rc;
        }

        let pool = (*raw).pool;
        let out = &mut (*raw).headers_out;
        out.status = page.status as _;
        out.content_length_n = page.body.len() as _;
        out.content_type = ngx_str_t::from_str(pool, "text/html");
        out.content_type_len = out.content_type.len;
        out.charset = ngx_str_t::from_str(pool, "utf-8");
        out.content_type_lowcase = ptr::null_mut();
        let headers = Page::FIXED_HEADERS
            .iter()
            .copied()
            .chain([("Content-Security-Policy", page.content_security_policy.as_str())]);
        for (name, value) in headers {
            if r.add_header_out(name, value).is_none() {
                return NGX_HTTP_INTERNAL_SERVER_ERROR as _;
            }
        }

        let rc = ngx_http_send_header(raw);
        if rc == Status::NGX_ERROR.into() || rc > Status::NGX_OK.into() || (*raw).header_only() != 0 {
            return rc;
        }

        let body = page.body.as_bytes();
        let buf = ngx_create_temp_buf(pool, body.len().max(1));
        if buf.is_null() {
            return Status::NGX_ERROR.into();
        }
        ptr::copy_nonoverlapping(body.as_ptr(), (*buf).pos, body.len());
        (*buf).last = (*buf).pos.add(body.len());
        (*buf).set_last_buf(if raw == (*raw).main { 1 } else { 0 });
        (*buf).set_last_in_chain(1);
        let mut chain = ngx_chain_t { buf, next: ptr::null_mut() };
        ngx_http_output_filter(raw, &mut chain)
    }
}
