//! `org/tokens/add`, `get` and `delete`, and the tokens themselves as credentials of the dispatcher (the REST front
//! door that presents them comes with a later issue).

use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};

use ipamd::clock::ManualClock;
use ipamd::dispatch::dispatch;
use ipamd::handler::{Call, Credentials};

use crate::support::{id_of, keys, now, only, Server};

const TOKEN_KEYS: [&str; 8] = [
    "id",
    "description",
    "prefix",
    "user",
    "created",
    "expires",
    "lastused",
    "version",
];

fn record_keys(r: &Value) -> Vec<&str> {
    r.as_object().unwrap().keys().map(String::as_str).collect()
}

/// Calls `userdata` through the dispatcher with a bearer token: the caller's user id, or the error code.
async fn whoami(s: &Server, token: &str) -> Result<String, &'static str> {
    let call = Call {
        method: "userdata".into(),
        credentials: Credentials::Token(Some(token.to_string())),
        data: json!({}),
        key: None,
    };
    match dispatch(&s.app, call).await.result {
        Ok(v) => Ok(serde_json::to_value(v).unwrap()["user"]["id"].to_string()),
        Err(e) => Err(e.code.as_str()),
    }
}

#[tokio::test]
async fn the_token_is_shown_once_and_only_its_prefix_later() {
    let s = Server::start().await;
    let added = s.ok(&s.admin, "org/tokens/add", json!({"description": "ci"})).await;
    let rec = only(&added);
    let mut expected = TOKEN_KEYS.to_vec();
    expected.push("token");
    assert_eq!(record_keys(rec), expected);
    let token = rec["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 40);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(rec["prefix"], token[..8]);
    assert_eq!(rec["user"], s.admin.id.to_string());
    assert_eq!(
        (rec["description"].clone(), rec["expires"].clone()),
        (json!("ci"), Value::Null)
    );

    let all = s.ok(&s.admin, "org/tokens/get", json!({})).await;
    assert_eq!(keys(&all).len(), 2, "the first-run token and this one");
    assert!(!all.to_string().contains(&token));
    assert!(all.as_object().unwrap().values().all(|t| record_keys(t) == TOKEN_KEYS));
    let one = s.ok(&s.admin, "org/tokens/get", json!({"id": id_of(rec)})).await;
    assert_eq!(only(&one)["description"], "ci");
    s.check(&s.admin, "org/tokens/get", json!({"id": 999}), "not_found")
        .await;

    assert_eq!(whoami(&s, &token).await, Ok(s.admin.id.to_string()));
    assert_eq!(whoami(&s, &s.admin_token).await, Ok(s.admin.id.to_string()));
    assert_eq!(
        whoami(&s, "0123456789012345678901234567890123456789").await,
        Err("auth_failed")
    );
    assert_eq!(whoami(&s, "").await, Err("auth_required"));
    let used = s.ok(&s.admin, "org/tokens/get", json!({"id": id_of(rec)})).await;
    assert!(only(&used)["lastused"].is_string());
    assert_eq!(
        s.ok(&s.admin, "org/logs", json!({"objecttype": "token"})).await["total"],
        "1"
    );
}

#[tokio::test]
async fn expiry_must_lie_in_the_future() {
    let s = Server::start().await;
    for past in [json!(now() - 1), json!(1), json!(0), json!((now() - 60).to_string())] {
        let body = s
            .check(&s.admin, "org/tokens/add", json!({"expires": past}), "invalid_params")
            .await;
        assert!(body["errorData"]["expires"].is_string(), "{past}: {body}");
    }
    s.check(
        &s.admin,
        "org/tokens/add",
        json!({"expires": "tomorrow"}),
        "invalid_params",
    )
    .await;
    let later = now() + 3600;
    let added = s
        .ok(&s.admin, "org/tokens/add", json!({"expires": later.to_string()}))
        .await;
    assert_eq!(only(&added)["expires"], later.to_string());
    let token = only(&added)["token"].as_str().unwrap();
    assert_eq!(whoami(&s, token).await, Ok(s.admin.id.to_string()));
    assert_eq!(
        keys(&s.ok(&s.admin, "org/tokens/get", json!({})).await).len(),
        2,
        "refused ones were not made"
    );
}

#[tokio::test]
async fn delete_revokes_the_token() {
    let s = Server::start().await;
    let added = s.ok(&s.admin, "org/tokens/add", json!({})).await;
    let (id, token) = (id_of(only(&added)), only(&added)["token"].as_str().unwrap().to_string());
    let gone = s.ok(&s.admin, "org/tokens/delete", json!({"id": id})).await;
    assert_eq!(gone, json!({id.to_string(): {"id": id.to_string(), "deleted": "true"}}));
    assert_eq!(whoami(&s, &token).await, Err("auth_failed"));
    s.check(&s.admin, "org/tokens/delete", json!({"id": id}), "not_found")
        .await;
    s.check(&s.admin, "org/tokens/get", json!({"id": id}), "not_found")
        .await;
    s.check(&s.admin, "org/tokens/delete", json!({"id": "x"}), "invalid_params")
        .await;
}

#[tokio::test]
async fn a_token_carries_its_users_level_and_state() {
    let s = Server::start().await;
    let reader = s.user(&s.admin, "reader", "readonly").await;
    let added = s.ok(&reader, "org/tokens/add", json!({})).await;
    let token = only(&added)["token"].as_str().unwrap().to_string();
    assert_eq!(only(&added)["user"], reader.id.to_string());
    assert_eq!(whoami(&s, &token).await, Ok(reader.id.to_string()));
    let call = Call {
        method: "groups/add".into(),
        credentials: Credentials::Token(Some(token.clone())),
        data: json!({"description": "x"}),
        key: None,
    };
    let denied = dispatch(&s.app, call).await.result.unwrap_err();
    assert_eq!(denied.code.as_str(), "access_denied");
    s.ok(&s.admin, "org/users/edit", json!({"id": reader.id, "disabled": true}))
        .await;
    assert_eq!(whoami(&s, &token).await, Err("account_disabled"));
}

#[tokio::test]
async fn users_see_and_delete_only_their_own_tokens() {
    let s = Server::start().await;
    let writer = s.user(&s.admin, "writer", "standard").await;
    let mine = only(&s.ok(&writer, "org/tokens/add", json!({"description": "w"})).await).clone();
    let seen = s.ok(&writer, "org/tokens/get", json!({})).await;
    assert_eq!(keys(&seen), [mine["id"].as_str().unwrap()]);
    let all = s.ok(&s.admin, "org/tokens/get", json!({})).await;
    assert_eq!(keys(&all).len(), 2);
    let admins = keys(&all)[0].clone();

    let before = s.snapshot(&s.admin).await;
    s.check(&writer, "org/tokens/get", json!({"id": admins}), "not_found")
        .await;
    s.check(&writer, "org/tokens/delete", json!({"id": admins}), "not_found")
        .await;
    assert_eq!(s.snapshot(&s.admin).await, before);
    assert_eq!(whoami(&s, &s.admin_token).await, Ok(s.admin.id.to_string()));

    s.ok(&s.admin, "org/tokens/delete", json!({"id": mine["id"]})).await;
    assert_eq!(s.ok(&writer, "org/tokens/get", json!({})).await, json!([]));
    let again = only(&s.ok(&writer, "org/tokens/add", json!({})).await).clone();
    s.ok(&writer, "org/tokens/delete", json!({"id": again["id"]})).await;
}

/// The status of `GET /api/v1/networks` with `token`.
async fn list_status(s: &Server, token: &str) -> u16 {
    s.api(Method::GET, "/networks", token, None).await.status
}

/// The status of `POST /api/v1/networks` (a write a standard user may make) with `token`.
async fn add_status(s: &Server, token: &str, network: &str) -> u16 {
    let body = json!({"network": network, "cidr": 24, "description": "remembered token"});
    s.api(Method::POST, "/networks", token, Some(&body)).await.status
}

/// A token that has been used is remembered (no lookup per call), yet whatever changes what it grants applies on
/// the very next call over HTTP: its user's level, its user being disabled (and enabled again), the token being
/// deleted, its org being deleted. Each token is used twice before the change, so the change meets a remembered caller.
#[tokio::test]
async fn a_remembered_token_follows_every_change_at_once() {
    let s = Server::start().await;
    let user = s.user(&s.admin, "tess", "standard").await;
    let (token, token_id) = s.new_token(&user, "level").await;
    assert_eq!(add_status(&s, &token, "10.70.0.0").await, 201);
    assert_eq!(add_status(&s, &token, "10.70.1.0").await, 201);
    s.ok(&s.admin, "org/users/edit", json!({"id": user.id, "level": "readonly"}))
        .await;
    assert_eq!(add_status(&s, &token, "10.70.2.0").await, 403, "the old level");
    assert_eq!(list_status(&s, &token).await, 200);
    assert_eq!(list_status(&s, &token).await, 200);
    s.ok(&s.admin, "org/tokens/delete", json!({"id": token_id})).await;
    assert_eq!(list_status(&s, &token).await, 401, "a deleted token");

    let (token, _) = s.new_token(&user, "disabled").await;
    assert_eq!(list_status(&s, &token).await, 200);
    assert_eq!(list_status(&s, &token).await, 200);
    s.ok(&s.admin, "org/users/edit", json!({"id": user.id, "disabled": true}))
        .await;
    assert_eq!(list_status(&s, &token).await, 403, "a disabled user");
    s.ok(&s.admin, "org/users/edit", json!({"id": user.id, "disabled": false}))
        .await;
    assert_eq!(list_status(&s, &token).await, 200, "enabled again");

    let other = s.org("elsewhere").await;
    let (token, _) = s.new_token(&other, "org").await;
    assert_eq!(list_status(&s, &token).await, 200);
    assert_eq!(list_status(&s, &token).await, 200);
    s.ok(&other, "org/delete", json!({"confirm": "elsewhere"})).await;
    assert_eq!(list_status(&s, &token).await, 401, "a deleted org");
}

/// A token works until the second of its expiry and is refused from then on, for reads and writes alike, whether
/// it is remembered (its expiry comes within the known callers' five minutes) or read from the database; its last
/// use is stamped with the app's time. The server's clock stands still until the test advances it.
#[tokio::test]
async fn a_token_expires_on_time_remembered_or_not_and_is_stamped() {
    let clock = ManualClock::new();
    let s = &Server::start_with_clock(&clock, |_| {}).await;
    let start = s.app.clock.now();
    let add = |expires: i64| async move {
        let added = s.ok(&s.admin, "org/tokens/add", json!({"expires": expires})).await;
        (id_of(only(&added)), only(&added)["token"].as_str().unwrap().to_string())
    };
    let lastused = |id: i64| async move {
        let got = s.ok(&s.admin, "org/tokens/get", json!({"id": id})).await;
        only(&got)["lastused"].clone()
    };
    let (soon_id, soon) = add(start + 60).await;
    let (later_id, later) = add(start + 3600).await;
    let (_, unused) = add(start + 3600).await;
    let second = Duration::from_secs(1);

    assert_eq!(list_status(s, &soon).await, 200);
    assert_eq!(list_status(s, &soon).await, 200, "remembered");
    assert_eq!(lastused(soon_id).await, json!(start.to_string()));
    clock.advance(Duration::from_secs(59));
    assert_eq!(list_status(s, &soon).await, 200, "a second before its expiry");
    assert_eq!(
        add_status(s, &soon, "10.80.0.0").await,
        201,
        "a write a second before its expiry"
    );
    clock.advance(second);
    assert_eq!(list_status(s, &soon).await, 401, "a remembered token at its expiry");
    assert_eq!(add_status(s, &soon, "10.80.1.0").await, 401, "a write at its expiry");

    // An hour on, the known callers' lifetime has passed: the first use reads the token from the database.
    clock.advance(Duration::from_secs(3600 - 60 - 1));
    assert_eq!(
        list_status(s, &later).await,
        200,
        "read from the database a second before its expiry"
    );
    assert_eq!(lastused(later_id).await, json!((start + 3599).to_string()));
    clock.advance(second);
    assert_eq!(
        list_status(s, &later).await,
        401,
        "remembered a second ago, at its expiry"
    );
    assert_eq!(
        list_status(s, &unused).await,
        401,
        "read from the database at its expiry"
    );
}

/// Without its `credential_epoch` row (a damaged or hand-edited database) nothing is remembered: every call is
/// checked in full, so tokens still work and a deleted one is refused at once.
#[tokio::test]
async fn without_the_epoch_row_every_call_is_checked_in_full() {
    let s = Server::start().await;
    let Some(file) = s.sqlite_file() else { return };
    let db = rusqlite::Connection::open(file).unwrap();
    db.execute("DELETE FROM credential_epoch", []).unwrap();
    let (token, id) = s.new_token(&s.admin, "no epoch").await;
    assert_eq!(list_status(&s, &token).await, 200);
    assert_eq!(list_status(&s, &token).await, 200);
    db.execute("DELETE FROM tokens WHERE id = ?1", [id]).unwrap();
    assert_eq!(list_status(&s, &token).await, 401);
    s.ok(&s.admin, "userdata", json!({})).await;
}

/// Finding: a readonly user made as many tokens as they liked, each a budget of its own. Now each user owns at
/// most `IPAMD_MAX_TOKENS_PER_USER`; the first token `init` made counts for the admin.
#[tokio::test]
async fn a_user_owns_at_most_the_quota_of_tokens() {
    let s = Server::start_with(|s| s.max_tokens_per_user = 2).await;
    let reader = s.user(&s.admin, "reader", "readonly").await;
    let first = id_of(only(&s.ok(&reader, "org/tokens/add", json!({})).await));
    s.ok(&reader, "org/tokens/add", json!({})).await;
    let body = s.check(&reader, "org/tokens/add", json!({}), "quota_exceeded").await;
    assert!(body["error"].as_str().unwrap().contains("at most 2"), "{body}");
    s.ok(&s.admin, "org/tokens/add", json!({})).await;
    s.check(&s.admin, "org/tokens/add", json!({}), "quota_exceeded").await;
    s.ok(&reader, "org/tokens/delete", json!({"id": first})).await;
    s.ok(&reader, "org/tokens/add", json!({})).await;
}
