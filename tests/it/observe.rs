//! What an operator watches and a newcomer meets first: the Prometheus metrics at `/metrics` (scraped, parsed as the
//! text exposition format, and checked to move with the calls made), the probes `/healthz` and `/readyz` (503 while
//! the rate limiter's Redis or the database cannot be used), the request log and the start-up and login warnings
//! of a real `ipamd serve`, and the answers that used to trip newcomers up: `/`, a 401's challenge, an unknown
//! method, a trailing slash, a password where its SHA-1 belongs, the rate limit's message, a broadcast address
//! where there is none.

use std::collections::{BTreeMap, BTreeSet};

use hyper::Method;
use rusqlite::Connection;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::{Ipamd, Server};

/// One sample of the text exposition: its name and labels, and its value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// Parses the Prometheus text exposition format (version 0.0.4) strictly: `# HELP` and `# TYPE` lines, then
/// samples `name{label="value",…} number`, every sample of a family declared by a `# TYPE` line before it (with the
/// `_bucket`, `_sum` and `_count` of histograms and the `_total` of counters), no family declared twice, no sample
/// given twice. Panics naming the line that breaks a rule.
fn parse_exposition(text: &str) -> Samples {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
    };
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Samples::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE: {line}"));
            assert!(name_ok(name), "bad name: {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type: {line}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "declared twice: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(
                rest.split_once(' ').is_some_and(|(n, _)| name_ok(n)),
                "bad HELP: {line}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.trim().is_empty(),
            "stray line: {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                (name, labels_of(body, line))
            }
        };
        assert!(name_ok(name), "bad name: {line}");
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| types.contains_key(*base))
            .unwrap_or(name);
        let kind = types
            .get(family)
            .unwrap_or_else(|| panic!("sample before its TYPE: {line}"));
        match kind.as_str() {
            "histogram" => assert!(name != family, "a histogram's sample needs a suffix: {line}"),
            "counter" => assert!(name.ends_with("_total"), "a counter's sample ends in _total: {line}"),
            _ => assert_eq!(name, family, "{line}"),
        }
        assert!(
            samples.insert((name.into(), labels), value).is_none(),
            "sample given twice: {line}"
        );
    }
    samples
}

/// `a="x",b="y\"z"` → its labels, escapes undone.
fn labels_of(body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label value not quoted: {line}");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => panic!("bad escape {other:?}: {line}"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated value: {line}"),
            }
        }
        assert!(labels.insert(name, value).is_none(), "label given twice: {line}");
        match chars.next() {
            Some(',') | None => {}
            other => panic!("expected , after a label, got {other:?}: {line}"),
        }
    }
    labels
}

/// The value of the sample `name` with exactly `labels`, 0 when there is none.
fn sample(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    samples.get(&(name.to_string(), labels)).copied().unwrap_or(0.0)
}

async fn scrape(s: &Server) -> (String, Samples) {
    let reply = s.request(Method::GET, "/metrics", &[], "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    let samples = parse_exposition(&text);
    (text, samples)
}

#[tokio::test]
async fn metrics_count_requests_by_door_endpoint_and_status_and_parse_as_the_exposition_format() {
    let s = Server::start_with(|settings| settings.metrics = true).await;
    let (_, before) = scrape(&s).await;
    let requests = "ipamd_http_requests_total";
    let groups_ok = [("door", "1.0"), ("endpoint", "groups/get"), ("status", "200")];
    assert_eq!(sample(&before, requests, &groups_ok), 0.0);

    for _ in 0..3 {
        s.ok(&s.admin, "groups/get", json!({})).await;
    }
    s.call(&s.admin, "no/such/method", json!({})).await;
    s.call(&s.admin, "another/made-up", json!({})).await;
    let subnet = s.ok(&s.admin, "subnets/add", json!({"subnet": "10.9.0.0/24"})).await;
    let id = crate::support::id_of(crate::support::only(&subnet));
    s.ok(&s.admin, "ipaddress/add", json!({"subnet": id})).await;
    let token = s.admin_token.clone();
    assert_eq!(s.api(Method::GET, "/networks/999", &token, None).await.status, 404);
    assert_eq!(
        s.api(
            Method::POST,
            &format!("/ip/networks/{id}/next-ip"),
            &token,
            Some(&json!({}))
        )
        .await
        .status,
        201
    );
    assert_eq!(s.api(Method::GET, "/nowhere/at/all", &token, None).await.status, 404);
    assert_eq!(s.api(Method::GET, "/networks", "wrong-token", None).await.status, 401);
    let healthz = s.request(Method::GET, "/healthz", &[], "").await;
    assert_eq!((healthz.status, healthz.json()), (200, json!({"status": "ok"})));
    assert_eq!(healthz.header("content-type"), Some("application/json"));
    // Refused before its body is decoded: still counted on its route.
    let bearer = format!("Bearer {token}");
    let form = [("content-type", "text/plain"), ("authorization", bearer.as_str())];
    assert_eq!(
        s.request(Method::POST, "/api/v1/networks", &form, "x").await.status,
        415
    );
    assert_eq!(s.request(Method::GET, "/1.0/ping", &[], "").await.status, 405);
    assert_eq!(s.request(Method::GET, "/not/a/page", &[], "").await.status, 404);

    let (text, after) = scrape(&s).await;
    assert_eq!(sample(&after, requests, &groups_ok), 3.0, "{text}");
    let unknown = [("door", "1.0"), ("endpoint", "unknown"), ("status", "404")];
    assert_eq!(
        sample(&after, requests, &unknown),
        2.0,
        "unknown methods share one line: {text}"
    );
    assert!(!text.contains("no/such/method") && !text.contains("nowhere"), "{text}");
    for (labels, n) in [
        (
            [("door", "rest"), ("endpoint", "GET /networks/{id}"), ("status", "404")],
            1.0,
        ),
        (
            [
                ("door", "rest"),
                ("endpoint", "POST /ip/networks/{id}/next-ip"),
                ("status", "201"),
            ],
            1.0,
        ),
        ([("door", "rest"), ("endpoint", "unmatched"), ("status", "404")], 1.0),
        (
            [("door", "rest"), ("endpoint", "GET /networks"), ("status", "401")],
            1.0,
        ),
        (
            [("door", "rest"), ("endpoint", "POST /networks"), ("status", "415")],
            1.0,
        ),
        ([("door", "server"), ("endpoint", "/healthz"), ("status", "200")], 1.0),
        ([("door", "server"), ("endpoint", "unmatched"), ("status", "405")], 1.0),
        ([("door", "server"), ("endpoint", "unmatched"), ("status", "404")], 1.0),
        ([("door", "server"), ("endpoint", "/metrics"), ("status", "200")], 1.0),
    ] {
        assert_eq!(sample(&after, requests, &labels), n, "{labels:?}: {text}");
    }
    let latency = [("door", "1.0"), ("endpoint", "groups/get")];
    assert_eq!(
        sample(&after, "ipamd_http_request_duration_seconds_count", &latency),
        3.0
    );
    let le_inf = [("door", "1.0"), ("endpoint", "groups/get"), ("le", "+Inf")];
    assert_eq!(
        sample(&after, "ipamd_http_request_duration_seconds_bucket", &le_inf),
        3.0
    );
    // One allocation through each door; the write went through the group commit.
    assert_eq!(sample(&after, "ipamd_address_allocations_total", &[]), 2.0, "{text}");
    assert!(sample(&after, "ipamd_db_commit_batch_size_count", &[]) >= 2.0, "{text}");
    assert!(sample(&after, "ipamd_db_commit_seconds_count", &[]) >= 2.0, "{text}");
    assert!(
        sample(&after, "ipamd_db_queue_wait_seconds_count", &[])
            > sample(&before, "ipamd_db_queue_wait_seconds_count", &[])
    );
    assert_eq!(sample(&after, "ipamd_db_queue_depth", &[("queue", "read")]), 0.0);
    assert!(
        sample(&after, "ipamd_auth_known_caller_hits_total", &[]) >= 3.0,
        "{text}"
    );
    assert_eq!(
        sample(&after, "ipamd_auth_failures_total", &[]),
        1.0,
        "the wrong token: {text}"
    );
    assert!(
        sample(&after, "ipamd_http_open_connections", &[]) >= 1.0,
        "the scrape's own: {text}"
    );
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(sample(&after, "ipamd_build_info", &version), 1.0, "{text}");
    // No secret of the caller's is a label or anywhere else.
    for secret in [s.admin.appkey.as_str(), &s.admin.userdata, &token, "admin-password"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let labels: BTreeSet<&String> = after.keys().flat_map(|(_, l)| l.keys()).collect();
    assert!(
        labels
            .iter()
            .all(|l| ["door", "endpoint", "status", "le", "queue", "version"].contains(&l.as_str())),
        "{labels:?}"
    );
}

#[tokio::test]
async fn argon2_runs_lockouts_and_rate_limits_are_counted() {
    // On a clock that stands still: the rate limit's window must not turn between the calls.
    let clock = ipamd::clock::ManualClock::new();
    let s = Server::start_with_clock(&clock, |settings| {
        settings.metrics = true;
        settings.lockout_attempts = 2;
        settings.ratelimit_enabled = true;
        settings.api_rate_limit = "5 per minute".into();
    })
    .await;
    let (_, before) = scrape(&s).await;
    let wrong = s.admin.with_password("not-it");
    for _ in 0..3 {
        s.call(&wrong, "groups/get", json!({})).await;
    }
    let (_, after) = scrape(&s).await;
    let runs = |m: &Samples| sample(m, "ipamd_auth_argon2_runs_total", &[]);
    assert_eq!(
        runs(&after) - runs(&before),
        2.0,
        "the third call was locked out without argon2"
    );
    assert_eq!(sample(&after, "ipamd_auth_failures_total", &[]), 2.0);
    assert_eq!(sample(&after, "ipamd_auth_lockout_refusals_total", &[]), 1.0);
    // The address's budget of 5 (the harness's first call took one) runs out at the sixth call.
    let (status, body) = s.call(&wrong, "groups/get", json!({})).await;
    assert_eq!(
        (status, &body["errorCode"]),
        (429, &json!("too_many_attempts")),
        "{body}"
    );
    let (status, body) = s.call(&wrong, "groups/get", json!({})).await;
    assert_eq!((status, &body["errorCode"]), (429, &json!("rate_limited")), "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.starts_with("rate limit of 5 requests per minute exceeded; retry in "),
        "{message}"
    );
    assert!(message.ends_with(" s"), "{message}");
    let (_, last) = scrape(&s).await;
    assert_eq!(sample(&last, "ipamd_ratelimited_total", &[]), 1.0);
}

#[tokio::test]
async fn metrics_are_off_unless_asked_for() {
    let s = Server::start().await;
    let reply = s.request(Method::GET, "/metrics", &[], "").await;
    assert_eq!((reply.status, &reply.json()["code"]), (404, &json!("not_found")));
    assert!(s
        .request(Method::GET, "/", &[], "")
        .await
        .json()
        .get("metrics")
        .is_none());
}

#[tokio::test]
async fn readyz_is_200_while_the_database_answers_and_503_while_it_cannot_be_used() {
    let s = Server::start().await;
    let ready = s.request(Method::GET, "/readyz", &[], "").await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.json(),
        json!({"status": "ready", "database": "ok", "ratelimit_storage": "ok"})
    );
    // Another program renames the organisations away: the database answers, but not as ipamd's database.
    let Some(db) = s.sqlite_file() else { return };
    let rename = |from: &str, to: &str| {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(&format!("ALTER TABLE {from} RENAME TO {to}"))
            .unwrap();
    };
    rename("orgs", "orgs_elsewhere");
    let unready = s.request(Method::GET, "/readyz", &[], "").await;
    assert_eq!(unready.status, 503);
    assert_eq!(
        unready.json(),
        json!({"status": "not_ready", "database": "unavailable", "ratelimit_storage": "ok"})
    );
    // Liveness does not depend on the database.
    assert_eq!(s.request(Method::GET, "/healthz", &[], "").await.status, 200);
    rename("orgs_elsewhere", "orgs");
    assert_eq!(s.request(Method::GET, "/readyz", &[], "").await.status, 200);
    assert_eq!(s.request(Method::POST, "/readyz", &[], "").await.status, 405);
}

#[tokio::test]
async fn readyz_is_503_at_once_while_the_configured_redis_is_unreachable() {
    // Port 1 on the loopback: nothing listens, the connection is refused at once.
    let s = Server::start_with(|settings| {
        settings.ratelimit_enabled = true;
        settings.ratelimit_storage_uri = "redis://127.0.0.1:1/0".into();
    })
    .await;
    for _ in 0..3 {
        let reply = s.request(Method::GET, "/readyz", &[], "").await;
        assert_eq!(reply.status, 503);
        assert_eq!(
            reply.json(),
            json!({"status": "not_ready", "database": "ok", "ratelimit_storage": "unavailable"})
        );
    }
    // Calls go on, counted in memory.
    s.ok(&s.admin, "groups/get", json!({})).await;
}

#[tokio::test]
async fn the_root_lists_the_doors_and_unknown_paths_point_to_the_docs() {
    let s = Server::start_with(|settings| settings.metrics = true).await;
    let root = s.request(Method::GET, "/", &[], "").await;
    assert_eq!(root.status, 200);
    let body = root.json();
    assert_eq!(body["apis"]["rest"]["docs"], json!("/api/v1/docs/"));
    assert_eq!(body["apis"]["1.0"]["call"], json!("POST /1.0/<method>"));
    assert_eq!(body["health"], json!({"liveness": "/healthz", "readiness": "/readyz"}));
    assert_eq!(body["metrics"], json!("/metrics"));
    let missing = s.request(Method::GET, "/nothing", &[], "").await;
    assert_eq!(missing.status, 404);
    let message = missing.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("/api/v1/docs/") && message.contains("/1.0/<method>"),
        "{message}"
    );
    let long = format!("/{}", "x".repeat(2000));
    let message = s.request(Method::GET, &long, &[], "").await.json()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.len() < 500, "the path is cut: {message}");
}

#[tokio::test]
async fn a_rest_401_names_its_scheme_and_the_envelope_keeps_its_credentials_in_the_body() {
    let s = Server::start().await;
    for token in ["", "wrong"] {
        let reply = s.api(Method::GET, "/networks", token, None).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"ipamd\""));
    }
    let ok = s.api(Method::GET, "/networks", &s.admin_token, None).await;
    assert_eq!((ok.status, ok.header("www-authenticate")), (200, None));
    let envelope = s
        .request(
            Method::POST,
            "/1.0/groups/get",
            &[("content-type", "application/json")],
            json!({"appkey": s.admin.appkey}).to_string(),
        )
        .await;
    assert_eq!((envelope.status, envelope.header("www-authenticate")), (401, None));
}

#[tokio::test]
async fn an_unknown_method_gets_the_closest_names_and_a_trailing_slash_is_the_method() {
    let s = Server::start().await;
    let body = s.refused(&s.admin, "group/get", json!({}), "unknown_method").await;
    assert_eq!(
        body["error"],
        json!("unknown method 'group/get'; did you mean 'groups/get'?")
    );
    let body = s.refused(&s.admin, "subnets/ad", json!({}), "unknown_method").await;
    let message = body["error"].as_str().unwrap();
    assert!(
        message.starts_with("unknown method 'subnets/ad'; did you mean 'subnets/add'"),
        "{message}"
    );
    let body = s
        .refused(&s.admin, "completely-else", json!({}), "unknown_method")
        .await;
    assert_eq!(body["error"], json!("unknown method 'completely-else'"));
    let envelope = json!({"reqid": 1, "appkey": s.admin.appkey, "userdata": s.admin.userdata, "data": {}});
    let slash = s.post("groups/get/", &envelope).await;
    assert_eq!(
        (slash.status, &slash.json()["method"]),
        (200, &json!("groups/get")),
        "{:?}",
        slash.json()
    );
}

#[tokio::test]
async fn a_password_where_its_sha1_belongs_is_told_the_expected_form_and_nothing_more() {
    let s = Server::start().await;
    let raw = s.admin.with_userdata("admin/admin:admin-password");
    let body = s.refused(&raw, "groups/get", json!({}), "auth_failed").await;
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("40 hex digits") && message.contains("SHA-1"),
        "{message}"
    );
    // Well-formed credentials that are wrong say only that.
    let wrong = s.admin.with_password("nope");
    let body = s.refused(&wrong, "groups/get", json!({}), "auth_failed").await;
    assert_eq!(body["error"], json!("authentication failed"));
    let nobody = s.admin.with_userdata(&format!("admin/nobody:{}", "0".repeat(40)));
    let body = s.refused(&nobody, "groups/get", json!({}), "auth_failed").await;
    assert_eq!(body["error"], json!("authentication failed"));
}

#[tokio::test]
async fn ipv6_blocks_and_ipv4_31s_and_32s_have_no_broadcast_address_on_either_door() {
    let s = Server::start().await;
    for (block, broadcast) in [
        ("10.1.0.0/24", json!("10.1.0.255")),
        ("10.2.0.0/30", json!("10.2.0.3")),
        ("10.3.0.0/31", Value::Null),
        ("10.4.0.1/32", Value::Null),
        ("2001:db8::/64", Value::Null),
    ] {
        let added = s.ok(&s.admin, "subnets/add", json!({"subnet": block})).await;
        let record = crate::support::only(&added);
        assert_eq!(record["broadcast"], broadcast, "{block}: {record}");
        let id = crate::support::id_of(record);
        let rest = s
            .api(Method::GET, &format!("/networks/{id}"), &s.admin_token, None)
            .await;
        assert_eq!(rest.json()["broadcast_address"], broadcast, "{block}");
    }
}

/// A real server with the given extra environment, its request log at `info` unless the test says otherwise.
fn launch(dir: &TempDir, env: &[(&str, &str)]) -> Ipamd {
    let mut cmd = Ipamd::command(dir.path());
    cmd.env("RUST_LOG", "info").env("IPAMD_LOG_FORMAT", "text");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ipamd::launch(cmd, dir.path())
}

/// The lines of `log` from the request log.
fn request_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(" ipamd::request: ")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_a_line_and_failed_logins_a_warning_with_the_claim_and_the_address() {
    let dir = TempDir::new().unwrap();
    let server = launch(&dir, &[]);
    server.expect(Method::GET, "/networks?per_page=5", None, 200).await;
    let addr = server.addr;
    let get = |path: &'static str| async move { crate::support::http(addr, Method::GET, path, &[], "").await };
    assert_eq!(get("/1.0/ping").await.status, 405);
    assert_eq!(get("/api/v1/openapi.json").await.status, 200);
    assert_eq!(get("/healthz").await.status, 200);
    let raw = json!({"appkey": "x", "userdata": format!("evil/mallory:{}", "0".repeat(40))});
    crate::support::http(addr, Method::POST, "/1.0/groups/get", &[], raw.to_string()).await;
    let (_, log) = server.terminate();

    let started = log
        .lines()
        .find(|l| l.contains("ipamd started"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        started.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{started}"
    );
    assert!(
        started.contains("listen=127.0.0.1:") && started.contains("database="),
        "{started}"
    );
    let lines = request_lines(&log);
    let rest = lines
        .iter()
        .find(|l| l.contains("door=\"rest\""))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        rest.contains("verb=\"GET\" path=\"/api/v1/networks\" method=\"subnets/get\""),
        "the path without its query: {rest}"
    );
    assert!(rest.contains("client=\"127.0.0.1\" status=200 ms="), "{rest}");
    let ms = rest.rsplit("ms=").next().unwrap();
    assert!(
        ms.split_once('.').is_some_and(|(_, frac)| frac.len() == 3),
        "fixed precision: {rest}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("path=\"/1.0/ping\"") && l.contains("status=405")),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("path=\"/api/v1/openapi.json\"") && l.contains("status=200")),
        "{log}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("/healthz")),
        "probes are at debug: {log}"
    );
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("login failed"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(warning.contains("client=127.0.0.1"), "{warning}");
    assert!(
        warning.contains("claimed=\"evil/mallory\"") && warning.contains("code=\"bad_appkey\""),
        "{warning}"
    );
    assert!(!log.contains(&"0".repeat(40)), "no sha1 in the log: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_goes_to_its_own_file_or_nowhere() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("requests.log");
    let server = launch(
        &dir,
        &[
            ("IPAMD_REQUEST_LOG", file.to_str().unwrap()),
            ("IPAMD_LOG_FORMAT", "json"),
        ],
    );
    server.expect(Method::GET, "/networks", None, 200).await;
    let (_, log) = server.terminate();
    assert!(
        request_lines(&log).is_empty() && !log.contains("\"ipamd::request\""),
        "{log}"
    );
    let written = std::fs::read_to_string(&file).unwrap();
    let line: Value = serde_json::from_str(written.lines().next().unwrap()).unwrap();
    assert_eq!(line["target"], json!("ipamd::request"));
    assert_eq!(line["fields"]["path"], json!("/api/v1/networks"));
    assert_eq!(line["fields"]["status"], json!(200));

    let quiet = TempDir::new().unwrap();
    let server = launch(&quiet, &[("IPAMD_REQUEST_LOG", "off")]);
    server.expect(Method::GET, "/networks", None, 200).await;
    let (_, log) = server.terminate();
    assert!(request_lines(&log).is_empty(), "{log}");
    assert!(log.contains("ipamd started"), "{log}");
}

#[test]
fn an_invalid_log_format_or_filter_is_refused_at_start() {
    let dir = TempDir::new().unwrap();
    for (var, value, said) in [
        (
            "IPAMD_LOG_FORMAT",
            "yaml",
            "IPAMD_LOG_FORMAT: 'yaml' is not a log format",
        ),
        ("RUST_LOG", "verbose", "RUST_LOG: 'verbose' is not a level"),
        ("RUST_LOG", "ipamd=loud", "RUST_LOG: 'ipamd=loud' is not a log filter"),
    ] {
        let mut cmd = Ipamd::command(dir.path());
        let out = cmd.env(var, value).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value}: {stderr}");
        assert!(stderr.contains(said), "{var}={value}: {stderr}");
    }
}
