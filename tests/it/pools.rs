//! Pools (container subnets) and bulk allocation: `subnets/add` with `pool` and `parent`, `subnets/available`, the
//! allocation of a free block by prefix length and its strategies, the hierarchy kept through edit, split, join and
//! delete, where an address lives among pools, and `ipaddress/add` with `count` — through both doors, with
//! concurrent clients for both kinds of allocation.

use std::collections::HashSet;
use std::sync::Arc;

use hyper::Method;
use ipnet::IpNet;
use serde_json::{json, Value};

use crate::support::{id_of, only, Ident, Server};

/// Adds a subnet as `who`; its record.
async fn add(s: &Server, who: &Ident, data: Value) -> Value {
    only(&s.ok(who, "subnets/add", data).await).clone()
}

/// One subnet as `who` sees it.
async fn get(s: &Server, who: &Ident, id: i64) -> Value {
    only(&s.ok(who, "subnets/get", json!({"id": id})).await).clone()
}

/// The blocks of `subnets/available` for a pool.
async fn free(s: &Server, who: &Ident, data: Value) -> Value {
    s.ok(who, "subnets/available", data).await
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_pool_holds_children_and_shows_the_space_they_cover() {
    let s = Server::start().await;
    let a = &s.admin;
    let pool = add(&s, a, json!({"subnet": "10.0.0.0/16", "pool": true, "name": "site"})).await;
    let pool_id = id_of(&pool);
    assert_eq!(pool["pool"], "true");
    assert_eq!(pool["covered"], "0");
    assert_eq!(pool["children"], "0");
    let child = add(&s, a, json!({"subnet": "10.0.4.0/22", "parent": pool_id})).await;
    assert_eq!(child["parent"], pool_id.to_string());
    assert_eq!(child["pool"], "false");
    assert!(child.get("covered").is_none());
    let p = get(&s, a, pool_id).await;
    assert_eq!(p["covered"], "1024");
    assert_eq!(p["children"], "1");
    // A child lies strictly inside its pool, and siblings do not overlap.
    s.refused(
        a,
        "subnets/add",
        json!({"subnet": "10.1.0.0/24", "parent": pool_id}),
        "invalid_subnet",
    )
    .await;
    s.refused(
        a,
        "subnets/add",
        json!({"subnet": "10.0.0.0/16", "parent": pool_id}),
        "invalid_subnet",
    )
    .await;
    let e = s
        .refused(
            a,
            "subnets/add",
            json!({"subnet": "10.0.5.0/24", "parent": pool_id}),
            "overlap",
        )
        .await;
    assert!(e["errorData"].get(child["id"].as_str().unwrap()).is_some(), "{e}");
    // A plain subnet in the pool's group still may not overlap the pool.
    s.refused(a, "subnets/add", json!({"subnet": "10.0.8.0/24"}), "overlap")
        .await;
    // The parent must be a pool of the org.
    let plain = id_of(&add(&s, a, json!({"subnet": "192.168.0.0/24"})).await);
    s.refused(
        a,
        "subnets/add",
        json!({"subnet": "192.168.0.0/25", "parent": plain}),
        "invalid_params",
    )
    .await;
    // A pool holds no address records nor DHCP ranges; an address in a child is filed in the child.
    s.refused(a, "ipaddress/add", json!({"subnet": pool_id}), "invalid_subnet")
        .await;
    s.refused(
        a,
        "dhcpranges/add",
        json!({"subnet": pool_id, "start_ip": "10.0.9.1", "end_ip": "10.0.9.9"}),
        "invalid_subnet",
    )
    .await;
    let host = only(&s.ok(a, "ipaddress/add", json!({"ip": "10.0.4.7"})).await).clone();
    assert_eq!(host["subnet"], child["id"]);
    s.refused(a, "ipaddress/add", json!({"ip": "10.0.9.7"}), "not_found")
        .await;
    // Another org sees neither.
    let other = s.org("pools-other").await;
    s.refused(
        &other,
        "subnets/add",
        json!({"subnet": "10.0.200.0/24", "parent": pool_id}),
        "not_found",
    )
    .await;
    s.refused(&other, "subnets/available", json!({"id": pool_id}), "not_found")
        .await;
}

#[tokio::test]
async fn children_nest_to_any_depth_and_the_tree_shows_them() {
    let s = Server::start().await;
    let a = &s.admin;
    let g = id_of(only(&s.ok(a, "groups/add", json!({"description": "dc"})).await));
    let top = id_of(&add(&s, a, json!({"subnet": "2001:db8::/32", "pool": true, "group": g})).await);
    let mid = add(
        &s,
        a,
        json!({"subnet": "2001:db8:100::/40", "pool": true, "parent": top}),
    )
    .await;
    // A child takes its pool's group, and may not name another.
    assert_eq!(mid["group"], g.to_string());
    s.refused(
        a,
        "subnets/add",
        json!({"subnet": "2001:db8:200::/40", "parent": top, "group": 0}),
        "invalid_params",
    )
    .await;
    let mid = id_of(&mid);
    let leaf = id_of(&add(&s, a, json!({"subnet": "2001:db8:100::/64", "parent": mid})).await);
    let tree = get_tree(&s, a, top).await;
    let mid_rec = &tree["subnets"][mid.to_string()];
    assert_eq!(mid_rec["subnet"], "2001:db8:100::/40");
    assert_eq!(mid_rec["subnets"][leaf.to_string()]["subnet"], "2001:db8:100::/64");
    let leaf_tree = get_tree(&s, a, leaf).await;
    let chain: Vec<&str> = leaf_tree["pools"]
        .as_object()
        .map(|m| m.values().map(|p| p["subnet"].as_str().unwrap()).collect())
        .unwrap_or_else(|| {
            leaf_tree["pools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["subnet"].as_str().unwrap())
                .collect()
        });
    assert_eq!(chain, ["2001:db8:100::/40", "2001:db8::/32"]);
    // Exact for IPv6: a /40 of a /32 covers 2^88 addresses.
    assert_eq!(get(&s, a, top).await["covered"], (1u128 << 88).to_string());
    // The children of one pool, a page at a time.
    let kids = s.ok(a, "subnets/get", json!({"parent": top})).await;
    assert_eq!(kids.as_object().unwrap().len(), 1);
    // Where an address lives: the most specific subnet and its pools.
    let st = s
        .ok(a, "search/ip", json!({"ip": "2001:db8:100::5", "status": true}))
        .await;
    assert_eq!(st["network"]["id"], leaf.to_string());
    let r = s
        .api(Method::GET, "/ip/2001:db8:100::5", &s.admin_token, None)
        .await
        .json();
    assert_eq!(r["status"], "available");
    assert_eq!(r["network"]["id"], leaf);
    assert_eq!(
        r["pools"],
        json!([{"id": mid, "network": "2001:db8:100::/40"}, {"id": top, "network": "2001:db8::/32"}])
    );
    let r = s
        .api(Method::GET, "/ip/2001:db8:ff::1", &s.admin_token, None)
        .await
        .json();
    assert_eq!(r["status"], "unmanaged");
    assert_eq!(r["pools"], json!([{"id": top, "network": "2001:db8::/32"}]));
}

async fn get_tree(s: &Server, who: &Ident, id: i64) -> Value {
    only(&s.ok(who, "subnets/get", json!({"id": id, "tree": true})).await).clone()
}

#[tokio::test]
async fn available_lists_the_largest_aligned_free_blocks_and_counts_them_exactly() {
    let s = Server::start().await;
    let a = &s.admin;
    let pool = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/16", "pool": true})).await);
    add(&s, a, json!({"subnet": "10.0.1.0/24", "parent": pool})).await;
    let f = free(&s, a, json!({"id": pool})).await;
    assert_eq!(
        strings(&f["blocks"]),
        [
            "10.0.0.0/24",
            "10.0.2.0/23",
            "10.0.4.0/22",
            "10.0.8.0/21",
            "10.0.16.0/20",
            "10.0.32.0/19",
            "10.0.64.0/18",
            "10.0.128.0/17"
        ]
    );
    assert_eq!(f["total_free"], (65536 - 256).to_string());
    assert_eq!(f["largest"], "17");
    // Only blocks that hold a /20, and how many /20s are free.
    let f = free(&s, a, json!({"id": pool, "cidr": 20})).await;
    assert_eq!(
        strings(&f["blocks"]),
        ["10.0.16.0/20", "10.0.32.0/19", "10.0.64.0/18", "10.0.128.0/17"]
    );
    assert_eq!(f["free"], "15");
    let f = free(&s, a, json!({"id": pool, "cidr": 24})).await;
    assert_eq!(f["free"], "255");
    // Paged: limit, then after the last block's address.
    let f = free(&s, a, json!({"id": pool, "limit": 2})).await;
    assert_eq!(strings(&f["blocks"]), ["10.0.0.0/24", "10.0.2.0/23"]);
    let f = free(&s, a, json!({"id": pool, "limit": 2, "after": "10.0.2.0"})).await;
    assert_eq!(strings(&f["blocks"]), ["10.0.4.0/22", "10.0.8.0/21"]);
    // An IPv6 pool's counts are exact beyond 64 bits.
    let v6 = id_of(&add(&s, a, json!({"subnet": "2001:db8::/32", "pool": true})).await);
    let f = free(&s, a, json!({"id": v6, "cidr": 128})).await;
    assert_eq!(f["free"], (1u128 << 96).to_string());
    s.refused(
        a,
        "subnets/available",
        json!({"id": pool, "cidr": 16}),
        "invalid_params",
    )
    .await;
    s.refused(
        a,
        "subnets/available",
        json!({"id": pool, "after": "10.1.0.0"}),
        "invalid_params",
    )
    .await;
    let plain = id_of(&add(&s, a, json!({"subnet": "192.168.0.0/24"})).await);
    s.refused(a, "subnets/available", json!({"id": plain}), "invalid_params")
        .await;
}

#[tokio::test]
async fn a_free_block_is_allocated_by_prefix_length_with_each_strategy() {
    let s = Server::start().await;
    let a = &s.admin;
    let pool = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/16", "pool": true})).await);
    let take = |data: Value| {
        let s = &s;
        async move {
            let mut d = data;
            d["parent"] = json!(pool);
            add(s, a, d).await["subnet"].as_str().unwrap().to_string()
        }
    };
    assert_eq!(take(json!({"cidr": 24})).await, "10.0.0.0/24");
    assert_eq!(take(json!({"cidr": 24, "strategy": "first-fit"})).await, "10.0.1.0/24");
    assert_eq!(take(json!({"cidr": 20, "strategy": "last"})).await, "10.0.240.0/20");
    // Best fit: inside the smallest free block that holds it (the free /23 at 10.0.2.0), not the /22 beyond.
    s.ok(
        a,
        "subnets/delete",
        json!({"id": get_by_block(&s, a, "10.0.1.0/24").await}),
    )
    .await;
    assert_eq!(take(json!({"cidr": 25, "strategy": "best-fit"})).await, "10.0.1.0/25");
    assert_eq!(take(json!({"cidr": 22, "strategy": "best-fit"})).await, "10.0.4.0/22");
    s.refused(a, "subnets/add", json!({"parent": pool, "cidr": 16}), "invalid_params")
        .await;
    s.refused(
        a,
        "subnets/add",
        json!({"parent": pool, "cidr": 24, "strategy": "random"}),
        "invalid_params",
    )
    .await;
    s.refused(
        a,
        "subnets/add",
        json!({"subnet": "10.0.99.0/24", "parent": pool, "strategy": "last"}),
        "invalid_params",
    )
    .await;
    // A full pool: subnet_full, nothing made.
    let small = id_of(&add(&s, a, json!({"subnet": "10.9.0.0/30", "pool": true})).await);
    for _ in 0..2 {
        add(&s, a, json!({"parent": small, "cidr": 31})).await;
    }
    s.refused(a, "subnets/add", json!({"parent": small, "cidr": 32}), "subnet_full")
        .await;
    // The log names the pool of each allocation.
    let logs = s.ok(a, "org/logs", json!({"perpage": 1})).await;
    assert!(logs.to_string().contains("10.9.0.2/31"), "{logs}");
}

async fn get_by_block(s: &Server, who: &Ident, block: &str) -> i64 {
    let all = s.ok(who, "subnets/get", json!({})).await;
    let m = all.as_object().unwrap();
    m.values()
        .find(|v| v["subnet"] == block)
        .map(id_of)
        .unwrap_or_else(|| panic!("no {block}"))
}

#[tokio::test]
async fn edit_split_join_and_delete_keep_the_hierarchy_valid() {
    let s = Server::start().await;
    let a = &s.admin;
    let pool = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/16", "pool": true})).await);
    let c1 = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/24", "parent": pool})).await);
    let c2 = id_of(&add(&s, a, json!({"subnet": "10.0.8.0/24", "parent": pool})).await);
    // Resizing a child keeps it inside the pool and clear of its siblings; its old space is free again.
    s.refused(a, "subnets/edit", json!({"id": c1, "subnet": "10.0.0.0/20"}), "overlap")
        .await;
    s.refused(
        a,
        "subnets/edit",
        json!({"id": c1, "subnet": "10.1.0.0/24"}),
        "invalid_subnet",
    )
    .await;
    let before = get(&s, a, pool).await["version"].clone();
    s.ok(a, "subnets/edit", json!({"id": c1, "subnet": "10.0.0.0/23"}))
        .await;
    let after = get(&s, a, pool).await;
    assert_eq!(after["covered"], "768");
    assert_ne!(
        after["version"], before,
        "the pool's covered space changed, so did its version"
    );
    // A pool's block must keep its children; it cannot lie in itself, and stays a pool while it has children.
    s.refused(
        a,
        "subnets/edit",
        json!({"id": pool, "subnet": "10.0.0.0/21"}),
        "invalid_subnet",
    )
    .await;
    s.refused(a, "subnets/edit", json!({"id": pool, "parent": c1}), "invalid_params")
        .await;
    s.refused(a, "subnets/edit", json!({"id": pool, "pool": false}), "not_empty")
        .await;
    s.ok(a, "subnets/edit", json!({"id": pool, "subnet": "10.0.0.0/12"}))
        .await;
    let f = free(&s, a, json!({"id": pool, "cidr": 13})).await;
    assert_eq!(f["free"], "1");
    // Out of its pool, a child may not stay in the pool's group; in another group, its space is free in the pool.
    s.refused(a, "subnets/edit", json!({"id": c2, "parent": 0}), "overlap")
        .await;
    let g = id_of(only(&s.ok(a, "groups/add", json!({"description": "elsewhere"})).await));
    s.ok(a, "subnets/edit", json!({"id": c2, "parent": 0, "group": g}))
        .await;
    assert_eq!(get(&s, a, pool).await["covered"], "512");
    s.ok(a, "subnets/edit", json!({"id": c2, "parent": pool})).await;
    // A pool moving to another group takes its subtree, and may not overlap what that group holds.
    add(&s, a, json!({"subnet": "10.0.100.0/24", "group": g})).await;
    s.refused(a, "subnets/edit", json!({"id": pool, "group": g}), "overlap")
        .await;
    let g2 = id_of(only(&s.ok(a, "groups/add", json!({"description": "new home"})).await));
    s.ok(a, "subnets/edit", json!({"id": pool, "group": g2})).await;
    assert_eq!(get(&s, a, c1).await["group"], g2.to_string());
    // Split a child: the parts stay in the pool, which covers what it did.
    let parts = s.ok(a, "subnets/split", json!({"id": c1, "cidr": 24})).await;
    for v in parts.as_object().unwrap().values() {
        assert_eq!(v["parent"], pool.to_string());
    }
    assert_eq!(get(&s, a, pool).await["covered"], "768");
    // Join them back.
    s.ok(a, "subnets/join", json!({"id": c1, "cidr": 23})).await;
    assert_eq!(get(&s, a, pool).await["children"], "2");
    // Split the pool: each part is a pool holding the children inside it.
    let halves = s.ok(a, "subnets/split", json!({"id": pool, "cidr": 13})).await;
    let halves: Vec<&Value> = halves.as_object().unwrap().values().collect();
    assert_eq!(halves[0]["covered"], "768");
    assert_eq!(halves[1]["covered"], "0");
    assert_eq!(halves[1]["pool"], "true");
    s.ok(a, "subnets/join", json!({"id": pool, "cidr": 12})).await;
    assert_eq!(get(&s, a, pool).await["covered"], "768");
    // A pool with children is not_empty unless recursive; with records below, force too.
    s.ok(a, "ipaddress/add", json!({"ip": "10.0.8.1"})).await;
    let e = s.refused(a, "subnets/delete", json!({"id": pool}), "not_empty").await;
    assert!(e["error"].as_str().unwrap().contains("recursive"), "{e}");
    s.refused(a, "subnets/delete", json!({"id": pool, "recursive": true}), "not_empty")
        .await;
    s.ok(a, "subnets/delete", json!({"id": c2, "force": true})).await;
    assert_eq!(get(&s, a, pool).await["covered"], "512");
    s.ok(a, "subnets/delete", json!({"id": pool, "recursive": true})).await;
    s.refused(a, "subnets/get", json!({"id": c1}), "not_found").await;
    s.assert_prefixes_derived().await;
}

/// Many clients allocating /64s from one pool at once never get the same or overlapping blocks, and the pool's
/// free space agrees with its children afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_never_get_overlapping_blocks() {
    let s = Arc::new(Server::start().await);
    let a = s.admin.clone();
    let pool = id_of(&add(&s, &a, json!({"subnet": "2001:db8:40::/56", "pool": true})).await);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..16 {
        let (s, a) = (s.clone(), a.clone());
        tasks.spawn(async move {
            let mut got = Vec::new();
            for i in 0..8 {
                let (cidr, strategy) = match (client + i) % 3 {
                    0 => (64, "first-fit"),
                    1 => (63, "best-fit"),
                    _ => (64, "last"),
                };
                let r = add(&s, &a, json!({"parent": pool, "cidr": cidr, "strategy": strategy})).await;
                got.push(r["subnet"].as_str().unwrap().parse::<IpNet>().unwrap());
            }
            got
        });
    }
    let mut all: Vec<IpNet> = Vec::new();
    while let Some(got) = tasks.join_next().await {
        all.extend(got.unwrap());
    }
    assert_eq!(all.len(), 128);
    for (i, x) in all.iter().enumerate() {
        for y in &all[i + 1..] {
            assert!(!x.contains(y) && !y.contains(x), "{x} and {y} overlap");
        }
    }
    let covered: u128 = all.iter().map(|n| 1u128 << (128 - n.prefix_len())).sum();
    let p = get(&s, &a, pool).await;
    assert_eq!(p["covered"], covered.to_string());
    assert_eq!(p["children"], "128");
    let f = free(&s, &a, json!({"id": pool})).await;
    assert_eq!(f["total_free"], ((1u128 << 72) - covered).to_string());
}

#[tokio::test]
async fn rest_pools_and_available_networks() {
    let s = Server::start().await;
    let t = &s.admin_token;
    let pool = s
        .api(
            Method::POST,
            "/networks",
            t,
            Some(&json!({"network": "10.0.0.0", "cidr": 16, "pool": true})),
        )
        .await;
    assert_eq!(pool.status, 201);
    let pool = pool.json();
    assert_eq!(pool["pool"], true);
    assert_eq!(pool["covered"], 0);
    let id = pool["id"].as_i64().unwrap();
    let child = s
        .api(
            Method::POST,
            &format!("/networks/{id}/available-networks"),
            t,
            Some(&json!({"cidr": 24, "name": "rack 1"})),
        )
        .await;
    assert_eq!(child.status, 201, "{}", String::from_utf8_lossy(&child.body));
    let child = child.json();
    assert_eq!(child["network"], "10.0.0.0");
    assert_eq!(child["parent_id"], id);
    assert_eq!(child["name"], "rack 1");
    let given = s
        .api(
            Method::POST,
            "/networks",
            t,
            Some(&json!({"network": "10.0.9.0", "cidr": 24, "parent_id": id})),
        )
        .await;
    assert_eq!(given.status, 201);
    let list = s
        .api(
            Method::GET,
            &format!("/networks/{id}/available-networks?cidr=23&limit=3"),
            t,
            None,
        )
        .await
        .json();
    assert_eq!(list["network_id"], id);
    assert_eq!(
        list["available_networks"],
        json!(["10.0.2.0/23", "10.0.4.0/22", "10.0.10.0/23"])
    );
    assert_eq!(list["free_networks"], 128 - 2);
    let kids = s
        .api(Method::GET, &format!("/networks?parent_id={id}"), t, None)
        .await
        .json();
    assert_eq!(kids["data"].as_array().unwrap().len(), 2);
    let e = s
        .api(
            Method::POST,
            &format!("/networks/{id}/available-networks"),
            t,
            Some(&json!({"cidr": 8})),
        )
        .await;
    assert_eq!(e.status, 400);
    let e = s.api(Method::DELETE, &format!("/networks/{id}"), t, None).await;
    assert_eq!(e.status, 400, "{}", String::from_utf8_lossy(&e.body));
    assert!(String::from_utf8_lossy(&e.body).contains("?recursive=true"));
    let gone = s
        .api(Method::DELETE, &format!("/networks/{id}?recursive=true"), t, None)
        .await;
    assert_eq!(gone.status, 204);
}

#[tokio::test]
async fn bulk_allocation_files_n_records_at_once_or_none() {
    let s = Server::start().await;
    let a = &s.admin;
    let net = id_of(&add(&s, a, json!({"subnet": "10.5.0.0/24"})).await);
    s.ok(a, "ipaddress/add", json!({"ip": "10.5.0.3"})).await;
    s.ok(
        a,
        "dhcpranges/add",
        json!({"subnet": net, "start_ip": "10.5.0.10", "end_ip": "10.5.0.19"}),
    )
    .await;
    let got = s
        .ok(
            a,
            "ipaddress/add",
            json!({"subnet": net, "count": 5, "hostname": "web-{n}"}),
        )
        .await;
    let mut recs: Vec<&Value> = got.as_object().unwrap().values().collect();
    recs.sort_by_key(|r| r["id"].as_str().unwrap().parse::<i64>().unwrap());
    let ips: Vec<&str> = recs.iter().map(|r| r["ip"].as_str().unwrap()).collect();
    assert_eq!(ips, ["10.5.0.1", "10.5.0.2", "10.5.0.4", "10.5.0.5", "10.5.0.6"]);
    let names: Vec<&str> = recs.iter().map(|r| r["hostname"].as_str().unwrap()).collect();
    assert_eq!(names, ["web-1", "web-2", "web-3", "web-4", "web-5"]);
    // Contiguous: the first run of 4 free addresses skips the DHCP range.
    let got = s
        .ok(
            a,
            "ipaddress/add",
            json!({"subnet": net, "count": 4, "contiguous": true}),
        )
        .await;
    let mut ips: Vec<String> = got
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["ip"].as_str().unwrap().to_string())
        .collect();
    ips.sort();
    assert_eq!(ips, ["10.5.0.20", "10.5.0.21", "10.5.0.22", "10.5.0.23"]);
    // All or nothing: more than the subnet has free changes nothing.
    let before = s.ok(a, "subnets/get", json!({"id": net})).await;
    let e = s
        .refused(a, "ipaddress/add", json!({"subnet": net, "count": 250}), "subnet_full")
        .await;
    assert!(e["error"].as_str().unwrap().contains("fewer than 250"), "{e}");
    s.refused(
        a,
        "ipaddress/add",
        json!({"subnet": net, "count": 7, "contiguous": true, "ip": "10.5.0.100"}),
        "invalid_params",
    )
    .await;
    s.refused(
        a,
        "ipaddress/add",
        json!({"subnet": net, "count": 1001}),
        "invalid_params",
    )
    .await;
    s.refused(a, "ipaddress/add", json!({"subnet": net, "count": 0}), "invalid_params")
        .await;
    assert_eq!(s.ok(a, "subnets/get", json!({"id": net})).await, before);
    // REST: a list, with an idempotency key replayed as it was.
    let t = &s.admin_token;
    let body = json!({"count": 3, "hostname": "db-{n}"}).to_string();
    let path = format!("/api/v1/ip/networks/{net}/next-ip");
    let auth = format!("Bearer {t}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
        ("idempotency-key", "bulk-1"),
    ];
    let first = s.request(Method::POST, &path, &headers, body.clone()).await;
    assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.body));
    let data = first.json()["data"].clone();
    assert_eq!(data.as_array().unwrap().len(), 3);
    assert_eq!(data[0]["hostname"], "db-1");
    let again = s.request(Method::POST, &path, &headers, body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["data"], data);
    let used = s.ok(a, "subnets/get", json!({"id": net})).await;
    assert_eq!(only(&used)["used_hosts"], (1 + 5 + 4 + 3).to_string());
    // Without count, one host as before.
    let one = s
        .api(
            Method::POST,
            &format!("/ip/networks/{net}/next-ip"),
            t,
            Some(&json!({})),
        )
        .await
        .json();
    assert!(one["ip_address"].is_string(), "{one}");
}

/// Parallel bulk allocations never hand out one address twice, and the counts agree with a recount.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bulk_allocations_never_overlap() {
    let s = Arc::new(Server::start().await);
    let a = s.admin.clone();
    let net = id_of(&add(&s, &a, json!({"subnet": "10.6.0.0/22"})).await);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..12 {
        let (s, a) = (s.clone(), a.clone());
        tasks.spawn(async move {
            let mut got = Vec::new();
            for i in 0..4 {
                let data = json!({"subnet": net, "count": 5 + (client + i) % 4, "contiguous": i % 2 == 0,
                                  "hostname": format!("c{client}-{{n}}")});
                let r = s.ok(&a, "ipaddress/add", data).await;
                got.extend(
                    r.as_object()
                        .unwrap()
                        .values()
                        .map(|v| v["ip"].as_str().unwrap().to_string()),
                );
            }
            got
        });
    }
    let mut all = Vec::new();
    while let Some(got) = tasks.join_next().await {
        all.extend(got.unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "an address was handed out twice");
    let records = s.ok(&a, "ipaddress/get", json!({"subnet": net})).await;
    assert_eq!(records.as_object().unwrap().len(), all.len());
    let rec = only(&s.ok(&a, "subnets/get", json!({"id": net})).await).clone();
    assert_eq!(rec["used_hosts"], all.len().to_string());
    assert_eq!(rec["available_hosts"], (1022 - all.len()).to_string());
}

/// A restore brings back pools with their children, counts and free space.
#[tokio::test]
async fn a_restore_keeps_pools_and_their_free_space() {
    let s = Server::start().await;
    let a = &s.admin;
    let pool = id_of(&add(&s, a, json!({"subnet": "2001:db8:a::/48", "pool": true})).await);
    for _ in 0..3 {
        add(&s, a, json!({"parent": pool, "cidr": 52})).await;
    }
    let before = (
        get(&s, a, pool).await,
        free(&s, a, json!({"id": pool, "cidr": 52})).await,
    );
    let name = s.ok(a, "backups/add", json!({})).await["name"]
        .as_str()
        .unwrap()
        .to_string();
    add(&s, a, json!({"parent": pool, "cidr": 52})).await;
    s.ok(a, "backups/restore", json!({"name": name})).await;
    let after = (
        get(&s, a, pool).await,
        free(&s, a, json!({"id": pool, "cidr": 52})).await,
    );
    assert_eq!(after.0["children"], before.0["children"]);
    assert_eq!(after.0["covered"], before.0["covered"]);
    assert_eq!(after.1, before.1);
    assert_eq!(
        add(&s, a, json!({"parent": pool, "cidr": 52})).await["subnet"],
        "2001:db8:a:3000::/52"
    );
}

/// A mass delete may name a pool and its own children: the pool takes them with it, and every id is answered.
#[tokio::test]
async fn a_mass_delete_of_a_pool_and_its_children_deletes_each_once() {
    let s = Server::start().await;
    let a = &s.admin;
    let outer = id_of(&add(&s, a, json!({"subnet": "10.0.0.0/8", "pool": true})).await);
    let pool = id_of(&add(&s, a, json!({"subnet": "10.1.0.0/16", "pool": true, "parent": outer})).await);
    let child = id_of(&add(&s, a, json!({"parent": pool, "cidr": 24})).await);
    let top = s.ok(a, "subnets/get", json!({"parent": 0})).await;
    assert_eq!(top.as_object().unwrap().len(), 1, "{top}");
    s.refused(a, "subnets/massdelete", json!({"ids": [pool, child]}), "not_empty")
        .await;
    let gone = s
        .ok(
            a,
            "subnets/massdelete",
            json!({"ids": [pool, child], "recursive": true}),
        )
        .await;
    assert_eq!(gone.as_object().unwrap().len(), 2, "{gone}");
    let o = get(&s, a, outer).await;
    assert_eq!((o["children"].as_str(), o["covered"].as_str()), (Some("0"), Some("0")));
    assert_eq!(free(&s, a, json!({"id": outer})).await["blocks"], json!(["10.0.0.0/8"]));
}
