//! `subnets/fields/*`: custom columns of a subnet's address records — types, options and defaults checked,
//! names unique per subnet whatever their case, renames and retypes checked against the stored values, levels and
//! org isolation.

use serde_json::{json, Value};

use crate::support::{id_of, keys, only, Ident, Server};

/// Adds a subnet as `who`; its id.
async fn subnet(s: &Server, who: &Ident, cidr: &str) -> i64 {
    id_of(only(&s.ok(who, "subnets/add", json!({"subnet": cidr})).await))
}

/// Adds a field as `who`; its record.
async fn add(s: &Server, who: &Ident, data: Value) -> Value {
    only(&s.ok(who, "subnets/fields/add", data).await).clone()
}

/// Edits a field as `who`; its record.
async fn edit(s: &Server, who: &Ident, data: Value) -> Value {
    only(&s.ok(who, "subnets/fields/edit", data).await).clone()
}

/// The names of a subnet's fields, in order.
async fn names(s: &Server, who: &Ident, subnet: i64) -> Vec<String> {
    let fields = s.ok(who, "subnets/fields/get", json!({"subnet": subnet})).await;
    keys(&fields)
        .iter()
        .map(|k| fields[k.as_str()]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Adds an address record with field values as `who` (`ipaddress/add {ip, subnet, fields}`); its id.
async fn record(s: &Server, who: &Ident, subnet: i64, ip: &str, fields: Value) -> i64 {
    let data = json!({"ip": ip, "subnet": subnet, "fields": fields});
    id_of(only(&s.ok(who, "ipaddress/add", data).await))
}

/// The field values of an address record.
async fn values(s: &Server, who: &Ident, id: i64) -> Value {
    only(&s.ok(who, "ipaddress/get", json!({"id": id})).await)["fields"].clone()
}

/// Everything of `who`'s org a refused field call must leave unchanged.
async fn state(s: &Server, who: &Ident) -> Value {
    let subnets = s
        .ok(who, "subnets/get", json!({"fields": true, "addresses": true}))
        .await;
    let logs = s.ok(who, "org/logs", json!({"perpage": 500})).await;
    json!({"subnets": subnets, "logs": logs["total"]})
}

#[tokio::test]
async fn add_renders_the_definition() {
    let s = Server::start().await;
    let a = &s.admin;
    let net = subnet(&s, a, "10.0.0.0/24").await;
    let f = add(
        &s,
        a,
        json!({"subnet": net, "name": "  owner ", "description": "who", "default": "ops"}),
    )
    .await;
    let expect = [
        ("subnet", json!(net.to_string())),
        ("name", json!("owner")),
        ("description", json!("who")),
        ("type", json!("text")),
        ("options", json!([])),
        ("default", json!("ops")),
        ("required", json!("false")),
        ("position", json!("0")),
        ("user", json!("admin")),
        ("userid", json!(a.id.to_string())),
    ];
    for (k, v) in &expect {
        assert_eq!(&f[*k], v, "{k} in {f}");
    }
    assert!(
        f["created"].as_str().is_some() && f["modifiedat"].as_str().is_some(),
        "{f}"
    );
    let got = s.ok(a, "subnets/fields/get", json!({"subnet": net})).await;
    assert_eq!(only(&got), &f);
    // `id` names the field itself, as in every other `*/get`.
    assert_eq!(s.ok(a, "subnets/fields/get", json!({"id": f["id"]})).await, got);
    let logs = s
        .ok(
            a,
            "org/logs",
            json!({"objecttype": "field", "method": "subnets/fields/add"}),
        )
        .await;
    assert_eq!(only(&logs["logs"])["objectid"], f["id"]);
}

#[tokio::test]
async fn add_checks_type_options_and_default() {
    let s = Server::start().await;
    let a = &s.admin;
    let net = subnet(&s, a, "2001:db8::/64").await;
    let ok = [
        (
            json!({"name": "n1", "type": "number", "default": "12"}),
            "number",
            json!("12"),
            json!([]),
        ),
        (
            json!({"name": "n2", "type": "Number", "default": " -7.5 "}),
            "number",
            json!("-7.5"),
            json!([]),
        ),
        (
            json!({"name": "n3", "type": "number", "default": 3}),
            "number",
            json!("3"),
            json!([]),
        ),
        (
            json!({"name": "b1", "type": "boolean", "default": "yes"}),
            "boolean",
            json!("true"),
            json!([]),
        ),
        (
            json!({"name": "b2", "type": "BOOLEAN", "default": 0}),
            "boolean",
            json!("false"),
            json!([]),
        ),
        (
            json!({"name": "b3", "type": "boolean"}),
            "boolean",
            json!(null),
            json!([]),
        ),
        (
            json!({"name": "s1", "type": "select", "options": ["a", "b"], "default": "b"}),
            "select",
            json!("b"),
            json!(["a", "b"]),
        ),
        (
            json!({"name": "s2", "type": "select", "options": "x, y,z"}),
            "select",
            json!(null),
            json!(["x", "y", "z"]),
        ),
        (
            json!({"name": "s3", "type": "select", "options": {"1": "p", "2": "q"}}),
            "select",
            json!(null),
            json!(["p", "q"]),
        ),
        (
            json!({"name": "t1", "required": "true", "position": "3"}),
            "text",
            json!(null),
            json!([]),
        ),
    ];
    for (mut data, kind, default, options) in ok {
        data["subnet"] = json!(net);
        let f = add(&s, a, data.clone()).await;
        assert_eq!(
            [&f["type"], &f["default"], &f["options"]],
            [&json!(kind), &default, &options],
            "{data}"
        );
    }
    let t1 = &names(&s, a, net).await;
    assert_eq!(t1.last().unwrap(), "t1", "position 3 sorts last: {t1:?}");

    let before = state(&s, a).await;
    for (data, field) in [
        (json!({"name": "x", "type": "date"}), "type"),
        (json!({"name": "x", "type": "number", "default": "abc"}), "default"),
        (json!({"name": "x", "type": "number", "default": "NaN"}), "default"),
        (json!({"name": "x", "type": "number", "default": "inf"}), "default"),
        (json!({"name": "x", "type": "boolean", "default": "maybe"}), "default"),
        (json!({"name": "x", "type": "select"}), "options"),
        (json!({"name": "x", "type": "select", "options": []}), "options"),
        (
            json!({"name": "x", "type": "select", "options": ["a"], "default": "c"}),
            "default",
        ),
        (json!({"name": "x", "type": "select", "options": [["a"]]}), "options"),
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(65)}), "name"),
        (json!({}), "name"),
        (json!({"name": "x", "required": "perhaps"}), "required"),
        (json!({"name": "x", "position": "first"}), "position"),
        (json!({"name": "x", "kind": "text"}), "kind"),
    ] {
        let mut data = data;
        data["subnet"] = json!(net);
        let body = s.check(a, "subnets/fields/add", data.clone(), "invalid_params").await;
        assert!(body["errorData"].get(field).is_some(), "{data}: {body}");
    }
    s.check(a, "subnets/fields/add", json!({"name": "x"}), "invalid_params")
        .await;
    s.check(
        a,
        "subnets/fields/add",
        json!({"subnet": 9999, "name": "x"}),
        "not_found",
    )
    .await;
    assert_eq!(state(&s, a).await, before);
    // 64 characters is the longest name.
    add(&s, a, json!({"subnet": net, "name": "x".repeat(64)})).await;
}

#[tokio::test]
async fn names_are_unique_per_subnet_whatever_their_case() {
    let s = Server::start().await;
    let a = &s.admin;
    let one = subnet(&s, a, "10.0.0.0/24").await;
    let two = subnet(&s, a, "10.0.1.0/24").await;
    let owner = add(&s, a, json!({"subnet": one, "name": "Owner"})).await;
    for name in ["Owner", "owner", "OWNER", " owner "] {
        s.check(
            a,
            "subnets/fields/add",
            json!({"subnet": one, "name": name}),
            "duplicate",
        )
        .await;
    }
    // Another subnet has its own names.
    add(&s, a, json!({"subnet": two, "name": "owner"})).await;
    let rack = add(&s, a, json!({"subnet": one, "name": "rack"})).await;
    // Renames follow the same rule, but a field may change the case of its own name.
    s.check(
        a,
        "subnets/fields/edit",
        json!({"id": id_of(&rack), "name": "OWNER"}),
        "duplicate",
    )
    .await;
    let renamed = edit(&s, a, json!({"id": id_of(&owner), "name": "OWNER"})).await;
    assert_eq!(renamed["name"], "OWNER");
    assert_eq!(names(&s, a, one).await, ["OWNER", "rack"]);
}

#[tokio::test]
async fn get_lists_a_subnets_fields_by_position_then_id() {
    let s = Server::start().await;
    let a = &s.admin;
    let net = subnet(&s, a, "10.0.0.0/24").await;
    let empty = subnet(&s, a, "2001:db8::/64").await;
    for (name, position) in [("c", 5), ("a", 1), ("b", 5), ("d", 0)] {
        add(&s, a, json!({"subnet": net, "name": name, "position": position})).await;
    }
    assert_eq!(names(&s, a, net).await, ["d", "a", "c", "b"]);
    assert_eq!(s.ok(a, "subnets/fields/get", json!({"subnet": empty})).await, json!([]));
    s.check(a, "subnets/fields/get", json!({"subnet": 9999}), "not_found")
        .await;
    for bad in [
        json!({}),
        json!({"subnet": net, "id": net}),
        json!({"subnet": "x"}),
        json!({"subnet": net, "x": 1}),
    ] {
        s.check(a, "subnets/fields/get", bad, "invalid_params").await;
    }
    // Moving a field moves it in the list.
    let fields = s.ok(a, "subnets/fields/get", json!({"subnet": net})).await;
    let c = keys(&fields)[2].clone();
    edit(&s, a, json!({"id": c, "position": -1})).await;
    assert_eq!(names(&s, a, net).await, ["c", "d", "a", "b"]);
}

#[tokio::test]
async fn get_by_id_reads_back_the_field_add_returned() {
    let s = Server::start().await;
    let a = &s.admin;
    let other = subnet(&s, a, "10.1.0.0/24").await;
    add(&s, a, json!({"subnet": other, "name": "elsewhere"})).await;
    let net = subnet(&s, a, "10.0.0.0/24").await;
    let mut added = Vec::new();
    for name in ["owner", "rack", "room"] {
        added.push(add(&s, a, json!({"subnet": net, "name": name})).await);
    }
    // Each field reads back by the id `subnets/fields/add` returned, alone and keyed by that id, whatever the ids
    // of the subnets (the first field's id is the id of another subnet here).
    for f in &added {
        let got = s.ok(a, "subnets/fields/get", json!({"id": f["id"]})).await;
        assert_eq!(keys(&got), [f["id"].as_str().unwrap()], "{got}");
        assert_eq!(only(&got), f);
    }
    // `subnet` lists a subnet's fields.
    assert_eq!(names(&s, a, net).await, ["owner", "rack", "room"]);
    // A deleted field is `not_found`, not another subnet's fields nor `[]`.
    let gone = id_of(&added[1]);
    s.ok(a, "subnets/fields/delete", json!({"id": gone})).await;
    s.check(a, "subnets/fields/get", json!({"id": gone}), "not_found").await;
    // A subnet's id given as `id` names no field of that id.
    let lone = subnet(&s, a, "10.2.0.0/24").await;
    if !added.iter().any(|f| id_of(f) == lone) {
        s.check(a, "subnets/fields/get", json!({"id": lone}), "not_found").await;
    }
    s.check(a, "subnets/fields/get", json!({"id": 9999}), "not_found").await;
}

#[tokio::test]
async fn edit_changes_the_definition_within_its_rules() {
    let s = Server::start().await;
    let a = &s.admin;
    let net = subnet(&s, a, "10.0.0.0/24").await;
    let f = add(
        &s,
        a,
        json!({"subnet": net, "name": "owner", "description": "who", "default": "ops"}),
    )
    .await;
    let id = id_of(&f);
    let e = edit(&s, a, json!({"id": id, "description": null})).await;
    assert_eq!(
        [&e["description"], &e["default"], &e["name"]],
        [&json!(null), &json!("ops"), &json!("owner")]
    );
    // A default must fit the type, old or new.
    let before = state(&s, a).await;
    for (data, field) in [
        (json!({"id": id, "type": "number"}), "default"),
        (json!({"id": id, "type": "select", "options": ["a"]}), "default"),
        (json!({"id": id, "type": "select", "default": null}), "options"),
        (json!({"id": id, "type": "colour"}), "type"),
        (json!({"id": id, "name": "y".repeat(65)}), "name"),
        (json!({"id": id, "required": "sometimes"}), "required"),
        (json!({"id": id, "subnet": net}), "subnet"),
    ] {
        let body = s.check(a, "subnets/fields/edit", data.clone(), "invalid_params").await;
        assert!(body["errorData"].get(field).is_some(), "{data}: {body}");
    }
    s.check(a, "subnets/fields/edit", json!({"name": "x"}), "invalid_params")
        .await;
    s.check(a, "subnets/fields/edit", json!({"id": 9999, "name": "x"}), "not_found")
        .await;
    assert_eq!(state(&s, a).await, before);
    // A name is never cleared: "" leaves it as it is, as for every required text (methods.md).
    assert_eq!(edit(&s, a, json!({"id": id, "name": ""})).await["name"], "owner");

    let e = edit(
        &s,
        a,
        json!({"id": id, "type": "number", "default": "42", "required": true}),
    )
    .await;
    assert_eq!(
        [&e["type"], &e["default"], &e["required"]],
        [&json!("number"), &json!("42"), &json!("true")]
    );
    let e = edit(
        &s,
        a,
        json!({"id": id, "type": "select", "options": "42,43", "default": ""}),
    )
    .await;
    assert_eq!(
        [&e["type"], &e["options"], &e["default"]],
        [&json!("select"), &json!(["42", "43"]), &json!(null)]
    );
    // Options of a select may change while the default stays one of them.
    edit(&s, a, json!({"id": id, "default": "43"})).await;
    let body = s
        .check(
            a,
            "subnets/fields/edit",
            json!({"id": id, "options": ["42"]}),
            "invalid_params",
        )
        .await;
    assert!(body["errorData"].get("default").is_some(), "{body}");
    let logs = s
        .ok(
            a,
            "org/logs",
            json!({"objecttype": "field", "objectid": id, "method": "subnets/fields/edit"}),
        )
        .await;
    assert_eq!(logs["total"], "5");
}

#[tokio::test]
async fn delete_removes_the_definition() {
    let s = Server::start().await;
    let a = &s.admin;
    let net = subnet(&s, a, "10.0.0.0/24").await;
    let f = id_of(&add(&s, a, json!({"subnet": net, "name": "owner"})).await);
    add(&s, a, json!({"subnet": net, "name": "rack"})).await;
    let gone = s.ok(a, "subnets/fields/delete", json!({"id": f})).await;
    assert_eq!(gone, json!({f.to_string(): {"id": f.to_string(), "deleted": "true"}}));
    assert_eq!(names(&s, a, net).await, ["rack"]);
    s.check(a, "subnets/fields/delete", json!({"id": f}), "not_found").await;
    s.check(a, "subnets/fields/edit", json!({"id": f, "name": "x"}), "not_found")
        .await;
    s.check(a, "subnets/fields/delete", json!({}), "invalid_params").await;
    // The name is free again.
    add(&s, a, json!({"subnet": net, "name": "Owner"})).await;
    let logs = s.ok(a, "org/logs", json!({"objecttype": "field", "objectid": f})).await;
    assert_eq!(logs["total"], "2");
}

#[tokio::test]
async fn values_follow_renames_defaults_retypes_and_deletes() {
    let s = Server::start().await;
    let a = &s.admin;
    let net = subnet(&s, a, "10.0.0.0/24").await;
    let owner = id_of(&add(&s, a, json!({"subnet": net, "name": "owner"})).await);
    let size = id_of(&add(&s, a, json!({"subnet": net, "name": "size"})).await);
    let r1 = record(&s, a, net, "10.0.0.1", json!({"owner": "ops", "size": "12"})).await;
    let r2 = record(&s, a, net, "10.0.0.2", json!({"OWNER": "dev", "size": "x"})).await;
    let r3 = record(&s, a, net, "10.0.0.3", json!({})).await;
    assert_eq!(values(&s, a, r1).await, json!({"owner": "ops", "size": "12"}));
    assert_eq!(values(&s, a, r2).await, json!({"owner": "dev", "size": "x"}));

    // A rename carries the values.
    edit(&s, a, json!({"id": owner, "name": "team"})).await;
    assert_eq!(values(&s, a, r1).await, json!({"team": "ops", "size": "12"}));
    // A retype must fit every stored value: "x" is no number.
    let before = state(&s, a).await;
    s.check(
        a,
        "subnets/fields/edit",
        json!({"id": size, "type": "number"}),
        "invalid_params",
    )
    .await;
    let body = s
        .check(
            a,
            "subnets/fields/edit",
            json!({"id": owner, "type": "select", "options": ["ops"]}),
            "invalid_params",
        )
        .await;
    assert!(message_names(&body, "1"), "{body}");
    assert_eq!(state(&s, a).await, before);
    s.ok(a, "ipaddress/edit", json!({"id": r2, "fields": {"size": " 7 "}}))
        .await;
    edit(&s, a, json!({"id": size, "type": "number"})).await;
    assert_eq!(values(&s, a, r2).await["size"], "7");
    let e = edit(&s, a, json!({"id": owner, "type": "select", "options": ["ops", "dev"]})).await;
    assert_eq!(e["options"], json!(["ops", "dev"]));
    // Dropping an option still in use is refused.
    s.check(
        a,
        "subnets/fields/edit",
        json!({"id": owner, "options": ["ops"]}),
        "invalid_params",
    )
    .await;

    // Required: refused while a record has no value; a new required field needs a default when records exist.
    s.check(
        a,
        "subnets/fields/edit",
        json!({"id": size, "required": true}),
        "invalid_params",
    )
    .await;
    let body = s
        .check(
            a,
            "subnets/fields/add",
            json!({"subnet": net, "name": "zone", "required": true}),
            "invalid_params",
        )
        .await;
    assert!(body["errorData"].get("required").is_some(), "{body}");
    // With a default, every existing record takes it.
    add(
        &s,
        a,
        json!({"subnet": net, "name": "zone", "required": true, "default": "dmz"}),
    )
    .await;
    for r in [r1, r2, r3] {
        assert_eq!(values(&s, a, r).await["zone"], "dmz");
    }
    // A boolean retype normalises the stored values.
    let flag = id_of(&add(&s, a, json!({"subnet": net, "name": "flag"})).await);
    s.ok(a, "ipaddress/edit", json!({"id": r1, "fields": {"flag": "yes"}}))
        .await;
    s.ok(a, "ipaddress/edit", json!({"id": r2, "fields": {"flag": "0"}}))
        .await;
    edit(&s, a, json!({"id": flag, "type": "boolean"})).await;
    assert_eq!(values(&s, a, r1).await["flag"], "true");
    assert_eq!(values(&s, a, r2).await["flag"], "false");

    // A deleted field takes its values along.
    s.ok(a, "subnets/fields/delete", json!({"id": owner})).await;
    assert_eq!(
        values(&s, a, r1).await,
        json!({"size": "12", "zone": "dmz", "flag": "true"})
    );
    // The value is gone from the database, not only from view: a new field of the old name starts empty.
    add(&s, a, json!({"subnet": net, "name": "team"})).await;
    assert!(values(&s, a, r1).await.get("team").is_none());
}

/// A record added with no field values takes its subnet's defaults and is refused while a required field has none
/// (the insert says whether the subnet defines fields at all); a subnet without fields refuses a value.
#[tokio::test]
async fn a_new_record_given_no_values_takes_the_defaults_and_needs_the_required_ones() {
    let s = Server::start().await;
    let a = &s.admin;
    let zoned = subnet(&s, a, "10.7.0.0/24").await;
    add(&s, a, json!({"subnet": zoned, "name": "zone", "default": "dmz"})).await;
    let r = s.ok(a, "ipaddress/add", json!({"subnet": zoned})).await;
    assert_eq!(values(&s, a, id_of(only(&r))).await, json!({"zone": "dmz"}));

    let owned = subnet(&s, a, "10.7.1.0/24").await;
    add(&s, a, json!({"subnet": owned, "name": "owner", "required": true})).await;
    let body = s
        .check(a, "ipaddress/add", json!({"subnet": owned}), "invalid_params")
        .await;
    assert!(message_names(&body, "owner"), "{body}");
    let r = s
        .ok(a, "ipaddress/add", json!({"subnet": owned, "fields": {"owner": "ops"}}))
        .await;
    assert_eq!(values(&s, a, id_of(only(&r))).await, json!({"owner": "ops"}));

    let plain = subnet(&s, a, "10.7.2.0/24").await;
    let r = s.ok(a, "ipaddress/add", json!({"subnet": plain})).await;
    assert_eq!(values(&s, a, id_of(only(&r))).await, json!({}));
    let body = s
        .check(
            a,
            "ipaddress/add",
            json!({"subnet": plain, "fields": {"zone": "x"}}),
            "invalid_params",
        )
        .await;
    assert!(message_names(&body, "zone"), "{body}");
}

/// Whether an error's message or errorData mentions `text`.
fn message_names(body: &Value, text: &str) -> bool {
    body["error"].as_str().unwrap().contains(text) || body["errorData"].to_string().contains(text)
}

#[tokio::test]
async fn readonly_users_read_fields_but_never_change_them() {
    let s = Server::start().await;
    let a = &s.admin;
    let reader = s.user(a, "reader", "readonly").await;
    let writer = s.user(a, "writer", "standard").await;
    let net = subnet(&s, a, "10.0.0.0/24").await;
    let f = id_of(&add(&s, a, json!({"subnet": net, "name": "owner"})).await);
    let before = state(&s, a).await;
    assert_eq!(names(&s, &reader, net).await, ["owner"]);
    for (method, data) in [
        ("subnets/fields/add", json!({"subnet": net, "name": "x"})),
        ("subnets/fields/edit", json!({"id": f, "name": "x"})),
        ("subnets/fields/delete", json!({"id": f})),
    ] {
        s.check(&reader, method, data, "access_denied").await;
    }
    assert_eq!(state(&s, a).await, before);
    let e = edit(&s, &writer, json!({"id": f, "name": "team"})).await;
    assert_eq!(e["user"], "writer");
    add(&s, &writer, json!({"subnet": net, "name": "rack"})).await;
    s.ok(&writer, "subnets/fields/delete", json!({"id": f})).await;
}

#[tokio::test]
async fn another_orgs_fields_do_not_exist() {
    let s = Server::start().await;
    let a = &s.admin;
    let b = s.org("orgb").await;
    let net = subnet(&s, a, "10.0.0.0/24").await;
    let f = id_of(&add(&s, a, json!({"subnet": net, "name": "owner"})).await);
    let theirs = subnet(&s, &b, "10.0.0.0/24").await;
    let their_field = id_of(&add(&s, &b, json!({"subnet": theirs, "name": "owner"})).await);
    let before = state(&s, a).await;
    for (method, data) in [
        ("subnets/fields/get", json!({"subnet": net})),
        ("subnets/fields/get", json!({"id": f})),
        ("subnets/fields/add", json!({"subnet": net, "name": "x"})),
        ("subnets/fields/edit", json!({"id": f, "name": "x"})),
        ("subnets/fields/edit", json!({"id": f, "type": "number"})),
        ("subnets/fields/delete", json!({"id": f})),
    ] {
        s.check(&b, method, data, "not_found").await;
    }
    assert_eq!(state(&s, a).await, before);
    // And the other way round.
    s.check(
        a,
        "subnets/fields/edit",
        json!({"id": their_field, "name": "x"}),
        "not_found",
    )
    .await;
    s.check(a, "subnets/fields/get", json!({"subnet": theirs}), "not_found")
        .await;
    s.check(a, "subnets/fields/get", json!({"id": their_field}), "not_found")
        .await;
    assert_eq!(names(&s, &b, theirs).await, ["owner"]);
}
