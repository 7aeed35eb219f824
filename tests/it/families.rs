//! The REST routes of the method families beyond networks, hosts and DHCP ranges (groups, custom fields, split and
//! join, mass deletes, search, the audit log, the org, users, app keys, tokens), through a real server: what each
//! does, that its errors speak REST, and that every example body of the OpenAPI document works as Swagger UI sends
//! it. Another org's records and levels one too low are covered for every route by `matrix.rs`, from the route
//! table.

use hyper::Method;
use serde_json::{json, Value};

use ipamd::rest::ROUTES;

use crate::rest::client;
use crate::support::{Ident, Server};

/// Every example request body of the document, sent on a new server in the order of the route table, succeeds:
/// what Swagger UI's "Try it out" sends by default. Each `{id}` is the id of the last record a reply gave under the
/// collection named before it (`/networks/{id}/…` → the last network; a pool's routes → a pool made for them). An
/// example must also carry every field its schema requires.
#[tokio::test]
async fn every_example_body_of_the_document_succeeds() {
    let s = Server::start().await;
    let doc = s.request(Method::GET, "/api/v1/openapi.json", &[], "").await.json();
    let mut last: Vec<(String, i64)> = Vec::new();
    let mut sent = 0;
    for r in ROUTES {
        let op = &doc["paths"][r.path][r.verb.to_ascii_lowercase()];
        let body = &op["requestBody"]["content"]["application/json"];
        let Some(example) = body.get("example") else {
            continue;
        };
        let name = body["schema"]["$ref"]
            .as_str()
            .unwrap()
            .trim_start_matches("#/components/schemas/");
        for field in doc["components"]["schemas"][name]["required"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let field = field.as_str().unwrap();
            assert!(
                example.get(field).is_some(),
                "{} {}: the example lacks {field}",
                r.verb,
                r.path
            );
        }
        // A pool's routes need a pool: one made as a user would, once, when the first of them comes.
        if r.path.contains("available-networks") && !last.iter().any(|(c, _)| c == "pools") {
            let pool = json!({"network": "10.64.0.0", "cidr": 16, "pool": true});
            let made = s.api(Method::POST, "/networks", &s.admin_token, Some(&pool)).await;
            last.push(("pools".into(), made.json()["id"].as_i64().unwrap()));
        }
        let segments: Vec<&str> = r.path.split('/').collect();
        let path: Vec<String> = segments
            .iter()
            .enumerate()
            .map(|(i, seg)| match *seg {
                "{id}" => {
                    let collection = match r.path.contains("available-networks") {
                        true => "pools",
                        false => segments[i - 1],
                    };
                    let id = last.iter().rev().find(|(c, _)| c == collection);
                    id.unwrap_or_else(|| panic!("{} {}: no {collection} made before", r.verb, r.path))
                        .1
                        .to_string()
                }
                other => other.to_string(),
            })
            .collect();
        let path = path.join("/");
        let verb = Method::from_bytes(r.verb.as_bytes()).unwrap();
        let reply = s.api(verb, &path, &s.admin_token, Some(example)).await;
        let text = String::from_utf8_lossy(&reply.body);
        assert!(
            (200..300).contains(&reply.status),
            "{} {path} with the documented example {example} → {} {text}",
            r.verb,
            reply.status
        );
        if let Some(id) = reply.json()["id"].as_i64() {
            let collection = segments.iter().rev().find(|s| !s.starts_with('{')).unwrap();
            last.push((collection.to_string(), id));
        }
        sent += 1;
    }
    assert!(sent >= 20, "only {sent} example bodies");
}

/// Groups: a tree made, moved and deleted over REST, with the REST names (`parent_id`) in replies and errors.
#[tokio::test]
async fn groups_are_made_moved_and_deleted() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let dc = c.post("/groups", json!({"description": "DC"})).await;
    let dc_id = dc["id"].as_i64().unwrap();
    assert_eq!(
        dc,
        json!({"id": dc_id, "description": "DC", "parent_id": null, "network_count": 0, "child_count": 0, "version": 1})
    );
    let row = c
        .post("/groups", json!({"description": "row", "parent_id": dc_id}))
        .await;
    let row_id = row["id"].as_i64().unwrap();
    c.post(
        "/networks",
        json!({"network": "10.1.0.0", "cidr": 24, "group_id": row_id}),
    )
    .await;
    let list = c.get("/groups").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"][0]["child_count"], json!(1));
    assert_eq!(c.get(&format!("/groups/{row_id}")).await["network_count"], json!(1));
    assert!(list["data"][0].get("children").is_none(), "flat without tree: {list}");
    let tree = c.get("/groups?tree=true").await;
    assert_eq!(tree["data"].as_array().unwrap().len(), 1);
    assert_eq!(tree["data"][0]["children"][0]["id"], json!(row_id));
    assert_eq!(tree["data"][0]["children"][0]["children"], json!([]));
    let sub = c.get(&format!("/groups/{row_id}?tree=true")).await;
    assert_eq!((&sub["id"], &sub["children"]), (&json!(row_id), &json!([])));
    c.invalid(
        Method::POST,
        "/groups",
        Some(json!({"description": "x", "children": []})),
        "children",
    )
    .await;

    // A cycle is refused naming the REST field.
    let e = c
        .invalid(
            Method::PATCH,
            &format!("/groups/{dc_id}"),
            Some(json!({"parent_id": row_id})),
            "parent_id",
        )
        .await;
    assert!(e["message"].as_str().unwrap().starts_with("parent_id: "), "{e}");
    let moved = c.patch(&format!("/groups/{row_id}"), json!({"parent_id": null})).await;
    assert_eq!(moved["parent_id"], Value::Null);

    // A group holding networks is refused with the query parameter that deletes it anyway.
    let path = format!("/groups/{row_id}");
    let e = c.fail(Method::DELETE, &path, None, 400, "not_empty").await;
    assert!(e["message"].as_str().unwrap().contains("add ?recursive=true"), "{e}");
    c.delete(&format!("{path}?recursive=true")).await;
    assert_eq!(c.get("/networks").await["data"], json!([]));
    c.fail(Method::GET, &path, None, 404, "not_found").await;
}

/// Custom fields of a network's hosts: defined over REST, their values carried by hosts in `fields`, and refused
/// values named `fields.<name>`.
#[tokio::test]
async fn custom_fields_define_what_hosts_carry() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = c.post("/networks", json!({"network": "10.2.0.0", "cidr": 24})).await["id"]
        .as_i64()
        .unwrap();
    let fields = format!("/networks/{net}/custom-fields");
    let rack = c
        .post(
            &fields,
            json!({"name": "rack", "type": "select", "options": ["r1", "r2"], "default": "r1"}),
        )
        .await;
    let id = rack["id"].as_i64().unwrap();
    assert_eq!(
        rack,
        json!({"id": id, "network_id": net, "name": "rack", "description": null, "type": "select",
               "options": ["r1", "r2"], "default": "r1", "required": false, "position": 0, "version": 1})
    );
    assert_eq!(c.get(&fields).await["data"], json!([rack]));
    let host = c
        .post("/hosts", json!({"network_id": net, "fields": {"rack": "r2"}}))
        .await;
    assert_eq!(host["fields"], json!({"rack": "r2"}));
    let e = c
        .invalid(
            Method::POST,
            "/hosts",
            Some(json!({"network_id": net, "fields": {"rack": "r9"}})),
            "fields.rack",
        )
        .await;
    assert!(e["errors"]["fields.rack"].as_str().unwrap().contains("r1, r2"), "{e}");

    let path = format!("/custom-fields/{id}");
    let renamed = c.patch(&path, json!({"name": "cabinet"})).await;
    assert_eq!(renamed["name"], json!("cabinet"));
    let host_path = format!("/hosts/{}", host["id"]);
    assert_eq!(c.get(&host_path).await["fields"], json!({"cabinet": "r2"}));
    // The network a field belongs to is the path's: read-only in a body.
    c.invalid(
        Method::POST,
        &fields,
        Some(json!({"name": "x", "network_id": net})),
        "network_id",
    )
    .await;
    c.delete(&path).await;
    assert_eq!(c.get(&host_path).await["fields"], json!({}));
    c.fail(Method::GET, &path, None, 404, "not_found").await;
}

/// Split, join and the mass deletes of networks and hosts.
#[tokio::test]
async fn networks_split_join_and_go_in_bulk() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = c.post("/networks", json!({"network": "10.3.0.0", "cidr": 24})).await["id"]
        .as_i64()
        .unwrap();
    let host = c.post("/hosts", json!({"ip_address": "10.3.0.200"})).await;
    let split = format!("/networks/{net}/split");
    let e = c
        .invalid(Method::POST, &split, Some(json!({"cidr": 26, "parts": 4})), "parts")
        .await;
    assert!(e["message"].as_str().unwrap().contains("cidr or parts"), "{e}");
    let parts = c.ok(Method::POST, &split, Some(json!({"cidr": 26})), 200).await;
    let parts: Vec<&Value> = parts["data"].as_array().unwrap().iter().collect();
    assert_eq!(parts.len(), 4);
    assert_eq!(
        (&parts[0]["id"], &parts[3]["network"]),
        (&json!(net), &json!("10.3.0.192"))
    );
    assert_eq!(
        c.get(&format!("/hosts/{}", host["id"])).await["network_id"],
        parts[3]["id"]
    );

    let ids: Vec<&Value> = parts.iter().map(|p| &p["id"]).collect();
    let e = c
        .invalid(
            Method::POST,
            "/networks/join",
            Some(json!({"network_ids": [net]})),
            "network_ids",
        )
        .await;
    assert_eq!(e["errors"]["network_ids"], json!("name at least two networks to join"));
    let joined = c
        .ok(Method::POST, "/networks/join", Some(json!({"network_ids": ids})), 200)
        .await;
    assert_eq!(joined["network"]["cidr"], json!(24));
    assert_eq!(joined["joined"], json!(ids[1..]));

    // A network holding hosts: deleting it names ?force=true; several hosts, then every host of a network.
    let one = format!("/networks/{net}");
    let e = c.fail(Method::DELETE, &one, None, 400, "not_empty").await;
    assert!(e["message"].as_str().unwrap().ends_with("add ?force=true"), "{e}");
    let more: Vec<i64> = allocate(&c, net, 3).await;
    c.delete(&format!("/hosts?ids={},{}", more[0], more[1])).await;
    assert_eq!(
        c.get(&format!("/networks/{net}/hosts")).await["hosts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    c.delete(&format!("/networks/{net}/hosts")).await;
    assert_eq!(c.get(&format!("/networks/{net}/hosts")).await["hosts"], json!([]));

    let other = c.post("/networks", json!({"network": "10.4.0.0", "cidr": 24})).await["id"]
        .as_i64()
        .unwrap();
    c.fail(
        Method::DELETE,
        &format!("/networks?ids={net},{}", other + 100),
        None,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        c.get("/networks").await["data"].as_array().unwrap().len(),
        2,
        "all or nothing"
    );
    c.delete(&format!("/networks?ids={net},{other}")).await;
    assert_eq!(c.get("/networks").await["data"], json!([]));
}

/// `count` hosts allocated in network `net`; their ids.
async fn allocate(c: &crate::rest::Client<'_>, net: i64, count: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(
            c.post("/hosts", json!({"network_id": net})).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    ids
}

/// Search, the audit log with its filters and pages, the org, `/me`, `/ping` and `/version`.
#[tokio::test]
async fn search_audit_log_and_org() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    c.post("/groups", json!({"description": "Datacenter north"})).await;
    let net = c
        .post(
            "/networks",
            json!({"network": "10.5.0.0", "cidr": 24, "name": "north lan"}),
        )
        .await;
    c.post("/hosts", json!({"ip_address": "10.5.0.7", "hostname": "north-db"}))
        .await;
    let found = c.get("/search?query=north").await;
    assert_eq!(found["groups"][0]["description"], json!("Datacenter north"));
    assert_eq!(found["networks"][0]["id"], net["id"]);
    assert_eq!(found["hosts"][0]["hostname"], json!("north-db"));
    assert_eq!(found["truncated"], json!(false));
    let some = c.get("/search?query=north&types=groups&limit=1").await;
    assert_eq!((&some["networks"], &some["hosts"]), (&json!([]), &json!([])));
    let some = c.get("/search?query=north&types=networks,hosts").await;
    assert_eq!(
        (&some["groups"], &some["hosts"][0]["hostname"]),
        (&json!([]), &json!("north-db"))
    );
    let e = c
        .invalid(Method::GET, "/search?query=north&types=racks", None, "types")
        .await;
    assert_eq!(
        e["errors"]["types"],
        json!("must be a list of groups, networks, addresses")
    );
    c.invalid(Method::GET, "/search?query=", None, "query").await;

    let log = c.get("/audit-log?per_page=2").await;
    assert_eq!(
        log["pagination"],
        json!({"page": 1, "per_page": 2, "total_items": 3, "total_pages": 2})
    );
    let newest = &log["data"][0];
    assert_eq!(
        (&newest["method"], &newest["object_type"], &newest["user_id"]),
        (&json!("ipaddress/add"), &json!("ipaddress"), &json!(1))
    );
    assert!(newest["time"].as_str().unwrap().ends_with('Z'), "{newest}");
    let groups = c.get("/audit-log?object_type=group").await;
    assert_eq!(groups["data"].as_array().unwrap().len(), 1);
    c.invalid(Method::GET, "/audit-log?per_page=501", None, "per_page")
        .await;

    let org = c.get("/org").await;
    assert_eq!((&org["network_count"], &org["host_count"]), (&json!(1), &json!(1)));
    let edited = c.patch("/org", json!({"description": "Ops"})).await;
    assert_eq!(edited["description"], json!("Ops"));
    assert!(edited.get("host_count").is_none(), "{edited}");
    c.fail(Method::DELETE, "/org?confirm=admin", None, 400, "conflict")
        .await;

    let me = c.get("/me").await;
    assert_eq!(
        me,
        json!({"user_id": 1, "username": "admin", "level": "admin", "org_id": 1, "org": "admin"})
    );
    assert_eq!(c.get("/ping").await["pong"], json!(true));
    assert_eq!(c.get("/version").await["version"], json!("1.0"));
}

/// Another org is deleted by its own admin with `confirm`; its token stops working.
#[tokio::test]
async fn an_org_deletes_itself_with_confirm() {
    let s = Server::start().await;
    let other = s.org("doomed").await;
    let (token, _) = s.new_token(&other, "doomed").await;
    let c = client(&s, &token);
    c.invalid(Method::DELETE, "/org?confirm=other", None, "confirm").await;
    c.delete("/org?confirm=DOOMED").await;
    c.fail(Method::GET, "/org", None, 401, "auth_failed").await;
}

/// Users, app keys and tokens over REST: made, read, changed and revoked, secrets shown once, and what they make
/// works at once.
#[tokio::test]
async fn users_app_keys_and_tokens() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let bob = c
        .post(
            "/users",
            json!({"username": "bob", "email": "bob@example.org", "password": "bob-password", "level": "readonly"}),
        )
        .await;
    let bob_id = bob["id"].as_i64().unwrap();
    assert_eq!(
        (&bob["level"], &bob["last_login_at"]),
        (&json!("readonly"), &Value::Null)
    );
    assert!(bob.get("password").is_none() && !bob.to_string().contains("bob-password"));
    c.invalid(
        Method::POST,
        "/users",
        Some(json!({"username": "eve", "email": "e@example.org"})),
        "password",
    )
    .await;
    let users = c.get("/users").await;
    assert_eq!(users["data"].as_array().unwrap().len(), 2);
    let up = c
        .patch(
            &format!("/users/{bob_id}"),
            json!({"level": "standard", "realname": "Bob"}),
        )
        .await;
    assert_eq!((&up["level"], &up["realname"]), (&json!("standard"), &json!("Bob")));

    let key = c.post("/app-keys", json!({"name": "sync"})).await;
    let key_id = key["id"].as_i64().unwrap();
    let secret = key["key"].as_str().unwrap();
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    // The new key works on the envelope API at once, and is not shown again.
    let mut admin = s.admin.clone();
    admin.appkey = secret.to_string();
    s.ok(&admin, "ping", json!({})).await;
    let path = format!("/app-keys/{key_id}");
    assert!(c.get(&path).await.get("key").is_none());
    let off = c
        .patch(&path, json!({"enabled": false, "disabled_reason": "rotated"}))
        .await;
    assert_eq!(
        (&off["enabled"], &off["disabled_reason"]),
        (&json!(false), &json!("rotated"))
    );
    s.refused(&admin, "ping", json!({}), "appkey_disabled").await;
    c.delete(&path).await;
    assert_eq!(c.get("/app-keys").await["data"].as_array().unwrap().len(), 1);

    let made = c
        .post(
            "/tokens",
            json!({"description": "ci", "expires_at": "2100-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(made["expires_at"], json!("2100-01-01T00:00:00Z"));
    let token = made["token"].as_str().unwrap().to_string();
    let ci = client(&s, &token);
    assert_eq!(ci.get("/me").await["username"], json!("admin"));
    let path = format!("/tokens/{}", made["id"]);
    assert!(c.get(&path).await.get("token").is_none());
    c.invalid(Method::POST, "/tokens", Some(json!({"expires_at": 5})), "expires_at")
        .await;
    c.delete(&path).await;
    ci.fail(Method::GET, "/me", None, 401, "auth_failed").await;

    // A non-admin sees only their own tokens, and cannot make users.
    let bob = Ident::new(bob_id, "admin", "bob", "bob-password", &s.admin.appkey);
    let (bob_token, _) = s.new_token(&bob, "bob's").await;
    let b = client(&s, &bob_token);
    assert_eq!(b.get("/tokens").await["data"].as_array().unwrap().len(), 1);
    b.fail(
        Method::POST,
        "/users",
        Some(json!({"username": "x", "email": "x@example.org", "password": "pw-pw-pw-pw"})),
        403,
        "access_denied",
    )
    .await;
}
