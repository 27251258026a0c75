//! captchaify: a shield against bots and layer-7 floods, as an nginx dynamic module.
//!
//! The pure logic (`policy`, `pages`, `conf`) knows nothing of nginx and is covered by
//! `cargo test`; `nginx` is the glue that the module build adds on top.

pub mod cache;
pub mod challenge;
pub mod conf;
pub mod crawler;
pub mod crowdsec;
pub mod metrics;
pub mod pages;
pub mod policy;
pub mod process;
pub mod reputation;
pub mod request;
pub mod state;

// The fuzz harness kills table holders on purpose at crash points (src/state/harness.rs):
// never in a module. `scripts/test` also looks for its symbols in the built modules.
#[cfg(all(feature = "fuzz-harness", feature = "module"))]
compile_error!("the fuzz-harness feature is for the fuzz targets only, never with `module`");

// The glue references nginx symbols that only exist inside an nginx process, so the unit
// test binary (an executable) and the tools leave it out.
#[cfg(all(feature = "module", not(test)))]
mod nginx;
