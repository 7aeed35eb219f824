//! `search/ip` and `search/find`: where an address or block lives, with `match`, across groups and families; the
//! text search over groups, subnets and records with limits, kinds and truncation; levels and org isolation.

use serde_json::{json, Value};

use crate::support::{id_of, keys, only, Ident, Server};

/// Adds a subnet as `who`; its id.
async fn subnet(s: &Server, who: &Ident, data: Value) -> i64 {
    id_of(only(&s.ok(who, "subnets/add", data).await))
}

/// Adds a record as `who`; its id.
async fn record(s: &Server, who: &Ident, data: Value) -> i64 {
    id_of(only(&s.ok(who, "ipaddress/add", data).await))
}

/// Adds a group as `who`; its id.
async fn group(s: &Server, who: &Ident, description: &str) -> i64 {
    id_of(only(
        &s.ok(who, "groups/add", json!({"description": description})).await,
    ))
}

/// The ids of a keyed list, as numbers, in order.
fn ids(keyed: &Value) -> Vec<i64> {
    keys(keyed).iter().map(|k| k.parse().unwrap()).collect()
}

/// `(id, match)` of each subnet of a `search/ip` answer, in order.
fn matches(found: &Value) -> Vec<(i64, String)> {
    let subnets = &found["subnets"];
    keys(subnets)
        .iter()
        .map(|k| {
            (
                k.parse().unwrap(),
                subnets[k.as_str()]["match"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn search_ip_finds_subnets_records_and_ranges_of_an_address() {
    let s = Server::start().await;
    let a = &s.admin;
    let g1 = group(&s, a, "site 1").await;
    let g2 = group(&s, a, "site 2").await;
    let wide = subnet(&s, a, json!({"subnet": "10.30.0.0/16", "group": g1})).await;
    let narrow = subnet(&s, a, json!({"subnet": "10.30.1.0/24", "group": g2})).await;
    let twin = subnet(&s, a, json!({"subnet": "10.30.1.0/24"})).await;
    let v6 = subnet(&s, a, json!({"subnet": "2001:db8:30::/64", "group": g1})).await;
    let r1 = record(&s, a, json!({"ip": "10.30.1.5", "subnet": narrow, "hostname": "n"})).await;
    let r2 = record(&s, a, json!({"ip": "10.30.1.5", "subnet": wide})).await;
    record(&s, a, json!({"ip": "10.30.1.6", "subnet": narrow})).await;
    let range = s
        .ok(
            a,
            "dhcpranges/add",
            json!({"subnet": twin, "start_ip": "10.30.1.1", "end_ip": "10.30.1.9"}),
        )
        .await;
    let r6 = record(&s, a, json!({"ip": "2001:db8:30::5"})).await;

    let found = s.ok(a, "search/ip", json!({"ip": "10.30.1.5"})).await;
    let subnets: Vec<i64> = matches(&found).iter().map(|m| m.0).collect();
    assert_eq!(subnets, [narrow, twin, wide], "most specific first");
    assert!(matches(&found).iter().all(|m| m.1 == "contains"));
    let sub = &found["subnets"][narrow.to_string().as_str()];
    assert_eq!(
        (sub["subnet"].as_str(), sub["used_hosts"].as_str()),
        (Some("10.30.1.0/24"), Some("2"))
    );
    // By address, then by subnet id.
    assert_eq!(ids(&found["addresses"]), [r2, r1]);
    assert_eq!(found["addresses"][r1.to_string().as_str()]["hostname"], "n");
    assert_eq!(keys(&found["dhcpranges"]), keys(&range));

    // `group` keeps the direct members of one group; 0 means the top level.
    let g = s.ok(a, "search/ip", json!({"ip": "10.30.1.5", "group": g2})).await;
    assert_eq!(ids(&g["subnets"]), [narrow]);
    assert_eq!(ids(&g["addresses"]), [r1]);
    assert_eq!(g["dhcpranges"], json!([]));
    let top = s.ok(a, "search/ip", json!({"ip": "10.30.1.5", "group": 0})).await;
    assert_eq!((ids(&top["subnets"]), ids(&top["addresses"])), (vec![twin], vec![]));
    assert_eq!(keys(&top["dhcpranges"]), keys(&range));

    let found = s.ok(a, "search/ip", json!({"ip": "2001:DB8:30:0::5"})).await;
    assert_eq!((ids(&found["subnets"]), ids(&found["addresses"])), (vec![v6], vec![r6]));
    // An address nobody manages: nothing, not an error.
    let none = s.ok(a, "search/ip", json!({"ip": "192.0.2.1"})).await;
    assert_eq!(none, json!({"subnets": [], "addresses": [], "dhcpranges": []}));

    for bad in [
        json!({}),
        json!({"ip": "10.30.1"}),
        json!({"ip": "10.30.1.0/33"}),
        json!({"ip": "x", "group": 1}),
    ] {
        s.check(a, "search/ip", bad, "invalid_params").await;
    }
    s.check(a, "search/ip", json!({"ip": "10.30.1.5", "group": 9999}), "not_found")
        .await;
}

#[tokio::test]
async fn search_ip_with_a_cidr_reports_how_each_subnet_matches() {
    let s = Server::start().await;
    let a = &s.admin;
    let g = group(&s, a, "lab").await;
    let g3 = group(&s, a, "bench").await;
    let big = subnet(&s, a, json!({"subnet": "10.0.0.0/8"})).await;
    let equal = subnet(&s, a, json!({"subnet": "10.31.0.0/16", "group": g})).await;
    let inner = subnet(&s, a, json!({"subnet": "10.31.7.0/24", "group": g3})).await;
    let outside = subnet(&s, a, json!({"subnet": "10.32.0.0/24", "group": g})).await;
    let v6 = subnet(&s, a, json!({"subnet": "2001:db8:31::/48"})).await;
    let v6in = subnet(&s, a, json!({"subnet": "2001:db8:31:5::/64", "group": g})).await;
    let r_in = record(&s, a, json!({"ip": "10.31.7.7", "subnet": inner})).await;
    let r_eq = record(&s, a, json!({"ip": "10.31.200.1", "subnet": equal})).await;
    record(&s, a, json!({"ip": "10.32.0.1", "subnet": outside})).await;
    let r6 = record(&s, a, json!({"ip": "2001:db8:31:5::1"})).await;

    let found = s.ok(a, "search/ip", json!({"ip": "10.31.0.0/16"})).await;
    let expect = vec![
        (big, "contains".to_string()),
        (equal, "equal".into()),
        (inner, "within".into()),
    ];
    assert_eq!(matches(&found), expect);
    assert_eq!(ids(&found["addresses"]), [r_in, r_eq]);
    assert!(!ids(&found["subnets"]).contains(&outside));
    // Host bits in the query are forgiven: the block is searched.
    assert_eq!(s.ok(a, "search/ip", json!({"ip": "10.31.9.9/16"})).await, found);
    let lab = s.ok(a, "search/ip", json!({"ip": "10.31.0.0/16", "group": g})).await;
    assert_eq!(matches(&lab), [(equal, "equal".to_string())]);
    assert_eq!(ids(&lab["addresses"]), [r_eq]);

    let found = s.ok(a, "search/ip", json!({"ip": "2001:db8:31::/56"})).await;
    assert_eq!(matches(&found), [(v6, "contains".to_string()), (v6in, "within".into())]);
    assert_eq!(ids(&found["addresses"]), [r6]);
    // Families never mix: ::/0 holds no IPv4 subnet or record.
    let all6 = s.ok(a, "search/ip", json!({"ip": "::/0"})).await;
    assert_eq!(
        (ids(&all6["subnets"]), ids(&all6["addresses"])),
        (vec![v6, v6in], vec![r6])
    );
    let all4 = s.ok(a, "search/ip", json!({"ip": "0.0.0.0/0"})).await;
    assert_eq!(ids(&all4["subnets"]).len(), 4);
    assert_eq!(ids(&all4["addresses"]).len(), 3);
}

#[tokio::test]
async fn search_find_matches_text_case_insensitively() {
    let s = Server::start().await;
    let a = &s.admin;
    let g = group(&s, a, "Berlin Office").await;
    group(&s, a, "Paris").await;
    let s1 = subnet(
        &s,
        a,
        json!({"subnet": "10.40.0.0/24", "name": "berlin-lan", "group": g}),
    )
    .await;
    let s2 = subnet(&s, a, json!({"subnet": "10.40.1.0/24", "description": "Printers"})).await;
    let s3 = subnet(
        &s,
        a,
        json!({"subnet": "2001:db8:40::/64", "domain": "corp.example", "location": "BERLIN dc"}),
    )
    .await;
    s.ok(a, "subnets/fields/add", json!({"subnet": s2, "name": "asset"}))
        .await;
    let h1 = record(&s, a, json!({"ip": "10.40.0.5", "hostname": "Berlin-FW"})).await;
    let h2 = record(&s, a, json!({"ip": "10.40.1.5", "cname": "print.berlin.example"})).await;
    let h3 = record(&s, a, json!({"ip": "10.40.1.6", "fields": {"asset": "TAG-berlin-77"}})).await;
    let h4 = record(
        &s,
        a,
        json!({"ip": "2001:db8:40::6", "description": "in berlin", "mac_address": "00:11:22:33:44:55"}),
    )
    .await;
    record(&s, a, json!({"ip": "10.40.1.7", "hostname": "paris-fw"})).await;

    let found = s.ok(a, "search/find", json!({"query": "BERLIN"})).await;
    assert_eq!(ids(&found["groups"]), [g]);
    assert_eq!(ids(&found["subnets"]), [s1, s3]);
    assert_eq!(ids(&found["addresses"]), [h1, h2, h3, h4]);
    assert_eq!(found["truncated"], "false");
    let rec = &found["addresses"][h3.to_string().as_str()];
    assert_eq!(rec["fields"], json!({"asset": "TAG-berlin-77"}));
    assert_eq!(found["subnets"][s1.to_string().as_str()]["subnet"], "10.40.0.0/24");

    // MACs: by substring, and by a whole address in any accepted spelling.
    let mac = s.ok(a, "search/find", json!({"query": "33:44"})).await;
    assert_eq!(ids(&mac["addresses"]), [h4]);
    let mac = s.ok(a, "search/find", json!({"query": "0011.2233.4455"})).await;
    assert_eq!(ids(&mac["addresses"]), [h4]);
    assert_eq!(
        ids(&s.ok(a, "search/find", json!({"query": "printers"})).await["subnets"]),
        [s2]
    );
    // `%` and `_` are plain characters.
    for literal in ["%", "_", "berlin%", "b_rlin"] {
        let none = s.ok(a, "search/find", json!({"query": literal})).await;
        assert_eq!(
            (&none["groups"], &none["subnets"], &none["addresses"]),
            (&json!([]), &json!([]), &json!([])),
            "{literal}"
        );
    }

    // types and limit.
    let only_groups = s
        .ok(a, "search/find", json!({"query": "berlin", "types": "groups"}))
        .await;
    assert_eq!(
        (ids(&only_groups["groups"]), &only_groups["subnets"]),
        (vec![g], &json!([]))
    );
    let two = s
        .ok(
            a,
            "search/find",
            json!({"query": "berlin", "types": ["subnets", "addresses"], "limit": 2}),
        )
        .await;
    assert_eq!(
        (ids(&two["subnets"]), ids(&two["addresses"])),
        (vec![s1, s3], vec![h1, h2])
    );
    assert_eq!((&two["groups"], &two["truncated"]), (&json!([]), &json!("true")));
    let exact = s
        .ok(
            a,
            "search/find",
            json!({"query": "berlin", "types": ["addresses"], "limit": "4"}),
        )
        .await;
    assert_eq!(exact["truncated"], "false");

    // An address or a CIDR also finds where it lives, first.
    let by_ip = s.ok(a, "search/find", json!({"query": "10.40.1.6"})).await;
    assert_eq!((ids(&by_ip["subnets"]), ids(&by_ip["addresses"])), (vec![s2], vec![h3]));
    assert_eq!(by_ip["subnets"][s2.to_string().as_str()]["match"], "contains");
    let by_cidr = s.ok(a, "search/find", json!({"query": "10.40.0.0/23"})).await;
    assert_eq!(ids(&by_cidr["subnets"]), [s1, s2]);
    assert_eq!(ids(&by_cidr["addresses"]).len(), 4);

    for bad in [
        json!({}),
        json!({"query": ""}),
        json!({"query": "   "}),
        json!({"query": "x", "limit": 0}),
        json!({"query": "x", "limit": 1001}),
        json!({"query": "x", "types": ["racks"]}),
        json!({"query": "x", "types": []}),
        json!({"query": "x", "type": "groups"}),
    ] {
        s.check(a, "search/find", bad, "invalid_params").await;
    }
    s.ok(a, "search/find", json!({"query": "x", "limit": 1000})).await;
}

#[tokio::test]
async fn searches_see_only_the_callers_org_at_any_level() {
    let s = Server::start().await;
    let a = &s.admin;
    let ro = s.user(a, "reader", "readonly").await;
    let b = s.org("other").await;
    let g = group(&s, a, "secret site").await;
    let sub = subnet(
        &s,
        a,
        json!({"subnet": "10.50.0.0/24", "name": "secret lan", "group": g}),
    )
    .await;
    let r = record(&s, a, json!({"ip": "10.50.0.5", "hostname": "secret-host"})).await;
    s.ok(
        a,
        "dhcpranges/add",
        json!({"subnet": sub, "start_ip": "10.50.0.100", "end_ip": "10.50.0.110"}),
    )
    .await;

    let mine = s.ok(&ro, "search/find", json!({"query": "secret"})).await;
    assert_eq!(
        (ids(&mine["groups"]), ids(&mine["subnets"]), ids(&mine["addresses"])),
        (vec![g], vec![sub], vec![r])
    );
    let mine = s.ok(&ro, "search/ip", json!({"ip": "10.50.0.105"})).await;
    assert_eq!(keys(&mine["dhcpranges"]).len(), 1);

    let empty = json!({"groups": [], "subnets": [], "addresses": [], "truncated": "false"});
    assert_eq!(s.ok(&b, "search/find", json!({"query": "secret"})).await, empty);
    assert_eq!(s.ok(&b, "search/find", json!({"query": "10.50.0.5"})).await, empty);
    let nothing = json!({"subnets": [], "addresses": [], "dhcpranges": []});
    assert_eq!(s.ok(&b, "search/ip", json!({"ip": "10.50.0.105"})).await, nothing);
    assert_eq!(s.ok(&b, "search/ip", json!({"ip": "10.0.0.0/8"})).await, nothing);
    s.check(&b, "search/ip", json!({"ip": "10.50.0.5", "group": g}), "not_found")
        .await;
}

#[tokio::test]
async fn search_ip_with_status_says_what_one_address_is() {
    let s = Server::start().await;
    let a = &s.admin;
    let g1 = group(&s, a, "site 1").await;
    let g2 = group(&s, a, "site 2").await;
    let wide = subnet(&s, a, json!({"subnet": "10.60.0.0/16", "group": g1})).await;
    let narrow = subnet(&s, a, json!({"subnet": "10.60.1.0/24", "group": g2})).await;
    let v6 = subnet(&s, a, json!({"subnet": "2001:db8:60::/64"})).await;
    let status = |ip: &'static str| {
        let s = &s;
        async move { s.ok(&s.admin, "search/ip", json!({"ip": ip, "status": true})).await }
    };

    // No record: the most specific subnet answers.
    let free = status("10.60.1.7").await;
    assert_eq!(
        (&free["status"], &free["matches"], &free["network"]["id"]),
        (&json!("available"), &json!("2"), &json!(narrow.to_string()))
    );
    assert_eq!(free["ip"], "10.60.1.7");
    // A record in the wider subnet: that one answers.
    let host = only(
        &s.ok(
            a,
            "ipaddress/add",
            json!({"ip": "10.60.1.7", "subnet": wide, "hostname": "h"}),
        )
        .await,
    )
    .clone();
    let held = status("10.60.1.7").await;
    assert_eq!(
        (&held["status"], &held["network"]["id"]),
        (&json!("assigned"), &json!(wide.to_string()))
    );
    assert_eq!(held["host"], host);
    // With field values, the host carries them as ipaddress/get gives them.
    s.ok(a, "subnets/fields/add", json!({"subnet": wide, "name": "rack"}))
        .await;
    s.ok(
        a,
        "ipaddress/edit",
        json!({"id": id_of(&host), "fields": {"rack": "r7"}}),
    )
    .await;
    let with_fields = status("10.60.1.7").await;
    let got = s.ok(a, "ipaddress/get", json!({"id": id_of(&host)})).await;
    assert_eq!(with_fields["host"]["fields"], json!({"rack": "r7"}));
    assert_eq!(&with_fields["host"], only(&got));
    // `brief` leaves the subnet's record out beside a host, and only there, and the host's stamps.
    let brief = |ip: &'static str| {
        let s = &s;
        async move {
            s.ok(&s.admin, "search/ip", json!({"ip": ip, "status": true, "brief": true}))
                .await
        }
    };
    let mut short = with_fields.clone();
    short.as_object_mut().unwrap().shift_remove("network");
    for stamp in [
        "userid",
        "modifiedat",
        "user",
        "email",
        "realname",
        "created",
        "version",
    ] {
        short["host"].as_object_mut().unwrap().shift_remove(stamp).unwrap();
    }
    assert_eq!(brief("10.60.1.7").await, short);
    assert_eq!(brief("10.60.1.8").await, status("10.60.1.8").await);
    s.check(
        a,
        "search/ip",
        json!({"ip": "10.60.1.7", "brief": true}),
        "invalid_params",
    )
    .await;
    // The answering subnet is its record as subnets/get gives it, with `match`.
    let mut wide_record = only(&s.ok(a, "subnets/get", json!({"id": wide})).await).clone();
    wide_record["match"] = json!("contains");
    assert_eq!(held["network"], wide_record);
    // Limited to group 2, the record in group 1's subnet is out of sight.
    let in_g2 = s
        .ok(a, "search/ip", json!({"ip": "10.60.1.7", "status": true, "group": g2}))
        .await;
    assert_eq!(
        (&in_g2["status"], &in_g2["matches"], &in_g2["network"]["id"]),
        (&json!("available"), &json!("1"), &json!(narrow.to_string()))
    );
    // Unusable, DHCP (active only), unmanaged.
    assert_eq!(status("10.60.1.255").await["status"], "unusable");
    assert_eq!(status("10.60.0.0").await["status"], "unusable");
    assert_eq!(status("2001:db8:60::").await["status"], "unusable");
    assert_eq!(status("2001:db8:60::1").await["network"]["id"], json!(v6.to_string()));
    let range = s
        .ok(
            a,
            "dhcpranges/add",
            json!({"subnet": narrow, "start_ip": "10.60.1.100", "end_ip": "10.60.1.110"}),
        )
        .await;
    let dhcp = status("10.60.1.105").await;
    assert_eq!((&dhcp["status"], &dhcp["dhcp_range"]), (&json!("dhcp"), only(&range)));
    s.ok(
        a,
        "dhcpranges/edit",
        json!({"id": id_of(only(&range)), "is_active": false}),
    )
    .await;
    assert_eq!(status("10.60.1.105").await["status"], "available");
    let none = status("192.0.2.1").await;
    assert_eq!(none, json!({"ip": "192.0.2.1", "matches": "0", "status": "unmanaged"}));
    s.check(
        a,
        "search/ip",
        json!({"ip": "10.60.1.0/24", "status": true}),
        "invalid_params",
    )
    .await;
}

/// `search/ip` seeks only the prefix lengths an org uses (`subnet_prefixes`, kept by triggers). Whatever the mix of
/// lengths, groups and nesting, and after adds, splits, joins and deletes change which lengths are in use, its
/// subnets are exactly those a brute-force containment/overlap check over every subnet finds.
#[tokio::test]
async fn search_ip_finds_exactly_the_overlapping_subnets_as_prefix_lengths_come_and_go() {
    use ipnet::IpNet;
    let s = Server::start().await;
    let a = &s.admin;
    let g1 = group(&s, a, "one").await;
    let g2 = group(&s, a, "two").await;
    let g3 = group(&s, a, "three").await;
    let g4 = group(&s, a, "four").await;
    let mut live: Vec<(i64, IpNet)> = Vec::new();
    // Subnets of one group never overlap; across groups they nest.
    for (block, g) in [
        ("10.40.0.0/16", g1),
        ("10.40.0.0/24", g2),
        ("10.40.0.0/30", g3),
        ("10.40.7.0/24", g3),
        ("10.40.7.128/25", g2),
        ("10.41.0.0/16", g2),
        ("10.0.0.0/8", g4),
        ("2001:db8:40::/48", g1),
        ("2001:db8:40::/64", g2),
        ("2001:db8:40:0:8000::/65", g3),
    ] {
        live.push((
            subnet(&s, a, json!({"subnet": block, "group": g})).await,
            block.parse().unwrap(),
        ));
    }
    // Another org's subnets are in the table too, under its own org id.
    let other = s.org("prefixes-other").await;
    subnet(&s, &other, json!({"subnet": "10.40.0.0/20"})).await;

    let probes = [
        "10.40.0.0",
        "10.40.0.2",
        "10.40.0.3",
        "10.40.0.4",
        "10.40.7.1",
        "10.40.7.200",
        "10.40.255.255",
        "10.41.3.3",
        "10.99.0.1",
        "11.0.0.1",
        "10.40.0.0/22",
        "10.40.7.0/24",
        "10.40.0.0/16",
        "10.0.0.0/8",
        "10.40.7.128/26",
        "2001:db8:40::1",
        "2001:db8:40:0:8000::1",
        "2001:db8:40:1::1",
        "2001:db8:40::/56",
        "2001:db8:41::1",
    ];
    async fn check(s: &Server, a: &crate::support::Ident, live: &[(i64, IpNet)], probes: &[&str], when: &str) {
        for q in probes {
            let found = s.ok(a, "search/ip", json!({"ip": q})).await;
            let mut got = ids(&found["subnets"]);
            got.sort_unstable();
            let probe: IpNet = match q.parse() {
                Ok(n) => n,
                Err(_) => IpNet::from(q.parse::<std::net::IpAddr>().unwrap()),
            };
            let mut want: Vec<i64> = live
                .iter()
                .filter(|(_, n)| {
                    (n.contains(&probe.network()) || probe.contains(&n.network()))
                        && matches!((n, probe), (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_)))
                })
                .map(|(id, _)| *id)
                .collect();
            want.sort_unstable();
            assert_eq!(got, want, "search/ip {q} {when}");
            if q.contains('/') {
                continue;
            }
            // With `status` (one statement, see `subnets::holders`): the same count, and no record being there,
            // the most specific subnet answers (then the lowest id).
            let status = s.ok(a, "search/ip", json!({"ip": q, "status": true})).await;
            assert_eq!(status["matches"], json!(want.len().to_string()), "status {q} {when}");
            let answering = live
                .iter()
                .filter(|(id, _)| want.contains(id))
                .min_by_key(|(id, n)| (std::cmp::Reverse(n.prefix_len()), *id))
                .map(|(id, _)| json!(id.to_string()));
            assert_eq!(status["network"].get("id").cloned(), answering, "status {q} {when}");
        }
        s.assert_prefixes_derived().await;
    }
    check(&s, a, &live, &probes, "after the adds").await;

    // Split the /8 into two /9s: the /8 length leaves, /9 arrives.
    let split = s.ok(a, "subnets/split", json!({"id": live[6].0, "parts": 2})).await;
    live.remove(6);
    for k in keys(&split) {
        live.push((
            k.parse().unwrap(),
            split[k.as_str()]["subnet"].as_str().unwrap().parse().unwrap(),
        ));
    }
    check(&s, a, &live, &probes, "after the split").await;
    // Delete the only /30 and the only /65: their lengths leave.
    for at in [8, 2] {
        s.ok(a, "subnets/delete", json!({"id": live[at].0})).await;
        live.remove(at);
    }
    check(&s, a, &live, &probes, "after the deletes").await;
    // Join the two /9s back into the /8.
    let nine: Vec<i64> = live
        .iter()
        .filter(|(_, n)| n.prefix_len() == 9)
        .map(|(id, _)| *id)
        .collect();
    let joined = s.ok(a, "subnets/join", json!({"ids": nine})).await;
    live.retain(|(_, n)| n.prefix_len() != 9);
    let j = only(&joined);
    live.push((id_of(j), j["subnet"].as_str().unwrap().parse().unwrap()));
    check(&s, a, &live, &probes, "after the join").await;
}

/// A search answers at most `limit` records of each kind and says when there were more, and its work does not grow
/// with the org: the SQLite steps of each `limit: 1` call stay the same from 100 records to 5,000 (on the old code,
/// which loaded every record of the block before cutting, they grew fiftyfold).
#[tokio::test]
async fn searches_are_bounded_by_their_limit_in_work() {
    let s = Server::start().await;
    // The work is counted in SQLite's virtual machine steps.
    if s.sqlite_file().is_none() {
        return;
    }
    let admin = s.admin.clone();
    let org = s.org_id(&admin).await;
    let sub = subnet(&s, &admin, json!({"subnet": "10.0.0.0/16", "name": "seeded"})).await;
    for i in 0..3 {
        subnet(&s, &admin, json!({"subnet": format!("10.1.{i}.0/24")})).await;
    }
    s.seed_records(sub, 0x0a00_0000, 1, 100).await;
    let calls = [
        (
            "search/find",
            json!({"query": "10.0.0.0/8", "limit": 1, "types": "addresses"}),
        ),
        (
            "search/find",
            json!({"query": "10.0.0.0/8", "limit": 1, "types": ["subnets"]}),
        ),
        ("search/find", json!({"query": "10.0.0.0/8", "limit": 1})),
        (
            "search/find",
            json!({"query": "seed-", "limit": 1, "types": "addresses"}),
        ),
        ("search/ip", json!({"ip": "10.0.0.0/8", "limit": 1})),
    ];
    let mut small = Vec::new();
    for (method, data) in &calls {
        small.push(s.steps(org, method, data.clone()).await.1);
    }
    s.seed_records(sub, 0x0a00_0000, 101, 4900).await;
    for ((method, data), before) in calls.iter().zip(small) {
        let (reply, after) = s.steps(org, method, data.clone()).await;
        assert!(
            after <= before * 2 + 2000,
            "{method} {data}: {before} steps at 100 records, {after} at 5,000"
        );
        {
            assert_eq!(reply["truncated"], json!(true), "{method} {data}: {reply}");
            for kind in ["groups", "subnets", "addresses", "dhcpranges"] {
                let n = reply.get(kind).and_then(Value::as_array).map_or(0, Vec::len);
                assert!(n <= 1, "{method} {data}: {n} {kind}");
            }
        }
    }
}

/// Through the server: `search/find` and `search/ip` answer `limit` records and `truncated`; `search/ip` within its
/// limit answers as before, without `truncated`; its `limit` is refused with `status` and past 1000.
#[tokio::test]
async fn searches_answer_limit_records_and_say_there_are_more() {
    let s = Server::start().await;
    let admin = s.admin.clone();
    let sub = subnet(&s, &admin, json!({"subnet": "10.0.0.0/24"})).await;
    subnet(&s, &admin, json!({"subnet": "10.0.1.0/24"})).await;
    s.seed_records(sub, 0x0a00_0000, 1, 20).await;

    let found = s
        .ok(&admin, "search/find", json!({"query": "10.0.0.0/8", "limit": 2}))
        .await;
    assert_eq!(keys(&found["addresses"]).len(), 2, "{found}");
    assert_eq!(keys(&found["subnets"]).len(), 2, "{found}");
    assert_eq!(found["truncated"], json!("true"));

    let found = s.ok(&admin, "search/ip", json!({"ip": "10.0.0.0/8", "limit": 3})).await;
    assert_eq!(keys(&found["addresses"]).len(), 3, "{found}");
    assert_eq!(ids(&found["subnets"]).len(), 2);
    assert_eq!(found["truncated"], json!("true"));
    let first = s.ok(&admin, "search/ip", json!({"ip": "10.0.0.0/8"})).await;
    assert_eq!(keys(&first["addresses"]).len(), 20);
    assert!(first.get("truncated").is_none(), "unchanged within the limit: {first}");
    assert_eq!(
        keys(&first["addresses"])[..3],
        keys(&found["addresses"])[..],
        "the first of the same order"
    );

    s.check(
        &admin,
        "search/ip",
        json!({"ip": "10.0.0.1", "status": true, "limit": 1}),
        "invalid_params",
    )
    .await;
    s.check(
        &admin,
        "search/ip",
        json!({"ip": "10.0.0.0/8", "limit": 1001}),
        "invalid_params",
    )
    .await;
}

/// On PostgreSQL, `search/find` asks each column's trigram index without the query's words that are common there
/// (by ANALYZE's statistics of its trigrams) and checks the whole query on the candidates: the answers stay those of
/// a substring match, case-insensitive, when the index pattern is the query less a common word (`%-123%` for
/// `seed-123`, which `other-1234` matches and the query does not), when no word is left (the whole pattern), and
/// when the query holds `%` or `_`.
#[tokio::test]
async fn search_find_on_postgresql_leaves_common_words_out_of_the_index_and_answers_the_same() {
    let Some(s) = Server::start_postgres().await else {
        return;
    };
    let a = s.admin.clone();
    let seeded = subnet(&s, &a, json!({"subnet": "10.0.0.0/16"})).await;
    s.seed_records(seeded, 0x0a00_0000, 1, 2000).await;
    subnet(&s, &a, json!({"subnet": "10.1.0.0/24", "name": "lab_1"})).await;
    subnet(&s, &a, json!({"subnet": "10.1.1.0/24", "name": "labx1"})).await;
    let mut others = Vec::new();
    for (ip, hostname) in [
        ("10.1.0.1", "other-1234"),
        ("10.1.0.2", "XSEED-1235"),
        ("10.1.0.3", "seed_7x"),
        ("10.1.0.4", "seed%7y"),
    ] {
        others.push(hostname);
        record(&s, &a, json!({"ip": ip, "hostname": hostname})).await;
    }
    // As autovacuum does after such an insert; the test means nothing unless `see` is then common.
    let url = s.app.settings.db.to_str().unwrap().to_string();
    let common: i64 = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                client.batch_execute("ANALYZE addresses").unwrap();
                client
                    .query_one(
                        "SELECT count(*) FROM pg_stats_ext_exprs x,
                         unnest(CAST(CAST(x.most_common_elems AS TEXT) AS TEXT[]), x.most_common_elem_freqs) e(t, f)
                         WHERE x.statistics_name = 'addresses_hostname_trgms' AND e.t = 'see' AND e.f >= 0.5",
                        &[],
                    )
                    .unwrap()
                    .get(0)
            })
            .join()
            .unwrap()
    });
    assert_eq!(common, 1, "the statistics of the hostnames' trigrams");

    let all: Vec<String> = (1..=2000)
        .map(|i| format!("seed-{i}"))
        .chain(others.iter().map(|h| h.to_string()))
        .collect();
    for query in [
        "seed-123",
        "SEED-1999",
        "d-77",
        "eed-7",
        "seed-18",
        "seed_7",
        "seed%7",
        "ED-19",
        "zzz",
    ] {
        let found = s
            .ok(
                &a,
                "search/find",
                json!({"query": query, "limit": 1000, "types": ["addresses"]}),
            )
            .await;
        let mut got: Vec<String> = keys(&found["addresses"])
            .iter()
            .map(|k| found["addresses"][k.as_str()]["hostname"].as_str().unwrap().to_string())
            .collect();
        got.sort();
        let mut want: Vec<String> = all
            .iter()
            .filter(|h| h.to_lowercase().contains(&query.to_lowercase()))
            .cloned()
            .collect();
        want.sort();
        assert_eq!(got, want, "search/find {query}");
    }
    let found = s
        .ok(&a, "search/find", json!({"query": "b_1", "types": ["subnets"]}))
        .await;
    assert_eq!(keys(&found["subnets"]).len(), 1, "{found}");
}
