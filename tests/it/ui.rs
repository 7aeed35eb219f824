//! The web UI (`/ui/`) over HTTP, as a browser without JavaScript uses it: sign-in and its cookie, sessions and
//! their end, CSRF tokens, org isolation, escaping, and changes made through its forms, checked through the API.

use std::time::Duration;

use hyper::Method;
use serde_json::json;

use crate::support::{id_of, only, status_of, status_of_any, urlencode, Ident, Reply, Server, ADMIN_PASSWORD};

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
    s.ok(
        &s.admin,
        "dhcpranges/add",
        json!({"subnet": id, "start_ip": "10.9.0.100", "end_ip": "10.9.0.110", "description": hostile[0]}),
    )
    .await;
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

/// Asserts that `reply` is the refusal `code` shown at the input `id` (its message under it); the page.
fn refused_at(reply: &Reply, code: &str, id: &str) -> String {
    let html = body(reply);
    assert_eq!(reply.status, status_of_any(code), "{html}");
    assert!(
        html.contains(&format!("aria-invalid=\"true\" aria-describedby=\"{id}-error\"")),
        "{id}: {html}"
    );
    html
}

/// The DHCP ranges of subnet `id`, through the API: `start-end`, whether active, and the description.
async fn ranges(s: &Server, id: i64) -> Vec<String> {
    let found = s.ok(&s.admin, "dhcpranges/get", json!({"subnet": id})).await;
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let mut shown: Vec<String> = found
        .as_object()
        .map(|m| {
            m.values()
                .map(|r| {
                    let [a, b, on, about] = ["start_ip", "end_ip", "is_active", "description"].map(|k| text(&r[k]));
                    format!("{a}-{b} {on} {about}")
                })
                .collect()
        })
        .unwrap_or_default();
    shown.sort();
    shown
}

#[tokio::test]
async fn dhcp_ranges_are_added_edited_and_deleted_on_the_subnet_page_with_refusals_at_the_field() {
    let s = Server::start().await;
    let id = subnet(&s, &s.admin, "10.5.0.0/24").await;
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let path = format!("/ui/subnets/{id}/ranges");
    let form = [
        ("start_ip", "10.5.0.100"),
        ("end_ip", "10.5.0.150"),
        ("description", "pool"),
        ("is_active", "true"),
    ];
    let forged = post_form(&s, Some(&b.cookie), &path, &form).await;
    assert_eq!(forged.status, 403);
    assert!(ranges(&s, id).await.is_empty());
    let added = b.post(&s, &path, &form).await;
    let back = format!("/ui/subnets/{id}#ranges");
    assert_eq!((added.status, added.header("location")), (303, Some(back.as_str())));
    assert_eq!(ranges(&s, id).await, ["10.5.0.100-10.5.0.150 true pool"]);
    // An end outside the subnet is shown at that field, an overlap at the first address.
    let refused = b
        .post(&s, &path, &[("start_ip", "10.5.0.200"), ("end_ip", "10.6.0.1")])
        .await;
    refused_at(&refused, "invalid_params", "range-new-end_ip");
    let refused = b
        .post(&s, &path, &[("start_ip", "10.5.0.120"), ("end_ip", "10.5.0.160")])
        .await;
    let html = refused_at(&refused, "overlap", "range-new-start_ip");
    assert!(
        html.contains("value=\"10.5.0.160\""),
        "the values typed in are kept: {html}"
    );
    // The page shows the range as its own form; an edit made there (the checkbox unticked) is what the API keeps.
    let found = s.ok(&s.admin, "dhcpranges/get", json!({"subnet": id})).await;
    let range = id_of(only(&found));
    let version = only(&found)["version"].to_string().trim_matches('"').to_string();
    let page = body(&b.get(&s, &format!("/ui/subnets/{id}")).await);
    assert!(page.contains(&format!("action=\"/ui/ranges/{range}\"")), "{page}");
    let rid = range.to_string();
    let edit = format!("/ui/ranges/{range}");
    let edited = b
        .post(
            &s,
            &edit,
            &[
                ("range", &rid),
                ("version", &version),
                ("start_ip", "10.5.0.100"),
                ("end_ip", "10.5.0.120"),
                ("description", ""),
            ],
        )
        .await;
    assert_eq!(
        (edited.status, edited.header("location")),
        (303, Some(back.as_str())),
        "{}",
        body(&edited)
    );
    assert_eq!(ranges(&s, id).await, ["10.5.0.100-10.5.0.120 false null"]);
    // A refused edit is shown at the range's own form, not at the form of a new one.
    let refused = b
        .post(
            &s,
            &edit,
            &[("range", &rid), ("start_ip", "10.5.0.130"), ("end_ip", "10.5.0.120")],
        )
        .await;
    let html = refused_at(&refused, "invalid_params", &format!("range{range}-end_ip"));
    assert!(!html.contains("range-new-end_ip-error"), "{html}");
    // Deleted from the page, without the token refused.
    let delete = format!("/ui/ranges/{range}/delete");
    assert_eq!(post_form(&s, Some(&b.cookie), &delete, &[]).await.status, 403);
    assert_eq!(b.post(&s, &delete, &[]).await.status, 303);
    assert!(ranges(&s, id).await.is_empty());
    assert_eq!(b.post(&s, &delete, &[]).await.status, 404);
}

#[tokio::test]
async fn a_group_is_renamed_moved_and_deleted_from_its_page_and_a_group_that_holds_subnets_is_refused() {
    let s = Server::start().await;
    let group = |v: serde_json::Value| id_of(only(&v));
    let top = group(s.ok(&s.admin, "groups/add", json!({"description": "top"})).await);
    let lab = group(s.ok(&s.admin, "groups/add", json!({"description": "lab"})).await);
    s.ok(&s.admin, "subnets/add", json!({"subnet": "10.6.0.0/24", "group": lab}))
        .await;
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let tree = body(&b.get(&s, "/ui/groups").await);
    assert!(tree.contains(&format!("href=\"/ui/groups/{lab}\"")), "{tree}");
    let path = format!("/ui/groups/{lab}");
    let version = |v: serde_json::Value| only(&v)["version"].to_string().trim_matches('"').to_string();
    let v = version(s.ok(&s.admin, "groups/get", json!({"id": lab})).await);
    let parent = top.to_string();
    let form = [
        ("description", "<b>lab 2</b>"),
        ("parent", parent.as_str()),
        ("version", v.as_str()),
    ];
    assert_eq!(post_form(&s, Some(&b.cookie), &path, &form).await.status, 403);
    let edited = b.post(&s, &path, &form).await;
    assert_eq!((edited.status, edited.header("location")), (303, Some("/ui/groups")));
    let now = s.ok(&s.admin, "groups/get", json!({"id": lab})).await;
    assert_eq!(
        (only(&now)["description"].as_str(), only(&now)["parent"].as_str()),
        (Some("<b>lab 2</b>"), Some(parent.as_str()))
    );
    let page = body(&b.get(&s, &path).await);
    assert!(
        page.contains("&lt;b&gt;lab 2&lt;/b&gt;") && !page.contains("<b>lab"),
        "{page}"
    );
    // Its own descendant as the parent of `top`: refused at the parent field.
    let refused = b
        .post(
            &s,
            &format!("/ui/groups/{top}"),
            &[("description", "top"), ("parent", &lab.to_string())],
        )
        .await;
    refused_at(&refused, "invalid_params", "group-parent");
    // A group that holds a subnet is not deleted: the API's refusal is shown; with its contents it is.
    let delete = format!("{path}/delete");
    let refused = b.post(&s, &delete, &[]).await;
    assert_eq!(refused.status, status_of("not_empty"));
    assert!(body(&refused).contains("role=\"alert\""), "{}", body(&refused));
    assert_eq!(
        s.ok(&s.admin, "groups/get", json!({})).await.as_object().unwrap().len(),
        2
    );
    assert_eq!(b.post(&s, &delete, &[("recursive", "true")]).await.status, 303);
    let left = s.ok(&s.admin, "groups/get", json!({})).await;
    assert_eq!(only(&left)["description"], "top");
}

#[tokio::test]
async fn custom_field_values_are_set_on_the_allocate_and_edit_forms_and_refused_at_their_input() {
    let s = Server::start().await;
    let id = subnet(&s, &s.admin, "10.7.0.0/24").await;
    let field = |name: &str, kind: &str| json!({"subnet": id, "name": name, "type": kind});
    s.ok(&s.admin, "subnets/fields/add", field("owner", "text")).await;
    s.ok(&s.admin, "subnets/fields/add", field("rack", "number")).await;
    s.ok(&s.admin, "subnets/fields/add", field("backup", "boolean")).await;
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let page = body(&b.get(&s, &format!("/ui/subnets/{id}")).await);
    assert!(
        page.contains("name=\"fields.rack\"") && page.contains("select id=\"alloc-fields.backup\""),
        "{page}"
    );
    let path = format!("/ui/subnets/{id}/addresses");
    let refused = b.post(&s, &path, &[("ip", "10.7.0.5"), ("fields.rack", "high")]).await;
    refused_at(&refused, "invalid_params", "alloc-fields.rack");
    assert!(records(&s, &s.admin, id).await.is_empty());
    let hostile = "\"><img src=x onerror=alert(1)>";
    let form = [
        ("ip", "10.7.0.5"),
        ("fields.owner", hostile),
        ("fields.rack", "12"),
        ("fields.backup", "true"),
    ];
    assert_eq!(b.post(&s, &path, &form).await.status, 303);
    let found = s.ok(&s.admin, "ipaddress/get", json!({"ip": "10.7.0.5"})).await;
    let record = id_of(only(&found));
    let values = |v: &serde_json::Value| {
        let text = |k: &str| {
            v["fields"][k]
                .as_str()
                .map_or_else(|| v["fields"][k].to_string(), str::to_string)
        };
        [text("owner"), text("rack"), text("backup")]
    };
    let shown = only(&s.ok(&s.admin, "ipaddress/get", json!({"id": record})).await).clone();
    assert_eq!(values(&shown), [hostile, "12", "true"], "{shown}");
    // The edit form shows the values (escaped); an emptied input clears its value.
    let page = body(&b.get(&s, &format!("/ui/addresses/{record}")).await);
    assert!(
        page.contains("name=\"fields.rack\" type=\"text\" value=\"12\"") && !page.contains("<img"),
        "{page}"
    );
    let edited = b
        .post(
            &s,
            &format!("/ui/addresses/{record}"),
            &[
                ("ip", "10.7.0.5"),
                ("fields.owner", "ops"),
                ("fields.rack", ""),
                ("fields.backup", "false"),
            ],
        )
        .await;
    assert_eq!(edited.status, 303, "{}", body(&edited));
    let shown = only(&s.ok(&s.admin, "ipaddress/get", json!({"id": record})).await).clone();
    assert_eq!(values(&shown), ["ops", "null", "false"], "{shown}");
}

#[tokio::test]
async fn an_admin_adds_users_sets_levels_disables_and_resets_passwords_and_others_see_no_such_controls() {
    let s = Server::start().await;
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let new = [
        ("username", "carol"),
        ("email", "carol@example.com"),
        ("realname", "<script>alert(1)</script>"),
        ("level", "readonly"),
        ("password", "password-of-carol"),
    ];
    assert_eq!(post_form(&s, Some(&b.cookie), "/ui/users", &new).await.status, 403);
    assert_eq!(b.post(&s, "/ui/users", &new).await.status, 303);
    let page = body(&b.get(&s, "/ui/users").await);
    assert!(page.contains("&lt;script&gt;") && !page.contains("<script"), "{page}");
    // A password too short is refused at its field, nothing added.
    let short = b
        .post(
            &s,
            "/ui/users",
            &[("username", "dave"), ("email", "d@example.com"), ("password", "x")],
        )
        .await;
    refused_at(&short, "weak_password", "user-new-password");
    let carol = sign_in(&s, "admin", "carol", "password-of-carol").await;
    // A readonly user sees the users but no control, and a change it posts anyway is refused by the API.
    let seen = body(&carol.get(&s, "/ui/users").await);
    assert!(
        seen.contains("carol@example.com") && !seen.contains("action=\"/ui/users"),
        "{seen}"
    );
    let tried = carol
        .post(
            &s,
            "/ui/users",
            &[
                ("username", "eve"),
                ("email", "e@example.com"),
                ("password", "password-of-eve"),
            ],
        )
        .await;
    assert_eq!(tried.status, status_of("access_denied"));
    let users = s.ok(&s.admin, "org/users/get", json!({})).await;
    let id = id_of(
        users
            .as_object()
            .unwrap()
            .values()
            .find(|u| u["username"] == "carol")
            .unwrap(),
    );
    let path = format!("/ui/users/{id}");
    // Level, then a new password (which ends carol's session), then disabled and enabled again.
    assert_eq!(
        b.post(&s, &path, &[("user", &id.to_string()), ("level", "standard")])
            .await
            .status,
        303
    );
    let level = |v: serde_json::Value| {
        let u = v
            .as_object()
            .unwrap()
            .values()
            .find(|u| u["username"] == "carol")
            .unwrap()
            .clone();
        (u["level"].as_str().unwrap().to_string(), u["disabled"].to_string())
    };
    assert_eq!(level(s.ok(&s.admin, "org/users/get", json!({})).await).0, "standard");
    let short = b.post(&s, &path, &[("user", &id.to_string()), ("password", "y")]).await;
    refused_at(&short, "weak_password", &format!("user{id}-password"));
    assert_eq!(
        b.post(&s, &path, &[("password", "another-password-1")]).await.status,
        303
    );
    assert_eq!(carol.get(&s, "/ui/").await.status, 303);
    sign_in(&s, "admin", "carol", "another-password-1").await;
    assert_eq!(b.post(&s, &path, &[("disabled", "true")]).await.status, 303);
    assert!(body(&b.get(&s, "/ui/users").await).contains(">Enable carol<"));
    let refused = post_form(
        &s,
        None,
        "/ui/signin",
        &[
            ("org", "admin"),
            ("username", "carol"),
            ("password", "another-password-1"),
        ],
    )
    .await;
    assert_eq!(refused.status, status_of("account_disabled"));
    assert_eq!(b.post(&s, &path, &[("disabled", "false")]).await.status, 303);
    sign_in(&s, "admin", "carol", "another-password-1").await;
}

#[tokio::test]
async fn a_pool_shows_its_children_and_free_blocks_and_allocates_the_next_free_block_in_one_click() {
    let s = Server::start().await;
    let pool = id_of(only(
        &s.ok(&s.admin, "subnets/add", json!({"subnet": "10.8.0.0/16", "pool": true}))
            .await,
    ));
    let child = id_of(only(
        &s.ok(
            &s.admin,
            "subnets/add",
            json!({"subnet": "10.8.1.0/24", "parent": pool}),
        )
        .await,
    ));
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let list = body(&b.get(&s, "/ui/subnets").await);
    assert!(
        list.contains("<span class=\"tag\">pool</span>")
            && list.contains(&format!("href=\"/ui/subnets/{pool}\">in pool")),
        "{list}"
    );
    let page = body(&b.get(&s, &format!("/ui/subnets/{pool}")).await);
    assert!(page.contains(&format!("href=\"/ui/subnets/{child}\"")), "{page}");
    assert!(
        page.contains("<code>10.8.0.0/24</code>") && page.contains("<code>10.8.128.0/17</code>"),
        "{page}"
    );
    // A pool holds no records: no address map, no allocate form, no DHCP ranges.
    assert!(
        !page.contains("Address map") && !page.contains("/addresses\"") && !page.contains("/ranges\""),
        "{page}"
    );
    let path = format!("/ui/subnets/{pool}/children");
    assert_eq!(
        post_form(&s, Some(&b.cookie), &path, &[("cidr", "24")]).await.status,
        403
    );
    let refused = b.post(&s, &path, &[("cidr", "8")]).await;
    refused_at(&refused, "invalid_params", "child-cidr");
    let made = b.post(&s, &path, &[("cidr", "24"), ("name", "next")]).await;
    assert_eq!(made.status, 303, "{}", body(&made));
    let children = s.ok(&s.admin, "subnets/get", json!({"parent": pool})).await;
    let named: Vec<&serde_json::Value> = children
        .as_object()
        .unwrap()
        .values()
        .filter(|c| c["name"] == "next")
        .collect();
    assert_eq!(named.len(), 1, "{children}");
    let new = id_of(named[0]);
    assert_eq!(made.header("location"), Some(format!("/ui/subnets/{new}").as_str()));
}

#[tokio::test]
async fn a_later_page_of_a_large_block_shows_the_free_range_before_its_first_record() {
    let s = Server::start().await;
    let id = subnet(&s, &s.admin, "10.10.0.0/16").await;
    // 100 records fill the first page (10.10.0.1–100); the second starts after a gap.
    s.ok(&s.admin, "ipaddress/add", json!({"subnet": id, "count": 100}))
        .await;
    s.ok(&s.admin, "ipaddress/add", json!({"subnet": id, "ip": "10.10.0.150"}))
        .await;
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let first = body(&b.get(&s, &format!("/ui/subnets/{id}")).await);
    assert!(!first.contains("10.10.0.150") && !first.contains("49 free"), "{first}");
    let second = body(&b.get(&s, &format!("/ui/subnets/{id}?page=2")).await);
    let gap = second
        .find("49 free: 10.10.0.101 – 10.10.0.149")
        .expect("the free range before the first record");
    assert!(gap < second.find(">10.10.0.150<").unwrap(), "{second}");
    assert!(second.contains("65384 free: 10.10.0.151 – 10.10.255.254"), "{second}");
}

#[tokio::test]
async fn search_shows_dhcp_ranges_and_an_addresss_status_and_the_audit_log_filters_by_user_method_time_and_object() {
    let s = Server::start().await;
    let id = subnet(&s, &s.admin, "10.11.0.0/24").await;
    s.ok(
        &s.admin,
        "dhcpranges/add",
        json!({"subnet": id, "start_ip": "10.11.0.100", "end_ip": "10.11.0.200", "description": "<i>clients</i>"}),
    )
    .await;
    let alice = s.user(&s.admin, "alice", "standard").await;
    s.ok(&alice, "ipaddress/add", json!({"subnet": id, "ip": "10.11.0.7"}))
        .await;
    let b = sign_in(&s, "admin", "admin", ADMIN_PASSWORD).await;
    let found = body(&b.get(&s, "/ui/search?q=10.11.0.150").await);
    assert!(
        found.contains("10.11.0.100 – 10.11.0.200") && found.contains("&lt;i&gt;clients&lt;/i&gt;"),
        "{found}"
    );
    assert!(found.contains("<strong>10.11.0.150</strong> is dhcp"), "{found}");
    let free = body(&b.get(&s, "/ui/search?q=10.11.0.8").await);
    assert!(
        free.contains(&format!("href=\"/ui/subnets/{id}?allocate=10.11.0.8#allocate\"")),
        "{free}"
    );
    // The log: by user, by method, by object id, by time.
    let log = |q: &str| {
        let b = &b;
        let s = &s;
        let q = q.to_string();
        async move { body(&b.get(s, &format!("/ui/log?{q}")).await) }
    };
    let by_alice = log(&format!("userid={}", alice.id)).await;
    assert!(
        by_alice.contains("ipaddress/add") && !by_alice.contains("dhcpranges/add"),
        "{by_alice}"
    );
    let by_method = log("method=dhcpranges%2Fadd").await;
    assert!(
        by_method.contains("dhcpranges/add") && !by_method.contains("<code>ipaddress/add"),
        "{by_method}"
    );
    let by_object = log(&format!("objecttype=subnet&objectid={id}")).await;
    assert!(
        by_object.contains("subnets/add") && !by_object.contains("<code>ipaddress/add"),
        "{by_object}"
    );
    assert!(!log("since=2999-01-01").await.contains("<code>subnets/add"));
    assert!(log("until=2999-01-01").await.contains("<code>subnets/add"));
    let bad = log("since=yesterday").await;
    assert!(bad.contains("aria-describedby=\"log-since-error\""), "{bad}");
}
