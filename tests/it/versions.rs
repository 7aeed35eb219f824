//! Record versions through the real server: `version` in the records of both doors, REST's `ETag`, a conditional
//! `GET` (304), `If-Match` and `If-None-Match: *` on changes (412 changes nothing), and the envelope's `version`.

use hyper::Method;
use serde_json::{json, Value};

use crate::support::{id_of, only, Reply, Server};

/// `verb /api/v1{path}` as the operator admin with extra `headers` and a JSON `body`.
async fn conditional(s: &Server, verb: Method, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
    let bearer = format!("Bearer {}", s.admin_token);
    let mut all = vec![("content-type", "application/json"), ("authorization", bearer.as_str())];
    all.extend_from_slice(headers);
    let body = body.map(Value::to_string).unwrap_or_default();
    s.request(verb, &format!("/api/v1{path}"), &all, body).await
}

/// A reply's `ETag`, which must be the strong tag of the `version` in its body.
fn etag(r: &Reply) -> String {
    let tag = r.header("etag").expect("an ETag").to_string();
    assert_eq!(
        tag,
        format!("\"{}\"", r.json()["version"]),
        "the ETag is the record's version"
    );
    tag
}

/// A network by REST: its path.
async fn network(s: &Server, block: &str) -> (String, Reply) {
    let body = json!({"network": block, "cidr": 24, "name": "first"});
    let created = conditional(s, Method::POST, "/networks", &[], Some(&body)).await;
    assert_eq!(created.status, 201);
    (format!("/networks/{}", created.json()["id"]), created)
}

#[tokio::test]
async fn rest_records_carry_their_version_as_etag_and_answer_304() {
    let s = Server::start().await;
    let (path, created) = network(&s, "10.60.0.0").await;
    assert_eq!(created.json()["version"], 1, "a new record is at version 1");
    let got = conditional(&s, Method::GET, &path, &[], None).await;
    assert_eq!((got.status, etag(&got)), (200, "\"1\"".to_string()));
    let cached = conditional(&s, Method::GET, &path, &[("if-none-match", "\"1\"")], None).await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty(), "a 304 has no body");
    assert_eq!(cached.header("etag"), Some("\"1\""));
    let listed = conditional(&s, Method::GET, &path, &[("if-none-match", "\"7\", W/\"1\"")], None).await;
    assert_eq!(listed.status, 304, "a GET compares a list of tags, weakly");
    let other = conditional(&s, Method::GET, &path, &[("if-none-match", "\"7\"")], None).await;
    assert_eq!(other.status, 200, "a version the client does not hold gets the record");
    // A change moves the version once, so the old tag no longer matches.
    let patched = conditional(
        &s,
        Method::PATCH,
        &path,
        &[],
        Some(&json!({"name": "b", "domain": "d"})),
    )
    .await;
    assert_eq!(patched.status, 200);
    let second = etag(&patched);
    assert_ne!(second, "\"1\"");
    let stale = conditional(&s, Method::GET, &path, &[("if-none-match", "\"1\"")], None).await;
    assert_eq!((stale.status, stale.json()["name"].clone()), (200, json!("b")));
    assert_eq!(etag(&stale), second, "the GET shows the version the change answered");
    // Allocating in the network moves its counts, hence its version.
    let net = created.json()["id"].as_i64().unwrap();
    let alloc = conditional(&s, Method::POST, &format!("/ip/networks/{net}/next-ip"), &[], None).await;
    assert_eq!(alloc.status, 201);
    let now = conditional(&s, Method::GET, &path, &[("if-none-match", &second)], None).await;
    assert_eq!(now.status, 200);
    assert!(now.json()["version"].as_i64() > patched.json()["version"].as_i64());
}

#[tokio::test]
async fn if_match_refuses_a_stale_change_and_changes_nothing() {
    let s = Server::start().await;
    let (path, _) = network(&s, "10.61.0.0").await;
    let ok = conditional(
        &s,
        Method::PATCH,
        &path,
        &[("if-match", "\"1\"")],
        Some(&json!({"name": "second"})),
    )
    .await;
    assert_eq!(ok.status, 200);
    let current = etag(&ok);
    let before = conditional(&s, Method::GET, &path, &[], None).await;
    for (verb, body) in [
        (Method::PATCH, Some(json!({"name": "third"}))),
        (
            Method::PUT,
            Some(json!({"network": "10.61.0.0", "cidr": 24, "name": "third"})),
        ),
        (Method::DELETE, None),
    ] {
        let stale = conditional(&s, verb.clone(), &path, &[("if-match", "\"1\"")], body.as_ref()).await;
        assert_eq!(stale.status, 412, "{verb} {}", String::from_utf8_lossy(&stale.body));
        assert_eq!(stale.json()["code"], "precondition_failed");
        assert_eq!(
            format!("\"{}\"", stale.json()["details"]["version"]),
            current,
            "the error names the version"
        );
        let after = conditional(&s, Method::GET, &path, &[], None).await;
        assert_eq!(after.body, before.body, "a refused {verb} changes nothing");
    }
    // A tag that is no version of ours matches nothing; `*` matches the record as it is.
    let weak = conditional(
        &s,
        Method::PATCH,
        &path,
        &[("if-match", &format!("W/{current}"))],
        Some(&json!({"name": "x"})),
    )
    .await;
    assert_eq!(weak.status, 412, "If-Match compares strongly");
    let any = conditional(
        &s,
        Method::PATCH,
        &path,
        &[("if-match", "*")],
        Some(&json!({"name": "any"})),
    )
    .await;
    assert_eq!(any.status, 200);
    let current = etag(&any);
    // If-None-Match: * asks for no current record: refused on one that exists.
    let exists = conditional(&s, Method::DELETE, &path, &[("if-none-match", "*")], None).await;
    assert_eq!(exists.status, 412);
    let missing = conditional(&s, Method::DELETE, "/networks/999999", &[("if-match", "\"1\"")], None).await;
    assert_eq!(
        missing.status, 404,
        "a missing record is not found, whatever the precondition"
    );
    let deleted = conditional(&s, Method::DELETE, &path, &[("if-match", &current)], None).await;
    assert_eq!(deleted.status, 204);
    // On a create, If-None-Match: * is what a create does anyway; If-Match makes no sense there.
    let body = json!({"network": "10.62.0.0", "cidr": 24});
    let create = conditional(&s, Method::POST, "/networks", &[("if-none-match", "*")], Some(&body)).await;
    assert_eq!(create.status, 201);
    let refused = conditional(&s, Method::POST, "/networks", &[("if-match", "\"1\"")], Some(&body)).await;
    assert_eq!(refused.status, 400);
}

#[tokio::test]
async fn hosts_and_ranges_honour_if_match_too() {
    let s = Server::start().await;
    let (_, created) = network(&s, "10.63.0.0").await;
    let net = created.json()["id"].clone();
    let host = conditional(
        &s,
        Method::POST,
        "/hosts",
        &[],
        Some(&json!({"ip_address": "10.63.0.5"})),
    )
    .await;
    let path = format!("/hosts/{}", host.json()["id"]);
    let tag = etag(&conditional(&s, Method::GET, &path, &[], None).await);
    let stale = conditional(
        &s,
        Method::PATCH,
        &path,
        &[("if-match", "\"999999\"")],
        Some(&json!({"hostname": "h"})),
    )
    .await;
    assert_eq!(stale.status, 412);
    assert_eq!(
        conditional(&s, Method::GET, &path, &[], None).await.json()["hostname"],
        Value::Null
    );
    let fine = conditional(
        &s,
        Method::PATCH,
        &path,
        &[("if-match", &tag)],
        Some(&json!({"hostname": "h"})),
    )
    .await;
    assert_eq!(fine.status, 200);
    assert_ne!(etag(&fine), tag);
    let range = conditional(
        &s,
        Method::POST,
        "/dhcp-ranges",
        &[],
        Some(&json!({"network_id": net, "start_ip": "10.63.0.100", "end_ip": "10.63.0.110"})),
    )
    .await;
    let path = format!("/dhcp-ranges/{}", range.json()["id"]);
    let stale = conditional(&s, Method::DELETE, &path, &[("if-match", "\"5\"")], None).await;
    assert_eq!(stale.status, 412);
    assert_eq!(conditional(&s, Method::GET, &path, &[], None).await.status, 200);
    assert_eq!(
        conditional(&s, Method::DELETE, &path, &[("if-match", "\"1\"")], None)
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn envelope_edits_and_deletes_take_a_version() {
    let s = Server::start().await;
    let a = s.admin.clone();
    let subnet = s
        .ok(&a, "subnets/add", json!({"subnet": "10.64.0.0/24", "name": "n"}))
        .await;
    let subnet = only(&subnet).clone();
    assert_eq!(subnet["version"], "1");
    let id = id_of(&subnet);
    let e = s
        .refused(
            &a,
            "subnets/edit",
            json!({"id": id, "name": "m", "version": 2}),
            "precondition_failed",
        )
        .await;
    assert_eq!(e["errorData"], json!({"version": "1"}));
    assert_eq!(
        only(&s.ok(&a, "subnets/get", json!({"id": id})).await)["name"],
        "n",
        "nothing changed"
    );
    let edited = s
        .ok(&a, "subnets/edit", json!({"id": id, "name": "m", "version": 1}))
        .await;
    let version = only(&edited)["version"].clone();
    assert_ne!(version, "1");

    let group = only(&s.ok(&a, "groups/add", json!({"description": "g"})).await).clone();
    let gid = id_of(&group);
    assert_eq!(group["version"], "1");
    s.refused(
        &a,
        "groups/delete",
        json!({"id": gid, "version": 9}),
        "precondition_failed",
    )
    .await;
    s.ok(&a, "groups/get", json!({"id": gid})).await;
    s.ok(&a, "groups/delete", json!({"id": gid, "version": 1})).await;

    let user = s.user(&a, "versioned", "readonly").await;
    // Using a credential stamps it, which is no change of its record.
    s.ok(&user, "org/info", json!({})).await;
    let record = only(&s.ok(&a, "org/users/get", json!({"id": user.id})).await).clone();
    assert_eq!(record["version"], "1");
    let email = json!({"id": user.id, "email": "x@example.org", "version": 2});
    s.refused(&a, "org/users/edit", email, "precondition_failed").await;
    s.ok(
        &a,
        "org/users/edit",
        json!({"id": user.id, "email": "x@example.org", "version": 1}),
    )
    .await;
    let (token, token_id) = s.new_token(&a, "t").await;
    assert_eq!(s.api(Method::GET, "/networks", &token, None).await.status, 200);
    s.refused(
        &a,
        "org/tokens/delete",
        json!({"id": token_id, "version": 2}),
        "precondition_failed",
    )
    .await;
    s.ok(&a, "org/tokens/delete", json!({"id": token_id, "version": 1}))
        .await;
    s.refused(
        &a,
        "subnets/delete",
        json!({"id": id, "version": 1}),
        "precondition_failed",
    )
    .await;
    s.ok(&a, "subnets/delete", json!({"id": id, "version": version})).await;
    // Another org's record is not found, whatever version is named.
    let other = s.org("other").await;
    s.refused(&other, "groups/edit", json!({"id": gid, "version": 1}), "not_found")
        .await;
}

#[tokio::test]
async fn every_versioned_record_of_the_envelope_refuses_a_stale_change() {
    let s = Server::start().await;
    let a = s.admin.clone();
    let subnet = id_of(only(&s.ok(&a, "subnets/add", json!({"subnet": "10.65.0.0/24"})).await));
    let field = only(
        &s.ok(&a, "subnets/fields/add", json!({"subnet": subnet, "name": "rack"}))
            .await,
    )
    .clone();
    let host = only(
        &s.ok(&a, "ipaddress/add", json!({"subnet": subnet, "hostname": "h"}))
            .await,
    )
    .clone();
    let range = s
        .ok(
            &a,
            "dhcpranges/add",
            json!({"subnet": subnet, "start_ip": "10.65.0.100", "end_ip": "10.65.0.110"}),
        )
        .await;
    let range = only(&range).clone();
    let key = only(&s.ok(&a, "org/appkeys/add", json!({"name": "k"})).await).clone();
    for (edit, delete, record, change) in [
        (
            "subnets/fields/edit",
            "subnets/fields/delete",
            &field,
            json!({"description": "d"}),
        ),
        ("ipaddress/edit", "ipaddress/delete", &host, json!({"hostname": "g"})),
        (
            "dhcpranges/edit",
            "dhcpranges/delete",
            &range,
            json!({"description": "d"}),
        ),
        (
            "org/appkeys/edit",
            "org/appkeys/delete",
            &key,
            json!({"description": "d"}),
        ),
    ] {
        let id = id_of(record);
        let version: i64 = record["version"].as_str().unwrap().parse().unwrap();
        let mut stale = change.clone();
        stale["id"] = json!(id);
        stale["version"] = json!(version + 1000);
        s.refused(&a, edit, stale, "precondition_failed").await;
        let mut fresh = change.clone();
        fresh["id"] = json!(id);
        fresh["version"] = json!(version);
        let changed = only(&s.ok(&a, edit, fresh).await).clone();
        let now: i64 = changed["version"].as_str().unwrap().parse().unwrap();
        assert!(now > version, "{edit} moves the version");
        s.refused(&a, delete, json!({"id": id, "version": version}), "precondition_failed")
            .await;
        s.ok(&a, delete, json!({"id": id, "version": now})).await;
    }
}

#[tokio::test]
async fn a_records_field_values_are_part_of_its_version() {
    let s = Server::start().await;
    let a = s.admin.clone();
    let subnet = id_of(only(&s.ok(&a, "subnets/add", json!({"subnet": "10.66.0.0/24"})).await));
    s.ok(&a, "subnets/fields/add", json!({"subnet": subnet, "name": "rack"}))
        .await;
    let host = only(&s.ok(&a, "ipaddress/add", json!({"subnet": subnet})).await).clone();
    let before = host["version"].clone();
    let edited = s
        .ok(
            &a,
            "ipaddress/edit",
            json!({"id": id_of(&host), "fields": {"rack": "r9"}}),
        )
        .await;
    assert_ne!(only(&edited)["version"], before);
    let after = only(&s.ok(&a, "ipaddress/get", json!({"id": id_of(&host)})).await).clone();
    assert_eq!(
        after["version"],
        only(&edited)["version"],
        "the edit's answer shows the version it left"
    );
    // Deleting the definition deletes the record's value: the record changed.
    let field = s.ok(&a, "subnets/fields/get", json!({"subnet": subnet})).await;
    s.ok(&a, "subnets/fields/delete", json!({"id": id_of(only(&field))}))
        .await;
    let last = only(&s.ok(&a, "ipaddress/get", json!({"id": id_of(&host)})).await).clone();
    assert_ne!(last["version"], after["version"]);
}
