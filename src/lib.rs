//! ipamd: an IP address management server. One method table ([`methods::METHODS`]) behind one dispatcher
//! ([`dispatch::dispatch`]), reached through the manageips `/1.0` envelope API. See ARCHITECTURE.md.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod dispatch;
pub mod door;
pub mod error;
pub mod handler;
pub mod logging;
pub mod methods;
pub mod net;
pub mod openapi;
pub mod params;
pub mod ratelimit;
pub mod rest;
pub mod rpc;
pub mod server;
pub mod slots;
pub mod store;
pub mod time;
