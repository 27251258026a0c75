//! State shared by all workers, written over a plain memory region so the same code runs in
//! nginx's shared memory and in unit tests.

pub mod forwarded;
#[cfg(any(test, feature = "fuzz-harness"))]
pub mod harness;
pub mod holder;
pub mod lock;
pub mod metrics;
pub mod rate;
pub mod records;
pub mod reputation;
pub mod spent;
pub mod table;

/// Where a holder killed in the middle of an operation on shared memory may stop: between two
/// writes that the recovery must cope with being cut apart. Nothing in the module; the unit
/// tests and the fuzz targets stop a holder here ([`harness::killed_during`]).
#[inline(always)]
pub(crate) fn crash_point() {
    #[cfg(any(test, feature = "fuzz-harness"))]
    harness::at_crash_point();
}
