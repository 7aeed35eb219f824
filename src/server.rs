//! The HTTP server: the accept loop, limits and timeouts, graceful shutdown, and routing of paths to the
//! front doors (`/1.0/<method>` to the envelope adapter, `/healthz`), with JSON answers for everything else.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::app::App;
use crate::auth;
use crate::auth::CallerKey;
use crate::dispatch;
use crate::door::{to_json, Door, Rendered};
use crate::error::{Code, Error};
use crate::handler::{Credentials, Outcome};
use crate::ratelimit::{Decision, Owner};
use crate::rest::{self, RestDoor};
use crate::rpc::EnvelopeDoor;
use crate::slots::{Admission, CLOSE_GRACE};

/// Largest request body either API accepts.
pub const MAX_BODY: usize = 1024 * 1024;
/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub type Body = Full<Bytes>;

/// Serves `listener` until `shutdown` completes, then drains in-flight requests.
///
/// The limits come from the settings: `header_timeout` (to send the request headers, and the most a keep-alive
/// connection may sit idle), `body_timeout` (to send the body), `max_connections` (served at once) and
/// `max_connections_per_address`; the app's [`crate::slots::Slots`] decide who gives way when they run out.
pub async fn run(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let slots = app.slots.clone();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(app.settings.header_timeout())
        .keep_alive(true);
    tokio::pin!(shutdown);
    // Webhook deliveries run beside the server, on tasks of their own, and stop with it.
    let deliveries = tokio::spawn(crate::webhooks::deliver(app.clone()));
    'accept: loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Running out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = loop {
            let changed = slots.changed();
            match slots.admit(crate::net::client(peer.ip())) {
                Admission::Admitted(slot) => break slot,
                Admission::Refused => {
                    tracing::debug!(peer = %peer.ip(), "connection refused: the address holds its share of busy connections");
                    continue 'accept;
                }
                Admission::Wait => tokio::select! {
                    _ = &mut shutdown => break 'accept,
                    _ = changed => {}
                },
            }
        };
        let _ = stream.set_nodelay(true);
        let (app, conn, owner) = (app.clone(), slot.conn.clone(), slots.clone());
        let service = service_fn(move |req| {
            let (app, conn, slots) = (app.clone(), conn.clone(), owner.clone());
            async move {
                let _in_flight = conn.begin(&slots);
                Ok::<_, Infallible>(handle(&app, req, peer.ip()).await)
            }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            // Asked to close (to make room, or at shutdown): an idle connection closes at once, a busy one after
            // its answer.
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = slot.conn.close.notified() => {
                    connection.as_mut().graceful_shutdown();
                    // Still writing an answer its client does not read: dropping the connection closes it.
                    tokio::time::timeout(CLOSE_GRACE, connection).await.unwrap_or(Ok(()))
                }
                _ = async { stopping.wait_for(|s| *s).await.is_ok() } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    deliveries.abort();
    let _ = stop.send(true);
    let drained = async {
        while slots.open() > 0 {
            let changed = slots.changed();
            if slots.open() == 0 {
                break;
            }
            changed.await;
        }
    };
    tokio::select! {
        _ = drained => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("drain timed out; closing the remaining connections"),
    }
    Ok(())
}

/// Routes one request.
async fn handle(app: &App, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return match *req.method() {
            Method::GET | Method::HEAD => json_response(StatusCode::OK, &json!({"status": "ok"})),
            _ => method_not_allowed("GET, HEAD"),
        };
    }
    if let Some(method) = path.strip_prefix("/1.0/") {
        if req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        let door = EnvelopeDoor::new(method.to_string(), is_form(&req));
        return serve(app, door, req, peer).await;
    }
    if let Some(rest_path) = path.strip_prefix("/api/v1") {
        if let Some(resp) = crate::openapi::serve(rest_path, req.method()) {
            return resp;
        }
        let door = rest_door(&req, rest_path);
        return serve(app, door, req, peer).await;
    }
    let first = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    // `/1.0` itself (no method) is an unknown path, not an unsupported version.
    let looks_like_version = first != "1.0"
        && first.split('.').count() == 2
        && first
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let e = if looks_like_version {
        Error::new(
            Code::UnsupportedVersion,
            format!("API version {first} is not supported; use 1.0 or /api/v1"),
        )
    } else {
        Error::new(Code::NotFound, format!("no route for {path}"))
    };
    error_response(&e, rest::error_body(&e))
}

/// Whether a request's body is `application/x-www-form-urlencoded` (an envelope may come as a form).
fn is_form(req: &Request<Incoming>) -> bool {
    header(req, CONTENT_TYPE.as_str())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// The REST door for a request below `/api/v1`: its verb, path and query, its bearer token (`Authorization:
/// Bearer …`, or `X-API-Key`), and whether its body is JSON (a missing `Content-Type` counts as JSON).
fn rest_door(req: &Request<Incoming>, path: &str) -> RestDoor {
    let token = header(req, "authorization")
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, t)| t.trim().to_string())
        .or_else(|| header(req, "x-api-key").map(str::to_string));
    let json_body = header(req, "content-type").is_none_or(|ct| {
        let ct = ct.to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or_default().trim();
        mime == "application/json" || mime.ends_with("+json")
    });
    let query = req.uri().query().unwrap_or_default().to_string();
    RestDoor::new(
        req.method().as_str().to_string(),
        path.to_string(),
        query,
        token,
        json_body,
    )
}

/// A header's value as text, trimmed; `None` when absent or not visible ASCII.
fn header<'r>(req: &'r Request<Incoming>, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Runs one request through a door, every door in the same order: rate limit, body, decode, dispatch, failure
/// accounting, render, headers, log line. The rate limit counts as soon as the credentials are known: before the
/// body when the door finds them in the head, after decoding when they travel in the body (the envelope; see
/// [`Door::head_credentials`]).
async fn serve(app: &App, mut door: impl Door, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let start = Instant::now();
    let mut budget = Budget::default();
    let refused = match door.head_credentials() {
        Some(credentials) => budget.spend(app, credentials, peer).await,
        None => None,
    };
    let mut outcome = match refused {
        Some(e) => Outcome::failed(e),
        None => call(app, &mut door, req, &mut budget, peer).await,
    };
    budget.charge_failure(app, &mut outcome, peer).await;
    let Rendered {
        status,
        body,
        headers,
        error,
        respid,
        caller,
    } = door.render(outcome);
    let resp = respond(status, body, headers, error.as_ref(), budget.decision);
    log_request(&respid, &caller, error.as_ref(), door.name(), status, start);
    resp
}

/// Reads the body, decodes it and dispatches the call; counts the request against its budget first if the door
/// could not before (its credentials were in the body).
async fn call(app: &App, door: &mut impl Door, req: Request<Incoming>, budget: &mut Budget, peer: IpAddr) -> Outcome {
    let body = match read_body(req, app.settings.body_timeout()).await {
        Ok(body) => body,
        Err(e) => return Outcome::failed(e),
    };
    let call = match door.decode(&body) {
        Ok(call) => call,
        Err(e) => return Outcome::failed(e),
    };
    if !budget.counted {
        if let Some(refused) = budget.spend(app, &call.credentials, peer).await {
            return Outcome::failed(refused);
        }
    }
    dispatch::dispatch(app, call).await
}

/// The rate-limit budget a request spends: whose it is, and the limiter's last word for the `X-RateLimit-*`
/// headers. Both stay `None` when there is no limiter, or when the request never got as far as being counted.
#[derive(Default)]
struct Budget {
    /// Whether the request has been counted (or would have been, with a limiter).
    counted: bool,
    owner: Option<Owner>,
    decision: Option<Decision>,
}

impl Budget {
    /// Counts the request against the budget of whoever `credentials` were proven to be earlier. Returns the
    /// refusal when the budget is spent.
    async fn spend(&mut self, app: &App, credentials: &Credentials, peer: IpAddr) -> Option<Error> {
        self.counted = true;
        let limiter = app.limiter.as_ref()?;
        let owner = budget_owner(proven(app, credentials), peer);
        let decision = limiter.check(&owner).await;
        (self.owner, self.decision) = (Some(owner), Some(decision));
        (!decision.allowed).then(|| limited(decision))
    }

    /// Credentials proven earlier that fail now (revoked since) also spend their address's budget; past it, the
    /// failure is answered 429. Calls that spent the address's budget already are not counted twice.
    async fn charge_failure(&mut self, app: &App, outcome: &mut Outcome, peer: IpAddr) {
        let auth_failure = outcome.result.as_ref().err().is_some_and(|e| {
            matches!(
                e.code,
                Code::AuthFailed | Code::AuthRequired | Code::BadAppkey | Code::AppkeyDisabled
            )
        });
        let (Some(limiter), Some(Owner::User { .. } | Owner::Operator(_))) = (&app.limiter, self.owner) else {
            return;
        };
        if auth_failure {
            let decision = limiter.check(&Owner::address(peer)).await;
            if !decision.allowed {
                outcome.result = Err(limited(decision));
                self.decision = Some(decision);
            }
        }
    }
}

/// Who `credentials` were proven to be by an earlier call (`Auth::proven`), or an `API_TOKENS` token.
fn proven(app: &App, credentials: &Credentials) -> Option<Owner> {
    match credentials {
        Credentials::Envelope {
            appkey: Some(k),
            userdata: Some(u),
        } => app.auth.proven_envelope(k, u),
        Credentials::Token(Some(token)) => {
            let key = app.auth.token_key(token.trim());
            match auth::contains_digest(&app.operator_tokens, &key) {
                // By the SHA-256 digest, which every process sharing budgets in Redis computes alike.
                true => Some(Owner::Operator(auth::digest_bytes(token.trim()))),
                false => app.auth.proven(&CallerKey::Token(key)),
            }
        }
        _ => None,
    }
}

/// Whose budget a call spends: the user (or `API_TOKENS` token) its credentials proved to be earlier, else its
/// client address. Claimed identities are never budgets: whoever holds an org's app key cannot spend another
/// user's budget by claiming them, and every unproven attempt counts against the address it came from.
fn budget_owner(proven: Option<Owner>, peer: IpAddr) -> Owner {
    proven.unwrap_or_else(|| Owner::address(peer))
}

fn limited(d: Decision) -> Error {
    let mut e = Error::new(
        Code::RateLimited,
        format!("rate limit of {} requests exceeded; retry later", d.limit),
    );
    e.retry_after = Some(d.reset.max(1));
    e
}

/// A door's answer as an HTTP response: its status, body and own headers, and the headers every door's answer
/// carries (`Content-Type` with a body, the error's `Retry-After`, the budget's `X-RateLimit-*`).
fn respond(
    status: u16,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    error: Option<&Error>,
    budget: Option<Decision>,
) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match body {
        Some(json) => bytes_response(status, json),
        None => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = status;
            r
        }
    };
    if let Some(e) = error {
        add_error_headers(&mut resp, e);
    }
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    add_budget_headers(&mut resp, budget);
    resp
}

fn add_budget_headers(resp: &mut Response<Body>, budget: Option<Decision>) {
    if let Some(d) = budget {
        let h = resp.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
        h.insert("x-ratelimit-reset", HeaderValue::from(d.reset));
    }
}

/// The request log line: never a credential, always the respid.
fn log_request(respid: &str, caller: &str, error: Option<&Error>, method: &str, status: u16, start: Instant) {
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    match error {
        Some(e) if e.code == Code::Internal => {
            tracing::error!(respid, method, caller, status, ms, error = %e.message, "request failed")
        }
        Some(e) => tracing::info!(respid, method, caller, status, ms, code = e.code.as_str(), "request"),
        None => tracing::info!(respid, method, caller, status, ms, "request"),
    }
}

/// Reads a whole body, refusing more than [`MAX_BODY`] and clients that take longer than `timeout` to send it.
pub async fn read_body(req: Request<Incoming>, timeout: Duration) -> Result<Bytes, Error> {
    let too_large = || {
        Error::new(
            Code::PayloadTooLarge,
            format!("the body is larger than {MAX_BODY} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let limited = Limited::new(req.into_body(), MAX_BODY);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(Error::new(Code::BadRequest, "timed out reading the request body")),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(Error::new(
            Code::BadRequest,
            format!("could not read the request body: {e}"),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    bytes_response(status, to_json(body))
}

/// A JSON answer already serialised.
fn bytes_response(status: StatusCode, json: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(json)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A JSON error answer with the error's status and headers.
pub fn error_response(e: &Error, body: Value) -> Response<Body> {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json_response(status, &body);
    add_error_headers(&mut resp, e);
    resp
}

fn add_error_headers(resp: &mut Response<Body>, e: &Error) {
    if let Some(secs) = e.retry_after {
        resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let e = Error::new(Code::MethodNotAllowed, format!("use {allow}"));
    let mut resp = error_response(&e, json!({"message": e.message, "code": e.code.as_str()}));
    resp.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    resp
}
