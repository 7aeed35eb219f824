//! The trigram index behind `search/find` follows every change of an address record: add, rename, delete,
//! cascaded delete and restore, and never shows another org's records.

use serde_json::{json, Value};

use crate::support::{id_of, only, Ident, Server};

async fn found(s: &Server, who: &Ident, query: &str) -> Vec<String> {
    let r = s
        .ok(who, "search/find", json!({"query": query, "types": ["addresses"]}))
        .await;
    let mut names: Vec<String> = match &r["addresses"] {
        Value::Object(m) => m
            .values()
            .map(|a| a["hostname"].as_str().unwrap_or_default().to_string())
            .collect(),
        _ => Vec::new(),
    };
    names.sort();
    names
}

#[tokio::test]
async fn the_search_index_follows_every_change() {
    let s = Server::start().await;
    let a = s.admin.clone();
    let subnet = id_of(only(&s.ok(&a, "subnets/add", json!({"subnet": "10.5.0.0/24"})).await));
    for name in ["alpha-web", "beta-web", "gamma-db"] {
        s.ok(&a, "ipaddress/add", json!({"subnet": subnet, "hostname": name}))
            .await;
    }
    assert_eq!(found(&s, &a, "WEB").await, ["alpha-web", "beta-web"]);
    let backup = s.ok(&a, "backups/add", json!({})).await["name"]
        .as_str()
        .unwrap()
        .to_string();

    let beta = s.ok(&a, "search/find", json!({"query": "beta-web"})).await;
    let beta_id: i64 = beta["addresses"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    s.ok(&a, "ipaddress/edit", json!({"id": beta_id, "hostname": "beta-cache"}))
        .await;
    assert_eq!(found(&s, &a, "web").await, ["alpha-web"]);
    assert_eq!(found(&s, &a, "cache").await, ["beta-cache"]);

    let other = s.org("fts-other").await;
    let theirs = id_of(only(
        &s.ok(&other, "subnets/add", json!({"subnet": "10.5.0.0/24"})).await,
    ));
    s.ok(
        &other,
        "ipaddress/add",
        json!({"subnet": theirs, "hostname": "delta-web"}),
    )
    .await;
    assert_eq!(found(&s, &a, "web").await, ["alpha-web"], "another org's record leaked");
    assert_eq!(found(&s, &other, "web").await, ["delta-web"]);

    s.ok(&a, "subnets/delete", json!({"id": subnet, "force": true})).await;
    assert!(
        found(&s, &a, "alpha").await.is_empty(),
        "a cascaded delete left the index stale"
    );

    let located = |v: Value| v["subnets"].as_object().map_or(0, |m| m.len());
    assert_eq!(located(s.ok(&a, "search/ip", json!({"ip": "10.5.0.7"})).await), 0);
    s.assert_prefixes_derived().await;

    s.ok(&a, "backups/restore", json!({"name": backup})).await;
    assert_eq!(found(&s, &a, "web").await, ["alpha-web", "beta-web"]);
    assert!(found(&s, &a, "cache").await.is_empty());
    // The prefix lengths in use (derived too) came back with the subnets.
    assert_eq!(located(s.ok(&a, "search/ip", json!({"ip": "10.5.0.7"})).await), 1);
    s.assert_prefixes_derived().await;
    s.assert_fts_consistent().await;
}
