//! Rate limits over a real socket: one budget per caller across the routes of both APIs, 429 with `Retry-After`
//! and the `X-RateLimit-*` headers, the paths that are never limited, and the Redis backend shared by two servers.

use std::time::Duration;

use hyper::Method;
use serde_json::json;

use crate::rest::error_of;
use crate::support::{self, Reply, Server};

const LIMIT: &str = "5 per minute";

/// An operator token used only to read the window's reset time, with a budget of its own.
const PROBE: &str = "probe-token";

/// A server counting `5 per minute` per caller in memory, with the operator tokens `tokens` (and [`PROBE`]).
async fn limited(tokens: &str) -> Server {
    let tokens = format!("{PROBE},{tokens}");
    Server::start_with(move |s| {
        s.ratelimit_enabled = true;
        s.api_rate_limit = LIMIT.into();
        s.api_tokens = tokens;
    })
    .await
}

fn header_u64(r: &Reply, name: &str) -> u64 {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} header (status {})", r.status))
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Checks the budget headers of an answer: the limit, what is left, and a reset within the minute.
fn assert_budget(r: &Reply, remaining: u64, what: &str) {
    assert_eq!(header_u64(r, "x-ratelimit-limit"), 5, "{what}");
    assert_eq!(header_u64(r, "x-ratelimit-remaining"), remaining, "{what}");
    let reset = header_u64(r, "x-ratelimit-reset");
    assert!((1..=60).contains(&reset), "{what}: reset {reset}");
}

/// Checks a 429: the JSON error, `Retry-After` within the minute, and the budget headers.
fn assert_refused(r: &Reply, what: &str) {
    error_of(r, 429, "rate_limited", what);
    let retry = header_u64(r, "retry-after");
    assert!((1..=60).contains(&retry), "{what}: Retry-After {retry}");
    assert_budget(r, 0, what);
}

/// Waits for the next window when the current one ends within a few seconds, so that a test's burst of calls
/// never straddles two windows. Reads the reset time with `probe`, a caller the test does not otherwise use.
async fn fresh_window(s: &Server, probe: &str) {
    let r = s.api(Method::GET, "/probe", probe, None).await;
    let reset = header_u64(&r, "x-ratelimit-reset");
    if reset <= 3 {
        tokio::time::sleep(Duration::from_secs(reset) + Duration::from_millis(100)).await;
    }
}

/// `POST /1.0/<method>` with an envelope carrying `appkey` and `userdata` (each left out when empty).
async fn envelope(s: &Server, method: &str, appkey: &str, userdata: &str) -> Reply {
    let mut env = json!({"reqid": "rl", "data": {}});
    if !appkey.is_empty() {
        env["appkey"] = json!(appkey);
    }
    if !userdata.is_empty() {
        env["userdata"] = json!(userdata);
    }
    s.post(method, &env).await
}

#[tokio::test]
async fn the_sixth_call_of_a_token_gets_429_with_the_headers() {
    let s = limited("other-token").await;
    fresh_window(&s, PROBE).await;
    let t = s.admin_token.clone();
    // One budget across all routes.
    let calls = [
        (Method::GET, "/networks", None),
        (
            Method::POST,
            "/networks",
            Some(json!({"network": "10.0.0.0", "cidr": 24})),
        ),
        (Method::GET, "/networks/1", None),
        (Method::GET, "/ip/networks/1/next-ip", None),
        (Method::GET, "/networks/1/dhcp-ranges", None),
    ];
    for (i, (verb, path, body)) in calls.into_iter().enumerate() {
        let r = s.api(verb.clone(), path, &t, body.as_ref()).await;
        let what = format!("call {} {verb} {path}", i + 1);
        assert!(
            r.status < 300,
            "{what}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert_budget(&r, 4 - i as u64, &what);
    }
    let r = s.api(Method::GET, "/networks", &t, None).await;
    assert_refused(&r, "the sixth call");
    let r = s
        .api(
            Method::POST,
            "/networks",
            &t,
            Some(&json!({"network": "10.1.0.0", "cidr": 24})),
        )
        .await;
    assert_refused(&r, "a seventh call on another route");

    // Another token has its own budget, and sees that the refused POST created nothing.
    let r = s.api(Method::GET, "/networks", "other-token", None).await;
    assert_eq!(r.status, 200);
    assert_budget(&r, 4, "another token");
    assert_eq!(r.json()["pagination"]["total_items"], json!(1));
    // So do callers without a token (the client address), and error answers carry the headers too.
    let r = s.api(Method::GET, "/networks", "", None).await;
    error_of(&r, 401, "auth_required", "no token");
    assert_budget(&r, 4, "no token");
}

#[tokio::test]
async fn the_envelope_api_is_limited_per_app_key_and_user() {
    let s = limited("").await;
    // Made before the window starts: their budgets are untouched by the admin's setup calls.
    let counted = s.user(&s.admin, "counted", "standard").await;
    let other = s.user(&s.admin, "other", "standard").await;
    fresh_window(&s, PROBE).await;
    for i in 0..5 {
        let r = envelope(&s, "userdata", &counted.appkey, &counted.userdata).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_budget(&r, 4 - i, &format!("envelope call {}", i + 1));
    }
    let r = envelope(&s, "groups/get", &counted.appkey, &counted.userdata).await;
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(
        (&body["errorCode"], &body["reqid"], &body["method"]),
        (&json!("rate_limited"), &json!("rl"), &json!("groups/get"))
    );
    assert!(body.get("response").is_none(), "{body}");
    let retry = header_u64(&r, "retry-after");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_budget(&r, 0, "the sixth envelope call");
    // The app key in any case is the same caller.
    let r = envelope(&s, "userdata", &counted.appkey.to_uppercase(), &counted.userdata).await;
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));

    // Another user of the same app key, and a REST token, have budgets of their own.
    let r = envelope(&s, "userdata", &other.appkey, &other.userdata).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_budget(&r, 4, "another user");
    let r = s.api(Method::GET, "/networks", &s.admin_token, None).await;
    assert_eq!(r.status, 200);
    assert_budget(&r, 4, "a REST token");
}

#[tokio::test]
async fn calls_without_credentials_share_the_client_address_budget_across_both_apis() {
    let s = limited("").await;
    fresh_window(&s, PROBE).await;
    let mut left = 5;
    for _ in 0..3 {
        left -= 1;
        let r = s.api(Method::GET, "/networks", "", None).await;
        error_of(&r, 401, "auth_required", "REST without a token");
        assert_budget(&r, left, "REST without a token");
    }
    for _ in 0..2 {
        left -= 1;
        let r = envelope(&s, "groups/get", "", "").await;
        assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["errorCode"], json!("auth_required"));
        assert_budget(&r, left, "the envelope without an app key");
    }
    let r = s.api(Method::GET, "/hosts", "", None).await;
    assert_refused(&r, "the sixth call without a token");
    let r = envelope(&s, "ping", "", "").await;
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["errorCode"], json!("rate_limited"));
    // Authenticated callers on the same address are not affected.
    let r = s.api(Method::GET, "/networks", &s.admin_token, None).await;
    assert_eq!(r.status, 200);
    let r = envelope(&s, "userdata", &s.admin.appkey, &s.admin.userdata).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn failed_authentication_counts_against_the_client_address() {
    let s = limited("").await;
    fresh_window(&s, PROBE).await;
    // A caller guessing tokens or app keys cannot give itself a fresh budget with each guess.
    for i in 0..3 {
        let r = s.api(Method::GET, "/networks", &format!("guess-{i:040}"), None).await;
        error_of(&r, 401, "auth_failed", "a wrong token");
    }
    for i in 0..2 {
        let key = format!("00000000-0000-4000-8000-{i:012}");
        let r = envelope(&s, "groups/get", &key, &s.admin.userdata).await;
        assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = s.api(Method::GET, "/networks", "guess-last", None).await;
    assert_refused(&r, "the sixth failed attempt from one address");
    let r = s.api(Method::GET, "/networks", "", None).await;
    assert_refused(&r, "no token from the same address");
    // A valid token keeps its own budget.
    let r = s.api(Method::GET, "/networks", &s.admin_token, None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn health_docs_and_the_openapi_document_are_never_limited() {
    let s = limited("").await;
    fresh_window(&s, PROBE).await;
    let exempt = [
        "/healthz",
        "/api/v1/openapi.json",
        "/api/v1/swagger.json",
        "/api/v1/docs/",
        "/api/v1/docs/swagger-ui.css",
    ];
    for path in exempt {
        for _ in 0..7 {
            let r = s.request(Method::GET, path, &[], "").await;
            assert_eq!(r.status, 200, "{path}");
        }
    }
    // They did not spend the client address's budget.
    for left in (0..5).rev() {
        let r = s.api(Method::GET, "/networks", "", None).await;
        error_of(&r, 401, "auth_required", "no token");
        assert_budget(&r, left, "no token after the exempt paths");
    }
    assert_refused(&s.api(Method::GET, "/networks", "", None).await, "no token");
    // Spent budgets do not close them, with or without a token.
    for _ in 0..6 {
        s.api(Method::GET, "/networks", &s.admin_token, None).await;
    }
    let bearer = format!("Bearer {}", s.admin_token);
    for path in exempt {
        let r = s.request(Method::GET, path, &[], "").await;
        assert_eq!(r.status, 200, "{path}");
        let r = s
            .request(Method::GET, path, &[("authorization", bearer.as_str())], "")
            .await;
        assert_eq!(r.status, 200, "{path} with a spent token");
    }
}

#[tokio::test]
async fn nothing_is_limited_when_rate_limiting_is_off() {
    let s = Server::start_with(|s| {
        s.ratelimit_enabled = false;
        s.api_rate_limit = LIMIT.into();
    })
    .await;
    for _ in 0..8 {
        let r = s.api(Method::GET, "/networks", &s.admin_token, None).await;
        assert_eq!(r.status, 200);
        assert!(r.header("x-ratelimit-limit").is_none());
        let r = envelope(&s, "userdata", &s.admin.appkey, &s.admin.userdata).await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn the_redis_backend_shares_one_budget_between_servers() {
    let Ok(url) = std::env::var("IPAMD_TEST_REDIS_URL") else {
        return support::skip("IPAMD_TEST_REDIS_URL is not set");
    };
    // Tokens unique to this run, so that counters of earlier runs in the same Redis never interfere.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (shared, other, probe) = (format!("shared-{run}"), format!("other-{run}"), format!("probe-{run}"));
    let tokens = format!("{shared},{other},{probe}");
    let start = || {
        let (url, tokens) = (url.clone(), tokens.clone());
        Server::start_with(move |s| {
            s.ratelimit_enabled = true;
            s.api_rate_limit = LIMIT.into();
            s.ratelimit_storage_uri = url;
            s.api_tokens = tokens;
        })
    };
    let one = start().await;
    let two = start().await;
    fresh_window(&one, &probe).await;
    for i in 0..5u64 {
        let s = if i % 2 == 0 { &one } else { &two };
        let r = s.api(Method::GET, "/networks", &shared, None).await;
        assert_eq!(r.status, 200, "call {}: {}", i + 1, String::from_utf8_lossy(&r.body));
        assert_budget(&r, 4 - i, &format!("call {} (server {})", i + 1, i % 2 + 1));
    }
    assert_refused(
        &two.api(Method::GET, "/networks", &shared, None).await,
        "the sixth call, on the second server",
    );
    assert_refused(
        &one.api(Method::GET, "/hosts", &shared, None).await,
        "the seventh call, on the first server",
    );
    let r = two.api(Method::GET, "/networks", &other, None).await;
    assert_eq!(r.status, 200);
    assert_budget(&r, 4, "another token");
}
