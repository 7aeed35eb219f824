//! The change feed: `changes/get` and `GET /api/v1/changes`, in commit order, org-scoped, with the changed fields,
//! long-polled with `wait`, never missing or reordering a change under concurrent writes, across a restore, and
//! `cursor_expired` past the retention or for a cursor this database never gave.

use std::collections::BTreeSet;
use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};

use crate::support::{id_of, only, Ident, Server};

/// `GET /api/v1/changes` with `query` as `token`: the page, checked to be a 200.
async fn feed(s: &Server, token: &str, query: &str) -> Value {
    let r = s.api(Method::GET, &format!("/changes?{query}"), token, None).await;
    assert_eq!(r.status, 200, "changes?{query}: {}", r.json());
    r.json()
}

/// The cursor the feed stands at now, for a consumer starting from here.
async fn head(s: &Server, token: &str) -> i64 {
    let mut cursor = 0;
    loop {
        let page = feed(s, token, &format!("after={cursor}&limit=1000")).await;
        cursor = page["cursor"].as_i64().unwrap();
        if page["more"] == json!(false) {
            return cursor;
        }
    }
}

async fn subnet(s: &Server, who: &Ident, block: &str) -> i64 {
    id_of(only(&s.ok(who, "subnets/add", json!({"subnet": block})).await))
}

async fn address(s: &Server, who: &Ident, subnet: i64, ip: &str) -> i64 {
    id_of(only(
        &s.ok(
            who,
            "ipaddress/add",
            json!({"subnet": subnet, "ip": ip, "hostname": "h1"}),
        )
        .await,
    ))
}

#[tokio::test]
async fn the_feed_gives_the_orgs_changes_in_order_with_the_changed_fields() {
    let s = Server::start().await;
    let (a, token) = (&s.admin, s.admin_token.as_str());
    let start = head(&s, token).await;
    let net = subnet(&s, a, "10.1.0.0/24").await;
    let host = address(&s, a, net, "10.1.0.5").await;
    s.ok(a, "ipaddress/edit", json!({"id": host, "hostname": "h2"})).await;
    // A write that fails leaves no entry: its savepoint rolled back with the audit entry and the feed's.
    s.refused(
        a,
        "ipaddress/add",
        json!({"subnet": net, "ip": "10.1.0.5"}),
        "duplicate",
    )
    .await;
    s.ok(a, "ipaddress/delete", json!({"id": host})).await;

    let page = feed(&s, token, &format!("after={start}")).await;
    let changes = page["changes"].as_array().unwrap();
    let seen: Vec<(&str, &str, i64)> = changes
        .iter()
        .map(|c| {
            (
                c["objecttype"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
                c["objectid"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("subnet", "added", net),
            ("ipaddress", "added", host),
            ("ipaddress", "edited", host),
            ("ipaddress", "deleted", host)
        ]
    );
    let cursors: Vec<i64> = changes.iter().map(|c| c["cursor"].as_i64().unwrap()).collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]) && cursors[0] > start,
        "{cursors:?}"
    );
    assert_eq!(page["cursor"], json!(cursors[3]));
    assert_eq!(page["more"], json!(false));
    // An add carries the record, an edit only what changed, a delete what it says of the record.
    assert_eq!(changes[1]["after"]["ip"], json!("10.1.0.5"));
    assert_eq!(changes[2]["before"]["hostname"], json!("h1"));
    assert_eq!(changes[2]["after"]["hostname"], json!("h2"));
    assert!(
        changes[2]["after"].get("ip").is_none(),
        "an unchanged field: {}",
        changes[2]
    );
    assert_eq!(changes[3]["detail"]["ip"], json!("10.1.0.5"));
    assert_eq!(changes[2]["method"], json!("ipaddress/edit"));
    assert_eq!(changes[2]["user"], json!("admin"));

    // Pages: limit, more, and the cursor to go on from.
    let first = feed(&s, token, &format!("after={start}&limit=3")).await;
    assert_eq!(first["changes"].as_array().unwrap().len(), 3);
    assert_eq!(
        (first["more"].clone(), first["cursor"].clone()),
        (json!(true), json!(cursors[2]))
    );
    let rest = feed(&s, token, &format!("after={}", cursors[2])).await;
    assert_eq!(rest["changes"][0]["cursor"], json!(cursors[3]));

    // The envelope gives the same entries (its scalars as strings).
    let env = s.ok(a, "changes/get", json!({"after": start})).await;
    assert_eq!(env["changes"][2]["action"], json!("edited"));
    assert_eq!(env["changes"][2]["cursor"], json!(cursors[2].to_string()));
    assert_eq!(env["cursor"], json!(cursors[3].to_string()));
}

#[tokio::test]
async fn an_org_reads_only_its_own_changes_and_only_as_an_admin() {
    let s = Server::start().await;
    let other = s.org("other").await;
    let (other_token, _) = s.new_token(&other, "feed").await;
    let start = head(&s, &other_token).await;
    subnet(&s, &s.admin, "10.2.0.0/24").await;
    let theirs = subnet(&s, &other, "10.2.0.0/24").await;
    let page = feed(&s, &other_token, &format!("after={start}")).await;
    let ids: Vec<i64> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["objectid"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [theirs]);

    // The audit log's level: admins only.
    let standard = s.user(&s.admin, "std", "standard").await;
    s.refused(&standard, "changes/get", json!({}), "access_denied").await;
    // Malformed parameters are refused by name.
    for (query, field) in [
        ("after=-1", "after"),
        ("limit=0", "limit"),
        ("wait=x", "wait"),
        ("nope=1", "nope"),
    ] {
        let r = s
            .api(Method::GET, &format!("/changes?{query}"), &s.admin_token, None)
            .await;
        assert_eq!(r.status, 400, "{query}: {}", r.json());
        assert!(r.json()["errors"].get(field).is_some(), "{query}: {}", r.json());
    }
}

#[tokio::test]
async fn a_long_poll_answers_when_a_change_commits() {
    let s = Server::start().await;
    let token = s.admin_token.clone();
    let start = head(&s, &token).await;
    // Nothing new: an empty page after the wait, at the same cursor.
    let empty = feed(&s, &token, &format!("after={start}&wait=1")).await;
    assert_eq!(
        (empty["changes"].clone(), empty["cursor"].clone()),
        (json!([]), json!(start))
    );

    let (addr, poll_token) = (s.addr, token.clone());
    let poll = tokio::spawn(async move {
        let path = format!("/api/v1/changes?after={start}&wait=20");
        let bearer = format!("Bearer {poll_token}");
        crate::support::http(addr, Method::GET, &path, &[("authorization", bearer.as_str())], "").await
    });
    // Let the poll reach its wait (if the write came first, the poll would answer at once all the same).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let net = subnet(&s, &s.admin, "10.3.0.0/24").await;
    // Woken by the commit: without the wake-up it would answer empty after 20 seconds.
    let answered = poll.await.unwrap();
    assert_eq!(answered.status, 200);
    let page = answered.json();
    assert_eq!(page["changes"][0]["objectid"], json!(net), "{page}");
}

#[tokio::test]
async fn a_consumer_following_concurrent_writers_sees_every_change_once_in_order() {
    let s = Server::start().await;
    let token = s.admin_token.clone();
    let net = subnet(&s, &s.admin, "10.4.0.0/21").await;
    let start = head(&s, &token).await;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (addr, admin) = (s.addr, s.admin.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..25 {
                    let data = json!({"subnet": net, "ip": format!("10.4.{w}.{}", i + 1)});
                    let env = json!({"appkey": admin.appkey, "userdata": admin.userdata, "data": data});
                    let r = crate::support::http(
                        addr,
                        Method::POST,
                        "/1.0/ipaddress/add",
                        &[("content-type", "application/json")],
                        env.to_string(),
                    )
                    .await;
                    ids.push(id_of(only(&r.json()["response"])));
                }
                ids
            })
        })
        .collect();
    // The consumer reads small pages while the writers run, waiting when it has caught up.
    let mut cursor = start;
    let mut seen: Vec<i64> = Vec::new();
    while seen.len() < 200 {
        let page = feed(&s, &token, &format!("after={cursor}&limit=7&wait=5")).await;
        for c in page["changes"].as_array().unwrap() {
            assert!(
                c["cursor"].as_i64().unwrap() > cursor,
                "out of order: {c} after {cursor}"
            );
            cursor = c["cursor"].as_i64().unwrap();
            seen.push(c["objectid"].as_i64().unwrap());
        }
        assert!(
            !page["changes"].as_array().unwrap().is_empty(),
            "the feed stalled at {cursor} with {} seen",
            seen.len()
        );
    }
    let mut written = BTreeSet::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a change was seen twice");
    assert_eq!(unique, written);
}

#[tokio::test]
async fn cursors_stay_valid_across_a_restore_and_expire_past_the_retention() {
    let clock = ipamd::clock::ManualClock::new();
    let s = Server::start_with_clock(&clock, |_| {}).await;
    let (a, token) = (&s.admin, s.admin_token.clone());
    let before = subnet(&s, a, "10.5.0.0/24").await;
    // Webhook subscriptions are data a backup holds and a restore brings back.
    let hook = json!({"url": "http://192.0.2.1/hook", "enabled": false});
    let hook = id_of(only(&s.ok(a, "webhooks/add", hook).await));
    let backup = s.ok(a, "backups/add", json!({})).await["name"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(a, "webhooks/delete", json!({"id": hook})).await;
    let cursor = head(&s, &token).await;
    subnet(&s, a, "10.6.0.0/24").await;
    s.ok(a, "backups/restore", json!({"name": backup})).await;
    // The cursor taken before the restore still reads on: the subnet added, then the restore, which tells the
    // consumer to read the state again.
    let page = feed(&s, &token, &format!("after={cursor}")).await;
    let actions: Vec<(&str, &str)> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["objecttype"].as_str().unwrap(), c["action"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("subnet", "added"), ("backup", "restored")]);
    s.ok(a, "webhooks/get", json!({"id": hook})).await;
    let after_restore = page["cursor"].as_i64().unwrap();
    let later = subnet(&s, a, "10.7.0.0/24").await;
    let page = feed(&s, &token, &format!("after={after_restore}")).await;
    assert_eq!(page["changes"][0]["objectid"], json!(later));
    assert!(before < later);

    // A cursor this database never gave.
    let r = s
        .api(
            Method::GET,
            &format!("/changes?after={}", after_restore + 1000),
            &token,
            None,
        )
        .await;
    assert_eq!((r.status, r.json()["code"].clone()), (410, json!("cursor_expired")));

    // Past the retention (30 days), the writes that follow purge the old entries: their cursors expire.
    let old = head(&s, &token).await;
    clock.advance(Duration::from_secs(31 * 86_400));
    for i in 0..300 {
        s.ok(a, "groups/add", json!({"description": format!("g{i}")})).await;
    }
    let r = s
        .api(Method::GET, &format!("/changes?after={}", old - 1), &token, None)
        .await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (410, json!("cursor_expired")),
        "{}",
        r.json()
    );
    s.refused(a, "changes/get", json!({"after": 1}), "cursor_expired").await;
    // Without a cursor, the feed starts from the oldest entry kept.
    let fresh = feed(&s, &token, "limit=1").await;
    assert!(fresh["changes"][0]["cursor"].as_i64().unwrap() > old);
}

/// Every delete carries the record as it was in `before` (of each record a mass delete or a recursive delete takes),
/// and a split or a join the fields of the remaining subnet that it changed, as an edit does.
#[tokio::test]
async fn deletes_splits_and_joins_carry_the_record_before() {
    let s = Server::start().await;
    let (a, token) = (&s.admin, s.admin_token.as_str());
    let net = subnet(&s, a, "10.2.0.0/24").await;
    let one = address(&s, a, net, "10.2.0.5").await;
    let (two, three) = (
        address(&s, a, net, "10.2.0.6").await,
        address(&s, a, net, "10.2.0.7").await,
    );
    let other = subnet(&s, a, "10.3.0.0/24").await;
    let four = address(&s, a, other, "10.3.0.9").await;
    let range = id_of(only(
        &s.ok(
            a,
            "dhcpranges/add",
            json!({"subnet": net, "start_ip": "10.2.0.100", "end_ip": "10.2.0.110"}),
        )
        .await,
    ));
    let parent = id_of(only(&s.ok(a, "groups/add", json!({"description": "parent"})).await));
    let child = id_of(only(
        &s.ok(a, "groups/add", json!({"description": "child", "parent": parent}))
            .await,
    ));
    let key = id_of(only(&s.ok(a, "org/appkeys/add", json!({"name": "doomed key"})).await));
    let tok = id_of(only(
        &s.ok(a, "org/tokens/add", json!({"description": "doomed token"})).await,
    ));
    let start = head(&s, token).await;
    s.ok(a, "ipaddress/delete", json!({"id": one})).await;
    s.ok(a, "ipaddress/massdelete", json!({"ids": [two, three]})).await;
    s.ok(a, "ipaddress/massdelete", json!({"subnet": other, "all": true}))
        .await;
    s.ok(a, "dhcpranges/delete", json!({"id": range})).await;
    s.ok(a, "groups/delete", json!({"id": parent, "recursive": true})).await;
    s.ok(a, "org/appkeys/delete", json!({"id": key})).await;
    s.ok(a, "org/tokens/delete", json!({"id": tok})).await;
    let halves = s.ok(a, "subnets/split", json!({"id": net, "cidr": 25})).await;
    let ids: Vec<i64> = halves.as_object().unwrap().values().map(id_of).collect();
    s.ok(a, "subnets/join", json!({"ids": ids})).await;

    let page = feed(&s, token, &format!("after={start}")).await;
    let changes = page["changes"].as_array().unwrap();
    let entry = |kind: &str, id: i64| {
        changes
            .iter()
            .find(|c| c["objecttype"] == kind && c["objectid"] == id)
            .unwrap_or_else(|| panic!("no {kind} {id} in {page}"))
    };
    for (host, ip) in [
        (one, "10.2.0.5"),
        (two, "10.2.0.6"),
        (three, "10.2.0.7"),
        (four, "10.3.0.9"),
    ] {
        let before = &entry("ipaddress", host)["before"];
        assert_eq!(
            (&before["id"], &before["ip"], &before["hostname"]),
            (&json!(host), &json!(ip), &json!("h1"))
        );
    }
    assert_eq!(entry("dhcprange", range)["before"]["start_ip"], json!("10.2.0.100"));
    assert_eq!(entry("group", parent)["before"]["description"], json!("parent"));
    assert_eq!(entry("group", child)["before"]["parent"], json!(parent));
    assert_eq!(entry("appkey", key)["before"]["name"], json!("doomed key"));
    assert_eq!(entry("token", tok)["before"]["description"], json!("doomed token"));
    let split = changes.iter().find(|c| c["action"] == "split").unwrap();
    assert_eq!(
        (&split["before"]["cidr"], &split["after"]["cidr"]),
        (&json!(24), &json!(25)),
        "{split}"
    );
    let joined = changes.iter().find(|c| c["action"] == "joined").unwrap();
    assert_eq!(
        (&joined["before"]["cidr"], &joined["after"]["cidr"]),
        (&json!(25), &json!(24)),
        "{joined}"
    );
}
