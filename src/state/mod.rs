//! State shared by all workers, written over a plain memory region so the same code runs in
//! nginx's shared memory and in unit tests.

pub mod forwarded;
pub mod holder;
pub mod lock;
pub mod metrics;
pub mod rate;
pub mod records;
pub mod reputation;
pub mod spent;
pub mod table;
