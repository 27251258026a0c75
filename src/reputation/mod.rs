//! Who is suspicious by address: allow and deny lists, reputation feeds (Tor exits, ip-api,
//! StopForumSpam) and country and AS-number rules, free of nginx types.
//!
//! Feeds that need the network are fetched by one background thread per server (see
//! `nginx::fetcher`); what they say is kept in the shared zone. This module holds the parts
//! that need neither: parsing, address sets and database lookups.

pub mod feeds;
pub mod geoip;
#[cfg(any(test, feature = "tools"))]
pub mod mmdb_writer;
pub mod ranges;
