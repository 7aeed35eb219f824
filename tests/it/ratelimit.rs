//! Rate limits over a real socket: one budget per owner (a user once their credentials are proven, an
//! `API_TOKENS` token, else the client address) across the routes of both APIs, 429 with `Retry-After` and the
//! `X-RateLimit-*` headers, the paths that are never limited, the bounded tables under a flood of made-up
//! identities, the Redis backend shared by two servers, and a Redis that fails.
//!
//! Every test calls from 127.0.0.1, and the harness's first call (the admin's, not proven yet) spends that
//! address's budget: tests that count the address's budget count from what the first answer says is left.
//!
//! The limited servers run on a manual clock: windows turn only when a test moves the clock ([`fresh_window`]), so
//! no burst of calls straddles two windows and no test sleeps for one to end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::json;
use tokio::net::TcpListener;

use ipamd::clock::{Clock, ManualClock};

use crate::rest::error_of;
use crate::support::{self, Reply, Server};

const LIMIT: &str = "5 per minute";

/// An operator token used only to read the window's reset time, with a budget of its own.
const PROBE: &str = "probe-token";

/// A server counting `5 per minute` per caller in memory, with the operator tokens `tokens` (and [`PROBE`]), on a
/// manual clock.
async fn limited(tokens: &str) -> Server {
    let tokens = format!("{PROBE},{tokens}");
    Server::start_with_clock(&ManualClock::new(), move |s| {
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

/// Checks a 429 from either door: the JSON error, `Retry-After` within the minute, and the budget headers.
fn assert_refused(r: &Reply, what: &str) {
    assert_eq!(r.status, 429, "{what}: {}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    let code = body.get("code").or_else(|| body.get("errorCode"));
    assert_eq!(code, Some(&json!("rate_limited")), "{what}: {body}");
    let retry = header_u64(r, "retry-after");
    assert!((1..=60).contains(&retry), "{what}: Retry-After {retry}");
    assert_budget(r, 0, what);
}

/// The manual clock of a server started with [`Server::start_with_clock`].
fn clock(s: &Server) -> &ManualClock {
    match &s.app.clock {
        Clock::Manual(clock) => clock,
        Clock::System => panic!("a test of windows runs its server on a manual clock"),
    }
}

/// Moves the server's clock to the start of the next window, so that a test's calls start from whole budgets
/// (whatever its setup spent) in a window that turns only when the test says. Reads the reset time with `probe`, a
/// caller the test does not otherwise use, and checks with it that the window turned.
async fn fresh_window(s: &Server, probe: &str) {
    let r = s.api(Method::GET, "/probe", probe, None).await;
    let reset = header_u64(&r, "x-ratelimit-reset");
    clock(s).advance(Duration::from_secs(reset));
    let r = s.api(Method::GET, "/probe", probe, None).await;
    let limit = header_u64(&r, "x-ratelimit-limit");
    assert_eq!(header_u64(&r, "x-ratelimit-reset"), 60, "a whole window is left");
    assert_eq!(
        header_u64(&r, "x-ratelimit-remaining"),
        limit - 1,
        "the probe's budget is whole again"
    );
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

/// Counts `left` down to 0 with calls of `call`, each answered with the budget headers, then expects a 429.
async fn spend_down<F, Fut>(left: u64, what: &str, mut call: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    for left in (0..left).rev() {
        let r = call().await;
        assert_ne!(r.status, 429, "{what}: {}", String::from_utf8_lossy(&r.body));
        assert_budget(&r, left, what);
    }
    assert_refused(&call().await, what);
}

#[tokio::test]
async fn the_sixth_call_of_a_token_gets_429_with_the_headers() {
    let s = limited("other-token").await;
    let t = s.admin_token.clone();
    // The token's first use spends the address's budget; from then on it is proven, and spends its user's.
    assert_eq!(s.api(Method::GET, "/networks", &t, None).await.status, 200);
    fresh_window(&s, PROBE).await;
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
    assert!(header_u64(&r, "x-ratelimit-remaining") < 5);
}

/// A spent budget stays spent to the last second of its window, and is whole again in the next one.
#[tokio::test]
async fn a_spent_budget_refills_when_the_window_turns() {
    let s = limited("").await;
    let t = s.admin_token.clone();
    assert_eq!(s.api(Method::GET, "/networks", &t, None).await.status, 200);
    fresh_window(&s, PROBE).await;
    spend_down(5, "the token", || s.api(Method::GET, "/networks", &t, None)).await;
    let r = s.api(Method::GET, "/networks", &t, None).await;
    assert_refused(&r, "a spent budget");
    assert_eq!(header_u64(&r, "retry-after"), 60);
    clock(&s).advance(Duration::from_secs(59));
    let r = s.api(Method::GET, "/networks", &t, None).await;
    assert_refused(&r, "the last second of the window");
    assert_eq!(header_u64(&r, "retry-after"), 1);
    clock(&s).advance(Duration::from_secs(1));
    let r = s.api(Method::GET, "/networks", &t, None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_budget(&r, 4, "the next window");
}

#[tokio::test]
async fn the_envelope_api_is_limited_per_user_once_proven() {
    let s = limited("").await;
    let counted = s.user(&s.admin, "counted", "standard").await;
    let other = s.user(&s.admin, "other", "standard").await;
    // Their first calls prove their credentials (spending the address's budget); their own budgets are untouched.
    s.ok(&counted, "userdata", json!({})).await;
    s.ok(&other, "userdata", json!({})).await;
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

    // Another user of the same app key has a budget of their own.
    let r = envelope(&s, "userdata", &other.appkey, &other.userdata).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_budget(&r, 4, "another user");
}

#[tokio::test]
async fn a_user_has_one_budget_whichever_app_key_or_token_they_call_with() {
    let s = Server::start_with_clock(&ManualClock::new(), |s| {
        s.ratelimit_enabled = true;
        s.api_rate_limit = "40 per minute".into();
        s.api_tokens = PROBE.into();
    })
    .await;
    let user = s.user(&s.admin, "many", "readonly").await;
    let mut keys = vec![user.clone()];
    let mut tokens = Vec::new();
    for i in 0..3 {
        let added = s.ok(&user, "org/appkeys/add", json!({"name": format!("k{i}")})).await;
        keys.push(user.with_appkey(crate::support::only(&added)["key"].as_str().unwrap()));
        let added = s.ok(&user, "org/tokens/add", json!({})).await;
        tokens.push(crate::support::only(&added)["token"].as_str().unwrap().to_string());
    }
    // Each credential proves itself once (on the address's budget).
    for who in &keys {
        s.ok(who, "userdata", json!({})).await;
    }
    for t in &tokens {
        assert_eq!(s.api(Method::GET, "/networks", t, None).await.status, 200);
    }
    fresh_window(&s, PROBE).await;
    // Seven credentials, one budget: every call takes one off the same count, whichever it came with.
    let first = envelope(&s, "userdata", &keys[0].appkey, &keys[0].userdata).await;
    let mut left = header_u64(&first, "x-ratelimit-remaining");
    let mut turn = 0;
    while left > 0 {
        turn += 1;
        let r = match turn % 7 {
            i @ 0..=3 => envelope(&s, "userdata", &keys[i].appkey, &keys[i].userdata).await,
            i => s.api(Method::GET, "/networks", &tokens[i - 4], None).await,
        };
        left -= 1;
        assert_eq!(r.status, 200, "call {turn}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(header_u64(&r, "x-ratelimit-remaining"), left, "call {turn}");
    }
    for t in &tokens {
        let r = s.api(Method::GET, "/networks", t, None).await;
        error_of(&r, 429, "rate_limited", "another token of the same user");
    }
    for who in &keys {
        let r = envelope(&s, "userdata", &who.appkey, &who.userdata).await;
        assert_eq!(r.status, 429, "another app key of the same user");
    }
}

#[tokio::test]
async fn claiming_another_user_spends_the_address_budget_not_theirs() {
    let s = limited("").await;
    let victim = s.user(&s.admin, "victim", "standard").await;
    s.ok(&victim, "userdata", json!({})).await;
    fresh_window(&s, PROBE).await;
    let before = envelope(&s, "userdata", &victim.appkey, &victim.userdata).await;
    let left = header_u64(&before, "x-ratelimit-remaining");
    // Whoever holds the org's app key claims the victim with a wrong or malformed password, until refused.
    let claims = [
        victim.with_password("guess").userdata,
        "admin/victim:not-a-sha1".to_string(),
    ];
    for i in 0..6 {
        let r = envelope(&s, "userdata", &victim.appkey, &claims[i % 2]).await;
        assert!(matches!(r.status, 401 | 429), "{}", String::from_utf8_lossy(&r.body));
    }
    // The victim's budget is as it was.
    let after = envelope(&s, "userdata", &victim.appkey, &victim.userdata).await;
    assert_eq!(after.status, 200);
    assert_eq!(header_u64(&after, "x-ratelimit-remaining"), left - 1);
    // Valid credentials not proven yet count against the address, which the claims spent.
    let newcomer = s.user(&s.admin, "newcomer", "standard").await;
    let r = envelope(&s, "userdata", &newcomer.appkey, &newcomer.userdata).await;
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn calls_without_credentials_share_the_client_address_budget_across_both_apis() {
    let s = limited("").await;
    // The admin's token is proven before the address's budget runs out.
    assert_eq!(s.api(Method::GET, "/networks", &s.admin_token, None).await.status, 200);
    fresh_window(&s, PROBE).await;
    let r = s.api(Method::GET, "/networks", "", None).await;
    error_of(&r, 401, "auth_required", "REST without a token");
    let left = header_u64(&r, "x-ratelimit-remaining");
    assert!(left >= 2, "left {left}");
    // Both doors spend the one budget of the address.
    let s = &s;
    let mut turn = 0;
    spend_down(left, "calls without credentials", || {
        turn += 1;
        async move {
            match turn % 2 {
                0 => s.api(Method::GET, "/hosts", "", None).await,
                _ => {
                    let r = envelope(s, "groups/get", "", "").await;
                    if r.status != 429 {
                        assert_eq!(r.json()["errorCode"], json!("auth_required"));
                    }
                    r
                }
            }
        }
    })
    .await;
    let r = envelope(s, "ping", "", "").await;
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["errorCode"], json!("rate_limited"));
    // Proven callers on the same address are not affected.
    let r = s.api(Method::GET, "/networks", &s.admin_token, None).await;
    assert_eq!(r.status, 200);
    let r = envelope(s, "userdata", &s.admin.appkey, &s.admin.userdata).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn failed_authentication_counts_against_the_client_address() {
    let s = limited("").await;
    assert_eq!(s.api(Method::GET, "/networks", &s.admin_token, None).await.status, 200);
    fresh_window(&s, PROBE).await;
    // A caller guessing tokens or app keys cannot give itself a fresh budget with each guess.
    let r = s.api(Method::GET, "/networks", &format!("guess-{:040}", 0), None).await;
    error_of(&r, 401, "auth_failed", "a wrong token");
    let s = &s;
    let mut guess = 0;
    spend_down(header_u64(&r, "x-ratelimit-remaining"), "guesses", || {
        guess += 1;
        async move {
            match guess % 2 {
                0 => {
                    s.api(Method::GET, "/networks", &format!("guess-{guess:040}"), None)
                        .await
                }
                _ => {
                    let key = format!("00000000-0000-4000-8000-{guess:012}");
                    envelope(s, "groups/get", &key, &s.admin.userdata).await
                }
            }
        }
    })
    .await;
    let r = s.api(Method::GET, "/networks", "", None).await;
    assert_refused(&r, "no token from the same address");
    // A proven token keeps its own budget.
    let r = s.api(Method::GET, "/networks", &s.admin_token, None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn health_docs_and_the_openapi_document_are_never_limited() {
    let s = limited("").await;
    fresh_window(&s, PROBE).await;
    let r = s.api(Method::GET, "/networks", "", None).await;
    let left = header_u64(&r, "x-ratelimit-remaining");
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
    spend_down(left, "no token after the exempt paths", || {
        s.api(Method::GET, "/networks", "", None)
    })
    .await;
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
    // One clock for both servers: they count the same windows, as servers on synchronised clocks do.
    let shared_clock = ManualClock::new();
    let start = || {
        let (url, tokens) = (url.clone(), tokens.clone());
        Server::start_with_clock(&shared_clock, move |s| {
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
    // The next window is a new counter in Redis, whole again on both servers.
    fresh_window(&one, &probe).await;
    for (i, s) in [&two, &one].into_iter().enumerate() {
        let r = s.api(Method::GET, "/networks", &shared, None).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_budget(&r, 4 - i as u64, "the next window");
    }
}

/// Finding: with `RATELIMIT_STORAGE_URI` at a Redis that failed, every call waited 5 s for it. Now a failed
/// Redis is tried again only after a pause that doubles each time, and meanwhile each process counts the
/// budgets in memory: 50 calls make at most a few connection attempts, and the budget still holds.
#[tokio::test]
async fn a_failing_redis_is_tried_rarely_while_budgets_are_counted_in_memory() {
    // A "Redis" that accepts connections and closes them at once, counting them.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    let s = Server::start_with_clock(&ManualClock::new(), move |s| {
        s.ratelimit_enabled = true;
        s.api_rate_limit = LIMIT.into();
        s.ratelimit_storage_uri = url;
        s.api_tokens = format!("{PROBE},caller");
    })
    .await;
    // The check at start meets the failure first (and warns).
    s.app.limiter.as_ref().unwrap().check_storage().await;
    assert!(
        attempts.load(Ordering::SeqCst) >= 1,
        "the check at start did not connect"
    );
    fresh_window(&s, PROBE).await;
    let mut statuses = Vec::new();
    for _ in 0..50 {
        statuses.push(s.api(Method::GET, "/networks", "caller", None).await.status);
    }
    let tried = attempts.load(Ordering::SeqCst);
    println!("{tried} connection attempts for 50 calls");
    assert!(tried <= 4, "{tried} connection attempts for 50 calls");
    // Counted in memory meanwhile: five calls pass, the rest are refused.
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 45, "{statuses:?}");
}
