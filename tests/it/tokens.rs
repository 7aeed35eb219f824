//! `org/tokens/add`, `get` and `delete`, and the tokens themselves as credentials of the dispatcher (the REST front
//! door that presents them comes with a later issue).

use serde_json::{json, Value};

use ipamd::dispatch::{dispatch, Call, Credentials};

use crate::support::{id_of, keys, now, only, Server};

const TOKEN_KEYS: [&str; 7] = ["id", "description", "prefix", "user", "created", "expires", "lastused"];

fn record_keys(r: &Value) -> Vec<&str> {
    r.as_object().unwrap().keys().map(String::as_str).collect()
}

/// Calls `userdata` through the dispatcher with a bearer token: the caller's user id, or the error code.
async fn whoami(s: &Server, token: &str) -> Result<String, &'static str> {
    let call = Call {
        method: "userdata".into(),
        credentials: Credentials::Token(Some(token.to_string())),
        data: json!({}),
    };
    match dispatch(&s.app, call).await.result {
        Ok(v) => Ok(v["user"]["id"].to_string()),
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
