//! The HTTP server: the accept loop, limits and timeouts, graceful shutdown, and routing of paths to the front doors
//! (`/1.0/<method>` to the envelope adapter, `/api/v1` to REST, `/ui` to the web UI) and to the server's own pages
//! (`/healthz`, `/readyz`, `/metrics`, `/`), with JSON answers for everything else. Every request is counted for
//! `/metrics` and written to the request log.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::app::App;
use crate::auth;
use crate::auth::CallerKey;
use crate::dispatch;
use crate::door::{to_json, Door, More, Rendered};
use crate::error::{Code, Error};
use crate::handler::{Credentials, Outcome};
use crate::logging;
use crate::metrics::{self, Counter, Endpoint, Page, Requests};
use crate::model::Reply;
use crate::ratelimit::{Decision, Owner};
use crate::rest::{self, RestDoor};
use crate::rpc::EnvelopeDoor;
use crate::slots::{Admission, CLOSE_GRACE};
use crate::ui;

/// Largest request body either API accepts.
pub const MAX_BODY: usize = 1024 * 1024;
/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `GET /readyz` waits for a database thread to answer: under the one second a Kubernetes probe waits by
/// default, so a busy or stuck database answers 503 rather than a time-out.
const READY_TIMEOUT: Duration = Duration::from_millis(800);

/// A response's body: the whole answer at once, or an answer streamed in parts ([`Streamed`]).
pub type Body = Either<Full<Bytes>, Streamed>;

/// A body of one piece.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Either::Left(Full::new(bytes.into()))
}

/// The body of an answer streamed in parts (a whole export): what the task of [`stream`] sends, as it sends it.
/// An error ends the body without its last chunk, so the client sees an answer cut short, never a complete one.
pub struct Streamed(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|part| part.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// The body of a streamed answer: `first`, then the parts of `more`, each dispatched by a task once the client has
/// taken the one before (the channel holds one part), then its tail. The request was counted and logged with its
/// first part; a part that fails is logged here and cuts the body short.
fn stream(app: &App, first: Vec<u8>, more: More, respid: String) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let app = app.clone();
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(first))).await.is_err() {
            return;
        }
        let mut next = Some(more.next);
        while let Some(call) = next {
            let part = dispatch::dispatch(&app, call)
                .await
                .result
                .and_then(|answer| (more.render)(&answer));
            match part {
                Ok((bytes, after)) => {
                    if tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                        return;
                    }
                    next = after;
                }
                Err(e) => {
                    tracing::error!(respid, code = e.code.as_str(), error = %e.message, "a streamed answer stopped");
                    let _ = tx.send(Err(std::io::Error::other(e.message))).await;
                    return;
                }
            }
        }
        let _ = tx.send(Ok(Bytes::from(more.tail))).await;
    });
    Either::Right(Streamed(rx))
}

/// Serves `listener` until `shutdown` completes, then drains in-flight requests.
///
/// The limits come from the settings: `header_timeout` (to send the request headers, and the most a keep-alive
/// connection may sit idle), `body_timeout` (to send the body), `max_connections` (served at once) and
/// `max_connections_per_address`; the app's [`crate::slots::Slots`] decide who gives way when they run out.
pub async fn run(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let slots = app.slots.clone();
    let metrics = Arc::new(Metrics::new(&app));
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
        tracing::debug!(peer = %peer, open = slots.open(), "connection accepted");
        let _ = stream.set_nodelay(true);
        let (app, conn, owner, metrics) = (app.clone(), slot.conn.clone(), slots.clone(), metrics.clone());
        let service = service_fn(move |req| {
            let (app, conn, slots, metrics) = (app.clone(), conn.clone(), owner.clone(), metrics.clone());
            async move {
                let _in_flight = conn.begin(&slots);
                Ok::<_, Infallible>(handle(&app, &metrics, req, peer.ip()).await)
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

/// What `GET /metrics` shows that the server counts itself: the request table and the refusals of the request
/// path. The rest (the store's queues and commits, the credential checks, the connections) the app's parts count
/// themselves, and [`Scrape`] reads it when scraped.
pub struct Metrics {
    requests: Requests,
    /// Calls refused over a rate-limit budget.
    rate_limited: Counter,
    /// Calls refused because their user is locked out after failed logins.
    locked_out: Counter,
    /// Failed logins: a wrong password or token, an unknown app key.
    login_failures: Counter,
}

impl Metrics {
    fn new(app: &App) -> Metrics {
        Metrics {
            requests: Requests::new(
                app.methods.iter().map(|m| m.name),
                rest::ROUTES.iter().map(|r| (r.verb, r.path, r.method)),
            ),
            rate_limited: Counter::default(),
            locked_out: Counter::default(),
            login_failures: Counter::default(),
        }
    }
}

/// One scrape of `GET /metrics`: the server's counts and the app's, as prometheus-client's collector.
struct Scrape {
    app: App,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let (app, m, e) = (&self.app, &self.metrics, &mut encoder);
        let version: &[(&str, &str)] = &[("version", env!("CARGO_PKG_VERSION"))];
        metrics::gauge(e, "ipamd_build_info", "The version of ipamd serving.", &[(version, 1)])?;
        m.requests.encode(e)?;
        let open = i64::try_from(app.slots.open()).unwrap_or(i64::MAX);
        metrics::gauge(
            e,
            "ipamd_http_open_connections",
            "Client connections open now.",
            &[(&[], open)],
        )?;
        metrics::counter(
            e,
            "ipamd_ratelimited",
            "Calls refused (429) over their rate-limit budget.",
            m.rate_limited.get(),
        )?;
        metrics::counter(
            e,
            "ipamd_auth_lockout_refusals",
            "Calls refused (429) because their user is locked out after failed logins.",
            m.locked_out.get(),
        )?;
        metrics::counter(
            e,
            "ipamd_auth_failures",
            "Failed logins: a wrong password or token, an unknown app key.",
            m.login_failures.get(),
        )?;
        let work = app.auth.work();
        metrics::counter(
            e,
            "ipamd_auth_known_caller_hits",
            "Calls whose credentials were recognised from an earlier call, with no lookup.",
            work.callers_recalled,
        )?;
        metrics::counter(
            e,
            "ipamd_auth_password_cache_hits",
            "Passwords found in the verification cache, with no argon2.",
            work.passwords_cached,
        )?;
        metrics::counter(
            e,
            "ipamd_auth_argon2_runs",
            "argon2 verifications (a user's password or, for an unknown user, the dummy).",
            work.argon2_runs,
        )?;
        metrics::counter(
            e,
            "ipamd_address_allocations",
            "Address records created by ipaddress/add on either door (POST /hosts, POST …/next-ip included).",
            m.requests.succeeded("ipaddress/add"),
        )?;
        let (tasks, writes) = app.store.queued();
        let depth = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let read: &[(&str, &str)] = &[("queue", "read")];
        let write: &[(&str, &str)] = &[("queue", "write")];
        metrics::gauge(
            e,
            "ipamd_db_queue_depth",
            "Tasks waiting for a database thread (read) and writes waiting for the group-commit writer (write).",
            &[(read, depth(tasks)), (write, depth(writes))],
        )?;
        let stats = app.store.stats();
        metrics::histogram(
            e,
            "ipamd_db_queue_wait_seconds",
            "How long a task waited for a database thread.",
            &stats.wait,
        )?;
        metrics::histogram(e, "ipamd_db_commit_batch_size", "Calls per group commit.", &stats.batch)?;
        metrics::histogram(
            e,
            "ipamd_db_commit_seconds",
            "Time of a group commit, from BEGIN IMMEDIATE to the end of its COMMIT.",
            &stats.commit,
        )
    }
}

/// Routes one request: to a door, or to one of the server's own pages. Either way it is counted and logged.
async fn handle(app: &App, metrics: &Arc<Metrics>, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let start = Instant::now();
    let path = req.uri().path();
    if let Some(method) = path.strip_prefix("/1.0/") {
        if req.method() == Method::POST {
            // `/1.0/groups/get/` is `groups/get`, as REST paths take a trailing slash.
            let method = method.strip_suffix('/').unwrap_or(method);
            let door = EnvelopeDoor::new(method.to_string(), is_form(&req), app.methods);
            return serve(app, metrics, door, req, peer, start).await;
        }
    }
    if let Some(rest_path) = path.strip_prefix("/api/v1") {
        if crate::openapi::is_document(rest_path) {
            return page(app, metrics, req, peer, start, Page::Docs).await;
        }
        let door = rest_door(&req, rest_path);
        return serve(app, metrics, door, req, peer, start).await;
    }
    if path == "/ui" || path.starts_with("/ui/") {
        // Boxed: the UI's future is large, and unboxed it would be part of every request's future, moved with it
        // (some 7,700 instructions a request, `/healthz` included: BENCHMARKS.md).
        return Box::pin(ui(app, metrics, req, peer, start)).await;
    }
    let page_of = match path {
        "/healthz" => Page::Healthz,
        "/readyz" => Page::Readyz,
        "/metrics" if app.settings.metrics => Page::Metrics,
        "/" => Page::Root,
        _ => Page::Other,
    };
    page(app, metrics, req, peer, start, page_of).await
}

/// Answers one of the server's own pages (or its 404 and 405), counts it and logs it; the probes' lines are at
/// `debug`.
async fn page(
    app: &App,
    metrics: &Arc<Metrics>,
    req: Request<Incoming>,
    peer: IpAddr,
    start: Instant,
    page: Page,
) -> Response<Body> {
    let (head, _) = req.into_parts();
    let readable = head.method == Method::GET || head.method == Method::HEAD;
    let (resp, code) = match page {
        Page::Docs => match crate::openapi::serve(head.uri.path().trim_start_matches("/api/v1"), &head.method) {
            Some(resp) => (resp, None),
            None => not_found(head.uri.path()),
        },
        Page::Healthz | Page::Readyz | Page::Metrics | Page::Root if !readable => {
            (method_not_allowed("GET, HEAD"), Some(Code::MethodNotAllowed))
        }
        // A constant: liveness probes come often, and building and serialising a JSON value cost more than the rest
        // of the answer.
        Page::Healthz => (bytes_response(StatusCode::OK, &br#"{"status":"ok"}"#[..]), None),
        Page::Readyz => (ready(app).await, None),
        Page::Metrics => (scrape(app, metrics), None),
        // A browser is sent to the web UI; API clients get the map of the APIs.
        Page::Root if accepts_html(&head) => (redirect("/ui/"), None),
        Page::Root => (json_response(StatusCode::OK, &doors(app)), None),
        // `/ui/…` is answered by `ui`, never here.
        Page::Ui => not_found(head.uri.path()),
        Page::Other if head.uri.path().starts_with("/1.0/") => {
            (method_not_allowed("POST"), Some(Code::MethodNotAllowed))
        }
        Page::Other => not_found(head.uri.path()),
    };
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    metrics.requests.record(Endpoint::Page(page), status, elapsed);
    logging::request(&logging::Request {
        respid: "",
        door: "server",
        verb: head.method.as_str(),
        path: head.uri.path(),
        method: "",
        caller: "",
        client: peer,
        status,
        elapsed,
        code: code.map(Code::as_str),
        probe: matches!(page, Page::Healthz | Page::Readyz | Page::Metrics),
    });
    resp
}

/// Whether the request asks for HTML (`Accept` names `text/html`): a browser.
fn accepts_html(head: &Parts) -> bool {
    head.headers
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|t| t.trim().starts_with("text/html")))
}

/// A `303 See Other` to `location`.
fn redirect(location: &str) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(hyper::header::LOCATION, v);
    }
    resp
}

/// The web UI (`/ui/…`, the third door, `ui.rs`): the request counts against the budget of its client address
/// first, as an unproven call of the APIs does; then its form body is read and the UI answers it, calling methods
/// through the dispatcher. Failed sign-ins are counted and logged as the APIs' failed logins are. Every answer
/// carries the UI's security headers ([`ui::SECURITY_HEADERS`]).
async fn ui(app: &App, metrics: &Metrics, req: Request<Incoming>, peer: IpAddr, start: Instant) -> Response<Body> {
    let (head, body) = req.into_parts();
    let session = ui::session_cookie(header(&head.headers, hyper::header::COOKIE));
    let mut budget = Budget::default();
    let answer = match budget.spend(app, &Credentials::Session(session.clone()), peer).await {
        Some(refused) => ui::refused(refused),
        None => {
            let form = match head.method {
                Method::POST => read_body(&head, body, app.settings.body_timeout()).await.map(|body| {
                    form_urlencoded::parse(&body)
                        .into_owned()
                        .take(ui::MAX_FIELDS)
                        .collect()
                }),
                _ => Ok(Vec::new()),
            };
            match form {
                Err(e) => ui::refused(e),
                Ok(form) => {
                    let request = ui::Request {
                        verb: head.method.as_str().to_string(),
                        path: head.uri.path().to_string(),
                        query: head.uri.query().unwrap_or_default().to_string(),
                        session,
                        form,
                        secure: app.settings.ui_secure_cookie
                            || header(&head.headers, "x-forwarded-proto")
                                .is_some_and(|p| p.eq_ignore_ascii_case("https")),
                        cross_site: header(&head.headers, "sec-fetch-site").is_some_and(|s| s == "cross-site"),
                    };
                    ui::serve(app, request).await
                }
            }
        }
    };
    let claim = answer
        .claimed
        .as_ref()
        .map_or_else(Claim::new, |(org, user)| claim_parts(org, user));
    if let Some(e) = &answer.error {
        refusal(metrics, e, &claim, "ui", "", peer);
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::new(full(answer.body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    for (name, value) in ui::SECURITY_HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    for (name, value) in answer.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.append(name, v);
        }
    }
    if let Some(e) = &answer.error {
        add_error_headers(&mut resp, e);
    }
    add_budget_headers(&mut resp, budget.decision);
    let elapsed = start.elapsed();
    metrics
        .requests
        .record(Endpoint::Page(Page::Ui), status.as_u16(), elapsed);
    logging::request(&logging::Request {
        respid: "",
        door: "ui",
        verb: head.method.as_str(),
        path: head.uri.path(),
        method: "",
        caller: &answer.caller,
        client: peer,
        status: status.as_u16(),
        elapsed,
        code: answer.error.as_ref().map(|e| e.code.as_str()),
        probe: false,
    });
    resp
}

/// `GET /`: where the APIs and their documentation are (for API clients; a browser is sent to the web UI).
fn doors(app: &App) -> Value {
    let mut answer = json!({
        "name": "ipamd",
        "apis": {
            "1.0": {"call": "POST /1.0/<method>", "body": "a JSON envelope: {reqid, appkey, userdata, data}"},
            "rest": {"base": "/api/v1", "openapi": "/api/v1/openapi.json", "docs": "/api/v1/docs/"},
        },
        "health": {"liveness": "/healthz", "readiness": "/readyz"},
    });
    if app.settings.metrics {
        answer["metrics"] = json!("/metrics");
    }
    answer
}

/// `GET /readyz`: 200 while the database answers a read on a database thread (within [`READY_TIMEOUT`]) and the
/// rate limiter's Redis, if one is configured, is connected; 503 otherwise, naming what failed. A Redis that is down
/// costs no wait: the limiter's own state says so (see [`crate::ratelimit::Limiter::storage_ready`]).
async fn ready(app: &App) -> Response<Body> {
    let redis = app.limiter.as_ref().is_none_or(|l| l.storage_ready());
    let database = match tokio::time::timeout(READY_TIMEOUT, app.store.usable()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.message),
        Err(_) => Err(format!("no database thread answered within {READY_TIMEOUT:?}")),
    };
    if let Err(why) = &database {
        tracing::warn!(error = why.as_str(), "not ready: the database cannot be used");
    }
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let ok = database.is_ok() && redis;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({
            "status": if ok { "ready" } else { "not_ready" },
            "database": word(database.is_ok()),
            "ratelimit_storage": word(redis),
        }),
    )
}

/// `GET /metrics`: the Prometheus text exposition.
fn scrape(app: &App, metrics: &Arc<Metrics>) -> Response<Body> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        app: app.clone(),
        metrics: metrics.clone(),
    }));
    let mut text = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        let e = Error::internal(format!("metrics: {e}"));
        return error_response(&e, rest::error_body(&e));
    }
    let mut resp = Response::new(full(text));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    resp
}

/// The 404 of a path nothing serves (or a version of the envelope API that does not exist).
fn not_found(path: &str) -> (Response<Body>, Option<Code>) {
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
        let path = logging::cut(path, logging::PATH_MAX);
        Error::new(
            Code::NotFound,
            format!("no route for {path}; the APIs are /1.0/<method> and /api/v1 (documentation: /api/v1/docs/)"),
        )
    };
    (error_response(&e, rest::error_body(&e)), Some(e.code))
}

/// Whether a request's body is `application/x-www-form-urlencoded` (an envelope may come as a form).
fn is_form(req: &Request<Incoming>) -> bool {
    const FORM: &str = "application/x-www-form-urlencoded";
    header(req.headers(), CONTENT_TYPE)
        .is_some_and(|ct| ct.get(..FORM.len()).is_some_and(|t| t.eq_ignore_ascii_case(FORM)))
}

/// The REST door for a request below `/api/v1`: its verb, path and query, its bearer token (`Authorization:
/// Bearer …`, or `X-API-Key`), and whether its body is JSON (a missing `Content-Type` counts as JSON).
fn rest_door(req: &Request<Incoming>, path: &str) -> RestDoor {
    let token = header(req.headers(), hyper::header::AUTHORIZATION)
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, t)| t.trim().to_string())
        .or_else(|| header(req.headers(), "x-api-key").map(str::to_string));
    let json_body = header(req.headers(), CONTENT_TYPE).is_none_or(|ct| {
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
        rest::Headers {
            idempotency_key: header(req.headers(), "idempotency-key").map(str::to_string),
            if_match: header(req.headers(), hyper::header::IF_MATCH).map(str::to_string),
            if_none_match: header(req.headers(), hyper::header::IF_NONE_MATCH).map(str::to_string),
        },
    )
}

/// A header's value as text, trimmed; `None` when absent or not visible ASCII. A standard header is best named by
/// its constant (`CONTENT_TYPE`): a name given as text is parsed on every lookup.
fn header(headers: &hyper::HeaderMap, name: impl hyper::header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Runs one request through a door, every door in the same order: rate limit, body, decode, dispatch, failure
/// accounting, render, headers, metrics and log line. The rate limit counts as soon as the credentials are known:
/// before the body when the door finds them in the head, after decoding when they travel in the body (the envelope;
/// see [`Door::head_credentials`]).
async fn serve(
    app: &App,
    metrics: &Metrics,
    mut door: impl Door,
    req: Request<Incoming>,
    peer: IpAddr,
    start: Instant,
) -> Response<Body> {
    let (head, body) = req.into_parts();
    let mut budget = Budget::default();
    let mut claim = Claim::new();
    let refused = match door.head_credentials() {
        Some(credentials) => budget.spend(app, credentials, peer).await,
        None => None,
    };
    let mut outcome = match refused {
        Some(e) => Outcome::failed(e),
        None => call(app, &mut door, &head, body, &mut budget, peer, &mut claim).await,
    };
    budget.charge_failure(app, &mut outcome, peer).await;
    if let Err(e) = &outcome.result {
        refusal(metrics, e, &claim, door.door(), &outcome.respid, peer);
    }
    let Rendered {
        status,
        body,
        headers,
        error,
        respid,
        caller,
        more,
    } = match outcome.result {
        // The first answer to this idempotency key, as the door rendered it then.
        Ok(Reply::Replayed(first)) => Rendered {
            status: first.status,
            body: (!first.body.is_empty()).then_some(first.body),
            headers: std::iter::once(("idempotent-replayed", "true".to_string()))
                .chain(first.etag.map(|tag| ("etag", tag)))
                .collect(),
            error: None,
            respid: outcome.respid,
            caller: outcome.caller,
            more: None,
        },
        result => door.render(Outcome { result, ..outcome }),
    };
    let mut resp = respond(status, body, headers, error.as_ref(), budget.decision);
    if let Some(more) = more {
        // The first part, rendered as a whole body above, becomes the start of the stream.
        let first = std::mem::replace(resp.body_mut(), full(Bytes::new()));
        let first = match first {
            Either::Left(part) => part.collect().await.map(|c| c.to_bytes().to_vec()).unwrap_or_default(),
            Either::Right(_) => Vec::new(),
        };
        resp.headers_mut().remove(CONTENT_LENGTH);
        *resp.body_mut() = stream(app, first, more, respid.clone());
    }
    let elapsed = start.elapsed();
    metrics.requests.record(door.endpoint(), status, elapsed);
    if let Some(e) = error.as_ref().filter(|e| e.code == Code::Internal) {
        tracing::error!(respid, error = %e.message, "request failed");
    }
    logging::request(&logging::Request {
        respid: &respid,
        door: door.door(),
        verb: head.method.as_str(),
        path: head.uri.path(),
        method: door.name(),
        caller: &caller,
        client: peer,
        status,
        elapsed,
        code: error.as_ref().map(|e| e.code.as_str()),
        probe: false,
    });
    resp
}

/// Counts a refusal that `/metrics` shows apart, and logs failed logins and lockouts at `warn` with the identity
/// the request claimed (an envelope's org and user, cut to their longest possible length) and its client address.
fn refusal(metrics: &Metrics, e: &Error, claim: &Claim, door: &str, respid: &str, peer: IpAddr) {
    let claimed = claim.as_str();
    match e.code {
        Code::RateLimited => metrics.rate_limited.inc(),
        Code::TooManyAttempts => {
            metrics.locked_out.inc();
            tracing::warn!(respid, door, claimed, client = %peer, "login refused: the user is locked out");
        }
        Code::AuthFailed | Code::BadAppkey => {
            metrics.login_failures.inc();
            let code = e.code.as_str();
            tracing::warn!(respid, door, claimed, client = %peer, code, "login failed");
        }
        _ => {}
    }
}

/// The `org/user` an envelope's `userdata` claims, each cut to [`crate::auth::NAME_MAX`] bytes, for the warning
/// of a failed login (empty when `userdata` has no `:`); kept in place, no allocation per request.
type Claim = logging::Inline<{ 2 * auth::NAME_MAX + 1 }>;

fn claim_of(credentials: &Credentials) -> Claim {
    let claim = Claim::new();
    let Credentials::Envelope {
        userdata: Some(userdata),
        ..
    } = credentials
    else {
        return claim;
    };
    // Only what comes before the first `:`: without one, or with a password holding one, the rest may be a password.
    let Some((who, _)) = userdata.split_once(':') else {
        return claim;
    };
    let (org, user) = who.split_once('/').unwrap_or((who, ""));
    claim_parts(org, user)
}

/// The claim of `org` and `user`, each cut to [`crate::auth::NAME_MAX`] bytes.
fn claim_parts(org: &str, user: &str) -> Claim {
    let mut claim = Claim::new();
    // Written part by part: the formatting machinery would cost more than the copy.
    for part in [
        logging::cut(org, auth::NAME_MAX),
        "/",
        logging::cut(user, auth::NAME_MAX),
    ] {
        let _ = claim.write_str(part);
    }
    claim
}

/// Reads the body, decodes it and dispatches the call; counts the request against its budget first if the door
/// could not before (its credentials were in the body).
async fn call(
    app: &App,
    door: &mut impl Door,
    head: &Parts,
    body: Incoming,
    budget: &mut Budget,
    peer: IpAddr,
    claim: &mut Claim,
) -> Outcome {
    let body = match read_body(head, body, app.settings.body_timeout()).await {
        Ok(body) => body,
        Err(e) => return Outcome::failed(e),
    };
    let call = match door.decode(&body) {
        Ok(call) => call,
        Err(e) => return Outcome::failed(e),
    };
    *claim = claim_of(&call.credentials);
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

/// The refusal of a request over its budget, with the budget and when it refills.
fn limited(d: Decision) -> Error {
    let period = match d.period {
        1 => "second".to_string(),
        60 => "minute".to_string(),
        3600 => "hour".to_string(),
        86_400 => "day".to_string(),
        n => format!("{n} seconds"),
    };
    let retry = d.reset.max(1);
    let mut e = Error::new(
        Code::RateLimited,
        format!(
            "rate limit of {} requests per {period} exceeded; retry in {retry} s",
            d.limit
        ),
    );
    e.retry_after = Some(retry);
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
            let mut r = Response::new(full(Bytes::new()));
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

/// Reads a whole body, refusing more than [`MAX_BODY`] and clients that take longer than `timeout` to send it.
pub async fn read_body(head: &Parts, body: Incoming, timeout: Duration) -> Result<Bytes, Error> {
    let too_large = || {
        Error::new(
            Code::PayloadTooLarge,
            format!("the body is larger than {MAX_BODY} bytes"),
        )
    };
    let declared = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let limited = Limited::new(body, MAX_BODY);
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
fn bytes_response(status: StatusCode, json: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(json));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_the_org_and_user_before_the_first_colon_cut_to_their_longest() {
        let claim = |userdata: &str| {
            let credentials = Credentials::Envelope {
                appkey: None,
                userdata: Some(userdata.into()),
            };
            claim_of(&credentials).as_str().to_string()
        };
        assert_eq!(claim("acme/bob:0123"), "acme/bob");
        assert_eq!(claim("acme/bob:pass:word"), "acme/bob");
        assert_eq!(
            claim("acme/bobSecretPassword"),
            "",
            "no colon: the rest may be a password"
        );
        let long = claim(&format!("{}/{}:x", "o".repeat(100), "u".repeat(100)));
        assert_eq!(long, format!("{}/{}", "o".repeat(64), "u".repeat(64)));
        assert_eq!(claim_of(&Credentials::Token(Some("t".into()))).as_str(), "");
    }
}
