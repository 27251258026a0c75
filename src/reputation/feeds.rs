//! Parsers of the reputation sources' formats (filled in by issue 6).
