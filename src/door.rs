//! What a front door is to the server: it decodes a request's body into a [`Call`] and renders what came of it
//! into a status, a body and headers. `server.rs` runs every door through one pipeline, in one order: rate limit,
//! body, decode, dispatch, failure accounting, render, headers, log line. The envelope (`rpc.rs`) and REST
//! (`rest.rs`) are the two doors; neither sees hyper, the server hands them strings and bytes.

use crate::error::Error;
use crate::handler::{Call, Credentials, Outcome};
use crate::metrics::Endpoint;
use crate::model::Reply;

/// A front door of the API: one value per request, made by the server from the request's head (path, content
/// type, a bearer token), which keeps what it needs to render the answer (the envelope's `reqid`, REST's route).
pub trait Door {
    /// The method the request log line names: the one called (the envelope: the name asked for), or nothing (REST:
    /// no route matched).
    fn name(&self) -> &str;

    /// The door's name in the request log and the metrics: `1.0` or `rest`.
    fn door(&self) -> &'static str;

    /// The line of the request metrics the request is counted on: its method or route, from the fixed tables.
    fn endpoint(&self) -> Endpoint;

    /// The credentials the request's head carries. The rate limit needs them to tell whose budget a request
    /// spends, and counts as soon as they are known: from the head, before the body is read, so the body of a
    /// request over its budget is never read. The envelope's credentials travel in its body, so it keeps this
    /// default and is counted once its body is decoded; this is the one step whose place depends on the door.
    fn head_credentials(&self) -> Option<&Credentials> {
        None
    }

    /// Decodes the request's body into the call to dispatch. An error is answered as the request's outcome.
    fn decode(&mut self, body: &[u8]) -> Result<Call, Error>;

    /// Renders what came of the request: the dispatcher's outcome, or the error that stopped the request before
    /// dispatch (rate limit, body, decoding).
    fn render(&self, outcome: Outcome) -> Rendered;
}

/// A body serialised. Serialising into memory cannot fail; should it, the client still gets JSON. The buffer starts
/// at a size that holds a record or two, so that a small answer is not copied as it grows.
pub fn to_json(body: &impl serde::Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    match serde_json::to_writer(&mut out, body) {
        Ok(()) => out,
        Err(_) => b"{}".to_vec(),
    }
}

/// A door's answer. The server adds what every door's answer carries: `Content-Type` (when there is a body), the
/// error's `Retry-After` and the `X-RateLimit-*` headers.
#[derive(Debug)]
pub struct Rendered {
    pub status: u16,
    /// The JSON body; `None` for no body at all (REST's 204).
    pub body: Option<Vec<u8>>,
    /// The door's own headers (REST's `Allow` on a 405).
    pub headers: Vec<(&'static str, String)>,
    /// The error the answer reports, which may not be the outcome's (REST answers a reply it cannot render as an
    /// error): for the shared headers and the log line.
    pub error: Option<Error>,
    /// The outcome's respid and caller, for the log line.
    pub respid: String,
    pub caller: String,
    /// The rest of an answer streamed in parts (an export): `body` is its first part.
    pub more: Option<More>,
}

/// How a streamed answer goes on after its first part: the server dispatches `next`, writes what `render` makes of
/// its answer, and so on until `render` gives no next call; then `tail`. Each part is a call of its own through the
/// dispatcher (its own read transaction), made only once the part before has been taken by the client, so an answer
/// of any length holds a part or two in memory.
pub struct More {
    pub next: Call,
    pub render: RenderPart,
    /// Written after the last part.
    pub tail: Vec<u8>,
}

/// A part's bytes from its answer, and the call of the part after it (`None`: it was the last).
pub type RenderPart = Box<dyn Fn(&Reply) -> Result<(Vec<u8>, Option<Call>), Error> + Send>;

impl std::fmt::Debug for More {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("More")
            .field("next", &self.next.method)
            .finish_non_exhaustive()
    }
}
