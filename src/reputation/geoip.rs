//! Country and AS-number lookups in MaxMind-format databases (filled in by issue 6).
