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
use crate::error::{Code, Error};
use crate::handler::{new_respid, Credentials, Outcome};
use crate::ratelimit::{Decision, Owner};
use crate::rest;
use crate::rpc;
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
        return envelope(app, method.to_string(), req, peer).await;
    }
    if let Some(rest_path) = path.strip_prefix("/api/v1") {
        if let Some(resp) = crate::openapi::serve(rest_path, req.method()) {
            return resp;
        }
        return rest(app, rest_path.to_string(), req, peer).await;
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

/// `POST /1.0/<method>`: read the body, decode the envelope, count it against its caller's budget, dispatch,
/// render, log.
async fn envelope(app: &App, method: String, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let start = Instant::now();
    let form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let mut budget = None;
    let (reqid, outcome) = match read_body(req, app.settings.body_timeout()).await {
        Err(e) => (Value::Null, failed(e)),
        Ok(body) => match rpc::decode(&method, &body, form) {
            Err(rejected) => {
                let (reqid, e) = *rejected;
                (reqid, failed(e))
            }
            Ok(env) => {
                // The budget's owner, only when there is a limiter to count against.
                let owner = app.limiter.as_ref().map(|_| match &env.call.credentials {
                    Credentials::Envelope {
                        appkey: Some(k),
                        userdata: Some(u),
                    } => budget_owner(app.auth.proven_envelope(k, u), peer),
                    _ => Owner::address(peer),
                });
                let (decision, refused) = admit(app, owner).await;
                budget = decision;
                let mut outcome = match refused {
                    Some(e) => failed(e),
                    None => dispatch::dispatch(app, env.call).await,
                };
                if let Some(d) = charge_failure(app, owner, outcome.result.as_ref().err(), peer).await {
                    if !d.allowed {
                        outcome.result = Err(limited(d));
                        budget = Some(d);
                    }
                }
                (env.reqid, outcome)
            }
        },
    };
    let status = outcome.result.as_ref().err().map_or(200, |e| e.code.http_status());
    log_request(
        &outcome.respid,
        &outcome.caller,
        outcome.result.as_ref().err(),
        &method,
        status,
        start,
    );
    let retry_after = outcome.result.as_ref().err().and_then(|e| e.retry_after);
    let body = rpc::render(&reqid, &method, &outcome);
    let mut resp = bytes_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    );
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    add_budget_headers(&mut resp, budget);
    resp
}

/// `/api/v1/...`: check the content type, read the body, count the call against its caller's budget, and hand
/// it to the REST adapter.
async fn rest(app: &App, path: String, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let start = Instant::now();
    let verb = req.method().as_str().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let token = header("authorization")
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, t)| t.trim().to_string())
        .or_else(|| header("x-api-key").map(str::to_string));
    let json_body = header("content-type").is_none_or(|ct| {
        let ct = ct.to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or_default().trim();
        mime == "application/json" || mime.ends_with("+json")
    });
    // The budget's owner, only when there is a limiter to count against.
    let owner = app.limiter.as_ref().map(|_| {
        let proven = token.as_deref().and_then(|t| {
            let digest = auth::digest_bytes(t.trim());
            match auth::contains_digest(&app.operator_tokens, &digest) {
                true => Some(Owner::Operator(digest)),
                false => app.auth.proven(&CallerKey::Token(digest)),
            }
        });
        budget_owner(proven, peer)
    });
    let (budget, refused) = admit(app, owner).await;
    let mut response = match refused {
        Some(e) => rest::Response::from_error(e),
        None => match read_body(req, app.settings.body_timeout()).await {
            Err(e) => rest::Response::from_error(e),
            Ok(body) if !body.is_empty() && !json_body => rest::Response::from_error(Error::new(
                Code::UnsupportedMediaType,
                "the body must be JSON (Content-Type: application/json)",
            )),
            Ok(body) => {
                rest::handle(
                    app,
                    rest::Request {
                        verb: &verb,
                        path: &path,
                        query: &query,
                        token,
                        body: &body,
                    },
                )
                .await
            }
        },
    };
    let mut budget = budget;
    if let Some(d) = charge_failure(app, owner, response.error.as_ref(), peer).await {
        if !d.allowed {
            response = rest::Response {
                respid: response.respid.clone(),
                ..rest::Response::from_error(limited(d))
            };
            budget = Some(d);
        }
    }
    let name = if response.method.is_empty() {
        path.as_str()
    } else {
        response.method
    };
    log_request(
        &response.respid,
        &response.caller,
        response.error.as_ref(),
        name,
        response.status,
        start,
    );
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match response.body {
        Some(body) => bytes_response(status, body),
        None => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = status;
            r
        }
    };
    if let Some(e) = &response.error {
        add_error_headers(&mut resp, e);
        if let (Code::MethodNotAllowed, Some(Value::String(allow))) = (e.code, &e.data) {
            if let Ok(v) = HeaderValue::from_str(allow) {
                resp.headers_mut().insert(ALLOW, v);
            }
        }
    }
    add_budget_headers(&mut resp, budget);
    resp
}

/// Whose budget a call spends: the user (or `API_TOKENS` token) its credentials proved to be earlier, else its
/// client address. Claimed identities are never budgets: whoever holds an org's app key cannot spend another
/// user's budget by claiming them, and every unproven attempt counts against the address it came from.
fn budget_owner(proven: Option<Owner>, peer: IpAddr) -> Owner {
    proven.unwrap_or_else(|| Owner::address(peer))
}

/// Counts a call against its owner's budget (`None` when there is no limiter). Returns the decision for the
/// headers and the refusal, if any.
async fn admit(app: &App, owner: Option<Owner>) -> (Option<Decision>, Option<Error>) {
    let (Some(limiter), Some(owner)) = (&app.limiter, owner) else {
        return (None, None);
    };
    let decision = limiter.check(&owner).await;
    (Some(decision), (!decision.allowed).then(|| limited(decision)))
}

/// Credentials proven earlier that fail now (revoked since) also spend their address's budget; past it, the
/// failure is answered 429. Calls that spent the address's budget already are not counted twice.
async fn charge_failure(app: &App, owner: Option<Owner>, error: Option<&Error>, peer: IpAddr) -> Option<Decision> {
    let auth_failure = error.is_some_and(|e| {
        matches!(
            e.code,
            Code::AuthFailed | Code::AuthRequired | Code::BadAppkey | Code::AppkeyDisabled
        )
    });
    match (&app.limiter, owner) {
        (Some(limiter), Some(Owner::User { .. } | Owner::Operator(_))) if auth_failure => {
            Some(limiter.check(&Owner::address(peer)).await)
        }
        _ => None,
    }
}

fn limited(d: Decision) -> Error {
    let mut e = Error::new(
        Code::RateLimited,
        format!("rate limit of {} requests exceeded; retry later", d.limit),
    );
    e.retry_after = Some(d.reset.max(1));
    e
}

fn add_budget_headers(resp: &mut Response<Body>, budget: Option<Decision>) {
    if let Some(d) = budget {
        let h = resp.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
        h.insert("x-ratelimit-reset", HeaderValue::from(d.reset));
    }
}

fn failed(e: Error) -> Outcome {
    Outcome {
        respid: new_respid(),
        caller: String::new(),
        result: Err(e),
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
    bytes_response(status, serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()))
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
