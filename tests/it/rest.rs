//! The `/api/v1` REST adapter over a real socket: every route of `rest::ROUTES` in the seed's shapes, the error
//! paths, tokens and the audit log, org isolation, and parity with the `/1.0` envelope API.

use std::collections::BTreeSet;

use hyper::Method;
use serde_json::{json, Map, Value};

use crate::support::{http, id_of, only, Reply, Server};

/// The fields of a network: the seed's, plus `group_id` (the group filter of the list).
pub const NETWORK_KEYS: [&str; 14] = [
    "id",
    "network",
    "cidr",
    "broadcast_address",
    "name",
    "domain",
    "vlan_id",
    "description",
    "location",
    "group_id",
    "total_hosts",
    "used_hosts",
    "available_hosts",
    "version",
];

/// The fields of a host: the seed's, plus the custom `fields` of its network.
pub const HOST_KEYS: [&str; 14] = [
    "id",
    "ip_address",
    "hostname",
    "cname",
    "mac_address",
    "status",
    "is_assigned",
    "last_seen",
    "discovery_source",
    "description",
    "network_id",
    "network",
    "fields",
    "version",
];

pub const RANGE_KEYS: [&str; 7] = [
    "id",
    "network_id",
    "start_ip",
    "end_ip",
    "description",
    "is_active",
    "version",
];

/// The short network of `GET /ip/{ip}`.
const SHORT_NETWORK_KEYS: [&str; 6] = ["id", "network", "name", "domain", "vlan_id", "location"];

/// 2^80 - 1: the usable addresses of an IPv6 /48 (all but the subnet-router anycast address).
const V6_48_USABLE: &str = "1208925819614629174706175";

/// 2025-12-28T10:01:58Z in unix seconds.
const SEEN: i64 = 1_766_916_118;

/// A REST caller: a server and the token it presents.
pub struct Client<'a> {
    pub s: &'a Server,
    pub token: String,
}

impl Client<'_> {
    /// `verb path` with `body`, expecting the success `status`: the JSON body (`Null` for a 204, which has none).
    pub async fn ok(&self, verb: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let r = self.s.api(verb.clone(), path, &self.token, body.as_ref()).await;
        let what = describe(&verb, path, &body, &r);
        assert_eq!(r.status, status, "{what}");
        if status == 204 {
            assert!(r.body.is_empty(), "a 204 has no body: {what}");
            return Value::Null;
        }
        assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
        r.json()
    }

    /// `verb path` with `body`, expecting an error answer with `status` and `code`: its JSON body.
    pub async fn fail(&self, verb: Method, path: &str, body: Option<Value>, status: u16, code: &str) -> Value {
        self.refused(verb, path, body, status, code)
            .await
            .unwrap_or_else(|problem| panic!("{problem}"))
    }

    /// Like [`Client::fail`], but a wrong answer is returned as a description rather than a panic, so that a
    /// table of cases can report every case that fails at once.
    pub async fn refused(
        &self,
        verb: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
        code: &str,
    ) -> Result<Value, String> {
        let r = self.s.api(verb.clone(), path, &self.token, body.as_ref()).await;
        error_check(&r, status, code).map_err(|e| format!("{e}: {}", describe(&verb, path, &body, &r)))
    }

    pub async fn get(&self, path: &str) -> Value {
        self.ok(Method::GET, path, None, 200).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.ok(Method::POST, path, Some(body), 201).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        self.ok(Method::PUT, path, Some(body), 200).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Value {
        self.ok(Method::PATCH, path, Some(body), 200).await
    }

    pub async fn delete(&self, path: &str) {
        self.ok(Method::DELETE, path, None, 204).await;
    }

    /// An `invalid_params` 400 whose `errors` name `field`.
    pub async fn invalid(&self, verb: Method, path: &str, body: Option<Value>, field: &str) -> Value {
        self.invalid_check(verb, path, body, field)
            .await
            .unwrap_or_else(|problem| panic!("{problem}"))
    }

    /// [`Client::invalid`] without the panic.
    pub async fn invalid_check(
        &self,
        verb: Method,
        path: &str,
        body: Option<Value>,
        field: &str,
    ) -> Result<Value, String> {
        let e = self
            .refused(verb.clone(), path, body.clone(), 400, "invalid_params")
            .await?;
        if e["errors"][field].as_str().is_some_and(|m| !m.is_empty()) {
            Ok(e)
        } else {
            Err(format!("{verb} {path} {body:?}: errors should name {field}: {e}"))
        }
    }
}

pub fn client<'a>(s: &'a Server, token: &str) -> Client<'a> {
    Client {
        s,
        token: token.to_string(),
    }
}

fn describe(verb: &Method, path: &str, body: &Option<Value>, r: &Reply) -> String {
    let sent = body.as_ref().map(Value::to_string).unwrap_or_default();
    format!(
        "{verb} {path} {sent} → {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    )
}

/// Checks a REST error answer: the status, a JSON body `{message, code, errors?}` (or `details` for business
/// rules), and returns the body.
pub fn error_of(r: &Reply, status: u16, code: &str, what: &str) -> Value {
    error_check(r, status, code)
        .unwrap_or_else(|e| panic!("{what}: {e}: {} {}", r.status, String::from_utf8_lossy(&r.body)))
}

/// [`error_of`] without the panic: what is wrong with the answer, if anything.
pub fn error_check(r: &Reply, status: u16, code: &str) -> Result<Value, String> {
    if r.status != status {
        return Err(format!("expected {status} {code}, got {}", r.status));
    }
    if r.header("content-type") != Some("application/json") {
        return Err(format!("content type {:?}", r.header("content-type")));
    }
    let body: Value = serde_json::from_slice(&r.body).map_err(|e| format!("not JSON: {e}"))?;
    if body["code"] != json!(code) {
        return Err(format!("expected code {code}"));
    }
    if body["message"].as_str().is_none_or(str::is_empty) {
        return Err("no message".into());
    }
    for key in body
        .as_object()
        .map(|m| m.keys().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if !["message", "code", "errors", "details"].contains(&key.as_str()) {
            return Err(format!("unexpected key {key}"));
        }
    }
    if let Some(errors) = body.get("errors") {
        if errors.as_object().is_none_or(Map::is_empty) {
            return Err("errors is not an object naming fields".into());
        }
    }
    Ok(body)
}

/// Fails with every problem of a table of cases, one per line.
pub fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} case(s) failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Asserts that `v` is an object with exactly the keys `expected`.
pub fn assert_keys(v: &Value, expected: &[&str]) {
    let got: BTreeSet<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(got, want, "{v}");
}

/// The `data` array of a list answer.
pub fn data(list: &Value) -> &Vec<Value> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {list}"))
}

/// The ids of the records of a list answer, in order.
pub fn ids(list: &Value) -> Vec<i64> {
    data(list).iter().map(num_id).collect()
}

/// A REST record's id, which must be a JSON number.
pub fn num_id(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no numeric id: {record}"))
}

/// The JSON number that follows `"key":` in a raw body, as written (exact, whatever its size).
pub fn raw_number(body: &[u8], key: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let needle = format!("\"{key}\":");
    let at = text.find(&needle).unwrap_or_else(|| panic!("no {key} in {text}"));
    text[at + needle.len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

/// A host without its `network`, which `hosts_name_their_network_as_a_cidr` checks on every route that shows
/// hosts, and without its `version`, which the version tests check; the other tests compare the rest, so that each
/// fails for its own subject.
pub fn except_network(host: &Value) -> Value {
    let mut h = host.clone();
    if let Some(m) = h.as_object_mut() {
        m.remove("network");
        m.remove("version");
    }
    h
}

/// The seed's office network, made through REST: its id.
async fn office(c: &Client<'_>) -> i64 {
    let n = c
        .post(
            "/networks",
            json!({"network": "192.168.1.0", "cidr": 24, "name": "Office Network", "domain": "office.local",
                   "vlan_id": 100, "description": "Main office network", "location": "Building A"}),
        )
        .await;
    num_id(&n)
}

/// The seed's web server host in network `net`.
fn web_server(net: i64) -> Value {
    json!({"ip_address": "192.168.1.10", "hostname": "server01", "cname": "web", "mac_address": "aa:bb:cc:dd:ee:ff",
           "status": "active", "is_assigned": true, "last_seen": "2025-12-28T10:01:58", "discovery_source": "nmap",
           "description": "Web server", "network_id": net})
}

#[tokio::test]
async fn networks_have_the_seed_shape() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let created = c
        .post(
            "/networks",
            json!({"network": "192.168.1.0", "cidr": 24, "name": "Office Network", "domain": "office.local",
                   "vlan_id": 100, "description": "Main office network", "location": "Building A"}),
        )
        .await;
    assert_keys(&created, &NETWORK_KEYS);
    let id = num_id(&created);
    assert_eq!(
        created,
        json!({"id": id, "network": "192.168.1.0", "cidr": 24, "broadcast_address": "192.168.1.255",
               "name": "Office Network", "domain": "office.local", "vlan_id": 100,
               "description": "Main office network", "location": "Building A", "group_id": null,
               "total_hosts": 254, "used_hosts": 0, "available_hosts": 254, "version": 1})
    );
    assert_eq!(c.get(&format!("/networks/{id}")).await, created);

    let list = c.get("/networks").await;
    assert_keys(&list, &["data", "pagination"]);
    assert_eq!(list["data"], json!([created]));
    assert_eq!(
        list["pagination"],
        json!({"page": 1, "per_page": 50, "total_items": 1, "total_pages": 1})
    );

    // A host and an active DHCP range show in the counts, as numbers.
    c.post("/hosts", web_server(id)).await;
    c.post(
        &format!("/networks/{id}/dhcp-ranges"),
        json!({"start_ip": "192.168.1.100", "end_ip": "192.168.1.150"}),
    )
    .await;
    let counted = c.get(&format!("/networks/{id}")).await;
    assert_eq!(
        (
            &counted["total_hosts"],
            &counted["used_hosts"],
            &counted["available_hosts"]
        ),
        (&json!(254), &json!(1), &json!(254 - 1 - 51))
    );

    // Small networks follow the usable-address rules.
    for (cidr, total, broadcast) in [(30, 2, json!("10.7.0.3")), (31, 2, Value::Null), (32, 1, Value::Null)] {
        let n = c.post("/networks", json!({"network": "10.7.0.0", "cidr": cidr})).await;
        assert_eq!(
            (&n["total_hosts"], &n["broadcast_address"]),
            (&json!(total), &broadcast),
            "/{cidr}: {n}"
        );
        c.delete(&format!("/networks/{}", num_id(&n))).await;
    }
}

#[tokio::test]
async fn network_lists_filter_and_paginate_by_id() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let group = id_of(only(
        &s.ok(&s.admin, "groups/add", json!({"description": "site b"})).await,
    ));
    // Made in an order that differs from address order: lists are ordered by id.
    let mut made = Vec::new();
    for body in [
        json!({"network": "10.3.0.0", "cidr": 24, "name": "Lab", "domain": "lab.local", "vlan_id": 30,
               "location": "Building B"}),
        json!({"network": "10.1.0.0", "cidr": 24, "name": "Office Network", "domain": "office.local",
               "vlan_id": 10, "location": "Building A"}),
        json!({"network": "10.2.0.0", "cidr": 24, "name": "Office Annex", "domain": "corp.local", "vlan_id": 20,
               "location": "Building A"}),
        json!({"network": "10.1.0.0", "cidr": 24, "name": "Site B office", "group_id": group}),
    ] {
        made.push(num_id(&c.post("/networks", body).await));
    }
    let [lab, office, annex, site_b] = made[..] else {
        unreachable!()
    };
    assert_eq!(ids(&c.get("/networks").await), [lab, office, annex, site_b]);
    let cases: Vec<(String, Vec<i64>)> = vec![
        ("name=Office".into(), vec![office, annex, site_b]),
        ("name=office%20network".into(), vec![office]),
        ("domain=office.local".into(), vec![office]),
        ("domain=local".into(), vec![lab, office, annex]),
        ("vlan_id=20".into(), vec![annex]),
        ("location=Building%20A".into(), vec![office, annex]),
        (format!("group_id={group}"), vec![site_b]),
        ("location=Building%20A&vlan_id=10".into(), vec![office]),
        ("name=nothing-like-this".into(), vec![]),
    ];
    for (query, expected) in &cases {
        let list = c.get(&format!("/networks?{query}")).await;
        assert_eq!(&ids(&list), expected, "?{query}: {list}");
        assert_eq!(list["pagination"]["total_items"], json!(expected.len()), "?{query}");
    }

    let page1 = c.get("/networks?per_page=3").await;
    assert_eq!(ids(&page1), [lab, office, annex]);
    assert_eq!(
        page1["pagination"],
        json!({"page": 1, "per_page": 3, "total_items": 4, "total_pages": 2})
    );
    let page2 = c.get("/networks?per_page=3&page=2").await;
    assert_eq!(ids(&page2), [site_b]);
    assert_eq!(
        page2["pagination"],
        json!({"page": 2, "per_page": 3, "total_items": 4, "total_pages": 2})
    );
    let beyond = c.get("/networks?per_page=3&page=9").await;
    assert_eq!(beyond["data"], json!([]));
    assert_eq!(beyond["pagination"]["total_items"], json!(4));
    let all = c.get("/networks?per_page=1000").await;
    assert_eq!(all["pagination"]["per_page"], json!(1000));
}

/// Groups, users, app keys, tokens and a network's custom fields page as networks do: 50 a page unless `per_page`
/// says, `page` from 1, and a `pagination` that counts them all; a group tree pages its top-level groups.
#[tokio::test]
async fn every_list_resource_paginates() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    let fields = format!("/networks/{net}/custom-fields");
    for i in 0..3 {
        c.post("/groups", json!({"description": format!("group {i}")})).await;
        let user = json!({"username": format!("user{i}"), "email": "u@example.org", "password": "s3cret-s3cret"});
        c.post("/users", user).await;
        c.post("/app-keys", json!({"name": format!("key {i}")})).await;
        c.post("/tokens", json!({"description": format!("token {i}")})).await;
        c.post(&fields, json!({"name": format!("field{i}")})).await;
    }
    for path in ["/groups", "/users", "/app-keys", "/tokens", fields.as_str()] {
        let all = c.get(path).await;
        let every = ids(&all);
        let total = every.len();
        assert!(total >= 3, "{path}: {all}");
        assert_eq!(
            all["pagination"],
            json!({"page": 1, "per_page": 50, "total_items": total, "total_pages": 1}),
            "{path}"
        );
        let page = c.get(&format!("{path}?per_page=2&page=2")).await;
        assert_eq!(ids(&page), every[2..total.min(4)], "{path}: {page}");
        assert_eq!(
            page["pagination"],
            json!({"page": 2, "per_page": 2, "total_items": total, "total_pages": total.div_ceil(2)}),
            "{path}"
        );
        let beyond = c.get(&format!("{path}?per_page=2&page=99")).await;
        assert_eq!(beyond["data"], json!([]), "{path}");
        c.invalid(Method::GET, &format!("{path}?per_page=1001"), None, "per_page")
            .await;
    }
    let tree = c.get("/groups?tree=true&per_page=1&page=2").await;
    assert_eq!(data(&tree).len(), 1, "{tree}");
    assert_eq!(tree["data"][0]["description"], json!("group 1"), "{tree}");
    assert_eq!(tree["pagination"]["total_items"], json!(3), "{tree}");
}

/// A record without its `version`, which every change moves: for comparing what a change left with what was read.
fn unversioned(mut record: Value) -> Value {
    record.as_object_mut().unwrap().shift_remove("version");
    record
}

#[tokio::test]
async fn put_replaces_and_patch_changes_a_network() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let id = office(&c).await;
    let path = format!("/networks/{id}");
    let got = c.get(&path).await;

    // What a GET gave can be PUT back as it is: the read-only fields are ignored.
    assert_eq!(unversioned(c.put(&path, got.clone()).await), unversioned(got.clone()));
    let mut tampered = got.clone();
    for (k, v) in [
        ("id", json!(999)),
        ("broadcast_address", json!("1.2.3.4")),
        ("total_hosts", json!(1)),
        ("used_hosts", json!(77)),
        ("available_hosts", json!(0)),
    ] {
        tampered[k] = v;
    }
    assert_eq!(unversioned(c.put(&path, tampered).await), unversioned(got.clone()));

    // PUT needs the required fields and clears omitted optional ones.
    c.invalid(
        Method::PUT,
        &path,
        Some(json!({"network": "192.168.1.0", "name": "x"})),
        "cidr",
    )
    .await;
    c.invalid(Method::PUT, &path, Some(json!({"cidr": 24})), "network")
        .await;
    assert_eq!(
        unversioned(c.get(&path).await),
        unversioned(got.clone()),
        "a refused PUT changes nothing"
    );
    let bare = c
        .put(&path, json!({"network": "192.168.1.0", "cidr": 24, "name": "Renamed"}))
        .await;
    let mut expected = got.clone();
    for k in ["domain", "vlan_id", "description", "location"] {
        expected[k] = Value::Null;
    }
    expected["name"] = json!("Renamed");
    assert_eq!(unversioned(bare), unversioned(expected.clone()));

    // PATCH changes only what it is given; null clears.
    c.put(&path, got.clone()).await;
    let patched = c.patch(&path, json!({"name": "Patched", "vlan_id": 200})).await;
    let mut expected = got.clone();
    expected["name"] = json!("Patched");
    expected["vlan_id"] = json!(200);
    assert_eq!(unversioned(patched), unversioned(expected.clone()));
    let cleared = c.patch(&path, json!({"domain": null, "location": null})).await;
    expected["domain"] = Value::Null;
    expected["location"] = Value::Null;
    assert_eq!(unversioned(cleared), unversioned(expected.clone()));
    assert_eq!(
        unversioned(c.patch(&path, json!({})).await),
        unversioned(expected.clone())
    );
    assert_eq!(unversioned(c.get(&path).await), unversioned(expected.clone()));

    // PATCH may change the range when everything still fits.
    let grown = c.patch(&path, json!({"network": "192.168.0.0", "cidr": 23})).await;
    assert_eq!(
        (&grown["network"], &grown["cidr"], &grown["total_hosts"]),
        (&json!("192.168.0.0"), &json!(23), &json!(510))
    );
    c.invalid(Method::PATCH, &path, Some(json!({"vlan_id": 5000})), "vlan_id")
        .await;
    c.fail(
        Method::PATCH,
        &path,
        Some(json!({"cidr": 24, "network": "192.168.1.1"})),
        400,
        "invalid_subnet",
    )
    .await;
}

#[tokio::test]
async fn delete_of_a_network_with_hosts_needs_force() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let id = office(&c).await;
    let host = num_id(&c.post("/hosts", web_server(id)).await);
    let range = num_id(
        &c.post(
            &format!("/networks/{id}/dhcp-ranges"),
            json!({"start_ip": "192.168.1.100", "end_ip": "192.168.1.150"}),
        )
        .await,
    );
    let path = format!("/networks/{id}");
    c.fail(Method::DELETE, &path, None, 400, "not_empty").await;
    c.fail(Method::DELETE, &format!("{path}?force=false"), None, 400, "not_empty")
        .await;
    c.get(&format!("/hosts/{host}")).await;
    c.delete(&format!("{path}?force=true")).await;
    for gone in [path.clone(), format!("/hosts/{host}"), format!("/dhcp-ranges/{range}")] {
        c.fail(Method::GET, &gone, None, 404, "not_found").await;
    }
    // An empty network needs no force.
    let empty = office(&c).await;
    c.delete(&format!("/networks/{empty}")).await;
    c.fail(Method::DELETE, &format!("/networks/{empty}"), None, 404, "not_found")
        .await;
    assert_eq!(c.get("/networks").await["data"], json!([]));
}

#[tokio::test]
async fn hosts_have_the_seed_shape() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    let created = c
        .post(
            "/hosts",
            json!({"ip_address": "192.168.1.100", "hostname": "server02", "cname": "api",
                   "mac_address": "11:22:33:44:55:66", "status": "active", "is_assigned": true,
                   "last_seen": "2025-12-28T10:01:58", "discovery_source": "nmap", "description": "API server",
                   "network_id": net}),
        )
        .await;
    assert_keys(&created, &HOST_KEYS);
    let id = num_id(&created);
    assert_eq!(
        except_network(&created),
        json!({"id": id, "ip_address": "192.168.1.100", "hostname": "server02", "cname": "api",
               "mac_address": "11:22:33:44:55:66", "status": "active", "is_assigned": true,
               "last_seen": "2025-12-28T10:01:58Z", "discovery_source": "nmap", "description": "API server",
               "network_id": net, "fields": {}})
    );
    assert_eq!(c.get(&format!("/hosts/{id}")).await, created);

    // last_seen in every accepted form comes back as RFC 3339 UTC with Z; MACs come back normalised.
    let path = format!("/hosts/{id}");
    for seen in [
        json!("2025-12-28T10:01:58Z"),
        json!("2025-12-28T12:01:58+02:00"),
        json!("2025-12-28T10:01:58.750Z"),
        json!(SEEN),
        json!(SEEN.to_string()),
    ] {
        let h = c.patch(&path, json!({"last_seen": seen})).await;
        assert_eq!(h["last_seen"], json!("2025-12-28T10:01:58Z"), "{seen}");
    }
    assert_eq!(
        c.patch(&path, json!({"last_seen": null})).await["last_seen"],
        Value::Null
    );
    c.invalid(
        Method::PATCH,
        &path,
        Some(json!({"last_seen": "yesterday"})),
        "last_seen",
    )
    .await;
    for mac in ["AA-BB-CC-00-11-22", "aabb.cc00.1122", "AABBCC001122"] {
        let h = c.patch(&path, json!({"mac_address": mac})).await;
        assert_eq!(h["mac_address"], json!("aa:bb:cc:00:11:22"), "{mac}");
    }
    c.invalid(
        Method::PATCH,
        &path,
        Some(json!({"mac_address": "zz:zz"})),
        "mac_address",
    )
    .await;
    c.invalid(Method::PATCH, &path, Some(json!({"status": "broken"})), "status")
        .await;
    c.invalid(
        Method::PATCH,
        &path,
        Some(json!({"is_assigned": "perhaps"})),
        "is_assigned",
    )
    .await;

    // The record shows in the network's counts; deleting it frees the address.
    assert_eq!(c.get(&format!("/networks/{net}")).await["used_hosts"], json!(1));
    c.delete(&path).await;
    c.fail(Method::GET, &path, None, 404, "not_found").await;
    c.fail(Method::DELETE, &path, None, 404, "not_found").await;
    assert_eq!(c.get(&format!("/networks/{net}")).await["used_hosts"], json!(0));

    // The list shows the same record.
    let again = c.post("/hosts", json!({"ip_address": "192.168.1.100"})).await;
    let list = c.get("/hosts").await;
    assert_eq!(list["data"], json!([again]));
    assert_eq!(
        list["pagination"],
        json!({"page": 1, "per_page": 50, "total_items": 1, "total_pages": 1})
    );
}

#[tokio::test]
async fn hosts_name_their_network_as_a_cidr() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    let made = c.post("/hosts", web_server(net)).await;
    let id = num_id(&made);
    let path = format!("/hosts/{id}");
    let mut shown = vec![("POST /hosts", made.clone())];
    shown.push(("GET /hosts/{id}", c.get(&path).await));
    shown.push(("PATCH /hosts/{id}", c.patch(&path, json!({"cname": "www"})).await));
    shown.push(("PUT /hosts/{id}", c.put(&path, made.clone()).await));
    shown.push((
        "POST /ip/networks/{id}/next-ip",
        c.ok(Method::POST, &format!("/ip/networks/{net}/next-ip"), None, 201)
            .await,
    ));
    let lists = [
        ("GET /hosts", "/hosts".to_string(), "data"),
        ("GET /networks/{id}/hosts", format!("/networks/{net}/hosts"), "hosts"),
    ];
    let mut problems = Vec::new();
    for (what, list, key) in lists {
        let r = s.api(Method::GET, &list, &s.admin_token, None).await;
        match serde_json::from_slice::<Value>(&r.body) {
            Ok(v) if r.status == 200 => shown.push((what, v[key][0].clone())),
            other => problems.push(format!("{what}: {} {other:?}", r.status)),
        }
    }
    let r = s.api(Method::GET, "/ip/192.168.1.10", &s.admin_token, None).await;
    match serde_json::from_slice::<Value>(&r.body) {
        Ok(v) if r.status == 200 => shown.push(("GET /ip/{ip}", v["host"].clone())),
        other => problems.push(format!("GET /ip/{{ip}}: {} {other:?}", r.status)),
    }
    for (what, host) in shown {
        if host["network"] != json!("192.168.1.0/24") {
            problems.push(format!("{what}: network should be 192.168.1.0/24: {host}"));
        }
    }
    assert_no_problems(&problems);
}

#[tokio::test]
async fn post_hosts_finds_the_network_or_allocates_in_it() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    // Networks of one group never overlap: the narrower one is in a group of its own.
    let group = id_of(only(&s.ok(&s.admin, "groups/add", json!({"description": "lab"})).await));
    let inner = num_id(
        &c.post(
            "/networks",
            json!({"network": "192.168.1.128", "cidr": 25, "name": "inner", "group_id": group}),
        )
        .await,
    );
    // Without network_id, the most specific network that holds the address.
    let a = c.post("/hosts", json!({"ip_address": "192.168.1.20"})).await;
    assert_eq!(a["network_id"], json!(net));
    let b = c.post("/hosts", json!({"ip_address": "192.168.1.200"})).await;
    assert_eq!(b["network_id"], json!(inner));
    // Omitted status and is_assigned take their defaults (HOST_ASSIGN_ON_CREATE is true by default).
    assert_eq!(
        (&a["status"], &a["is_assigned"], &a["hostname"]),
        (&json!("active"), &json!(true), &Value::Null)
    );
    // An explicit network_id must exist and hold the address.
    c.post("/hosts", json!({"ip_address": "192.168.1.201", "network_id": net}))
        .await;
    c.invalid(
        Method::POST,
        "/hosts",
        Some(json!({"ip_address": "192.168.1.50", "network_id": inner})),
        "ip_address",
    )
    .await;
    c.fail(
        Method::POST,
        "/hosts",
        Some(json!({"ip_address": "192.168.1.50", "network_id": 999_999})),
        404,
        "not_found",
    )
    .await;
    // network_id without ip_address allocates the lowest free address.
    let next = c.post("/hosts", json!({"network_id": net, "hostname": "auto"})).await;
    assert_eq!(
        (&next["ip_address"], &next["hostname"]),
        (&json!("192.168.1.1"), &json!("auto"))
    );
    // An address no network holds, and a taken one.
    c.fail(
        Method::POST,
        "/hosts",
        Some(json!({"ip_address": "172.16.0.1"})),
        404,
        "not_found",
    )
    .await;
    c.fail(
        Method::POST,
        "/hosts",
        Some(json!({"ip_address": "192.168.1.20"})),
        400,
        "duplicate",
    )
    .await;
    c.invalid(
        Method::POST,
        "/hosts",
        Some(json!({"ip_address": "192.168.1.300"})),
        "ip_address",
    )
    .await;
    c.invalid(
        Method::POST,
        "/hosts",
        Some(json!({"hostname": "nowhere"})),
        "ip_address",
    )
    .await;
}

#[tokio::test]
async fn put_replaces_and_patch_changes_a_host() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    let id = num_id(&c.post("/hosts", web_server(net)).await);
    let path = format!("/hosts/{id}");
    let got = c.get(&path).await;

    // GET then PUT of the same body round-trips; id and network are read-only and ignored.
    assert_eq!(unversioned(c.put(&path, got.clone()).await), unversioned(got.clone()));
    let mut tampered = got.clone();
    tampered["id"] = json!(424_242);
    tampered["network"] = json!("10.0.0.0/8");
    assert_eq!(unversioned(c.put(&path, tampered).await), unversioned(got.clone()));

    // PUT needs ip_address; omitted optional fields are cleared, status and is_assigned reset to their defaults.
    c.invalid(Method::PUT, &path, Some(json!({"hostname": "x"})), "ip_address")
        .await;
    c.invalid(
        Method::PUT,
        &path,
        Some(json!({"ip_address": null, "hostname": "x"})),
        "ip_address",
    )
    .await;

    // PATCH changes only the given fields; null clears one.
    let patched = c
        .patch(&path, json!({"hostname": "server01-new", "is_assigned": false}))
        .await;
    let mut expected = got.clone();
    expected["hostname"] = json!("server01-new");
    expected["is_assigned"] = json!(false);
    assert_eq!(unversioned(patched), unversioned(expected.clone()));
    let cleared = c.patch(&path, json!({"cname": null, "description": null})).await;
    expected["cname"] = Value::Null;
    expected["description"] = Value::Null;
    assert_eq!(unversioned(cleared), unversioned(expected.clone()));
    let moved = c.patch(&path, json!({"ip_address": "192.168.1.12"})).await;
    expected["ip_address"] = json!("192.168.1.12");
    assert_eq!(unversioned(moved), unversioned(expected.clone()));
    assert_eq!(unversioned(c.get(&path).await), unversioned(expected.clone()));

    // A second network: the host moves with an explicit network_id that holds its address.
    let other = num_id(&c.post("/networks", json!({"network": "10.5.0.0", "cidr": 24})).await);
    c.invalid(Method::PATCH, &path, Some(json!({"network_id": other})), "ip_address")
        .await;
    let rehomed = c
        .patch(&path, json!({"network_id": other, "ip_address": "10.5.0.9"}))
        .await;
    assert_eq!(
        (&rehomed["network_id"], &rehomed["ip_address"]),
        (&json!(other), &json!("10.5.0.9"))
    );

    // PUT clears the optional fields it omits, and resets status and is_assigned to their defaults.
    c.patch(&path, json!({"status": "reserved", "is_assigned": false}))
        .await;
    let bare = c.put(&path, json!({"ip_address": "10.5.0.11"})).await;
    assert_eq!(
        except_network(&bare),
        json!({"id": id, "ip_address": "10.5.0.11", "hostname": null, "cname": null, "mac_address": null,
               "status": "active", "is_assigned": true, "last_seen": null, "discovery_source": null,
               "description": null, "network_id": other, "fields": {}})
    );
}

#[tokio::test]
async fn host_lists_filter_and_paginate_by_id() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let a = num_id(&c.post("/networks", json!({"network": "10.1.0.0", "cidr": 24})).await);
    let b = num_id(&c.post("/networks", json!({"network": "10.2.0.0", "cidr": 24})).await);
    // Made in an order that differs from address order: lists are ordered by id.
    let mut made = Vec::new();
    for body in [
        json!({"ip_address": "10.1.0.9", "hostname": "web01", "cname": "www", "mac_address": "aa:bb:cc:00:00:01"}),
        json!({"ip_address": "10.1.0.2", "hostname": "WEB02.example", "cname": "api", "status": "inactive",
               "is_assigned": false}),
        json!({"ip_address": "10.2.0.3", "hostname": "db01", "cname": "db-web", "status": "reserved",
               "mac_address": "aa:bb:cc:00:00:03"}),
        json!({"ip_address": "10.2.0.4", "hostname": "100%_sure"}),
        json!({"ip_address": "10.1.0.5", "hostname": "xweb1"}),
    ] {
        made.push(num_id(&c.post("/hosts", body).await));
    }
    let [web01, web02, db01, pct, xweb] = made[..] else {
        unreachable!()
    };
    assert_eq!(ids(&c.get("/hosts").await), [web01, web02, db01, pct, xweb]);
    let cases: Vec<(String, Vec<i64>)> = vec![
        ("hostname=web".into(), vec![web01, web02, xweb]),
        ("hostname=WEB0".into(), vec![web01, web02]),
        ("hostname=web*".into(), vec![web01, web02]),
        ("hostname=*01".into(), vec![web01, db01]),
        ("hostname=web0%3F".into(), vec![web01]),
        ("hostname=%25".into(), vec![pct]),
        ("hostname=_".into(), vec![pct]),
        ("hostname=w_b".into(), vec![]),
        ("cname=web".into(), vec![db01]),
        ("cname=WWW".into(), vec![web01]),
        ("status=inactive".into(), vec![web02]),
        ("status=reserved".into(), vec![db01]),
        ("status=active".into(), vec![web01, pct, xweb]),
        ("is_assigned=false".into(), vec![web02]),
        ("is_assigned=true".into(), vec![web01, db01, pct, xweb]),
        ("mac_address=aa:bb:cc:00:00:03".into(), vec![db01]),
        ("mac_address=AA:BB:CC:00:00:01".into(), vec![web01]),
        (format!("network_id={b}"), vec![db01, pct]),
        (format!("network_id={a}&hostname=web"), vec![web01, web02, xweb]),
        (format!("network_id={a}&status=active"), vec![web01, xweb]),
    ];
    for (query, expected) in &cases {
        let list = c.get(&format!("/hosts?{query}")).await;
        assert_eq!(&ids(&list), expected, "?{query}: {list}");
        assert_eq!(list["pagination"]["total_items"], json!(expected.len()), "?{query}");
    }
    c.invalid(Method::GET, "/hosts?status=broken", None, "status").await;
    c.invalid(Method::GET, "/hosts?is_assigned=perhaps", None, "is_assigned")
        .await;

    let page = c.get("/hosts?per_page=2&page=2").await;
    assert_eq!(ids(&page), [db01, pct]);
    assert_eq!(
        page["pagination"],
        json!({"page": 2, "per_page": 2, "total_items": 5, "total_pages": 3})
    );
    assert_eq!(ids(&c.get("/hosts?per_page=2&page=3").await), [xweb]);
    let filtered = c.get("/hosts?hostname=web&per_page=2&page=2").await;
    assert_eq!(ids(&filtered), [xweb]);
    assert_eq!(
        filtered["pagination"],
        json!({"page": 2, "per_page": 2, "total_items": 3, "total_pages": 2})
    );
}

#[tokio::test]
async fn hosts_of_a_network() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    let other = num_id(&c.post("/networks", json!({"network": "10.9.0.0", "cidr": 24})).await);
    let first = c.post("/hosts", web_server(net)).await;
    let second = c
        .post("/hosts", json!({"ip_address": "192.168.1.2", "hostname": "b"}))
        .await;
    c.post("/hosts", json!({"ip_address": "10.9.0.1"})).await;
    let path = format!("/networks/{net}/hosts");
    let all = c.get(&path).await;
    assert_keys(&all, &["network_id", "network", "hosts", "pagination"]);
    assert_eq!(
        all,
        json!({"network_id": net, "network": "192.168.1.0/24", "hosts": [first, second],
               "pagination": {"page": 1, "per_page": 50, "total_items": 2, "total_pages": 1}})
    );
    let page = c.get(&format!("{path}?per_page=1&page=2")).await;
    assert_eq!(page["hosts"], json!([second]));
    assert_eq!(
        page["pagination"],
        json!({"page": 2, "per_page": 1, "total_items": 2, "total_pages": 2})
    );
    let empty_net = num_id(&c.post("/networks", json!({"network": "10.10.0.0", "cidr": 24})).await);
    let empty = c.get(&format!("/networks/{empty_net}/hosts")).await;
    assert_eq!(empty["hosts"], json!([]));
    assert_eq!(empty["pagination"]["total_items"], json!(0));
    assert_eq!(
        c.get(&format!("/networks/{other}/hosts")).await["pagination"]["total_items"],
        json!(1)
    );
    c.fail(Method::GET, "/networks/999999/hosts", None, 404, "not_found")
        .await;
}

#[tokio::test]
async fn dhcp_ranges_have_the_seed_shape() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    let other = num_id(&c.post("/networks", json!({"network": "10.9.0.0", "cidr": 24})).await);

    let pool = c
        .post(
            "/dhcp-ranges",
            json!({"network_id": net, "start_ip": "192.168.1.100", "end_ip": "192.168.1.150",
                   "description": "Office DHCP pool", "is_active": true}),
        )
        .await;
    assert_keys(&pool, &RANGE_KEYS);
    let id = num_id(&pool);
    assert_eq!(
        pool,
        json!({"id": id, "network_id": net, "start_ip": "192.168.1.100", "end_ip": "192.168.1.150",
               "description": "Office DHCP pool", "is_active": true, "version": 1})
    );
    let second = c
        .post(
            &format!("/networks/{net}/dhcp-ranges"),
            json!({"start_ip": "192.168.1.20", "end_ip": "192.168.1.29"}),
        )
        .await;
    assert_eq!(
        (&second["network_id"], &second["is_active"], &second["description"]),
        (&json!(net), &json!(true), &Value::Null)
    );
    let third = c
        .post(
            &format!("/networks/{other}/dhcp-ranges"),
            json!({"start_ip": "10.9.0.10", "end_ip": "10.9.0.19", "is_active": false}),
        )
        .await;

    let of_net = c.get(&format!("/networks/{net}/dhcp-ranges")).await;
    assert_keys(&of_net, &["data"]);
    let mut listed: Vec<i64> = ids(&of_net);
    listed.sort_unstable();
    assert_eq!(listed, [id, num_id(&second)]);
    assert_eq!(
        c.get(&format!("/networks/{other}/dhcp-ranges")).await["data"],
        json!([third])
    );
    let path = format!("/dhcp-ranges/{id}");
    assert_eq!(c.get(&path).await, pool);

    // Ranges stay inside their network and never overlap one another.
    c.fail(
        Method::POST,
        "/dhcp-ranges",
        Some(json!({"network_id": net, "start_ip": "192.168.1.140", "end_ip": "192.168.1.160"})),
        400,
        "overlap",
    )
    .await;
    c.invalid(
        Method::POST,
        "/dhcp-ranges",
        Some(json!({"network_id": net, "start_ip": "192.168.1.200", "end_ip": "192.168.2.10"})),
        "end_ip",
    )
    .await;
    c.invalid(
        Method::POST,
        "/dhcp-ranges",
        Some(json!({"network_id": net, "start_ip": "192.168.1.100"})),
        "end_ip",
    )
    .await;

    // PUT round-trips a GET, needs start_ip and end_ip, and clears or resets what it omits.
    assert_eq!(unversioned(c.put(&path, pool.clone()).await), unversioned(pool.clone()));
    c.invalid(Method::PUT, &path, Some(json!({"start_ip": "192.168.1.100"})), "end_ip")
        .await;
    c.patch(&path, json!({"is_active": false})).await;
    let replaced = c
        .put(&path, json!({"start_ip": "192.168.1.110", "end_ip": "192.168.1.160"}))
        .await;
    assert_eq!(
        unversioned(replaced),
        json!({"id": id, "network_id": net, "start_ip": "192.168.1.110", "end_ip": "192.168.1.160",
               "description": null, "is_active": true})
    );
    // PATCH changes only what it is given.
    let patched = c
        .patch(&path, json!({"description": "Updated DHCP pool", "is_active": false}))
        .await;
    assert_eq!(
        unversioned(patched),
        json!({"id": id, "network_id": net, "start_ip": "192.168.1.110", "end_ip": "192.168.1.160",
               "description": "Updated DHCP pool", "is_active": false})
    );
    assert_eq!(
        c.patch(&path, json!({"description": null})).await["description"],
        Value::Null
    );
    c.delete(&path).await;
    c.fail(Method::GET, &path, None, 404, "not_found").await;
    c.fail(Method::DELETE, &path, None, 404, "not_found").await;
    assert_eq!(
        c.get(&format!("/networks/{net}/dhcp-ranges")).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn dhcp_range_lists_filter_and_paginate_by_id() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let a = num_id(&c.post("/networks", json!({"network": "10.1.0.0", "cidr": 24})).await);
    let b = num_id(&c.post("/networks", json!({"network": "10.2.0.0", "cidr": 24})).await);
    // Made in an order that differs from address order: lists are ordered by id.
    let mut made = Vec::new();
    for (net, start, end) in [
        (b, "10.2.0.100", "10.2.0.150"),
        (a, "10.1.0.200", "10.1.0.210"),
        (a, "10.1.0.20", "10.1.0.29"),
    ] {
        made.push(
            c.post(
                "/dhcp-ranges",
                json!({"network_id": net, "start_ip": start, "end_ip": end}),
            )
            .await,
        );
    }
    let all = c.get("/dhcp-ranges").await;
    assert_eq!(all["data"], json!(made));
    assert_eq!(
        all["pagination"],
        json!({"page": 1, "per_page": 50, "total_items": 3, "total_pages": 1})
    );
    let of_a = c.get(&format!("/dhcp-ranges?network_id={a}")).await;
    assert_eq!(of_a["data"], json!([made[1], made[2]]));
    assert_eq!(of_a["pagination"]["total_items"], json!(2));
    let page = c.get("/dhcp-ranges?per_page=2&page=2").await;
    assert_eq!(page["data"], json!([made[2]]));
    assert_eq!(
        page["pagination"],
        json!({"page": 2, "per_page": 2, "total_items": 3, "total_pages": 2})
    );
}

#[tokio::test]
async fn next_ip_suggests_without_taking_and_post_allocates() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = num_id(&c.post("/networks", json!({"network": "10.0.0.0", "cidr": 29})).await);
    c.post("/hosts", json!({"ip_address": "10.0.0.1"})).await;
    let range = num_id(
        &c.post(
            "/dhcp-ranges",
            json!({"network_id": net, "start_ip": "10.0.0.3", "end_ip": "10.0.0.4"}),
        )
        .await,
    );
    let next = format!("/ip/networks/{net}/next-ip");
    let suggested = c.get(&next).await;
    assert_eq!(
        suggested,
        json!({"ip_address": "10.0.0.2", "network": "10.0.0.0/29", "network_id": net})
    );
    assert_eq!(c.get(&next).await, suggested, "a GET takes nothing");

    let host = c
        .ok(
            Method::POST,
            &next,
            Some(json!({"hostname": "auto", "status": "reserved"})),
            201,
        )
        .await;
    assert_keys(&host, &HOST_KEYS);
    assert_eq!(
        (
            &host["ip_address"],
            &host["hostname"],
            &host["status"],
            &host["network_id"]
        ),
        (&json!("10.0.0.2"), &json!("auto"), &json!("reserved"), &json!(net))
    );
    assert_eq!(c.get(&format!("/hosts/{}", num_id(&host))).await, host);
    // The active DHCP range is skipped.
    assert_eq!(c.get(&next).await["ip_address"], json!("10.0.0.5"));
    // An empty body is a host with defaults.
    let plain = c.ok(Method::POST, &next, None, 201).await;
    assert_eq!(plain["ip_address"], json!("10.0.0.5"));
    c.ok(Method::POST, &next, Some(json!({})), 201).await;
    c.fail(Method::GET, &next, None, 400, "subnet_full").await;
    c.fail(Method::POST, &next, Some(json!({})), 400, "subnet_full").await;
    // An inactive range is free again.
    c.patch(&format!("/dhcp-ranges/{range}"), json!({"is_active": false}))
        .await;
    assert_eq!(c.get(&next).await["ip_address"], json!("10.0.0.3"));
    c.invalid(Method::POST, &next, Some(json!({"colour": "red"})), "colour")
        .await;
    c.fail(Method::GET, "/ip/networks/999999/next-ip", None, 404, "not_found")
        .await;
    c.fail(
        Method::POST,
        "/ip/networks/999999/next-ip",
        Some(json!({})),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn concurrent_allocations_never_share_an_address() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = num_id(&c.post("/networks", json!({"network": "10.0.0.0", "cidr": 28})).await);
    let bearer = format!("Bearer {}", s.admin_token);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (addr, bearer) = (s.addr, bearer.clone());
        tasks.push(tokio::spawn(async move {
            let headers = [("content-type", "application/json"), ("authorization", bearer.as_str())];
            let body = json!({"hostname": format!("h{i}")}).to_string();
            let path = format!("/api/v1/ip/networks/{net}/next-ip");
            http(addr, Method::POST, &path, &headers, body).await
        }));
    }
    let mut got = BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        got.insert(r.json()["ip_address"].as_str().unwrap().to_string());
    }
    let expected: BTreeSet<String> = (1..=8).map(|i| format!("10.0.0.{i}")).collect();
    assert_eq!(got, expected);
    let n = c.get(&format!("/networks/{net}")).await;
    assert_eq!((&n["used_hosts"], &n["available_hosts"]), (&json!(8), &json!(6)));
}

#[tokio::test]
async fn available_ips_with_limit_and_after() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = num_id(&c.post("/networks", json!({"network": "10.0.0.0", "cidr": 29})).await);
    c.post("/hosts", json!({"ip_address": "10.0.0.1"})).await;
    c.post("/hosts", json!({"ip_address": "10.0.0.2"})).await;
    c.post(
        "/dhcp-ranges",
        json!({"network_id": net, "start_ip": "10.0.0.3", "end_ip": "10.0.0.4"}),
    )
    .await;
    let path = format!("/ip/networks/{net}/available-ips");
    let all = c.get(&path).await;
    assert_keys(&all, &["network", "network_id", "total_available", "available_ips"]);
    assert_eq!(
        all,
        json!({"network": "10.0.0.0/29", "network_id": net, "total_available": 2,
               "available_ips": ["10.0.0.5", "10.0.0.6"]})
    );
    assert_eq!(
        c.get(&format!("/networks/{net}")).await["available_hosts"],
        json!(2),
        "the network's count agrees"
    );
    let first = c.get(&format!("{path}?limit=1")).await;
    assert_eq!(
        (&first["available_ips"], &first["total_available"]),
        (&json!(["10.0.0.5"]), &json!(2))
    );
    assert_eq!(
        c.get(&format!("{path}?limit=1&after=10.0.0.5")).await["available_ips"],
        json!(["10.0.0.6"])
    );
    assert_eq!(
        c.get(&format!("{path}?after=10.0.0.1")).await["available_ips"],
        json!(["10.0.0.5", "10.0.0.6"])
    );
    assert_eq!(
        c.get(&format!("{path}?after=10.0.0.6")).await["available_ips"],
        json!([])
    );
    c.invalid(Method::GET, &format!("{path}?after=10.0.1.1"), None, "after")
        .await;
    c.invalid(Method::GET, &format!("{path}?after=nonsense"), None, "after")
        .await;
    for bad in ["0", "10001", "x", "-1"] {
        c.invalid(Method::GET, &format!("{path}?limit={bad}"), None, "limit")
            .await;
    }
    c.get(&format!("{path}?limit=10000")).await;
    c.invalid(Method::GET, &format!("{path}?page=1"), None, "page").await;
    c.fail(Method::GET, "/ip/networks/999999/available-ips", None, 404, "not_found")
        .await;
}

#[tokio::test]
async fn ip_lookup_reports_each_status_in_the_seed_shape() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    let host = c.post("/hosts", web_server(net)).await;
    let range = num_id(
        &c.post(
            "/dhcp-ranges",
            json!({"network_id": net, "start_ip": "192.168.1.100", "end_ip": "192.168.1.150",
                   "description": "Office DHCP pool"}),
        )
        .await,
    );
    let short = json!({"id": net, "network": "192.168.1.0/24", "name": "Office Network", "domain": "office.local",
                       "vlan_id": 100, "location": "Building A"});

    let assigned = c.get("/ip/192.168.1.10").await;
    assert_keys(&assigned, &["ip_address", "status", "host"]);
    assert_eq!(
        (&assigned["ip_address"], &assigned["status"]),
        (&json!("192.168.1.10"), &json!("assigned"))
    );
    // The seed's host fields, with the same values as GET /hosts/{id}.
    for k in [
        "id",
        "hostname",
        "cname",
        "mac_address",
        "status",
        "is_assigned",
        "last_seen",
        "discovery_source",
        "description",
        "network_id",
    ] {
        assert_eq!(assigned["host"][k], host[k], "{k}: {assigned}");
    }

    let dhcp = c.get("/ip/192.168.1.120").await;
    assert_eq!(
        dhcp,
        json!({"ip_address": "192.168.1.120", "status": "dhcp",
               "dhcp_range": {"id": range, "start_ip": "192.168.1.100", "end_ip": "192.168.1.150",
                              "network_id": net},
               "network": short})
    );
    let available = c.get("/ip/192.168.1.45").await;
    assert_eq!(
        available,
        json!({"ip_address": "192.168.1.45", "status": "available", "network": short})
    );
    assert_keys(&available["network"], &SHORT_NETWORK_KEYS);
    for unusable in ["192.168.1.0", "192.168.1.255"] {
        assert_eq!(
            c.get(&format!("/ip/{unusable}")).await,
            json!({"ip_address": unusable, "status": "unusable", "network": short}),
            "{unusable}"
        );
    }
    let unmanaged = c.get("/ip/8.8.8.8").await;
    assert_eq!(
        unmanaged,
        json!({"ip_address": "8.8.8.8", "status": "unmanaged",
               "message": "IP address is not in any managed network"})
    );

    // A record wins over the DHCP range and the network address it sits on (reservations).
    c.post(
        "/hosts",
        json!({"ip_address": "192.168.1.101", "hostname": "reserved-in-pool"}),
    )
    .await;
    let in_pool = c.get("/ip/192.168.1.101").await;
    assert_eq!(
        (&in_pool["status"], &in_pool["host"]["hostname"]),
        (&json!("assigned"), &json!("reserved-in-pool"))
    );
    c.post("/hosts", json!({"ip_address": "192.168.1.0", "hostname": "netaddr"}))
        .await;
    assert_eq!(c.get("/ip/192.168.1.0").await["status"], json!("assigned"));

    // IPv6: the subnet-router anycast address is unusable; addresses are rendered in RFC 5952 form.
    let v6 = num_id(
        &c.post(
            "/networks",
            json!({"network": "2001:db8:1::", "cidr": 64, "name": "v6"}),
        )
        .await,
    );
    let anycast = c.get("/ip/2001:db8:1::").await;
    assert_eq!(
        (
            &anycast["status"],
            &anycast["network"]["id"],
            &anycast["network"]["network"]
        ),
        (&json!("unusable"), &json!(v6), &json!("2001:db8:1::/64"))
    );
    let long_form = c.get("/ip/2001:0DB8:0001:0000:0000:0000:0000:0001").await;
    assert_eq!(
        (&long_form["ip_address"], &long_form["status"]),
        (&json!("2001:db8:1::1"), &json!("available"))
    );
    c.invalid(Method::GET, "/ip/not-an-address", None, "ip").await;
    c.invalid(Method::GET, "/ip/192.168.1.256", None, "ip").await;
    c.invalid(Method::GET, "/ip/192.168.1.10?verbose=1", None, "verbose")
        .await;
}

#[tokio::test]
async fn ip_lookup_refuses_an_encoded_cidr() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    office(&c).await;
    for path in ["/ip/192.168.1.0%2F24", "/ip/192.168.1.0%2f24", "/ip/2001:db8::%2F64"] {
        c.invalid(Method::GET, path, None, "ip").await;
    }
}

/// A CIDR in the path is a 400, not an address to look up, also when it is written with its slash, as a user types it.
#[tokio::test]
async fn ip_lookup_refuses_a_cidr_written_with_its_slash() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    office(&c).await;
    let mut problems = Vec::new();
    for path in ["/ip/192.168.1.0/24", "/ip/2001:db8::/64"] {
        if let Err(p) = c.invalid_check(Method::GET, path, None, "ip").await {
            problems.push(p);
        }
    }
    assert_no_problems(&problems);
}

#[tokio::test]
async fn ip_lookup_chooses_one_network_among_groups() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let mut groups = Vec::new();
    for site in ["site a", "site b"] {
        groups.push(id_of(only(
            &s.ok(&s.admin, "groups/add", json!({"description": site})).await,
        )));
    }
    let wide = num_id(
        &c.post(
            "/networks",
            json!({"network": "10.9.0.0", "cidr": 16, "group_id": groups[0]}),
        )
        .await,
    );
    let narrow = num_id(
        &c.post(
            "/networks",
            json!({"network": "10.9.0.0", "cidr": 24, "group_id": groups[1]}),
        )
        .await,
    );
    // No record: the most specific network.
    let free = c.get("/ip/10.9.0.7").await;
    assert_eq!(
        (&free["status"], &free["network"]["id"], &free["matches"]),
        (&json!("available"), &json!(narrow), &json!(2))
    );
    // A record: the network that holds it.
    c.post("/hosts", json!({"ip_address": "10.9.0.7", "network_id": wide}))
        .await;
    let held = c.get("/ip/10.9.0.7").await;
    assert_eq!(
        (&held["status"], &held["host"]["network_id"], &held["matches"]),
        (&json!("assigned"), &json!(wide), &json!(2))
    );
    // Equal networks in two groups: the lowest id.
    let first = num_id(
        &c.post(
            "/networks",
            json!({"network": "10.8.0.0", "cidr": 24, "group_id": groups[0]}),
        )
        .await,
    );
    c.post(
        "/networks",
        json!({"network": "10.8.0.0", "cidr": 24, "group_id": groups[1]}),
    )
    .await;
    let tie = c.get("/ip/10.8.0.9").await;
    assert_eq!(
        (&tie["status"], &tie["network"]["id"], &tie["matches"]),
        (&json!("available"), &json!(first), &json!(2))
    );
    // Outside the narrow one only the wide one matches: no `matches`.
    let single = c.get("/ip/10.9.5.5").await;
    assert_eq!(single["network"]["id"], json!(wide));
    assert!(single.get("matches").is_none(), "{single}");
}

#[tokio::test]
async fn ipv6_counts_are_exact_integers() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let created = s
        .api(
            Method::POST,
            "/networks",
            &s.admin_token,
            Some(&json!({"network": "2001:db8::", "cidr": 48, "name": "v6 site"})),
        )
        .await;
    assert_eq!(created.status, 201);
    for key in ["total_hosts", "available_hosts"] {
        assert_eq!(raw_number(&created.body, key), V6_48_USABLE, "{key}");
        // serde_json with arbitrary_precision reads the number exactly, as a number.
        let v = created.json();
        assert!(v[key].is_number(), "{v}");
        assert_eq!(v[key].to_string(), V6_48_USABLE);
    }
    let net = num_id(&created.json());
    assert_eq!(
        created.json()["broadcast_address"],
        Value::Null,
        "IPv6 has no broadcast"
    );
    let one = s
        .api(Method::GET, &format!("/networks/{net}"), &s.admin_token, None)
        .await;
    assert_eq!(raw_number(&one.body, "total_hosts"), V6_48_USABLE);
    let list = s.api(Method::GET, "/networks", &s.admin_token, None).await;
    assert_eq!(raw_number(&list.body, "available_hosts"), V6_48_USABLE);

    let next = c.get(&format!("/ip/networks/{net}/next-ip")).await;
    assert_eq!(next["ip_address"], json!("2001:db8::1"));
    let host = c
        .ok(Method::POST, &format!("/ip/networks/{net}/next-ip"), None, 201)
        .await;
    assert_eq!(host["ip_address"], json!("2001:db8::1"));
    let avail = s
        .api(
            Method::GET,
            &format!("/ip/networks/{net}/available-ips?limit=2"),
            &s.admin_token,
            None,
        )
        .await;
    assert_eq!(avail.status, 200);
    assert_eq!(raw_number(&avail.body, "total_available"), "1208925819614629174706174");
    assert_eq!(avail.json()["available_ips"], json!(["2001:db8::2", "2001:db8::3"]));
    let after = s
        .api(Method::GET, &format!("/networks/{net}"), &s.admin_token, None)
        .await;
    assert_eq!(raw_number(&after.body, "available_hosts"), "1208925819614629174706174");
    assert_eq!(after.json()["used_hosts"], json!(1));
}

#[tokio::test]
async fn unknown_ids_and_routes_are_json_404s() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/networks/999999".into(), None),
        (
            Method::PUT,
            "/networks/999999".into(),
            Some(json!({"network": "10.0.0.0", "cidr": 24})),
        ),
        (Method::PATCH, "/networks/999999".into(), Some(json!({"name": "x"}))),
        (Method::DELETE, "/networks/999999".into(), None),
        (Method::DELETE, "/networks/999999?force=true".into(), None),
        (Method::GET, "/networks/999999/hosts".into(), None),
        (Method::GET, "/networks/999999/dhcp-ranges".into(), None),
        (
            Method::POST,
            "/networks/999999/dhcp-ranges".into(),
            Some(json!({"start_ip": "10.0.0.1", "end_ip": "10.0.0.2"})),
        ),
        (Method::GET, "/hosts/999999".into(), None),
        (
            Method::PUT,
            "/hosts/999999".into(),
            Some(json!({"ip_address": "192.168.1.5"})),
        ),
        (Method::PATCH, "/hosts/999999".into(), Some(json!({"hostname": "x"}))),
        (Method::DELETE, "/hosts/999999".into(), None),
        (Method::GET, "/dhcp-ranges/999999".into(), None),
        (
            Method::PUT,
            "/dhcp-ranges/999999".into(),
            Some(json!({"start_ip": "192.168.1.5", "end_ip": "192.168.1.6"})),
        ),
        (
            Method::PATCH,
            "/dhcp-ranges/999999".into(),
            Some(json!({"description": "x"})),
        ),
        (Method::DELETE, "/dhcp-ranges/999999".into(), None),
        (Method::GET, "/ip/networks/999999/next-ip".into(), None),
        (Method::POST, "/ip/networks/999999/next-ip".into(), Some(json!({}))),
        (Method::GET, "/ip/networks/999999/available-ips".into(), None),
        (Method::GET, "/hosts?network_id=999999".into(), None),
        (Method::GET, "/dhcp-ranges?network_id=999999".into(), None),
        (
            Method::POST,
            "/dhcp-ranges".into(),
            Some(json!({"network_id": 999_999, "start_ip": "10.0.0.1", "end_ip": "10.0.0.2"})),
        ),
        // Unknown routes.
        (Method::GET, "/nothing-here".into(), None),
        (Method::GET, "/".into(), None),
        (Method::GET, "".into(), None),
        (Method::GET, format!("/networks/{net}/nothing"), None),
        (Method::GET, "/networks/1/hosts/1".into(), None),
        (Method::GET, "/ip".into(), None),
        (Method::GET, "/backups/x.db".into(), None),
    ];
    let mut problems = Vec::new();
    for (verb, path, body) in cases {
        if let Err(p) = c.refused(verb, &path, body, 404, "not_found").await {
            problems.push(p);
        }
    }
    assert_no_problems(&problems);
    // Outside /api/v1 too.
    let r = s.request(Method::GET, "/api/v2/networks", &[], "").await;
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    // An id that is not a number names the parameter.
    for path in [
        "/networks/abc",
        "/hosts/1.5",
        "/dhcp-ranges/-1",
        "/ip/networks/x/next-ip",
    ] {
        let r = s.api(Method::GET, path, &s.admin_token, None).await;
        assert!(
            [400, 404].contains(&r.status),
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        error_of(
            &r,
            r.status,
            if r.status == 400 { "invalid_params" } else { "not_found" },
            path,
        );
    }
}

#[tokio::test]
async fn a_wrong_verb_is_405_with_allow() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    let cases = [
        (Method::PUT, "/networks".to_string(), vec!["GET", "POST", "DELETE"]),
        (
            Method::POST,
            format!("/networks/{net}"),
            vec!["GET", "PUT", "PATCH", "DELETE"],
        ),
        (Method::PUT, format!("/networks/{net}/hosts"), vec!["GET", "DELETE"]),
        (Method::PUT, format!("/networks/{net}/dhcp-ranges"), vec!["GET", "POST"]),
        (Method::PATCH, "/hosts".into(), vec!["GET", "POST", "DELETE"]),
        (Method::PUT, "/groups".into(), vec!["GET", "POST"]),
        (Method::PUT, "/groups/1".into(), vec!["GET", "PATCH", "DELETE"]),
        (Method::POST, "/org".into(), vec!["GET", "PATCH", "DELETE"]),
        (Method::DELETE, "/me".into(), vec!["GET"]),
        (Method::PUT, "/tokens/1".into(), vec!["GET", "DELETE"]),
        (Method::GET, format!("/networks/{net}/split"), vec!["POST"]),
        (Method::POST, "/hosts/1".into(), vec!["GET", "PUT", "PATCH", "DELETE"]),
        (Method::DELETE, "/dhcp-ranges".into(), vec!["GET", "POST"]),
        (Method::PUT, format!("/ip/networks/{net}/next-ip"), vec!["GET", "POST"]),
        (Method::POST, format!("/ip/networks/{net}/available-ips"), vec!["GET"]),
        (Method::DELETE, "/ip/192.168.1.1".into(), vec!["GET"]),
        (Method::DELETE, "/backups".into(), vec!["GET", "POST"]),
        (Method::PUT, "/backups/x.db/verify".into(), vec!["GET", "POST"]),
        (Method::GET, "/backups/x.db/restore".into(), vec!["POST"]),
    ];
    for (verb, path, allowed) in cases {
        let r = s.api(verb.clone(), &path, &s.admin_token, None).await;
        let what = format!("{verb} {path}");
        error_of(&r, 405, "method_not_allowed", &what);
        let allow: BTreeSet<String> = r
            .header("allow")
            .unwrap_or_else(|| panic!("no Allow: {what}"))
            .split(',')
            .map(|v| v.trim().to_string())
            .collect();
        let want: BTreeSet<String> = allowed.iter().map(|v| v.to_string()).collect();
        assert_eq!(allow, want, "{what}");
    }
}

#[tokio::test]
async fn bodies_must_be_json_objects() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let bearer = format!("Bearer {}", s.admin_token);
    let body = json!({"network": "10.0.0.0", "cidr": 24}).to_string();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ] {
        let headers = [("content-type", ct), ("authorization", bearer.as_str())];
        let r = s
            .request(Method::POST, "/api/v1/networks", &headers, body.clone())
            .await;
        error_of(&r, 415, "unsupported_media_type", ct);
    }
    // No Content-Type is read as JSON; JSON with a charset is JSON.
    let r = s
        .request(
            Method::POST,
            "/api/v1/networks",
            &[("authorization", bearer.as_str())],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let headers = [
        ("content-type", "application/json; charset=utf-8"),
        ("authorization", bearer.as_str()),
    ];
    let r = s
        .request(
            Method::POST,
            "/api/v1/networks",
            &headers,
            json!({"network": "10.1.0.0", "cidr": 24}).to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));

    let json_headers = [("content-type", "application/json"), ("authorization", bearer.as_str())];
    for bad in [
        "{",
        "{\"network\": }",
        "not json",
        "[1, 2]",
        "\"a string\"",
        "42",
        "null",
    ] {
        let r = s.request(Method::POST, "/api/v1/networks", &json_headers, bad).await;
        error_of(&r, 400, "bad_request", bad);
        let r = s.request(Method::PATCH, "/api/v1/hosts/1", &json_headers, bad).await;
        error_of(&r, 400, "bad_request", bad);
    }
    // Over 1 MiB.
    let big = format!(
        "{{\"network\": \"10.2.0.0\", \"cidr\": 24, \"description\": \"{}\"}}",
        "x".repeat(1024 * 1024)
    );
    let r = s.request(Method::POST, "/api/v1/networks", &json_headers, big).await;
    error_of(&r, 413, "payload_too_large", "1 MiB");
    assert_eq!(c.get("/networks").await["pagination"]["total_items"], json!(2));
}

/// The office network with a host and a DHCP range in it: their ids.
async fn one_of_each(c: &Client<'_>) -> (i64, i64, i64) {
    let net = office(c).await;
    let host = num_id(&c.post("/hosts", web_server(net)).await);
    let range = num_id(
        &c.post(
            "/dhcp-ranges",
            json!({"network_id": net, "start_ip": "192.168.1.100", "end_ip": "192.168.1.150"}),
        )
        .await,
    );
    (net, host, range)
}

#[tokio::test]
async fn unknown_fields_are_refused_and_read_only_ones_named() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let (net, host, range) = one_of_each(&c).await;
    let before = (
        c.get("/networks").await,
        c.get(&format!("/hosts/{host}")).await,
        c.get(&format!("/dhcp-ranges/{range}")).await,
    );
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/networks".into(),
            json!({"network": "10.0.0.0", "cidr": 24, "colour": "red"}),
            "colour",
        ),
        (
            Method::PUT,
            format!("/networks/{net}"),
            json!({"network": "192.168.1.0", "cidr": 24, "colour": "red"}),
            "colour",
        ),
        (Method::PATCH, format!("/networks/{net}"), json!({"Name": "x"}), "Name"),
        (
            Method::POST,
            "/hosts".into(),
            json!({"ip_address": "192.168.1.20", "hostnam": "typo"}),
            "hostnam",
        ),
        (
            Method::PUT,
            format!("/hosts/{host}"),
            json!({"ip_address": "192.168.1.10", "subnet_id": 1}),
            "subnet_id",
        ),
        (Method::PATCH, format!("/hosts/{host}"), json!({"owner": "me"}), "owner"),
        // Envelope names are not REST names.
        (
            Method::PATCH,
            format!("/hosts/{host}"),
            json!({"ip": "192.168.1.11"}),
            "ip",
        ),
        (
            Method::POST,
            format!("/networks/{net}/dhcp-ranges"),
            json!({"start_ip": "192.168.1.20", "end_ip": "192.168.1.29", "lease": 3600}),
            "lease",
        ),
        (
            Method::PATCH,
            format!("/dhcp-ranges/{range}"),
            json!({"pool": "x"}),
            "pool",
        ),
        (
            Method::POST,
            format!("/ip/networks/{net}/next-ip"),
            json!({"hostname": "a", "extra": 1}),
            "extra",
        ),
    ];
    let mut problems = Vec::new();
    for (verb, path, body, field) in cases {
        if let Err(p) = c.invalid_check(verb, &path, Some(body), field).await {
            problems.push(p);
        }
    }
    assert_no_problems(&problems);
    let after = (
        c.get("/networks").await,
        c.get(&format!("/hosts/{host}")).await,
        c.get(&format!("/dhcp-ranges/{range}")).await,
    );
    assert_eq!(before, after, "refused calls change nothing");
    // POST and PATCH refuse read-only fields, each named, and nothing changes (a PUT ignores them: see
    // `put_replaces_and_patch_changes_a_network`).
    let cases: Vec<(Method, String, Value, Vec<&str>)> = vec![
        (
            Method::POST,
            "/networks".into(),
            json!({"network": "10.0.0.0", "cidr": 24, "id": 5, "broadcast_address": "x", "total_hosts": 1}),
            vec!["id", "broadcast_address", "total_hosts"],
        ),
        // The envelope's form of a block is read-only in REST: it says so rather than "network is required".
        (
            Method::POST,
            "/networks".into(),
            json!({"subnet": "10.9.0.0/24"}),
            vec!["subnet", "network", "cidr"],
        ),
        (
            Method::PATCH,
            format!("/networks/{net}"),
            json!({"subnet": "10.9.0.0/24", "name": "x"}),
            vec!["subnet"],
        ),
        (
            Method::POST,
            "/hosts".into(),
            json!({"ip_address": "192.168.1.30", "network": "x"}),
            vec!["network"],
        ),
        (
            Method::PATCH,
            format!("/hosts/{host}"),
            json!({"network": "10.0.0.0/24", "id": 9}),
            vec!["network", "id"],
        ),
        (
            Method::PATCH,
            format!("/dhcp-ranges/{range}"),
            json!({"id": 77, "description": "x"}),
            vec!["id"],
        ),
        (
            Method::POST,
            "/groups".into(),
            json!({"description": "g", "child_count": 0}),
            vec!["child_count"],
        ),
        (
            Method::POST,
            "/tokens".into(),
            json!({"token": "mine", "prefix": "x"}),
            vec!["token", "prefix"],
        ),
        (
            Method::POST,
            "/users".into(),
            json!({"id": 3, "email": "e@example.org"}),
            vec!["id", "username"],
        ),
    ];
    for (verb, path, body, fields) in cases {
        let what = format!("{verb} {path} {body}");
        let r = s.api(verb, &path, &s.admin_token, Some(&body)).await;
        let e = error_of(&r, 400, "invalid_params", &what);
        let named: Vec<&str> = e["errors"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(named, fields, "{what}: {e}");
        for f in fields {
            assert!(e["message"].as_str().unwrap().contains(f), "{e}");
        }
    }
    let after = (
        c.get("/networks").await,
        c.get(&format!("/hosts/{host}")).await,
        c.get(&format!("/dhcp-ranges/{range}")).await,
    );
    assert_eq!(before, after, "refused calls change nothing");
}

/// Whether `v` is of one of the JSON Schema `types` (a type or a list of them).
fn of_schema_type(types: &Value, v: &Value) -> bool {
    let types: Vec<&str> = match types {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return true,
    };
    types.iter().any(|t| match *t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    })
}

/// The org's networks, hosts, DHCP ranges and the count of its log entries.
async fn everything(s: &Server, c: &Client<'_>) -> Value {
    json!({
        "networks": c.get("/networks").await,
        "hosts": c.get("/hosts").await,
        "ranges": c.get("/dhcp-ranges").await,
        "logs": s.ok(&s.admin, "org/logs", json!({"perpage": 500})).await["total"],
    })
}

#[tokio::test]
async fn wrong_json_types_are_refused_naming_the_field() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let (net, host, range) = one_of_each(&c).await;
    let before = everything(&s, &c).await;

    // The case of the issue: a number where the schema says a string is not stored as its text.
    let e = c
        .invalid(
            Method::POST,
            "/hosts",
            Some(json!({"ip_address": "192.168.1.20", "hostname": 12, "network_id": net})),
            "hostname",
        )
        .await;
    assert_eq!(
        e["errors"]["hostname"],
        json!("must be a string or null, not an integer")
    );
    assert_eq!(
        e["message"],
        json!("hostname: must be a string or null, not an integer")
    );
    // Every wrong field is named at once.
    let e = c
        .invalid(
            Method::PATCH,
            &format!("/networks/{net}"),
            Some(json!({"cidr": "24", "vlan_id": true, "name": "ok"})),
            "cidr",
        )
        .await;
    assert_eq!(
        e["errors"],
        json!({"cidr": "must be an integer, not a string", "vlan_id": "must be an integer or null, not a boolean"})
    );

    // Every route with a JSON body, and every field of its input schema, as the OpenAPI document gives them: a
    // value of a type the schema does not allow is a 400 naming the field.
    let doc = c.get("/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    let wrong_values = [
        json!(12),
        json!("x"),
        json!(true),
        json!([1]),
        json!({"a": 1}),
        json!(1.5),
    ];
    let mut routes = Vec::new();
    let mut problems = Vec::new();
    for (path, verbs) in doc["paths"].as_object().unwrap() {
        for (verb, op) in verbs.as_object().unwrap() {
            let Some(schema) = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str() else {
                continue;
            };
            routes.push(format!("{} {path}", verb.to_uppercase()));
            let name = schema.trim_start_matches("#/components/schemas/");
            let id = match path.as_str() {
                "/hosts/{id}" => host,
                "/dhcp-ranges/{id}" => range,
                _ => net,
            };
            let url = path.replace("{id}", &id.to_string());
            let method = Method::from_bytes(verb.to_uppercase().as_bytes()).unwrap();
            for (field, property) in schemas[name]["properties"].as_object().unwrap() {
                let types = &property["type"];
                let wrong = wrong_values.iter().find(|v| !of_schema_type(types, v)).unwrap();
                let body = json!({field.as_str(): wrong});
                match c.invalid_check(method.clone(), &url, Some(body), field).await {
                    Ok(e)
                        if e["errors"][field.as_str()]
                            .as_str()
                            .is_some_and(|m| m.starts_with("must be "))
                            && e["message"].as_str().is_some_and(|m| m.contains(field.as_str())) => {}
                    Ok(e) => problems.push(format!("{verb} {url} {field}: {e}")),
                    Err(p) => problems.push(p),
                }
            }
        }
    }
    assert_no_problems(&problems);
    for r in [
        "POST /networks",
        "PUT /networks/{id}",
        "PATCH /networks/{id}",
        "POST /networks/{id}/dhcp-ranges",
        "POST /hosts",
        "PUT /hosts/{id}",
        "PATCH /hosts/{id}",
        "POST /dhcp-ranges",
        "PUT /dhcp-ranges/{id}",
        "PATCH /dhcp-ranges/{id}",
        "POST /ip/networks/{id}/next-ip",
    ] {
        assert!(routes.iter().any(|x| x == r), "{r} was not checked: {routes:?}");
    }
    assert_eq!(everything(&s, &c).await, before, "refused calls write nothing");

    // Values of the documented types still pass: unix seconds for last_seen, null to clear.
    let h = c
        .patch(&format!("/hosts/{host}"), json!({"last_seen": SEEN, "cname": null}))
        .await;
    assert_eq!(
        (&h["last_seen"], &h["cname"]),
        (&json!("2025-12-28T10:01:58Z"), &Value::Null)
    );
    // The envelope keeps its lenient decoding: a number is taken as its text.
    let r = s
        .ok(
            &s.admin,
            "ipaddress/add",
            json!({"subnet": net, "ip": "192.168.1.21", "hostname": 12}),
        )
        .await;
    assert_eq!(only(&r)["hostname"], json!("12"));
}

#[tokio::test]
async fn invalid_paging_and_unknown_query_parameters_are_refused() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    let mut problems = Vec::new();
    for list in [
        "/networks".to_string(),
        "/hosts".into(),
        "/dhcp-ranges".into(),
        format!("/networks/{net}/hosts"),
        "/backups".into(),
    ] {
        for (query, field) in [
            ("page=0", "page"),
            ("page=-1", "page"),
            ("page=x", "page"),
            ("page=1.5", "page"),
            ("per_page=0", "per_page"),
            ("per_page=1001", "per_page"),
            ("per_page=x", "per_page"),
            ("page=1&per_page=1001", "per_page"),
            ("colour=red", "colour"),
            ("perpage=10", "perpage"),
        ] {
            let path = format!("{list}?{query}");
            if let Err(p) = c.invalid_check(Method::GET, &path, None, field).await {
                problems.push(p);
            }
        }
        let r = s
            .api(
                Method::GET,
                &format!("{list}?page=1&per_page=1000"),
                &s.admin_token,
                None,
            )
            .await;
        let pagination = serde_json::from_slice::<Value>(&r.body).map(|v| v["pagination"].clone());
        match pagination {
            Ok(p) if r.status == 200 && p["page"] == json!(1) && p["per_page"] == json!(1000) => {}
            other => problems.push(format!("{list}?page=1&per_page=1000 → {} {other:?}", r.status)),
        }
    }
    assert_no_problems(&problems);
    // Routes without query parameters refuse any.
    for path in [
        format!("/networks/{net}?page=1"),
        format!("/networks/{net}/dhcp-ranges?page=1"),
        "/hosts/1?x=1".into(),
        "/ip/192.168.1.1?x=1".into(),
    ] {
        let r = s.api(Method::GET, &path, &s.admin_token, None).await;
        error_of(&r, 400, "invalid_params", &path);
    }
    c.invalid(
        Method::POST,
        "/networks?dry_run=1",
        Some(json!({"network": "10.0.0.0", "cidr": 24})),
        "dry_run",
    )
    .await;
    c.invalid(Method::DELETE, &format!("/networks/{net}?force=maybe"), None, "force")
        .await;
    c.invalid(Method::GET, "/networks?vlan_id=x", None, "vlan_id").await;
    c.invalid(Method::GET, "/hosts?network_id=x", None, "network_id").await;
    c.invalid(Method::GET, "/networks?page=1&page=2", None, "page").await;
    assert_eq!(c.get("/networks").await["pagination"]["total_items"], json!(1));
}

#[tokio::test]
async fn tokens_come_in_either_header_with_any_case_of_the_scheme() {
    let s = Server::start().await;
    let token = s.admin_token.clone();
    let s = &s;
    let as_header = |name: &'static str, value: String| async move {
        let headers = [(name, value.as_str())];
        s.request(Method::GET, "/api/v1/networks", &headers, "").await
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = as_header("authorization", format!("{scheme} {token}")).await;
        assert_eq!(r.status, 200, "{scheme}: {}", String::from_utf8_lossy(&r.body));
    }
    let r = as_header("x-api-key", token.clone()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = as_header("X-API-KEY", token.clone()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let r = s.request(Method::GET, "/api/v1/networks", &[], "").await;
    error_of(&r, 401, "auth_required", "no token");
    let wrong = "0123456789abcdef0123456789abcdef01234567";
    error_of(
        &as_header("authorization", format!("Bearer {wrong}")).await,
        401,
        "auth_failed",
        "wrong bearer",
    );
    error_of(
        &as_header("x-api-key", wrong.to_string()).await,
        401,
        "auth_failed",
        "wrong X-API-Key",
    );
    for (name, value) in [
        ("authorization", format!("Basic {token}")),
        ("authorization", token.clone()),
        ("authorization", "Bearer".to_string()),
        ("authorization", "Bearer ".to_string()),
        ("x-api-key", String::new()),
    ] {
        let r = as_header(name, value.clone()).await;
        assert_eq!(r.status, 401, "{name}: {value}: {}", String::from_utf8_lossy(&r.body));
        let code = r.json()["code"].as_str().unwrap().to_string();
        error_of(&r, 401, &code, &value);
        assert!(["auth_required", "auth_failed"].contains(&code.as_str()), "{code}");
    }
    // Without a token nothing is created, and every route needs one.
    let c = client(s, "");
    c.fail(
        Method::POST,
        "/networks",
        Some(json!({"network": "10.0.0.0", "cidr": 24})),
        401,
        "auth_required",
    )
    .await;
    for path in [
        "/hosts",
        "/dhcp-ranges",
        "/ip/10.0.0.1",
        "/backups",
        "/ip/networks/1/next-ip",
    ] {
        c.fail(Method::GET, path, None, 401, "auth_required").await;
    }
    assert_eq!(client(s, &token).get("/networks").await["data"], json!([]));

    // A deleted token stops working at once.
    let added = s
        .ok(&s.admin, "org/tokens/add", json!({"description": "short-lived"}))
        .await;
    let short = only(&added)["token"].as_str().unwrap().to_string();
    client(s, &short).get("/networks").await;
    s.ok(&s.admin, "org/tokens/delete", json!({"id": id_of(only(&added))}))
        .await;
    client(s, &short)
        .fail(Method::GET, "/networks", None, 401, "auth_failed")
        .await;
}

/// The audit entries of `admin`'s org for `method`, newest first.
async fn log_entries(s: &Server, method: &str) -> Vec<Value> {
    let logs = s
        .ok(&s.admin, "org/logs", json!({"method": method, "perpage": 500}))
        .await;
    match &logs["logs"] {
        Value::Object(m) => m.values().cloned().collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn operator_tokens_act_as_the_operator_org_and_are_named_in_the_log() {
    let s = Server::start_with(|settings| settings.api_tokens = " op-token-one ,op-token-two,".into()).await;
    let op = client(&s, "op-token-one");
    let net = op
        .post(
            "/networks",
            json!({"network": "10.0.0.0", "cidr": 24, "name": "by operator"}),
        )
        .await;
    let net = num_id(&net);
    client(&s, "op-token-two")
        .post("/hosts", json!({"ip_address": "10.0.0.5"}))
        .await;
    client(&s, "op-token-three")
        .fail(Method::GET, "/networks", None, 401, "auth_failed")
        .await;
    client(&s, "op-token")
        .fail(Method::GET, "/networks", None, 401, "auth_failed")
        .await;
    // The operator org's data, seen by its admin through the envelope.
    let seen = s.ok(&s.admin, "subnets/get", json!({"id": net})).await;
    assert_eq!(only(&seen)["name"], json!("by operator"));

    for method in ["subnets/add", "ipaddress/add"] {
        let entries = log_entries(&s, method).await;
        assert_eq!(entries.len(), 1, "{method}: {entries:?}");
        let e = &entries[0];
        assert_eq!(
            (&e["user"], &e["userid"], &e["application"], &e["method"]),
            (&json!("api-token"), &Value::Null, &json!("API_TOKENS"), &json!(method)),
            "{e}"
        );
    }

    // A per-user token's entries carry its user and its prefix.
    let mine = client(&s, &s.admin_token);
    let host = num_id(&mine.post("/hosts", json!({"ip_address": "10.0.0.6"})).await);
    mine.patch(&format!("/hosts/{host}"), json!({"hostname": "h"})).await;
    mine.delete(&format!("/hosts/{host}")).await;
    let prefix = format!("token:{}", &s.admin_token[..8]);
    for method in ["ipaddress/add", "ipaddress/edit", "ipaddress/delete"] {
        let entries = log_entries(&s, method).await;
        let e = &entries[0];
        assert_eq!(
            (&e["user"], &e["userid"], &e["application"], &e["objectid"]),
            (
                &json!("admin"),
                &json!(s.admin.id.to_string()),
                &json!(prefix),
                &json!(host.to_string())
            ),
            "{method}: {e}"
        );
    }
    // A token's stamps show on the record.
    let stamped = s.ok(&s.admin, "subnets/get", json!({"id": net})).await;
    assert_eq!(only(&stamped)["user"], json!("api-token"));
}

#[tokio::test]
async fn a_token_acts_with_its_users_level() {
    let s = Server::start().await;
    let admin = client(&s, &s.admin_token);
    let net = office(&admin).await;
    let host = num_id(&admin.post("/hosts", web_server(net)).await);
    let range = num_id(
        &admin
            .post(
                "/dhcp-ranges",
                json!({"network_id": net, "start_ip": "192.168.1.100", "end_ip": "192.168.1.150"}),
            )
            .await,
    );
    let reader = s.user(&s.admin, "reader", "readonly").await;
    let token = only(&s.ok(&reader, "org/tokens/add", json!({})).await)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let ro = client(&s, &token);
    let before = (
        admin.get("/networks").await,
        admin.get(&format!("/hosts/{host}")).await,
        admin.get(&format!("/dhcp-ranges/{range}")).await,
    );
    // Writes are refused.
    let writes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/networks".into(),
            Some(json!({"network": "10.0.0.0", "cidr": 24})),
        ),
        (
            Method::PUT,
            format!("/networks/{net}"),
            Some(json!({"network": "192.168.1.0", "cidr": 24})),
        ),
        (Method::PATCH, format!("/networks/{net}"), Some(json!({"name": "x"}))),
        (Method::DELETE, format!("/networks/{net}?force=true"), None),
        (
            Method::POST,
            format!("/networks/{net}/dhcp-ranges"),
            Some(json!({"start_ip": "192.168.1.20", "end_ip": "192.168.1.29"})),
        ),
        (
            Method::POST,
            "/hosts".into(),
            Some(json!({"ip_address": "192.168.1.20"})),
        ),
        (
            Method::PUT,
            format!("/hosts/{host}"),
            Some(json!({"ip_address": "192.168.1.10"})),
        ),
        (Method::PATCH, format!("/hosts/{host}"), Some(json!({"hostname": "x"}))),
        (Method::DELETE, format!("/hosts/{host}"), None),
        (
            Method::POST,
            "/dhcp-ranges".into(),
            Some(json!({"network_id": net, "start_ip": "192.168.1.20", "end_ip": "192.168.1.29"})),
        ),
        (
            Method::PUT,
            format!("/dhcp-ranges/{range}"),
            Some(json!({"start_ip": "192.168.1.100", "end_ip": "192.168.1.150"})),
        ),
        (
            Method::PATCH,
            format!("/dhcp-ranges/{range}"),
            Some(json!({"is_active": false})),
        ),
        (Method::DELETE, format!("/dhcp-ranges/{range}"), None),
        (Method::POST, format!("/ip/networks/{net}/next-ip"), Some(json!({}))),
    ];
    let mut problems = Vec::new();
    for (verb, path, body) in writes {
        if let Err(p) = ro.refused(verb, &path, body, 403, "access_denied").await {
            problems.push(p);
        }
    }
    assert_no_problems(&problems);
    let after = (
        admin.get("/networks").await,
        admin.get(&format!("/hosts/{host}")).await,
        admin.get(&format!("/dhcp-ranges/{range}")).await,
    );
    assert_eq!(before, after);

    // Reads work, on every route that reads.
    let mut problems = Vec::new();
    for path in [
        "/networks".to_string(),
        format!("/networks/{net}"),
        format!("/networks/{net}/hosts"),
        format!("/networks/{net}/dhcp-ranges"),
        "/hosts".into(),
        format!("/hosts/{host}"),
        "/dhcp-ranges".into(),
        format!("/dhcp-ranges/{range}"),
        format!("/ip/networks/{net}/next-ip"),
        format!("/ip/networks/{net}/available-ips"),
        "/ip/192.168.1.10".into(),
    ] {
        let r = s.api(Method::GET, &path, &token, None).await;
        if r.status != 200 {
            problems.push(format!(
                "GET {path} → {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
    }
    assert_no_problems(&problems);

    // A standard user writes; a disabled user's token is refused.
    let writer = s.user(&s.admin, "writer", "standard").await;
    let token = only(&s.ok(&writer, "org/tokens/add", json!({})).await)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let w = client(&s, &token);
    let created = w.post("/hosts", json!({"ip_address": "192.168.1.30"})).await;
    s.ok(&s.admin, "org/users/edit", json!({"id": writer.id, "disabled": true}))
        .await;
    w.fail(Method::GET, "/networks", None, 403, "account_disabled").await;
    w.fail(
        Method::DELETE,
        &format!("/hosts/{}", num_id(&created)),
        None,
        403,
        "account_disabled",
    )
    .await;
}

#[tokio::test]
async fn org_b_gets_404_for_org_a_ids_on_every_route() {
    let s = Server::start().await;
    let a = client(&s, &s.admin_token);
    let net = office(&a).await;
    let host = num_id(&a.post("/hosts", web_server(net)).await);
    let range = num_id(
        &a.post(
            "/dhcp-ranges",
            json!({"network_id": net, "start_ip": "192.168.1.100", "end_ip": "192.168.1.150"}),
        )
        .await,
    );
    let b_ident = s.org("orgb").await;
    let b_token = only(&s.ok(&b_ident, "org/tokens/add", json!({})).await)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let b = client(&s, &b_token);
    // B has a network of its own with the same range, and a host in it.
    let b_net = num_id(
        &b.post(
            "/networks",
            json!({"network": "192.168.1.0", "cidr": 24, "name": "b's"}),
        )
        .await,
    );
    let b_host = num_id(&b.post("/hosts", json!({"ip_address": "192.168.1.77"})).await);
    assert_ne!(b_net, net);

    let snapshot = || async {
        (
            a.get("/networks").await,
            a.get(&format!("/networks/{net}")).await,
            a.get(&format!("/hosts/{host}")).await,
            a.get(&format!("/dhcp-ranges/{range}")).await,
        )
    };
    let before = snapshot().await;
    let a_network = a.get(&format!("/networks/{net}")).await;
    let a_host = a.get(&format!("/hosts/{host}")).await;
    let a_range = a.get(&format!("/dhcp-ranges/{range}")).await;

    // Each case with A's id and with an id nobody has: B must not be able to tell them apart.
    let cases = |n: i64, h: i64, r: i64| -> Vec<(Method, String, Option<Value>)> {
        vec![
            (Method::GET, format!("/networks/{n}"), None),
            (Method::PUT, format!("/networks/{n}"), Some(a_network.clone())),
            (
                Method::PATCH,
                format!("/networks/{n}"),
                Some(json!({"name": "b was here"})),
            ),
            (Method::DELETE, format!("/networks/{n}"), None),
            (Method::DELETE, format!("/networks/{n}?force=true"), None),
            (Method::GET, format!("/networks/{n}/hosts"), None),
            (Method::GET, format!("/networks/{n}/dhcp-ranges"), None),
            (
                Method::POST,
                format!("/networks/{n}/dhcp-ranges"),
                Some(json!({"start_ip": "192.168.1.20", "end_ip": "192.168.1.29"})),
            ),
            (Method::GET, format!("/hosts/{h}"), None),
            (Method::PUT, format!("/hosts/{h}"), Some(a_host.clone())),
            (
                Method::PATCH,
                format!("/hosts/{h}"),
                Some(json!({"hostname": "b was here"})),
            ),
            (Method::DELETE, format!("/hosts/{h}"), None),
            (Method::GET, format!("/dhcp-ranges/{r}"), None),
            (Method::PUT, format!("/dhcp-ranges/{r}"), Some(a_range.clone())),
            (
                Method::PATCH,
                format!("/dhcp-ranges/{r}"),
                Some(json!({"is_active": false})),
            ),
            (Method::DELETE, format!("/dhcp-ranges/{r}"), None),
            (Method::GET, format!("/ip/networks/{n}/next-ip"), None),
            (Method::POST, format!("/ip/networks/{n}/next-ip"), Some(json!({}))),
            (Method::GET, format!("/ip/networks/{n}/available-ips"), None),
            (Method::GET, format!("/hosts?network_id={n}"), None),
            (Method::GET, format!("/dhcp-ranges?network_id={n}"), None),
            (
                Method::POST,
                "/hosts".into(),
                Some(json!({"ip_address": "192.168.1.20", "network_id": n})),
            ),
            (Method::POST, "/hosts".into(), Some(json!({"network_id": n}))),
            (
                Method::POST,
                "/dhcp-ranges".into(),
                Some(json!({"network_id": n, "start_ip": "192.168.1.20", "end_ip": "192.168.1.29"})),
            ),
            (
                Method::PATCH,
                format!("/hosts/{b_host}"),
                Some(json!({"network_id": n, "ip_address": "192.168.1.78"})),
            ),
        ]
    };
    let theirs = cases(net, host, range);
    let nobodys = cases(999_999, 999_998, 999_997);
    let mut problems = Vec::new();
    for ((verb, path, body), (_, missing_path, missing_body)) in theirs.into_iter().zip(nobodys) {
        let e = b.refused(verb.clone(), &path, body, 404, "not_found").await;
        let m = b
            .refused(verb.clone(), &missing_path, missing_body, 404, "not_found")
            .await;
        match (e, m) {
            (Ok(e), Ok(m)) if e["errors"] == m["errors"] => {}
            (Ok(e), Ok(m)) => problems.push(format!("{verb} {path}: {e} vs {m}")),
            (e, m) => problems.push(format!("A's id: {e:?}\n  nobody's id: {m:?}")),
        }
    }
    assert_no_problems(&problems);
    // B's view: its own records only, and A's addresses are not B's.
    assert_eq!(ids(&b.get("/networks").await), [b_net]);
    let looked_up = b.get("/ip/192.168.1.10").await;
    assert_eq!(
        (&looked_up["status"], &looked_up["network"]["id"]),
        (&json!("available"), &json!(b_net))
    );
    assert_eq!(b.get("/ip/192.168.1.120").await["status"], json!("available"));

    // A is unchanged.
    assert_eq!(snapshot().await, before);
    assert_eq!(a.get(&format!("/hosts/{host}")).await, a_host);
    // B's lists hold B's records only.
    assert_eq!(ids(&b.get("/hosts").await), [b_host]);
    assert_eq!(b.get("/dhcp-ranges").await["data"], json!([]));
}

/// A REST value as the envelope renders it: scalars as strings, null as null.
fn enveloped(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::String(_) => v.clone(),
        Value::Bool(b) => json!(b.to_string()),
        Value::Number(n) => json!(n.to_string()),
        Value::Array(a) => Value::Array(a.iter().map(enveloped).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), enveloped(v))).collect::<Map<_, _>>()),
    }
}

/// REST host field → envelope field, for the fields both show alike.
const HOST_PAIRS: [(&str, &str); 11] = [
    ("id", "id"),
    ("ip_address", "ip"),
    ("network_id", "subnet"),
    ("hostname", "hostname"),
    ("cname", "cname"),
    ("mac_address", "mac_address"),
    ("status", "status"),
    ("is_assigned", "is_assigned"),
    ("discovery_source", "discovery_source"),
    ("description", "description"),
    ("fields", "fields"),
];

/// REST network field → envelope field.
const NETWORK_PAIRS: [(&str, &str); 13] = [
    ("id", "id"),
    ("network", "network"),
    ("cidr", "cidr"),
    ("broadcast_address", "broadcast"),
    ("name", "name"),
    ("domain", "domain"),
    ("vlan_id", "vlan_id"),
    ("description", "description"),
    ("location", "location"),
    ("group_id", "group"),
    ("total_hosts", "total_hosts"),
    ("used_hosts", "used_hosts"),
    ("available_hosts", "available_hosts"),
];

fn assert_same(rest: &Value, envelope: &Value, pairs: &[(&str, &str)]) {
    for (r, e) in pairs {
        assert_eq!(enveloped(&rest[*r]), envelope[*e], "{r} / {e}: {rest} vs {envelope}");
    }
}

#[tokio::test]
async fn records_read_the_same_through_both_apis() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let net = office(&c).await;
    let field = s
        .ok(
            &s.admin,
            "subnets/fields/add",
            json!({"subnet": net, "name": "rack", "type": "text"}),
        )
        .await;
    assert_eq!(only(&field)["name"], json!("rack"));

    // Made through REST, read through /1.0.
    let made = c
        .post(
            "/hosts",
            json!({"ip_address": "192.168.1.100", "hostname": "server02", "cname": "api",
                   "mac_address": "11-22-33-44-55-66", "status": "reserved", "is_assigned": false,
                   "last_seen": "2025-12-28T10:01:58Z", "discovery_source": "nmap", "description": "API server",
                   "network_id": net, "fields": {"rack": "r1"}}),
        )
        .await;
    assert_eq!(made["mac_address"], json!("11:22:33:44:55:66"));
    assert_eq!(made["fields"], json!({"rack": "r1"}));
    let id = num_id(&made);
    let got = s.ok(&s.admin, "ipaddress/get", json!({"id": id})).await;
    let env = only(&got);
    assert_same(&made, env, &HOST_PAIRS);
    assert_eq!(env["last_seen"], json!(SEEN.to_string()));

    // Made through /1.0, read through REST.
    let added = s
        .ok(
            &s.admin,
            "ipaddress/add",
            json!({"ip": "192.168.1.101", "hostname": "legacy", "is_assigned": "false", "last_seen": SEEN.to_string(),
                   "status": "inactive", "fields": {"rack": "r2"}}),
        )
        .await;
    let env = only(&added);
    let rest = c.get(&format!("/hosts/{}", id_of(env))).await;
    assert_same(&rest, env, &HOST_PAIRS);
    assert_eq!(
        (
            &rest["id"],
            &rest["network_id"],
            &rest["is_assigned"],
            &rest["last_seen"]
        ),
        (
            &json!(id_of(env)),
            &json!(net),
            &json!(false),
            &json!("2025-12-28T10:01:58Z"),
        )
    );
    // An envelope edit shows through REST, and a REST edit through the envelope.
    s.ok(&s.admin, "ipaddress/edit", json!({"id": id, "hostname": "renamed"}))
        .await;
    assert_eq!(c.get(&format!("/hosts/{id}")).await["hostname"], json!("renamed"));
    c.patch(&format!("/hosts/{id}"), json!({"description": "via rest"}))
        .await;
    let got = s.ok(&s.admin, "ipaddress/get", json!({"id": id})).await;
    assert_eq!(only(&got)["description"], json!("via rest"));

    // Networks likewise, counts included.
    let rest_net = c.get(&format!("/networks/{net}")).await;
    let env_net = s.ok(&s.admin, "subnets/get", json!({"id": net})).await;
    assert_same(&rest_net, only(&env_net), &NETWORK_PAIRS);
    assert_eq!(rest_net["used_hosts"], json!(2));
    // The same call leaves the same audit entry whichever door it came in by.
    let entries = log_entries(&s, "ipaddress/add").await;
    let apps: Vec<&str> = entries.iter().map(|e| e["application"].as_str().unwrap()).collect();
    assert_eq!(apps, ["default", &format!("token:{}", &s.admin_token[..8])]);
    // And the same list.
    let listed = c.get("/hosts").await;
    let all = s.ok(&s.admin, "ipaddress/get", json!({"subnet": net})).await;
    let env_ids: Vec<String> = all.as_object().unwrap().keys().cloned().collect();
    let rest_ids: Vec<String> = ids(&listed).iter().map(i64::to_string).collect();
    assert_eq!(rest_ids, env_ids);
}

/// A text filter with a NUL or another control character is refused: SQLite's `LIKE` ends a pattern at a NUL, so
/// `hostname=%00` matched every host (and `name=%00` every network).
#[tokio::test]
async fn text_filters_refuse_control_characters() {
    let s = Server::start().await;
    let t = s.admin_token.clone();
    s.api(
        Method::POST,
        "/networks",
        &t,
        Some(&json!({"network": "10.1.0.0", "cidr": 24})),
    )
    .await;
    s.api(
        Method::POST,
        "/hosts",
        &t,
        Some(&json!({"ip_address": "10.1.0.5", "hostname": "web"})),
    )
    .await;
    for path in [
        "/hosts?hostname=%00",
        "/hosts?cname=a%00b",
        "/hosts?mac_address=%01",
        "/networks?name=%00",
        "/networks?location=%1b",
    ] {
        let reply = s.api(Method::GET, path, &t, None).await;
        assert_eq!(reply.status, 400, "{path}: {}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.json()["code"], json!("invalid_params"), "{path}");
    }
    let reply = s.api(Method::GET, "/hosts?hostname=%25", &t, None).await;
    assert_eq!(reply.json()["data"], json!([]), "% is a plain character");
}
