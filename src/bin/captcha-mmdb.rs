//! Builds small MaxMind-format databases for tests (filled in by issue 6).
fn main() {}
