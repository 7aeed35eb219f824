//! Org B can neither see nor change anything of org A: every issue-2 method that takes an id answers `not_found`
//! for A's records, lists show only B's own, and A's data is the same afterwards.

use serde_json::{json, Value};

use crate::support::{id_of, keys, only, Ident, Server};

/// Org A's records, made by its admin.
struct OrgA {
    user: Ident,
    key: i64,
    token: i64,
    parent: i64,
    child: i64,
}

async fn org_a(s: &Server) -> OrgA {
    let a = &s.admin;
    let user = s.user(a, "alice", "standard").await;
    let key = id_of(only(&s.ok(a, "org/appkeys/add", json!({"name": "a's key"})).await));
    let token = id_of(only(
        &s.ok(a, "org/tokens/add", json!({"description": "a's token"})).await,
    ));
    let parent = id_of(only(&s.ok(a, "groups/add", json!({"description": "a's"})).await));
    let child = id_of(only(
        &s.ok(a, "groups/add", json!({"description": "a's child", "parent": parent}))
            .await,
    ));
    OrgA {
        user,
        key,
        token,
        parent,
        child,
    }
}

#[tokio::test]
async fn org_b_cannot_touch_org_a_by_id() {
    let s = Server::start().await;
    let a = org_a(&s).await;
    let b = s.org("orgb").await;
    let b_group = id_of(only(&s.ok(&b, "groups/add", json!({"description": "b's"})).await));
    let before = s.snapshot(&s.admin).await;

    let cases: Vec<(&str, Value)> = vec![
        ("org/users/get", json!({"id": a.user.id})),
        ("org/users/get", json!({"id": s.admin.id})),
        ("org/users/edit", json!({"id": a.user.id, "email": "b@example.org"})),
        ("org/users/edit", json!({"id": a.user.id, "password": "taken-over"})),
        ("org/users/edit", json!({"id": a.user.id, "disabled": true})),
        ("org/users/edit", json!({"id": s.admin.id, "level": "readonly"})),
        ("org/appkeys/get", json!({"id": a.key})),
        ("org/appkeys/edit", json!({"id": a.key, "enabled": false})),
        ("org/appkeys/edit", json!({"id": a.key, "name": "mine now"})),
        ("org/appkeys/delete", json!({"id": a.key})),
        ("org/tokens/get", json!({"id": a.token})),
        ("org/tokens/delete", json!({"id": a.token})),
        ("groups/get", json!({"id": a.parent})),
        ("groups/get", json!({"id": a.parent, "sort": true})),
        ("groups/edit", json!({"id": a.child, "description": "b was here"})),
        ("groups/edit", json!({"id": a.child, "parent": null})),
        ("groups/edit", json!({"id": b_group, "parent": a.parent})),
        ("groups/add", json!({"description": "under a", "parent": a.parent})),
        ("groups/delete", json!({"id": a.child})),
        ("groups/delete", json!({"id": a.parent, "recursive": true})),
    ];
    for (method, data) in cases {
        s.check(&b, method, data, "not_found").await;
    }
    assert_eq!(s.snapshot(&s.admin).await, before);
    s.ok(&a.user, "userdata", json!({})).await;

    // B's lists and counts hold only B's own records.
    let b_id = b.id.to_string();
    assert_eq!(
        keys(&s.ok(&b, "org/users/get", json!({})).await),
        std::slice::from_ref(&b_id)
    );
    let b_keys = s.ok(&b, "org/appkeys/get", json!({})).await;
    assert!(
        b_keys.as_object().unwrap().values().all(|k| k["owner"] == b_id),
        "{b_keys}"
    );
    let b_tokens = s.ok(&b, "org/tokens/get", json!({})).await;
    assert!(
        b_tokens.as_object().unwrap().values().all(|t| t["user"] == b_id),
        "{b_tokens}"
    );
    assert_eq!(keys(&s.ok(&b, "groups/get", json!({})).await), [b_group.to_string()]);
    assert_eq!(
        keys(&s.ok(&b, "groups/get", json!({"sort": true})).await),
        [b_group.to_string()]
    );
    let info = s.ok(&b, "org/info", json!({})).await;
    assert_eq!(
        (info["usercount"].clone(), info["groupcount"].clone()),
        (json!("1"), json!("1"))
    );
    let logs = s.ok(&b, "org/logs", json!({"objectid": a.parent})).await;
    assert_eq!(logs["total"], "0");
    let logs = s.ok(&b, "org/logs", json!({"userid": s.admin.id})).await;
    assert_eq!(logs["total"], "0");
    // Org identifiers are one namespace, so a taken one is reported, but nothing of A changes.
    s.check(&b, "org/edit", json!({"identifier": "admin"}), "duplicate")
        .await;
    s.check(&b, "org/delete", json!({"confirm": "admin"}), "invalid_params")
        .await;
    assert_eq!(s.snapshot(&s.admin).await, before);
}

#[tokio::test]
async fn the_operator_org_cannot_touch_another_org_by_id_either() {
    let s = Server::start().await;
    let b = s.org("orgb").await;
    let b_group = id_of(only(&s.ok(&b, "groups/add", json!({"description": "b's"})).await));
    let b_key = id_of(only(&s.ok(&b, "org/appkeys/add", json!({"name": "b's key"})).await));
    let b_token = id_of(only(&s.ok(&b, "org/tokens/add", json!({})).await));
    let before = s.snapshot(&b).await;
    for (method, data) in [
        ("org/users/get", json!({"id": b.id})),
        ("org/users/edit", json!({"id": b.id, "disabled": true})),
        ("org/appkeys/edit", json!({"id": b_key, "enabled": false})),
        ("org/appkeys/delete", json!({"id": b_key})),
        ("org/tokens/delete", json!({"id": b_token})),
        ("groups/get", json!({"id": b_group})),
        ("groups/edit", json!({"id": b_group, "description": "x"})),
        ("groups/delete", json!({"id": b_group})),
        ("groups/add", json!({"description": "x", "parent": b_group})),
    ] {
        s.check(&s.admin, method, data, "not_found").await;
    }
    assert_eq!(s.snapshot(&b).await, before);
}
