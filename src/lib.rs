//! ipamd: an IP address management server. One method table ([`methods::METHODS`]) behind one dispatcher
//! ([`dispatch::dispatch`]), reached through three doors: the manageips `/1.0` envelope API ([`rpc`]) and the `/api/v1`
//! REST API ([`rest`]), which [`server`] runs through one pipeline ([`door::Door`]), and the web UI at `/ui/` ([`ui`]).
//!
//! The request path is in layers, each importing only the ones below it: the doors ([`server`], [`door`], [`rpc`],
//! [`rest`], [`openapi`], [`ui`]); the dispatcher ([`dispatch`], and [`credentials`] for credential checks); the
//! handlers ([`methods`]); and under both the vocabulary they share ([`handler`]: `Method`, `Caller`, `Call`,
//! `Outcome`, `Ctx`, `Params`, the audit `Change`). The dispatcher is handed the method table ([`app::App`] holds it)
//! instead of importing the handlers. See ARCHITECTURE.md.

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod csv;
pub mod db;
pub mod dispatch;
pub mod door;
pub mod error;
pub mod handler;
pub mod idempotency;
pub mod logging;
pub mod methods;
pub mod metrics;
pub mod model;
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
pub mod tls;
pub mod ui;
pub mod webhooks;
