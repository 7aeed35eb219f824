//! `subnets/*`: add, get, edit, delete, massdelete, split and join, IPv4 and IPv6 side by side — the block rules,
//! exact counts, the order of lists, the audit log, levels and org isolation.

use serde_json::{json, Value};

use crate::support::{id_of, keys, now, only, Ident, Server};

/// Adds a subnet as `who`; its record.
async fn add(s: &Server, who: &Ident, data: Value) -> Value {
    only(&s.ok(who, "subnets/add", data).await).clone()
}

/// Adds a group as `who`; its id.
async fn group(s: &Server, who: &Ident, description: &str) -> i64 {
    id_of(only(
        &s.ok(who, "groups/add", json!({"description": description})).await,
    ))
}

/// One subnet as `who` sees it.
async fn get(s: &Server, who: &Ident, id: i64) -> Value {
    only(&s.ok(who, "subnets/get", json!({"id": id})).await).clone()
}

/// The blocks of a keyed list of subnets, in order.
fn blocks(keyed: &Value) -> Vec<String> {
    keys(keyed)
        .iter()
        .map(|k| keyed[k.as_str()]["subnet"].as_str().unwrap().to_string())
        .collect()
}

/// The message of an error body.
fn message(body: &Value) -> &str {
    body["error"].as_str().unwrap()
}

/// Everything of `who`'s org that the subnet methods touch: what a refused call must leave unchanged.
async fn state(s: &Server, who: &Ident) -> Value {
    let subnets = s
        .ok(who, "subnets/get", json!({"fields": true, "addresses": true}))
        .await;
    let logs = s.ok(who, "org/logs", json!({"perpage": 500})).await;
    json!({"subnets": subnets, "logs": logs["total"]})
}

/// The address records methods (`ipaddress/*`) of this issue are written alongside these tests; the parts of a
/// test that need address records create them with `ipaddress/add {ip, subnet, fields?}`. Returns the record id.
async fn record(s: &Server, who: &Ident, subnet: i64, ip: &str, fields: Value) -> i64 {
    let mut data = json!({"ip": ip, "subnet": subnet});
    if !fields.is_null() {
        data["fields"] = fields;
    }
    id_of(only(&s.ok(who, "ipaddress/add", data).await))
}

/// One address record as `who` sees it.
async fn address(s: &Server, who: &Ident, id: i64) -> Value {
    only(&s.ok(who, "ipaddress/get", json!({"id": id})).await).clone()
}

#[tokio::test]
async fn add_takes_a_cidr_or_network_and_cidr_in_both_families() {
    let s = Server::start().await;
    let a = &s.admin;
    let before = now();
    let v4 = add(
        &s,
        a,
        json!({"subnet": "10.1.0.0/24", "name": "lan", "description": "office", "domain": "lan.example",
               "vlan_id": 10, "location": "rack 1"}),
    )
    .await;
    let expect = [
        ("group", json!(null)),
        ("subnet", json!("10.1.0.0/24")),
        ("network", json!("10.1.0.0")),
        ("cidr", json!("24")),
        ("broadcast", json!("10.1.0.255")),
        ("family", json!("4")),
        ("name", json!("lan")),
        ("description", json!("office")),
        ("domain", json!("lan.example")),
        ("vlan_id", json!("10")),
        ("location", json!("rack 1")),
        ("total_hosts", json!("254")),
        ("used_hosts", json!("0")),
        ("available_hosts", json!("254")),
        ("user", json!("admin")),
        ("userid", json!(a.id.to_string())),
    ];
    for (k, v) in &expect {
        assert_eq!(&v4[*k], v, "{k} in {v4}");
    }
    for stamp in ["modifiedat", "created"] {
        let t: i64 = v4[stamp].as_str().unwrap().parse().unwrap();
        assert!(t >= before && t <= now(), "{stamp} in {v4}");
    }

    // network + cidr, numbers as strings, an IPv6 network written in upper case and long form.
    let v6 = add(
        &s,
        a,
        json!({"network": "2001:DB8:1:0::", "cidr": "64", "vlan_id": "4094"}),
    )
    .await;
    let expect = [
        ("subnet", json!("2001:db8:1::/64")),
        ("network", json!("2001:db8:1::")),
        ("cidr", json!("64")),
        ("broadcast", json!(null)),
        ("family", json!("6")),
        ("name", json!(null)),
        ("vlan_id", json!("4094")),
        ("total_hosts", json!("18446744073709551615")),
        ("available_hosts", json!("18446744073709551615")),
    ];
    for (k, v) in &expect {
        assert_eq!(&v6[*k], v, "{k} in {v6}");
    }
    // The subnet form of IPv6 is accepted too, and so is network + cidr for IPv4.
    let v6b = add(&s, a, json!({"subnet": "2001:db8:2::/48"})).await;
    assert_eq!(v6b["cidr"], "48");
    let v4b = add(&s, a, json!({"network": "10.2.0.0", "cidr": 16})).await;
    assert_eq!(v4b["subnet"], "10.2.0.0/16");

    // subnets/get hands back exactly what add answered.
    let all = s.ok(a, "subnets/get", json!({})).await;
    assert_eq!(all[v4["id"].as_str().unwrap()], v4);
    assert_eq!(all[v6["id"].as_str().unwrap()], v6);
    assert_eq!(keys(&all).len(), 4);

    // One block, given once; unknown keys are refused and name themselves.
    for (data, field) in [
        (json!({}), "subnet"),
        (
            json!({"subnet": "10.3.0.0/24", "network": "10.3.0.0", "cidr": 24}),
            "subnet",
        ),
        (json!({"subnet": "10.3.0.0/24", "cidr": 24}), "subnet"),
        (json!({"network": "10.3.0.0"}), "cidr"),
        (json!({"cidr": 24}), "cidr"),
        (json!({"network": "10.3.0.0", "cidr": 300}), "cidr"),
        (json!({"network": "10.3.0.0", "cidr": "x"}), "cidr"),
        (json!({"subnet": "10.3.0.0/24", "vlan": 3}), "vlan"),
        (json!({"subnet": ["10.3.0.0/24"]}), "subnet"),
    ] {
        let body = s.check(a, "subnets/add", data, "invalid_params").await;
        assert!(body["errorData"].get(field).is_some(), "{field}: {body}");
    }
    assert_eq!(keys(&s.ok(a, "subnets/get", json!({})).await).len(), 4);
}

#[tokio::test]
async fn host_bits_are_refused_naming_the_normalised_cidr() {
    let s = Server::start().await;
    let a = &s.admin;
    for (data, suggested) in [
        (json!({"subnet": "10.1.2.3/24"}), "10.1.2.0/24"),
        (json!({"subnet": "10.1.2.3/8"}), "10.0.0.0/8"),
        (json!({"subnet": "192.168.1.1/31"}), "192.168.1.0/31"),
        (json!({"network": "172.16.5.77", "cidr": 20}), "172.16.0.0/20"),
        (json!({"subnet": "2001:db8::1/64"}), "2001:db8::/64"),
        (json!({"subnet": "2001:DB8:0:ABCD::/48"}), "2001:db8::/48"),
        (json!({"network": "2001:db8::ff", "cidr": 120}), "2001:db8::/120"),
    ] {
        let body = s.refused(a, "subnets/add", data.clone(), "invalid_subnet").await;
        assert!(message(&body).contains(suggested), "{data}: {body}");
        assert_eq!(body["errorData"], json!({"suggested": suggested}), "{data}");
    }
    assert_eq!(s.ok(a, "subnets/get", json!({})).await, json!([]));
    // The suggestion is accepted as it stands.
    add(&s, a, json!({"subnet": "10.1.2.0/24"})).await;
}

#[tokio::test]
async fn malformed_and_ipv4_mapped_blocks_are_invalid_subnet() {
    let s = Server::start().await;
    let a = &s.admin;
    for cidr in [
        "1.2.3.4/33",
        "::/129",
        "01.2.3.4/24",
        "1.2.3/24",
        "1.2.3.0/024",
        "1.2.3.0/-1",
        "1.2.3.0/+8",
        "1.2.3.0/",
        "1.2.3.0",
        "/24",
        "256.0.0.0/8",
        "1.2.3.0/24/1",
        "1.2.3.0 /24",
        "x/24",
        "fe80::%eth0/64",
        "2001:db8::/64x",
        "2001:db8:::/64",
        "::ffff:10.0.0.0/120",
        "::ffff:0:0/96",
        "::ffff:1.2.3.4/128",
    ] {
        s.refused(a, "subnets/add", json!({"subnet": cidr}), "invalid_subnet")
            .await;
    }
    for (network, cidr) in [
        ("1.2.3.0", 33),
        ("::", 129),
        ("01.2.3.0", 24),
        ("1.2.3", 24),
        ("::ffff:10.0.0.0", 120),
    ] {
        let data = json!({"network": network, "cidr": cidr});
        s.refused(a, "subnets/add", data, "invalid_subnet").await;
    }
    assert_eq!(s.ok(a, "subnets/get", json!({})).await, json!([]));
    // Surrounding blanks are forgiven, and the edges of each family are blocks like any other.
    assert_eq!(
        add(&s, a, json!({"subnet": " 1.2.3.4/32 "})).await["subnet"],
        "1.2.3.4/32"
    );
    let g = group(&s, a, "all of it").await;
    let all = add(&s, a, json!({"subnet": "0.0.0.0/0", "group": g})).await;
    assert_eq!(all["total_hosts"], "4294967294");
}

#[tokio::test]
async fn subnets_of_one_group_never_overlap_but_groups_may_share_ranges() {
    let s = Server::start().await;
    let a = &s.admin;
    let wide = add(&s, a, json!({"subnet": "10.0.0.0/16"})).await;
    let wide_id = wide["id"].as_str().unwrap();
    let v6 = add(&s, a, json!({"subnet": "2001:db8::/48"})).await;
    let v6_id = v6["id"].as_str().unwrap();
    for (cidr, conflicts) in [
        ("10.0.5.0/24", json!({wide_id: "10.0.0.0/16"})),
        ("10.0.0.0/16", json!({wide_id: "10.0.0.0/16"})),
        ("10.0.0.0/8", json!({wide_id: "10.0.0.0/16"})),
        ("10.0.255.255/32", json!({wide_id: "10.0.0.0/16"})),
        ("2001:db8:0:ff::/64", json!({v6_id: "2001:db8::/48"})),
        ("2001:db8::/32", json!({v6_id: "2001:db8::/48"})),
    ] {
        let body = s.refused(a, "subnets/add", json!({"subnet": cidr}), "overlap").await;
        assert_eq!(body["errorData"], conflicts, "{cidr}");
        assert!(message(&body).contains(cidr), "{cidr}: {body}");
    }
    // Neighbours touch without overlapping; a block covering several subnets names every one of them, in order.
    let left = add(&s, a, json!({"subnet": "10.1.0.0/24"})).await;
    let right = add(&s, a, json!({"subnet": "9.255.255.0/24"})).await;
    let body = s
        .refused(a, "subnets/add", json!({"subnet": "8.0.0.0/6"}), "overlap")
        .await;
    let expected = json!({right["id"].as_str().unwrap(): "9.255.255.0/24", wide_id: "10.0.0.0/16",
                          left["id"].as_str().unwrap(): "10.1.0.0/24"});
    assert_eq!(body["errorData"], expected);
    assert_eq!(keys(&body["errorData"]), keys(&expected));

    // The same ranges in two other groups (two sites with the same private space) are fine, and each group
    // keeps its own rule.
    let site_a = group(&s, a, "site a").await;
    let site_b = group(&s, a, "site b").await;
    let in_a = add(&s, a, json!({"subnet": "10.0.0.0/16", "group": site_a})).await;
    assert_eq!(in_a["group"], json!(site_a.to_string()));
    add(&s, a, json!({"subnet": "10.0.0.0/16", "group": site_b})).await;
    add(&s, a, json!({"subnet": "2001:db8::/48", "group": site_b.to_string()})).await;
    let body = s
        .refused(
            a,
            "subnets/add",
            json!({"subnet": "10.0.1.0/24", "group": site_a}),
            "overlap",
        )
        .await;
    assert_eq!(body["errorData"], json!({in_a["id"].as_str().unwrap(): "10.0.0.0/16"}));
    // Families never overlap each other; IPv6 right above the IPv4-mapped addresses is a block like any other.
    add(&s, a, json!({"subnet": "::ffff:0:0:0/96", "group": site_a})).await;
    // Another org has its own space.
    let b = s.org("orgb").await;
    add(&s, &b, json!({"subnet": "10.0.0.0/16"})).await;
    assert_eq!(keys(&s.ok(a, "subnets/get", json!({})).await).len(), 8);
}

#[tokio::test]
async fn vlan_ids_are_1_to_4094_or_null() {
    let s = Server::start().await;
    let a = &s.admin;
    for vlan in [
        json!(0),
        json!(4095),
        json!(-1),
        json!("0"),
        json!("x"),
        json!(1.5),
        json!(true),
    ] {
        let body = s
            .check(
                a,
                "subnets/add",
                json!({"subnet": "10.0.0.0/24", "vlan_id": vlan}),
                "invalid_params",
            )
            .await;
        assert!(body["errorData"].get("vlan_id").is_some(), "{body}");
    }
    assert_eq!(
        add(&s, a, json!({"subnet": "10.0.1.0/24", "vlan_id": 1})).await["vlan_id"],
        "1"
    );
    assert_eq!(
        add(&s, a, json!({"subnet": "10.0.2.0/24", "vlan_id": null})).await["vlan_id"],
        json!(null)
    );
    assert_eq!(
        add(&s, a, json!({"subnet": "10.0.3.0/24", "vlan_id": ""})).await["vlan_id"],
        json!(null)
    );
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.4.0/24", "vlan_id": "4094"})).await);
    for vlan in [json!(0), json!(4095)] {
        s.check(a, "subnets/edit", json!({"id": id, "vlan_id": vlan}), "invalid_params")
            .await;
    }
    assert_eq!(get(&s, a, id).await["vlan_id"], "4094");
}

#[tokio::test]
async fn the_group_must_exist_in_the_callers_org() {
    let s = Server::start().await;
    let a = &s.admin;
    let b = s.org("orgb").await;
    let theirs = group(&s, &b, "b's group").await;
    for g in [json!(theirs), json!(9999)] {
        let data = json!({"subnet": "10.0.0.0/24", "group": g});
        s.check(a, "subnets/add", data, "not_found").await;
    }
    s.check(
        a,
        "subnets/add",
        json!({"subnet": "10.0.0.0/24", "group": -1}),
        "invalid_params",
    )
    .await;
    assert_eq!(s.ok(a, "subnets/get", json!({})).await, json!([]));
    // null, "" and "0" all mean the top level, which is one group.
    let top = add(&s, a, json!({"subnet": "10.0.0.0/24", "group": "0"})).await;
    assert_eq!(top["group"], json!(null));
    for g in [json!(null), json!(""), json!(0)] {
        s.refused(
            a,
            "subnets/add",
            json!({"subnet": "10.0.0.0/25", "group": g}),
            "overlap",
        )
        .await;
    }
}

#[tokio::test]
async fn get_orders_by_family_then_address_then_prefix() {
    let s = Server::start().await;
    let a = &s.admin;
    let g1 = group(&s, a, "one").await;
    let g2 = group(&s, a, "two").await;
    // Added out of order; string order would put "192…" before "9…" and "fd00…" before "2001…".
    let order = [
        ("fd00::/8", None),
        ("192.168.1.0/24", None),
        ("10.0.0.0/24", Some(g2)),
        ("2001:db8::/32", None),
        ("9.0.0.0/8", None),
        ("10.0.0.0/16", Some(g1)),
        ("10.0.0.0/8", None),
        ("2001:db8::/48", Some(g1)),
        ("::1/128", Some(g2)),
    ];
    let mut ids = std::collections::HashMap::new();
    for (cidr, g) in order {
        let r = add(&s, a, json!({"subnet": cidr, "group": g})).await;
        ids.insert(cidr, id_of(&r));
    }
    let sorted = [
        "9.0.0.0/8",
        "10.0.0.0/8",
        "10.0.0.0/16",
        "10.0.0.0/24",
        "192.168.1.0/24",
        "::1/128",
        "2001:db8::/32",
        "2001:db8::/48",
        "fd00::/8",
    ];
    let all = s.ok(a, "subnets/get", json!({})).await;
    assert_eq!(blocks(&all), sorted);
    // ids: the same order whatever order they are named in; duplicates count once; three list forms.
    let named = [
        ids["fd00::/8"],
        ids["10.0.0.0/16"],
        ids["9.0.0.0/8"],
        ids["::1/128"],
        ids["10.0.0.0/16"],
    ];
    let expected = ["9.0.0.0/8", "10.0.0.0/16", "::1/128", "fd00::/8"];
    let csv = named.map(|i| i.to_string()).join(",");
    let obj = json!({"a": named[0], "b": named[1], "c": named[2], "d": named[3]});
    for list in [json!(named), json!(csv), obj] {
        let got = s.ok(a, "subnets/get", json!({"ids": list})).await;
        assert_eq!(blocks(&got), expected, "{list}");
    }
    // group: direct members only; 0 means the top level.
    let got = s.ok(a, "subnets/get", json!({"group": g1})).await;
    assert_eq!(blocks(&got), ["10.0.0.0/16", "2001:db8::/48"]);
    let got = s.ok(a, "subnets/get", json!({"group": 0})).await;
    assert_eq!(
        blocks(&got),
        ["9.0.0.0/8", "10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32", "fd00::/8"]
    );
    let empty = group(&s, a, "empty").await;
    assert_eq!(s.ok(a, "subnets/get", json!({"group": empty})).await, json!([]));
    // One id is one record; an unknown one, alone or in a list, is not found.
    let one = s.ok(a, "subnets/get", json!({"id": ids["::1/128"].to_string()})).await;
    assert_eq!(only(&one)["total_hosts"], "1");
    s.check(a, "subnets/get", json!({"id": 9999}), "not_found").await;
    s.check(a, "subnets/get", json!({"ids": [ids["::1/128"], 9999]}), "not_found")
        .await;
    for bad in [
        json!({"id": 1, "ids": [2]}),
        json!({"id": 0}),
        json!({"ids": []}),
        json!({"ids": "x"}),
    ] {
        s.check(a, "subnets/get", bad, "invalid_params").await;
    }
}

#[tokio::test]
async fn get_with_fields_adds_the_definitions_keyed_by_id() {
    let s = Server::start().await;
    let a = &s.admin;
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24"})).await);
    let bare = id_of(&add(&s, a, json!({"subnet": "2001:db8::/64"})).await);
    let f1 = s
        .ok(
            a,
            "subnets/fields/add",
            json!({"subnet": id, "name": "owner", "position": 2}),
        )
        .await;
    let f2 = s
        .ok(
            a,
            "subnets/fields/add",
            json!({"subnet": id, "name": "rack", "type": "number", "position": 1}),
        )
        .await;
    let got = s.ok(a, "subnets/get", json!({"fields": true})).await;
    let fields = &got[id.to_string().as_str()]["fields"];
    // By position: rack (1) before owner (2); each the record fields/add answered.
    assert_eq!(keys(fields), [keys(&f2)[0].clone(), keys(&f1)[0].clone()]);
    assert_eq!(fields[keys(&f1)[0].as_str()], *only(&f1));
    assert_eq!(got[bare.to_string().as_str()]["fields"], json!([]));
    // Without the flag, no fields key.
    let plain = get(&s, a, id).await;
    assert!(
        plain.get("fields").is_none() && plain.get("addresses").is_none(),
        "{plain}"
    );
    let with = s
        .ok(a, "subnets/get", json!({"id": id, "fields": "true", "addresses": "1"}))
        .await;
    assert_eq!(keys(&only(&with)["fields"]).len(), 2);
    assert_eq!(only(&with)["addresses"], json!([]));
}

#[tokio::test]
async fn counts_are_exact_for_every_size() {
    let s = Server::start().await;
    let a = &s.admin;
    for (cidr, total) in [
        ("10.0.0.0/24", "254"),
        ("10.0.1.0/30", "2"),
        ("10.0.1.4/31", "2"),
        ("10.0.1.6/32", "1"),
        ("10.128.0.0/9", "8388606"),
        ("2001:db8::/64", "18446744073709551615"),
        ("2001:db8:1::/48", "1208925819614629174706175"),
        ("2001:db8:2::/126", "3"),
        ("2001:db8:2::4/127", "2"),
        ("2001:db8:2::6/128", "1"),
        ("8000::/1", "170141183460469231731687303715884105727"),
    ] {
        let r = add(&s, a, json!({"subnet": cidr})).await;
        let counts = [
            r["total_hosts"].clone(),
            r["used_hosts"].clone(),
            r["available_hosts"].clone(),
        ];
        assert_eq!(counts, [json!(total), json!("0"), json!(total)], "{cidr}");
    }
    // The upper half of the IPv6 space is the largest block there is: ::/0 holds the IPv4-mapped addresses.
    let g = group(&s, a, "everything").await;
    s.refused(
        a,
        "subnets/add",
        json!({"subnet": "::/0", "group": g}),
        "invalid_subnet",
    )
    .await;
    let half = add(&s, a, json!({"subnet": "8000::/1", "group": g})).await;
    assert_eq!(half["total_hosts"], "170141183460469231731687303715884105727");
}

#[tokio::test]
async fn edit_renames_and_clears_the_metadata() {
    let s = Server::start().await;
    let a = &s.admin;
    let writer = s.user(a, "writer", "standard").await;
    let r = add(
        &s,
        a,
        json!({"subnet": "10.0.0.0/24", "name": "lan", "description": "d", "domain": "x.example", "vlan_id": 5,
               "location": "l"}),
    )
    .await;
    let id = id_of(&r);
    let edited = s
        .ok(
            &writer,
            "subnets/edit",
            json!({"id": id, "name": "LAN 2", "domain": "y.example", "vlan_id": "6"}),
        )
        .await;
    let e = only(&edited);
    assert_eq!(
        [
            &e["name"],
            &e["description"],
            &e["domain"],
            &e["vlan_id"],
            &e["location"],
            &e["user"]
        ],
        [
            &json!("LAN 2"),
            &json!("d"),
            &json!("y.example"),
            &json!("6"),
            &json!("l"),
            &json!("writer")
        ]
    );
    assert_eq!(e["userid"], json!(writer.id.to_string()));
    assert_eq!(e["created"], r["created"]);
    assert_eq!(get(&s, a, id).await, *e);
    // null and "" clear; absent keys stay.
    let edited = s
        .ok(
            a,
            "subnets/edit",
            json!({"id": id, "name": null, "description": "", "vlan_id": null, "location": ""}),
        )
        .await;
    let e = only(&edited);
    assert_eq!(
        [
            &e["name"],
            &e["description"],
            &e["domain"],
            &e["vlan_id"],
            &e["location"]
        ],
        [
            &json!(null),
            &json!(null),
            &json!("y.example"),
            &json!(null),
            &json!(null)
        ]
    );
    // A no-op edit is fine; an unknown key or id is not.
    assert_eq!(
        only(&s.ok(a, "subnets/edit", json!({"id": id})).await)["subnet"],
        "10.0.0.0/24"
    );
    s.check(a, "subnets/edit", json!({"id": id, "nmae": "x"}), "invalid_params")
        .await;
    s.check(a, "subnets/edit", json!({"name": "x"}), "invalid_params").await;
    s.check(a, "subnets/edit", json!({"id": 9999, "name": "x"}), "not_found")
        .await;
    // The change is in the audit log, with what changed.
    let logs = s
        .ok(
            a,
            "org/logs",
            json!({"objecttype": "subnet", "objectid": id, "method": "subnets/edit"}),
        )
        .await;
    let entries: Vec<&Value> = keys(&logs["logs"]).iter().map(|k| &logs["logs"][k.as_str()]).collect();
    let by_writer = entries.iter().find(|e| e["user"] == "writer").unwrap();
    assert_eq!(by_writer["changes"]["name"], json!(["lan", "LAN 2"]), "{logs}");
    assert_eq!(by_writer["changes"]["vlan_id"], json!(["5", "6"]), "{logs}");
    let clearing = entries
        .iter()
        .find(|e| e["changes"].get("description").is_some())
        .unwrap();
    assert_eq!(clearing["changes"]["description"], json!(["d", null]), "{logs}");
    assert_eq!(clearing["user"], "admin");
}

#[tokio::test]
async fn edit_moves_groups_and_changes_the_block_under_the_overlap_rule() {
    let s = Server::start().await;
    let a = &s.admin;
    let g = group(&s, a, "g").await;
    let h = group(&s, a, "h").await;
    let in_g = add(&s, a, json!({"subnet": "10.0.0.0/16", "group": g})).await;
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24", "name": "mover"})).await);
    let other = add(&s, a, json!({"subnet": "10.0.2.0/24"})).await;
    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8::/64"})).await);

    // Into a group where it overlaps: refused, naming the conflict; into another: fine; back with 0.
    let body = s
        .refused(a, "subnets/edit", json!({"id": id, "group": g}), "overlap")
        .await;
    assert_eq!(body["errorData"], json!({in_g["id"].as_str().unwrap(): "10.0.0.0/16"}));
    assert_eq!(
        only(&s.ok(a, "subnets/edit", json!({"id": id, "group": h})).await)["group"],
        json!(h.to_string())
    );
    s.check(a, "subnets/edit", json!({"id": id, "group": 9999}), "not_found")
        .await;
    assert_eq!(
        only(&s.ok(a, "subnets/edit", json!({"id": id, "group": "0"})).await)["group"],
        json!(null)
    );

    // A new block: grown, shrunk, moved; never over a neighbour, never with host bits, never to another family.
    let grown = s
        .ok(a, "subnets/edit", json!({"id": id, "subnet": "10.0.0.0/23"}))
        .await;
    let grown = only(&grown);
    assert_eq!(
        [
            &grown["subnet"],
            &grown["broadcast"],
            &grown["total_hosts"],
            &grown["name"]
        ],
        [
            &json!("10.0.0.0/23"),
            &json!("10.0.1.255"),
            &json!("510"),
            &json!("mover")
        ]
    );
    let body = s
        .refused(a, "subnets/edit", json!({"id": id, "subnet": "10.0.0.0/22"}), "overlap")
        .await;
    assert_eq!(body["errorData"], json!({other["id"].as_str().unwrap(): "10.0.2.0/24"}));
    let body = s
        .refused(
            a,
            "subnets/edit",
            json!({"id": id, "subnet": "10.0.0.5/24"}),
            "invalid_subnet",
        )
        .await;
    assert_eq!(body["errorData"], json!({"suggested": "10.0.0.0/24"}));
    s.refused(
        a,
        "subnets/edit",
        json!({"id": id, "subnet": "2001:db8:1::/64"}),
        "invalid_subnet",
    )
    .await;
    s.refused(
        a,
        "subnets/edit",
        json!({"id": v6, "subnet": "10.9.0.0/24"}),
        "invalid_subnet",
    )
    .await;
    s.refused(
        a,
        "subnets/edit",
        json!({"id": id, "subnet": "::ffff:10.0.0.0/120"}),
        "invalid_subnet",
    )
    .await;
    let moved = s
        .ok(a, "subnets/edit", json!({"id": id, "network": "10.0.8.0", "cidr": 25}))
        .await;
    assert_eq!(only(&moved)["subnet"], "10.0.8.0/25");
    // Block and group together: checked against the new group.
    let body = s
        .refused(
            a,
            "subnets/edit",
            json!({"id": id, "subnet": "10.0.0.0/24", "group": g}),
            "overlap",
        )
        .await;
    assert_eq!(keys(&body["errorData"]), [in_g["id"].as_str().unwrap()]);
    let v6e = s
        .ok(a, "subnets/edit", json!({"id": v6, "subnet": "2001:db8::/56"}))
        .await;
    assert_eq!(only(&v6e)["total_hosts"], "4722366482869645213695");
    assert_eq!(get(&s, a, id).await["subnet"], "10.0.8.0/25");
}

#[tokio::test]
async fn delete_and_massdelete_of_empty_subnets() {
    let s = Server::start().await;
    let a = &s.admin;
    let mut ids = Vec::new();
    for cidr in ["10.0.0.0/24", "10.0.1.0/24", "2001:db8::/64", "2001:db8:1::/64"] {
        ids.push(id_of(&add(&s, a, json!({"subnet": cidr})).await));
    }
    let field = id_of(only(
        &s.ok(a, "subnets/fields/add", json!({"subnet": ids[0], "name": "f"}))
            .await,
    ));
    let gone = s.ok(a, "subnets/delete", json!({"id": ids[0]})).await;
    assert_eq!(
        gone,
        json!({ids[0].to_string(): {"id": ids[0].to_string(), "deleted": "true"}})
    );
    s.check(a, "subnets/get", json!({"id": ids[0]}), "not_found").await;
    s.check(a, "subnets/delete", json!({"id": ids[0]}), "not_found").await;
    // The fields went with it.
    s.check(a, "subnets/fields/edit", json!({"id": field, "name": "g"}), "not_found")
        .await;

    // massdelete: all or nothing, errorData naming each failing id.
    let b = s.org("orgb").await;
    let theirs = id_of(&add(&s, &b, json!({"subnet": "10.0.0.0/24"})).await);
    let before = state(&s, a).await;
    let body = s
        .check(
            a,
            "subnets/massdelete",
            json!({"ids": [ids[1], 9999, ids[2], theirs]}),
            "not_found",
        )
        .await;
    let failing = &body["errorData"];
    assert_eq!(keys(failing), ["9999", theirs.to_string().as_str()]);
    assert!(failing["9999"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(state(&s, a).await, before);
    assert_eq!(keys(&s.ok(&b, "subnets/get", json!({})).await), [theirs.to_string()]);
    let gone = s
        .ok(
            a,
            "subnets/massdelete",
            json!({"ids": format!("{},{}", ids[2], ids[1])}),
        )
        .await;
    assert_eq!(keys(&gone), [ids[2].to_string(), ids[1].to_string()]);
    assert_eq!(gone[ids[1].to_string().as_str()]["deleted"], "true");
    assert_eq!(keys(&s.ok(a, "subnets/get", json!({})).await), [ids[3].to_string()]);
    let logs = s.ok(a, "org/logs", json!({"method": "subnets/massdelete"})).await;
    assert_eq!(logs["total"], "2");
    for bad in [
        json!({}),
        json!({"ids": []}),
        json!({"ids": [0]}),
        json!({"id": ids[3]}),
    ] {
        s.check(a, "subnets/massdelete", bad, "invalid_params").await;
    }
    s.check(a, "subnets/delete", json!({"ids": [ids[3]]}), "invalid_params")
        .await;
}

#[tokio::test]
async fn split_keeps_the_lowest_id_and_copies_metadata_and_fields() {
    let s = Server::start().await;
    let a = &s.admin;
    let g = group(&s, a, "site").await;
    let x = add(
        &s,
        a,
        json!({"subnet": "10.0.0.0/24", "group": g, "name": "lan", "description": "d", "domain": "x.example",
               "vlan_id": 7, "location": "l"}),
    )
    .await;
    let id = id_of(&x);
    s.ok(
        a,
        "subnets/fields/add",
        json!({"subnet": id, "name": "owner", "default": "ops", "position": 1}),
    )
    .await;
    s.ok(
        a,
        "subnets/fields/add",
        json!({"subnet": id, "name": "kind", "type": "select", "options": ["a", "b"]}),
    )
    .await;
    let defs = |f: &Value| -> Vec<Value> {
        keys(f)
            .iter()
            .map(|k| {
                let d = &f[k.as_str()];
                json!([
                    d["name"],
                    d["type"],
                    d["options"],
                    d["default"],
                    d["required"],
                    d["position"]
                ])
            })
            .collect()
    };
    let original = defs(&s.ok(a, "subnets/fields/get", json!({"subnet": id})).await);

    let children = s.ok(a, "subnets/split", json!({"id": id, "cidr": 26})).await;
    assert_eq!(
        blocks(&children),
        ["10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/26", "10.0.0.192/26"]
    );
    let child_ids = keys(&children);
    assert_eq!(child_ids[0], id.to_string(), "the lowest child keeps the id");
    let mut seen = std::collections::HashSet::new();
    for k in &child_ids {
        let c = &children[k.as_str()];
        assert!(seen.insert(k.clone()));
        for meta in ["group", "name", "description", "domain", "vlan_id", "location"] {
            assert_eq!(c[meta], x[meta], "{meta} of {c}");
        }
        assert_eq!([&c["total_hosts"], &c["available_hosts"]], [&json!("62"), &json!("62")]);
        assert_eq!(*c, get(&s, a, id_of(c)).await);
        let fields = s.ok(a, "subnets/fields/get", json!({"subnet": id_of(c)})).await;
        assert_eq!(defs(&fields), original, "the fields of {k}");
    }
    // Every child is its own subnet now: the new children's fields are theirs, not the original's.
    let first_fields = keys(&s.ok(a, "subnets/fields/get", json!({"subnet": id})).await);
    let last_fields = keys(
        &s.ok(a, "subnets/fields/get", json!({"subnet": child_ids[3].as_str()}))
            .await,
    );
    assert!(first_fields.iter().all(|f| !last_fields.contains(f)));
    assert_eq!(
        blocks(&s.ok(a, "subnets/get", json!({"group": g})).await),
        blocks(&children)
    );

    // IPv6 by parts.
    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8::/48", "name": "six"})).await);
    let children = s.ok(a, "subnets/split", json!({"id": v6, "parts": "4"})).await;
    assert_eq!(
        blocks(&children),
        [
            "2001:db8::/50",
            "2001:db8:0:4000::/50",
            "2001:db8:0:8000::/50",
            "2001:db8:0:c000::/50"
        ]
    );
    assert_eq!(keys(&children)[0], v6.to_string());
    assert_eq!(
        children[keys(&children)[3].as_str()]["total_hosts"],
        "302231454903657293676543"
    );
    assert_eq!(children[keys(&children)[2].as_str()]["name"], "six");
}

#[tokio::test]
async fn split_refuses_what_it_cannot_do() {
    let s = Server::start().await;
    let a = &s.admin;
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24"})).await);
    let wide = id_of(&add(&s, a, json!({"subnet": "10.1.0.0/16"})).await);
    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8::/64"})).await);
    let before = state(&s, a).await;
    for (data, code) in [
        (json!({"id": id, "parts": 3}), "invalid_split"),
        (json!({"id": id, "parts": 6}), "invalid_split"),
        (json!({"id": id, "parts": 1}), "invalid_split"),
        (json!({"id": id, "parts": 0}), "invalid_split"),
        (json!({"id": id, "parts": -4}), "invalid_split"),
        (json!({"id": id, "parts": 512}), "invalid_split"),
        (json!({"id": wide, "parts": 512}), "invalid_split"),
        (json!({"id": wide, "cidr": 25}), "invalid_split"),
        (json!({"id": v6, "cidr": 73}), "invalid_split"),
        (json!({"id": v6, "parts": 1024}), "invalid_split"),
        (json!({"id": id, "cidr": 24}), "invalid_split"),
        (json!({"id": id, "cidr": 16}), "invalid_split"),
        (json!({"id": id, "cidr": 33}), "invalid_split"),
        (json!({"id": v6, "cidr": 129}), "invalid_split"),
        (json!({"id": id, "cidr": 300}), "invalid_split"),
        (json!({"id": id}), "invalid_params"),
        (json!({"id": id, "cidr": 25, "parts": 2}), "invalid_params"),
        (json!({"cidr": 25}), "invalid_params"),
        (json!({"id": id, "cidr": "x"}), "invalid_params"),
        (json!({"id": 9999, "cidr": 25}), "not_found"),
    ] {
        s.refused(a, "subnets/split", data, code).await;
    }
    assert_eq!(state(&s, a).await, before);
    // The limit itself is allowed: 256 parts, in both families.
    let parts = s.ok(a, "subnets/split", json!({"id": id, "cidr": 32})).await;
    assert_eq!(keys(&parts).len(), 256);
    assert_eq!(blocks(&parts)[255], "10.0.0.255/32");
    assert_eq!(keys(&parts)[0], id.to_string());
    let parts = s.ok(a, "subnets/split", json!({"id": v6, "parts": 256})).await;
    assert_eq!(blocks(&parts)[1], "2001:db8:0:0:100::/72");
}

#[tokio::test]
async fn join_restores_a_split_with_its_id() {
    let s = Server::start().await;
    let a = &s.admin;
    for (cidr, parts, back) in [("10.0.0.0/24", 4, 24), ("2001:db8::/48", 8, 48)] {
        let x = add(&s, a, json!({"subnet": cidr, "name": "x", "vlan_id": 9})).await;
        let id = id_of(&x);
        s.ok(
            a,
            "subnets/fields/add",
            json!({"subnet": id, "name": "owner", "default": "ops"}),
        )
        .await;
        let fields_before = s.ok(a, "subnets/fields/get", json!({"subnet": id})).await;
        let children = keys(&s.ok(a, "subnets/split", json!({"id": id, "parts": parts})).await);
        // Named in any order, the lowest-addressed member survives.
        let mut named = children.clone();
        named.reverse();
        let joined = s.ok(a, "subnets/join", json!({"ids": named})).await;
        let j = only(&joined);
        assert_eq!(j["id"], x["id"]);
        let mut absorbed: Vec<String> = j["joined"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().into())
            .collect();
        absorbed.sort();
        let mut expected = children[1..].to_vec();
        expected.sort();
        assert_eq!(absorbed, expected, "{j}");
        let now_x = get(&s, a, id).await;
        for k in [
            "subnet",
            "name",
            "vlan_id",
            "total_hosts",
            "available_hosts",
            "used_hosts",
            "group",
        ] {
            assert_eq!(now_x[k], x[k], "{k} after join of {cidr}");
            assert_eq!(j[k], x[k], "{k} in the join reply of {cidr}");
        }
        for c in &children[1..] {
            s.check(a, "subnets/get", json!({"id": c}), "not_found").await;
        }
        // One definition per name again, the original one.
        let fields_after = s.ok(a, "subnets/fields/get", json!({"subnet": id})).await;
        assert_eq!(keys(&fields_after), keys(&fields_before));
        assert_eq!(fields_after[keys(&fields_before)[0].as_str()]["name"], "owner");
        // id + cidr: any member names the block.
        let children = keys(&s.ok(a, "subnets/split", json!({"id": id, "parts": 2})).await);
        let joined = s.ok(a, "subnets/join", json!({"id": children[1], "cidr": back})).await;
        assert_eq!(only(&joined)["joined"], json!([children[1]]));
        assert_eq!(get(&s, a, id).await["subnet"], x["subnet"]);
    }
    assert_eq!(keys(&s.ok(a, "subnets/get", json!({})).await).len(), 2);
}

#[tokio::test]
async fn join_refuses_gaps_mixed_groups_and_conflicting_fields() {
    let s = Server::start().await;
    let a = &s.admin;
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24"})).await);
    let c = keys(&s.ok(a, "subnets/split", json!({"id": id, "cidr": 26})).await);
    let before = state(&s, a).await;

    // A gap: the expected block and what is missing.
    let body = s
        .refused(a, "subnets/join", json!({"ids": [c[0], c[2]]}), "not_contiguous")
        .await;
    assert_eq!(
        body["errorData"],
        json!({"expected": "10.0.0.0/24", "missing": ["10.0.0.64-10.0.0.127", "10.0.0.192-10.0.0.255"]})
    );
    let body = s
        .refused(a, "subnets/join", json!({"ids": [c[1], c[2]]}), "not_contiguous")
        .await;
    assert_eq!(body["errorData"]["expected"], "10.0.0.0/24");
    let body = s
        .refused(a, "subnets/join", json!({"ids": [c[0], c[1], c[3]]}), "not_contiguous")
        .await;
    assert_eq!(
        body["errorData"],
        json!({"expected": "10.0.0.0/24", "missing": ["10.0.0.128-10.0.0.191"]})
    );
    // Families never tile together.
    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8::/64"})).await);
    s.refused(a, "subnets/join", json!({"ids": [c[0], v6]}), "not_contiguous")
        .await;
    // One subnet is nothing to join; cidr must be shorter than the member's prefix.
    for bad in [
        json!({"ids": [c[0]]}),
        json!({"ids": [c[0], c[0]]}),
        json!({"id": c[0]}),
        json!({"cidr": 24}),
        json!({"ids": [c[0], c[1]], "id": c[0], "cidr": 24}),
        json!({"id": c[0], "cidr": 26}),
        json!({"id": c[0], "cidr": 27}),
        json!({"id": c[0], "cidr": 40}),
    ] {
        s.check(a, "subnets/join", bad, "invalid_params").await;
    }
    s.check(a, "subnets/join", json!({"ids": [c[0], 9999]}), "not_found")
        .await;
    s.ok(a, "subnets/delete", json!({"id": v6})).await;
    assert_eq!(state(&s, a).await["subnets"], before["subnets"]);

    // Members in different groups.
    let g = group(&s, a, "g").await;
    s.ok(a, "subnets/edit", json!({"id": c[3], "group": g})).await;
    s.check(a, "subnets/join", json!({"ids": [c[2], c[3]]}), "invalid_params")
        .await;
    // id + cidr looks in the member's group only, so the moved quarter is missing.
    let body = s
        .refused(a, "subnets/join", json!({"id": c[0], "cidr": 24}), "not_contiguous")
        .await;
    assert_eq!(
        body["errorData"],
        json!({"expected": "10.0.0.0/24", "missing": ["10.0.0.192-10.0.0.255"]})
    );
    s.ok(a, "subnets/edit", json!({"id": c[3], "group": null})).await;

    // Field definitions: alike merge, differently defined refuse unless force (the survivor's wins).
    let add_field = |subnet: &String, name: &str, kind: &str| json!({"subnet": subnet, "name": name, "type": kind});
    s.ok(a, "subnets/fields/add", add_field(&c[0], "owner", "text")).await;
    s.ok(a, "subnets/fields/add", add_field(&c[1], "OWNER", "number")).await;
    s.ok(a, "subnets/fields/add", add_field(&c[2], "rack", "number")).await;
    let before = state(&s, a).await;
    let body = s
        .refused(a, "subnets/join", json!({"ids": [c[0], c[1]]}), "conflict")
        .await;
    assert!(body["errorData"].as_object().is_some_and(|m| m.len() == 1), "{body}");
    assert_eq!(state(&s, a).await, before);
    let joined = s.ok(a, "subnets/join", json!({"ids": c.clone(), "force": true})).await;
    assert_eq!(only(&joined)["subnet"], "10.0.0.0/24");
    let fields = s.ok(a, "subnets/fields/get", json!({"subnet": id})).await;
    let named: Vec<(String, String)> = keys(&fields)
        .iter()
        .map(|k| {
            let f = &fields[k.as_str()];
            (f["name"].as_str().unwrap().into(), f["type"].as_str().unwrap().into())
        })
        .collect();
    assert_eq!(
        named,
        [
            ("owner".to_string(), "text".to_string()),
            ("rack".into(), "number".into())
        ]
    );
}

#[tokio::test]
async fn split_and_join_each_leave_one_log_entry_on_the_survivor() {
    let s = Server::start().await;
    let a = &s.admin;
    let id = id_of(&add(&s, a, json!({"subnet": "2001:db8::/48"})).await);
    let children = keys(&s.ok(a, "subnets/split", json!({"id": id, "parts": 4})).await);
    let logs = s.ok(a, "org/logs", json!({"method": "subnets/split"})).await;
    assert_eq!(logs["total"], "1");
    let entry = only(&logs["logs"]);
    assert_eq!(
        [&entry["objecttype"], &entry["objectid"]],
        [&json!("subnet"), &json!(id.to_string())]
    );
    assert_eq!(entry["user"], "admin");
    let text = entry.to_string();
    for c in &children[1..] {
        assert!(
            entry["changes"].to_string().contains(&format!("\"{c}\"")),
            "{c} in {text}"
        );
    }

    s.ok(a, "subnets/join", json!({"id": id, "cidr": 48})).await;
    let logs = s.ok(a, "org/logs", json!({"method": "subnets/join"})).await;
    assert_eq!(logs["total"], "1");
    let entry = only(&logs["logs"]);
    assert_eq!(entry["objectid"], json!(id.to_string()));
    let text = entry.to_string();
    for c in &children[1..] {
        assert!(
            entry["changes"].to_string().contains(&format!("\"{c}\"")),
            "{c} in {text}"
        );
    }
    // A refused split leaves nothing.
    s.refused(a, "subnets/split", json!({"id": id, "parts": 3}), "invalid_split")
        .await;
    assert_eq!(
        s.ok(a, "org/logs", json!({"method": "subnets/split"})).await["total"],
        "1"
    );
}

#[tokio::test]
async fn readonly_users_read_but_never_change_subnets() {
    let s = Server::start().await;
    let a = &s.admin;
    let reader = s.user(a, "reader", "readonly").await;
    let writer = s.user(a, "writer", "standard").await;
    let id = id_of(&add(&s, &writer, json!({"subnet": "10.0.0.0/24"})).await);
    let other = id_of(&add(&s, &writer, json!({"subnet": "10.0.1.0/24"})).await);
    let before = state(&s, a).await;
    assert_eq!(keys(&s.ok(&reader, "subnets/get", json!({})).await).len(), 2);
    s.ok(&reader, "subnets/get", json!({"id": id, "fields": true})).await;
    s.ok(&reader, "subnets/fields/get", json!({"subnet": id})).await;
    for (method, data) in [
        ("subnets/add", json!({"subnet": "10.0.2.0/24"})),
        ("subnets/edit", json!({"id": id, "name": "x"})),
        ("subnets/delete", json!({"id": id})),
        ("subnets/massdelete", json!({"ids": [id]})),
        ("subnets/split", json!({"id": id, "parts": 2})),
        ("subnets/join", json!({"ids": [id, other]})),
        ("subnets/fields/add", json!({"subnet": id, "name": "f"})),
    ] {
        s.check(&reader, method, data, "access_denied").await;
    }
    assert_eq!(state(&s, a).await, before);
    // A standard user may do all of it.
    let halves = keys(&s.ok(&writer, "subnets/split", json!({"id": id, "parts": 2})).await);
    s.ok(&writer, "subnets/join", json!({"ids": halves})).await;
    s.ok(&writer, "subnets/join", json!({"ids": [id, other]})).await;
    s.ok(&writer, "subnets/massdelete", json!({"ids": [id]})).await;
}

#[tokio::test]
async fn another_orgs_subnets_do_not_exist() {
    let s = Server::start().await;
    let a = &s.admin;
    let b = s.org("orgb").await;
    let g = group(&s, a, "a's").await;
    let x = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/25", "group": g, "name": "a's"})).await);
    let y = id_of(&add(&s, a, json!({"subnet": "10.0.0.128/25", "group": g})).await);
    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8::/64"})).await);
    let field = id_of(only(
        &s.ok(a, "subnets/fields/add", json!({"subnet": x, "name": "owner"}))
            .await,
    ));
    let mine = id_of(&add(&s, &b, json!({"subnet": "10.0.0.0/25"})).await);
    let before = state(&s, a).await;
    assert_eq!(keys(&s.ok(&b, "subnets/get", json!({})).await), [mine.to_string()]);
    for (method, data) in [
        ("subnets/get", json!({"id": x})),
        ("subnets/get", json!({"ids": [mine, x]})),
        ("subnets/add", json!({"subnet": "10.9.0.0/24", "group": g})),
        ("subnets/edit", json!({"id": x, "name": "mine now"})),
        ("subnets/edit", json!({"id": mine, "group": g})),
        ("subnets/delete", json!({"id": v6, "force": true})),
        ("subnets/massdelete", json!({"ids": [x, mine]})),
        ("subnets/split", json!({"id": v6, "parts": 2})),
        ("subnets/join", json!({"ids": [x, y]})),
        ("subnets/join", json!({"id": x, "cidr": 24})),
        ("subnets/fields/get", json!({"subnet": x})),
        ("subnets/fields/add", json!({"subnet": x, "name": "f"})),
        ("subnets/fields/edit", json!({"id": field, "name": "f"})),
        ("subnets/fields/delete", json!({"id": field})),
    ] {
        s.check(&b, method, data, "not_found").await;
    }
    // Filtering by a's group answers exactly as filtering by a group that does not exist.
    let foreign = s.call(&b, "subnets/get", json!({"group": g})).await.1;
    let missing = s.call(&b, "subnets/get", json!({"group": 9999})).await.1;
    assert_eq!(
        [&foreign["response"], &foreign["errorCode"]],
        [&missing["response"], &missing["errorCode"]]
    );
    assert!(!foreign.to_string().contains("10.0.0.128"), "{foreign}");
    assert_eq!(state(&s, a).await, before);
    assert_eq!(keys(&s.ok(&b, "subnets/get", json!({})).await), [mine.to_string()]);
}

/// Adds a DHCP range as `who`; its id.
async fn dhcp(s: &Server, who: &Ident, subnet: i64, start: &str, end: &str, active: bool) -> i64 {
    let data = json!({"subnet": subnet, "start_ip": start, "end_ip": end, "is_active": active});
    id_of(only(&s.ok(who, "dhcpranges/add", data).await))
}

/// One DHCP range as `who` sees it.
async fn range(s: &Server, who: &Ident, id: i64) -> Value {
    only(&s.ok(who, "dhcpranges/get", json!({"id": id})).await).clone()
}

/// `[total_hosts, used_hosts, available_hosts]` of a subnet record.
fn counts(r: &Value) -> [&str; 3] {
    ["total_hosts", "used_hosts", "available_hosts"].map(|k| r[k].as_str().unwrap())
}

#[tokio::test]
async fn counts_follow_records_and_dhcp_ranges() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24"})).await);
    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8::/64"})).await);
    let wide = id_of(&add(&s, a, json!({"subnet": "2001:db8:1::/48"})).await);
    let tiny = id_of(&add(&s, a, json!({"subnet": "10.0.1.0/31"})).await);
    // Network and broadcast records are reservations: recorded, never usable.
    for ip in ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.255"] {
        record(&s, a, v4, ip, Value::Null).await;
    }
    assert_eq!(counts(&get(&s, a, v4).await), ["254", "4", "252"]);
    dhcp(&s, a, v4, "10.0.0.100", "10.0.0.149", true).await;
    dhcp(&s, a, v4, "10.0.0.200", "10.0.0.209", false).await;
    assert_eq!(counts(&get(&s, a, v4).await), ["254", "4", "202"]);
    // A record inside an active range counts once; one inside an inactive range counts.
    let in_range = record(&s, a, v4, "10.0.0.120", Value::Null).await;
    record(&s, a, v4, "10.0.0.205", Value::Null).await;
    assert_eq!(counts(&get(&s, a, v4).await), ["254", "6", "201"]);
    s.ok(a, "ipaddress/delete", json!({"id": in_range})).await;
    assert_eq!(counts(&get(&s, a, v4).await), ["254", "5", "201"]);

    // IPv6: the subnet-router anycast address is a reservation too; the counts stay exact beyond 2^64.
    for ip in ["2001:db8::", "2001:db8::1", "2001:db8::2"] {
        record(&s, a, v6, ip, Value::Null).await;
    }
    assert_eq!(
        counts(&get(&s, a, v6).await),
        ["18446744073709551615", "3", "18446744073709551613"]
    );
    dhcp(&s, a, v6, "2001:db8::1000", "2001:db8::1fff", true).await;
    assert_eq!(
        counts(&get(&s, a, v6).await),
        ["18446744073709551615", "3", "18446744073709547517"]
    );
    record(&s, a, wide, "2001:db8:1:ffff:ffff:ffff:ffff:ffff", Value::Null).await;
    let w = get(&s, a, wide).await;
    assert_eq!(
        counts(&w),
        ["1208925819614629174706175", "1", "1208925819614629174706174"]
    );
    // A /31 has no reservations: both addresses count.
    record(&s, a, tiny, "10.0.1.0", Value::Null).await;
    record(&s, a, tiny, "10.0.1.1", Value::Null).await;
    assert_eq!(counts(&get(&s, a, tiny).await), ["2", "2", "0"]);
    // What get lists, with addresses, is what the counts count.
    let listed = s.ok(a, "subnets/get", json!({"id": v4, "addresses": true})).await;
    let ips: Vec<&str> = keys(&only(&listed)["addresses"])
        .iter()
        .map(|k| only(&listed)["addresses"][k.as_str()]["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.205", "10.0.0.255"]);
}

#[tokio::test]
async fn delete_refuses_subnets_with_records_unless_forced() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24"})).await);
    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8::/64"})).await);
    let empty = id_of(&add(&s, a, json!({"subnet": "10.0.1.0/24"})).await);
    s.ok(a, "subnets/fields/add", json!({"subnet": v4, "name": "owner"}))
        .await;
    let r1 = record(&s, a, v4, "10.0.0.1", json!({"owner": "ops"})).await;
    record(&s, a, v4, "10.0.0.2", Value::Null).await;
    record(&s, a, v6, "2001:db8::1", Value::Null).await;
    let range = dhcp(&s, a, v4, "10.0.0.100", "10.0.0.110", true).await;
    let before = state(&s, a).await;

    let body = s.refused(a, "subnets/delete", json!({"id": v4}), "not_empty").await;
    assert_eq!(body["errorData"], json!({"addresses": "2"}));
    s.refused(a, "subnets/delete", json!({"id": v4, "force": false}), "not_empty")
        .await;
    let body = s
        .refused(a, "subnets/massdelete", json!({"ids": [empty, v4, v6]}), "not_empty")
        .await;
    assert_eq!(keys(&body["errorData"]), [v4.to_string(), v6.to_string()]);
    assert!(
        body["errorData"][v4.to_string().as_str()]
            .as_str()
            .unwrap()
            .contains('2'),
        "{body}"
    );
    // A missing id and a non-empty subnet together: still nothing deleted, every failure named.
    let body = s
        .call(a, "subnets/massdelete", json!({"ids": [empty, 9999, v6]}))
        .await
        .1;
    assert_eq!(keys(&body["errorData"]), ["9999".to_string(), v6.to_string()], "{body}");
    assert_eq!(state(&s, a).await, before);

    let gone = s.ok(a, "subnets/delete", json!({"id": v4, "force": "true"})).await;
    assert_eq!(keys(&gone), [v4.to_string()]);
    s.check(a, "ipaddress/get", json!({"id": r1}), "not_found").await;
    s.check(a, "dhcpranges/get", json!({"id": range}), "not_found").await;
    s.check(a, "subnets/fields/get", json!({"subnet": v4}), "not_found")
        .await;
    let logs = s.ok(a, "org/logs", json!({"method": "subnets/delete"})).await;
    assert_eq!(only(&logs["logs"])["changes"], json!({"addresses": "2"}));
    let gone = s
        .ok(a, "subnets/massdelete", json!({"ids": [empty, v6], "force": 1}))
        .await;
    assert_eq!(keys(&gone), [empty.to_string(), v6.to_string()]);
    assert_eq!(s.ok(a, "subnets/get", json!({})).await, json!([]));
    assert_eq!(s.ok(a, "org/info", json!({})).await["ipcount"], "0");
}

#[tokio::test]
async fn edit_changes_the_block_only_while_records_and_ranges_fit() {
    let s = Server::start().await;
    let a = &s.admin;
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/23"})).await);
    let near = record(&s, a, id, "10.0.0.5", Value::Null).await;
    let far = record(&s, a, id, "10.0.1.10", Value::Null).await;
    let range = dhcp(&s, a, id, "10.0.0.100", "10.0.0.120", true).await;
    let before = state(&s, a).await;
    let body = s
        .refused(
            a,
            "subnets/edit",
            json!({"id": id, "subnet": "10.0.0.0/24"}),
            "invalid_subnet",
        )
        .await;
    assert_eq!(body["errorData"], json!({"addresses": "1", "dhcpranges": "0"}));
    s.refused(
        a,
        "subnets/edit",
        json!({"id": id, "subnet": "10.0.4.0/23"}),
        "invalid_subnet",
    )
    .await;
    assert_eq!(state(&s, a).await, before);

    s.ok(a, "ipaddress/delete", json!({"id": far})).await;
    let e = s
        .ok(a, "subnets/edit", json!({"id": id, "subnet": "10.0.0.0/24"}))
        .await;
    assert_eq!(counts(only(&e)), ["254", "1", "232"]);
    let e = s
        .ok(a, "subnets/edit", json!({"id": id, "subnet": "10.0.0.0/25"}))
        .await;
    assert_eq!(counts(only(&e)), ["126", "1", "104"]);
    let body = s
        .refused(
            a,
            "subnets/edit",
            json!({"id": id, "subnet": "10.0.0.0/26"}),
            "invalid_subnet",
        )
        .await;
    assert_eq!(body["errorData"], json!({"addresses": "0", "dhcpranges": "1"}));
    let e = s
        .ok(a, "subnets/edit", json!({"id": id, "subnet": "10.0.0.0/22"}))
        .await;
    assert_eq!(counts(only(&e)), ["1022", "1", "1000"]);
    // The record and the range stay where they were, with their ids, in the same subnet.
    assert_eq!(
        only(&s.ok(a, "ipaddress/get", json!({"id": near})).await)["subnet"],
        json!(id.to_string())
    );
    assert_eq!(
        range_of(&s, a, range).await,
        ["10.0.0.100", "10.0.0.120", &id.to_string()]
    );

    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8::/64"})).await);
    record(&s, a, v6, "2001:db8::1:0:0:1", Value::Null).await;
    s.refused(
        a,
        "subnets/edit",
        json!({"id": v6, "subnet": "2001:db8::/96"}),
        "invalid_subnet",
    )
    .await;
    let e = s
        .ok(a, "subnets/edit", json!({"id": v6, "subnet": "2001:db8::/56"}))
        .await;
    assert_eq!(
        counts(only(&e)),
        ["4722366482869645213695", "1", "4722366482869645213694"]
    );
}

/// `[start_ip, end_ip, subnet]` of a DHCP range.
async fn range_of(s: &Server, who: &Ident, id: i64) -> [String; 3] {
    let r = range(s, who, id).await;
    ["start_ip", "end_ip", "subnet"].map(|k| r[k].as_str().unwrap().to_string())
}

#[tokio::test]
async fn split_moves_records_and_ranges_to_the_child_that_holds_them() {
    let s = Server::start().await;
    let a = &s.admin;
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24", "name": "lan"})).await);
    s.ok(a, "subnets/fields/add", json!({"subnet": id, "name": "owner"}))
        .await;
    s.ok(
        a,
        "subnets/fields/add",
        json!({"subnet": id, "name": "rack", "type": "number"}),
    )
    .await;
    let r1 = record(&s, a, id, "10.0.0.1", json!({"owner": "a"})).await;
    let r70 = record(&s, a, id, "10.0.0.70", json!({"owner": "b", "rack": 3})).await;
    let r130 = record(&s, a, id, "10.0.0.130", Value::Null).await;
    let r255 = record(&s, a, id, "10.0.0.255", json!({"rack": "9"})).await;
    let active = dhcp(&s, a, id, "10.0.0.200", "10.0.0.220", true).await;
    let inactive = dhcp(&s, a, id, "10.0.0.140", "10.0.0.150", false).await;
    let mut records = Vec::new();
    for r in [r1, r70, r130, r255] {
        records.push(address(&s, a, r).await);
    }

    let children = s.ok(a, "subnets/split", json!({"id": id, "parts": 4})).await;
    let c = keys(&children);
    let counts_of: Vec<[&str; 3]> = c.iter().map(|k| counts(&children[k.as_str()])).collect();
    // .255 is the broadcast of the last child; the inactive range takes nothing.
    assert_eq!(
        counts_of,
        [
            ["62", "1", "61"],
            ["62", "1", "61"],
            ["62", "1", "61"],
            ["62", "1", "41"]
        ]
    );
    for (i, (r, child)) in [(r1, &c[0]), (r70, &c[1]), (r130, &c[2]), (r255, &c[3])]
        .into_iter()
        .enumerate()
    {
        let now = address(&s, a, r).await;
        assert_eq!(now["subnet"], json!(child), "record {r}");
        assert_eq!(now["id"], records[i]["id"]);
        assert_eq!(now["ip"], records[i]["ip"]);
        assert_eq!(now["fields"], records[i]["fields"], "the values of {r}");
    }
    assert_eq!(address(&s, a, r70).await["fields"], json!({"owner": "b", "rack": "3"}));
    assert_eq!(
        range_of(&s, a, active).await,
        ["10.0.0.200", "10.0.0.220", c[3].as_str()]
    );
    assert_eq!(
        range_of(&s, a, inactive).await,
        ["10.0.0.140", "10.0.0.150", c[2].as_str()]
    );
    let listed = s.ok(a, "subnets/get", json!({"id": c[1], "addresses": true})).await;
    assert_eq!(keys(&only(&listed)["addresses"]), [r70.to_string()]);
    // The children's definitions are their own: a rename in one leaves the others alone.
    let fields = s.ok(a, "subnets/fields/get", json!({"subnet": c[1]})).await;
    let owner = keys(&fields)[0].clone();
    s.ok(a, "subnets/fields/edit", json!({"id": owner, "name": "team"}))
        .await;
    assert_eq!(address(&s, a, r70).await["fields"], json!({"team": "b", "rack": "3"}));
    assert_eq!(address(&s, a, r1).await["fields"], json!({"owner": "a"}));
    // Each child takes new records under its own definitions.
    let r2 = record(&s, a, c[2].parse().unwrap(), "10.0.0.131", json!({"owner": "c"})).await;
    assert_eq!(address(&s, a, r2).await["fields"], json!({"owner": "c"}));

    // IPv6 too.
    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8::/64"})).await);
    let low = record(&s, a, v6, "2001:db8::1", Value::Null).await;
    let high = record(&s, a, v6, "2001:db8::8000:0:0:1", Value::Null).await;
    let halves = keys(&s.ok(a, "subnets/split", json!({"id": v6, "cidr": 65})).await);
    assert_eq!(address(&s, a, low).await["subnet"], json!(halves[0]));
    assert_eq!(address(&s, a, high).await["subnet"], json!(halves[1]));
    let upper = get(&s, a, halves[1].parse().unwrap()).await;
    assert_eq!(counts(&upper), ["9223372036854775807", "1", "9223372036854775806"]);
}

#[tokio::test]
async fn split_refuses_to_cut_a_dhcp_range() {
    let s = Server::start().await;
    let a = &s.admin;
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.1.0/24"})).await);
    let straddling = dhcp(&s, a, id, "10.0.1.60", "10.0.1.70", false).await;
    let whole = dhcp(&s, a, id, "10.0.1.200", "10.0.1.210", true).await;
    record(&s, a, id, "10.0.1.65", Value::Null).await;
    let before = state(&s, a).await;
    for data in [json!({"id": id, "parts": 4}), json!({"id": id, "cidr": 27})] {
        let body = s.refused(a, "subnets/split", data.clone(), "invalid_split").await;
        assert_eq!(
            body["errorData"],
            json!({straddling.to_string(): "10.0.1.60-10.0.1.70"}),
            "{data}"
        );
    }
    // Into single addresses, every range of more than one address straddles.
    let body = s
        .refused(a, "subnets/split", json!({"id": id, "cidr": 32}), "invalid_split")
        .await;
    let expected = json!({straddling.to_string(): "10.0.1.60-10.0.1.70", whole.to_string(): "10.0.1.200-10.0.1.210"});
    assert_eq!(body["errorData"], expected);
    assert_eq!(state(&s, a).await, before);
    // Halves keep it whole.
    let halves = keys(&s.ok(a, "subnets/split", json!({"id": id, "parts": 2})).await);
    assert_eq!(range_of(&s, a, straddling).await[2], halves[0]);

    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8::/64"})).await);
    let r = dhcp(
        &s,
        a,
        v6,
        "2001:db8::7fff:ffff:ffff:ff00",
        "2001:db8::8000:0:0:ff",
        true,
    )
    .await;
    let body = s
        .refused(a, "subnets/split", json!({"id": v6, "parts": 2}), "invalid_split")
        .await;
    assert_eq!(
        body["errorData"],
        json!({r.to_string(): "2001:db8::7fff:ffff:ffff:ff00-2001:db8::8000:0:0:ff"})
    );
}

#[tokio::test]
async fn join_of_a_split_restores_records_ranges_and_field_values() {
    let s = Server::start().await;
    let a = &s.admin;
    for (cidr, ips, dhcp_range, parts) in [
        (
            "10.0.0.0/24",
            ["10.0.0.1", "10.0.0.100", "10.0.0.200"],
            ("10.0.0.150", "10.0.0.160"),
            4,
        ),
        (
            "2001:db8::/48",
            ["2001:db8::1", "2001:db8:0:5000::1", "2001:db8:0:ffff::1"],
            ("2001:db8:0:9000::", "2001:db8:0:9000::ff"),
            16,
        ),
    ] {
        let id = id_of(&add(&s, a, json!({"subnet": cidr, "name": "x", "domain": "x.example"})).await);
        s.ok(a, "subnets/fields/add", json!({"subnet": id, "name": "owner"}))
            .await;
        s.ok(
            a,
            "subnets/fields/add",
            json!({"subnet": id, "name": "rack", "type": "number", "default": "1"}),
        )
        .await;
        s.ok(
            a,
            "subnets/fields/add",
            json!({"subnet": id, "name": "up", "type": "boolean"}),
        )
        .await;
        record(&s, a, id, ips[0], json!({"owner": "a", "up": true})).await;
        record(&s, a, id, ips[1], json!({"owner": "b", "rack": 5})).await;
        record(&s, a, id, ips[2], Value::Null).await;
        let r = dhcp(&s, a, id, dhcp_range.0, dhcp_range.1, true).await;
        let before = s
            .ok(a, "subnets/get", json!({"id": id, "addresses": true, "fields": true}))
            .await;
        let before = only(&before).clone();

        let children = keys(&s.ok(a, "subnets/split", json!({"id": id, "parts": parts})).await);
        assert_eq!(children.len(), parts);
        let joined = s.ok(a, "subnets/join", json!({"ids": children})).await;
        assert_eq!(keys(&joined), [id.to_string()]);
        let after = s
            .ok(a, "subnets/get", json!({"id": id, "addresses": true, "fields": true}))
            .await;
        let after = only(&after);
        // The records moved out and back: they are as they were but for their versions, which moved with them.
        let unversioned = |records: &Value| -> Value {
            let mut records = records.clone();
            for r in records.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
                r.as_object_mut().map(|r| r.shift_remove("version"));
            }
            records
        };
        for (k, v) in before.as_object().unwrap() {
            if k == "addresses" {
                assert_eq!(
                    unversioned(&after[k.as_str()]),
                    unversioned(v),
                    "{k} of {cidr} after join(split)"
                );
            } else if k != "modifiedat" && k != "version" {
                assert_eq!(&after[k.as_str()], v, "{k} of {cidr} after join(split)");
            }
        }
        assert_eq!(range(&s, a, r).await["subnet"], json!(id.to_string()));
        assert_eq!(
            keys(&s.ok(a, "subnets/get", json!({})).await).last(),
            Some(&id.to_string())
        );
    }
    assert_eq!(keys(&s.ok(a, "subnets/get", json!({})).await).len(), 2);
}

#[tokio::test]
async fn a_forced_join_keeps_only_values_that_fit_the_surviving_definitions() {
    let s = Server::start().await;
    let a = &s.admin;
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24"})).await);
    let c = keys(&s.ok(a, "subnets/split", json!({"id": id, "parts": 2})).await);
    let (low, high): (i64, i64) = (c[0].parse().unwrap(), c[1].parse().unwrap());
    s.ok(
        a,
        "subnets/fields/add",
        json!({"subnet": low, "name": "rack", "type": "number"}),
    )
    .await;
    s.ok(
        a,
        "subnets/fields/add",
        json!({"subnet": high, "name": "rack", "type": "text"}),
    )
    .await;
    let fits = record(&s, a, high, "10.0.0.130", json!({"rack": "12"})).await;
    let misfit = record(&s, a, high, "10.0.0.131", json!({"rack": "top shelf"})).await;
    s.refused(a, "subnets/join", json!({"ids": [low, high]}), "conflict")
        .await;
    s.ok(a, "subnets/join", json!({"ids": [low, high], "force": true}))
        .await;
    // The survivor's definition won: a number field holds numbers only, on every record.
    assert_eq!(address(&s, a, fits).await["fields"], json!({"rack": "12"}));
    let misfit = address(&s, a, misfit).await;
    assert!(misfit["fields"].get("rack").is_none(), "a number field holds {misfit}");
    let fields = s.ok(a, "subnets/fields/get", json!({"subnet": low})).await;
    assert_eq!(only(&fields)["type"], "number");
}

#[tokio::test]
async fn join_gives_arriving_records_the_defaults_of_fields_their_subnet_lacked() {
    let s = Server::start().await;
    let a = &s.admin;
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24"})).await);
    let c = keys(&s.ok(a, "subnets/split", json!({"id": id, "parts": 4})).await);
    let c: Vec<i64> = c.iter().map(|k| k.parse().unwrap()).collect();
    let zone = s
        .ok(
            a,
            "subnets/fields/add",
            json!({"subnet": c[0], "name": "zone", "required": true, "default": "dmz"}),
        )
        .await;
    s.ok(
        a,
        "subnets/fields/add",
        json!({"subnet": c[1], "name": "rack", "default": "r1"}),
    )
    .await;
    let low = record(&s, a, c[0], "10.0.0.1", Value::Null).await;
    let high = record(&s, a, c[1], "10.0.0.65", json!({"rack": "r7"})).await;
    s.ok(a, "subnets/join", json!({"ids": [c[0], c[1]]})).await;
    // A required field holds on every record, also on those that came from a subnet without it.
    assert_eq!(
        address(&s, a, high).await["fields"],
        json!({"zone": "dmz", "rack": "r7"})
    );
    assert_eq!(
        address(&s, a, low).await["fields"],
        json!({"zone": "dmz", "rack": "r1"})
    );
    s.ok(
        a,
        "subnets/fields/edit",
        json!({"id": keys(&zone)[0], "description": "where"}),
    )
    .await;

    // A required field without a default cannot take records that have no value for it, forced or not.
    let owner = json!({"subnet": c[2], "name": "owner", "required": true});
    s.ok(a, "subnets/fields/add", owner).await;
    record(&s, a, c[2], "10.0.0.129", json!({"owner": "ops"})).await;
    record(&s, a, c[3], "10.0.0.193", Value::Null).await;
    let before = state(&s, a).await;
    for force in [false, true] {
        let data = json!({"ids": [c[2], c[3]], "force": force});
        s.refused(a, "subnets/join", data, "conflict").await;
    }
    assert_eq!(state(&s, a).await, before);
}

#[tokio::test]
async fn join_by_id_and_cidr_makes_exactly_that_block_or_names_what_is_missing() {
    let s = Server::start().await;
    let a = &s.admin;
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24"})).await);
    let c = keys(&s.ok(a, "subnets/split", json!({"id": id, "parts": 4})).await);
    s.ok(a, "subnets/massdelete", json!({"ids": [c[2], c[3]]})).await;
    let before = state(&s, a).await;
    // The two lower quarters tile a /25, but the /24 asked for is not there.
    let body = s
        .refused(a, "subnets/join", json!({"id": c[0], "cidr": 24}), "not_contiguous")
        .await;
    assert_eq!(
        body["errorData"],
        json!({"expected": "10.0.0.0/24", "missing": ["10.0.0.128-10.0.0.255"]})
    );
    // A lone member is as incomplete.
    let body = s
        .refused(a, "subnets/join", json!({"id": c[1], "cidr": 23}), "not_contiguous")
        .await;
    assert_eq!(
        body["errorData"],
        json!({"expected": "10.0.0.0/23", "missing": ["10.0.0.128-10.0.1.255"]})
    );
    assert_eq!(state(&s, a).await, before);
    s.ok(a, "subnets/delete", json!({"id": c[1]})).await;
    let body = s
        .refused(a, "subnets/join", json!({"id": c[0], "cidr": 25}), "not_contiguous")
        .await;
    assert_eq!(
        body["errorData"],
        json!({"expected": "10.0.0.0/25", "missing": ["10.0.0.64-10.0.0.127"]})
    );
    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8:0:1::/64"})).await);
    let body = s
        .refused(a, "subnets/join", json!({"id": v6, "cidr": 63}), "not_contiguous")
        .await;
    assert_eq!(
        body["errorData"],
        json!({"expected": "2001:db8::/63", "missing": ["2001:db8::-2001:db8::ffff:ffff:ffff:ffff"]})
    );
    s.ok(a, "subnets/delete", json!({"id": v6})).await;
    // The lowest-addressed member survives even when it is not the oldest.
    let high = id_of(&add(&s, a, json!({"subnet": "10.0.0.64/26", "name": "high"})).await);
    let joined = s.ok(a, "subnets/join", json!({"id": high, "cidr": 25})).await;
    let j = only(&joined);
    assert_eq!(
        [&j["id"], &j["subnet"]],
        [&json!(id.to_string()), &json!("10.0.0.0/25")]
    );
    assert_eq!(j["joined"], json!([high.to_string()]));
}

#[tokio::test]
async fn get_takes_one_selector() {
    let s = Server::start().await;
    let a = &s.admin;
    let g = group(&s, a, "g").await;
    let id = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24"})).await);
    // id or ids with group: which one would win is a guess, so neither does.
    for data in [
        json!({"id": id, "group": g}),
        json!({"ids": [id], "group": g}),
        json!({"ids": [id], "group": 0}),
    ] {
        let body = s.check(a, "subnets/get", data, "invalid_params").await;
        assert!(body["errorData"].get("group").is_some(), "{body}");
    }
}

/// Files a subnet of `who`'s org with `block` straight into the database, as a server without today's block rule
/// may have: what split, join and restore must check.
async fn legacy_subnet(s: &Server, who: &Ident, block: &str) -> i64 {
    let org = s.org_id(who).await;
    s.block_row(org, None, block, 0).await
}

#[tokio::test]
async fn no_path_gives_a_subnet_a_block_that_overlaps_the_ipv4_mapped_addresses() {
    let s = Server::start().await;
    let a = &s.admin;
    let overlaps = |body: &Value| {
        let m = message(body);
        assert!(m.contains("::ffff:0:0/96"), "{body}");
        assert_eq!(body["errorData"], json!({"mapped": "::ffff:0:0/96"}), "{body}");
    };
    // subnets/add, in both forms: holding the mapped addresses is refused like lying inside them.
    for cidr in ["::fffe:0:0/95", "::/64", "::/0", "::/80"] {
        overlaps(
            &s.refused(a, "subnets/add", json!({"subnet": cidr}), "invalid_subnet")
                .await,
        );
    }
    overlaps(
        &s.refused(
            a,
            "subnets/add",
            json!({"network": "::fffe:0:0", "cidr": 95}),
            "invalid_subnet",
        )
        .await,
    );
    // subnets/edit: a block next to them may not grow over them.
    let below = add(&s, a, json!({"subnet": "::fffe:0:0/96"})).await;
    let below = id_of(&below);
    overlaps(
        &s.refused(
            a,
            "subnets/edit",
            json!({"id": below, "subnet": "::fffe:0:0/95"}),
            "invalid_subnet",
        )
        .await,
    );
    // The REST doors onto add and edit.
    let token = s.admin_token.clone();
    let body = json!({"network": "::fffe:0:0", "cidr": 95});
    for (verb, path) in [
        (hyper::Method::POST, "/networks".to_string()),
        (hyper::Method::PUT, format!("/networks/{below}")),
        (hyper::Method::PATCH, format!("/networks/{below}")),
    ] {
        let reply = s.api(verb.clone(), &path, &token, Some(&body)).await;
        assert_eq!(
            (reply.status, &reply.json()["code"]),
            (400, &json!("invalid_subnet")),
            "{verb} {path}"
        );
    }
    assert_eq!(get(&s, a, below).await["subnet"], "::fffe:0:0/96");
    // subnets/split of a block filed before the rule: no child may be one of them.
    let old = legacy_subnet(&s, a, "::fffe:0:0/95").await;
    overlaps(
        &s.refused(a, "subnets/split", json!({"id": old, "cidr": 96}), "invalid_subnet")
            .await,
    );
    overlaps(
        &s.refused(a, "subnets/split", json!({"id": old, "cidr": 97}), "invalid_subnet")
            .await,
    );
    s.ok(a, "subnets/delete", json!({"id": old})).await;
    // subnets/join: two blocks that tile one overlapping them.
    let inside = legacy_subnet(&s, a, "::ffff:0:0/96").await;
    overlaps(
        &s.refused(a, "subnets/join", json!({"ids": [below, inside]}), "invalid_subnet")
            .await,
    );
    // No IPv6 record shares an IPv4 record's address: the ghost of the report never appears.
    add(&s, a, json!({"subnet": "10.0.0.0/24"})).await;
    s.ok(a, "ipaddress/add", json!({"ip": "10.0.0.1"})).await;
    let found = s.ok(a, "ipaddress/get", json!({"ip": "10.0.0.1"})).await;
    assert_eq!(keys(&found).len(), 1, "{found}");
}

#[tokio::test]
async fn a_backup_with_a_block_over_the_ipv4_mapped_addresses_is_not_restored() {
    let s = Server::start().await;
    let a = &s.admin;
    add(&s, a, json!({"subnet": "10.0.0.0/24"})).await;
    let name = s.ok(a, "backups/add", json!({})).await["name"]
        .as_str()
        .unwrap()
        .to_string();
    let file = s.app.settings.backup_dir.join(&name);
    let block: ipnet::IpNet = "::fffe:0:0/95".parse().unwrap();
    let (lo, hi) = ipamd::net::range(&block);
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute(
        "INSERT INTO subnets (org_id, family, net_start, net_end, prefix, created, modifiedat, modby_name)
         VALUES (1, 6, ?1, ?2, 95, 0, 0, 'test')",
        rusqlite::params![&ipamd::net::key_bytes(lo)[..], &ipamd::net::key_bytes(hi)[..]],
    )
    .unwrap();
    conn.execute_batch("PRAGMA journal_mode = DELETE").unwrap();
    drop(conn);
    let before = s.dump(a).await;
    let body = s
        .refused(a, "backups/restore", json!({"name": name}), "invalid_backup")
        .await;
    assert!(message(&body).contains("overlaps ::ffff:0:0/96"), "{body}");
    assert_eq!(s.dump(a).await, before);
}

/// A page of `subnets/get` holds the subnets of that place in the list's order, in that order, whatever order they
/// were made in: the page's ids are chosen first, then their records read and put back in the list's order.
#[tokio::test]
async fn a_page_of_subnets_is_in_the_lists_order_whatever_order_they_were_made_in() {
    let s = Server::start().await;
    let a = &s.admin;
    let made = [
        "10.9.3.0/24",
        "10.9.0.0/24",
        "2001:db8:9::/64",
        "10.9.2.0/24",
        "10.9.1.0/24",
        "10.8.0.0/16",
    ];
    for block in made {
        add(&s, a, json!({"subnet": block})).await;
    }
    let all = s.ok(a, "subnets/get", json!({})).await;
    let order = [
        "10.8.0.0/16",
        "10.9.0.0/24",
        "10.9.1.0/24",
        "10.9.2.0/24",
        "10.9.3.0/24",
        "2001:db8:9::/64",
    ];
    let mut listed = blocks(&all);
    listed.sort_by_key(|b| order.iter().position(|o| o == b));
    assert_eq!(listed, order, "{all}");
    for (page, want) in [(1, &order[..4]), (2, &order[4..])] {
        let found = s.ok(a, "subnets/get", json!({"perpage": 4, "page": page})).await;
        assert_eq!(blocks(&found["subnets"]), want, "page {page}: {found}");
        assert_eq!(found["total"], json!("6"), "{found}");
    }
    let by_id = s
        .ok(a, "subnets/get", json!({"perpage": 4, "page": 1, "order": "id"}))
        .await;
    assert_eq!(blocks(&by_id["subnets"]), made[..4], "{by_id}");
}
