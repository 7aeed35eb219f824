//! The integration tests: one crate, each area in its own module, all through a real server on a random port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod addresses;
mod appkeys;
mod auth;
mod backups;
mod cli;
mod dhcpranges;
mod docs;
mod fields;
mod general;
mod groupcommit;
mod groups;
mod isolation;
mod levels;
mod org;
mod ratelimit;
mod rest;
mod rpc;
mod search;
mod subnets;
mod support;
mod tokens;
mod users;
mod fts;
