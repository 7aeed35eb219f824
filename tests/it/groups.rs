//! `groups/get`, `groups/add`, `groups/edit` and `groups/delete`, including the seed's exact tree shape.

use serde_json::{json, Value};

use crate::support::{id_of, keys, only, Ident, Server};
use ipamd::db::{params, Sql};

/// The keys of a group in the seed's example, in its order; ipamd adds `created` after the stamps.
const SEED_KEYS: [&str; 12] = [
    "id",
    "description",
    "userid",
    "modifiedat",
    "user",
    "email",
    "realname",
    "version",
    "parent",
    "subnetcount",
    "childcount",
    "children",
];

fn record_keys(r: &Value) -> Vec<&str> {
    r.as_object().unwrap().keys().map(String::as_str).collect()
}

async fn add(s: &Server, who: &Ident, description: &str, parent: Option<i64>) -> i64 {
    let data = match parent {
        Some(p) => json!({"description": description, "parent": p}),
        None => json!({"description": description}),
    };
    id_of(only(&s.ok(who, "groups/add", data).await))
}

/// A sorted tree reduced to `[[description, <children>], …]`, after checking every node's invariants: keyed by its
/// id, the seed's keys in the seed's order, `parent` naming the node above, `childcount` counting `children`, and
/// `children` an object keyed by id, or `[]` for a leaf.
fn shape(level: &Value, parent: &Value) -> Value {
    let nodes = match level {
        Value::Array(a) if a.is_empty() => return json!([]),
        Value::Object(m) => m,
        other => panic!("children must be an object or []: {other}"),
    };
    let mut out = Vec::new();
    for (key, node) in nodes {
        assert_eq!(node["id"].as_str(), Some(key.as_str()), "{node}");
        let without_created: Vec<&str> = record_keys(node).into_iter().filter(|k| *k != "created").collect();
        assert_eq!(without_created, SEED_KEYS, "{node}");
        assert!(node["created"].is_string());
        assert_eq!(&node["parent"], parent, "{node}");
        let children = &node["children"];
        assert_eq!(node["childcount"], keys(children).len().to_string(), "{node}");
        out.push(json!([node["description"], shape(children, &node["id"])]));
    }
    Value::Array(out)
}

#[tokio::test]
async fn sorted_get_gives_the_seeds_tree() {
    let s = Server::start().await;
    // Made out of order, so only sorting by description can give the seed's order.
    let g3 = add(&s, &s.admin, "Group 3", None).await;
    let g2 = add(&s, &s.admin, "Group 2", None).await;
    let g1 = add(&s, &s.admin, "Group 1", None).await;
    add(&s, &s.admin, "Sub Group 2 - 3", Some(g2)).await;
    let g22 = add(&s, &s.admin, "Sub Group 2 - 2", Some(g2)).await;
    add(&s, &s.admin, "Sub Group 2 - 1", Some(g2)).await;
    add(&s, &s.admin, "Sub-Group 1 - 1", Some(g1)).await;
    add(&s, &s.admin, "Sub Group 2 - 2 - 1", Some(g22)).await;

    let tree = s.ok(&s.admin, "groups/get", json!({"sort": "true"})).await;
    let expected = json!([
        ["Group 1", [["Sub-Group 1 - 1", []]]],
        [
            "Group 2",
            [
                ["Sub Group 2 - 1", []],
                ["Sub Group 2 - 2", [["Sub Group 2 - 2 - 1", []]]],
                ["Sub Group 2 - 3", []],
            ]
        ],
        ["Group 3", []],
    ]);
    assert_eq!(shape(&tree, &Value::Null), expected);
    assert_eq!(keys(&tree), [g1, g2, g3].map(|i| i.to_string()));
    let leaf = &tree[g3.to_string()];
    assert_eq!(leaf["children"], json!([]));
    assert_eq!(
        (leaf["subnetcount"].clone(), leaf["childcount"].clone()),
        (json!("0"), json!("0"))
    );
    assert_eq!(leaf["user"], "admin");
    assert_eq!(leaf["userid"], s.admin.id.to_string());
    assert_eq!(leaf["email"], "admin@localhost");
    assert_eq!(leaf["realname"], Value::Null);

    // Every spelling of true sorts; the subtree of one group is rooted at it.
    for sort in [json!(true), json!("1"), json!(1), json!("yes")] {
        let again = s.ok(&s.admin, "groups/get", json!({"sort": sort})).await;
        assert_eq!(again, tree, "sort {sort}");
    }
    let sub = s.ok(&s.admin, "groups/get", json!({"sort": "true", "id": g2})).await;
    assert_eq!(keys(&sub), [g2.to_string()]);
    assert_eq!(shape(&sub, &Value::Null), json!([expected[1]]));
}

#[tokio::test]
async fn siblings_sort_case_insensitively_then_by_id() {
    let s = Server::start().await;
    let gamma = add(&s, &s.admin, "gamma", None).await;
    let beta = add(&s, &s.admin, "Beta", None).await;
    let alpha2 = add(&s, &s.admin, "alpha", None).await;
    let alpha1 = add(&s, &s.admin, "Alpha", None).await;
    let tree = s.ok(&s.admin, "groups/get", json!({"sort": "true"})).await;
    assert_eq!(keys(&tree), [alpha2, alpha1, beta, gamma].map(|i| i.to_string()));
}

/// A description longer than a PostgreSQL B-tree index entry (about 2.7 kB) is stored, read back, edited and sorted
/// like any other: siblings whose descriptions agree beyond the first 200 characters (the indexed prefix on
/// PostgreSQL) still sort case-insensitively by the whole description.
#[tokio::test]
async fn a_group_with_a_10_kb_description_round_trips() {
    let s = Server::start().await;
    let long = |tail: &str| format!("{}{tail}", "x".repeat(10_000));
    let zeta = add(&s, &s.admin, &long("Zeta"), None).await;
    let alpha = add(&s, &s.admin, &long("alpha"), None).await;
    let short = add(&s, &s.admin, "a short one", None).await;
    let got = s.ok(&s.admin, "groups/get", json!({"id": zeta})).await;
    assert_eq!(got[zeta.to_string()]["description"], json!(long("Zeta")));
    let tree = s.ok(&s.admin, "groups/get", json!({"sort": "true"})).await;
    assert_eq!(keys(&tree), [short, alpha, zeta].map(|i| i.to_string()));
    s.ok(
        &s.admin,
        "groups/edit",
        json!({"id": zeta, "description": long("beta")}),
    )
    .await;
    let tree = s.ok(&s.admin, "groups/get", json!({"sort": "true"})).await;
    assert_eq!(keys(&tree), [short, alpha, zeta].map(|i| i.to_string()));
    assert_eq!(tree[zeta.to_string()]["description"], json!(long("beta")));
    let found = s
        .ok(
            &s.admin,
            "search/find",
            json!({"query": "xxxxalpha", "types": ["groups"]}),
        )
        .await;
    assert_eq!(keys(&found["groups"]), [alpha.to_string()]);
}

#[tokio::test]
async fn flat_get_lists_groups_by_id() {
    let s = Server::start().await;
    assert_eq!(s.ok(&s.admin, "groups/get", json!({})).await, json!([]));
    assert_eq!(s.ok(&s.admin, "groups/get", json!({"sort": "true"})).await, json!([]));
    let b = add(&s, &s.admin, "b", None).await;
    let a = add(&s, &s.admin, "a", Some(b)).await;
    let org = s.org_id(&s.admin).await;
    s.subnet_row(org, Some(a), 0).await;
    s.subnet_row(org, Some(a), 0).await;
    for sort in [json!(null), json!("false"), json!(0)] {
        let flat = s.ok(&s.admin, "groups/get", json!({"sort": sort})).await;
        assert_eq!(keys(&flat), [b, a].map(|i| i.to_string()), "sort {sort}");
        let ga = &flat[a.to_string()];
        let mut expected: Vec<&str> = SEED_KEYS[..11].to_vec();
        expected.insert(7, "created");
        assert_eq!(record_keys(ga), expected);
        assert_eq!(ga["parent"], b.to_string());
        assert_eq!(
            (ga["subnetcount"].clone(), ga["childcount"].clone()),
            (json!("2"), json!("0"))
        );
        let gb = &flat[b.to_string()];
        assert_eq!(
            (
                gb["parent"].clone(),
                gb["subnetcount"].clone(),
                gb["childcount"].clone()
            ),
            (Value::Null, json!("0"), json!("1"))
        );
    }
    let one = s.ok(&s.admin, "groups/get", json!({"id": a})).await;
    assert_eq!(only(&one)["description"], "a");
    assert!(only(&one).get("children").is_none());
    s.check(&s.admin, "groups/get", json!({"id": 999}), "not_found").await;
    s.check(&s.admin, "groups/get", json!({"id": 999, "sort": true}), "not_found")
        .await;
    s.check(&s.admin, "groups/get", json!({"sort": "maybe"}), "invalid_params")
        .await;
}

#[tokio::test]
async fn add_files_a_group_at_the_top_or_under_a_parent() {
    let s = Server::start().await;
    let writer = s.user(&s.admin, "writer", "standard").await;
    let added = s.ok(&writer, "groups/add", json!({"description": "top"})).await;
    let top = only(&added);
    assert_eq!(
        (top["parent"].clone(), top["user"].clone(), top["userid"].clone()),
        (Value::Null, json!("writer"), json!(writer.id.to_string()))
    );
    assert_eq!(top["email"], "writer@example.org");
    assert_eq!(top["modifiedat"], top["created"]);
    let top = id_of(top);
    for parent in [json!(null), json!(""), json!(0), json!("0")] {
        let g = s
            .ok(&writer, "groups/add", json!({"description": "t", "parent": parent}))
            .await;
        assert_eq!(only(&g)["parent"], Value::Null, "parent {parent}");
    }
    let child = s
        .ok(
            &writer,
            "groups/add",
            json!({"description": "child", "parent": top.to_string()}),
        )
        .await;
    assert_eq!(only(&child)["parent"], top.to_string());
    assert_eq!(
        only(&s.ok(&writer, "groups/get", json!({"id": top})).await)["childcount"],
        "1"
    );

    for (data, code) in [
        (json!({}), "invalid_params"),
        (json!({"description": ""}), "invalid_params"),
        (json!({"description": "x", "parent": -1}), "invalid_params"),
        (json!({"description": "x", "parent": "abc"}), "invalid_params"),
        (json!({"description": "x", "parent": 999}), "not_found"),
        (json!({"description": "x", "children": []}), "invalid_params"),
    ] {
        s.check(&writer, "groups/add", data, code).await;
    }
    assert_eq!(keys(&s.ok(&writer, "groups/get", json!({})).await).len(), 6);
}

#[tokio::test]
async fn edit_renames_and_moves_but_never_makes_a_cycle() {
    let s = Server::start().await;
    let a = add(&s, &s.admin, "a", None).await;
    let b = add(&s, &s.admin, "b", Some(a)).await;
    let c = add(&s, &s.admin, "c", Some(b)).await;
    let other = add(&s, &s.admin, "other", None).await;

    // The stamps follow whoever edited last.
    let writer = s.user(&s.admin, "writer", "standard").await;
    let edited = s
        .ok(&writer, "groups/edit", json!({"id": c, "description": "c2"}))
        .await;
    let g = only(&edited);
    assert_eq!(
        (g["description"].clone(), g["parent"].clone()),
        (json!("c2"), json!(b.to_string()))
    );
    assert_eq!(
        (g["user"].clone(), g["userid"].clone()),
        (json!("writer"), json!(writer.id.to_string()))
    );
    // description null or "" leaves it; parent absent leaves it.
    for description in [json!(null), json!("")] {
        let same = s
            .ok(&writer, "groups/edit", json!({"id": c, "description": description}))
            .await;
        assert_eq!(
            (only(&same)["description"].clone(), only(&same)["parent"].clone()),
            (json!("c2"), json!(b.to_string()))
        );
    }
    let moved = s.ok(&writer, "groups/edit", json!({"id": c, "parent": other})).await;
    assert_eq!(only(&moved)["parent"], other.to_string());
    for top in [json!(null), json!(""), json!(0), json!("0")] {
        let moved = s.ok(&writer, "groups/edit", json!({"id": c, "parent": top})).await;
        assert_eq!(only(&moved)["parent"], Value::Null, "parent {top}");
        s.ok(&writer, "groups/edit", json!({"id": c, "parent": b})).await;
    }

    let before = s.ok(&s.admin, "groups/get", json!({"sort": true})).await;
    for (id, parent) in [(a, a), (a, b), (a, c), (b, c), (c, c)] {
        let body = s
            .check(
                &writer,
                "groups/edit",
                json!({"id": id, "parent": parent}),
                "invalid_params",
            )
            .await;
        assert!(body["errorData"]["parent"].is_string(), "{body}");
    }
    for (data, code) in [
        (json!({"id": a, "parent": 999}), "not_found"),
        (json!({"id": 999, "description": "x"}), "not_found"),
        (json!({"description": "x"}), "invalid_params"),
        (json!({"id": a, "name": "x"}), "invalid_params"),
    ] {
        s.check(&writer, "groups/edit", data, code).await;
    }
    assert_eq!(s.ok(&s.admin, "groups/get", json!({"sort": true})).await, before);
    let logs = s
        .ok(
            &s.admin,
            "org/logs",
            json!({"method": "groups/edit", "objectid": c, "perpage": 1}),
        )
        .await;
    let newest = logs["logs"].as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(newest["changes"]["parent"], json!([Value::Null, b.to_string()]));
}

#[tokio::test]
async fn delete_refuses_a_group_that_is_not_empty_unless_recursive() {
    let s = Server::start().await;
    let org = s.org_id(&s.admin).await;
    let a = add(&s, &s.admin, "a", None).await;
    let b = add(&s, &s.admin, "b", Some(a)).await;
    let c = add(&s, &s.admin, "c", Some(b)).await;
    let d = add(&s, &s.admin, "d", Some(a)).await;
    let with_subnet = add(&s, &s.admin, "s", None).await;
    s.subnet_row(org, Some(with_subnet), 0).await;
    s.subnet_row(org, Some(c), 5).await;
    let unrelated = s.subnet_row(org, None, 1).await;

    let body = s.check(&s.admin, "groups/delete", json!({"id": a}), "not_empty").await;
    assert_eq!(body["errorData"], json!({"children": "2", "subnets": "0"}));
    let body = s
        .check(
            &s.admin,
            "groups/delete",
            json!({"id": with_subnet, "recursive": "false"}),
            "not_empty",
        )
        .await;
    assert_eq!(body["errorData"], json!({"children": "0", "subnets": "1"}));
    s.check(&s.admin, "groups/delete", json!({"id": 999}), "not_found")
        .await;
    s.check(&s.admin, "groups/delete", json!({}), "invalid_params").await;
    s.check(
        &s.admin,
        "groups/delete",
        json!({"id": a, "recursive": "perhaps"}),
        "invalid_params",
    )
    .await;
    assert_eq!(keys(&s.ok(&s.admin, "groups/get", json!({})).await).len(), 5);

    let gone = s.ok(&s.admin, "groups/delete", json!({"id": d})).await;
    assert_eq!(gone, json!({d.to_string(): {"id": d.to_string(), "deleted": "true"}}));
    let gone = s
        .ok(&s.admin, "groups/delete", json!({"id": a, "recursive": true}))
        .await;
    assert_eq!(
        keys(&gone),
        [a, b, c].map(|i| i.to_string()),
        "the named group first, then its descendants"
    );
    assert!(gone.as_object().unwrap().values().all(|g| g["deleted"] == "true"));
    let left = s.ok(&s.admin, "groups/get", json!({})).await;
    assert_eq!(keys(&left), [with_subnet.to_string()]);
    let info = s.ok(&s.admin, "org/info", json!({})).await;
    assert_eq!(
        (info["subnetcount"].clone(), info["ipcount"].clone()),
        (json!("2"), json!("1")),
        "c's subnet went with it"
    );
    let _ = unrelated;
    s.ok(&s.admin, "groups/delete", json!({"id": with_subnet, "recursive": 1}))
        .await;
    assert_eq!(s.ok(&s.admin, "org/info", json!({})).await["subnetcount"], "1");
    let logs = s
        .ok(&s.admin, "org/logs", json!({"method": "groups/delete", "objectid": c}))
        .await;
    let entry = only(&logs["logs"]).clone();
    assert_eq!(entry["changes"], json!({"subnets": "1"}));
}

/// Files `count` groups straight into the database, each the child of the one before (`chain`) or all at the top
/// level; the first id.
async fn seed_groups(s: &Server, org: i64, count: i64, chain: bool) -> i64 {
    s.app
        .store
        .run(move |db| {
            db.write(|tx| {
                let first: i64 =
                    tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM groups", params![], |r| r.get(0))?;
                tx.execute(
                    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?3 - 1)
                     INSERT INTO groups (id, org_id, parent_id, description, created, modifiedat, modby_name)
                     SELECT ?2 + i, ?1, CASE WHEN ?4 AND i > 0 THEN ?2 + i - 1 END, 'g' || i, 0, 0, 'seed' FROM n",
                    params![org, first, count, chain],
                )?;
                // The ids were given: PostgreSQL's identity must move past them, as SQLite's rowid does by itself.
                tx.query_row(
                    Sql::Dialects(
                        "SELECT 0",
                        "SELECT setval(pg_get_serial_sequence('groups', 'id'), max(id)) FROM groups",
                    ),
                    params![],
                    |r| r.get::<i64>(0),
                )?;
                Ok(first)
            })
        })
        .await
        .unwrap()
}

/// The tree is answered only up to 32 levels and 5,000 groups (`too_large`): a chain of groups deeper than that was
/// nested without end on the old code, and written out recursively (a chain of thousands overflowed the stack).
/// A recursive delete takes at most 5,000 records of each kind with it.
#[tokio::test]
async fn the_group_tree_is_bounded_in_size_and_depth() {
    let s = Server::start().await;
    let a = &s.admin;
    let org = s.org_id(a).await;
    let top = seed_groups(&s, org, 32, true).await;
    let tree = s.ok(a, "groups/get", json!({"sort": true})).await;
    let mut depth = 0;
    let mut level = &tree;
    while let Some((_, g)) = level.as_object().and_then(|m| m.iter().next()) {
        depth += 1;
        level = &g["children"];
    }
    assert_eq!(depth, 32);
    add(&s, a, "one too deep", Some(top + 31)).await;
    let e = s.check(a, "groups/get", json!({"sort": true}), "too_large").await;
    assert_eq!(e["errorData"], json!({"limit": "32"}));
    assert_eq!(
        keys(&s.ok(a, "groups/get", json!({})).await).len(),
        33,
        "flat, every group"
    );
    s.check(
        a,
        "groups/get",
        json!({"sort": true, "id": top + 1}),
        crate::support::OK,
    )
    .await;

    seed_groups(&s, org, 5000 - 33, false).await;
    assert_eq!(keys(&s.ok(a, "groups/get", json!({})).await).len(), 5000);
    seed_groups(&s, org, 1, false).await;
    let e = s.check(a, "groups/get", json!({}), "too_large").await;
    assert_eq!(e["errorData"], json!({"limit": "5000"}));

    let g = add(&s, a, "big", None).await;
    let sub = id_of(only(
        &s.ok(a, "subnets/add", json!({"subnet": "10.0.0.0/16", "group": g}))
            .await,
    ));
    s.seed_records(sub, 0x0a00_0000, 1, 5001).await;
    s.check(a, "groups/delete", json!({"id": g, "recursive": true}), "too_large")
        .await;
    s.check(a, "subnets/delete", json!({"id": sub, "force": true}), "too_large")
        .await;
    s.check(
        a,
        "subnets/massdelete",
        json!({"ids": [sub], "force": true}),
        "too_large",
    )
    .await;
    let e = s
        .check(
            a,
            "subnets/massdelete",
            json!({"ids": (1..=5001).collect::<Vec<i64>>()}),
            "too_large",
        )
        .await;
    assert_eq!(e["errorData"], json!({"limit": "5000"}));
    s.ok(a, "ipaddress/massdelete", json!({"ids": [1]})).await;
    s.ok(a, "groups/delete", json!({"id": g, "recursive": true})).await;
}

/// `subnetcount` is kept by triggers (schema.sql, migration 9), not counted at read time: it follows every way a
/// subnet enters, leaves or moves between groups, and always equals the group's subnets as `subnets/get` lists them.
#[tokio::test]
async fn subnet_counts_follow_every_change() {
    let s = Server::start().await;
    let a = add(&s, &s.admin, "a", None).await;
    let b = add(&s, &s.admin, "b", None).await;
    let counts = || async {
        let groups = s.ok(&s.admin, "groups/get", json!({})).await;
        let mut out = Vec::new();
        for g in [a, b] {
            let shown = &groups[g.to_string()]["subnetcount"];
            let listed = s.ok(&s.admin, "subnets/get", json!({"group": g})).await;
            assert_eq!(shown, &json!(keys(&listed).len().to_string()), "group {g}: {groups}");
            out.push(shown.as_str().unwrap().parse::<usize>().unwrap());
        }
        out
    };
    let subnet = |cidr: &str, group: i64| json!({"subnet": cidr, "group": group});
    let first = id_of(only(&s.ok(&s.admin, "subnets/add", subnet("10.0.0.0/24", a)).await));
    s.ok(&s.admin, "subnets/add", subnet("10.0.1.0/24", a)).await;
    s.ok(&s.admin, "subnets/add", subnet("10.0.2.0/24", b)).await;
    assert_eq!(counts().await, [2, 1]);
    s.ok(&s.admin, "subnets/edit", json!({"id": first, "group": b})).await;
    assert_eq!(counts().await, [1, 2], "moved to b");
    let split = s.ok(&s.admin, "subnets/split", json!({"id": first, "cidr": 26})).await;
    assert_eq!(counts().await, [1, 5], "split in four inside b");
    let quarters: Vec<i64> = keys(&split).iter().map(|k| k.parse().unwrap()).collect();
    s.ok(&s.admin, "subnets/join", json!({"ids": quarters})).await;
    assert_eq!(counts().await, [1, 2], "joined back");
    s.ok(&s.admin, "subnets/edit", json!({"id": first, "group": 0})).await;
    assert_eq!(counts().await, [1, 1], "moved to the top level");
    s.ok(&s.admin, "subnets/delete", json!({"id": first})).await;
    assert_eq!(counts().await, [1, 1], "a top-level subnet counts nowhere");
    let gone = s.ok(&s.admin, "subnets/get", json!({"group": a})).await;
    let ids: Vec<i64> = keys(&gone).iter().map(|k| k.parse().unwrap()).collect();
    s.ok(&s.admin, "subnets/massdelete", json!({"ids": ids})).await;
    assert_eq!(counts().await, [0, 1]);
    // A restore copies the groups' rows, counts included, then their subnets, whose inserts fire the triggers.
    let backup = s.ok(&s.admin, "backups/add", json!({})).await;
    s.ok(&s.admin, "subnets/add", subnet("10.0.3.0/24", a)).await;
    assert_eq!(counts().await, [1, 1]);
    s.ok(&s.admin, "backups/restore", json!({"name": backup["name"]})).await;
    assert_eq!(counts().await, [0, 1], "as the backup had them, not doubled");
}

/// Every list method of the org's records pages with `page` and `perpage` as `subnets/get` does; without either,
/// the answer is keyed by id as it always was.
#[tokio::test]
async fn list_methods_page_and_stay_keyed_by_id_without_paging() {
    let s = Server::start().await;
    let a = &s.admin;
    let subnet = id_of(only(&s.ok(a, "subnets/add", json!({"subnet": "10.7.0.0/24"})).await));
    for i in 0..3 {
        s.ok(a, "groups/add", json!({"description": format!("g{i}")})).await;
        let user = json!({"username": format!("user{i}"), "email": "u@example.org", "password": "s3cret-s3cret"});
        s.ok(a, "org/users/add", user).await;
        s.ok(a, "org/appkeys/add", json!({"name": format!("k{i}")})).await;
        s.ok(a, "org/tokens/add", json!({})).await;
        s.ok(
            a,
            "subnets/fields/add",
            json!({"subnet": subnet, "name": format!("f{i}")}),
        )
        .await;
    }
    let lists = [
        ("groups/get", json!({}), "groups"),
        ("org/users/get", json!({}), "users"),
        ("org/appkeys/get", json!({}), "appkeys"),
        ("org/tokens/get", json!({}), "tokens"),
        ("subnets/fields/get", json!({"subnet": subnet}), "fields"),
    ];
    for (method, data, key) in lists {
        let all = s.ok(a, method, data.clone()).await;
        let every = keys(&all);
        assert!(every.len() >= 3, "{method}: {all}");
        let mut paged = data.clone();
        paged["perpage"] = json!(2);
        paged["page"] = json!(2);
        let page = s.ok(a, method, paged).await;
        let total = every.len().to_string();
        let pages = every.len().div_ceil(2).to_string();
        assert_eq!(
            (&page["page"], &page["perpage"], &page["pages"], &page["total"]),
            (&json!("2"), &json!("2"), &json!(pages), &json!(total)),
            "{method}: {page}"
        );
        assert_eq!(keys(&page[key]), every[2..every.len().min(4)], "{method}: {page}");
        let mut wrong = data;
        wrong["perpage"] = json!(0);
        s.check(a, method, wrong, "invalid_params").await;
    }
    s.check(a, "subnets/fields/get", json!({"id": 1, "page": 1}), "invalid_params")
        .await;
}

/// Every group of a sorted tree, by id, its children left in it.
fn tree_nodes<'v>(level: &'v Value, out: &mut Vec<(String, &'v Value)>) {
    if let Value::Object(m) = level {
        for (id, node) in m {
            out.push((id.clone(), node));
            tree_nodes(&node["children"], out);
        }
    }
}

/// The tree reads its groups' last modifiers apart from the groups, in one statement: each group names its own, as
/// the flat list (a join) does, for one modifier or several.
#[tokio::test]
async fn the_tree_names_each_groups_last_modifier_as_the_flat_list_does() {
    let s = Server::start().await;
    let mut modifiers = vec![s.admin.clone()];
    for n in 1..7 {
        let user = s.user(&s.admin, &format!("editor{n}"), "standard").await;
        if n % 2 == 0 {
            let realname = json!({"id": user.id, "realname": format!("Editor \"{n}\"")});
            s.ok(&s.admin, "org/users/edit", realname).await;
        }
        modifiers.push(user);
    }
    let root = add(&s, &s.admin, "root", None).await;
    for (n, who) in modifiers.iter().enumerate() {
        // One more modifier each round: from one, read by id, to seven, read in one statement.
        add(&s, who, &format!("by {}", who.username), (n % 2 == 1).then_some(root)).await;
        let flat = s.ok(&s.admin, "groups/get", json!({})).await;
        let tree = s.ok(&s.admin, "groups/get", json!({"sort": true})).await;
        let mut nodes = Vec::new();
        tree_nodes(&tree, &mut nodes);
        assert_eq!(nodes.len(), n + 2, "{tree}");
        for (id, node) in nodes {
            for key in ["userid", "user", "email", "realname", "modifiedat", "version"] {
                assert_eq!(node[key], flat[&id][key], "group {id}, {key}, with {} modifiers", n + 1);
            }
            let userid = node["userid"].as_str().and_then(|u| u.parse::<i64>().ok());
            let by = modifiers.iter().find(|m| Some(m.id) == userid).unwrap();
            assert_eq!(node["user"], by.username);
        }
    }
    // Read apart from the flat list too: the stamps are the modifier's, not some user's.
    let tree = s.ok(&s.admin, "groups/get", json!({"sort": true})).await;
    let by_editor2 = tree
        .as_object()
        .unwrap()
        .values()
        .find(|g| g["description"] == "by editor2");
    let by_editor2 = by_editor2.unwrap_or_else(|| panic!("{tree}"));
    assert_eq!(
        (&by_editor2["user"], &by_editor2["email"], &by_editor2["realname"]),
        (&json!("editor2"), &json!("editor2@example.org"), &json!("Editor \"2\""))
    );
}
