//! The web UI (`/ui/`) over HTTP, as a browser without JavaScript uses it: sign-in and its cookie, sessions and
//! their end, CSRF tokens, org isolation, escaping, and changes made through its forms, checked through the API.

use std::time::Duration;

use hyper::Method;
use serde_json::json;

use crate::support::{id_of, only, status_of, urlencode, Ident, Reply, Server, ADMIN_PASSWORD};

/// A signed-in browser: its session cookie and the CSRF token its pages carry.
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// Signs in at the form; panics unless the answer is the redirect with a session cookie.
pub async fn sign_in(s: &Server, org: &str, username: &str, password: &str) -> Browser {
    let reply = post_form(
        s,
        None,
        "/ui/signin",
        &[("org", org), ("username", username), ("password", password)],
    )
    .await;
    assert_eq!(reply.status, 303, "{}", body(&reply));
    let set = reply.header("set-cookie").expect("a session cookie").to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    let page = get(s, Some(&cookie), "/ui/").await;
    assert_eq!(page.status, 200);
    let csrf = csrf_of(&body(&page));
    Browser { cookie, csrf }
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + 64].to_string()
}

pub fn body(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

pub async fn get(s: &Server, cookie: Option<&str>, path: &str) -> Reply {
    let headers: Vec<(&str, &str)> = cookie.map(|c| vec![("cookie", c)]).unwrap_or_default();
    s.request(Method::GET, path, &headers, "").await
}

pub async fn post_form(s: &Server, cookie: Option<&str>, path: &str, form: &[(&str, &str)]) -> Reply {
    let encoded: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    s.request(Method::POST, path, &headers, encoded.join("&")).await
}

impl Browser {
    /// Posts a form of a page, with the page's CSRF token.
    pub async fn post(&self, s: &Server, path: &str, form: &[(&str, &str)]) -> Reply {
        let mut form = form.to_vec();
        form.push(("csrf", &self.csrf));
        post_form(s, Some(&self.cookie), path, &form).await
    }

    pub async fn get(&self, s: &Server, path: &str) -> Reply {
        get(s, Some(&self.cookie), path).await
    }
}

/// A subnet made through the API as `who`; its id.
async fn subnet(s: &Server, who: &Ident, block: &str) -> i64 {
    id_of(only(&s.ok(who, "subnets/add", json!({"subnet": block})).await))
}

/// The address records of subnet `id`, through the API.
async fn records(s: &Server, who: &Ident, id: i64) -> Vec<String> {
    let found = s.ok(who, "ipaddress/get", json!({"subnet": id})).await;
    let mut ips: Vec<String> = found
        .as_object()
        .map(|m| m.values().map(|r| r["ip"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    ips.sort();
    ips
}

#[tokio::test]
async fn a_browser_is_sent_to_the_ui_and_an_api_client_gets_the_map_of_the_apis() {
    let s = Server::start().await;
    let browser = s
        .request(Method::GET, "/", &[("accept", "text/html,application/xhtml+xml")], "")
        .await;
    assert_eq!((browser.status, browser.header("location")), (303, Some("/ui/")));
    let client = s.request(Method::GET, "/", &[], "").await;
    assert_eq!(client.status, 200);
    assert_eq!(client.json()["apis"]["rest"]["base"], "/api/v1");
    let signed_out = get(&s, None, "/ui/subnets").await;
    assert_eq!(
        (signed_out.status, signed_out.header("location")),
        (303, Some("/ui/signin"))
    );
}

#[tokio::test]
async fn every_answer_forbids_inline_scripts_and_framing() {
    let s = Server::start().await;
    for path in ["/ui/signin", "/ui/", "/ui/nowhere", "/ui/assets/icon.svg"] {
        let reply = get(&s, None, path).await;
        let csp = reply.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{path}");
    }
    let page = body(&get(&s, None, "/ui/signin").await);
    assert!(!page.contains("<script") && !page.contains("style="), "{page}");
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session() {
    let s = Server::start().await;
    let form = [("org", "admin"), ("username", "admin"), ("password", ADMIN_PASSWORD)];
    let reply = post_form(&s, None, "/ui/signin", &form).await;
    let cookie = reply.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP without a proxy: {cookie}");
    // Behind a TLS-terminating proxy the cookie is Secure.
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-forwarded-proto", "https"),
    ];
    let body_text = format!("org=admin&username=admin&password={}", urlencode(ADMIN_PASSWORD));
    let proxied = s.request(Method::POST, "/ui/signin", &headers, body_text).await;
    assert!(proxied.header("set-cookie").unwrap().contains("; Secure"));

    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    assert!(body(&b.get(&s, "/ui/").await).contains("Overview"));
    let out = b.post(&s, "/ui/signout", &[]).await;
    assert_eq!((out.status, out.header("location")), (303, Some("/ui/signin")));
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let after = b.get(&s, "/ui/").await;
    assert_eq!((after.status, after.header("location")), (303, Some("/ui/signin")));
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_counts_toward_the_lockout_of_the_apis() {
    let s = Server::start_with(|settings| settings.lockout_attempts = 2).await;
    for _ in 0..2 {
        let reply = post_form(
            &s,
            None,
            "/ui/signin",
            &[("org", "admin"), ("username", "admin"), ("password", "wrong")],
        )
        .await;
        assert_eq!(reply.status, 401);
        assert!(body(&reply).contains("The organisation, username or password is wrong."));
        assert!(reply.header("set-cookie").is_none());
    }
    // Locked out: the right password too, in the UI and in the envelope alike.
    let form = [("org", "admin"), ("username", "admin"), ("password", ADMIN_PASSWORD)];
    let reply = post_form(&s, None, "/ui/signin", &form).await;
    assert_eq!(reply.status, 429);
    assert!(reply.header("retry-after").is_some());
    s.check(&s.admin, "userdata", json!({}), "too_many_attempts").await;
    // An org that does not exist is refused as a wrong password is.
    let reply = post_form(
        &s,
        None,
        "/ui/signin",
        &[("org", "nope"), ("username", "admin"), ("password", "x")],
    )
    .await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn stored_values_are_escaped_on_every_page() {
    let s = Server::start().await;
    let hostile = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>"];
    let id = id_of(only(
        &s.ok(
            &s.admin,
            "subnets/add",
            json!({"subnet": "10.9.0.0/24", "name": hostile[0], "description": hostile[1]}),
        )
        .await,
    ));
    s.ok(&s.admin, "groups/add", json!({"description": hostile[1]})).await;
    let host = s
        .ok(
            &s.admin,
            "ipaddress/add",
            json!({"subnet": id, "ip": "10.9.0.7", "hostname": hostile[0],
                                               "description": hostile[1]}),
        )
        .await;
    let host = id_of(only(&host));
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let pages = [
        "/ui/".to_string(),
        "/ui/subnets".into(),
        format!("/ui/subnets/{id}"),
        format!("/ui/subnets/{id}/edit"),
        format!("/ui/addresses/{host}"),
        "/ui/groups".into(),
        format!("/ui/search?q={}", urlencode("alert")),
        "/ui/log".into(),
    ];
    for page in pages {
        let reply = b.get(&s, &page).await;
        assert_eq!(reply.status, 200, "{page}");
        let html = body(&reply);
        for value in hostile {
            assert!(!html.contains(value), "{page} holds {value} unescaped");
        }
        assert!(!html.contains("<img"), "{page}");
        assert!(!html.contains("<script"), "{page}");
        assert!(
            html.contains("&lt;script&gt;") || html.contains("&quot;&gt;&lt;img"),
            "{page} shows neither value"
        );
    }
}

#[tokio::test]
async fn a_change_without_the_csrf_token_is_refused_and_changes_nothing() {
    let s = Server::start().await;
    let id = subnet(&s, &s.admin, "10.1.0.0/24").await;
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let path = format!("/ui/subnets/{id}/addresses");
    let missing = post_form(&s, Some(&b.cookie), &path, &[("ip", "10.1.0.5")]).await;
    assert_eq!(missing.status, 403);
    let wrong = "0".repeat(64);
    let forged = post_form(&s, Some(&b.cookie), &path, &[("ip", "10.1.0.5"), ("csrf", &wrong)]).await;
    assert_eq!(forged.status, 403);
    // A form of another site, with the token (which it could not read) and all.
    let form = format!("ip=10.1.0.5&csrf={}", b.csrf);
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", b.cookie.as_str()),
        ("sec-fetch-site", "cross-site"),
    ];
    let cross = s.request(Method::POST, &path, &headers, form).await;
    assert_eq!(cross.status, 403);
    assert!(records(&s, &s.admin, id).await.is_empty());
    // The same form with the token records the address.
    let done = b.post(&s, &path, &[("ip", "10.1.0.5")]).await;
    assert_eq!(done.status, 303);
    assert_eq!(records(&s, &s.admin, id).await, ["10.1.0.5"]);
}

#[tokio::test]
async fn another_orgs_session_neither_sees_nor_changes_this_orgs_records() {
    let s = Server::start().await;
    let id = subnet(&s, &s.admin, "10.2.0.0/24").await;
    s.ok(
        &s.admin,
        "ipaddress/add",
        json!({"subnet": id, "ip": "10.2.0.9", "hostname": "secret-host"}),
    )
    .await;
    let bob = s.org("other").await;
    let b = sign_in(&s, &bob.org, &bob.username, "password-of-bob").await;
    let page = b.get(&s, &format!("/ui/subnets/{id}")).await;
    assert_eq!(page.status, 404);
    assert!(!body(&page).contains("secret-host"));
    let search = body(&b.get(&s, "/ui/search?q=secret").await);
    assert!(
        search.contains("Nothing found") && !search.contains("secret-host"),
        "{search}"
    );
    let tried = b
        .post(&s, &format!("/ui/subnets/{id}/addresses"), &[("ip", "10.2.0.10")])
        .await;
    assert_eq!(tried.status, 404);
    let deleted = b
        .post(&s, &format!("/ui/subnets/{id}/delete"), &[("force", "true")])
        .await;
    assert_eq!(deleted.status, 404);
    assert_eq!(records(&s, &s.admin, id).await, ["10.2.0.9"]);
}

#[tokio::test]
async fn a_session_ends_when_the_password_changes_or_the_user_is_disabled() {
    let s = Server::start().await;
    let alice = s.user(&s.admin, "alice", "standard").await;
    let b = sign_in(&s, "admin", "alice", "password-of-alice").await;
    s.ok(
        &s.admin,
        "org/users/edit",
        json!({"id": alice.id, "password": "a-new-password-1"}),
    )
    .await;
    let after = b.get(&s, "/ui/").await;
    assert_eq!((after.status, after.header("location")), (303, Some("/ui/signin")));

    let b = sign_in(&s, "admin", "alice", "a-new-password-1").await;
    s.ok(&s.admin, "org/users/edit", json!({"id": alice.id, "disabled": true}))
        .await;
    assert_eq!(b.get(&s, "/ui/").await.status, 303);
    let refused = b.post(&s, "/ui/groups", &[("description", "x")]).await;
    assert_eq!(refused.status, 401);
    assert_eq!(s.ok(&s.admin, "groups/get", json!({})).await, json!([]));
}

#[tokio::test]
async fn the_idle_and_the_absolute_timeout_end_a_session() {
    let clock = ipamd::clock::ManualClock::new();
    let s = Server::start_with_clock(&clock, |settings| {
        settings.ui_idle_minutes = 30;
        settings.ui_session_hours = 2;
    })
    .await;
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    // Used every 20 minutes, the session outlives the idle timeout…
    for _ in 0..5 {
        clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(b.get(&s, "/ui/").await.status, 200);
    }
    // …but not its absolute timeout (2 hours from sign-in).
    clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(b.get(&s, "/ui/").await.status, 303);

    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(b.get(&s, "/ui/").await.status, 200);
    clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(b.get(&s, "/ui/").await.status, 303, "idle for 31 minutes");
}

#[tokio::test]
async fn the_forms_change_records_through_the_api_and_show_its_refusals_at_the_field() {
    let s = Server::start().await;
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let made = b
        .post(&s, "/ui/subnets", &[("subnet", "10.3.0.0/29"), ("name", "lab")])
        .await;
    assert_eq!(made.status, 303);
    let id: i64 = made
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The next free address in one click, then one picked from the map.
    let path = format!("/ui/subnets/{id}/addresses");
    assert_eq!(b.post(&s, &path, &[("next", "1")]).await.status, 303);
    let page = body(&b.get(&s, &format!("/ui/subnets/{id}")).await);
    assert!(
        page.contains(&format!("href=\"/ui/subnets/{id}?allocate=10.3.0.2#allocate\"")),
        "{page}"
    );
    let prefilled = body(&b.get(&s, &format!("/ui/subnets/{id}?allocate=10.3.0.2")).await);
    assert!(
        prefilled.contains("name=\"ip\" type=\"text\" value=\"10.3.0.2\""),
        "{prefilled}"
    );
    assert_eq!(
        b.post(&s, &path, &[("ip", "10.3.0.2"), ("hostname", "web")])
            .await
            .status,
        303
    );
    assert_eq!(records(&s, &s.admin, id).await, ["10.3.0.1", "10.3.0.2"]);
    // A malformed value and a taken address are shown at the address field.
    for (ip, code) in [("10.3.0.x", "invalid_params"), ("10.3.0.2", "duplicate")] {
        let refused = b.post(&s, &path, &[("ip", ip)]).await;
        assert_eq!(refused.status, status_of(code), "{ip}");
        let html = body(&refused);
        assert!(
            html.contains("aria-invalid=\"true\" aria-describedby=\"alloc-ip-error\""),
            "{html}"
        );
    }
    // A subnet that is not a block: at its field.
    let refused = b.post(&s, "/ui/subnets", &[("subnet", "10.3.0.1/24")]).await;
    assert!(
        body(&refused).contains("aria-describedby=\"subnet-subnet-error\""),
        "{}",
        body(&refused)
    );
    // Edit and delete a record.
    let found = s.ok(&s.admin, "ipaddress/get", json!({"ip": "10.3.0.2"})).await;
    let record = id_of(only(&found));
    let version = only(&found)["version"].as_str().map(str::to_string).unwrap_or_default();
    let edited = b
        .post(
            &s,
            &format!("/ui/addresses/{record}"),
            &[
                ("ip", "10.3.0.2"),
                ("hostname", "web2"),
                ("status", "reserved"),
                ("version", &version),
            ],
        )
        .await;
    assert_eq!(edited.status, 303, "{}", body(&edited));
    let now = s.ok(&s.admin, "ipaddress/get", json!({"id": record})).await;
    assert_eq!(
        (only(&now)["hostname"].as_str(), only(&now)["status"].as_str()),
        (Some("web2"), Some("reserved"))
    );
    assert_eq!(
        b.post(&s, &format!("/ui/addresses/{record}/delete"), &[]).await.status,
        303
    );
    assert_eq!(records(&s, &s.admin, id).await, ["10.3.0.1"]);
    // Each change is in the audit log, made by the UI.
    let logs = s.ok(&s.admin, "org/logs", json!({"method": "ipaddress/delete"})).await;
    assert_eq!(only(&logs["logs"])["application"], "ui");
}

#[tokio::test]
async fn a_new_token_is_shown_once_in_the_answer_and_never_in_a_url() {
    let s = Server::start().await;
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let reply = b.post(&s, "/ui/tokens", &[("description", "for the script")]).await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("location").is_none());
    let html = body(&reply);
    let at = html.find("it is not shown again.</p><p><code>").unwrap() + 35;
    let token = &html[at..at + 40];
    // The token works on the REST door, and no later page shows it.
    assert_eq!(s.api(Method::GET, "/networks", token, None).await.status, 200);
    assert!(!body(&b.get(&s, "/ui/tokens").await).contains(token));
    // An app key likewise, and it works on the envelope.
    let reply = b.post(&s, "/ui/appkeys", &[("name", "script")]).await;
    let html = body(&reply);
    let at = html.find("it is not shown again.</p><p><code>").unwrap() + 35;
    let key = &html[at..at + 36];
    s.ok(&s.admin.with_appkey(key), "userdata", json!({})).await;
    assert!(!body(&b.get(&s, "/ui/tokens").await).contains(key));
    // Revoked from the page: the key stops working.
    let keys = s.ok(&s.admin, "org/appkeys/get", json!({})).await;
    let script = keys
        .as_object()
        .unwrap()
        .values()
        .find(|k| k["name"] == "script")
        .unwrap();
    let path = format!("/ui/appkeys/{}/delete", id_of(script));
    assert!(body(&b.get(&s, "/ui/tokens").await).contains(&format!("action=\"{path}\"")));
    assert_eq!(b.post(&s, &path, &[]).await.status, 303);
    s.check(&s.admin.with_appkey(key), "userdata", json!({}), "bad_appkey")
        .await;
}

#[tokio::test]
async fn a_restore_ends_every_session() {
    let s = Server::start().await;
    if !s.makes_backups() {
        return;
    }
    let name = s.ok(&s.admin, "backups/add", json!({})).await["name"]
        .as_str()
        .unwrap()
        .to_string();
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    assert_eq!(b.get(&s, "/ui/").await.status, 200);
    s.ok(&s.admin, "backups/restore", json!({"name": name})).await;
    let after = b.get(&s, "/ui/").await;
    assert_eq!((after.status, after.header("location")), (303, Some("/ui/signin")));
    // Signing in again works on the restored data.
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    assert_eq!(b.get(&s, "/ui/").await.status, 200);
}

#[tokio::test]
async fn a_subnet_is_split_joined_and_deleted_through_its_forms() {
    let s = Server::start().await;
    let id = subnet(&s, &s.admin, "10.4.0.0/24").await;
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let refused = b.post(&s, &format!("/ui/subnets/{id}/split"), &[("cidr", "20")]).await;
    assert!((400..500).contains(&refused.status), "{}", refused.status);
    assert!(
        body(&refused).contains("aria-describedby=\"split-cidr-error\""),
        "{}",
        body(&refused)
    );
    let split = b.post(&s, &format!("/ui/subnets/{id}/split"), &[("cidr", "25")]).await;
    assert_eq!((split.status, split.header("location")), (303, Some("/ui/subnets")));
    let blocks = |v: serde_json::Value| {
        let mut b: Vec<String> = v
            .as_object()
            .unwrap()
            .values()
            .map(|s| s["subnet"].as_str().unwrap().to_string())
            .collect();
        b.sort();
        b
    };
    assert_eq!(
        blocks(s.ok(&s.admin, "subnets/get", json!({})).await),
        ["10.4.0.0/25", "10.4.0.128/25"]
    );
    let joined = b.post(&s, &format!("/ui/subnets/{id}/join"), &[("cidr", "24")]).await;
    assert_eq!(
        (joined.status, joined.header("location")),
        (303, Some(format!("/ui/subnets/{id}").as_str()))
    );
    assert_eq!(blocks(s.ok(&s.admin, "subnets/get", json!({})).await), ["10.4.0.0/24"]);
    let deleted = b
        .post(&s, &format!("/ui/subnets/{id}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(deleted.status, 303);
    assert_eq!(s.ok(&s.admin, "subnets/get", json!({})).await, json!([]));
}
