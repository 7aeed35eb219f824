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

/// Tunes glibc's malloc, which serves what is not Rust's (the bundled SQLite's page caches, statements and full-text
/// buffers; Rust's own allocations go to mimalloc): up to 1 MiB free at the top of a thread's arena is kept for the
/// next allocation instead of being handed back to the kernel at once. With the default (128 KiB, moved only by
/// large blocks) the writer thread handed its arena back after each group commit and faulted the same pages in
/// again in the next, a TLB shootdown across cores each time: an allocation cost the server 125 µs of CPU instead of
/// 73 (BENCHMARKS.md, "Fourth pass"), for about 6 MB more resident. Called first thing in `main`, before any other
/// thread starts.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of glibc's allocator, and takes its lock to do so.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}
