//! Address sets (filled in by issue 6).
