//! `dhcpranges/*`: ranges inside their subnet, in order, never overlapping another range of the subnet; their
//! effect on the counts and on allocation; the audit log, levels and org isolation.

use serde_json::{json, Value};

use crate::support::{id_of, keys, only, Ident, Server};

/// Adds a subnet as `who`; its id.
async fn subnet(s: &Server, who: &Ident, cidr: &str) -> i64 {
    id_of(only(&s.ok(who, "subnets/add", json!({"subnet": cidr})).await))
}

/// Adds a range as `who`; the record.
async fn add(s: &Server, who: &Ident, data: Value) -> Value {
    only(&s.ok(who, "dhcpranges/add", data).await).clone()
}

/// `available_hosts` of a subnet.
async fn available(s: &Server, who: &Ident, id: i64) -> String {
    let r = s.ok(who, "subnets/get", json!({"id": id})).await;
    only(&r)["available_hosts"].as_str().unwrap().to_string()
}

/// `[start_ip, end_ip]` of each range of a keyed list, in order.
fn spans(keyed: &Value) -> Vec<[String; 2]> {
    keys(keyed)
        .iter()
        .map(|k| ["start_ip", "end_ip"].map(|f| keyed[k.as_str()][f].as_str().unwrap().to_string()))
        .collect()
}

/// Everything of `who`'s org the range methods touch: what a refused call must leave unchanged.
async fn state(s: &Server, who: &Ident) -> Value {
    let ranges = s.ok(who, "dhcpranges/get", json!({})).await;
    let subnets = s.ok(who, "subnets/get", json!({})).await;
    let logs = s.ok(who, "org/logs", json!({"perpage": 1})).await;
    json!({"ranges": ranges, "subnets": subnets, "logs": logs["total"]})
}

#[tokio::test]
async fn add_get_edit_delete_in_both_families() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = subnet(&s, a, "10.20.0.0/24").await;
    let v6 = subnet(&s, a, "2001:db8:20::/64").await;
    let r = add(
        &s,
        a,
        json!({"subnet": v4, "start_ip": "10.20.0.100", "end_ip": "10.20.0.199", "description": "pool"}),
    )
    .await;
    let fields: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        [
            "id",
            "subnet",
            "network_id",
            "start_ip",
            "end_ip",
            "description",
            "is_active",
            "userid",
            "modifiedat",
            "user",
            "email",
            "realname",
            "created",
            "version"
        ]
    );
    assert_eq!(
        [
            &r["subnet"],
            &r["network_id"],
            &r["start_ip"],
            &r["end_ip"],
            &r["description"],
            &r["is_active"]
        ],
        [
            &json!(v4.to_string()),
            &json!(v4.to_string()),
            &json!("10.20.0.100"),
            &json!("10.20.0.199"),
            &json!("pool"),
            &json!("true")
        ]
    );
    let low = add(
        &s,
        a,
        json!({"subnet": v4, "start_ip": "10.20.0.10", "end_ip": "10.20.0.10", "is_active": "0"}),
    )
    .await;
    assert_eq!(
        (low["is_active"].as_str(), &low["description"]),
        (Some("false"), &Value::Null)
    );
    let r6 = add(
        &s,
        a,
        json!({"subnet": v6, "start_ip": "2001:DB8:20::1:0", "end_ip": "2001:db8:20:0:0:0:1:ffff"}),
    )
    .await;
    assert_eq!(
        (r6["start_ip"].as_str(), r6["end_ip"].as_str()),
        (Some("2001:db8:20::1:0"), Some("2001:db8:20::1:ffff"))
    );

    // get: one, a subnet's (by start), the whole org's (IPv4 first).
    assert_eq!(only(&s.ok(a, "dhcpranges/get", json!({"id": id_of(&r)})).await), &r);
    let in4 = s.ok(a, "dhcpranges/get", json!({"subnet": v4})).await;
    assert_eq!(
        spans(&in4),
        [["10.20.0.10", "10.20.0.10"], ["10.20.0.100", "10.20.0.199"]]
    );
    let all = s.ok(a, "dhcpranges/get", json!({})).await;
    assert_eq!(
        keys(&all),
        [
            low["id"].as_str().unwrap(),
            r["id"].as_str().unwrap(),
            r6["id"].as_str().unwrap()
        ]
    );
    assert_eq!(
        s.ok(
            a,
            "dhcpranges/get",
            json!({"subnet": subnet(&s, a, "10.21.0.0/24").await})
        )
        .await,
        json!([])
    );
    // By id, and a page at a time.
    let by_id = s.ok(a, "dhcpranges/get", json!({"order": "id"})).await;
    assert_eq!(
        keys(&by_id),
        [
            r["id"].as_str().unwrap(),
            low["id"].as_str().unwrap(),
            r6["id"].as_str().unwrap()
        ]
    );
    let page = s
        .ok(a, "dhcpranges/get", json!({"order": "id", "perpage": 2, "page": 2}))
        .await;
    assert_eq!((&page["total"], &page["pages"]), (&json!("3"), &json!("2")));
    assert_eq!(keys(&page["dhcpranges"]), [r6["id"].as_str().unwrap()]);
    s.check(a, "dhcpranges/get", json!({"order": "size"}), "invalid_params")
        .await;

    // edit: any end, the description (cleared by null or ""), the flag.
    let e = only(
        &s.ok(
            a,
            "dhcpranges/edit",
            json!({"id": id_of(&r), "end_ip": "10.20.0.150", "description": null}),
        )
        .await,
    )
    .clone();
    assert_eq!(
        [&e["start_ip"], &e["end_ip"], &e["description"]],
        [&json!("10.20.0.100"), &json!("10.20.0.150"), &Value::Null]
    );
    let e = only(
        &s.ok(
            a,
            "dhcpranges/edit",
            json!({"id": id_of(&r), "start_ip": "10.20.0.11", "is_active": false, "description": "x"}),
        )
        .await,
    )
    .clone();
    assert_eq!(
        [&e["start_ip"], &e["is_active"], &e["description"]],
        [&json!("10.20.0.11"), &json!("false"), &json!("x")]
    );
    // A cleared flag takes its default; a range may move to another subnet that holds it.
    let e = only(
        &s.ok(a, "dhcpranges/edit", json!({"id": id_of(&r), "is_active": null}))
            .await,
    )
    .clone();
    assert_eq!(e["is_active"], "true");
    let g = id_of(only(&s.ok(a, "groups/add", json!({"description": "g"})).await));
    let wide = id_of(only(
        &s.ok(a, "subnets/add", json!({"subnet": "10.20.0.0/16", "group": g}))
            .await,
    ));
    assert_eq!(available(&s, a, wide).await, "65534");
    let e = only(
        &s.ok(a, "dhcpranges/edit", json!({"id": id_of(&r), "subnet": wide}))
            .await,
    )
    .clone();
    assert_eq!(
        (e["subnet"].as_str(), e["network_id"].as_str()),
        (Some(wide.to_string().as_str()), Some(wide.to_string().as_str()))
    );
    assert_eq!(available(&s, a, wide).await, (65534 - 140).to_string());
    assert_eq!(available(&s, a, v4).await, "254");
    s.refused(
        a,
        "dhcpranges/edit",
        json!({"id": id_of(&r), "subnet": v6}),
        "invalid_params",
    )
    .await;
    s.ok(
        a,
        "dhcpranges/edit",
        json!({"id": id_of(&r), "subnet": v4, "is_active": "no"}),
    )
    .await;
    assert_eq!(available(&s, a, wide).await, "65534");
    let logs = s
        .ok(
            a,
            "org/logs",
            json!({"objecttype": "dhcprange", "objectid": id_of(&r), "method": "dhcpranges/edit"}),
        )
        .await;
    assert_eq!(logs["total"], "5");
    let latest = &logs["logs"][keys(&logs["logs"])[3].as_str()];
    assert_eq!(latest["changes"]["start_ip"], json!(["10.20.0.100", "10.20.0.11"]));

    let d = s.ok(a, "dhcpranges/delete", json!({"id": id_of(&r6)})).await;
    assert_eq!(
        d,
        json!({r6["id"].as_str().unwrap(): {"id": r6["id"], "deleted": "true"}})
    );
    s.check(a, "dhcpranges/delete", json!({"id": id_of(&r6)}), "not_found")
        .await;
    s.check(a, "dhcpranges/get", json!({"id": id_of(&r6)}), "not_found")
        .await;
    s.check(
        a,
        "dhcpranges/edit",
        json!({"id": id_of(&r6), "is_active": true}),
        "not_found",
    )
    .await;
    let logs = s.ok(a, "org/logs", json!({"objecttype": "dhcprange"})).await;
    assert_eq!(logs["total"], "9");
}

#[tokio::test]
async fn ranges_stay_inside_in_order_and_apart() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = subnet(&s, a, "10.22.0.0/24").await;
    let other = subnet(&s, a, "10.22.1.0/24").await;
    let v6 = subnet(&s, a, "2001:db8:22::/64").await;
    let r1 = id_of(
        &add(
            &s,
            a,
            json!({"subnet": v4, "start_ip": "10.22.0.10", "end_ip": "10.22.0.19"}),
        )
        .await,
    );
    let r2 = id_of(
        &add(
            &s,
            a,
            json!({"subnet": v4, "start_ip": "10.22.0.30", "end_ip": "10.22.0.39", "is_active": false}),
        )
        .await,
    );
    // Adjacent is fine; the same addresses in another subnet are fine.
    add(
        &s,
        a,
        json!({"subnet": v4, "start_ip": "10.22.0.20", "end_ip": "10.22.0.20"}),
    )
    .await;
    add(
        &s,
        a,
        json!({"subnet": other, "start_ip": "10.22.1.10", "end_ip": "10.22.1.19"}),
    )
    .await;
    // Network and broadcast addresses may be part of a range.
    let edge = add(
        &s,
        a,
        json!({"subnet": v4, "start_ip": "10.22.0.250", "end_ip": "10.22.0.255"}),
    )
    .await;

    let before = state(&s, a).await;
    for (data, code, field) in [
        (
            json!({"subnet": v4, "start_ip": "10.22.0.5", "end_ip": "10.22.0.10"}),
            "overlap",
            r1.to_string(),
        ),
        (
            json!({"subnet": v4, "start_ip": "10.22.0.35", "end_ip": "10.22.0.35"}),
            "overlap",
            r2.to_string(),
        ),
        (
            json!({"subnet": v4, "start_ip": "10.22.0.1", "end_ip": "10.22.0.200"}),
            "overlap",
            r1.to_string(),
        ),
        (
            json!({"subnet": v4, "start_ip": "10.22.0.60", "end_ip": "10.22.0.50"}),
            "invalid_params",
            "end_ip".into(),
        ),
        (
            json!({"subnet": v4, "start_ip": "10.22.1.60", "end_ip": "10.22.1.70"}),
            "invalid_params",
            "start_ip".into(),
        ),
        (
            json!({"subnet": v4, "start_ip": "10.22.0.60", "end_ip": "10.23.0.1"}),
            "invalid_params",
            "end_ip".into(),
        ),
        (
            json!({"subnet": v4, "start_ip": "2001:db8:22::1", "end_ip": "2001:db8:22::2"}),
            "invalid_params",
            "start_ip".into(),
        ),
        (
            json!({"subnet": v6, "start_ip": "10.22.0.60", "end_ip": "10.22.0.70"}),
            "invalid_params",
            "start_ip".into(),
        ),
        (
            json!({"subnet": v4, "start_ip": "10.22.0.60"}),
            "invalid_params",
            "end_ip".into(),
        ),
        (
            json!({"start_ip": "10.22.0.60", "end_ip": "10.22.0.70"}),
            "invalid_params",
            "subnet".into(),
        ),
        (
            json!({"subnet": v4, "start_ip": "10.22.0.x", "end_ip": "10.22.0.70"}),
            "invalid_params",
            "start_ip".into(),
        ),
        (
            json!({"subnet": v4, "start_ip": "10.22.0.60", "end_ip": "10.22.0.70", "active": 1}),
            "invalid_params",
            "active".into(),
        ),
    ] {
        let body = s.refused(a, "dhcpranges/add", data.clone(), code).await;
        assert!(body["errorData"].get(&field).is_some(), "{data} → {body}");
    }
    let body = s
        .refused(
            a,
            "dhcpranges/add",
            json!({"subnet": v4, "start_ip": "10.22.0.15", "end_ip": "10.22.0.32"}),
            "overlap",
        )
        .await;
    assert_eq!(
        body["errorData"],
        json!({r1.to_string(): "10.22.0.10-10.22.0.19", keys(&s.ok(a, "dhcpranges/get", json!({"subnet": v4})).await)[1].clone(): "10.22.0.20-10.22.0.20", r2.to_string(): "10.22.0.30-10.22.0.39"})
    );
    s.check(
        a,
        "dhcpranges/add",
        json!({"subnet": 9999, "start_ip": "10.22.0.60", "end_ip": "10.22.0.70"}),
        "not_found",
    )
    .await;
    // Edits follow the same rules; a range never overlaps itself.
    s.refused(
        a,
        "dhcpranges/edit",
        json!({"id": r1, "end_ip": "10.22.0.30"}),
        "overlap",
    )
    .await;
    s.refused(
        a,
        "dhcpranges/edit",
        json!({"id": r1, "start_ip": "10.22.0.25"}),
        "invalid_params",
    )
    .await;
    s.refused(
        a,
        "dhcpranges/edit",
        json!({"id": r1, "end_ip": "10.22.2.1"}),
        "invalid_params",
    )
    .await;
    s.refused(
        a,
        "dhcpranges/edit",
        json!({"id": r1, "subnet": other}),
        "invalid_params",
    )
    .await;
    assert_eq!(state(&s, a).await, before);
    s.ok(
        a,
        "dhcpranges/edit",
        json!({"id": r1, "start_ip": "10.22.0.12", "end_ip": "10.22.0.19"}),
    )
    .await;
    s.ok(a, "dhcpranges/edit", json!({"id": r1, "start_ip": "10.22.0.1"}))
        .await;
    let e = s.ok(a, "dhcpranges/get", json!({"id": id_of(&edge)})).await;
    assert_eq!(spans(&e), [["10.22.0.250", "10.22.0.255"]]);
}

#[tokio::test]
async fn ranges_move_the_counts_and_allocation() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = subnet(&s, a, "10.24.0.0/24").await;
    let v6 = subnet(&s, a, "2001:db8:24::/48").await;
    s.ok(a, "ipaddress/add", json!({"ip": "10.24.0.5"})).await;
    assert_eq!(available(&s, a, v4).await, "253");
    let r = id_of(
        &add(
            &s,
            a,
            json!({"subnet": v4, "start_ip": "10.24.0.1", "end_ip": "10.24.0.10"}),
        )
        .await,
    );
    // Ten addresses, one of them already recorded; the network address outside the usable range never counted.
    assert_eq!(available(&s, a, v4).await, "244");
    assert_eq!(
        s.ok(a, "ipaddress/next", json!({"subnet": v4})).await["ip"],
        "10.24.0.11"
    );
    s.ok(a, "dhcpranges/edit", json!({"id": r, "start_ip": "10.24.0.0"}))
        .await;
    assert_eq!(available(&s, a, v4).await, "244");
    s.ok(a, "dhcpranges/edit", json!({"id": r, "is_active": false})).await;
    assert_eq!(available(&s, a, v4).await, "253");
    assert_eq!(
        s.ok(a, "ipaddress/next", json!({"subnet": v4})).await["ip"],
        "10.24.0.1"
    );
    s.ok(
        a,
        "dhcpranges/edit",
        json!({"id": r, "is_active": true, "end_ip": "10.24.0.255"}),
    )
    .await;
    assert_eq!(available(&s, a, v4).await, "0");
    s.refused(a, "ipaddress/next", json!({"subnet": v4}), "subnet_full")
        .await;
    s.ok(a, "dhcpranges/delete", json!({"id": r})).await;
    assert_eq!(available(&s, a, v4).await, "253");

    // An IPv6 /48 with a /64-sized range: exact arithmetic far beyond 2^64.
    let total = (1u128 << 80) - 1;
    let r6 = add(
        &s,
        a,
        json!({"subnet": v6, "start_ip": "2001:db8:24::", "end_ip": "2001:db8:24:0:ffff:ffff:ffff:ffff"}),
    )
    .await;
    assert_eq!(available(&s, a, v6).await, (total - ((1u128 << 64) - 1)).to_string());
    assert_eq!(
        s.ok(a, "ipaddress/next", json!({"subnet": v6})).await["ip"],
        "2001:db8:24:1::"
    );
    let p = s.ok(a, "ipaddress/available", json!({"subnet": v6, "limit": 2})).await;
    assert_eq!(p["addresses"], json!(["2001:db8:24:1::", "2001:db8:24:1::1"]));
    s.ok(
        a,
        "dhcpranges/edit",
        json!({"id": id_of(&r6), "end_ip": "2001:db8:24:ffff:ffff:ffff:ffff:ffff"}),
    )
    .await;
    assert_eq!(available(&s, a, v6).await, (total - ((1u128 << 80) - 1)).to_string());
    s.ok(a, "dhcpranges/delete", json!({"id": id_of(&r6)})).await;
    assert_eq!(available(&s, a, v6).await, total.to_string());
}

#[tokio::test]
async fn levels_and_org_isolation() {
    let s = Server::start().await;
    let a = &s.admin;
    let ro = s.user(a, "reader", "readonly").await;
    let b = s.org("other").await;
    let v4 = subnet(&s, a, "10.26.0.0/24").await;
    let r = id_of(
        &add(
            &s,
            a,
            json!({"subnet": v4, "start_ip": "10.26.0.10", "end_ip": "10.26.0.20"}),
        )
        .await,
    );
    let before = state(&s, a).await;

    s.ok(&ro, "dhcpranges/get", json!({"id": r})).await;
    s.ok(&ro, "dhcpranges/get", json!({"subnet": v4})).await;
    for (method, data) in [
        (
            "dhcpranges/add",
            json!({"subnet": v4, "start_ip": "10.26.0.30", "end_ip": "10.26.0.40"}),
        ),
        ("dhcpranges/edit", json!({"id": r, "is_active": false})),
        ("dhcpranges/delete", json!({"id": r})),
    ] {
        s.check(&ro, method, data, "access_denied").await;
    }

    for (method, data) in [
        ("dhcpranges/get", json!({"id": r})),
        ("dhcpranges/get", json!({"subnet": v4})),
        (
            "dhcpranges/add",
            json!({"subnet": v4, "start_ip": "10.26.0.30", "end_ip": "10.26.0.40"}),
        ),
        ("dhcpranges/edit", json!({"id": r, "is_active": false})),
        ("dhcpranges/delete", json!({"id": r})),
    ] {
        s.check(&b, method, data, "not_found").await;
    }
    assert_eq!(s.ok(&b, "dhcpranges/get", json!({})).await, json!([]));
    assert_eq!(state(&s, a).await, before);
}
