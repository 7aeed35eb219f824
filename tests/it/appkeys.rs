//! `org/appkeys/add`, `get`, `edit` and `delete`: shown once, owned by their user, the org's admins see them all.

use serde_json::{json, Value};

use crate::support::{id_of, keys, only, Server};

const KEY_KEYS: [&str; 10] = [
    "id",
    "name",
    "description",
    "prefix",
    "enabled",
    "disabledreason",
    "owner",
    "created",
    "lastused",
    "version",
];

fn record_keys(r: &Value) -> Vec<&str> {
    r.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test]
async fn the_key_is_shown_once_and_only_its_prefix_later() {
    let s = Server::start().await;
    let added = s
        .ok(
            &s.admin,
            "org/appkeys/add",
            json!({"name": "cron", "description": "nightly sync"}),
        )
        .await;
    let rec = only(&added);
    let mut expected_keys = KEY_KEYS.to_vec();
    expected_keys.push("key");
    assert_eq!(record_keys(rec), expected_keys);
    let key = rec["key"].as_str().unwrap();
    assert_eq!(key.len(), 36);
    assert!(uuid::Uuid::parse_str(key).is_ok(), "{key}");
    assert_eq!(key, key.to_lowercase());
    assert_eq!(rec["prefix"], key[..8]);
    assert_eq!(rec["owner"], s.admin.id.to_string());
    assert_eq!(
        (rec["enabled"].clone(), rec["disabledreason"].clone()),
        (json!("true"), Value::Null)
    );
    assert_eq!(rec["description"], "nightly sync");

    let id = id_of(rec);
    let one = s.ok(&s.admin, "org/appkeys/get", json!({"id": id})).await;
    assert_eq!(record_keys(only(&one)), KEY_KEYS);
    let all = s.ok(&s.admin, "org/appkeys/get", json!({})).await;
    assert_eq!(keys(&all).len(), 2, "the first-run key and this one: {all}");
    assert!(!all.to_string().contains(key), "the key is never shown again");
    assert!(all.as_object().unwrap().values().all(|k| record_keys(k) == KEY_KEYS));

    // The new key works, in any case.
    let who = s.admin.with_appkey(&key.to_uppercase());
    s.ok(&who, "userdata", json!({})).await;
    let used = s.ok(&s.admin, "org/appkeys/get", json!({"id": id})).await;
    assert!(only(&used)["lastused"].is_string(), "{used}");

    for (data, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "key": "mine"}), "key"),
        (json!({"name": ["x"]}), "name"),
    ] {
        let body = s
            .check(&s.admin, "org/appkeys/add", data.clone(), "invalid_params")
            .await;
        assert!(body["errorData"][field].is_string(), "{data}: {body}");
    }
    s.check(&s.admin, "org/appkeys/get", json!({"id": 999}), "not_found")
        .await;
}

#[tokio::test]
async fn edit_renames_describes_and_disables() {
    let s = Server::start().await;
    let added = s
        .ok(&s.admin, "org/appkeys/add", json!({"name": "k", "description": "d"}))
        .await;
    let id = id_of(only(&added));
    let edited = s
        .ok(
            &s.admin,
            "org/appkeys/edit",
            json!({"id": id, "name": "renamed", "description": null, "enabled": "false", "disabledreason": "leaked"}),
        )
        .await;
    let k = only(&edited);
    assert_eq!(record_keys(k), KEY_KEYS);
    assert_eq!(k["name"], "renamed");
    assert_eq!(k["description"], Value::Null);
    assert_eq!(
        (k["enabled"].clone(), k["disabledreason"].clone()),
        (json!("false"), json!("leaked"))
    );
    assert_eq!(k["prefix"], only(&added)["prefix"]);
    let who = s.admin.with_appkey(only(&added)["key"].as_str().unwrap());
    s.check(&who, "ping", json!({}), "appkey_disabled").await;
    let edited = s
        .ok(
            &s.admin,
            "org/appkeys/edit",
            json!({"id": id, "enabled": true, "disabledreason": ""}),
        )
        .await;
    assert_eq!(
        (
            only(&edited)["enabled"].clone(),
            only(&edited)["disabledreason"].clone()
        ),
        (json!("true"), Value::Null)
    );
    s.ok(&who, "ping", json!({})).await;
    let logs = s.ok(&s.admin, "org/logs", json!({"objecttype": "appkey"})).await;
    assert_eq!(logs["total"], "3");

    for (data, code) in [
        (json!({"name": "x"}), "invalid_params"),
        (json!({"id": 999, "name": "x"}), "not_found"),
        (json!({"id": id, "enabled": "perhaps"}), "invalid_params"),
        (json!({"id": id, "owner": 1}), "invalid_params"),
    ] {
        s.check(&s.admin, "org/appkeys/edit", data, code).await;
    }
}

#[tokio::test]
async fn delete_removes_the_key() {
    let s = Server::start().await;
    let added = s.ok(&s.admin, "org/appkeys/add", json!({"name": "k"})).await;
    let id = id_of(only(&added));
    let gone = s.ok(&s.admin, "org/appkeys/delete", json!({"id": id})).await;
    assert_eq!(gone, json!({id.to_string(): {"id": id.to_string(), "deleted": "true"}}));
    s.check(&s.admin, "org/appkeys/get", json!({"id": id}), "not_found")
        .await;
    s.check(&s.admin, "org/appkeys/delete", json!({"id": id}), "not_found")
        .await;
    s.check(&s.admin, "org/appkeys/delete", json!({}), "invalid_params")
        .await;
    let who = s.admin.with_appkey(only(&added)["key"].as_str().unwrap());
    s.check(&who, "ping", json!({}), "bad_appkey").await;
    assert_eq!(
        s.ok(&s.admin, "org/logs", json!({"method": "org/appkeys/delete"}))
            .await["total"],
        "1"
    );
}

#[tokio::test]
async fn users_see_and_manage_only_their_own_keys() {
    let s = Server::start().await;
    let reader = s.user(&s.admin, "reader", "readonly").await;
    let writer = s.user(&s.admin, "writer", "standard").await;
    // Any level may make a key; the admin's key is theirs to use as well (keys belong to the org).
    let mine = only(&s.ok(&reader, "org/appkeys/add", json!({"name": "reader's"})).await).clone();
    assert_eq!(mine["owner"], reader.id.to_string());
    let theirs = only(&s.ok(&writer, "org/appkeys/add", json!({"name": "writer's"})).await).clone();
    let reader_own = reader.with_appkey(mine["key"].as_str().unwrap());
    s.ok(&reader_own, "userdata", json!({})).await;

    let seen = s.ok(&reader, "org/appkeys/get", json!({})).await;
    assert_eq!(keys(&seen), [mine["id"].as_str().unwrap()]);
    let all = s.ok(&s.admin, "org/appkeys/get", json!({})).await;
    assert_eq!(keys(&all).len(), 3, "the admin sees every key of the org");

    let before = s.snapshot(&s.admin).await;
    let admins_key = keys(&all)[0].clone();
    for other in [admins_key.as_str(), theirs["id"].as_str().unwrap()] {
        s.check(&reader, "org/appkeys/get", json!({"id": other}), "not_found")
            .await;
        s.check(
            &reader,
            "org/appkeys/edit",
            json!({"id": other, "enabled": false}),
            "not_found",
        )
        .await;
        s.check(&reader, "org/appkeys/delete", json!({"id": other}), "not_found")
            .await;
    }
    assert_eq!(s.snapshot(&s.admin).await, before);

    // Their own key they may edit and delete; the admin may do both to anyone's.
    s.ok(
        &reader,
        "org/appkeys/edit",
        json!({"id": mine["id"], "name": "renamed"}),
    )
    .await;
    s.ok(
        &s.admin,
        "org/appkeys/edit",
        json!({"id": theirs["id"], "enabled": false}),
    )
    .await;
    s.ok(&s.admin, "org/appkeys/delete", json!({"id": theirs["id"]})).await;
    s.ok(&reader, "org/appkeys/delete", json!({"id": mine["id"]})).await;
    assert_eq!(s.ok(&reader, "org/appkeys/get", json!({})).await, json!([]));
    assert_eq!(keys(&s.ok(&s.admin, "org/appkeys/get", json!({})).await), [admins_key]);
}

/// Finding: a readonly user made as many app keys as they liked, each a budget of its own. Now each user owns
/// at most `IPAMD_MAX_APPKEYS_PER_USER`; the first key `init` made counts for the admin.
#[tokio::test]
async fn a_user_owns_at_most_the_quota_of_app_keys() {
    let s = Server::start_with(|s| s.max_appkeys_per_user = 3).await;
    let reader = s.user(&s.admin, "reader", "readonly").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let added = s.ok(&reader, "org/appkeys/add", json!({"name": format!("k{i}")})).await;
        ids.push(id_of(only(&added)));
    }
    let body = s
        .check(
            &reader,
            "org/appkeys/add",
            json!({"name": "one more"}),
            "quota_exceeded",
        )
        .await;
    assert!(body["error"].as_str().unwrap().contains("at most 3"), "{body}");
    // Other users have quotas of their own; the admin already owns init's key.
    for i in 0..2 {
        s.ok(&s.admin, "org/appkeys/add", json!({"name": format!("a{i}")}))
            .await;
    }
    s.check(&s.admin, "org/appkeys/add", json!({"name": "a2"}), "quota_exceeded")
        .await;
    // Deleting one makes room again.
    s.ok(&reader, "org/appkeys/delete", json!({"id": ids[0]})).await;
    s.ok(&reader, "org/appkeys/add", json!({"name": "again"})).await;
}

/// App key names (the application in every log line and remembered caller) are at most 64 characters.
#[tokio::test]
async fn app_key_names_are_at_most_64_characters() {
    let s = Server::start().await;
    let longest = "é".repeat(64);
    let added = s.ok(&s.admin, "org/appkeys/add", json!({"name": longest})).await;
    let id = id_of(only(&added));
    let body = s
        .check(
            &s.admin,
            "org/appkeys/add",
            json!({"name": "n".repeat(65)}),
            "invalid_params",
        )
        .await;
    assert!(body["errorData"]["name"].is_string(), "{body}");
    s.check(
        &s.admin,
        "org/appkeys/edit",
        json!({"id": id, "name": "n".repeat(65)}),
        "invalid_params",
    )
    .await;
}
