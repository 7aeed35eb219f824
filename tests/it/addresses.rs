//! `ipaddress/*`: records in IPv4 and IPv6 subnets side by side — auto-detection of the subnet, atomic allocation
//! (also under 16 concurrent clients and in a /64 that holds thousands of records), next and available around
//! records and DHCP ranges (at a cost that does not grow with records filed out of order), exact counts, edits,
//! deletes, the audit log, levels and org isolation.

use std::collections::HashSet;
use std::sync::Arc;

use ipamd::methods::space::{free_keys, TAKEN_SQL};
use ipamd::methods::subnets::Subnet;
use rusqlite::StatementStatus;
use serde_json::{json, Value};

use crate::support::{id_of, keys, only, Ident, Server};

/// Adds a subnet as `who`; its id.
async fn subnet(s: &Server, who: &Ident, data: Value) -> i64 {
    id_of(only(&s.ok(who, "subnets/add", data).await))
}

/// Adds a record as `who`; the record.
async fn add(s: &Server, who: &Ident, data: Value) -> Value {
    only(&s.ok(who, "ipaddress/add", data).await).clone()
}

/// One record as `who` sees it.
async fn get(s: &Server, who: &Ident, id: i64) -> Value {
    only(&s.ok(who, "ipaddress/get", json!({"id": id})).await).clone()
}

/// `[total_hosts, used_hosts, available_hosts]` of a subnet.
async fn counts(s: &Server, who: &Ident, id: i64) -> [String; 3] {
    let r = s.ok(who, "subnets/get", json!({"id": id})).await;
    let r = only(&r);
    ["total_hosts", "used_hosts", "available_hosts"].map(|k| r[k].as_str().unwrap().to_string())
}

/// The `ip` of each record of a keyed list, in order.
fn ips(keyed: &Value) -> Vec<String> {
    keys(keyed)
        .iter()
        .map(|k| keyed[k.as_str()]["ip"].as_str().unwrap().to_string())
        .collect()
}

/// Everything of `who`'s org that the address methods touch: what a refused call must leave unchanged.
async fn state(s: &Server, who: &Ident) -> Value {
    let subnets = s.ok(who, "subnets/get", json!({"addresses": true})).await;
    let logs = s.ok(who, "org/logs", json!({"perpage": 1})).await;
    json!({"subnets": subnets, "logs": logs["total"]})
}

#[tokio::test]
async fn add_and_get_in_both_families() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = subnet(&s, a, json!({"subnet": "10.1.0.0/24"})).await;
    let v6 = subnet(&s, a, json!({"subnet": "2001:db8:1::/64"})).await;

    // With `ip` alone the subnet is found; IPv6 is rendered in RFC 5952 form.
    let r4 = add(
        &s,
        a,
        json!({"ip": "10.1.0.20", "hostname": "web1", "description": "the web"}),
    )
    .await;
    let r6 = add(&s, a, json!({"ip": "2001:DB8:1:0:0:0:0:0010", "hostname": "web1"})).await;
    assert_eq!(r4["subnet"], json!(v4.to_string()));
    assert_eq!(r6["subnet"], json!(v6.to_string()));
    assert_eq!(r6["ip"], "2001:db8:1::10");
    assert_eq!(
        (r4["network"].as_str(), r6["network"].as_str()),
        (Some("10.1.0.0/24"), Some("2001:db8:1::/64"))
    );
    let fields: Vec<&str> = r4.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        [
            "id",
            "subnet",
            "network",
            "ip",
            "hostname",
            "cname",
            "mac_address",
            "status",
            "is_assigned",
            "last_seen",
            "discovery_source",
            "description",
            "fields",
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
            &r4["ip"],
            &r4["hostname"],
            &r4["description"],
            &r4["status"],
            &r4["is_assigned"]
        ],
        [
            &json!("10.1.0.20"),
            &json!("web1"),
            &json!("the web"),
            &json!("active"),
            &json!("true")
        ]
    );
    assert_eq!(
        [&r4["cname"], &r4["mac_address"], &r4["last_seen"]],
        [&Value::Null, &Value::Null, &Value::Null]
    );
    assert_eq!(r4["fields"], json!({}));
    assert_eq!(r4["user"], "admin");
    assert_eq!(r4["userid"], json!(a.id.to_string()));

    // With `subnet` alone the next free address is taken; with both, the ip must be inside.
    let n4 = add(&s, a, json!({"subnet": v4})).await;
    let n6 = add(&s, a, json!({"subnet": v6.to_string()})).await;
    assert_eq!(
        (n4["ip"].as_str(), n6["ip"].as_str()),
        (Some("10.1.0.1"), Some("2001:db8:1::1"))
    );
    let e4 = add(&s, a, json!({"subnet": v4, "ip": "10.1.0.5"})).await;
    add(&s, a, json!({"subnet": v6, "ip": "2001:db8:1::ffff:ffff:ffff:ffff"})).await;

    // get: by id, by ids, by subnet (by address), by ip; everything of the org by family then address.
    assert_eq!(get(&s, a, id_of(&r4)).await, r4);
    let by_ids = s
        .ok(a, "ipaddress/get", json!({"ids": [id_of(&e4), id_of(&r6), id_of(&r4)]}))
        .await;
    assert_eq!(ips(&by_ids), ["10.1.0.5", "10.1.0.20", "2001:db8:1::10"]);
    let by_ids = s
        .ok(
            a,
            "ipaddress/get",
            json!({"ids": format!("{},{}", id_of(&r4), id_of(&r4))}),
        )
        .await;
    assert_eq!(ips(&by_ids), ["10.1.0.20"]);
    let in4 = s.ok(a, "ipaddress/get", json!({"subnet": v4})).await;
    assert_eq!(ips(&in4), ["10.1.0.1", "10.1.0.5", "10.1.0.20"]);
    let in6 = s.ok(a, "ipaddress/get", json!({"subnet": v6})).await;
    assert_eq!(
        ips(&in6),
        ["2001:db8:1::1", "2001:db8:1::10", "2001:db8:1:0:ffff:ffff:ffff:ffff"]
    );
    let all = s.ok(a, "ipaddress/get", json!({})).await;
    assert_eq!(keys(&all).len(), 6);
    assert_eq!(ips(&all)[..3], ["10.1.0.1", "10.1.0.5", "10.1.0.20"]);
    let by_ip = s.ok(a, "ipaddress/get", json!({"ip": "2001:db8:1::10"})).await;
    assert_eq!(only(&by_ip)["id"], r6["id"]);
    assert_eq!(s.ok(a, "ipaddress/get", json!({"ip": "10.1.0.99"})).await, json!([]));
    // subnets/get with addresses lists the records by address.
    let sub = s.ok(a, "subnets/get", json!({"id": v4, "addresses": true})).await;
    assert_eq!(ips(&only(&sub)["addresses"]), ["10.1.0.1", "10.1.0.5", "10.1.0.20"]);

    s.check(a, "ipaddress/get", json!({"id": 9999}), "not_found").await;
    s.check(a, "ipaddress/get", json!({"ids": [id_of(&r4), 9999]}), "not_found")
        .await;
    s.check(a, "ipaddress/get", json!({"subnet": 9999}), "not_found").await;
    s.check(a, "ipaddress/get", json!({"ip": "10.1.0"}), "invalid_params")
        .await;
    s.check(a, "ipaddress/get", json!({"ip": "::ffff:10.1.0.20"}), "invalid_params")
        .await;
    s.check(a, "ipaddress/get", json!({"id": 1, "ids": [2]}), "invalid_params")
        .await;
    s.check(a, "ipaddress/get", json!({"hostnme": "x"}), "invalid_params")
        .await;

    // One log entry per record added, on the record.
    let logs = s
        .ok(
            a,
            "org/logs",
            json!({"objecttype": "ipaddress", "method": "ipaddress/add"}),
        )
        .await;
    assert_eq!(logs["total"], "6");
    let logs = s
        .ok(
            a,
            "org/logs",
            json!({"objecttype": "ipaddress", "objectid": id_of(&r6)}),
        )
        .await;
    let entry = only(&logs["logs"]);
    assert!(entry["summary"].as_str().unwrap().contains("2001:db8:1::10"), "{entry}");
}

#[tokio::test]
async fn add_normalises_and_validates_every_field() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = subnet(&s, a, json!({"subnet": "10.2.0.0/24"})).await;

    let r = add(
        &s,
        a,
        json!({"subnet": v4, "mac_address": "AA-BB-CC-DD-EE-0F", "cname": "alias", "status": "Reserved",
               "is_assigned": "no", "last_seen": "2025-12-28T12:01:58+02:00", "discovery_source": "arp"}),
    )
    .await;
    assert_eq!(
        [
            &r["mac_address"],
            &r["cname"],
            &r["status"],
            &r["is_assigned"],
            &r["last_seen"],
            &r["discovery_source"]
        ],
        [
            &json!("aa:bb:cc:dd:ee:0f"),
            &json!("alias"),
            &json!("reserved"),
            &json!("false"),
            &json!("1766916118"),
            &json!("arp")
        ]
    );
    for (given, stored) in [
        (json!("aabb.ccdd.eeff"), "aa:bb:cc:dd:ee:ff"),
        (json!("AABBCCDDEEFF"), "aa:bb:cc:dd:ee:ff"),
    ] {
        let r = add(&s, a, json!({"subnet": v4, "mac_address": given})).await;
        assert_eq!(r["mac_address"], stored);
    }
    for (given, stored) in [
        (json!(1766916118), "1766916118"),
        (json!("1766916118"), "1766916118"),
        (json!("2025-12-28T10:01:58Z"), "1766916118"),
        (json!("2025-12-28T10:01:58"), "1766916118"),
        (json!("2025-12-28 10:01:58.5"), "1766916118"),
    ] {
        let r = add(&s, a, json!({"subnet": v4, "last_seen": given})).await;
        assert_eq!(r["last_seen"], stored, "{given}");
    }
    // HOST_ASSIGN_ON_CREATE defaults to true.
    assert_eq!(add(&s, a, json!({"subnet": v4})).await["is_assigned"], "true");

    let before = state(&s, a).await;
    for (bad, field) in [
        (json!({"subnet": v4, "mac_address": "aa:bb:cc:dd:ee"}), "mac_address"),
        (json!({"subnet": v4, "status": "gone"}), "status"),
        (json!({"subnet": v4, "last_seen": "yesterday"}), "last_seen"),
        (json!({"subnet": v4, "last_seen": "2025-02-30"}), "last_seen"),
        (json!({"subnet": v4, "is_assigned": "maybe"}), "is_assigned"),
        (json!({"subnet": v4, "fields": "x"}), "fields"),
        (json!({"subnet": v4, "ip": "10.2.0.300"}), "ip"),
        (json!({"subnet": "ten"}), "subnet"),
        (json!({"hostname": "nowhere"}), "ip"),
        (json!({"subnet": v4, "ip": "10.3.0.1"}), "ip"),
        (json!({"subnet": v4, "ip": "2001:db8::1"}), "ip"),
        (json!({"subnet": v4, "hostnme": "typo"}), "hostnme"),
        (json!({"subnet": v4, "fields": {"nosuch": "x"}}), "fields.nosuch"),
    ] {
        let body = s.check(a, "ipaddress/add", bad.clone(), "invalid_params").await;
        assert!(body["errorData"].get(field).is_some(), "{bad} → {body}");
    }
    s.check(a, "ipaddress/add", json!({"subnet": 9999}), "not_found").await;
    assert_eq!(state(&s, a).await, before);
}

#[tokio::test]
async fn add_finds_the_most_specific_subnet_and_refuses_ties() {
    let s = Server::start().await;
    let a = &s.admin;
    let g1 = id_of(only(&s.ok(a, "groups/add", json!({"description": "site 1"})).await));
    let g2 = id_of(only(&s.ok(a, "groups/add", json!({"description": "site 2"})).await));
    let wide = subnet(&s, a, json!({"subnet": "10.0.0.0/16", "group": g1})).await;
    let site1 = subnet(&s, a, json!({"subnet": "192.168.1.0/24", "group": g1})).await;
    let site2 = subnet(&s, a, json!({"subnet": "192.168.1.0/24", "group": g2})).await;
    let narrow = subnet(&s, a, json!({"subnet": "10.0.5.0/24", "group": g2})).await;
    let v6 = subnet(&s, a, json!({"subnet": "2001:db8::/32", "group": g1})).await;
    let v6n = subnet(&s, a, json!({"subnet": "2001:db8:5::/48", "group": g2})).await;

    assert_eq!(
        add(&s, a, json!({"ip": "10.0.5.9"})).await["subnet"],
        json!(narrow.to_string())
    );
    assert_eq!(
        add(&s, a, json!({"ip": "10.0.6.9"})).await["subnet"],
        json!(wide.to_string())
    );
    assert_eq!(
        add(&s, a, json!({"ip": "2001:db8:5::9"})).await["subnet"],
        json!(v6n.to_string())
    );
    assert_eq!(
        add(&s, a, json!({"ip": "2001:db8:6::9"})).await["subnet"],
        json!(v6.to_string())
    );
    // The same address in two groups' equal subnets: the caller must say which.
    let body = s
        .refused(a, "ipaddress/add", json!({"ip": "192.168.1.7"}), "ambiguous")
        .await;
    let expected = json!({site1.to_string(): "192.168.1.0/24", site2.to_string(): "192.168.1.0/24"});
    assert_eq!(body["errorData"], expected);
    let r = add(&s, a, json!({"ip": "192.168.1.7", "subnet": site2})).await;
    assert_eq!(r["subnet"], json!(site2.to_string()));
    // A record in each group's subnet for one address is allowed; twice in one subnet is not.
    add(&s, a, json!({"ip": "192.168.1.7", "subnet": site1})).await;
    let body = s
        .check(
            a,
            "ipaddress/add",
            json!({"ip": "192.168.1.7", "subnet": site1}),
            "duplicate",
        )
        .await;
    assert!(body["errorData"].is_object(), "{body}");
    s.check(a, "ipaddress/add", json!({"ip": "10.0.5.9"}), "duplicate")
        .await;
    // No subnet holds it.
    s.check(a, "ipaddress/add", json!({"ip": "172.16.0.1"}), "not_found")
        .await;
    s.check(a, "ipaddress/add", json!({"ip": "2001:db9::1"}), "not_found")
        .await;
}

#[tokio::test]
async fn network_broadcast_and_dhcp_addresses_may_be_recorded_and_count_once() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = subnet(&s, a, json!({"subnet": "10.3.0.0/29"})).await;
    let v6 = subnet(&s, a, json!({"subnet": "2001:db8:3::/126"})).await;
    assert_eq!(counts(&s, a, v4).await, ["6", "0", "6"]);
    assert_eq!(counts(&s, a, v6).await, ["3", "0", "3"]);
    s.ok(
        a,
        "dhcpranges/add",
        json!({"subnet": v4, "start_ip": "10.3.0.5", "end_ip": "10.3.0.6"}),
    )
    .await;
    assert_eq!(counts(&s, a, v4).await, ["6", "0", "4"]);
    // Network and broadcast are not usable, a DHCP address is already unavailable: none moves available_hosts.
    for ip in ["10.3.0.0", "10.3.0.7", "10.3.0.5"] {
        add(&s, a, json!({"ip": ip})).await;
    }
    assert_eq!(counts(&s, a, v4).await, ["6", "3", "4"]);
    let r = add(&s, a, json!({"ip": "10.3.0.1"})).await;
    assert_eq!(counts(&s, a, v4).await, ["6", "4", "3"]);
    // The IPv6 subnet-router anycast address is not usable either.
    add(&s, a, json!({"ip": "2001:db8:3::"})).await;
    assert_eq!(counts(&s, a, v6).await, ["3", "1", "3"]);
    assert_eq!(add(&s, a, json!({"subnet": v6})).await["ip"], "2001:db8:3::1");
    assert_eq!(counts(&s, a, v6).await, ["3", "2", "2"]);
    // Deleting gives back exactly what adding took.
    s.ok(a, "ipaddress/delete", json!({"id": id_of(&r)})).await;
    assert_eq!(counts(&s, a, v4).await, ["6", "3", "4"]);
    let all = s.ok(a, "ipaddress/get", json!({"subnet": v4})).await;
    let ids: Vec<i64> = keys(&all).iter().map(|k| k.parse().unwrap()).collect();
    s.ok(a, "ipaddress/massdelete", json!({"ids": ids})).await;
    assert_eq!(counts(&s, a, v4).await, ["6", "0", "4"]);
}

#[tokio::test]
async fn allocation_skips_records_and_active_ranges_and_runs_full() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = subnet(&s, a, json!({"subnet": "10.4.0.0/28"})).await;
    add(&s, a, json!({"ip": "10.4.0.1"})).await;
    add(&s, a, json!({"ip": "10.4.0.7"})).await;
    s.ok(
        a,
        "dhcpranges/add",
        json!({"subnet": v4, "start_ip": "10.4.0.2", "end_ip": "10.4.0.5"}),
    )
    .await;
    s.ok(
        a,
        "dhcpranges/add",
        json!({"subnet": v4, "start_ip": "10.4.0.8", "end_ip": "10.4.0.9", "is_active": false}),
    )
    .await;
    let next = s.ok(a, "ipaddress/next", json!({"subnet": v4})).await;
    assert_eq!(
        next,
        json!({"ip": "10.4.0.6", "subnet": v4.to_string(), "network": "10.4.0.0/28"})
    );
    // next does not take the address.
    assert_eq!(s.ok(a, "ipaddress/next", json!({"subnet": v4})).await["ip"], "10.4.0.6");
    let avail = s.ok(a, "ipaddress/available", json!({"subnet": v4})).await;
    assert_eq!(avail["subnet"], json!(v4.to_string()));
    assert_eq!(avail["total_available"], "8");
    assert_eq!(
        avail["addresses"],
        json!([
            "10.4.0.6",
            "10.4.0.8",
            "10.4.0.9",
            "10.4.0.10",
            "10.4.0.11",
            "10.4.0.12",
            "10.4.0.13",
            "10.4.0.14"
        ])
    );
    assert_eq!(counts(&s, a, v4).await, ["14", "2", "8"]);
    // Allocation takes them in the same order: an inactive range is free space.
    let mut got = Vec::new();
    for _ in 0..8 {
        got.push(
            add(&s, a, json!({"subnet": v4})).await["ip"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        got,
        avail["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>()
    );
    assert_eq!(counts(&s, a, v4).await, ["14", "10", "0"]);
    s.refused(a, "ipaddress/add", json!({"subnet": v4}), "subnet_full")
        .await;
    s.refused(a, "ipaddress/next", json!({"subnet": v4}), "subnet_full")
        .await;
    let avail = s.ok(a, "ipaddress/available", json!({"subnet": v4})).await;
    assert_eq!(
        (avail["total_available"].as_str(), &avail["addresses"]),
        (Some("0"), &json!([]))
    );
    // An explicit address in the range can still be recorded.
    add(&s, a, json!({"ip": "10.4.0.3", "subnet": v4})).await;

    // A /30 runs full after two allocations; /31 and /32 use every address.
    for (block, expect) in [
        ("10.5.0.0/30", vec!["10.5.0.1", "10.5.0.2"]),
        ("10.5.1.0/31", vec!["10.5.1.0", "10.5.1.1"]),
        ("10.5.2.7/32", vec!["10.5.2.7"]),
        ("2001:db8:5::/127", vec!["2001:db8:5::", "2001:db8:5::1"]),
        (
            "2001:db8:6::/126",
            vec!["2001:db8:6::1", "2001:db8:6::2", "2001:db8:6::3"],
        ),
    ] {
        let id = subnet(&s, a, json!({"subnet": block})).await;
        let mut got = Vec::new();
        for _ in 0..expect.len() {
            got.push(
                add(&s, a, json!({"subnet": id})).await["ip"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        assert_eq!(got, expect, "{block}");
        s.refused(a, "ipaddress/add", json!({"subnet": id}), "subnet_full")
            .await;
        let c = counts(&s, a, id).await;
        assert_eq!(c[2], "0", "{block}");
    }
}

#[tokio::test]
async fn available_pages_with_after_in_both_families() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = subnet(&s, a, json!({"subnet": "10.6.0.0/24"})).await;
    let v6 = subnet(&s, a, json!({"subnet": "2001:db8:6::/48"})).await;
    add(&s, a, json!({"ip": "10.6.0.3"})).await;
    add(&s, a, json!({"ip": "2001:db8:6::2"})).await;
    s.ok(
        a,
        "dhcpranges/add",
        json!({"subnet": v6, "start_ip": "2001:db8:6::4", "end_ip": "2001:db8:6::ff"}),
    )
    .await;

    let p = s.ok(a, "ipaddress/available", json!({"subnet": v4, "limit": 3})).await;
    assert_eq!(p["addresses"], json!(["10.6.0.1", "10.6.0.2", "10.6.0.4"]));
    assert_eq!(p["total_available"], "253");
    let p = s
        .ok(
            a,
            "ipaddress/available",
            json!({"subnet": v4, "limit": "3", "after": "10.6.0.4"}),
        )
        .await;
    assert_eq!(p["addresses"], json!(["10.6.0.5", "10.6.0.6", "10.6.0.7"]));
    // `after` may be any address of the subnet, taken or not, even the network address.
    let p = s
        .ok(
            a,
            "ipaddress/available",
            json!({"subnet": v4, "limit": 2, "after": "10.6.0.2"}),
        )
        .await;
    assert_eq!(p["addresses"], json!(["10.6.0.4", "10.6.0.5"]));
    let p = s
        .ok(
            a,
            "ipaddress/available",
            json!({"subnet": v4, "limit": 1, "after": "10.6.0.0"}),
        )
        .await;
    assert_eq!(p["addresses"], json!(["10.6.0.1"]));
    let p = s
        .ok(a, "ipaddress/available", json!({"subnet": v4, "after": "10.6.0.253"}))
        .await;
    assert_eq!(p["addresses"], json!(["10.6.0.254"]));
    let p = s
        .ok(a, "ipaddress/available", json!({"subnet": v4, "after": "10.6.0.255"}))
        .await;
    assert_eq!(p["addresses"], json!([]));
    // Paging through the whole subnet visits every free address once.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let p = s
            .ok(
                a,
                "ipaddress/available",
                json!({"subnet": v4, "limit": 100, "after": after}),
            )
            .await;
        let page: Vec<String> = p["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().into())
            .collect();
        match page.last() {
            Some(last) => after = json!(last),
            None => break,
        }
        seen.extend(page);
    }
    assert_eq!(seen.len(), 253);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 253);
    assert!(!seen.contains(&"10.6.0.3".to_string()));

    // An IPv6 /48: exact counts beyond 2^64, and pages around the record and the range.
    let p = s.ok(a, "ipaddress/available", json!({"subnet": v6, "limit": 4})).await;
    assert_eq!(
        p["addresses"],
        json!(["2001:db8:6::1", "2001:db8:6::3", "2001:db8:6::100", "2001:db8:6::101"])
    );
    let total: u128 = (1u128 << 80) - 1;
    let taken = 1 + (0xff - 4 + 1);
    assert_eq!(p["total_available"], json!((total - taken).to_string()));
    let p = s
        .ok(
            a,
            "ipaddress/available",
            json!({"subnet": v6, "limit": 2, "after": "2001:db8:6:ffff:ffff:ffff:ffff:fffe"}),
        )
        .await;
    assert_eq!(p["addresses"], json!(["2001:db8:6:ffff:ffff:ffff:ffff:ffff"]));
    let p = s.ok(a, "ipaddress/next", json!({"subnet": v6})).await;
    assert_eq!(p["ip"], "2001:db8:6::1");

    for bad in [
        json!({"subnet": v4, "after": "10.7.0.1"}),
        json!({"subnet": v4, "after": "2001:db8:6::1"}),
        json!({"subnet": v4, "after": "nope"}),
        json!({"subnet": v4, "limit": 10001}),
        json!({"subnet": v4, "limit": 0}),
        json!({"subnet": v4, "limit": -1}),
        json!({"limit": 5}),
        json!({"subnet": v4, "start": 5}),
    ] {
        s.check(a, "ipaddress/available", bad, "invalid_params").await;
    }
    let p = s
        .ok(a, "ipaddress/available", json!({"subnet": v6, "limit": 10000}))
        .await;
    assert_eq!(p["addresses"].as_array().unwrap().len(), 10000);
    s.check(a, "ipaddress/available", json!({"subnet": 9999}), "not_found")
        .await;
    s.check(a, "ipaddress/next", json!({"subnet": 9999}), "not_found").await;
    s.check(a, "ipaddress/next", json!({}), "invalid_params").await;
}

#[tokio::test]
async fn counts_stay_exact_in_an_ipv6_48() {
    let s = Server::start().await;
    let a = &s.admin;
    let v6 = subnet(&s, a, json!({"subnet": "2001:db8:48::/48"})).await;
    let total = (1u128 << 80) - 1;
    let c = |used: u128, taken: u128| [total.to_string(), used.to_string(), (total - taken).to_string()];
    assert_eq!(counts(&s, a, v6).await, c(0, 0));
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(id_of(&add(&s, a, json!({"subnet": v6})).await));
    }
    add(&s, a, json!({"ip": "2001:db8:48:ffff:ffff:ffff:ffff:ffff"})).await;
    assert_eq!(counts(&s, a, v6).await, c(4, 4));
    let range = s
        .ok(
            a,
            "dhcpranges/add",
            json!({"subnet": v6, "start_ip": "2001:db8:48:1::", "end_ip": "2001:db8:48:1:ffff:ffff:ffff:ffff"}),
        )
        .await;
    let range = id_of(only(&range));
    assert_eq!(counts(&s, a, v6).await, c(4, 4 + (1 << 64)));
    // A record inside the active range takes nothing more.
    add(&s, a, json!({"ip": "2001:db8:48:1::5"})).await;
    assert_eq!(counts(&s, a, v6).await, c(5, 4 + (1 << 64)));
    s.ok(a, "dhcpranges/edit", json!({"id": range, "is_active": false}))
        .await;
    assert_eq!(counts(&s, a, v6).await, c(5, 5));
    s.ok(a, "dhcpranges/delete", json!({"id": range})).await;
    assert_eq!(counts(&s, a, v6).await, c(5, 5));
    s.ok(a, "ipaddress/delete", json!({"id": ids[1]})).await;
    assert_eq!(counts(&s, a, v6).await, c(4, 4));
    // The freed address is the next one again.
    assert_eq!(
        s.ok(a, "ipaddress/next", json!({"subnet": v6})).await["ip"],
        "2001:db8:48::2"
    );
    s.ok(a, "ipaddress/massdelete", json!({"subnet": v6, "all": true}))
        .await;
    assert_eq!(counts(&s, a, v6).await, c(0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_clients_never_get_the_same_address() {
    let s = Arc::new(Server::start().await);
    let a = s.admin.clone();
    let v4 = subnet(&s, &a, json!({"subnet": "10.8.0.0/24"})).await;
    let v6 = subnet(&s, &a, json!({"subnet": "2001:db8:8::/64"})).await;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..16 {
        let (s, a) = (s.clone(), a.clone());
        tasks.spawn(async move {
            let mut got = Vec::new();
            for i in 0..10 {
                let subnet = if (client + i) % 2 == 0 { v4 } else { v6 };
                let r = add(&s, &a, json!({"subnet": subnet, "hostname": format!("c{client}-{i}")})).await;
                got.push(r["ip"].as_str().unwrap().to_string());
            }
            got
        });
    }
    let mut all = Vec::new();
    while let Some(got) = tasks.join_next().await {
        all.extend(got.unwrap());
    }
    assert_eq!(all.len(), 160);
    assert_eq!(
        all.iter().collect::<HashSet<_>>().len(),
        160,
        "an address was handed out twice"
    );
    // The lowest addresses went out, without holes, and the records and counts agree.
    let in4 = s.ok(&a, "ipaddress/get", json!({"subnet": v4})).await;
    let expect4: Vec<String> = (1..=80).map(|i| format!("10.8.0.{i}")).collect();
    assert_eq!(ips(&in4), expect4);
    let in6 = s.ok(&a, "ipaddress/get", json!({"subnet": v6})).await;
    let expect6: Vec<String> = (1..=80).map(|i| format!("2001:db8:8::{i:x}")).collect();
    assert_eq!(ips(&in6), expect6);
    assert_eq!(counts(&s, &a, v4).await, ["254", "80", "174"]);
    assert_eq!(counts(&s, &a, v6).await[1], "80");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allocation_in_a_64_holding_thousands_of_records_is_correct() {
    let s = Arc::new(Server::start().await);
    let a = s.admin.clone();
    let v6 = subnet(&s, &a, json!({"subnet": "2001:db8:64::/64"})).await;
    // 3000 records at ::1 … ::bb8 (and one far away), filed by 16 clients with explicit addresses.
    let n: u32 = 3000;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..16u32 {
        let (s, a) = (s.clone(), a.clone());
        tasks.spawn(async move {
            for k in (1..=n).filter(|k| k % 16 == client) {
                add(&s, &a, json!({"ip": format!("2001:db8:64::{k:x}"), "subnet": v6})).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    add(&s, &a, json!({"ip": "2001:db8:64::1:0"})).await;
    let total = (1u128 << 64) - 1;
    assert_eq!(
        counts(&s, &a, v6).await,
        [total.to_string(), "3001".into(), (total - 3001).to_string()]
    );
    let next = s.ok(&a, "ipaddress/next", json!({"subnet": v6})).await;
    assert_eq!(next["ip"], "2001:db8:64::bb9");
    assert_eq!(add(&s, &a, json!({"subnet": v6})).await["ip"], "2001:db8:64::bb9");
    // A hole in the middle is found first; paging skips every record.
    let mid = s.ok(&a, "ipaddress/get", json!({"ip": "2001:db8:64::400"})).await;
    s.ok(&a, "ipaddress/delete", json!({"id": id_of(only(&mid))})).await;
    assert_eq!(add(&s, &a, json!({"subnet": v6})).await["ip"], "2001:db8:64::400");
    assert_eq!(add(&s, &a, json!({"subnet": v6})).await["ip"], "2001:db8:64::bba");
    let p = s
        .ok(
            &a,
            "ipaddress/available",
            json!({"subnet": v6, "limit": 3, "after": "2001:db8:64::10"}),
        )
        .await;
    assert_eq!(
        p["addresses"],
        json!(["2001:db8:64::bbb", "2001:db8:64::bbc", "2001:db8:64::bbd"])
    );
    assert_eq!(p["total_available"], json!((total - 3003).to_string()));
}

#[tokio::test]
async fn edit_patches_fields_and_moves_records() {
    let s = Server::start().await;
    let a = &s.admin;
    let g = id_of(only(&s.ok(a, "groups/add", json!({"description": "other site"})).await));
    let v4 = subnet(&s, a, json!({"subnet": "10.9.0.0/24"})).await;
    let other = subnet(&s, a, json!({"subnet": "10.9.1.0/24"})).await;
    let elsewhere = subnet(&s, a, json!({"subnet": "10.9.0.0/24", "group": g})).await;
    let v6 = subnet(&s, a, json!({"subnet": "2001:db8:9::/64"})).await;
    let owner = json!({"subnet": v4, "name": "owner"});
    s.ok(a, "subnets/fields/add", owner).await;
    s.ok(
        a,
        "subnets/fields/add",
        json!({"subnet": v4, "name": "rack", "type": "number"}),
    )
    .await;
    s.ok(a, "subnets/fields/add", json!({"subnet": other, "name": "Owner"}))
        .await;
    s.ok(
        a,
        "subnets/fields/add",
        json!({"subnet": other, "name": "room", "default": "A1"}),
    )
    .await;
    let r = add(
        &s,
        a,
        json!({"ip": "10.9.0.10", "subnet": v4, "hostname": "h", "cname": "c", "mac_address": "aa:bb:cc:dd:ee:ff",
               "description": "d", "last_seen": 100, "fields": {"owner": "ops", "rack": 7}}),
    )
    .await;
    let id = id_of(&r);
    assert_eq!(r["fields"], json!({"owner": "ops", "rack": "7"}));

    // Absent keeps, null and "" clear; fields merge.
    let e = only(
        &s.ok(
            a,
            "ipaddress/edit",
            json!({"id": id, "hostname": "h2", "cname": null, "description": "", "last_seen": null,
                   "status": "inactive", "is_assigned": false, "fields": {"rack": null}}),
        )
        .await,
    )
    .clone();
    assert_eq!(
        [
            &e["hostname"],
            &e["cname"],
            &e["description"],
            &e["last_seen"],
            &e["mac_address"],
            &e["status"]
        ],
        [
            &json!("h2"),
            &Value::Null,
            &Value::Null,
            &Value::Null,
            &json!("aa:bb:cc:dd:ee:ff"),
            &json!("inactive")
        ]
    );
    assert_eq!(
        (e["is_assigned"].as_str(), &e["fields"]),
        (Some("false"), &json!({"owner": "ops"}))
    );
    let e = only(
        &s.ok(
            a,
            "ipaddress/edit",
            json!({"id": id, "fields": {"rack": "12"}, "mac_address": ""}),
        )
        .await,
    )
    .clone();
    assert_eq!(
        (&e["fields"], &e["mac_address"]),
        (&json!({"owner": "ops", "rack": "12"}), &Value::Null)
    );
    assert_eq!(get(&s, a, id).await, e);

    // A new address in the same subnet: the old one is free again, the counts unchanged.
    // The same /24 in another group: an address in it needs its subnet named.
    s.refused(a, "ipaddress/add", json!({"ip": "10.9.0.1"}), "ambiguous")
        .await;
    add(&s, a, json!({"ip": "10.9.0.1", "subnet": v4})).await;
    assert_eq!(counts(&s, a, v4).await, ["254", "2", "252"]);
    let e = only(&s.ok(a, "ipaddress/edit", json!({"id": id, "ip": "10.9.0.2"})).await).clone();
    assert_eq!(
        (e["ip"].as_str(), e["subnet"].as_str()),
        (Some("10.9.0.2"), Some(v4.to_string().as_str()))
    );
    assert_eq!(counts(&s, a, v4).await, ["254", "2", "252"]);
    assert_eq!(s.ok(a, "ipaddress/next", json!({"subnet": v4})).await["ip"], "10.9.0.3");

    // An address outside the subnet moves the record to the subnet holding it; values carry by name, the new
    // subnet's defaults fill in.
    let e = only(&s.ok(a, "ipaddress/edit", json!({"id": id, "ip": "10.9.1.50"})).await).clone();
    assert_eq!(e["subnet"], json!(other.to_string()));
    assert_eq!(e["fields"], json!({"Owner": "ops", "room": "A1"}));
    assert_eq!(counts(&s, a, v4).await, ["254", "1", "253"]);
    assert_eq!(counts(&s, a, other).await, ["254", "1", "253"]);
    // Naming the subnet: the same address in another group's equal subnet.
    let e = only(
        &s.ok(
            a,
            "ipaddress/edit",
            json!({"id": id, "ip": "10.9.0.1", "subnet": elsewhere}),
        )
        .await,
    )
    .clone();
    assert_eq!(e["subnet"], json!(elsewhere.to_string()));
    assert_eq!(e["fields"], json!({}));
    assert_eq!(counts(&s, a, other).await, ["254", "0", "254"]);
    assert_eq!(counts(&s, a, elsewhere).await, ["254", "1", "253"]);
    // Across families.
    let e = only(
        &s.ok(a, "ipaddress/edit", json!({"id": id, "ip": "2001:db8:9::99"}))
            .await,
    )
    .clone();
    assert_eq!(
        (e["subnet"].as_str(), e["ip"].as_str()),
        (Some(v6.to_string().as_str()), Some("2001:db8:9::99"))
    );
    assert_eq!(counts(&s, a, elsewhere).await, ["254", "0", "254"]);
    assert_eq!(counts(&s, a, v6).await[1], "1");

    // Every edit logged its changes.
    let logs = s
        .ok(
            a,
            "org/logs",
            json!({"objecttype": "ipaddress", "objectid": id, "method": "ipaddress/edit"}),
        )
        .await;
    assert_eq!(logs["total"], "6");
    let first = keys(&logs["logs"]).last().unwrap().clone();
    let changes = &logs["logs"][first.as_str()]["changes"];
    assert_eq!(changes["hostname"], json!(["h", "h2"]));
    assert!(changes.get("mac_address").is_none(), "{changes}");

    // Refusals leave everything as it was.
    let before = state(&s, a).await;
    let r1 = id_of(&add(&s, a, json!({"ip": "10.9.0.5", "subnet": v4})).await);
    let before_r1 = state(&s, a).await;
    assert_ne!(before, before_r1);
    s.check(a, "ipaddress/edit", json!({"id": r1, "ip": "10.9.0.1"}), "duplicate")
        .await;
    s.refused(a, "ipaddress/edit", json!({"id": id, "ip": "10.9.0.77"}), "ambiguous")
        .await;
    s.check(
        a,
        "ipaddress/edit",
        json!({"id": r1, "ip": "10.9.0.1", "subnet": v4}),
        "duplicate",
    )
    .await;
    for bad in [
        json!({"id": r1, "ip": "10.9.1.1", "subnet": v4}),
        json!({"id": r1, "mac_address": "zz"}),
        json!({"id": r1, "status": "broken"}),
        json!({"id": r1, "fields": {"rack": "many"}}),
        json!({"id": r1, "typo": 1}),
        json!({"ip": "10.9.0.6"}),
    ] {
        s.check(a, "ipaddress/edit", bad, "invalid_params").await;
    }
    s.check(a, "ipaddress/edit", json!({"id": r1, "ip": "172.16.0.1"}), "not_found")
        .await;
    s.check(a, "ipaddress/edit", json!({"id": r1, "subnet": 9999}), "not_found")
        .await;
    s.check(a, "ipaddress/edit", json!({"id": 9999, "hostname": "x"}), "not_found")
        .await;
    assert_eq!(state(&s, a).await, before_r1);
}

#[tokio::test]
async fn delete_and_massdelete_are_all_or_nothing() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = subnet(&s, a, json!({"subnet": "10.10.0.0/24"})).await;
    let v6 = subnet(&s, a, json!({"subnet": "2001:db8:10::/64"})).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(id_of(&add(&s, a, json!({"subnet": v4})).await));
        ids.push(id_of(&add(&s, a, json!({"subnet": v6})).await));
    }
    let d = s.ok(a, "ipaddress/delete", json!({"id": ids[0]})).await;
    assert_eq!(
        d,
        json!({ids[0].to_string(): {"id": ids[0].to_string(), "deleted": "true"}})
    );
    s.check(a, "ipaddress/delete", json!({"id": ids[0]}), "not_found").await;
    s.check(a, "ipaddress/delete", json!({}), "invalid_params").await;
    assert_eq!(counts(&s, a, v4).await, ["254", "3", "251"]);

    let before = state(&s, a).await;
    let body = s
        .check(
            a,
            "ipaddress/massdelete",
            json!({"ids": [ids[1], ids[0], 9999]}),
            "not_found",
        )
        .await;
    let data = body["errorData"].as_object().unwrap();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        [&ids[0].to_string(), &"9999".to_string()]
    );
    for bad in [
        json!({}),
        json!({"subnet": v4}),
        json!({"subnet": v4, "all": false}),
        json!({"ids": [ids[1]], "subnet": v4, "all": true}),
        json!({"ids": []}),
    ] {
        s.check(a, "ipaddress/massdelete", bad, "invalid_params").await;
    }
    s.check(
        a,
        "ipaddress/massdelete",
        json!({"subnet": 9999, "all": true}),
        "not_found",
    )
    .await;
    assert_eq!(state(&s, a).await, before);

    let d = s
        .ok(a, "ipaddress/massdelete", json!({"ids": [ids[1], ids[2], ids[1]]}))
        .await;
    assert_eq!(keys(&d), [ids[1].to_string(), ids[2].to_string()]);
    assert_eq!(counts(&s, a, v4).await, ["254", "2", "252"]);
    let d = s
        .ok(a, "ipaddress/massdelete", json!({"subnet": v6, "all": "true"}))
        .await;
    assert_eq!(keys(&d).len(), 3);
    assert_eq!(counts(&s, a, v6).await[1], "0");
    assert_eq!(s.ok(a, "ipaddress/get", json!({"subnet": v6})).await, json!([]));
    assert_eq!(
        s.ok(a, "ipaddress/massdelete", json!({"subnet": v6, "all": true}))
            .await,
        json!([])
    );
    let logs = s
        .ok(
            a,
            "org/logs",
            json!({"objecttype": "ipaddress", "method": "ipaddress/massdelete"}),
        )
        .await;
    assert_eq!(logs["total"], "5");
}

#[tokio::test]
async fn readonly_users_read_but_do_not_write() {
    let s = Server::start().await;
    let a = &s.admin;
    let ro = s.user(a, "reader", "readonly").await;
    let std = s.user(a, "writer", "standard").await;
    let v4 = subnet(&s, a, json!({"subnet": "10.11.0.0/24"})).await;
    let r = id_of(&add(&s, a, json!({"subnet": v4})).await);
    s.ok(&ro, "ipaddress/get", json!({"id": r})).await;
    s.ok(&ro, "ipaddress/next", json!({"subnet": v4})).await;
    s.ok(&ro, "ipaddress/available", json!({"subnet": v4})).await;
    let before = state(&s, a).await;
    for (method, data) in [
        ("ipaddress/add", json!({"subnet": v4})),
        ("ipaddress/edit", json!({"id": r, "hostname": "x"})),
        ("ipaddress/delete", json!({"id": r})),
        ("ipaddress/massdelete", json!({"ids": [r]})),
    ] {
        s.check(&ro, method, data, "access_denied").await;
    }
    assert_eq!(state(&s, a).await, before);
    let w = add(&s, &std, json!({"subnet": v4})).await;
    assert_eq!(w["user"], "writer");
    s.ok(&std, "ipaddress/edit", json!({"id": r, "hostname": "x"})).await;
    s.ok(&std, "ipaddress/delete", json!({"id": r})).await;
}

#[tokio::test]
async fn another_orgs_records_do_not_exist() {
    let s = Server::start().await;
    let a = &s.admin;
    let b = s.org("other").await;
    let v4 = subnet(&s, a, json!({"subnet": "10.12.0.0/24"})).await;
    let v6 = subnet(&s, a, json!({"subnet": "2001:db8:12::/64"})).await;
    let r4 = id_of(&add(&s, a, json!({"ip": "10.12.0.5", "hostname": "a"})).await);
    let r6 = id_of(&add(&s, a, json!({"ip": "2001:db8:12::5"})).await);
    let before = state(&s, a).await;

    for (method, data) in [
        ("ipaddress/get", json!({"id": r4})),
        ("ipaddress/get", json!({"ids": [r4, r6]})),
        ("ipaddress/get", json!({"subnet": v4})),
        ("ipaddress/add", json!({"subnet": v4})),
        ("ipaddress/add", json!({"subnet": v6, "ip": "2001:db8:12::6"})),
        ("ipaddress/add", json!({"ip": "10.12.0.6"})),
        ("ipaddress/edit", json!({"id": r4, "hostname": "b"})),
        ("ipaddress/delete", json!({"id": r6})),
        ("ipaddress/massdelete", json!({"ids": [r4]})),
        ("ipaddress/massdelete", json!({"subnet": v4, "all": true})),
        ("ipaddress/next", json!({"subnet": v4})),
        ("ipaddress/available", json!({"subnet": v6})),
    ] {
        s.check(&b, method, data, "not_found").await;
    }
    assert_eq!(s.ok(&b, "ipaddress/get", json!({"ip": "10.12.0.5"})).await, json!([]));
    assert_eq!(s.ok(&b, "ipaddress/get", json!({})).await, json!([]));
    assert_eq!(state(&s, a).await, before);

    // B's own equal subnet is separate: the same address, its own record, nothing of A's.
    let bv4 = subnet(&s, &b, json!({"subnet": "10.12.0.0/24"})).await;
    let br = add(&s, &b, json!({"ip": "10.12.0.5"})).await;
    assert_eq!(br["subnet"], json!(bv4.to_string()));
    assert_eq!(add(&s, &b, json!({"subnet": bv4})).await["ip"], "10.12.0.1");
    s.check(
        &b,
        "ipaddress/edit",
        json!({"id": id_of(&br), "subnet": v4}),
        "not_found",
    )
    .await;
    assert_eq!(
        ips(&s.ok(&b, "ipaddress/get", json!({})).await),
        ["10.12.0.1", "10.12.0.5"]
    );
    assert_eq!(state(&s, a).await, before);
}

#[tokio::test]
async fn get_filters_orders_and_pages() {
    let s = Server::start().await;
    let a = &s.admin;
    let n1 = subnet(&s, a, json!({"subnet": "10.13.0.0/24"})).await;
    let n2 = subnet(&s, a, json!({"subnet": "2001:db8:13::/64"})).await;
    let mut made = Vec::new();
    for data in [
        json!({"ip": "10.13.0.9", "hostname": "web01", "cname": "www", "mac_address": "aa:bb:cc:00:00:01"}),
        json!({"ip": "2001:db8:13::2", "hostname": "WEB02.example", "status": "inactive", "is_assigned": false}),
        json!({"ip": "10.13.0.3", "hostname": "db01", "cname": "db-web", "status": "reserved"}),
        json!({"ip": "10.13.0.4", "hostname": "100%_sure", "mac_address": "aa:bb:cc:00:00:04"}),
    ] {
        made.push(id_of(&add(&s, a, data).await));
    }
    let [web01, web02, db01, pct] = made[..] else {
        unreachable!()
    };
    let ids_of = |v: &Value| -> Vec<i64> { keys(v).iter().map(|k| k.parse().unwrap()).collect() };
    assert_eq!(
        ids_of(&s.ok(a, "ipaddress/get", json!({})).await),
        [db01, pct, web01, web02]
    );
    assert_eq!(
        ids_of(&s.ok(a, "ipaddress/get", json!({"order": "id"})).await),
        [web01, web02, db01, pct]
    );
    for (filter, expected) in [
        (json!({"hostname": "web"}), vec![web01, web02]),
        (json!({"hostname": "web*"}), vec![web01, web02]),
        (json!({"hostname": "*01"}), vec![db01, web01]),
        (json!({"hostname": "web0?"}), vec![web01]),
        (json!({"hostname": "%"}), vec![pct]),
        (json!({"hostname": "_"}), vec![pct]),
        (json!({"cname": "WEB"}), vec![db01]),
        (json!({"status": "Inactive"}), vec![web02]),
        (json!({"is_assigned": false}), vec![web02]),
        (json!({"mac_address": "AA-BB-CC-00-00-04"}), vec![pct]),
        (json!({"mac_address": "00:0"}), vec![pct, web01]),
        (json!({"subnet": n1, "hostname": "web"}), vec![web01]),
        (json!({"subnet": n2, "status": "active"}), vec![]),
        (json!({"ids": [web01, web02], "hostname": "zzz"}), vec![]),
    ] {
        assert_eq!(
            ids_of(&s.ok(a, "ipaddress/get", filter.clone()).await),
            expected,
            "{filter}"
        );
    }
    // Pages: the records of the page, and the counts; for one subnet, its record too.
    let page = s
        .ok(a, "ipaddress/get", json!({"order": "id", "perpage": 3, "page": 2}))
        .await;
    assert_eq!(
        (&page["page"], &page["perpage"], &page["pages"], &page["total"]),
        (&json!("2"), &json!("3"), &json!("2"), &json!("4"))
    );
    assert_eq!(ids_of(&page["addresses"]), [pct]);
    let page = s.ok(a, "ipaddress/get", json!({"subnet": n1, "page": 1})).await;
    assert_eq!(ids_of(&page["addresses"]), [db01, pct, web01]);
    assert_eq!(
        (page["subnet"]["id"].as_str(), page["subnet"]["subnet"].as_str()),
        (Some(n1.to_string().as_str()), Some("10.13.0.0/24"))
    );
    let past = s.ok(a, "ipaddress/get", json!({"page": 9})).await;
    assert_eq!((&past["addresses"], &past["total"]), (&json!([]), &json!("4")));
    for bad in [
        json!({"order": "name"}),
        json!({"status": "gone"}),
        json!({"is_assigned": "perhaps"}),
        json!({"page": 0}),
        json!({"perpage": 1001}),
    ] {
        s.check(a, "ipaddress/get", bad, "invalid_params").await;
    }
}

/// The SQLite VM steps the free-space engine's reads take to find up to `limit` free addresses of `subnet` from its
/// start, on one of the server's own connections, with the addresses found.
async fn engine_steps(s: &Server, subnet: i64, block: &str, limit: usize) -> (Vec<u128>, i32) {
    let store = s.app.store.clone();
    let net: ipnet::IpNet = block.parse().unwrap();
    tokio::task::spawn_blocking(move || {
        store.run_blocking(|db| {
            db.read(|tx| {
                let status = |reset: bool| -> i32 {
                    TAKEN_SQL
                        .iter()
                        .map(|sql| {
                            let stmt = tx.sqlite().unwrap().prepare_cached(sql.sqlite()).unwrap();
                            match reset {
                                true => stmt.reset_status(StatementStatus::VmStep),
                                false => stmt.get_status(StatementStatus::VmStep),
                            }
                        })
                        .sum()
                };
                status(true);
                let s = Subnet {
                    id: subnet,
                    group: None,
                    net,
                };
                let free = free_keys(tx, &s, s.usable().0, limit)?;
                Ok((free, status(false)))
            })
        })
    })
    .await
    .unwrap()
    .unwrap()
}

/// Files the addresses `from` to `to` (counted from 10.9.0.0) from 16 clients, each from the top down, so no record
/// but the last few ever lands on the lowest free address.
async fn file_out_of_order(s: &Arc<Server>, a: &Ident, subnet: i64, from: u32, to: u32) {
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..16u32 {
        let (s, a) = (s.clone(), a.clone());
        tasks.spawn(async move {
            for k in (from..=to).rev().filter(|k| k % 16 == client) {
                let ip = format!("10.9.{}.{}", k / 256, k % 256);
                add(&s, &a, json!({"ip": ip, "subnet": subnet})).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peek_costs_the_same_however_many_records_were_filed_out_of_order() {
    let s = Arc::new(Server::start().await);
    // The cost is counted in SQLite's virtual machine steps.
    if s.sqlite_file().is_none() {
        return;
    }
    let a = s.admin.clone();
    let block = "10.9.0.0/16";
    let v4 = subnet(&s, &a, json!({"subnet": block})).await;
    let key = |ip: &str| ipamd::net::key(ip.parse().unwrap());
    let mut steps = Vec::new();
    let mut filed = 0;
    for n in [100u32, 800] {
        file_out_of_order(&s, &a, v4, filed + 1, n).await;
        filed = n;
        let first = format!("10.9.{}.{}", (n + 1) / 256, (n + 1) % 256);
        // The peek through both doors: the first address above the records.
        assert_eq!(
            s.ok(&a, "ipaddress/next", json!({"subnet": v4})).await["ip"],
            first.as_str()
        );
        let peek = s
            .api(
                hyper::Method::GET,
                &format!("/ip/networks/{v4}/next-ip"),
                &s.admin_token,
                None,
            )
            .await;
        assert_eq!(peek.status, 200, "{}", String::from_utf8_lossy(&peek.body));
        assert_eq!(peek.json()["ip_address"], first.as_str(), "{}", peek.json());
        // What it reads: one run of records, then the gap above it, whatever the number of records.
        let (free, peek_steps) = engine_steps(&s, v4, block, 1).await;
        assert_eq!(free, [key(&first)]);
        let (free, page_steps) = engine_steps(&s, v4, block, 256).await;
        assert_eq!(free.len(), 256);
        steps.push((n, peek_steps, page_steps));
    }
    // The old marker stayed at the second address here, so a peek read every record: over 5,000 steps at 800.
    for &(n, peek, page) in &steps {
        assert!(
            peek < 100 && page < 100,
            "{n} records filed out of order: {peek} steps to peek, {page} for a page"
        );
    }
    assert_eq!(
        steps[0].1, steps[1].1,
        "the peek's cost grew with the records: {steps:?}"
    );
}

/// A list without paging holds at most 5,000 records: one more is refused (`too_large`, `errorData` the limit), read
/// no further, while pages still reach every record. A `massdelete` changes at most 5,000 records in its one
/// transaction, and an error names at most 100 of the ids it refuses, counting the rest. (On the old code all of
/// these answered with every record, and the error named all 150 ids.)
#[tokio::test]
async fn unpaged_reads_and_mass_deletes_are_bounded() {
    let s = Server::start().await;
    let a = &s.admin;
    let sub = subnet(&s, a, json!({"subnet": "10.0.0.0/16"})).await;
    s.seed_records(sub, 0x0a00_0000, 1, 5000).await;
    let all = s.ok(a, "ipaddress/get", json!({"subnet": sub})).await;
    assert_eq!(keys(&all).len(), 5000);
    assert_eq!(keys(&all)[..2], ["1", "2"], "in address order");
    let with = s.ok(a, "subnets/get", json!({"id": sub, "addresses": true})).await;
    assert_eq!(keys(&with[sub.to_string()]["addresses"]).len(), 5000);

    s.seed_records(sub, 0x0a00_0000, 5001, 1).await;
    for (method, data) in [
        ("ipaddress/get", json!({"subnet": sub})),
        ("ipaddress/get", json!({})),
        ("ipaddress/get", json!({"hostname": "seed-"})),
        ("subnets/get", json!({"id": sub, "addresses": true})),
        ("ipaddress/massdelete", json!({"subnet": sub, "all": true})),
        ("ipaddress/massdelete", json!({"ids": (1..=5001).collect::<Vec<i64>>()})),
    ] {
        let e = s.check(a, method, data.clone(), "too_large").await;
        assert_eq!(e["errorData"], json!({"limit": "5000"}), "{method} {data}");
    }
    let page = s
        .ok(a, "ipaddress/get", json!({"subnet": sub, "page": 6, "perpage": 1000}))
        .await;
    assert_eq!(
        (page["total"].clone(), keys(&page["addresses"]).len()),
        (json!("5001"), 1)
    );

    let unknown: Vec<i64> = (100_001..100_151).collect();
    let e = s
        .check(a, "ipaddress/massdelete", json!({"ids": unknown}), "not_found")
        .await;
    let data = e["errorData"].as_object().unwrap();
    assert_eq!(data.len(), 101, "100 ids and the count of the others");
    assert_eq!(data["omitted"], json!("50"));
    assert!(e["error"].as_str().unwrap().starts_with("150 of 150"), "{e}");
    let page = s.ok(a, "ipaddress/get", json!({"subnet": sub, "perpage": 1})).await;
    assert_eq!(page["total"], json!("5001"), "nothing was deleted");
    s.ok(
        a,
        "ipaddress/massdelete",
        json!({"ids": (1..=5000).collect::<Vec<i64>>()}),
    )
    .await;
}
