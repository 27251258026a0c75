//! CrowdSec both ways (issue 7, in progress): decisions streamed from a Local API into the
//! module, and what the module learns pushed back as alerts. Pure parts only so far; nothing
//! here is wired into nginx yet.

pub mod stream;
pub mod store;
